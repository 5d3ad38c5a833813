//! Test harness shared by the integration tests: a [`Pair`] of connections,
//! client and server, wired to each other in memory under a virtual clock,
//! in the style of quinn-proto's test `Pair`.
//!
//! Nothing here sleeps or touches a socket. Bytes move only when a test calls
//! [`Pair::drive`] (or one of the finer-grained steps), and time moves only
//! when it calls [`Pair::advance_time`], so every test is deterministic.
//!
//! Events are copied out of the connections into owned [`Ev`] records as
//! they happen and queued per side ([`Endpoint::events`]); tests take them
//! with [`Pair::events`].
//!
//! ```text
//! let mut pair = Pair::new(Config::default(), Config::default());
//! pair.client.conn.send_text("hi")?;
//! pair.drive();
//! assert_eq!(pair.events(Side::Server), [Ev::Text("hi".into())]);
//! ```

// Each test crate uses a different part of the harness.
#![allow(dead_code, unreachable_pub)]

pub mod deflate_bits;

use std::collections::VecDeque;
use std::time::Duration;

use wscore::{
    Accept, ClientHandshake, CloseCode, Closed, Config, Connection, Event, Message, MessageKind, Reject, Request,
};

/// The URL every [`Pair`] client connects to, unless a test passes its own
/// [`ClientHandshake`].
pub const URL: &str = "ws://localhost/chat";

/// One end of a [`Pair`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The connection created with [`Connection::client`].
    Client,
    /// The connection created with [`Connection::server`].
    Server,
}

impl Side {
    /// The other end.
    pub fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// An owned copy of a [`wscore::Event`], so events can be collected and
/// compared after the connection's buffers have moved on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    /// [`Event::Request`]: the request's path and offered subprotocols (the
    /// full request is kept in [`Endpoint::request`]).
    Request { path: String, protocols: Vec<String> },
    /// [`Event::Connected`]: the response status and chosen subprotocol.
    Connected { status: u16, protocol: Option<String> },
    /// [`Event::Rejected`]: the refusal's status, `Retry-After` and body.
    Rejected { status: u16, retry_after: Option<String>, body: Vec<u8> },
    /// [`Event::Message`] with [`Message::Text`].
    Text(String),
    /// [`Event::Message`] with [`Message::Binary`].
    Binary(Vec<u8>),
    /// [`Event::Chunk`] (streaming mode).
    Chunk { kind: MessageKind, data: Vec<u8>, fin: bool },
    /// [`Event::Ping`].
    Ping(Vec<u8>),
    /// [`Event::Pong`].
    Pong(Vec<u8>),
    /// [`Event::Close`]: the peer's close frame.
    Close { code: CloseCode, reason: String },
    /// [`Event::Closed`]: always the last event of a connection.
    Closed(ClosedEv),
}

/// The parts of a [`Closed`] the tests compare (the reason is checked by
/// the tests about reasons).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosedEv {
    pub code: CloseCode,
    pub clean: bool,
    pub error: Option<wscore::Error>,
}

impl From<&Closed> for ClosedEv {
    fn from(closed: &Closed) -> Self {
        Self { code: closed.code, clean: closed.clean, error: closed.error }
    }
}

impl Ev {
    /// Copies a borrowed event into an owned record.
    pub fn from_event(event: Event<'_>) -> Self {
        match event {
            Event::Request(request) => Self::Request {
                path: request.path().to_owned(),
                protocols: request.protocols().map(str::to_owned).collect(),
            },
            Event::Connected(response) => {
                Self::Connected { status: response.status(), protocol: response.protocol().map(str::to_owned) }
            }
            Event::Rejected(response) => Self::Rejected {
                status: response.status(),
                retry_after: response.header("retry-after").map(|v| String::from_utf8_lossy(v).into_owned()),
                body: response.body().to_vec(),
            },
            Event::Message(Message::Text(text)) => Self::Text(text.to_owned()),
            Event::Message(Message::Binary(data)) => Self::Binary(data.to_vec()),
            Event::Chunk(chunk) => Self::Chunk { kind: chunk.kind, data: chunk.data.to_vec(), fin: chunk.fin },
            Event::Ping(payload) => Self::Ping(payload.to_vec()),
            Event::Pong(payload) => Self::Pong(payload.to_vec()),
            Event::Close(frame) => Self::Close { code: frame.code, reason: frame.reason.to_owned() },
            Event::Closed(closed) => Self::Closed(ClosedEv::from(&closed)),
            other => panic!("event the harness does not know: {other:?}"),
        }
    }

