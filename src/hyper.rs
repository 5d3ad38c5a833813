//! The hyper integration (feature `hyper`): WebSocket upgrades inside hyper
//! and axum handlers, over HTTP/1.1 (`101 Switching Protocols`, RFC 6455)
//! and HTTP/2 (an extended CONNECT answered with `200`, RFC 8441), and
//! clients over a hyper connection. This file only translates between
//! hyper's types and the handshake's parts: every check and negotiation is
//! the core's ([`Request::from_parts`], [`Accept::answer`],
//! [`ClientRequest::check_response`]), so a request gets the same answer
//! here as from the built-in handshake, and the upgraded stream is driven
//! by the tokio adapter ([`crate::tokio::WebSocket`]).
//!
//! # Server
//!
//! In a handler, [`upgrade`] (or [`upgrade_with`], to choose a subprotocol,
//! add headers or refuse) checks the request and returns the response to
//! send and an [`Upgrading`] future that becomes a [`WebSocket`] once hyper
//! hands the connection over, which is after the response went out: spawn
//! it, return the response. A bad request is a [`Refusal`] holding the
//! error response (its status, the headers RFC 6455 asks for, a short
//! body), to be sent as it is.
//!
//! Both HTTP versions take the same path. Over HTTP/1.1 the request is a
//! `GET` with `Upgrade: websocket` and a key, answered with `101`; hyper
//! must serve the connection with upgrades (`serve_connection_with_upgrades`,
//! or `.with_upgrades()` on an HTTP/1 connection). Over HTTP/2 it is a
//! `CONNECT` whose `:protocol` pseudo-header (hyper's
//! [`Protocol`] extension) is `websocket`, with no
//! key, answered with `200`, after which the request's stream carries the
//! frames; hyper's HTTP/2 server must announce
//! `SETTINGS_ENABLE_CONNECT_PROTOCOL` (`enable_connect_protocol()`), or
//! clients may not send such a request. Many WebSockets then share one
//! connection, each on its own stream.
//!
//! ```no_run
//! use std::convert::Infallible;
//!
//! use futures_util::StreamExt;
//! use hyper::body::Incoming;
//! use hyper::{Request, Response};
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use wscore::{Accept, Config};
//!
//! async fn handle(mut request: Request<Incoming>) -> Result<Response<String>, Infallible> {
//!     let mut config = Config::default();
//!     config.deflate = Some(Default::default()); // permessage-deflate if offered
//!     let upgrade = wscore::hyper::upgrade_with(&mut request, config, |request| {
//!         let chat = request.protocols().any(|p| p == "chat");
//!         Ok(if chat { Accept::new().protocol("chat") } else { Accept::new() })
//!     });
//!     match upgrade {
//!         Ok((response, websocket)) => {
//!             tokio::spawn(async move {
//!                 let Ok(mut ws) = websocket.await else { return };
//!                 while let Some(Ok(message)) = ws.next().await {
//!                     if ws.send_owned(message).await.is_err() {
//!                         break;
//!                     }
//!                 }
//!             });
//!             Ok(response)
//!         }
//!         // A 400, 426, 405 ... with the headers it needs.
//!         Err(refusal) => Ok(refusal.into_response()),
//!     }
//! }
//!
//! # async fn serve() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! loop {
//!     let (stream, _) = listener.accept().await?;
//!     tokio::spawn(async move {
//!         // HTTP/1.1 and HTTP/2 (prior knowledge) on one port.
//!         let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
//!         builder.http2().enable_connect_protocol();
//!         let service = hyper::service::service_fn(handle);
//!         let _ = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).await;
//!     });
//! }
//! # }
//! ```
//!
//! # Client
//!
//! [`connect_http2`] opens a WebSocket on a new stream of an HTTP/2
//! connection, as often as the server's stream limit allows;
//! [`connect_http1`] upgrades an HTTP/1.1 connection (which it then uses
//! up). Both send the request the [`ClientHandshake`] describes, offering
//! permessage-deflate if [`Config::deflate`] is set, and check the answer
//! with the core's rules.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use hyper_util::rt::{TokioExecutor, TokioIo};
//! use wscore::{ClientHandshake, Config, Message};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let stream = tokio::net::TcpStream::connect("127.0.0.1:3000").await?;
//! let (mut sender, connection) =
//!     hyper::client::conn::http2::handshake::<_, _, String>(TokioExecutor::new(), TokioIo::new(stream)).await?;
//! tokio::spawn(connection);
//!
//! // Two WebSockets on one connection.
//! let mut first = sender.clone();
//! let hs = ClientHandshake::new("ws://127.0.0.1:3000/chat")?;
//! let (mut a, _response) = wscore::hyper::connect_http2(&mut first, hs.clone(), Config::default()).await?;
//! let (mut b, _response) = wscore::hyper::connect_http2(&mut sender, hs, Config::default()).await?;
//! a.send(Message::Text("to a")).await?;
//! b.send(Message::Text("to b")).await?;
//! println!("{:?} {:?}", a.next().await, b.next().await);
//! # Ok(()) }
//! ```

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::io;

