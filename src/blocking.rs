//! The blocking adapter: a [`WebSocket`] over any `Read + Write` stream (a
//! `TcpStream`, a TLS stream), for thread-per-connection programs.
//!
//! It only moves bytes between the stream and a [`Connection`] and turns
//! the connection's deadlines into read timeouts; every protocol decision
//! is the core's. Transport errors surface as `io::Error`; protocol errors
//! as `io::Error`s that wrap a [`wscore::Error`](crate::Error) (see
//! [`ws_error`]).
//!
//! ```no_run
//! use wscore::blocking;
//! use wscore::Message;
//!
//! // wss:// too, with the `rustls` feature.
//! let (mut ws, _response) = blocking::connect("ws://127.0.0.1:9001/")?;
//! ws.send(Message::Text("hello"))?;
//! if let Some(reply) = ws.read()? {
//!     println!("{:?}", reply);
//! }
//! ws.close(wscore::CloseCode::NORMAL, "bye")?;
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::{
    Accept, ClientHandshake, CloseCode, Closed, Config, Connection, Error, Event, EventKind, Message, MessageKind,
    Reject, Request, Response, Role, State,
};

/// Sets a stream's read timeout, like [`TcpStream::set_read_timeout`].
pub type TimeoutHook<S> = fn(&S, Option<Duration>) -> io::Result<()>;

/// Shuts down the write side of a stream, like
/// `TcpStream::shutdown(Shutdown::Write)`.
pub type ShutdownHook<S> = fn(&S) -> io::Result<()>;

/// How much is read from the stream at once.
const READ_CHUNK: usize = 16 * 1024;

/// A WebSocket over a blocking stream.
pub struct WebSocket<S> {
    stream: S,
    conn: Connection,
    epoch: Instant,
    timeout_hook: Option<TimeoutHook<S>>,
    shutdown_hook: Option<ShutdownHook<S>>,
}

impl<S> std::fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSocket").field("conn", &self.conn).finish_non_exhaustive()
    }
}

/// Connects to a `ws://` or `wss://` URL over TCP and performs the client
/// handshake.
///
/// `wss://` needs the `rustls` feature; the server's certificate is then
/// checked against Mozilla's roots for the URL's host (see
/// [`crate::tls`]), and [`Config::handshake_timeout`] bounds the TLS and
/// WebSocket handshakes together. Without the feature a `wss://` URL fails
/// with an `Unsupported` error that names it. For another trust store or a
/// client certificate use `connect_with_tls`; for another stream, connect
/// it yourself and call [`client`].
pub fn connect(url: &str) -> io::Result<(WebSocket<MaybeTlsStream>, Response)> {
    connect_with(url, Config::default())
}

/// [`connect`] with a configuration.
pub fn connect_with(url: &str, config: Config) -> io::Result<(WebSocket<MaybeTlsStream>, Response)> {
    let handshake = ClientHandshake::new(url).map_err(|e| to_io(e.into()))?;
    let (tcp, start) = connect_tcp(&handshake)?;
    #[cfg(feature = "rustls")]
    if handshake.is_secure() {
        return connect_secure(tcp, handshake, config, crate::tls::default_client_config(), start);
    }
    open_client(MaybeTlsStream::Plain(tcp), handshake, config, start)
}

/// [`connect_with`], with `tls` as the TLS client configuration for a
/// `wss://` URL (ignored for `ws://`): a private CA, the platform's roots,
/// a client certificate. The server name checked is still the URL's host.
///
/// ```no_run
/// use std::sync::Arc;
/// use wscore::tls::rustls::RootCertStore;
///
/// let mut roots = RootCertStore::empty();
/// # let my_ca_der: Vec<u8> = Vec::new();
/// roots.add(my_ca_der.into()).expect("a CA certificate");
/// let tls = Arc::new(wscore::tls::client_config(roots));
/// let (mut ws, _) = wscore::blocking::connect_with_tls("wss://internal.example/", wscore::Config::default(), tls)?;
/// ws.send(wscore::Message::Text("hello"))?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(feature = "rustls")]
pub fn connect_with_tls(
    url: &str,
    config: Config,
    tls: std::sync::Arc<rustls::ClientConfig>,
) -> io::Result<(WebSocket<MaybeTlsStream>, Response)> {
    let handshake = ClientHandshake::new(url).map_err(|e| to_io(e.into()))?;
    let (tcp, start) = connect_tcp(&handshake)?;
    if handshake.is_secure() {
        return connect_secure(tcp, handshake, config, tls, start);
    }
    open_client(MaybeTlsStream::Plain(tcp), handshake, config, start)
}

