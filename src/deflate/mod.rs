//! permessage-deflate (RFC 7692): the negotiated parameters, their
//! negotiation ([`negotiation`]), and the per-message codec, in two
//! halves that share nothing: a compressor for what we send and a
//! decompressor for what we receive, so a connection's send and receive
//! paths each own one.
//!
//! Compression has two engines. Without context takeover in our
//! direction (and for prepared messages) every message stands alone, and
//! our own encoder (`encoder.rs`) compresses it: greedy LZ77 with a hash
//! table that needs no clearing between messages (it records positions in
//! one ever-growing count, so anything from an earlier message is out of
//! range), matches never further back than `2^bits` bytes for any
//! `*_max_window_bits` from 8 to 15 (8 exactly, where zlib silently uses
//! 9), and the smallest of a dynamic Huffman, fixed Huffman or stored block.
//! Building a Huffman code and its header costs a third of compressing a
//! 1 KiB message, so at levels 1 to 6 a message reuses the code of the one
//! before while that code stays within 2–4% of the entropy of the new
//! message's symbols (a code built for the message itself is about 1%
//! above it); levels 7 to 10 build one per block. Its state is a hash table
//! of about twice the largest message (16 KiB for 1 KiB messages, at most
//! 64 KiB), the block's tokens, one Huffman code (about 3 KiB), and at
//! levels 2 and up a 128 KiB hash chain. miniz_oxide's compressor would
//! have to be reset between messages, zeroing 312 KiB, which costs more
//! than compressing a 1 KiB message.
//!
//! With context takeover the messages form one stream, compressed by
//! `miniz_oxide`, whose state is the context. It always keeps a 32 KiB
//! window: when the peer limits our window to `2^bits` bytes (bits below
//! 15), a message is compressed in pieces of at most `2^bits` bytes, each
//! ended with a full flush, which also drops the match dictionary; no
//! back-reference can then reach further than the piece it is in, and the
//! pieces still form one valid deflate stream. Decompression always uses a
//! 32 KiB window, which accepts streams made with any window from 8 to 15.
//!
//! Decompression keeps its history in a plain (non-wrapping) buffer of the
//! last 32 KiB of output followed by room for new output, so that miniz
//! checks every back-reference against the output that really exists: a
//! distance reaching before the start of the stream is corrupt data (1002),
//! as zlib reports it, not a read of stale bytes. Without context takeover
//! the same buffer serves the next message from its start again.
//!
//! Memory: the compressor state is about 312 KiB with context takeover;
//! without, at level 1, about 23 KiB for messages of 1 KiB and at most
//! 131 KiB for large ones (hash table, tokens, code), 128 KiB more at
//! higher levels. The decompressor is about 58 KiB
//! (10 KiB of tables, 48 KiB of history and room). Each is allocated when
//! its direction first carries a compressed message and kept while
//! messages flow: without context takeover it holds nothing a later
//! message needs, with it the state is the context. Once the connection
//! has been quiet for
//! [`Config::buffer_release_delay`](crate::Config::buffer_release_delay)
//! the compressor is freed either way (takeover permits referring back to
//! earlier messages but does not require it: the next message starts from
//! a fresh context and only its ratio suffers), and the decompressor is
//! freed without takeover or shrunk to its 32 KiB of history with it. So an
//! idle connection holds no deflate memory without context takeover and at
//! most 32 KiB with it. With no delay (`None`) state that holds no context
//! is freed after each message.

mod compress;
mod encoder;
mod inflate;
pub mod negotiation;
#[cfg(test)]
mod tests;

use alloc::vec::Vec;

pub(crate) use compress::Compressor;
#[cfg(any(test, feature = "bytes"))]
pub(crate) use compress::compress_message;
pub(crate) use inflate::Decompressor;

use crate::role::Role;

/// The tail that a sync flush ends with; removed from each compressed
/// message on sending, appended on receiving (RFC 7692 §7.2.1, §7.2.2).
pub(crate) const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// The largest window the compressor uses, `2^15` bytes.
const MAX_WINDOW_BITS: u8 = 15;

