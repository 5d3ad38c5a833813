//! Errors, sorted by who is to blame: the peer ([`ProtocolError`],
//! [`HandshakeError`]), the caller ([`UsageError`], [`Error::WriteBufferFull`]),
//! the clock ([`Timeout`]) or the transport ([`Error::ConnectionLost`]).
//!
//! Every error is small, `Clone` and comparable, so the connection can keep
//! the one that ended it and report it again.

use core::fmt;

use crate::close::CloseCode;

/// Everything that can go wrong in a [`Connection`](crate::Connection).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke RFC 6455 after the handshake. The connection sent a
    /// close frame with [`ProtocolError::close_code`] and is closed.
    Protocol(ProtocolError),
    /// The opening handshake failed. On the server the peer got an HTTP
    /// error response with [`HandshakeError::status`].
    Handshake(HandshakeError),
    /// The caller used the API wrongly; nothing was sent.
    Usage(UsageError),
    /// The send buffer is at or above
    /// [`Config::write_buffer_high_water`](crate::Config::write_buffer_high_water):
    /// transmit what is buffered first. Nothing was queued.
    WriteBufferFull,
    /// A deadline from [`Config`](crate::Config) passed.
    Timeout(Timeout),
    /// The transport ended or failed before the closing handshake finished
    /// (reported as close code 1006, which is never sent).
    ConnectionLost,
}

impl Error {
    /// The close code that describes this error to the peer or to the
    /// application: the code that was sent, or 1006 when none could be.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::Protocol(e) => e.close_code(),
            Self::Timeout(Timeout::Idle) => CloseCode::GOING_AWAY,
            Self::Timeout(Timeout::Close | Timeout::Handshake) | Self::ConnectionLost | Self::Handshake(_) => {
                CloseCode::ABNORMAL
            }
            Self::Usage(_) | Self::WriteBufferFull => CloseCode::INTERNAL_ERROR,
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Self::Protocol(e)
    }
}

impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Self::Handshake(e)
    }
}

impl From<UsageError> for Error {
    fn from(e: UsageError) -> Self {
        Self::Usage(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Protocol(e) => write!(f, "peer protocol error: {e} (close code {})", e.close_code()),
            Self::Handshake(e) => write!(f, "handshake failed: {e}"),
            Self::Usage(e) => write!(f, "API misuse: {e}"),
            Self::WriteBufferFull => f.write_str("write buffer full: transmit buffered data first"),
            Self::Timeout(t) => write!(f, "{t} timeout"),
            Self::ConnectionLost => f.write_str("connection lost before the closing handshake (1006)"),
        }
    }
}

