//! The server side of the opening handshake (RFC 6455 §4.2, RFC 8441 for
//! HTTP/2): validating the client's upgrade request and answering it.
//!
//! A request reaches the one validator (`Request::check`) by either of
//! two ways: a head received by the built-in handshake, parsed with
//! httparse, or the parts of a request another HTTP stack parsed
//! ([`Request::from_parts`]). Likewise every acceptance is an [`Answer`],
//! which the built-in handshake writes as a 101 response and another stack
//! sends its own way, so both negotiate subprotocols and compression alike.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use base64::Engine as _;

use super::HttpVersion;
use crate::deflate::{DeflateConfig, DeflateParams, negotiation};
use crate::error::{HandshakeError, UsageError};
use crate::http::{Headers, PartsBuilder, is_field_value, is_target, is_token, parse_error, push_decimal, push_header};

/// A client's upgrade request that passed every RFC 6455 check, as shown to
/// the server application in [`Event::Request`](crate::Event::Request), or
/// made by [`Request::from_parts`] from a request another HTTP stack parsed.
#[derive(Clone, Debug)]
pub struct Request {
    version: HttpVersion,
    method: Range<u32>,
    target: Range<u32>,
    key: Range<u32>,
    headers: Headers,
}

impl Request {
    /// Parses and validates a complete request head (through its blank line).
    /// Each error carries the HTTP status to answer with.
    pub(crate) fn parse(head: &[u8], max_headers: usize) -> Result<Self, HandshakeError> {
        let mut storage = alloc::vec![httparse::EMPTY_HEADER; max_headers];
        let mut req = httparse::Request::new(&mut storage);
        match req.parse(head).map_err(parse_error)? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => return Err(HandshakeError::Malformed),
        }
        let (Some(method), Some(target), Some(version)) = (req.method, req.path, req.version) else {
            return Err(HandshakeError::Malformed);
        };
        // httparse reads only HTTP/1.0 and HTTP/1.1 heads.
        let version = if version == 1 { HttpVersion::Http11 } else { HttpVersion::Http10 };
        let mut request = Self {
            version,
            method: crate::http::offset_in(head, method.as_bytes()),
            target: crate::http::offset_in(head, target.as_bytes()),
            key: 0..0,
            headers: Headers::new(head, req.headers),
        };
        request.check(None)?;
        Ok(request)
    }

    /// Validates an upgrade request that another HTTP stack (hyper, axum,
    /// an HTTP/2 server) already parsed, by the same rules as the built-in
    /// handshake, and returns it as that handshake would show it.
    ///
    /// * `method`: `GET` for HTTP/1.1, `CONNECT` for HTTP/2.
    /// * `protocol`: HTTP/2's `:protocol` pseudo-header (`websocket` for an
    ///   RFC 8441 extended CONNECT); `None` for HTTP/1.x.
    /// * `target`: the path and query (HTTP/2's `:path`), e.g. `/chat?room=1`.
    /// * `headers`: every header field, in order. Pseudo-headers are not
    ///   header fields: `:authority` and `:scheme` stay with your stack,
    ///   which RFC 9113 §8.3 has already made check them, so an HTTP/2
    ///   request needs no `Host`.
    ///
    /// HTTP/2 requests must not carry `Upgrade` or `Connection` (RFC 9113
    /// §8.2.2) and need no `Sec-WebSocket-Key`, which RFC 8441 §5 leaves
    /// unprocessed; it is ignored if sent.
    ///
    /// On failure answer with the error's [`status`](HandshakeError::status),
    /// its [`response_headers`](HandshakeError::response_headers) and, say,
    /// its text as the body.
    ///
    /// ```
    /// use wscore::{HandshakeError, HttpVersion, Request};
    ///
    /// // In a hyper handler: `req.method().as_str()`, `req.version()`,
    /// // `req.extensions().get::<hyper::ext::Protocol>()`, `req.uri().path_and_query()`,
    /// // `req.headers().iter().map(|(n, v)| (n.as_str(), v.as_bytes()))`.
    /// let headers = [("sec-websocket-version", "13"), ("sec-websocket-protocol", "chat")];
    /// let request = Request::from_parts("CONNECT", HttpVersion::Http2, Some("websocket"), "/chat", headers)?;
    /// assert_eq!((request.path(), request.version()), ("/chat", HttpVersion::Http2));
    /// assert_eq!(request.protocols().collect::<Vec<_>>(), ["chat"]);
    ///
    /// // The same request over HTTP/1.1 lacks Host, Upgrade, Connection and a key.
    /// let error = Request::from_parts("GET", HttpVersion::Http11, None, "/chat", headers).unwrap_err();
    /// assert_eq!((error, error.status()), (HandshakeError::Host, Some(400)));
    /// # Ok::<(), wscore::Error>(())
    /// ```
    pub fn from_parts<N, V>(
        method: &str,
        version: HttpVersion,
        protocol: Option<&str>,
        target: &str,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, HandshakeError>
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        // What httparse would have refused in a received head.
        if !is_token(method) || !is_target(target) {
            return Err(HandshakeError::Malformed);
        }
        let mut parts = PartsBuilder::default();
        let method = parts.part(method.as_bytes());
        let target = parts.part(target.as_bytes());
        for (name, value) in headers {
            parts.field(name.as_ref(), value.as_ref())?;
        }
        let mut request = Self { version, method, target, key: 0..0, headers: parts.finish()? };
        request.check(protocol)?;
        Ok(request)
    }

    /// The rules for an upgrade request, whichever way it arrived: RFC 6455
    /// §4.2.1, and for HTTP/2 RFC 8441 §4–5. Records the key on success.
    fn check(&mut self, protocol: Option<&str>) -> Result<(), HandshakeError> {
        let http2 = self.version == HttpVersion::Http2;
        if protocol.is_some() && !http2 {
            // A pseudo-header exists only in HTTP/2.
            return Err(HandshakeError::Malformed);
        }
        if http2 {
            let websocket = protocol.is_some_and(|p| p.eq_ignore_ascii_case("websocket"));
            if self.method() != "CONNECT" || !websocket {
                return Err(HandshakeError::ExtendedConnect);
            }
        } else if self.method() != "GET" {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if self.version == HttpVersion::Http10 {
            return Err(HandshakeError::HttpVersion);
        }
        if !self.path().starts_with('/') {
            return Err(HandshakeError::InvalidTarget);
        }
        let h = &self.headers;
        match h.single("host") {
            Ok(Some(_)) => {}
            Ok(None) if http2 => {}
            _ => return Err(HandshakeError::Host),
        }
        if http2 {
            // Connection-specific fields make an HTTP/2 request malformed
            // (RFC 9113 §8.2.2); we name the field that did.
            if h.all("upgrade").next().is_some() {
                return Err(HandshakeError::Upgrade);
            }
            if h.all("connection").next().is_some() {
                return Err(HandshakeError::Connection);
            }
        } else {
            if !h.has_token("upgrade", "websocket") {
                return Err(HandshakeError::Upgrade);
            }
            if !h.has_token("connection", "upgrade") {
                return Err(HandshakeError::Connection);
            }
        }
        // A body would be bytes of unknown meaning in front of the frames.
        let has_body = h.all("transfer-encoding").next().is_some()
            || h.all("content-length").any(|v| crate::http::trim(v) != b"0");
        if has_body {
            return Err(HandshakeError::Body);
        }
        match h.single("sec-websocket-version") {
            Ok(Some(v)) if crate::http::trim(v) == b"13" => {}
            Ok(Some(_)) if http2 => return Err(HandshakeError::UnsupportedVersionHttp2),
            Ok(Some(_)) => return Err(HandshakeError::UnsupportedVersion),
            _ => return Err(HandshakeError::MissingVersion),
        }
        if http2 {
            return Ok(());
        }
        let key = match h.single("sec-websocket-key") {
            Ok(Some(k)) => crate::http::trim(k),
            _ => return Err(HandshakeError::Key),
        };
        let mut decoded = [0u8; 18];
        match base64::engine::general_purpose::STANDARD.decode_slice(key, &mut decoded) {
            Ok(16) if key.len() == 24 => {}
            _ => return Err(HandshakeError::Key),
        }
        self.key = h.range_of(key);
        Ok(())
    }

    /// The HTTP version the request came over.
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// The request method: `GET`, or `CONNECT` over HTTP/2.
    pub fn method(&self) -> &str {
        self.str_at(&self.method)
    }

    /// The request target: path and query, e.g. `/chat?room=1`.
    pub fn path(&self) -> &str {
        self.str_at(&self.target)
    }

    /// The `Sec-WebSocket-Key` value; empty over HTTP/2, which has none.
    pub fn key(&self) -> &[u8] {
        self.headers.slice(&self.key)
    }

    /// The value of the first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.all(name).next()
    }

    /// Every header field as (name, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter()
    }

    /// The subprotocols the client offered in `Sec-WebSocket-Protocol`, in
    /// its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &str> + '_ {
        self.headers.list("sec-websocket-protocol").filter_map(|p| core::str::from_utf8(p).ok())
    }

    /// The raw `Sec-WebSocket-Extensions` offers, one list element each.
    pub fn extensions(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.headers.list("sec-websocket-extensions")
    }

    fn str_at(&self, r: &Range<u32>) -> &str {
        // httparse only accepts visible ASCII in the method and target, and
        // parts are given as `&str`.
        core::str::from_utf8(self.headers.slice(r)).unwrap_or("")
    }

    /// The raw request head, through its blank line; empty for a request
    /// made [`from_parts`](Self::from_parts).
    pub fn raw(&self) -> &[u8] {
        self.headers.raw()
    }
}