    /// A text message event.
    pub fn text(text: &str) -> Self {
        Self::Text(text.to_owned())
    }

    /// A binary message event.
    pub fn binary(data: &[u8]) -> Self {
        Self::Binary(data.to_vec())
    }

    /// The closing handshake's `Close` event with `code` and `reason`.
    pub fn close(code: u16, reason: &str) -> Self {
        Self::Close { code: CloseCode(code), reason: reason.to_owned() }
    }

    /// The `Closed` event of a clean closing handshake ending with `code`.
    pub fn closed_clean(code: u16) -> Self {
        Self::Closed(ClosedEv { code: CloseCode(code), clean: true, error: None })
    }

    /// The `Closed` event of a connection that failed with `error`.
    pub fn failed(error: wscore::Error) -> Self {
        Self::Closed(ClosedEv { code: error.close_code(), clean: false, error: Some(error) })
    }
}

/// Polls `conn` until it has no more events, returning them owned. Panics
/// if any event follows [`Event::Closed`].
pub fn drain(conn: &mut Connection) -> Vec<Ev> {
    let mut events = Vec::new();
    while let Some(event) = conn.poll_event() {
        let ev = Ev::from_event(event);
        assert!(!matches!(events.last(), Some(Ev::Closed(_))), "{ev:?} after Closed");
        events.push(ev);
    }
    events
}

std::thread_local! {
    /// What each connection "wrote to its socket" in [`drain_closing`], by
    /// the connection's address, until [`take_output`] takes it.
    static WRITTEN: std::cell::RefCell<std::collections::HashMap<usize, Vec<u8>>> = Default::default();
}

/// Like [`drain`], and when the peer's close arrived, transmits the answer
/// the connection queued, as a socket would at once, and drains again: our
/// close frame going out completes the closing handshake and brings
/// `Closed`. [`take_output`] returns what was transmitted.
pub fn drain_closing(conn: &mut Connection) -> Vec<Ev> {
    let mut events = drain(conn);
    if matches!(events.last(), Some(Ev::Close { .. })) {
        let mut written = Vec::new();
        conn.transmit_into(&mut written);
        let id = conn as *const Connection as usize;
        WRITTEN.with(|w| w.borrow_mut().entry(id).or_default().extend_from_slice(&written));
        events.extend(drain(conn));
    }
    events
}

/// Everything the connection sent: what [`drain_closing`] transmitted for
/// it, then whatever is still queued.
pub fn take_output(conn: &mut Connection) -> Vec<u8> {
    let id = conn as *const Connection as usize;
    let mut out = WRITTEN.with(|w| w.borrow_mut().remove(&id)).unwrap_or_default();
    conn.transmit_into(&mut out);
    out
}

/// Asserts the lingering close that follows a failure or an HTTP error:
/// everything was transmitted, the write side is to be shut down, and the
/// connection is finished once the peer closes its side.
pub fn assert_lingers_until_eof(conn: &mut Connection) {
    assert!(!conn.wants_write(), "transmitted");
    assert!(conn.wants_shutdown() && !conn.is_finished(), "lingering");
    assert!(conn.wants_read(), "reading while lingering");
    conn.handle_eof();
    assert!(conn.is_finished());
}

/// Joins streaming-mode [`Ev::Chunk`]s into whole [`Ev::Text`] or
/// [`Ev::Binary`] messages (at each chunk with `fin`), leaving every other
/// event in place. Panics if a message's chunks change kind or text is not
/// UTF-8, or if the events end inside a message.
pub fn join_chunks(events: &[Ev]) -> Vec<Ev> {
    let mut joined = Vec::new();
    let mut current: Option<(MessageKind, Vec<u8>)> = None;
    for ev in events {
        let Ev::Chunk { kind, data, fin } = ev else {
            joined.push(ev.clone());
            continue;
        };
        let (message_kind, buf) = current.get_or_insert_with(|| (*kind, Vec::new()));
        assert_eq!(message_kind, kind, "a message's chunks changed kind");
        buf.extend_from_slice(data);
        if *fin {
            let (kind, buf) = current.take().unwrap();
            joined.push(match kind {
                MessageKind::Text => Ev::Text(String::from_utf8(buf).expect("streamed text is UTF-8")),
                MessageKind::Binary => Ev::Binary(buf),
            });
        }
    }
    assert!(current.is_none(), "events end inside a streamed message");
    joined
}

