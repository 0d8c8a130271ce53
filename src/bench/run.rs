//! The workers of each mode, and the clock and counters they share.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

use super::stats::{histogram, Latency};
use super::{pattern, Config, Mode, Report};
use crate::error::{Error, Result};
use crate::lines::trim_newline;
use crate::net::{Datagram, Stream};

/// Counters shared by every worker of a run.
#[derive(Default)]
struct Shared {
    ops: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    lost: AtomicU64,
    duplicated: AtomicU64,
    reordered: AtomicU64,
    held: AtomicU64,
    first_error: Mutex<Option<String>>,
    latency: Mutex<Option<Histogram<u64>>>,
    /// fanout: from the first line sent to the last one received, so that waiting for the
    /// room to fill (or for lines that never come) is not counted as delivery time.
    span: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Shared {
    fn error(&self, what: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert_with(|| what.to_string());
    }

    fn merge(&self, h: &Histogram<u64>) {
        let mut all = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        match all.as_mut() {
            Some(a) => {
                let _ = a.add(h);
            }
            None => *all = Some(h.clone()),
        }
    }
}

/// Runs one benchmark and reports what it measured.
///
/// # Errors
/// Only a configuration that cannot run (a datagram endpoint for `connect`); failures
/// during the run are counted in the report instead.
pub async fn run(cfg: &Config, shutdown: CancellationToken) -> Result<Report> {
    let bad = |why: &str| {
        Error::new(
            crate::ErrorKind::BadArgument,
            "cannot run this benchmark",
            why,
        )
    };
    if !cfg.target.endpoint().is_stream() && matches!(cfg.mode, Mode::Connect | Mode::Fanout) {
        return Err(bad(
            "connect and fanout need a stream endpoint (tcp, tls, unix)",
        ));
    }
    if !cfg.target.endpoint().is_stream() && cfg.size < 8 {
        return Err(bad(
            "datagram modes need --size of at least 8 (a sequence number)",
        ));
    }
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let deadline = started + cfg.duration;
    let stop = shutdown.child_token();
    let progress = cfg
        .progress
        .then(|| spawn_progress(shared.clone(), stop.clone()));

    let mut workers = JoinSet::new();
    let conns = cfg.conns.max(1);
    let per_conn = cfg.count.map(|c| c.div_ceil(conns as u64));
    match cfg.mode {
        Mode::Fanout => {
            let cfg = cfg.clone();
            let sh = shared.clone();
            workers.spawn(async move {
                if let Err(e) = fanout(&cfg, &sh, deadline).await {
                    sh.error(e);
                }
            });
        }
        Mode::Connect if cfg.hold.is_some() => {
            let cfg = cfg.clone();
            let sh = shared.clone();
            workers.spawn(async move {
                if let Err(e) = hold(&cfg, &sh, deadline).await {
                    sh.error(e);
                }
            });
        }
        mode => {
            for id in 0..conns {
                let cfg = cfg.clone();
                let sh = shared.clone();
                workers.spawn(async move {
                    let job = Job {
                        cfg: &cfg,
                        sh: &sh,
                        id: id as u64,
                        deadline,
                        limit: per_conn,
                    };
                    let r = match (mode, cfg.target.endpoint().is_stream()) {
                        (Mode::Stream, true) => stream(job).await,
                        (Mode::Stream, false) => dgram_stream(job).await,
                        (Mode::Rr, true) => rr(job).await,
                        (Mode::Rr, false) => dgram_rr(job).await,
                        _ => connects(job).await,
                    };
                    if let Err(e) = r {
                        sh.error(e);
                    }
                });
            }
        }
    }
    let all_done = async { while workers.join_next().await.is_some() {} };
    // Workers watch the deadline themselves; this bound catches a stuck peer.
    tokio::select! {
        () = all_done => {}
        () = tokio::time::sleep_until(deadline + cfg.timeout + Duration::from_secs(1)) => {
            shared.error("workers did not finish by the deadline");
        }
        () = shutdown.cancelled() => {}
    }
    stop.cancel();
    if let Some(p) = progress {
        let _ = p.await;
    }
    let latency = shared
        .latency
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(Latency::of);
    let first_error = shared
        .first_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let span = *shared.span.lock().unwrap_or_else(PoisonError::into_inner);
    let elapsed = match span {
        (Some(first), Some(last)) if last > first => last - first,
        _ => started
            .elapsed()
            .min(cfg.duration.max(Duration::from_millis(1))),
    };
    Ok(Report {
        mode: cfg.mode.name(),
        endpoint: cfg.target.endpoint().to_string(),
        conns: cfg.conns,
        elapsed,
        ops: shared.ops.load(Ordering::Relaxed),
        bytes: shared.bytes.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        lost: shared.lost.load(Ordering::Relaxed),
        duplicated: shared.duplicated.load(Ordering::Relaxed),
        reordered: shared.reordered.load(Ordering::Relaxed),
        held: shared.held.load(Ordering::Relaxed),
        latency: if cfg.mode == Mode::Rr { latency } else { None },
        first_error,
    })
}

fn spawn_progress(shared: Arc<Shared>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar =
            indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
        let start = Instant::now();
        let (mut last_ops, mut last_bytes, mut last_t) = (0u64, 0u64, start);
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                () = stop.cancelled() => break,
            }
            let (ops, bytes) = (
                shared.ops.load(Ordering::Relaxed),
                shared.bytes.load(Ordering::Relaxed),
            );
            let dt = last_t.elapsed().as_secs_f64().max(1e-3);
            bar.set_message(format!(
                "{:>5.1}s  {:>10.0} ops/s  {:>8.1} MiB/s  errors {}  lost {}",
                start.elapsed().as_secs_f64(),
                (ops - last_ops) as f64 / dt,
                (bytes - last_bytes) as f64 / dt / 1_048_576.0,
                shared.errors.load(Ordering::Relaxed),
                shared.lost.load(Ordering::Relaxed),
            ));
            bar.tick();
            (last_ops, last_bytes, last_t) = (ops, bytes, Instant::now());
        }
        bar.finish_and_clear();
    })
}