use ::hyper::body::{Body, Incoming};
use ::hyper::client::conn::{http1, http2};
use ::hyper::ext::Protocol;
use ::hyper::upgrade::{OnUpgrade, Upgraded};
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use crate::deflate::DeflateParams;
use crate::tokio::Error;
use crate::{
    Accept, ClientHandshake, ClientRequest, Config, HandshakeError, HttpVersion, Reject, Request, Response, Role,
    Timeout, UsageError,
};

/// A WebSocket over a connection (HTTP/1.1) or a stream (HTTP/2) that hyper
/// handed over: the tokio adapter's [`WebSocket`](crate::tokio::WebSocket)
/// with all its methods, `Stream` and `Sink`.
pub type WebSocket = crate::tokio::WebSocket<TokioIo<Upgraded>>;

/// The body of the responses [`upgrade`] builds: empty for an acceptance,
/// a line of text for a refusal. `String` is a hyper body; turn the
/// response into another body type with `response.map(Into::into)`
/// (`Full<Bytes>`, axum's `Body`).
pub type ResponseBody = String;

// ----- Server ----------------------------------------------------------------

/// What [`upgrade`] takes: an `http::Request` (what a hyper service gets) or
/// its `http::request::Parts` (what an axum `FromRequestParts` extractor
/// gets). Sealed.
pub trait RequestHead: sealed::Head {}

impl<B> RequestHead for http::Request<B> {}
impl RequestHead for http::request::Parts {}

mod sealed {
    use http::{Extensions, HeaderMap, Method, Uri, Version};

    /// The parts of a request the upgrade reads, and the extensions it
    /// takes hyper's upgrade handle from.
    pub trait Head {
        fn method(&self) -> &Method;
        fn version(&self) -> Version;
        fn uri(&self) -> &Uri;
        fn headers(&self) -> &HeaderMap;
        fn extensions(&self) -> &Extensions;
        fn extensions_mut(&mut self) -> &mut Extensions;
    }

    impl<B> Head for http::Request<B> {
        fn method(&self) -> &Method {
            self.method()
        }
        fn version(&self) -> Version {
            self.version()
        }
        fn uri(&self) -> &Uri {
            self.uri()
        }
        fn headers(&self) -> &HeaderMap {
            self.headers()
        }
        fn extensions(&self) -> &Extensions {
            self.extensions()
        }
        fn extensions_mut(&mut self) -> &mut Extensions {
            self.extensions_mut()
        }
    }

    impl Head for http::request::Parts {
        fn method(&self) -> &Method {
            &self.method
        }
        fn version(&self) -> Version {
            self.version
        }
        fn uri(&self) -> &Uri {
            &self.uri
        }
        fn headers(&self) -> &HeaderMap {
            &self.headers
        }
        fn extensions(&self) -> &Extensions {
            &self.extensions
        }
        fn extensions_mut(&mut self) -> &mut Extensions {
            &mut self.extensions
        }
    }
}