/// One end of a [`Pair`]: its connection and what the harness observed.
pub struct Endpoint {
    /// The connection; tests call its user actions (`send_text`, `close`,
    /// ...) directly and then [`Pair::drive`].
    pub conn: Connection,
    /// Events collected so far and not yet taken by the test.
    pub events: VecDeque<Ev>,
    /// Server: the last upgrade request received (owned copy), so that it
    /// can be answered after the event has been collected.
    pub request: Option<Request>,
    /// Every byte this end has transmitted, delivered or dropped.
    pub sent: Vec<u8>,
    /// While set, bytes this end transmits are lost instead of delivered,
    /// as with a peer whose traffic no longer gets through.
    pub dropping: bool,
    /// Whether [`Ev::Closed`] was seen; no event may follow it.
    closed_seen: bool,
}

impl Endpoint {
    fn new(conn: Connection) -> Self {
        Self { conn, events: VecDeque::new(), request: None, sent: Vec::new(), dropping: false, closed_seen: false }
    }

    /// Collects every event the connection has ready into [`Self::events`].
    pub fn poll(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            if let Event::Request(request) = &event {
                self.request = Some((*request).clone());
            }
            let ev = Ev::from_event(event);
            assert!(!self.closed_seen, "{:?}: {ev:?} after Closed", self.conn.role());
            self.closed_seen |= matches!(ev, Ev::Closed(_));
            self.events.push_back(ev);
        }
    }

    /// Hands `bytes` to the connection, collecting events whenever it
    /// takes only part (its bound on unprocessed input), then once more.
    pub fn feed(&mut self, now: Duration, mut bytes: &[u8]) {
        loop {
            let n = self.conn.receive(now, bytes);
            bytes = &bytes[n..];
            self.poll();
            if bytes.is_empty() {
                return;
            }
            assert!(n > 0 || self.conn.wants_read() || self.conn.is_finished(), "the connection takes no input");
            if n == 0 && !self.conn.wants_read() {
                return;
            }
        }
    }

    /// Whether [`Ev::Closed`] has been produced (taken or not).
    pub fn closed_seen(&self) -> bool {
        self.closed_seen
    }
}

/// A client and a server connection talking to each other in memory under a
/// virtual clock.
pub struct Pair {
    /// The client end.
    pub client: Endpoint,
    /// The server end.
    pub server: Endpoint,
    /// The virtual clock, passed as `now` to every connection call.
    pub now: Duration,
    /// When set, bytes are delivered in pieces of at most this many bytes,
    /// with the receiver's events collected after each piece, like a TCP
    /// stream that returns short reads.
    pub segment: Option<usize>,
}

impl Pair {
    /// A connected pair: the client connects to [`URL`] with
    /// `client_config`, the server accepts with [`Accept::new`]. The
    /// handshake events (`Request`, `Connected`) are checked and discarded,
    /// so a test starts with empty event queues.
    pub fn new(client_config: Config, server_config: Config) -> Self {
        let handshake = ClientHandshake::new(URL).unwrap();
        let mut pair = Self::connect(handshake, client_config, server_config, |_| Ok(Accept::new()));
        assert!(matches!(pair.events(Side::Server).as_slice(), [Ev::Request { .. }]), "server saw the upgrade request");
        assert_eq!(pair.events(Side::Client), [Ev::Connected { status: 101, protocol: None }]);
        pair
    }

    /// Performs the handshake with `handshake` on the client; the server
    /// answers as `decide` says. Every event stays queued, so the test can
    /// check how the handshake went (a rejection, a protocol choice).
    pub fn connect<F>(handshake: ClientHandshake, client_config: Config, server_config: Config, decide: F) -> Self
    where
        F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
    {
        let mut pair = Self::unconnected(handshake, client_config, server_config);
        pair.drive();
        let request = pair.server.request.take().expect("the server received the upgrade request");
        match decide(&request) {
            Ok(accept) => pair.server.conn.accept(&accept).unwrap(),
            Err(reject) => pair.server.conn.reject(&reject).unwrap(),
        }
        pair.drive();
        pair
    }

    /// Both connections created at time zero, nothing moved yet: the
    /// client's upgrade request waits in its transmit buffer.
    pub fn unconnected(handshake: ClientHandshake, client_config: Config, server_config: Config) -> Self {
        let now = Duration::ZERO;
        Self {
            client: Endpoint::new(Connection::client(handshake, client_config, now).unwrap()),
            server: Endpoint::new(Connection::server(server_config, now).unwrap()),
            now,
            segment: None,
        }
    }

