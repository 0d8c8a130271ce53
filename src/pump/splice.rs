//! Also the relay's path between two plain sockets ([`relay`]): socket -> pipe -> socket, in
//! the reactor, never through user memory for bulk; a small read (a request, a keystroke)
//! is copied through one page on the stack instead, which costs less than splicing it.
//!
//! The zero-copy path for the common bulk case: one stream connection, stdin and stdout not
//! terminals (pipes, files, /dev/null). splice(2) moves pages between the pipes and the socket inside the
//! kernel, so the bytes are never copied through our memory; this is where sockit outruns
//! netcat (see `bench/bulk.sh`).
//!
//! Each direction runs on its own thread with blocking pipes, while the socket stays in
//! non-blocking mode (tokio owns it); `EAGAIN` from the socket is answered with `poll(2)`.
//! The semantics are exactly the [`pump`](crate::pump)'s: each direction ends on its own,
//! stdin's EOF half-closes the socket, the peer's EOF ends the download.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fs::{fstat, FileType};
use rustix::pipe::{splice, SpliceFlags};

use super::copy::{close_together, End, Report};
use crate::net::Stream;

/// Bytes asked of one splice call.
const CHUNK: usize = 1 << 20;

/// How stdout can receive spliced data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    /// A pipe: splice straight into it.
    Pipe,
    /// A file or /dev/null: splice through a pipe of our own.
    ViaPipe,
    /// A file opened for append (`>>`), which splice(2) refuses: plain writes.
    Copy,
}

/// Plain sockets are always joined through kernel pipes here ([`relay`]).
pub(crate) const SOCKETS: bool = true;

/// True when neither stdin nor stdout is a terminal, and stdout can take spliced data.
pub(crate) fn available() -> bool {
    use std::io::IsTerminal;
    !io::stdin().is_terminal() && sink().is_some()
}

fn stdin_is_pipe() -> bool {
    fstat(io::stdin().as_fd()).is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Fifo)
}

fn sink() -> Option<Sink> {
    use std::io::IsTerminal;
    let out = io::stdout();
    let st = fstat(out.as_fd()).ok()?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::Fifo => Some(Sink::Pipe),
        FileType::RegularFile if is_append(out.as_fd()) => Some(Sink::Copy),
        FileType::RegularFile => Some(Sink::ViaPipe),
        FileType::CharacterDevice if !out.is_terminal() => Some(Sink::ViaPipe),
        _ => None,
    }
}

/// True for a descriptor opened with O_APPEND (`>> file`), which splice(2) refuses with
/// EINVAL.
fn is_append(fd: BorrowedFd<'_>) -> bool {
    rustix::fs::fcntl_getfl(fd).is_ok_and(|f| f.contains(rustix::fs::OFlags::APPEND))
}

/// Relays stdin and stdout with `stream` by splice until both directions end.
///
/// # Errors
/// The first failure of either direction: a reset, or stdout's reader gone (`BrokenPipe`).
pub(crate) async fn pump(stream: &Stream) -> io::Result<Report> {
    let sink = sink().ok_or_else(|| io::Error::other("stdout cannot take spliced data"))?;
    let up_sock = stream.as_fd().try_clone_to_owned()?;
    let down_sock = stream.as_fd().try_clone_to_owned()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(bool, io::Result<u64>)>(2);
    let up_tx = tx.clone();
    std::thread::Builder::new()
        .name("sockit-splice-up".into())
        .spawn(move || {
            let _ = up_tx.blocking_send((true, upload(&up_sock)));
        })?;
    std::thread::Builder::new()
        .name("sockit-splice-down".into())
        .spawn(move || {
            let _ = tx.blocking_send((false, download(&down_sock, sink)));
        })?;
    let (mut sent, mut received) = (0, 0);
    let (mut shut_at, mut remote_end_at) = (None, None);
    for _ in 0..2 {
        match rx.recv().await {
            Some((true, r)) => {
                sent = r?;
                shut_at = Some(std::time::Instant::now());
            }
            Some((false, r)) => {
                received = r?;
                remote_end_at = Some(std::time::Instant::now());
            }
            None => return Err(io::Error::other("a splice thread ended without a word")),
        }
    }
    Ok(Report {
        sent,
        received,
        end: End::Eof,
        quiet_close: received == 0 && close_together(shut_at, remote_end_at),
    })
}

