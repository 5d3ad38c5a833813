//! The connection state machine: composes the handshake, frame, message and
//! deflate layers into one sans-IO [`Connection`] for either role.
//!
//! The connection is two halves and a small cell between them: the receive
//! half (`recv.rs`) parses, checks and hands out what arrives; the send half
//! (`send.rs`) frames what the caller sends and hands out bytes to transmit;
//! the shared cell (`shared.rs`) holds where the connection is in its life,
//! the error that failed it, and the control frames the receive path owes
//! the peer (pongs, the answer to a close, the close of a failure), which
//! the send half puts first at its next frame boundary. A whole
//! `Connection` owns all three; [`Connection::split`] hands the halves to
//! two tasks.

mod buf;
mod event;
mod handshake;
#[cfg(feature = "bytes")]
mod prepared;
mod recv;
mod send;
mod shared;
#[cfg(feature = "std")]
mod split;

use alloc::boxed::Box;
use core::fmt;
use core::time::Duration;

pub use event::{Chunk, Closed, Event, EventKind, State, Stats};
#[cfg(feature = "bytes")]
pub use event::{OwnedChunk, OwnedEvent};
#[cfg(feature = "bytes")]
pub use prepared::PreparedMessage;
#[cfg(feature = "std")]
pub use split::{RecvHalf, ReuniteError, SendHalf};

use self::handshake::Handshake;
use self::recv::{Ready, Recv};
use self::send::Send;
use self::shared::{Shared, min_opt};
use crate::close::CloseCode;
use crate::config::Config;
use crate::deflate::{Compressor, Decompressor, DeflateParams};
use crate::error::{Error, UsageError};
use crate::frame::OpCode;
use crate::handshake::{Accept, ClientHandshake, Reject, Request, Response};
use crate::message::{Message, MessageKind};
use crate::rng::MaskRng;
use crate::role::Role;

/// A WebSocket connection, client or server, as a pure state machine.
///
/// It never reads a socket or a clock: the caller feeds it the bytes that
/// arrived and the current time, and takes from it the events to handle and
/// the bytes to send. Methods come in four groups:
///
/// * **Inputs**: [`receive`](Self::receive) (or
///   [`receive_buffer`](Self::receive_buffer) +
///   [`commit_received`](Self::commit_received) to read straight into the
///   connection; check [`wants_read`](Self::wants_read) first),
///   [`handle_timeout`](Self::handle_timeout),
///   [`handle_eof`](Self::handle_eof),
///   [`handle_transport_error`](Self::handle_transport_error).
/// * **User actions**: [`send_text`](Self::send_text),
///   [`send_binary`](Self::send_binary), [`send_chunk`](Self::send_chunk),
///   [`send_ping`](Self::send_ping), [`send_pong`](Self::send_pong),
///   [`close`](Self::close), [`set_streaming`](Self::set_streaming); on a
///   server [`accept`](Self::accept) or [`reject`](Self::reject); with the
///   `bytes` feature `send_owned` and `send_prepared`.
/// * **Outputs**: [`poll_event`](Self::poll_event) (or `poll_owned` with
///   the `bytes` feature), [`peek_event`](Self::peek_event),
///   [`poll_transmit`](Self::poll_transmit) (or
///   [`poll_transmit_slices`](Self::poll_transmit_slices) for a vectored
///   write) + [`advance_transmit`](Self::advance_transmit) (or
///   [`transmit_into`](Self::transmit_into)),
///   [`poll_timeout`](Self::poll_timeout).
/// * **Getters**: [`state`](Self::state), [`role`](Self::role),
///   [`protocol`](Self::protocol), [`closed`](Self::closed),
///   [`buffered_amount`](Self::buffered_amount),
///   [`wants_write`](Self::wants_write), [`wants_read`](Self::wants_read),
///   [`is_writable`](Self::is_writable), [`is_finished`](Self::is_finished),
///   [`stats`](Self::stats).
///
/// # The drive loop
///
/// Mutate, then drain: after every input, action or transmission, drain
/// [`poll_event`](Self::poll_event) until it returns `None`, send what
/// [`poll_transmit`](Self::poll_transmit) returns, and wait for more input
/// (while [`wants_read`](Self::wants_read)) or for
/// [`poll_timeout`](Self::poll_timeout). Stop once
/// [`is_finished`](Self::is_finished) says to close the transport.
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
/// assert_eq!(server.receive(now, &wire), wire.len());
/// wire.clear();
/// while let Some(event) = server.poll_event() {
///     if let Event::Request(_) = event {
///         server.accept(&wscore::Accept::new())?;
///     }
/// }
/// server.transmit_into(&mut wire); // the 101 response
/// assert_eq!(client.receive(now, &wire), wire.len());
/// wire.clear();
/// assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
///
/// client.send_text("hello")?;
/// client.transmit_into(&mut wire);
/// assert_eq!(server.receive(now, &wire), wire.len());
/// assert!(matches!(server.poll_event(), Some(Event::Message(Message::Text("hello")))));
/// # Ok::<(), wscore::Error>(())
/// ```
///
/// # Errors stay
///
/// Once the connection has failed, every action returns the error that
/// failed it, the same value as [`Closed::error`]: an adapter's `send`
/// reports "unmasked frame", not "closing".
pub struct Connection {
    config: Config,
    recv: Recv,
    send: Send,
    shared: Shared,
    /// The opening handshake, while it runs.
    handshake: Option<Box<Handshake>>,
    /// A response waiting to be handed out in `Connected` or `Rejected`.
    response: Option<Box<Response>>,
    protocol: Option<Box<str>>,
    deflate: Option<DeflateParams>,
    handshake_bytes_examined: u64,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.shared.role)
            .field("state", &self.shared.state())
            .field("buffered_in", &(self.recv.end - self.recv.start))
            .field("buffered_out", &self.send.buffered())
            .finish_non_exhaustive()
    }
}