/// A violation of RFC 6455 by the peer, after the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A client sent an unmasked frame (§5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    MaskedFrame,
    /// A reserved bit was set that no negotiated extension defines (§5.2).
    ReservedBits,
    /// A reserved opcode (§5.2).
    ReservedOpcode(u8),
    /// A 64-bit payload length with its most significant bit set (§5.2).
    LengthHighBit,
    /// A payload length not in its shortest encoding (§5.2).
    NonMinimalLength,
    /// A control frame with more than 125 bytes of payload (§5.5).
    ControlFrameTooLong,
    /// A control frame without FIN (§5.5).
    FragmentedControlFrame,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was in progress (§5.4).
    ExpectedContinuation,
    /// Text that is not UTF-8, in a message or a close reason (§8.1): 1007.
    InvalidUtf8,
    /// A close frame with a one-byte payload (§5.5.1).
    InvalidClosePayload,
    /// A close frame with a code that may not be sent (§7.4).
    InvalidCloseCode(u16),
    /// A frame longer than [`Config::max_frame_size`](crate::Config::max_frame_size): 1009.
    FrameTooLarge,
    /// A message longer than [`Config::max_message_size`](crate::Config::max_message_size): 1009.
    MessageTooLarge,
    /// More fragments than [`Config::max_fragments`](crate::Config::max_fragments): 1009.
    TooManyFragments,
    /// A compressed message that is not a valid deflate stream (RFC 7692
    /// §6.2). Sent as 1002: the negotiated extension's protocol was broken,
    /// like a malformed frame; 1007 stays reserved for text that inflates
    /// to invalid UTF-8.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code sent to the peer for this error.
    pub const fn close_code(&self) -> CloseCode {
        match self {
            Self::InvalidUtf8 => CloseCode::INVALID_PAYLOAD,
            Self::FrameTooLarge | Self::MessageTooLarge | Self::TooManyFragments => CloseCode::TOO_BIG,
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason, sent in the close frame.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::UnmaskedFrame => "unmasked client frame",
            Self::MaskedFrame => "masked server frame",
            Self::ReservedBits => "reserved bits set",
            Self::ReservedOpcode(_) => "reserved opcode",
            Self::LengthHighBit => "64-bit length with high bit set",
            Self::NonMinimalLength => "length not minimally encoded",
            Self::ControlFrameTooLong => "control frame over 125 bytes",
            Self::FragmentedControlFrame => "fragmented control frame",
            Self::UnexpectedContinuation => "continuation without a message",
            Self::ExpectedContinuation => "new message inside a fragmented message",
            Self::InvalidUtf8 => "invalid UTF-8",
            Self::InvalidClosePayload => "one-byte close payload",
            Self::InvalidCloseCode(_) => "invalid close code",
            Self::FrameTooLarge => "frame too large",
            Self::MessageTooLarge => "message too large",
            Self::TooManyFragments => "too many fragments",
            Self::InvalidCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            Self::InvalidCloseCode(code) => write!(f, "invalid close code {code}"),
            _ => f.write_str(self.reason()),
        }
    }
}

/// Why an opening handshake failed.
///
/// On the server, each error that the peer caused has an HTTP status that
/// was sent back ([`status`](Self::status)); on the client, the response was
/// not an acceptable upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// Not valid HTTP/1.1 (httparse rejected it).
    Malformed,
    /// The head exceeded [`Config::max_handshake_size`](crate::Config::max_handshake_size).
    TooLarge,
    /// More header fields than [`Config::max_headers`](crate::Config::max_headers).
    TooManyHeaders,
    /// The request method was not GET (answered with 405 and `Allow: GET`).
    MethodNotAllowed,
    /// An HTTP/2 request was not an extended CONNECT for WebSocket (RFC 8441
    /// §4): its method was not CONNECT, or `:protocol` was missing or not
    /// `websocket`.
    ExtendedConnect,
    /// The request was HTTP/1.0, which has no protocol upgrade (RFC 6455
    /// §4.1 asks for HTTP/1.1): answered with 400, not 505, which RFC 9110
    /// §15.6.6 keeps for an unsupported *major* version. On a client, the
    /// response's HTTP version differs from the request's.
    HttpVersion,
    /// The request target was not an origin-form path.
    InvalidTarget,
    /// No `Host` header, or more than one.
    Host,
    /// `Upgrade` missing or not `websocket`.
    Upgrade,
    /// `Connection` missing or without the `upgrade` token.
    Connection,
    /// `Sec-WebSocket-Key` missing, repeated, or not 16 bytes in base64.
    Key,
    /// `Sec-WebSocket-Version` missing or repeated.
    MissingVersion,
    /// `Sec-WebSocket-Version` is not 13: answered with 426 Upgrade
    /// Required, which names the protocol and version we speak
    /// ([`response_headers`](Self::response_headers)).
    UnsupportedVersion,
    /// `Sec-WebSocket-Version` is not 13 on an HTTP/2 request: answered with
    /// 400 and `Sec-WebSocket-Version: 13` (RFC 6455 §4.4), since a 426
    /// would have to carry `Upgrade`, which HTTP/2 forbids (RFC 9113 §8.2.2).
    UnsupportedVersionHttp2,
    /// The request carried a body (`Content-Length` or `Transfer-Encoding`).
    Body,
    /// The server application rejected the request with this status.
    Rejected(u16),
    /// The server answered with this status instead of accepting: not 101
    /// over HTTP/1.1, not 2xx over HTTP/2.
    Status(u16),
    /// `Sec-WebSocket-Accept` missing or not derived from our key.
    Accept,
    /// The server chose a subprotocol the client did not offer, or several.
    Protocol,
    /// The server answered with an extension the client did not offer.
    Extension,
    /// The transport ended before the handshake completed.
    Incomplete,
}

