//! The message layer: message kinds, whole messages as handed to the caller,
//! and incremental, fail-fast UTF-8 validation of text (RFC 6455 §8.1).

use alloc::string::String;
use alloc::vec::Vec;

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
/// Each piece is checked once, at SIMD speed: a character cut off at the end
/// of a piece (at most three bytes) is set aside first, so the SIMD check
/// only ever sees whole characters; the cut-off prefix is checked on its own
/// (an impossible prefix such as `F4 90` fails at once) and completed by the
/// next piece.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Utf8Validator {
    partial: [u8; 4],
    partial_len: u8,
}

impl Utf8Validator {
    /// Feeds the next bytes. `Err` means the text can never become valid.
    pub(crate) fn feed(&mut self, mut data: &[u8]) -> Result<(), ()> {
        if self.partial_len > 0 {
            let have = usize::from(self.partial_len);
            let need = sequence_len(self.partial[0]) - have;
            let take = need.min(data.len());
            self.partial[have..have + take].copy_from_slice(&data[..take]);
            data = &data[take..];
            let filled = have + take;
            match check_prefix(&self.partial[..filled])? {
                true => self.partial_len = 0,
                false => {
                    self.partial_len = filled as u8;
                    return Ok(());
                }
            }
        }
        let cut = incomplete_tail(data);
        let (whole, tail) = data.split_at(cut);
        if simdutf8::basic::from_utf8(whole).is_err() {
            return Err(());
        }
        if !tail.is_empty() {
            // `tail` starts with a lead byte and is shorter than its sequence.
            check_prefix(tail)?;
            self.partial[..tail.len()].copy_from_slice(tail);
            self.partial_len = tail.len() as u8;
        }
        Ok(())
    }

    /// Whether the text ends on a character boundary (checked at message end).
    pub(crate) fn is_complete(&self) -> bool {
        self.partial_len == 0
    }

    pub(crate) fn reset(&mut self) {
        self.partial_len = 0;
    }
}

/// Checks at most four bytes that start with a lead byte: `Ok(true)` if
/// they are one whole character, `Ok(false)` if they may still become one,
/// `Err` if no continuation can make them valid.
fn check_prefix(bytes: &[u8]) -> Result<bool, ()> {
    match core::str::from_utf8(bytes) {
        Ok(_) => Ok(true),
        Err(e) if e.error_len().is_none() => Ok(false),
        Err(_) => Err(()),
    }
}

/// Where a character cut off by the end of `data` starts (`data.len()` if
/// none is): the last lead byte within three bytes of the end, if its
/// sequence is longer than what follows it.
fn incomplete_tail(data: &[u8]) -> usize {
    let len = data.len();
    for back in 1..=len.min(3) {
        let b = data[len - back];
        if b & 0xC0 != 0x80 {
            // A lead byte (or ASCII): cut only if its sequence is longer.
            return if b >= 0xC0 && sequence_len(b) > back { len - back } else { len };
        }
    }
    len
}

/// Validates a whole text as UTF-8 with SIMD instructions where the CPU has
/// them (`simdutf8`, several times faster than `core::str::from_utf8` on
/// both ASCII and multi-byte text); `None` if it is not UTF-8.
#[inline]
pub(crate) fn str_from_utf8(bytes: &[u8]) -> Option<&str> {
    simdutf8::basic::from_utf8(bytes).ok()
}

/// Text that a UTF-8 check in this crate has already passed, as `&str`
/// without checking it again: the crate's only `unsafe` code.
///
/// Text is validated as it arrives (fail fast, [`Utf8Validator`]), or in
/// one pass when a frame arrives whole; without this, handing it out as
/// `&str` took a second full pass over every text message (measured: 64
/// KiB of dense multi-byte text in 16 KiB reads, 52 of 131 µs per batch of
/// 8 went to validation against 25 µs for one pass), and so did every
/// [`Utf8Payload::as_str`].
///
/// Callers pass only bytes that passed [`Utf8Validator`] (every piece, and
/// complete at the end) or [`str_from_utf8`], unchanged since: the receive
/// path marks a message `checked` only then, and [`Utf8Payload`] is built
/// only from checked bytes or from a `str`. Debug and fuzz builds check
/// again here and panic if that ever fails; the `connection_ops` fuzz
/// target drives text through every receive path (pieces, fragments,
/// inflation, peeks, owned and borrowed events).
#[allow(unsafe_code)]
#[inline]
pub(crate) fn str_from_checked(bytes: &[u8]) -> &str {
    if cfg!(any(debug_assertions, fuzzing)) {
        assert!(str_from_utf8(bytes).is_some(), "text marked as checked is not UTF-8");
    }
    // SAFETY: `bytes` passed a UTF-8 check in this crate and has not been
    // changed since (see above), which is what `from_utf8_unchecked` needs.
    unsafe { core::str::from_utf8_unchecked(bytes) }
}