impl Connection {
    // ----- Construction -------------------------------------------------

    /// A client that will send the upgrade request described by
    /// `handshake`. The request is ready in [`poll_transmit`](Self::poll_transmit).
    pub fn client(handshake: ClientHandshake, config: Config, now: Duration) -> Result<Self, Error> {
        let mut conn = Self::new(Role::Client, false, config, now)?;
        let entropy = conn.config.entropy.ok_or(UsageError::NoEntropy)?;
        let state = Handshake::client(handshake, entropy, &conn.config, &mut conn.send);
        conn.handshake = Some(Box::new(state));
        Ok(conn)
    }

    /// A server that waits for an upgrade request.
    pub fn server(config: Config, now: Duration) -> Result<Self, Error> {
        let mut conn = Self::new(Role::Server, false, config, now)?;
        conn.handshake = Some(Box::new(Handshake::server()));
        Ok(conn)
    }

    /// A connection whose handshake another stack already performed (an HTTP
    /// server that handed over the upgraded stream, or an HTTP/2 stream per
    /// RFC 8441): it starts open and speaks frames only.
    pub fn frames_only(role: Role, config: Config, now: Duration) -> Result<Self, Error> {
        Self::new(role, true, config, now)
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
        let mut conn = Self::new(role, true, config, now)?;
        conn.start_deflate(params);
        Ok(conn)
    }

    fn new(role: Role, open: bool, config: Config, now: Duration) -> Result<Self, Error> {
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
        Ok(Self {
            recv: Recv::new(role, &config),
            send: Send::new(mask),
            shared: Shared::new(role, open, &config, now),
            config,
            handshake: None,
            response: None,
            protocol: None,
            deflate: None,
            handshake_bytes_examined: 0,
        })
    }

    /// permessage-deflate was agreed: each half gets its codec.
    fn start_deflate(&mut self, params: DeflateParams) {
        let config = self.config.deflate.clone().unwrap_or_default();
        let role = self.shared.role;
        self.send.compressor = Some(Box::new(Compressor::new(params, role, &config)));
        self.recv.inflater = Some(Box::new(Decompressor::new(params, role, &config)));
        self.deflate = Some(params);
    }

    // ----- Inputs ---------------------------------------------------------

    /// How many more bytes the connection takes now.
    fn room(&self) -> usize {
        if self.shared.transport_dead || self.shared.eof {
            return 0;
        }
        let discarding = Recv::discarding(&self.shared);
        self.recv.room(&self.config, discarding, self.handshake.is_some())
    }