/// Accepts a WebSocket upgrade request with no subprotocol: see
/// [`upgrade_with`].
///
/// ```
/// // Without a hyper connection behind it the request can be checked, not
/// // handed over.
/// let mut request = http::Request::builder()
///     .method("CONNECT")
///     .version(http::Version::HTTP_2)
///     .uri("https://example.com/chat")
///     .extension(hyper::ext::Protocol::from_static("websocket"))
///     .header("sec-websocket-version", "8")
///     .body(())
///     .unwrap();
/// let refusal = wscore::hyper::upgrade(&mut request, wscore::Config::default()).unwrap_err();
/// let response = refusal.into_response();
/// assert_eq!(response.status(), 400);
/// assert_eq!(response.headers()["sec-websocket-version"], "13");
/// ```
pub fn upgrade<R: RequestHead>(
    request: &mut R,
    config: Config,
) -> Result<(http::Response<ResponseBody>, Upgrading), Refusal> {
    upgrade_with(request, config, |_| Ok(Accept::new()))
}

/// Answers a WebSocket upgrade request that hyper (or axum) received, over
/// HTTP/1.1 or HTTP/2, by the rules of the built-in handshake.
///
/// Reads the method, HTTP version, `:protocol` (hyper's
/// [`Protocol`] extension), target and header
/// fields, and checks them with [`Request::from_parts`], within
/// [`Config::max_headers`] and [`Config::max_handshake_size`] (the request
/// measured as the HTTP/1.1 head it would be). A valid request goes to
/// `decide`, which accepts it (choosing one of the offered subprotocols,
/// adding headers) or rejects it, as with
/// [`accept_with`](crate::tokio::accept_with). permessage-deflate is
/// agreed if the client offers it and [`Config::deflate`] is set.
///
/// Returns the response to send, `101` over HTTP/1.1 or `200` over HTTP/2
/// with the answer's header fields, and the [`Upgrading`] future that
/// yields the [`WebSocket`] once hyper hands over the connection; that
/// happens only after the response is returned to hyper, so spawn the
/// future (or `.await` it in another task) rather than awaiting it in the
/// handler.
///
/// Takes hyper's upgrade handle out of the request's extensions, which is
/// why the request is borrowed mutably.
///
/// # Errors
/// A [`Refusal`], whose [`into_response`](Refusal::into_response) is the
/// response to send instead:
/// * the request is not a valid upgrade: the [`HandshakeError`]'s status
///   and [`response_headers`](HandshakeError::response_headers) (`426`
///   with `Upgrade` and `Sec-WebSocket-Version` for a wrong version, `405`
///   with `Allow` for a wrong method, `400` otherwise) and its text;
/// * `decide` rejected it: the [`Reject`]'s status, headers and body
///   (as UTF-8, lossily), as [`HandshakeError::Rejected`];
/// * the server made a mistake (`decide` chose a subprotocol that was not
///   offered, an invalid header or status, an invalid `config`, or a
///   connection hyper cannot upgrade): `500`, as a [`UsageError`].
pub fn upgrade_with<R, F>(
    request: &mut R,
    config: Config,
    decide: F,
) -> Result<(http::Response<ResponseBody>, Upgrading), Refusal>
where
    R: RequestHead,
    F: for<'r> FnOnce(&'r Request) -> Result<Accept<'r>, Reject<'r>>,
{
    config.validate().map_err(Refusal::usage)?;
    let parsed = parse_request(request, &config).map_err(Refusal::handshake)?;
    let accept = match decide(&parsed) {
        Ok(accept) => accept,
        Err(reject) => return Err(Refusal::rejected(&reject)),
    };
    let answer = accept.answer(&parsed, config.deflate.as_ref()).map_err(Refusal::usage)?;
    let mut response = http::Response::new(String::new());
    *response.status_mut() =
        StatusCode::from_u16(answer.status()).map_err(|_| Refusal::usage(UsageError::InvalidStatus))?;
    for (name, value) in answer.headers() {
        let (name, value) = field(name, value.as_bytes()).map_err(Refusal::usage)?;
        response.headers_mut().append(name, value);
    }
    // Taken last, so a request we refuse keeps it.
    let on_upgrade =
        request.extensions_mut().remove::<OnUpgrade>().ok_or_else(|| Refusal::usage(UsageError::NotUpgradable))?;
    let upgrading = Upgrading {
        on_upgrade,
        config: Some(config),
        deflate: answer.deflate().copied(),
        protocol: answer.protocol().map(Box::from),
    };
    Ok((response, upgrading))
}

