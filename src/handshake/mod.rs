//! The opening handshake (RFC 6455 §4; RFC 8441 over HTTP/2): the upgrade
//! request and its answer, the accept key, and the negotiation of
//! subprotocols and permessage-deflate.
//!
//! There are two ways in, with one set of rules:
//!
//! * The built-in HTTP/1.1 handshake of [`Connection::server`] and
//!   [`Connection::client`] reads and writes the heads itself. It parses
//!   with `httparse` only once the whole head has arrived: a scanner looks
//!   for the blank line incrementally, so a head trickled in byte by byte
//!   costs linear time (tungstenite's CVE-2023-43669 re-parsed the whole
//!   buffer on every read).
//! * A server or client whose HTTP stack (hyper, axum, an HTTP/2 server)
//!   parses the messages hands over their parts: [`Request::from_parts`]
//!   and [`Accept::answer`] on a server, [`ClientHandshake::http11_request`]
//!   or [`ClientHandshake::http2_request`] and
//!   [`ClientRequest::check_response`] on a client, then
//!   [`Connection::frames_only`] or [`Connection::frames_only_with_deflate`]
//!   on the upgraded stream.
//!
//! Both ways reach the same checks and build their messages from the same
//! field lists, so a broken request gets the same [`HandshakeError`] and
//! status either way, and compression is negotiated identically.
//!
//! A server behind another HTTP stack, the whole exchange:
//!
//! ```
//! use wscore::deflate::DeflateConfig;
//! use wscore::{Accept, Config, Connection, HttpVersion, Request, Role};
//!
//! /// Status, header fields and body to answer with, and the connection to
//! /// run on the upgraded stream if the handshake succeeded.
//! fn upgrade(
//!     version: HttpVersion,
//!     method: &str,
//!     protocol: Option<&str>,
//!     path: &str,
//!     headers: &[(&str, &str)],
//! ) -> Result<(u16, Vec<(String, String)>, String, Option<Connection>), wscore::Error> {
//!     let request = match Request::from_parts(method, version, protocol, path, headers.iter().copied()) {
//!         Ok(request) => request,
//!         Err(e) => {
//!             let fields = e.response_headers().iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
//!             return Ok((e.status().unwrap_or(400), fields, e.to_string(), None));
//!         }
//!     };
//!     let chat = request.protocols().any(|p| p == "chat");
//!     let accept = if chat { Accept::new().protocol("chat") } else { Accept::new() };
//!     let answer = accept.answer(&request, Some(&DeflateConfig::default()))?;
//!     let fields = answer.headers().map(|(n, v)| (n.to_string(), v.to_string())).collect();
//!     let now = core::time::Duration::ZERO;
//!     let conn = match answer.deflate() {
//!         Some(params) => Connection::frames_only_with_deflate(Role::Server, Config::default(), *params, now)?,
//!         None => Connection::frames_only(Role::Server, Config::default(), now)?,
//!     };
//!     Ok((answer.status(), fields, String::new(), Some(conn)))
//! }
//!
//! // An RFC 8441 extended CONNECT, as an HTTP/2 server parsed it.
//! let h2 = [("sec-websocket-version", "13"), ("sec-websocket-extensions", "permessage-deflate")];
//! let (status, fields, _, conn) = upgrade(HttpVersion::Http2, "CONNECT", Some("websocket"), "/chat", &h2)?;
//! assert_eq!((status, fields.len(), conn.is_some()), (200, 1, true));
//!
//! // A request with the wrong WebSocket version gets a complete 426.
//! let old = [
//!     ("host", "example.com"),
//!     ("upgrade", "websocket"),
//!     ("connection", "upgrade"),
//!     ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
//!     ("sec-websocket-version", "8"),
//! ];
//! let (status, fields, body, conn) = upgrade(HttpVersion::Http11, "GET", None, "/chat", &old)?;
//! assert_eq!((status, body.as_str(), conn.is_none()), (426, "Sec-WebSocket-Version must be 13", true));
//! assert!(fields.contains(&("Upgrade".into(), "websocket".into())));
//! # Ok::<(), wscore::Error>(())
//! ```
//!
//! [`Connection::server`]: crate::Connection::server
//! [`Connection::client`]: crate::Connection::client
//! [`Connection::frames_only`]: crate::Connection::frames_only
//! [`Connection::frames_only_with_deflate`]: crate::Connection::frames_only_with_deflate
//! [`HandshakeError`]: crate::HandshakeError

pub mod client;
pub mod server;

use base64::Engine as _;
use sha1::{Digest, Sha1};

pub use client::{ClientHandshake, ClientRequest, Response};
pub use server::{Accept, Answer, Reject, Request};

/// The GUID that RFC 6455 §1.3 appends to the key before hashing.
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` value: the
/// base64 of the SHA-1 of the key followed by the RFC's GUID.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// let accept = wscore::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(&accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    let written = base64::engine::general_purpose::STANDARD.encode_slice(digest, &mut out).unwrap_or(0);
    debug_assert_eq!(written, 28);
    out
}

/// The HTTP version a handshake travels over, for requests and responses
/// that another HTTP stack parsed ([`Request::from_parts`]).
///
/// ```
/// use wscore::HttpVersion;
///
/// // How a hyper or `http` crate version maps to it.
/// fn version(v: &str) -> Option<HttpVersion> {
///     match v {
///         "HTTP/1.0" => Some(HttpVersion::Http10),
///         "HTTP/1.1" => Some(HttpVersion::Http11),
///         "HTTP/2.0" => Some(HttpVersion::Http2),
///         _ => None,
///     }
/// }
/// assert_eq!(version("HTTP/2.0"), Some(HttpVersion::Http2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HttpVersion {
    /// HTTP/1.0, which has no protocol upgrade: a request is refused with
    /// [`HandshakeError::HttpVersion`](crate::HandshakeError::HttpVersion).
    Http10,
    /// HTTP/1.1: a GET with `Upgrade: websocket`, answered with 101 (RFC 6455 §4).
    Http11,
    /// HTTP/2: an extended CONNECT with `:protocol` `websocket`, answered
    /// with 200 (RFC 8441 §4–5).
    Http2,
}

/// Finds the end of an HTTP head (`\r\n\r\n`) in a buffer that grows, looking
/// at each byte a bounded number of times.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct HeadScanner {
    scanned: usize,
    /// Bytes examined over all calls, for [`Stats`](crate::connection::Stats).
    work: u64,
}

impl HeadScanner {
    /// Returns the length of the head including the blank line, once `buf`
    /// (which only ever grows at its end) contains it.
    pub(crate) fn find_end(&mut self, buf: &[u8]) -> Option<usize> {
        // Resume three bytes back so a terminator split across reads is found.
        let from = self.scanned.saturating_sub(3);
        self.scanned = buf.len();
        self.work += buf.len().saturating_sub(from) as u64;
        buf.get(from..)?.windows(4).position(|w| w == b"\r\n\r\n").map(|i| from + i + 4)
    }

    /// How many bytes have been examined in all.
    pub(crate) fn work(&self) -> u64 {
        self.work
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanner_finds_split_terminators_and_scans_linearly() {
        let head = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
        for step in 1..=head.len() {
            let mut s = HeadScanner::default();
            let mut found = None;
            let mut len = 0;
            while found.is_none() && len < head.len() {
                len = (len + step).min(head.len());
                found = s.find_end(&head[..len]);
            }
            assert_eq!(found, Some(head.len() - 4), "step {step}");
            assert!(s.work() <= 4 * head.len() as u64, "step {step}: {}", s.work());
        }
    }
}
