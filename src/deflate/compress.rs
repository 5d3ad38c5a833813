//! The sending half of permessage-deflate: compresses outgoing messages
//! into the caller's buffer, and whole messages once for many connections.

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output, create_comp_flags_from_zip_params,
};

use super::encoder::Encoder;
use super::{DeflateConfig, DeflateParams, MAX_WINDOW_BITS, TAIL, direction};
use crate::role::Role;

/// Heap bytes of a compressor state: the struct (whose LZ code buffer is
/// inline) plus what miniz_oxide 0.9.1 boxes inside it: the dictionary
/// (32 KiB + 258), the hash heads and chains (64 KiB each), the output
/// buffer (85,196) and the Huffman tables (4,320). About 312 KiB.
const COMPRESSOR_BYTES: usize = size_of::<CompressorOxide>() + (32 * 1024 + 258) + 2 * 64 * 1024 + 85_196 + 4_320;

/// Compresses what one end sends.
///
/// Without context takeover in our direction every message is compressed
/// on its own by our [`Encoder`], which needs no reset between messages
/// (miniz_oxide's state would have to be zeroed, 312 KiB, which costs more
/// than compressing a 1 KiB message). With context takeover the messages
/// form one miniz_oxide stream, whose state is the context.
pub(crate) struct Compressor {
    level: u8,
    threshold: usize,
    window_bits: u8,
    no_context_takeover: bool,
    state: Option<Box<CompressorOxide>>,
    /// Compresses without context takeover (boxed on first use: a
    /// negotiated connection that sends nothing holds only this record).
    encoder: Option<Box<Encoder>>,
    /// A message has begun and not ended: its context must stay.
    in_message: bool,
    /// The state holds history that a later message may refer back to.
    context: bool,
}

