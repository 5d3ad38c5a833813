//! The receive half: frames parsed from the receive buffer, unmasked in
//! place, checked against RFC 6455 and the limits, assembled (or inflated)
//! into messages, and handed out as events that borrow the buffer or own a
//! piece split off it.
//!
//! Input is bounded: at most [`Config::max_unprocessed_input`] bytes wait
//! unprocessed (behind an event the caller has not taken, say), besides the
//! frame being received, which its own limits bound.

use alloc::boxed::Box;
use core::time::Duration;

use super::buf::{Buf, Release};
use super::event::{Chunk, Event};
use super::shared::{Access, Shared};
use crate::config::Config;
use crate::deflate::Decompressor;
use crate::error::{Error, ProtocolError};
use crate::frame::{CloseFrame, FrameHeader, MAX_CONTROL_PAYLOAD, OpCode, RSV1, apply_mask};
use crate::message::{Message, MessageKind, Utf8Validator};
use crate::role::Role;

/// The most inflated output handed out in one chunk when streaming, and
/// the step in which the whole-message buffer grows while inflating.
pub(crate) const INFLATE_CHUNK: usize = 64 * 1024;

/// An event found by `advance`, as positions rather than borrows so that
/// the event can be built (borrowed or owned) afterwards, or peeked.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ready {
    Request,
    Connected,
    Rejected,
    /// `checked`: text already validated as it arrived.
    Message {
        kind: MessageKind,
        start: usize,
        end: usize,
        assembled: bool,
        checked: bool,
    },
    Chunk {
        kind: MessageKind,
        start: usize,
        end: usize,
        fin: bool,
        assembled: bool,
    },
    Ping {
        start: usize,
        end: usize,
    },
    Pong {
        start: usize,
        end: usize,
    },
    Close {
        start: usize,
        end: usize,
    },
    Closed,
}

pub(crate) enum Step {
    Ready(Ready),
    Continue,
    NeedMore,
}

/// The frame whose payload is being received.
#[derive(Clone, Copy, Debug)]
struct FrameState {
    header: FrameHeader,
    /// Control frames and single-frame messages stay in the receive buffer,
    /// header included, until complete, so they can be handed out without a
    /// copy. Other frames are consumed as their payload arrives.
    buffered: bool,
    header_len: usize,
    /// Payload bytes already unmasked (and, for uncompressed text, validated).
    done: u64,
    /// Payload bytes consumed from the receive buffer. Equal to `done`
    /// except in a compressed message, whose unmasked bytes wait there until
    /// the inflater takes them.
    consumed: u64,
    /// Inflated bytes this (compressed) frame produced so far.
    inflated: u64,
}

/// The data message being received.
#[derive(Clone, Copy, Debug)]
struct MessageState {
    kind: MessageKind,
    len: u64,
    fragments: usize,
    /// RSV1 was set on its first frame (permessage-deflate).
    compressed: bool,
    /// Delivered as chunks (the streaming choice when it began).
    streaming: bool,
    /// How much of the sync-flush tail has been fed to the inflater.
    tail_fed: u8,
    /// The deflate stream ended with a final block.
    stream_ended: bool,
}

/// Frame parsing while lingering after a failure: data is skipped, not
/// buffered, until the peer's close frame shows up.
#[derive(Clone, Copy, Debug, Default)]
enum Skip {
    /// At a frame header.
    #[default]
    Header,
    /// This many payload bytes of the current frame to skip.
    Payload(u64),
    /// The stream cannot be parsed any more: discard everything.
    Broken,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Recv {
    /// Received bytes; `rx[start..end]` is unprocessed or belongs to the
    /// frame being received. The buffer's length is how much is
    /// initialised, so [`Recv::receive_buffer`] can hand it out again.
    pub(crate) rx: Buf,
    /// The payload of a fragmented (or inflated) message being assembled.
    pub(crate) msg: Buf,
    pub(crate) start: usize,
    pub(crate) end: usize,
    frame: Option<FrameState>,
    message: Option<MessageState>,
    utf8: Utf8Validator,
    pub(crate) inflater: Option<Box<Decompressor>>,
    /// An event found by `peek_event`, not yet returned.
    pub(crate) stash: Option<Ready>,
    /// Whether messages that begin from now on are delivered as chunks.
    pub(crate) streaming: bool,
    skip: Skip,
    role: Role,
    pub(crate) bytes_received: u64,
    pub(crate) frames_received: u64,
    pub(crate) messages_received: u64,
    /// When drained buffers are freed.
    pub(crate) release: Release,
    /// Input arrived since the receive buffer was last found drained: its
    /// draining is traffic (owned payloads split off the buffer leave it
    /// empty without its positions showing it was used).
    fed: bool,
    /// The room `receive_buffer` last offered: what `commit` may take.
    offered: usize,
    /// An owned payload was split off the receive buffer since it was
    /// last replaced (see `grow`).
    #[cfg(feature = "bytes")]
    split: bool,
}

impl Recv {
    pub(crate) fn new(role: Role, config: &Config) -> Self {
        Self {
            rx: Buf::new(),
            msg: Buf::new(),
            start: 0,
            end: 0,
            frame: None,
            message: None,
            utf8: Utf8Validator::default(),
            inflater: None,
            stash: None,
            streaming: config.streaming,
            skip: Skip::Header,
            role,
            bytes_received: 0,
            frames_received: 0,
            messages_received: 0,
            release: Release::default(),
            fed: false,
            offered: 0,
            #[cfg(feature = "bytes")]
            split: false,
        }
    }

