//! The buffered pump: two streams joined both ways through a buffer, each direction
//! ending on its own; what the front door ([`crate::pump`]) says.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use std::sync::Arc;

use crate::dump::{Direction, Traffic};
use crate::lines::Crlf;
use crate::net::explain::Conn;

/// Size of the pump's buffer: large enough for bulk transfers to need few system calls.
const BUF: usize = 128 * 1024;

/// How a pump behaves beyond moving bytes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// End when nothing moved either way for this long.
    pub idle_timeout: Option<Duration>,
    /// End as soon as the remote side's EOF arrives (a person typing on a terminal).
    pub end_on_remote_eof: bool,
    /// Rewrite LF as CRLF on the way from local to remote.
    pub crlf: bool,
    /// `-x`: every chunk dumped (local to remote is "sent").
    pub dump: Option<std::sync::Arc<crate::dump::Traffic>>,
    /// Counters others may watch while bytes move (`--progress`); the pump's own otherwise.
    pub counts: Option<std::sync::Arc<Counts>>,
    /// Which directions move (`--send-only`, `--recv-only`); the other is never touched: not
    /// read, not shut down.
    pub ways: Ways,
    /// The local side is a program that has exited once this fires (`--exec`): when its
    /// output has been passed on, the pump ends without waiting for the remote's EOF.
    pub local_exited: Option<tokio_util::sync::CancellationToken>,
    /// `--explain`: the remote socket's calls (recv, sendall, shutdown).
    pub explain: Option<Arc<Conn>>,
    /// `--explain` for a local side that is a socket too (relay's client).
    pub explain_local: Option<Arc<Conn>>,
    /// `--no-shutdown`: the local side's EOF is not passed on; the pump waits for the
    /// remote's end (or the idle timeout), for peers that end everything at a half-close.
    pub no_shutdown: bool,
}

impl Options {
    /// Nothing but bytes to move: no clock, no `-x`, no `--explain`, no counters, no
    /// rewriting, both directions with the half-close passed on. Only then may plain sockets
    /// take the zero-copy path (splice) instead of the buffered pump: the one rule for
    /// `connect`/`listen` and for joined pairs alike.
    pub fn is_plain(&self) -> bool {
        self.idle_timeout.is_none()
            && !self.end_on_remote_eof
            && !self.crlf
            && self.dump.is_none()
            && self.counts.is_none()
            && self.ways == Ways::Both
            && self.local_exited.is_none()
            && self.explain.is_none()
            && self.explain_local.is_none()
            && !self.no_shutdown
    }
}

/// The directions a pump moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Ways {
    /// Both, each ending on its own.
    #[default]
    Both,
    /// Local to remote only; the pump ends with that direction.
    SendOnly,
    /// Remote to local only; the pump ends with that direction.
    RecvOnly,
}

/// Bytes moved so far, each way.
#[derive(Debug, Default)]
pub struct Counts {
    /// Local to remote.
    pub sent: AtomicU64,
    /// Remote to local.
    pub received: AtomicU64,
}

/// Why a pump ended, when it ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Both directions reached EOF.
    Eof,
    /// The remote side closed and [`Options::end_on_remote_eof`] was set.
    RemoteClosed,
    /// Nothing moved for [`Options::idle_timeout`].
    Idle,
    /// The local program exited and its output was passed on ([`Options::local_exited`]).
    ProgramExited,
    /// A signal ended the conversation.
    Interrupted,
}

impl End {
    /// In words, for logs (`end=idle timeout`, never `end=Idle`).
    pub fn as_str(self) -> &'static str {
        match self {
            End::Eof => "eof",
            End::RemoteClosed => "peer closed",
            End::Idle => "idle timeout",
            End::ProgramExited => "program exited",
            End::Interrupted => "interrupted",
        }
    }
}

