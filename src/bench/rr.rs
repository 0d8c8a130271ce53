//! `--mode rr` over streams: request, answer, latency; open loop with `--rate`.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::job::{done, open_by, Job, Pacer, Samples};
use super::pattern;
use crate::error::{Error, Result};

/// Sends `size` bytes, waits for them back, again and again; open-loop with `--rate`.
///
/// The loop is kept lean because the load generator shares the machine with the server it
/// measures: every syscall or timer it spends per exchange is CPU the server does not get.
pub(super) async fn rr(job: Job<'_>) -> Result<()> {
    let Job {
        cfg,
        sh,
        id,
        deadline,
        limit,
    } = job;
    let Some(mut s) = open_by(cfg, deadline).await? else {
        return Ok(());
    };
    let size = cfg.size;
    let mut out = vec![0u8; size];
    // One byte more than an answer: a read that does not fill the buffer tells the reactor
    // the socket is drained, so the next exchange waits without a read(2) that finds nothing.
    let mut back = vec![0u8; size + 1];
    let mut h = Samples::new(sh);
    let pacer = Pacer::per_conn(cfg);
    let in_flight = Watch::default();
    let work = async {
        let mut n = 0u64;
        let result = loop {
            if done(deadline, n, limit) {
                break Ok(());
            }
            let due = pacer.due(n, sh).await;
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
            h.record_since(due);
            n += 1;
            // Shared counters are touched every 64 exchanges, not each one: 100 connections
            // bumping one cache line would make the load generator measure itself.
            if n.is_multiple_of(64) {
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
    drop(h);
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
