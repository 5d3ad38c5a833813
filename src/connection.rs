//! The connection state machine: composes the handshake, frame and message
//! layers into one sans-IO [`Connection`] for either role.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use base64::Engine as _;

use crate::config::Config;
use crate::deflate::{Compressor, Decompressor, DeflateConfig, DeflateParams};
use crate::error::{Error, HandshakeError, ProtocolError, Timeout, UsageError};
use crate::frame::{CloseCode, CloseFrame, FrameHeader, MAX_CONTROL_PAYLOAD, MAX_HEADER_LEN, OpCode, RSV1, apply_mask};
use crate::handshake::server::{write_error_response, write_handshake_error};
use crate::handshake::{Accept, ClientHandshake, HeadScanner, Reject, Request, Response, accept_key};
use crate::message::{Message, MessageKind, Utf8Validator};
use crate::rng::MaskRng;
use crate::role::Role;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// The opening handshake is in progress.
    Handshake,
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's.
    Closing,
    /// The closing handshake finished or the connection failed; see
    /// [`Connection::is_finished`] for when to close the transport.
    Closed,
}

/// Something that happened on the connection, returned by
/// [`Connection::poll_event`]. Payloads borrow from the connection's
/// buffers and stay valid until the next call that changes it.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// Server: a valid upgrade request arrived. Answer it with
    /// [`Connection::accept`] or [`Connection::reject`]; until then no
    /// further events are produced.
    Request(&'a Request),
    /// Client: the server accepted the upgrade; the connection is open. The
    /// response is handed over: the connection keeps no copy.
    Connected(Box<Response>),
    /// A whole message (the default, bounded by `max_message_size`).
    Message(Message<'a>),
    /// A piece of a message as it arrived (with [`Config::streaming`]).
    Chunk(Chunk<'a>),
    /// A ping arrived; the pong has already been queued.
    Ping(&'a [u8]),
    /// A pong arrived.
    Pong(&'a [u8]),
    /// The peer sent a close frame; ours has been queued in answer if we
    /// had not sent one. [`Event::Closed`] follows.
    Close(CloseFrame<'a>),
    /// The connection is closed; always the last event. See [`Closed`].
    Closed(Closed),
}

impl Event<'_> {
    /// The event's kind, as [`Connection::peek_event`] reports it.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Request(_) => EventKind::Request,
            Self::Connected(_) => EventKind::Connected,
            Self::Message(_) => EventKind::Message,
            Self::Chunk(_) => EventKind::Chunk,
            Self::Ping(_) => EventKind::Ping,
            Self::Pong(_) => EventKind::Pong,
            Self::Close(_) => EventKind::Close,
            Self::Closed(_) => EventKind::Closed,
        }
    }
}

/// The kind of an [`Event`], from [`Connection::peek_event`] or [`Event::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// [`Event::Request`].
    Request,
    /// [`Event::Connected`].
    Connected,
    /// [`Event::Message`].
    Message,
    /// [`Event::Chunk`].
    Chunk,
    /// [`Event::Ping`].
    Ping,
    /// [`Event::Pong`].
    Pong,
    /// [`Event::Close`].
    Close,
    /// [`Event::Closed`].
    Closed,
}

/// A piece of a message in streaming mode ([`Config::streaming`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The kind of the message this piece belongs to.
    pub kind: MessageKind,
    /// The bytes. For text the message as a whole is validated UTF-8, but a
    /// piece may end inside a character.
    pub data: &'a [u8],
    /// Whether this is the last piece of the message.
    pub fin: bool,
}

/// Counters of what a connection has done, from [`Connection::stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Bytes handed to the connection as received.
    pub bytes_received: u64,
    /// Bytes the caller reported as transmitted.
    pub bytes_transmitted: u64,
    /// Frame headers decoded.
    pub frames_received: u64,
    /// Whole messages received (the last chunk of each when streaming).
    pub messages_received: u64,
    /// Bytes the handshake parser examined: the search for the end of the
    /// head plus the parse of it. Linear in the head's length however it
    /// was split across reads, which is what bounds a slowly trickled head.
    pub handshake_bytes_examined: u64,
}

/// How a connection ended, in [`Event::Closed`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed {
    /// The peer's code after a closing handshake (1005 if its close frame
    /// had none); the code we sent when we failed the connection; 1006 when
    /// the transport ended without a closing handshake.
    pub code: CloseCode,
    /// Whether both close frames were exchanged.
    pub clean: bool,
    /// What went wrong, if anything.
    pub error: Option<Error>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    ServerHandshake,
    AwaitingAccept,
    ClientHandshake,
    Open,
    Closing,
    Closed,
}

/// An event found by `advance`, as positions rather than borrows so that
/// `poll_event` can build the borrowing [`Event`] afterwards.
#[derive(Clone, Copy, Debug)]
enum Ready {
    Request,
    Connected,
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

enum Step {
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
}

/// The data message being received.
#[derive(Clone, Copy, Debug)]
struct MessageState {
    kind: MessageKind,
    len: u64,
    fragments: usize,
    /// RSV1 was set on its first frame (permessage-deflate).
    compressed: bool,
    /// How much of the sync-flush tail has been fed to the inflater.
    tail_fed: u8,
    /// The deflate stream ended with a final block.
    stream_ended: bool,
}

/// The latest pong owed while the send buffer is above its high-water mark.
#[derive(Clone, Copy)]
struct PendingPong {
    data: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

/// The send side: the transmit buffer and what has been sent.
#[derive(Debug)]
struct Output {
    buf: Vec<u8>,
    /// Bytes before `pos` have been transmitted.
    pos: usize,
    /// A client's mask generator (servers do not mask), boxed since it is
    /// a sixth of a connection's size.
    mask: Option<Box<MaskRng>>,
    /// A streamed message in progress: its kind, whether it is compressed,
    /// and for text the UTF-8 state across chunks.
    sending: Option<(MessageKind, bool, Utf8Validator)>,
    /// Boxed: only needed while backpressure holds a pong back.
    pending_pong: Option<Box<PendingPong>>,
    close_sent: bool,
    /// Free the buffer when next drained: it held the handshake, and a
    /// connection that goes idle after it should hold nothing.
    release_on_drain: bool,
}

impl Output {
    fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Everything was transmitted: free the buffer if `free` says so or
    /// if it held the handshake, else keep it for reuse.
    fn drained(&mut self, free: bool) {
        self.buf.clear();
        self.pos = 0;
        let handshake = core::mem::take(&mut self.release_on_drain);
        if free || handshake {
            self.buf = Vec::new();
        }
    }

    fn reserve(&mut self, additional: usize) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 0 && self.buf.capacity() - self.buf.len() < additional {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.reserve(additional);
    }

    fn write_frame(&mut self, opcode: OpCode, fin: bool, payload: &[u8]) {
        self.write_frame_rsv(opcode, fin, 0, payload);
    }