/// Open-loop pacing (`--rate`): request `n` is due at `start + n * every`, and latency counts
/// from then, so a stalled server cannot hide its stall (no coordinated omission).
struct Pacer {
    start: Instant,
    every: Option<Duration>,
}

impl Pacer {
    /// `rate` operations per second; `None` means as fast as answers come.
    fn new(rate: Option<f64>) -> Self {
        Pacer {
            start: Instant::now(),
            every: rate.map(|r| Duration::from_secs_f64(1.0 / r.max(1e-3))),
        }
    }

    /// `--rate` is over all connections; each connection gets its share.
    fn per_conn(cfg: &Config) -> Self {
        Pacer::new(cfg.rate.map(|r| r / cfg.conns.max(1) as f64))
    }

    /// Waits until operation `n` is due and returns when that was (now, when not pacing).
    async fn due(&self, n: u64) -> Instant {
        match self.every {
            Some(every) => {
                let due = self.start + every.mul_f64(n as f64);
                tokio::time::sleep_until(due).await;
                due
            }
            None => Instant::now(),
        }
    }
}

/// What one connection's worker needs: the run's settings and counters, its id (which seeds
/// its byte pattern), when to stop, and how many operations it may do.
#[derive(Clone, Copy)]
struct Job<'a> {
    cfg: &'a Config,
    sh: &'a Shared,
    id: u64,
    deadline: Instant,
    limit: Option<u64>,
}

async fn open(cfg: &Config) -> Result<Stream> {
    Ok(cfg.target.dial().await?.0)
}

fn done(deadline: Instant, n: u64, limit: Option<u64>) -> bool {
    Instant::now() >= deadline || limit.is_some_and(|l| n >= l)
}

