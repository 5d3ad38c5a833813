//! The state both halves of a connection read and change: where the
//! connection is in its life, the error that failed it, the control frames
//! the receive path owes the peer, and the protocol timers.
//!
//! It is small on purpose. The receive half and the send half keep their
//! buffers, codecs and frame state to themselves and touch this cell only
//! for short updates (a ping arrived, a close was queued, the connection
//! failed), so when the halves run in two tasks the lock around it is never
//! held across I/O, compression or inflation.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::time::Duration;

use super::event::{Closed, State};
use crate::close::CloseCode;
use crate::config::Config;
use crate::error::{Error, Timeout, UsageError};
use crate::frame::MAX_CONTROL_PAYLOAD;
use crate::role::Role;

/// A close frame the send half owes: its code and reason are always known
/// statically (an echo of the peer's code, or the reason of a failure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct OwedClose {
    pub(crate) code: CloseCode,
    pub(crate) reason: &'static str,
    /// The connection failed: data queued but not yet started is dropped
    /// and the close goes next. Otherwise (an answer to the peer's close)
    /// it goes after what is already queued (RFC 6455 §5.5.1 lets an
    /// endpoint finish its message first).
    pub(crate) failure: bool,
}

/// Control frames the receive path owes the peer, for whichever side
/// transmits next (RFC 6455 §5.5.2, §5.5.1). Bounded: at most
/// [`Config::max_queued_pongs`] pongs, one heartbeat ping, one close.
#[derive(Debug, Default)]
pub(crate) struct Owed {
    /// Pong payloads, each as a length byte and the bytes.
    pongs: Vec<u8>,
    pong_count: usize,
    /// Where the newest pong's record starts, so it can be replaced.
    last_pong: usize,
    pub(crate) ping: bool,
    pub(crate) close: Option<OwedClose>,
}

impl Owed {
    pub(crate) fn is_empty(&self) -> bool {
        self.pong_count == 0 && !self.ping && self.close.is_none()
    }

    /// Queues a pong for `payload`. When `limit` pongs already wait, the
    /// newest one is replaced: RFC 6455 §5.5.3 lets an endpoint answer only
    /// the most recent of several pings.
    fn push_pong(&mut self, payload: &[u8], limit: usize) {
        debug_assert!(payload.len() <= MAX_CONTROL_PAYLOAD);
        if self.pong_count >= limit.max(1) {
            self.pongs.truncate(self.last_pong);
            self.pong_count -= 1;
        }
        self.last_pong = self.pongs.len();
        self.pongs.push(payload.len() as u8);
        self.pongs.extend_from_slice(payload);
        self.pong_count += 1;
    }

    /// Hands each owed pong payload to `f`, oldest first, and forgets them.
    pub(crate) fn drain_pongs(&mut self, mut f: impl FnMut(&[u8])) {
        let mut rest = &self.pongs[..];
        while let [len, tail @ ..] = rest {
            let (payload, after) = tail.split_at(usize::from(*len));
            f(payload);
            rest = after;
        }
        self.forget_pongs();
    }

    fn forget_pongs(&mut self) {
        self.pongs.clear();
        if self.pongs.capacity() > 4 * (MAX_CONTROL_PAYLOAD + 1) {
            self.pongs = Vec::new();
        }
        self.pong_count = 0;
        self.last_pong = 0;
    }
}

/// Deadlines, as `now` values on the caller's clock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timers {
    /// The latest `now` the caller gave.
    pub(crate) clock: Duration,
    pub(crate) last_recv: Duration,
    pub(crate) last_ping: Duration,
    pub(crate) handshake: Option<Duration>,
    /// While closing: when to give up on the peer's close frame. Once
    /// closed: when to stop lingering for the peer's close or EOF, or (a
    /// client after a clean close) for the server to close TCP.
    pub(crate) close: Option<Duration>,
}

/// The peer's close frame: its code and reason.
#[derive(Clone, Debug)]
pub(crate) struct PeerClose {
    pub(crate) code: CloseCode,
    pub(crate) reason: Box<str>,
}

