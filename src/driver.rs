//! The drive loop the async adapters share: moving bytes between a
//! transport and a [`Connection`] (or its split halves), running its timers,
//! lingering on close. Each runtime brings its transport and timer through
//! the small traits [`Read`], [`Write`] and [`Timer`]; nothing here makes a
//! protocol decision.
//!
//! Every poll function keeps its state in the driver, never in a local
//! across a `Pending`, so the futures built on them are cancel-safe: a read
//! goes straight into the connection's receive buffer and is committed in
//! the same poll.

use alloc::sync::Arc;
use core::fmt;
use core::task::{Context, Poll, Waker};
use std::io::{self, IoSlice};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::task::Wake;
use std::time::{Duration, Instant};

use crate::connection::{Connection, EventKind, RecvHalf, SendHalf};
use crate::handshake::Response;

/// How much is read from the transport at once.
pub(crate) const READ_SIZE: usize = 16 * 1024;

/// The most slices handed to one vectored write.
const MAX_SLICES: usize = 32;

/// Events handed out in one poll before the task yields, where the runtime
/// has no budget of its own (tokio's is used where it exists).
const EVENTS_PER_POLL: u32 = 128;

// ----- What a runtime provides ----------------------------------------------

/// The read side of a transport.
pub(crate) trait Read: Unpin {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>>;

    /// Whether [`Self::poll_read_spare`] reads into uninitialised memory
    /// (else the driver zeroes room and uses [`Self::poll_read`]).
    const READS_SPARE: bool = false;

    /// Reads up to `limit` bytes appended to `buf`'s spare capacity, left
    /// uninitialised (no zeroing first). Only called if `READS_SPARE`.
    fn poll_read_spare(
        &mut self,
        _cx: &mut Context<'_>,
        _buf: &mut bytes::BytesMut,
        _limit: usize,
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::Unsupported.into()))
    }

    /// Reads up to `limit` (at most [`READ_SIZE`]) bytes into scratch space
    /// and hands them to `take`.
    fn poll_read_scratch(
        &mut self,
        cx: &mut Context<'_>,
        limit: usize,
        take: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        let mut scratch = [0u8; READ_SIZE];
        let len = limit.min(READ_SIZE);
        let result = self.poll_read(cx, &mut scratch[..len]);
        if let Poll::Ready(Ok(n)) = result {
            take(&scratch[..n]);
        }
        result
    }
}

/// The write side of a transport.
pub(crate) trait Write: Unpin {
    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>>;
    /// One slice: a plain write (`send` rather than `writev` on a socket,
    /// a little cheaper in the kernel).
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>>;
    /// Whether vectored writes are worth it (else one slice per write).
    fn is_write_vectored(&self) -> bool;
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
    /// Shuts the write side down (a TCP half-close).
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// A runtime's timer and cooperative budget.
pub(crate) trait Timer: Unpin {
    /// Ready once the timer fired for `deadline`; registers a wake-up
    /// otherwise. The driver compares the clock with the deadline itself,
    /// since timers fire late (or early) under load.
    fn poll_at(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()>;
    /// No deadline is pending: frees the timer, so that an idle connection
    /// without heartbeats holds none.
    fn clear(&mut self);
    /// Pending if the task has used up its share of work and should let
    /// others run (having arranged to be woken).
    fn poll_budget(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

// ----- Errors ----------------------------------------------------------------

/// Why a WebSocket operation failed, by who is to blame: the WebSocket
/// protocol or its use ([`Error::WebSocket`], which wraps the core's
/// [`crate::Error`]: the peer broke the protocol, the handshake failed, a
/// deadline passed, or the call was not valid now), the transport
/// ([`Error::Io`]), or a server that refused the upgrade
/// ([`Error::Rejected`], with its response).
///
/// Converts into `std::io::Error` for traits that need one (`AsyncRead`,
/// `AsyncWrite`): transport errors as they were, the others as
/// `From<wscore::Error> for io::Error` describes.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The WebSocket failed or was used wrongly; see [`crate::Error`].
    WebSocket(crate::Error),
    /// The transport failed.
    Io(io::Error),
    /// The server answered the upgrade with another status than 101: its
    /// status, headers (`Retry-After`, say) and body.
    Rejected(alloc::boxed::Box<Response>),
}

impl Error {
    /// Whether the transport failed (rather than the protocol or the caller).
    pub fn is_transport(&self) -> bool {
        matches!(self, Self::Io(_) | Self::WebSocket(crate::Error::ConnectionLost))
    }

    /// Whether the peer broke the protocol (or the handshake failed).
    pub fn is_protocol(&self) -> bool {
        matches!(self, Self::WebSocket(crate::Error::Protocol(_) | crate::Error::Handshake(_)) | Self::Rejected(_))
    }

    /// Whether the call was not valid now (sending after a close, say).
    pub fn is_usage(&self) -> bool {
        matches!(self, Self::WebSocket(crate::Error::Usage(_)))
    }

    /// The core's error, if this is one.
    pub fn websocket(&self) -> Option<&crate::Error> {
        match self {
            Self::WebSocket(e) => Some(e),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WebSocket(e) => e.fmt(f),
            Self::Io(e) => write!(f, "transport error: {e}"),
            Self::Rejected(r) => write!(f, "the server refused the upgrade with status {}", r.status()),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::WebSocket(e) => Some(e),
            Self::Io(e) => Some(e),
            Self::Rejected(_) => None,
        }
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        Self::WebSocket(e)
    }
}

impl From<crate::UsageError> for Error {
    fn from(e: crate::UsageError) -> Self {
        Self::WebSocket(e.into())
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::WebSocket(e) => e.into(),
            Error::Rejected(r) => {
                let status = r.status();
                crate::Error::Handshake(crate::HandshakeError::Status(status)).into()
            }
        }
    }
}

// ----- The whole connection -----------------------------------------------

/// A connection and its transport, driven together.
pub(crate) struct Driver<T, C> {
    pub(crate) conn: Connection,
    pub(crate) io: T,
    pub(crate) timer: C,
    pub(crate) epoch: Instant,
    /// The transport error that ended the connection, reported instead of
    /// the core's `ConnectionLost`.
    io_error: Option<io::ErrorKind>,
    /// `Closed` was taken from the connection.
    closed_taken: bool,
    write_shut: bool,
    transport_done: bool,
    unflushed: bool,
    events_this_poll: u32,
}

impl<T, C> fmt::Debug for Driver<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver").field("conn", &self.conn).finish_non_exhaustive()
    }
}

