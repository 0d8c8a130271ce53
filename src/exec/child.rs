//! One child process: started in its own process group (or, on a pseudo-terminal, its own
//! session), its pipes as one duplex for the pump, and everything it started ended when the
//! connection ends.
//!
//! Why a process group: a shell child that starts `sleep 100 &` leaves a grandchild holding
//! the pipes; ending only the direct child would orphan it (nmap/nmap#2163). Signalling the
//! group reaches every process the program started that did not leave it on purpose. sockit
//! becomes a child subreaper too, so those grandchildren are reparented to it and reaped
//! here, not left as zombies of an init that may not reap.

use std::future::Future;
use std::io;
#[cfg(unix)]
use std::os::fd::AsFd;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
#[cfg(unix)]
use std::sync::Once;
use std::task::{Context, Poll};
use std::time::Duration;

#[cfg(unix)]
use rustix::process::{Pid, Signal, WaitOptions};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
#[cfg(unix)]
use tokio::process::Child;
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

use super::program::{Origin, Program};

/// How long a process group has between SIGTERM and SIGKILL.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
/// How long a program's session has between SIGHUP and SIGTERM (`--pty`).
#[cfg(unix)]
const HANGUP_GRACE: Duration = Duration::from_secs(1);
/// How often the group is looked at while it winds down.
#[cfg(unix)]
const POLL: Duration = Duration::from_millis(20);

/// The started program as this system holds it: tokio's child on Unix (its group is
/// signalled by id); on Windows the child in its Job object, which ends the whole tree.
#[cfg(unix)]
type Proc = Child;
#[cfg(not(unix))]
type Proc = Box<dyn process_wrap::tokio::ChildWrapper>;

/// A started child: the process, what it started (its group, or its session on a
/// pseudo-terminal), and whether it has exited.
pub struct Running {
    child: Proc,
    #[cfg(unix)]
    members: Option<Members>,
    exited: CancellationToken,
    status: Option<ExitStatus>,
}

/// The processes a program's end reaches.
#[cfg(unix)]
#[derive(Debug, Clone, Copy)]
enum Members {
    /// Its process group (`--exec`): what it started, unless they left the group.
    Group(Pid),
    /// Its session (`--pty`): every job of a shell with job control, each in a group of its
    /// own, as a terminal's hangup reaches them.
    Session(Pid),
}

#[cfg(unix)]
impl Members {
    fn signal(self, sig: Signal) {
        match self {
            Members::Group(pgid) => match rustix::process::kill_process_group(pgid, sig) {
                Ok(()) | Err(rustix::io::Errno::SRCH) => {}
                Err(e) => tracing::debug!(error = %e, "cannot signal the child's process group"),
            },
            Members::Session(sid) => {
                for pid in session_members(sid) {
                    let _ = rustix::process::kill_process(pid, sig);
                }
            }
        }
    }

    /// Reaps the members that were reparented to us and have exited. Called only once tokio
    /// has reaped the program itself, so a wait here never takes its status.
    fn reap(self) {
        match self {
            Members::Group(pgid) => {
                while let Ok(Some(_)) = rustix::process::waitpgid(pgid, WaitOptions::NOHANG) {}
            }
            Members::Session(sid) => {
                for pid in session_members(sid) {
                    let _ = rustix::process::waitpid(Some(pid), WaitOptions::NOHANG);
                }
            }
        }
    }

    fn any_left(self) -> bool {
        match self {
            Members::Group(pgid) => rustix::process::test_kill_process_group(pgid).is_ok(),
            Members::Session(sid) => !session_members(sid).is_empty(),
        }
    }
}

/// The processes of session `sid`, found in /proc (a session has no signal of its own).
#[cfg(unix)]
fn session_members(sid: Pid) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| session_of(pid) == Some(sid.as_raw_nonzero().get()))
        .filter_map(Pid::from_raw)
        .collect()
}

/// The session of process `pid`, from /proc/PID/stat (getsid would not do: kernel threads
/// are in session 0, which no `Pid` can hold).
#[cfg(unix)]
fn session_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "PID (COMM) STATE PPID PGRP SESSION ...": COMM may hold spaces and parentheses.
    let fields = &stat[stat.rfind(')')? + 1..];
    fields.split_ascii_whitespace().nth(3)?.parse().ok()
}