/// The length of the sequence a lead byte (0xC0 and up) starts; bytes that
/// can never lead (0xF8 and up) count as 4 and then fail the check.
fn sequence_len(lead: u8) -> usize {
    match lead {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        _ => 4,
    }
}

#[cfg(feature = "bytes")]
pub use owned::{OwnedMessage, Payload, Utf8Payload};

#[cfg(feature = "bytes")]
mod owned {
    use alloc::string::String;
    use alloc::vec::Vec;
    use core::fmt;
    use core::hash::{Hash, Hasher};

    use bytes::Bytes;

    use super::{Message, MessageKind};

    /// Payloads up to this long are kept inline rather than shared.
    const INLINE: usize = 38;

    /// The payload of an owned message or control frame.
    ///
    /// A payload received by [`Connection::poll_owned`](crate::Connection::poll_owned)
    /// shares the connection's receive buffer: it is split off as a
    /// [`Bytes`], not copied. Sharing costs two atomic reference-count
    /// updates, more than copying a few bytes, so payloads of at most 38
    /// bytes are copied into the value itself instead. A shared payload
    /// keeps its whole receive buffer alive while it lives: copy small
    /// payloads you keep for long ([`Payload::copy_from_slice`]).
    #[derive(Clone)]
    pub struct Payload(Repr);

    #[derive(Clone)]
    enum Repr {
        Inline { len: u8, data: [u8; INLINE] },
        Shared(Bytes),
    }

    impl Payload {
        /// An empty payload.
        pub const fn new() -> Self {
            Self(Repr::Inline { len: 0, data: [0; INLINE] })
        }

        /// A payload holding a copy of `data`.
        pub fn copy_from_slice(data: &[u8]) -> Self {
            Self::inline(data).unwrap_or_else(|| Self(Repr::Shared(Bytes::copy_from_slice(data))))
        }

        /// `data` copied inline if it is short enough.
        pub(crate) fn inline(data: &[u8]) -> Option<Self> {
            if data.len() > INLINE {
                return None;
            }
            let mut inline = [0; INLINE];
            inline[..data.len()].copy_from_slice(data);
            Some(Self(Repr::Inline { len: data.len() as u8, data: inline }))
        }

        /// The bytes.
        pub fn as_bytes(&self) -> &[u8] {
            match &self.0 {
                Repr::Inline { len, data } => &data[..usize::from(*len)],
                Repr::Shared(bytes) => bytes,
            }
        }

        /// The payload as [`Bytes`]: free for a shared payload, a copy for
        /// an inline one.
        pub fn into_bytes(self) -> Bytes {
            match self.0 {
                Repr::Inline { len, data } => Bytes::copy_from_slice(&data[..usize::from(len)]),
                Repr::Shared(bytes) => bytes,
            }
        }

        /// The shared buffer, if the payload is not inline.
        pub(crate) fn shared(&self) -> Option<&Bytes> {
            match &self.0 {
                Repr::Inline { .. } => None,
                Repr::Shared(bytes) => Some(bytes),
            }
        }
    }

    impl Default for Payload {
        fn default() -> Self {
            Self::new()
        }
    }

    impl core::ops::Deref for Payload {
        type Target = [u8];
        fn deref(&self) -> &[u8] {
            self.as_bytes()
        }
    }

    impl AsRef<[u8]> for Payload {
        fn as_ref(&self) -> &[u8] {
            self.as_bytes()
        }
    }

    impl From<Bytes> for Payload {
        fn from(bytes: Bytes) -> Self {
            Self(Repr::Shared(bytes))
        }
    }

    impl From<Vec<u8>> for Payload {
        fn from(vec: Vec<u8>) -> Self {
            Self(Repr::Shared(Bytes::from(vec)))
        }
    }