impl<T: Read + Write, C: Timer> Driver<T, C> {
    /// `epoch` is the instant the connection's `Duration::ZERO` stands for.
    pub(crate) fn new(conn: Connection, io: T, timer: C, epoch: Instant) -> Self {
        Self {
            conn,
            io,
            timer,
            epoch,
            io_error: None,
            closed_taken: false,
            write_shut: false,
            transport_done: false,
            unflushed: false,
            events_this_poll: 0,
        }
    }

    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Writes what the connection has queued, then flushes the transport.
    pub(crate) fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        match poll_transmit(&mut Tx::Whole(&mut self.conn), &mut self.io, cx, &mut self.unflushed) {
            Poll::Ready(Err(e)) => {
                self.io_error = Some(e.kind());
                Poll::Ready(Err(Error::Io(e)))
            }
            other => other.map(|r| r.map_err(Error::Io)),
        }
    }

    /// Reads once into the connection, if it wants input; `now` is the time.
    fn poll_fill(&mut self, cx: &mut Context<'_>, now: Duration) -> Poll<()> {
        poll_read_into(&mut self.conn, &mut self.io, cx, now, &mut self.io_error)
    }

    /// Runs the timers that are due at `now` (or once the timer fires);
    /// Ready if any ran.
    fn poll_timers(&mut self, cx: &mut Context<'_>, mut now: Duration) -> Poll<()> {
        let Some(deadline) = self.conn.poll_timeout() else {
            self.timer.clear();
            return Poll::Pending;
        };
        loop {
            if deadline <= now {
                self.conn.handle_timeout(now);
                return Poll::Ready(());
            }
            if self.timer.poll_at(cx, self.epoch + deadline).is_pending() {
                return Poll::Pending;
            }
            now = self.now();
        }
    }

    /// Drives the transport and timers until the connection has an event;
    /// returns its kind (or `None` once the connection is over and its
    /// `Closed` was taken). The event stays in the connection.
    pub(crate) fn poll_event_kind(&mut self, cx: &mut Context<'_>) -> Poll<Option<EventKind>> {
        if self.events_this_poll >= EVENTS_PER_POLL {
            self.events_this_poll = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            if let Some(kind) = self.conn.peek_event() {
                if self.timer.poll_budget(cx).is_pending() {
                    return Poll::Pending;
                }
                self.events_this_poll += 1;
                return Poll::Ready(Some(kind));
            }
            self.events_this_poll = 0;
            // Owed pongs and closes go out while we wait for input; a write
            // that cannot go on now wakes us when it can.
            let _ = self.poll_write_out(cx);
            if let Some(kind) = self.conn.peek_event() {
                return Poll::Ready(Some(kind));
            }
            if self.closed_taken {
                return Poll::Ready(None);
            }
            // One look at the clock for the timers and the read.
            let now = self.now();
            if self.poll_timers(cx, now).is_ready() {
                continue;
            }
            if !self.conn.wants_read() {
                // Nothing to read until something else changes: a timer or
                // a write will wake us.
                return Poll::Pending;
            }
            if self.poll_fill(cx, now).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Takes the pending `Closed` event and turns it into what the caller
    /// sees: `Ok` for a clean close, else the error.
    pub(crate) fn take_closed(&mut self) -> Result<(), Error> {
        while let Some(event) = self.conn.poll_event() {
            if let crate::Event::Closed(_) = event {
                break;
            }
        }
        self.closed_taken = true;
        self.outcome()
    }

    /// How the connection ended, as the caller sees it.
    pub(crate) fn outcome(&self) -> Result<(), Error> {
        match self.conn.closed().and_then(|c| c.error) {
            None => Ok(()),
            Some(crate::Error::ConnectionLost) if self.io_error.is_some() => {
                Err(Error::Io(self.io_error.unwrap_or(io::ErrorKind::ConnectionReset).into()))
            }
            Some(e) => Err(Error::WebSocket(e)),
        }
    }

    /// After `Closed`: sends what is left, lingers (half-closed) until the
    /// peer closes or the close timeout passes, and shuts the transport
    /// down. Ready when the transport may be dropped.
    pub(crate) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.transport_done {
                return Poll::Ready(());
            }
            if self.poll_write_out(cx).is_pending() && !self.conn.is_finished() {
                if self.poll_timers(cx, self.now()).is_ready() {
                    continue;
                }
                return Poll::Pending;
            }
            if self.conn.is_finished() {
                // Errors closing a finished transport change nothing.
                if !self.write_shut && self.io.poll_shutdown(cx).is_pending() {
                    return Poll::Pending;
                }
                self.transport_done = true;
                return Poll::Ready(());
            }
            if self.conn.wants_shutdown() && !self.write_shut {
                if self.io.poll_shutdown(cx).is_pending() {
                    return Poll::Pending;
                }
                self.write_shut = true;
            }
            let now = self.now();
            if self.poll_timers(cx, now).is_ready() {
                continue;
            }
            // Read and discard until the peer closes too.
            while let Some(_event) = self.conn.poll_event() {}
            if self.poll_fill(cx, now).is_pending() {
                return Poll::Pending;
            }
        }
    }

    /// Waits until a message may be queued (the send buffer is below its
    /// high-water mark), writing meanwhile.
    pub(crate) fn poll_writable(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.conn.buffered_amount() >= self.conn.config().write_buffer_high_water {
            // Writing everything out empties the buffer.
            return self.poll_write_out(cx);
        }
        Poll::Ready(Ok(()))
    }

    /// Queues through `send`, waiting for room first (backpressure).
    pub(crate) fn poll_queue<F: FnMut(&mut Connection) -> Result<(), crate::Error>>(
        &mut self,
        cx: &mut Context<'_>,
        send: &mut F,
    ) -> Poll<Result<(), Error>> {
        loop {
            match send(&mut self.conn) {
                Err(crate::Error::WriteBufferFull) => {
                    if let Err(e) = core::task::ready!(self.poll_write_out(cx)) {
                        return Poll::Ready(Err(e));
                    }
                }
                result => return Poll::Ready(result.map_err(Error::WebSocket)),
            }
        }
    }
}

