//! The tokio adapter (feature `tokio`): a [`WebSocket`] over any
//! `tokio::io::AsyncRead + AsyncWrite` stream (a `TcpStream`, a TLS stream,
//! a hyper `Upgraded`), on the same sans-IO [`Connection`] as every other
//! adapter. This file only joins tokio's traits, timer and cooperative
//! budget to the shared drive loop; it makes no protocol decision.
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use wscore::{Message, OwnedMessage};
//!
//! # async fn run() -> Result<(), wscore::tokio::Error> {
//! // wss:// too, with the `rustls` feature.
//! let (mut ws, _response) = wscore::tokio::connect("ws://127.0.0.1:9001/").await?;
//! ws.send(Message::Text("hello")).await?;
//! // Borrowed, no allocation:
//! if let Some(reply) = ws.recv().await? {
//!     println!("{reply:?}");
//! }
//! // Or as a Stream/Sink of owned messages:
//! ws.feed(OwnedMessage::text("again")).await?;
//! while let Some(message) = ws.next().await {
//!     println!("{:?}", message?);
//!     break;
//! }
//! ws.close(wscore::CloseCode::NORMAL, "bye").await?;
//! # Ok(()) }
//! ```
//!
//! # Cancel safety
//! Every async method keeps its state in the `WebSocket`, never in a local
//! across an `.await`: dropping a `recv` (or `next`, `recv_chunk`) future,
//! in `select!` or a `timeout`, loses nothing; the message comes with the
//! next call. A dropped `send` either queued the whole message (it goes out
//! with the next write) or nothing. A dropped `close` leaves the closing
//! handshake under way; call `close` again to finish it.
//!
//! # Timers and fairness
//! Heartbeats, timeouts and lingering use tokio's timer (the runtime needs
//! its time driver enabled, as `#[tokio::main]` does); deadlines are checked
//! against the clock, since a timer may fire late. Each delivered event
//! uses tokio's cooperative budget, so a connection that always has input
//! cannot starve other tasks. Timers run while a task polls the
//! `WebSocket` (a `recv` parked waiting is enough).
//!
//! # Dropping
//! Dropping a `WebSocket` without `close` drops the transport at once: the
//! peer sees the connection end without a closing handshake (1006).

use alloc::boxed::Box;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ::tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use ::tokio::net::TcpStream;
use bytes::{BufMut, BytesMut};
use core::future::Future;

pub use crate::driver::Error;
use crate::driver::{self, Driver, Next, ReadSide, WriteSide};
#[cfg(feature = "rustls")]
use crate::tls::Tls;
#[cfg(feature = "rustls")]
use crate::tls::rustls::{ClientConfig, ClientConnection, ConnectionCommon, ServerConfig, ServerConnection, SideData};
use crate::{
    Accept, Chunk, ClientHandshake, CloseCode, Config, Connection, Message, MessageKind, OwnedMessage, PreparedMessage,
    Reject, Request, Response, Role,
};

/// A tokio stream as the driver's transport.
#[derive(Debug)]
struct Io<S>(S);

impl<S: AsyncRead + Unpin> driver::Read for Io<S> {
    fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let mut buf = ReadBuf::new(buf);
        Pin::new(&mut self.0).poll_read(cx, &mut buf).map_ok(|()| buf.filled().len())
    }

    // tokio reads into uninitialised memory, so room need not be zeroed.
    const READS_SPARE: bool = true;

    fn poll_read_spare(&mut self, cx: &mut Context<'_>, buf: &mut BytesMut, limit: usize) -> Poll<io::Result<usize>> {
        let mut limited = BufMut::limit(buf, limit);
        let read = ::tokio::io::AsyncReadExt::read_buf(&mut self.0, &mut limited);
        core::pin::pin!(read).poll(cx)
    }

    fn poll_read_scratch(
        &mut self,
        cx: &mut Context<'_>,
        limit: usize,
        take: &mut dyn FnMut(&[u8]),
    ) -> Poll<io::Result<usize>> {
        let mut scratch = [core::mem::MaybeUninit::<u8>::uninit(); driver::READ_SIZE];
        let mut buf = ReadBuf::uninit(&mut scratch[..limit.min(driver::READ_SIZE)]);
        let result = Pin::new(&mut self.0).poll_read(cx, &mut buf);
        if let Poll::Ready(Ok(())) = result {
            take(buf.filled());
        }
        result.map_ok(|()| buf.filled().len())
    }
}

