//! The receiving half of permessage-deflate: inflates incoming messages
//! through a history buffer that does not wrap, so that every
//! back-reference is checked against output that really exists.

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::inflate_flags::{TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF};
use miniz_oxide::inflate::core::{BlockBoundaryState, DecompressorOxide, decompress};

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

/// Inflates what the peer sends.
///
/// Without context takeover in the peer's direction, the state is reset at
/// the end of each message and kept for the next, instead of being freed
/// and built again: a reset is a few stores, since miniz reinitialises the
/// rest when a stream starts and the history buffer is only read behind
/// the write position, which goes back to zero.
pub(crate) struct Decompressor {
    no_context_takeover: bool,
    inflater: Option<Box<Inflater>>,
    /// With context takeover, what an idle connection keeps of its inflater
    /// (see [`release_idle`](Self::release_idle)).
    parked: Option<Box<Parked>>,
    /// A message has begun and not ended: its context must stay.
    in_message: bool,
}

/// The context of a takeover stream between messages, without the
/// inflater's tables and room: where the bit stream stands (a block
/// boundary) and the last 32 KiB of output.
struct Parked {
    state: BlockBoundaryState,
    history: Box<[u8]>,
}

impl core::fmt::Debug for Decompressor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Decompressor")
            .field("no_context_takeover", &self.no_context_takeover)
            .field("allocated", &self.inflater.is_some())
            .field("parked", &self.parked.is_some())
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
        Self { no_context_takeover, inflater: None, parked: None, in_message: false }
    }

    /// Inflates as much of `input` into `output` as fits. `Err` means the
    /// data is not a valid deflate stream.
    pub(crate) fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Inflated, ()> {
        self.in_message = true;
        let parked = &mut self.parked;
        let inflater = self.inflater.get_or_insert_with(|| match parked.take() {
            Some(parked) => Inflater::resume(&parked),
            None => Inflater::new(),
        });
        inflater.inflate(input, output)
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
        self.in_message = false;
        if (self.no_context_takeover || stream_ended)
            && let Some(inflater) = self.inflater.as_deref_mut()
        {
            inflater.reset();
        }
    }

    /// Heap bytes held by the inflater (0 when it is not allocated).
    pub(crate) fn memory(&self) -> usize {
        let parked = self.parked.as_ref().map_or(0, |p| size_of::<Parked>() + p.history.len());
        parked + self.inflater.as_ref().map_or(0, |i| size_of::<Inflater>() + i.buf.capacity())
    }

    /// Heap bytes [`release`](Self::release) would free now: the inflater,
    /// when no message is in progress and it holds no history (no context
    /// takeover, or the peer's stream ended).
    pub(crate) fn releasable(&self) -> usize {
        let fresh = self.inflater.as_ref().is_some_and(|i| i.pos == 0);
        if self.in_message || !fresh { 0 } else { self.memory() }
    }

    /// Frees the inflater if it holds nothing a later message needs (see
    /// [`releasable`](Self::releasable)); the next message allocates it again.
    pub(crate) fn release(&mut self) {
        if self.releasable() > 0 {
            self.inflater = None;
        }
    }

    /// For a connection gone quiet: frees the inflater between messages,
    /// keeping with context takeover only what the next message may refer
    /// to (the last 32 KiB of output and the bit position), about half of
    /// what the inflater holds. The next message rebuilds it from that.
    pub(crate) fn release_idle(&mut self) {
        if self.in_message {
            return;
        }
        let Some(inflater) = self.inflater.take() else { return };
        if inflater.pos == 0 {
            return;
        }
        match inflater.decomp.block_boundary_state() {
            Some(state) => {
                let history = inflater.buf[inflater.pos.saturating_sub(HISTORY)..inflater.pos].into();
                self.parked = Some(Box::new(Parked { state, history }));
            }
            // Not between blocks (the connection failed mid-stream): keep
            // it as it is.
            None => self.inflater = Some(inflater),
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

    /// An inflater that carries on a parked stream: the history back in
    /// front of the output and the decoder at the same block boundary.
    fn resume(parked: &Parked) -> Box<Self> {
        let mut buf = alloc::vec![0; HISTORY + ROOM];
        let pos = parked.history.len();
        buf[..pos].copy_from_slice(&parked.history);
        let decomp = DecompressorOxide::from_block_boundary_state(&parked.state);
        Box::new(Self { decomp, buf, pos, taken: pos, ended: false })
    }

    /// Starts a new stream, keeping the buffers. The old output left in
    /// `buf` cannot leak into the new stream: miniz fails any distance
    /// that reaches before the start of a non-wrapping buffer, and `pos`
    /// is that start again.
    fn reset(&mut self) {
        self.decomp.init();
        (self.pos, self.taken, self.ended) = (0, 0, false);
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
