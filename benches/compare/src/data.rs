//! The message contents every library sends: built once, byte-identical for
//! all of them.

/// Text that looks like a small JSON chat message, mostly ASCII with some
/// two-, three- and four-byte characters (one within the first 16 bytes), so
/// UTF-8 validation cannot take an all-ASCII shortcut over a whole message.
const PATTERN: &str = "{\"user\":\"Zoë\",\"id\":4711,\"text\":\"héllo wörld – 5 € for 日本語 😀\",\"ok\":true}\n";

/// Exactly `size` bytes of valid UTF-8: [`PATTERN`] repeated, cut at a
/// character boundary and padded with spaces.
pub fn text(size: usize) -> String {
    let mut out = String::with_capacity(size);
    for c in PATTERN.chars().cycle() {
        if out.len() + c.len_utf8() > size {
            break;
        }
        out.push(c);
    }
    while out.len() < size {
        out.push(' ');
    }
    out
}

/// `size` pseudo-random bytes (xorshift64, fixed seed).
pub fn binary(size: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn exact_sizes() {
        for size in [0, 1, 15, 16, 17, 100, 1024, 65536] {
            assert_eq!(super::text(size).len(), size);
            assert_eq!(super::binary(size).len(), size);
        }
        assert!(super::text(1024).chars().any(|c| c.len_utf8() == 4));
    }
}