impl<S: AsyncWrite + Unpin> driver::Write for Io<S> {
    fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// tokio's timer, allocated on first use, and its cooperative budget.
#[derive(Debug, Default)]
struct Clock(Option<Pin<Box<::tokio::time::Sleep>>>);

impl driver::Timer for Clock {
    fn poll_at(&mut self, cx: &mut Context<'_>, deadline: Instant) -> Poll<()> {
        let deadline = ::tokio::time::Instant::from_std(deadline);
        let sleep = self.0.get_or_insert_with(|| Box::pin(::tokio::time::sleep_until(deadline)));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        sleep.as_mut().poll(cx)
    }

    fn clear(&mut self) {
        self.0 = None;
    }

    fn poll_budget(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        ::tokio::task::coop::poll_proceed(cx).map(|restore| restore.made_progress())
    }
}

type Inner<S> = Driver<Io<S>, Clock>;

/// A WebSocket over a tokio stream. See the [module docs](self).
///
/// Receive with [`recv`](Self::recv) (borrowed, cancel-safe) or as a
/// `Stream` of [`OwnedMessage`]s; send with [`send`](Self::send) and the
/// `send_*` methods or as a `Sink<OwnedMessage>`; [`split`](Self::split)
/// for a reader task and a writer task.
#[derive(Debug)]
pub struct WebSocket<S> {
    inner: Inner<S>,
    reported: bool,
}

/// Connects to a `ws://` or `wss://` URL over TCP and performs the client
/// handshake.
///
/// `wss://` needs the `rustls` feature; the server's certificate is then
/// checked against Mozilla's roots for the URL's host (see
/// [`crate::tls`]), and [`Config::handshake_timeout`] bounds the TLS and
/// WebSocket handshakes together. Without the feature a `wss://` URL fails
/// with an `Unsupported` error that names it. For another trust store or a
/// client certificate use `connect_with_tls`; for another stream (a
/// proxy's tunnel, say), connect it yourself and call [`client`] (or
/// `client_tls`).
///
/// ```no_run
/// # async fn run() -> Result<(), wscore::tokio::Error> {
/// let (mut ws, _response) = wscore::tokio::connect("wss://echo.example/").await?;
/// ws.send(wscore::Message::Text("hello")).await?;
/// # Ok(()) }
/// ```
pub async fn connect(url: &str) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    connect_with(url, Config::default()).await
}

/// [`connect`] with a configuration.
pub async fn connect_with(url: &str, config: Config) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let handshake = ClientHandshake::new(url).map_err(crate::Error::from)?;
    let tcp = connect_tcp(&handshake).await?;
    #[cfg(feature = "rustls")]
    if handshake.is_secure() {
        return connect_secure(tcp, handshake, config, crate::tls::default_client_config()).await;
    }
    client(MaybeTlsStream::Plain(tcp), handshake, config).await
}

/// [`connect_with`], with `tls` as the TLS client configuration for a
/// `wss://` URL (ignored for `ws://`): a private CA, the platform's roots,
/// a client certificate. The server name checked is still the URL's host.
///
/// ```no_run
/// use std::sync::Arc;
/// use wscore::tls::rustls::RootCertStore;
///
/// # async fn run(my_ca_der: Vec<u8>) -> Result<(), wscore::tokio::Error> {
/// let mut roots = RootCertStore::empty();
/// roots.add(my_ca_der.into()).expect("a CA certificate");
/// let tls = Arc::new(wscore::tls::client_config(roots));
/// let url = "wss://internal.example/";
/// let (mut ws, _) = wscore::tokio::connect_with_tls(url, wscore::Config::default(), tls).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "rustls")]
pub async fn connect_with_tls(
    url: &str,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let handshake = ClientHandshake::new(url).map_err(crate::Error::from)?;
    let tcp = connect_tcp(&handshake).await?;
    if handshake.is_secure() {
        return connect_secure(tcp, handshake, config, tls).await;
    }
    client(MaybeTlsStream::Plain(tcp), handshake, config).await
}