/// Checks a request's parts as the built-in handshake checks a head.
fn parse_request<R: RequestHead>(request: &R, config: &Config) -> Result<Request, HandshakeError> {
    let headers = request.headers();
    let uri = request.uri();
    // An HTTP/2 CONNECT without `:protocol` has an authority, not a path:
    // given as it is, it fails as the extended CONNECT it is not.
    let target = match uri.path_and_query() {
        Some(path) => path.as_str().into(),
        None => uri.to_string(),
    };
    let method = request.method().as_str();
    if headers.len() > config.max_headers {
        return Err(HandshakeError::TooManyHeaders);
    }
    // "GET /target HTTP/1.1\r\n", "name: value\r\n" each, "\r\n".
    let size = headers.iter().fold(method.len() + target.len() + 14, |n, (name, value)| {
        n.saturating_add(name.as_str().len() + value.len() + 4)
    });
    if size > config.max_handshake_size {
        return Err(HandshakeError::TooLarge);
    }
    let version = match request.version() {
        Version::HTTP_11 => HttpVersion::Http11,
        Version::HTTP_2 => HttpVersion::Http2,
        // HTTP/1.0 and 0.9 have no upgrade; hyper serves no other version.
        _ => HttpVersion::Http10,
    };
    let protocol = request.extensions().get::<Protocol>().map(Protocol::as_str);
    let fields = headers.iter().map(|(name, value)| (name.as_str(), value.as_bytes()));
    Request::from_parts(method, version, protocol, &target, fields)
}

/// A header field for an `http` message, checked by `http`'s grammar.
fn field(name: &str, value: &[u8]) -> Result<(HeaderName, HeaderValue), UsageError> {
    let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| UsageError::InvalidHeader)?;
    let value = HeaderValue::from_bytes(value).map_err(|_| UsageError::InvalidHeader)?;
    Ok((name, value))
}

/// The response that refuses an upgrade request, and why: see
/// [`upgrade_with`]. Send [`into_response`](Self::into_response).
///
/// ```
/// use wscore::{Error, HandshakeError};
///
/// let mut request = http::Request::builder().uri("/chat").body(()).unwrap();
/// let refusal = wscore::hyper::upgrade(&mut request, wscore::Config::default()).unwrap_err();
/// // Not an upgrade at all: no Host, and so on.
/// assert_eq!(refusal.error(), Error::Handshake(HandshakeError::Host));
/// assert_eq!(refusal.status(), 400);
/// assert_eq!(refusal.into_response().body(), "exactly one Host header required\n");
/// ```
#[derive(Debug)]
pub struct Refusal {
    error: crate::Error,
    /// Boxed: a refusal is rare, and the `Result` stays small.
    response: Box<http::Response<ResponseBody>>,
}

impl Refusal {
    /// A request that failed the handshake's checks.
    fn handshake(error: HandshakeError) -> Self {
        let status = error.status().unwrap_or(400);
        let response = text_response(status, error.response_headers().iter().copied(), error.to_string() + "\n")
            .unwrap_or_else(|_| internal_error());
        Self { error: error.into(), response: Box::new(response) }
    }

