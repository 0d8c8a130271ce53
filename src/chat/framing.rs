//! Lines in, with a hard cap: a line with no newline can never grow memory past
//! `--max-line`, and `--rate` paces how fast one member's lines are let in.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

/// How one member is read: the same for every transport.
#[derive(Debug, Clone)]
pub struct MemberOptions {
    /// `--max-line`: longer lines are refused with `! `.
    pub max_line: usize,
    /// `--rate`: lines per second after a burst; 0 for no limit.
    pub rate: u32,
    /// Lines let through at once before the rate applies.
    pub burst: u32,
    /// `--idle-timeout`: datagram members only (default 10 minutes); a stream member stays
    /// while its connection does.
    pub idle_timeout: Option<Duration>,
    /// `--udp-open`: datagram addresses join without proving they receive what is sent to
    /// them (trusted networks only: a forged source could make the room a reflector).
    pub udp_open: bool,
}

impl Default for MemberOptions {
    fn default() -> Self {
        MemberOptions {
            max_line: 4096,
            rate: 10,
            burst: 20,
            idle_timeout: None,
            udp_open: false,
        }
    }
}

/// One read's worth of complete lines, in order.
#[derive(Debug, Default)]
pub struct Frames {
    /// The complete lines' bytes, newlines included.
    pub region: Bytes,
    /// Lines dropped for passing the limit (each gets one `! ` answer).
    pub too_long: usize,
}

impl Frames {
    /// The lines of `region` without their newlines, and whether each passed the limit.
    pub fn lines(&self, max: usize) -> impl Iterator<Item = Result<&[u8], usize>> {
        lines(&self.region, max)
    }
}

/// The lines of `data` (the last may lack its newline; nothing at all is no line), each
/// `Ok`, or `Err(length)` when longer than `max`. Stream reads and datagrams alike.
pub fn lines(data: &[u8], max: usize) -> impl Iterator<Item = Result<&[u8], usize>> {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    body.split(|b| *b == b'\n')
        .take(if data.is_empty() { 0 } else { usize::MAX })
        .map(move |l| if l.len() > max { Err(l.len()) } else { Ok(l) })
}

/// What a member is told when a line passes `--max-line`.
pub fn too_long(max: usize) -> String {
    format!("line too long (over {max} bytes); it was not sent")
}

/// Splits a byte stream into lines of at most `max` bytes; longer ones are skipped up to
/// their newline, holding at most `max` bytes meanwhile.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    max: usize,
    discarding: bool,
}

impl Framer {
    /// A framer for lines of at most `max` bytes (newline not counted).
    pub fn new(max: usize) -> Self {
        Framer {
            buf: BytesMut::new(),
            max: max.max(1),
            discarding: false,
        }
    }

    /// Where the next read goes, with at least `room` bytes free. A large buffer left over
    /// from a burst is given back once empty, so an idle member holds only `room` bytes.
    pub fn buffer(&mut self, room: usize) -> &mut BytesMut {
        if self.buf.is_empty() && self.buf.capacity() > 2 * room {
            self.buf = BytesMut::new();
        }
        self.buf.reserve(room);
        &mut self.buf
    }

    /// Takes the complete lines read so far.
    pub fn take(&mut self) -> Frames {
        let mut frames = Frames::default();
        if self.discarding {
            match self.buf.iter().position(|b| *b == b'\n') {
                Some(at) => {
                    let _ = self.buf.split_to(at + 1);
                    self.discarding = false;
                }
                None => {
                    self.buf.clear();
                    return frames;
                }
            }
        }
        if let Some(last) = self.buf.iter().rposition(|b| *b == b'\n') {
            frames.region = self.buf.split_to(last + 1).freeze();
        }
        if self.buf.len() > self.max {
            // A line with no end in sight: refuse it now, skip the rest when it comes.
            frames.too_long += 1;
            self.buf.clear();
            self.discarding = true;
        }
        frames
    }

    /// Bytes of a line still waiting for its newline.
    pub fn pending(&self) -> usize {
        if self.discarding {
            0
        } else {
            self.buf.len()
        }
    }

    /// What is left at EOF (or after a quiet spell): a line without its newline, if it fits.
    pub fn finish(&mut self) -> Option<Bytes> {
        let rest = self.buf.split().freeze();
        (!self.discarding && !rest.is_empty()).then_some(rest)
    }
}

/// A token bucket: `rate` lines a second after a burst of `burst`; rate 0 means no limit.
#[derive(Debug)]
pub struct Pace {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Pace {
    /// `rate` lines per second, bursts of up to `burst` lines.
    pub fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Pace {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    /// Takes one line's token; `Some(wait)` when there is none yet (take again after it).
    pub fn take(&mut self) -> Option<Duration> {
        if self.rate <= 0.0 {
            return None;
        }
        let now = Instant::now();
        let earned = now.duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            None
        } else {
            Some(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(f: &mut Framer, data: &[u8]) -> (Vec<Vec<u8>>, usize) {
        f.buffer(data.len()).extend_from_slice(data);
        let frames = f.take();
        let mut lines = Vec::new();
        let mut long = frames.too_long;
        for l in frames.lines(8) {
            match l {
                Ok(l) => lines.push(l.to_vec()),
                Err(_) => long += 1,
            }
        }
        (lines, long)
    }

    #[test]
    fn splits_lines_across_reads() {
        let mut f = Framer::new(8);
        assert_eq!(feed(&mut f, b"ab\ncd"), (vec![b"ab".to_vec()], 0));
        assert_eq!(
            feed(&mut f, b"e\n\nf\n"),
            (vec![b"cde".to_vec(), vec![], b"f".to_vec()], 0)
        );
        assert_eq!(feed(&mut f, b"tail"), (vec![], 0));
        assert_eq!(f.finish().as_deref(), Some(&b"tail"[..]));
    }

    #[test]
    fn long_lines_are_refused_and_skipped_without_growing() {
        let mut f = Framer::new(8);
        assert_eq!(feed(&mut f, b"0123456789"), (vec![], 1));
        assert_eq!(feed(&mut f, b"0123456789"), (vec![], 0));
        assert!(f.buf.capacity() < 64);
        assert_eq!(feed(&mut f, b"xx\nok\n"), (vec![b"ok".to_vec()], 0));
        assert_eq!(feed(&mut f, b"0123456789\nok\n"), (vec![b"ok".to_vec()], 1));
    }

    #[test]
    fn pace_allows_a_burst_then_waits() {
        let mut p = Pace::new(10, 3);
        assert!((0..3).all(|_| p.take().is_none()));
        assert!(p.take().is_some());
        let mut free = Pace::new(0, 1);
        assert!((0..1000).all(|_| free.take().is_none()));
    }
}