    // ----- Input ----------------------------------------------------------

    /// Bytes received but not looked at yet: everything after the part of
    /// the current frame that was already unmasked.
    fn unprocessed(&self) -> usize {
        let kept = match self.frame {
            Some(f) if f.buffered => f.header_len + f.done as usize,
            Some(f) => (f.done - f.consumed) as usize,
            None => 0,
        };
        (self.end - self.start).saturating_sub(kept)
    }

    /// How many more bytes may be received now. `handshake` adds room for
    /// a whole opening handshake.
    pub(crate) fn room(&self, config: &Config, discarding: bool, handshake: bool) -> usize {
        if discarding {
            return config.max_unprocessed_input;
        }
        let limit = config.max_unprocessed_input + if handshake { config.max_handshake_size } else { 0 };
        limit.saturating_sub(self.unprocessed())
    }

    /// Copies as much of `data` as `room` allows; returns how much.
    /// `frames`: the input is frames (not a handshake), and then, unless
    /// `whole`, the copy stops where [`Self::stop_before_moved_frame`] says.
    pub(crate) fn receive(&mut self, data: &[u8], room: usize, config: &Config, frames: bool, whole: bool) -> usize {
        let mut n = data.len().min(room);
        if n == 0 {
            return 0;
        }
        if frames && !whole {
            n = self.stop_before_moved_frame(&data[..n], config);
        }
        self.make_room(n);
        // Input that starts a frame gets room for the frame at once (as
        // `room_for_frame` would give it once the header is parsed), so the
        // first read of a large frame is copied once, not again on growth.
        let wanted = self.end - self.start + n;
        let want = match FrameHeader::decode(data) {
            Ok(Some((header, header_len))) if frames && self.at_frame_boundary() => {
                frame_reserve(config, &header, header_len, self.streaming).max(wanted)
            }
            _ => wanted,
        };
        self.grow(want);
        // Appended rather than copied into zeroed spare room.
        self.rx.truncate(self.end);
        self.rx.extend_from_slice(&data[..n]);
        self.offered = n;
        self.commit(n)
    }

    /// How much of `data` to take: all of it, unless it ends the frame in
    /// progress and goes on into a frame to be held whole that would not
    /// fit after it in the buffer. Taken, that frame's first piece would
    /// have to be moved to the front (or the buffer grown around it) once
    /// the message before it is drained, a copy of up to the whole read;
    /// left for the caller to offer again after draining, it lands at the
    /// front of the emptied buffer. Small frames following one another are
    /// taken together as before, and so is a piece of the next frame
    /// shorter than [`MOVE_WORTH_AVOIDING`].
    fn stop_before_moved_frame(&self, data: &[u8], config: &Config) -> usize {
        let n = data.len();
        let idle = self.start == self.end && self.stash.is_none();
        let frame_end = if self.at_frame_boundary() {
            match FrameHeader::decode(data) {
                Ok(Some((header, header_len))) => usize::try_from(header.payload_len)
                    .ok()
                    .and_then(|p| p.checked_add(header_len))
                    .unwrap_or(usize::MAX),
                _ => return n,
            }
        } else {
            self.frame_missing()
        };
        if frame_end == 0 || frame_end >= n {
            return n;
        }
        let Ok(Some((next, next_len))) = FrameHeader::decode(&data[frame_end..]) else { return n };
        let reserve = frame_reserve(config, &next, next_len, self.streaming);
        // A small piece costs less to move than a second call.
        if reserve.min(n - frame_end) < MOVE_WORTH_AVOIDING {
            return n;
        }
        let next_at = if idle { 0 } else { self.end } + frame_end;
        if reserve > self.rx.capacity().saturating_sub(next_at) { frame_end } else { n }
    }

    /// Spare room for up to `want` bytes (at most `room`) at the end of the
    /// receive buffer, to read into directly. While a frame held whole is
    /// arriving and the buffer already has room for its rest, the room
    /// offered ends where the buffer does, so that the frame's last read
    /// does not grow (and copy) the buffer.
    pub(crate) fn receive_buffer(&mut self, want: usize, room: usize) -> &mut [u8] {
        let n = self.room_to_read(want, room);
        let end = self.end;
        if self.rx.len() < end + n {
            self.rx.resize(end + n, 0);
        }
        self.offered = n;
        &mut self.rx[end..end + n]
    }

    /// As [`Self::receive_buffer`], but the room is left uninitialised: the
    /// buffer itself, holding exactly the received bytes, and how many may
    /// be appended to it (with `bytes::BufMut`, by a reader that fills
    /// uninitialised memory such as tokio's); then [`Self::commit_appended`].
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn receive_spare(&mut self, want: usize, room: usize) -> (&mut bytes::BytesMut, usize) {
        let n = self.room_to_read(want, room);
        self.rx.truncate(self.end);
        self.offered = n;
        (&mut self.rx, n)
    }

    /// Takes what was appended to the buffer [`Self::receive_spare`] lent
    /// (no more than it offered); returns how much.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn commit_appended(&mut self) -> usize {
        let appended = self.rx.len().saturating_sub(self.end);
        self.rx.truncate(self.end + appended.min(self.offered));
        self.commit(appended)
    }