    fn write_frame_rsv(&mut self, opcode: OpCode, fin: bool, rsv: u8, payload: &[u8]) {
        let mask = self.mask.as_mut().map(|m| m.next_key());
        let header = FrameHeader { fin, rsv, opcode, mask, payload_len: payload.len() as u64 };
        let mut head = [0u8; MAX_HEADER_LEN];
        let head_len = header.encode(&mut head);
        self.reserve(head_len + payload.len());
        self.buf.extend_from_slice(&head[..head_len]);
        let start = self.buf.len();
        self.buf.extend_from_slice(payload);
        if let Some(key) = mask {
            apply_mask(&mut self.buf[start..], key, 0);
        }
    }

    /// Writes `payload` as frames of at most `max_frame` bytes; the first
    /// has `opcode` and `rsv`, the rest are continuations, the last has `fin`.
    fn write_data(&mut self, opcode: OpCode, rsv: u8, payload: &[u8], fin: bool, max_frame: usize) {
        let (mut opcode, mut rsv) = (opcode, rsv);
        let mut rest = payload;
        loop {
            let (now, later) = rest.split_at(rest.len().min(max_frame));
            self.write_frame_rsv(opcode, fin && later.is_empty(), rsv, now);
            if later.is_empty() {
                return;
            }
            (opcode, rsv) = (OpCode::Continuation, 0);
            rest = later;
        }
    }

    fn write_close(&mut self, code: CloseCode, reason: &str) {
        let mut payload = [0u8; MAX_CONTROL_PAYLOAD];
        let len = if code == CloseCode::NO_STATUS {
            0
        } else {
            let reason = &reason.as_bytes()[..reason.len().min(MAX_CONTROL_PAYLOAD - 2)];
            payload[..2].copy_from_slice(&code.0.to_be_bytes());
            payload[2..2 + reason.len()].copy_from_slice(reason);
            2 + reason.len()
        };
        // A ping that arrived before our close is still owed its pong (§5.5.2).
        if let Some(pong) = self.pending_pong.take() {
            self.write_frame(OpCode::Pong, true, &pong.data[..usize::from(pong.len)]);
        }
        self.write_frame(OpCode::Close, true, &payload[..len]);
        self.close_sent = true;
    }

    fn queue_pong(&mut self, payload: &[u8], high_water: usize) {
        if self.buffered() < high_water {
            self.pending_pong = None;
            self.write_frame(OpCode::Pong, true, payload);
        } else {
            // Only the latest ping's pong is kept (RFC 6455 §5.5.3).
            let pong = self
                .pending_pong
                .get_or_insert_with(|| Box::new(PendingPong { data: [0; MAX_CONTROL_PAYLOAD], len: 0 }));
            pong.data[..payload.len()].copy_from_slice(payload);
            pong.len = payload.len() as u8;
        }
    }

    fn flush_pending(&mut self, high_water: usize) {
        if self.buffered() < high_water
            && let Some(pong) = self.pending_pong.take()
        {
            self.write_frame(OpCode::Pong, true, &pong.data[..usize::from(pong.len)]);
        }
    }
}

impl fmt::Debug for PendingPong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PendingPong").field(&&self.data[..usize::from(self.len)]).finish()
    }
}

/// Deadlines, all as `now` values on the caller's clock.
#[derive(Clone, Copy, Debug)]
struct Timers {
    /// The latest `now` the caller gave us.
    clock: Duration,
    last_recv: Duration,
    last_ping: Duration,
    handshake_deadline: Option<Duration>,
    /// Closing: when to give up on the peer's close frame. Closed (client):
    /// when to stop waiting for the server to close the TCP connection.
    close_deadline: Option<Duration>,
}

/// Everything but the two buffers that events borrow from, so that
/// `poll_event` can fail the connection while holding such a borrow.
#[derive(Debug)]
struct Inner {
    role: Role,
    phase: Phase,
    config: Config,
    rx_start: usize,
    rx_end: usize,
    scanner: HeadScanner,
    frame: Option<FrameState>,
    message: Option<MessageState>,
    utf8: Utf8Validator,
    out: Output,
    client: Option<Box<(ClientHandshake, [u8; 28])>>,
    request: Option<Box<Request>>,
    response: Option<Box<Response>>,
    protocol: Option<Box<str>>,
    /// permessage-deflate, once negotiated: what we send, and what we receive.
    compressor: Option<Box<Compressor>>,
    decompressor: Option<Box<Decompressor>>,
    /// The compressed form of the message being sent, framed from here
    /// since a frame header needs the payload's length.
    compressed: Vec<u8>,
    closed: Option<Closed>,
    closed_reported: bool,
    eof: bool,
    transport_dead: bool,
    close_wait_over: bool,
    /// An event found by [`Connection::peek_event`], not yet returned.
    stash: Option<Ready>,
    /// When to free drained large buffers if nothing happens before.
    release_at: Option<Duration>,
    stats: Stats,
    timers: Timers,
}

/// A WebSocket connection, client or server, as a pure state machine.
///
/// It never reads a socket or a clock: the caller feeds it the bytes that
/// arrived and the current time, and takes from it the events to handle and
/// the bytes to send. Methods come in four groups:
///
/// * **Inputs**: [`receive`](Self::receive) (or
///   [`receive_buffer`](Self::receive_buffer) +
///   [`commit_received`](Self::commit_received) to read straight into the
///   connection), [`handle_timeout`](Self::handle_timeout),
///   [`handle_eof`](Self::handle_eof),
///   [`handle_transport_error`](Self::handle_transport_error).
/// * **User actions**: [`send_text`](Self::send_text),
///   [`send_binary`](Self::send_binary), [`send_chunk`](Self::send_chunk),
///   [`send_ping`](Self::send_ping), [`send_pong`](Self::send_pong),
///   [`close`](Self::close); on a server [`accept`](Self::accept) or
///   [`reject`](Self::reject).
/// * **Outputs**: [`poll_event`](Self::poll_event),
///   [`poll_transmit`](Self::poll_transmit) +
///   [`advance_transmit`](Self::advance_transmit) (or
///   [`transmit_into`](Self::transmit_into)),
///   [`poll_timeout`](Self::poll_timeout).
/// * **Getters**: [`state`](Self::state), [`role`](Self::role),
///   [`protocol`](Self::protocol), [`buffered_amount`](Self::buffered_amount),
///   [`wants_write`](Self::wants_write), [`is_finished`](Self::is_finished).
///
/// # The drive loop
///
/// After every input or action: drain [`poll_event`](Self::poll_event)
/// until it returns `None`, send what [`poll_transmit`](Self::poll_transmit)
/// returns, and wait for more input or for [`poll_timeout`](Self::poll_timeout).
/// Stop once [`is_finished`](Self::is_finished) says to close the transport.
///
/// ```
/// use core::time::Duration;
/// use wscore::{ClientHandshake, Config, Connection, Event, Message};
///
/// let now = Duration::ZERO;
/// let mut client = Connection::client(ClientHandshake::new("ws://localhost/")?, Config::default(), now)?;
/// let mut server = Connection::server(Config::default(), now)?;
/// let mut wire = Vec::new();
///
/// client.transmit_into(&mut wire); // the upgrade request
/// server.receive(now, &wire);
/// wire.clear();
/// while let Some(event) = server.poll_event() {
///     if let Event::Request(_) = event {
///         server.accept(&wscore::Accept::new())?;
///     }
/// }
/// server.transmit_into(&mut wire); // the 101 response
/// client.receive(now, &wire);
/// wire.clear();
/// assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
///
/// client.send_text("hello")?;
/// client.transmit_into(&mut wire);
/// server.receive(now, &wire);
/// assert!(matches!(server.poll_event(), Some(Event::Message(Message::Text("hello")))));
/// # Ok::<(), wscore::Error>(())
/// ```
pub struct Connection {
    /// Received bytes; `rx[inner.rx_start..inner.rx_end]` is unprocessed or
    /// belongs to the buffered frame. The vector's length is how much is
    /// initialised, so [`Self::receive_buffer`] can hand it out again.
    rx: Vec<u8>,
    /// The payload of a fragmented message being assembled.
    msg: Vec<u8>,
    inner: Inner,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.inner.role)
            .field("phase", &self.inner.phase)
            .field("buffered_in", &(self.inner.rx_end - self.inner.rx_start))
            .field("buffered_out", &self.inner.out.buffered())
            .finish_non_exhaustive()
    }
}