    /// A request the application rejected.
    fn rejected(reject: &Reject<'_>) -> Self {
        if !(400..=599).contains(&reject.status) {
            return Self::usage(UsageError::InvalidStatus);
        }
        let body = String::from_utf8_lossy(reject.body).into_owned();
        match text_response(reject.status, reject.headers.iter().copied(), body) {
            Ok(response) => {
                Self { error: HandshakeError::Rejected(reject.status).into(), response: Box::new(response) }
            }
            Err(error) => Self::usage(error),
        }
    }

    /// The server's mistake, which the client only learns was one.
    fn usage(error: UsageError) -> Self {
        Self { error: error.into(), response: Box::new(internal_error()) }
    }

    /// Why: [`Error::Handshake`](crate::Error::Handshake) for a bad request
    /// (or [`HandshakeError::Rejected`] by `decide`),
    /// [`Error::Usage`](crate::Error::Usage) for a mistake of the server's.
    pub fn error(&self) -> crate::Error {
        self.error
    }

    /// The response's status.
    pub fn status(&self) -> u16 {
        self.response.status().as_u16()
    }

    /// The response to send.
    pub fn into_response(self) -> http::Response<ResponseBody> {
        *self.response
    }
}

impl From<Refusal> for http::Response<ResponseBody> {
    fn from(refusal: Refusal) -> Self {
        refusal.into_response()
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket upgrade refused with status {}: {}", self.status(), self.error)
    }
}

impl std::error::Error for Refusal {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// A `text/plain` response, as the built-in handshake sends for a refusal,
/// unless `headers` name another type.
fn text_response<'a>(
    status: u16,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: String,
) -> Result<http::Response<ResponseBody>, UsageError> {
    let mut response = http::Response::new(body);
    *response.status_mut() = StatusCode::from_u16(status).map_err(|_| UsageError::InvalidStatus)?;
    let fields = response.headers_mut();
    for (name, value) in headers {
        let (name, value) = field(name, value.as_bytes())?;
        fields.append(name, value);
    }
    fields.entry(CONTENT_TYPE).or_insert(HeaderValue::from_static("text/plain; charset=utf-8"));
    Ok(response)
}

fn internal_error() -> http::Response<ResponseBody> {
    let mut response = http::Response::new(String::from("the server could not accept the WebSocket\n"));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

/// The WebSocket an accepted upgrade becomes, once hyper has sent the
/// response and hands over the connection (HTTP/1.1) or the request's
/// stream (HTTP/2): a future from [`upgrade_with`].
///
/// Fails with [`Error::Io`] if hyper cannot hand it over (the client went
/// away, or the connection is not served with upgrades). The wait is
/// hyper's: it hands over as soon as the response is written (HTTP/1.1) or
/// sent (HTTP/2), under the connection's own timeouts.
#[derive(Debug)]
#[must_use = "the WebSocket exists once this future is polled"]
pub struct Upgrading {
    on_upgrade: OnUpgrade,
    /// Taken when the WebSocket is made.
    config: Option<Config>,
    deflate: Option<DeflateParams>,
    protocol: Option<Box<str>>,
}

impl Upgrading {
    /// The subprotocol agreed, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol.as_deref()
    }

    /// The permessage-deflate parameters agreed, if compression was.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }
}

impl Future for Upgrading {
    type Output = Result<WebSocket, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let upgraded = core::task::ready!(Pin::new(&mut this.on_upgrade).poll(cx)).map_err(hyper_error)?;
        let config = this.config.take().ok_or_else(polled_after_completion)?;
        Poll::Ready(open(TokioIo::new(upgraded), Role::Server, config, this.deflate))
    }
}

fn polled_after_completion() -> Error {
    Error::Io(io::Error::other("`Upgrading` polled after it completed"))
}

/// The WebSocket on a handed-over stream, compressing if it was agreed.
fn open(io: TokioIo<Upgraded>, role: Role, config: Config, deflate: Option<DeflateParams>) -> Result<WebSocket, Error> {
    match deflate {
        Some(params) => WebSocket::from_upgraded_with_deflate(io, role, config, params),
        None => WebSocket::from_upgraded(io, role, config),
    }
}

