//! `--pty`: the program on a pseudo-terminal, as the leader of its own session with that
//! terminal as its controlling terminal, so a shell has job control, `vi` and `top` work,
//! and a Ctrl-C byte from the peer interrupts the foreground job (the terminal's line
//! discipline turns it into SIGINT), not the connection. pty-process opens the terminal and
//! makes the session, so sockit keeps `forbid(unsafe_code)`.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use rustix::io::Errno;
use rustix::termios::SpecialCodeIndex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::child::{self, Running};
use super::program::{Origin, Program, Terminal};

/// Starts `program` on a new pseudo-terminal of `terminal`'s size and `TERM`.
///
/// # Errors
/// No pseudo-terminal to be had (`/dev/ptmx` missing or exhausted), or `spawn` failing.
pub fn spawn(
    program: &Program,
    origin: &Origin,
    terminal: &Terminal,
) -> io::Result<(Running, PtyIo)> {
    let (pty, pts) = pty_process::open().map_err(io::Error::other)?;
    let (cols, rows) = terminal.size;
    pty.resize(pty_process::Size::new(rows, cols))
        .map_err(io::Error::other)?;
    let argv = program.argv();
    let child = pty_process::Command::new(&argv[0])
        .args(&argv[1..])
        .envs(origin.env())
        .env("TERM", &terminal.term)
        .spawn(pts)
        .map_err(io::Error::other)?;
    let running = child::session_leader(child);
    let exited = running.exit_token();
    let io = PtyIo {
        pty,
        wait_exit: Box::pin(exited.clone().cancelled_owned()),
        exited,
        eof_sent: false,
    };
    Ok((running, io))
}

/// The terminal's master side as one duplex for the pump.
///
/// - The peer's EOF is the terminal's end-of-file character (Ctrl-D for a shell at its
///   prompt): a terminal has no half-close.
/// - EIO on reading, once every holder of the terminal closed it, is the end of the
///   program's output, not an error; once the program has exited, reading also ends when
///   nothing is waiting, as a background job may hold the terminal open.
/// - Bytes for a terminal nobody holds any more are dropped.
pub struct PtyIo {
    pty: pty_process::Pty,
    exited: CancellationToken,
    wait_exit: Pin<Box<WaitForCancellationFutureOwned>>,
    eof_sent: bool,
}

/// True for the error a master gives once no process holds its terminal.
fn hung_up(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::IO.raw_os_error())
}

impl AsyncRead for PtyIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.pty).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if hung_up(&e) => return Poll::Ready(Ok(())),
            Poll::Ready(r) => return Poll::Ready(r),
            Poll::Pending => {}
        }
        if !this.exited.is_cancelled() && this.wait_exit.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        child::read_what_is_left(this.pty.as_fd(), buf)
    }
}

impl AsyncWrite for PtyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match ready!(Pin::new(&mut self.pty).poll_write(cx, data)) {
            Err(e) if hung_up(&e) => Poll::Ready(Ok(data.len())),
            r => Poll::Ready(r),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.pty).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if !self.eof_sent {
            // The character as the program has it now (`stty eof` may have changed it).
            let eof = rustix::termios::tcgetattr(self.pty.as_fd())
                .map_or(0x04, |t| t.special_codes[SpecialCodeIndex::VEOF]);
            ready!(self.as_mut().poll_write(cx, &[eof]))?;
            self.eof_sent = true;
        }
        Poll::Ready(Ok(()))
    }
}
