//! What the behaviours are written against: a [`Ws`] facade that every
//! adapter's `WebSocket` implements (messages in and out as owned copies,
//! errors as one [`Fail`] type), and an [`Adapter`] that says how to run,
//! spawn, sleep, connect and accept in that adapter's runtime.
//!
//! The facade is async. The blocking adapter implements it with `async fn`s
//! that block, which is sound because its [`Adapter::spawn`] gives every
//! task a thread of its own: nothing else is ever waiting to be polled on
//! a thread that a blocking call holds.

use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::panic::{self, AssertUnwindSafe};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, mpsc};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use wscore::{CloseCode, Closed, Config, Connection, Message, MessageKind};

/// A test that has not finished after this long is taken to hang: the
/// watchdog aborts the process so the run fails instead of stalling CI.
/// Every test takes a few seconds at most, even on a loaded 2-core machine.
const HANG_LIMIT: Duration = Duration::from_secs(90);

// ----- Messages and errors ----------------------------------------------------

/// An owned copy of a message, so that tests can keep and compare them
/// whatever the adapter lends.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Msg {
    Text(String),
    Binary(Vec<u8>),
}

impl Msg {
    pub(crate) fn of(message: Message<'_>) -> Self {
        match message {
            Message::Text(text) => Self::Text(text.to_owned()),
            Message::Binary(data) => Self::Binary(data.to_vec()),
        }
    }

    pub(crate) fn as_message(&self) -> Message<'_> {
        match self {
            Self::Text(text) => Message::Text(text),
            Self::Binary(data) => Message::Binary(data),
        }
    }

    #[cfg(feature = "bytes")]
    pub(crate) fn to_owned_message(&self) -> wscore::OwnedMessage {
        match self {
            Self::Text(text) => wscore::OwnedMessage::text(text.clone()),
            Self::Binary(data) => wscore::OwnedMessage::binary(data.clone()),
        }
    }

    pub(crate) fn kind(&self) -> MessageKind {
        self.as_message().kind()
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.as_message().as_bytes()
    }
}

// Megabyte messages in an assertion failure would bury the difference.
impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (kind, bytes) = match self {
            Self::Text(_) => ("Text", self.as_bytes()),
            Self::Binary(_) => ("Binary", self.as_bytes()),
        };
        let shown = &bytes[..bytes.len().min(32)];
        write!(f, "{kind}({} bytes: {:?}", bytes.len(), String::from_utf8_lossy(shown))?;
        f.write_str(if shown.len() < bytes.len() { "…)" } else { ")" })
    }
}

/// One piece of a streamed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Piece {
    pub(crate) kind: MessageKind,
    pub(crate) data: Vec<u8>,
    pub(crate) fin: bool,
}

/// How an operation failed, in the same terms for every adapter.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fail {
    /// The core's error: the peer broke the protocol, a deadline passed,
    /// the call was not valid now.
    Ws(wscore::Error),
    /// The transport failed.
    Io(io::ErrorKind),
    /// The server refused the upgrade with this status.
    Rejected(u16),
}

pub(crate) type Res<T> = Result<T, Fail>;

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        // The blocking adapter wraps the core's errors in `io::Error`s.
        match wscore::blocking::ws_error(&e) {
            Some(error) => Self::Ws(*error),
            None => Self::Io(e.kind()),
        }
    }
}

impl From<wscore::Error> for Fail {
    fn from(e: wscore::Error) -> Self {
        Self::Ws(e)
    }
}

// The tokio and futures-io adapters share one error type.
#[cfg(feature = "tokio")]
use wscore::tokio::Error as AsyncError;

#[cfg(all(feature = "futures-io", not(feature = "tokio")))]
use wscore::futures::Error as AsyncError;

#[cfg(any(feature = "tokio", feature = "futures-io"))]
impl From<AsyncError> for Fail {
    fn from(e: AsyncError) -> Self {
        match e {
            AsyncError::WebSocket(e) => Self::Ws(e),
            AsyncError::Io(e) => Self::Io(e.kind()),
            AsyncError::Rejected(response) => Self::Rejected(response.status()),
            other => panic!("an error the suite does not know: {other:?}"),
        }
    }
}

