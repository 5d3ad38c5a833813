//! A client and a server `Connection` (small limits; frames only, or after a
//! real handshake that negotiates permessage-deflate) driven by
//! an arbitrary sequence of operations: raw bytes fed to either side, the
//! bytes one side queued moved (possibly only partly, possibly in pieces)
//! to the other, every send call, close, virtual time and timers, EOF,
//! transport errors, and `peek_event`.
//!
//! Invariants, checked after every operation:
//! * after `Event::Closed` a side returns no further event; `Closed` agrees
//!   with `closed()` and `state()`; `Close` is followed at once by `Closed`;
//!   `Request` and `Connected` never come after the start; with
//!   permessage-deflate both ends agree on the negotiated parameters;
//! * every byte a side transmits is a valid frame stream
//!   (`wscore_fuzz::WireChecker`): server frames unmasked, client frames
//!   masked, no reserved bits (RSV1 only on the first frame of a data
//!   message, with deflate), control frames final and at most 125 bytes,
//!   valid close payloads, correct fragmentation, data frames at most
//!   `max_send_frame_size`, text messages UTF-8, nothing after a close;
//! * a received `Message` is at most `max_message_size` (however much a
//!   compressed one inflates; a `Chunk` at most `max_frame_size`, or 64 KiB
//!   of inflated data), pings/pongs at most 125 bytes, close reasons at most
//!   123; text is UTF-8 (by type for messages, checked for chunked text);
//! * while a direction carried only bytes the other side produced, the
//!   messages received are exactly the messages sent, in order;
//! * `buffered_amount` never exceeds `write_buffer_high_water` + the largest
//!   single send (framed) + two control frames, and is 0 once everything
//!   queued was taken; within one operation that starts at or above the
//!   mark it grows by at most two control frames (a close and the one
//!   held-back pong), and one that starts below it ends at most one send or
//!   control frame (plus a pong and a close) past the mark, so automatic
//!   pongs are held back, not piled up; a side with a
//!   transport error transmits nothing;
//! * every send call succeeds exactly when the connection is open, below the
//!   high-water mark and the call is valid (control payload size, close
//!   code and reason, message kind in progress, UTF-8 of text chunks);
//! * `peek_event` predicts the kind `poll_event` then returns, even when
//!   more input arrives in between.
#![no_main]

use core::time::Duration;
use std::collections::VecDeque;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wscore::deflate::DeflateConfig;
use wscore::frame::MAX_HEADER_LEN;
use wscore::{
    Accept, ClientHandshake, CloseCode, Config, Connection, Error, Event, EventKind, MessageKind, Role, State,
    UsageError,
};
use wscore_fuzz::{WireChecker, fixed_entropy};

const MAX_FRAME: usize = 4096;
const MAX_MESSAGE: usize = 16384;
const HIGH_WATER: usize = 8192;
/// The largest control frame.
const CONTROL: usize = 125 + MAX_HEADER_LEN;
/// A close frame and one control frame (ping/pong) queued past the mark.
const CONTROL_SLACK: usize = 2 * CONTROL;
const MAX_SEND: usize = 20_000;

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

impl Side {
    fn i(self) -> usize {
        self as usize
    }
    fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
}

/// Bytes with a little-endian u16 length in front (capped by what is
/// left), so that seeds are easy to write by hand (`gen_corpus.py`).
struct Bytes(Vec<u8>);

impl core::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "b\"{}\"", self.0.escape_ascii())
    }
}

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let len = usize::from(u16::arbitrary(u)?).min(u.len());
        Ok(Self(u.bytes(len)?.to_vec()))
    }
}

