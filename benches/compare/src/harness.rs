//! One client→server pipe per library. `batch(n, check)` sends `n` copies
//! of the message from the client and receives them all on the server,
//! returning the number of payload bytes received; with `check` it also
//! compares every received payload with what was sent.
//!
//! Each harness uses its library's default configuration and its most
//! direct idiomatic API for "send these messages, then receive messages".
//! See README.md for the choices and why they are equivalent.

use std::hint::black_box;
use std::time::Duration;

use crate::Kind;
use crate::mem::{self, MemStream};

fn received(check: bool, expected: &[u8], got: &[u8]) -> usize {
    if check {
        assert_eq!(got, expected, "payload differs");
    }
    black_box(got.len())
}

/// The library names, in table order.
pub const LIBRARIES: [&str; 6] =
    ["wscore", "wscore_copy", "wscore_owned", "tungstenite", "fastwebsockets", "tokio-websockets"];

// ----- wscore ---------------------------------------------------------------

/// wscore's sans-IO core driven directly, as an adapter would: the client
/// queues the batch with `send` and hands the bytes over with
/// `transmit_into`; the server takes them with `receive` and yields the
/// messages from `poll_event`.
///
/// How the wscore harness moves bytes and messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `transmit_into` hands the client's output over (the wire is empty,
    /// so the bytes are appended once); borrowed messages from `poll_event`.
    Borrowed,
    /// The client's `poll_transmit()` is copied into the wire, as an
    /// adapter writing to a socket does; borrowed messages.
    Copy,
    /// As `Copy`, and the server takes each message owned with
    /// `poll_owned` (split off the receive buffer, as a `Stream` item is).
    Owned,
}

impl Mode {
    /// The mode a library name in [`LIBRARIES`] stands for.
    pub fn of(library: &str) -> Self {
        match library {
            "wscore_copy" => Self::Copy,
            "wscore_owned" => Self::Owned,
            _ => Self::Borrowed,
        }
    }
}

/// wscore's harness; see [`Mode`].
pub struct Wscore {
    client: wscore::Connection,
    server: wscore::Connection,
    wire: Vec<u8>,
    kind: Kind,
    payload: Vec<u8>,
    text: String,
    mode: Mode,
}

impl Wscore {
    /// A connected pair with the default [`wscore::Config`].
    pub fn new(kind: Kind, payload: &[u8], mode: Mode) -> Self {
        Self::with_config(kind, payload, mode, wscore::Config::default())
    }

    /// A connected pair with `config` on both sides.
    pub fn with_config(kind: Kind, payload: &[u8], mode: Mode, config: wscore::Config) -> Self {
        use wscore::{Connection, Role};
        Self {
            client: Connection::frames_only(Role::Client, config.clone(), Duration::ZERO).unwrap(),
            server: Connection::frames_only(Role::Server, config, Duration::ZERO).unwrap(),
            wire: Vec::new(),
            kind,
            payload: payload.to_vec(),
            text: String::from_utf8(payload.to_vec()).unwrap_or_default(),
            mode,
        }
    }

    /// Sends and receives one batch.
    pub fn batch(&mut self, n: usize, check: bool) -> usize {
        use wscore::{Event, Message};
        let message = match self.kind {
            Kind::Binary => Message::Binary(&self.payload),
            Kind::Text => Message::Text(&self.text),
        };
        for _ in 0..n {
            self.client.send(message).unwrap();
        }
        if self.mode == Mode::Borrowed {
            self.client.transmit_into(&mut self.wire);
        } else {
            let out = self.client.poll_transmit();
            self.wire.extend_from_slice(out);
            let len = out.len();
            self.client.advance_transmit(len);
        }
        // The server takes the batch in as many calls as its bound on
        // unprocessed input needs, draining messages after each.
        let (mut count, mut bytes) = (0, 0);
        let mut wire = &self.wire[..];
        while !wire.is_empty() {
            let taken = self.server.receive(Duration::ZERO, wire);
            wire = &wire[taken..];
            if self.mode == Mode::Owned {
                while let Some(event) = self.server.poll_owned() {
                    match event {
                        wscore::OwnedEvent::Message(m) => {
                            if check {
                                assert_eq!(m.kind(), message.kind());
                            }
                            bytes += received(check, &self.payload, m.as_bytes());
                            count += 1;
                        }
                        other => panic!("unexpected event {other:?}"),
                    }
                }
                continue;
            }
            while let Some(event) = self.server.poll_event() {
                match event {
                    Event::Message(m) => {
                        if check {
                            assert_eq!(m.kind(), message.kind());
                        }
                        bytes += received(check, &self.payload, m.as_bytes());
                        count += 1;
                    }
                    other => panic!("unexpected event {other:?}"),
                }
            }
        }
        self.wire.clear();
        assert_eq!(count, n);
        bytes
    }
}

