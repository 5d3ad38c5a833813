//! # wscore
//!
//! A WebSocket (RFC 6455) implementation as a sans-IO state machine. One
//! [`Connection`] type serves both roles: you hand it the bytes that arrived
//! and the current time, it hands back [`Event`]s and the bytes to send. It
//! never touches a socket, a clock or a runtime, so it runs under any event
//! loop, in tests with virtual time, and without `std` (`alloc` only).
//!
//! What it does for you:
//! * the opening handshake for both sides, with subprotocol negotiation,
//!   real HTTP error responses for bad requests, and a frames-only start for
//!   streams another HTTP stack upgraded ([`Connection::frames_only`]);
//! * every framing rule of RFC 6455: masking direction, reserved bits and
//!   opcodes, control-frame limits, fragmentation with interleaved control
//!   frames, UTF-8 validated as it arrives (failing on the first bad byte),
//!   close codes and the closing handshake, automatic pongs;
//! * bounded memory: every buffer has a limit in [`Config`], checked from
//!   frame headers before payload is buffered, and an idle connection holds
//!   no buffers at all;
//! * heartbeats and timeouts through [`Connection::poll_timeout`] and
//!   [`Connection::handle_timeout`].
//!
//! With the default `std` feature, [`blocking`] wraps any `Read + Write`
//! stream in a ready-to-use WebSocket.
//!
//! ## The drive loop
//!
//! Every integration follows the same loop: feed input, drain events, send
//! output, wait for input or the next timeout, until the connection says the
//! transport can be closed. Here a server is driven over an in-memory "socket":
//!
//! ```
//! use core::time::Duration;
//! use wscore::{Accept, Config, Connection, Event, Message};
//!
//! // What a client sent: an upgrade request followed by a masked "hi".
//! let mut incoming = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
//!     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
//!     Sec-WebSocket-Version: 13\r\n\r\n".to_vec();
//! incoming.extend_from_slice(&[0x81, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2]);
//!
//! let start = std::time::Instant::now();
//! let mut conn = Connection::server(Config::default(), start.elapsed())?;
//! let mut sent = Vec::new(); // stands in for the socket's write side
//!
//! // 1. Input: whatever a read returned, with the time.
//! conn.receive(start.elapsed(), &incoming);
//! // 2. Drain events until None, acting on each.
//! while let Some(event) = conn.poll_event() {
//!     match event {
//!         Event::Request(request) => {
//!             assert_eq!(request.path(), "/chat");
//!             conn.accept(&Accept::new())?;
//!         }
//!         Event::Message(Message::Text(text)) => {
//!             let reply = text.to_uppercase();
//!             conn.send_text(&reply)?;
//!         }
//!         Event::Closed(closed) => println!("closed: {:?}", closed),
//!         _ => {}
//!     }
//! }
//! // 3. Output: write what is queued (a socket write may take only part).
//! let out = conn.poll_transmit();
//! let n = out.len();
//! sent.extend_from_slice(out);
//! conn.advance_transmit(n);
//! // 4. Wait for input, or until `poll_timeout`, then call `handle_timeout`.
//! if let Some(deadline) = conn.poll_timeout() {
//!     let _ = deadline; // e.g. set the socket's read timeout
//! }
//! // 5. Stop when the transport should be closed.
//! assert!(!conn.is_finished());
//!
//! assert!(sent.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! assert!(sent.ends_with(&[0x81, 0x02, b'H', b'I'])); // unmasked, from the server
//! # Ok::<(), wscore::Error>(())
//! ```
//!
//! ## Cargo features
//! * `std` (default): `std::error::Error` impls, the operating system's
//!   randomness as [`Config::entropy`], and the [`blocking`] adapter.
//!   Without it the crate is `no_std` + `alloc`.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

extern crate alloc;

mod close;
pub mod config;
pub mod connection;
pub mod deflate;
pub mod error;
pub mod frame;
pub mod handshake;
mod http;
pub mod message;
mod rng;
mod role;

#[cfg(feature = "std")]
pub mod blocking;

pub use close::CloseCode;
pub use config::Config;
pub use connection::{Chunk, Closed, Connection, Event, EventKind, State, Stats};
#[cfg(feature = "bytes")]
pub use connection::{OwnedChunk, OwnedEvent, PreparedMessage};
#[cfg(feature = "std")]
pub use connection::{RecvHalf, ReuniteError, SendHalf};
pub use error::{Error, HandshakeError, ProtocolError, Timeout, UsageError};
pub use frame::CloseFrame;
pub use handshake::{Accept, Answer, ClientHandshake, ClientRequest, HttpVersion, Reject, Request, Response};
pub use message::{Message, MessageBuf, MessageKind};
#[cfg(feature = "bytes")]
pub use message::{OwnedMessage, Payload, Utf8Payload};
pub use role::Role;
