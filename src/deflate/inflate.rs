//! The receiving half of permessage-deflate: inflates incoming messages
//! through a history buffer that does not wrap, so that every
//! back-reference is checked against output that really exists.

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::inflate_flags::{TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF};
use miniz_oxide::inflate::core::{DecompressorOxide, decompress};

use super::{DeflateConfig, DeflateParams, direction};
use crate::role::Role;

/// How much history a deflate stream may refer back to (RFC 1951).
const HISTORY: usize = 32 * 1024;
/// Room for new output after the history; when it is full the newest
/// [`HISTORY`] bytes slide to the front.
const ROOM: usize = 16 * 1024;

/// The outcome of one inflate call.
pub(crate) struct Inflated {
    pub(crate) consumed: usize,
    pub(crate) written: usize,
    /// The stream ended with a final block (RFC 7692 §7.2.3.4): nothing but
    /// our appended tail may follow in this message.
    pub(crate) ended: bool,
}

/// Inflates what the peer sends. Without context takeover in the peer's
/// direction the state is built for each message and dropped after it.
pub(crate) struct Decompressor {
    no_context_takeover: bool,
    inflater: Option<Box<Inflater>>,
}

impl core::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("allocated", &self.inflater.is_some())
            .finish_non_exhaustive()
    }
}

impl Decompressor {
    /// The decompressor for what the peer of `role` sends under the agreed
    /// `params`. Nothing in `config` applies to receiving: any window from
    /// 8 to 15 bits is accepted.
    pub(crate) fn new(params: DeflateParams, role: Role, _config: &DeflateConfig) -> Self {
        let peer = match role {
            Role::Server => Role::Client,
            Role::Client => Role::Server,
        };
        let (_, no_context_takeover) = direction(&params, peer);
        Self { no_context_takeover, inflater: None }
    }

    /// Inflates as much of `input` into `output` as fits. `Err` means the
    /// data is not a valid deflate stream.
    pub(crate) fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Inflated, ()> {
        self.inflater.get_or_insert_with(Inflater::new).inflate(input, output)
    }

    /// Whether the inflater stopped between two deflate blocks, as it must
    /// once a message's sync-flush tail has been fed: otherwise the message
    /// was cut inside a block and the tail was taken as data.
    pub(crate) fn at_block_boundary(&self) -> bool {
        self.inflater.as_ref().is_some_and(|i| i.decomp.block_boundary_state().is_some())
    }

    /// A received compressed message ended: forget the context if the peer
    /// keeps none, or start a new stream if its stream ended, since a stream
    /// that ended cannot be referred back to.
    pub(crate) fn end_message(&mut self, stream_ended: bool) {
        if self.no_context_takeover {
            self.inflater = None;
        } else if stream_ended && let Some(inflater) = self.inflater.as_mut() {
            *inflater = Inflater::new();
        }
    }
}

/// A streaming raw-deflate decompressor over miniz_oxide's core, whose
/// output buffer does not wrap, so that back-references are checked.
struct Inflater {
    decomp: DecompressorOxide,
    /// `buf[..pos]` is output: the history, then output not yet handed out
    /// from `taken` on.
    buf: Vec<u8>,
    pos: usize,
    taken: usize,
    ended: bool,
}

impl Inflater {
    fn new() -> Box<Self> {
        Box::new(Self { decomp: DecompressorOxide::new(), buf: Vec::new(), pos: 0, taken: 0, ended: false })
    }

    fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Inflated, ()> {
        if self.buf.is_empty() {
            self.buf.resize(HISTORY + ROOM, 0);
        }
        let (mut consumed, mut written) = (0, 0);
        loop {
            let pending = self.pos - self.taken;
            let n = pending.min(output.len() - written);
            output[written..written + n].copy_from_slice(&self.buf[self.taken..self.taken + n]);
            (self.taken, written) = (self.taken + n, written + n);
            if self.taken < self.pos || self.ended {
                break;
            }
            if self.pos == self.buf.len() {
                self.buf.copy_within(self.pos - HISTORY..self.pos, 0);
                (self.pos, self.taken) = (HISTORY, HISTORY);
            }
            let flags = TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF | TINFL_FLAG_HAS_MORE_INPUT;
            let (status, read, out) = decompress(&mut self.decomp, &input[consumed..], &mut self.buf, self.pos, flags);
            consumed += read;
            self.pos += out;
            match status {
                TINFLStatus::Done => self.ended = true,
                TINFLStatus::HasMoreOutput => {}
                TINFLStatus::NeedsMoreInput if read == 0 && out == 0 => break,
                TINFLStatus::NeedsMoreInput => {}
                _ => return Err(()),
            }
        }
        Ok(Inflated { consumed, written, ended: self.ended })
    }
}
