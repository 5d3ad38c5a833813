//! Helpers shared by the fuzz targets: deterministic entropy, splitting an
//! input into receive calls, an independent checker of the frames a
//! connection writes, and an independent decoder of the frames it reads.

use std::collections::VecDeque;

use wscore::frame::{CloseFrame, FrameHeader, MAX_CONTROL_PAYLOAD, OpCode, RSV1, apply_mask};
use wscore::{Connection, Role};

/// A deterministic stand-in for the OS random source, so that a crash
/// reproduces from its input alone.
pub fn fixed_entropy(dest: &mut [u8]) {
    for (i, b) in dest.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
}

/// The handshake targets' input layout: a flags byte, a count byte `k`
/// (taken modulo 8), `k` bytes that give the sizes of successive receive
/// calls (cycled), then the bytes to feed.
pub struct Split<'a> {
    pub flags: u8,
    sizes: Vec<usize>,
    pub data: &'a [u8],
}

impl<'a> Split<'a> {
    pub fn parse(input: &'a [u8]) -> Option<Self> {
        let (&flags, rest) = input.split_first()?;
        let (&count, rest) = rest.split_first()?;
        let count = usize::from(count % 8);
        if rest.len() < count {
            return None;
        }
        let (sizes, data) = rest.split_at(count);
        // 0..=199 -> 1..=200 bytes; 200..=255 -> 256..=14336 bytes.
        let sizes =
            sizes.iter().map(|&b| if b < 200 { usize::from(b) + 1 } else { usize::from(b - 199) * 256 }).collect();
        Some(Self { flags, sizes, data })
    }

    /// The pieces of `data` (or another buffer), in order, covering it exactly.
    pub fn pieces<'b>(&self, data: &'b [u8]) -> Vec<&'b [u8]> {
        let mut out = Vec::new();
        let mut rest = data;
        let mut i = 0;
        while !rest.is_empty() {
            let n = if self.sizes.is_empty() { rest.len() } else { self.sizes[i % self.sizes.len()] };
            let (now, later) = rest.split_at(n.min(rest.len()));
            out.push(now);
            rest = later;
            i += 1;
        }
        out
    }
}

/// Unprocessed received bytes, read from the connection's `Debug` output
/// (the only place the crate shows it).
pub fn buffered_in(conn: &Connection) -> usize {
    let text = format!("{conn:?}");
    let at = text.find("buffered_in: ").expect("Debug shows buffered_in") + "buffered_in: ".len();
    let digits: String = text[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("buffered_in is a number")
}

/// Position just past the first `\r\n\r\n` in `buf`.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// A data message as it appeared on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireMessage {
    pub text: bool,
    /// RSV1 was set: the payload is compressed (permessage-deflate).
    pub compressed: bool,
    pub payload: Vec<u8>,
}

/// Checks the byte stream one side transmits, frame by frame, against
/// RFC 6455 on its own terms (not with the connection's receive code):
/// every frame decodes; clients mask and servers do not; no reserved bits
/// (but RSV1 on the first frame of a data message once permessage-deflate
/// is negotiated);
/// control frames are final and carry at most 125 bytes; close payloads are
/// valid; fragments follow each other correctly; data frames respect the
/// configured send frame size; text messages are UTF-8 as a whole; nothing
/// follows a close frame.
#[derive(Debug)]
pub struct WireChecker {
    role: Role,
    max_send_frame: usize,
    /// permessage-deflate was negotiated: RSV1 may mark a compressed message.
    pub deflate: bool,
    buf: Vec<u8>,
    message: Option<WireMessage>,
    pub close_sent: bool,
    pub frames: usize,
    /// Complete data messages seen.
    pub messages: usize,
    /// Control frames seen and not yet taken by the caller, in order, so
    /// it can match pongs to the pings they answer.
    pub controls: Vec<(OpCode, Vec<u8>)>,
}

impl WireChecker {
    pub fn new(role: Role, max_send_frame: usize) -> Self {
        Self {
            role,
            max_send_frame,
            deflate: false,
            buf: Vec::new(),
            message: None,
            close_sent: false,
            frames: 0,
            messages: 0,
            controls: Vec::new(),
        }
    }

