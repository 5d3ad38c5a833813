//! The send half: messages framed (masked by a client, compressed when
//! permessage-deflate says so) into an output queue that the caller drains
//! as slices, with the control frames the receive path owes the peer sent
//! first at the next frame boundary.
//!
//! The queue is a run of segments: bytes framed into the send buffer, our
//! close frame, and (with the `bytes` feature) payloads shared with the
//! caller that go out without a copy. Segments always end on frame
//! boundaries and a run of small frames is cut every [`SEGMENT`] bytes, so
//! an owed pong waits behind at most one segment.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;

use super::buf::Release;
use super::shared::Access;
use crate::close::CloseCode;
use crate::config::Config;
use crate::deflate::Compressor;
use crate::error::{Error, UsageError};
use crate::frame::{FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, RSV1, apply_mask};
use crate::message::{Message, MessageKind, Utf8Validator};
use crate::rng::MaskRng;

/// How long a run of framed bytes grows before a new segment starts, so
/// owed control frames find a boundary soon.
const SEGMENT: usize = 64 * 1024;

#[derive(Debug)]
enum Seg {
    /// Bytes in the send buffer.
    Framed(usize),
    /// Our close frame, in the send buffer: when it is handed out, the
    /// closing handshake's half is done.
    Close(usize),
    /// `head` bytes in the send buffer (a frame header, or nothing), then a
    /// payload shared with the caller: one unit, so nothing is ever put
    /// between a header and its payload.
    #[cfg(feature = "bytes")]
    Shared { head: usize, bytes: bytes::Bytes },
}

impl Seg {
    fn len(&self) -> usize {
        match self {
            Self::Framed(n) | Self::Close(n) => *n,
            #[cfg(feature = "bytes")]
            Self::Shared { head, bytes } => head + bytes.len(),
        }
    }
}

/// The output queue. Segments take their bytes in the send buffer, in
/// order, from `buf[pos..]`.
#[derive(Debug, Default)]
struct Output {
    buf: Vec<u8>,
    pos: usize,
    segs: VecDeque<Seg>,
    /// Bytes of the front segment already handed out.
    front_sent: usize,
    /// Owed control frames being handed out; they go before `segs`.
    ctl: Vec<u8>,
    ctl_pos: usize,
    /// Bytes of shared payloads not yet handed out.
    shared_len: usize,
    /// Shared segments queued.
    shared_segs: usize,
    /// Bytes of the opening handshake at the front: nothing may go before
    /// them, owed control frames included.
    head: usize,
    /// Control frames are owed and wait for the front segment to end: hand
    /// out no further than that.
    owed_waiting: bool,
    /// Free the buffer when next drained: it held the handshake, and a
    /// connection that goes idle after it should hold nothing.
    release_on_drain: bool,
}

impl Output {
    fn buffered(&self) -> usize {
        (self.buf.len() - self.pos) + self.shared_len + (self.ctl.len() - self.ctl_pos)
    }

    fn is_empty(&self) -> bool {
        self.segs.is_empty() && self.ctl_pos == self.ctl.len()
    }

    /// Room for `additional` more framed bytes at the end of `buf`. The
    /// front segment's bytes stay whole, so its frames can still be found.
    fn reserve(&mut self, additional: usize) {
        if self.segs.is_empty() {
            self.buf.clear();
            self.pos = 0;
        } else {
            let front_start = self.pos - self.front_inline_sent();
            if front_start > 0 && self.buf.capacity() - self.buf.len() < additional {
                self.buf.drain(..front_start);
                self.pos -= front_start;
            }
        }
        self.buf.reserve(additional);
    }

    /// Bytes of the front segment already handed out from `buf`.
    fn front_inline_sent(&self) -> usize {
        match self.segs.front() {
            None => 0,
            #[cfg(feature = "bytes")]
            Some(Seg::Shared { head, .. }) => self.front_sent.min(*head),
            Some(_) => self.front_sent,
        }
    }

    /// `len` bytes were framed at the end of `buf`.
    fn push_framed(&mut self, len: usize) {
        match self.segs.back_mut() {
            Some(Seg::Framed(n)) if *n < SEGMENT => *n += len,
            _ => self.segs.push_back(Seg::Framed(len)),
        }
    }

