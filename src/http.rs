//! HTTP/1.1 syntax helpers shared by the handshake and the permessage-deflate
//! negotiation: owned header fields with list and token lookups, the
//! grammar checks for tokens and field values, and writing header lines.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use crate::error::HandshakeError;

/// The header fields of a head, owned: one buffer holding either the raw
/// head as received or the parts another HTTP stack parsed, and the
/// positions of each name and value in it.
#[derive(Clone)]
pub(crate) struct Headers {
    buf: Box<[u8]>,
    /// Whether `buf` is a head as received, which [`raw`](Self::raw) shows.
    is_raw: bool,
    fields: Vec<(Range<u32>, Range<u32>)>,
}

impl Headers {
    /// Copies `raw` and records where each of httparse's `headers` (which
    /// borrow from `raw`) sit in it.
    pub(crate) fn new(raw: &[u8], headers: &[httparse::Header<'_>]) -> Self {
        Self {
            buf: raw.into(),
            is_raw: true,
            fields: headers.iter().map(|h| (offset_in(raw, h.name.as_bytes()), offset_in(raw, h.value))).collect(),
        }
    }

    /// Position of a slice that borrows from the raw head.
    pub(crate) fn range_of(&self, s: &[u8]) -> Range<u32> {
        offset_in(&self.buf, s)
    }

    pub(crate) fn slice(&self, r: &Range<u32>) -> &[u8] {
        self.buf.get(r.start as usize..r.end as usize).unwrap_or_default()
    }

    /// The head as received; empty if it was given as parts.
    pub(crate) fn raw(&self) -> &[u8] {
        if self.is_raw { &self.buf } else { &[] }
    }

    /// Every field as (name, value), in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields.iter().map(|(n, v)| {
            // Names are tokens (httparse or `PartsBuilder::field` checked), so ASCII.
            let name = core::str::from_utf8(self.slice(n)).unwrap_or("");
            (name, self.slice(v))
        })
    }

    /// Every value of the fields called `name` (case-insensitive).
    pub(crate) fn all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    /// The value of the only field called `name`; `Err` if it appears twice.
    pub(crate) fn single(&self, name: &str) -> Result<Option<&[u8]>, ()> {
        let mut values = self.all(name);
        let first = values.next();
        if values.next().is_some() { Err(()) } else { Ok(first) }
    }

    /// The comma-separated list elements of every `name` field, trimmed,
    /// empty elements skipped (RFC 9110 §5.6.1). Linear in the input.
    pub(crate) fn list<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + use<'a, 'n> {
        self.all(name).flat_map(|v| v.split(|&b| b == b',')).map(trim).filter(|t| !t.is_empty())
    }

    /// Whether any list element of the `name` fields equals `token`, ignoring case.
    pub(crate) fn has_token(&self, name: &str, token: &str) -> bool {
        self.list(name).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter().map(|(n, v)| (n, alloc::string::String::from_utf8_lossy(v)))).finish()
    }
}

/// Collects a head that another HTTP stack parsed, part by part, into the
/// one buffer of a [`Headers`], checking each part against the grammar
/// httparse enforces on a received head, so both kinds of head pass the
/// same rules.
#[derive(Default)]
pub(crate) struct PartsBuilder {
    buf: Vec<u8>,
    fields: Vec<(Range<u32>, Range<u32>)>,
}

impl PartsBuilder {
    /// Stores a part that is not a header field (a method, a target) and
    /// returns where it is.
    pub(crate) fn part(&mut self, bytes: &[u8]) -> Range<u32> {
        let start = self.buf.len() as u32;
        self.buf.extend_from_slice(bytes);
        start..self.buf.len() as u32
    }

    /// Stores a header field: a token name and a value without control
    /// characters other than tab, trimmed as httparse trims it.
    pub(crate) fn field(&mut self, name: &str, value: &[u8]) -> Result<(), HandshakeError> {
        if !is_token(name) || !is_field_value(value) {
            return Err(HandshakeError::Malformed);
        }
        let name = self.part(name.as_bytes());
        let value = self.part(trim(value));
        self.fields.push((name, value));
        Ok(())
    }