/// hyper's errors are the transport's, to the adapter.
fn hyper_error(error: ::hyper::Error) -> Error {
    Error::Io(io::Error::other(error))
}

// ----- Client ----------------------------------------------------------------

/// Opens a WebSocket on a new stream of an HTTP/2 connection: an RFC 8441
/// extended CONNECT (`:protocol` `websocket`) to the handshake's path,
/// offering its subprotocols and, if [`Config::deflate`] is set,
/// permessage-deflate. The answer is checked with
/// [`ClientRequest::check_response`]; once it passed, the stream carries
/// the WebSocket, and the connection stays free for other requests and
/// WebSockets (clone `sender` for each task).
///
/// The server must have announced `SETTINGS_ENABLE_CONNECT_PROTOCOL`;
/// one that did not resets the stream, which fails here as an
/// [`Error::Io`]. The handshake URL's scheme and authority become
/// `:scheme` and `:authority`. Bounded by [`Config::handshake_timeout`].
///
/// # Errors
/// [`Error::Rejected`] with the server's response (status, headers, body
/// up to [`Config::max_handshake_size`]) if it answered with anything but
/// a 2xx; [`Error::WebSocket`] with the [`HandshakeError`] if the answer
/// broke a rule, or a [`UsageError`] for a bad `config`; [`Error::Io`] if
/// hyper failed, which includes a 2xx other than 200 (RFC 8441 allows it,
/// hyper hands over the stream only on 200).
pub async fn connect_http2<B>(
    sender: &mut http2::SendRequest<B>,
    handshake: ClientHandshake,
    config: Config,
) -> Result<(WebSocket, Response), Error>
where
    B: Body + Default + 'static,
{
    check_client_config(&config)?;
    let wanted = handshake.http2_request(config.deflate.as_ref());
    within_handshake_timeout(&config, async {
        sender.ready().await.map_err(hyper_error)?;
        let response = sender.send_request(http_request(&wanted)?).await.map_err(hyper_error)?;
        finish(&wanted, response, config.clone()).await
    })
    .await
}

/// Upgrades an HTTP/1.1 connection to a WebSocket: a `GET` with
/// `Upgrade: websocket` and a fresh key (from [`Config::entropy`]),
/// offering the handshake's subprotocols and, if [`Config::deflate`] is
/// set, permessage-deflate; the `101` answer is checked with
/// [`ClientRequest::check_response`]. The connection's task must drive it
/// `with_upgrades()`, or hyper keeps the connection and this fails; after
/// an upgrade the connection belongs to the WebSocket.
///
/// Bounded by [`Config::handshake_timeout`].
///
/// # Errors
/// As [`connect_http2`]: [`Error::Rejected`] for another status than 101.
///
/// ```no_run
/// use hyper_util::rt::TokioIo;
/// use wscore::{ClientHandshake, Config};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let stream = tokio::net::TcpStream::connect("127.0.0.1:3000").await?;
/// let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, String>(TokioIo::new(stream)).await?;
/// tokio::spawn(connection.with_upgrades());
/// let hs = ClientHandshake::new("ws://127.0.0.1:3000/chat")?;
/// let (ws, response) = wscore::hyper::connect_http1(&mut sender, hs, Config::default()).await?;
/// # Ok(()) }
/// ```
pub async fn connect_http1<B>(
    sender: &mut http1::SendRequest<B>,
    handshake: ClientHandshake,
    config: Config,
) -> Result<(WebSocket, Response), Error>
where
    B: Body + Default + 'static,
{
    let entropy = check_client_config(&config)?;
    let mut nonce = [0u8; 16];
    entropy(&mut nonce);
    let wanted = handshake.http11_request(nonce, config.deflate.as_ref());
    within_handshake_timeout(&config, async {
        sender.ready().await.map_err(hyper_error)?;
        let response = sender.send_request(http_request(&wanted)?).await.map_err(hyper_error)?;
        finish(&wanted, response, config.clone()).await
    })
    .await
}