// ----- The facade ---------------------------------------------------------------

/// A connected WebSocket of some adapter, past its handshake.
pub(crate) trait Ws: Send + Sized + 'static {
    /// Sends a message and writes everything queued.
    fn send(&mut self, message: &Msg) -> impl Future<Output = Res<()>> + Send;
    /// Queues a message, writing only while the send buffer is at its
    /// high-water mark (blocking `write`, async `feed`).
    fn feed(&mut self, message: &Msg) -> impl Future<Output = Res<()>> + Send;
    /// Writes everything queued.
    fn flush(&mut self) -> impl Future<Output = Res<()>> + Send;
    /// Sends one piece of a streamed message.
    fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> impl Future<Output = Res<()>> + Send;
    /// Sends a ping.
    fn ping(&mut self, payload: &[u8]) -> impl Future<Output = Res<()>> + Send;
    /// The next whole message; `None` once the connection closed cleanly.
    fn recv(&mut self) -> impl Future<Output = Res<Option<Msg>>> + Send;
    /// The next piece of a message (see [`Ws::set_streaming`]).
    fn recv_chunk(&mut self) -> impl Future<Output = Res<Option<Piece>>> + Send;
    /// The closing handshake, to the end.
    fn close(&mut self, code: CloseCode, reason: &str) -> impl Future<Output = Res<()>> + Send;
    /// Messages that begin from now on come in pieces.
    fn set_streaming(&mut self, streaming: bool);
    /// The connection, for its getters.
    fn connection(&self) -> &Connection;
}

/// An adapter and the runtime it runs on.
pub(crate) trait Adapter: Sized + 'static {
    /// Runs a test's future to completion (on a fresh runtime, where the
    /// runtime allows it).
    fn block_on<F: Future>(future: F) -> F::Output;
    /// Runs `future` as a task of its own.
    fn spawn<F>(future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;
    /// Waits `d` on the runtime's timer.
    fn sleep(d: Duration) -> impl Future<Output = ()> + Send;

    /// The WebSocket under test.
    type Ws: Ws;
    /// Connects to `ws://{addr}/` and performs the client handshake.
    fn connect(addr: SocketAddr, config: Config) -> impl Future<Output = Res<Self::Ws>> + Send;
    /// Accepts one connection on `listener` and performs the server
    /// handshake, accepting the request.
    fn accept(listener: TcpListener, config: Config) -> impl Future<Output = Res<Self::Ws>> + Send;
}

/// What the async adapters have and the blocking one has not: operations
/// that can be cancelled, split halves, and a `Stream`/`Sink` face.
#[cfg(any(feature = "tokio", feature = "futures-io"))]
pub(crate) trait AsyncAdapter: Adapter<Ws: AsyncWs> {
    /// `future`'s output, or `None` if it is still pending after `d`; then
    /// it has been dropped, which cancels it.
    fn timeout<F: Future + Send>(d: Duration, future: F) -> impl Future<Output = Option<F::Output>> + Send;
}

/// The async adapters' WebSocket: [`Ws`] plus split halves and the
/// `Stream`/`Sink` of owned messages.
#[cfg(any(feature = "tokio", feature = "futures-io"))]
pub(crate) trait AsyncWs: Ws {
    type Reader: WsReader;
    type Writer: WsWriter;
    fn split(self) -> (Self::Reader, Self::Writer);
    fn reunite(reader: Self::Reader, writer: Self::Writer) -> Self;
    /// `StreamExt::next`.
    fn next(&mut self) -> impl Future<Output = Option<Res<Msg>>> + Send;
    /// `SinkExt::feed`.
    fn sink_feed(&mut self, message: &Msg) -> impl Future<Output = Res<()>> + Send;
    /// `SinkExt::flush`.
    fn sink_flush(&mut self) -> impl Future<Output = Res<()>> + Send;
    /// `SinkExt::close`.
    fn sink_close(&mut self) -> impl Future<Output = Res<()>> + Send;
}