    /// Frames `payload` at the end of `buf` (masked with `key`).
    fn write_frame(&mut self, key: Option<[u8; 4]>, opcode: OpCode, fin: bool, rsv: u8, payload: &[u8]) {
        let header = FrameHeader { fin, rsv, opcode, mask: key, payload_len: payload.len() as u64 };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        self.reserve(head_len + payload.len());
        self.buf.extend_from_slice(&head[..head_len]);
        match key {
            Some(key) => crate::frame::extend_masked(&mut self.buf, payload, key, 0),
            None => self.buf.extend_from_slice(payload),
        }
        self.push_framed(head_len + payload.len());
    }

    /// The bytes of the queue that sit in the send buffer, from the front
    /// up to the first shared payload.
    fn framed_run(&self) -> usize {
        if self.owed_waiting {
            let front = self.segs.front().map_or(0, Seg::len);
            #[cfg(feature = "bytes")]
            if let Some(Seg::Shared { head, .. }) = self.segs.front() {
                return head.saturating_sub(self.front_sent);
            }
            return front - self.front_sent;
        }
        if self.shared_segs == 0 {
            return self.buf.len() - self.pos;
        }
        let mut run = 0;
        for seg in &self.segs {
            match seg {
                #[cfg(feature = "bytes")]
                Seg::Shared { head, .. } => {
                    run += head;
                    break;
                }
                seg => run += seg.len(),
            }
        }
        run.saturating_sub(self.front_sent).min(self.buf.len() - self.pos)
    }

    /// The next contiguous bytes to hand out.
    fn front(&self) -> &[u8] {
        if self.ctl_pos < self.ctl.len() {
            return &self.ctl[self.ctl_pos..];
        }
        #[cfg(feature = "bytes")]
        if let Some(Seg::Shared { head, bytes }) = self.segs.front()
            && self.front_sent >= *head
        {
            return &bytes[self.front_sent - head..];
        }
        &self.buf[self.pos..self.pos + self.framed_run()]
    }

