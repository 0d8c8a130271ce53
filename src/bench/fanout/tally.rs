//! What one receiver has seen of the fan-out's numbers: lost, duplicated, reordered.

use std::sync::atomic::Ordering;

use crate::bench::job::Shared;

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
pub(super) struct Tally {
    /// How many numbers there are (0 up to `lines - 1`); others are not counted.
    lines: u64,
    /// Every number below this one has been seen.
    run: u64,
    /// Numbers at or past `run` already seen; empty until one arrives out of turn.
    past_gap: Vec<bool>,
    pub(super) unique: u64,
    highest: Option<u64>,
}

impl Tally {
    pub(super) fn new(lines: u64) -> Self {
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
    pub(super) fn count(&mut self, k: u64, sh: &Shared) {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
