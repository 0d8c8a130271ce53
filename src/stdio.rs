//! stdin and stdout as async byte streams, each served by its own thread.
//!
//! Reading a terminal or a pipe blocks in the kernel, and tokio's own stdin hands every read
//! to the blocking pool (see tokio's `io/stdin.rs`). One dedicated thread per direction is
//! simpler and faster: it reads or writes large chunks and talks to the async side through a
//! small bounded channel, so a slow consumer slows the producer instead of growing memory.
//! The stdin thread is never joined: a process may exit while a terminal read is pending.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::thread::JoinHandle;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use crate::error::stdout_closed;

/// Size of one read from stdin: large reads keep bulk transfers cheap.
const CHUNK: usize = 128 * 1024;
/// Chunks in flight between a stdio thread and the async side.
const DEPTH: usize = 4;

/// The input side: stdin (read by a thread), a fixed text (`--send`), or nothing.
#[derive(Debug)]
pub struct Input {
    /// `None` until the first read: stdin's thread starts late, so that the zero-copy path
    /// may take the descriptor instead.
    rx: Option<mpsc::Receiver<io::Result<Bytes>>>,
    pending: Bytes,
    terminal: bool,
    /// `--raw`: input ends at this byte (`Ctrl-]`), which cancels the token.
    escape: Option<(u8, tokio_util::sync::CancellationToken)>,
    /// Typed input: told at the first read, so that the editor takes the terminal only
    /// once the conversation has begun (what is said before, such as the readiness line,
    /// is not drawn over).
    begun: Option<std::sync::mpsc::Sender<()>>,
}

impl Input {
    /// Starts reading the process's stdin on its own thread.
    pub fn stdin() -> Input {
        Input {
            rx: None,
            pending: Bytes::new(),
            terminal: io::stdin().is_terminal(),
            escape: None,
            begun: None,
        }
    }

    /// The process's stdin, ending at the byte `escape` (which is not passed on): then
    /// `left` is cancelled (`--raw`'s `Ctrl-]`).
    pub fn stdin_until(escape: u8, left: tokio_util::sync::CancellationToken) -> Input {
        Input {
            escape: Some((escape, left)),
            ..Input::stdin()
        }
    }

    /// True when this is the process's stdin and nothing has read it yet, so the zero-copy
    /// path may use the descriptor directly.
    pub fn is_untouched_stdin(&self) -> bool {
        self.rx.is_none() && self.escape.is_none()
    }

    fn rx(&mut self) -> &mut mpsc::Receiver<io::Result<Bytes>> {
        if let Some(begun) = self.begun.take() {
            let _ = begun.send(());
        }
        let escape = self.escape.clone();
        self.rx.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(DEPTH);
            let spawned = std::thread::Builder::new()
                .name("sockit-stdin".into())
                .spawn(move || read_stdin(&tx, escape));
            if let Err(e) = spawned {
                tracing::warn!(error = %crate::error::describe_io(&e), "cannot start the stdin thread; treating stdin as empty");
            }
            rx
        })
    }

    /// Input that is exactly `data`, then end of input (`--send TEXT`).
    pub fn from_bytes(data: impl Into<Bytes>) -> Input {
        let (tx, rx) = mpsc::channel(1);
        let data = data.into();
        if !data.is_empty() {
            let _ = tx.try_send(Ok(data));
        }
        Input {
            rx: Some(rx),
            pending: Bytes::new(),
            terminal: false,
            escape: None,
            begun: None,
        }
    }

    /// Lines a person types, edited at the terminal (see [`crate::terminal::edit`]): the
    /// channel's end is the end of input; `begun` is told at the first read.
    pub fn typed(
        rx: mpsc::Receiver<io::Result<Bytes>>,
        begun: std::sync::mpsc::Sender<()>,
    ) -> Input {
        Input {
            rx: Some(rx),
            pending: Bytes::new(),
            terminal: true,
            escape: None,
            begun: Some(begun),
        }
    }

    /// True when a person types the input: the peer's EOF then ends a session at once.
    pub fn is_terminal(&self) -> bool {
        self.terminal
    }

    /// The next chunk as read, or `None` at end of input.
    pub async fn next_chunk(&mut self) -> Option<io::Result<Bytes>> {
        if !self.pending.is_empty() {
            return Some(Ok(std::mem::take(&mut self.pending)));
        }
        self.rx().recv().await
    }
}

fn read_stdin(
    tx: &mpsc::Sender<io::Result<Bytes>>,
    escape: Option<(u8, tokio_util::sync::CancellationToken)>,
) {
    let stdin = io::stdin();
    let mut stdin = stdin.lock();
    loop {
        let mut buf = BytesMut::zeroed(CHUNK);
        match stdin.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if let Some((byte, left)) = &escape {
                    if let Some(at) = buf.iter().position(|b| b == byte) {
                        buf.truncate(at);
                        if !buf.is_empty() {
                            let _ = tx.blocking_send(Ok(buf.freeze()));
                        }
                        left.cancel();
                        return;
                    }
                }
                if tx.blocking_send(Ok(buf.freeze())).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.blocking_send(Err(crate::error::stdio_failed("cannot read stdin", &e)));
                return;
            }
        }
    }
}