/// The reading half of a split WebSocket.
#[cfg(any(feature = "tokio", feature = "futures-io"))]
pub(crate) trait WsReader: Send + 'static {
    fn recv(&mut self) -> impl Future<Output = Res<Option<Msg>>> + Send;
}

/// The writing half of a split WebSocket.
#[cfg(any(feature = "tokio", feature = "futures-io"))]
pub(crate) trait WsWriter: Send + 'static {
    fn send(&mut self, message: &Msg) -> impl Future<Output = Res<()>> + Send;
    fn ping(&mut self, payload: &[u8]) -> impl Future<Output = Res<()>> + Send;
    fn close(&mut self, code: CloseCode, reason: &str) -> impl Future<Output = Res<()>> + Send;
}

/// Implements the async facade for the tokio and futures-io adapters,
/// whose types differ but whose methods are the same.
#[cfg(any(feature = "tokio", feature = "futures-io"))]
macro_rules! async_ws {
    ($module:ident, $stream:ty) => {
        impl $crate::harness::Ws for wscore::$module::WebSocket<$stream> {
            async fn send(&mut self, message: &$crate::harness::Msg) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WebSocket::send(self, message.as_message()).await?)
            }
            async fn feed(&mut self, message: &$crate::harness::Msg) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WebSocket::feed(self, message.to_owned_message()).await?)
            }
            async fn flush(&mut self) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WebSocket::flush(self).await?)
            }
            async fn send_chunk(
                &mut self,
                kind: wscore::MessageKind,
                data: &[u8],
                fin: bool,
            ) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WebSocket::send_chunk(self, kind, data, fin).await?)
            }
            async fn ping(&mut self, payload: &[u8]) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WebSocket::ping(self, payload).await?)
            }
            async fn recv(&mut self) -> $crate::harness::Res<Option<$crate::harness::Msg>> {
                Ok(wscore::$module::WebSocket::recv(self).await?.map($crate::harness::Msg::of))
            }
            async fn recv_chunk(&mut self) -> $crate::harness::Res<Option<$crate::harness::Piece>> {
                let chunk = wscore::$module::WebSocket::recv_chunk(self).await?;
                Ok(chunk.map(|c| $crate::harness::Piece { kind: c.kind, data: c.data.to_vec(), fin: c.fin }))
            }
            async fn close(&mut self, code: wscore::CloseCode, reason: &str) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WebSocket::close(self, code, reason).await?)
            }
            fn set_streaming(&mut self, streaming: bool) {
                wscore::$module::WebSocket::set_streaming(self, streaming)
            }
            fn connection(&self) -> &wscore::Connection {
                wscore::$module::WebSocket::connection(self)
            }
        }

        impl $crate::harness::AsyncWs for wscore::$module::WebSocket<$stream> {
            type Reader = wscore::$module::ReadHalf<$stream>;
            type Writer = wscore::$module::WriteHalf<$stream>;
            fn split(self) -> (Self::Reader, Self::Writer) {
                wscore::$module::WebSocket::split(self)
            }
            fn reunite(reader: Self::Reader, writer: Self::Writer) -> Self {
                reader.reunite(writer).expect("the halves of one WebSocket")
            }
            async fn next(&mut self) -> Option<$crate::harness::Res<$crate::harness::Msg>> {
                let item = futures_util::StreamExt::next(self).await?;
                Some(item.map(|m| $crate::harness::Msg::of(m.as_message())).map_err(Into::into))
            }
            async fn sink_feed(&mut self, message: &$crate::harness::Msg) -> $crate::harness::Res<()> {
                Ok(futures_util::SinkExt::feed(self, message.to_owned_message()).await?)
            }
            async fn sink_flush(&mut self) -> $crate::harness::Res<()> {
                Ok(futures_util::SinkExt::flush(self).await?)
            }
            async fn sink_close(&mut self) -> $crate::harness::Res<()> {
                Ok(futures_util::SinkExt::close(self).await?)
            }
        }

        impl $crate::harness::WsReader for wscore::$module::ReadHalf<$stream> {
            async fn recv(&mut self) -> $crate::harness::Res<Option<$crate::harness::Msg>> {
                Ok(wscore::$module::ReadHalf::recv(self).await?.map($crate::harness::Msg::of))
            }
        }

        impl $crate::harness::WsWriter for wscore::$module::WriteHalf<$stream> {
            async fn send(&mut self, message: &$crate::harness::Msg) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WriteHalf::send(self, message.as_message()).await?)
            }
            async fn ping(&mut self, payload: &[u8]) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WriteHalf::ping(self, payload).await?)
            }
            async fn close(&mut self, code: wscore::CloseCode, reason: &str) -> $crate::harness::Res<()> {
                Ok(wscore::$module::WriteHalf::close(self, code, reason).await?)
            }
        }
    };
}
#[cfg(any(feature = "tokio", feature = "futures-io"))]
pub(crate) use async_ws;

