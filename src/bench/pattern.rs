//! A verifiable pseudo-random byte pattern: byte `i` of stream `seed` is computable on its
//! own, so a reader can check what comes back at any offset without keeping a copy.

/// SplitMix64: a fast, well-mixed function of its input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the pattern of `seed` starting at stream offset `offset`.
pub fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    let mut pos = offset;
    let mut i = 0;
    while i < buf.len() {
        let word = mix(seed.rotate_left(32) ^ (pos / 8)).to_le_bytes();
        let start = (pos % 8) as usize;
        let take = (8 - start).min(buf.len() - i);
        buf[i..i + take].copy_from_slice(&word[start..start + take]);
        i += take;
        pos += take as u64;
    }
}

/// The first offset (stream offset) where `buf` differs from the pattern, if any.
pub fn verify(seed: u64, offset: u64, buf: &[u8]) -> Option<u64> {
    // Checked a block at a time on the stack: no allocation on the measuring path.
    let mut expected = [0u8; 256];
    for (k, chunk) in buf.chunks(expected.len()).enumerate() {
        let at = offset + (k * expected.len()) as u64;
        let want = &mut expected[..chunk.len()];
        fill(seed, at, want);
        if let Some(i) = chunk.iter().zip(want.iter()).position(|(a, b)| a != b) {
            return Some(at + i as u64);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_split_gives_the_same_bytes() {
        let mut whole = vec![0u8; 1000];
        fill(7, 0, &mut whole);
        let mut parts = vec![0u8; 1000];
        let (a, b) = parts.split_at_mut(333);
        fill(7, 0, a);
        fill(7, 333, b);
        assert_eq!(whole, parts);
        assert_eq!(verify(7, 0, &whole), None);
        assert_eq!(verify(7, 13, &whole[13..]), None);
    }

    #[test]
    fn corruption_is_found_where_it_is() {
        let mut buf = vec![0u8; 64];
        fill(1, 100, &mut buf);
        buf[10] ^= 1;
        assert_eq!(verify(1, 100, &buf), Some(110));
        let mut other = vec![0u8; 64];
        fill(2, 100, &mut other);
        assert!(verify(1, 100, &other).is_some());
    }
}
