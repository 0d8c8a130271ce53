//! Reading the numbers out of a receiver's fan-out lines without parsing each one.

use super::fanout_parts;
use crate::lines::trim_newline;

/// Reads the numbers of a receiver's fan-out lines, as [`super::parse_fanout`] reads each
/// line, but mostly without parsing: a receiver's next line is almost always its last one
/// with the number one higher (the same sender's prefix), so that line is kept, its number
/// counted up in place, and compared with what arrives; only a line that differs is
/// searched for its end and parsed. The receivers read every line the server sends, and
/// a search per line was 40% of the load generator's CPU in a fan-out, twice its reading
/// from the kernel: the load generator has to stay cheaper than the server it measures.
#[derive(Default)]
pub(super) struct Numbers {
    /// The line expected next, its newline included; empty when there is no guess.
    expect: Vec<u8>,
    /// Where its number's digits are in `expect`.
    digits: std::ops::Range<usize>,
    /// That number.
    next: u64,
    /// Lines that were not the guess, so parsed.
    pub(super) parsed: u64,
}

impl Numbers {
    /// Calls `found` with the number of every fan-out line in `lines` (whole lines).
    pub(super) fn feed(&mut self, lines: &[u8], mut found: impl FnMut(u64)) {
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

#[cfg(test)]
mod tests {
    use super::super::parse_fanout;
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
                // A long prefix across 99 -> 100.
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
}
