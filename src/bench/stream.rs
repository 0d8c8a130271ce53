//! `--mode stream` over streams: the pattern written, read back and checked.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::job::{done, open_by, Job};
use super::pattern;
use crate::error::{Error, Result};

/// Writes the pattern; reads it back and checks it (unless `sink`).
pub(super) async fn stream(job: Job<'_>) -> Result<()> {
    let Job {
        cfg,
        sh,
        id,
        deadline,
        limit,
    } = job;
    let Some(s) = open_by(cfg, deadline).await? else {
        return Ok(());
    };
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
