//! TLS for `wss://` (feature `rustls`): the default client configuration,
//! and the one TLS layer the async adapters share.
//!
//! With this feature, `connect("wss://…")` works in the
//! [`blocking`](crate::blocking) and `tokio` adapters, and
//! `client_tls`/`accept_tls` put TLS under a WebSocket on any stream in the
//! tokio and futures-io adapters:
//!
//! ```no_run
//! # #[cfg(feature = "tokio")]
//! # async fn run() -> Result<(), wscore::tokio::Error> {
//! let (mut ws, _response) = wscore::tokio::connect("wss://echo.example/chat").await?;
//! ws.send(wscore::Message::Text("hello")).await?;
//! # Ok(()) }
//! ```
//!
//! # Trust
//! Server certificates are checked against Mozilla's root certificates,
//! compiled in from the `webpki-roots` crate ([`default_client_config`]),
//! with the URL's host as the name the certificate must be valid for. Built
//! in rather than read from the operating system, because that works in
//! minimal containers that ship no CA bundle, costs no file I/O at start,
//! and behaves the same on every machine. To trust something else (the
//! platform's store, a private CA) or to present a client certificate,
//! build a [`rustls::ClientConfig`] and pass it to `connect_with_tls` or
//! `client_tls`; [`client_config`] makes one from a root store with the
//! same settings as the default.
//!
//! Cryptography is rustls' `ring` provider, chosen explicitly, so another
//! crate in the build enabling `aws-lc-rs` changes nothing here.
//!
//! # Errors
//! A TLS failure is a transport error: an `io::Error` (inside
//! `Error::Io` in the async adapters) whose inner error is the
//! [`rustls::Error`] where rustls made the decision, so
//! `e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())` tells a
//! certificate problem (`InvalidCertificate`) from an alert the peer sent
//! (`AlertReceived`). The TLS handshake counts against
//! [`Config::handshake_timeout`](crate::Config::handshake_timeout) together
//! with the WebSocket handshake. A peer that closes TCP without a TLS
//! `close_notify` fails the read with `UnexpectedEof` (a truncation attack
//! would look the same), except after the closing handshake, which already
//! ended the connection cleanly.
//!
//! # Servers
//! The async adapters' `accept_tls` takes an `Arc<rustls::ServerConfig>`.
//! For the blocking adapter, rustls' own `StreamOwned<ServerConnection,
//! TcpStream>` is a `Read + Write` stream: wrap it with
//! [`blocking::WebSocket::new`](crate::blocking::WebSocket::new) and
//! [`Connection::server`](crate::Connection::server), and call
//! `handshake_as_server`; rustls completes its handshake on the first read.
//!
//! # How the async layer works
//! rustls is sans-IO, like this crate: a session takes TLS bytes in
//! (`read_tls`, `process_new_packets`) and hands plaintext out
//! (`reader`), and takes plaintext in (`writer`) and hands TLS records out
//! (`write_tls`). The layer here moves bytes between such a session and a
//! transport of the async drive loop, and is itself such a transport, so
//! tokio and futures-io get TLS from the same code with no runtime-specific
//! TLS crate:
//! * Reading drains plaintext first and reads the transport only when the
//!   session has none; the transport's bytes go straight into rustls'
//!   buffer. A `Pending` from the transport is returned as it is, its waker
//!   registered.
//! * Writing hands plaintext to the session (which encrypts it into its
//!   bounded record buffer) and writes records out only when that buffer
//!   is full; flushing writes every record, then flushes the transport.
//! * What reading makes the session owe the peer (an alert, a key update)
//!   is written on the way, unless a writer is waiting on the transport:
//!   a reader and a writer task sharing one stream must not take each
//!   other's wake-ups, and the transport keeps one waker per direction.
//!   It goes with the writer's next write or flush then.
//! * The handshake is done when rustls says so; its last flight (a
//!   client's Finished, a server's session tickets) goes out with the
//!   first write or flush, so that neither side waits on a peer that
//!   writes before it reads.
//! * Shutting down queues `close_notify`, writes it, then shuts the
//!   transport down.

use alloc::sync::Arc;
use std::io;
use std::sync::OnceLock;