/// Bytes moved, and why the pump stopped.
#[derive(Debug, Clone, Copy)]
pub struct Report {
    /// Bytes from local to remote.
    pub sent: u64,
    /// Bytes from remote to local.
    pub received: u64,
    /// Why it ended.
    pub end: End,
    /// The remote ended right after our half-close (within [`QUIET_CLOSE`]) without having
    /// sent a byte: what a proxy that ends the tunnel at a half-close looks like.
    pub quiet_close: bool,
}

impl Report {
    /// A conversation a signal ended: what `counts` saw move (nothing known without them).
    pub fn interrupted(counts: Option<&Counts>) -> Report {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Report {
            sent: counts.map_or(0, |c| load(&c.sent)),
            received: counts.map_or(0, |c| load(&c.received)),
            end: End::Interrupted,
            quiet_close: false,
        }
    }
}

/// Two ends seen this close together may have happened in either order.
const SEEN_TOGETHER: Duration = Duration::from_millis(50);

/// How soon after our half-close a remote's end, with nothing sent, reads as caused by it.
pub const QUIET_CLOSE: Duration = Duration::from_secs(1);

/// The remote's end came after our half-close, within [`QUIET_CLOSE`] of it. "After" allows
/// [`SEEN_TOGETHER`] of the other order, as the two directions finish in whatever order
/// they are polled; a remote that had ended well before (a server that sends nothing, then
/// takes a short upload) is not one that hung up because of our half-close.
pub(super) fn close_together(
    shut: Option<std::time::Instant>,
    remote_end: Option<std::time::Instant>,
) -> bool {
    match (shut, remote_end) {
        (Some(shut), Some(end)) => {
            end + SEEN_TOGETHER >= shut && end.saturating_duration_since(shut) < QUIET_CLOSE
        }
        _ => false,
    }
}

/// How long a failed write waits for the read side to say why the peer went away.
const REASON_GRACE: Duration = Duration::from_millis(200);

/// Moves bytes between `local` and `remote` until both directions end.
///
/// # Errors
/// The first I/O error of either direction (a reset, a closed stdout); the other direction
/// is abandoned, since a failed connection cannot be half-trusted.
pub async fn pump<L, R>(local: L, remote: R, opts: &Options) -> io::Result<Report>
where
    L: AsyncRead + AsyncWrite,
    R: AsyncRead + AsyncWrite,
{
    let r = pump_inner(local, remote, opts).await;
    if let (Err(_), Some(d)) = (&r, &opts.dump) {
        // A failed connection ends in the capture as it ended on the wire.
        d.reset();
    }
    r
}

