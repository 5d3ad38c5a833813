//! # wscore
//!
//! A WebSocket (RFC 6455, with permessage-deflate from RFC 7692)
//! implementation as a sans-IO state machine. One [`Connection`] type serves
//! both roles: you hand it the bytes that arrived and the current time, it
//! hands back [`Event`]s and the bytes to send. It never touches a socket, a
//! clock or a runtime, so it runs under any event loop, in tests with
//! virtual time, and without `std` (`alloc` only).
//!
//! What it does for you:
//! * the opening handshake for both sides, with subprotocol and
//!   permessage-deflate negotiation, real HTTP error responses for bad
//!   requests, the same checks for a handshake another HTTP stack parsed
//!   ([`Request::from_parts`], [`Accept::answer`], RFC 8441 extended CONNECT
//!   included), and a frames-only start for a stream it upgraded
//!   ([`Connection::frames_only`]);
//! * every framing rule of RFC 6455: masking direction, reserved bits and
//!   opcodes, control-frame limits, fragmentation with interleaved control
//!   frames, UTF-8 validated as it arrives (failing on the first bad byte),
//!   close codes and the closing handshake, automatic pongs;
//! * bounded memory on both sides: every limit lives in [`Config`], frame
//!   headers are checked before payload is buffered, input waiting behind an
//!   untaken event is capped ([`Config::max_unprocessed_input`]), output
//!   refuses new messages above a high-water mark, and an idle connection
//!   holds no buffers;
//! * errors that stay: once the connection failed, every action returns the
//!   error that failed it ([`Closed::error`]);
//! * a lingering close: after a failure the peer still reads our close code,
//!   not a reset ([`Connection::is_finished`], [`Connection::wants_shutdown`]);
//! * heartbeats and timeouts through [`Connection::poll_timeout`] and
//!   [`Connection::handle_timeout`].
//!
//! With the default `std` feature, [`blocking`] wraps any `Read + Write`
//! stream in a ready-to-use WebSocket.
//!
//! ## The drive loop
//!
//! Every integration follows the same loop, *mutate, then drain*: feed input
//! (as much as the connection takes), drain events, send output, drain
//! again, wait for input or the next timeout, until the connection says the
//! transport can be closed. Here a server is driven over an in-memory
//! "socket":
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
//! let mut input = &incoming[..];
//!
//! while !input.is_empty() {
//!     // 1. Input: whatever a read returned, with the time. The connection
//!     //    takes what fits under its bound; keep the rest for later.
//!     let taken = conn.receive(start.elapsed(), input);
//!     input = &input[taken..];
//!     // 2. Drain events until None, acting on each.
//!     while let Some(event) = conn.poll_event() {
//!         match event {
//!             Event::Request(request) => {
//!                 assert_eq!(request.path(), "/chat");
//!                 conn.accept(&Accept::new())?;
//!             }
//!             Event::Message(Message::Text(text)) => {
//!                 let reply = text.to_uppercase();
//!                 conn.send_text(&reply)?;
//!             }
//!             Event::Closed(closed) => println!("closed: {closed:?}"),
//!             _ => {}
//!         }
//!     }
//!     // 3. Output: write what is queued (a socket write may take only
//!     //    part), then drain events again: our close frame going out may
//!     //    complete the closing handshake.
//!     loop {
//!         let out = conn.poll_transmit();
//!         if out.is_empty() {
//!             break;
//!         }
//!         let n = out.len();
//!         sent.extend_from_slice(out);
//!         conn.advance_transmit(n);
//!     }
//! }
//! // 4. Wait for input while `wants_read()`, or until `poll_timeout()`,
//! //    then call `handle_timeout(now)`.
//! assert!(conn.wants_read());
//! let _next_deadline = conn.poll_timeout();
//! // 5. While `wants_shutdown()`, half-close the transport and keep reading;
//! //    once `is_finished()`, close it.
//! assert!(!conn.wants_shutdown() && !conn.is_finished());
//!
//! assert!(sent.starts_with(b"HTTP/1.1 101 Switching Protocols\r\n"));
//! assert!(sent.ends_with(&[0x81, 0x02, b'H', b'I'])); // unmasked, from the server
//! # Ok::<(), wscore::Error>(())
//! ```
//!
//! ## Two halves, driven apart
//!
//! A connection is a receive half and a send half with a small shared cell
//! between them. The receive half owns the receive buffer, the frame and
//! message state and the inflater; the send half owns the output queue, the
//! mask generator and the compressor. The cell holds only where the
//! connection is in its life, the error that failed it, the protocol timers
//! and the control frames the receive path owes the peer (pongs, the answer
//! to a close, the close of a failure): the receive path never writes into
//! the send side's buffers, and whichever side transmits next puts what is
//! owed first, at a frame boundary. A [`Connection`] owns all three;
//! [`Connection::split`] (with `std`) hands a [`RecvHalf`] and a
//! [`SendHalf`] to two tasks or threads, which lock the cell for a few field
//! updates at a time, never across I/O, compression or inflation.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use core::time::Duration;
//! use wscore::{Config, Connection, Event, Message, Role};
//!
//! let now = Duration::ZERO;
//! let server = Connection::frames_only(Role::Server, Config::default(), now)?;
//! let mut client = Connection::frames_only(Role::Client, Config::default(), now)?;
//! let (mut reader, mut writer) = server.split().unwrap();
//!
//! // The client pings and sends; only the reader sees it.
//! client.send_ping(b"hello?")?;
//! client.send_text("hi")?;
//! let mut wire = Vec::new();
//! client.transmit_into(&mut wire);
//! let handle = std::thread::spawn(move || {
//!     assert_eq!(reader.receive(now, &wire), wire.len());
//!     assert!(matches!(reader.poll_event(), Some(Event::Ping(b"hello?"))));
//!     assert!(matches!(reader.poll_event(), Some(Event::Message(Message::Text("hi")))));
//!     reader
//! });
//! let reader = handle.join().unwrap();
//! // The pong the reader owes goes out with the writer's next bytes.
//! assert!(reader.owes_transmission());
//! writer.send_text("bye")?;
//! let mut wire = Vec::new();
//! writer.transmit_into(&mut wire);
//! assert_eq!(client.receive(now, &wire), wire.len());
//! assert!(matches!(client.poll_event(), Some(Event::Pong(b"hello?"))));
//! assert!(matches!(client.poll_event(), Some(Event::Message(Message::Text("bye")))));
//! # }
//! # Ok::<(), wscore::Error>(())
//! ```
//!
//! ## Owned messages without copies
//!
//! Events from [`Connection::poll_event`] borrow the connection, which is
//! cheapest when a message is handled in place. With the `bytes` feature,
//! `Connection::poll_owned` hands out each message as an owned
//! `OwnedMessage` whose `Payload` is split off the receive buffer (a single
//! frame) or is the reassembly buffer itself (a fragmented or inflated
//! message), never copied; tiny payloads (up to 38 bytes) are copied inline
//! instead, which is cheaper than sharing. `Connection::send_owned` sends
//! one back: a server frames a large payload as its header plus the shared
//! bytes, handed out by [`Connection::poll_transmit_slices`] for a vectored
//! write; `PreparedMessage` frames (and compresses) a message once for any
//! number of connections.
//!
//! ```
//! # #[cfg(feature = "bytes")] {
//! use core::time::Duration;
//! use wscore::{Config, Connection, OwnedEvent, OwnedMessage, Role};
//!
//! let now = Duration::ZERO;
//! let mut client = Connection::frames_only(Role::Client, Config::default(), now)?;
//! let mut server = Connection::frames_only(Role::Server, Config::default(), now)?;
//! client.send_binary(&vec![7; 100_000])?;
//! let mut wire = Vec::new();
//! client.transmit_into(&mut wire);
//! let mut input = &wire[..];
//! let mut echoed = 0;
//! while echoed == 0 {
//!     let n = server.receive(now, input);
//!     input = &input[n..];
//!     while let Some(event) = server.poll_owned() {
//!         if let OwnedEvent::Message(message) = event {
//!             // Kept, sent to another task, or sent back: no copy.
//!             echoed = message.len();
//!             server.send_owned(message)?;
//!         }
//!     }
//! }
//! let mut slices = [&[][..]; 4];
//! let n = server.poll_transmit_slices(&mut slices);
//! assert_eq!(n, 2); // the frame header, then the received bytes themselves
//! assert_eq!(slices[1].len(), echoed);
//! # }
//! # Ok::<(), wscore::Error>(())
//! ```
//!
//! ## Cargo features
//! * `std` (default): `std::error::Error` impls, `From<Error> for
//!   io::Error`, the operating system's randomness as
//!   [`Config::entropy`], [`Connection::split`], and the [`blocking`]
//!   adapter. Without it the crate is `no_std` + `alloc`.
//! * `bytes`: owned messages and payloads (`OwnedMessage`, `Payload`,
//!   `Utf8Payload`, `Connection::poll_owned`), shared sends
//!   (`Connection::send_owned`) and prepared messages (`PreparedMessage`).
//!   Works without `std`.
//! * `tokio`: the tokio adapter (`wscore::tokio`): `connect`, `accept`, a
//!   `WebSocket` over any `AsyncRead + AsyncWrite` with `Stream`/`Sink` and
//!   split halves.
//! * `futures-io`: the same adapter for async-std, smol and the rest of the
//!   `futures` family (`wscore::futures`), tied to no runtime.
//! * `rustls`: `wss://` out of the box, through rustls (ring) with
//!   Mozilla's roots built in: `blocking::connect("wss://…")` and
//!   `tokio::connect("wss://…")` just work, `connect_with_tls` takes your
//!   own `rustls::ClientConfig`, and the async adapters get `client_tls`
//!   and `accept_tls` over any stream (see `wscore::tls`). Without it a
//!   `wss://` URL fails with an error naming this feature.
//! * `hyper` (with `tokio`): `wscore::hyper`, upgrades inside hyper and
//!   axum handlers over HTTP/1.1 and over HTTP/2 (RFC 8441 extended
//!   CONNECT, many WebSockets on one connection), with the built-in
//!   handshake's checks and negotiation, and clients over a hyper HTTP/1.1
//!   or HTTP/2 connection.

#![cfg_attr(not(feature = "std"), no_std)]
// One audited exception, `message::str_from_checked` (text this crate has
// validated already, handed out as `&str` without a second pass); nothing
// else may use `unsafe`.
#![deny(unsafe_code)]
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
#[cfg(any(feature = "tokio", feature = "futures-io"))]
mod driver;
#[cfg(feature = "futures-io")]
pub mod futures;
#[cfg(feature = "hyper")]
pub mod hyper;
#[cfg(feature = "rustls")]
pub mod tls;
#[cfg(feature = "tokio")]
pub mod tokio;

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