pub use rustls;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};

use crate::ClientHandshake;

/// The client configuration `connect` uses for `wss://` URLs: Mozilla's
/// root certificates (see [Trust](self#trust)), TLS 1.2 and 1.3 with
/// rustls' safe defaults on the `ring` provider, no client certificate,
/// and ALPN `http/1.1` (a WebSocket upgrade is an HTTP/1.1 request, and a
/// server that also speaks HTTP/2 must not pick it).
///
/// Built once per process and shared.
///
/// ```
/// let config = wscore::tls::default_client_config();
/// assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
/// ```
pub fn default_client_config() -> Arc<ClientConfig> {
    static CONFIG: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = webpki_roots::TLS_SERVER_ROOTS.iter().cloned().collect();
        Arc::new(client_config(roots))
    });
    Arc::clone(config)
}

/// A client configuration trusting `roots`, otherwise as
/// [`default_client_config`]: for a private CA, or the platform's store
/// loaded by a crate of your choice.
///
/// ```
/// use std::sync::Arc;
/// use wscore::tls::rustls::RootCertStore;
///
/// let mut roots = RootCertStore::empty();
/// # let ca_der = Vec::<u8>::new();
/// # if !ca_der.is_empty() {
/// roots.add(ca_der.into())?;
/// # }
/// let config = Arc::new(wscore::tls::client_config(roots));
/// // wscore::tokio::connect_with_tls("wss://internal.example/", Config::default(), config)
/// # let _ = config;
/// # Ok::<(), wscore::tls::rustls::Error>(())
/// ```
pub fn client_config(roots: RootCertStore) -> ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| unreachable!("ring supports the default protocol versions"))
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alloc::vec![b"http/1.1".to_vec()];
    config
}

/// The name the server's certificate must be valid for: the URL's host (a
/// DNS name, or an IP address, brackets removed).
pub(crate) fn server_name(handshake: &ClientHandshake) -> io::Result<ServerName<'static>> {
    let host = handshake.host().trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{host:?} is not a TLS server name: {e}")))
}

/// The first bytes a peer sent, kept to tell "this is not TLS" apart from
/// other handshake failures.
#[derive(Debug, Default)]
struct Sniff {
    first: [u8; 5],
    len: usize,
}

impl Sniff {
    fn record(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.first.len() - self.len);
        self.first[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    /// Turns a rustls error into the `io::Error` callers see: the rustls
    /// error itself, unless the peer plainly spoke HTTP (a `ws://` server
    /// behind a `wss://` URL, or the other way round), which deserves a
    /// sentence of its own.
    fn error(&self, handshaking: bool, error: rustls::Error) -> io::Error {
        let first = &self.first[..self.len];
        if handshaking && (first.starts_with(b"HTTP/") || first.starts_with(b"GET ")) {
            return io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "TLS handshake failed: the peer spoke plain HTTP, not TLS (a ws:// endpoint behind a wss:// URL, \
                     or the other way round?): {error}"
                ),
            );
        }
        io::Error::new(io::ErrorKind::InvalidData, error)
    }
}

// ----- Blocking --------------------------------------------------------------

/// The blocking adapter's TLS stream.
pub(crate) type BlockingStream = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// Performs the TLS handshake for `handshake`'s host over `tcp`, bounded by
/// `deadline` through the socket's timeouts (cleared again after).
pub(crate) fn blocking_client(
    mut tcp: std::net::TcpStream,
    handshake: &ClientHandshake,
    config: Arc<ClientConfig>,
    deadline: Option<std::time::Instant>,
) -> io::Result<BlockingStream> {
    let mut session = rustls::ClientConnection::new(config, server_name(handshake)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut sniffing = Sniffing { tcp: &mut tcp, sniff: Sniff::default() };
    while session.is_handshaking() {
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(handshake_timed_out());
            }
            sniffing.tcp.set_read_timeout(Some(left))?;
            sniffing.tcp.set_write_timeout(Some(left))?;
        }
        match session.complete_io(&mut sniffing) {
            // No progress, and none to come: the peer said close_notify.
            Ok((0, 0)) if session.is_handshaking() => return Err(closed_in_handshake()),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(handshake_timed_out());
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(closed_in_handshake()),
            Err(e) => {
                let kind = e.kind();
                return Err(match e.into_inner().map(|inner| inner.downcast::<rustls::Error>()) {
                    Some(Ok(tls)) => sniffing.sniff.error(true, *tls),
                    Some(Err(other)) => io::Error::new(kind, other),
                    None => kind.into(),
                });
            }
        }
    }
    tcp.set_read_timeout(None)?;
    tcp.set_write_timeout(None)?;
    Ok(rustls::StreamOwned::new(session, tcp))
}