async fn pump_inner<L, R>(local: L, remote: R, opts: &Options) -> io::Result<Report>
where
    L: AsyncRead + AsyncWrite,
    R: AsyncRead + AsyncWrite,
{
    let (mut lr, mut lw) = tokio::io::split(local);
    let (mut rr, mut rw) = tokio::io::split(remote);
    let activity = Activity::new();
    let counts = opts.counts.clone().unwrap_or_default();
    let (sent, received) = (&counts.sent, &counts.received);
    let mut crlf = opts.crlf.then(Crlf::default);

    let dump = opts.dump.as_deref();
    // Boxed, not pinned in place, so that they can be dropped before the last shutdown.
    let mut up = Box::pin(copy_half(
        &mut lr,
        &mut rw,
        (sent, &activity),
        crlf.as_mut(),
        dump.map(|d| (d, Direction::Sent)),
        (opts.explain_local.as_deref(), opts.explain.as_deref()),
        !opts.no_shutdown,
    ));
    let mut down = Box::pin(copy_half(
        &mut rr,
        &mut lw,
        (received, &activity),
        None,
        dump.map(|d| (d, Direction::Received)),
        (opts.explain.as_deref(), opts.explain_local.as_deref()),
        true,
    ));
    // A direction that is not moved counts as done from the start.
    let (mut up_done, mut down_done) = (opts.ways == Ways::RecvOnly, opts.ways == Ways::SendOnly);
    let (mut shut_at, mut remote_end_at) = (None::<std::time::Instant>, None);

    let end = loop {
        tokio::select! {
            r = &mut up, if !up_done => {
                if let Err(e) = r {
                    // A write the peer refused (reset, broken pipe) often has the peer's
                    // reason waiting on the read side, such as a TLS alert: prefer it.
                    let refused = matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    );
                    if refused && !down_done {
                        if let Ok(Err(why)) = tokio::time::timeout(REASON_GRACE, &mut down).await {
                            return Err(why);
                        }
                    }
                    return Err(e);
                }
                up_done = true;
                shut_at = (!opts.no_shutdown).then(std::time::Instant::now);
            }
            r = &mut down, if !down_done => {
                r?;
                down_done = true;
                remote_end_at = Some(std::time::Instant::now());
                if opts.end_on_remote_eof && !up_done {
                    break End::RemoteClosed;
                }
            }
            () = activity.idle(opts.idle_timeout) => break End::Idle,
            () = fired(opts.local_exited.as_ref()), if up_done && !down_done => break End::ProgramExited,
        }
        if up_done && down_done {
            break End::Eof;
        }
    };
    drop((up, down));
    if shut_at.is_some() && end != End::Eof {
        // Our half-close went out and the pump ends before the remote's: say the end is
        // the whole conversation's (a WebSocket without a half-close sends its Close now).
        let _ = tokio::time::timeout(SHUTDOWN_TIMEOUT, rw.shutdown()).await;
    }
    Ok(Report {
        sent: sent.load(Ordering::Relaxed),
        received: received.load(Ordering::Relaxed),
        end,
        quiet_close: received.load(Ordering::Relaxed) == 0
            && close_together(shut_at, remote_end_at),
    })
}

/// Resolves when `token` fires (the local program exited, a signal came); never without
/// one.
pub(crate) async fn fired(token: Option<&tokio_util::sync::CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}

/// When traffic last moved, shareable between the halves of a connection (and `Send`, so a
/// connection's task can move between worker threads).
#[derive(Debug)]
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    /// Starts the clock now.
    pub fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records traffic now.
    pub fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// When traffic last moved.
    pub fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    /// How long nothing has moved.
    pub fn idle_for(&self) -> Duration {
        self.last().elapsed()
    }

    /// Resolves once nothing has moved for `limit`; never without a limit.
    pub async fn idle(&self, limit: Option<Duration>) {
        let Some(d) = limit else {
            return std::future::pending().await;
        };
        loop {
            tokio::time::sleep_until(self.last() + d).await;
            if self.idle_for() >= d {
                return;
            }
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

async fn copy_half<R, W>(
    reader: &mut R,
    writer: &mut W,
    (count, activity): (&AtomicU64, &Activity),
    mut crlf: Option<&mut Crlf>,
    dump: Option<(&Traffic, Direction)>,
    (read_calls, write_calls): (Option<&Conn>, Option<&Conn>),
    pass_eof: bool,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF];
    loop {
        let n = reader.read(&mut buf).await?;
        if let Some(c) = read_calls {
            c.recv(&buf[..n]);
        }
        if n == 0 {
            break;
        }
        activity.touch();
        let converted;
        let data: &[u8] = match crlf.as_deref_mut() {
            Some(c) => {
                converted = c.convert(&buf[..n]);
                &converted
            }
            None => &buf[..n],
        };
        if let Some((d, dir)) = dump {
            d.record(dir, data);
        }
        if let Some(c) = write_calls {
            c.send(data);
        }
        writer.write_all(data).await?;
        count.fetch_add(n as u64, Ordering::Relaxed);
        activity.touch();
    }
    writer.flush().await?;
    if !pass_eof {
        return Ok(());
    }
    if let Some((d, dir)) = dump {
        d.ended(dir);
    }
    // Pass the EOF on. A peer that is already gone cannot be told; that is not an error.
    // Over TLS this sends close_notify, which a stalled peer may never take: bounded.
    if let Some(c) = write_calls {
        c.shutdown();
    }
    match tokio::time::timeout(SHUTDOWN_TIMEOUT, writer.shutdown()).await {
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer did not take the end of the stream (close_notify) in time",
        )),
        Ok(Err(e)) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        Ok(r) => r,
    }
}