impl AsyncRead for Input {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pending.is_empty() {
            match ready!(self.rx().poll_recv(cx)) {
                Some(Ok(b)) => self.pending = b,
                Some(Err(e)) => return Poll::Ready(Err(e)),
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

/// The output side: a cheap, cloneable handle that queues chunks for the stdout thread.
///
/// Each [`Output::write`] reaches stdout whole and in order, so whole lines from different
/// clients never interleave.
#[derive(Debug, Clone)]
pub struct Output {
    tx: mpsc::Sender<Bytes>,
}

/// The thread that writes stdout; [`StdoutThread::finish`] waits until all was written.
#[derive(Debug)]
pub struct StdoutThread(Option<JoinHandle<Option<io::Error>>>);

impl Output {
    /// Starts the stdout thread. Keep the [`StdoutThread`] to flush at exit.
    pub fn stdout() -> (Output, StdoutThread) {
        let (tx, mut rx) = mpsc::channel::<Bytes>(DEPTH * 4);
        let handle = stdout_file().and_then(|mut out| {
            std::thread::Builder::new()
                .name("sockit-stdout".into())
                .spawn(move || {
                    while let Some(chunk) = rx.blocking_recv() {
                        if let Err(e) = out.write_all(&chunk) {
                            // Stop taking output, which every writer sees as
                            // `ErrorKind::StdoutClosed`. A reader that went away
                            // (`| head`) is the end of the job; anything else (a full
                            // disk) is a failure that `finish` reports.
                            return (e.kind() != io::ErrorKind::BrokenPipe).then_some(e);
                        }
                    }
                    out.flush().err()
                })
        });
        let handle = match handle {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %crate::error::describe_io(&e), "cannot start the stdout thread; output is lost");
                None
            }
        };
        (Output { tx }, StdoutThread(handle))
    }

    /// An output whose chunks arrive on a channel instead of stdout (for tests and embedding).
    pub fn channel(depth: usize) -> (Output, mpsc::Receiver<Bytes>) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        (Output { tx }, rx)
    }

    /// Queues `data` for stdout, waiting while the queue is full.
    ///
    /// # Errors
    /// `BrokenPipe` carrying [`crate::ErrorKind::StdoutClosed`] once stdout's reader is gone.
    pub async fn write(&self, data: Bytes) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.tx.send(data).await.map_err(|_| stdout_closed())
    }

    /// Resolves when stdout's reader has gone away.
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// An [`AsyncWrite`] view for the byte pump; shutting it down ends this writer only.
    pub fn writer(&self) -> OutputWriter {
        OutputWriter(PollSender::new(self.tx.clone()))
    }
}

impl StdoutThread {
    /// The thread that writes another output (the line editor's printer).
    pub(crate) fn from_thread(handle: JoinHandle<Option<io::Error>>) -> StdoutThread {
        StdoutThread(Some(handle))
    }

    /// Waits until everything queued was written. Call after every [`Output`] was dropped.
    ///
    /// Returns why stdout refused bytes, when it did for another reason than its reader
    /// leaving (`>/dev/full`: no space left on device), so the loss is reported.
    pub fn finish(mut self) -> Option<io::Error> {
        self.0.take().and_then(|h| h.join().ok().flatten())
    }
}

/// [`AsyncWrite`] into an [`Output`].
#[derive(Debug)]
pub struct OutputWriter(PollSender<Bytes>);

impl AsyncWrite for OutputWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(self.0.poll_reserve(cx)).map_err(|_| stdout_closed())?;
        self.0
            .send_item(Bytes::copy_from_slice(buf))
            .map_err(|_| stdout_closed())?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.close();
        Poll::Ready(Ok(()))
    }
}

/// stdin and stdout as one duplex stream, for the byte pump.
#[derive(Debug)]
pub struct Stdio {
    /// Where bytes for the peer come from.
    pub input: Input,
    /// Where the peer's bytes go.
    pub output: OutputWriter,
}

impl AsyncRead for Stdio {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.input).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stdio {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.output).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.output).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.output).poll_shutdown(cx)
    }
}

/// stdout as a file of its own (a duplicate of the descriptor or handle), for the stdout
/// thread: written with no lock and no line buffering.
fn stdout_file() -> io::Result<File> {
    own_copy(io::stdout())
}

/// stdin as a file of its own, to ask what it is (a regular file has a size).
pub(crate) fn stdin_file() -> io::Result<File> {
    own_copy(io::stdin())
}

/// A duplicate of a standard stream's descriptor (Unix) or handle (Windows), as a file.
#[cfg(unix)]
fn own_copy(stream: impl std::os::fd::AsFd) -> io::Result<File> {
    stream.as_fd().try_clone_to_owned().map(File::from)
}

#[cfg(windows)]
fn own_copy(stream: impl std::os::windows::io::AsHandle) -> io::Result<File> {
    stream.as_handle().try_clone_to_owned().map(File::from)
}