/// See the module documentation.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) role: Role,
    /// The opening handshake completed.
    pub(crate) open: bool,
    /// What failed the connection; kept and returned by every later action.
    pub(crate) failure: Option<Error>,
    pub(crate) failure_reason: &'static str,
    /// Boxed: only a closing connection has one.
    pub(crate) peer_close: Option<Box<PeerClose>>,
    /// A close frame of ours is queued or owed: nothing more may be sent.
    pub(crate) close_queued: bool,
    /// Our close frame was handed out whole.
    pub(crate) close_sent: bool,
    pub(crate) owed: Owed,
    pub(crate) timers: Timers,
    /// How it ended, once it has; taken into [`super::Event::Closed`].
    pub(crate) closed: Option<Closed>,
    pub(crate) closed_reported: bool,
    pub(crate) eof: bool,
    pub(crate) transport_dead: bool,
    /// After we sent something final (a close frame on failure, an HTTP
    /// error), input is read and discarded until the peer's close, EOF or
    /// the close deadline, so the peer's kernel does not answer our last
    /// bytes with a reset (RFC 6455 §7.1.1 wants the peer to see them).
    pub(crate) linger: bool,
    /// The peer's close frame arrived while lingering.
    pub(crate) linger_close_seen: bool,
    /// The close deadline passed after the connection closed.
    pub(crate) wait_over: bool,
    /// Copied out of the config: both halves read them under the lock.
    pub(crate) close_timeout: Duration,
    pub(crate) max_queued_pongs: usize,
}

impl Shared {
    pub(crate) fn new(role: Role, open: bool, config: &Config, now: Duration) -> Self {
        let handshake = if open { None } else { config.handshake_timeout.map(|t| now.saturating_add(t)) };
        Self {
            role,
            open,
            failure: None,
            failure_reason: "",
            peer_close: None,
            close_queued: false,
            close_sent: false,
            owed: Owed::default(),
            timers: Timers { clock: now, last_recv: now, last_ping: now, handshake, close: None },
            closed: None,
            closed_reported: false,
            eof: false,
            transport_dead: false,
            linger: false,
            linger_close_seen: false,
            wait_over: false,
            close_timeout: config.close_timeout,
            max_queued_pongs: config.max_queued_pongs,
        }
    }

    pub(crate) fn tick(&mut self, now: Duration) {
        self.timers.clock = self.timers.clock.max(now);
    }

    pub(crate) fn state(&self) -> State {
        if self.failure.is_some() || (self.close_sent && self.peer_close.is_some()) {
            State::Closed
        } else if !self.open {
            State::Handshake
        } else if self.close_queued || self.peer_close.is_some() {
            State::Closing
        } else {
            State::Open
        }
    }

    /// Whether frames are still read and delivered: open, or closing with
    /// the peer's close frame still to come.
    pub(crate) fn reading_frames(&self) -> bool {
        self.open && self.failure.is_none() && self.peer_close.is_none()
    }

    /// Whether a data or control frame may be queued now, and if not, the
    /// error to return: the error that failed the connection, not a
    /// generic one, so an adapter reports what really happened.
    pub(crate) fn check_send(&self) -> Result<(), Error> {
        if let Some(error) = self.failure {
            return Err(error);
        }
        if !self.open {
            return Err(UsageError::NotOpen.into());
        }
        if self.close_queued || self.peer_close.is_some() {
            return Err(UsageError::Closing.into());
        }
        Ok(())
    }

    /// A ping arrived: owe its pong, unless a close already ends our side.
    pub(crate) fn owe_pong(&mut self, payload: &[u8]) {
        if self.failure.is_none() && !self.close_queued {
            self.owed.push_pong(payload, self.max_queued_pongs);
        }
    }

    /// The peer's close frame arrived: owe the answer if we had not sent a
    /// close (echoing the code, not the reason, RFC 6455 §5.5.1).
    pub(crate) fn peer_closed(&mut self, code: CloseCode, reason: &str) {
        if self.failure.is_some() || self.peer_close.is_some() {
            return;
        }
        self.peer_close = Some(Box::new(PeerClose { code, reason: reason.into() }));
        if !self.close_queued {
            self.close_queued = true;
            self.owed.close = Some(OwedClose { code, reason: "", failure: false });
            self.start_close_timer();
        }
        self.settle();
    }

    /// The send half queued a close frame of the caller's.
    pub(crate) fn close_queued_by_user(&mut self) {
        self.close_queued = true;
        self.start_close_timer();
    }

    /// The send half handed out the last byte of our close frame.
    pub(crate) fn close_transmitted(&mut self) {
        self.close_sent = true;
        self.settle();
    }

    fn start_close_timer(&mut self) {
        self.timers.close = Some(self.timers.clock.saturating_add(self.close_timeout));
    }