    /// Fills `out` with the slices to hand out next, in order; returns how
    /// many it filled.
    fn slices<'a>(&'a self, out: &mut [&'a [u8]]) -> usize {
        let mut n = 0;
        let mut put = |s: &'a [u8], n: &mut usize| {
            if !s.is_empty() && *n < out.len() {
                out[*n] = s;
                *n += 1;
            }
        };
        if self.ctl_pos < self.ctl.len() {
            put(&self.ctl[self.ctl_pos..], &mut n);
        }
        if self.owed_waiting {
            // Only up to the end of the front segment; the owed frames next.
            #[cfg(feature = "bytes")]
            if let Some(Seg::Shared { head, bytes }) = self.segs.front() {
                let head_left = head.saturating_sub(self.front_sent);
                put(&self.buf[self.pos..self.pos + head_left], &mut n);
                put(&bytes[self.front_sent.saturating_sub(*head)..], &mut n);
                return n;
            }
            put(&self.buf[self.pos..self.pos + self.framed_run()], &mut n);
            return n;
        }
        #[cfg_attr(not(feature = "bytes"), expect(unused_mut, reason = "only shared segments move it"))]
        let mut pos = self.pos;
        let mut run = 0usize;
        let mut sent = self.front_sent;
        for seg in &self.segs {
            match seg {
                #[cfg(feature = "bytes")]
                Seg::Shared { head, bytes } => {
                    let head_left = head.saturating_sub(sent);
                    put(&self.buf[pos..pos + run + head_left], &mut n);
                    pos += run + head_left;
                    run = 0;
                    put(&bytes[sent.saturating_sub(*head)..], &mut n);
                }
                seg => run += seg.len() - sent,
            }
            sent = 0;
        }
        put(&self.buf[pos..pos + run], &mut n);
        n
    }

    /// Ends the partly handed-out front segment after the frame being
    /// handed out, so that what is owed can go right after that frame.
    fn split_front(&mut self) {
        let Some(&Seg::Framed(n)) = self.segs.front() else { return };
        let start = self.pos - self.front_sent;
        let mut off = 0;
        while off < n {
            let Ok(Some((header, head_len))) = FrameHeader::decode(&self.buf[start + off..start + n]) else {
                return;
            };
            off += head_len + header.payload_len as usize;
            if off > self.front_sent {
                break;
            }
        }
        if off < n {
            self.segs[0] = Seg::Framed(off);
            self.segs.insert(1, Seg::Framed(n - off));
        }
    }

    /// Marks `n` bytes as handed out. Returns whether our close frame was
    /// among them.
    fn advance(&mut self, mut n: usize) -> bool {
        let mut close_done = false;
        self.head = self.head.saturating_sub(n);
        let ctl = n.min(self.ctl.len() - self.ctl_pos);
        self.ctl_pos += ctl;
        n -= ctl;
        if self.ctl_pos == self.ctl.len() {
            self.ctl.clear();
            self.ctl_pos = 0;
        }
        while n > 0 {
            let Some(seg) = self.segs.front() else { break };
            let left = seg.len() - self.front_sent;
            let take = n.min(left);
            n -= take;
            let inline = match seg {
                #[cfg(feature = "bytes")]
                Seg::Shared { head, .. } => head.saturating_sub(self.front_sent).min(take),
                _ => take,
            };
            self.pos += inline;
            self.shared_len -= take - inline;
            if take < left {
                self.front_sent += take;
                break;
            }
            self.front_sent = 0;
            match self.segs.pop_front() {
                Some(Seg::Close(_)) => close_done = true,
                #[cfg(feature = "bytes")]
                Some(Seg::Shared { .. }) => self.shared_segs -= 1,
                _ => {}
            }
        }
        close_done
    }

    /// Everything was handed out: free the buffer if `free` says so or if
    /// it held the handshake, else keep it for reuse.
    fn drained(&mut self, free: bool) {
        self.buf.clear();
        self.pos = 0;
        let handshake = core::mem::take(&mut self.release_on_drain);
        if free || handshake {
            self.buf = Vec::new();
            self.segs = VecDeque::new();
            self.ctl = Vec::new();
        }
    }
}

/// A streamed message being sent: its kind, whether it is compressed, and
/// for text the UTF-8 state across chunks.
#[derive(Clone, Copy, Debug)]
struct Sending {
    kind: MessageKind,
    compressed: bool,
    utf8: Utf8Validator,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Send {
    out: Output,
    /// A client's mask generator (servers do not mask), boxed since it is
    /// a sixth of a connection's size.
    mask: Option<Box<MaskRng>>,
    sending: Option<Sending>,
    pub(crate) compressor: Option<Box<Compressor>>,
    pub(crate) bytes_transmitted: u64,
    /// When drained buffers are freed.
    pub(crate) release: Release,
}

impl Send {
    pub(crate) fn new(mask: Option<Box<MaskRng>>) -> Self {
        Self {
            out: Output::default(),
            mask,
            sending: None,
            compressor: None,
            bytes_transmitted: 0,
            release: Release::default(),
        }
    }

    fn key(&mut self) -> Option<[u8; 4]> {
        self.mask.as_mut().map(|m| m.next_key())
    }

    pub(crate) fn buffered(&self) -> usize {
        self.out.buffered()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.out.is_empty()
    }

    /// The send buffer, for the handshake's request or response, which is
    /// freed once transmitted.
    pub(crate) fn handshake_buf(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        let start = self.out.buf.len();
        f(&mut self.out.buf);
        let len = self.out.buf.len() - start;
        if len > 0 {
            self.out.segs.push_back(Seg::Framed(len));
            self.out.head += len;
        }
        self.out.release_on_drain = true;
    }

    /// Drops whatever is queued: the transport is gone.
    pub(crate) fn clear(&mut self) {
        self.out = Output::default();
    }

    /// Whether a message may be queued: open, no close queued, below the
    /// high-water mark.
    fn check<A: Access>(&self, config: &Config, shared: &mut A) -> Result<(), Error> {
        shared.lock().check_send()?;
        if self.out.buffered() >= config.write_buffer_high_water {
            return Err(Error::WriteBufferFull);
        }
        Ok(())
    }

