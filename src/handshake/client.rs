//! The client side of the opening handshake (RFC 6455 §4.1, RFC 8441 for
//! HTTP/2): the upgrade request built from a `ws://` or `wss://` URL, and
//! validation of the server's response.
//!
//! The built-in handshake writes the request's header fields and another
//! HTTP stack sends them from a [`ClientRequest`]; both come from one list.
//! A response head the built-in handshake received and the parts of a
//! response another stack parsed become the same [`Response`] and pass the
//! same checks.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use base64::Engine as _;

use super::HttpVersion;
use crate::deflate::{DeflateConfig, DeflateParams, negotiation};
use crate::error::{HandshakeError, UsageError};
use crate::http::{Headers, PartsBuilder, is_field_value, is_token, parse_error, push_header};

/// What a client asks for: the URL's parts, the subprotocols it offers and
/// any extra request headers.
///
/// ```
/// let hs = wscore::ClientHandshake::new("wss://example.com/chat?room=1")?
///     .protocol("chat")?
///     .header("Origin", "https://example.com")?;
/// assert_eq!((hs.host(), hs.port(), hs.resource()), ("example.com", 443, "/chat?room=1"));
/// assert!(hs.is_secure());
/// # Ok::<(), wscore::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ClientHandshake {
    secure: bool,
    host: String,
    port: u16,
    /// `host`, with `:port` if the URL gave one: `Host` or `:authority`.
    authority: String,
    resource: String,
    protocols: Vec<String>,
    headers: Vec<(String, String)>,
}

