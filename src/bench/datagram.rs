//! The datagram modes (udp, unixgram): sequence-numbered datagrams, losses counted.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::time::{timeout, Instant};

use super::job::{done, open_dgram, Job, Pacer, Samples};
use super::pattern;
use crate::error::Result;
use crate::net::MAX_DATAGRAM;

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

/// UDP request/response: a lost answer counts and the next request goes out.
pub(super) async fn rr(job: Job<'_>) -> Result<()> {
    let Job {
        cfg,
        sh,
        id,
        deadline,
        limit,
    } = job;
    let sock = open_dgram(cfg).await?;
    let mut back = vec![0u8; cfg.size.max(MAX_DATAGRAM)];
    let mut h = Samples::new(sh);
    let pacer = Pacer::per_conn(cfg);
    let mut seq = 0u64;
    while !done(deadline, seq, limit) {
        let due = pacer.due(seq, sh).await;
        let req = datagram(id, seq, cfg.size);
        if let Err(e) = sock.send(&req).await {
            sh.error(format!("send failed: {}", crate::error::describe_io(&e)));
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
                h.record_since(due);
                sh.ops.fetch_add(1, Ordering::Relaxed);
                sh.bytes.fetch_add(cfg.size as u64, Ordering::Relaxed);
            }
            Ok(Ok(false)) => sh.error(format!("corrupted datagram on connection {id}")),
            Ok(Err(e)) => sh.error(format!("receive failed: {}", crate::error::describe_io(&e))),
            Err(_) => {
                sh.lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        seq += 1;
    }
    drop(h);
    Ok(())
}

/// UDP throughput against an echo: send as fast as allowed, count and check what returns.
pub(super) async fn stream(job: Job<'_>) -> Result<()> {
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
            if seq.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
    };
    let receiver = async {
        let mut buf = vec![0u8; MAX_DATAGRAM];
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
}