    #[cfg(feature = "std")]
    pub(crate) fn is_writable<A: Access>(&self, config: &Config, shared: &mut A) -> bool {
        self.check(config, shared).is_ok()
    }

    /// Writes `payload` as frames of at most `max_send_frame_size` bytes;
    /// the first has `opcode` and `rsv`, the rest are continuations, the
    /// last has `fin`.
    fn write_data(&mut self, config: &Config, opcode: OpCode, rsv: u8, payload: &[u8], fin: bool) {
        let (mut opcode, mut rsv) = (opcode, rsv);
        let mut rest = payload;
        loop {
            let (now, later) = rest.split_at(rest.len().min(config.max_send_frame_size));
            let key = self.key();
            self.out.write_frame(key, opcode, fin && later.is_empty(), rsv, now);
            if later.is_empty() {
                return;
            }
            (opcode, rsv) = (OpCode::Continuation, 0);
            rest = later;
        }
    }

    /// Compresses `data` straight into the send buffer as the next frame
    /// of a compressed message (RSV1 on its first frame), splitting it
    /// into frames only if it comes out longer than `max_send_frame_size`.
    fn write_compressed(&mut self, config: &Config, opcode: OpCode, data: &[u8], fin: bool) {
        let rsv = if opcode == OpCode::Continuation { 0 } else { RSV1 };
        let masked = self.mask.is_some();
        // Guess the header's length from the input so the payload rarely
        // has to move once its length is known.
        let guess = FrameHeader { fin, rsv, opcode, mask: masked.then_some([0; 4]), payload_len: data.len() as u64 };
        let slot = guess.encoded_len();
        self.out.reserve(slot + data.len() / 2 + 64);
        let start = self.out.buf.len();
        self.out.buf.resize(start + slot, 0);
        let Some(compressor) = self.compressor.as_deref_mut() else { return };
        compressor.compress_into(data, fin, &mut self.out.buf);

        let len = self.out.buf.len() - start - slot;
        if len > config.max_send_frame_size {
            // Rare: more than a frame's worth of compressed output. Frame it
            // from a copy.
            let compressed = self.out.buf.split_off(start + slot);
            self.out.buf.truncate(start);
            self.write_data(config, opcode, rsv, &compressed, fin);
            return;
        }
        let key = self.key();
        let header = FrameHeader { fin, rsv, opcode, mask: key, payload_len: len as u64 };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        if head_len != slot {
            let end = self.out.buf.len();
            if head_len > slot {
                self.out.buf.resize(end + head_len - slot, 0);
            }
            self.out.buf.copy_within(start + slot..end, start + head_len);
            self.out.buf.truncate(start + head_len + len);
        }
        self.out.buf[start..start + head_len].copy_from_slice(&head[..head_len]);
        if let Some(key) = key {
            apply_mask(&mut self.out.buf[start + head_len..], key, 0);
        }
        self.out.push_framed(head_len + len);
    }

    /// Sends a whole message.
    pub(crate) fn send<A: Access>(
        &mut self,
        config: &Config,
        shared: &mut A,
        message: Message<'_>,
    ) -> Result<(), Error> {
        self.send_data(config, shared, message.kind(), message.as_bytes())
    }

    /// [`Self::send`] given the kind and the bytes (text already known to
    /// be UTF-8).
    pub(crate) fn send_data<A: Access>(
        &mut self,
        config: &Config,
        shared: &mut A,
        kind: MessageKind,
        data: &[u8],
    ) -> Result<(), Error> {
        self.check(config, shared)?;
        if self.sending.is_some() {
            return Err(UsageError::MessageInProgress.into());
        }
        let opcode = opcode_of(kind);
        if self.compressor.as_deref().is_some_and(|c| c.wants(data.len())) {
            self.write_compressed(config, opcode, data, true);
            self.compressed_message_sent(config, shared);
        } else {
            self.write_data(config, opcode, 0, data, true);
        }
        Ok(())
    }