    /// Fails the connection (RFC 6455 §7.1.7). If the WebSocket is
    /// established, the error is the peer's or an idle timeout, and no
    /// close frame of ours is queued yet, one with the error's code is owed,
    /// and the connection then lingers for the peer's close.
    pub(crate) fn fail(&mut self, error: Error, reason: &'static str) {
        if self.state() == State::Closed {
            return;
        }
        let sends_close = matches!(error, Error::Protocol(_) | Error::Timeout(Timeout::Idle));
        if self.open && sends_close && !self.close_queued && !self.transport_dead {
            self.close_queued = true;
            self.owed.close = Some(OwedClose { code: error.close_code(), reason, failure: true });
            self.linger = true;
        }
        self.owed.ping = false;
        self.owed.forget_pongs();
        self.failure = Some(error);
        self.failure_reason = reason;
        self.settle();
    }

    /// A server that answered a bad request with an HTTP error keeps
    /// reading until the client closes, like any lingering close.
    pub(crate) fn fail_handshake_answered(&mut self, error: Error) {
        self.fail(error, "");
        self.linger = !self.transport_dead;
        self.start_close_timer();
    }

    /// Records how the connection ended once it has: the peer's code when
    /// its close frame arrived, else the failure's.
    fn settle(&mut self) {
        if self.closed.is_some() || self.state() != State::Closed {
            return;
        }
        let (code, reason) = match (&self.peer_close, self.failure) {
            (Some(peer), _) => (peer.code, peer.reason.clone()),
            (None, Some(error)) => (error.close_code(), self.failure_reason.into()),
            (None, None) => (CloseCode::ABNORMAL, Box::from("")),
        };
        let clean = self.failure.is_none();
        self.closed = Some(Closed::new(code, reason, clean, self.failure));
        if (clean && self.role == Role::Client) || self.linger {
            // A client waits for the server to close TCP (RFC 6455
            // §7.1.1); a failed connection lingers for the peer's close.
            self.start_close_timer();
        }
    }

    /// A client after a clean closing handshake waits for the server to
    /// close TCP first (RFC 6455 §7.1.1), for at most the close timeout.
    pub(crate) fn awaiting_transport_close(&self) -> bool {
        self.role == Role::Client
            && self.closed.as_ref().is_some_and(|c| c.error.is_none())
            && !self.eof
            && !self.wait_over
            && !self.transport_dead
    }

    /// Lingering after a failure or an HTTP error: the peer's close, EOF or
    /// the deadline ends it.
    pub(crate) fn lingering(&self) -> bool {
        self.linger && !self.linger_close_seen && !self.eof && !self.wait_over && !self.transport_dead
    }

    /// The protocol timers due at `now` (buffer release is each half's).
    pub(crate) fn handle_timeout(&mut self, now: Duration, ping_interval: Option<Duration>, idle: Option<Duration>) {
        self.tick(now);
        let t = self.timers;
        match self.state() {
            State::Handshake => {}
            State::Open => {
                if idle.is_some_and(|i| now >= t.last_recv.saturating_add(i)) {
                    self.fail(Error::Timeout(Timeout::Idle), "idle timeout");
                } else if ping_interval.is_some_and(|i| now >= t.last_recv.max(t.last_ping).saturating_add(i)) {
                    self.timers.last_ping = now;
                    self.owed.ping = true;
                }
            }
            State::Closing => {
                if t.close.is_some_and(|d| now >= d) {
                    self.fail(Error::Timeout(Timeout::Close), "close timeout");
                }
            }
            State::Closed => {
                if t.close.is_some_and(|d| now >= d) {
                    self.wait_over = true;
                }
            }
        }
    }

    /// The next protocol deadline (handshake deadlines excluded: the
    /// connection owns those).
    pub(crate) fn poll_timeout(&self, ping_interval: Option<Duration>, idle: Option<Duration>) -> Option<Duration> {
        let t = &self.timers;
        match self.state() {
            State::Handshake => t.handshake,
            State::Open => {
                let idle = idle.map(|i| t.last_recv.saturating_add(i));
                let ping = ping_interval.map(|i| t.last_recv.max(t.last_ping).saturating_add(i));
                min_opt(idle, ping)
            }
            State::Closing => t.close,
            State::Closed if self.awaiting_transport_close() || self.lingering() => t.close,
            State::Closed => None,
        }
    }
}

/// The earlier of two optional instants.
pub(crate) fn min_opt(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// How a half reaches the shared cell: directly inside a whole
/// [`Connection`](super::Connection), through a mutex once split. Each
/// `lock` is a short critical section; no I/O or codec work runs under it.
pub(crate) trait Access {
    type Guard<'a>: core::ops::DerefMut<Target = Shared>
    where
        Self: 'a;
    fn lock(&mut self) -> Self::Guard<'_>;
}

impl Access for &mut Shared {
    type Guard<'a>
        = &'a mut Shared
    where
        Self: 'a;
    fn lock(&mut self) -> &mut Shared {
        self
    }
}