async fn connect_tcp(handshake: &ClientHandshake) -> Result<TcpStream, Error> {
    #[cfg(not(feature = "rustls"))]
    if handshake.is_secure() {
        return Err(Error::Io(crate::driver::wss_unsupported()));
    }
    let host = handshake.host().trim_start_matches('[').trim_end_matches(']');
    let stream = TcpStream::connect((host, handshake.port())).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[cfg(feature = "rustls")]
async fn connect_secure(
    tcp: TcpStream,
    handshake: ClientHandshake,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<MaybeTlsStream>, Response), Error> {
    let (ws, response) = client_tls(tcp, handshake, config, tls).await?;
    let WebSocket { inner: Driver { conn, io, timer, epoch, .. }, reported } = ws;
    let stream = MaybeTlsStream::Rustls(Box::new(io.0));
    Ok((WebSocket { inner: Driver::new(conn, Io(stream), timer, epoch), reported }, response))
}

/// Performs the client handshake over a connected `stream` (a TLS stream
/// for `wss://`, say).
pub fn client<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    handshake: ClientHandshake,
    config: Config,
) -> impl Future<Output = Result<(WebSocket<S>, Response), Error>> {
    client_from(stream, handshake, config, Instant::now(), Clock::default())
}

/// [`client`], its connection's time zero at `epoch` (so that the
/// handshake timeout can count a TLS handshake too). The connection is
/// built now, so the future holds it once.
fn client_from<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    handshake: ClientHandshake,
    config: Config,
    epoch: Instant,
    clock: Clock,
) -> impl Future<Output = Result<(WebSocket<S>, Response), Error>> {
    let driver =
        Connection::client(handshake, config, Duration::ZERO).map(|conn| Driver::new(conn, Io(stream), clock, epoch));
    crate::driver::connected(driver, |inner| WebSocket { inner, reported: false })
}

/// Performs the TLS handshake over a connected `stream` with `tls` as the
/// client configuration and the handshake's host as the server name, then
/// the WebSocket handshake; both within [`Config::handshake_timeout`].
/// For `wss://` over a stream [`connect`] cannot open (a proxy's tunnel, a
/// Unix socket); `tls` may be [`crate::tls::default_client_config`].
///
/// ```no_run
/// # async fn run() -> Result<(), wscore::tokio::Error> {
/// let tcp = tokio::net::TcpStream::connect("echo.example:443").await?;
/// let handshake = wscore::ClientHandshake::new("wss://echo.example/")?;
/// let tls = wscore::tls::default_client_config();
/// let (ws, _) = wscore::tokio::client_tls(tcp, handshake, wscore::Config::default(), tls).await?;
/// # Ok(()) }
/// ```
#[cfg(feature = "rustls")]
pub async fn client_tls<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    handshake: ClientHandshake,
    config: Config,
    tls: Arc<ClientConfig>,
) -> Result<(WebSocket<TlsStream<S>>, Response), Error> {
    let epoch = Instant::now();
    let mut clock = Clock::default();
    let session = ClientConnection::new(tls, crate::tls::server_name(&handshake)?).map_err(invalid_tls_config)?;
    let mut tls = Tls::new(Io(stream), session);
    tls.handshake(&mut clock, config.handshake_timeout.map(|t| epoch + t)).await?;
    client_from(TlsStream(tls), handshake, config, epoch, clock).await
}

/// Accepts a WebSocket on `stream` with the default configuration and no
/// subprotocol.
pub fn accept<S: AsyncRead + AsyncWrite + Unpin>(stream: S) -> impl Future<Output = Result<WebSocket<S>, Error>> {
    accept_with(stream, Config::default(), |_| Ok(Accept::new()))
}

/// Accepts a WebSocket on `stream`; `decide` sees the request and accepts
/// it (choosing a subprotocol, adding headers) or rejects it with an HTTP
/// response. Bad requests are answered with an HTTP error before `decide`
/// is called; the handshake is bounded by [`Config::handshake_timeout`].
pub fn accept_with<S, F>(stream: S, config: Config, decide: F) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
{
    accept_from(stream, config, decide, Instant::now(), Clock::default())
}

