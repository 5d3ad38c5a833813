//! permessage-deflate (RFC 7692): the negotiated parameters, their
//! negotiation ([`negotiation`]), and the per-message codec.
//!
//! Compression uses `miniz_oxide`, whose compressor always keeps a 32 KiB
//! window. When the peer limits our window to `2^bits` bytes with
//! `*_max_window_bits` (bits below 15), a message is compressed in pieces of
//! at most `2^bits` bytes, each ended with a full flush, which also drops the
//! match dictionary; no back-reference can then reach further than the piece
//! it is in, and the pieces still form one valid deflate stream. We honour
//! every value from 8 to 15 exactly this way, including 8, which zlib
//! silently treats as 9. Decompression always uses a 32 KiB window, which
//! accepts streams made with any window from 8 to 15.
//!
//! Decompression keeps its history in a plain (non-wrapping) buffer of the
//! last 32 KiB of output followed by room for new output, so that miniz
//! checks every back-reference against the output that really exists: a
//! distance reaching before the start of the stream is corrupt data (1002),
//! as zlib reports it, not a read of stale bytes.
//!
//! Memory: miniz_oxide's compressor state is about 300 KiB and the
//! decompressor's about 60 KiB (tables plus history and room). A direction with context takeover keeps its
//! state for the life of the connection; a direction without it allocates
//! the state for one message and frees it after, so an idle connection that
//! negotiated `server_no_context_takeover` and `client_no_context_takeover`
//! holds no deflate memory at all.

pub mod negotiation;
mod shim;

pub(crate) use shim::{Compressor, Decompressor, compress_message};

use alloc::boxed::Box;
use alloc::vec::Vec;

use miniz_oxide::deflate::core::{CompressorOxide, TDEFLFlush, TDEFLStatus, compress_to_output};
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::inflate_flags::{TINFL_FLAG_HAS_MORE_INPUT, TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF};
use miniz_oxide::inflate::core::{DecompressorOxide, decompress};

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

/// The outcome of one inflate call.
pub(crate) struct Inflated {
    pub(crate) consumed: usize,
    pub(crate) written: usize,
    /// The stream ended with a final block (RFC 7692 §7.2.3.4): nothing but
    /// our appended tail may follow in this message.
    pub(crate) ended: bool,
}

/// One connection's permessage-deflate state.
pub(crate) struct Deflate {
    params: DeflateParams,
    role: Role,
    level: u8,
    threshold: usize,
    compressor: Option<Box<CompressorOxide>>,
    inflater: Option<Box<Inflater>>,
    /// The compressed form of the message being sent.
    scratch: Vec<u8>,
}

impl core::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Deflate")
            .field("params", &self.params)
            .field("compressor", &self.compressor.is_some())
            .field("inflater", &self.inflater.is_some())
            .finish_non_exhaustive()
    }
}

impl Deflate {
    pub(crate) fn new(params: DeflateParams, role: Role, config: &DeflateConfig) -> Self {
        Self {
            params,
            role,
            level: config.level,
            threshold: config.threshold,
            compressor: None,
            inflater: None,
            scratch: Vec::new(),
        }
    }

    pub(crate) fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// Whether a message of `len` bytes should be compressed.
    pub(crate) fn wants(&self, len: usize) -> bool {
        len >= self.threshold
    }

    /// (window bits, no context takeover) for what we send.
    pub(crate) fn send_side(&self) -> (u8, bool) {
        let p = &self.params;
        match self.role {
            Role::Server => (p.server_max_window_bits, p.server_no_context_takeover),
            Role::Client => (p.client_max_window_bits, p.client_no_context_takeover),
        }
    }

    fn recv_no_context(&self) -> bool {
        match self.role {
            Role::Server => self.params.client_no_context_takeover,
            Role::Client => self.params.server_no_context_takeover,
        }
    }

    /// Compresses the next piece of an outgoing message and returns the
    /// compressed bytes; with `fin`, the message ends and the sync-flush
    /// tail is removed (RFC 7692 §7.2.1).
    pub(crate) fn compress(&mut self, data: &[u8], fin: bool) -> &[u8] {
        let (bits, no_context) = self.send_side();
        let level = self.level;
        let compressor = self.compressor.get_or_insert_with(|| {
            let flags = miniz_oxide::deflate::core::create_comp_flags_from_zip_params(i32::from(level), -15, 0);
            Box::new(CompressorOxide::new(flags))
        });
        self.scratch.clear();
        let scratch = &mut self.scratch;
        if bits >= MAX_WINDOW_BITS {
            compress_all(compressor, data, TDEFLFlush::Sync, scratch);
        } else {
            // Pieces of at most the window, each ended by a full flush that
            // also forgets every earlier match candidate.
            let piece = 1usize << bits;
            if data.is_empty() {
                compress_all(compressor, data, TDEFLFlush::Full, scratch);
            }
            for chunk in data.chunks(piece) {
                compress_all(compressor, chunk, TDEFLFlush::Full, scratch);
            }
        }
        if fin {
            if scratch.ends_with(&TAIL) {
                scratch.truncate(scratch.len() - TAIL.len());
            }
            if no_context {
                self.compressor = None;
            }
        }
        &self.scratch
    }

    /// The capacity of the compressed-message buffer.
    pub(crate) fn scratch_capacity(&self) -> usize {
        self.scratch.capacity()
    }

    /// Frees the compressed-message buffer.
    pub(crate) fn release_scratch(&mut self) {
        self.scratch = Vec::new();
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
    /// keeps none, or start a new stream if its stream ended.
    pub(crate) fn end_received_message(&mut self, stream_ended: bool) {
        if self.recv_no_context() {
            self.inflater = None;
        } else if stream_ended && let Some(inflater) = self.inflater.as_mut() {
            // A stream that ended cannot be referred back to: start afresh.
            *inflater = Inflater::new();
        }
    }
}

/// How much history a deflate stream may refer back to (RFC 1951).
const HISTORY: usize = 32 * 1024;
/// Room for new output after the history; when it is full the newest
/// [`HISTORY`] bytes slide to the front.
const ROOM: usize = 16 * 1024;

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

/// Compresses all of `data` with `flush`, appending the output to `out`.
fn compress_all(compressor: &mut CompressorOxide, mut data: &[u8], flush: TDEFLFlush, out: &mut Vec<u8>) {
    loop {
        let (status, consumed) = compress_to_output(compressor, data, flush, |bytes| {
            out.extend_from_slice(bytes);
            true
        });
        data = &data[consumed.min(data.len())..];
        if status != TDEFLStatus::Okay || data.is_empty() {
            return;
        }
    }
}
