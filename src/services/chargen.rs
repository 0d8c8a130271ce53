//! RFC 864 character generator: 72-character lines of the 95 printable ASCII characters,
//! each line starting one character further on, ending in CRLF.

use std::sync::OnceLock;

use bytes::Bytes;

/// Characters per line, without the CRLF.
const WIDTH: usize = 72;
/// Printable ASCII, ' ' to '~'.
const CHARS: usize = 95;

/// The whole 95-line cycle, built once and shared by every client (one allocation).
pub fn cycle() -> Bytes {
    static CYCLE: OnceLock<Bytes> = OnceLock::new();
    CYCLE
        .get_or_init(|| {
            let mut v = Vec::with_capacity(CHARS * (WIDTH + 2));
            for start in 0..CHARS {
                v.extend((0..WIDTH).map(|i| b' ' + ((start + i) % CHARS) as u8));
                v.extend_from_slice(b"\r\n");
            }
            Bytes::from(v)
        })
        .clone()
}

/// One UDP answer: the RFC asks for a random number of characters between 0 and 512.
pub fn datagram(seed: u64) -> Bytes {
    let len = (seed % 513) as usize;
    let c = cycle();
    let start = ((seed / 513) as usize % CHARS) * (WIDTH + 2);
    c.slice(start..start + len.min(c.len() - start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_rotate() {
        let c = cycle();
        let lines: Vec<&[u8]> = c.split(|&b| b == b'\n').collect();
        assert_eq!(&lines[0][..3], b" !\"");
        assert_eq!(&lines[1][..3], b"!\"#");
        assert_eq!(lines[0].len(), 73);
        assert_eq!(c.len(), 95 * 74);
    }

    #[test]
    fn datagrams_stay_within_512() {
        for seed in [0u64, 512, 513, 99_999, u64::MAX] {
            assert!(datagram(seed).len() <= 512);
        }
    }
}