/// A TCP stream that keeps the first bytes it reads.
struct Sniffing<'a> {
    tcp: &'a mut std::net::TcpStream,
    sniff: Sniff,
}

impl io::Read for Sniffing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.sniff.record(&buf[..n]);
        Ok(n)
    }
}

impl io::Write for Sniffing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tcp.write(buf)
    }
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.tcp.write_vectored(bufs)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.tcp.flush()
    }
}

fn handshake_timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the TLS handshake took longer than the handshake timeout")
}

fn closed_in_handshake() -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection during the TLS handshake")
}

// ----- Async: one TLS layer over the drive loop's transport -------------------

#[cfg(any(feature = "tokio", feature = "futures-io"))]
pub(crate) use self::layer::Tls;

#[cfg(any(feature = "tokio", feature = "futures-io"))]
mod layer {
    use core::ops::{Deref, DerefMut};
    use core::task::{Context, Poll};
    use std::io::{self, IoSlice, Read as _, Write as _};
    use std::time::Instant;

    use rustls::{ConnectionCommon, SideData};

    use super::{Sniff, closed_in_handshake, handshake_timed_out};
    use crate::driver::{Read, Timer, Write};

    /// A rustls session over a transport of the drive loop, and itself such
    /// a transport: plaintext in and out, TLS records on `io`.
    pub(crate) struct Tls<T, C> {
        io: T,
        session: C,
        /// `close_notify` was queued.
        closing: bool,
        /// A write, flush or shutdown is waiting for the transport (its
        /// waker registered there): the read path then leaves the write
        /// direction alone.
        write_waiting: bool,
        sniff: Sniff,
    }

