//! A client and a server `Connection` (small limits; frames only, or after a
//! real handshake that negotiates permessage-deflate) driven by an arbitrary
//! sequence of the calls an adapter makes, in any order: bytes transmitted
//! in pieces (`poll_transmit` or vectored `poll_transmit_slices`, partial
//! writes), offered in pieces (`receive` or `receive_buffer` +
//! `commit_received`, refused input kept and offered again), events polled
//! one at a time or drained (borrowed or owned, owned payloads kept while
//! the connection goes on), `peek_event` followed by anything, timers at any
//! point, every send call (`send_owned` and `send_prepared` too), close,
//! `set_streaming`, EOF, transport errors, and `split` into halves driven
//! apart, then `reunite`. Raw bytes from nowhere can be injected.
//!
//! Bytes one side transmits travel through a pipe to the other: what
//! `receive` refuses stays in the pipe and is offered again later, as an
//! adapter keeps what it read. `wscore_fuzz::Reference` decodes what each
//! side accepted, independently of the connection, into the events it owes.
//!
//! Invariants, checked after every operation (and every event):
//! * events: nothing after `Event::Closed`, which agrees with `closed()`;
//!   after `Close` only `Closed`; `Closed { clean: true }` only once the
//!   peer's close arrived and ours was handed out whole; `Request` and
//!   `Connected` never; the state only moves forward (Open, Closing,
//!   Closed); with permessage-deflate both ends agree on the parameters;
//! * every event is the next one the accepted bytes call for
//!   (`Reference`): same kind and payload (whole messages, joined chunks,
//!   ping, pong and close payloads; compressed messages against what the
//!   peer sent); while a side received only the peer's bytes, its messages
//!   are exactly the peer's sends, in order; so messages arrive whole and in
//!   order, and nothing offered is lost or repeated;
//! * pending events survive timers: after `peek_event` returns a kind, any
//!   sequence of timers, transmissions and more input leaves `poll_event` /
//!   `poll_owned` returning that kind, with the payload the bytes call for
//!   (defect (a): a peeked message whose reassembly buffer a timer freed);
//! * a message is delivered whole or as chunks as `set_streaming` said when
//!   its first frame was read; a message ≤ `max_message_size` however much
//!   it inflated; a chunk ≤ `max_frame_size` (64 KiB inflated);
//! * owned payloads kept by the caller never change while the connection
//!   goes on (more input, sends that share them, timers);
//! * unprocessed input is bounded: `receive` takes at most what it is
//!   offered; the bytes a connection holds stay ≤ `max_unprocessed_input`
//!   plus the frame being read, however much is offered while an event waits
//!   (peeked or not polled); the bytes taken since the last poll or peek
//!   that could read frames stay ≤ `max_unprocessed_input` (whole or split,
//!   unless it only discards input); an offer that takes nothing means
//!   `wants_read()` is false and `receive_buffer` is empty; a drained side
//!   that is not done reading, at EOF or dead wants to read;
//!   `stats().bytes_received` counts exactly the bytes accepted, and an
//!   adapter that commits more than `receive_buffer` offered is held to the
//!   offer;
//! * every byte a side transmits is a valid frame stream (`WireChecker`):
//!   server frames unmasked, client frames masked, RSV1 only on the first
//!   frame of a data message with deflate, control frames final and at most
//!   125 bytes, valid close payloads, correct fragmentation, data frames at
//!   most `max_send_frame_size`, text UTF-8, nothing after our close frame
//!   (so no data frame after it); whatever the mix of partial and vectored
//!   writes, and of halves;
//! * owed control frames are owed, not queued: input, timers and polling
//!   never raise `buffered_amount` (only sends, and the owed frames a
//!   transmission pulls in: at most `max_queued_pongs` pongs, a ping and a
//!   close); `buffered_amount` ≤ high water + the largest send + those
//!   frames; `is_writable` iff open and below the mark; a transmission that
//!   runs dry leaves `buffered_amount` 0 and `wants_write` false;
//! * pongs answer pings: each pong a side transmits carries the payload of a
//!   ping it read while open (or of a pong the caller sent), no more pongs
//!   than that; while the latest ping read is unanswered and the connection
//!   has not failed, `wants_write` stays true, so the last owed pong answers
//!   the latest ping;
//! * errors stay: once `closed().error` is set it never changes, and every
//!   action (each send, `send_owned`, `send_prepared`, `close`) returns
//!   exactly it; otherwise each send succeeds exactly when the connection is
//!   open, below the mark and the call is valid;
//! * `wants_shutdown` only once `Closed` was reported and nothing is left to
//!   write, never when finished; a clean client keeps reading until EOF (or
//!   its close timeout); a side with a transport error transmits nothing.
//!
//! Changed with the reshaped connection: automatic pongs are neither held
//! back under backpressure nor counted in `buffered_amount` while owed, so
//! the old bounds that included held-back pongs gave way to "owed, not
//! queued" and "pongs answer pings"; `Close` is no longer followed at once
//! by `Closed` (that waits for our close to be handed out); a failed
//! connection lingers and keeps taking input; sends after a failure return
//! the failure, not `Closing`; `receive` may take only part of its input.
//!
//! `regressions/connection_ops/` keeps an input for each of five deviations an
//! earlier run of this target found, all since fixed in the library: an
//! oversized ping or pong after a failure returned `ControlPayloadTooLong`
//! instead of the failure; `send_prepared` sent one frame past
//! `max_send_frame_size`; a split send half kept transmitting after its
//! receive half saw the transport fail; `commit_received` past the offer
//! took stale bytes; and a peeked `Closed` counted as returned.
#![no_main]

use core::time::Duration;
use std::collections::VecDeque;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use wscore::deflate::DeflateConfig;
use wscore::frame::{CloseFrame, MAX_HEADER_LEN, OpCode};
use wscore::{
    Accept, ClientHandshake, CloseCode, Closed, Config, Connection, Error, Event, EventKind, Message, MessageKind,
    OwnedEvent, OwnedMessage, PreparedMessage, RecvHalf, Role, SendHalf, State, UsageError,
};
use wscore_fuzz::{Expected, Reference, WireChecker, buffered_in, fixed_entropy};

const MAX_FRAME: usize = 4096;
const MAX_MESSAGE: usize = 16384;
const HIGH_WATER: usize = 8192;
/// The largest control frame.
const CONTROL: usize = 125 + MAX_HEADER_LEN;
const MAX_SEND: usize = 20_000;
/// The longest frame payload a connection reads: compressed frames get a
/// little slack over `max_frame_size` on the wire.
const WIRE_FRAME: usize = MAX_FRAME + MAX_FRAME / 64 + 1024;
/// Owned payloads an adapter keeps at once.
const KEPT: usize = 16;

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