    /// How much the next read may bring (`want`, at most `room`), with the
    /// buffer's capacity made ready for it.
    fn room_to_read(&mut self, want: usize, room: usize) -> usize {
        let mut n = want.min(room);
        self.offered = 0;
        if n == 0 {
            return 0;
        }
        self.make_room(n);
        let spare = self.rx.capacity() - self.end;
        let missing = self.frame_missing();
        if missing > 0 && spare >= missing.min(n) {
            n = n.min(spare);
        } else if spare < n {
            // Geometric growth for a frame larger than its reservation.
            let live = self.end - self.start;
            let target = if missing > 0 { (live + n).max((2 * live).min(live + missing)) } else { live + n };
            self.grow(target);
        }
        n
    }

    /// Bytes of the frame being received that have not arrived yet (0 when
    /// no frame is in progress): what an adapter may read at once.
    pub(crate) fn frame_missing(&self) -> usize {
        let Some(f) = self.frame else { return 0 };
        // Where the frame ends in the buffer: a frame held whole starts at
        // `start`; another one's consumed payload is gone from before it.
        let from_start =
            if f.buffered { f.header_len as u64 + f.header.payload_len } else { f.header.payload_len - f.consumed };
        let frame_end = (self.start as u64).saturating_add(from_start);
        usize::try_from(frame_end.saturating_sub(self.end as u64)).unwrap_or(usize::MAX)
    }

