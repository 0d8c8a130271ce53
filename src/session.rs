//! One conversation between stdio and a peer, shared by `connect` and by `listen` without
//! `-k`: a stream through the [`crate::pump`] (or splice), or a datagram socket
//! where each input line is one datagram and each datagram received is one output line.

use std::io;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};
pub use crate::lines::{datagram_line, PARTIAL_QUIET};
use crate::lines::{trim_newline, Lines};
use crate::net::{Datagram, Peer, Stream, MAX_DATAGRAM};
use crate::pump;
use crate::stdio::{Input, Output, Stdio};

/// How long a datagram session waits for replies after input ended, unless told otherwise.
pub const DATAGRAM_IDLE: Duration = Duration::from_secs(2);

/// How a conversation runs once it is connected.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// End after this long without traffic (datagrams: defaults to 2 s after input ends).
    pub idle_timeout: Option<Duration>,
    /// Send LF as CRLF.
    pub crlf: bool,
    /// Datagrams: each input chunk is one datagram as it is, datagrams are output raw.
    pub binary: bool,
    /// Send stdin and ignore what the peer sends; end (after the half-close) at stdin's end
    /// (streams: [`pump::Ways::SendOnly`]).
    pub send_only: bool,
    /// Never send: the peer's bytes to stdout until it ends; stdin is not read and our side
    /// is never shut down (a server that ends at our EOF keeps talking).
    pub recv_only: bool,
    /// `-x`: where every chunk is dumped (each conversation gets its own offsets).
    pub dump: Option<std::sync::Arc<crate::dump::Sink>>,
    /// `--progress`: bytes, rate, percent and ETA on stderr.
    pub progress: bool,
    /// `--exec`/`--sh-exec`: a program talks to the peer instead of stdio.
    pub exec: Option<crate::exec::Exec>,
    /// `--no-shutdown`: stdin's end is not passed on as a half-close.
    pub no_shutdown: bool,
    /// The peer connected to us (listen), rather than we to it: who sent the SYN, in
    /// `--pcap`'s capture.
    pub accepted: bool,
    /// A signal: the conversation ends at once (what arrived is written out first, and
    /// `--progress` prints its totals). A program (`--exec`) ends itself instead.
    pub stop: Option<tokio_util::sync::CancellationToken>,
}

/// A `--binary` read larger than this is sent as several datagrams.
pub use crate::net::MAX_UDP_PAYLOAD;

/// Where datagrams to send come from.
#[derive(Debug)]
pub enum Source {
    /// One datagram per line of input.
    Lines(Input),
    /// Exactly one datagram with these bytes (`--send TEXT`).
    Once(Bytes),
}

impl Source {
    /// The input as a byte stream (`--send` becomes a stream that ends after TEXT).
    pub fn into_input(self) -> Input {
        match self {
            Source::Lines(input) => input,
            Source::Once(b) => Input::from_bytes(b),
        }
    }
}

/// One stream conversation between stdio and `stream`, with the logs a user asks for.
///
/// # Errors
/// A reset, or any I/O failure, as one sentence naming the peer.
pub async fn stream(
    stream: Stream,
    peer: &Peer,
    input: Input,
    output: &Output,
    opts: &Options,
) -> Result<()> {
    let started = std::time::Instant::now();
    let counts = opts
        .progress
        .then(|| std::sync::Arc::new(pump::Counts::default()));
    let popts = pump::Options {
        idle_timeout: opts.idle_timeout,
        end_on_remote_eof: input.is_terminal(),
        crlf: opts.crlf,
        dump: opts.dump.as_ref().map(|s| {
            std::sync::Arc::new(s.stream(
                peer,
                stream.local_addr(),
                peer.socket_addr(),
                opts.accepted,
            ))
        }),
        counts: counts.clone(),
        ways: match (opts.send_only, opts.recv_only) {
            (true, _) => pump::Ways::SendOnly,
            (_, true) => pump::Ways::RecvOnly,
            _ => pump::Ways::Both,
        },
        local_exited: None,
        explain: crate::net::explain::Conn::of(peer),
        explain_local: None,
        no_shutdown: opts.no_shutdown,
    };
    if let Some(exec) = &opts.exec {
        return crate::exec::stream(exec, stream, peer, &popts).await;
    }
    let fast = !stream.is_layered()
        && popts.is_plain()
        && input.is_untouched_stdin()
        && crate::pump::splice::available();
    let result = if fast {
        tracing::debug!(%peer, "zero-copy path (splice)");
        tokio::select! {
            r = crate::pump::splice::pump(&stream) => r,
            () = pump::fired(opts.stop.as_ref()) => Ok(pump::Report::interrupted(None)),
        }
    } else {
        let stdio = Stdio {
            input,
            output: output.writer(),
        };
        let display =
            counts.map(|c| crate::progress::Display::start(c, crate::progress::stdin_size()));
        let r = tokio::select! {
            r = pump::pump(stdio, stream, &popts) => r,
            () = pump::fired(opts.stop.as_ref()) => Ok(pump::Report::interrupted(popts.counts.as_deref())),
        };
        if let Some(d) = display {
            d.finish().await;
        }
        r
    };
    match result {
        Ok(r) => {
            tracing::info!(%peer, bytes_out = r.sent, bytes_in = r.received,
                duration_ms = started.elapsed().as_millis() as u64, end = r.end.as_str(), "closed");
            if r.quiet_close && r.sent > 0 {
                crate::error::note(format_args!(
                    "{peer} closed right after our end of input without answering; \
                     a proxy or server that ends the connection at a half-close drops its answer: try --no-shutdown"
                ));
            }
            Ok(())
        }
        Err(e) => {
            tracing::info!(%peer, error = %crate::error::describe_io(&e), duration_ms = started.elapsed().as_millis() as u64,
                "closed");
            // stdin or stdout failing is not the connection's failure.
            Err(Error::conversation(peer, &e))
        }
    }
}