/// Opens the TCP connection; returns it with the instant the handshake
/// timeout counts from.
fn connect_tcp(handshake: &ClientHandshake) -> io::Result<(TcpStream, Instant)> {
    #[cfg(not(feature = "rustls"))]
    if handshake.is_secure() {
        return Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "wss:// needs TLS: enable wscore's `rustls` feature, or connect a TLS stream yourself and call \
             `blocking::client`",
        ));
    }
    let host = handshake.host().trim_start_matches('[').trim_end_matches(']');
    let stream = TcpStream::connect((host, handshake.port()))?;
    stream.set_nodelay(true)?;
    Ok((stream, Instant::now()))
}

#[cfg(feature = "rustls")]
fn connect_secure(
    tcp: TcpStream,
    handshake: ClientHandshake,
    config: Config,
    tls: std::sync::Arc<rustls::ClientConfig>,
    start: Instant,
) -> io::Result<(WebSocket<MaybeTlsStream>, Response)> {
    let deadline = config.handshake_timeout.map(|t| start + t);
    let stream = crate::tls::blocking_client(tcp, &handshake, tls, deadline)?;
    open_client(MaybeTlsStream::Rustls(Box::new(stream)), handshake, config, start)
}

fn open_client(
    stream: MaybeTlsStream,
    handshake: ClientHandshake,
    config: Config,
    start: Instant,
) -> io::Result<(WebSocket<MaybeTlsStream>, Response)> {
    let conn = Connection::client(handshake, config, Duration::ZERO).map_err(to_io)?;
    let mut ws = WebSocket::new(stream, conn);
    // The connection's time zero is when TCP connected, so that the
    // handshake timeout covers the TLS handshake as well.
    ws.epoch = start;
    ws.set_timeout_hook(Some(MaybeTlsStream::set_read_timeout));
    ws.set_shutdown_hook(Some(MaybeTlsStream::shutdown_write));
    let response = ws.handshake_as_client()?;
    Ok((ws, response))
}

/// The stream [`connect`] opens: plain TCP for `ws://`, TLS over TCP for
/// `wss://`.
#[derive(Debug)]
#[non_exhaustive]
pub enum MaybeTlsStream {
    /// A `ws://` connection.
    Plain(TcpStream),
    /// A `wss://` connection (feature `rustls`): rustls' own blocking
    /// stream, whose session says what was negotiated
    /// (`stream.conn.alpn_protocol()`, `peer_certificates()`, …).
    #[cfg(feature = "rustls")]
    Rustls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl MaybeTlsStream {
    /// The TCP stream underneath, for its addresses and socket options.
    /// Reading or writing it directly breaks the framing (and the TLS).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => &tls.sock,
        }
    }

    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(timeout)
    }

    /// Half-closes TCP. Over TLS this sends no `close_notify` (the hook
    /// cannot write): it is used only while lingering after a failure or
    /// an HTTP error, whose reason the peer already has.
    fn shutdown_write(&self) -> io::Result<()> {
        shutdown_write(self.tcp())
    }
}

impl Read for MaybeTlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.read(buf),
        }
    }
}

impl Write for MaybeTlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write_vectored(bufs),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            #[cfg(feature = "rustls")]
            Self::Rustls(tls) => tls.flush(),
        }
    }
}

/// Performs the client handshake over an already connected `stream` (for
/// example a TLS stream for a `wss://` URL).
pub fn client<S: Read + Write>(
    stream: S,
    handshake: ClientHandshake,
    config: Config,
) -> io::Result<(WebSocket<S>, Response)> {
    let conn = Connection::client(handshake, config, Duration::ZERO).map_err(to_io)?;
    let mut ws = WebSocket::new(stream, conn);
    let response = ws.handshake_as_client()?;
    Ok((ws, response))
}