    /// Room at the end of the buffer that needs no allocation.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn spare_capacity(&self) -> usize {
        let end = if self.start == self.end && self.stash.is_none() { 0 } else { self.end };
        self.rx.capacity() - end
    }

    /// Nothing is pending and the next input starts a frame.
    fn at_frame_boundary(&self) -> bool {
        self.start == self.end && self.stash.is_none() && self.frame.is_none() && matches!(self.skip, Skip::Header)
    }

    /// Moves unprocessed input to the front of the receive buffer when that
    /// makes room for `min` more bytes, so the buffer grows only with what
    /// is really pending.
    fn make_room(&mut self, min: usize) {
        // A peeked event still borrows from before `start`: only append then.
        if self.stash.is_some() {
            return;
        }
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.rx.capacity() - self.end < min && self.start > 0 {
            self.move_to_front();
        }
    }

    /// Moves `rx[start..end]` to the front of the buffer. Not while a
    /// peeked event points before `start` (callers check).
    fn move_to_front(&mut self) {
        self.rx.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// Gives the buffer room for `len` bytes from `start`. Only the bytes
    /// that matter, `rx[..end]`, are kept, and what was consumed before
    /// `start` is dropped first unless a peeked event points into it; a
    /// buffer that must grow is replaced by one of the size asked for
    /// rather than doubled, and a shared one (owned payloads split off it
    /// still alive) is reclaimed when they are gone.
    fn grow(&mut self, len: usize) {
        if self.rx.capacity() >= self.start + len {
            return;
        }
        if self.stash.is_none() && self.start > 0 {
            self.move_to_front();
        }
        self.rx.truncate(self.end);
        let additional = self.start + len - self.end;
        #[cfg(feature = "bytes")]
        if !self.rx.try_reclaim(additional) {
            // Small messages split off one by one share a buffer of a
            // read's size, rather than each taking an allocation; a buffer
            // nothing was split off is reused, and needs only what is asked.
            let least = if core::mem::take(&mut self.split) { MIN_FRESH_BUFFER } else { 0 };
            let mut fresh = Buf::with_capacity((self.start + len).max(least));
            fresh.extend_from_slice(&self.rx);
            self.rx = fresh;
        }
        #[cfg(not(feature = "bytes"))]
        self.rx.reserve_exact(additional);
    }

    /// A frame of `len` bytes (header included) is to be held whole from
    /// `start`: room for it now (see [`frame_reserve`]), so that it arrives
    /// into one buffer rather than one that grows and is copied as it does.
    fn room_for_frame(&mut self, config: &Config, len: usize) {
        if self.stash.is_none() && self.start > 0 && self.rx.capacity() < self.start + len {
            // Move what arrived of it to the front now, while that is only
            // its first bytes, rather than nearly all of it later.
            self.move_to_front();
        }
        self.grow(len.min(reserve_limit(config)));
    }

    /// Records that `n` bytes were written at the end of the buffer (capped
    /// at what [`Self::receive_buffer`] offered).
    pub(crate) fn commit(&mut self, n: usize) -> usize {
        // Never more than was offered: bytes past it are stale.
        let n = n.min(core::mem::take(&mut self.offered));
        self.end += n;
        self.fed |= n > 0;
        self.bytes_received += n as u64;
        n
    }

    // ----- Frames -----------------------------------------------------------

    /// Processes buffered input until it yields an event or needs more.
    /// The connection is past its handshake.
    pub(crate) fn advance<A: Access>(&mut self, config: &Config, shared: &mut A) -> Option<Ready> {
        if self.message.is_none() && self.msg.capacity() > 0 {
            let used = self.fed || !self.msg.is_empty();
            self.msg.clear();
            if self.free_now(config, self.msg.capacity(), used, shared) {
                self.msg = Buf::new();
            }
        }
        let (reading, eof) = {
            let s = shared.lock();
            if s.closed.is_some() && !s.closed_reported {
                // Reported once handed out: a peeked `Closed` is not yet.
                return Some(Ready::Closed);
            }
            (s.reading_frames(), s.eof)
        };
        if !reading {
            self.discard(shared);
            self.release_input(config, shared);
            return None;
        }
        loop {
            match self.read_frame(config, shared) {
                Step::Ready(ready) => return Some(ready),
                Step::Continue => {}
                Step::NeedMore if eof => {
                    self.fail(shared, Error::ConnectionLost);
                }
                Step::NeedMore => {
                    self.release_input(config, shared);
                    return None;
                }
            }
            let s = shared.lock();
            if s.closed.is_some() && !s.closed_reported {
                return Some(Ready::Closed);
            }
            if !s.reading_frames() {
                drop(s);
                self.discard(shared);
                self.release_input(config, shared);
                return None;
            }
        }
    }

    /// Fails the connection from the receive path, remembering how much of
    /// the current frame is left so lingering can skip it.
    fn fail<A: Access>(&mut self, shared: &mut A, error: Error) {
        let reason = match error {
            Error::Protocol(e) => e.reason(),
            _ => "",
        };
        self.skip = match self.frame {
            Some(f) if f.buffered => {
                // The frame's header and the payload so far stay in the
                // buffer: skip what is left of the payload after them.
                self.start += f.header_len + f.done as usize;
                Skip::Payload(f.header.payload_len - f.done)
            }
            Some(f) => {
                self.start += (f.done - f.consumed) as usize;
                Skip::Payload(f.header.payload_len - f.done)
            }
            None => self.skip,
        };
        self.frame = None;
        self.message = None;
        shared.lock().fail(error, reason);
    }

    /// Input after the connection stopped reading frames is discarded: after
    /// the peer's close nothing may follow, after a failure frames are only
    /// skipped through until the peer's close (lingering).
    pub(crate) fn discard<A: Access>(&mut self, shared: &mut A) {
        let lingering = {
            let s = shared.lock();
            s.failure.is_some() && s.lingering() && s.open
        };
        if lingering {
            while self.start < self.end {
                match self.skip {
                    Skip::Broken => break,
                    Skip::Payload(n) => {
                        let take = (self.end - self.start).min(usize::try_from(n).unwrap_or(usize::MAX));
                        self.start += take;
                        self.skip = if take as u64 == n { Skip::Header } else { Skip::Payload(n - take as u64) };
                    }
                    // Lenient: a header that broke a rule (a reserved
                    // opcode, say) still says how long its frame is.
                    Skip::Header => match crate::frame::frame_extent(&self.rx[self.start..self.end]) {
                        None => return,
                        Some((opcode, len, payload)) => {
                            self.start += len;
                            if opcode == OpCode::Close.as_u8() {
                                // The peer answered: nothing more to wait for.
                                shared.lock().linger_close_seen = true;
                                self.skip = Skip::Broken;
                            } else {
                                self.skip = Skip::Payload(payload);
                            }
                        }
                    },
                }
            }
        }
        self.start = self.end;
    }

    fn read_frame<A: Access>(&mut self, config: &Config, shared: &mut A) -> Step {
        let frame = match self.frame {
            Some(frame) => frame,
            None => match FrameHeader::decode(&self.rx[self.start..self.end]) {
                Ok(None) => return Step::NeedMore,
                Err(e) => {
                    // The lenient parse in `discard` skips this very frame.
                    self.skip = Skip::Header;
                    self.fail(shared, e.into());
                    return Step::Continue;
                }
                Ok(Some((header, header_len))) => match self.start_frame(config, header, header_len) {
                    Ok(frame) => {
                        if frame.buffered {
                            let len = usize::try_from(header.payload_len)
                                .map_or(usize::MAX, |p| p.saturating_add(header_len));
                            self.room_for_frame(config, len);
                        }
                        frame
                    }
                    Err(e) => {
                        self.start += header_len;
                        self.skip = Skip::Payload(header.payload_len);
                        self.fail(shared, e.into());
                        return Step::Continue;
                    }
                },
            },
        };
        let header = frame.header;
        let kept = if frame.buffered {
            frame.header_len + frame.done as usize
        } else {
            (frame.done - frame.consumed) as usize
        };
        let begin = self.start + kept;
        let remaining = header.payload_len - frame.done;
        let n = (self.end - begin).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let payload = &mut self.rx[begin..begin + n];
        if let Some(key) = header.mask {
            apply_mask(payload, key, frame.done as usize);
        }
        let done = frame.done + n as u64;
        let complete = done == header.payload_len;
        let data = self.message.filter(|_| !header.opcode.is_control());
        if data.is_some_and(|m| m.compressed) {
            self.frame = Some(FrameState { done, ..frame });
            return self.read_compressed(config, shared);
        }
        let text = data.is_some_and(|m| m.kind == MessageKind::Text);
        // Validate as bytes arrive, so a bad byte fails the connection at
        // once. A single frame that arrived whole is validated in one pass
        // when its event is built instead, since there is nothing to fail
        // earlier than that.
        let whole_at_once = frame.buffered && frame.done == 0 && complete;
        let text = text && !whole_at_once;
        let payload = &self.rx[begin..begin + n];
        if text && self.utf8.feed(payload).is_err() {
            self.frame = Some(FrameState { done, consumed: done, ..frame });
            self.fail(shared, ProtocolError::InvalidUtf8.into());
            return Step::Continue;
        }
        self.frame = Some(FrameState { done, consumed: done, ..frame });
        let fin = complete && header.fin;
        if text && fin && !self.utf8.is_complete() {
            self.fail(shared, ProtocolError::InvalidUtf8.into());
            return Step::Continue;
        }

        if frame.buffered {
            if !complete {
                return Step::NeedMore;
            }
            self.frame = None;
            let start = self.start + frame.header_len;
            let end = start + header.payload_len as usize;
            self.start = end;
            if header.opcode.is_control() {
                return self.control_frame(shared, header.opcode, start, end);
            }
            let kind = self.message.take().map_or(MessageKind::Binary, |m| m.kind);
            return Step::Ready(Ready::Message { kind, start, end, assembled: false, checked: !whole_at_once });
        }
        self.read_unbuffered(begin, n, complete, fin)
    }

    /// The rest of `read_frame` for an uncompressed data frame consumed as
    /// it arrives: `n` new payload bytes at `begin`.
    fn read_unbuffered(&mut self, begin: usize, n: usize, complete: bool, fin: bool) -> Step {
        let message = self.message;
        let kind = message.map_or(MessageKind::Binary, |m| m.kind);
        self.start = begin + n;
        if complete {
            self.frame = None;
        }
        if message.is_some_and(|m| m.streaming) {
            if fin {
                self.message = None;
            }
            return if n > 0 || fin {
                Step::Ready(Ready::Chunk { kind, start: begin, end: begin + n, fin, assembled: false })
            } else if complete {
                Step::Continue
            } else {
                Step::NeedMore
            };
        }
        self.msg.extend_from_slice(&self.rx[begin..begin + n]);
        if fin {
            self.message = None;
            return Step::Ready(Ready::Message { kind, start: 0, end: self.msg.len(), assembled: true, checked: true });
        }
        if complete { Step::Continue } else { Step::NeedMore }
    }

    /// Feeds the unmasked payload of a compressed message (and at its end
    /// the sync-flush tail) to the inflater. Output goes to `msg`: the whole
    /// message, bounded by `max_message_size` so that a small payload that
    /// inflates to gigabytes fails with 1009 before the limit is exceeded;
    /// or, when streaming, one chunk of at most [`INFLATE_CHUNK`] bytes.
    /// Each frame's inflated size is held to `max_frame_size`, the bound a
    /// plain frame has, so the compressed path accepts what the plain path
    /// does and no more.
    fn read_compressed<A: Access>(&mut self, config: &Config, shared: &mut A) -> Step {
        let (Some(mut frame), Some(mut message), Some(inflater)) =
            (self.frame, self.message, self.inflater.as_deref_mut())
        else {
            return Step::NeedMore;
        };
        let streaming = message.streaming;
        let limit = config.max_message_size;
        let frame_limit = config.max_frame_size as u64;
        let last_frame = frame.header.fin;
        if streaming {
            self.msg.clear();
        }
        let mut progressed = false;
        let mut failure = None;
        loop {
            if message.stream_ended {
                // A stream ended by a final block may be followed by padding
                // (RFC 7692 §7.2.3.4): the rest of the message is ignored,
                // while the inflater hands out what it still holds.
                let rest = (frame.done - frame.consumed) as usize;
                self.start += rest;
                frame.consumed += rest as u64;
            }
            let pending = (frame.done - frame.consumed) as usize;
            let payload_in = frame.consumed == frame.header.payload_len;
            let input: &[u8] = if pending > 0 {
                &self.rx[self.start..self.start + pending]
            } else if last_frame && payload_in && !message.stream_ended {
                &crate::deflate::TAIL[usize::from(message.tail_fed)..]
            } else {
                &[]
            };
            let from_tail = pending == 0;
            let old = self.msg.len();
            let room = if streaming {
                INFLATE_CHUNK - old
            } else {
                // Grow with the input, never past one byte over the limit.
                (limit + 1 - old.min(limit)).min((4 * input.len()).clamp(4096, INFLATE_CHUNK))
            };
            if room == 0 {
                break;
            }
            if old + room > self.msg.capacity() {
                // Double as a Vec would, but never reserve beyond the limit.
                let target = (self.msg.capacity() * 2).max(old + room).min(limit.saturating_add(1).max(old + room));
                self.msg.reserve(target - old);
            }
            self.msg.resize(old + room, 0);
            let result = inflater.inflate(input, &mut self.msg[old..]);
            let Ok(out) = result else {
                self.msg.truncate(old);
                failure = Some(ProtocolError::InvalidCompressedData);
                break;
            };
            self.msg.truncate(old + out.written);
            if from_tail {
                message.tail_fed += out.consumed as u8;
            } else {
                self.start += out.consumed;
                frame.consumed += out.consumed as u64;
            }
            frame.inflated += out.written as u64;
            if message.kind == MessageKind::Text && self.utf8.feed(&self.msg[old..]).is_err() {
                failure = Some(ProtocolError::InvalidUtf8);
                break;
            }
            if frame.inflated > frame_limit {
                failure = Some(ProtocolError::FrameTooLarge);
                break;
            }
            if !streaming && self.msg.len() > limit {
                failure = Some(ProtocolError::MessageTooLarge);
                break;
            }
            message.stream_ended |= out.ended;
            if out.consumed == 0 && out.written == 0 {
                break;
            }
            progressed = true;
        }
        self.frame = Some(frame);
        if let Some(e) = failure {
            self.fail(shared, e.into());
            return Step::Continue;
        }
        let frame_done = frame.consumed == frame.header.payload_len;
        let tail_done = message.stream_ended || usize::from(message.tail_fed) == crate::deflate::TAIL.len();
        // Output that filled the chunk may not be all there is.
        let drained = !streaming || self.msg.len() < INFLATE_CHUNK;
        let fin = last_frame && frame_done && tail_done && drained;
        let inflater = self.inflater.as_deref_mut();
        if fin && !message.stream_ended && !inflater.as_ref().is_some_and(|i| i.at_block_boundary()) {
            self.fail(shared, ProtocolError::InvalidCompressedData.into());
            return Step::Continue;
        }
        if last_frame && frame_done && !fin && !progressed {
            // The inflater takes no more input, yet the message is not over.
            self.fail(shared, ProtocolError::InvalidCompressedData.into());
            return Step::Continue;
        }
        self.frame = if frame_done && (!last_frame || fin) { None } else { Some(frame) };
        self.message = Some(message);
        if fin {
            self.message = None;
            if let Some(inflater) = inflater {
                inflater.end_message(message.stream_ended);
            }
            // State no later message needs goes once the connection is
            // quiet, as large buffers do.
            let releasable = self.inflater.as_deref().map_or(0, Decompressor::releasable);
            if releasable > 0
                && self.free_now(config, releasable, true, shared)
                && let Some(inflater) = self.inflater.as_deref_mut()
            {
                inflater.release();
            }
            if message.kind == MessageKind::Text && !self.utf8.is_complete() {
                self.fail(shared, ProtocolError::InvalidUtf8.into());
                return Step::Continue;
            }
        }
        let kind = message.kind;
        let produced = self.msg.len();
        if streaming {
            if produced > 0 || fin {
                return Step::Ready(Ready::Chunk { kind, start: 0, end: produced, fin, assembled: true });
            }
        } else if fin {
            return Step::Ready(Ready::Message { kind, start: 0, end: produced, assembled: true, checked: true });
        }
        if self.frame.is_none() || (last_frame && frame_done) { Step::Continue } else { Step::NeedMore }
    }

    /// Checks a new frame header against the rules that need context
    /// (RFC 6455 §5.1–§5.5) and the configured limits, before any of its
    /// payload is looked at.
    fn start_frame(
        &mut self,
        config: &Config,
        header: FrameHeader,
        header_len: usize,
    ) -> Result<FrameState, ProtocolError> {
        self.frames_received += 1;
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        // RSV1 marks the first frame of a compressed message, and only that,
        // once permessage-deflate is negotiated (RFC 7692 §6).
        let compressed = header.rsv & RSV1 != 0;
        let rsv1_allowed = self.inflater.is_some() && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv & !RSV1 != 0 || (compressed && !rsv1_allowed) {
            return Err(ProtocolError::ReservedBits);
        }
        let len = header.payload_len;
        let mut streaming = false;
        if header.opcode.is_control() {
            if !header.fin {
                return Err(ProtocolError::FragmentedControlFrame);
            }
            if len > MAX_CONTROL_PAYLOAD as u64 {
                return Err(ProtocolError::ControlFrameTooLong);
            }
        } else {
            let message = match (header.opcode, self.message) {
                (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
                (OpCode::Continuation, Some(m)) => m,
                (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
                (opcode, None) => {
                    self.utf8.reset();
                    MessageState {
                        kind: if opcode == OpCode::Text { MessageKind::Text } else { MessageKind::Binary },
                        len: 0,
                        fragments: 0,
                        compressed,
                        streaming: self.streaming,
                        tail_fed: 0,
                        stream_ended: false,
                    }
                }
            };
            streaming = message.streaming;
            // A compressed frame's payload is consumed as it arrives; its
            // inflated size is what is held to `max_frame_size`. Its wire
            // size only gets a sanity bound: deflate's worst case adds a few
            // bytes per 16 KiB stored block, far below 1/64.
            let wire_limit = if message.compressed {
                (config.max_frame_size as u64).saturating_add(config.max_frame_size as u64 / 64 + 1024)
            } else {
                config.max_frame_size as u64
            };
            if len > wire_limit {
                return Err(ProtocolError::FrameTooLarge);
            }
            let total = message.len + len;
            if !streaming && !message.compressed && total > config.max_message_size as u64 {
                return Err(ProtocolError::MessageTooLarge);
            }
            if message.fragments >= config.max_fragments {
                return Err(ProtocolError::TooManyFragments);
            }
            self.message = Some(MessageState { len: total, fragments: message.fragments + 1, ..message });
        }
        let buffered = header.opcode.is_control()
            || (!streaming && header.fin && header.opcode != OpCode::Continuation && !compressed);
        if !buffered {
            self.start += header_len;
        }
        Ok(FrameState { header, buffered, header_len, done: 0, consumed: 0, inflated: 0 })
    }

    /// Acts on a complete control frame whose payload is `rx[start..end]`.
    fn control_frame<A: Access>(&mut self, shared: &mut A, opcode: OpCode, start: usize, end: usize) -> Step {
        match opcode {
            OpCode::Ping => {
                shared.lock().owe_pong(&self.rx[start..end]);
                Step::Ready(Ready::Ping { start, end })
            }
            OpCode::Pong => Step::Ready(Ready::Pong { start, end }),
            _ => match CloseFrame::parse(&self.rx[start..end]) {
                Err(e) => {
                    self.fail(shared, e.into());
                    Step::Continue
                }
                Ok(frame) => {
                    self.frame = None;
                    self.message = None;
                    shared.lock().peer_closed(frame.code, frame.reason);
                    Step::Ready(Ready::Close { start, end })
                }
            },
        }
    }

    // ----- Events -----------------------------------------------------------

    /// Validates now the text of a message that `poll_event` would
    /// otherwise validate while building it, so a peeked message is
    /// certain to be returned as one.
    pub(crate) fn check_peeked<A: Access>(&mut self, shared: &mut A) {
        if let Some(Ready::Message { kind: MessageKind::Text, start, end, assembled, checked: false }) = self.stash {
            let bytes = if assembled { &self.msg[start..end] } else { &self.rx[start..end] };
            if crate::message::str_from_utf8(bytes).is_none() {
                text_failed(shared);
                self.stash = Some(Ready::Closed);
            } else if let Some(Ready::Message { checked, .. }) = self.stash.as_mut() {
                *checked = true;
            }
        }
    }

    /// Builds the borrowed event for `ready` (not a handshake event).
    pub(crate) fn event<A: Access>(&mut self, ready: Ready, shared: &mut A) -> Option<Event<'_>> {
        let Self { rx, msg, messages_received, .. } = self;
        Some(match ready {
            Ready::Message { kind, start, end, assembled, checked } => {
                let bytes = if assembled { &msg[start..end] } else { &rx[start..end] };
                match kind {
                    MessageKind::Binary => {
                        *messages_received += 1;
                        Event::Message(Message::Binary(bytes))
                    }
                    // Text validated as it arrived (or when peeked) is not
                    // looked at again; a frame that arrived whole gets its
                    // one pass here.
                    MessageKind::Text => match if checked {
                        Some(crate::message::str_from_checked(bytes))
                    } else {
                        crate::message::str_from_utf8(bytes)
                    } {
                        Some(text) => {
                            *messages_received += 1;
                            Event::Message(Message::Text(text))
                        }
                        None => Event::Closed(invalid_text(shared)?),
                    },
                }
            }
            Ready::Chunk { kind, start, end, fin, assembled } => {
                *messages_received += u64::from(fin);
                let data = if assembled { &msg[start..end] } else { &rx[start..end] };
                Event::Chunk(Chunk { kind, data, fin })
            }
            Ready::Ping { start, end } => Event::Ping(&rx[start..end]),
            Ready::Pong { start, end } => Event::Pong(&rx[start..end]),
            Ready::Close { start, end } => Event::Close(CloseFrame::parse(&rx[start..end]).ok()?),
            Ready::Closed => Event::Closed(take_closed(shared)?),
            Ready::Request | Ready::Connected | Ready::Rejected => return None,
        })
    }

    // ----- Buffers ----------------------------------------------------------

    /// Whether a drained buffer of `capacity` bytes goes now rather than
    /// stay for reuse (see [`Release`]).
    fn free_now<A: Access>(&mut self, config: &Config, capacity: usize, used: bool, shared: &mut A) -> bool {
        self.release.drained(config, capacity, used, || shared.lock().timers.clock)
    }

    /// Frees the receive buffer once it holds nothing, unless it is small
    /// enough to keep ([`Config::retained_buffer_capacity`]).
    fn release_input<A: Access>(&mut self, config: &Config, shared: &mut A) {
        if self.start == self.end && self.stash.is_none() {
            let used = core::mem::take(&mut self.fed);
            self.start = 0;
            self.end = 0;
            if self.free_now(config, self.rx.capacity(), used, shared) {
                self.rx = Buf::new();
            }
        }
    }

    /// The release deadline passed at `now`: once the receive side has been
    /// quiet for a whole [`Config::buffer_release_delay`], frees its drained
    /// buffers, whatever their size, and the inflate state between messages
    /// (with context takeover, all but the 32 KiB of history). A buffer an
    /// unreturned (peeked) event points into is never freed.
    pub(crate) fn release_idle(&mut self, config: &Config, now: Duration) {
        if !self.release.quiet(config, now) || self.stash.is_some() {
            return;
        }
        if self.start == self.end {
            (self.start, self.end) = (0, 0);
            self.rx = Buf::new();
        }
        if self.message.is_none() {
            self.msg = Buf::new();
            if let Some(inflater) = self.inflater.as_deref_mut() {
                inflater.release_idle();
            }
        }
    }

    /// The transport is gone: nothing buffered will be processed.
    pub(crate) fn drop_input(&mut self) {
        if self.stash.is_none() {
            self.start = self.end;
        }
    }

    /// Whether the shared state says input is only discarded now: the
    /// connection closed (and said so), or the peer's close frame arrived.
    pub(crate) fn discarding(s: &Shared) -> bool {
        s.closed_reported || (s.open && s.peer_close.is_some())
    }
}

/// A whole text frame turned out not to be UTF-8: the connection fails and
/// the event becomes `Closed`.
/// The least a receive buffer that must be replaced is allocated with: a
/// socket read's worth (owned payloads split off it keep it alive until
/// they are dropped, and then it is reclaimed whole).
#[cfg(feature = "bytes")]
const MIN_FRESH_BUFFER: usize = 16 * 1024;

/// The most room a frame's length field alone makes the receive buffer set
/// aside (not fill) before the frame's bytes arrive: 16 ×
/// [`Config::max_unprocessed_input`] of payload, 1 MiB by default, and its
/// header. A larger frame's buffer grows as it arrives.
fn reserve_limit(config: &Config) -> usize {
    config.max_unprocessed_input.saturating_mul(16).saturating_add(crate::frame::MAX_HEADER_LEN)
}

/// The shortest piece of a next frame that `receive` leaves for the
/// caller to offer again rather than take and move later (see
/// `Recv::stop_before_moved_frame`).
const MOVE_WORTH_AVOIDING: usize = 4096;

/// The room to set aside for a frame whose header starts the input: all of
/// it, up to [`reserve_limit`], when it will be held whole (a control
/// frame, or an uncompressed single-frame message not streamed); else none.
fn frame_reserve(config: &Config, header: &FrameHeader, header_len: usize, streaming: bool) -> usize {
    let whole = header.opcode.is_control()
        || (header.fin && header.opcode != OpCode::Continuation && header.rsv & RSV1 == 0 && !streaming);
    // Nothing for a frame about to fail for its length.
    let limit = if header.opcode.is_control() { MAX_CONTROL_PAYLOAD as u64 } else { config.max_frame_size as u64 };
    if !whole || header.payload_len > limit {
        return 0;
    }
    usize::try_from(header.payload_len).map_or(usize::MAX, |p| p.saturating_add(header_len)).min(reserve_limit(config))
}

fn text_failed<A: Access>(shared: &mut A) {
    shared.lock().fail(ProtocolError::InvalidUtf8.into(), ProtocolError::InvalidUtf8.reason());
}

/// Hands out `Closed`: from now on the connection counts it as returned.
fn take_closed<A: Access>(shared: &mut A) -> Option<crate::connection::event::Closed> {
    let mut s = shared.lock();
    s.closed_reported = true;
    s.closed.clone()
}

/// A whole text frame turned out not to be UTF-8: `Closed`, handed out.
fn invalid_text<A: Access>(shared: &mut A) -> Option<crate::connection::event::Closed> {
    text_failed(shared);
    take_closed(shared)
}

#[cfg(feature = "bytes")]
mod owned {
    use super::{Ready, Recv};
    use crate::connection::event::{OwnedChunk, OwnedEvent};
    use crate::connection::shared::Access;
    use crate::frame::CloseFrame;
    use crate::message::{MessageKind, OwnedMessage, Payload, Utf8Payload};

    impl Recv {
        /// `rx[start..end]`, which lies before `self.start`, as an owned
        /// payload: copied if tiny, else split off the buffer (everything
        /// before `self.start` has been consumed).
        // Inlined, like `take_msg` and `owned_event`, so that the payload
        // is built where the caller of `poll_owned` holds the event (see
        // there).
        #[inline(always)]
        fn take_rx(&mut self, start: usize, end: usize) -> Payload {
            if let Some(inline) = Payload::inline(&self.rx[start..end]) {
                return inline;
            }
            let cut = self.start;
            let mut head = self.rx.split_to(cut);
            self.split = true;
            self.start -= cut;
            self.end -= cut;
            if self.rx.capacity() == 0 {
                // A frame that filled its buffer: an empty view of it would
                // only keep the allocation alive, with nothing to reuse.
                self.rx = bytes::BytesMut::new();
            }
            bytes::Buf::advance(&mut head, start);
            head.truncate(end - start);
            Payload::from(head.freeze())
        }

        /// `msg[start..end]` as an owned payload; the assembly buffer is
        /// handed over whole, and the next message gets a new one.
        #[inline(always)]
        fn take_msg(&mut self, start: usize, end: usize) -> Payload {
            if let Some(inline) = Payload::inline(&self.msg[start..end]) {
                return inline;
            }
            let mut taken = self.msg.split_to(end);
            bytes::Buf::advance(&mut taken, start);
            Payload::from(taken.freeze())
        }

        /// Builds the owned event for `ready` (not a handshake event).
        #[inline]
        pub(crate) fn owned_event<A: Access>(&mut self, ready: Ready, shared: &mut A) -> Option<OwnedEvent<'static>> {
            Some(match ready {
                Ready::Message { kind, start, end, assembled, checked } => {
                    if kind == MessageKind::Text && !checked {
                        let bytes = if assembled { &self.msg[start..end] } else { &self.rx[start..end] };
                        if crate::message::str_from_utf8(bytes).is_none() {
                            return Some(OwnedEvent::Closed(super::invalid_text(shared)?));
                        }
                    }
                    self.messages_received += 1;
                    let payload = if assembled { self.take_msg(start, end) } else { self.take_rx(start, end) };
                    OwnedEvent::Message(match kind {
                        MessageKind::Binary => OwnedMessage::Binary(payload),
                        MessageKind::Text => OwnedMessage::Text(Utf8Payload::new_unchecked(payload)),
                    })
                }
                Ready::Chunk { kind, start, end, fin, assembled } => {
                    self.messages_received += u64::from(fin);
                    let data = if assembled { self.take_msg(start, end) } else { self.take_rx(start, end) };
                    OwnedEvent::Chunk(OwnedChunk { kind, data, fin })
                }
                Ready::Ping { start, end } => OwnedEvent::Ping(self.take_rx(start, end)),
                Ready::Pong { start, end } => OwnedEvent::Pong(self.take_rx(start, end)),
                Ready::Close { start, end } => {
                    let frame = CloseFrame::parse(&self.rx[start..end]).ok()?;
                    let reason = Payload::copy_from_slice(frame.reason.as_bytes());
                    OwnedEvent::Close(frame.code, Utf8Payload::new_unchecked(reason))
                }
                Ready::Closed => OwnedEvent::Closed(super::take_closed(shared)?),
                Ready::Request | Ready::Connected | Ready::Rejected => return None,
            })
        }
    }
}