// ----- Tasks, threads and a minimal executor ----------------------------------------

/// A spawned task's output, whatever the runtime; a panic in the task is
/// raised again where the task is awaited.
pub(crate) struct Task<T>(Pin<Box<dyn Future<Output = T> + Send>>);

impl<T> Task<T> {
    /// Wraps a runtime's join handle (or any future that ends with the
    /// task), given a future that catches the task's panic.
    pub(crate) fn new<F>(join: F) -> Self
    where
        F: Future<Output = thread::Result<T>> + Send + 'static,
    {
        Self(Box::pin(async move { join.await.unwrap_or_else(|panic| panic::resume_unwind(panic)) }))
    }
}

impl<T> Future for Task<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        self.0.as_mut().poll(cx)
    }
}

/// Catches a panic in `future`, so that the task's join handle reports it
/// instead of the runtime (which may swallow it, and the test would hang).
pub(crate) async fn catching<F: Future>(future: F) -> thread::Result<F::Output> {
    let mut future = pin!(future);
    poll_fn(|cx| match panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
        Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
        Ok(Poll::Pending) => Poll::Pending,
        Err(panic) => Poll::Ready(Err(panic)),
    })
    .await
}

/// Runs `f` on a thread of its own; the task ends when the thread does.
/// Raw peers and the blocking adapter's tasks run this way, so a test can
/// await them without blocking its runtime.
pub(crate) fn on_thread<T, F>(f: F) -> Task<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    type Slot<T> = Arc<Mutex<(Option<thread::Result<T>>, Option<Waker>)>>;
    let slot: Slot<T> = Arc::default();
    let theirs = Arc::clone(&slot);
    thread::spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let waker = {
            let mut slot = theirs.lock().unwrap_or_else(|e| e.into_inner());
            slot.0 = Some(result);
            slot.1.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    });
    Task::new(poll_fn(move |cx| {
        let mut slot = slot.lock().unwrap_or_else(|e| e.into_inner());
        match slot.0.take() {
            Some(result) => Poll::Ready(result),
            None => {
                slot.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }))
}

/// Polls `future` on this thread until it is done, parking in between: the
/// blocking adapter's runtime, where every task has a thread.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park();
    }
}

/// Polls `future` at most `polls` times (at least once), then drops it if
/// it is still pending: a cancellation at an exact await point, the same
/// on every runtime.
pub(crate) async fn poll_at_most<F: Future>(polls: u32, future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut left = polls.max(1);
    poll_fn(move |cx| match future.as_mut().poll(cx) {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if left <= 1 => Poll::Ready(None),
        Poll::Pending => {
            left -= 1;
            Poll::Pending
        }
    })
    .await
}

