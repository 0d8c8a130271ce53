//! A bare socket through a program the way inetd and tcpserver hand one over: the socket
//! itself is the program's stdin, so the peer's bytes and its EOF reach the program with no
//! copy through sockit and no wake-up of ours per chunk. Only the program's output comes
//! through a pipe, because two promises need it: its stdout closing (`exec 1>&-`) half-closes
//! the connection while its input still flows, and once it has exited, a background process
//! holding that pipe does not keep the connection.
//!
//! Taken when nothing watches the bytes ([`crate::pump::Options::is_plain`]: no `-x`,
//! `--pcap`, `--explain`, `--idle-timeout`, `--progress`, one-way or `--crlf` flags) and the
//! stream has no layer (TLS, WebSocket and QUIC need sockit between the wire and the program).

use std::io;
use std::os::fd::AsFd;
use std::time::Instant;

use rustix::net::RecvFlags;
use tokio::io::{AsyncReadExt, Interest};

use super::child::{self, ChildIo, Input, Outcome, Running};
use super::program::{Exec, Origin, EXIT_WAIT};
use crate::error::{Error, Result};
use crate::net::Stream;

/// Runs the program with the connection's socket as its stdin and its stdout passed to the
/// peer, then ends its process group and reaps it.
///
/// # Errors
/// The program could not be started, or the connection failed (a reset while its output
/// was being sent).
pub(super) async fn serve(exec: &Exec, stream: Stream, origin: &Origin) -> Result<()> {
    let (program, peer) = (&exec.program, &origin.peer);
    let cannot = |e: io::Error| Error::io(format!("cannot start '{program}' for {peer}"), &e);
    // Blocking, for the program: a non-blocking stdin fails a plain read(2) with EAGAIN. The
    // flag belongs to the socket, ours included: our own calls never wait (`write_all_shared`).
    socket2::SockRef::from(&stream)
        .set_nonblocking(false)
        .map_err(cannot)?;
    let socket = stream.as_fd().try_clone_to_owned().map_err(cannot)?;
    let (mut running, mut output) =
        child::spawn(program, origin, Input::Socket(socket)).map_err(cannot)?;
    let started = Instant::now();
    tracing::info!(%peer, pid = running.id(), %program, input = "socket", "program started");
    let result = tokio::select! {
        r = converse(&mut running, &mut output, &stream) => r,
        // Shutdown: the connection is abandoned, the program ended below.
        () = exec.stop.cancelled() => Ok((0, "shutdown")),
    };
    drop(stream);
    let status = running.end().await;
    let result = result.map(|(sent, end)| Outcome {
        end,
        sent,
        received: None,
    });
    child::ended(peer, started, status, result)
}

/// How much of the program's output one read takes.
const CHUNK: usize = 64 * 1024;

/// The program's output to the peer, then our half-close; then, if the program is still
/// reading the peer, until it exits (given [`EXIT_WAIT`] once the peer's EOF is there).
/// Returns the bytes sent and how it ended.
async fn converse(
    running: &mut Running,
    output: &mut ChildIo,
    stream: &Stream,
) -> io::Result<(u64, &'static str)> {
    let mut sent = 0u64;
    // Not zeroed: most programs answer a connection with a few bytes.
    let mut buf = bytes::BytesMut::with_capacity(CHUNK);
    let mut watching = true;
    loop {
        buf.clear();
        let n = tokio::select! {
            r = output.read_buf(&mut buf) => r?,
            // Its exit ends the output once the pipe is empty (see `ChildIo`).
            () = running.exited(), if watching => {
                watching = false;
                continue;
            }
            // A reset ends the program now, as it would through pipes, even one that is
            // neither reading nor writing (the peer's bytes never wake this: it waits for
            // the socket's error only).
            r = stream.ready(Interest::ERROR) => return Err(reset(stream, r)),
        };
        if n == 0 {
            break;
        }
        stream.write_all_shared(&buf).await?;
        sent += n as u64;
    }
    drop(buf);
    rustix::net::shutdown(stream, rustix::net::Shutdown::Write)?;
    if running.exit_token().is_cancelled() {
        return Ok((sent, "eof"));
    }
    // It closed its stdout but may still be reading what the peer sends.
    tokio::select! {
        () = running.exited() => return Ok((sent, "eof")),
        r = input_ended(stream) => r?,
    }
    let _ = tokio::time::timeout(EXIT_WAIT, running.exited()).await;
    Ok((sent, "eof"))
}

/// The socket's pending error (a reset), or what its readiness said.
fn reset(stream: &Stream, ready: io::Result<tokio::io::Ready>) -> io::Error {
    match (socket2::SockRef::from(stream).take_error(), ready) {
        (Ok(Some(e)), _) | (_, Err(e)) => e,
        _ => io::ErrorKind::ConnectionReset.into(),
    }
}

/// Resolves once the peer's EOF has arrived (the program has the rest to read) or the
/// connection failed. The peer's bytes are the program's: only peeked at, never taken.
async fn input_ended(stream: &Stream) -> io::Result<()> {
    loop {
        let ready = stream.ready(Interest::READABLE).await?;
        let peeked = stream.try_io(Interest::READABLE, || {
            Ok(rustix::net::recv(stream, &mut [0u8; 1], RecvFlags::PEEK | RecvFlags::DONTWAIT)?.0)
        });
        match peeked {
            Ok(0) => return Ok(()),
            // Bytes the program has yet to read, with the peer's FIN behind them.
            Ok(_) if ready.is_read_closed() => return Ok(()),
            // Bytes the program has yet to read: this readiness is spent (a WouldBlock
            // from `try_io` clears it), the next arrival or the FIN says more.
            Ok(_) => {
                let _ = stream.try_io(Interest::READABLE, || {
                    Err::<(), _>(io::Error::from(io::ErrorKind::WouldBlock))
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}
