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
    if !head.ends_with(b"fanout-seq ") {
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

/// How a number reached a receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    /// First time, and after every number seen so far.
    InTurn,
    /// First time, but after a higher number (reordered).
    Late,
    /// Seen before (duplicated).
    Again,
    /// Not one of this run's numbers.
    NotOurs,
}

/// What one receiver has seen: each number once, in order. Lines almost always come in
/// order, so what has been seen is mostly one run from 0, kept as a count; only numbers
/// past a gap get a flag each, in a table made when the first gap appears. A table per
/// receiver made up front took a byte per line per receiver (a gigabyte for 1,000
/// receivers of a million lines) and its first touches, page faults, fell in the measured
/// span; in-order counting is also 2 ns a line against 5 with a look-up.
struct Tally {
    /// How many numbers there are (0 up to `lines - 1`); others are not counted.
    lines: u64,
    /// Every number below this one has been seen.
    run: u64,
    /// Numbers at or past `run` already seen; empty until one arrives out of turn.
    past_gap: Vec<bool>,
    unique: u64,
    highest: Option<u64>,
}

impl Tally {
    fn new(lines: u64) -> Self {
        Tally {
            lines,
            run: 0,
            past_gap: Vec::new(),
            unique: 0,
            highest: None,
        }
    }

    /// Counts `k`, and says how it arrived.
    fn add(&mut self, k: u64) -> Arrival {
        if k >= self.lines {
            return Arrival::NotOurs;
        }
        if k == self.run && self.past_gap.is_empty() {
            self.run += 1;
        } else if !self.add_off_the_run(k) {
            return Arrival::Again;
        }
        self.unique += 1;
        let late = self.highest.is_some_and(|h| k < h);
        self.highest = self.highest.max(Some(k));
        if late {
            Arrival::Late
        } else {
            Arrival::InTurn
        }
    }

    /// Counts `k` into the shared totals.
    fn count(&mut self, k: u64, sh: &Shared) {
        match self.add(k) {
            Arrival::Again => sh.duplicated.fetch_add(1, Ordering::Relaxed),
            Arrival::Late => sh.reordered.fetch_add(1, Ordering::Relaxed),
            Arrival::InTurn | Arrival::NotOurs => 0,
        };
    }

    /// `k` once a gap has been seen (every number below `run` was seen before it, the rest
    /// are flagged); false if it was seen before.
    fn add_off_the_run(&mut self, k: u64) -> bool {
        if k < self.run {
            return false;
        }
        if self.past_gap.is_empty() {
            self.past_gap = vec![false; self.lines as usize];
        }
        let flag = &mut self.past_gap[k as usize];
        if *flag {
            return false;
        }
        *flag = true;
        true
    }
}

/// Reads the numbers of a receiver's fan-out lines, as [`parse_fanout`] reads each line,
/// but mostly without parsing: a receiver's next line is almost always its last one with
/// the number one higher (the same sender's prefix), so that line is kept, its number
/// counted up in place, and compared with what arrives; only a line that differs is
/// searched for its end and parsed. The receivers read every line the server sends, and
/// a search per line was 40% of the load generator's CPU in a fan-out, twice its reading
/// from the kernel: the load generator has to stay cheaper than the server it measures.
#[derive(Default)]
struct Numbers {
    /// The line expected next, its newline included; empty when there is no guess.
    expect: Vec<u8>,
    /// Where its number's digits are in `expect`.
    digits: std::ops::Range<usize>,
    /// That number.
    next: u64,
    /// Lines that were not the guess, so parsed.
    parsed: u64,
}

impl Numbers {
    /// Calls `found` with the number of every fan-out line in `lines` (whole lines).
    fn feed(&mut self, lines: &[u8], mut found: impl FnMut(u64)) {
        let mut rest = lines;
        while !rest.is_empty() {
            if !self.expect.is_empty() && rest.starts_with(&self.expect) {
                found(self.next);
                rest = &rest[self.expect.len()..];
                self.count_up();
                continue;
            }
            let Some(end) = memchr::memchr(b'\n', rest) else {
                break;
            };
            let line = &rest[..=end];
            self.parsed += 1;
            if let Some((head, k)) = fanout_parts(line) {
                found(k);
                self.expect_after(head, &line[trim_newline(line).len()..], k);
            }
            rest = &rest[end + 1..];
        }
    }