// ----- tungstenite ----------------------------------------------------------

/// tungstenite's `WebSocket` over the in-memory socket: the client `write`s
/// the batch into its write buffer and `flush`es it to the socket; the
/// server `read`s messages.
pub struct Tungstenite {
    client: tungstenite::WebSocket<MemStream>,
    server: tungstenite::WebSocket<MemStream>,
    message: tungstenite::Message,
    payload: Vec<u8>,
}

impl Tungstenite {
    /// A connected pair with the default `WebSocketConfig`.
    pub fn new(kind: Kind, payload: &[u8]) -> Self {
        use tungstenite::protocol::{Role, WebSocket};
        let (a, b) = mem::pair();
        let message = match kind {
            Kind::Binary => tungstenite::Message::Binary(bytes::Bytes::copy_from_slice(payload)),
            Kind::Text => tungstenite::Message::Text(std::str::from_utf8(payload).unwrap().into()),
        };
        Self {
            client: WebSocket::from_raw_socket(a, Role::Client, None),
            server: WebSocket::from_raw_socket(b, Role::Server, None),
            message,
            payload: payload.to_vec(),
        }
    }

    /// Sends and receives one batch.
    pub fn batch(&mut self, n: usize, check: bool) -> usize {
        use tungstenite::Message;
        for _ in 0..n {
            // A clone is a reference count increment (the payload is `Bytes`).
            self.client.write(self.message.clone()).unwrap();
        }
        self.client.flush().unwrap();
        let mut bytes = 0;
        for _ in 0..n {
            bytes += match self.server.read().unwrap() {
                Message::Text(text) => {
                    if check {
                        assert!(self.message.is_text());
                    }
                    received(check, &self.payload, text.as_str().as_bytes())
                }
                Message::Binary(data) => {
                    if check {
                        assert!(self.message.is_binary());
                    }
                    received(check, &self.payload, &data)
                }
                other => panic!("unexpected message {other:?}"),
            };
        }
        assert_eq!(self.client.get_ref().unread_by_peer(), 0);
        bytes
    }
}

// ----- fastwebsockets -------------------------------------------------------

/// fastwebsockets over the in-memory socket: the client's `WebSocket`
/// `write_frame`s each message (it masks the payload in place, so the
/// message is first copied into a reusable scratch buffer and passed as
/// `Payload::BorrowedMut`: one copy, no allocation); the server reads whole
/// messages through a `FragmentCollector` (the API that reassembles
/// fragments, like the other libraries' message APIs).
pub struct FastWebSockets {
    client: fastwebsockets::WebSocket<MemStream>,
    server: fastwebsockets::FragmentCollector<MemStream>,
    opcode: fastwebsockets::OpCode,
    payload: Vec<u8>,
    scratch: Vec<u8>,
}

impl FastWebSockets {
    /// A connected pair with fastwebsockets' defaults.
    pub fn new(kind: Kind, payload: &[u8]) -> Self {
        use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
        let (a, b) = mem::pair();
        Self {
            client: WebSocket::after_handshake(a, Role::Client),
            server: FragmentCollector::new(WebSocket::after_handshake(b, Role::Server)),
            opcode: match kind {
                Kind::Binary => OpCode::Binary,
                Kind::Text => OpCode::Text,
            },
            payload: payload.to_vec(),
            scratch: payload.to_vec(),
        }
    }