/// Makes sockit the reaper of what its programs leave behind: grandchildren whose parent
/// exited are reparented to it and reaped here, not left as zombies of an init that may
/// not reap.
#[cfg(unix)]
fn become_subreaper() {
    static SUBREAPER: Once = Once::new();
    SUBREAPER.call_once(|| {
        #[cfg(target_os = "linux")]
        if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
            tracing::debug!(error = %e, "cannot become a child subreaper");
        }
    });
}

/// Where a program's stdin comes from.
pub enum Input {
    /// A pipe sockit writes the peer's bytes into.
    Piped,
    /// The connection's socket itself, in blocking mode: the program reads the peer
    /// directly, with no copy through sockit and the peer's EOF as its own.
    #[cfg(unix)]
    Socket(std::os::fd::OwnedFd),
}

/// Starts `program` for the connection `origin` describes, stdin from `input`, stdout piped,
/// stderr shared with sockit, in a new process group.
///
/// # Errors
/// `spawn` failing (out of processes, the program removed since start).
pub fn spawn(program: &Program, origin: &Origin, input: Input) -> io::Result<(Running, ChildIo)> {
    #[cfg(unix)]
    become_subreaper();
    let argv = program.argv();
    let mut cmd = Command::new(program.path());
    // The name as the user gave it, not the path found for it (`ps`, busybox's applets).
    #[cfg(unix)]
    cmd.arg0(&argv[0]);
    cmd.args(&argv[1..])
        .envs(origin.env())
        .stdin(match input {
            Input::Piped => Stdio::piped(),
            #[cfg(unix)]
            Input::Socket(fd) => Stdio::from(fd),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    #[cfg(unix)]
    cmd.process_group(0);
    #[cfg(unix)]
    let mut child = cmd.spawn()?;
    #[cfg(unix)]
    let (stdin, stdout) = (child.stdin.take(), child.stdout.take());
    #[cfg(not(unix))]
    let mut child = {
        let mut wrapped = process_wrap::tokio::CommandWrap::from(cmd);
        wrapped.wrap(process_wrap::tokio::JobObject);
        wrapped.spawn()?
    };
    #[cfg(not(unix))]
    let (stdin, stdout) = (child.stdin().take(), child.stdout().take());
    let Some(stdout) = stdout else {
        return Err(io::Error::other("the child's pipes were not made"));
    };
    #[cfg(unix)]
    let running = Running::new(child, Members::Group);
    #[cfg(not(unix))]
    let running = Running::new(child);
    let io = ChildIo {
        out: stdout,
        input: stdin,
        exited: running.exited.clone(),
        wait_exit: Box::pin(running.exited.clone().cancelled_owned()),
        warned: false,
        #[cfg(not(unix))]
        last_output: None,
    };
    Ok((running, io))
}

/// Starts a program that [`super::pty`] put on a pseudo-terminal as a session's leader.
#[cfg(unix)]
pub(super) fn session_leader(child: Child) -> Running {
    become_subreaper();
    Running::new(child, Members::Session)
}

impl Running {
    /// Where there are no process groups (Windows): the program alone.
    #[cfg(not(unix))]
    fn new(child: Proc) -> Running {
        Running {
            child,
            exited: CancellationToken::new(),
            status: None,
        }
    }

    #[cfg(unix)]
    fn new(child: Child, members: fn(Pid) -> Members) -> Running {
        let leader = child.id().and_then(|id| Pid::from_raw(id as i32));
        Running {
            child,
            members: leader.map(members),
            exited: CancellationToken::new(),
            status: None,
        }
    }

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
            // The program itself (on Windows its job's wait would wait for the whole tree).
            #[cfg(unix)]
            let waited = self.child.wait().await;
            #[cfg(not(unix))]
            let waited = self.child.inner_mut().wait().await;
            match waited {
                Ok(s) => self.status = Some(s),
                Err(e) => tracing::debug!(error = %e, "cannot wait for the child"),
            }
        }
        self.exited.cancel();
    }

    /// Ends the program and everything it started (Windows: its Job object is terminated,
    /// at once; there is no SIGTERM to ask first).
    #[cfg(not(unix))]
    pub async fn end(mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
        // The job, not only the program: what it left running in the background goes too.
        if let Err(e) = self.child.start_kill() {
            tracing::debug!(error = %e, "cannot end the program's job");
        }
        if self.status.is_none() {
            self.status = self.child.wait().await.ok();
        }
        self.status
    }

    /// Ends the program and everything it started: its group gets SIGTERM, then SIGKILL
    /// after [`TERM_GRACE`] for what is still there; a session (`--pty`) gets SIGHUP first,
    /// as a terminal's hangup would send; every process reaped. Returns the program's exit
    /// status.
    #[cfg(unix)]
    pub async fn end(mut self) -> Option<ExitStatus> {
        let Some(members) = self.members else {
            return self.child.wait().await.ok();
        };
        let stages: &[(Signal, Duration)] = match members {
            Members::Group(_) => &[(Signal::TERM, TERM_GRACE)],
            Members::Session(_) => &[(Signal::HUP, HANGUP_GRACE), (Signal::TERM, TERM_GRACE)],
        };
        for &(sig, grace) in stages {
            members.signal(sig);
            let deadline = tokio::time::Instant::now() + grace;
            loop {
                if self.status.is_none() {
                    if let Ok(Some(s)) = self.child.try_wait() {
                        self.status = Some(s);
                    }
                }
                // Only once the program itself is reaped (by tokio): a wait on the group
                // could otherwise take its status from under tokio.
                if self.status.is_some() {
                    members.reap();
                    if !members.any_left() {
                        return self.status;
                    }
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
        }
        tracing::debug!(?members, "still running after SIGTERM; SIGKILL");
        members.signal(Signal::KILL);
        if self.status.is_none() {
            self.status = self.child.wait().await.ok();
        }
        // Killed processes need a moment to become reapable.
        for _ in 0..50 {
            members.reap();
            if !members.any_left() {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        self.status
    }
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
    /// Windows: once the program has exited, how long its output may still take to come
    /// through the pipe's reader (a pipe has no non-blocking read there).
    #[cfg(not(unix))]
    last_output: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// Windows: what a program wrote before it exited reaches us within this.
#[cfg(not(unix))]
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

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
        #[cfg(unix)]
        return read_what_is_left(this.out.as_fd(), buf);
        // Windows: what is still on its way within the grace, then the end (a background
        // process may hold the pipe for ever).
        #[cfg(not(unix))]
        {
            let grace = this
                .last_output
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(OUTPUT_GRACE)));
            match grace.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Ok(())),
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

/// After the program exited: what is left in its output, read straight from `fd` (tokio
/// may not have seen it become readable yet). Nothing there, or a terminal nobody holds any
/// more (EIO), is the end of its output.
#[cfg(unix)]
pub(super) fn read_what_is_left(
    fd: std::os::fd::BorrowedFd<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    match rustix::io::read(fd, buf.initialize_unfilled()) {
        Ok(n) => {
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
        Err(rustix::io::Errno::AGAIN | rustix::io::Errno::IO) => Poll::Ready(Ok(())),
        Err(e) => Poll::Ready(Err(e.into())),
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

/// How a connection through a program went, for [`ended`]: its end, and the bytes each way
/// that sockit saw (none of the peer's when the program read the socket itself).
pub struct Outcome {
    pub end: &'static str,
    pub sent: u64,
    pub received: Option<u64>,
}

/// Logs a program's end (`-v`), and turns a failed connection into the command's error.
///
/// # Errors
/// The connection's failure (a reset), naming the peer.
pub fn ended(
    peer: &crate::net::Peer,
    started: std::time::Instant,
    status: Option<ExitStatus>,
    result: io::Result<Outcome>,
) -> crate::error::Result<()> {
    let duration_ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(o) => {
            tracing::info!(%peer, bytes_out = o.sent, bytes_in = o.received, duration_ms,
                end = o.end, status = %describe(status), "program ended");
            Ok(())
        }
        Err(e) => {
            tracing::info!(%peer, error = %crate::error::describe_io(&e), duration_ms,
                status = %describe(status), "program ended");
            Err(crate::error::Error::conversation(peer, &e))
        }
    }
}

/// The exit status in words, for `-v` logs.
pub fn describe(status: Option<ExitStatus>) -> String {
    #[cfg(unix)]
    use std::os::unix::process::ExitStatusExt;
    #[cfg(unix)]
    let signal = |s: &ExitStatus| s.signal();
    #[cfg(not(unix))]
    let signal = |_: &ExitStatus| None::<i32>;
    match status {
        None => "unknown".into(),
        Some(s) => match (s.code(), signal(&s)) {
            (Some(c), _) => format!("exit {c}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => s.to_string(),
        },
    }
}