    impl<T, C: core::fmt::Debug> core::fmt::Debug for Tls<T, C> {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.debug_struct("Tls").field("session", &self.session).finish_non_exhaustive()
        }
    }

    impl<T, C> Tls<T, C> {
        pub(crate) fn get_ref(&self) -> &T {
            &self.io
        }

        pub(crate) fn get_mut(&mut self) -> &mut T {
            &mut self.io
        }

        pub(crate) fn session(&self) -> &C {
            &self.session
        }
    }

    impl<T, C, D> Tls<T, C>
    where
        T: Read + Write,
        C: DerefMut + Deref<Target = ConnectionCommon<D>> + Unpin,
        D: SideData,
    {
        pub(crate) fn new(io: T, session: C) -> Self {
            Self { io, session, closing: false, write_waiting: false, sniff: Sniff::default() }
        }

        /// Performs the TLS handshake, failing once `deadline` passes
        /// (checked against the clock; `timer` only wakes us).
        pub(crate) async fn handshake<K: Timer>(&mut self, timer: &mut K, deadline: Option<Instant>) -> io::Result<()> {
            core::future::poll_fn(|cx| self.poll_handshake(cx, timer, deadline)).await
        }

        pub(crate) fn poll_handshake<K: Timer>(
            &mut self,
            cx: &mut Context<'_>,
            timer: &mut K,
            deadline: Option<Instant>,
        ) -> Poll<io::Result<()>> {
            loop {
                if let Poll::Ready(result) = self.poll_handshake_io(cx) {
                    return Poll::Ready(result);
                }
                let Some(deadline) = deadline else { return Poll::Pending };
                if Instant::now() >= deadline {
                    return Poll::Ready(Err(handshake_timed_out()));
                }
                if timer.poll_at(cx, deadline).is_pending() {
                    return Poll::Pending;
                }
            }
        }

        fn poll_handshake_io(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            loop {
                // Our flight first: rustls reads nothing while it has one
                // to send.
                let written = self.poll_write_tls(cx);
                if let Poll::Ready(Err(e)) = written {
                    return Poll::Ready(Err(e));
                }
                if written.is_ready() {
                    core::task::ready!(self.io.poll_flush(cx))?;
                }
                if !self.session.is_handshaking() {
                    // Done. What is still queued (a client's Finished, a
                    // server's session tickets) goes out with the first
                    // write or flush: waiting for it here could stall on a
                    // peer that reads only after it has written.
                    return Poll::Ready(Ok(()));
                }
                if !self.session.wants_read() {
                    if written.is_pending() {
                        return Poll::Pending;
                    }
                    // Handshaking, nothing to send, and no wish to read:
                    // the peer ended the session.
                    return Poll::Ready(Err(closed_in_handshake()));
                }
                match core::task::ready!(self.poll_read_tls(cx)) {
                    Ok(0) => return Poll::Ready(Err(closed_in_handshake())),
                    Ok(_) => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }

        /// Reads once from the transport into the session and processes
        /// what came. `Ok(0)` is the transport's EOF (or the peer's
        /// `close_notify`, after which rustls reads nothing more).
        fn poll_read_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
            let handshaking = self.session.is_handshaking();
            let n = loop {
                let mut reading = Via { io: &mut self.io, cx, pending: false, sniff: Some(&mut self.sniff) };
                if !handshaking {
                    reading.sniff = None;
                }
                match self.session.read_tls(&mut reading) {
                    Ok(n) => break n,
                    Err(_) if reading.pending => return Poll::Pending,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            };
            if let Err(e) = self.session.process_new_packets() {
                // The alert rustls queued for the peer says why; it goes
                // if the transport takes it now.
                self.write_owed(cx);
                return Poll::Ready(Err(self.sniff.error(handshaking, e)));
            }
            Poll::Ready(Ok(n))
        }

        /// Writes TLS records until none are left; `Pending` (waker
        /// registered) if the transport cannot take them all now.
        fn poll_write_tls(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            while self.session.wants_write() {
                let mut writing = Via { io: &mut self.io, cx, pending: false, sniff: None };
                match self.session.write_tls(&mut writing) {
                    Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Ok(_) => {}
                    Err(_) if writing.pending => return Poll::Pending,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            Poll::Ready(Ok(()))
        }

        /// [`poll_write_tls`](Self::poll_write_tls) for a write, flush or
        /// shutdown, noting whether it now waits on the transport.
        fn poll_write_tls_as_writer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let poll = self.poll_write_tls(cx);
            self.write_waiting = poll.is_pending();
            poll
        }

        /// Writes what the read path made us owe the peer (an alert, a key
        /// update), as far as the transport takes it now, unless a writer
        /// waits on the transport: the transport keeps one waker for its
        /// write direction, and in a split connection a reader that
        /// registered its own there (any waker, even a no-op one) would
        /// leave the writer task asleep. Whatever is left goes out with the
        /// writer's next write or flush; a write error shows there too.
        fn write_owed(&mut self, cx: &mut Context<'_>) {
            if self.session.wants_write() && !self.write_waiting {
                let _ = self.poll_write_tls(cx);
            }
        }
    }

    impl<T, C, D> Read for Tls<T, C>
    where
        T: Read + Write,
        C: DerefMut + Deref<Target = ConnectionCommon<D>> + Unpin,
        D: SideData,
    {
        fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            if buf.is_empty() {
                return Poll::Ready(Ok(0));
            }
            loop {
                // Plaintext already decrypted comes first; `Ok(0)` is the
                // peer's close_notify, `UnexpectedEof` a transport EOF
                // without one (truncation).
                match self.session.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    result => return Poll::Ready(result),
                }
                self.write_owed(cx);
                // EOF included: the reader above reports it next time round.
                if let Err(e) = core::task::ready!(self.poll_read_tls(cx)) {
                    return Poll::Ready(Err(e));
                }
            }
        }
    }

    impl<T, C, D> Write for Tls<T, C>
    where
        T: Read + Write,
        C: DerefMut + Deref<Target = ConnectionCommon<D>> + Unpin,
        D: SideData,
    {
        fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            if bufs.iter().all(|b| b.is_empty()) {
                return Poll::Ready(Ok(0));
            }
            if self.closing {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, "write after TLS close_notify")));
            }
            loop {
                // rustls encrypts into its record buffer, up to its limit
                // (64 KiB by default): records of full size, and bounded.
                let n = self.session.writer().write_vectored(bufs)?;
                if n > 0 {
                    return Poll::Ready(Ok(n));
                }
                if !self.session.wants_write() {
                    // It takes nothing and has nothing to send: closed
                    // for writing (close_notify or a fatal alert went out).
                    return Poll::Ready(Ok(0));
                }
                core::task::ready!(self.poll_write_tls_as_writer(cx))?;
            }
        }

        fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn is_write_vectored(&self) -> bool {
            // rustls frames several slices into one record without copying
            // them together first.
            true
        }

        fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.session.writer().flush()?;
            core::task::ready!(self.poll_write_tls_as_writer(cx))?;
            self.io.poll_flush(cx)
        }

        fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            if !self.closing {
                self.closing = true;
                self.session.send_close_notify();
            }
            core::task::ready!(self.poll_write_tls_as_writer(cx))?;
            core::task::ready!(self.io.poll_flush(cx))?;
            self.io.poll_shutdown(cx)
        }
    }

    /// The transport as the `std::io` reader and writer rustls asks for,
    /// for the length of one poll: `Pending` becomes `WouldBlock` (and is
    /// remembered, so a `WouldBlock` the transport itself returned is not
    /// mistaken for one).
    struct Via<'a, 'b, T> {
        io: &'a mut T,
        cx: &'a mut Context<'b>,
        pending: bool,
        sniff: Option<&'a mut Sniff>,
    }

    impl<T: Read> io::Read for Via<'_, '_, T> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.io.poll_read(self.cx, buf) {
                Poll::Ready(result) => {
                    let n = result?;
                    if let Some(sniff) = self.sniff.as_deref_mut() {
                        sniff.record(&buf[..n]);
                    }
                    Ok(n)
                }
                Poll::Pending => {
                    self.pending = true;
                    Err(io::ErrorKind::WouldBlock.into())
                }
            }
        }
    }

    impl<T: Write> Via<'_, '_, T> {
        /// A write's outcome, `Pending` noted and reported as `WouldBlock`.
        fn ready(&mut self, polled: Poll<io::Result<usize>>) -> io::Result<usize> {
            match polled {
                Poll::Ready(result) => result,
                Poll::Pending => {
                    self.pending = true;
                    Err(io::ErrorKind::WouldBlock.into())
                }
            }
        }
    }

    impl<T: Write> io::Write for Via<'_, '_, T> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let polled = self.io.poll_write(self.cx, buf);
            self.ready(polled)
        }

        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let polled = self.io.poll_write_vectored(self.cx, bufs);
            self.ready(polled)
        }

        fn flush(&mut self) -> io::Result<()> {
            // Flushed by the layer itself, where a `Pending` can be kept.
            Ok(())
        }
    }
}

