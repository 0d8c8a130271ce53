//! `sockit connect`: stdin to a peer, the peer to stdout.
//!
//! Streams go through the [`pump`](crate::pump) (half-close both ways). Datagram sockets
//! turn each input line into one datagram and print every datagram received, then wait for
//! late replies until the idle timeout once input has ended.

use std::io;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::endpoint::Endpoint;
use crate::error::{Error, ErrorKind, Result};
use crate::lines::{trim_newline, Lines};
use crate::net::{self, Datagram, Peer, Stream};
use crate::pump::{self, End};
use crate::stdio::{Input, Output, Stdio};

/// How long a datagram session waits for replies after input ended, unless told otherwise.
pub const DATAGRAM_IDLE: Duration = Duration::from_secs(2);
/// The largest datagram sockit receives (the largest UDP payload).
const DATAGRAM_MAX: usize = 65_535;

/// Options of `connect` (and of a `listen` conversation).
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Bound on each connection attempt.
    pub connect_timeout: Option<Duration>,
    /// End after this long without traffic (datagrams: defaults to 2 s after input ends).
    pub idle_timeout: Option<Duration>,
    /// Send LF as CRLF.
    pub crlf: bool,
    /// How to trust a `tls://` server (the system's roots when `None`).
    pub tls: Option<crate::tls::Client>,
}

/// Where datagrams to send come from.
#[derive(Debug)]
pub enum Source {
    /// One datagram per line of input.
    Lines(Input),
    /// Exactly one datagram with these bytes (`--send TEXT`).
    Once(Bytes),
}

/// Connects to `endpoint` and relays until the conversation ends.
///
/// # Errors
/// Connecting (refused, unresolved, timed out) or a conversation that failed (reset).
pub async fn run(
    endpoint: &Endpoint,
    source: Source,
    output: Output,
    cfg: &Config,
    shutdown: CancellationToken,
) -> Result<()> {
    if endpoint.is_stream() {
        let (stream, peer) = match endpoint {
            Endpoint::Tls(hp) => {
                let client = match &cfg.tls {
                    Some(c) => c.clone(),
                    None => crate::tls::Client::new(&crate::tls::ClientOptions::default())?,
                };
                crate::tls::connect(hp, cfg.connect_timeout, &client).await?
            }
            _ => net::connect(endpoint, cfg.connect_timeout).await?,
        };
        tracing::info!(%peer, "connected");
        let input = match source {
            Source::Lines(input) => input,
            Source::Once(b) => Input::from_bytes(b),
        };
        tokio::select! {
            r = stream_session(stream, &peer, input, &output, cfg) => r,
            () = shutdown.cancelled() => Ok(()),
        }
    } else {
        let (sock, peer) = net::connect_datagram(endpoint).await?;
        tracing::info!(%peer, local = %sock.local_endpoint(), "datagram socket ready");
        tokio::select! {
            r = datagram_session(&sock, &peer, source, &output, cfg.idle_timeout) => r,
            () = shutdown.cancelled() => Ok(()),
        }
    }
}

/// One stream conversation between stdio and `stream`, with the logs a user asks for.
///
/// # Errors
/// A reset, or any I/O failure, as one sentence naming the peer.
pub async fn stream_session(
    stream: Stream,
    peer: &Peer,
    input: Input,
    output: &Output,
    cfg: &Config,
) -> Result<()> {
    let started = std::time::Instant::now();
    let opts = pump::Options {
        idle_timeout: cfg.idle_timeout,
        end_on_remote_eof: input.is_terminal(),
        crlf: cfg.crlf,
    };
    let fast = !stream.is_tls()
        && input.is_untouched_stdin()
        && !opts.end_on_remote_eof
        && !opts.crlf
        && opts.idle_timeout.is_none()
        && crate::splice::available();
    let result = if fast {
        tracing::debug!(%peer, "zero-copy path (splice)");
        crate::splice::pump(&stream).await
    } else {
        let stdio = Stdio {
            input,
            output: output.writer(),
        };
        pump::pump(stdio, stream, &opts).await
    };
    match result {
        Ok(r) => {
            let why = match r.end {
                End::Eof => "eof",
                End::RemoteClosed => "peer closed",
                End::Idle => "idle timeout",
            };
            tracing::info!(%peer, bytes_out = r.sent, bytes_in = r.received,
                duration_ms = started.elapsed().as_millis() as u64, end = why, "closed");
            Ok(())
        }
        Err(e) => {
            tracing::info!(%peer, error = %e, duration_ms = started.elapsed().as_millis() as u64,
                "closed");
            Err(Error::io(format!("connection with {peer} failed"), &e))
        }
    }
}

/// One datagram conversation with `peer` over a connected socket.
///
/// # Errors
/// Reading input, or the peer's port being closed (ICMP port unreachable).
pub async fn datagram_session(
    sock: &Datagram,
    peer: &Peer,
    source: Source,
    output: &Output,
    idle_timeout: Option<Duration>,
) -> Result<()> {
    let fail = |e: io::Error| {
        let err = Error::io(format!("no conversation with {peer}"), &e);
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Error::new(
                ErrorKind::ConnectionRefused,
                format!("no answer from {peer}"),
                "port unreachable (connection refused)",
            ),
            _ => err,
        }
    };
    let (mut input, mut open) = match source {
        Source::Lines(input) => (Some(input), true),
        Source::Once(b) => {
            sock.send(&b).await.map_err(fail)?;
            (None, false)
        }
    };
    let mut lines = Lines::new(DATAGRAM_MAX);
    let mut buf = vec![0u8; DATAGRAM_MAX];
    let mut last = Instant::now();
    let (mut sent, mut received) = (0u64, 0u64);
    loop {
        let wait = match (open, idle_timeout) {
            (true, None) => None,
            (true, Some(t)) => Some(t),
            (false, t) => Some(t.unwrap_or(DATAGRAM_IDLE)),
        };
        let deadline = async {
            match wait {
                Some(t) => tokio::time::sleep_until(last + t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            chunk = next_chunk(&mut input), if open => {
                match chunk {
                    Some(Ok(data)) => lines.push(&data),
                    Some(Err(e)) => return Err(Error::io("cannot read stdin", &e)),
                    None => open = false,
                }
                for line in lines.drain(!open) {
                    sock.send(trim_newline(&line)).await.map_err(fail)?;
                    sent += 1;
                }
                last = Instant::now();
            }
            r = sock.recv(&mut buf) => {
                let n = r.map_err(fail)?;
                received += 1;
                output.write(datagram_line(&buf[..n])).await.map_err(|_| Error::stdout_closed())?;
                last = Instant::now();
            }
            () = deadline => break,
        }
    }
    tracing::info!(%peer, datagrams_out = sent, datagrams_in = received, end = "idle timeout", "closed");
    Ok(())
}

async fn next_chunk(input: &mut Option<Input>) -> Option<io::Result<Bytes>> {
    match input {
        Some(i) => i.next_chunk().await,
        None => None,
    }
}

/// A received datagram as a line of output: its bytes, then a newline if it had none.
pub(crate) fn datagram_line(data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 1);
    out.extend_from_slice(data);
    if !data.ends_with(b"\n") {
        out.extend_from_slice(b"\n");
    }
    out.freeze()
}
