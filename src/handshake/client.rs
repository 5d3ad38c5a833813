//! The client side of the opening handshake (RFC 6455 §4.1): the upgrade
//! request built from a `ws://` or `wss://` URL, and validation of the
//! server's response.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::deflate::{DeflateConfig, DeflateParams, negotiation};
use crate::error::{HandshakeError, UsageError};
use crate::http::{Headers, is_field_value, is_token, parse_error, push_header};

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
    explicit_port: bool,
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
        Ok(Self {
            secure,
            host: host.to_ascii_lowercase(),
            port,
            explicit_port: authority.len() != host.len(),
            resource,
            protocols: Vec::new(),
            headers: Vec::new(),
        })
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

    /// Writes the upgrade request with the base64 `key` and, if given, the
    /// `Sec-WebSocket-Extensions` offer.
    pub(crate) fn write_request(&self, key: &[u8], extensions: Option<&str>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"GET ");
        out.extend_from_slice(self.resource.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        out.extend_from_slice(self.host.as_bytes());
        if self.explicit_port {
            out.push(b':');
            crate::http::push_decimal(out, usize::from(self.port));
        }
        out.extend_from_slice(
            b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ",
        );
        out.extend_from_slice(key);
        out.extend_from_slice(b"\r\n");
        if !self.protocols.is_empty() {
            push_header(out, "Sec-WebSocket-Protocol", self.protocols.join(", ").as_bytes());
        }
        if let Some(offer) = extensions {
            push_header(out, "Sec-WebSocket-Extensions", offer.as_bytes());
        }
        for (name, value) in &self.headers {
            push_header(out, name, value.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// Validates a complete response head against our request (§4.1, the
    /// client's six checks), including the permessage-deflate answer to our
    /// offer if we made one.
    pub(crate) fn check_response(
        &self,
        head: &[u8],
        accept: &[u8; 28],
        max_headers: usize,
        deflate: Option<&DeflateConfig>,
    ) -> Result<Response, HandshakeError> {
        let mut storage = alloc::vec![httparse::EMPTY_HEADER; max_headers];
        let mut res = httparse::Response::new(&mut storage);
        match res.parse(head).map_err(parse_error)? {
            httparse::Status::Complete(_) => {}
            httparse::Status::Partial => return Err(HandshakeError::Malformed),
        }
        let (Some(status), Some(version)) = (res.code, res.version) else {
            return Err(HandshakeError::Malformed);
        };
        if status != 101 {
            return Err(HandshakeError::Status(status));
        }
        if version != 1 {
            return Err(HandshakeError::HttpVersion);
        }
        let headers = Headers::new(head, res.headers);
        if !headers.has_token("upgrade", "websocket") {
            return Err(HandshakeError::Upgrade);
        }
        if !headers.has_token("connection", "upgrade") {
            return Err(HandshakeError::Connection);
        }
        match headers.single("sec-websocket-accept") {
            Ok(Some(value)) if crate::http::trim(value) == accept => {}
            _ => return Err(HandshakeError::Accept),
        }
        let deflate = negotiation::check_answer(headers.list("sec-websocket-extensions"), deflate)
            .map_err(|()| HandshakeError::Extension)?;
        let protocol = {
            let mut chosen = headers.list("sec-websocket-protocol");
            match (chosen.next(), chosen.next()) {
                (None, _) => None,
                (Some(p), None) if self.protocols.iter().any(|o| o.as_bytes() == p) => Some(headers.range_of(p)),
                _ => return Err(HandshakeError::Protocol),
            }
        };
        Ok(Response { status, protocol, deflate, headers })
    }
}

/// The server's 101 response, as shown in [`Event::Connected`](crate::Event::Connected).
#[derive(Clone)]
pub struct Response {
    status: u16,
    protocol: Option<core::ops::Range<u32>>,
    deflate: Option<DeflateParams>,
    headers: Headers,
}

impl Response {
    /// The status code (always 101 once validated).
    pub fn status(&self) -> u16 {
        self.status
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
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("protocol", &self.protocol())
            .field("headers", &self.headers)
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
}
