//! One child process: started in its own process group, its pipes as one duplex for the
//! pump, and its whole group ended when the connection ends.
//!
//! Why a process group: a shell child that starts `sleep 100 &` leaves a grandchild holding
//! the pipes; ending only the direct child would orphan it (nmap/nmap#2163). Signalling the
//! group reaches every process the program started that did not leave it on purpose. sockit
//! becomes a child subreaper too, so those grandchildren are reparented to it and reaped
//! here, not left as zombies of an init that may not reap.

use std::future::Future;
use std::io;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::sync::Once;
use std::task::{Context, Poll};
use std::time::Duration;

use rustix::process::{Pid, Signal, WaitOptions};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::{Origin, Program};

/// How long a process group has between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// How often the group is looked at while it winds down.
const POLL: Duration = Duration::from_millis(20);

/// A started child: the process, its group, and whether it has exited.
pub struct Running {
    child: Child,
    pgid: Option<Pid>,
    exited: CancellationToken,
    status: Option<ExitStatus>,
}

/// Starts `program` for the connection `origin` describes, stdin and stdout piped, stderr
/// shared with sockit, in a new process group.
///
/// # Errors
/// `spawn` failing (out of processes, the program removed since start).
pub fn spawn(program: &Program, origin: &Origin) -> io::Result<(Running, ChildIo)> {
    static SUBREAPER: Once = Once::new();
    SUBREAPER.call_once(|| {
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::debug!(error = %e, "cannot become a child subreaper");
        }
    });
    let argv = program.argv();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .envs(origin.env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pgid = child.id().and_then(|id| Pid::from_raw(id as i32));
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(io::Error::other("the child's pipes were not made"));
    };
    let exited = CancellationToken::new();
    let io = ChildIo {
        out: stdout,
        input: Some(stdin),
        exited: exited.clone(),
        wait_exit: Box::pin(exited.clone().cancelled_owned()),
        warned: false,
    };
    Ok((
        Running {
            child,
            pgid,
            exited,
            status: None,
        },
        io,
    ))
}

impl Running {
    /// Fires when the program has exited (the pump ends with its output then).
    pub fn exit_token(&self) -> CancellationToken {
        self.exited.clone()
    }

    /// The process id, for logs.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Resolves when the program exits (its output may still be in the pipe), and tells
    /// its [`ChildIo`] so that its output ends once the pipe is empty, even if a background
    /// process still holds it open.
    pub async fn exited(&mut self) {
        if self.status.is_none() {
            match self.child.wait().await {
                Ok(s) => self.status = Some(s),
                Err(e) => tracing::debug!(error = %e, "cannot wait for the child"),
            }
        }
        self.exited.cancel();
    }

    /// Ends the program and everything it started in its group: SIGTERM, then SIGKILL
    /// after [`TERM_GRACE`] for what is still there; every process reaped. Returns the
    /// program's exit status.
    pub async fn end(mut self) -> Option<ExitStatus> {
        let Some(pgid) = self.pgid else {
            return self.child.wait().await.ok();
        };
        signal_group(pgid, Signal::TERM);
        let deadline = tokio::time::Instant::now() + TERM_GRACE;
        loop {
            if self.status.is_none() {
                if let Ok(Some(s)) = self.child.try_wait() {
                    self.status = Some(s);
                }
            }
            // Only once the program itself is reaped (by tokio): a wait on the group could
            // otherwise take its status from under tokio.
            if self.status.is_some() {
                reap_group(pgid);
                if rustix::process::test_kill_process_group(pgid).is_err() {
                    break;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::debug!(
                    pgid = pgid.as_raw_nonzero().get(),
                    "still running after SIGTERM; SIGKILL"
                );
                signal_group(pgid, Signal::KILL);
                if self.status.is_none() {
                    self.status = self.child.wait().await.ok();
                }
                // Killed processes need a moment to become reapable.
                for _ in 0..50 {
                    reap_group(pgid);
                    if rustix::process::test_kill_process_group(pgid).is_err() {
                        break;
                    }
                    tokio::time::sleep(POLL).await;
                }
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        self.status
    }
}

fn signal_group(pgid: Pid, sig: Signal) {
    match rustix::process::kill_process_group(pgid, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => tracing::debug!(error = %e, "cannot signal the child's process group"),
    }
}

/// Reaps the members of `pgid` that were reparented to us and have exited.
fn reap_group(pgid: Pid) {
    while let Ok(Some(_)) = rustix::process::waitpgid(pgid, WaitOptions::NOHANG) {}
}

/// The child's stdout (read) and stdin (write) as one duplex, the shape the pump takes.
///
/// - Shutting down the write side closes the child's stdin: the peer's EOF becomes the
///   program's EOF.
/// - Once the program has exited, reading ends as soon as the pipe is empty: what it wrote
///   is in the pipe already, and a background process holding the pipe open must not keep
///   the connection.
/// - Bytes for a program that stopped reading (its stdin closed) are dropped, as they
///   would be by a pipe to nobody; the connection still delivers what the program writes.
pub struct ChildIo {
    out: ChildStdout,
    input: Option<ChildStdin>,
    exited: CancellationToken,
    wait_exit: Pin<Box<WaitForCancellationFutureOwned>>,
    warned: bool,
}

impl AsyncRead for ChildIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Poll::Ready(r) = Pin::new(&mut this.out).poll_read(cx, buf) {
            return Poll::Ready(r);
        }
        if !this.exited.is_cancelled() && this.wait_exit.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        // Exited: read what is left straight from the pipe (tokio may not have seen it
        // become readable yet); empty means its output is over.
        match rustix::io::read(this.out.as_fd(), buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Err(rustix::io::Errno::AGAIN) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e.into())),
        }
    }
}

impl AsyncWrite for ChildIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let Some(input) = this.input.as_mut() else {
            return Poll::Ready(Ok(data.len()));
        };
        match Pin::new(input).poll_write(cx, data) {
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => {
                if !this.warned {
                    tracing::debug!("the program stopped reading; what the peer sends is dropped");
                    this.warned = true;
                }
                this.input = None;
                Poll::Ready(Ok(data.len()))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.input.as_mut() {
            Some(i) => match Pin::new(i).poll_flush(cx) {
                Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe => Poll::Ready(Ok(())),
                other => other,
            },
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Dropping the pipe is what the program sees as EOF.
        self.input = None;
        Poll::Ready(Ok(()))
    }
}

/// The exit status in words, for `-v` logs.
pub fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        None => "unknown".into(),
        Some(s) => match (s.code(), s.signal()) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => s.to_string(),
        },
    }
}
