//! The message layer: message kinds, whole messages as handed to the caller,
//! and incremental, fail-fast UTF-8 validation of text (RFC 6455 §8.1).

use alloc::string::String;
use alloc::vec::Vec;
use core::str::Utf8Error;

/// The kind of a data message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// UTF-8 text.
    Text,
    /// Arbitrary bytes.
    Binary,
}

/// A whole message, borrowed from the connection's buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message, already validated as UTF-8.
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The message kind.
    pub const fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Binary(_) => MessageKind::Binary,
        }
    }

    /// The payload bytes.
    pub const fn as_bytes(&self) -> &'a [u8] {
        match self {
            Self::Text(text) => text.as_bytes(),
            Self::Binary(bytes) => bytes,
        }
    }

    /// The payload length in bytes.
    pub const fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Whether the payload is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A copy of a message in storage that is reused from one message to the
/// next. A message from [`Connection::poll_event`](crate::Connection::poll_event)
/// borrows the connection; copy it here to send it back (an echo) or keep it
/// while the connection is used again, without allocating per message.
///
/// ```
/// use wscore::{Message, MessageBuf};
/// let mut copy = MessageBuf::new();
/// assert_eq!(copy.set(Message::Text("hi")), Message::Text("hi"));
/// assert_eq!(copy.set(Message::Binary(b"\x00\x01")).len(), 2);
/// ```
#[derive(Clone, Debug, Default)]
pub struct MessageBuf {
    text: String,
    binary: Vec<u8>,
    is_text: bool,
}

impl MessageBuf {
    /// Empty storage; it grows to the largest message copied in.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the held message with a copy of `message` and returns it.
    pub fn set(&mut self, message: Message<'_>) -> Message<'_> {
        match message {
            Message::Text(text) => {
                self.text.clear();
                self.text.push_str(text);
            }
            Message::Binary(bytes) => {
                self.binary.clear();
                self.binary.extend_from_slice(bytes);
            }
        }
        self.is_text = message.kind() == MessageKind::Text;
        self.get()
    }

    /// The held message (an empty binary one at first).
    pub fn get(&self) -> Message<'_> {
        if self.is_text { Message::Text(&self.text) } else { Message::Binary(&self.binary) }
    }
}

/// Validates UTF-8 that arrives in pieces, failing on the first byte that
/// can no longer begin or continue a valid sequence (Autobahn 6.4 checks that
/// an endpoint fails mid-frame, not at the end of the message).
///
/// Complete sequences are checked by `core::str::from_utf8`, which already
/// reports a truncated prefix that cannot be completed (an overlong lead, a
/// surrogate, a code point above U+10FFFF) as an error rather than as "needs
/// more"; only a prefix that may still become valid is carried over, in at
/// most three bytes.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// Feeds the next bytes. `Err` means the text can never become valid.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), Utf8Error> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let need = sequence_len(self.partial[0]) - have;
            let take = need.min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            let filled = have + take;
            data = &data[take..];
            match core::str::from_utf8(&self.partial[..filled]) {
                Ok(_) => self.partial_len = 0,
                Err(e) if e.error_len().is_none() => {
                    self.partial_len = filled as u8;
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        // The common case, valid text, takes the SIMD path; only on an error
        // does core's validator say where, and whether more bytes could fix it.
        if str_from_utf8(data).is_some() {
            return Ok(());
        }
        match core::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &data[e.valid_up_to()..];
                self.partial[..tail.len()].copy_from_slice(tail);
                self.partial_len = tail.len() as u8;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the text ends on a character boundary (checked at message end).
    pub(crate) fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    pub(crate) fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// Validates a whole text as UTF-8 with SIMD instructions where the CPU has
/// them (`simdutf8`, several times faster than `core::str::from_utf8` on
/// both ASCII and multi-byte text); `None` if it is not UTF-8.
#[inline]
pub(crate) fn str_from_utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// The length of the sequence a lead byte starts. Only called on bytes that
/// `from_utf8` left as an incomplete prefix, so always a valid lead.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    fn feed_split(bytes: &[u8], splits: &[usize]) -> Result<bool, ()> {
        let mut v = Utf8Validator::default();
        let mut at = 0;
        for &s in splits.iter().chain(core::iter::once(&bytes.len())) {
            v.feed(&bytes[at..s]).map_err(|_| ())?;
            at = s;
        }
        Ok(v.is_complete())
    }

    #[test]
    fn every_split_of_valid_text_is_valid() {
        let text = "aé€𝄞z κόσμε";
        let bytes = text.as_bytes();
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                assert_eq!(feed_split(bytes, &[i, j]), Ok(true), "split {i} {j}");
            }
        }
    }

    #[test]
    fn truncated_text_is_incomplete() {
        assert_eq!(feed_split("€".as_bytes()[..2].as_ref(), &[1]), Ok(false));
    }

    #[test]
    fn fails_on_first_impossible_byte() {
        // Autobahn 6.4.1: the 0xF4 0x90 prefix of a code point above U+10FFFF
        // must fail before the rest of the frame arrives.
        let mut v = Utf8Validator::default();
        v.feed("κόσμε".as_bytes()).unwrap();
        v.feed(&[0xF4]).unwrap();
        assert!(v.feed(&[0x90]).is_err());
        for bad in [&[0xC0][..], &[0xED, 0xA0], &[0xE0, 0x80], &[0xFF], &[0x80]] {
            let mut v = Utf8Validator::default();
            let mut failed = false;
            for b in bad {
                failed |= v.feed(&[*b]).is_err();
            }
            assert!(failed, "{bad:x?}");
        }
    }

    #[test]
    fn invalid_text_fails_at_any_split() {
        let mut bytes: Vec<u8> = "hello €".as_bytes().to_vec();
        bytes.extend_from_slice(&[0xED, 0xA0, 0x80]);
        bytes.extend_from_slice(b"tail");
        for i in 0..=bytes.len() {
            assert_eq!(feed_split(&bytes, &[i]), Err(()), "split {i}");
        }
    }
}
