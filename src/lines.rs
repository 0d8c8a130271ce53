//! Line framing for the line-oriented paths: datagrams from stdin lines, `--show-peer`
//! prefixes, and keeping lines from different clients whole on stdout.

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into lines, holding at most `max` bytes of an unfinished line.
///
/// A line longer than `max` is handed out in `max`-sized pieces: binary data with no newline
/// must not grow memory without bound.
#[derive(Debug)]
pub struct Lines {
    buf: BytesMut,
    max: usize,
}

impl Lines {
    /// A splitter that holds at most `max` bytes of an unfinished line.
    pub fn new(max: usize) -> Self {
        Lines {
            buf: BytesMut::new(),
            max: max.max(1),
        }
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete line, its `\n` included, or a full `max`-sized piece.
    pub fn next_line(&mut self) -> Option<Bytes> {
        match memchr(b'\n', &self.buf) {
            Some(i) if i < self.max => Some(self.buf.split_to(i + 1).freeze()),
            _ if self.buf.len() >= self.max => Some(self.buf.split_to(self.max).freeze()),
            _ => None,
        }
    }

    /// Every complete line now; at end of stream (`eof`) the unfinished last one too.
    pub fn drain(&mut self, eof: bool) -> Vec<Bytes> {
        let mut out: Vec<Bytes> = std::iter::from_fn(|| self.next_line()).collect();
        if eof {
            out.extend(self.finish());
        }
        out
    }

    /// Bytes of an unfinished line held now.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// What is left at end of stream: an unfinished last line, if any.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.buf.is_empty()).then(|| self.buf.split().freeze())
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

/// A line without its terminator (`\n` or `\r\n`).
pub fn trim_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Rewrites LF as CRLF across chunk boundaries (`--crlf`), leaving existing CRLF alone.
#[derive(Debug, Default)]
pub struct Crlf {
    last: u8,
}

impl Crlf {
    /// Converts one chunk; state carries to the next.
    pub fn convert(&mut self, data: &[u8]) -> Bytes {
        let mut out = BytesMut::with_capacity(data.len() + data.len() / 16 + 1);
        for &b in data {
            if b == b'\n' && self.last != b'\r' {
                out.extend_from_slice(b"\r");
            }
            out.extend_from_slice(&[b]);
            self.last = b;
        }
        out.freeze()
    }
}

/// Prefixes every line of `data` with `[peer] ` (and ends it with a newline), as one chunk.
pub fn prefixed(prefix: Option<&str>, lines: &[Bytes]) -> Bytes {
    let mut out = BytesMut::new();
    for line in lines {
        if let Some(p) = prefix {
            out.extend_from_slice(b"[");
            out.extend_from_slice(p.as_bytes());
            out.extend_from_slice(b"] ");
        }
        out.extend_from_slice(line);
        if prefix.is_some() && !line.ends_with(b"\n") {
            out.extend_from_slice(b"\n");
        }
    }
    out.freeze()
}

/// How long a datagram line that input has begun but not ended waits for its newline: then
/// it is sent as it is (as `ncat -u` sends what a pipe gave it), so `printf hi` into an open
/// pipe is not held back.
pub const PARTIAL_QUIET: std::time::Duration = std::time::Duration::from_millis(300);

/// A received datagram as a line of output: its bytes, then a newline if it had none.
pub fn datagram_line(data: &[u8]) -> Bytes {
    let mut out = bytes::BytesMut::with_capacity(data.len() + 1);
    out.extend_from_slice(data);
    if !data.ends_with(b"\n") {
        out.extend_from_slice(b"\n");
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(l: &mut Lines) -> Vec<Bytes> {
        std::iter::from_fn(|| l.next_line()).collect()
    }

    #[test]
    fn splits_across_chunks() {
        let mut l = Lines::new(100);
        l.push(b"hel");
        assert!(drain(&mut l).is_empty());
        l.push(b"lo\nwor");
        assert_eq!(drain(&mut l), vec![Bytes::from("hello\n")]);
        l.push(b"ld\n\n");
        assert_eq!(
            drain(&mut l),
            vec![Bytes::from("world\n"), Bytes::from("\n")]
        );
        assert_eq!(l.finish(), None);
        l.push(b"tail");
        assert_eq!(l.finish(), Some(Bytes::from("tail")));
        l.push(b"a\nb");
        assert_eq!(l.drain(false), vec![Bytes::from("a\n")]);
        assert_eq!(l.drain(true), vec![Bytes::from("b")]);
    }

    #[test]
    fn long_lines_are_cut_not_buffered() {
        let mut l = Lines::new(4);
        l.push(b"abcdefghij\n");
        assert_eq!(
            drain(&mut l),
            vec![
                Bytes::from("abcd"),
                Bytes::from("efgh"),
                Bytes::from("ij\n")
            ]
        );
        assert_eq!(l.finish(), None);
    }

    #[test]
    fn crlf_is_stateful() {
        let mut c = Crlf::default();
        assert_eq!(&c.convert(b"a\nb\r")[..], b"a\r\nb\r");
        assert_eq!(&c.convert(b"\nc\n")[..], b"\nc\r\n");
    }

    #[test]
    fn prefixes_each_line() {
        let out = prefixed(Some("1.2.3.4:5"), &[Bytes::from("hi\n"), Bytes::from("x")]);
        assert_eq!(&out[..], b"[1.2.3.4:5] hi\n[1.2.3.4:5] x\n");
        assert_eq!(&prefixed(None, &[Bytes::from("x")])[..], b"x");
    }

    #[test]
    fn trims_both_newlines() {
        assert_eq!(trim_newline(b"a\r\n"), b"a");
        assert_eq!(trim_newline(b"a\n"), b"a");
        assert_eq!(trim_newline(b"a"), b"a");
    }
}