    impl From<&'static [u8]> for Payload {
        fn from(data: &'static [u8]) -> Self {
            Self(Repr::Shared(Bytes::from_static(data)))
        }
    }

    impl From<Payload> for Bytes {
        fn from(payload: Payload) -> Self {
            payload.into_bytes()
        }
    }

    impl PartialEq for Payload {
        fn eq(&self, other: &Self) -> bool {
            self.as_bytes() == other.as_bytes()
        }
    }

    impl Eq for Payload {}

    impl PartialEq<[u8]> for Payload {
        fn eq(&self, other: &[u8]) -> bool {
            self.as_bytes() == other
        }
    }

    impl Hash for Payload {
        fn hash<H: Hasher>(&self, state: &mut H) {
            self.as_bytes().hash(state);
        }
    }

    impl fmt::Debug for Payload {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(self.as_bytes(), f)
        }
    }

    /// A [`Payload`] that is valid UTF-8: the text of an owned message,
    /// checked once when it was received (or built from a `str`), so
    /// [`as_str`](Self::as_str) costs nothing.
    #[derive(Clone, Default, PartialEq, Eq, Hash)]
    pub struct Utf8Payload(Payload);

    impl Utf8Payload {
        /// Wraps bytes already validated as UTF-8.
        pub(crate) fn new_unchecked(payload: Payload) -> Self {
            Self(payload)
        }

        /// Checks `payload` and wraps it; gives it back if it is not UTF-8.
        pub fn try_from_payload(payload: Payload) -> Result<Self, Payload> {
            match super::str_from_utf8(&payload) {
                Some(_) => Ok(Self(payload)),
                None => Err(payload),
            }
        }

        /// The text (not checked again: it was when it was built).
        pub fn as_str(&self) -> &str {
            super::str_from_checked(&self.0)
        }

        /// The bytes.
        pub fn as_bytes(&self) -> &[u8] {
            &self.0
        }

        /// The length in bytes.
        pub fn len(&self) -> usize {
            self.0.len()
        }

        /// Whether the text is empty.
        pub fn is_empty(&self) -> bool {
            self.0.is_empty()
        }

        /// The bytes as a [`Payload`].
        pub fn into_payload(self) -> Payload {
            self.0
        }

        /// The bytes as a [`Payload`], borrowed.
        pub fn as_payload(&self) -> &Payload {
            &self.0
        }
    }

    impl From<String> for Utf8Payload {
        fn from(text: String) -> Self {
            Self(Payload::from(text.into_bytes()))
        }
    }

    impl From<&'static str> for Utf8Payload {
        fn from(text: &'static str) -> Self {
            Self(Payload::from(text.as_bytes()))
        }
    }

    impl AsRef<[u8]> for Utf8Payload {
        fn as_ref(&self) -> &[u8] {
            self.as_bytes()
        }
    }

    impl PartialEq<str> for Utf8Payload {
        fn eq(&self, other: &str) -> bool {
            self.as_bytes() == other.as_bytes()
        }
    }

    impl PartialEq<&str> for Utf8Payload {
        fn eq(&self, other: &&str) -> bool {
            self.as_bytes() == other.as_bytes()
        }
    }

    impl fmt::Display for Utf8Payload {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.as_str())
        }
    }

    impl fmt::Debug for Utf8Payload {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(self.as_str(), f)
        }
    }

    /// A whole message that owns its payload: what
    /// [`Connection::poll_owned`](crate::Connection::poll_owned) returns and
    /// [`Connection::send_owned`](crate::Connection::send_owned) takes.
    ///
    /// ```
    /// use wscore::{OwnedMessage, MessageKind};
    /// let text = OwnedMessage::text("hello");
    /// assert_eq!((text.kind(), text.as_bytes()), (MessageKind::Text, &b"hello"[..]));
    /// let binary = OwnedMessage::binary(vec![1, 2, 3]);
    /// assert_eq!(binary.len(), 3);
    /// ```
    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    pub enum OwnedMessage {
        /// A text message.
        Text(Utf8Payload),
        /// A binary message.
        Binary(Payload),
    }

    impl OwnedMessage {
        /// A text message.
        pub fn text(text: impl Into<Utf8Payload>) -> Self {
            Self::Text(text.into())
        }

        /// A binary message.
        pub fn binary(data: impl Into<Payload>) -> Self {
            Self::Binary(data.into())
        }

        /// The message kind.
        pub fn kind(&self) -> MessageKind {
            match self {
                Self::Text(_) => MessageKind::Text,
                Self::Binary(_) => MessageKind::Binary,
            }
        }

        /// The payload bytes.
        pub fn as_bytes(&self) -> &[u8] {
            match self {
                Self::Text(text) => text.as_bytes(),
                Self::Binary(data) => data,
            }
        }

        /// The payload length in bytes.
        pub fn len(&self) -> usize {
            self.as_bytes().len()
        }

        /// Whether the payload is empty.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// A borrowed view.
        pub fn as_message(&self) -> Message<'_> {
            match self {
                Self::Text(text) => Message::Text(text.as_str()),
                Self::Binary(data) => Message::Binary(data),
            }
        }

        /// The payload, whatever the kind.
        pub fn into_payload(self) -> Payload {
            match self {
                Self::Text(text) => text.into_payload(),
                Self::Binary(data) => data,
            }
        }
    }

    impl From<Message<'_>> for OwnedMessage {
        /// Copies a borrowed message.
        fn from(message: Message<'_>) -> Self {
            match message {
                Message::Text(text) => Self::Text(Utf8Payload(Payload::copy_from_slice(text.as_bytes()))),
                Message::Binary(data) => Self::Binary(Payload::copy_from_slice(data)),
            }
        }
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
