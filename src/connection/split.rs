//! A connection split into a receive half and a send half that two tasks
//! or threads drive apart (with the `std` feature).
//!
//! Each half owns its buffers and its codec (the inflater or the
//! compressor); between them is only the small shared cell, behind a mutex
//! that is held for a few field updates at a time, never across I/O,
//! compression or inflation. What the receive half owes the peer (pongs,
//! the answer to a close, the close of a failure) waits in that cell and
//! goes out with the send half's next transmission, at a frame boundary.

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::time::Duration;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::Connection;
use super::event::{Closed, Event, EventKind, State};
use super::recv::{Ready, Recv};
use super::send::Send;
use super::shared::{Access, Shared, min_opt};
use crate::close::CloseCode;
use crate::config::Config;
use crate::deflate::DeflateParams;
use crate::error::Error;
use crate::frame::OpCode;
use crate::handshake::Response;
use crate::message::{Message, MessageKind};
use crate::role::Role;

impl Access for &Mutex<Shared> {
    type Guard<'a>
        = MutexGuard<'a, Shared>
    where
        Self: 'a;
    fn lock(&mut self) -> MutexGuard<'_, Shared> {
        // A panic in the other half cannot leave the cell half-updated in a
        // way that matters more than the panic itself: keep going.
        Mutex::lock(self).unwrap_or_else(PoisonError::into_inner)
    }
}

/// The receive half of a split [`Connection`]: input in, events out.
///
/// Created by [`Connection::split`]; see there for the division of work.
#[derive(Debug)]
pub struct RecvHalf {
    config: Arc<Config>,
    recv: Recv,
    shared: Arc<Mutex<Shared>>,
    response: Option<Box<Response>>,
    protocol: Option<Box<str>>,
    deflate: Option<DeflateParams>,
    handshake_bytes_examined: u64,
}

/// The send half of a split [`Connection`]: messages in, bytes to transmit
/// out, including the control frames the receive half owes the peer.
///
/// Created by [`Connection::split`]; see there for the division of work.
#[derive(Debug)]
pub struct SendHalf {
    config: Arc<Config>,
    send: Send,
    shared: Arc<Mutex<Shared>>,
}

/// The halves given to [`RecvHalf::reunite`] came from different connections.
#[derive(Debug)]
pub struct ReuniteError(pub RecvHalf, pub SendHalf);

impl core::fmt::Display for ReuniteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("the halves belong to different connections")
    }
}

impl std::error::Error for ReuniteError {}

impl Connection {
    /// Splits the connection into a receive half and a send half that can
    /// be driven from two tasks or threads at once, once the opening
    /// handshake is over (it is given back otherwise).
    ///
    /// The receive half takes input and yields events; the send half takes
    /// messages and yields bytes to transmit. A ping that the receive half
    /// sees is answered by the send half's next transmission (check
    /// [`RecvHalf::owes_transmission`] to know when to wake the writer);
    /// an error either half meets fails both; timers run on either half.
    ///
    /// ```
    /// use core::time::Duration;
    /// use wscore::{Config, Connection, Event, Message, Role};
    ///
    /// let now = Duration::ZERO;
    /// let mut client = Connection::frames_only(Role::Client, Config::default(), now)?;
    /// let server = Connection::frames_only(Role::Server, Config::default(), now)?;
    /// let (mut rx, mut tx) = server.split().unwrap();
    ///
    /// // The writer sends on its own...
    /// tx.send_text("from the writer")?;
    /// let mut wire = Vec::new();
    /// tx.transmit_into(&mut wire);
    /// assert_eq!(client.receive(now, &wire), wire.len());
    /// assert!(matches!(client.poll_event(), Some(Event::Message(Message::Text("from the writer")))));
    ///
    /// // ...while the reader takes the client's ping and message.
    /// client.send_ping(b"are you there")?;
    /// client.send_text("to the reader")?;
    /// let mut wire = Vec::new();
    /// client.transmit_into(&mut wire);
    /// assert_eq!(rx.receive(now, &wire), wire.len());
    /// assert!(matches!(rx.poll_event(), Some(Event::Ping(b"are you there"))));
    /// assert!(matches!(rx.poll_event(), Some(Event::Message(Message::Text("to the reader")))));
    ///
    /// // The pong the reader owes goes out with the writer's next bytes.
    /// assert!(rx.owes_transmission() && tx.wants_write());
    /// let mut wire = Vec::new();
    /// tx.transmit_into(&mut wire);
    /// assert_eq!(client.receive(now, &wire), wire.len());
    /// assert!(matches!(client.poll_event(), Some(Event::Pong(b"are you there"))));
    ///
    /// let server = rx.reunite(tx).unwrap();
    /// assert_eq!(server.state(), wscore::State::Open);
    /// # Ok::<(), wscore::Error>(())
    /// ```
    // The error hands the connection back untouched, as `Arc::try_unwrap`
    // does; it happens once per connection, if ever.
    #[allow(clippy::result_large_err)]
    pub fn split(self) -> Result<(RecvHalf, SendHalf), Self> {
        if self.handshake.is_some() {
            return Err(self);
        }
        let config = Arc::new(self.config);
        let shared = Arc::new(Mutex::new(self.shared));
        let rx = RecvHalf {
            config: Arc::clone(&config),
            recv: self.recv,
            shared: Arc::clone(&shared),
            response: self.response,
            protocol: self.protocol,
            deflate: self.deflate,
            handshake_bytes_examined: self.handshake_bytes_examined,
        };
        Ok((rx, SendHalf { config, send: self.send, shared }))
    }
}