impl HandshakeError {
    /// The HTTP status a server sends for this error, `None` for errors that
    /// only a client sees.
    pub const fn status(&self) -> Option<u16> {
        Some(match self {
            Self::Malformed
            | Self::ExtendedConnect
            | Self::HttpVersion
            | Self::InvalidTarget
            | Self::Host
            | Self::Upgrade
            | Self::Connection
            | Self::Key
            | Self::MissingVersion
            | Self::UnsupportedVersionHttp2
            | Self::Body => 400,
            Self::TooLarge | Self::TooManyHeaders => 431,
            Self::MethodNotAllowed => 405,
            Self::UnsupportedVersion => 426,
            Self::Rejected(status) => *status,
            Self::Status(_) | Self::Accept | Self::Protocol | Self::Extension | Self::Incomplete => return None,
        })
    }

    /// The header fields an error response with [`status`](Self::status)
    /// must carry besides the usual ones: for 426 the protocol to upgrade to
    /// (RFC 9110 §15.5.22), the `upgrade` connection option that goes with
    /// it (§7.8) and the WebSocket version we speak (RFC 6455 §4.4); that
    /// version alone for the HTTP/2 version error; for 405 the allowed method
    /// (§15.5.6). Empty for every other error.
    ///
    /// The built-in handshake sends them itself; a server whose HTTP stack
    /// parsed the request adds them to its own error response:
    ///
    /// ```
    /// use wscore::HandshakeError;
    ///
    /// let error = HandshakeError::UnsupportedVersion;
    /// assert_eq!(error.status(), Some(426));
    /// assert_eq!(
    ///     error.response_headers(),
    ///     [("Upgrade", "websocket"), ("Connection", "upgrade"), ("Sec-WebSocket-Version", "13")]
    /// );
    /// assert!(HandshakeError::Key.response_headers().is_empty());
    /// ```
    pub const fn response_headers(&self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::UnsupportedVersion => {
                &[("Upgrade", "websocket"), ("Connection", "upgrade"), ("Sec-WebSocket-Version", "13")]
            }
            Self::UnsupportedVersionHttp2 => &[("Sec-WebSocket-Version", "13")],
            Self::MethodNotAllowed => &[("Allow", "GET")],
            _ => &[],
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed HTTP"),
            Self::TooLarge => f.write_str("handshake too large"),
            Self::TooManyHeaders => f.write_str("too many header fields"),
            Self::MethodNotAllowed => f.write_str("method must be GET"),
            Self::ExtendedConnect => f.write_str("HTTP/2 WebSocket request must be CONNECT with :protocol websocket"),
            Self::HttpVersion => f.write_str("WebSocket upgrade needs HTTP/1.1"),
            Self::InvalidTarget => f.write_str("request target must be a path"),
            Self::Host => f.write_str("exactly one Host header required"),
            Self::Upgrade => f.write_str("Upgrade header must be \"websocket\""),
            Self::Connection => f.write_str("Connection header must contain \"upgrade\""),
            Self::Key => f.write_str("Sec-WebSocket-Key must be 16 bytes in base64, sent once"),
            Self::MissingVersion => f.write_str("Sec-WebSocket-Version required, once"),
            Self::UnsupportedVersion | Self::UnsupportedVersionHttp2 => f.write_str("Sec-WebSocket-Version must be 13"),
            Self::Body => f.write_str("upgrade request must not have a body"),
            Self::Rejected(status) => write!(f, "rejected by the application with status {status}"),
            Self::Status(status) => write!(f, "server answered status {status} instead of accepting the upgrade"),
            Self::Accept => f.write_str("Sec-WebSocket-Accept missing or wrong"),
            Self::Protocol => f.write_str("server chose a subprotocol that was not offered"),
            Self::Extension => f.write_str("server chose an extension that was not offered"),
            Self::Incomplete => f.write_str("connection ended during the handshake"),
        }
    }
}