/// permessage-deflate settings, in [`Config::deflate`](crate::Config::deflate).
///
/// Parameter names follow RFC 7692 and keep their meaning whichever role we
/// play: a client *offers* them, a server *answers* with them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// Compression level, 0 (store) to 10 (slowest). Default 1: most of the
    /// gain on text and JSON for a fraction of the CPU of level 6.
    pub level: u8,
    /// Messages shorter than this are sent uncompressed (RSV1 clear), since
    /// compressing them costs CPU and rarely saves bytes. Default 1024.
    pub threshold: usize,
    /// Ask (client) or decide (server) that the server compresses each
    /// message on its own, so neither side keeps the server-to-client
    /// compression state between messages. Default `false`.
    pub server_no_context_takeover: bool,
    /// Ask (client) or decide (server) that the client compresses each
    /// message on its own. Default `false`.
    pub client_no_context_takeover: bool,
    /// Client: ask the server to use a window of at most `2^bits` bytes
    /// (8–15). Server: use at most this window even if not asked. Default
    /// `None`.
    pub server_max_window_bits: Option<u8>,
    /// Client: the `client_max_window_bits` value offered (always offered,
    /// since we can honour any limit; `None` offers it without a value).
    /// Server: ask a client that offered the parameter to use at most
    /// `2^bits` bytes. Default `None`.
    pub client_max_window_bits: Option<u8>,
    /// Client: after an offer with parameters, also offer plain
    /// `permessage-deflate`, so a server that declines the parameters can
    /// still accept compression (RFC 7692 §5.1). Default `true`.
    pub fallback_offer: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self {
            level: 1,
            threshold: 1024,
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: None,
            client_max_window_bits: None,
            fallback_offer: true,
        }
    }
}

impl DeflateConfig {
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        let bits_ok = |b: Option<u8>| b.is_none_or(|b| (8..=15).contains(&b));
        if self.level > 10 {
            return Err("deflate level must be 0 to 10");
        }
        if !bits_ok(self.server_max_window_bits) || !bits_ok(self.client_max_window_bits) {
            return Err("deflate window bits must be 8 to 15");
        }
        Ok(())
    }
}

/// The permessage-deflate parameters both ends agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateParams {
    /// The server resets its compression context for every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression context for every message.
    pub client_no_context_takeover: bool,
    /// The server's compression window is at most `2^bits` bytes (15 if unlimited).
    pub server_max_window_bits: u8,
    /// The client's compression window is at most `2^bits` bytes (15 if unlimited).
    pub client_max_window_bits: u8,
}

impl DeflateParams {
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        let ok = |b: u8| (8..=15).contains(&b);
        if ok(self.server_max_window_bits) && ok(self.client_max_window_bits) {
            Ok(())
        } else {
            Err("deflate window bits must be 8 to 15")
        }
    }
}

/// Server side of the negotiation, for a handshake another HTTP stack
/// performs: given the values of the request's `Sec-WebSocket-Extensions`
/// headers, picks the first acceptable permessage-deflate offer and returns
/// the agreed parameters (for [`Connection::frames_only_with_deflate`](crate::Connection::frames_only_with_deflate))
/// and the value of the response's `Sec-WebSocket-Extensions` header.
/// `None`: no acceptable offer; answer without the header.
///
/// ```
/// use wscore::deflate::{DeflateConfig, negotiate};
/// let (params, answer) =
///     negotiate(&["permessage-deflate; client_max_window_bits; server_max_window_bits=10"], &DeflateConfig::default())
///         .unwrap();
/// assert_eq!(answer, "permessage-deflate; server_max_window_bits=10");
/// assert_eq!(params.server_max_window_bits, 10);
/// ```
pub fn negotiate(header_values: &[&str], config: &DeflateConfig) -> Option<(DeflateParams, alloc::string::String)> {
    let elements = header_values
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(crate::http::trim)
        .filter(|e| !e.is_empty());
    negotiation::server_answer(elements, config)
}

impl Default for DeflateParams {
    fn default() -> Self {
        Self {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: MAX_WINDOW_BITS,
            client_max_window_bits: MAX_WINDOW_BITS,
        }
    }
}

/// (window bits, no context takeover) for what `sender` sends.
fn direction(params: &DeflateParams, sender: Role) -> (u8, bool) {
    match sender {
        Role::Server => (params.server_max_window_bits, params.server_no_context_takeover),
        Role::Client => (params.client_max_window_bits, params.client_no_context_takeover),
    }
}

/// Compresses whole messages, each with a fresh context, for a broadcast:
/// one compressed form sent on many connections (see
/// `PreparedMessage::with_compressor`, with the `bytes` feature). Keeping
/// one keeps its hash table and its last Huffman code, which the next
/// message of the same kind usually reuses (see the module notes).
///
/// ```
/// use wscore::deflate::MessageCompressor;
/// let mut compressor = MessageCompressor::new(1, 15);
/// let mut out = Vec::new();
/// compressor.compress(b"hello hello hello hello", &mut out);
/// assert!(!out.is_empty() && out.len() < 23);
/// ```
#[derive(Debug)]
pub struct MessageCompressor(Compressor);

impl MessageCompressor {
    /// At `level` 0 (store) to 10 (slowest), with a window of `2^window_bits` bytes
    /// (8 to 15).
    pub fn new(level: u8, window_bits: u8) -> Self {
        Self(Compressor::standalone(level, window_bits))
    }

    /// Appends the compressed form of the whole message `data` to `out`,
    /// sync-flush tail removed.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.0.compress_into(data, true, out);
    }

    /// The window the messages are compressed with, `2^bits` bytes.
    pub fn window_bits(&self) -> u8 {
        self.0.window_bits()
    }
}