/// Writes the pattern; reads it back and checks it (unless `sink`).
async fn stream(job: Job<'_>) -> Result<()> {
    let Job {
        cfg,
        sh,
        id,
        deadline,
        limit,
    } = job;
    let s = open(cfg).await?;
    let (mut r, mut w) = tokio::io::split(s);
    let sent = AtomicU64::new(0);
    let writer_done = tokio::sync::Notify::new();
    let writer = async {
        let mut buf = vec![0u8; cfg.size];
        let mut n = 0;
        while !done(deadline, n, limit) {
            let off = sent.load(Ordering::Relaxed);
            pattern::fill(id, off, &mut buf);
            w.write_all(&buf).await?;
            sent.fetch_add(buf.len() as u64, Ordering::Relaxed);
            sh.ops.fetch_add(1, Ordering::Relaxed);
            if cfg.sink {
                sh.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
            }
            n += 1;
        }
        w.shutdown().await?;
        writer_done.notify_one();
        Ok::<(), io::Error>(())
    };
    let reader = async {
        if cfg.sink {
            // Drain whatever a sink says (nothing, usually) so it never blocks on us.
            let mut buf = vec![0u8; 16 * 1024];
            while r.read(&mut buf).await? > 0 {}
            return Ok(0u64);
        }
        let mut buf = vec![0u8; cfg.size.max(16 * 1024)];
        let mut got = 0u64;
        loop {
            let n = r.read(&mut buf).await?;
            if n == 0 {
                return Ok(got);
            }
            if let Some(at) = pattern::verify(id, got, &buf[..n]) {
                return Err(io::Error::other(format!(
                    "corrupted data at byte {at} of connection {id}"
                )));
            }
            got += n as u64;
            sh.bytes.fetch_add(n as u64, Ordering::Relaxed);
        }
    };
    let reader_bounded = async {
        tokio::pin!(reader);
        tokio::select! {
            r = &mut reader => r,
            () = async {
                writer_done.notified().await;
                tokio::time::sleep(cfg.timeout).await;
            } => Err(io::Error::new(io::ErrorKind::TimedOut, "the echo did not end after our half-close")),
        }
    };
    let (w, r) = tokio::join!(writer, reader_bounded);
    w.map_err(|e| Error::io(format!("connection {id} failed"), &e))?;
    let got = r.map_err(|e| Error::io(format!("connection {id} failed"), &e))?;
    if !cfg.sink {
        let sent = sent.load(Ordering::Relaxed);
        if got < sent {
            sh.lost.fetch_add(sent - got, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Sends `size` bytes, waits for them back, again and again; open-loop with `--rate`.
///
/// The loop is kept lean because the load generator shares the machine with the server it
/// measures: every syscall or timer it spends per exchange is CPU the server does not get.
async fn rr(job: Job<'_>) -> Result<()> {
    let Job {
        cfg,
        sh,
        id,
        deadline,
        limit,
    } = job;
    let mut s = open(cfg).await?;
    let size = cfg.size;
    let mut out = vec![0u8; size];
    // One byte more than an answer: a read that does not fill the buffer tells the reactor
    // the socket is drained, so the next exchange waits without a read(2) that finds nothing.
    let mut back = vec![0u8; size + 1];
    let mut h = histogram();
    let pacer = Pacer::per_conn(cfg);
    let in_flight = Watch::default();
    let work = async {
        let mut n = 0u64;
        let result = loop {
            if done(deadline, n, limit) {
                break Ok(());
            }
            let due = pacer.due(n).await;
            let off = n * size as u64;
            pattern::fill(id, off, &mut out);
            in_flight.start(n);
            let exchange = async {
                s.write_all(&out).await?;
                let mut got = 0;
                while got < size {
                    match s.read(&mut back[got..]).await? {
                        0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                        k => got += k,
                    }
                }
                Ok::<usize, io::Error>(got)
            };
            match exchange.await {
                Ok(got) if got > size => {
                    break Err(Error::new(
                        crate::ErrorKind::Io,
                        format!("connection {id}"),
                        "the server answered more than was sent",
                    ))
                }
                Ok(_) => {}
                Err(e) => break Err(Error::io(format!("connection {id} failed"), &e)),
            }
            in_flight.end();
            if let Some(at) = pattern::verify(id, off, &back[..size]) {
                break Err(Error::new(
                    crate::ErrorKind::Io,
                    format!("connection {id}"),
                    format!("corrupted answer at byte {at}"),
                ));
            }
            let _ = h.record(due.elapsed().as_micros().max(1) as u64);
            n += 1;
            // Shared counters are touched every 64 exchanges, not each one: 100 connections
            // bumping one cache line would make the load generator measure itself.
            if n % 64 == 0 {
                sh.ops.fetch_add(64, Ordering::Relaxed);
                sh.bytes.fetch_add(64 * size as u64, Ordering::Relaxed);
            }
        };
        sh.ops.fetch_add(n % 64, Ordering::Relaxed);
        sh.bytes
            .fetch_add((n % 64) * size as u64, Ordering::Relaxed);
        result
    };
    let result = tokio::select! {
        r = work => r,
        () = in_flight.stalled(cfg.timeout) => {
            sh.lost.fetch_add(1, Ordering::Relaxed);
            Err(Error::new(
                crate::ErrorKind::TimedOut,
                format!("connection {id}"),
                "no answer in time",
            ))
        }
    };
    sh.merge(&h);
    result
}

/// Which exchange of one connection is waiting for its answer, checked by a watchdog.
///
/// One timer per connection and period instead of one per exchange: arming and cancelling
/// a timer for every request costs the load generator more than the answer it waits for.
/// An atomic only because worker tasks must be `Send`: it never leaves its connection's task.
struct Watch(AtomicU64);

impl Default for Watch {
    fn default() -> Self {
        Watch(AtomicU64::new(Watch::IDLE))
    }
}

impl Watch {
    const IDLE: u64 = u64::MAX;

    fn start(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }

    fn end(&self) {
        self.0.store(Watch::IDLE, Ordering::Relaxed);
    }

    /// Returns once the same exchange has been waiting at two checks `timeout` apart: a
    /// stalled answer is noticed after between one and two timeouts.
    async fn stalled(&self, timeout: Duration) {
        let mut seen = Watch::IDLE;
        loop {
            tokio::time::sleep(timeout).await;
            let now = self.0.load(Ordering::Relaxed);
            if now != Watch::IDLE && now == seen {
                return;
            }
            seen = now;
        }
    }
}

/// The datagram with sequence number `seq`: 8 bytes of `seq`, then the pattern.
fn datagram(id: u64, seq: u64, size: usize) -> Vec<u8> {
    let mut d = vec![0u8; size];
    d[..8].copy_from_slice(&seq.to_be_bytes());
    pattern::fill(id, seq * size as u64, &mut d[8..]);
    d
}

fn check_datagram(id: u64, d: &[u8], size: usize) -> Option<u64> {
    if d.len() != size {
        return None;
    }
    let seq = u64::from_be_bytes(d[..8].try_into().ok()?);
    pattern::verify(id, seq * size as u64, &d[8..])
        .is_none()
        .then_some(seq)
}

async fn open_dgram(cfg: &Config) -> Result<Datagram> {
    Ok(cfg.target.dial_datagram().await?.0)
}

/// UDP request/response: a lost answer counts and the next request goes out.
async fn dgram_rr(job: Job<'_>) -> Result<()> {
    let Job {
        cfg,
        sh,
        id,
        deadline,
        limit,
    } = job;
    let sock = open_dgram(cfg).await?;
    let mut back = vec![0u8; cfg.size.max(65_535)];
    let mut h = histogram();
    let pacer = Pacer::per_conn(cfg);
    let mut seq = 0u64;
    while !done(deadline, seq, limit) {
        let due = pacer.due(seq).await;
        let req = datagram(id, seq, cfg.size);
        if let Err(e) = sock.send(&req).await {
            sh.error(format!("send failed: {e}"));
        }
        let wait_for = async {
            loop {
                let n = sock.recv(&mut back).await?;
                match check_datagram(id, &back[..n], cfg.size) {
                    Some(s) if s == seq => return Ok::<bool, io::Error>(true),
                    Some(_) => continue, // a late answer to an earlier request
                    None => return Ok(false),
                }
            }
        };
        match timeout(cfg.timeout, wait_for).await {
            Ok(Ok(true)) => {
                let _ = h.record(due.elapsed().as_micros().max(1) as u64);
                sh.ops.fetch_add(1, Ordering::Relaxed);
                sh.bytes.fetch_add(cfg.size as u64, Ordering::Relaxed);
            }
            Ok(Ok(false)) => sh.error(format!("corrupted datagram on connection {id}")),
            Ok(Err(e)) => sh.error(format!("receive failed: {e}")),
            Err(_) => {
                sh.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        seq += 1;
    }
    sh.merge(&h);
    Ok(())
}

/// UDP throughput against an echo: send as fast as allowed, count and check what returns.
async fn dgram_stream(job: Job<'_>) -> Result<()> {
    let Job {
        cfg,
        sh,
        id,
        deadline,
        limit,
    } = job;
    let sock = open_dgram(cfg).await?;
    let sent = AtomicU64::new(0);
    let sender = async {
        let mut seq = 0u64;
        while !done(deadline, seq, limit) {
            let d = datagram(id, seq, cfg.size);
            if sock.send(&d).await.is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
                sh.ops.fetch_add(1, Ordering::Relaxed);
                if cfg.sink {
                    sh.bytes.fetch_add(d.len() as u64, Ordering::Relaxed);
                }
            }
            seq += 1;
            if seq % 64 == 0 {
                tokio::task::yield_now().await;
            }
        }
    };
    let receiver = async {
        let mut buf = vec![0u8; 65_535];
        let mut got = 0u64;
        loop {
            let grace = deadline + cfg.timeout;
            match tokio::time::timeout_at(grace, sock.recv(&mut buf)).await {
                Ok(Ok(n)) => match check_datagram(id, &buf[..n], cfg.size) {
                    Some(_) => {
                        got += 1;
                        sh.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    None => sh.error(format!("corrupted datagram on connection {id}")),
                },
                Ok(Err(_)) => {}
                Err(_) => return got,
            }
            if Instant::now() >= deadline && got >= sent.load(Ordering::Relaxed) {
                return got;
            }
        }
    };
    if cfg.sink {
        sender.await;
        return Ok(());
    }
    let ((), got) = tokio::join!(sender, receiver);
    let sent = sent.load(Ordering::Relaxed);
    sh.lost
        .fetch_add(sent.saturating_sub(got), Ordering::Relaxed);
    Ok(())
}

/// Opens and closes connections as fast as the target allows.
async fn connects(job: Job<'_>) -> Result<()> {
    let Job {
        cfg,
        sh,
        deadline,
        limit,
        ..
    } = job;
    let mut n = 0;
    while !done(deadline, n, limit) {
        match open(cfg).await {
            Ok(s) => {
                drop(s);
                sh.ops.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => sh.error(e),
        }
        n += 1;
    }
    Ok(())
}

/// Opens `--hold` connections and keeps them until the deadline (memory per connection).
async fn hold(cfg: &Config, sh: &Shared, deadline: Instant) -> Result<()> {
    let want = cfg.hold.unwrap_or(0);
    let mut held = JoinSet::new();
    for _ in 0..want {
        if Instant::now() >= deadline {
            break;
        }
        match open(cfg).await {
            Ok(mut s) => {
                // A quiet client still reads: welcome lines and room notices are taken and
                // dropped, so the server's queues measure a live member, not a dead one.
                held.spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = tokio::time::timeout_at(deadline, async {
                        while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
                    })
                    .await;
                });
                sh.ops.fetch_add(1, Ordering::Relaxed);
                sh.held.store(held.len() as u64, Ordering::Relaxed);
            }
            Err(e) => sh.error(e),
        }
    }
    tokio::time::sleep_until(deadline).await;
    held.shutdown().await;
    Ok(())
}

/// The fan-out line for number `n`; receivers find it after any prefix (`<nick> `).
fn fanout_line(n: u64) -> String {
    format!("fanout-seq {n}\n")
}

/// The number at the end of a fan-out line, after any prefix; no allocation, since a
/// receiver parses every line and the load generator must stay cheaper than the server.
fn parse_fanout(line: &[u8]) -> Option<u64> {
    let line = trim_newline(line);
    let digits = line.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let (head, num) = line.split_at(line.len() - digits);
    if !head.ends_with(b"fanout-seq ") {
        return None;
    }
    num.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// One sender, `conns` receivers; every receiver must get every line once and in order.
async fn fanout(cfg: &Config, sh: &Arc<Shared>, deadline: Instant) -> Result<()> {
    let lines = cfg.count.unwrap_or(1000);
    let synced = Arc::new(AtomicU64::new(0));
    let mut receivers = JoinSet::new();
    for id in 0..cfg.conns.max(1) {
        let s = open(cfg).await?;
        let (sh, synced) = (sh.clone(), synced.clone());
        let grace = cfg.timeout;
        receivers.spawn(async move {
            let r = receive_fanout(s, lines, &sh, &synced, deadline + grace, grace).await;
            if let Err(e) = r {
                sh.error(format!("receiver {id}: {e}"));
            }
        });
    }
    let mut sender = open(cfg).await?;
    let want = cfg.conns.max(1) as u64;
    // Tell receivers apart from the room's own chatter (welcome lines, joins): wait until
    // each has seen a sync line, then start counting.
    while synced.load(Ordering::Relaxed) < want {
        if Instant::now() >= deadline {
            sh.error("not every receiver joined before the deadline");
            return Ok(());
        }
        sender
            .write_all(b"fanout-sync\n")
            .await
            .map_err(|e| Error::io("fanout sender failed", &e))?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pacer = Pacer::new(cfg.rate);
    sh.span.lock().unwrap_or_else(PoisonError::into_inner).0 = Some(Instant::now());
    let mut batch = String::new();
    for n in 0..lines {
        pacer.due(n).await;
        batch.push_str(&fanout_line(n));
        if batch.len() > 16 * 1024 || pacer.every.is_some() || n + 1 == lines {
            sender
                .write_all(batch.as_bytes())
                .await
                .map_err(|e| Error::io("fanout sender failed", &e))?;
            batch.clear();
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    while receivers.join_next().await.is_some() {}
    drop(sender);
    Ok(())
}

async fn receive_fanout(
    mut s: Stream,
    lines: u64,
    sh: &Shared,
    synced: &AtomicU64,
    until: Instant,
    quiet: Duration,
) -> io::Result<()> {
    let mut seen = vec![false; lines as usize];
    let (mut unique, mut highest, mut is_synced) = (0u64, None::<u64>, false);
    let mut buf = vec![0u8; 64 * 1024];
    // What was read and not yet split into lines.
    let mut tail: Vec<u8> = Vec::with_capacity(128 * 1024);
    let mut last = None;
    while unique < lines {
        // Once counting, a silence of `quiet` means the rest is lost: stop waiting.
        let limit = if is_synced {
            until.min(Instant::now() + quiet)
        } else {
            until
        };
        let n = match tokio::time::timeout_at(limit, s.read(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        let before = unique;
        tail.extend_from_slice(&buf[..n]);
        let mut rest = &tail[..];
        while let Some(at) = rest.iter().position(|b| *b == b'\n') {
            let line = &rest[..at];
            rest = &rest[at + 1..];
            if !is_synced && trim_newline(line).ends_with(b"fanout-sync") {
                is_synced = true;
                synced.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(k) = parse_fanout(line) else {
                continue;
            };
            let Some(slot) = seen.get_mut(k as usize) else {
                continue;
            };
            if *slot {
                sh.duplicated.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            *slot = true;
            unique += 1;
            if highest.is_some_and(|h| k < h) {
                sh.reordered.fetch_add(1, Ordering::Relaxed);
            }
            highest = highest.max(Some(k));
        }
        let done = tail.len() - rest.len();
        tail.drain(..done);
        if unique > before {
            // One shared counter update per read, not per line.
            sh.ops.fetch_add(unique - before, Ordering::Relaxed);
            last = Some(Instant::now());
        }
    }
    if !is_synced {
        synced.fetch_add(1, Ordering::Relaxed);
    }
    if let Some(last) = last {
        let mut span = sh.span.lock().unwrap_or_else(PoisonError::into_inner);
        span.1 = span.1.max(Some(last));
    }
    sh.lost.fetch_add(lines - unique, Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_carry_their_sequence() {
        let d = datagram(3, 42, 100);
        assert_eq!(check_datagram(3, &d, 100), Some(42));
        assert_eq!(check_datagram(4, &d, 100), None);
        let mut bad = d.clone();
        bad[50] ^= 0xff;
        assert_eq!(check_datagram(3, &bad, 100), None);
    }

    #[test]
    fn fanout_lines_survive_prefixes() {
        assert_eq!(parse_fanout(b"<guest1> fanout-seq 17\r\n"), Some(17));
        assert_eq!(parse_fanout(b"[127.0.0.1:5] fanout-seq 0\n"), Some(0));
        assert_eq!(parse_fanout(b"* guest2 joined\n"), None);
    }
}