    /// A compressed message ended: codec state that no later message needs
    /// (no context takeover) goes once the connection is quiet, as large
    /// buffers do.
    fn compressed_message_sent<A: Access>(&mut self, config: &Config, shared: &mut A) {
        let releasable = self.compressor.as_deref().map_or(0, Compressor::releasable);
        if releasable > 0
            && self.free_now(config, releasable, true, shared)
            && let Some(compressor) = self.compressor.as_deref_mut()
        {
            compressor.release();
        }
    }

    /// Sends one piece of a streamed message.
    pub(crate) fn send_chunk<A: Access>(
        &mut self,
        config: &Config,
        shared: &mut A,
        kind: MessageKind,
        data: &[u8],
        fin: bool,
    ) -> Result<(), Error> {
        self.check(config, shared)?;
        let (opcode, compressed, mut utf8) = match self.sending {
            Some(s) if s.kind != kind => return Err(UsageError::KindMismatch.into()),
            Some(s) => (OpCode::Continuation, s.compressed, s.utf8),
            None => {
                // Whether a streamed message is compressed is decided by its first chunk.
                let compressed = self.compressor.as_deref().is_some_and(|c| c.wants(data.len()));
                (opcode_of(kind), compressed, Utf8Validator::default())
            }
        };
        if kind == MessageKind::Text && (utf8.feed(data).is_err() || (fin && !utf8.is_complete())) {
            return Err(UsageError::InvalidUtf8.into());
        }
        if compressed {
            self.write_compressed(config, opcode, data, fin);
            if fin {
                self.compressed_message_sent(config, shared);
            }
        } else {
            self.write_data(config, opcode, 0, data, fin);
        }
        self.sending = if fin { None } else { Some(Sending { kind, compressed, utf8 }) };
        Ok(())
    }