impl Connection {
    // ----- Construction -------------------------------------------------

    /// A client that will send the upgrade request described by
    /// `handshake`. The request is ready in [`poll_transmit`](Self::poll_transmit).
    pub fn client(handshake: ClientHandshake, config: Config, now: Duration) -> Result<Self, Error> {
        let mut conn = Self::new(Role::Client, Phase::ClientHandshake, config, now)?;
        let entropy = conn.inner.config.entropy.ok_or(UsageError::NoEntropy)?;
        let mut nonce = [0u8; 16];
        entropy(&mut nonce);
        let mut key = [0u8; 24];
        let written = base64::engine::general_purpose::STANDARD.encode_slice(nonce, &mut key).unwrap_or(0);
        debug_assert_eq!(written, 24);
        let offer = conn.inner.config.deflate.as_ref().map(crate::deflate::negotiation::client_offer);
        handshake.write_request(&key, offer.as_deref(), &mut conn.inner.out.buf);
        conn.inner.client = Some(Box::new((handshake, accept_key(&key))));
        Ok(conn)
    }

    /// A server that waits for an upgrade request.
    pub fn server(config: Config, now: Duration) -> Result<Self, Error> {
        Self::new(Role::Server, Phase::ServerHandshake, config, now)
    }

    /// A connection whose handshake another stack already performed (an HTTP
    /// server that handed over the upgraded stream, or an HTTP/2 stream per
    /// RFC 8441): it starts open and speaks frames only.
    pub fn frames_only(role: Role, config: Config, now: Duration) -> Result<Self, Error> {
        Self::new(role, Phase::Open, config, now)
    }

    /// A frames-only connection (see [`frames_only`](Self::frames_only))
    /// whose permessage-deflate parameters the other stack negotiated, for
    /// example with [`deflate::negotiate`](crate::deflate::negotiate). Level
    /// and threshold come from [`Config::deflate`], or its defaults.
    pub fn frames_only_with_deflate(
        role: Role,
        config: Config,
        params: DeflateParams,
        now: Duration,
    ) -> Result<Self, Error> {
        params.validate().map_err(UsageError::InvalidConfig)?;
        let mut conn = Self::new(role, Phase::Open, config, now)?;
        conn.inner.start_deflate(params, role);
        Ok(conn)
    }

    fn new(role: Role, phase: Phase, config: Config, now: Duration) -> Result<Self, Error> {
        config.validate()?;
        let mask = match role {
            Role::Client => {
                let entropy = config.entropy.ok_or(UsageError::NoEntropy)?;
                let mut seed = [0u8; 32];
                entropy(&mut seed);
                Some(Box::new(MaskRng::new(seed)))
            }
            Role::Server => None,
        };
        let handshake_deadline = match phase {
            Phase::Open => None,
            _ => config.handshake_timeout.map(|t| now.saturating_add(t)),
        };
        Ok(Self {
            rx: Vec::new(),
            msg: Vec::new(),
            inner: Inner {
                role,
                phase,
                config,
                rx_start: 0,
                rx_end: 0,
                scanner: HeadScanner::default(),
                frame: None,
                message: None,
                utf8: Utf8Validator::default(),
                out: Output {
                    buf: Vec::new(),
                    pos: 0,
                    mask,
                    sending: None,
                    pending_pong: None,
                    close_sent: false,
                    release_on_drain: false,
                },
                client: None,
                request: None,
                response: None,
                protocol: None,
                compressor: None,
                decompressor: None,
                compressed: Vec::new(),
                closed: None,
                closed_reported: false,
                eof: false,
                transport_dead: false,
                close_wait_over: false,
                stash: None,
                release_at: None,
                stats: Stats::default(),
                timers: Timers { clock: now, last_recv: now, last_ping: now, handshake_deadline, close_deadline: None },
            },
        })
    }

    // ----- Inputs ---------------------------------------------------------

    /// Hands the connection bytes that arrived from the peer, at time `now`.
    /// Nothing is processed until [`poll_event`](Self::poll_event) is called,
    /// so bytes that follow the handshake in the same read are kept.
    pub fn receive(&mut self, now: Duration, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.make_room(data.len());
        // Appended rather than copied into zeroed spare room.
        self.rx.truncate(self.inner.rx_end);
        self.rx.extend_from_slice(data);
        self.commit_received(now, data.len());
    }

    /// Spare room of at least `min` bytes at the end of the receive buffer,
    /// to read into directly; report how much was filled with
    /// [`commit_received`](Self::commit_received). Saves the copy that
    /// [`receive`](Self::receive) makes.
    pub fn receive_buffer(&mut self, min: usize) -> &mut [u8] {
        self.make_room(min);
        let end = self.inner.rx_end;
        if self.rx.len() - end < min {
            self.rx.resize(end + min, 0);
        }
        &mut self.rx[end..]
    }

    /// Moves unprocessed input to the front of the receive buffer when that
    /// makes room for `min` more bytes, so the buffer grows only with what
    /// is really pending.
    fn make_room(&mut self, min: usize) {
        let s = &mut self.inner;
        // A peeked event still borrows from before `rx_start`: only append then.
        if s.stash.is_some() {
            return;
        }
        if s.rx_start == s.rx_end {
            s.rx_start = 0;
            s.rx_end = 0;
        } else if self.rx.capacity() - s.rx_end < min && s.rx_start > 0 {
            self.rx.copy_within(s.rx_start..s.rx_end, 0);
            s.rx_end -= s.rx_start;
            s.rx_start = 0;
        }
    }

    /// Records that `n` bytes were written into [`receive_buffer`](Self::receive_buffer)
    /// at time `now`. `n` is capped at the buffer's size.
    pub fn commit_received(&mut self, now: Duration, n: usize) {
        let s = &mut self.inner;
        let n = n.min(self.rx.len() - s.rx_end);
        s.rx_end += n;
        s.stats.bytes_received += n as u64;
        s.tick(now);
        if n > 0 {
            s.timers.last_recv = now.max(s.timers.last_recv);
        }
        if s.phase == Phase::Closed {
            // Nothing more is processed; don't let a peer fill memory.
            s.rx_start = s.rx_end;
        }
    }