impl RecvHalf {
    fn cell(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts the halves back together.
    #[allow(clippy::result_large_err)]
    pub fn reunite(self, send: SendHalf) -> Result<Connection, ReuniteError> {
        if !Arc::ptr_eq(&self.shared, &send.shared) {
            return Err(ReuniteError(self, send));
        }
        drop(send.shared);
        let shared = Arc::try_unwrap(self.shared)
            .map(|m| m.into_inner().unwrap_or_else(PoisonError::into_inner))
            .unwrap_or_else(|arc| {
                // Unreachable: both halves' references were just consumed.
                let s = arc.lock().unwrap_or_else(PoisonError::into_inner);
                let mut copy = Shared::new(s.role, s.open, &Config::default(), s.timers.clock);
                copy.failure = Some(Error::ConnectionLost);
                copy
            });
        drop(send.config);
        let config = Arc::try_unwrap(self.config).unwrap_or_else(|arc| (*arc).clone());
        Ok(Connection {
            config,
            recv: self.recv,
            send: send.send,
            shared,
            handshake: None,
            response: self.response,
            protocol: self.protocol,
            deflate: self.deflate,
            handshake_bytes_examined: self.handshake_bytes_examined,
        })
    }

    fn room(&self) -> usize {
        let s = self.cell();
        if s.transport_dead || s.eof {
            return 0;
        }
        self.recv.room(&self.config, Recv::discarding(&s), false)
    }

    /// See [`Connection::receive`].
    #[must_use = "the connection may take only part of the input"]
    pub fn receive(&mut self, now: Duration, data: &[u8]) -> usize {
        self.take_input(now, data, false)
    }

    /// See [`Connection::receive_all`].
    #[cfg(any(feature = "tokio", feature = "futures-io"))]
    pub(crate) fn receive_all(&mut self, now: Duration, data: &[u8]) -> usize {
        self.take_input(now, data, true)
    }

    /// See `Connection::take_input`.
    fn take_input(&mut self, now: Duration, data: &[u8], whole: bool) -> usize {
        let room = self.room();
        let n = self.recv.receive(data, room, &self.config, true, whole);
        self.received(now, n);
        n
    }

    /// See [`Connection::receive_buffer`].
    pub fn receive_buffer(&mut self, want: usize) -> &mut [u8] {
        let room = self.room();
        self.recv.receive_buffer(want, room)
    }

    /// See [`Connection::commit_received`].
    pub fn commit_received(&mut self, now: Duration, n: usize) {
        let n = self.recv.commit(n);
        self.received(now, n);
    }

    fn received(&mut self, now: Duration, n: usize) {
        let discarding = {
            let mut s = self.cell();
            s.tick(now);
            if n > 0 {
                s.timers.last_recv = now.max(s.timers.last_recv);
            }
            Recv::discarding(&s)
        };
        if discarding {
            self.recv.discard(&mut &*self.shared);
        }
    }

    /// See [`Connection::buffered_input`].
    pub fn buffered_input(&self) -> usize {
        self.recv.end - self.recv.start
    }

    /// See [`Connection::frame_remaining`].
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

    /// See [`Connection::wants_read`].
    pub fn wants_read(&self) -> bool {
        !self.is_finished() && self.room() > 0
    }

    /// See [`Connection::handle_eof`].
    pub fn handle_eof(&mut self) {
        self.cell().eof = true;
    }

    /// Reading failed: the connection closes with
    /// [`Error::ConnectionLost`] unless it already was closed; the send
    /// half learns it at its next call.
    pub fn handle_transport_error(&mut self) {
        self.recv.drop_input();
        let mut s = self.cell();
        s.transport_dead = true;
        s.owed = Default::default();
        s.fail(Error::ConnectionLost, "");
    }

    /// Runs the timers due at `now` (see [`Connection::handle_timeout`]);
    /// either half may run the protocol timers.
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.recv.release.due(now) {
            self.recv.release_idle(&self.config, now);
        }
        self.cell().handle_timeout(now, self.config.ping_interval, self.config.idle_timeout);
    }