/// Which half of a split connection runs a call that either may run (a
/// whole connection runs it itself).
#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
enum Half {
    Recv,
    Send,
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

// `OPS` in `gen_corpus.py` lists the variants in this order, to encode seeds.
#[derive(Arbitrary, Debug)]
enum Op {
    /// Arbitrary bytes from nowhere, appended to what travels to `to`, then
    /// offered in one receive call.
    Raw {
        to: Side,
        data: Bytes,
    },
    /// Transmit up to `max` bytes from the other side, then offer all that
    /// travels to `to` in `pieces` calls, through `receive_buffer` if
    /// `direct`. No events are polled.
    Deliver {
        to: Side,
        max: u16,
        pieces: u8,
        direct: bool,
    },
    /// Everything both ways until nothing moves, draining events (owned
    /// payloads if `owned`) as an adapter's loop does.
    Flush {
        owned: bool,
    },
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
    /// Advance the clock and run the timers of every side, or only of one
    /// side (one half of it, when split).
    Advance {
        ms: u16,
        only: Option<(Side, Half)>,
    },
    /// Jump the clock to `side`'s next deadline and run every side's timers.
    Deadline {
        side: Side,
    },
    /// `to` reads EOF once what travels to it has been taken.
    Eof {
        to: Side,
    },
    TransportError {
        side: Side,
        half: Half,
    },
    /// Peek at the next event without taking it.
    Peek {
        side: Side,
    },
    /// A partial write: up to `max` bytes of `from`'s output into the pipe,
    /// through `poll_transmit_slices` with `1 + n % 8` slices if
    /// `vectored` is `Some(n)`.
    Transmit {
        from: Side,
        max: u16,
        vectored: Option<u8>,
    },
    /// Offer up to `max` bytes of what travels to `to` in `pieces` calls; a
    /// direct read commits `overcommit` bytes more than it was offered,
    /// as a buggy adapter might.
    Offer {
        to: Side,
        max: u16,
        pieces: u8,
        direct: bool,
        overcommit: u8,
    },
    /// Poll up to `1 + count % 4` events, owned if `owned`, keeping owned
    /// payloads if `keep`.
    Poll {
        side: Side,
        count: u8,
        owned: bool,
        keep: bool,
    },
    /// Poll until no event is left.
    Drain {
        side: Side,
        owned: bool,
    },
    SetStreaming {
        side: Side,
        on: bool,
    },
    /// `send_owned` of a fresh payload, or of one received and kept (`echo`).
    SendOwned {
        from: Side,
        text: bool,
        len: u16,
        byte: u8,
        echo: Option<u8>,
    },
    /// `send_prepared`, compressed for a window of `8 + bits % 8` if `deflate`.
    SendPrepared {
        from: Side,
        text: bool,
        len: u16,
        byte: u8,
        deflate: Option<u8>,
    },
    /// Split a whole connection into halves, or reunite them; with
    /// `cross`, first try to reunite with the other side's half, which
    /// must fail and hand both halves back.
    Split {
        side: Side,
        cross: bool,
    },
    /// The caller drops the owned payloads it kept.
    DropKept {
        side: Side,
    },
    /// One turn of an async adapter's loop, in the order that hid defect
    /// (a): peek, the timer fires first (`ms` later, this side's timers
    /// only), then maybe a transmission and a read, then the event is
    /// polled (owned if `owned`). The same calls exist as separate
    /// operations; this one makes the sequence a single mutation away.
    AdapterTurn {
        side: Side,
        ms: u16,
        transmit: bool,
        read: bool,
        owned: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Input {
    streaming: bool,
    /// `retained_buffer_capacity`: 0, 64, 4096 or 16 KiB.
    retain: u8,
    /// `buffer_release_delay` in ms, `None` to free drained buffers at once.
    release_delay_ms: Option<u16>,
    max_send_frame: u16,
    max_fragments: u8,
    /// `max_unprocessed_input` is 1 KiB + this modulo 8 KiB.
    max_unprocessed: u16,
    /// `max_queued_pongs` is 1 + this modulo 4.
    max_pongs: u8,
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

/// One side's connection: whole, or split into the halves two tasks drive.
// Two per input, moved only to split or reunite: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Ends {
    Whole(Connection),
    Split(RecvHalf, SendHalf),
    /// Only while being split or reunited.
    Moving,
}

impl Ends {
    fn whole(&self) -> Option<&Connection> {
        match self {
            Ends::Whole(c) => Some(c),
            _ => None,
        }
    }

    fn receive(&mut self, now: Duration, data: &[u8]) -> usize {
        match self {
            Ends::Whole(c) => c.receive(now, data),
            Ends::Split(rx, _) => rx.receive(now, data),
            Ends::Moving => unreachable!(),
        }
    }

    fn receive_buffer(&mut self, want: usize) -> &mut [u8] {
        match self {
            Ends::Whole(c) => c.receive_buffer(want),
            Ends::Split(rx, _) => rx.receive_buffer(want),
            Ends::Moving => unreachable!(),
        }
    }

    fn commit_received(&mut self, now: Duration, n: usize) {
        match self {
            Ends::Whole(c) => c.commit_received(now, n),
            Ends::Split(rx, _) => rx.commit_received(now, n),
            Ends::Moving => unreachable!(),
        }
    }

    fn wants_read(&self) -> bool {
        match self {
            Ends::Whole(c) => c.wants_read(),
            Ends::Split(rx, _) => rx.wants_read(),
            Ends::Moving => unreachable!(),
        }
    }

    fn poll_event(&mut self) -> Option<Event<'_>> {
        match self {
            Ends::Whole(c) => c.poll_event(),
            Ends::Split(rx, _) => rx.poll_event(),
            Ends::Moving => unreachable!(),
        }
    }

    fn poll_owned(&mut self) -> Option<OwnedEvent<'_>> {
        match self {
            Ends::Whole(c) => c.poll_owned(),
            Ends::Split(rx, _) => rx.poll_owned(),
            Ends::Moving => unreachable!(),
        }
    }

    fn peek_event(&mut self) -> Option<EventKind> {
        match self {
            Ends::Whole(c) => c.peek_event(),
            Ends::Split(rx, _) => rx.peek_event(),
            Ends::Moving => unreachable!(),
        }
    }

    fn set_streaming(&mut self, on: bool) {
        match self {
            Ends::Whole(c) => c.set_streaming(on),
            Ends::Split(rx, _) => rx.set_streaming(on),
            Ends::Moving => unreachable!(),
        }
    }

    fn send(&mut self, message: Message<'_>) -> Result<(), Error> {
        match self {
            Ends::Whole(c) => c.send(message),
            Ends::Split(_, tx) => tx.send(message),
            Ends::Moving => unreachable!(),
        }
    }

    fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<(), Error> {
        match self {
            Ends::Whole(c) => c.send_chunk(kind, data, fin),
            Ends::Split(_, tx) => tx.send_chunk(kind, data, fin),
            Ends::Moving => unreachable!(),
        }
    }

    fn send_control(&mut self, ping: bool, payload: &[u8]) -> Result<(), Error> {
        match (self, ping) {
            (Ends::Whole(c), true) => c.send_ping(payload),
            (Ends::Whole(c), false) => c.send_pong(payload),
            (Ends::Split(_, tx), true) => tx.send_ping(payload),
            (Ends::Split(_, tx), false) => tx.send_pong(payload),
            (Ends::Moving, _) => unreachable!(),
        }
    }

    fn close(&mut self, now: Duration, code: CloseCode, reason: &str) -> Result<(), Error> {
        match self {
            Ends::Whole(c) => c.close(now, code, reason),
            Ends::Split(_, tx) => tx.close(now, code, reason),
            Ends::Moving => unreachable!(),
        }
    }

    fn send_owned(&mut self, message: OwnedMessage) -> Result<(), Error> {
        match self {
            Ends::Whole(c) => c.send_owned(message),
            Ends::Split(_, tx) => tx.send_owned(message),
            Ends::Moving => unreachable!(),
        }
    }

    fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        match self {
            Ends::Whole(c) => c.send_prepared(prepared),
            Ends::Split(_, tx) => tx.send_prepared(prepared),
            Ends::Moving => unreachable!(),
        }
    }

    fn poll_transmit(&mut self) -> &[u8] {
        match self {
            Ends::Whole(c) => c.poll_transmit(),
            Ends::Split(_, tx) => tx.poll_transmit(),
            Ends::Moving => unreachable!(),
        }
    }

    fn poll_transmit_slices<'a>(&'a mut self, slices: &mut [&'a [u8]]) -> usize {
        match self {
            Ends::Whole(c) => c.poll_transmit_slices(slices),
            Ends::Split(_, tx) => tx.poll_transmit_slices(slices),
            Ends::Moving => unreachable!(),
        }
    }

    fn advance_transmit(&mut self, n: usize) {
        match self {
            Ends::Whole(c) => c.advance_transmit(n),
            Ends::Split(_, tx) => tx.advance_transmit(n),
            Ends::Moving => unreachable!(),
        }
    }

    /// Runs the timers; a split connection runs them on `half`, or on both.
    fn handle_timeout(&mut self, now: Duration, half: Option<Half>) {
        match (self, half) {
            (Ends::Whole(c), _) => c.handle_timeout(now),
            (Ends::Split(rx, _), Some(Half::Recv)) => rx.handle_timeout(now),
            (Ends::Split(_, tx), Some(Half::Send)) => tx.handle_timeout(now),
            (Ends::Split(rx, tx), None) => {
                rx.handle_timeout(now);
                tx.handle_timeout(now);
            }
            (Ends::Moving, _) => unreachable!(),
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        match self {
            Ends::Whole(c) => c.poll_timeout(),
            Ends::Split(rx, tx) => match (rx.poll_timeout(), tx.poll_timeout()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            Ends::Moving => unreachable!(),
        }
    }

    fn handle_eof(&mut self) {
        match self {
            Ends::Whole(c) => c.handle_eof(),
            Ends::Split(rx, _) => rx.handle_eof(),
            Ends::Moving => unreachable!(),
        }
    }

    fn handle_transport_error(&mut self, half: Half) {
        match (self, half) {
            (Ends::Whole(c), _) => c.handle_transport_error(),
            (Ends::Split(rx, _), Half::Recv) => rx.handle_transport_error(),
            (Ends::Split(_, tx), Half::Send) => tx.handle_transport_error(),
            (Ends::Moving, _) => unreachable!(),
        }
    }

    fn closed(&self) -> Option<Closed> {
        match self {
            Ends::Whole(c) => c.closed().cloned(),
            Ends::Split(rx, tx) => {
                let closed = rx.closed();
                assert_eq!(closed, tx.closed(), "the halves disagree on closed()");
                closed
            }
            Ends::Moving => unreachable!(),
        }
    }

    fn failure(&self) -> Option<Error> {
        self.closed().and_then(|c| c.error)
    }

    fn state(&self) -> State {
        match self {
            Ends::Whole(c) => c.state(),
            Ends::Split(rx, tx) => {
                let state = rx.state();
                assert_eq!(state, tx.state(), "the halves disagree on the state");
                state
            }
            Ends::Moving => unreachable!(),
        }
    }

    fn buffered_amount(&self) -> usize {
        match self {
            Ends::Whole(c) => c.buffered_amount(),
            Ends::Split(_, tx) => tx.buffered_amount(),
            Ends::Moving => unreachable!(),
        }
    }

    fn wants_write(&self) -> bool {
        match self {
            Ends::Whole(c) => c.wants_write(),
            Ends::Split(_, tx) => tx.wants_write(),
            Ends::Moving => unreachable!(),
        }
    }

    fn is_writable(&self) -> bool {
        match self {
            Ends::Whole(c) => c.is_writable(),
            Ends::Split(_, tx) => tx.is_writable(),
            Ends::Moving => unreachable!(),
        }
    }

    fn is_finished(&self) -> bool {
        match self {
            Ends::Whole(c) => c.is_finished(),
            Ends::Split(rx, tx) => rx.is_finished() && tx.is_finished(),
            Ends::Moving => unreachable!(),
        }
    }

    /// Whether the receiving side is done: what `wants_read` consults (a
    /// split receive half may be done while its send half still writes).
    fn recv_finished(&self) -> bool {
        match self {
            Ends::Whole(c) => c.is_finished(),
            Ends::Split(rx, _) => rx.is_finished(),
            Ends::Moving => unreachable!(),
        }
    }

    fn role(&self) -> Role {
        match self {
            Ends::Whole(c) => c.role(),
            Ends::Split(rx, _) => rx.role(),
            Ends::Moving => unreachable!(),
        }
    }
}

/// An event's checkable content, borrowed or owned.
enum Got<'a> {
    Message(MessageKind, &'a [u8]),
    Chunk(MessageKind, &'a [u8], bool),
    Ping(&'a [u8]),
    Pong(&'a [u8]),
    Close(CloseCode, &'a str),
    Closed(Closed),
}

#[derive(Debug)]
struct Peer {
    ends: Ends,
    role: Role,
    /// Everything this side transmitted, checked frame by frame.
    wire: WireChecker,
    /// Bytes on their way to this side: transmitted by the other side (or
    /// raw) and not yet taken by `receive`.
    pipe: Vec<u8>,
    /// What this side accepted, decoded into the events it owes.
    reference: Reference,
    /// Bytes this side accepted.
    accepted: u64,
    /// Bytes accepted since the last poll or peek that could read frames:
    /// the connection has looked at none of them, so they are all
    /// unprocessed and must fit under `max_unprocessed_input`.
    since_read: usize,
    /// Bytes this side handed out for transmission.
    transmitted: u64,
    /// Messages this side queued, not yet seen by the other side.
    sent: VecDeque<(MessageKind, Vec<u8>)>,
    /// A streamed message this side is sending.
    sending: Option<(MessageKind, Vec<u8>)>,
    /// A message this side is receiving as chunks.
    receiving: Option<(MessageKind, Vec<u8>)>,
    /// Only bytes from the other side ever arrived here.
    pristine: bool,
    /// The streaming choice now, and those in force at some poll or peek
    /// that could have read the first frame of the next message.
    streaming: bool,
    modes: [bool; 2],
    /// `Close` was returned.
    got_close: bool,
    closed: bool,
    /// EOF is to be read once the pipe is empty; it was.
    eof_pending: bool,
    eof: bool,
    dead: bool,
    /// The kind `peek_event` reported and `poll_event` has not returned.
    peeked: Option<EventKind>,
    state: State,
    /// The first failure `closed()` reported.
    failure: Option<Error>,
    /// Pings read while open whose pong may still be transmitted, and
    /// pongs the caller sent: every transmitted pong takes one of them.
    owed_pings: Vec<Vec<u8>>,
    user_pongs: Vec<Vec<u8>>,
    /// The latest ping read while open, until a pong with its payload goes out.
    unanswered: Option<Vec<u8>>,
    /// Owed payloads the caller kept, with a copy of their bytes.
    kept: VecDeque<(OwnedMessage, Vec<u8>)>,
    largest_send: usize,
    /// A timer ran while the connection was closed (the close timeout may
    /// have ended the wait for EOF).
    timer_after_closed: bool,
}

struct World {
    peers: [Peer; 2],
    now: Duration,
    max_send_frame: usize,
    max_unprocessed: usize,
    max_pongs: usize,
    deflate: bool,
}

/// Where a state is in a connection's life, for checking it only moves on.
fn rank(state: State) -> u8 {
    match state {
        State::Handshake => 0,
        State::Open => 1,
        State::Closing => 2,
        State::Closed => 3,
    }
}

fn side_of(i: usize) -> Side {
    if i == 0 { Side::Client } else { Side::Server }
}

impl World {
    /// The most bytes a send of `len` bytes may queue: its frames, and with
    /// permessage-deflate what compressing may add to incompressible data
    /// (stored blocks, a flush per window-sized piece).
    fn framed(&self, len: usize) -> usize {
        let len = if self.deflate { len + len / 8 + 256 } else { len };
        len + len.div_ceil(self.max_send_frame).max(1) * MAX_HEADER_LEN
    }

    /// Checks one event of `side` against everything known about it.
    fn event(&mut self, side: Side, got: Got<'_>, kind: EventKind) {
        let max_chunk = if self.deflate { 64 * 1024 } else { MAX_FRAME };
        let [client, server] = &mut self.peers;
        let (me, other) = match side {
            Side::Client => (client, server),
            Side::Server => (server, client),
        };
        assert!(!me.closed, "{side:?}: {kind:?} after Closed");
        if let Some(p) = me.peeked.take() {
            assert_eq!(p, kind, "{side:?}: peek_event said {p:?}, then the event was {kind:?}");
        }
        assert!(!me.got_close || kind == EventKind::Closed, "{side:?}: {kind:?} after Close");
        match got {
            Got::Message(k, bytes) => {
                assert!(!me.modes[1] || me.modes[0], "{side:?}: a whole Message while streaming");
                me.modes = [false; 2];
                assert!(me.receiving.is_none(), "{side:?}: a Message inside a streamed one");
                assert!(bytes.len() <= MAX_MESSAGE, "{side:?}: message of {} bytes", bytes.len());
                whole_message(side, me, other, k, bytes);
            }
            Got::Chunk(k, data, fin) => {
                assert!(data.len() <= max_chunk, "{side:?}: chunk of {} bytes", data.len());
                if me.receiving.is_none() {
                    assert!(me.modes[1], "{side:?}: Chunk of a message begun in whole-message mode");
                }
                let (rk, buf) = me.receiving.get_or_insert_with(|| (k, Vec::new()));
                assert_eq!(*rk, k, "{side:?}: chunk kind changed inside a message");
                buf.extend_from_slice(data);
                if fin {
                    me.modes = [false; 2];
                    let (k, whole) = me.receiving.take().unwrap();
                    if k == MessageKind::Text {
                        assert!(core::str::from_utf8(&whole).is_ok(), "{side:?}: streamed text is not UTF-8");
                    }
                    whole_message(side, me, other, k, &whole);
                }
            }
            Got::Ping(p) => {
                assert!(p.len() <= 125);
                match me.reference.expected.pop_front() {
                    Some(Expected::Ping(e)) => assert_eq!(e, p, "{side:?}: ping payload"),
                    other => panic!("{side:?}: Ping({p:02x?}) where the bytes call for {other:?}"),
                }
            }
            Got::Pong(p) => match me.reference.expected.pop_front() {
                Some(Expected::Pong(e)) => assert_eq!(e, p, "{side:?}: pong payload"),
                other => panic!("{side:?}: Pong({p:02x?}) where the bytes call for {other:?}"),
            },
            Got::Close(code, reason) => {
                assert!(reason.len() <= 123);
                assert!(code.is_sendable() || (code == CloseCode::NO_STATUS && reason.is_empty()));
                match me.reference.expected.pop_front() {
                    Some(Expected::Close(payload)) => {
                        let frame = CloseFrame::parse(&payload).expect("a close the connection took is valid");
                        assert_eq!((frame.code, frame.reason), (code, reason), "{side:?}: close frame");
                    }
                    other => panic!("{side:?}: Close({code}) where the bytes call for {other:?}"),
                }
                me.got_close = true;
            }
            Got::Closed(closed) => {
                assert_eq!(Some(&closed), me.ends.closed().as_ref(), "{side:?}: Closed differs from closed()");
                if closed.clean {
                    assert!(me.got_close, "{side:?}: clean Closed without the peer's close");
                    assert!(me.wire.close_sent, "{side:?}: clean Closed before our close frame was handed out");
                    assert!(closed.error.is_none());
                }
                me.closed = true;
                me.got_close = false;
            }
        }
    }

    /// A ping `side` just read (returned, or found by a peek): owed a pong
    /// if the connection is open.
    fn ping_read(&mut self, side: Side, payload: Vec<u8>) {
        let me = &mut self.peers[side.i()];
        if me.ends.state() == State::Open {
            me.owed_pings.push(payload.clone());
            me.unanswered = Some(payload);
        }
    }

    /// Polls one event (owned if `owned`); returns whether there was one.
    fn poll(&mut self, side: Side, owned: bool, keep: bool) -> bool {
        let me = &mut self.peers[side.i()];
        // Only a poll that reads frames (no peeked event waiting) can read
        // the first frame of a message.
        if me.peeked.is_none() {
            me.modes[usize::from(me.streaming)] = true;
            me.since_read = 0;
        }
        let peeked = me.peeked;
        let ping = if owned {
            let Some(event) = me.ends.poll_owned() else {
                assert_eq!(peeked, None, "{side:?}: peek_event saw an event that poll_owned did not return");
                return false;
            };
            let kind = event.kind();
            let (got, keep_it, ping) = match event {
                OwnedEvent::Message(m) => {
                    let copy = m.as_bytes().to_vec();
                    let kept = keep.then(|| (m.clone(), copy.clone()));
                    (OwnedGot::Message(m.kind(), copy), kept, None)
                }
                OwnedEvent::Chunk(c) => {
                    let copy = c.data.to_vec();
                    let kept = keep.then(|| (OwnedMessage::Binary(c.data.clone()), copy.clone()));
                    (OwnedGot::Chunk(c.kind, copy, c.fin), kept, None)
                }
                OwnedEvent::Ping(p) => {
                    let copy = p.to_vec();
                    let kept = keep.then(|| (OwnedMessage::Binary(p.clone()), copy.clone()));
                    (OwnedGot::Ping(copy.clone()), kept, Some(copy))
                }
                OwnedEvent::Pong(p) => {
                    let copy = p.to_vec();
                    let kept = keep.then(|| (OwnedMessage::Binary(p.clone()), copy.clone()));
                    (OwnedGot::Pong(copy), kept, None)
                }
                OwnedEvent::Close(code, reason) => (OwnedGot::Close(code, reason.as_str().to_owned()), None, None),
                OwnedEvent::Closed(closed) => (OwnedGot::Closed(closed), None, None),
                other => panic!("{side:?}: {other:?} on an open connection"),
            };
            if let Some(k) = keep_it {
                if me.kept.len() == KEPT {
                    me.kept.pop_front();
                }
                me.kept.push_back(k);
            }
            self.event(side, got.as_got(), kind);
            // A peeked ping was read by the peek.
            ping.filter(|_| peeked.is_none())
        } else {
            let Some(event) = me.ends.poll_event() else {
                assert_eq!(peeked, None, "{side:?}: peek_event saw an event that poll_event did not return");
                return false;
            };
            let kind = event.kind();
            // Copied out so the connection can be asked about itself while
            // the event is checked; the copy is what the caller saw.
            let got = match event {
                Event::Message(m) => OwnedGot::Message(m.kind(), m.as_bytes().to_vec()),
                Event::Chunk(c) => OwnedGot::Chunk(c.kind, c.data.to_vec(), c.fin),
                Event::Ping(p) => OwnedGot::Ping(p.to_vec()),
                Event::Pong(p) => OwnedGot::Pong(p.to_vec()),
                Event::Close(f) => OwnedGot::Close(f.code, f.reason.to_owned()),
                Event::Closed(c) => OwnedGot::Closed(c),
                other => panic!("{side:?}: {other:?} on an open connection"),
            };
            let ping = match (&got, peeked) {
                (OwnedGot::Ping(p), None) => Some(p.clone()),
                _ => None,
            };
            self.event(side, got.as_got(), kind);
            ping
        };
        if let Some(p) = ping {
            self.ping_read(side, p);
        }
        true
    }

    /// Polls until no event is left, then checks what a drained side owes.
    fn drain(&mut self, side: Side, owned: bool) {
        while self.poll(side, owned, false) {}
        let me = &mut self.peers[side.i()];
        if me.closed {
            assert_eq!(me.ends.state(), State::Closed);
            assert!(me.ends.poll_event().is_none(), "{side:?}: an event after Closed");
        }
        let finished = me.ends.is_finished();
        if finished {
            assert!(me.closed, "{side:?}: finished before Closed was reported");
        }
        // A drained connection always has room again, or it could stall:
        // all that waits unprocessed is a partial frame header.
        if !me.ends.recv_finished() && !me.eof && !me.eof_pending && !me.dead {
            assert!(me.ends.wants_read(), "{side:?}: drained, not finished, and not wanting to read: {:?}", me.ends);
        }
    }

    fn peek(&mut self, side: Side) {
        let me = &mut self.peers[side.i()];
        let before = me.peeked;
        if before.is_none() {
            me.modes[usize::from(me.streaming)] = true;
            me.since_read = 0;
        }
        let kind = me.ends.peek_event();
        if let Some(p) = before {
            assert_eq!(kind, Some(p), "{side:?}: a second peek differs");
        }
        me.peeked = kind;
        if before.is_none() && kind == Some(EventKind::Ping) {
            // The ping was read now, and its pong may go out before the
            // event is taken: its payload is the one the bytes call for.
            match me.reference.expected.front() {
                Some(Expected::Ping(p)) => {
                    let p = p.clone();
                    self.ping_read(side, p);
                }
                other => panic!("{side:?}: peeked a Ping where the bytes call for {other:?}"),
            }
        }
    }

    /// Hands out up to `max` bytes of `from`'s output (vectored with `1 +
    /// n % 8` slices if `vectored`), checks them and sends them on their
    /// way; returns how many.
    fn transmit(&mut self, from: Side, max: usize, vectored: Option<u8>) -> usize {
        let pongs = self.max_pongs;
        let me = &mut self.peers[from.i()];
        let before = me.ends.buffered_amount();
        let mut taken = Vec::new();
        let mut polls = 0;
        let mut dry = false;
        while taken.len() < max {
            polls += 1;
            let room = max - taken.len();
            let n = match vectored {
                None => {
                    let out = me.ends.poll_transmit();
                    let n = out.len().min(room);
                    taken.extend_from_slice(&out[..n]);
                    n
                }
                Some(k) => {
                    let mut slices: [&[u8]; 8] = [&[]; 8];
                    let count = 1 + usize::from(k % 8);
                    let filled = me.ends.poll_transmit_slices(&mut slices[..count]);
                    assert!(filled <= count);
                    let mut n = 0;
                    for s in &slices[..filled] {
                        assert!(!s.is_empty(), "{from:?}: an empty slice to transmit");
                        let part = s.len().min(room - n);
                        taken.extend_from_slice(&s[..part]);
                        n += part;
                    }
                    n
                }
            };
            if n == 0 {
                dry = true;
                break;
            }
            me.ends.advance_transmit(n);
        }
        let after = me.ends.buffered_amount();
        // Owed frames are pulled in by the transmission (at most a batch
        // per poll), everything else was there before.
        let pulled = polls * (pongs + 2) * CONTROL;
        assert!(
            after + taken.len() <= before + pulled,
            "{from:?}: buffered_amount {before} -> {after} transmitting {} bytes",
            taken.len()
        );
        if dry {
            assert_eq!(after, 0, "{from:?}: bytes left after transmitting all");
            assert!(!me.ends.wants_write(), "{from:?}: wants to write after transmitting all");
        }
        assert!(!me.dead || taken.is_empty(), "{from:?}: transmitted after a transport error");
        me.transmitted += taken.len() as u64;
        if let Some(c) = me.ends.whole() {
            assert_eq!(c.stats().bytes_transmitted, me.transmitted, "{from:?}: bytes_transmitted");
        }
        me.wire.push(&taken);
        for (opcode, payload) in std::mem::take(&mut me.wire.controls) {
            if opcode != OpCode::Pong {
                continue;
            }
            if let Some(i) = me.owed_pings.iter().position(|p| *p == payload) {
                me.owed_pings.swap_remove(i);
            } else if let Some(i) = me.user_pongs.iter().position(|p| *p == payload) {
                me.user_pongs.swap_remove(i);
            } else {
                panic!("{from:?}: transmitted a pong {payload:02x?} that answers no ping read while open");
            }
            if me.unanswered.as_ref() == Some(&payload) {
                me.unanswered = None;
            }
        }
        let dead = me.dead;
        let to = &mut self.peers[from.other().i()];
        if !(dead || to.eof || to.eof_pending || to.dead) {
            to.pipe.extend_from_slice(&taken);
        }
        taken.len()
    }

    /// Offers up to `max` bytes of what travels to `to`, in `pieces` calls;
    /// returns how many were taken.
    fn offer(&mut self, to: Side, max: usize, pieces: usize, direct: bool, overcommit: usize) -> usize {
        let now = self.now;
        let limit = self.max_unprocessed;
        let bound = limit + MAX_HEADER_LEN + WIRE_FRAME;
        let me = &mut self.peers[to.i()];
        if me.eof || me.dead {
            me.pipe.clear();
            return 0;
        }
        let total = me.pipe.len().min(max);
        let size = total.div_ceil(pieces.max(1)).max(1);
        let mut taken = 0;
        while taken < total {
            let len = size.min(total - taken);
            let received = me.ends.whole().map(|c| c.stats().bytes_received);
            let n = if direct {
                let buf = me.ends.receive_buffer(len);
                let n = buf.len();
                assert!(n <= len, "{to:?}: receive_buffer({len}) offered {n} bytes");
                buf.copy_from_slice(&me.pipe[..n]);
                // An adapter that over-reports: the commit stops at the offer.
                me.ends.commit_received(now, n + overcommit);
                n
            } else {
                let n = me.ends.receive(now, &me.pipe[..len]);
                assert!(n <= len, "{to:?}: receive took {n} of {len} bytes");
                n
            };
            if let (Some(before), Some(c)) = (received, me.ends.whole()) {
                let counted = c.stats().bytes_received - before;
                assert_eq!(counted, n as u64, "{to:?}: {n} bytes taken, {counted} counted as received");
                let held = buffered_in(c);
                assert!(held <= bound, "{to:?}: {held} bytes held unprocessed, bound {bound}");
            }
            let accepted: Vec<u8> = me.pipe.drain(..n).collect();
            me.reference.push(&accepted);
            me.accepted += n as u64;
            me.since_read += n;
            // A connection that only discards input (after the peer's close
            // or once closed) takes any amount; one that reads frames holds
            // what it has not looked at to the bound, whole or split.
            let discarding =
                me.closed || me.got_close || matches!(me.peeked, Some(EventKind::Close | EventKind::Closed));
            if !discarding {
                assert!(
                    me.since_read <= limit,
                    "{to:?}: took {} bytes without reading any, bound {limit}",
                    me.since_read
                );
            }
            taken += n;
            // A partly taken piece is offered again at once (a connection
            // that discards input takes it in steps); one that takes nothing
            // must say so.
            if n == 0 {
                assert!(!me.ends.wants_read(), "{to:?}: refused input yet wants to read");
                assert!(me.ends.receive_buffer(1).is_empty(), "{to:?}: refused input yet offers room");
                break;
            }
        }
        if me.eof_pending && me.pipe.is_empty() {
            me.eof_pending = false;
            me.eof = true;
            me.ends.handle_eof();
        }
        taken
    }

    /// Runs the timers of every side (or only `only`) at `self.now`.
    fn timers(&mut self, only: Option<(Side, Half)>) {
        let now = self.now;
        for (i, p) in self.peers.iter_mut().enumerate() {
            let half = match only {
                Some((side, _)) if side.i() != i => continue,
                Some((_, half)) => Some(half),
                None => None,
            };
            if p.ends.state() == State::Closed {
                p.timer_after_closed = true;
            }
            p.ends.handle_timeout(now, half);
        }
    }

    /// Checks a send call's result: once failed, exactly the failure;
    /// otherwise success exactly when `ok`.
    fn sent_result(&self, from: Side, failure: Option<Error>, r: Result<(), Error>, ok: bool, what: &str) {
        match failure {
            Some(e) => assert_eq!(r, Err(e), "{from:?}: {what} after the connection failed"),
            None => assert_eq!(r.is_ok(), ok, "{from:?}: {what}: {r:?}"),
        }
    }

    /// Records a message `from` queued successfully.
    fn queued(&mut self, from: Side, kind: MessageKind, data: Vec<u8>) {
        let framed = self.framed(data.len());
        let me = &mut self.peers[from.i()];
        me.largest_send = me.largest_send.max(framed);
        me.sent.push_back((kind, data));
    }

    fn control(&mut self, from: Side, payload: &[u8], ping: bool) {
        let me = &mut self.peers[from.i()];
        let failure = me.ends.failure();
        let ok = me.ends.is_writable() && payload.len() <= 125;
        let r = me.ends.send_control(ping, payload);
        self.sent_result(from, failure, r, ok, if ping { "send_ping" } else { "send_pong" });
        if failure.is_none() && payload.len() > 125 {
            assert_eq!(r, Err(Error::Usage(UsageError::ControlPayloadTooLong)));
        }
        if r.is_ok() {
            let me = &mut self.peers[from.i()];
            me.largest_send = me.largest_send.max(CONTROL);
            if !ping {
                me.user_pongs.push(payload.to_vec());
            }
        }
    }

    fn apply(&mut self, op: Op) {
        let before: [usize; 2] = [0, 1].map(|i| self.peers[i].ends.buffered_amount());
        // Whether the operation may add to a side's output queue.
        let mut may_queue = [false; 2];
        match op {
            Op::Raw { to, data: Bytes(data) } => {
                let me = &mut self.peers[to.i()];
                if !me.eof && !me.eof_pending && !me.dead && !data.is_empty() {
                    me.pristine = false;
                    me.pipe.extend_from_slice(&data);
                }
                self.offer(to, usize::MAX, 1, false, 0);
            }
            Op::Deliver { to, max, pieces, direct } => {
                may_queue[to.other().i()] = true;
                self.transmit(to.other(), usize::from(max), None);
                self.offer(to, usize::MAX, usize::from(pieces % 4) + 1, direct, 0);
            }
            Op::Flush { owned } => {
                may_queue = [true; 2];
                for _ in 0..16 {
                    let mut moved = 0;
                    for to in [Side::Server, Side::Client] {
                        moved += self.transmit(to.other(), usize::MAX, None);
                        moved += self.offer(to, usize::MAX, 1, false, 0);
                        self.drain(to, owned);
                    }
                    if moved == 0 {
                        break;
                    }
                }
            }
            Op::Text { from, text, repeat } => {
                may_queue[from.i()] = true;
                let text = String::from_utf8_lossy(&text.0).into_owned();
                let reps = (usize::from(repeat) + 1).min(MAX_SEND / text.len().max(1)).max(1);
                let text = text.repeat(reps);
                let me = &mut self.peers[from.i()];
                let failure = me.ends.failure();
                let ok = me.ends.is_writable() && me.sending.is_none();
                let r = me.ends.send(Message::Text(&text));
                self.sent_result(from, failure, r, ok, "send_text");
                if r.is_ok() {
                    self.queued(from, MessageKind::Text, text.into_bytes());
                }
            }
            Op::Binary { from, len, byte } => {
                may_queue[from.i()] = true;
                let data = vec![byte; usize::from(len) % (MAX_SEND + 1)];
                let me = &mut self.peers[from.i()];
                let failure = me.ends.failure();
                let ok = me.ends.is_writable() && me.sending.is_none();
                let r = me.ends.send(Message::Binary(&data));
                self.sent_result(from, failure, r, ok, "send_binary");
                if r.is_ok() {
                    self.queued(from, MessageKind::Binary, data);
                }
            }
            Op::Chunk { from, text, data: Bytes(data), fin } => {
                may_queue[from.i()] = true;
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
                let failure = me.ends.failure();
                let ok = me.ends.is_writable() && same_kind && utf8_ok;
                let r = me.ends.send_chunk(kind, &data, fin);
                self.sent_result(from, failure, r, ok, "send_chunk");
                if r.is_ok() {
                    let framed = self.framed(data.len());
                    let me = &mut self.peers[from.i()];
                    me.largest_send = me.largest_send.max(framed);
                    if fin {
                        me.sending = None;
                        me.sent.push_back((kind, so_far));
                    } else {
                        me.sending = Some((kind, so_far));
                    }
                }
            }
            Op::Ping { from, payload } => {
                may_queue[from.i()] = true;
                self.control(from, &payload.0, true);
            }
            Op::Pong { from, payload } => {
                may_queue[from.i()] = true;
                self.control(from, &payload.0, false);
            }
            Op::Close { from, code, reason } => {
                may_queue[from.i()] = true;
                let reason = String::from_utf8_lossy(&reason.0).into_owned();
                // Mostly meaningful codes, sometimes any.
                const CODES: [u16; 8] = [1000, 1001, 1005, 1006, 1011, 3000, 4999, 999];
                let code = if code & 0x8000 != 0 { code & 0x7FFF } else { CODES[usize::from(code % 8)] };
                let code = CloseCode(code);
                let now = self.now;
                let me = &mut self.peers[from.i()];
                let failure = me.ends.failure();
                let ok = me.ends.state() == State::Open
                    && (code.is_sendable() || (code == CloseCode::NO_STATUS && reason.is_empty()))
                    && reason.len() <= 123;
                let r = me.ends.close(now, code, &reason);
                self.sent_result(from, failure, r, ok, "close");
                if r.is_ok() {
                    let me = &mut self.peers[from.i()];
                    assert_eq!(me.ends.state(), State::Closing);
                    me.largest_send = me.largest_send.max(CONTROL);
                }
            }
            Op::Advance { ms, only } => {
                self.now += Duration::from_millis(u64::from(ms));
                self.timers(only);
            }
            Op::Deadline { side } => {
                if let Some(t) = self.peers[side.i()].ends.poll_timeout() {
                    self.now = self.now.max(t);
                }
                self.timers(None);
            }
            Op::Eof { to } => {
                let me = &mut self.peers[to.i()];
                if !me.eof && !me.dead {
                    me.eof_pending = true;
                    self.offer(to, 0, 1, false, 0);
                }
            }
            Op::TransportError { side, half } => {
                let me = &mut self.peers[side.i()];
                me.dead = true;
                me.pipe.clear();
                me.ends.handle_transport_error(half);
                assert_eq!(me.ends.buffered_amount(), 0, "{side:?}: output kept after a transport error");
                assert!(me.ends.closed().is_some(), "{side:?}: open after a transport error");
            }
            Op::Peek { side } => self.peek(side),
            Op::Transmit { from, max, vectored } => {
                may_queue[from.i()] = true;
                self.transmit(from, usize::from(max), vectored);
            }
            Op::Offer { to, max, pieces, direct, overcommit } => {
                self.offer(to, usize::from(max), usize::from(pieces % 4) + 1, direct, usize::from(overcommit));
            }
            Op::Poll { side, count, owned, keep } => {
                for _ in 0..=count % 4 {
                    if !self.poll(side, owned, keep) {
                        break;
                    }
                }
            }
            Op::Drain { side, owned } => self.drain(side, owned),
            Op::SetStreaming { side, on } => {
                let me = &mut self.peers[side.i()];
                me.ends.set_streaming(on);
                me.streaming = on;
            }
            Op::SendOwned { from, text, len, byte, echo } => {
                may_queue[from.i()] = true;
                let me = &mut self.peers[from.i()];
                let message = match echo {
                    Some(i) if !me.kept.is_empty() => me.kept[usize::from(i) % me.kept.len()].0.clone(),
                    _ => {
                        let len = usize::from(len) % (MAX_SEND + 1);
                        if text {
                            OwnedMessage::text(char::from(b'a' + byte % 26).to_string().repeat(len))
                        } else {
                            OwnedMessage::binary(vec![byte; len])
                        }
                    }
                };
                let (kind, data) = (message.kind(), message.as_bytes().to_vec());
                let failure = me.ends.failure();
                let ok = me.ends.is_writable() && me.sending.is_none();
                let r = me.ends.send_owned(message);
                self.sent_result(from, failure, r, ok, "send_owned");
                if r.is_ok() {
                    self.queued(from, kind, data);
                }
            }
            Op::SendPrepared { from, text, len, byte, deflate } => {
                may_queue[from.i()] = true;
                let len = usize::from(len) % (MAX_SEND + 1);
                let data = if text { vec![b'a' + byte % 26; len] } else { vec![byte; len] };
                let message = if text {
                    Message::Text(core::str::from_utf8(&data).expect("ASCII"))
                } else {
                    Message::Binary(&data)
                };
                let prepared = match deflate {
                    Some(bits) => PreparedMessage::with_deflate(message, &DeflateConfig::default(), 8 + bits % 8),
                    None => PreparedMessage::new(message),
                };
                assert_eq!(prepared.len(), len);
                let kind = message.kind();
                let me = &mut self.peers[from.i()];
                let failure = me.ends.failure();
                let ok = me.ends.is_writable() && me.sending.is_none();
                let r = me.ends.send_prepared(&prepared);
                self.sent_result(from, failure, r, ok, "send_prepared");
                if r.is_ok() {
                    self.queued(from, kind, data);
                }
            }
            Op::Split { side, cross } => self.split(side, cross),
            Op::DropKept { side } => self.peers[side.i()].kept.clear(),
            Op::AdapterTurn { side, ms, transmit, read, owned } => {
                self.peek(side);
                self.now += Duration::from_millis(u64::from(ms));
                let half = if transmit { Half::Send } else { Half::Recv };
                self.timers(Some((side, half)));
                if transmit {
                    may_queue[side.i()] = true;
                    self.transmit(side, usize::MAX, None);
                }
                if read {
                    self.offer(side, usize::MAX, 1, false, 0);
                }
                self.poll(side, owned, owned);
            }
        }
        for i in 0..2 {
            if !may_queue[i] {
                let after = self.peers[i].ends.buffered_amount();
                assert!(
                    after <= before[i],
                    "{:?}: buffered_amount rose from {} to {after} without a send or a transmission",
                    side_of(i),
                    before[i]
                );
            }
        }
        self.check();
    }

    /// Splits a whole connection, or reunites a split one.
    fn split(&mut self, side: Side, cross: bool) {
        let ends = std::mem::replace(&mut self.peers[side.i()].ends, Ends::Moving);
        let ends = match ends {
            Ends::Whole(conn) => match conn.split() {
                Ok((rx, tx)) => Ends::Split(rx, tx),
                Err(_) => panic!("{side:?}: an open connection refused to split"),
            },
            Ends::Split(rx, tx) => {
                let (rx, tx) = match (cross, &mut self.peers[side.other().i()].ends) {
                    (true, Ends::Split(_, other_tx)) => {
                        // Halves of two connections: refused, handed back.
                        let other = std::mem::replace(other_tx, dummy_send_half());
                        match rx.reunite(other) {
                            Ok(_) => panic!("{side:?}: reunited with the other side's send half"),
                            Err(wscore::ReuniteError(rx, other)) => {
                                let dummy = std::mem::replace(other_tx, other);
                                drop(dummy);
                                (rx, tx)
                            }
                        }
                    }
                    _ => (rx, tx),
                };
                match rx.reunite(tx) {
                    Ok(conn) => Ends::Whole(conn),
                    Err(_) => panic!("{side:?}: its own halves refused to reunite"),
                }
            }
            Ends::Moving => unreachable!(),
        };
        self.peers[side.i()].ends = ends;
    }

    fn check(&mut self) {
        let high_water_bound = |p: &Peer, pongs: usize| HIGH_WATER - 1 + p.largest_send + (pongs + 3) * CONTROL;
        let pongs = self.max_pongs;
        for (i, p) in self.peers.iter_mut().enumerate() {
            let side = side_of(i);
            let buffered = p.ends.buffered_amount();
            let bound = high_water_bound(p, pongs);
            assert!(buffered <= bound, "{side:?}: buffered_amount {buffered} > {bound}");
            let state = p.ends.state();
            assert!(rank(state) >= rank(p.state), "{side:?}: state went from {:?} to {state:?}", p.state);
            p.state = state;
            assert_eq!(p.ends.is_writable(), state == State::Open && buffered < HIGH_WATER, "{side:?}: is_writable");
            assert_eq!(p.ends.role(), p.role);
            let failure = p.ends.failure();
            match p.failure {
                Some(e) => assert_eq!(failure, Some(e), "{side:?}: the failure changed"),
                None => p.failure = failure,
            }
            if failure.is_some() {
                assert_eq!(state, State::Closed);
            }
            if p.dead {
                assert_eq!(buffered, 0, "{side:?}: buffered after a transport error");
                assert!(p.ends.poll_transmit().is_empty(), "{side:?}: output after a transport error");
                assert!(!p.ends.wants_read());
            }
            if buffered > 0 {
                assert!(p.ends.wants_write());
            }
            // The pong for the latest ping stays owed until it goes out.
            if p.unanswered.is_some() && !p.dead && failure.is_none() {
                assert!(p.ends.wants_write(), "{side:?}: the latest ping read is unanswered and nothing is owed");
            }
            for (m, copy) in &p.kept {
                assert!(m.as_bytes() == &copy[..], "{side:?}: a kept owned payload changed");
            }
            if let Some(c) = p.ends.whole() {
                assert_eq!(c.stats().bytes_received, p.accepted, "{side:?}: bytes_received");
                if c.wants_shutdown() {
                    assert!(!c.wants_write() && !c.is_finished(), "{side:?}: wants_shutdown with more to do");
                    assert!(p.closed, "{side:?}: wants_shutdown before Closed was returned");
                }
            }
            let clean = p.closed && p.ends.closed().is_some_and(|c| c.clean);
            if p.role == Role::Client && clean && !p.eof && !p.dead && !p.timer_after_closed {
                // RFC 6455 §7.1.1: the server closes TCP first.
                assert!(!p.ends.is_finished(), "{side:?}: finished before the server closed TCP");
            }
        }
    }
}

/// An event copied out of the connection.
enum OwnedGot {
    Message(MessageKind, Vec<u8>),
    Chunk(MessageKind, Vec<u8>, bool),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(CloseCode, String),
    Closed(Closed),
}

impl OwnedGot {
    fn as_got(&self) -> Got<'_> {
        match self {
            OwnedGot::Message(k, b) => Got::Message(*k, b),
            OwnedGot::Chunk(k, b, fin) => Got::Chunk(*k, b, *fin),
            OwnedGot::Ping(p) => Got::Ping(p),
            OwnedGot::Pong(p) => Got::Pong(p),
            OwnedGot::Close(code, reason) => Got::Close(*code, reason),
            OwnedGot::Closed(c) => Got::Closed(c.clone()),
        }
    }
}

/// A whole message `me` received (returned whole, or its last chunk):
/// the next one its bytes call for, and while pristine the next the peer sent.
fn whole_message(side: Side, me: &mut Peer, other: &mut Peer, kind: MessageKind, bytes: &[u8]) {
    match me.reference.expected.pop_front() {
        Some(Expected::Message { text, compressed, payload }) => {
            assert_eq!(text, kind == MessageKind::Text, "{side:?}: message kind");
            assert!(compressed || payload == bytes, "{side:?}: message differs from the bytes received");
        }
        other => panic!("{side:?}: a {kind:?} message where the bytes call for {other:?}"),
    }
    if me.pristine {
        let (k, expected) = other.sent.pop_front().expect("a message nobody sent");
        assert_eq!(k, kind, "{side:?}: message kind");
        assert!(expected == bytes, "{side:?}: message content differs from what was sent");
    }
}

/// A send half to stand in while a real one is lent to `reunite`.
fn dummy_send_half() -> SendHalf {
    let mut config = Config::default();
    config.entropy = Some(fixed_entropy);
    let conn = Connection::frames_only(Role::Server, config, Duration::ZERO).unwrap();
    conn.split().unwrap().1
}

/// Offers all of `data`, as the handshake does it: at once, since the
/// bound leaves room for a whole handshake.
fn receive_all(conn: &mut Connection, data: &[u8]) {
    assert_eq!(conn.receive(Duration::ZERO, data), data.len(), "the handshake's bytes were refused");
}

/// A client and a server that completed a real opening handshake, each
/// with its own permessage-deflate settings; both must agree on the result.
fn handshake(client: Config, server: Config) -> (Connection, Connection) {
    let now = Duration::ZERO;
    let mut c = Connection::client(ClientHandshake::new("ws://a/").unwrap(), client, now).unwrap();
    let mut s = Connection::server(server, now).unwrap();
    let mut wire = Vec::new();
    c.transmit_into(&mut wire);
    receive_all(&mut s, &wire);
    match s.poll_event() {
        Some(Event::Request(_)) => {}
        other => panic!("server: {other:?} instead of Request"),
    }
    s.accept(&Accept::new()).unwrap();
    assert!(s.poll_event().is_none());
    wire.clear();
    s.transmit_into(&mut wire);
    receive_all(&mut c, &wire);
    match c.poll_event() {
        Some(Event::Connected(_)) => {}
        other => panic!("client: {other:?} instead of Connected"),
    }
    assert!(c.poll_event().is_none());
    assert!(s.deflate().is_some(), "the server declined a permessage-deflate offer");
    assert_eq!(c.deflate(), s.deflate(), "client and server disagree on permessage-deflate parameters");
    (c, s)
}

fn peer(conn: Connection, max_send_frame: usize, streaming: bool) -> Peer {
    let role = conn.role();
    let mut wire = WireChecker::new(role, max_send_frame);
    wire.deflate = conn.deflate().is_some();
    let accepted = conn.stats().bytes_received;
    let transmitted = conn.stats().bytes_transmitted;
    Peer {
        ends: Ends::Whole(conn),
        role,
        wire,
        pipe: Vec::new(),
        reference: Reference::new(WIRE_FRAME),
        accepted,
        since_read: 0,
        transmitted,
        sent: VecDeque::new(),
        sending: None,
        receiving: None,
        pristine: true,
        streaming,
        modes: [false; 2],
        got_close: false,
        closed: false,
        eof_pending: false,
        eof: false,
        dead: false,
        peeked: None,
        state: State::Open,
        failure: None,
        owed_pings: Vec::new(),
        user_pongs: Vec::new(),
        unanswered: None,
        kept: VecDeque::new(),
        largest_send: 0,
        timer_after_closed: false,
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
    config.retained_buffer_capacity = [0, 64, 4096, 16384][usize::from(input.retain % 4)];
    // Short delays, so that the release deadline falls between a peek and
    // the poll that takes the event, as it did for defect (a).
    config.buffer_release_delay = input.release_delay_ms.map(|ms| Duration::from_millis(u64::from(ms % 2048)));
    config.max_unprocessed_input = 1024 + usize::from(input.max_unprocessed) % 8192;
    config.max_queued_pongs = 1 + usize::from(input.max_pongs % 4);
    config.ping_interval = input.ping_interval_ms.map(|ms| Duration::from_millis(u64::from(ms) + 1));
    config.idle_timeout = input.idle_timeout_ms.map(|ms| {
        // The idle timeout must outlast the ping interval.
        let floor = config.ping_interval.unwrap_or_default();
        floor + Duration::from_millis(u64::from(ms) + 1)
    });
    config.close_timeout = Duration::from_millis(u64::from(input.close_timeout_ms));
    let max_send_frame = config.max_send_frame_size;
    let max_unprocessed = config.max_unprocessed_input;
    let max_pongs = config.max_queued_pongs;

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
        peers: [peer(client, max_send_frame, input.streaming), peer(server, max_send_frame, input.streaming)],
        now: Duration::ZERO,
        max_send_frame,
        max_unprocessed,
        max_pongs,
        deflate: input.deflate.is_some(),
    };
    for op in input.ops.into_iter().take(256) {
        world.apply(op);
    }
    // Whatever is still queued must be valid frames too.
    for side in [Side::Client, Side::Server] {
        world.transmit(side, usize::MAX, None);
        let p = &world.peers[side.i()];
        assert!(p.dead || p.wire.pending() == 0, "{side:?}: transmitted a partial frame");
    }
});