#[cfg(all(test, any(feature = "tokio", feature = "futures-io")))]
mod tests {
    //! The TLS layer over an in-memory transport whose every read and
    //! write moves as few bytes as the test says, with wakers that count:
    //! partial I/O, wake-ups, close_notify, truncation and alerts, without
    //! a socket or a runtime.

    use alloc::collections::VecDeque;
    use core::task::{Context, Poll, Waker};
    use std::io::{self, IoSlice};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::task::Wake;
    use std::time::Instant;

    use rustls::pki_types::PrivateKeyDer;
    use rustls::{ClientConnection, RootCertStore, ServerConfig, ServerConnection};

    use super::Tls;
    use crate::driver::{Read, Timer, Write};

    /// One direction of the in-memory transport.
    #[derive(Default)]
    struct Pipe {
        bytes: VecDeque<u8>,
        closed: bool,
        reader: Option<Waker>,
        writer: Option<Waker>,
    }

    /// One end: reads from `rx`, writes to `tx`, at most `chunk` bytes a
    /// call and at most `capacity` bytes waiting in a pipe.
    struct End {
        rx: Arc<Mutex<Pipe>>,
        tx: Arc<Mutex<Pipe>>,
        chunk: usize,
        capacity: usize,
    }

    fn pair(chunk: usize, capacity: usize) -> (End, End) {
        let (a, b) = (Arc::<Mutex<Pipe>>::default(), Arc::<Mutex<Pipe>>::default());
        (End { rx: Arc::clone(&a), tx: Arc::clone(&b), chunk, capacity }, End { rx: b, tx: a, chunk, capacity })
    }