    /// Sends and receives one batch.
    pub async fn batch(&mut self, n: usize, check: bool) -> usize {
        use fastwebsockets::{Frame, Payload};
        for _ in 0..n {
            self.scratch.copy_from_slice(&self.payload);
            let frame = Frame::new(true, self.opcode, None, Payload::BorrowedMut(&mut self.scratch));
            self.client.write_frame(frame).await.unwrap();
        }
        self.client.flush().await.unwrap();
        let mut bytes = 0;
        for _ in 0..n {
            let frame = self.server.read_frame().await.unwrap();
            if check {
                assert_eq!(frame.opcode, self.opcode);
                assert!(frame.fin);
            }
            bytes += received(check, &self.payload, &frame.payload);
        }
        bytes
    }
}

// ----- tokio-websockets -----------------------------------------------------

/// tokio-websockets' `WebSocketStream` over the in-memory socket: the client
/// `feed`s the batch into its `Sink` and `flush`es it (vectored writes of
/// the queued frames); the server takes messages from its `Stream`.
pub struct TokioWebSockets {
    client: tokio_websockets::WebSocketStream<MemStream>,
    server: tokio_websockets::WebSocketStream<MemStream>,
    message: tokio_websockets::Message,
    payload: Vec<u8>,
}

impl TokioWebSockets {
    /// A connected pair with tokio-websockets' defaults.
    pub fn new(kind: Kind, payload: &[u8]) -> Self {
        use tokio_websockets::{ClientBuilder, Message, ServerBuilder};
        let (a, b) = mem::pair();
        let message = match kind {
            Kind::Binary => Message::binary(bytes::Bytes::copy_from_slice(payload)),
            Kind::Text => Message::text(String::from_utf8(payload.to_vec()).unwrap()),
        };
        Self {
            client: ClientBuilder::new().take_over(a),
            server: ServerBuilder::new().serve(b),
            message,
            payload: payload.to_vec(),
        }
    }

    /// Sends and receives one batch.
    pub async fn batch(&mut self, n: usize, check: bool) -> usize {
        use futures_util::{SinkExt, StreamExt};
        for _ in 0..n {
            // A clone is a reference count increment; masking copies the
            // payload into a buffer of its own.
            self.client.feed(self.message.clone()).await.unwrap();
        }
        self.client.flush().await.unwrap();
        let mut bytes = 0;
        for _ in 0..n {
            let message = self.server.next().await.unwrap().unwrap();
            bytes += if let Some(text) = message.as_text() {
                if check {
                    assert!(self.message.is_text());
                }
                received(check, &self.payload, text.as_bytes())
            } else {
                if check {
                    assert!(message.is_binary() && self.message.is_binary());
                }
                received(check, &self.payload, message.as_payload())
            };
        }
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;

    fn payloads() -> Vec<(Kind, Vec<u8>)> {
        let mut out = Vec::new();
        for size in [0, 16, 125, 126, 1024, 65535, 65536, 100_000] {
            out.push((Kind::Binary, data::binary(size)));
            out.push((Kind::Text, data::text(size).into_bytes()));
        }
        out
    }

    #[test]
    fn every_harness_delivers_the_payload() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        for (kind, payload) in payloads() {
            // wscore refuses to queue past its 4 MiB write high-water mark.
            for n in [1, 3, 64].into_iter().filter(|n| n * payload.len() <= 1 << 20) {
                let expected = n * payload.len();
                for mode in [Mode::Borrowed, Mode::Copy, Mode::Owned] {
                    assert_eq!(Wscore::new(kind, &payload, mode).batch(n, true), expected);
                }
                let mut t = Tungstenite::new(kind, &payload);
                assert_eq!(t.batch(n, true), expected);
                assert_eq!(t.batch(n, true), expected);
                rt.block_on(async {
                    let mut f = FastWebSockets::new(kind, &payload);
                    assert_eq!(f.batch(n, true).await, expected);
                    assert_eq!(f.batch(n, true).await, expected);
                    let mut t = TokioWebSockets::new(kind, &payload);
                    assert_eq!(t.batch(n, true).await, expected);
                    assert_eq!(t.batch(n, true).await, expected);
                });
            }
        }
    }
}