/// How a server answers an upgrade request: the subprotocol it chose and any
/// extra response headers. Pass it to [`Connection::accept`](crate::Connection::accept),
/// or turn it into an [`Answer`] for a request another HTTP stack parsed.
///
/// ```
/// let accept = wscore::Accept::new().protocol("chat").header("X-Served-By", "edge-1");
/// # let _ = accept;
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct Accept<'a> {
    pub(crate) protocol: Option<&'a str>,
    pub(crate) headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Accept<'a> {
    /// Accept with no subprotocol and no extra headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Choose a subprotocol; it must be one the client offered.
    pub fn protocol(mut self, protocol: &'a str) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// Add a response header.
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Everything the response that accepts `request` needs: its status,
    /// its header fields, and what was agreed. `deflate` is the
    /// permessage-deflate configuration to answer the client's offers with;
    /// `None` declines compression. The built-in handshake sends the same
    /// answer as a 101 response.
    ///
    /// Fails, with nothing decided, if the chosen subprotocol was not
    /// offered or an extra header is not a valid HTTP field.
    ///
    /// ```
    /// use wscore::deflate::DeflateConfig;
    /// use wscore::{Accept, HttpVersion, Request};
    ///
    /// let headers = [
    ///     ("Host", "example.com"),
    ///     ("Upgrade", "websocket"),
    ///     ("Connection", "Upgrade"),
    ///     ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ///     ("Sec-WebSocket-Version", "13"),
    ///     ("Sec-WebSocket-Protocol", "chat, superchat"),
    ///     ("Sec-WebSocket-Extensions", "permessage-deflate"),
    /// ];
    /// let request = Request::from_parts("GET", HttpVersion::Http11, None, "/chat", headers)?;
    /// let answer = Accept::new().protocol("chat").answer(&request, Some(&DeflateConfig::default()))?;
    ///
    /// // In a hyper handler: `Response::builder().status(answer.status())`, a
    /// // `.header(name, value)` for each of `answer.headers()`, then
    /// // `Connection::frames_only_with_deflate` on the upgraded stream with
    /// // `answer.deflate()`.
    /// assert_eq!(answer.status(), 101);
    /// let headers: Vec<_> = answer.headers().collect();
    /// assert!(headers.contains(&("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")));
    /// assert!(headers.contains(&("Sec-WebSocket-Protocol", "chat")));
    /// assert!(headers.contains(&("Sec-WebSocket-Extensions", "permessage-deflate")));
    /// assert!(answer.deflate().is_some());
    /// # Ok::<(), wscore::Error>(())
    /// ```
    pub fn answer(&self, request: &Request, deflate: Option<&DeflateConfig>) -> Result<Answer<'a>, UsageError> {
        if let Some(p) = self.protocol
            && !request.protocols().any(|offered| offered == p)
        {
            return Err(UsageError::UnofferedProtocol);
        }
        check_headers(&self.headers)?;
        let negotiated = deflate.and_then(|config| negotiation::server_answer(request.extensions(), config));
        let (deflate, extensions) = negotiated.unzip();
        let accept = match request.version {
            HttpVersion::Http2 => None,
            _ => Some(super::accept_key(request.key())),
        };
        Ok(Answer { accept, protocol: self.protocol, extensions, deflate, extra: self.headers.clone() })
    }

    /// Writes the 101 response for `request` with [`answer`](Self::answer)'s
    /// header fields, and returns the answer.
    pub(crate) fn write_response(
        &self,
        request: &Request,
        deflate: Option<&DeflateConfig>,
        out: &mut Vec<u8>,
    ) -> Result<Answer<'a>, UsageError> {
        let answer = self.answer(request, deflate)?;
        debug_assert_eq!(answer.status(), 101, "the built-in handshake is HTTP/1.1");
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        for (name, value) in answer.headers() {
            push_header(out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Ok(answer)
    }
}