    /// Sends a ping or an unsolicited pong.
    pub(crate) fn send_control<A: Access>(
        &mut self,
        config: &Config,
        shared: &mut A,
        opcode: OpCode,
        payload: &[u8],
    ) -> Result<(), Error> {
        // A failed connection reports its failure first, whatever the call.
        if let Some(error) = shared.lock().failure {
            return Err(error);
        }
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlPayloadTooLong.into());
        }
        self.check(config, shared)?;
        let key = self.key();
        self.out.write_frame(key, opcode, true, 0, payload);
        Ok(())
    }

    /// Queues our close frame at the end of the queue.
    fn queue_close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = if code == CloseCode::NO_STATUS {
            0
        } else {
            let reason = &reason.as_bytes()[..reason.len().min(MAX_CONTROL_PAYLOAD - 2)];
            payload[..2].copy_from_slice(&code.0.to_be_bytes());
            payload[2..2 + reason.len()].copy_from_slice(reason);
            2 + reason.len()
        };
        let key = self.key();
        self.out.write_frame(key, OpCode::Close, true, 0, &payload[..len]);
        // The bytes just framed become a close segment of their own.
        let framed = FrameHeader { fin: true, rsv: 0, opcode: OpCode::Close, mask: key, payload_len: len as u64 }
            .encoded_len()
            + len;
        match self.out.segs.back_mut() {
            Some(Seg::Framed(n)) if *n == framed => {
                *self.out.segs.back_mut().unwrap_or(&mut Seg::Framed(0)) = Seg::Close(framed)
            }
            Some(Seg::Framed(n)) => {
                *n -= framed;
                self.out.segs.push_back(Seg::Close(framed));
            }
            _ => self.out.segs.push_back(Seg::Close(framed)),
        }
    }

    /// The caller's close (RFC 6455 §5.5.1), after the checks.
    pub(crate) fn close<A: Access>(&mut self, shared: &mut A, code: CloseCode, reason: &str) -> Result<(), Error> {
        shared.lock().check_send()?;
        if !code.is_sendable() && code != CloseCode::NO_STATUS {
            return Err(UsageError::InvalidCloseCode(code.0).into());
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 || (code == CloseCode::NO_STATUS && !reason.is_empty()) {
            return Err(UsageError::CloseReasonTooLong.into());
        }
        self.queue_close(code, reason);
        shared.lock().close_queued_by_user();
        Ok(())
    }

    /// At a segment boundary, moves what the receive path owes into the
    /// queue: pongs and a heartbeat ping go first, a close goes last.
    fn pull_owed<A: Access>(&mut self, shared: &mut A) {
        if self.out.ctl_pos != self.out.ctl.len() || self.out.head > 0 {
            return;
        }
        if self.out.front_sent == 0 {
            self.out.owed_waiting = false;
        }
        let mut s = shared.lock();
        if s.transport_dead {
            // The other half saw the transport fail: nothing more goes out.
            drop(s);
            self.clear();
            return;
        }
        if s.owed.is_empty() {
            return;
        }
        if self.out.front_sent != 0 {
            // Mid-frame: make the end of that frame a boundary to stop at.
            drop(s);
            if !self.out.owed_waiting {
                self.out.split_front();
                self.out.owed_waiting = true;
            }
            return;
        }
        let mask = &mut self.mask;
        let ctl = &mut self.out.ctl;
        ctl.clear();
        let mut frame = |opcode: OpCode, payload: &[u8]| {
            let key = mask.as_mut().map(|m| m.next_key());
            let header = FrameHeader { fin: true, rsv: 0, opcode, mask: key, payload_len: payload.len() as u64 };
            let mut head = [0u8; MAX_HEADER_LEN];
            let head_len = header.encode(&mut head);
            ctl.extend_from_slice(&head[..head_len]);
            let start = ctl.len();
            ctl.extend_from_slice(payload);
            if let Some(key) = key {
                apply_mask(&mut ctl[start..], key, 0);
            }
        };
        s.owed.drain_pongs(|payload| frame(OpCode::Pong, payload));
        if core::mem::take(&mut s.owed.ping) {
            frame(OpCode::Ping, &[]);
        }
        let close = s.owed.close.take();
        drop(s);
        if let Some(close) = close {
            self.queue_close(close.code, close.reason);
        }
    }

    /// The bytes to hand out next (empty if none).
    pub(crate) fn poll_transmit<A: Access>(&mut self, shared: &mut A) -> &[u8] {
        self.pull_owed(shared);
        self.out.front()
    }

    /// Up to `out.len()` slices to hand out next, in order.
    pub(crate) fn poll_transmit_slices<'a, A: Access>(&'a mut self, shared: &mut A, out: &mut [&'a [u8]]) -> usize {
        self.pull_owed(shared);
        self.out.slices(out)
    }

    /// Marks `n` bytes as handed out.
    pub(crate) fn advance_transmit<A: Access>(&mut self, config: &Config, shared: &mut A, n: usize) {
        let n = n.min(self.out.buffered());
        self.bytes_transmitted += n as u64;
        if self.out.advance(n) {
            shared.lock().close_transmitted();
        }
        if self.out.is_empty() {
            let free = self.free_now(config, self.out.buf.capacity(), n > 0, shared);
            self.out.drained(free);
        }
    }

    /// Whether a drained buffer of `capacity` bytes goes now rather than
    /// stay for reuse (see [`Release`]).
    fn free_now<A: Access>(&mut self, config: &Config, capacity: usize, used: bool, shared: &mut A) -> bool {
        self.release.drained(config, capacity, used, || shared.lock().timers.clock)
    }

    /// The release deadline passed at `now`: once the send side has been
    /// quiet for a whole [`Config::buffer_release_delay`], frees its drained
    /// buffers, whatever their size, and the deflate state between messages
    /// (with context takeover too: the next message then starts from a
    /// fresh context).
    pub(crate) fn release_idle(&mut self, config: &Config, now: Duration) {
        if !self.release.quiet(config, now) {
            return;
        }
        if self.out.is_empty() {
            self.out.drained(true);
        }
        if self.sending.is_none()
            && let Some(compressor) = self.compressor.as_deref_mut()
        {
            compressor.release_idle();
        }
    }
}

#[cfg(feature = "bytes")]
mod owned {
    use super::{Access, Seg, Send, opcode_of};
    use crate::config::Config;
    use crate::connection::prepared::PreparedMessage;
    use crate::error::{Error, UsageError};
    use crate::frame::{FrameHeader, MAX_HEADER_LEN};
    use crate::message::OwnedMessage;