    impl Read for End {
        fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
            let mut pipe = self.rx.lock().unwrap();
            if pipe.bytes.is_empty() {
                if pipe.closed {
                    return Poll::Ready(Ok(0));
                }
                pipe.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let n = buf.len().min(self.chunk).min(pipe.bytes.len());
            for (slot, byte) in buf.iter_mut().zip(pipe.bytes.drain(..n)) {
                *slot = byte;
            }
            if let Some(waker) = pipe.writer.take() {
                waker.wake();
            }
            Poll::Ready(Ok(n))
        }
    }

    impl Write for End {
        fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(&mut self, cx: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
            let mut pipe = self.tx.lock().unwrap();
            let room = self.capacity.saturating_sub(pipe.bytes.len()).min(self.chunk);
            if room == 0 {
                pipe.writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            let mut n = 0;
            for byte in bufs.iter().flat_map(|b| b.iter()).take(room) {
                pipe.bytes.push_back(*byte);
                n += 1;
            }
            if let Some(waker) = pipe.reader.take() {
                waker.wake();
            }
            Poll::Ready(Ok(n))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let mut pipe = self.tx.lock().unwrap();
            pipe.closed = true;
            if let Some(waker) = pipe.reader.take() {
                waker.wake();
            }
            Poll::Ready(Ok(()))
        }
    }

    /// No deadlines in these tests.
    struct NoTimer;

    impl Timer for NoTimer {
        fn poll_at(&mut self, _cx: &mut Context<'_>, _deadline: Instant) -> Poll<()> {
            Poll::Pending
        }
        fn clear(&mut self) {}
        fn poll_budget(&mut self, _cx: &mut Context<'_>) -> Poll<()> {
            Poll::Ready(())
        }
    }