impl fmt::Debug for Accept<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accept").field("protocol", &self.protocol).field("headers", &self.headers).finish()
    }
}

/// The response that accepts an upgrade request, from [`Accept::answer`]:
/// the status and header fields to send, and the subprotocol and
/// permessage-deflate parameters both ends then use.
#[derive(Clone, Debug)]
pub struct Answer<'a> {
    /// `Sec-WebSocket-Accept`, for HTTP/1.1 only.
    accept: Option<[u8; 28]>,
    protocol: Option<&'a str>,
    extensions: Option<String>,
    deflate: Option<DeflateParams>,
    extra: Vec<(&'a str, &'a str)>,
}

impl Answer<'_> {
    /// The status to send: 101 Switching Protocols over HTTP/1.1, 200 OK
    /// over HTTP/2 (RFC 8441 §5).
    pub fn status(&self) -> u16 {
        if self.accept.is_some() { 101 } else { 200 }
    }

    /// The header fields to send, in order: for HTTP/1.1 `Upgrade`,
    /// `Connection` and `Sec-WebSocket-Accept`; then `Sec-WebSocket-Protocol`
    /// and `Sec-WebSocket-Extensions` if anything was chosen; then the
    /// [`Accept`]'s extra headers.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        let upgrade = self.accept.as_ref().map(|key| {
            // Base64 is ASCII.
            let key = core::str::from_utf8(key).unwrap_or_default();
            [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", key)]
        });
        upgrade
            .into_iter()
            .flatten()
            .chain(self.protocol.map(|p| ("Sec-WebSocket-Protocol", p)))
            .chain(self.extensions.as_deref().map(|e| ("Sec-WebSocket-Extensions", e)))
            .chain(self.extra.iter().copied())
    }

    /// The subprotocol chosen, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.protocol
    }

    /// The permessage-deflate parameters agreed, if compression was: pass
    /// them to [`Connection::frames_only_with_deflate`](crate::Connection::frames_only_with_deflate).
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }
}