// ----- Reading, for a whole connection or a receive half --------------------

/// What takes input: a whole connection or a receive half.
pub(crate) trait Input {
    fn wants_read(&self) -> bool;
    fn buffered_input(&self) -> usize;
    fn frame_remaining(&self) -> usize;
    fn spare_input_capacity(&self) -> usize;
    fn max_unprocessed_input(&self) -> usize;
    fn receive(&mut self, now: Duration, data: &[u8]) -> usize;
    fn receive_buffer(&mut self, want: usize) -> &mut [u8];
    fn receive_spare(&mut self, want: usize) -> (&mut bytes::BytesMut, usize);
    fn commit_appended(&mut self, now: Duration);
    fn commit_received(&mut self, now: Duration, n: usize);
    fn handle_eof(&mut self);
    fn handle_transport_error(&mut self);
}

macro_rules! input {
    ($t:ty) => {
        impl Input for $t {
            fn wants_read(&self) -> bool {
                <$t>::wants_read(self)
            }
            fn buffered_input(&self) -> usize {
                <$t>::buffered_input(self)
            }
            fn frame_remaining(&self) -> usize {
                <$t>::frame_remaining(self)
            }
            fn spare_input_capacity(&self) -> usize {
                <$t>::spare_input_capacity(self)
            }
            fn max_unprocessed_input(&self) -> usize {
                self.config().max_unprocessed_input
            }
            fn receive(&mut self, now: Duration, data: &[u8]) -> usize {
                <$t>::receive_all(self, now, data)
            }
            fn receive_buffer(&mut self, want: usize) -> &mut [u8] {
                <$t>::receive_buffer(self, want)
            }
            fn receive_spare(&mut self, want: usize) -> (&mut bytes::BytesMut, usize) {
                <$t>::receive_spare(self, want)
            }
            fn commit_appended(&mut self, now: Duration) {
                <$t>::commit_appended(self, now)
            }
            fn commit_received(&mut self, now: Duration, n: usize) {
                <$t>::commit_received(self, now, n)
            }
            fn handle_eof(&mut self) {
                <$t>::handle_eof(self)
            }
            fn handle_transport_error(&mut self) {
                <$t>::handle_transport_error(self)
            }
        }
    };
}

input!(Connection);
input!(RecvHalf);

/// Reads once from `io` into `input`. A connection holding no received
/// bytes reads into scratch space on the stack and takes what came (all of
/// it: the read is no larger than the room it has), so one parked on a
/// read holds no receive buffer; one in the middle of a frame reads
/// straight into its buffer, sparing the copy.
fn poll_read_into<I: Input, R: Read>(
    input: &mut I,
    io: &mut R,
    cx: &mut Context<'_>,
    now: Duration,
    io_error: &mut Option<io::ErrorKind>,
) -> Poll<()> {
    if !input.wants_read() {
        return Poll::Ready(());
    }
    // A connection that holds no buffer reads into scratch space, so one
    // parked on a read holds none; otherwise straight into its buffer, as
    // much as the frame being received still needs.
    let result = if input.buffered_input() == 0 && input.spare_input_capacity() < READ_SIZE {
        let len = READ_SIZE.min(input.max_unprocessed_input());
        io.poll_read_scratch(cx, len, &mut |data| {
            let taken = input.receive(now, data);
            debug_assert_eq!(taken, data.len(), "an idle connection has room for one read");
        })
    } else {
        let want = READ_SIZE.max(input.frame_remaining());
        if R::READS_SPARE {
            let (buf, limit) = input.receive_spare(want);
            if limit == 0 {
                return Poll::Ready(());
            }
            let result = io.poll_read_spare(cx, buf, limit);
            input.commit_appended(now);
            result
        } else {
            let buf = input.receive_buffer(want);
            if buf.is_empty() {
                return Poll::Ready(());
            }
            match io.poll_read(cx, buf) {
                Poll::Ready(Ok(n)) if n > 0 => {
                    input.commit_received(now, n);
                    Poll::Ready(Ok(n))
                }
                other => other,
            }
        }
    };
    match result {
        Poll::Ready(Ok(0)) => input.handle_eof(),
        Poll::Ready(Ok(_)) => {}
        Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
        Poll::Ready(Err(e)) => {
            *io_error = Some(e.kind());
            input.handle_transport_error();
        }
        Poll::Pending => return Poll::Pending,
    }
    Poll::Ready(())
}