    /// Hands the connection bytes that arrived from the peer, at time `now`,
    /// and returns how many it took: all of them unless that would leave
    /// more than [`Config::max_unprocessed_input`] bytes unprocessed (while
    /// an event waits to be taken, say), or unless they end a frame and go
    /// on into a large one that would not fit after it in the receive
    /// buffer: then they are taken up to the end of the first frame, and the
    /// rest, offered again after draining, lands at the front of the
    /// emptied buffer instead of being moved there later. Keep the rest and
    /// offer it again after draining [`poll_event`](Self::poll_event).
    /// Nothing is processed until `poll_event` is called, so bytes that
    /// follow the handshake in the same read are kept.
    #[must_use = "the connection may take only part of the input"]
    pub fn receive(&mut self, now: Duration, data: &[u8]) -> usize {
        self.take_input(now, data, false)
    }

    /// [`receive`](Self::receive) without stopping at a frame's end: all
    /// the room allows, for an adapter whose read buffer is gone after the
    /// call.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn receive_all(&mut self, now: Duration, data: &[u8]) -> usize {
        self.take_input(now, data, true)
    }

    /// [`receive`](Self::receive), stopping at a frame's end unless `whole`.
    fn take_input(&mut self, now: Duration, data: &[u8], whole: bool) -> usize {
        let n = self.recv.receive(data, self.room(), &self.config, self.handshake.is_none(), whole);
        self.received(now, n);
        n
    }

    /// Spare room for up to `want` bytes at the end of the receive buffer,
    /// to read into directly; report how much was filled with
    /// [`commit_received`](Self::commit_received). Saves the copy that
    /// [`receive`](Self::receive) makes. The room is smaller, or empty,
    /// when the bound on unprocessed input says so (see
    /// [`wants_read`](Self::wants_read)).
    pub fn receive_buffer(&mut self, want: usize) -> &mut [u8] {
        let room = self.room();
        self.recv.receive_buffer(want, room)
    }

    /// Records that `n` bytes were written into [`receive_buffer`](Self::receive_buffer)
    /// at time `now`. `n` is capped at the room that was offered.
    pub fn commit_received(&mut self, now: Duration, n: usize) {
        let n = self.recv.commit(n);
        self.received(now, n);
    }

    fn received(&mut self, now: Duration, n: usize) {
        let s = &mut self.shared;
        s.tick(now);
        if n > 0 {
            s.timers.last_recv = now.max(s.timers.last_recv);
        }
        if Recv::discarding(s) {
            // Nothing more is delivered; don't let a peer fill memory.
            self.recv.discard(&mut &mut self.shared);
        }
    }

    /// Whether to read from the transport now: the connection is not
    /// finished and has room for input. False while the bound on
    /// unprocessed input is reached (drain [`poll_event`](Self::poll_event)
    /// first), so a peer cannot make it buffer without bound.
    pub fn wants_read(&self) -> bool {
        !self.is_finished() && self.room() > 0
    }

    /// The peer closed its side of the transport (a read returned 0 bytes).
    /// Bytes already received are still processed; if they end before the
    /// closing handshake, the connection closes with 1006
    /// ([`Error::ConnectionLost`]), which is reported, never sent.
    pub fn handle_eof(&mut self) {
        self.shared.eof = true;
    }

    /// The transport failed (a write or read returned an error): nothing
    /// more can be sent or received. The connection closes with
    /// [`Error::ConnectionLost`] unless it already was closed.
    pub fn handle_transport_error(&mut self) {
        let s = &mut self.shared;
        s.transport_dead = true;
        self.send.clear();
        self.recv.drop_input();
        s.owed = Default::default();
        s.fail(Error::ConnectionLost, "");
        self.handshake = None;
    }

    /// Runs the timers due at `now`: heartbeat pings, the idle, handshake and
    /// close timeouts, and the release of idle buffers. Call it when
    /// [`poll_timeout`](Self::poll_timeout)'s instant has passed (calling it
    /// early is harmless).
    pub fn handle_timeout(&mut self, now: Duration) {
        self.shared.tick(now);
        if self.recv.release.due(now) {
            self.recv.release_idle(&self.config, now);
        }
        if self.send.release.due(now) {
            self.send.release_idle(&self.config, now);
        }
        if self.handshake.is_some() {
            if self.shared.timers.handshake.is_some_and(|d| now >= d) {
                self.handshake_timed_out();
            }
            return;
        }
        self.shared.handle_timeout(now, self.config.ping_interval, self.config.idle_timeout);
    }

    // ----- User actions ---------------------------------------------------

    /// Server: accepts the pending [`Event::Request`], choosing a subprotocol
    /// and adding headers as `accept` says. The 101 response is queued.
    pub fn accept(&mut self, accept: &Accept<'_>) -> Result<(), Error> {
        let params = handshake::accept(self, accept)?;
        if let Some(params) = params {
            self.start_deflate(params);
        }
        Ok(())
    }

    /// Server: rejects the pending [`Event::Request`] with the HTTP response
    /// `reject` describes. The response is queued and the connection closes
    /// once it is transmitted (after lingering for the client to close).
    pub fn reject(&mut self, reject: &Reject<'_>) -> Result<(), Error> {
        handshake::reject(self, reject)
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

    /// Sends a whole message. Fails with [`Error::WriteBufferFull`] while
    /// [`Config::write_buffer_high_water`] bytes or more wait to be
    /// transmitted.
    pub fn send(&mut self, message: Message<'_>) -> Result<(), Error> {
        self.send.send(&self.config, &mut &mut self.shared, message)
    }

    /// Sends one piece of a streamed message: the first call starts a
    /// message of `kind`, later calls continue it (with the same `kind`),
    /// and the call with `fin` ends it. Control frames may be sent between
    /// pieces. Text pieces may split characters; the message as a whole
    /// must be UTF-8, which is checked as it goes.
    pub fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<(), Error> {
        self.send.send_chunk(&self.config, &mut &mut self.shared, kind, data, fin)
    }

    /// Sends a ping with up to 125 bytes of payload.
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send.send_control(&self.config, &mut &mut self.shared, OpCode::Ping, payload)
    }

    /// Sends an unsolicited pong (a unidirectional heartbeat, RFC 6455 §5.5.3).
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send.send_control(&self.config, &mut &mut self.shared, OpCode::Pong, payload)
    }

    /// Starts the closing handshake at time `now`: queues a close frame with
    /// `code` (one that [`CloseCode::is_sendable`], or
    /// [`CloseCode::NO_STATUS`] to send none) and `reason` (at most 123
    /// bytes). Messages keep arriving until the peer's close frame, or
    /// until [`Config::close_timeout`] passes.
    pub fn close(&mut self, now: Duration, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.shared.tick(now);
        self.send.close(&mut &mut self.shared, code, reason)
    }

    /// Chooses how messages that begin from now on are delivered: whole
    /// ([`Event::Message`], bounded by [`Config::max_message_size`], the
    /// default unless [`Config::streaming`] is set) or as chunks as they
    /// arrive ([`Event::Chunk`], never holding more than one read's worth of
    /// payload). A message already begun keeps its mode, so a whole-message
    /// reader and a chunk reader can take turns on one connection.
    pub fn set_streaming(&mut self, streaming: bool) {
        self.recv.streaming = streaming;
    }

    // ----- Outputs --------------------------------------------------------

    /// The next event, or `None` when more input is needed. Call it until it
    /// returns `None` after every input, action or transmission.
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        let ready = match self.recv.stash.take() {
            Some(ready) => ready,
            None => self.advance()?,
        };
        match ready {
            Ready::Request => Some(Event::Request(self.handshake.as_deref()?.request()?)),
            Ready::Connected => Some(Event::Connected(self.response.take()?)),
            Ready::Rejected => Some(Event::Rejected(self.response.take()?)),
            ready => self.recv.event(ready, &mut &mut self.shared),
        }
    }

    /// Finds the next event like [`poll_event`](Self::poll_event) but returns
    /// only its kind, without borrowing; the next `poll_event` (or
    /// `poll_owned`) returns it. This lets a driver loop on I/O until, say,
    /// a message is ready, and then return the borrowed message. Timers and
    /// more input may come in between: the peeked event stays valid.
    pub fn peek_event(&mut self) -> Option<EventKind> {
        if self.recv.stash.is_none() {
            self.recv.stash = self.advance();
        }
        self.recv.check_peeked(&mut &mut self.shared);
        Some(match self.recv.stash? {
            Ready::Request => EventKind::Request,
            Ready::Connected => EventKind::Connected,
            Ready::Rejected => EventKind::Rejected,
            Ready::Message { .. } => EventKind::Message,
            Ready::Chunk { .. } => EventKind::Chunk,
            Ready::Ping { .. } => EventKind::Ping,
            Ready::Pong { .. } => EventKind::Pong,
            Ready::Close { .. } => EventKind::Close,
            Ready::Closed => EventKind::Closed,
        })
    }

    /// Processes buffered input until it yields an event or needs more.
    fn advance(&mut self) -> Option<Ready> {
        if self.handshake.is_some() {
            return handshake::advance(self);
        }
        self.recv.advance(&self.config, &mut &mut self.shared)
    }

    /// The bytes to send next (empty if none): owed control frames first,
    /// then what was queued. Report how many were sent with
    /// [`advance_transmit`](Self::advance_transmit).
    pub fn poll_transmit(&mut self) -> &[u8] {
        self.send.poll_transmit(&mut &mut self.shared)
    }

    /// Fills `slices` with up to `slices.len()` pieces to send next, in
    /// order, for a vectored write (header, shared payload, next header,
    /// ...); returns how many it filled. Report how many bytes were sent
    /// with [`advance_transmit`](Self::advance_transmit).
    pub fn poll_transmit_slices<'a>(&'a mut self, slices: &mut [&'a [u8]]) -> usize {
        self.send.poll_transmit_slices(&mut &mut self.shared, slices)
    }

    /// Marks `n` bytes of [`poll_transmit`](Self::poll_transmit) as sent.
    /// Drain [`poll_event`](Self::poll_event) afterwards: the transmission
    /// of our close frame may complete the closing handshake.
    pub fn advance_transmit(&mut self, n: usize) {
        self.send.advance_transmit(&self.config, &mut &mut self.shared, n);
    }

    /// Appends every byte waiting to be sent to `dest` and marks it sent.
    pub fn transmit_into(&mut self, dest: &mut alloc::vec::Vec<u8>) {
        loop {
            let out = self.poll_transmit();
            if out.is_empty() {
                return;
            }
            let n = out.len();
            dest.extend_from_slice(out);
            self.advance_transmit(n);
        }
    }

    /// The next instant at which [`handle_timeout`](Self::handle_timeout)
    /// has work to do, on the caller's clock; `None` if no timer runs.
    /// Once the connection has closed, the buffers wait for it to be
    /// dropped: no timer runs to free them.
    pub fn poll_timeout(&self) -> Option<Duration> {
        let protocol = self.shared.poll_timeout(self.config.ping_interval, self.config.idle_timeout);
        if self.shared.closed.is_some() {
            return protocol;
        }
        min_opt(protocol, min_opt(self.recv.release.at, self.send.release.at))
    }

    // ----- Getters --------------------------------------------------------

    /// This end's role.
    pub fn role(&self) -> Role {
        self.shared.role
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> State {
        self.shared.state()
    }

    /// The subprotocol agreed in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// Server: the upgrade request waiting for [`accept`](Self::accept) or
    /// [`reject`](Self::reject), if any.
    pub fn request(&self) -> Option<&Request> {
        self.handshake.as_deref()?.request()
    }

    /// Counters of bytes, frames and messages.
    pub fn stats(&self) -> Stats {
        Stats {
            bytes_received: self.recv.bytes_received,
            bytes_transmitted: self.send.bytes_transmitted,
            frames_received: self.recv.frames_received,
            messages_received: self.recv.messages_received,
            handshake_bytes_examined: self.handshake_bytes_examined,
        }
    }

    /// The permessage-deflate parameters agreed in the handshake, if any.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How the connection ended, once it has.
    pub fn closed(&self) -> Option<&Closed> {
        self.shared.closed.as_ref()
    }

    /// Received bytes the connection holds: unprocessed input and the frame
    /// being received. An adapter whose connection holds none can read into
    /// a scratch buffer and [`receive`](Self::receive) what came, so a
    /// connection parked on a read holds no receive buffer.
    pub fn buffered_input(&self) -> usize {
        self.recv.end - self.recv.start
    }

    /// Bytes of the frame being received that have not arrived yet (0 when
    /// none is in progress, or before its header has been looked at by
    /// [`poll_event`](Self::poll_event)). A frame delivered whole has room
    /// set aside for it (up to 16 × [`Config::max_unprocessed_input`]), so an
    /// adapter can ask [`receive_buffer`](Self::receive_buffer) for this
    /// much and read it in one call rather than in small pieces.
    pub fn frame_remaining(&self) -> usize {
        self.recv.frame_missing()
    }

    /// See `Recv::receive_spare`.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn receive_spare(&mut self, want: usize) -> (&mut bytes::BytesMut, usize) {
        let room = self.room();
        self.recv.receive_spare(want, room)
    }

    /// See `Recv::commit_appended`; `now` as in [`Self::commit_received`].
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn commit_appended(&mut self, now: Duration) {
        let n = self.recv.commit_appended();
        self.received(now, n);
    }

    /// Room at the end of the receive buffer that is there already.
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn spare_input_capacity(&self) -> usize {
        self.recv.spare_capacity()
    }

    /// Bytes queued for sending and not yet transmitted.
    pub fn buffered_amount(&self) -> usize {
        self.send.buffered()
    }

    /// Whether there is something to transmit: queued bytes, or control
    /// frames owed to the peer.
    pub fn wants_write(&self) -> bool {
        !self.send.is_empty() || (!self.shared.owed.is_empty() && !self.shared.transport_dead)
    }

    /// Whether a message can be queued now: the connection is open and the
    /// send buffer is below [`Config::write_buffer_high_water`].
    pub fn is_writable(&self) -> bool {
        self.shared.check_send().is_ok() && self.send.buffered() < self.config.write_buffer_high_water
    }

    /// Whether to shut down the write side of the transport now (a TCP
    /// half-close) and keep reading: the connection failed, or a server
    /// answered a bad request with an HTTP error, everything was
    /// transmitted, and the connection lingers until the peer closes too
    /// (see [`is_finished`](Self::is_finished)). The half-close tells the
    /// peer at once that nothing more comes; a peer reading until EOF, as
    /// an HTTP client does after `Connection: close`, then closes its side.
    pub fn wants_shutdown(&self) -> bool {
        let s = &self.shared;
        s.closed_reported && s.lingering() && !self.wants_write()
    }

    /// Whether the caller should now close the transport: the connection is
    /// closed, [`Event::Closed`] was returned and everything was
    /// transmitted, and no reason to keep reading remains. A server closes
    /// TCP first after a clean closing handshake (RFC 6455 §7.1.1); a client
    /// waits for it, at most [`Config::close_timeout`]; after a failure (or
    /// an HTTP error) both keep reading and discarding until the peer's
    /// close frame, EOF or the close timeout, so the peer gets our close
    /// code rather than a reset for data it was still sending.
    pub fn is_finished(&self) -> bool {
        let s = &self.shared;
        s.closed_reported
            && (s.transport_dead || (!self.wants_write() && !s.awaiting_transport_close() && !s.lingering()))
    }
}

