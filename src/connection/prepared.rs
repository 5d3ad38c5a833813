//! Prepared messages: framed (and compressed) once, then queued on any
//! number of connections, as a server broadcasting to its clients does.

use alloc::vec::Vec;

use bytes::Bytes;

use crate::deflate::DeflateConfig;
use crate::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, RSV1};
use crate::message::{Message, MessageKind};

/// A message framed once, to be sent on many connections with
/// [`Connection::send_prepared`](crate::Connection::send_prepared).
///
/// The frame (one frame, FIN set, unmasked) is built when the message is
/// prepared. A server queues it on each connection by sharing the bytes (a
/// reference count, no copy; messages under 2 KiB are copied, which is
/// cheaper); a client has to mask, so it copies. With
/// [`PreparedMessage::with_deflate`] the message is also compressed once,
/// with a fresh context and a window of `2^window_bits` bytes: connections
/// that negotiated permessage-deflate with at least that window send the
/// compressed frame (and their own compressor then starts a new context,
/// since the peer's history now holds the prepared message); the others
/// send the plain frame, which is always valid.
///
/// ```
/// use wscore::{Message, PreparedMessage};
/// let prepared = PreparedMessage::new(Message::Text("tick"));
/// assert_eq!(prepared.len(), 4);
/// ```
#[derive(Clone, Debug)]
pub struct PreparedMessage {
    kind: MessageKind,
    len: usize,
    frame: Bytes,
    compressed: Option<(Bytes, u8)>,
}

impl PreparedMessage {
    /// Frames `message` for sending as it is.
    pub fn new(message: Message<'_>) -> Self {
        let data = message.as_bytes();
        Self { kind: message.kind(), len: data.len(), frame: frame(message.kind(), 0, data), compressed: None }
    }

    /// Frames `message` as it is and also compressed with `config`'s level
    /// and a window of `2^window_bits` bytes (8 to 15; 15 fits peers that
    /// did not limit the server's window). Messages shorter than
    /// `config.threshold` are not compressed.
    pub fn with_deflate(message: Message<'_>, config: &DeflateConfig, window_bits: u8) -> Self {
        let mut prepared = Self::new(message);
        let data = message.as_bytes();
        if data.len() >= config.threshold {
            let bits = window_bits.clamp(8, 15);
            let mut compressed = Vec::new();
            crate::deflate::compress_message(data, config.level, bits, &mut compressed);
            prepared.compressed = Some((frame(message.kind(), RSV1, &compressed), bits));
        }
        prepared
    }

    /// Frames `message` as it is and also compressed by `compressor`
    /// (whatever its length), which a broadcast loop keeps from one message
    /// to the next instead of building a compressor for each.
    ///
    /// ```
    /// use wscore::deflate::MessageCompressor;
    /// use wscore::{Message, PreparedMessage};
    /// let mut compressor = MessageCompressor::new(1, 15);
    /// let text = "tick ".repeat(100);
    /// let prepared = PreparedMessage::with_compressor(Message::Text(&text), &mut compressor);
    /// assert!(prepared.compressed_len().unwrap() < text.len());
    /// ```
    pub fn with_compressor(message: Message<'_>, compressor: &mut crate::deflate::MessageCompressor) -> Self {
        let mut prepared = Self::new(message);
        let mut compressed = Vec::new();
        compressor.compress(message.as_bytes(), &mut compressed);
        prepared.compressed = Some((frame(message.kind(), RSV1, &compressed), compressor.window_bits()));
        prepared
    }

    /// The message kind.
    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    /// The payload length, uncompressed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The length of the compressed payload, if the message was compressed.
    pub fn compressed_len(&self) -> Option<usize> {
        self.compressed.as_ref().map(|(frame, _)| frame.len() - header_len(frame))
    }

    pub(crate) fn frame(&self) -> &Bytes {
        &self.frame
    }

    pub(crate) fn compressed(&self) -> Option<(&Bytes, u8)> {
        self.compressed.as_ref().map(|(frame, bits)| (frame, *bits))
    }
}

fn frame(kind: MessageKind, rsv: u8, payload: &[u8]) -> Bytes {
    let opcode = match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    };
    let header = FrameHeader { fin: true, rsv, opcode, mask: None, payload_len: payload.len() as u64 };
    let mut head = [0u8; MAX_HEADER_LEN];
    let head_len = header.encode(&mut head);
    let mut out = Vec::with_capacity(head_len + payload.len());
    out.extend_from_slice(&head[..head_len]);
    out.extend_from_slice(payload);
    Bytes::from(out)
}

fn header_len(frame: &[u8]) -> usize {
    FrameHeader::decode(frame).ok().flatten().map_or(0, |(_, len)| len)
}