/// Accepts a WebSocket over a TCP stream with the default configuration,
/// choosing no subprotocol.
pub fn accept(stream: TcpStream) -> io::Result<WebSocket<TcpStream>> {
    accept_with(stream, Config::default(), |_| Ok(Accept::new()))
}

/// Accepts a WebSocket over a TCP stream; `decide` sees the request and
/// accepts it (choosing a subprotocol, adding headers) or rejects it with an
/// HTTP response. Bad requests are answered with an HTTP error before
/// `decide` is called. The handshake is bounded by
/// [`Config::handshake_timeout`] through the socket's read timeout.
pub fn accept_with<F>(stream: TcpStream, config: Config, decide: F) -> io::Result<WebSocket<TcpStream>>
where
    F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
{
    stream.set_nodelay(true)?;
    let conn = Connection::server(config, Duration::ZERO).map_err(to_io)?;
    let mut ws = WebSocket::new(stream, conn);
    ws.set_timeout_hook(Some(TcpStream::set_read_timeout));
    ws.set_shutdown_hook(Some(shutdown_write));
    ws.handshake_as_server(decide)?;
    Ok(ws)
}

impl<S: Read + Write> WebSocket<S> {
    /// Wraps a stream and a connection created at time zero: a server or
    /// client that still has to do its handshake
    /// ([`handshake_as_server`](Self::handshake_as_server),
    /// [`handshake_as_client`](Self::handshake_as_client)), or one from
    /// [`Connection::frames_only`] for a stream another HTTP stack upgraded.
    pub fn new(stream: S, conn: Connection) -> Self {
        Self { stream, conn, epoch: Instant::now(), timeout_hook: None, shutdown_hook: None }
    }

    /// Wraps a stream whose upgrade another HTTP stack already performed.
    pub fn from_upgraded(stream: S, role: Role, config: Config) -> io::Result<Self> {
        let conn = Connection::frames_only(role, config, Duration::ZERO).map_err(to_io)?;
        Ok(Self::new(stream, conn))
    }

    /// Lets the adapter set the stream's read timeout before each read, so
    /// that heartbeats and timeouts fire while waiting for data
    /// ([`connect`] and [`accept`] set `TcpStream::set_read_timeout`).
    /// Without a hook, timers run whenever a read returns; a read that
    /// times out on a timeout of your own is returned to you as the
    /// `WouldBlock` or `TimedOut` error.
    pub fn set_timeout_hook(&mut self, hook: Option<TimeoutHook<S>>) {
        self.timeout_hook = hook;
    }

    /// Lets the adapter half-close the stream while it lingers after a
    /// failure or an HTTP error (see [`Connection::wants_shutdown`]), so the
    /// peer sees the end of our bytes at once ([`connect`] and [`accept`]
    /// set `TcpStream::shutdown(Shutdown::Write)`). Without a hook the
    /// adapter lingers without half-closing, until the peer closes or the
    /// close timeout passes.
    pub fn set_shutdown_hook(&mut self, hook: Option<ShutdownHook<S>>) {
        self.shutdown_hook = hook;
    }

    /// Server: reads the upgrade request and answers it as `decide` says.
    pub fn handshake_as_server<F>(&mut self, decide: F) -> io::Result<()>
    where
        F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
    {
        self.pump_until(EventKind::Request)?;
        let request = match self.conn.poll_event() {
            Some(Event::Request(request)) => request.clone(),
            _ => return Err(not_connected()),
        };
        match decide(&request) {
            Ok(accept) => self.conn.accept(&accept).map_err(to_io)?,
            Err(reject) => {
                self.conn.reject(&reject).map_err(to_io)?;
                return Err(self.finish_closed());
            }
        }
        self.flush()
    }

    /// Client: sends the upgrade request and waits for the server's answer.
    pub fn handshake_as_client(&mut self) -> io::Result<Response> {
        self.flush()?;
        self.pump_until(EventKind::Connected)?;
        match self.conn.poll_event() {
            Some(Event::Connected(response)) => Ok(*response),
            _ => Err(not_connected()),
        }
    }

