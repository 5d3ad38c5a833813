//! The server side of the opening handshake (RFC 6455 §4.2): validating the
//! client's upgrade request and writing the 101 or error response.

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use base64::Engine as _;

use crate::error::{HandshakeError, UsageError};
use crate::http::{Headers, is_field_value, is_token, parse_error, push_decimal, push_header};

/// A client's upgrade request that passed every RFC 6455 check, as shown to
/// the server application in [`Event::Request`](crate::Event::Request).
#[derive(Clone, Debug)]
pub struct Request {
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
        let method = crate::http::offset_in(head, method.as_bytes());
        let target = crate::http::offset_in(head, target.as_bytes());
        let headers = Headers::new(head, req.headers);
        let mut request = Self { method, target, key: 0..0, headers };
        if request.method() != "GET" {
            return Err(HandshakeError::MethodNotAllowed);
        }
        if version != 1 {
            return Err(HandshakeError::HttpVersion);
        }
        if !request.path().starts_with('/') {
            return Err(HandshakeError::InvalidTarget);
        }
        let h = &request.headers;
        if !matches!(h.single("host"), Ok(Some(_))) {
            return Err(HandshakeError::Host);
        }
        if !h.has_token("upgrade", "websocket") {
            return Err(HandshakeError::Upgrade);
        }
        if !h.has_token("connection", "upgrade") {
            return Err(HandshakeError::Connection);
        }
        // A body would be bytes of unknown meaning in front of the frames.
        let has_body = h.all("transfer-encoding").next().is_some()
            || h.all("content-length").any(|v| crate::http::trim(v) != b"0");
        if has_body {
            return Err(HandshakeError::Body);
        }
        match h.single("sec-websocket-version") {
            Ok(Some(v)) if crate::http::trim(v) == b"13" => {}
            Ok(Some(_)) => return Err(HandshakeError::UnsupportedVersion),
            _ => return Err(HandshakeError::MissingVersion),
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
        request.key = h.range_of(key);
        Ok(request)
    }

    /// The request method (always `GET` once validated).
    pub fn method(&self) -> &str {
        self.str_at(&self.method)
    }

    /// The request target: path and query, e.g. `/chat?room=1`.
    pub fn path(&self) -> &str {
        self.str_at(&self.target)
    }

    /// The `Sec-WebSocket-Key` value.
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
        // httparse only accepts visible ASCII in the method and target.
        core::str::from_utf8(self.headers.slice(r)).unwrap_or("")
    }

    /// The raw request head, through its blank line.
    pub fn raw(&self) -> &[u8] {
        self.headers.raw()
    }
}

/// How a server answers an upgrade request: the subprotocol it chose and any
/// extra response headers. Pass it to [`Connection::accept`](crate::Connection::accept).
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

    /// Writes the 101 response for `request`, after checking the choices,
    /// with the `Sec-WebSocket-Extensions` answer if there is one.
    pub(crate) fn write_response(
        &self,
        request: &Request,
        extensions: Option<&str>,
        out: &mut Vec<u8>,
    ) -> Result<(), UsageError> {
        if let Some(p) = self.protocol
            && !request.protocols().any(|offered| offered == p)
        {
            return Err(UsageError::UnofferedProtocol);
        }
        check_headers(&self.headers)?;
        out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
        push_header(out, "Sec-WebSocket-Accept", &super::accept_key(request.key()));
        if let Some(p) = self.protocol {
            push_header(out, "Sec-WebSocket-Protocol", p.as_bytes());
        }
        if let Some(answer) = extensions {
            push_header(out, "Sec-WebSocket-Extensions", answer.as_bytes());
        }
        for (name, value) in &self.headers {
            push_header(out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        Ok(())
    }
}

impl fmt::Debug for Accept<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accept").field("protocol", &self.protocol).field("headers", &self.headers).finish()
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
    if headers.iter().all(|(n, v)| is_token(n) && is_field_value(v)) { Ok(()) } else { Err(UsageError::InvalidHeader) }
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
        assert_eq!(
            Accept::new().protocol("other").write_response(&req, None, &mut out),
            Err(UsageError::UnofferedProtocol)
        );
        assert_eq!(
            Accept::new().header("X", "a\r\nb").write_response(&req, None, &mut out),
            Err(UsageError::InvalidHeader)
        );
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