/// [`accept_with`], its connection's time zero at `epoch`. The connection
/// is built now, so the future holds it once.
fn accept_from<S, F>(
    stream: S,
    config: Config,
    decide: F,
    epoch: Instant,
    clock: Clock,
) -> impl Future<Output = Result<WebSocket<S>, Error>>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
{
    let driver = Connection::server(config, Duration::ZERO).map(|conn| Driver::new(conn, Io(stream), clock, epoch));
    crate::driver::accepted(driver, decide, |inner| WebSocket { inner, reported: false })
}

/// Accepts a WebSocket over TLS on `stream` (a freshly accepted
/// `TcpStream`): the TLS handshake with `tls` as the server configuration,
/// then the WebSocket handshake as [`accept_with`] does, both within
/// [`Config::handshake_timeout`], so a client that connects and stays
/// silent costs a task for that long at most.
///
/// ```no_run
/// use std::sync::Arc;
/// use wscore::tls::rustls::ServerConfig;
///
/// # async fn run(tls: Arc<ServerConfig>) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:443").await?;
/// loop {
///     let (tcp, _) = listener.accept().await?;
///     let tls = Arc::clone(&tls);
///     tokio::spawn(async move {
///         let config = wscore::Config::default();
///         let Ok(mut ws) = wscore::tokio::accept_tls(tcp, tls, config, |_| Ok(wscore::Accept::new())).await else {
///             return;
///         };
///         while let Ok(Some(message)) = ws.recv().await {
///             println!("{message:?}");
///         }
///     });
/// }
/// # }
/// ```
#[cfg(feature = "rustls")]
pub async fn accept_tls<S, F>(
    stream: S,
    tls: Arc<ServerConfig>,
    config: Config,
    decide: F,
) -> Result<WebSocket<TlsStream<S, ServerConnection>>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
{
    let epoch = Instant::now();
    let mut clock = Clock::default();
    let session = ServerConnection::new(tls).map_err(invalid_tls_config)?;
    let mut tls = Tls::new(Io(stream), session);
    tls.handshake(&mut clock, config.handshake_timeout.map(|t| epoch + t)).await?;
    accept_from(TlsStream(tls), config, decide, epoch, clock).await
}

#[cfg(feature = "rustls")]
fn invalid_tls_config(e: crate::tls::rustls::Error) -> Error {
    Error::Io(io::Error::new(io::ErrorKind::InvalidInput, e))
}

// ----- TLS ------------------------------------------------------------------

/// The stream [`connect`] opens: plain TCP for `ws://`, TLS over TCP for
/// `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection (feature `rustls`).
    #[cfg(feature = "rustls")]
    Rustls(Box<TlsStream<TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath, for its addresses and socket options.
    /// Reading or writing it directly breaks the framing (and the TLS).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.get_ref(),
        }
    }
}

impl AsyncRead for MaybeTlsStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTlsStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => Pin::new(&mut **tls).poll_shutdown(cx),
        }
    }
}

/// A TLS stream over a tokio stream `S` (feature `rustls`): what
/// [`client_tls`] and [`connect`] (as [`MaybeTlsStream::Rustls`]) put
/// under a client's WebSocket, and, with `C` = `ServerConnection`,
/// [`accept_tls`] under a server's. Its rustls session tells what was
/// negotiated ([`session`](Self::session)). Shutting it down sends
/// `close_notify` first. See [`crate::tls`] for how it works.
#[cfg(feature = "rustls")]
pub struct TlsStream<S, C = ClientConnection>(Tls<Io<S>, C>);

#[cfg(feature = "rustls")]
impl<S, C: core::fmt::Debug> core::fmt::Debug for TlsStream<S, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("TlsStream").field(&self.0).finish()
    }
}

#[cfg(feature = "rustls")]
impl<S, C> TlsStream<S, C> {
    /// The stream underneath. Reading or writing it directly breaks the
    /// TLS.
    pub fn get_ref(&self) -> &S {
        &self.0.get_ref().0
    }

    /// The stream underneath, mutably (for socket options).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.0.get_mut().0
    }

    /// The rustls session: the negotiated protocol version, ALPN protocol,
    /// the peer's certificates, and for a server the SNI name the client
    /// asked for.
    pub fn session(&self) -> &C {
        self.0.session()
    }
}