    /// Bytes received but not yet a whole frame.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        loop {
            let (header, n) = match FrameHeader::decode(&self.buf) {
                Ok(Some(h)) => h,
                Ok(None) => return,
                Err(e) => panic!(
                    "{:?} transmitted an undecodable frame header ({e:?}): {:02x?}",
                    self.role,
                    &self.buf[..self.buf.len().min(14)]
                ),
            };
            let len = usize::try_from(header.payload_len).expect("payload length fits usize");
            if self.buf.len() < n + len {
                return;
            }
            let mut payload = self.buf[n..n + len].to_vec();
            self.buf.drain(..n + len);
            self.frame(header, &mut payload);
        }
    }

    fn frame(&mut self, h: FrameHeader, payload: &mut [u8]) {
        let role = self.role;
        self.frames += 1;
        assert!(!self.close_sent, "{role:?} transmitted {h:?} after its close frame");
        match role {
            Role::Client => assert!(h.mask.is_some(), "client transmitted an unmasked frame {h:?}"),
            Role::Server => assert!(h.mask.is_none(), "server transmitted a masked frame {h:?}"),
        }
        if let Some(key) = h.mask {
            apply_mask(payload, key, 0);
        }
        let compressed = h.rsv & RSV1 != 0;
        assert_eq!(h.rsv & !RSV1, 0, "{role:?} transmitted reserved bits: {h:?}");
        if compressed {
            assert!(self.deflate, "{role:?} set RSV1 without permessage-deflate: {h:?}");
            assert!(
                matches!(h.opcode, OpCode::Text | OpCode::Binary),
                "{role:?} set RSV1 on a control or continuation frame: {h:?}"
            );
        }
        if h.opcode.is_control() {
            assert!(h.fin, "{role:?} transmitted a fragmented control frame {h:?}");
            assert!(payload.len() <= MAX_CONTROL_PAYLOAD, "{role:?} transmitted a control frame over 125 bytes: {h:?}");
            if h.opcode == OpCode::Close {
                if let Err(e) = CloseFrame::parse(payload) {
                    panic!("{role:?} transmitted an invalid close payload {payload:02x?}: {e:?}");
                }
                self.close_sent = true;
            }
            self.controls.push((h.opcode, payload.to_vec()));
            return;
        }
        assert!(
            payload.len() <= self.max_send_frame,
            "{role:?} transmitted a data frame over max_send_frame_size: {h:?}"
        );
        match (h.opcode, self.message.as_mut()) {
            (OpCode::Continuation, Some(m)) => m.payload.extend_from_slice(payload),
            (OpCode::Continuation, None) => panic!("{role:?} transmitted a continuation outside a message"),
            (_, Some(_)) => panic!("{role:?} started a new message {h:?} inside a fragmented one"),
            (op, None) => {
                self.message = Some(WireMessage { text: op == OpCode::Text, compressed, payload: payload.to_vec() })
            }
        }
        if h.fin {
            let m = self.message.take().expect("message in progress");
            if m.text && !m.compressed {
                assert!(
                    core::str::from_utf8(&m.payload).is_ok(),
                    "{role:?} transmitted a text message that is not UTF-8"
                );
            }
            self.messages += 1;
        }
    }
}

/// The handshake parser's work stays linear in the bytes received however
/// they were split: the search for the blank line resumes 3 bytes back on
/// each call (at most a few calls per receive), plus one parse of the head.
pub fn check_handshake_work(conn: &Connection, receive_calls: u64) {
    let stats = conn.stats();
    let bound = 2 * stats.bytes_received + 12 * (receive_calls + 2);
    assert!(
        stats.handshake_bytes_examined <= bound,
        "handshake parser examined {} bytes for {} received in {receive_calls} calls",
        stats.handshake_bytes_examined,
        stats.bytes_received
    );
}

/// What a connection must report for the frames it took in, in order: a
/// whole data message (reported at its last frame, however it is
/// delivered), or a control frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    Message { text: bool, compressed: bool, payload: Vec<u8> },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Vec<u8>),
}

/// Decodes the bytes a connection accepted (what `receive` and
/// `commit_received` took, nothing else), on its own terms, into the
/// events the connection must return for them, in order. A connection's
/// events are whatever its buffers, timers and peeks make of the same
/// bytes; this is the same stream read without any of that, so an event
/// that differs from the next one expected was damaged on the way (a
/// buffer freed or moved under a peeked event, input lost or repeated).
///
/// It checks only what frame boundaries need (header, opcode sequence,
/// control frame limits); where the stream breaks a rule the connection
/// fails, so nothing more is expected from it. A close frame ends the
/// stream too: the connection reads nothing after it.
#[derive(Debug)]
pub struct Reference {
    buf: Vec<u8>,
    /// Frames longer than this fail the connection before their payload.
    max_payload: usize,
    /// The data message being assembled: text, compressed, payload.
    message: Option<(bool, bool, Vec<u8>)>,
    /// Nothing more will be delivered from this stream.
    pub done: bool,
    pub expected: VecDeque<Expected>,
}

impl Reference {
    pub fn new(max_payload: usize) -> Self {
        Self { buf: Vec::new(), max_payload, message: None, done: false, expected: VecDeque::new() }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.done {
            return;
        }
        self.buf.extend_from_slice(bytes);
        loop {
            let (header, n) = match FrameHeader::decode(&self.buf) {
                Ok(Some(h)) => h,
                Ok(None) => return,
                Err(_) => return self.stop(),
            };
            let len = match usize::try_from(header.payload_len) {
                Ok(len) if len <= self.max_payload => len,
                _ => return self.stop(),
            };
            if self.buf.len() < n + len {
                return;
            }
            let mut payload = self.buf[n..n + len].to_vec();
            self.buf.drain(..n + len);
            if let Some(key) = header.mask {
                apply_mask(&mut payload, key, 0);
            }
            self.frame(header, payload);
            if self.done {
                return;
            }
        }
    }

    fn stop(&mut self) {
        self.done = true;
        self.buf = Vec::new();
    }

    fn frame(&mut self, h: FrameHeader, payload: Vec<u8>) {
        let rsv1 = h.rsv & RSV1 != 0;
        if h.rsv & !RSV1 != 0 {
            return self.stop();
        }
        if h.opcode.is_control() {
            if !h.fin || rsv1 || payload.len() > MAX_CONTROL_PAYLOAD {
                return self.stop();
            }
            let close = h.opcode == OpCode::Close;
            self.expected.push_back(match h.opcode {
                OpCode::Ping => Expected::Ping(payload),
                OpCode::Pong => Expected::Pong(payload),
                _ => Expected::Close(payload),
            });
            if close {
                self.stop();
            }
            return;
        }
        match (h.opcode, self.message.as_mut()) {
            (OpCode::Continuation, Some(m)) if !rsv1 => m.2.extend_from_slice(&payload),
            (OpCode::Text | OpCode::Binary, None) => self.message = Some((h.opcode == OpCode::Text, rsv1, payload)),
            _ => return self.stop(),
        }
        if h.fin {
            let (text, compressed, payload) = self.message.take().expect("a message in progress");
            self.expected.push_back(Expected::Message { text, compressed, payload });
        }
    }
}