/// stdin to the socket (spliced from a pipe, copied from anything else); at EOF, half-close.
fn upload(sock: &OwnedFd) -> io::Result<u64> {
    let total = if stdin_is_pipe() {
        splice_stdin(sock)?
    } else {
        copy_stdin(sock)?
    };
    match rustix::net::shutdown(sock, rustix::net::Shutdown::Write) {
        Err(rustix::io::Errno::NOTCONN) | Ok(()) => Ok(total),
        Err(e) => Err(e.into()),
    }
}

/// A file or /dev/null on stdin: plain reads, written to the non-blocking socket.
fn copy_stdin(sock: &OwnedFd) -> io::Result<u64> {
    let stdin = io::stdin();
    let input = stdin.as_fd();
    let mut buf = vec![0u8; CHUNK / 4];
    let mut total = 0u64;
    loop {
        let n = match rustix::io::read(input, &mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(read_error(e)),
        };
        let mut done = 0;
        while done < n {
            match rustix::io::write(sock, &buf[done..n]) {
                Ok(m) => done += m,
                Err(rustix::io::Errno::AGAIN) => {
                    poll(&mut [PollFd::new(sock, PollFlags::OUT)], None)?;
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
        total += n as u64;
    }
}

/// A pipe on stdin: pages move to the socket without a copy.
fn splice_stdin(sock: &OwnedFd) -> io::Result<u64> {
    let stdin = io::stdin();
    let input = stdin.as_fd();
    // A larger pipe lets the producer run ahead; refused (unprivileged limit) is harmless.
    let _ = rustix::pipe::fcntl_setpipe_size(input, CHUNK);
    let mut total = 0u64;
    loop {
        match splice(
            input,
            None,
            sock,
            None,
            CHUNK,
            SpliceFlags::MOVE | SpliceFlags::MORE,
        ) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(rustix::io::Errno::AGAIN) => wait_either(sock, PollFlags::OUT, input)?,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(total)
}

/// The socket to stdout, directly into a pipe or through one of ours; plain writes where
/// stdout refuses spliced data (O_APPEND, some devices), from the first refusal on, so no
/// byte is lost to the fast path.
fn download(sock: &OwnedFd, sink: Sink) -> io::Result<u64> {
    let stdout = io::stdout();
    let out = stdout.as_fd();
    let relay = match sink {
        Sink::Copy => return copy_down(sock, out, 0),
        Sink::Pipe => {
            let _ = rustix::pipe::fcntl_setpipe_size(out, CHUNK);
            None
        }
        Sink::ViaPipe => {
            let (r, w) = rustix::pipe::pipe()?;
            // A bigger pipe means fewer round trips; the default 64 KiB still works.
            let _ = rustix::pipe::fcntl_setpipe_size(&w, CHUNK);
            Some((r, w))
        }
    };
    let mut total = 0u64;
    loop {
        let target = relay.as_ref().map_or(out, |(_, w)| w.as_fd());
        let n = match splice(sock, None, target, None, CHUNK, SpliceFlags::MOVE) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(rustix::io::Errno::AGAIN) => {
                wait_either(sock, PollFlags::IN, out)?;
                continue;
            }
            Err(rustix::io::Errno::INTR) => continue,
            Err(rustix::io::Errno::PIPE) => return Err(crate::error::stdout_closed()),
            // stdout (a pipe given to us) refuses splice: nothing was moved yet.
            Err(rustix::io::Errno::INVAL) if relay.is_none() => return copy_down(sock, out, total),
            Err(e) => return Err(e.into()),
        };
        total += n as u64;
        if let Some((r, _)) = &relay {
            let mut left = n;
            while left > 0 {
                match splice(r, None, out, None, left, SpliceFlags::MOVE) {
                    Ok(0) => return Err(io::Error::other("relay pipe ended early")),
                    Ok(m) => left -= m,
                    Err(rustix::io::Errno::INTR) => {}
                    Err(rustix::io::Errno::PIPE) => return Err(crate::error::stdout_closed()),
                    Err(rustix::io::Errno::INVAL) => {
                        // Refused: what is in our pipe goes out by plain writes, then the rest.
                        drain_pipe(r, out, left)?;
                        return copy_down(sock, out, total);
                    }
                    Err(e) => return Err(write_error(e)),
                }
            }
        }
    }
}

/// Writes all of `data` to blocking stdout.
fn write_out(out: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(out, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::PIPE) => return Err(crate::error::stdout_closed()),
            Err(e) => return Err(write_error(e)),
        }
    }
    Ok(())
}

/// A failed write to stdout, marked as ours so it is not reported as the connection's.
fn write_error(e: rustix::io::Errno) -> io::Error {
    crate::error::stdio_failed("cannot write stdout", &io::Error::from(e))
}

/// A failed read of stdin, marked as ours.
fn read_error(e: rustix::io::Errno) -> io::Error {
    crate::error::stdio_failed("cannot read stdin", &io::Error::from(e))
}

/// `left` bytes still in our relay pipe, read out and written to stdout.
fn drain_pipe(r: &OwnedFd, out: BorrowedFd<'_>, mut left: usize) -> io::Result<()> {
    let mut buf = vec![0u8; left.min(CHUNK)];
    while left > 0 {
        let want = left.min(buf.len());
        match rustix::io::read(r, &mut buf[..want]) {
            Ok(0) => return Err(io::Error::other("relay pipe ended early")),
            Ok(n) => {
                write_out(out, &buf[..n])?;
                left -= n;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The socket to stdout by plain reads and writes, counting on from `total`.
fn copy_down(sock: &OwnedFd, out: BorrowedFd<'_>, mut total: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; CHUNK / 4];
    loop {
        match rustix::io::read(sock, &mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                write_out(out, &buf[..n])?;
                total += n as u64;
            }
            Err(rustix::io::Errno::AGAIN) => {
                poll(&mut [PollFd::new(sock, PollFlags::IN)], None)?;
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// `EAGAIN` came from the non-blocking socket, or from a pipe someone else made non-blocking:
/// wait for whichever is not ready, never spinning.
fn wait_either(sock: &OwnedFd, flags: PollFlags, pipe: BorrowedFd<'_>) -> io::Result<()> {
    let mut probe = [PollFd::new(sock, flags)];
    if poll(
        &mut probe,
        Some(&rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        }),
    )? == 0
    {
        let mut fds = [PollFd::new(sock, flags)];
        poll(&mut fds, None)?;
    } else {
        let pipe_flags = if flags == PollFlags::IN {
            PollFlags::OUT
        } else {
            PollFlags::IN
        };
        let mut fds = [PollFd::from_borrowed_fd(pipe, pipe_flags)];
        poll(&mut fds, None)?;
    }
    Ok(())
}

/// Joins two plain stream sockets through kernel pipes, one per direction, until both
/// directions end; each EOF is passed on as a half-close. Returns bytes a->b, bytes b->a,
/// and whether `a` was the first to close its side (for the logs).
///
/// # Errors
/// The first failure of either direction (a reset); the pair is then abandoned.
pub(crate) async fn relay(a: &Stream, b: &Stream) -> io::Result<(u64, u64, bool)> {
    let first = std::sync::atomic::AtomicU8::new(0);
    let mark = |side: u8| {
        let _ = first.compare_exchange(
            0,
            side,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        );
    };
    let (up, down) = tokio::try_join!(
        async {
            let n = one_way(a, b).await?;
            mark(1);
            Ok::<u64, io::Error>(n)
        },
        async {
            let n = one_way(b, a).await?;
            mark(2);
            Ok::<u64, io::Error>(n)
        }
    )?;
    Ok((up, down, first.into_inner() == 1))
}

/// A relay direction reads through a buffer of this size on the stack (read, then send)
/// until a read fills it; then it splices until a splice brings less. For a small message
/// splice costs more than the copy it saves (the kernel copies a small segment's bytes
/// into a page of their own to put them in the pipe): request/response through the relay
/// ran at 0.88x the buffered pump's rate on splice alone (`bench/exec.sh`). One page, so
/// that what the sink cannot take at once always fits in the (empty) pipe.
const SMALL: usize = 4096;

/// What one read of a relay direction did.
enum Step {
    /// The source ended.
    End,
    /// `sent` bytes went straight to the sink; `piped` more wait in the pipe.
    Copied { sent: usize, piped: usize },
    /// This many bytes were spliced into the pipe.
    Spliced(usize),
}

async fn one_way(from: &Stream, to: &Stream) -> io::Result<u64> {
    use tokio::io::Interest;
    let (pr, pw) = rustix::pipe::pipe_with(
        rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC,
    )?;
    let capacity = rustix::pipe::fcntl_setpipe_size(&pw, CHUNK).unwrap_or(64 * 1024);
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    let (mut in_pipe, mut total) = (0usize, 0u64);
    // Conversations mostly open with small messages; bulk shows itself by filling the buffer.
    let mut small = true;
    loop {
        // Read only into an empty pipe: then `EAGAIN` can only mean "the socket has nothing",
        // and tokio's readiness (cleared on `WouldBlock`) stays true to the socket.
        if in_pipe == 0 {
            let r = from.try_io(Interest::READABLE, || {
                if small {
                    return copy_small(from, to, &pw);
                }
                match splice(from, None, &pw, None, capacity, flags)? {
                    0 => Ok(Step::End),
                    n => Ok(Step::Spliced(n)),
                }
            });
            match r {
                Ok(Step::End) => {
                    return match rustix::net::shutdown(to, rustix::net::Shutdown::Write) {
                        Err(rustix::io::Errno::NOTCONN) | Ok(()) => Ok(total),
                        Err(e) => Err(e.into()),
                    };
                }
                Ok(Step::Copied { sent, piped }) => {
                    total += sent as u64;
                    small = sent + piped < SMALL;
                    in_pipe = piped;
                    if piped == 0 {
                        continue;
                    }
                }
                Ok(Step::Spliced(n)) => {
                    small = n < SMALL;
                    in_pipe = n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    from.readable().await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
        }
        // The pipe holds data, so `EAGAIN` here can only be the socket's.
        let r = to.try_io(Interest::WRITABLE, || {
            splice(&pr, None, to, None, in_pipe, flags).map_err(io::Error::from)
        });
        match r {
            Ok(n) => {
                in_pipe -= n;
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => to.writable().await?,
            Err(e) => return Err(e),
        }
    }
}

/// One read of at most [`SMALL`] bytes from `from`, sent on to `to` at once; what `to`
/// cannot take now goes into the empty `pipe` (a page always fits), ahead of anything read
/// later. Only the read's `EAGAIN` comes back as `WouldBlock`: it is `from`'s readiness.
fn copy_small(from: &Stream, to: &Stream, pipe: &OwnedFd) -> io::Result<Step> {
    // Left uninitialised (rustix hands back only what the read filled): no page-sized
    // memset per request.
    let mut page = [std::mem::MaybeUninit::<u8>::uninit(); SMALL];
    let buf = loop {
        match rustix::io::read(from, &mut page) {
            Ok(([], _)) => return Ok(Step::End),
            Ok((filled, _)) => break filled,
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    };
    let n = buf.len();
    let mut sent = 0;
    while sent < n {
        match rustix::net::send(to, &buf[sent..n], rustix::net::SendFlags::NOSIGNAL) {
            Ok(m) => sent += m,
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let mut piped = 0;
                while sent + piped < n {
                    match rustix::io::write(pipe, &buf[sent + piped..n]) {
                        Ok(m) => piped += m,
                        Err(rustix::io::Errno::INTR) => {}
                        Err(e) => {
                            return Err(io::Error::other(format!(
                                "cannot keep bytes for a full peer in the relay's pipe: {e}"
                            )))
                        }
                    }
                }
                return Ok(Step::Copied { sent, piped });
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Step::Copied { sent, piped: 0 })
}
