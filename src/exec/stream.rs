//! A stream connection through a program: the pump between the connection and the child's
//! pipes, with the program's exit ending the connection once its output is sent.

use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};

use super::child::{self, Input, Outcome, Running};
use super::program::{Exec, Origin, EXIT_WAIT};
use super::pty;
use crate::error::{Error, Result};
use crate::net::{Peer, Stream};
use crate::pump;

/// Runs the program for the connection `stream` with `peer`: the peer's bytes to its stdin,
/// its stdout to the peer, both half-closes passed on, then the program's process group
/// ended and reaped. `opts` are the pump's (idle timeout, `-x`, directions).
///
/// # Errors
/// The program could not be started, or the connection failed (a reset).
pub async fn stream(exec: &Exec, stream: Stream, peer: &Peer, opts: &pump::Options) -> Result<()> {
    let origin = Origin {
        proto: stream.proto(),
        peer: peer.clone(),
        local: stream.local_addr(),
    };
    let program = &exec.program;
    let cannot = |e: std::io::Error| Error::io(format!("cannot start '{program}' for {peer}"), &e);
    match &exec.pty {
        None => {
            // Nothing to watch between the wire and the program: the socket is its stdin.
            #[cfg(unix)]
            if !stream.is_layered() && direct_is_enough(opts) {
                return super::direct::serve(exec, stream, &origin).await;
            }
            let (running, io) = child::spawn(program, &origin, Input::Piped).map_err(cannot)?;
            serve(exec, running, io, stream, peer, opts).await
        }
        Some(terminal) => {
            let (running, io) = pty::spawn(program, &origin, terminal).map_err(cannot)?;
            serve(exec, running, io, stream, peer, opts).await
        }
    }
}

/// True when the pump would only move bytes (no `-x`, `--pcap`, `--explain`, clock,
/// counters, rewriting or one-way flags): then the program may read the socket itself.
#[cfg(unix)]
fn direct_is_enough(opts: &pump::Options) -> bool {
    // A terminal on sockit's own stdin means nothing here: the program's output is the input.
    pump::Options {
        end_on_remote_eof: false,
        ..opts.clone()
    }
    .is_plain()
}

/// The pump between the connection and a started program's `io`, until both ends are
/// done; then the program and what it started are ended.
async fn serve(
    exec: &Exec,
    mut running: Running,
    io: impl AsyncRead + AsyncWrite + Unpin,
    stream: Stream,
    peer: &Peer,
    opts: &pump::Options,
) -> Result<()> {
    let program = &exec.program;
    let started = Instant::now();
    tracing::info!(%peer, pid = running.id(), %program, "program started");
    let counts = opts.counts.clone().unwrap_or_default();
    let opts = pump::Options {
        local_exited: Some(running.exit_token()),
        end_on_remote_eof: false,
        counts: Some(counts.clone()),
        ..opts.clone()
    };
    let result = {
        let pump = pump::pump(io, stream, &opts);
        tokio::pin!(pump);
        let mut watching = true;
        loop {
            tokio::select! {
                r = &mut pump => break r.map(|r| r.end.as_str()),
                () = running.exited(), if watching => watching = false,
                // Shutdown: the connection is abandoned, the program ended below.
                () = exec.stop.cancelled() => break Ok("shutdown"),
            }
        }
    };
    if let Ok("eof") = result {
        // Both directions ended cleanly, but the program may still be finishing what it
        // was given (`cat > upload`): it gets to exit on its own first.
        tokio::select! {
            _ = tokio::time::timeout(EXIT_WAIT, running.exited()) => {}
            () = exec.stop.cancelled() => {}
        }
    }
    let status = running.end().await;
    let result = result.map(|end| Outcome {
        end,
        sent: counts.sent.load(std::sync::atomic::Ordering::Relaxed),
        received: Some(counts.received.load(std::sync::atomic::Ordering::Relaxed)),
    });
    child::ended(peer, started, status, result)
}