    /// Reads the next message, answering pings on the way. Returns
    /// `Ok(None)` once the connection has closed cleanly; an error if it
    /// failed. Messages borrow from the connection until the next call.
    /// With [`Config::streaming`] messages come in pieces: use
    /// [`next_event`](Self::next_event); `read` refuses them rather than
    /// drop them.
    pub fn read(&mut self) -> io::Result<Option<Message<'_>>> {
        loop {
            match self.pump()? {
                EventKind::Message => break,
                EventKind::Closed => return self.finish_closed_ok(),
                EventKind::Chunk => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "streaming mode delivers chunks: use next_event",
                    ));
                }
                _ => {
                    self.conn.poll_event();
                }
            }
        }
        self.flush()?;
        match self.conn.poll_event() {
            Some(Event::Message(message)) => Ok(Some(message)),
            _ => Err(not_connected()),
        }
    }

    /// Returns the next event of any kind (with [`Config::streaming`], the
    /// way to receive [`Event::Chunk`]s). After [`Event::Closed`], call
    /// [`finish`](Self::finish) before dropping the stream.
    pub fn next_event(&mut self) -> io::Result<Event<'_>> {
        self.pump()?;
        self.flush()?;
        self.conn.poll_event().ok_or_else(not_connected)
    }

    /// Queues a message and writes everything queued.
    pub fn send(&mut self, message: Message<'_>) -> io::Result<()> {
        self.write(message)?;
        self.flush()
    }

    /// Queues a message without writing it, unless the send buffer is over
    /// its high-water mark, in which case it is written out first. Call
    /// [`flush`](Self::flush) when done.
    pub fn write(&mut self, message: Message<'_>) -> io::Result<()> {
        self.queue(|conn| conn.send(message))
    }

    /// Sends one piece of a streamed message (see [`Connection::send_chunk`]).
    pub fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> io::Result<()> {
        self.queue(|conn| conn.send_chunk(kind, data, fin))?;
        self.flush()
    }

    /// Sends a ping.
    pub fn ping(&mut self, payload: &[u8]) -> io::Result<()> {
        self.queue(|conn| conn.send_ping(payload))?;
        self.flush()
    }

    /// Performs the closing handshake: sends a close frame, discards
    /// messages until the peer's close arrives (or the close timeout
    /// passes), and waits until the transport may be closed.
    pub fn close(&mut self, code: CloseCode, reason: &str) -> io::Result<()> {
        let now = self.epoch.elapsed();
        self.conn.close(now, code, reason).map_err(to_io)?;
        loop {
            match self.pump()? {
                EventKind::Closed => return self.finish_closed_ok::<()>().map(drop),
                _ => {
                    self.conn.poll_event();
                }
            }
        }
    }

    /// Writes everything the connection has queued.
    pub fn flush(&mut self) -> io::Result<()> {
        loop {
            let out = self.conn.poll_transmit();
            if out.is_empty() {
                break;
            }
            match self.stream.write(out) {
                Ok(0) => return Err(self.transport_failed(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.conn.advance_transmit(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.transport_failed(e)),
            }
        }
        self.stream.flush().map_err(|e| self.transport_failed(e))
    }

    /// After [`Event::Closed`]: writes what is left and, on a client, waits
    /// for the server to close the TCP connection first (RFC 6455 §7.1.1),
    /// at most [`Config::close_timeout`]. Then the stream can be dropped.
    pub fn finish(&mut self) -> io::Result<()> {
        loop {
            self.flush()?;
            if self.conn.is_finished() {
                return Ok(());
            }
            if self.conn.wants_shutdown()
                && let Some(shutdown) = self.shutdown_hook.take()
            {
                // Lingering: our last bytes are out; tell the peer with a
                // half-close and read until it closes too.
                shutdown(&self.stream)?;
            }
            self.fill()?;
        }
    }

    /// The connection state machine.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The connection state machine, to use its API directly.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably. Reading from or writing to it directly breaks
    /// the framing.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives back the stream.
    pub fn into_inner(self) -> S {
        self.stream
    }

    fn queue(&mut self, mut send: impl FnMut(&mut Connection) -> Result<(), Error>) -> io::Result<()> {
        loop {
            match send(&mut self.conn) {
                Err(Error::WriteBufferFull) => self.flush()?,
                result => return result.map_err(to_io),
            }
        }
    }

    /// Does I/O until the connection has an event, and says which kind.
    fn pump(&mut self) -> io::Result<EventKind> {
        loop {
            if let Some(kind) = self.conn.peek_event() {
                return Ok(kind);
            }
            self.flush()?;
            // Transmitting our close frame may have completed the closing
            // handshake.
            if let Some(kind) = self.conn.peek_event() {
                return Ok(kind);
            }
            if self.conn.closed().is_some() {
                // Closed was already returned: nothing more will come.
                return Err(not_connected());
            }
            self.fill()?;
        }
    }

    fn pump_until(&mut self, wanted: EventKind) -> io::Result<()> {
        loop {
            match self.pump()? {
                kind if kind == wanted => return Ok(()),
                EventKind::Closed => return Err(self.finish_closed()),
                _ => {
                    self.conn.poll_event();
                }
            }
        }
    }

    /// Takes the pending `Closed` event, finishes, and reports a failure as
    /// an error and a clean close as `Ok(None)`.
    fn finish_closed_ok<T>(&mut self) -> io::Result<Option<T>> {
        let closed = self.take_closed();
        self.finish()?;
        match closed.and_then(|c| c.error) {
            None => Ok(None),
            Some(e) => Err(to_io(e)),
        }
    }

    /// Like [`Self::finish_closed_ok`] where a clean close is unexpected too.
    fn finish_closed(&mut self) -> io::Error {
        match self.finish_closed_ok::<()>() {
            Ok(_) => not_connected(),
            Err(e) => e,
        }
    }

    fn take_closed(&mut self) -> Option<Closed> {
        while let Some(event) = self.conn.poll_event() {
            if let Event::Closed(closed) = event {
                return Some(closed);
            }
        }
        self.conn.closed().cloned()
    }

    /// Reads once from the stream, or runs the timers that are due.
    fn fill(&mut self) -> io::Result<()> {
        let now = self.epoch.elapsed();
        let deadline = self.conn.poll_timeout();
        if let Some(deadline) = deadline
            && deadline <= now
        {
            self.conn.handle_timeout(now);
            return Ok(());
        }
        if let Some(hook) = self.timeout_hook {
            let wait = deadline.map(|d| (d - now).max(Duration::from_millis(1)));
            hook(&self.stream, wait)?;
        }
        if !self.conn.wants_read() {
            // Nothing can be taken before the pending events are drained.
            return Ok(());
        }
        let buf = self.conn.receive_buffer(READ_CHUNK.max(self.conn.frame_remaining()));
        match self.stream.read(buf) {
            Ok(0) => self.conn.handle_eof(),
            Ok(n) => self.conn.commit_received(self.epoch.elapsed(), n),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                let now = self.epoch.elapsed();
                self.conn.handle_timeout(now);
                // A timeout we did not ask for is the caller's to handle.
                if deadline.is_none_or(|d| now < d) {
                    return Err(e);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // After the closing handshake a reset is just how some servers
            // close TCP; the connection already ended cleanly.
            Err(_) if self.conn.state() == State::Closed && self.conn.closed().is_some_and(|c| c.clean) => {
                self.conn.handle_transport_error();
            }
            Err(e) => return Err(self.transport_failed(e)),
        }
        Ok(())
    }

    fn transport_failed(&mut self, e: io::Error) -> io::Error {
        self.conn.handle_transport_error();
        e
    }
}

fn shutdown_write(stream: &TcpStream) -> io::Result<()> {
    stream.shutdown(std::net::Shutdown::Write)
}

fn not_connected() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the WebSocket connection is closed")
}

/// Converts a core error into an `io::Error` that wraps it, of the kind
/// `From<Error> for io::Error` documents (distinct from what sockets report).
pub fn to_io(error: Error) -> io::Error {
    error.into()
}

/// The [`wscore::Error`](crate::Error) inside an `io::Error` from this
/// adapter, if it wraps one.
pub fn ws_error(error: &io::Error) -> Option<&Error> {
    error.get_ref()?.downcast_ref::<Error>()
}