    /// Guesses that the line after the one of number `k` (`head`, the number, `ending`) is
    /// the same with `k + 1`.
    fn expect_after(&mut self, head: &[u8], ending: &[u8], k: u64) {
        self.expect.clear();
        let Some(next) = k.checked_add(1) else {
            return;
        };
        self.expect.extend_from_slice(head);
        let at = self.expect.len();
        self.expect.extend_from_slice(next.to_string().as_bytes());
        self.digits = at..self.expect.len();
        self.expect.extend_from_slice(ending);
        self.next = next;
    }

    /// The expected line's number plus one, in place: `...41\n` becomes `...42\n`.
    fn count_up(&mut self) {
        let Some(next) = self.next.checked_add(1) else {
            self.expect.clear();
            return;
        };
        self.next = next;
        for d in self.expect[self.digits.clone()].iter_mut().rev() {
            if *d == b'9' {
                *d = b'0';
            } else {
                *d += 1;
                return;
            }
        }
        // All nines: one digit more (`99` becomes `100`).
        self.expect.insert(self.digits.start, b'1');
        self.digits.end += 1;
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
                if !is_synced && trim_newline(line).ends_with(b"fanout-sync") {
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

    /// Every line's number as [`parse_fanout`] reads it, one line at a time.
    fn by_lines(read: &[u8]) -> Vec<u64> {
        read.split_inclusive(|&b| b == b'\n')
            .filter_map(parse_fanout)
            .collect()
    }

    /// What [`Numbers`] finds in `reads`, fed one after the other.
    fn fed(reads: &[&[u8]]) -> Vec<u64> {
        let mut numbers = Numbers::default();
        let mut found = Vec::new();
        for read in reads {
            numbers.feed(read, |k| found.push(k));
        }
        found
    }

    #[test]
    fn a_whole_read_gives_what_line_by_line_parsing_gives() {
        let read = b"<guest1> fanout-seq 17\r\n* guest2 joined\n[127.0.0.1:5] fanout-seq 0\n\
            <a> fanout-seq 3 fanout-seq 4\n<b> fanout-seq 5x\nfanout-seq \nfanout-seq 99999999999999999999\n\
            <guest3> fanout-seq 0042\n<guest3> fanout-seq 43\n";
        assert_eq!(fed(&[read]), by_lines(read));
        assert_eq!(fed(&[read]), [17, 0, 4, 42, 43]);
    }

    #[test]
    fn the_guessed_next_line_never_reads_differently_from_parsing_it() {
        // Runs the guess across 9 -> 10 and 99 -> 100, then breaks it every way a server
        // could: a lost line, a repeated one, a notice between, another sender, CRLF,
        // leading zeros, a line that only starts like the guess, the largest number.
        let mut text = String::new();
        for k in 0..=120u64 {
            match k {
                5 => continue,
                7 => text.push_str("<guest1> fanout-seq 7\n<guest1> fanout-seq 7\n"),
                30 => text.push_str("*** guest9 joined\n<guest1> fanout-seq 30\n"),
                40..=44 => text.push_str(&format!("<bob> fanout-seq {k}\r\n")),
                50 => text.push_str("<guest1> fanout-seq 0050\n"),
                60 => text.push_str("<guest1> fanout-seq 60x\n<guest1> fanout-seq 600\n"),
                // Other senders' prefixes, short, long and very long.
                70..=72 => text.push_str(&format!("xxfanout-seq {k}\n")),
                73..=75 => text.push_str(&format!("<{}> fanout-seq {k}\n", "y".repeat(15))),
                76..=79 => text.push_str(&format!("<{}> fanout-seq {k}\n", "z".repeat(60))),
                // The marker broken in the middle, then the real line.
                85 => text.push_str("<guest1> fanout-Xeq 85\n<guest1> fanout-seq 85\n"),
                96..=101 => text.push_str(&format!("<{}> fanout-seq {k}\n", "w".repeat(47))),
                _ => text.push_str(&format!("<guest1> fanout-seq {k}\n")),
            }
        }
        text.push_str(&format!(
            "<guest1> fanout-seq {}\n<guest1> fanout-seq 0\n",
            u64::MAX
        ));
        let all = text.as_bytes();
        assert_eq!(fed(&[all]), by_lines(all));
        // The same split into reads at every other line end: the guess carries across.
        let ends: Vec<usize> = memchr::memchr_iter(b'\n', all).step_by(2).collect();
        let mut reads = Vec::new();
        let mut start = 0;
        for end in ends {
            reads.push(&all[start..=end]);
            start = end + 1;
        }
        reads.push(&all[start..]);
        assert_eq!(fed(&reads), by_lines(all));
        assert!(by_lines(all).contains(&u64::MAX));
    }

    #[test]
    fn a_receiver_parses_only_the_first_line_of_an_unbroken_run() {
        let text: String = (0..=1000u64)
            .map(|k| format!("<guest1> fanout-seq {k}\n"))
            .collect();
        let mut numbers = Numbers::default();
        let mut found = Vec::new();
        // In reads of whole lines, as the receiver hands them over.
        for read in text
            .as_bytes()
            .split_inclusive(|&b| b == b'\n')
            .collect::<Vec<_>>()
            .chunks(150)
        {
            numbers.feed(&read.concat(), |k| found.push(k));
        }
        assert_eq!(found, (0..=1000).collect::<Vec<_>>());
        assert_eq!(numbers.parsed, 1);
    }

    /// How each number arrives, by a plain set: what [`Tally`] must say.
    fn arrivals_by_set(lines: u64, ks: &[u64]) -> Vec<Arrival> {
        let mut seen = std::collections::HashSet::new();
        let mut highest = None;
        ks.iter()
            .map(|&k| {
                if k >= lines {
                    Arrival::NotOurs
                } else if !seen.insert(k) {
                    Arrival::Again
                } else if highest.replace(highest.map_or(k, |h: u64| h.max(k))) > Some(k) {
                    Arrival::Late
                } else {
                    Arrival::InTurn
                }
            })
            .collect()
    }

    #[test]
    fn the_tally_tells_duplicates_and_late_lines_as_a_set_would() {
        let lines = 64;
        // In order; with gaps, repeats, and numbers out of range; then shuffled runs.
        let mut cases: Vec<Vec<u64>> = vec![
            (0..64).collect(),
            vec![0, 1, 1, 0, 3, 2, 2, 5, 4, 3, 6, 64, 99, 7, 63, 8, 62, 63],
            vec![5, 4, 3, 2, 1, 0, 6, 0, 7],
        ];
        let mut x = 7u64;
        for _ in 0..200 {
            let ks = (0..80)
                .map(|i| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Mostly in turn, sometimes anywhere.
                    if (x >> 60) < 12 {
                        i
                    } else {
                        (x >> 33) % 70
                    }
                })
                .collect();
            cases.push(ks);
        }
        for ks in &cases {
            let mut tally = Tally::new(lines);
            let got: Vec<Arrival> = ks.iter().map(|&k| tally.add(k)).collect();
            assert_eq!(got, arrivals_by_set(lines, ks), "{ks:?}");
            let unique = ks
                .iter()
                .filter(|&&k| k < lines)
                .collect::<std::collections::HashSet<_>>();
            assert_eq!(tally.unique, unique.len() as u64);
        }
    }

    #[test]
    fn fanout_lines_survive_prefixes() {
        assert_eq!(parse_fanout(b"<guest1> fanout-seq 17\r\n"), Some(17));
        assert_eq!(parse_fanout(b"[127.0.0.1:5] fanout-seq 0\n"), Some(0));
        assert_eq!(parse_fanout(b"* guest2 joined\n"), None);
    }
}
