//! `sockit listen`: wait for clients and talk to them.
//!
//! Without `-k` one conversation is served exactly as `connect` would (the listener is
//! closed once the client arrives). With `-k` the [`hub`] serves stream clients
//! concurrently and the [`datagram`] loop answers whoever wrote last, as the tutorial's
//! QQ-style server does. Entry points take an already bound socket and a shutdown token.

mod datagram;
mod hub;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::access::Access;
use crate::connect::{self, datagram_line, Source};
use crate::error::{Error, Result};
use crate::net::{Datagram, Listener};
use crate::stdio::{Input, Output};

/// Options of `listen`.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Serve many clients and keep running (`-k`).
    pub keep_open: bool,
    /// Pass what any client sends to all the others (`--broker`).
    pub broker: bool,
    /// Prefix each received line with `[PEER] ` (`--show-peer`).
    pub show_peer: bool,
    /// Who may connect.
    pub access: Access,
    /// At most this many clients at once (`--max-conns`).
    pub max_conns: Option<usize>,
    /// Close a client after this long without traffic.
    pub idle_timeout: Option<Duration>,
    /// Send LF as CRLF.
    pub crlf: bool,
    /// TLS for a `tls://` listener.
    pub tls: Option<crate::tls::Server>,
}

/// Serves stream clients on `listener`.
///
/// # Errors
/// A failed single conversation (reset), or stdout closed by its reader.
pub async fn run_stream(
    listener: Listener,
    input: Input,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    if cfg.keep_open || cfg.broker {
        return hub::run(listener, input, output, cfg, shutdown).await;
    }
    let accepted = async {
        loop {
            match listener.accept().await {
                Ok((stream, peer)) if cfg.access.permits(&peer) => {
                    // A failed handshake (a scanner, a client that does not trust us) is
                    // not the conversation: wait for the next client.
                    if let Some(stream) = crate::tls::accept(cfg.tls.as_ref(), stream, &peer).await
                    {
                        return Ok((stream, peer));
                    }
                }
                Ok((_, peer)) => tracing::warn!(%peer, "refused: not allowed by --allow/--deny"),
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    let (stream, peer) = tokio::select! {
        r = accepted => r.map_err(|e: std::io::Error| Error::io("cannot accept", &e))?,
        () = shutdown.cancelled() => return Ok(()),
    };
    drop(listener);
    tracing::info!(%peer, "connection accepted");
    let ccfg = connect::Config {
        connect_timeout: None,
        idle_timeout: cfg.idle_timeout,
        crlf: cfg.crlf,
        tls: None,
    };
    tokio::select! {
        r = connect::stream_session(stream, &peer, input, &output, &ccfg) => r,
        () = shutdown.cancelled() => Ok(()),
    }
}

/// Serves datagram peers on `sock`.
///
/// # Errors
/// Reading stdin, or stdout closed by its reader.
pub async fn run_datagram(
    sock: Datagram,
    input: Input,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    if cfg.keep_open || cfg.broker {
        return datagram::run(sock, input, output, cfg, shutdown).await;
    }
    let mut buf = vec![0u8; 65_535];
    let first = async {
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, peer)) if cfg.access.permits(&peer) => return (n, peer),
                Ok((_, peer)) => tracing::warn!(%peer, "refused: not allowed by --allow/--deny"),
                Err(e) => tracing::debug!(error = %e, "receive failed"),
            }
        }
    };
    let (n, peer) = tokio::select! {
        r = first => r,
        () = shutdown.cancelled() => return Ok(()),
    };
    tracing::info!(%peer, "first datagram");
    output
        .write(datagram_line(&buf[..n]))
        .await
        .map_err(|_| Error::stdout_closed())?;
    sock.connect(&peer)
        .await
        .map_err(|e| Error::io(format!("cannot answer {peer}"), &e))?;
    tokio::select! {
        r = connect::datagram_session(&sock, &peer, Source::Lines(input), &output, cfg.idle_timeout) => r,
        () = shutdown.cancelled() => Ok(()),
    }
}