// ----- Transmitting, for a whole connection or a send half ------------------

/// What transmits: a whole connection or a send half.
pub(crate) enum Tx<'a> {
    Whole(&'a mut Connection),
    Half(&'a mut SendHalf),
}

impl Tx<'_> {
    fn wants_write(&self) -> bool {
        match self {
            Self::Whole(c) => c.wants_write(),
            Self::Half(h) => h.wants_write(),
        }
    }

    fn slices<'a>(&'a mut self, out: &mut [&'a [u8]]) -> usize {
        match self {
            Self::Whole(c) => c.poll_transmit_slices(out),
            Self::Half(h) => h.poll_transmit_slices(out),
        }
    }

    fn front(&mut self) -> &[u8] {
        match self {
            Self::Whole(c) => c.poll_transmit(),
            Self::Half(h) => h.poll_transmit(),
        }
    }

    fn advance(&mut self, n: usize) {
        match self {
            Self::Whole(c) => c.advance_transmit(n),
            Self::Half(h) => h.advance_transmit(n),
        }
    }

    fn failed(&mut self) {
        match self {
            Self::Whole(c) => c.handle_transport_error(),
            Self::Half(h) => h.handle_transport_error(),
        }
    }
}

/// Writes everything `tx` has to send to `io` (vectored where the
/// transport says it pays), then flushes it if anything was written since
/// the last flush (`unflushed`).
pub(crate) fn poll_transmit<W: Write>(
    tx: &mut Tx<'_>,
    io: &mut W,
    cx: &mut Context<'_>,
    unflushed: &mut bool,
) -> Poll<io::Result<()>> {
    let vectored = io.is_write_vectored();
    while tx.wants_write() {
        let result = if vectored {
            let mut slices = [&[][..]; MAX_SLICES];
            let n = tx.slices(&mut slices);
            match n {
                0 => break,
                1 => io.poll_write(cx, slices[0]),
                _ => {
                    let bufs: [IoSlice<'_>; MAX_SLICES] = core::array::from_fn(|i| IoSlice::new(slices[i]));
                    io.poll_write_vectored(cx, &bufs[..n])
                }
            }
        } else {
            let front = tx.front();
            if front.is_empty() {
                break;
            }
            io.poll_write(cx, front)
        };
        match result {
            Poll::Ready(Ok(0)) => {
                tx.failed();
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            Poll::Ready(Ok(n)) => {
                tx.advance(n);
                *unflushed = true;
            }
            Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Poll::Ready(Err(e)) => {
                tx.failed();
                return Poll::Ready(Err(e));
            }
            Poll::Pending => return Poll::Pending,
        }
    }
    if *unflushed {
        core::task::ready!(io.poll_flush(cx))?;
        *unflushed = false;
    }
    Poll::Ready(Ok(()))
}

// ----- Split halves -----------------------------------------------------------

/// Wakes every task that waits on the shared write side: the transport
/// keeps one waker per direction, and both halves may be waiting.
#[derive(Default)]
pub(crate) struct FanOut {
    wakers: Mutex<[Option<Waker>; 2]>,
}

impl Wake for FanOut {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let wakers = self.wakers.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

/// Which half registers a waker with the write side.
#[derive(Clone, Copy)]
pub(crate) enum Who {
    Reader = 0,
    Writer = 1,
}

/// The write side of a split connection: the send half and the transport's
/// write half, locked together for the length of one poll (never across
/// an `.await`), by whichever task transmits.
pub(crate) struct WriteSide<W> {
    pub(crate) tx: SendHalf,
    pub(crate) io: W,
    fan_out: Arc<FanOut>,
    shut: bool,
    unflushed: bool,
}

impl<W: Write> WriteSide<W> {
    pub(crate) fn new(tx: SendHalf, io: W) -> Arc<Mutex<Self>> {
        Arc::new(Mutex::new(Self { tx, io, fan_out: Arc::default(), shut: false, unflushed: false }))
    }

    /// Transmits for `who`, whose waker is woken when the transport can
    /// take more, whichever half was waiting.
    pub(crate) fn poll_transmit(&mut self, who: Who, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let mut wakers = self.fan_out.wakers.lock().unwrap_or_else(PoisonError::into_inner);
            let slot = &mut wakers[who as usize];
            if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *slot = Some(cx.waker().clone());
            }
        }
        let waker = Waker::from(Arc::clone(&self.fan_out));
        let mut fanned = Context::from_waker(&waker);
        poll_transmit(&mut Tx::Half(&mut self.tx), &mut self.io, &mut fanned, &mut self.unflushed)
    }

    /// Half-closes the transport once, or closes it when finished.
    pub(crate) fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.shut {
            return Poll::Ready(());
        }
        if self.io.poll_shutdown(cx).is_pending() {
            return Poll::Pending;
        }
        self.shut = true;
        Poll::Ready(())
    }
}