/// One datagram conversation with `peer` over a connected socket.
///
/// # Errors
/// Reading input, or the peer's port being closed (ICMP port unreachable).
pub async fn datagram(
    sock: &Datagram,
    peer: &Peer,
    source: Source,
    output: &Output,
    opts: &Options,
) -> Result<()> {
    let idle_timeout = opts.idle_timeout;
    if let Some(exec) = &opts.exec {
        let dump = opts
            .dump
            .as_ref()
            .map(|s| s.datagrams(peer, sock.local_addr(), peer.socket_addr()));
        return crate::exec::datagram::conversation(
            exec,
            sock,
            peer,
            None,
            idle_timeout,
            dump.as_ref(),
        )
        .await;
    }
    let fail = |e: io::Error| {
        let err = Error::io(format!("no conversation with {peer}"), &e);
        match e.kind() {
            io::ErrorKind::ConnectionRefused => Error::new(
                ErrorKind::ConnectionRefused,
                format!("no answer from {peer}"),
                "port unreachable (connection refused)",
            ),
            _ if crate::error::is_message_too_long(&e) => {
                Error::new(
                    ErrorKind::BadArgument,
                    format!("cannot send a datagram to {peer}"),
                    "a UDP datagram holds at most 65,507 bytes; send longer data over a stream (tcp://)",
                )
            }
            _ => err,
        }
    };
    let (mut input, mut open) = match source {
        // Never sending: nothing is read, and the socket waits for what comes.
        _ if opts.recv_only => (None, true),
        Source::Lines(input) => (Some(input), true),
        Source::Once(b) => {
            sock.send(&b).await.map_err(fail)?;
            (None, false)
        }
    };
    let dump = opts
        .dump
        .as_ref()
        .map(|s| s.datagrams(peer, sock.local_addr(), peer.socket_addr()));
    let mut lines = Lines::new(MAX_DATAGRAM);
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut last = Instant::now();
    let mut last_input = Instant::now();
    let (mut sent, mut received) = (0u64, 0u64);
    loop {
        let wait = match (open, idle_timeout) {
            (true, None) => None,
            (true, Some(t)) => Some(t),
            // Replies are ignored: nothing to wait for once input ended.
            (false, _) if opts.send_only => Some(Duration::ZERO),
            (false, t) => Some(t.unwrap_or(DATAGRAM_IDLE)),
        };
        let deadline = async {
            match wait {
                Some(t) => tokio::time::sleep_until(last + t).await,
                None => std::future::pending().await,
            }
        };
        let partial = open && lines.pending() > 0;
        tokio::select! {
            chunk = next_chunk(&mut input), if open => {
                match chunk {
                    Some(Ok(data)) if opts.binary => {
                        // Each read is one datagram, as it came (split only where it
                        // cannot fit one).
                        for piece in data.chunks(MAX_UDP_PAYLOAD) {
                            send(sock, dump.as_ref(), piece).await.map_err(fail)?;
                            sent += 1;
                        }
                    }
                    Some(Ok(data)) => lines.push(&data),
                    Some(Err(e)) => return Err(Error::io("cannot read stdin", &e)),
                    None => open = false,
                }
                for line in lines.drain(!open) {
                    send(sock, dump.as_ref(), trim_newline(&line)).await.map_err(fail)?;
                    sent += 1;
                }
                last = Instant::now();
                last_input = last;
            }
            () = tokio::time::sleep_until(last_input + PARTIAL_QUIET), if partial => {
                if let Some(line) = lines.finish() {
                    send(sock, dump.as_ref(), &line).await.map_err(fail)?;
                    sent += 1;
                }
            }
            r = sock.recv(&mut buf), if !opts.send_only => {
                let n = r.map_err(fail)?;
                received += 1;
                if let Some(d) = &dump {
                    d.record(crate::dump::Direction::Received, &buf[..n]);
                }
                let data = if opts.binary {
                    Bytes::copy_from_slice(&buf[..n])
                } else {
                    datagram_line(&buf[..n])
                };
                output.write(data).await.map_err(|_| Error::stdout_closed())?;
                last = Instant::now();
            }
            () = deadline => break,
        }
    }
    tracing::info!(%peer, datagrams_out = sent, datagrams_in = received, end = "idle timeout", "closed");
    Ok(())
}

/// One datagram to the connected peer, dumped first under `-x`.
async fn send(
    sock: &Datagram,
    dump: Option<&crate::dump::Traffic>,
    data: &[u8],
) -> io::Result<usize> {
    if let Some(d) = dump {
        d.record(crate::dump::Direction::Sent, data);
    }
    sock.send(data).await
}

async fn next_chunk(input: &mut Option<Input>) -> Option<io::Result<Bytes>> {
    match input {
        Some(i) => i.next_chunk().await,
        None => None,
    }
}