    /// See [`Connection::poll_timeout`].
    pub fn poll_timeout(&self) -> Option<Duration> {
        let s = self.cell();
        let protocol = s.poll_timeout(self.config.ping_interval, self.config.idle_timeout);
        if s.closed.is_some() {
            return protocol;
        }
        min_opt(protocol, self.recv.release.at)
    }

    /// See [`Connection::poll_event`].
    pub fn poll_event(&mut self) -> Option<Event<'_>> {
        let ready = match self.recv.stash.take() {
            Some(ready) => ready,
            None => self.recv.advance(&self.config, &mut &*self.shared)?,
        };
        match ready {
            Ready::Connected => Some(Event::Connected(self.response.take()?)),
            Ready::Rejected => Some(Event::Rejected(self.response.take()?)),
            ready => self.recv.event(ready, &mut &*self.shared),
        }
    }

    /// See [`Connection::poll_owned`].
    #[cfg(feature = "bytes")]
    #[inline]
    pub fn poll_owned(&mut self) -> Option<super::OwnedEvent<'_>> {
        let ready = match self.recv.stash.take() {
            Some(ready) => ready,
            None => self.recv.advance(&self.config, &mut &*self.shared)?,
        };
        match ready {
            Ready::Connected => Some(super::OwnedEvent::Connected(self.response.take()?)),
            Ready::Rejected => Some(super::OwnedEvent::Rejected(self.response.take()?)),
            ready => self.recv.owned_event(ready, &mut &*self.shared),
        }
    }

    /// See [`Connection::peek_event`].
    pub fn peek_event(&mut self) -> Option<EventKind> {
        if self.recv.stash.is_none() {
            self.recv.stash = self.recv.advance(&self.config, &mut &*self.shared);
        }
        self.recv.check_peeked(&mut &*self.shared);
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

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// See [`Connection::set_streaming`].
    pub fn set_streaming(&mut self, streaming: bool) {
        self.recv.streaming = streaming;
    }

    /// Whether control frames are owed to the peer: the send half should
    /// transmit (wake the writer).
    pub fn owes_transmission(&self) -> bool {
        let s = self.cell();
        !s.owed.is_empty() && !s.transport_dead
    }

    /// Whether nothing more needs to be read: [`Event::Closed`] was
    /// returned, and neither lingering after a failure nor (a client)
    /// waiting for the server's TCP close goes on.
    pub fn is_finished(&self) -> bool {
        let s = self.cell();
        s.closed_reported && (s.transport_dead || (!s.awaiting_transport_close() && !s.lingering()))
    }

    /// See [`Connection::state`].
    pub fn state(&self) -> State {
        self.cell().state()
    }

    /// See [`Connection::closed`].
    pub fn closed(&self) -> Option<Closed> {
        self.cell().closed.clone()
    }

    /// See [`Connection::role`].
    pub fn role(&self) -> Role {
        self.cell().role
    }

    /// See [`Connection::protocol`].
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// See [`Connection::deflate`].
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }
}

impl SendHalf {
    fn cell(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// See [`Connection::send`].
    pub fn send(&mut self, message: Message<'_>) -> Result<(), Error> {
        self.send.send(&self.config, &mut &*self.shared, message)
    }

    /// See [`Connection::send_text`].
    pub fn send_text(&mut self, text: &str) -> Result<(), Error> {
        self.send(Message::Text(text))
    }

    /// See [`Connection::send_binary`].
    pub fn send_binary(&mut self, data: &[u8]) -> Result<(), Error> {
        self.send(Message::Binary(data))
    }

    /// See [`Connection::send_chunk`].
    pub fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<(), Error> {
        self.send.send_chunk(&self.config, &mut &*self.shared, kind, data, fin)
    }

    /// See [`Connection::send_ping`].
    pub fn send_ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send.send_control(&self.config, &mut &*self.shared, OpCode::Ping, payload)
    }

