//! The opening handshake (RFC 6455 §4): the HTTP/1.1 upgrade request and
//! response, the accept key, and subprotocol negotiation.
//!
//! [`server`] validates requests and writes responses, [`client`] builds
//! requests from a URL and validates responses. Both parse with `httparse`
//! only once the whole head has arrived: a scanner looks for the blank
//! line incrementally, so a head trickled in byte by byte costs linear time
//! (tungstenite's CVE-2023-43669 re-parsed the whole buffer on every read).

pub mod client;
pub mod server;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use base64::Engine as _;
use sha1::{Digest, Sha1};

use crate::error::HandshakeError;

pub use client::{ClientHandshake, Response};
pub use server::{Accept, Reject, Request};

/// The GUID that RFC 6455 §1.3 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` value: the
/// base64 of the SHA-1 of the key followed by the RFC's GUID.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// let accept = wscore::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(&accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    let written = base64::engine::general_purpose::STANDARD.encode_slice(digest, &mut out).unwrap_or(0);
    debug_assert_eq!(written, 28);
    out
}

/// Finds the end of an HTTP head (`\r\n\r\n`) in a buffer that grows, looking
/// at each byte a bounded number of times.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadScanner {
    scanned: usize,
    /// Bytes examined over all calls, for [`Stats`](crate::connection::Stats).
    work: u64,
}

impl HeadScanner {
    /// Returns the length of the head including the blank line, once `buf`
    /// (which only ever grows at its end) contains it.
    pub(crate) fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        // Resume three bytes back so a terminator split across reads is found.
        let from = self.scanned.saturating_sub(3);
        self.scanned = buf.len();
        self.work += buf.len().saturating_sub(from) as u64;
        buf.get(from..)?.windows(4).position(|w| w == b"\r\n\r\n").map(|i| from + i + 4)
    }

    /// How many bytes have been examined in all.
    pub(crate) fn work(&self) -> u64 {
        self.work
    }
}

/// The header fields of a parsed head, owned: one copy of the raw bytes and
/// the positions of each name and value in it.
#[derive(Clone)]
pub(crate) struct Headers {
    raw: Box<[u8]>,
    fields: Vec<(Range<u32>, Range<u32>)>,
}

impl Headers {
    /// Copies `raw` and records where each of httparse's `headers` (which
    /// borrow from `raw`) sit in it.
    pub(crate) fn new(raw: &[u8], headers: &[httparse::Header<'_>]) -> Self {
        Self {
            raw: raw.into(),
            fields: headers.iter().map(|h| (offset_in(raw, h.name.as_bytes()), offset_in(raw, h.value))).collect(),
        }
    }

    /// Position of a slice that borrows from the raw head.
    pub(crate) fn range_of(&self, s: &[u8]) -> Range<u32> {
        offset_in(&self.raw, s)
    }

    pub(crate) fn slice(&self, r: &Range<u32>) -> &[u8] {
        self.raw.get(r.start as usize..r.end as usize).unwrap_or_default()
    }

    pub(crate) fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// Every field as (name, value), in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.fields.iter().map(|(n, v)| {
            // httparse only accepts token characters in names, so this holds.
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
pub(crate) fn is_field_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7F))
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
    fn scanner_finds_split_terminators_and_scans_linearly() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for step in 1..=head.len() {
            let mut s = HeadScanner::default();
            let mut found = None;
            let mut len = 0;
            while found.is_none() && len < head.len() {
                len = (len + step).min(head.len());
                found = s.find_end(&head[..len]);
            }
            assert_eq!(found, Some(head.len() - 4), "step {step}");
            assert!(s.work() <= 4 * head.len() as u64, "step {step}: {}", s.work());
        }
    }

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
    fn tokens_and_values() {
        assert!(is_token("chat.v2"));
        assert!(!is_token("a b") && !is_token("") && !is_token("a,b"));
        assert!(is_field_value("x\ty z"));
        assert!(!is_field_value("a\r\nInjected: 1"));
        assert_eq!(trim(b" \t a b \t"), b"a b");
        let mut out = Vec::new();
        push_decimal(&mut out, 0);
        push_decimal(&mut out, 40213);
        assert_eq!(out, b"040213");
    }
}