    /// The peer closed its side of the transport (a read returned 0 bytes).
    /// Bytes already received are still processed; if they end before the
    /// closing handshake, the connection closes with 1006
    /// ([`Error::ConnectionLost`]), which is reported, never sent.
    pub fn handle_eof(&mut self) {
        self.inner.eof = true;
    }

    /// The transport failed (a write or read returned an error): nothing
    /// more can be sent or received. The connection closes with
    /// [`Error::ConnectionLost`] unless it already was closed.
    pub fn handle_transport_error(&mut self) {
        let s = &mut self.inner;
        s.transport_dead = true;
        s.out.buf.clear();
        s.out.pos = 0;
        s.out.pending_pong = None;
        if s.phase != Phase::Closed {
            s.fail(Error::ConnectionLost);
        }
    }

    /// Runs the timers due at `now`: heartbeat pings, the idle, handshake and
    /// close timeouts. Call it when [`poll_timeout`](Self::poll_timeout)'s
    /// instant has passed (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Duration) {
        self.inner.tick(now);
        if self.inner.release_at.is_some_and(|t| now >= t) {
            self.release_idle_buffers();
        }
        let s = &mut self.inner;
        let t = s.timers;
        match s.phase {
            Phase::ServerHandshake | Phase::ClientHandshake | Phase::AwaitingAccept => {
                if t.handshake_deadline.is_some_and(|d| now >= d) {
                    // The client was too slow (408), or our application was (503).
                    match s.phase {
                        Phase::ServerHandshake => {
                            write_error_response(408, &[], b"handshake timeout\n", &mut s.out.buf)
                        }
                        Phase::AwaitingAccept => write_error_response(503, &[], b"handshake timeout\n", &mut s.out.buf),
                        _ => {}
                    }
                    s.fail(Error::Timeout(Timeout::Handshake));
                }
            }
            Phase::Open => {
                if s.idle_deadline().is_some_and(|d| now >= d) {
                    s.fail(Error::Timeout(Timeout::Idle));
                } else if s.ping_deadline().is_some_and(|d| now >= d) {
                    s.timers.last_ping = now;
                    if s.out.buffered() < s.config.write_buffer_high_water {
                        s.out.write_frame(OpCode::Ping, true, &[]);
                    }
                }
            }
            Phase::Closing => {
                if t.close_deadline.is_some_and(|d| now >= d) {
                    s.fail(Error::Timeout(Timeout::Close));
                }
            }
            Phase::Closed => {
                if t.close_deadline.is_some_and(|d| now >= d) {
                    s.close_wait_over = true;
                }
            }
        }
    }

    // ----- User actions ---------------------------------------------------

    /// Server: accepts the pending [`Event::Request`], choosing a subprotocol
    /// and adding headers as `accept` says. The 101 response is queued.
    pub fn accept(&mut self, accept: &Accept<'_>) -> Result<(), Error> {
        let s = &mut self.inner;
        let Some(request) = s.request.as_deref().filter(|_| s.phase == Phase::AwaitingAccept) else {
            return Err(UsageError::NoPendingRequest.into());
        };
        let deflate = s
            .config
            .deflate
            .as_ref()
            .and_then(|config| crate::deflate::negotiation::server_answer(request.extensions(), config));
        accept.write_response(request, deflate.as_ref().map(|(_, answer)| answer.as_str()), &mut s.out.buf)?;
        s.out.release_on_drain = true;
        if let Some((params, _)) = deflate {
            s.start_deflate(params, Role::Server);
        }
        s.protocol = accept.protocol.map(Into::into);
        s.request = None;
        s.phase = Phase::Open;
        s.timers.handshake_deadline = None;
        Ok(())
    }

    /// Server: rejects the pending [`Event::Request`] with the HTTP response
    /// `reject` describes. The response is queued and the connection closes
    /// once it is transmitted.
    pub fn reject(&mut self, reject: &Reject<'_>) -> Result<(), Error> {
        let s = &mut self.inner;
        if s.phase != Phase::AwaitingAccept {
            return Err(UsageError::NoPendingRequest.into());
        }
        reject.write_response(&mut s.out.buf)?;
        s.request = None;
        s.fail(Error::Handshake(HandshakeError::Rejected(reject.status())));
        Ok(())
    }

    /// Sends a text message, split into frames of at most
    /// [`Config::max_send_frame_size`].
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(Message::Text(text))
    }

    /// Sends a binary message, split into frames of at most
    /// [`Config::max_send_frame_size`].
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(Message::Binary(data))
    }

    /// Sends a whole message.
    pub fn send(&mut self, message: Message<'_>) -> Result<(), Error> {
        let s = &mut self.inner;
        s.check_send()?;
        // A pong held back by backpressure goes before new data.
        s.out.flush_pending(s.config.write_buffer_high_water);
        if s.out.sending.is_some() {
            return Err(UsageError::MessageInProgress.into());
        }
        let data = message.as_bytes();
        let max_frame = s.config.max_send_frame_size;
        match s.compressor.as_deref_mut().filter(|c| c.wants(data.len())) {
            Some(compressor) => {
                s.compressed.clear();
                compressor.compress_into(data, true, &mut s.compressed);
                s.out.write_data(opcode_of(message.kind()), RSV1, &s.compressed, true, max_frame);
                s.compressed_sent();
            }
            None => s.out.write_data(opcode_of(message.kind()), 0, data, true, max_frame),
        }
        Ok(())
    }

    /// Sends one piece of a streamed message: the first call starts a
    /// message of `kind`, later calls continue it (with the same `kind`),
    /// and the call with `fin` ends it. Control frames may be sent between
    /// pieces. Text pieces may split characters; the message as a whole
    /// must be UTF-8, which is checked as it goes.
    pub fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<(), Error> {
        let s = &mut self.inner;
        s.check_send()?;
        // A pong held back by backpressure goes before new data.
        s.out.flush_pending(s.config.write_buffer_high_water);
        let (opcode, compressed, mut utf8) = match s.out.sending {
            Some((k, ..)) if k != kind => return Err(UsageError::KindMismatch.into()),
            Some((_, compressed, utf8)) => (OpCode::Continuation, compressed, utf8),
            None => {
                // Whether a streamed message is compressed is decided by its first chunk.
                let compressed = s.compressor.as_deref().is_some_and(|c| c.wants(data.len()));
                (opcode_of(kind), compressed, Utf8Validator::default())
            }
        };
        if kind == MessageKind::Text && (utf8.feed(data).is_err() || (fin && !utf8.is_complete())) {
            return Err(UsageError::InvalidUtf8.into());
        }
        let max_frame = s.config.max_send_frame_size;
        let rsv = if compressed && opcode != OpCode::Continuation { RSV1 } else { 0 };
        match s.compressor.as_deref_mut().filter(|_| compressed) {
            Some(compressor) => {
                s.compressed.clear();
                compressor.compress_into(data, fin, &mut s.compressed);
                s.out.write_data(opcode, rsv, &s.compressed, fin, max_frame);
                s.compressed_sent();
            }
            None => s.out.write_data(opcode, 0, data, fin, max_frame),
        }
        s.out.sending = if fin { None } else { Some((kind, compressed, utf8)) };
        Ok(())
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_control(OpCode::Ping, payload)
    }

    /// Sends an unsolicited pong (a unidirectional heartbeat, RFC 6455 §5.5.3).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send_control(OpCode::Pong, payload)
    }

    fn send_control(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), Error> {
        let s = &mut self.inner;
        if payload.len() > MAX_CONTROL_PAYLOAD {
            return Err(UsageError::ControlPayloadTooLong.into());
        }
        s.check_send()?;
        // A pong held back by backpressure goes before new data.
        s.out.flush_pending(s.config.write_buffer_high_water);
        s.out.write_frame(opcode, true, payload);
        Ok(())
    }

    /// Starts the closing handshake at time `now`: queues a close frame with
    /// `code` (one that [`CloseCode::is_sendable`], or
    /// [`CloseCode::NO_STATUS`] to send none) and `reason` (at most 123
    /// bytes). Messages keep arriving until the peer's close frame, or
    /// until [`Config::close_timeout`] passes.
    pub fn close(&mut self, now: Duration, code: CloseCode, reason: &str) -> Result<(), Error> {
        let s = &mut self.inner;
        match s.phase {
            Phase::Open => {}
            Phase::Closing | Phase::Closed => return Err(UsageError::Closing.into()),
            _ => return Err(UsageError::NotOpen.into()),
        }
        if !code.is_sendable() && code != CloseCode::NO_STATUS {
            return Err(UsageError::InvalidCloseCode(code.0).into());
        }
        if reason.len() > MAX_CONTROL_PAYLOAD - 2 || (code == CloseCode::NO_STATUS && !reason.is_empty()) {
            return Err(UsageError::CloseReasonTooLong.into());
        }
        s.tick(now);
        s.out.write_close(code, reason);
        s.phase = Phase::Closing;
        s.timers.close_deadline = Some(s.timers.clock.saturating_add(s.config.close_timeout));
        Ok(())
    }

    // ----- Outputs --------------------------------------------------------

    /// The next event, or `None` when more input is needed. Call it until it
    /// returns `None` after every input or action.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        let ready = match self.inner.stash.take() {
            Some(ready) => ready,
            None => self.advance()?,
        };
        let s = &mut self.inner;
        Some(match ready {
            Ready::Request => Event::Request(s.request.as_deref()?),
            Ready::Connected => Event::Connected(s.response.take()?),
            Ready::Message { kind, start, end, assembled, .. } => {
                let bytes = if assembled { &self.msg[start..end] } else { &self.rx[start..end] };
                match kind {
                    MessageKind::Binary => {
                        s.stats.messages_received += 1;
                        Event::Message(Message::Binary(bytes))
                    }
                    // The only pass for a frame that arrived whole; for text
                    // validated piece by piece, the pass that yields `&str`
                    // without `unsafe`.
                    MessageKind::Text => match crate::message::str_from_utf8(bytes) {
                        Some(text) => {
                            s.stats.messages_received += 1;
                            Event::Message(Message::Text(text))
                        }
                        None => {
                            s.fail(ProtocolError::InvalidUtf8.into());
                            s.closed_reported = true;
                            Event::Closed(s.closed?)
                        }
                    },
                }
            }
            Ready::Chunk { kind, start, end, fin, assembled } => {
                s.stats.messages_received += u64::from(fin);
                let data = if assembled { &self.msg[start..end] } else { &self.rx[start..end] };
                Event::Chunk(Chunk { kind, data, fin })
            }
            Ready::Ping { start, end } => Event::Ping(&self.rx[start..end]),
            Ready::Pong { start, end } => Event::Pong(&self.rx[start..end]),
            Ready::Close { start, end } => Event::Close(CloseFrame::parse(&self.rx[start..end]).ok()?),
            Ready::Closed => Event::Closed(s.closed?),
        })
    }

    /// Finds the next event like [`poll_event`](Self::poll_event) but returns
    /// only its kind, without borrowing; the next `poll_event` returns it.
    /// This lets a driver loop on I/O until, say, a message is ready, and
    /// then return the borrowed message.
    pub fn peek_event(&mut self) -> Option<EventKind> {
        if self.inner.stash.is_none() {
            self.inner.stash = self.advance();
        }
        // A peeked message must be returned as one: validate now what
        // `poll_event` would otherwise validate while building it.
        if let Some(Ready::Message { kind: MessageKind::Text, start, end, assembled, checked: false }) =
            self.inner.stash
        {
            let bytes = if assembled { &self.msg[start..end] } else { &self.rx[start..end] };
            if crate::message::str_from_utf8(bytes).is_none() {
                self.inner.fail(ProtocolError::InvalidUtf8.into());
                self.inner.closed_reported = true;
                self.inner.stash = Some(Ready::Closed);
            }
        }
        Some(match self.inner.stash? {
            Ready::Request => EventKind::Request,
            Ready::Connected => EventKind::Connected,
            Ready::Message { .. } => EventKind::Message,
            Ready::Chunk { .. } => EventKind::Chunk,
            Ready::Ping { .. } => EventKind::Ping,
            Ready::Pong { .. } => EventKind::Pong,
            Ready::Close { .. } => EventKind::Close,
            Ready::Closed => EventKind::Closed,
        })
    }

    /// The bytes waiting to be sent (empty if none). Report how many were
    /// sent with [`advance_transmit`](Self::advance_transmit).
    pub fn poll_transmit(&mut self) -> &[u8] {
        let out = &mut self.inner.out;
        out.flush_pending(self.inner.config.write_buffer_high_water);
        &out.buf[out.pos..]
    }

    /// Marks `n` bytes of [`poll_transmit`](Self::poll_transmit) as sent.
    pub fn advance_transmit(&mut self, n: usize) {
        let out = &mut self.inner.out;
        let n = n.min(out.buf.len() - out.pos);
        self.inner.stats.bytes_transmitted += n as u64;
        out.pos += n;
        if out.pos == out.buf.len() {
            let free = self.inner.free_now(self.inner.out.buf.capacity());
            self.inner.out.drained(free);
        }
    }

    /// Appends every byte waiting to be sent to `dest` and marks it sent.
    /// When `dest` is empty the buffers are swapped instead of copied.
    pub fn transmit_into(&mut self, dest: &mut Vec<u8>) {
        let out = &mut self.inner.out;
        out.flush_pending(self.inner.config.write_buffer_high_water);
        if dest.is_empty() && out.pos == 0 {
            self.inner.stats.bytes_transmitted += out.buf.len() as u64;
            core::mem::swap(dest, &mut out.buf);
            let free = self.inner.free_now(self.inner.out.buf.capacity());
            self.inner.out.drained(free);
        } else {
            dest.extend_from_slice(&out.buf[out.pos..]);
            let n = out.buf.len();
            self.advance_transmit(n);
        }
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do, on the caller's clock; `None` if no timer runs.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let s = &self.inner;
        let protocol = match s.phase {
            Phase::ServerHandshake | Phase::ClientHandshake | Phase::AwaitingAccept => s.timers.handshake_deadline,
            Phase::Open => match (s.idle_deadline(), s.ping_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            Phase::Closing => s.timers.close_deadline,
            Phase::Closed if s.awaiting_transport_close() => s.timers.close_deadline,
            Phase::Closed => None,
        };
        match (protocol, s.release_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    // ----- Getters --------------------------------------------------------

    /// This end's role.
    pub fn role(&self) -> Role {
        self.inner.role
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        match self.inner.phase {
            Phase::ServerHandshake | Phase::AwaitingAccept | Phase::ClientHandshake => State::Handshake,
            Phase::Open => State::Open,
            Phase::Closing => State::Closing,
            Phase::Closed => State::Closed,
        }
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.inner.protocol.as_deref()
    }

    /// Counters of bytes, frames and messages.
    pub fn stats(&self) -> Stats {
        self.inner.stats
    }

    /// The permessage-deflate parameters agreed in the handshake, if any.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.inner.compressor.as_deref().map(Compressor::params)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<&Closed> {
        self.inner.closed.as_ref()
    }

    /// Bytes queued for sending and not yet transmitted.
    pub fn buffered_amount(&self) -> usize {
        self.inner.out.buffered()
    }

    /// Whether there is something to transmit.
    pub fn wants_write(&self) -> bool {
        let out = &self.inner.out;
        out.buffered() > 0 || (out.pending_pong.is_some() && !self.inner.transport_dead)
    }

    /// Whether a message can be queued now: the connection is open and the
    /// send buffer is below [`Config::write_buffer_high_water`].
    pub fn is_writable(&self) -> bool {
        self.inner.check_send().is_ok()
    }

    /// Whether the caller should now close the transport: the connection is
    /// closed and everything was transmitted, and either this is the server
    /// (which closes TCP first, RFC 6455 §7.1.1), the connection failed, the
    /// peer already closed its side, or a client waited
    /// [`Config::close_timeout`] for the server to do so.
    pub fn is_finished(&self) -> bool {
        let s = &self.inner;
        s.phase == Phase::Closed
            && s.closed_reported
            && (s.transport_dead || (!self.wants_write() && !s.awaiting_transport_close()))
    }

    // ----- Receiving ------------------------------------------------------

    /// Processes buffered input until it yields an event or needs more.
    fn advance(&mut self) -> Option<Ready> {
        if self.inner.message.is_none() && self.msg.capacity() > 0 {
            self.msg.clear();
            if self.inner.free_now(self.msg.capacity()) {
                self.msg = Vec::new();
            }
        }
        loop {
            let step = match self.inner.phase {
                Phase::ServerHandshake | Phase::ClientHandshake => self.read_handshake(),
                Phase::AwaitingAccept => return None,
                Phase::Open | Phase::Closing => self.read_frame(),
                Phase::Closed => {
                    if self.inner.closed_reported {
                        self.release_input();
                        return None;
                    }
                    self.inner.closed_reported = true;
                    return Some(Ready::Closed);
                }
            };
            match step {
                Step::Ready(ready) => return Some(ready),
                Step::Continue => {}
                Step::NeedMore if self.inner.eof => {
                    let error = match self.inner.phase {
                        Phase::Open | Phase::Closing => Error::ConnectionLost,
                        _ => Error::Handshake(HandshakeError::Incomplete),
                    };
                    self.inner.fail(error);
                }
                Step::NeedMore => {
                    self.release_input();
                    return None;
                }
            }
        }
    }

    /// Frees the receive buffer once it holds nothing, unless it is small
    /// enough to keep ([`Config::retained_buffer_capacity`]).
    fn release_input(&mut self) {
        let s = &mut self.inner;
        if s.phase == Phase::Closed {
            s.rx_start = s.rx_end;
        }
        if s.rx_start == s.rx_end {
            s.rx_start = 0;
            s.rx_end = 0;
            if s.free_now(self.rx.capacity()) {
                self.rx = Vec::new();
            }
        }
    }

    /// Frees the drained buffers that are larger than
    /// [`Config::retained_buffer_capacity`]: called once the connection has
    /// been quiet for [`Config::buffer_release_delay`].
    fn release_idle_buffers(&mut self) {
        let s = &mut self.inner;
        s.release_at = None;
        let keep = s.config.retained_buffer_capacity;
        if s.rx_start == s.rx_end && s.stash.is_none() && self.rx.capacity() > keep {
            (s.rx_start, s.rx_end) = (0, 0);
            self.rx = Vec::new();
        }
        if s.message.is_none() && self.msg.capacity() > keep {
            self.msg = Vec::new();
        }
        if s.out.buffered() == 0 && s.out.buf.capacity() > keep {
            s.out.drained(true);
        }
        if s.compressed.capacity() > keep {
            s.compressed = Vec::new();
        }
        if let Some(compressor) = s.compressor.as_deref_mut().filter(|c| c.releasable() > keep) {
            compressor.release();
        }
        if let Some(decompressor) = s.decompressor.as_deref_mut().filter(|d| d.releasable() > keep) {
            decompressor.release();
        }
    }

    fn read_handshake(&mut self) -> Step {
        let s = &mut self.inner;
        let data = &self.rx[s.rx_start..s.rx_end];
        let found = s.scanner.find_end(data);
        s.stats.handshake_bytes_examined = s.scanner.work();
        let Some(len) = found else {
            if data.len() > s.config.max_handshake_size {
                s.fail_handshake(HandshakeError::TooLarge);
                return Step::Continue;
            }
            return Step::NeedMore;
        };
        if len > s.config.max_handshake_size {
            s.fail_handshake(HandshakeError::TooLarge);
            return Step::Continue;
        }
        let head = &data[..len];
        s.stats.handshake_bytes_examined += len as u64;
        let result = match s.client.as_deref() {
            None => Request::parse(head, s.config.max_headers).map(|request| {
                s.request = Some(Box::new(request));
                s.phase = Phase::AwaitingAccept;
                Ready::Request
            }),
            Some((handshake, accept)) => handshake
                .check_response(head, accept, s.config.max_headers, s.config.deflate.as_ref())
                .map(|response| {
                    s.protocol = response.protocol().map(Into::into);
                    if let (Some(params), Some(_)) = (response.deflate(), s.config.deflate.as_ref()) {
                        s.start_deflate(*params, Role::Client);
                    }
                    s.response = Some(Box::new(response));
                    s.client = None;
                    s.phase = Phase::Open;
                    s.timers.handshake_deadline = None;
                    Ready::Connected
                }),
        };
        s.rx_start += len;
        // The handshake's buffers are not kept for the connection's life.
        if s.rx_start == s.rx_end {
            (s.rx_start, s.rx_end) = (0, 0);
            self.rx = Vec::new();
        }
        s.out.release_on_drain = true;
        if s.out.buffered() == 0 {
            s.out.drained(true);
        }
        match result {
            Ok(ready) => Step::Ready(ready),
            Err(e) => {
                s.fail_handshake(e);
                Step::Continue
            }
        }
    }

    fn read_frame(&mut self) -> Step {
        let s = &mut self.inner;
        let frame = match s.frame {
            Some(frame) => frame,
            None => match FrameHeader::decode(&self.rx[s.rx_start..s.rx_end]) {
                Ok(None) => return Step::NeedMore,
                Err(e) => {
                    s.fail(e.into());
                    return Step::Continue;
                }
                Ok(Some((header, header_len))) => match s.start_frame(header, header_len) {
                    Ok(frame) => frame,
                    Err(e) => {
                        s.fail(e.into());
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
        let begin = s.rx_start + kept;
        let remaining = header.payload_len - frame.done;
        let n = (s.rx_end - begin).min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let payload = &mut self.rx[begin..begin + n];
        if let Some(key) = header.mask {
            apply_mask(payload, key, frame.done as usize);
        }
        let done = frame.done + n as u64;
        let complete = done == header.payload_len;
        let data = s.message.filter(|_| !header.opcode.is_control());
        if data.is_some_and(|m| m.compressed) {
            s.frame = Some(FrameState { done, ..frame });
            return self.read_compressed();
        }
        let text = data.is_some_and(|m| m.kind == MessageKind::Text);
        // Validate as bytes arrive, so a bad byte fails the connection at
        // once. A single frame that arrived whole is validated in one pass
        // when its event is built instead, since there is nothing to fail
        // earlier than that.
        let whole_at_once = frame.buffered && frame.done == 0 && complete;
        let text = text && !whole_at_once;
        if text && s.utf8.feed(payload).is_err() {
            s.fail(ProtocolError::InvalidUtf8.into());
            return Step::Continue;
        }
        s.frame = Some(FrameState { done, consumed: done, ..frame });
        let fin = complete && header.fin;
        if text && fin && !s.utf8.is_complete() {
            s.fail(ProtocolError::InvalidUtf8.into());
            return Step::Continue;
        }

        if frame.buffered {
            if !complete {
                return Step::NeedMore;
            }
            s.frame = None;
            let start = s.rx_start + frame.header_len;
            let end = start + header.payload_len as usize;
            s.rx_start = end;
            if header.opcode.is_control() {
                return s.control_frame(header.opcode, start, &self.rx[start..end]);
            }
            let kind = s.message.take().map_or(MessageKind::Binary, |m| m.kind);
            return Step::Ready(Ready::Message { kind, start, end, assembled: false, checked: !whole_at_once });
        }
        self.read_unbuffered(begin, n, complete, fin)
    }

    /// The rest of `read_frame` for an uncompressed data frame consumed as
    /// it arrives: `n` new payload bytes at `begin`.
    fn read_unbuffered(&mut self, begin: usize, n: usize, complete: bool, fin: bool) -> Step {
        let s = &mut self.inner;
        let kind = s.message.map_or(MessageKind::Binary, |m| m.kind);
        s.rx_start = begin + n;
        if complete {
            s.frame = None;
        }
        if s.config.streaming {
            if fin {
                s.message = None;
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
            s.message = None;
            return Step::Ready(Ready::Message { kind, start: 0, end: self.msg.len(), assembled: true, checked: true });
        }
        if complete { Step::Continue } else { Step::NeedMore }
    }

    /// Feeds the unmasked payload of a compressed message (and at its end
    /// the sync-flush tail) to the inflater. Output goes to `msg`: the whole
    /// message, bounded by `max_message_size` so that a small payload that
    /// inflates to gigabytes fails with 1009 before the limit is exceeded;
    /// or, when streaming, one chunk of at most [`INFLATE_CHUNK`] bytes.
    fn read_compressed(&mut self) -> Step {
        let s = &mut self.inner;
        let (Some(mut frame), Some(mut message), Some(decompressor)) =
            (s.frame, s.message, s.decompressor.as_deref_mut())
        else {
            return Step::NeedMore;
        };
        let streaming = s.config.streaming;
        let limit = s.config.max_message_size;
        let last_frame = frame.header.fin;
        if streaming {
            self.msg.clear();
        }
        let mut progressed = false;
        loop {
            if message.stream_ended {
                // A stream ended by a final block may be followed by padding
                // (RFC 7692 §7.2.3.4): the rest of the message is ignored,
                // while the inflater hands out what it still holds.
                let rest = (frame.done - frame.consumed) as usize;
                s.rx_start += rest;
                frame.consumed += rest as u64;
            }
            let pending = (frame.done - frame.consumed) as usize;
            let payload_in = frame.consumed == frame.header.payload_len;
            let input: &[u8] = if pending > 0 {
                &self.rx[s.rx_start..s.rx_start + pending]
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
                self.msg.reserve_exact(target - old);
            }
            self.msg.resize(old + room, 0);
            let result = decompressor.inflate(input, &mut self.msg[old..]);
            let Ok(out) = result else {
                self.msg.truncate(old);
                s.fail(ProtocolError::InvalidCompressedData.into());
                return Step::Continue;
            };
            self.msg.truncate(old + out.written);
            if from_tail {
                message.tail_fed += out.consumed as u8;
            } else {
                s.rx_start += out.consumed;
                frame.consumed += out.consumed as u64;
            }
            if message.kind == MessageKind::Text && s.utf8.feed(&self.msg[old..]).is_err() {
                s.fail(ProtocolError::InvalidUtf8.into());
                return Step::Continue;
            }
            if !streaming && self.msg.len() > limit {
                s.fail(ProtocolError::MessageTooLarge.into());
                return Step::Continue;
            }
            message.stream_ended |= out.ended;
            if out.consumed == 0 && out.written == 0 {
                break;
            }
            progressed = true;
        }
        let frame_done = frame.consumed == frame.header.payload_len;
        let tail_done = message.stream_ended || usize::from(message.tail_fed) == crate::deflate::TAIL.len();
        // Output that filled the chunk may not be all there is.
        let drained = !streaming || self.msg.len() < INFLATE_CHUNK;
        let fin = last_frame && frame_done && tail_done && drained;
        if fin && !message.stream_ended && !decompressor.at_block_boundary() {
            s.fail(ProtocolError::InvalidCompressedData.into());
            return Step::Continue;
        }
        if last_frame && frame_done && !fin && !progressed {
            // The inflater takes no more input, yet the message is not over.
            s.fail(ProtocolError::InvalidCompressedData.into());
            return Step::Continue;
        }
        s.frame = if frame_done && (!last_frame || fin) { None } else { Some(frame) };
        s.message = Some(message);
        if fin {
            s.message = None;
            decompressor.end_message(message.stream_ended);
            let state = decompressor.releasable();
            if s.free_now(state)
                && let Some(decompressor) = s.decompressor.as_deref_mut()
            {
                decompressor.release();
            }
            if message.kind == MessageKind::Text && !s.utf8.is_complete() {
                s.fail(ProtocolError::InvalidUtf8.into());
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
        if s.frame.is_none() || (last_frame && frame_done) { Step::Continue } else { Step::NeedMore }
    }
}

/// The most inflated output handed out in one chunk in streaming mode, and
/// the step in which the whole-message buffer grows while inflating.
const INFLATE_CHUNK: usize = 64 * 1024;

impl Inner {
    fn tick(&mut self, now: Duration) {
        self.timers.clock = self.timers.clock.max(now);
    }

    /// permessage-deflate was agreed: one codec half for each direction,
    /// with the level and threshold of `Config::deflate` or its defaults.
    fn start_deflate(&mut self, params: DeflateParams, role: Role) {
        let default = DeflateConfig::default();
        let config = self.config.deflate.as_ref().unwrap_or(&default);
        self.compressor = Some(Box::new(Compressor::new(params, role, config)));
        self.decompressor = Some(Box::new(Decompressor::new(params, role, config)));
    }

    /// A compressed piece was framed: the compressed-message buffer, and
    /// the compressor state if the message ended without leaving context,
    /// go now or once the connection is quiet, as `free_now` decides.
    fn compressed_sent(&mut self) {
        if self.free_now(self.compressed.capacity()) {
            self.compressed = Vec::new();
        }
        let state = self.compressor.as_deref().map_or(0, Compressor::releasable);
        if self.free_now(state)
            && let Some(compressor) = self.compressor.as_deref_mut()
        {
            compressor.release();
        }
    }

    /// Whether a drained buffer of `capacity` bytes goes now. Small ones
    /// stay; large ones stay while the connection is busy and are freed by
    /// `handle_timeout` after `buffer_release_delay` without traffic.
    fn free_now(&mut self, capacity: usize) -> bool {
        if capacity <= self.config.retained_buffer_capacity {
            return false;
        }
        match self.config.buffer_release_delay {
            None => true,
            Some(delay) => {
                self.release_at = Some(self.timers.clock.saturating_add(delay));
                false
            }
        }
    }

    fn idle_deadline(&self) -> Option<Duration> {
        self.config.idle_timeout.map(|t| self.timers.last_recv.saturating_add(t))
    }

    fn ping_deadline(&self) -> Option<Duration> {
        let since = self.timers.last_recv.max(self.timers.last_ping);
        self.config.ping_interval.map(|i| since.saturating_add(i))
    }

    /// A client after a clean closing handshake waits for the server to
    /// close TCP first (RFC 6455 §7.1.1), for at most the close timeout.
    fn awaiting_transport_close(&self) -> bool {
        self.role == Role::Client
            && self.closed.is_some_and(|c| c.error.is_none())
            && !self.eof
            && !self.close_wait_over
            && !self.transport_dead
    }

    fn check_send(&self) -> Result<(), Error> {
        match self.phase {
            Phase::Open => {}
            Phase::Closing | Phase::Closed => return Err(UsageError::Closing.into()),
            _ => return Err(UsageError::NotOpen.into()),
        }
        if self.out.buffered() >= self.config.write_buffer_high_water {
            return Err(Error::WriteBufferFull);
        }
        Ok(())
    }

    /// Checks a new frame header against the rules that need context
    /// (RFC 6455 §5.1–§5.5) and the configured limits, before any of its
    /// payload is looked at.
    fn start_frame(&mut self, header: FrameHeader, header_len: usize) -> Result<FrameState, ProtocolError> {
        self.stats.frames_received += 1;
        match (self.role, header.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
            _ => {}
        }
        // RSV1 marks the first frame of a compressed message, and only that,
        // once permessage-deflate is negotiated (RFC 7692 §6).
        let compressed = header.rsv & RSV1 != 0;
        let rsv1_allowed = self.decompressor.is_some() && matches!(header.opcode, OpCode::Text | OpCode::Binary);
        if header.rsv & !RSV1 != 0 || (compressed && !rsv1_allowed) {
            return Err(ProtocolError::ReservedBits);
        }
        let len = header.payload_len;
        let streaming = self.config.streaming;
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
                        tail_fed: 0,
                        stream_ended: false,
                    }
                }
            };
            if len > self.config.max_frame_size as u64 {
                return Err(ProtocolError::FrameTooLarge);
            }
            let total = message.len + len;
            if !streaming && total > self.config.max_message_size as u64 {
                return Err(ProtocolError::MessageTooLarge);
            }
            if message.fragments >= self.config.max_fragments {
                return Err(ProtocolError::TooManyFragments);
            }
            self.message = Some(MessageState { len: total, fragments: message.fragments + 1, ..message });
        }
        let buffered = header.opcode.is_control()
            || (!streaming && header.fin && header.opcode != OpCode::Continuation && !compressed);
        if !buffered {
            self.rx_start += header_len;
        }
        Ok(FrameState { header, buffered, header_len, done: 0, consumed: 0 })
    }

    /// Acts on a complete control frame whose payload is `payload`, found at
    /// `start` in the receive buffer.
    fn control_frame(&mut self, opcode: OpCode, start: usize, payload: &[u8]) -> Step {
        let end = start + payload.len();
        match opcode {
            OpCode::Ping => {
                if self.phase == Phase::Open {
                    self.out.queue_pong(payload, self.config.write_buffer_high_water);
                }
                Step::Ready(Ready::Ping { start, end })
            }
            OpCode::Pong => Step::Ready(Ready::Pong { start, end }),
            _ => match CloseFrame::parse(payload) {
                Err(e) => {
                    self.fail(e.into());
                    Step::Continue
                }
                Ok(frame) => {
                    if !self.out.close_sent {
                        // Echo the code, not the reason (RFC 6455 §5.5.1).
                        self.out.write_close(frame.code, "");
                    }
                    self.phase = Phase::Closed;
                    self.frame = None;
                    self.message = None;
                    self.closed = Some(Closed { code: frame.code, clean: true, error: None });
                    self.timers.close_deadline = Some(self.timers.clock.saturating_add(self.config.close_timeout));
                    Step::Ready(Ready::Close { start, end })
                }
            },
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): sends a close frame with the
    /// error's code if the WebSocket was open and none was sent yet, and
    /// goes to `Closed`. The [`Event::Closed`] carries the error.
    fn fail(&mut self, error: Error) {
        if self.phase == Phase::Closed {
            return;
        }
        let established = matches!(self.phase, Phase::Open | Phase::Closing);
        let sends_close = matches!(error, Error::Protocol(_) | Error::Timeout(Timeout::Idle));
        if established && sends_close && !self.out.close_sent && !self.transport_dead {
            let reason = match error {
                Error::Protocol(e) => e.reason(),
                _ => "idle timeout",
            };
            self.out.write_close(error.close_code(), reason);
        }
        self.phase = Phase::Closed;
        self.frame = None;
        self.message = None;
        self.request = None;
        self.client = None;
        self.closed = Some(Closed { code: error.close_code(), clean: false, error: Some(error) });
    }

    /// Fails the handshake; a server answers with the error's HTTP status.
    fn fail_handshake(&mut self, error: HandshakeError) {
        if self.role == Role::Server {
            write_handshake_error(error, &mut self.out.buf);
        }
        self.fail(Error::Handshake(error));
    }
}

fn opcode_of(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}