    #[derive(Default)]
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count::default());
        (Arc::clone(&count), Waker::from(count))
    }

    type Client = Tls<End, ClientConnection>;
    type Server = Tls<End, ServerConnection>;

    /// A client and a server over `pair(chunk, capacity)`, handshaken by
    /// polling each in turn.
    fn connected(chunk: usize, capacity: usize) -> (Client, Server) {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap().signed_by(&key, &*ca).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .unwrap();

        let (a, b) = pair(chunk, capacity);
        let name = "localhost".try_into().unwrap();
        let mut client = Tls::new(a, ClientConnection::new(Arc::new(super::client_config(roots)), name).unwrap());
        let mut server = Tls::new(b, ServerConnection::new(Arc::new(server_config)).unwrap());
        let mut cx = Context::from_waker(Waker::noop());
        let (mut client_done, mut server_done) = (false, false);
        for _ in 0..100_000 {
            // A side that is done flushes its last flight, as the first
            // WebSocket write would.
            if client_done {
                let _ = client.poll_flush(&mut cx);
            } else {
                client_done = client.poll_handshake(&mut cx, &mut NoTimer, None).map(Result::unwrap).is_ready();
            }
            if server_done {
                let _ = server.poll_flush(&mut cx);
            } else {
                server_done = server.poll_handshake(&mut cx, &mut NoTimer, None).map(Result::unwrap).is_ready();
            }
            if client_done && server_done {
                return (client, server);
            }
        }
        panic!("the handshake made no progress");
    }

    /// Moves `data` from `from` to `to` through both layers, polling each
    /// in turn; returns what `to` read.
    fn transfer<A: Read + Write, B: Read + Write>(from: &mut A, to: &mut B, data: &[u8]) -> Vec<u8> {
        transfer_rest(from, to, data, 0)
    }

    /// [`transfer`] of `data` whose first `sent` bytes `from` took already.
    fn transfer_rest<A: Read + Write, B: Read + Write>(from: &mut A, to: &mut B, data: &[u8], sent: usize) -> Vec<u8> {
        let mut cx = Context::from_waker(Waker::noop());
        let (mut sent, mut flushed, mut got) = (sent, false, Vec::new());
        let mut buf = [0; 1000];
        for _ in 0..10_000_000 {
            if sent < data.len() {
                if let Poll::Ready(n) = from.poll_write_vectored(&mut cx, &[IoSlice::new(&data[sent..])]) {
                    sent += n.unwrap();
                }
            } else if !flushed {
                flushed = from.poll_flush(&mut cx).map(Result::unwrap).is_ready();
            }
            if let Poll::Ready(n) = to.poll_read(&mut cx, &mut buf) {
                got.extend_from_slice(&buf[..n.unwrap()]);
            }
            if flushed && got.len() == data.len() {
                return got;
            }
        }
        panic!("stuck after {sent} bytes sent, {} received", got.len());
    }

    #[test]
    fn byte_at_a_time_transport_carries_handshake_and_data() {
        // Every transport call moves one byte, and a pipe holds at most 7:
        // each TLS record crosses in many partial reads and writes.
        let (mut client, mut server) = connected(1, 7);
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        assert!(transfer(&mut client, &mut server, &data) == data);
        assert!(transfer(&mut server, &mut client, &data[..5000]) == data[..5000]);
    }

    #[test]
    fn large_writes_stay_within_rustls_buffer_and_all_arrive() {
        // 1 MiB handed over in one call: rustls takes what its bounded
        // record buffer holds, the rest in later calls.
        let (mut client, mut server) = connected(64 * 1024, 256 * 1024);
        let data = vec![0x5a; 1 << 20];
        let mut cx = Context::from_waker(Waker::noop());
        let Poll::Ready(Ok(first)) = client.poll_write_vectored(&mut cx, &[IoSlice::new(&data)]) else { panic!() };
        assert!(first > 0 && first <= 64 * 1024, "took {first} bytes at once");
        assert!(transfer_rest(&mut client, &mut server, &data, first) == data);
    }

    #[test]
    fn a_pending_read_wakes_when_bytes_arrive() {
        let (mut client, mut server) = connected(16 * 1024, 64 * 1024);
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let mut buf = [0; 64];
        assert!(client.poll_read(&mut cx, &mut buf).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        let mut noop = Context::from_waker(Waker::noop());
        assert!(server.poll_write_vectored(&mut noop, &[IoSlice::new(b"hi")]).is_ready());
        assert!(server.poll_flush(&mut noop).is_ready());
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the transport's Pending registered our waker");
        assert!(matches!(client.poll_read(&mut cx, &mut buf), Poll::Ready(Ok(2))));
        assert_eq!(&buf[..2], b"hi");
    }

    #[test]
    fn a_pending_flush_wakes_when_the_transport_drains() {
        // A pipe of 100 bytes: a record of 1000 cannot go at once.
        let (mut client, mut server) = connected(16 * 1024, 100);
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        assert!(matches!(client.poll_write_vectored(&mut cx, &[IoSlice::new(&[1; 1000])]), Poll::Ready(Ok(1000))));
        assert!(client.poll_flush(&mut cx).is_pending());
        let mut buf = [0; 1000];
        let mut noop = Context::from_waker(Waker::noop());
        assert!(server.poll_read(&mut noop, &mut buf).is_pending(), "a partial record gives no plaintext");
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "draining the pipe woke the writer");
    }

    #[test]
    fn reading_never_takes_the_write_directions_waker() {
        // The server owes the client an alert while the write direction is
        // full: the reader's attempt to send it must not replace the
        // writer's waker (in a split connection they are two tasks).
        let (mut client, mut server) = connected(16 * 1024, 2000);
        let (writer_count, writer_waker) = counting();
        let mut writer_cx = Context::from_waker(&writer_waker);
        // Fill server -> client so that the server's writes are pending.
        let _ = server.poll_write_vectored(&mut writer_cx, &[IoSlice::new(&[0; 4000])]);
        assert!(server.poll_flush(&mut writer_cx).is_pending());
        // A corrupt record makes the server's reader owe an alert.
        let mut noop = Context::from_waker(Waker::noop());
        let _ = client.poll_write_vectored(&mut noop, &[IoSlice::new(b"hello")]);
        let _ = client.poll_flush(&mut noop);
        flip_last_byte(&server.get_ref().rx);
        let mut buf = [0; 64];
        assert!(matches!(server.poll_read(&mut noop, &mut buf), Poll::Ready(Err(_))));
        // Draining the full pipe now must still wake the writer.
        let mut drain = [0; 8000];
        let _ = client.get_mut().poll_read(&mut noop, &mut drain);
        assert_eq!(writer_count.0.load(Ordering::SeqCst), 1, "the writer's waker survived the reader");
    }

    #[test]
    fn shutdown_sends_close_notify_and_the_peer_sees_a_clean_end() {
        let (mut client, mut server) = connected(16 * 1024, 64 * 1024);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(matches!(client.poll_shutdown(&mut cx), Poll::Ready(Ok(()))));
        let mut buf = [0; 64];
        assert!(matches!(server.poll_read(&mut cx, &mut buf), Poll::Ready(Ok(0))), "close_notify, then EOF: clean");
        // Writing after close_notify is refused.
        let late = client.poll_write_vectored(&mut cx, &[IoSlice::new(b"late")]);
        assert!(matches!(&late, Poll::Ready(Err(e)) if e.kind() == io::ErrorKind::BrokenPipe), "{late:?}");
    }

    #[test]
    fn eof_without_close_notify_is_a_truncation() {
        let (mut client, mut server) = connected(16 * 1024, 64 * 1024);
        let mut cx = Context::from_waker(Waker::noop());
        // The client's TCP closes under it, with no close_notify.
        assert!(client.get_mut().poll_shutdown(&mut cx).is_ready());
        let mut buf = [0; 64];
        match server.poll_read(&mut cx, &mut buf) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_corrupt_record_fails_this_side_and_alerts_the_peer() {
        let (mut client, mut server) = connected(16 * 1024, 64 * 1024);
        let mut cx = Context::from_waker(Waker::noop());
        let _ = client.poll_write_vectored(&mut cx, &[IoSlice::new(b"hello")]);
        assert!(client.poll_flush(&mut cx).is_ready());
        flip_last_byte(&server.get_ref().rx);
        let mut buf = [0; 64];
        let Poll::Ready(Err(e)) = server.poll_read(&mut cx, &mut buf) else { panic!("a corrupt record was accepted") };
        assert!(matches!(e.get_ref().and_then(|e| e.downcast_ref()), Some(rustls::Error::DecryptError)), "{e:?}");
        // The alert the server queued went out on the read path, no writer
        // waiting.
        let Poll::Ready(Err(e)) = client.poll_read(&mut cx, &mut buf) else { panic!("the alert did not arrive") };
        assert!(
            matches!(
                e.get_ref().and_then(|e| e.downcast_ref()),
                Some(rustls::Error::AlertReceived(rustls::AlertDescription::BadRecordMac))
            ),
            "{e:?}"
        );
    }

    #[test]
    fn eof_during_the_handshake_is_an_error() {
        let (a, mut b) = pair(16 * 1024, 64 * 1024);
        let roots = RootCertStore::empty();
        let name = "localhost".try_into().unwrap();
        let mut client = Tls::new(a, ClientConnection::new(Arc::new(super::client_config(roots)), name).unwrap());
        let mut cx = Context::from_waker(Waker::noop());
        assert!(client.poll_handshake(&mut cx, &mut NoTimer, None).is_pending(), "waits for the server");
        assert!(b.poll_shutdown(&mut cx).is_ready());
        match client.poll_handshake(&mut cx, &mut NoTimer, None) {
            Poll::Ready(Err(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
    }

    fn flip_last_byte(pipe: &Mutex<Pipe>) {
        let mut pipe = pipe.lock().unwrap();
        let last = pipe.bytes.back_mut().expect("a record in flight");
        *last ^= 1;
    }
}