/// Refuses, before anything is sent, a configuration the connection would
/// refuse after the handshake; returns the entropy source a client needs.
fn check_client_config(config: &Config) -> Result<fn(&mut [u8]), Error> {
    config.validate()?;
    Ok(config.entropy.ok_or(UsageError::NoEntropy)?)
}

async fn within_handshake_timeout<T>(
    config: &Config,
    handshake: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    match config.handshake_timeout {
        Some(timeout) => ::tokio::time::timeout(timeout, handshake)
            .await
            .unwrap_or_else(|_| Err(crate::Error::Timeout(Timeout::Handshake).into())),
        None => handshake.await,
    }
}

/// The request a [`ClientRequest`] describes, for hyper to send: over
/// HTTP/2 with an absolute URI (hyper's `:scheme`, `:authority`, `:path`)
/// and the `:protocol` extension, over HTTP/1.1 with the path as target
/// (`Host` is among the fields).
fn http_request<B: Default>(wanted: &ClientRequest) -> Result<http::Request<B>, Error> {
    let http2 = wanted.version() == HttpVersion::Http2;
    let uri = if http2 { wanted.uri() } else { wanted.path().into() };
    let mut request = http::Request::new(B::default());
    *request.method_mut() = Method::from_bytes(wanted.method().as_bytes()).map_err(|_| UsageError::InvalidUrl)?;
    *request.uri_mut() = Uri::try_from(uri).map_err(|_| UsageError::InvalidUrl)?;
    *request.version_mut() = if http2 { Version::HTTP_2 } else { Version::HTTP_11 };
    if let Some(protocol) = wanted.protocol() {
        request.extensions_mut().insert(Protocol::from(protocol));
    }
    let fields: &mut HeaderMap = request.headers_mut();
    for (name, value) in wanted.headers() {
        let (name, value) = field(name, value.as_bytes())?;
        fields.append(name, value);
    }
    Ok(request)
}

/// Checks the answer and opens the WebSocket on the upgraded stream, or
/// keeps a refusal whole for the caller.
async fn finish(
    wanted: &ClientRequest,
    mut response: http::Response<Incoming>,
    config: Config,
) -> Result<(WebSocket, Response), Error> {
    let version = match response.version() {
        Version::HTTP_2 => HttpVersion::Http2,
        Version::HTTP_11 => HttpVersion::Http11,
        _ => HttpVersion::Http10,
    };
    let status = response.status().as_u16();
    let fields = response.headers().iter().map(|(name, value)| (name.as_str(), value.as_bytes()));
    match wanted.check_response(status, version, fields) {
        Ok(checked) => {
            let upgraded = ::hyper::upgrade::on(&mut response).await.map_err(hyper_error)?;
            let deflate = checked.deflate().copied();
            let ws = open(TokioIo::new(upgraded), Role::Client, config, deflate)?;
            Ok((ws, checked))
        }
        Err(HandshakeError::Status(_)) => {
            let fields = response.headers().iter().map(|(name, value)| (name.as_str(), value.as_bytes()));
            let mut refusal = Response::refusal(status, version, fields).map_err(crate::Error::from)?;
            refusal.set_body(read_body(response.into_body(), config.max_handshake_size).await?);
            Err(Error::Rejected(Box::new(refusal)))
        }
        Err(error) => Err(crate::Error::from(error).into()),
    }
}

/// Up to `limit` bytes of a refusal's body.
async fn read_body(mut body: Incoming, limit: usize) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    while bytes.len() < limit {
        let frame = core::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        let Some(frame) = frame.transpose().map_err(hyper_error)? else { break };
        if let Ok(data) = frame.into_data() {
            let take = data.len().min(limit - bytes.len());
            bytes.extend_from_slice(&data[..take]);
        }
    }
    Ok(bytes)
}