    /// The endpoint on `side`.
    pub fn endpoint(&mut self, side: Side) -> &mut Endpoint {
        match side {
            Side::Client => &mut self.client,
            Side::Server => &mut self.server,
        }
    }

    /// Takes the events collected on `side`.
    pub fn events(&mut self, side: Side) -> Vec<Ev> {
        self.endpoint(side).events.drain(..).collect()
    }

    /// Whether `side`'s connection says its transport may be closed.
    pub fn is_finished(&self, side: Side) -> bool {
        match side {
            Side::Client => self.client.conn.is_finished(),
            Side::Server => self.server.conn.is_finished(),
        }
    }

    /// Makes bytes sent by `from` get lost (`true`) or delivered again (`false`).
    pub fn set_dropping(&mut self, from: Side, dropping: bool) {
        self.endpoint(from).dropping = dropping;
    }

    /// One step: collects both sides' events, then moves everything `from`
    /// has queued to its peer (or drops it) and collects the peer's events.
    /// Returns whether `from` had anything to send.
    pub fn deliver(&mut self, from: Side) -> bool {
        self.client.poll();
        self.server.poll();
        let now = self.now;
        let segment = self.segment.unwrap_or(usize::MAX).max(1);
        let (sender, receiver) = match from {
            Side::Client => (&mut self.client, &mut self.server),
            Side::Server => (&mut self.server, &mut self.client),
        };
        let bytes = sender.conn.poll_transmit().to_vec();
        if bytes.is_empty() {
            return false;
        }
        sender.conn.advance_transmit(bytes.len());
        // Mutate, then drain: our close frame going out may complete the
        // closing handshake.
        sender.poll();
        sender.sent.extend_from_slice(&bytes);
        if !sender.dropping {
            for piece in bytes.chunks(segment) {
                receiver.feed(now, piece);
            }
        }
        true
    }

    /// Moves bytes both ways until neither side has anything to send,
    /// collecting events on the way.
    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            let client_sent = self.deliver(Side::Client);
            let server_sent = self.deliver(Side::Server);
            if !client_sent && !server_sent {
                return;
            }
        }
        panic!("the connections kept talking for 10000 rounds");
    }

    /// Hands `bytes` to `to` as if they had arrived from its peer, then
    /// collects its events (for raw or malformed input).
    pub fn inject(&mut self, to: Side, bytes: &[u8]) {
        let now = self.now;
        self.endpoint(to).feed(now, bytes);
    }

    /// The peer of `to` closed its side of the transport: `to` reads EOF.
    pub fn deliver_eof(&mut self, to: Side) {
        let endpoint = self.endpoint(to);
        endpoint.conn.handle_eof();
        endpoint.poll();
        self.drive();
    }

    /// Moves the virtual clock forward by `d`. Every deadline that falls
    /// within it fires in order: the clock stops at the deadline, the sides
    /// whose `poll_timeout` has passed get `handle_timeout`, and the pair
    /// is driven, so a reply (a pong) arrives at the time it was caused.
    pub fn advance_time(&mut self, d: Duration) {
        self.drive();
        let target = self.now + d;
        for _ in 0..100_000 {
            let next = [self.client.conn.poll_timeout(), self.server.conn.poll_timeout()].into_iter().flatten().min();
            match next {
                Some(deadline) if deadline <= target => {
                    self.now = self.now.max(deadline);
                    let now = self.now;
                    for endpoint in [&mut self.client, &mut self.server] {
                        if endpoint.conn.poll_timeout().is_some_and(|t| t <= now) {
                            endpoint.conn.handle_timeout(now);
                        }
                    }
                    self.drive();
                }
                _ => {
                    self.now = target;
                    return;
                }
            }
        }
        panic!("timers kept firing without the clock moving");
    }
}

/// A default [`Config`] changed by `f`, for one-line configurations.
pub fn config(f: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    f(&mut config);
    config
}

/// A frame as a client sends it: masked (with the RFC 6455 §5.7 example
/// key), the length minimally encoded. `first` is the first byte: FIN,
/// RSV and opcode.
pub fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=0xFFFF => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Hands all of `input` to `conn`, draining events whenever it takes only
/// part of it (its bound on unprocessed input), and returns the events.
pub fn feed_all(conn: &mut Connection, now: Duration, mut input: &[u8]) -> Vec<Ev> {
    let mut events = Vec::new();
    loop {
        let n = conn.receive(now, input);
        input = &input[n..];
        events.extend(drain(conn));
        if input.is_empty() {
            return events;
        }
        assert!(n > 0 || conn.wants_read(), "the connection takes no more input after {events:?}");
    }
}
