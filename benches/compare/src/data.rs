//! The message contents every library sends: built once, byte-identical for
//! all of them.

/// Text that looks like a small JSON chat message, mostly ASCII with some
/// two-, three- and four-byte characters (one within the first 16 bytes), so
/// UTF-8 validation cannot take an all-ASCII shortcut over a whole message.
const PATTERN: &str = "{\"user\":\"Zoë\",\"id\":4711,\"text\":\"héllo wörld – 5 € for 日本語 😀\",\"ok\":true}\n";

/// JSON-like text in which most characters are multi-byte: accented Latin
/// (2 bytes), CJK and Hangul (3 bytes) and emoji (4 bytes), as a chat in
/// Japanese or a feed full of emoji is. Three quarters of its bytes belong
/// to multi-byte characters, so validators spend their time on the slow
/// path (an ASCII fast path never covers more than a few bytes at a time).
const DENSE_PATTERN: &str = "{\"名前\":\"山田太郎\",\"本文\":\"こんにちは世界🌏 Ça été très réussi — 你好，朋友们！😀🎉 안녕하세요 «ÀÉÎÕÜ» 日本語のテキスト✨\",\"タグ\":[\"東京\",\"서울\",\"北京\",\"Zürich\"],\"👍\":42}\n";

/// Exactly `size` bytes of valid UTF-8: [`PATTERN`] repeated, cut at a
/// character boundary and padded with spaces.
pub fn text(size: usize) -> String {
    repeat(PATTERN, size)
}

/// Exactly `size` bytes of valid UTF-8 with dense multi-byte characters:
/// [`DENSE_PATTERN`] repeated, cut at a character boundary and padded with
/// spaces.
pub fn dense_text(size: usize) -> String {
    repeat(DENSE_PATTERN, size)
}

fn repeat(pattern: &str, size: usize) -> String {
    let mut out = String::with_capacity(size);
    for c in pattern.chars().cycle() {
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

/// Message `seq` of a broadcast: exactly `size` bytes (at least 20) of
/// JSON-like text, a sequence number followed by [`text`], so every
/// message differs and a client can tell which one it got.
pub fn broadcast_text(seq: usize, size: usize) -> String {
    let head = format!("{{\"seq\":{seq:08},\"m\":");
    assert!(size >= head.len());
    head + &text(size - 20)
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
            assert_eq!(super::dense_text(size).len(), size);
            assert_eq!(super::binary(size).len(), size);
        }
        assert!(super::text(1024).chars().any(|c| c.len_utf8() == 4));
        assert_eq!(super::broadcast_text(7, 1024).len(), 1024);
    }

    #[test]
    fn dense_text_is_mostly_multibyte() {
        let text = super::dense_text(64 * 1024);
        let multibyte: usize = text.chars().filter(|c| !c.is_ascii()).map(char::len_utf8).sum();
        assert!(multibyte * 100 / text.len() >= 70, "{multibyte} of {}", text.len());
        for width in 2..=4 {
            assert!(text.chars().any(|c| c.len_utf8() == width));
        }
    }
}
