//! `--mode connect`: connections per second, or `--hold N` idle ones (memory per client).

use std::sync::atomic::Ordering;

use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::job::{done, open, Job, Shared};
use super::Config;
use crate::error::Result;

/// Opens and closes connections as fast as the target allows.
pub(super) async fn connects(job: Job<'_>) -> Result<()> {
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
pub(super) async fn hold(cfg: &Config, sh: &Shared, deadline: Instant) -> Result<()> {
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