/// A mistake by the code calling the API. Nothing was sent or changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UsageError {
    /// The opening handshake has not completed.
    NotOpen,
    /// A close frame was already sent or received: no more frames may be sent.
    Closing,
    /// A ping or pong payload over 125 bytes.
    ControlPayloadTooLong,
    /// A close code that may not be sent (see [`CloseCode::is_sendable`]).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes.
    CloseReasonTooLong,
    /// A whole message while a streamed message is unfinished.
    MessageInProgress,
    /// A chunk whose kind differs from the message it continues.
    KindMismatch,
    /// A text chunk that is not UTF-8.
    InvalidUtf8,
    /// `accept` or `reject` when no request is waiting for an answer.
    NoPendingRequest,
    /// Accepting with a subprotocol the client did not offer.
    UnofferedProtocol,
    /// A header name or value that is not a valid HTTP token or field value.
    InvalidHeader,
    /// A rejection status outside 400–599.
    InvalidStatus,
    /// The URL is not a valid `ws://` or `wss://` URL.
    InvalidUrl,
    /// No source of randomness: set [`Config::entropy`](crate::Config::entropy).
    NoEntropy,
    /// A configuration value is out of range; the message says which.
    InvalidConfig(&'static str),
    /// A whole message was asked for while the message arriving is
    /// delivered in chunks (see `Connection::set_streaming`): take chunks.
    Streaming,
    /// The HTTP server that parsed an upgrade request cannot hand its
    /// connection over: hyper serves HTTP/1.1 upgrades only on connections
    /// served `with_upgrades`.
    NotUpgradable,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotOpen => f.write_str("the opening handshake has not completed"),
            Self::Closing => f.write_str("the connection is closing or closed"),
            Self::ControlPayloadTooLong => f.write_str("control payload over 125 bytes"),
            Self::InvalidCloseCode(code) => write!(f, "close code {code} may not be sent"),
            Self::CloseReasonTooLong => f.write_str("close reason over 123 bytes"),
            Self::MessageInProgress => f.write_str("a streamed message is unfinished"),
            Self::KindMismatch => f.write_str("chunk kind differs from the message in progress"),
            Self::InvalidUtf8 => f.write_str("text chunk is not UTF-8"),
            Self::NoPendingRequest => f.write_str("no handshake request is waiting for an answer"),
            Self::UnofferedProtocol => f.write_str("subprotocol was not offered by the client"),
            Self::InvalidHeader => f.write_str("invalid header name or value"),
            Self::InvalidStatus => f.write_str("rejection status must be 400-599"),
            Self::InvalidUrl => f.write_str("not a valid ws:// or wss:// URL"),
            Self::NoEntropy => f.write_str("no source of randomness configured"),
            Self::InvalidConfig(what) => write!(f, "invalid configuration: {what}"),
            Self::Streaming => f.write_str("the message arriving is delivered in chunks"),
            Self::NotUpgradable => f.write_str("the HTTP server cannot hand this connection over"),
        }
    }
}

/// Which deadline passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Timeout {
    /// The opening handshake did not complete within
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    Handshake,
    /// Nothing arrived within [`Config::idle_timeout`](crate::Config::idle_timeout).
    Idle,
    /// The peer did not answer our close within
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    Close,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Handshake => "handshake",
            Self::Idle => "idle",
            Self::Close => "close",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Protocol(e) => Some(e),
            Self::Handshake(e) => Some(e),
            Self::Usage(e) => Some(e),
            _ => None,
        }
    }
}