#[cfg(feature = "rustls")]
impl<S, C, D> AsyncRead for TlsStream<S, C>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: core::ops::DerefMut + core::ops::Deref<Target = ConnectionCommon<D>> + Unpin,
    D: SideData,
{
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = core::task::ready!(driver::Read::poll_read(&mut self.get_mut().0, cx, buf.initialize_unfilled()))?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(feature = "rustls")]
impl<S, C, D> AsyncWrite for TlsStream<S, C>
where
    S: AsyncRead + AsyncWrite + Unpin,
    C: core::ops::DerefMut + core::ops::Deref<Target = ConnectionCommon<D>> + Unpin,
    D: SideData,
{
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        driver::Write::poll_write_vectored(&mut self.get_mut().0, cx, &[IoSlice::new(buf)])
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        driver::Write::poll_write_vectored(&mut self.get_mut().0, cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        driver::Write::is_write_vectored(&self.0)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        driver::Write::poll_flush(&mut self.get_mut().0, cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        driver::Write::poll_shutdown(&mut self.get_mut().0, cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocket<S> {
    /// Wraps a stream whose upgrade another HTTP stack performed (hyper,
    /// axum, an HTTP/2 extended CONNECT stream).
    pub fn from_upgraded(stream: S, role: Role, config: Config) -> Result<Self, Error> {
        Ok(Self::open(stream, Connection::frames_only(role, config, Duration::ZERO)?))
    }

    /// [`from_upgraded`](Self::from_upgraded) for a handshake that agreed
    /// on permessage-deflate with `params` (see [`crate::deflate::negotiate`]
    /// and [`Accept::answer`]).
    pub fn from_upgraded_with_deflate(
        stream: S,
        role: Role,
        config: Config,
        params: crate::deflate::DeflateParams,
    ) -> Result<Self, Error> {
        Ok(Self::open(stream, Connection::frames_only_with_deflate(role, config, params, Duration::ZERO)?))
    }

    fn open(stream: S, conn: Connection) -> Self {
        Self { inner: Driver::new(conn, Io(stream), Clock::default(), Instant::now()), reported: false }
    }

    /// The next whole message, borrowed until the next call: no allocation,
    /// no copy. `Ok(None)` once the connection closed cleanly (after the
    /// closing handshake and the transport's shutdown), the error if it
    /// failed. Pings are answered and timers run meanwhile.
    ///
    /// Cancel-safe: a dropped call loses nothing; the message comes with
    /// the next call.
    pub async fn recv(&mut self) -> Result<Option<Message<'_>>, Error> {
        self.inner.recv().await
    }

    /// The next piece of a message, when messages are streamed (see
    /// [`set_streaming`](Self::set_streaming)); a message that arrived whole
    /// comes as one final piece.
    ///
    /// Cancel-safe, as [`recv`](Self::recv).
    pub async fn recv_chunk(&mut self) -> Result<Option<Chunk<'_>>, Error> {
        self.inner.recv_chunk().await
    }

    /// Delivers messages that begin from now on in pieces as they arrive
    /// ([`recv_chunk`](Self::recv_chunk)) instead of whole, so a large
    /// message is never held whole.
    pub fn set_streaming(&mut self, streaming: bool) {
        self.inner.conn.set_streaming(streaming);
    }

    /// Sends a message, waiting while the send buffer is at its high-water
    /// mark (backpressure), and writes everything queued.
    ///
    /// Cancel-safe in the sense that a dropped call queued the whole
    /// message or nothing; once queued, it goes out with the next write.
    pub async fn send(&mut self, message: Message<'_>) -> Result<(), Error> {
        self.inner.send(driver::send_message(message)).await
    }

    /// Sends an owned message; a server sends a large payload without
    /// copying it (see [`Connection::send_owned`]).
    ///
    /// Cancel safety: as [`send`](Self::send).
    pub async fn send_owned(&mut self, message: OwnedMessage) -> Result<(), Error> {
        self.inner.send(driver::send_owned(message)).await
    }

    /// Sends a message prepared once for many connections.
    ///
    /// Cancel safety: as [`send`](Self::send).
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.inner.send(driver::send_prepared(prepared)).await
    }

    /// Sends one piece of a streamed message (see [`Connection::send_chunk`]).
    ///
    /// Cancel safety: as [`send`](Self::send).
    pub async fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<(), Error> {
        self.inner.send(driver::send_chunk(kind, data, fin)).await
    }

    /// Queues a prepared message without writing it (see
    /// [`feed`](Self::feed)), so a backlog goes out in few writes.
    ///
    /// Cancel safety: as [`send`](Self::send).
    pub async fn feed_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        self.inner.feed(driver::send_prepared(prepared)).await
    }

    /// Queues a message without writing it unless the send buffer is at its
    /// high-water mark; [`flush`](Self::flush) writes.
    ///
    /// Cancel safety: as [`send`](Self::send).
    pub async fn feed(&mut self, message: OwnedMessage) -> Result<(), Error> {
        self.inner.feed(driver::send_owned(message)).await
    }

    /// Writes everything queued.
    ///
    /// Cancel-safe: what was not written yet stays queued.
    pub async fn flush(&mut self) -> Result<(), Error> {
        self.inner.flush().await
    }

    /// Sends a ping.
    ///
    /// Cancel safety: as [`send`](Self::send).
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        self.inner.send(driver::send_ping(payload)).await
    }

    /// Performs the closing handshake: our close frame, incoming messages
    /// discarded until the peer's close (at most [`Config::close_timeout`]),
    /// then lingering and the transport's shutdown. `Ok` if it closed
    /// cleanly (also when the peer closed first).
    ///
    /// Cancel safety: a dropped call leaves the closing handshake under
    /// way (our close frame queued or sent); call `close` again, or keep
    /// calling `recv` until it returns `Ok(None)`, to finish it.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        self.inner.close(code, reason).await
    }

    /// The connection state machine.
    pub fn connection(&self) -> &Connection {
        &self.inner.conn
    }

    /// The stream. Reading or writing it directly breaks the framing.
    pub fn get_ref(&self) -> &S {
        &self.inner.io.0
    }

    /// Splits into a reader and a writer for two tasks. The reader answers
    /// pings and the closing handshake itself, through the shared write
    /// side, even while the writer is idle or waiting; the writer reports
    /// any error the reader met. No lock is held across an `.await`.
    pub fn split(self) -> (ReadHalf<S>, WriteHalf<S>) {
        let Driver { conn, io, timer, epoch, .. } = self.inner;
        let (read, write) = ::tokio::io::split(io.0);
        let (rx, tx) = conn.split().unwrap_or_else(|_| unreachable!("a WebSocket is past its handshake"));
        let side = WriteSide::new(tx, Io(write));
        let reader = ReadSide::new(rx, Io(read), Arc::clone(&side), timer, epoch);
        (ReadHalf { side: reader, reported: false }, WriteHalf { side, epoch })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for WebSocket<S> {
    type Item = Result<OwnedMessage, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Next> {
        let this = self.get_mut();
        this.inner.poll_next_owned(cx, &mut this.reported)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_sink::Sink<OwnedMessage> for WebSocket<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_writable(cx)
    }
    fn start_send(self: Pin<&mut Self>, message: OwnedMessage) -> Result<(), Error> {
        Ok(self.get_mut().inner.conn.send_owned(message)?)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_write_out(cx)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.get_mut().inner.poll_close(cx)
    }
}

// ----- Split halves ---------------------------------------------------------

type Reader<S> = Io<::tokio::io::ReadHalf<S>>;
type Writer<S> = Io<::tokio::io::WriteHalf<S>>;

/// The reading half of a split [`WebSocket`]: messages in, and what the
/// connection owes the peer (pongs, the close answer) out through the
/// shared write side. Also a `Stream` of owned messages.
pub struct ReadHalf<S> {
    side: ReadSide<Reader<S>, Writer<S>, Clock>,
    reported: bool,
}

/// The writing half of a split [`WebSocket`]. Also a `Sink` of owned
/// messages.
pub struct WriteHalf<S> {
    side: Arc<Mutex<WriteSide<Writer<S>>>>,
    epoch: Instant,
}

impl<S> core::fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadHalf").field("rx", &self.side.rx).finish_non_exhaustive()
    }
}