#[cfg(feature = "bytes")]
impl Connection {
    /// Like [`poll_event`](Self::poll_event), with payloads owned instead of
    /// borrowed: each message is split off the receive buffer as shared
    /// bytes, not copied (see [`Payload`](crate::Payload)), so it can be
    /// kept, handed to another task or sent back with
    /// [`send_owned`](Self::send_owned).
    ///
    /// Inlined with the event's construction, so the payload is built where
    /// the caller holds the event: returned through memory, a payload
    /// written field by field and read back whole cannot be forwarded from
    /// the store buffer, which cost a small message a fifth of its time.
    #[inline]
    pub fn poll_owned(&mut self) -> Option<OwnedEvent<'_>> {
        let ready = match self.recv.stash.take() {
            Some(ready) => ready,
            None => self.advance()?,
        };
        match ready {
            Ready::Request => Some(OwnedEvent::Request(self.handshake.as_deref()?.request()?)),
            Ready::Connected => Some(OwnedEvent::Connected(self.response.take()?)),
            Ready::Rejected => Some(OwnedEvent::Rejected(self.response.take()?)),
            ready => self.recv.owned_event(ready, &mut &mut self.shared),
        }
    }

    /// Sends an owned message. On a server, an uncompressed payload of
    /// 2 KiB or more goes out as its frame header followed by the payload
    /// itself, shared, never copied (shorter ones are copied, which is
    /// cheaper); a client masks a copy, as it must.
    pub fn send_owned(&mut self, message: crate::message::OwnedMessage) -> Result<(), Error> {
        self.send.send_owned(&self.config, &mut &mut self.shared, message)
    }

    /// Queues a message prepared once for many connections (see
    /// [`PreparedMessage`]).
    pub fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.send.send_prepared(&self.config, &mut &mut self.shared, prepared)
    }
}