/// Converts an error for an `io::Read`/`io::Write`/`AsyncRead` interface,
/// keeping the [`Error`] inside (get it back with
/// `io_error.get_ref().and_then(|e| e.downcast_ref::<wscore::Error>())`).
/// Each kind is one a socket does not report for its own reasons, so a
/// caller can tell the WebSocket's verdict from the transport's:
///
/// | error | `io::ErrorKind` |
/// | --- | --- |
/// | [`Error::Protocol`], [`Error::Handshake`] (malformed or invalid) | `InvalidData` |
/// | [`Error::Handshake`] with [`HandshakeError::Status`] or [`HandshakeError::Rejected`] | `ConnectionRefused` |
/// | [`Error::Handshake`] with [`HandshakeError::Incomplete`], [`Error::ConnectionLost`] | `UnexpectedEof` |
/// | [`Error::Usage`] | `InvalidInput` |
/// | [`Error::WriteBufferFull`] | `QuotaExceeded` (not `WouldBlock`: nothing will wake you; transmit first) |
/// | [`Error::Timeout`] | `ConnectionAborted` (not `TimedOut`: the connection gave up on the peer) |
#[cfg(feature = "std")]
impl From<Error> for std::io::Error {
    fn from(error: Error) -> Self {
        use std::io::ErrorKind;
        let kind = match error {
            Error::Handshake(HandshakeError::Status(_) | HandshakeError::Rejected(_)) => ErrorKind::ConnectionRefused,
            Error::Handshake(HandshakeError::Incomplete) | Error::ConnectionLost => ErrorKind::UnexpectedEof,
            Error::Protocol(_) | Error::Handshake(_) => ErrorKind::InvalidData,
            Error::Usage(_) => ErrorKind::InvalidInput,
            Error::WriteBufferFull => ErrorKind::QuotaExceeded,
            Error::Timeout(_) => ErrorKind::ConnectionAborted,
        };
        std::io::Error::new(kind, error)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtocolError {}
#[cfg(feature = "std")]
impl std::error::Error for HandshakeError {}
#[cfg(feature = "std")]
impl std::error::Error for UsageError {}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use std::io::ErrorKind;

    #[test]
    fn io_error_kinds_tell_the_websocket_from_the_socket() {
        let cases = [
            (Error::Protocol(ProtocolError::UnmaskedFrame), ErrorKind::InvalidData),
            (Error::Handshake(HandshakeError::Key), ErrorKind::InvalidData),
            (Error::Handshake(HandshakeError::Status(429)), ErrorKind::ConnectionRefused),
            (Error::Handshake(HandshakeError::Rejected(403)), ErrorKind::ConnectionRefused),
            (Error::Handshake(HandshakeError::Incomplete), ErrorKind::UnexpectedEof),
            (Error::ConnectionLost, ErrorKind::UnexpectedEof),
            (Error::Usage(UsageError::Closing), ErrorKind::InvalidInput),
            (Error::WriteBufferFull, ErrorKind::QuotaExceeded),
            (Error::Timeout(Timeout::Idle), ErrorKind::ConnectionAborted),
            (Error::Timeout(Timeout::Handshake), ErrorKind::ConnectionAborted),
        ];
        for (error, kind) in cases {
            let io = std::io::Error::from(error);
            assert_eq!(io.kind(), kind, "{error:?}");
            // The WebSocket's error is inside, for whoever wants the detail.
            assert_eq!(io.get_ref().and_then(|e| e.downcast_ref::<Error>()), Some(&error));
        }
        // None of them is what a socket says for its own reasons.
        for (error, _) in cases {
            let kind = std::io::Error::from(error).kind();
            assert!(!matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted));
        }
    }
}