/// How a server refuses an upgrade request: an HTTP status (400–599),
/// extra headers and a body. Pass it to [`Connection::reject`](crate::Connection::reject).
///
/// ```
/// let reject = wscore::Reject::new(403).header("X-Reason", "origin").body(b"forbidden\n");
/// # let _ = reject;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Reject<'a> {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(&'a str, &'a str)>,
    pub(crate) body: &'a [u8],
}

impl<'a> Reject<'a> {
    /// Reject with `status` and an empty body.
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: b"" }
    }

    /// Add a response header.
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// Set the response body (sent as `text/plain; charset=utf-8`).
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// Writes the response after checking status and headers.
    pub(crate) fn write_response(&self, out: &mut Vec<u8>) -> Result<(), UsageError> {
        if !(400..=599).contains(&self.status) {
            return Err(UsageError::InvalidStatus);
        }
        check_headers(&self.headers)?;
        write_error_response(self.status, &self.headers, self.body, out);
        Ok(())
    }
}

fn check_headers(headers: &[(&str, &str)]) -> Result<(), UsageError> {
    if headers.iter().all(|(n, v)| is_token(n) && is_field_value(v.as_bytes())) {
        Ok(())
    } else {
        Err(UsageError::InvalidHeader)
    }
}

/// Writes a complete HTTP error response that closes the connection.
///
/// Any connection options in `headers` (a 426's `upgrade`) join `close` in
/// one `Connection` field rather than a second one: the two fields would mean
/// the same list (RFC 9110 §5.3), but clients that read only the first would
/// miss one option. `upgrade` and `close` do not contradict each other: the
/// first marks `Upgrade` as hop-by-hop and names what to retry with, the
/// second says the retry needs a new connection, since we close this one
/// rather than read whatever the client sends after a request we refused.
pub(crate) fn write_error_response(status: u16, headers: &[(&str, &str)], body: &[u8], out: &mut Vec<u8>) {
    let is_connection = |name: &str| name.eq_ignore_ascii_case("connection");
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, usize::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\nConnection: close");
    for (_, options) in headers.iter().filter(|(name, _)| is_connection(name)) {
        out.extend_from_slice(b", ");
        out.extend_from_slice(options.as_bytes());
    }
    out.extend_from_slice(b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    push_decimal(out, body.len());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers.iter().filter(|(name, _)| !is_connection(name)) {
        push_header(out, name, value.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// Writes the response for a request that failed validation: its status,
/// the headers it needs ([`HandshakeError::response_headers`]) and the
/// reason as the body.
pub(crate) fn write_handshake_error(error: HandshakeError, out: &mut Vec<u8>) {
    let status = error.status().unwrap_or(400);
    let mut body = alloc::string::ToString::to_string(&error);
    body.push('\n');
    write_error_response(status, error.response_headers(), body.as_bytes(), out);
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ if status < 500 => "Client Error",
        _ => "Server Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const GOOD: &str = "GET /chat?x=1 HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn parse(s: &str) -> Result<Request, HandshakeError> {
        Request::parse(s.as_bytes(), 16)
    }

    #[test]
    fn accepts_rfc_example_and_answers_it() {
        let req = parse(GOOD).unwrap();
        assert_eq!(req.path(), "/chat?x=1");
        assert_eq!(req.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
        let mut out = Vec::new();
        Accept::new().protocol("chat").write_response(&req, None, &mut out).unwrap();
        let text = core::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: chat\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        out.clear();
        let refused = Accept::new().protocol("other").write_response(&req, None, &mut out);
        assert_eq!(refused.err(), Some(UsageError::UnofferedProtocol));
        let refused = Accept::new().header("X", "a\r\nb").write_response(&req, None, &mut out);
        assert_eq!(refused.err(), Some(UsageError::InvalidHeader));
        assert!(out.is_empty(), "a refused answer writes nothing");
    }

    #[test]
    fn written_response_is_the_answer() {
        let req = parse(&GOOD.replace("\r\n\r\n", "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")).unwrap();
        let accept = Accept::new().protocol("superchat").header("X-A", "1");
        let config = DeflateConfig::default();
        let mut out = Vec::new();
        let written = accept.write_response(&req, Some(&config), &mut out).unwrap();
        let answer = accept.answer(&req, Some(&config)).unwrap();
        let mut expected = String::from("HTTP/1.1 101 Switching Protocols\r\n");
        for (name, value) in answer.headers() {
            expected.push_str(&alloc::format!("{name}: {value}\r\n"));
        }
        expected.push_str("\r\n");
        assert_eq!(core::str::from_utf8(&out).unwrap(), expected);
        assert_eq!(written.headers().collect::<Vec<_>>(), answer.headers().collect::<Vec<_>>());
        assert!(expected.contains("Sec-WebSocket-Extensions: permessage-deflate\r\nX-A: 1\r\n"), "{expected}");
        assert_eq!((answer.protocol(), answer.deflate()), (Some("superchat"), Some(&DeflateParams::default())));
        // No configuration declines compression.
        let plain = accept.answer(&req, None).unwrap();
        assert!(plain.deflate().is_none() && plain.headers().all(|(n, _)| n != "Sec-WebSocket-Extensions"));
    }

    const H2: &[(&str, &str)] = &[("sec-websocket-version", "13"), ("sec-websocket-protocol", "chat")];

    fn h2(method: &str, protocol: Option<&str>, headers: &[(&str, &str)]) -> Result<Request, HandshakeError> {
        Request::from_parts(method, HttpVersion::Http2, protocol, "/chat", headers.iter().copied())
    }

    #[test]
    fn http2_extended_connect_is_accepted_with_200() {
        let req = h2("CONNECT", Some("websocket"), H2).unwrap();
        assert_eq!((req.method(), req.path(), req.key(), req.raw()), ("CONNECT", "/chat", &b""[..], &b""[..]));
        let answer = Accept::new().protocol("chat").answer(&req, None).unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers().collect::<Vec<_>>(), [("Sec-WebSocket-Protocol", "chat")]);
        // RFC 8441 §5 leaves the key unprocessed: ignored, even if malformed.
        let with_key = [H2, &[("sec-websocket-key", "not base64")]].concat();
        assert!(h2("CONNECT", Some("WebSocket"), &with_key).is_ok());
        // An authority given as Host is fine, twice is not.
        assert!(h2("CONNECT", Some("websocket"), &[H2, &[("host", "a")]].concat()).is_ok());
    }

    #[test]
    fn http2_rules() {
        let with = |extra: &[(&'static str, &'static str)]| [H2, extra].concat();
        type Case = (&'static str, Option<&'static str>, Vec<(&'static str, &'static str)>, HandshakeError);
        let cases: &[Case] = &[
            ("GET", Some("websocket"), with(&[]), HandshakeError::ExtendedConnect),
            ("CONNECT", None, with(&[]), HandshakeError::ExtendedConnect),
            ("CONNECT", Some("webtransport"), with(&[]), HandshakeError::ExtendedConnect),
            ("CONNECT", Some("websocket"), with(&[("upgrade", "websocket")]), HandshakeError::Upgrade),
            ("CONNECT", Some("websocket"), with(&[("connection", "upgrade")]), HandshakeError::Connection),
            ("CONNECT", Some("websocket"), with(&[("host", "a"), ("host", "b")]), HandshakeError::Host),
            ("CONNECT", Some("websocket"), with(&[("content-length", "3")]), HandshakeError::Body),
            ("CONNECT", Some("websocket"), with(&[("sec-websocket-version", "13")]), HandshakeError::MissingVersion),
            (
                "CONNECT",
                Some("websocket"),
                vec![("sec-websocket-version", "8")],
                HandshakeError::UnsupportedVersionHttp2,
            ),
            ("CONNECT", Some("websocket"), vec![], HandshakeError::MissingVersion),
            ("CONNECT", Some("websocket"), with(&[(":authority", "a")]), HandshakeError::Malformed),
        ];
        for (method, protocol, headers, expected) in cases {
            assert_eq!(h2(method, *protocol, headers).err(), Some(*expected), "{method} {protocol:?} {headers:?}");
        }
        let error = HandshakeError::UnsupportedVersionHttp2;
        assert_eq!((error.status(), error.response_headers()), (Some(400), &[("Sec-WebSocket-Version", "13")][..]));
        // `:protocol` is an HTTP/2 pseudo-header: given with HTTP/1.1 it is nonsense.
        let parts = GOOD_PARTS.iter().copied();
        let http11 = Request::from_parts("GET", HttpVersion::Http11, Some("websocket"), "/", parts);
        assert_eq!(http11.err(), Some(HandshakeError::Malformed));
    }

    const GOOD_PARTS: &[(&str, &str)] = &[
        ("Host", "server.example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ];

    #[test]
    fn parts_are_checked_for_what_httparse_refuses() {
        let good = |method: &str, target: &str| {
            Request::from_parts(method, HttpVersion::Http11, None, target, GOOD_PARTS.iter().copied()).err()
        };
        assert_eq!(good("GET", "/a?b"), None);
        assert_eq!(good("G T", "/"), Some(HandshakeError::Malformed));
        assert_eq!(good("GET", "/a b"), Some(HandshakeError::Malformed));
        assert_eq!(good("GET", ""), Some(HandshakeError::Malformed));
        assert_eq!(good("GET", "*"), Some(HandshakeError::InvalidTarget));
        let bad_value = [GOOD_PARTS, &[("X", "a\nb")]].concat();
        let refused = Request::from_parts("GET", HttpVersion::Http11, None, "/", bad_value);
        assert_eq!(refused.err(), Some(HandshakeError::Malformed));
    }

    #[test]
    fn rejects_each_broken_rule_with_its_status() {
        let cases: &[(&str, &str, HandshakeError)] = &[
            ("GET /chat?x=1", "POST /chat", HandshakeError::MethodNotAllowed),
            ("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost", HandshakeError::HttpVersion),
            ("Host: server.example.com\r\n", "", HandshakeError::Host),
            ("Host: server.example.com\r\n", "Host: a\r\nHost: b\r\n", HandshakeError::Host),
            ("Upgrade: websocket", "Upgrade: h2c", HandshakeError::Upgrade),
            ("Connection: Upgrade", "Connection: keep-alive", HandshakeError::Connection),
            ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", HandshakeError::UnsupportedVersion),
            ("Sec-WebSocket-Version: 13\r\n", "", HandshakeError::MissingVersion),
            ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==", HandshakeError::Key),
            ("dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!!!", HandshakeError::Key),
            ("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "", HandshakeError::Key),
            (
                "Sec-WebSocket-Version: 13\r\n",
                "Sec-WebSocket-Version: 13\r\nContent-Length: 5\r\n",
                HandshakeError::Body,
            ),
            ("GET /chat?x=1", "GET http://a/", HandshakeError::InvalidTarget),
        ];
        for (from, to, expected) in cases {
            let req = GOOD.replacen(from, to, 1);
            assert_eq!(parse(&req).err(), Some(*expected), "{req}");
        }
        let dup_key = GOOD
            .replace("Sec-WebSocket-Version", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version");
        assert_eq!(parse(&dup_key).err(), Some(HandshakeError::Key));
        assert_eq!(Request::parse(GOOD.as_bytes(), 4).err(), Some(HandshakeError::TooManyHeaders));
        assert_eq!(parse("GARBAGE\r\n\r\n").err(), Some(HandshakeError::Malformed));
    }

    #[test]
    fn header_case_and_token_lists() {
        let req = GOOD
            .replace("Upgrade: websocket", "UPGRADE: WebSocket")
            .replace("Connection: Upgrade", "connection: keep-alive, upgrade");
        assert!(parse(&req).is_ok());
    }

    /// Splits a response into status line, header fields and body.
    fn split(out: &[u8]) -> (&str, Vec<(&str, &str)>, &str) {
        let text = core::str::from_utf8(out).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap();
        let fields = lines.map(|l| l.split_once(": ").unwrap()).collect();
        (status, fields, body)
    }

    #[test]
    fn error_responses_are_complete_http() {
        let mut out = Vec::new();
        write_handshake_error(HandshakeError::UnsupportedVersion, &mut out);
        let (status, fields, body) = split(&out);
        assert_eq!(status, "HTTP/1.1 426 Upgrade Required");
        // One Connection field with both options, and Upgrade to go with it.
        assert_eq!(fields.iter().filter(|(n, _)| n.eq_ignore_ascii_case("connection")).count(), 1);
        assert!(fields.contains(&("Connection", "close, upgrade")), "{fields:?}");
        assert!(fields.contains(&("Upgrade", "websocket")), "{fields:?}");
        assert!(fields.contains(&("Sec-WebSocket-Version", "13")), "{fields:?}");
        assert!(fields.contains(&("Content-Length", alloc::format!("{}", body.len()).as_str())));

        out.clear();
        write_handshake_error(HandshakeError::HttpVersion, &mut out);
        let (status, fields, body) = split(&out);
        assert_eq!(status, "HTTP/1.1 400 Bad Request");
        assert!(fields.contains(&("Connection", "close")), "{fields:?}");
        assert_eq!(body, "WebSocket upgrade needs HTTP/1.1\n");

        out.clear();
        write_handshake_error(HandshakeError::MethodNotAllowed, &mut out);
        let (status, fields, _) = split(&out);
        assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
        assert!(fields.contains(&("Allow", "GET")), "{fields:?}");
    }
}