impl core::fmt::Debug for Compressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Compressor")
            .field("window_bits", &self.window_bits)
            .field("no_context_takeover", &self.no_context_takeover)
            .field("allocated", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

impl Compressor {
    /// The compressor for what `role` sends under the agreed `params`.
    pub(crate) fn new(params: DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        let (window_bits, no_context_takeover) = direction(&params, role);
        Self {
            level: config.level,
            threshold: config.threshold,
            window_bits,
            no_context_takeover,
            state: None,
            encoder: None,
            in_message: false,
            context: false,
        }
    }

    /// A compressor whose every message starts from a fresh context, for
    /// messages compressed once and sent on many connections (see
    /// [`compress_message`]). `level` is 0 to 10, `window_bits` 8 to 15.
    pub(crate) fn standalone(level: u8, window_bits: u8) -> Self {
        let window_bits = window_bits.clamp(8, MAX_WINDOW_BITS);
        Self {
            level: level.min(10),
            threshold: 0,
            window_bits,
            no_context_takeover: true,
            state: None,
            encoder: None,
            in_message: false,
            context: false,
        }
    }

    /// The window our messages are compressed with, `2^bits` bytes: the
    /// peer's inflater must accept at least that.
    pub(crate) fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Whether a message of `len` bytes should be compressed.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// Appends to `out` the compressed form of the next piece of the
    /// message being sent; with `fin` the message ends and its sync-flush
    /// tail is left out (RFC 7692 §7.2.1).
    pub(crate) fn compress_into(&mut self, data: &[u8], fin: bool, out: &mut Vec<u8>) {
        let level = self.level;
        if self.no_context_takeover {
            // Each piece on its own: the pieces of one message do not refer
            // to each other either, which only costs ratio.
            self.encoder.get_or_insert_default().compress(data, level, self.window_bits, out);
            if fin {
                out.truncate(out.len() - TAIL.len());
            }
            self.in_message = !fin;
            return;
        }
        let state = self.state.get_or_insert_with(|| {
            let flags = create_comp_flags_from_zip_params(i32::from(level), -i32::from(MAX_WINDOW_BITS), 0);
            Box::new(CompressorOxide::new(flags))
        });
        let start = out.len();
        if self.window_bits >= MAX_WINDOW_BITS {
            compress_all(state, data, TDEFLFlush::Sync, out);
        } else {
            // miniz always keeps a 32 KiB window; a smaller one is honoured
            // by compressing at most the window at a time and ending each
            // piece with a full flush, after which nothing refers back.
            let piece = 1usize << self.window_bits;
            if data.is_empty() {
                compress_all(state, data, TDEFLFlush::Full, out);
            }
            for chunk in data.chunks(piece) {
                compress_all(state, chunk, TDEFLFlush::Full, out);
            }
        }
        if fin && out[start..].ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        self.in_message = !fin;
        self.context = self.window_bits >= MAX_WINDOW_BITS;
    }

    /// Makes the next message refer to nothing sent before it, between
    /// messages. Needed after a message compressed elsewhere (a prepared
    /// one, [`compress_message`]) was sent in this direction with context
    /// takeover: the peer's window then holds that message, ours does not.
    #[cfg(any(test, feature = "bytes"))]
    pub(crate) fn forget(&mut self) {
        debug_assert!(!self.in_message, "forget() inside a message");
        if let Some(state) = self.state.as_deref_mut().filter(|_| self.context) {
            // A message's sync flush left nothing pending to lose.
            state.reset();
            self.context = false;
        }
    }

    /// Heap bytes held by the compressor state (0 when it is not allocated).
    pub(crate) fn memory(&self) -> usize {
        self.encoder.as_ref().map_or(0, |e| size_of::<Encoder>() + e.memory())
            + if self.state.is_some() { COMPRESSOR_BYTES } else { 0 }
    }

    /// Heap bytes [`release`](Self::release) would free now: the state,
    /// when it holds nothing a later piece needs: without context takeover
    /// always (every piece stands alone), with it when no message is in
    /// progress and the window is below 15 bits (whose full flushes leave
    /// no context).
    pub(crate) fn releasable(&self) -> usize {
        if self.no_context_takeover || !(self.in_message || self.context) { self.memory() } else { 0 }
    }

    /// Frees the compressor state if it holds nothing a later message
    /// needs (see [`releasable`](Self::releasable)); the next message
    /// allocates it again.
    pub(crate) fn release(&mut self) {
        if self.releasable() > 0 {
            self.state = None;
            self.encoder = None;
        }
    }

    /// Frees the state between messages even if it holds history, for a
    /// connection gone quiet: context takeover lets us refer back to
    /// earlier messages but does not oblige us to. The next message starts
    /// from a fresh context, which the peer inflates like any other (every
    /// message ends at a block boundary, and its window still holds what we
    /// sent, which we no longer use). Only that message's ratio suffers.
    pub(crate) fn release_idle(&mut self) {
        if !self.in_message {
            self.state = None;
            self.context = false;
        }
        if self.no_context_takeover {
            self.encoder = None;
        }
    }
}

/// Compresses `data` as one whole message with a fresh context into `out`
/// (appended, sync-flush tail removed), at `level` 0 to 10, with a window
/// of `2^window_bits` bytes (8 to 15).
///
/// The result is valid on any connection in a direction whose window is at
/// least that large, with or without context takeover: it refers to
/// nothing before itself, and every message there ends at a block
/// boundary, so it is a valid continuation of the peer's stream. A
/// connection with context takeover must [`forget`](Compressor::forget)
/// after sending it. This builds an encoder for the one message; to
/// compress many, keep a [`Compressor::standalone`] and call
/// [`compress_into`](Compressor::compress_into) with `fin` on it, which
/// keeps the hash table and the last Huffman code for the next message.
#[cfg(any(test, feature = "bytes"))]
pub(crate) fn compress_message(data: &[u8], level: u8, window_bits: u8, out: &mut Vec<u8>) {
    Compressor::standalone(level, window_bits).compress_into(data, true, out);
}

/// Compresses all of `data` with `flush`, appending the output to `out`.
fn compress_all(state: &mut CompressorOxide, mut data: &[u8], flush: TDEFLFlush, out: &mut Vec<u8>) {
    loop {
        let (status, consumed) = compress_to_output(state, data, flush, |bytes| {
            out.extend_from_slice(bytes);
            true
        });
        data = &data[consumed.min(data.len())..];
        if status != TDEFLStatus::Okay || data.is_empty() {
            return;
        }
    }
}
