//! One run: the workers of the chosen mode, the live progress line, and the report.

use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::job::{Job, Shared};
use super::stats::Latency;
use super::{connect, datagram, fanout, rr, stream};
use super::{Config, Mode, Report};
use crate::error::{Error, Result};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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
            "connect and fanout need a stream endpoint (tcp, tls, unix, ws, wss)",
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
                if let Err(e) = fanout::fanout(&cfg, &sh, deadline).await {
                    sh.error(e);
                }
            });
        }
        Mode::Connect if cfg.hold.is_some() => {
            let cfg = cfg.clone();
            let sh = shared.clone();
            workers.spawn(async move {
                if let Err(e) = connect::hold(&cfg, &sh, deadline).await {
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
                        (Mode::Stream, true) => stream::stream(job).await,
                        (Mode::Stream, false) => datagram::stream(job).await,
                        (Mode::Rr, true) => rr::rr(job).await,
                        (Mode::Rr, false) => datagram::rr(job).await,
                        _ => connect::connects(job).await,
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
    let late_count = shared.late_count.load(Ordering::Relaxed);
    let pacer_late_us = (late_count > 0).then(|| {
        (
            shared.late_sum_us.load(Ordering::Relaxed) / late_count,
            shared.late_max_us.load(Ordering::Relaxed),
        )
    });
    Ok(Report {
        mode: cfg.mode.name(),
        endpoint: cfg.target.endpoint().to_string(),
        // `--hold N` holds N connections, whatever --conns says.
        conns: match (cfg.mode, cfg.hold) {
            (Mode::Connect, Some(n)) => n,
            _ => cfg.conns,
        },
        pacer_late_us,
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
