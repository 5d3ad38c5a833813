//! The sending half of permessage-deflate: compresses outgoing messages
//! into the caller's buffer.

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output, create_comp_flags_from_zip_params,
};

use super::{DeflateConfig, DeflateParams, MAX_WINDOW_BITS, TAIL, direction};
use crate::role::Role;

/// Compresses what one end sends. Without context takeover in our
/// direction the state is built for each message and dropped after it.
pub(crate) struct Compressor {
    params: DeflateParams,
    level: u8,
    threshold: usize,
    window_bits: u8,
    no_context_takeover: bool,
    state: Option<Box<CompressorOxide>>,
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
        Self { params, level: config.level, threshold: config.threshold, window_bits, no_context_takeover, state: None }
    }

    /// The parameters this compressor was built with.
    pub(crate) fn params(&self) -> &DeflateParams {
        &self.params
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
        if fin && self.no_context_takeover {
            self.state = None;
        }
    }
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