/// Locks the write side; a panic in the other task does not stop this one.
pub(crate) fn lock<W>(side: &Mutex<WriteSide<W>>) -> MutexGuard<'_, WriteSide<W>> {
    side.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The reading half of a split connection, with the shared write side for
/// what it owes the peer.
pub(crate) struct ReadSide<R, W, C> {
    pub(crate) rx: RecvHalf,
    pub(crate) io: R,
    pub(crate) write: Arc<Mutex<WriteSide<W>>>,
    pub(crate) timer: C,
    epoch: Instant,
    io_error: Option<io::ErrorKind>,
    closed_taken: bool,
    events_this_poll: u32,
}

impl<R: Read, W: Write, C: Timer> ReadSide<R, W, C> {
    pub(crate) fn new(rx: RecvHalf, io: R, write: Arc<Mutex<WriteSide<W>>>, timer: C, epoch: Instant) -> Self {
        Self { rx, io, write, timer, epoch, io_error: None, closed_taken: false, events_this_poll: 0 }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// Sends what the reader owes (and whatever the writer queued), if the
    /// write side is free; it is locked for this one poll only.
    fn poll_owed(&mut self, cx: &mut Context<'_>) {
        if !self.rx.owes_transmission() {
            return;
        }
        if let Ok(mut side) = self.write.try_lock() {
            if let Poll::Ready(Err(e)) = side.poll_transmit(Who::Reader, cx) {
                self.io_error = Some(e.kind());
            }
        } else {
            // The writer holds it right now and will send what is owed.
            cx.waker().wake_by_ref();
        }
    }

    fn poll_timers(&mut self, cx: &mut Context<'_>, mut now: Duration) -> Poll<()> {
        let Some(deadline) = self.rx.poll_timeout() else {
            self.timer.clear();
            return Poll::Pending;
        };
        loop {
            if deadline <= now {
                self.rx.handle_timeout(now);
                // The writer's idle buffers too: it may be parked.
                lock(&self.write).tx.handle_timeout(now);
                return Poll::Ready(());
            }
            if self.timer.poll_at(cx, self.epoch + deadline).is_pending() {
                return Poll::Pending;
            }
            now = self.now();
        }
    }

    fn poll_fill(&mut self, cx: &mut Context<'_>, now: Duration) -> Poll<()> {
        poll_read_into(&mut self.rx, &mut self.io, cx, now, &mut self.io_error)
    }

    /// As [`Driver::poll_event_kind`], for the reading half.
    pub(crate) fn poll_event_kind(&mut self, cx: &mut Context<'_>) -> Poll<Option<EventKind>> {
        if self.events_this_poll >= EVENTS_PER_POLL {
            self.events_this_poll = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        loop {
            if let Some(kind) = self.rx.peek_event() {
                if self.timer.poll_budget(cx).is_pending() {
                    return Poll::Pending;
                }
                self.events_this_poll += 1;
                // A ping's pong goes out now, not after the next read.
                self.poll_owed(cx);
                return Poll::Ready(Some(kind));
            }
            self.events_this_poll = 0;
            self.poll_owed(cx);
            if let Some(kind) = self.rx.peek_event() {
                return Poll::Ready(Some(kind));
            }
            if self.closed_taken {
                return Poll::Ready(None);
            }
            let now = self.now();
            if self.poll_timers(cx, now).is_ready() {
                continue;
            }
            if !self.rx.wants_read() {
                return Poll::Pending;
            }
            if self.poll_fill(cx, now).is_pending() {
                return Poll::Pending;
            }
        }
    }

    pub(crate) fn take_closed(&mut self) -> Result<(), Error> {
        while let Some(event) = self.rx.poll_event() {
            if let crate::Event::Closed(_) = event {
                break;
            }
        }
        self.closed_taken = true;
        self.outcome()
    }

    pub(crate) fn outcome(&self) -> Result<(), Error> {
        match self.rx.closed().and_then(|c| c.error) {
            None => Ok(()),
            Some(crate::Error::ConnectionLost) if self.io_error.is_some() => {
                Err(Error::Io(self.io_error.unwrap_or(io::ErrorKind::ConnectionReset).into()))
            }
            Some(e) => Err(Error::WebSocket(e)),
        }
    }

    /// As [`Driver::poll_finish`], for the reading half: it drives the
    /// shared write side until the connection is done, then shuts it down.
    pub(crate) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            {
                let mut side = lock(&self.write);
                let written = side.poll_transmit(Who::Reader, cx);
                if side.tx.is_finished() {
                    return side.poll_shutdown(cx);
                }
                if side.tx.wants_shutdown() && side.poll_shutdown(cx).is_pending() {
                    return Poll::Pending;
                }
                if written.is_pending() {
                    drop(side);
                    if self.poll_timers(cx, self.now()).is_ready() {
                        continue;
                    }
                    return Poll::Pending;
                }
            }
            let now = self.now();
            if self.poll_timers(cx, now).is_ready() {
                continue;
            }
            // Read and discard until the peer closes too.
            while let Some(_event) = self.rx.poll_event() {}
            if self.poll_fill(cx, now).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

// ----- The operations both adapters offer, written once ----------------------

use crate::CloseCode;
use crate::connection::{Chunk, Event, OwnedEvent, PreparedMessage};
use crate::error::UsageError;
use crate::handshake::{Accept, Reject, Request};
use crate::message::{Message, MessageKind, OwnedMessage};
use core::future::poll_fn;

/// What a stream of owned messages yields next.
pub(crate) type Next = Option<Result<OwnedMessage, Error>>;

/// Runs the server handshake on `driver` and hands it to `wrap`. The
/// adapters build the driver before creating this future, and the future
/// uses it in place, so a pending handshake holds one driver, not also the
/// arguments it was built from (a connection task is as large as its
/// largest state, often this one). Not an `async fn`: those move their
/// arguments into locals, which would hold the driver twice.
#[allow(clippy::manual_async_fn)] // see above: an async fn would hold the driver twice
pub(crate) fn accepted<T: Read + Write, C: Timer, F, W>(
    mut driver: Result<Driver<T, C>, crate::Error>,
    decide: F,
    wrap: impl FnOnce(Driver<T, C>) -> W,
) -> impl Future<Output = Result<W, Error>>
where
    F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
{
    async move {
        driver.as_mut().map_err(|e| Error::WebSocket(*e))?.handshake_server(decide).await?;
        Ok(wrap(driver?))
    }
}

/// The client's counterpart of [`accepted`]: sends the request on
/// `driver`, waits for the answer, and hands the driver to `wrap`.
#[allow(clippy::manual_async_fn)] // see `accepted`
pub(crate) fn connected<T: Read + Write, C: Timer, W>(
    mut driver: Result<Driver<T, C>, crate::Error>,
    wrap: impl FnOnce(Driver<T, C>) -> W,
) -> impl Future<Output = Result<(W, Response), Error>> {
    async move {
        let response = driver.as_mut().map_err(|e| Error::WebSocket(*e))?.handshake_client().await?;
        Ok((wrap(driver?), response))
    }
}

impl<T: Read + Write, C: Timer> Driver<T, C> {
    /// Server: reads the upgrade request and answers it as `decide` says.
    pub(crate) async fn handshake_server<F>(&mut self, decide: F) -> Result<(), Error>
    where
        F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
    {
        loop {
            match poll_fn(|cx| self.poll_event_kind(cx)).await {
                Some(EventKind::Request) => break,
                Some(EventKind::Closed) | None => return self.end().await.and(Err(closed_early())),
                Some(_) => {
                    self.conn.poll_event();
                }
            }
        }
        // The decision borrows the request; the connection is mutated to
        // answer it, so the request is copied once, and dropped before the
        // next await so that the future does not hold it.
        {
            let request = self.conn.request().cloned().ok_or_else(closed_early)?;
            match decide(&request) {
                Ok(accept) => self.conn.accept(&accept),
                Err(reject) => self.conn.reject(&reject),
            }?;
        }
        poll_fn(|cx| self.poll_write_out(cx)).await?;
        if self.conn.closed().is_some() {
            // Rejected: the response went out; linger, then report it.
            return self.end().await.and(Err(closed_early()));
        }
        Ok(())
    }

    /// Client: sends the upgrade request and waits for the answer.
    pub(crate) async fn handshake_client(&mut self) -> Result<Response, Error> {
        poll_fn(|cx| self.poll_write_out(cx)).await?;
        loop {
            match poll_fn(|cx| self.poll_event_kind(cx)).await {
                Some(EventKind::Connected) => match self.conn.poll_event() {
                    Some(Event::Connected(response)) => return Ok(*response),
                    _ => return Err(closed_early()),
                },
                Some(EventKind::Rejected) => {
                    let Some(Event::Rejected(response)) = self.conn.poll_event() else { return Err(closed_early()) };
                    let _ = self.end().await;
                    return Err(Error::Rejected(response));
                }
                Some(EventKind::Closed) | None => return self.end().await.and(Err(closed_early())),
                Some(_) => {
                    self.conn.poll_event();
                }
            }
        }
    }

    /// Takes `Closed` (if not yet taken), lingers and closes the transport,
    /// and returns how the connection ended.
    pub(crate) async fn end(&mut self) -> Result<(), Error> {
        let result = if self.closed_taken { self.outcome() } else { self.take_closed() };
        poll_fn(|cx| self.poll_finish(cx)).await;
        result
    }

    /// Waits for the next event of interest: a message (`chunks` false) or
    /// chunk (`chunks` true), handling the others (the core answers pings
    /// and closes itself). `None` once the connection is over.
    async fn next_data(&mut self, chunks: bool) -> Result<Option<EventKind>, Error> {
        loop {
            match poll_fn(|cx| self.poll_event_kind(cx)).await {
                Some(kind @ EventKind::Message) if !chunks => return Ok(Some(kind)),
                Some(kind @ EventKind::Chunk) if chunks => return Ok(Some(kind)),
                Some(EventKind::Chunk) => return Err(Error::WebSocket(UsageError::Streaming.into())),
                Some(EventKind::Message) => {
                    // A whole message while chunks were asked for: take it as
                    // the one chunk it is.
                    return Ok(Some(EventKind::Message));
                }
                Some(EventKind::Closed) | None => return self.end().await.map(|()| None),
                Some(_) => {
                    self.conn.poll_event();
                }
            }
        }
    }

    /// The next whole message, borrowed from the connection.
    pub(crate) async fn recv(&mut self) -> Result<Option<Message<'_>>, Error> {
        if self.next_data(false).await?.is_none() {
            return Ok(None);
        }
        Ok(match self.conn.poll_event() {
            Some(Event::Message(message)) => Some(message),
            _ => None,
        })
    }

    /// The next piece of a message, borrowed from the connection.
    pub(crate) async fn recv_chunk(&mut self) -> Result<Option<Chunk<'_>>, Error> {
        if self.next_data(true).await?.is_none() {
            return Ok(None);
        }
        Ok(match self.conn.poll_event() {
            Some(Event::Chunk(chunk)) => Some(chunk),
            Some(Event::Message(message)) => Some(Chunk::whole(message)),
            _ => None,
        })
    }

    /// `Stream::poll_next` over owned messages: errors once, then ends.
    pub(crate) fn poll_next_owned(&mut self, cx: &mut Context<'_>, reported: &mut bool) -> Poll<Next> {
        loop {
            match core::task::ready!(self.poll_event_kind(cx)) {
                Some(EventKind::Message) => {
                    if let Some(OwnedEvent::Message(message)) = self.conn.poll_owned() {
                        return Poll::Ready(Some(Ok(message)));
                    }
                }
                Some(EventKind::Chunk) => {
                    return Poll::Ready(Some(Err(Error::WebSocket(UsageError::Streaming.into()))));
                }
                Some(EventKind::Closed) | None => {
                    let result = if self.closed_taken { self.outcome() } else { self.take_closed() };
                    core::task::ready!(self.poll_finish(cx));
                    return Poll::Ready(match result {
                        Err(e) if !core::mem::replace(reported, true) => Some(Err(e)),
                        _ => None,
                    });
                }
                Some(_) => {
                    self.conn.poll_owned();
                }
            }
        }
    }

    /// Queues a message and writes everything queued.
    pub(crate) async fn send<F: FnMut(&mut Connection) -> Result<(), crate::Error>>(
        &mut self,
        mut send: F,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.poll_queue(cx, &mut send)).await?;
        poll_fn(|cx| self.poll_write_out(cx)).await
    }