impl<S> core::fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WriteHalf").finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// See [`WebSocket::recv`]. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Option<Message<'_>>, Error> {
        self.side.recv().await
    }

    /// See [`WebSocket::recv_chunk`]. Cancel-safe.
    pub async fn recv_chunk(&mut self) -> Result<Option<Chunk<'_>>, Error> {
        self.side.recv_chunk().await
    }

    /// See [`WebSocket::set_streaming`].
    pub fn set_streaming(&mut self, streaming: bool) {
        self.side.rx.set_streaming(streaming);
    }

    /// Puts the halves back together; gives them back if they belong to
    /// different sockets.
    // The error hands both halves back untouched, as tokio's `unsplit` does.
    #[allow(clippy::result_large_err)]
    pub fn reunite(self, write: WriteHalf<S>) -> Result<WebSocket<S>, (Self, WriteHalf<S>)> {
        if !Arc::ptr_eq(&self.side.write, &write.side) {
            return Err((self, write));
        }
        let ReadSide { rx, io: read, write: shared, timer, .. } = self.side;
        drop(shared);
        let Ok(mutex) = Arc::try_unwrap(write.side) else { unreachable!("both references were just taken") };
        let side = mutex.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
        let stream = read.0.unsplit(side.io.0);
        let conn = rx.reunite(side.tx).unwrap_or_else(|_| unreachable!("the halves came from one connection"));
        Ok(WebSocket { inner: Driver::new(conn, Io(stream), timer, write.epoch), reported: false })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_core::Stream for ReadHalf<S> {
    type Item = Result<OwnedMessage, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Next> {
        let this = self.get_mut();
        this.side.poll_next_owned(cx, &mut this.reported)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// See [`WebSocket::send`].
    pub async fn send(&mut self, message: Message<'_>) -> Result<(), Error> {
        driver::send_half(&self.side, driver::send_message(message), true).await
    }

    /// See [`WebSocket::send_owned`].
    pub async fn send_owned(&mut self, message: OwnedMessage) -> Result<(), Error> {
        driver::send_half(&self.side, driver::send_owned(message), true).await
    }

    /// See [`WebSocket::send_prepared`].
    pub async fn send_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        driver::send_half(&self.side, driver::send_prepared(prepared), true).await
    }

    /// See [`WebSocket::send_chunk`].
    pub async fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Result<(), Error> {
        driver::send_half(&self.side, driver::send_chunk(kind, data, fin), true).await
    }

    /// See [`WebSocket::feed_prepared`].
    pub async fn feed_prepared(&mut self, prepared: &PreparedMessage) -> Result<(), Error> {
        driver::send_half(&self.side, driver::send_prepared(prepared), false).await
    }

    /// See [`WebSocket::feed`].
    pub async fn feed(&mut self, message: OwnedMessage) -> Result<(), Error> {
        driver::send_half(&self.side, driver::send_owned(message), false).await
    }

    /// See [`WebSocket::flush`].
    pub async fn flush(&mut self) -> Result<(), Error> {
        driver::flush_half(&self.side).await
    }

    /// See [`WebSocket::ping`].
    pub async fn ping(&mut self, payload: &[u8]) -> Result<(), Error> {
        driver::send_half(&self.side, driver::send_ping(payload), true).await
    }

    /// Sends our close frame. The closing handshake completes on the
    /// reading half, whose `recv` then returns `Ok(None)` and shuts the
    /// transport down; keep it reading.
    pub async fn close(&mut self, code: CloseCode, reason: &str) -> Result<(), Error> {
        let now = self.epoch.elapsed();
        driver::lock(&self.side).tx.close(now, code, reason)?;
        driver::flush_half(&self.side).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> futures_sink::Sink<OwnedMessage> for WriteHalf<S> {
    type Error = Error;
    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut side = driver::lock(&self.side);
        while side.tx.buffered_amount() >= side.tx.config().write_buffer_high_water {
            core::task::ready!(side.poll_transmit(driver::Who::Writer, cx))?;
        }
        Poll::Ready(Ok(()))
    }
    fn start_send(self: Pin<&mut Self>, message: OwnedMessage) -> Result<(), Error> {
        Ok(driver::lock(&self.side).tx.send_owned(message)?)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        driver::lock(&self.side).poll_transmit(driver::Who::Writer, cx).map_err(Error::Io)
    }
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let mut side = driver::lock(&self.side);
        if side.tx.state() == crate::State::Open {
            let now = self.epoch.elapsed();
            side.tx.close(now, CloseCode::NORMAL, "")?;
        }
        side.poll_transmit(driver::Who::Writer, cx).map_err(Error::Io)
    }
}