    /// See [`Connection::send_pong`].
    pub fn send_pong(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.send.send_control(&self.config, &mut &*self.shared, OpCode::Pong, payload)
    }

    /// See [`Connection::close`].
    pub fn close(&mut self, now: Duration, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.cell().tick(now);
        self.send.close(&mut &*self.shared, code, reason)
    }

    /// See [`Connection::send_owned`].
    #[cfg(feature = "bytes")]
    pub fn send_owned(&mut self, message: crate::message::OwnedMessage) -> Result<(), Error> {
        self.send.send_owned(&self.config, &mut &*self.shared, message)
    }

    /// See [`Connection::send_prepared`].
    #[cfg(feature = "bytes")]
    pub fn send_prepared(&mut self, prepared: &super::PreparedMessage) -> Result<(), Error> {
        self.send.send_prepared(&self.config, &mut &*self.shared, prepared)
    }

    /// See [`Connection::poll_transmit`].
    pub fn poll_transmit(&mut self) -> &[u8] {
        self.send.poll_transmit(&mut &*self.shared)
    }

    /// See [`Connection::poll_transmit_slices`].
    pub fn poll_transmit_slices<'a>(&'a mut self, slices: &mut [&'a [u8]]) -> usize {
        self.send.poll_transmit_slices(&mut &*self.shared, slices)
    }

    /// See [`Connection::advance_transmit`].
    pub fn advance_transmit(&mut self, n: usize) {
        self.send.advance_transmit(&self.config, &mut &*self.shared, n);
    }

    /// See [`Connection::transmit_into`].
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

    /// Writing failed: see [`RecvHalf::handle_transport_error`].
    pub fn handle_transport_error(&mut self) {
        self.send.clear();
        let mut s = self.cell();
        s.transport_dead = true;
        s.owed = Default::default();
        s.fail(Error::ConnectionLost, "");
    }

    /// Runs the timers due at `now` (see [`Connection::handle_timeout`]).
    pub fn handle_timeout(&mut self, now: Duration) {
        if self.send.release.due(now) {
            self.send.release_idle(&self.config, now);
        }
        self.cell().handle_timeout(now, self.config.ping_interval, self.config.idle_timeout);
    }

    /// See [`Connection::poll_timeout`].
    pub fn poll_timeout(&self) -> Option<Duration> {
        let s = self.cell();
        let protocol = s.poll_timeout(self.config.ping_interval, self.config.idle_timeout);
        if s.closed.is_some() {
            return protocol;
        }
        min_opt(protocol, self.send.release.at)
    }

    /// Whether there is something to transmit, owed control frames included
    /// (nothing once either half saw the transport fail).
    pub fn wants_write(&self) -> bool {
        let s = self.cell();
        !s.transport_dead && (!self.send.is_empty() || !s.owed.is_empty())
    }

    /// See [`Connection::is_writable`].
    pub fn is_writable(&self) -> bool {
        self.send.is_writable(&self.config, &mut &*self.shared)
    }

    /// See [`Connection::buffered_amount`]; 0 once either half saw the
    /// transport fail (what was queued is dropped at the next transmission).
    pub fn buffered_amount(&self) -> usize {
        if self.cell().transport_dead { 0 } else { self.send.buffered() }
    }

    /// See [`Connection::wants_shutdown`]: half-close the transport's
    /// write side and keep reading until the peer closes too.
    pub fn wants_shutdown(&self) -> bool {
        let s = self.cell();
        s.closed.is_some() && s.lingering() && self.send.is_empty() && s.owed.is_empty()
    }

    /// Whether the transport may be closed: the connection is closed,
    /// everything was transmitted, and no reason to keep reading remains
    /// (see [`Connection::is_finished`]).
    pub fn is_finished(&self) -> bool {
        let s = self.cell();
        s.closed.is_some()
            && (s.transport_dead
                || (self.send.is_empty() && s.owed.is_empty() && !s.awaiting_transport_close() && !s.lingering()))
    }

    /// See [`Connection::state`].
    pub fn state(&self) -> State {
        self.cell().state()
    }

    /// See [`Connection::closed`].
    pub fn closed(&self) -> Option<Closed> {
        self.cell().closed.clone()
    }
}