    /// Queues a message, writing first only if over the high-water mark.
    pub(crate) async fn feed<F: FnMut(&mut Connection) -> Result<(), crate::Error>>(
        &mut self,
        mut send: F,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.poll_queue(cx, &mut send)).await
    }

    /// Writes everything queued.
    pub(crate) async fn flush(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_write_out(cx)).await
    }

    /// The closing handshake: our close frame, messages discarded until the
    /// peer's close (or the close timeout), lingering, transport shut down.
    pub(crate) async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let now = self.now();
        match self.conn.close(now, code, reason) {
            // Already closing (the peer's close came, or ours went): finish it.
            Ok(()) | Err(crate::Error::Usage(UsageError::Closing)) => {}
            Err(e) if self.conn.closed().is_some() => {
                let _ = e;
                return self.end().await;
            }
            Err(e) => return Err(e.into()),
        }
        loop {
            match poll_fn(|cx| self.poll_event_kind(cx)).await {
                Some(EventKind::Closed) | None => return self.end().await,
                Some(_) => {
                    self.conn.poll_event();
                }
            }
        }
    }

    /// `Sink::poll_close`: a normal closure, driven to the end.
    pub(crate) fn poll_close(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.conn.state() == crate::State::Open {
            let now = self.now();
            self.conn.close(now, CloseCode::NORMAL, "")?;
        }
        loop {
            match core::task::ready!(self.poll_event_kind(cx)) {
                Some(EventKind::Closed) | None => {
                    let result = if self.closed_taken { self.outcome() } else { self.take_closed() };
                    core::task::ready!(self.poll_finish(cx));
                    return Poll::Ready(result);
                }
                Some(_) => {
                    self.conn.poll_event();
                }
            }
        }
    }
}