    /// The collected fields. Positions are `u32`, like a received head's,
    /// so more than 4 GiB of parts is refused rather than misplaced.
    pub(crate) fn finish(self) -> Result<Headers, HandshakeError> {
        if u32::try_from(self.buf.len()).is_err() {
            return Err(HandshakeError::TooLarge);
        }
        Ok(Headers { buf: self.buf.into_boxed_slice(), is_raw: false, fields: self.fields })
    }
}

/// Whether `s` may be a request target as httparse reads one: visible ASCII
/// or bytes of UTF-8, no spaces or control characters.
pub(crate) fn is_target(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b > b' ' && b != 0x7F)
}

/// The position of `part` inside `whole`, which it borrows from.
pub(crate) fn offset_in(whole: &[u8], part: &[u8]) -> Range<u32> {
    let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize) as u32;
    start..start.wrapping_add(part.len() as u32)
}

/// Strips optional whitespace (space and tab) from both ends.
pub(crate) fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &s[start..end]
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2): a header name, a
/// subprotocol name.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'%'
                        | b'&'
                        | b'\''
                        | b'*'
                        | b'+'
                        | b'-'
                        | b'.'
                        | b'^'
                        | b'_'
                        | b'`'
                        | b'|'
                        | b'~'
                )
        })
}

/// Whether `s` may be sent as a header field value: no control characters
/// other than tab, so no CR or LF to split the head.
pub(crate) fn is_field_value(s: &[u8]) -> bool {
    s.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7F))
}

/// Maps an httparse error to ours.
pub(crate) fn parse_error(e: httparse::Error) -> HandshakeError {
    match e {
        httparse::Error::TooManyHeaders => HandshakeError::TooManyHeaders,
        _ => HandshakeError::Malformed,
    }
}

/// Appends a header line.
pub(crate) fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends a number in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists() {
        let raw = b"Connection: keep-alive, Upgrade\r\nconnection: ,, x \r\n\r\n";
        let mut storage = [httparse::EMPTY_HEADER; 4];
        let httparse::Status::Complete((_, parsed)) = httparse::parse_headers(raw, &mut storage).unwrap() else {
            unreachable!("complete")
        };
        let h = Headers::new(raw, parsed);
        assert!(h.has_token("CONNECTION", "upgrade"));
        assert!(h.has_token("connection", "X"));
        assert!(!h.has_token("connection", "keep"));
        assert_eq!(h.list("connection").count(), 3);
        assert!(h.single("connection").is_err());
        assert_eq!(h.single("host"), Ok(None));
    }

    #[test]
    fn parts_match_a_parsed_head() {
        let raw = b"Host: a\r\nX-List:  b, c \r\n\r\n";
        let mut storage = [httparse::EMPTY_HEADER; 4];
        let httparse::Status::Complete((_, parsed)) = httparse::parse_headers(raw, &mut storage).unwrap() else {
            unreachable!("complete")
        };
        let parsed = Headers::new(raw, parsed);
        let mut b = PartsBuilder::default();
        let target = b.part(b"/x");
        b.field("Host", b"a").unwrap();
        b.field("X-List", b"  b, c ").unwrap();
        let parts = b.finish().unwrap();
        assert_eq!(parts.slice(&target), b"/x");
        assert!(parts.iter().eq(parsed.iter()), "{parts:?} vs {parsed:?}");
        assert_eq!((parsed.raw(), parts.raw()), (&raw[..], &b""[..]));

        let mut b = PartsBuilder::default();
        assert_eq!(b.field(":authority", b"a"), Err(HandshakeError::Malformed));
        assert_eq!(b.field("X", b"a\r\nY: b"), Err(HandshakeError::Malformed));
        assert_eq!(b.field("", b""), Err(HandshakeError::Malformed));
    }

    #[test]
    fn tokens_and_values() {
        assert!(is_token("chat.v2"));
        assert!(!is_token("a b") && !is_token("") && !is_token("a,b"));
        assert!(is_field_value(b"x\ty z \xC3\xA9"));
        assert!(!is_field_value(b"a\r\nInjected: 1") && !is_field_value(b"a\0"));
        assert!(is_target("/caf\u{e9}?a=1") && is_target("*"));
        assert!(!is_target("") && !is_target("/a b") && !is_target("/a\t") && !is_target("/\x7F"));
        assert_eq!(trim(b" \t a b \t"), b"a b");
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        push_decimal(&mut out, 40213);
        assert_eq!(out, b"040213");
    }
}
