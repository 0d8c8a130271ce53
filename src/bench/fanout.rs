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
            .write_all(b"fanout-sync\n")
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

/// What one receiver has seen: each number once, in order.
struct Tally {
    seen: Vec<bool>,
    unique: u64,
    highest: Option<u64>,
}

impl Tally {
    fn add(&mut self, k: u64, sh: &Shared) {
        let Some(slot) = self.seen.get_mut(k as usize) else {
            return;
        };
        if *slot {
            sh.duplicated.fetch_add(1, Ordering::Relaxed);
            return;
        }
        *slot = true;
        self.unique += 1;
        if self.highest.is_some_and(|h| k < h) {
            sh.reordered.fetch_add(1, Ordering::Relaxed);
        }
        self.highest = self.highest.max(Some(k));
    }
}

/// The marker every fan-out line carries before its number.
const SEQ: &[u8] = b"fanout-seq ";

/// Calls `found` with the number of every fan-out line in `lines` (whole lines): a number
/// right after the marker that ends its line, whatever prefix the server put before it, as
/// [`parse_fanout`] reads one line. One SIMD search for the marker over the whole read,
/// not a search and a parse per line: the receivers parse every line the server sends, and
/// the load generator has to stay cheaper than the server it measures.
fn numbers(finder: &memchr::memmem::Finder<'_>, lines: &[u8], mut found: impl FnMut(u64)) {
    for at in finder.find_iter(lines) {
        let digits = &lines[at + SEQ.len()..];
        let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
        // More digits than a u64 holds is nobody's fan-out line.
        if len == 0 || len > 19 {
            continue;
        }
        if matches!(&digits[len..], [b'\n', ..] | [b'\r', b'\n', ..]) {
            // At most 19 digits: no overflow.
            found(
                digits[..len]
                    .iter()
                    .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0')),
            );
        }
    }
}

/// Counts one receiver's lines; gives its connection back, still open, when done.
async fn receive_fanout(
    mut s: Stream,
    lines: u64,
    sh: &Shared,
    synced: &AtomicU64,
    until: Instant,
    quiet: Duration,
) -> io::Result<Stream> {
    let mut tally = Tally {
        seen: vec![false; lines as usize],
        unique: 0,
        highest: None,
    };
    let finder = memchr::memmem::Finder::new(SEQ);
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
            numbers(&finder, &data[..whole], |k| tally.add(k, sh));
        } else {
            // Before the sync line, line by line: the room's chatter, then the sync.
            let mut start = 0;
            for at in memchr::memchr_iter(b'\n', &data[..whole]) {
                let line = &data[start..at];
                start = at + 1;
                if !is_synced && trim_newline(line).ends_with(b"fanout-sync") {
                    is_synced = true;
                    synced.fetch_add(1, Ordering::Relaxed);
                } else if let Some(k) = parse_fanout(line) {
                    tally.add(k, sh);
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
    fn a_whole_read_gives_what_line_by_line_parsing_gives() {
        let read = b"<guest1> fanout-seq 17\r\n* guest2 joined\n[127.0.0.1:5] fanout-seq 0\n\
            <a> fanout-seq 3 fanout-seq 4\n<b> fanout-seq 5x\nfanout-seq \nfanout-seq 99999999999999999999\n\
            <guest3> fanout-seq 0042\n";
        let mut by_lines = Vec::new();
        for line in read.split_inclusive(|&b| b == b'\n') {
            by_lines.extend(parse_fanout(line).filter(|&k| k < 1 << 60));
        }
        let mut whole = Vec::new();
        numbers(&memchr::memmem::Finder::new(SEQ), read, |k| whole.push(k));
        assert_eq!(whole, by_lines);
        assert_eq!(whole, [17, 0, 4, 42]);
    }

    #[test]
    fn fanout_lines_survive_prefixes() {
        assert_eq!(parse_fanout(b"<guest1> fanout-seq 17\r\n"), Some(17));
        assert_eq!(parse_fanout(b"[127.0.0.1:5] fanout-seq 0\n"), Some(0));
        assert_eq!(parse_fanout(b"* guest2 joined\n"), None);
    }
}