/// The error for a `wss://` URL when no TLS is built in.
#[cfg(all(feature = "tokio", not(feature = "rustls")))]
pub(crate) fn wss_unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "wss:// needs TLS: enable wscore's `rustls` feature, or connect a TLS stream yourself and call `client`",
    )
}

/// The connection ended before it could be used.
fn closed_early() -> Error {
    Error::WebSocket(crate::Error::ConnectionLost)
}

/// Sends a message on a split connection's write side: waits for room,
/// queues it under the lock, then writes, the lock held only while polled.
pub(crate) async fn send_half<W: Write, F: FnMut(&mut SendHalf) -> Result<(), crate::Error>>(
    side: &Mutex<WriteSide<W>>,
    mut send: F,
    flush: bool,
) -> Result<(), Error> {
    loop {
        let queued = send(&mut lock(side).tx);
        match queued {
            Err(crate::Error::WriteBufferFull) => flush_half(side).await?,
            Err(e) => return Err(e.into()),
            Ok(()) => break,
        }
    }
    if flush { flush_half(side).await } else { Ok(()) }
}

/// Writes everything the write side holds.
pub(crate) async fn flush_half<W: Write>(side: &Mutex<WriteSide<W>>) -> Result<(), Error> {
    poll_fn(|cx| lock(side).poll_transmit(Who::Writer, cx)).await.map_err(Error::Io)
}

