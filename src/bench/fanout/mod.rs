//! `--mode fanout`: one sender of numbered lines, N receivers that must each get every
//! line once and in order (chat rooms, `listen --broker`, `ncat --chat`).

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::job::{open, Pacer, Shared};
use super::Config;
use crate::error::{Error, Result};
use crate::lines::trim_newline;
use crate::net::Stream;

mod numbers;
mod tally;

use numbers::Numbers;
use tally::Tally;

/// What comes before a fan-out line's number (after any prefix).
const MARKER: &[u8] = b"fanout-seq ";
/// The line the sender repeats until every receiver has seen it; then the span starts.
const SYNC: &[u8] = b"fanout-sync";

/// The fan-out line for number `n`; receivers find it after any prefix (`<nick> `).
fn fanout_line(n: u64) -> String {
    format!("fanout-seq {n}\n")
}

/// The number at the end of a fan-out line, after any prefix; no allocation, since a
/// receiver parses every line and the load generator must stay cheaper than the server.
fn parse_fanout(line: &[u8]) -> Option<u64> {
    fanout_parts(line).map(|(_, k)| k)
}

/// A fan-out line (newline or not) as what comes before its number (any prefix, then the
/// marker) and the number.
fn fanout_parts(line: &[u8]) -> Option<(&[u8], u64)> {
    let line = trim_newline(line);
    let digits = line.iter().rev().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let (head, num) = line.split_at(line.len() - digits);
    if !head.ends_with(MARKER) {
        return None;
    }
    let k = num.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })?;
    Some((head, k))
}

/// One sender, `conns` receivers; every receiver must get every line once and in order.
pub(super) async fn fanout(cfg: &Config, sh: &Arc<Shared>, deadline: Instant) -> Result<()> {
    let lines = cfg.count.unwrap_or(1000);
    let synced = Arc::new(AtomicU64::new(0));
    let mut receivers = JoinSet::new();
    for id in 0..cfg.conns.max(1) {
        // In turn over the target and `--receivers-also` (the nodes of one room).
        let s = match id % (cfg.receivers_also.len() + 1) {
            0 => open(cfg).await?,
            k => cfg.receivers_also[k - 1].dial().await?.0,
        };
        let (sh, synced) = (sh.clone(), synced.clone());
        let grace = cfg.timeout;
        receivers.spawn(async move {
            match receive_fanout(s, lines, &sh, &synced, deadline + grace, grace).await {
                Ok(s) => Some(s),
                Err(e) => {
                    sh.error(format!("receiver {id}: {}", crate::error::describe_io(&e)));
                    None
                }
            }
        });
    }
    let mut sender = match &cfg.sender {
        Some(d) => d.dial().await?.0,
        None => open(cfg).await?,
    };
    let want = cfg.conns.max(1) as u64;
    // Tell receivers apart from the room's own chatter (welcome lines, joins): wait until
    // each has seen a sync line, then start counting.
    while synced.load(Ordering::Relaxed) < want {
        if Instant::now() >= deadline {
            sh.error("not every receiver joined before the deadline");
            return Ok(());
        }
        sender
            .write_all(&[SYNC, b"\n"].concat())
            .await
            .map_err(|e| Error::io("fanout sender failed", &e))?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pacer = Pacer::new(cfg.rate);
    sh.span.lock().unwrap_or_else(PoisonError::into_inner).0 = Some(Instant::now());
    let mut batch = String::new();
    for n in 0..lines {
        pacer.due(n, sh).await;
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
    // Receivers that are done keep their connections until all are: a close (and the
    // room's `left` line it brings) would cost the server and this process time that
    // belongs to the receivers still counting.
    let mut done = Vec::new();
    while let Some(r) = receivers.join_next().await {
        done.extend(r.ok().flatten());
    }
    drop(sender);
    drop(done);
    Ok(())
}

/// Bytes one receiver reads at a time; a partial line waits at the front of the buffer.
const RECEIVE_BUF: usize = 64 * 1024;

/// Counts one receiver's lines; gives its connection back, still open, when done.
async fn receive_fanout(
    mut s: Stream,
    lines: u64,
    sh: &Shared,
    synced: &AtomicU64,
    until: Instant,
    quiet: Duration,
) -> io::Result<Stream> {
    let mut numbers = Numbers::default();
    let mut tally = Tally::new(lines);
    // Filled, not zeroed: zeroed memory is mapped lazily, and its page faults would land
    // inside the measured span on the first large reads (they did: a fifth of this
    // process's time in a burst), charging the load generator's cost to the server.
    let mut buf = vec![1u8; RECEIVE_BUF];
    let mut is_synced = false;
    // Bytes at the front of `buf` that are the start of a line not yet complete.
    let mut partial = 0;
    let mut last = None;
    while tally.unique < lines {
        // Once counting, a silence of `quiet` means the rest is lost: stop waiting.
        let limit = if is_synced {
            until.min(Instant::now() + quiet)
        } else {
            until
        };
        if partial == buf.len() {
            // A line longer than the buffer is nobody's fan-out line.
            partial = 0;
        }
        let n = match tokio::time::timeout_at(limit, s.read(&mut buf[partial..])).await {
            Ok(r) => r?,
            Err(_) => break,
        };
        if n == 0 {
            break;
        }
        let before = tally.unique;
        let data = &buf[..partial + n];
        let whole = memchr::memrchr(b'\n', data).map_or(0, |at| at + 1);
        if is_synced {
            numbers.feed(&data[..whole], |k| tally.count(k, sh));
        } else {
            // Before the sync line, line by line: the room's chatter, then the sync.
            let mut start = 0;
            for at in memchr::memchr_iter(b'\n', &data[..whole]) {
                let line = &data[start..at];
                start = at + 1;
                if !is_synced && trim_newline(line).ends_with(SYNC) {
                    is_synced = true;
                    synced.fetch_add(1, Ordering::Relaxed);
                } else if let Some(k) = parse_fanout(line) {
                    tally.count(k, sh);
                }
            }
        }
        buf.copy_within(whole..partial + n, 0);
        partial = partial + n - whole;
        if tally.unique > before {
            // One shared counter update per read, not per line.
            sh.ops.fetch_add(tally.unique - before, Ordering::Relaxed);
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
    sh.lost.fetch_add(lines - tally.unique, Ordering::Relaxed);
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_lines_survive_prefixes() {
        assert_eq!(parse_fanout(b"<guest1> fanout-seq 17\r\n"), Some(17));
        assert_eq!(parse_fanout(b"[127.0.0.1:5] fanout-seq 0\n"), Some(0));
        assert_eq!(parse_fanout(b"* guest2 joined\n"), None);
        assert_eq!(fanout_line(42).as_bytes(), [MARKER, b"42\n"].concat());
    }
}