impl ClientHandshake {
    /// Parses a `ws://` or `wss://` URL: host (name, IPv4 or bracketed IPv6),
    /// optional port, path and query. Fragments and user info are refused
    /// (RFC 6455 §3 forbids fragments).
    pub fn new(url: &str) -> Result<Self, UsageError> {
        let bad = UsageError::InvalidUrl;
        let (scheme, rest) = url.split_once("://").ok_or(bad)?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "ws" => false,
            "wss" => true,
            _ => return Err(bad),
        };
        if url.contains('#') || !is_field_value(url.as_bytes()) || url.contains(' ') {
            return Err(bad);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, resource) = rest.split_at(split);
        if authority.contains('@') || authority.is_empty() {
            return Err(bad);
        }
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (addr, after) = v6.split_once(']').ok_or(bad)?;
            if addr.is_empty() || !addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
                return Err(bad);
            }
            (&authority[..addr.len() + 2], after.strip_prefix(':'))
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let valid_host = !host.is_empty()
            && (host.starts_with('[')
                || host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
        if !valid_host || (port.is_none() && authority.len() != host.len()) {
            return Err(bad);
        }
        let port = match port {
            Some(p) => {
                if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad);
                }
                p.parse::<u16>().map_err(|_| bad)?
            }
            None if secure => 443,
            None => 80,
        };
        let resource = if resource.starts_with('/') { resource.to_string() } else { alloc::format!("/{resource}") };
        let host = host.to_ascii_lowercase();
        let authority = if authority.len() != host.len() { alloc::format!("{host}:{port}") } else { host.clone() };
        Ok(Self { secure, host, port, authority, resource, protocols: Vec::new(), headers: Vec::new() })
    }

    /// Offers a subprotocol (`Sec-WebSocket-Protocol`); call once per
    /// protocol, most preferred first.
    pub fn protocol(mut self, protocol: &str) -> Result<Self, UsageError> {
        if !is_token(protocol) {
            return Err(UsageError::InvalidHeader);
        }
        self.protocols.push(protocol.to_string());
        Ok(self)
    }

    /// Adds a request header, such as `Origin`, `Authorization` or `Cookie`.
    pub fn header(mut self, name: &str, value: &str) -> Result<Self, UsageError> {
        if !is_token(name) || !is_field_value(value.as_bytes()) {
            return Err(UsageError::InvalidHeader);
        }
        self.headers.push((name.to_string(), value.to_string()));
        Ok(self)
    }

    /// Whether the URL was `wss://` (the caller provides the TLS stream).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The host to connect to: a name, an IPv4 address, or an IPv6 address
    /// in brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, 80 or 443 unless the URL gave one.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Path and query, at least `/`.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The subprotocols offered.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// The request as parts for another HTTP stack: an HTTP/1.1 upgrade
    /// whose `Sec-WebSocket-Key` is the base64 of `nonce`, 16 bytes you take
    /// from a cryptographically secure source (RFC 6455 §4.1), offering
    /// permessage-deflate as `deflate` says (`None`: no compression).
    ///
    /// ```
    /// use wscore::{ClientHandshake, HttpVersion};
    ///
    /// let hs = ClientHandshake::new("ws://example.com:8080/chat")?.protocol("chat")?;
    /// let request = hs.http11_request([7; 16], None);
    /// assert_eq!((request.method(), request.path()), ("GET", "/chat"));
    /// let headers: Vec<_> = request.headers().collect();
    /// assert_eq!(headers[0], ("Host", "example.com:8080"));
    /// assert!(headers.contains(&("Sec-WebSocket-Key", "BwcHBwcHBwcHBwcHBwcHBw==")));
    ///
    /// // The server's answer, as hyper hands it over.
    /// let answer = [
    ///     ("upgrade", "websocket"),
    ///     ("connection", "upgrade"),
    ///     ("sec-websocket-accept", "CdXSYUsvsaMthlEXWDNURGWA/1o="),
    ///     ("sec-websocket-protocol", "chat"),
    /// ];
    /// let response = request.check_response(101, HttpVersion::Http11, answer)?;
    /// assert_eq!(response.protocol(), Some("chat"));
    /// # Ok::<(), wscore::Error>(())
    /// ```
    pub fn http11_request(&self, nonce: [u8; 16], deflate: Option<&DeflateConfig>) -> ClientRequest {
        let mut key = [0u8; 24];
        let written = base64::engine::general_purpose::STANDARD.encode_slice(nonce, &mut key).unwrap_or(0);
        debug_assert_eq!(written, 24);
        ClientRequest::new(self, HttpVersion::Http11, Some(key), deflate)
    }

    /// The request as parts for an HTTP/2 stack: an extended CONNECT with
    /// `:protocol` `websocket` (RFC 8441 §4–5), which has no key, `Upgrade`
    /// or `Connection`. The server must have sent
    /// `SETTINGS_ENABLE_CONNECT_PROTOCOL`; with hyper, set the method,
    /// [`uri`](ClientRequest::uri) and `hyper::ext::Protocol` from these parts.
    ///
    /// ```
    /// use wscore::{ClientHandshake, HttpVersion};
    ///
    /// let request = ClientHandshake::new("wss://example.com/chat")?.protocol("chat")?.http2_request(None);
    /// assert_eq!((request.method(), request.protocol()), ("CONNECT", Some("websocket")));
    /// assert_eq!(request.uri(), "https://example.com/chat");
    /// assert_eq!(
    ///     request.headers().collect::<Vec<_>>(),
    ///     [("Sec-WebSocket-Version", "13"), ("Sec-WebSocket-Protocol", "chat")]
    /// );
    ///
    /// // Any 2xx accepts an extended CONNECT; there is no accept key.
    /// let response = request.check_response(200, HttpVersion::Http2, [("sec-websocket-protocol", "chat")])?;
    /// assert_eq!((response.status(), response.protocol()), (200, Some("chat")));
    /// # Ok::<(), wscore::Error>(())
    /// ```
    pub fn http2_request(&self, deflate: Option<&DeflateConfig>) -> ClientRequest {
        ClientRequest::new(self, HttpVersion::Http2, None, deflate)
    }

    /// The header fields of the request, in the order sent: for HTTP/1.1
    /// (`key` given) `Host`, `Upgrade`, `Connection`; then
    /// `Sec-WebSocket-Version`, the key, `Sec-WebSocket-Protocol`
    /// (`protocols` joined, if not empty), `Sec-WebSocket-Extensions`
    /// (`offer`), and the extra headers.
    fn fields<'a>(
        &'a self,
        key: Option<&'a str>,
        protocols: &'a str,
        offer: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let upgrade =
            key.map(|_| [("Host", self.authority.as_str()), ("Upgrade", "websocket"), ("Connection", "Upgrade")]);
        upgrade
            .into_iter()
            .flatten()
            .chain([("Sec-WebSocket-Version", "13")])
            .chain(key.map(|key| ("Sec-WebSocket-Key", key)))
            .chain((!protocols.is_empty()).then_some(("Sec-WebSocket-Protocol", protocols)))
            .chain(offer.map(|offer| ("Sec-WebSocket-Extensions", offer)))
            .chain(self.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())))
    }

    /// Writes the upgrade request with the base64 `key` and, if given, the
    /// `Sec-WebSocket-Extensions` offer.
    pub(crate) fn write_request(&self, key: &[u8], extensions: Option<&str>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.resource.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\n");
        let protocols = self.protocols.join(", ");
        // Base64 is ASCII.
        let key = core::str::from_utf8(key).unwrap_or_default();
        for (name, value) in self.fields(Some(key), &protocols, extensions) {
            push_header(out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Validates a complete response head against our HTTP/1.1 request
    /// (§4.1, the client's six checks), including the permessage-deflate
    /// answer to our offer if we made one.
    #[cfg(test)]
    pub(crate) fn check_response(
        &self,
        head: &[u8],
        accept: &[u8; 28],
        max_headers: usize,
        deflate: Option<&DeflateConfig>,
    ) -> Result<Response, HandshakeError> {
        let mut response = Response::parse(head, max_headers)?;
        self.check_parsed_response(&mut response, accept, deflate)?;
        Ok(response)
    }

    /// [`check_response`](Self::check_response) for a head already parsed
    /// with [`Response::parse`]; on failure `response` stays as parsed, so
    /// a refusal (status, headers, body) can be shown to the application.
    pub(crate) fn check_parsed_response(
        &self,
        response: &mut Response,
        accept: &[u8; 28],
        deflate: Option<&DeflateConfig>,
    ) -> Result<(), HandshakeError> {
        self.check(response, HttpVersion::Http11, Some(accept), deflate)
    }

    /// The rules for the server's answer, whichever way it arrived: RFC 6455
    /// §4.1 for an HTTP/1.1 request (`accept` given), RFC 8441 §5 for
    /// HTTP/2. Records the agreed subprotocol and deflate parameters.
    fn check(
        &self,
        response: &mut Response,
        version: HttpVersion,
        accept: Option<&[u8; 28]>,
        deflate: Option<&DeflateConfig>,
    ) -> Result<(), HandshakeError> {
        let http2 = version == HttpVersion::Http2;
        let status = response.status;
        // Any 2xx to a CONNECT opens the tunnel (RFC 9110 §9.3.6).
        let accepted = if http2 { (200..300).contains(&status) } else { status == 101 };
        if !accepted {
            return Err(HandshakeError::Status(status));
        }
        if response.version != version {
            return Err(HandshakeError::HttpVersion);
        }
        let headers = &response.headers;
        if http2 {
            // Connection-specific fields make an HTTP/2 response malformed
            // (RFC 9113 §8.2.2), and there is no key to answer (RFC 8441 §5).
            if headers.all("upgrade").next().is_some() {
                return Err(HandshakeError::Upgrade);
            }
            if headers.all("connection").next().is_some() {
                return Err(HandshakeError::Connection);
            }
        } else {
            if !headers.has_token("upgrade", "websocket") {
                return Err(HandshakeError::Upgrade);
            }
            if !headers.has_token("connection", "upgrade") {
                return Err(HandshakeError::Connection);
            }
            match headers.single("sec-websocket-accept") {
                Ok(Some(value)) if accept.is_some_and(|a| crate::http::trim(value) == a) => {}
                _ => return Err(HandshakeError::Accept),
            }
        }
        let agreed = negotiation::check_answer(headers.list("sec-websocket-extensions"), deflate)
            .map_err(|()| HandshakeError::Extension)?;
        let protocol = {
            let mut chosen = headers.list("sec-websocket-protocol");
            match (chosen.next(), chosen.next()) {
                (None, _) => None,
                (Some(p), None) if self.protocols.iter().any(|o| o.as_bytes() == p) => Some(headers.range_of(p)),
                _ => return Err(HandshakeError::Protocol),
            }
        };
        response.protocol = protocol;
        response.deflate = agreed;
        Ok(())
    }
}

/// The upgrade request a [`ClientHandshake`] makes, as parts for another
/// HTTP stack to send (HTTP/1.1 through hyper's client, or an RFC 8441
/// extended CONNECT over HTTP/2), and the check of the response it gets.
/// Made by [`ClientHandshake::http11_request`] or
/// [`ClientHandshake::http2_request`].
#[derive(Clone, Debug)]
pub struct ClientRequest {
    handshake: ClientHandshake,
    version: HttpVersion,
    /// `Sec-WebSocket-Key` and the `Sec-WebSocket-Accept` it asks for, for
    /// HTTP/1.1 only.
    key: Option<([u8; 24], [u8; 28])>,
    /// The offered subprotocols, joined for `Sec-WebSocket-Protocol`.
    protocols: String,
    offer: Option<String>,
    deflate: Option<DeflateConfig>,
}

impl ClientRequest {
    fn new(
        handshake: &ClientHandshake,
        version: HttpVersion,
        key: Option<[u8; 24]>,
        deflate: Option<&DeflateConfig>,
    ) -> Self {
        Self {
            handshake: handshake.clone(),
            version,
            key: key.map(|key| (key, super::accept_key(&key))),
            protocols: handshake.protocols.join(", "),
            offer: deflate.map(negotiation::client_offer),
            deflate: deflate.cloned(),
        }
    }

    /// The HTTP version to send the request over.
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// The method: `GET`, or `CONNECT` over HTTP/2.
    pub fn method(&self) -> &str {
        if self.version == HttpVersion::Http2 { "CONNECT" } else { "GET" }
    }

    /// HTTP/2's `:protocol` pseudo-header: `websocket`; `None` for HTTP/1.1.
    pub fn protocol(&self) -> Option<&str> {
        (self.version == HttpVersion::Http2).then_some("websocket")
    }

    /// `https` for a `wss://` URL, `http` for `ws://`: HTTP/2's `:scheme`.
    pub fn scheme(&self) -> &str {
        if self.handshake.secure { "https" } else { "http" }
    }

    /// The host, with the port if the URL gave one: HTTP/2's `:authority`,
    /// HTTP/1.1's `Host` (already among [`headers`](Self::headers)).
    pub fn authority(&self) -> &str {
        &self.handshake.authority
    }

    /// Path and query, at least `/`: HTTP/2's `:path`, HTTP/1.1's request target.
    pub fn path(&self) -> &str {
        &self.handshake.resource
    }

    /// The absolute URI, `scheme://authority/path`: what an HTTP/2 client
    /// such as hyper's takes to fill in `:scheme`, `:authority` and `:path`.
    pub fn uri(&self) -> String {
        alloc::format!("{}://{}{}", self.scheme(), self.authority(), self.path())
    }

    /// The header fields to send, in order: for HTTP/1.1 `Host`, `Upgrade`,
    /// `Connection`; then `Sec-WebSocket-Version`, for HTTP/1.1
    /// `Sec-WebSocket-Key`, then `Sec-WebSocket-Protocol` and
    /// `Sec-WebSocket-Extensions` if anything is offered, and the extra
    /// headers. Names are in their usual case; HTTP/2 stacks lowercase them.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        // Base64 is ASCII.
        let key = self.key.as_ref().map(|(key, _)| core::str::from_utf8(key).unwrap_or_default());
        self.handshake.fields(key, &self.protocols, self.offer.as_deref())
    }

    /// Checks the server's answer, given as parts by another HTTP stack, by
    /// the rules of the built-in handshake: over HTTP/1.1 a 101 with
    /// `Upgrade`, `Connection` and the right `Sec-WebSocket-Accept`; over
    /// HTTP/2 a 2xx without `Upgrade` or `Connection`; for both, a
    /// subprotocol and a permessage-deflate answer that fit the offer.
    ///
    /// A response that is not an acceptance fails with
    /// [`HandshakeError::Status`]: your stack still has its headers and body.
    pub fn check_response<N, V>(
        &self,
        status: u16,
        version: HttpVersion,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Response, HandshakeError>
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut parts = PartsBuilder::default();
        for (name, value) in headers {
            parts.field(name.as_ref(), value.as_ref())?;
        }
        let mut response = Response::new(status, version, parts.finish()?);
        let accept = self.key.as_ref().map(|(_, accept)| accept);
        self.handshake.check(&mut response, self.version, accept, self.deflate.as_ref())?;
        Ok(response)
    }
}

/// The server's response to an upgrade request: as shown in
/// [`Event::Connected`](crate::Event::Connected) or returned by
/// [`ClientRequest::check_response`] once it passed every check, or what a
/// server answered when it refused the handshake.
#[derive(Clone)]
pub struct Response {
    version: HttpVersion,
    status: u16,
    protocol: Option<Range<u32>>,
    deflate: Option<DeflateParams>,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    fn new(status: u16, version: HttpVersion, headers: Headers) -> Self {
        Self { version, status, protocol: None, deflate: None, headers, body: Vec::new() }
    }

    /// Parses a complete response head (through its blank line), whatever
    /// its status; nothing about the handshake is checked yet.
    pub(crate) fn parse(head: &[u8], max_headers: usize) -> Result<Self, HandshakeError> {
        let mut storage = alloc::vec![httparse::EMPTY_HEADER; max_headers];
        let mut res = httparse::Response::new(&mut storage);
        match res.parse(head).map_err(parse_error)? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => return Err(HandshakeError::Malformed),
        }
        let (Some(status), Some(version)) = (res.code, res.version) else {
            return Err(HandshakeError::Malformed);
        };
        // httparse reads only HTTP/1.0 and HTTP/1.1 heads.
        let version = if version == 1 { HttpVersion::Http11 } else { HttpVersion::Http10 };
        Ok(Self::new(status, version, Headers::new(head, res.headers)))
    }

    /// A response another HTTP stack received and that is no acceptance
    /// ([`ClientRequest::check_response`] failed with
    /// [`HandshakeError::Status`]), kept whole for the application as the
    /// built-in handshake keeps a refusal; add the body with `set_body`.
    #[cfg(feature = "hyper")]
    pub(crate) fn refusal<N, V>(
        status: u16,
        version: HttpVersion,
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, HandshakeError>
    where
        N: AsRef<str>,
        V: AsRef<[u8]>,
    {
        let mut parts = PartsBuilder::default();
        for (name, value) in headers {
            parts.field(name.as_ref(), value.as_ref())?;
        }
        Ok(Self::new(status, version, parts.finish()?))
    }

    /// Attaches the body that followed a refusal's head.
    pub(crate) fn set_body(&mut self, body: Vec<u8>) {
        self.body = body;
    }

    /// The status code: 101, or a 2xx over HTTP/2, once the handshake
    /// succeeded; the server's refusal otherwise.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The HTTP version of the response.
    pub fn version(&self) -> HttpVersion {
        self.version
    }

    /// The subprotocol the server chose, if any.
    pub fn protocol(&self) -> Option<&str> {
        let range = self.protocol.as_ref()?;
        core::str::from_utf8(self.headers.slice(range)).ok()
    }

    /// The permessage-deflate parameters agreed, if compression was.
    pub fn deflate(&self) -> Option<&DeflateParams> {
        self.deflate.as_ref()
    }

    /// The value of the first header field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.all(name).next()
    }

    /// Every header field as (name, value), in the order received.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.headers.iter()
    }

    /// The body of a refusal, as far as it was read; empty after a
    /// successful handshake, whose response has none.
    pub fn body(&self) -> &[u8] {
        &self.body
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("version", &self.version)
            .field("protocol", &self.protocol())
            .field("headers", &self.headers)
            .field("body", &alloc::string::String::from_utf8_lossy(&self.body))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ok: &[(&str, bool, &str, u16, &str, &str)] = &[
            ("ws://example.com", false, "example.com", 80, "/", "example.com"),
            ("wss://Example.COM:8443/a/b?c=d&e", true, "example.com", 8443, "/a/b?c=d&e", "example.com:8443"),
            ("ws://127.0.0.1:9001?case=1", false, "127.0.0.1", 9001, "/?case=1", "127.0.0.1:9001"),
            ("ws://[::1]:9001/x", false, "[::1]", 9001, "/x", "[::1]:9001"),
            ("ws://[::1]/", false, "[::1]", 80, "/", "[::1]"),
        ];
        for (url, secure, host, port, resource, host_header) in ok {
            let hs = ClientHandshake::new(url).unwrap();
            assert_eq!((hs.is_secure(), hs.host(), hs.port(), hs.resource()), (*secure, *host, *port, *resource));
            let mut out = Vec::new();
            hs.write_request(b"k", None, &mut out);
            let expected = alloc::format!("Host: {host_header}\r\n");
            assert!(core::str::from_utf8(&out).unwrap().contains(&expected), "{url}");
        }
        for url in [
            "http://a/",
            "ws//a",
            "ws://",
            "ws://a/#frag",
            "ws://u@a/",
            "ws://a:/",
            "ws://a:99999/",
            "ws://a:x/",
            "ws://[::1/",
            "ws://a b/",
            "ws://a/\r\n",
            "ws://a:1:2/",
        ] {
            assert_eq!(ClientHandshake::new(url).err(), Some(UsageError::InvalidUrl), "{url}");
        }
    }

    fn response(extra: &str) -> String {
        alloc::format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n{extra}\r\n"
        )
    }

    #[test]
    fn response_checks() {
        let hs = ClientHandshake::new("ws://a/").unwrap().protocol("chat").unwrap();
        let accept = super::super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
        let check = |s: &str| hs.check_response(s.as_bytes(), &accept, 16, None);
        assert_eq!(check(&response("")).unwrap().protocol(), None);
        let chat = check(&response("Sec-WebSocket-Protocol: chat\r\n")).unwrap();
        assert_eq!(chat.protocol(), Some("chat"));
        let bad: &[(String, HandshakeError)] = &[
            (response("Sec-WebSocket-Protocol: other\r\n"), HandshakeError::Protocol),
            (response("Sec-WebSocket-Protocol: chat, chat\r\n"), HandshakeError::Protocol),
            (response("Sec-WebSocket-Extensions: permessage-deflate\r\n"), HandshakeError::Extension),
            (response("").replace("s3pP", "AAAA"), HandshakeError::Accept),
            (response("").replace("Upgrade: websocket", "Upgrade: h2c"), HandshakeError::Upgrade),
            (response("").replace("Connection: Upgrade", "Connection: close"), HandshakeError::Connection),
            (response("").replace("101 Switching Protocols", "403 Forbidden"), HandshakeError::Status(403)),
            (response("").replace("HTTP/1.1", "HTTP/1.0"), HandshakeError::HttpVersion),
        ];
        for (text, expected) in bad {
            assert_eq!(check(text).err(), Some(*expected), "{text}");
        }
    }

    #[test]
    fn refusal_keeps_status_headers_and_body() {
        let hs = ClientHandshake::new("ws://a/").unwrap();
        let accept = super::super::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
        let head = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 30\r\nContent-Length: 5\r\n\r\n";
        let mut response = Response::parse(head, 16).unwrap();
        assert_eq!(hs.check_parsed_response(&mut response, &accept, None), Err(HandshakeError::Status(503)));
        response.set_body(b"later".to_vec());
        assert_eq!((response.status(), response.version()), (503, HttpVersion::Http11));
        assert_eq!(response.header("retry-after"), Some(&b"30"[..]));
        assert_eq!(response.body(), b"later");
        assert_eq!(response.protocol(), None);
        assert_eq!(Response::parse(b"HTTP/1.1 99\r\n\r\n", 16).err(), Some(HandshakeError::Malformed));
        assert_eq!(Response::parse(head, 1).err(), Some(HandshakeError::TooManyHeaders));
    }

    #[test]
    fn request_parts_are_the_written_request() {
        let hs = ClientHandshake::new("ws://a:81/x?y").unwrap().protocol("p1").unwrap().protocol("p2").unwrap();
        let hs = hs.header("Origin", "http://a").unwrap();
        let config = DeflateConfig::default();
        let request = hs.http11_request([1; 16], Some(&config));
        let key = base64::engine::general_purpose::STANDARD.encode([1u8; 16]);
        let mut out = Vec::new();
        hs.write_request(key.as_bytes(), Some(&negotiation::client_offer(&config)), &mut out);
        let mut expected = String::from("GET /x?y HTTP/1.1\r\n");
        for (name, value) in request.headers() {
            expected.push_str(&alloc::format!("{name}: {value}\r\n"));
        }
        expected.push_str("\r\n");
        assert_eq!(core::str::from_utf8(&out).unwrap(), expected);
        assert!(expected.contains("Host: a:81\r\n"), "{expected}");
        assert!(expected.contains("Sec-WebSocket-Protocol: p1, p2\r\n"), "{expected}");
        assert!(expected.contains("Sec-WebSocket-Extensions: permessage-deflate"), "{expected}");
        assert_eq!(
            (request.method(), request.protocol(), request.uri()),
            ("GET", None, String::from("http://a:81/x?y"))
        );

        let h2 = hs.http2_request(None);
        assert_eq!(
            (h2.method(), h2.protocol(), h2.scheme(), h2.authority()),
            ("CONNECT", Some("websocket"), "http", "a:81")
        );
        let names: Vec<_> = h2.headers().map(|(n, _)| n).collect();
        assert_eq!(names, ["Sec-WebSocket-Version", "Sec-WebSocket-Protocol", "Origin"]);
    }

    #[test]
    fn http2_response_checks() {
        let hs = ClientHandshake::new("wss://a/").unwrap().protocol("chat").unwrap();
        let request = hs.http2_request(Some(&DeflateConfig::default()));
        let check = |status, version, headers: &[(&str, &str)]| {
            request.check_response(status, version, headers.iter().copied())
        };
        let ok = check(200, HttpVersion::Http2, &[("sec-websocket-protocol", "chat")]).unwrap();
        assert_eq!((ok.status(), ok.protocol(), ok.deflate()), (200, Some("chat"), None));
        let deflated = check(200, HttpVersion::Http2, &[("sec-websocket-extensions", "permessage-deflate")]).unwrap();
        assert_eq!(deflated.deflate(), Some(&DeflateParams::default()));
        // The accept key is not processed over HTTP/2 (RFC 8441 §5).
        assert!(check(204, HttpVersion::Http2, &[("sec-websocket-accept", "x")]).is_ok());
        type Case = (u16, HttpVersion, &'static [(&'static str, &'static str)], HandshakeError);
        let bad: &[Case] = &[
            (101, HttpVersion::Http2, &[], HandshakeError::Status(101)),
            (404, HttpVersion::Http2, &[], HandshakeError::Status(404)),
            (200, HttpVersion::Http11, &[], HandshakeError::HttpVersion),
            (200, HttpVersion::Http2, &[("upgrade", "websocket")], HandshakeError::Upgrade),
            (200, HttpVersion::Http2, &[("connection", "upgrade")], HandshakeError::Connection),
            (200, HttpVersion::Http2, &[("sec-websocket-protocol", "other")], HandshakeError::Protocol),
            (200, HttpVersion::Http2, &[("sec-websocket-extensions", "x-other")], HandshakeError::Extension),
            (200, HttpVersion::Http2, &[("bad name", "x")], HandshakeError::Malformed),
        ];
        for (status, version, headers, expected) in bad {
            assert_eq!(check(*status, *version, headers).err(), Some(*expected), "{status} {version:?} {headers:?}");
        }
        // An HTTP/1.1 request wants a 101 and our key's accept value.
        let http11 = hs.http11_request([0; 16], None);
        let accept = super::super::accept_key(b"AAAAAAAAAAAAAAAAAAAAAA==");
        let accept = core::str::from_utf8(&accept).unwrap();
        let upgrade = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)];
        assert!(http11.check_response(101, HttpVersion::Http11, upgrade).is_ok());
        assert_eq!(http11.check_response(200, HttpVersion::Http11, upgrade).err(), Some(HandshakeError::Status(200)));
        let wrong = [upgrade[0], upgrade[1], ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")];
        assert_eq!(http11.check_response(101, HttpVersion::Http11, wrong).err(), Some(HandshakeError::Accept));
    }
}