impl<R: Read, W: Write, C: Timer> ReadSide<R, W, C> {
    async fn end(&mut self) -> Result<(), Error> {
        let result = if self.closed_taken { self.outcome() } else { self.take_closed() };
        poll_fn(|cx| self.poll_finish(cx)).await;
        result
    }

    async fn next_data(&mut self, chunks: bool) -> Result<Option<EventKind>, Error> {
        loop {
            match poll_fn(|cx| self.poll_event_kind(cx)).await {
                Some(kind @ EventKind::Message) if !chunks => return Ok(Some(kind)),
                Some(kind @ (EventKind::Chunk | EventKind::Message)) if chunks => return Ok(Some(kind)),
                Some(EventKind::Chunk) => return Err(Error::WebSocket(UsageError::Streaming.into())),
                Some(EventKind::Closed) | None => return self.end().await.map(|()| None),
                Some(_) => {
                    self.rx.poll_event();
                }
            }
        }
    }

    pub(crate) async fn recv(&mut self) -> Result<Option<Message<'_>>, Error> {
        if self.next_data(false).await?.is_none() {
            return Ok(None);
        }
        Ok(match self.rx.poll_event() {
            Some(Event::Message(message)) => Some(message),
            _ => None,
        })
    }

    pub(crate) async fn recv_chunk(&mut self) -> Result<Option<Chunk<'_>>, Error> {
        if self.next_data(true).await?.is_none() {
            return Ok(None);
        }
        Ok(match self.rx.poll_event() {
            Some(Event::Chunk(chunk)) => Some(chunk),
            Some(Event::Message(message)) => Some(Chunk::whole(message)),
            _ => None,
        })
    }

    pub(crate) fn poll_next_owned(&mut self, cx: &mut Context<'_>, reported: &mut bool) -> Poll<Next> {
        loop {
            match core::task::ready!(self.poll_event_kind(cx)) {
                Some(EventKind::Message) => {
                    if let Some(OwnedEvent::Message(message)) = self.rx.poll_owned() {
                        return Poll::Ready(Some(Ok(message)));
                    }
                }
                Some(EventKind::Chunk) => {
                    return Poll::Ready(Some(Err(Error::WebSocket(UsageError::Streaming.into()))));
                }
                Some(EventKind::Closed) | None => {
                    let result = if self.closed_taken { self.outcome() } else { self.take_closed() };
                    core::task::ready!(self.poll_finish(cx));
                    return Poll::Ready(match result {
                        Err(e) if !core::mem::replace(reported, true) => Some(Err(e)),
                        _ => None,
                    });
                }
                Some(_) => {
                    self.rx.poll_owned();
                }
            }
        }
    }
}

/// What queues messages: a whole connection or a send half.
pub(crate) trait Queue {
    fn send(&mut self, message: Message<'_>) -> Result<(), crate::Error>;
    fn send_owned(&mut self, message: OwnedMessage) -> Result<(), crate::Error>;
    fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), crate::Error>;
    fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<(), crate::Error>;
    fn send_ping(&mut self, payload: &[u8]) -> Result<(), crate::Error>;
    fn is_full(&self) -> bool;
}

macro_rules! queue {
    ($t:ty) => {
        impl Queue for $t {
            fn send(&mut self, message: Message<'_>) -> Result<(), crate::Error> {
                <$t>::send(self, message)
            }
            fn send_owned(&mut self, message: OwnedMessage) -> Result<(), crate::Error> {
                <$t>::send_owned(self, message)
            }
            fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), crate::Error> {
                <$t>::send_prepared(self, prepared)
            }
            fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<(), crate::Error> {
                <$t>::send_chunk(self, kind, data, fin)
            }
            fn send_ping(&mut self, payload: &[u8]) -> Result<(), crate::Error> {
                <$t>::send_ping(self, payload)
            }
            fn is_full(&self) -> bool {
                self.buffered_amount() >= self.config().write_buffer_high_water
            }
        }
    };
}

queue!(Connection);
queue!(SendHalf);

/// A whole message, as a queuing closure.
pub(crate) fn send_message<Q: Queue>(message: Message<'_>) -> impl FnMut(&mut Q) -> Result<(), crate::Error> + '_ {
    move |q| q.send(message)
}

/// An owned message, queued once: the closure is retried while the buffer
/// is full, so it hands the message over only when there is room.
pub(crate) fn send_owned<Q: Queue>(message: OwnedMessage) -> impl FnMut(&mut Q) -> Result<(), crate::Error> {
    let mut message = Some(message);
    move |q| {
        if q.is_full() {
            return Err(crate::Error::WriteBufferFull);
        }
        match message.take() {
            Some(m) => q.send_owned(m),
            None => Ok(()),
        }
    }
}

/// A prepared message.
pub(crate) fn send_prepared<Q: Queue>(
    prepared: &PreparedMessage,
) -> impl FnMut(&mut Q) -> Result<(), crate::Error> + '_ {
    move |q| q.send_prepared(prepared)
}

/// One piece of a streamed message.
pub(crate) fn send_chunk<Q: Queue>(
    kind: MessageKind,
    data: &[u8],
    fin: bool,
) -> impl FnMut(&mut Q) -> Result<(), crate::Error> + '_ {
    move |q| q.send_chunk(kind, data, fin)
}

/// A ping.
pub(crate) fn send_ping<Q: Queue>(payload: &[u8]) -> impl FnMut(&mut Q) -> Result<(), crate::Error> + '_ {
    move |q| q.send_ping(payload)
}