    /// Payloads shorter than this are copied into the send buffer: below
    /// it, a copy costs less than a shared segment (a reference count
    /// update and a slice of its own in a vectored write).
    pub(crate) const SHARE_FROM: usize = 2048;

    impl Send {
        /// Queues `head` bytes of the send buffer's end (a frame header)
        /// and `bytes` as one unit.
        fn push_shared(&mut self, head: usize, bytes: bytes::Bytes) {
            self.out.shared_len += bytes.len();
            self.out.shared_segs += 1;
            if head > 0
                && let Some(Seg::Framed(n)) = self.out.segs.back_mut()
            {
                // The header was counted as framed bytes: move it.
                *n -= head;
                if *n == 0 {
                    self.out.segs.pop_back();
                }
            }
            self.out.segs.push_back(Seg::Shared { head, bytes });
        }

        /// Sends an owned message. A server sends an uncompressed payload
        /// of [`SHARE_FROM`] bytes or more as a frame header plus the shared
        /// payload, without copying it; anything else is framed as
        /// [`Send::send`] frames it (a client must mask a copy).
        pub(crate) fn send_owned<A: Access>(
            &mut self,
            config: &Config,
            shared: &mut A,
            message: OwnedMessage,
        ) -> Result<(), Error> {
            let len = message.len();
            let kind = message.kind();
            let share = self.mask.is_none()
                && !self.compressor.as_deref().is_some_and(|c| c.wants(len))
                && (SHARE_FROM..=config.max_send_frame_size).contains(&len);
            let bytes = match &message {
                OwnedMessage::Binary(p) if share => p.shared().cloned(),
                OwnedMessage::Text(t) if share => t.as_payload().shared().cloned(),
                _ => None,
            };
            let Some(bytes) = bytes else {
                // Not `as_message`: that checks text again.
                return self.send_data(config, shared, kind, message.as_bytes());
            };
            drop(message);
            self.check(config, shared)?;
            if self.sending.is_some() {
                return Err(UsageError::MessageInProgress.into());
            }
            let header =
                FrameHeader { fin: true, rsv: 0, opcode: opcode_of(kind), mask: None, payload_len: len as u64 };
            let mut head = [0u8; MAX_HEADER_LEN];
            let head_len = header.encode(&mut head);
            self.out.reserve(head_len);
            self.out.buf.extend_from_slice(&head[..head_len]);
            self.out.push_framed(head_len);
            self.push_shared(head_len, bytes);
            Ok(())
        }

        /// Queues a prepared message: its frame is shared as it is on a
        /// server (copied if short), copied and masked on a client; its
        /// compressed form is used where the connection's negotiated window
        /// allows it, and the compressor then forgets its context, which the
        /// peer's no longer matches.
        pub(crate) fn send_prepared<A: Access>(
            &mut self,
            config: &Config,
            shared: &mut A,
            prepared: &PreparedMessage,
        ) -> Result<(), Error> {
            self.check(config, shared)?;
            if self.sending.is_some() {
                return Err(UsageError::MessageInProgress.into());
            }
            let compressed = match (self.compressor.as_deref(), prepared.compressed()) {
                (Some(c), Some((frame, bits))) if bits <= c.window_bits() => Some(frame),
                _ => None,
            };
            let frame = compressed.unwrap_or(prepared.frame());
            let Ok(Some((header, head_len))) = FrameHeader::decode(frame) else {
                return Ok(());
            };
            if self.mask.is_some() || header.payload_len > config.max_send_frame_size as u64 {
                // A client masks its own copy; a frame over this
                // connection's frame size is split as any message is.
                self.write_data(config, header.opcode, header.rsv, &frame[head_len..], true);
            } else if frame.len() < SHARE_FROM {
                self.out.reserve(frame.len());
                self.out.buf.extend_from_slice(frame);
                self.out.push_framed(frame.len());
            } else {
                self.push_shared(0, frame.clone());
            }
            if compressed.is_some()
                && let Some(c) = self.compressor.as_deref_mut()
            {
                // The peer's history now holds the prepared message, ours
                // does not: start a new context.
                c.forget();
            }
            Ok(())
        }
    }
}

fn opcode_of(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}