/// Runs one test on adapter `A`, failing the whole run if it hangs.
pub(crate) fn run<A: Adapter, F: Future<Output = ()>>(name: &str, test: F) {
    let (done, watch) = mpsc::channel::<()>();
    let name = name.to_owned();
    thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) = watch.recv_timeout(HANG_LIMIT) {
            // A hung task cannot be cancelled from outside (the blocking
            // adapter's never); stop the run loudly rather than stall it.
            eprintln!("{name} did not finish in {HANG_LIMIT:?}: it hangs; aborting");
            std::process::abort();
        }
    });
    A::block_on(test);
    drop(done);
}

// ----- Servers and peers --------------------------------------------------------------

/// A listener on an ephemeral loopback port, and its address.
pub(crate) fn listen() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

/// Accepts one connection with `config` in a task of `A`'s runtime and
/// runs `serve` on it. Returns the address to connect to and the task.
pub(crate) fn server<A, F, Fut>(config: Config, serve: F) -> (SocketAddr, Task<Fut::Output>)
where
    A: Adapter,
    F: FnOnce(A::Ws) -> Fut + Send + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let (listener, addr) = listen();
    let task = A::spawn(async move {
        let ws = A::accept(listener, config).await.expect("the server handshake");
        serve(ws).await
    });
    (addr, task)
}

/// How a connection ended, seen from one end.
#[derive(Debug)]
pub(crate) struct Ending {
    /// The messages received (and, for [`echo`], echoed).
    pub(crate) messages: Vec<Msg>,
    /// How receiving ended: `Ok` after `Ok(None)`, else the error.
    pub(crate) result: Res<()>,
    /// The connection's account of its end.
    pub(crate) closed: Option<Closed>,
}

impl Ending {
    /// Asserts a clean close with `code` and `reason`.
    #[track_caller]
    pub(crate) fn assert_clean(&self, code: u16, reason: &str) {
        assert_eq!(self.result, Ok(()), "{self:?}");
        let closed = self.closed.as_ref().expect("closed");
        assert!(closed.clean && closed.error.is_none(), "{closed:?}");
        assert_eq!((closed.code, &*closed.reason), (CloseCode(code), reason));
    }
}

/// Receives until the connection ends.
pub(crate) async fn drain<W: Ws>(mut ws: W) -> Ending {
    let mut messages = Vec::new();
    let result = loop {
        match ws.recv().await {
            Ok(Some(message)) => messages.push(message),
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    Ending { messages, result, closed: ws.connection().closed().cloned() }
}

/// Sends every message back until the connection ends.
pub(crate) async fn echo<W: Ws>(mut ws: W) -> Ending {
    let mut messages = Vec::new();
    let result = loop {
        let message = match ws.recv().await {
            Ok(Some(message)) => message,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        if let Err(e) = ws.send(&message).await {
            break Err(e);
        }
        messages.push(message);
    };
    Ending { messages, result, closed: ws.connection().closed().cloned() }
}

// ----- Payloads ------------------------------------------------------------------------

/// The soak tests' seeded generator (xorshift64*), seeded per test so a
/// failure replays.
#[path = "../common/rng.rs"]
mod rng;
pub(crate) use rng::Rng;

/// Text of exactly `len` bytes mixing one- to four-byte characters, so
/// that frame and read boundaries fall inside characters.
pub(crate) fn text_of(len: usize, seed: u64) -> String {
    const CHARS: [char; 6] = ['a', 'é', '€', '𝄞', ' ', 'ж'];
    let mut rng = Rng::new(seed);
    let mut text = String::with_capacity(len);
    while text.len() < len {
        let c = CHARS[rng.below(CHARS.len() as u64) as usize];
        text.push(if text.len() + c.len_utf8() <= len { c } else { '.' });
    }
    text
}

/// `len` pseudo-random bytes: incompressible, so permessage-deflate sees
/// its worst case.
pub(crate) fn binary_of(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// A configuration that offers (client) or accepts (server)
/// permessage-deflate when `deflate` is set.
pub(crate) fn config_with_deflate(deflate: bool) -> Config {
    let mut config = Config::default();
    if deflate {
        config.deflate = Some(wscore::deflate::DeflateConfig::default());
    }
    config
}
