//! Byte tests eight bytes at a time (SWAR), for the scans that run on every
//! authorization (the host's dots, `@`) and every digest (JSON escapes):
//! one place for the bit tricks and the reasons they are exact.

/// `0x0101…01`: a byte value repeated in every byte of a word.
const ONES: u64 = u64::from_ne_bytes([1; 8]);
/// The high bit of every byte.
const HIGH: u64 = ONES << 7;
/// The low seven bits of every byte.
const LOW7: u64 = !HIGH;

/// A word of eight bytes, little-endian (byte `k` of `w` is `w[k]`).
pub(crate) fn word(w: &[u8]) -> u64 {
    u64::from_le_bytes(w.try_into().expect("eight bytes"))
}

/// Whether some byte of `x` is below `n` (`n` ≤ 0x80). `x - n.. & !x &
/// 0x80..` is nonzero exactly when one is: a borrow starts only at such a
/// byte, so bytes it disturbs sit above a true hit.
pub(crate) fn has_byte_below(x: u64, n: u8) -> bool {
    x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH != 0
}

/// Whether some byte of `x` is `b`.
pub(crate) fn has_byte(x: u64, b: u8) -> bool {
    has_byte_below(x ^ (ONES * u64::from(b)), 1)
}

/// Bit `k` set exactly when byte `k` of `x` is `b`.
pub(crate) fn byte_mask(x: u64, b: u8) -> u64 {
    let x = x ^ (ONES * u64::from(b));
    // The high bit of every zero byte of `x`; exact per byte, since
    // `(x & LOW7) + LOW7` cannot carry into the next byte.
    let m = !(((x & LOW7) + LOW7) | x) & HIGH;
    // Gathers the eight high bits into the top byte, byte `k`'s at bit
    // 56 + k: the shifted copies land on distinct bits, so nothing carries.
    (m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// Whether `word_hit` holds for some eight-byte word of `s` (the last one
/// overlapping the one before it when the length is not a multiple of
/// eight: a byte seen twice changes nothing), or `byte_hit` for some byte
/// of a string shorter than eight bytes.
pub(crate) fn any_word(
    s: &[u8],
    word_hit: impl Fn(u64) -> bool,
    byte_hit: impl Fn(u8) -> bool,
) -> bool {
    if s.len() < 8 {
        return s.iter().any(|&b| byte_hit(b));
    }
    let mut words = s.chunks_exact(8);
    words.any(|w| word_hit(word(w)))
        || (!words.remainder().is_empty() && word_hit(word(&s[s.len() - 8..])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every byte value at every position of a word, among fillers on
    /// both sides of each threshold: the three tests agree with a byte
    /// loop.
    #[test]
    fn word_tests_are_exact_per_byte() {
        for fill in [0u8, 0x1f, 0x20, b'.' ^ 1, b'@' ^ 0x80, 0x7f, 0xff] {
            for v in 0..=255u8 {
                for k in 0..8 {
                    let mut bytes = [fill; 8];
                    bytes[k] = v;
                    let x = word(&bytes);
                    assert_eq!(has_byte_below(x, 0x20), bytes.iter().any(|&b| b < 0x20));
                    assert_eq!(has_byte(x, b'@'), bytes.contains(&b'@'));
                    let want = (0..8)
                        .filter(|&i| bytes[i] == b'.')
                        .fold(0, |m, i| m | 1 << i);
                    assert_eq!(byte_mask(x, b'.'), want, "{bytes:?}");
                }
            }
        }
    }
}
