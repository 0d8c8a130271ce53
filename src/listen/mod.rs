//! `sockit listen`: wait for clients and talk to them.
//!
//! Without `-k` one conversation is served exactly as `connect` would (the listener is
//! closed once the client arrives). With `-k` the `hub` serves stream clients
//! concurrently and the `datagram` loop answers whoever wrote last, as the tutorial's
//! QQ-style server does. Entry points take an already bound socket and a shutdown token.

mod datagram;
mod hub;

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::net::{Datagram, Listener, MAX_DATAGRAM};
use crate::server::Admission;
use crate::session::{self, datagram_line, Source};
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
    /// Send LF as CRLF.
    pub crlf: bool,
    /// `-x`: every chunk with every client dumped here.
    pub dump: Option<std::sync::Arc<crate::dump::Sink>>,
    /// `--progress` for the one conversation (without `-k`).
    pub progress: bool,
}

/// Serves stream clients on `listener`, admitted by `admission` (rules, limit, TLS).
///
/// # Errors
/// A failed single conversation (reset), or stdout closed by its reader.
pub async fn run_stream(
    listener: Listener,
    admission: &Admission,
    input: Input,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    if cfg.keep_open || cfg.broker {
        return hub::run(listener, admission, input, output, cfg, shutdown).await;
    }
    let (stream, peer) = tokio::select! {
        r = admission.accept_one(&listener) => r.map_err(|e| Error::io("cannot accept", &e))?,
        () = shutdown.cancelled() => return Ok(()),
    };
    drop(listener);
    tracing::info!(%peer, "connection accepted");
    let opts = session::Options {
        idle_timeout: admission.limits().idle_timeout,
        crlf: cfg.crlf,
        dump: cfg.dump.clone(),
        progress: cfg.progress,
        ..session::Options::default()
    };
    tokio::select! {
        r = session::stream(stream, &peer, input, &output, &opts) => r,
        () = shutdown.cancelled() => Ok(()),
    }
}

/// Serves datagram peers on `sock`, received through `admission`'s gate.
///
/// # Errors
/// Reading stdin, or stdout closed by its reader.
pub async fn run_datagram(
    sock: Datagram,
    admission: &Admission,
    input: Input,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    if cfg.keep_open || cfg.broker {
        return datagram::run(sock, admission, input, output, cfg, shutdown).await;
    }
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let (n, peer) = tokio::select! {
        r = admission.receive(&sock, &mut buf, "listen") => r,
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
    let opts = session::Options {
        idle_timeout: admission.limits().idle_timeout,
        crlf: cfg.crlf,
        dump: cfg.dump.clone(),
        ..session::Options::default()
    };
    tokio::select! {
        r = session::datagram(&sock, &peer, Source::Lines(input), &output, &opts) => r,
        () = shutdown.cancelled() => Ok(()),
    }
}
