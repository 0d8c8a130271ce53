//! What every mode's worker shares: the counters, the pacer, the job, and the dial.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::stats::histogram;
use super::Config;
use crate::error::Result;
use crate::net::{Datagram, Stream};

/// Counters shared by every worker of a run.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) ops: AtomicU64,
    pub(super) bytes: AtomicU64,
    pub(super) errors: AtomicU64,
    pub(super) lost: AtomicU64,
    pub(super) duplicated: AtomicU64,
    pub(super) reordered: AtomicU64,
    pub(super) held: AtomicU64,
    pub(super) first_error: Mutex<Option<String>>,
    /// `--rate`: how late the pacer's timer woke (the generator's lateness, kept out of the
    /// latency figures).
    pub(super) late_sum_us: AtomicU64,
    pub(super) late_count: AtomicU64,
    pub(super) late_max_us: AtomicU64,
    pub(super) latency: Mutex<Option<Histogram<u64>>>,
    /// fanout: from the first line sent to the last one received, so that waiting for the
    /// room to fill (or for lines that never come) is not counted as delivery time.
    pub(super) span: Mutex<(Option<Instant>, Option<Instant>)>,
}

impl Shared {
    pub(super) fn error(&self, what: impl std::fmt::Display) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert_with(|| what.to_string());
    }

    /// Records how late the pacer's timer woke for one operation.
    pub(super) fn late(&self, by: Duration) {
        let us = by.as_micros() as u64;
        self.late_sum_us.fetch_add(us, Ordering::Relaxed);
        self.late_count.fetch_add(1, Ordering::Relaxed);
        self.late_max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// Records latencies (µs) into the run's one histogram.
    fn record_all(&self, samples: &[u32]) {
        let mut all = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        let h = all.get_or_insert_with(histogram);
        for &us in samples {
            let _ = h.record(u64::from(us.max(1)));
        }
    }
}

/// Open-loop pacing (`--rate`): request `n` is due at `start + n * every`, and latency counts
/// from then, so a stalled server cannot hide its stall (no coordinated omission).
pub(super) struct Pacer {
    start: Instant,
    pub(super) every: Option<Duration>,
}

impl Pacer {
    /// `rate` operations per second; `None` means as fast as answers come.
    pub(super) fn new(rate: Option<f64>) -> Self {
        Pacer {
            start: Instant::now(),
            every: rate.map(|r| Duration::from_secs_f64(1.0 / r.max(1e-3))),
        }
    }

    /// `--rate` is over all connections; each connection gets its share.
    pub(super) fn per_conn(cfg: &Config) -> Self {
        Pacer::new(cfg.rate.map(|r| r / cfg.conns.max(1) as f64))
    }

    /// Waits until operation `n` is due and returns the instant its latency counts from.
    ///
    /// An operation that is late because the answer before it was late counts from when it
    /// was due: the server's stall shows (no coordinated omission). One that waited for its
    /// turn counts from when the timer actually woke us: the timer's own lateness (up to a
    /// millisecond with tokio's wheel) is the generator's, so it goes to `sh`'s lateness
    /// figures instead of the server's latency.
    pub(super) async fn due(&self, n: u64, sh: &Shared) -> Instant {
        let Some(every) = self.every else {
            return Instant::now();
        };
        let due = self.start + every.mul_f64(n as f64);
        if Instant::now() >= due {
            return due;
        }
        tokio::time::sleep_until(due).await;
        let woke = Instant::now();
        sh.late(woke.saturating_duration_since(due));
        woke
    }
}

/// A connection's latency samples on their way to the run's histogram, a few hundred at a
/// time: a histogram per connection (about 150 KiB at 3 digits over 1 µs-100 s) made the
/// load generator hold more per connection than the servers it measures.
pub(super) struct Samples<'a> {
    sh: &'a Shared,
    buf: Vec<u32>,
}

/// Samples a connection keeps before handing them over (1 KiB).
const SAMPLES: usize = 256;

impl<'a> Samples<'a> {
    pub(super) fn new(sh: &'a Shared) -> Self {
        Samples {
            sh,
            buf: Vec::new(),
        }
    }

    /// One latency since `since`.
    pub(super) fn record_since(&mut self, since: Instant) {
        let us = u32::try_from(since.elapsed().as_micros()).unwrap_or(u32::MAX);
        if self.buf.capacity() == 0 {
            self.buf.reserve_exact(SAMPLES);
        }
        self.buf.push(us);
        if self.buf.len() == SAMPLES {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.sh.record_all(&self.buf);
            self.buf.clear();
        }
    }
}

impl Drop for Samples<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}

/// What one connection's worker needs: the run's settings and counters, its id (which seeds
/// its byte pattern), when to stop, and how many operations it may do.
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    pub(super) cfg: &'a Config,
    pub(super) sh: &'a Shared,
    pub(super) id: u64,
    pub(super) deadline: Instant,
    pub(super) limit: Option<u64>,
}

pub(super) async fn open(cfg: &Config) -> Result<Stream> {
    Ok(cfg.target.dial().await?.0)
}

/// A worker's connection, if it opens before `deadline`: `--duration` counts from the
/// start, connecting included, so a run of many connections still ends on time (a
/// connection not open by then simply does not run; it is no error).
pub(super) async fn open_by(cfg: &Config, deadline: Instant) -> Result<Option<Stream>> {
    match tokio::time::timeout_at(deadline, open(cfg)).await {
        Ok(s) => s.map(Some),
        Err(_) => Ok(None),
    }
}

pub(super) fn done(deadline: Instant, n: u64, limit: Option<u64>) -> bool {
    Instant::now() >= deadline || limit.is_some_and(|l| n >= l)
}

pub(super) async fn open_dgram(cfg: &Config) -> Result<Datagram> {
    Ok(cfg.target.dial_datagram().await?.0)
}