/// How long passing on an EOF (a FIN, or TLS's close_notify) may take.
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[tokio::test]
    async fn both_directions_end_on_their_own() {
        let (local, mut local_peer) = duplex(64);
        let (remote, mut remote_peer) = duplex(64);
        let task = tokio::spawn(async move { pump(local, remote, &Options::default()).await });
        local_peer.write_all(b"up").await.unwrap();
        local_peer.shutdown().await.unwrap();
        let mut got = Vec::new();
        remote_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"up");
        // The remote still answers after our half-close.
        remote_peer.write_all(b"down").await.unwrap();
        remote_peer.shutdown().await.unwrap();
        let mut got = Vec::new();
        local_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"down");
        let report = task.await.unwrap().unwrap();
        assert_eq!((report.sent, report.received, report.end), (2, 4, End::Eof));
        assert!(!report.quiet_close);
    }

    #[test]
    fn only_an_end_after_our_half_close_is_a_quiet_close() {
        let shut = std::time::Instant::now() + Duration::from_secs(5);
        let at = |ms: i64| {
            let d = Duration::from_millis(ms.unsigned_abs());
            Some(if ms < 0 { shut - d } else { shut + d })
        };
        // A server that sent nothing and ended long before our upload finished.
        assert!(!close_together(Some(shut), at(-800)));
        // Seen in the other order by the poll, but together.
        assert!(close_together(Some(shut), at(-10)));
        assert!(close_together(Some(shut), at(300)));
        assert!(!close_together(Some(shut), at(1500)));
        assert!(!close_together(None, at(0)));
    }

    #[tokio::test]
    async fn a_remote_that_ends_at_our_half_close_is_noticed() {
        let (local, mut local_peer) = duplex(64);
        let (remote, mut remote_peer) = duplex(64);
        let task = tokio::spawn(async move { pump(local, remote, &Options::default()).await });
        local_peer.write_all(b"hi").await.unwrap();
        local_peer.shutdown().await.unwrap();
        let mut got = Vec::new();
        remote_peer.read_to_end(&mut got).await.unwrap();
        drop(remote_peer);
        let report = task.await.unwrap().unwrap();
        assert!(report.quiet_close);
    }

    #[tokio::test]
    async fn no_shutdown_keeps_the_remote_open_until_it_ends() {
        let (local, mut local_peer) = duplex(64);
        let (remote, mut remote_peer) = duplex(64);
        let opts = Options {
            no_shutdown: true,
            ..Options::default()
        };
        let task = tokio::spawn(async move { pump(local, remote, &opts).await });
        local_peer.write_all(b"hi").await.unwrap();
        local_peer.shutdown().await.unwrap();
        let mut buf = [0u8; 2];
        remote_peer.read_exact(&mut buf).await.unwrap();
        // No EOF reached the remote: it still answers, then ends.
        let more =
            tokio::time::timeout(Duration::from_millis(100), remote_peer.read(&mut buf)).await;
        assert!(more.is_err(), "the remote saw an end of stream");
        remote_peer.write_all(b"ok").await.unwrap();
        drop(remote_peer);
        let mut got = Vec::new();
        local_peer.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"ok");
        let report = task.await.unwrap().unwrap();
        assert_eq!(report.end, End::Eof);
    }

    #[tokio::test]
    async fn idle_timeout_ends_a_silent_pump() {
        let (local, _lp) = duplex(64);
        let (remote, _rp) = duplex(64);
        let opts = Options {
            idle_timeout: Some(Duration::from_millis(50)),
            ..Options::default()
        };
        let report = pump(local, remote, &opts).await.unwrap();
        assert_eq!(report.end, End::Idle);
    }
}