#[derive(Arbitrary, Debug)]
enum Op {
    /// Arbitrary bytes from nowhere into `to`.
    Raw {
        to: Side,
        data: Bytes,
    },
    /// Move up to `max` queued bytes from the other side to `to`, in
    /// `pieces` receive calls, through `receive_buffer` if `direct`.
    Deliver {
        to: Side,
        max: u16,
        pieces: u8,
        direct: bool,
    },
    /// Move everything queued, both ways.
    Flush,
    Text {
        from: Side,
        text: Bytes,
        repeat: u8,
    },
    Binary {
        from: Side,
        len: u16,
        byte: u8,
    },
    Chunk {
        from: Side,
        text: bool,
        data: Bytes,
        fin: bool,
    },
    Ping {
        from: Side,
        payload: Bytes,
    },
    Pong {
        from: Side,
        payload: Bytes,
    },
    /// Codes with the high bit set are used as they are (without it),
    /// others pick a common code.
    Close {
        from: Side,
        code: u16,
        reason: Bytes,
    },
    /// Advance the clock and run both sides' timers.
    Advance {
        ms: u16,
    },
    /// Jump the clock to `side`'s next deadline and run both sides' timers.
    Deadline {
        side: Side,
    },
    Eof {
        to: Side,
    },
    TransportError {
        side: Side,
    },
    /// Peek at the next event without draining.
    Peek {
        side: Side,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    streaming: bool,
    retain: bool,
    max_send_frame: u16,
    max_fragments: u8,
    ping_interval_ms: Option<u16>,
    idle_timeout_ms: Option<u16>,
    close_timeout_ms: u16,
    /// permessage-deflate settings of the client and of the server; the two
    /// then open with a real handshake instead of `frames_only`.
    deflate: Option<(DeflateOpts, DeflateOpts)>,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
struct DeflateOpts {
    level: u8,
    threshold: u8,
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<u8>,
    fallback_offer: bool,
}

impl DeflateOpts {
    fn config(&self) -> DeflateConfig {
        let mut c = DeflateConfig::default();
        c.level = self.level % 11;
        c.threshold = usize::from(self.threshold);
        c.server_no_context_takeover = self.server_no_context_takeover;
        c.client_no_context_takeover = self.client_no_context_takeover;
        c.server_max_window_bits = self.server_max_window_bits.map(|b| 8 + b % 8);
        c.client_max_window_bits = self.client_max_window_bits.map(|b| 8 + b % 8);
        c.fallback_offer = self.fallback_offer;
        c
    }
}

#[derive(Debug)]
struct Peer {
    conn: Connection,
    role: Role,
    /// Everything this side transmitted, checked frame by frame.
    wire: WireChecker,
    /// Messages this side queued, not yet seen by the other side.
    sent: VecDeque<(MessageKind, Vec<u8>)>,
    /// A streamed message this side is sending.
    sending: Option<(MessageKind, Vec<u8>)>,
    /// A streamed message this side is receiving (streaming mode).
    receiving: Option<(MessageKind, Vec<u8>)>,
    /// Only bytes from the other side ever arrived here.
    pristine: bool,
    closed: bool,
    eof: bool,
    dead: bool,
    peeked: Option<EventKind>,
    largest_send: usize,
    /// The lowest `buffered_amount` during the current operation.
    floor: usize,
    /// The largest send (framed) of the current operation.
    op_send: usize,
}

struct World {
    peers: [Peer; 2],
    now: Duration,
    max_send_frame: usize,
    streaming: bool,
    deflate: bool,
}

fn kind_of(event: &Event<'_>) -> EventKind {
    event.kind()
}

impl World {
    /// The most bytes a send of `len` bytes may queue: its frames, and with
    /// permessage-deflate what compressing may add to incompressible data
    /// (stored blocks, a flush per window-sized piece).
    fn framed(&self, len: usize) -> usize {
        let len = if self.deflate { len + len / 8 + 256 } else { len };
        len + len.div_ceil(self.max_send_frame).max(1) * MAX_HEADER_LEN
    }

    /// Drains `side`'s events, checking each.
    fn drain(&mut self, side: Side) {
        let streaming = self.streaming;
        // Inflated output is handed out in pieces of up to 64 KiB.
        let max_chunk = if self.deflate { 64 * 1024 } else { MAX_FRAME };
        let [client, server] = &mut self.peers;
        let (me, other) = match side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        let mut after_close = false;
        loop {
            let peeked = me.peeked.take();
            let Some(event) = me.conn.poll_event() else {
                assert_eq!(peeked, None, "{side:?}: peek_event saw an event that poll_event did not return");
                assert!(!after_close, "{side:?}: Close not followed by Closed");
                break;
            };
            let kind = kind_of(&event);
            assert!(!me.closed, "{side:?}: event after Closed: {event:?}");
            if let Some(p) = peeked {
                assert_eq!(p, kind, "{side:?}: peek_event said {p:?}, poll_event returned {event:?}");
            }
            assert!(!after_close || kind == EventKind::Closed, "{side:?}: {kind:?} after Close");
            match event {
                Event::Request(_) | Event::Connected(_) => {
                    panic!("{side:?}: frames-only connection produced {event:?}")
                }
                Event::Message(message) => {
                    assert!(!streaming, "{side:?}: Message in streaming mode");
                    let bytes = message.as_bytes();
                    assert!(bytes.len() <= MAX_MESSAGE, "{side:?}: message of {} bytes", bytes.len());
                    if me.pristine {
                        let (k, expected) = other.sent.pop_front().expect("a message nobody sent");
                        assert_eq!(k, message.kind(), "{side:?}: message kind");
                        assert!(expected == bytes, "{side:?}: message content differs from what was sent");
                    }
                }
                Event::Chunk(chunk) => {
                    assert!(streaming, "{side:?}: Chunk in whole-message mode");
                    assert!(chunk.data.len() <= max_chunk, "{side:?}: chunk of {} bytes", chunk.data.len());
                    let (k, buf) = me.receiving.get_or_insert_with(|| (chunk.kind, Vec::new()));
                    assert_eq!(*k, chunk.kind, "{side:?}: chunk kind changed inside a message");
                    buf.extend_from_slice(chunk.data);
                    if chunk.fin {
                        let (k, whole) = me.receiving.take().unwrap();
                        if k == MessageKind::Text {
                            assert!(core::str::from_utf8(&whole).is_ok(), "{side:?}: streamed text is not UTF-8");
                        }
                        if me.pristine {
                            let (ek, expected) = other.sent.pop_front().expect("a message nobody sent");
                            assert_eq!(ek, k, "{side:?}: message kind");
                            assert!(expected == whole, "{side:?}: streamed message differs from what was sent");
                        }
                    }
                }
                Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125, "{side:?}: {kind:?} of {} bytes", p.len()),
                Event::Close(frame) => {
                    assert!(frame.reason.len() <= 123);
                    assert!(
                        frame.code.is_sendable() || (frame.code == CloseCode::NO_STATUS && frame.reason.is_empty())
                    );
                    after_close = true;
                }
                Event::Closed(closed) => {
                    assert_eq!(Some(&closed), me.conn.closed(), "{side:?}: Closed differs from closed()");
                    me.closed = true;
                    after_close = false;
                }
                _ => unreachable!(),
            }
        }
        if me.closed {
            assert_eq!(me.conn.state(), State::Closed);
            assert!(me.conn.poll_event().is_none());
        }
        if me.conn.is_finished() {
            assert!(me.closed && me.conn.state() == State::Closed, "{side:?}: finished before Closed was reported");
        }
    }

    /// Takes up to `max` bytes `from` queued, checks them, returns them.
    fn take(&mut self, from: Side, max: usize) -> Vec<u8> {
        let me = &mut self.peers[from.i()];
        let out = me.conn.poll_transmit();
        let n = out.len().min(max);
        let all = n == out.len();
        let bytes = out[..n].to_vec();
        me.conn.advance_transmit(n);
        me.floor = me.floor.min(me.conn.buffered_amount());
        if all {
            assert_eq!(me.conn.buffered_amount(), 0, "{from:?}: bytes left after taking all");
        }
        assert!(!me.dead || bytes.is_empty(), "{from:?}: transmitted after a transport error");
        me.wire.push(&bytes);
        bytes
    }

    fn feed(&mut self, to: Side, data: &[u8], pieces: usize, direct: bool) {
        let now = self.now;
        let me = &mut self.peers[to.i()];
        if me.eof || me.dead {
            return;
        }
        let size = data.len().div_ceil(pieces.max(1)).max(1);
        for piece in data.chunks(size) {
            if direct {
                let buf = me.conn.receive_buffer(piece.len());
                assert!(buf.len() >= piece.len());
                buf[..piece.len()].copy_from_slice(piece);
                me.conn.commit_received(now, piece.len());
            } else {
                me.conn.receive(now, piece);
            }
        }
    }

    fn timers(&mut self) {
        for p in &mut self.peers {
            p.conn.handle_timeout(self.now);
        }
    }

    fn sent(&mut self, from: Side, len: usize) {
        let framed = self.framed(len);
        let me = &mut self.peers[from.i()];
        me.largest_send = me.largest_send.max(framed);
        me.op_send = me.op_send.max(framed);
    }

    fn control(&mut self, from: Side, payload: &[u8], ping: bool) {
        let me = &mut self.peers[from.i()];
        let ok = me.conn.is_writable() && payload.len() <= 125;
        let r = if ping { me.conn.send_ping(payload) } else { me.conn.send_pong(payload) };
        assert_eq!(r.is_ok(), ok, "{from:?}: send ping/pong of {} bytes: {r:?}", payload.len());
        if payload.len() > 125 {
            assert_eq!(r, Err(Error::Usage(UsageError::ControlPayloadTooLong)));
        }
    }

    fn apply(&mut self, op: Op) {
        for p in &mut self.peers {
            p.floor = p.conn.buffered_amount();
            p.op_send = 0;
        }
        let mut drain = true;
        match op {
            Op::Raw { to, data: Bytes(data) } => {
                let me = &mut self.peers[to.i()];
                if !me.eof && !me.dead && !data.is_empty() {
                    me.pristine = false;
                }
                self.feed(to, &data, 1, false);
            }
            Op::Deliver { to, max, pieces, direct } => {
                let bytes = self.take(to.other(), usize::from(max));
                self.feed(to, &bytes, usize::from(pieces % 4) + 1, direct);
            }
            Op::Flush => {
                for to in [Side::Server, Side::Client] {
                    let bytes = self.take(to.other(), usize::MAX);
                    self.feed(to, &bytes, 1, false);
                }
            }
            Op::Text { from, text, repeat } => {
                let text = String::from_utf8_lossy(&text.0).into_owned();
                let reps = (usize::from(repeat) + 1).min(MAX_SEND / text.len().max(1)).max(1);
                let text = text.repeat(reps);
                let me = &mut self.peers[from.i()];
                let ok = me.conn.is_writable() && me.sending.is_none();
                let r = me.conn.send_text(&text);
                assert_eq!(r.is_ok(), ok, "{from:?}: send_text: {r:?}");
                if ok {
                    me.sent.push_back((MessageKind::Text, text.clone().into_bytes()));
                    self.sent(from, text.len());
                }
            }
            Op::Binary { from, len, byte } => {
                let data = vec![byte; usize::from(len) % (MAX_SEND + 1)];
                let me = &mut self.peers[from.i()];
                let ok = me.conn.is_writable() && me.sending.is_none();
                let r = me.conn.send_binary(&data);
                assert_eq!(r.is_ok(), ok, "{from:?}: send_binary: {r:?}");
                if ok {
                    me.sent.push_back((MessageKind::Binary, data.clone()));
                    self.sent(from, data.len());
                }
            }
            Op::Chunk { from, text, data: Bytes(data), fin } => {
                let kind = if text { MessageKind::Text } else { MessageKind::Binary };
                let me = &mut self.peers[from.i()];
                let mut so_far = match &me.sending {
                    Some((_, b)) => b.clone(),
                    None => Vec::new(),
                };
                so_far.extend_from_slice(&data);
                let utf8_ok = kind == MessageKind::Binary
                    || match core::str::from_utf8(&so_far) {
                        Ok(_) => true,
                        Err(e) => e.error_len().is_none() && !fin,
                    };
                let same_kind = me.sending.as_ref().is_none_or(|(k, _)| *k == kind);
                let ok = me.conn.is_writable() && same_kind && utf8_ok;
                let r = me.conn.send_chunk(kind, &data, fin);
                assert_eq!(r.is_ok(), ok, "{from:?}: send_chunk({kind:?}, {} bytes, fin {fin}): {r:?}", data.len());
                if ok {
                    if fin {
                        me.sending = None;
                        me.sent.push_back((kind, so_far));
                    } else {
                        me.sending = Some((kind, so_far));
                    }
                    self.sent(from, data.len());
                }
            }
            Op::Ping { from, payload } => self.control(from, &payload.0, true),
            Op::Pong { from, payload } => self.control(from, &payload.0, false),
            Op::Close { from, code, reason } => {
                let reason = String::from_utf8_lossy(&reason.0).into_owned();
                // Mostly meaningful codes, sometimes any.
                const CODES: [u16; 8] = [1000, 1001, 1005, 1006, 1011, 3000, 4999, 999];
                let code = if code & 0x8000 != 0 { code & 0x7FFF } else { CODES[usize::from(code % 8)] };
                let code = CloseCode(code);
                let now = self.now;
                let me = &mut self.peers[from.i()];
                let open = me.conn.state() == State::Open;
                let ok = open
                    && (code.is_sendable() || (code == CloseCode::NO_STATUS && reason.is_empty()))
                    && reason.len() <= 123;
                let r = me.conn.close(now, code, &reason);
                assert_eq!(r.is_ok(), ok, "{from:?}: close({code:?}, {} bytes): {r:?}", reason.len());
                if ok {
                    assert_eq!(me.conn.state(), State::Closing);
                }
            }
            Op::Advance { ms } => {
                self.now += Duration::from_millis(u64::from(ms));
                self.timers();
            }
            Op::Deadline { side } => {
                if let Some(t) = self.peers[side.i()].conn.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.timers();
            }
            Op::Eof { to } => {
                let me = &mut self.peers[to.i()];
                me.eof = true;
                me.conn.handle_eof();
            }
            Op::TransportError { side } => {
                let me = &mut self.peers[side.i()];
                me.dead = true;
                me.conn.handle_transport_error();
                assert_eq!(me.conn.buffered_amount(), 0);
                assert!(!me.conn.wants_write());
            }
            Op::Peek { side } => {
                let me = &mut self.peers[side.i()];
                let kind = me.conn.peek_event();
                if me.peeked.is_some() {
                    assert_eq!(kind, me.peeked, "{side:?}: a second peek differs");
                }
                me.peeked = kind;
                drain = false;
            }
        }
        if drain {
            self.drain(Side::Client);
            self.drain(Side::Server);
        }
        self.check();
    }

    fn check(&mut self) {
        for (i, p) in self.peers.iter_mut().enumerate() {
            let side = if i == 0 { Side::Client } else { Side::Server };
            let conn = &mut p.conn;
            let buffered = conn.buffered_amount();
            let bound = HIGH_WATER + p.largest_send + CONTROL_SLACK;
            assert!(buffered <= bound, "{side:?}: buffered_amount {buffered} > {bound}");
            // Per operation: at or above the mark only a close frame (and the
            // one held-back pong it releases) may be added; below it, one
            // send or control frames up to the mark, then a held-back pong
            // and a close frame.
            let local = if p.floor >= HIGH_WATER {
                p.floor + 2 * CONTROL
            } else {
                HIGH_WATER - 1 + p.op_send.max(CONTROL) + 2 * CONTROL
            };
            assert!(
                buffered <= local,
                "{side:?}: buffered_amount {buffered} after an operation that started at {} (largest send {})",
                p.floor,
                p.op_send
            );
            assert_eq!(
                conn.is_writable(),
                conn.state() == State::Open && buffered < HIGH_WATER,
                "{side:?}: is_writable"
            );
            assert_eq!(conn.role(), p.role);
            if p.dead {
                assert_eq!(buffered, 0, "{side:?}: buffered after a transport error");
                assert!(conn.poll_transmit().is_empty());
            }
            if buffered > 0 {
                assert!(conn.wants_write());
            }
        }
    }
}

/// A client and a server that completed a real opening handshake, each
/// with its own permessage-deflate settings; both must agree on the result.
fn handshake(client: Config, server: Config) -> (Connection, Connection) {
    let now = Duration::ZERO;
    let mut c = Connection::client(ClientHandshake::new("ws://a/").unwrap(), client, now).unwrap();
    let mut s = Connection::server(server, now).unwrap();
    let mut wire = Vec::new();
    c.transmit_into(&mut wire);
    s.receive(now, &wire);
    match s.poll_event() {
        Some(Event::Request(_)) => {}
        other => panic!("server: {other:?} instead of Request"),
    }
    s.accept(&Accept::new()).unwrap();
    assert!(s.poll_event().is_none());
    wire.clear();
    s.transmit_into(&mut wire);
    c.receive(now, &wire);
    match c.poll_event() {
        Some(Event::Connected(_)) => {}
        other => panic!("client: {other:?} instead of Connected"),
    }
    assert!(c.poll_event().is_none());
    assert!(s.deflate().is_some(), "the server declined a permessage-deflate offer");
    assert_eq!(c.deflate(), s.deflate(), "client and server disagree on permessage-deflate parameters");
    (c, s)
}

fn peer(conn: Connection, max_send_frame: usize) -> Peer {
    let role = conn.role();
    let mut wire = WireChecker::new(role, max_send_frame);
    wire.deflate = conn.deflate().is_some();
    Peer {
        conn,
        role,
        wire,
        sent: VecDeque::new(),
        sending: None,
        receiving: None,
        pristine: true,
        closed: false,
        eof: false,
        dead: false,
        peeked: None,
        largest_send: 0,
        floor: 0,
        op_send: 0,
    }
}

fuzz_target!(|input: Input| {
    let mut config = Config::default();
    config.entropy = Some(fixed_entropy);
    config.max_frame_size = MAX_FRAME;
    config.max_message_size = MAX_MESSAGE;
    config.write_buffer_high_water = HIGH_WATER;
    config.max_send_frame_size = 1 + usize::from(input.max_send_frame) % 6000;
    config.max_fragments = 1 + usize::from(input.max_fragments);
    config.streaming = input.streaming;
    config.retained_buffer_capacity = if input.retain { 4096 } else { 0 };
    config.ping_interval = input.ping_interval_ms.map(|ms| Duration::from_millis(u64::from(ms) + 1));
    config.idle_timeout = input.idle_timeout_ms.map(|ms| Duration::from_millis(u64::from(ms) + 1));
    config.close_timeout = Duration::from_millis(u64::from(input.close_timeout_ms));
    let max_send_frame = config.max_send_frame_size;

    let (client, server) = match &input.deflate {
        None => (
            Connection::frames_only(Role::Client, config.clone(), Duration::ZERO).unwrap(),
            Connection::frames_only(Role::Server, config, Duration::ZERO).unwrap(),
        ),
        Some((c, s)) => {
            let mut client = config.clone();
            client.deflate = Some(c.config());
            let mut server = config;
            server.deflate = Some(s.config());
            handshake(client, server)
        }
    };
    let mut world = World {
        peers: [peer(client, max_send_frame), peer(server, max_send_frame)],
        now: Duration::ZERO,
        max_send_frame,
        streaming: input.streaming,
        deflate: input.deflate.is_some(),
    };
    for op in input.ops.into_iter().take(256) {
        world.apply(op);
    }
    // Whatever is still queued must be valid frames too.
    for side in [Side::Client, Side::Server] {
        world.take(side, usize::MAX);
        let p = &world.peers[side.i()];
        assert!(p.dead || p.wire.pending() == 0, "{side:?}: transmitted a partial frame");
    }
});
