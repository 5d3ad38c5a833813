//! One sender→receiver pipe per library. `batch(n, check)` sends `n`
//! copies of the message from one end (the client, or the server with
//! [`Direction::ServerToClient`]) and receives them all at the other,
//! returning the number of payload bytes received; with `check` it also
//! compares every received payload with what was sent. The receiving end
//! reads the batch whole or in socket-sized pieces ([`Delivery`]).
//!
//! Each harness uses its library's default configuration and its most
//! direct idiomatic API for "send these messages, then receive messages".
//! See README.md for the choices and why they are equivalent.

use std::hint::black_box;
use std::time::Duration;

use crate::mem::{self, MemStream};
use crate::{Delivery, Direction, Kind, Reads};

/// What every harness is built for: the message kind, which end sends, and
/// how the receiving end reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    /// Text or binary.
    pub kind: Kind,
    /// Which end sends.
    pub direction: Direction,
    /// How the receiving end gets the bytes.
    pub delivery: Delivery,
}

impl Setup {
    /// Client to server, whole batches: the original pipe benchmark.
    pub fn whole(kind: Kind) -> Self {
        Self { kind, direction: Direction::ClientToServer, delivery: Delivery::Whole }
    }

    /// `(sender, receiver)` roles, as wscore names them.
    fn roles(self) -> (wscore::Role, wscore::Role) {
        match self.direction {
            Direction::ClientToServer => (wscore::Role::Client, wscore::Role::Server),
            Direction::ServerToClient => (wscore::Role::Server, wscore::Role::Client),
        }
    }

    /// A connected in-memory pair `(sender's end, receiver's end)`, the
    /// receiver's reads limited by the delivery.
    fn streams(self) -> (MemStream, MemStream) {
        let (a, b) = mem::pair();
        b.set_delivery(self.delivery);
        (a, b)
    }
}

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
    /// The sender queues an `OwnedMessage` built once (`send_owned` of a
    /// clone: a reference count, as tokio-websockets and tungstenite send a
    /// cloned `Message`; what the tokio adapter's `send_owned` and `Sink`
    /// do), and its output is taken with `poll_transmit_slices` and copied
    /// into the wire, as a vectored socket write copies it. A server sends
    /// payloads of 2 KiB and more without copying them into its output; a
    /// client masks a copy, as it must.
    Shared,
}

impl Mode {
    /// The mode a library name in [`LIBRARIES`] stands for.
    pub fn of(library: &str) -> Self {
        match library {
            "wscore_copy" => Self::Copy,
            "wscore_owned" => Self::Owned,
            "wscore_shared" => Self::Shared,
            _ => Self::Borrowed,
        }
    }
}

/// wscore's harness; see [`Mode`].
pub struct Wscore {
    sender: wscore::Connection,
    receiver: wscore::Connection,
    wire: Vec<u8>,
    kind: Kind,
    payload: Vec<u8>,
    text: String,
    owned: wscore::OwnedMessage,
    mode: Mode,
    reads: Reads,
}

impl Wscore {
    /// A connected pair with the default [`wscore::Config`].
    pub fn new(setup: Setup, payload: &[u8], mode: Mode) -> Self {
        Self::with_config(setup, payload, mode, wscore::Config::default())
    }

    /// A connected pair with `config` on both sides.
    pub fn with_config(setup: Setup, payload: &[u8], mode: Mode, config: wscore::Config) -> Self {
        use wscore::Connection;
        let (sender, receiver) = setup.roles();
        Self {
            sender: Connection::frames_only(sender, config.clone(), Duration::ZERO).unwrap(),
            receiver: Connection::frames_only(receiver, config, Duration::ZERO).unwrap(),
            wire: Vec::new(),
            kind: setup.kind,
            payload: payload.to_vec(),
            text: String::from_utf8(payload.to_vec()).unwrap_or_default(),
            owned: if setup.kind.is_text() {
                wscore::OwnedMessage::text(String::from_utf8(payload.to_vec()).unwrap())
            } else {
                wscore::OwnedMessage::binary(bytes::Bytes::copy_from_slice(payload))
            },
            mode,
            reads: setup.delivery.reads(),
        }
    }

    /// Sends and receives one batch.
    pub fn batch(&mut self, n: usize, check: bool) -> usize {
        use wscore::Message;
        let message = match self.kind {
            Kind::Binary => Message::Binary(&self.payload),
            Kind::Text | Kind::DenseText => Message::Text(&self.text),
        };
        if self.mode == Mode::Shared {
            for _ in 0..n {
                self.sender.send_owned(self.owned.clone()).unwrap();
            }
        } else {
            for _ in 0..n {
                self.sender.send(message).unwrap();
            }
        }
        if self.mode == Mode::Borrowed {
            self.sender.transmit_into(&mut self.wire);
        } else if self.mode == Mode::Shared {
            loop {
                let mut slices: [&[u8]; 16] = [&[]; 16];
                let filled = self.sender.poll_transmit_slices(&mut slices);
                if filled == 0 {
                    break;
                }
                let mut sent = 0;
                for slice in &slices[..filled] {
                    self.wire.extend_from_slice(slice);
                    sent += slice.len();
                }
                self.sender.advance_transmit(sent);
            }
        } else {
            let out = self.sender.poll_transmit();
            self.wire.extend_from_slice(out);
            let len = out.len();
            self.sender.advance_transmit(len);
        }
        // Each read (the whole wire, or a socket-sized piece of it) is
        // offered to `receive` until taken: it takes as much as its bound on
        // unprocessed input allows and says how much, and the messages are
        // drained after each call, as an adapter does.
        let kind = message.kind();
        let (mut count, mut bytes) = (0, 0);
        let wire = std::mem::take(&mut self.wire);
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let (mut read, after) = rest.split_at(self.reads.next_limit().min(rest.len()));
            rest = after;
            while !read.is_empty() {
                let taken = self.receiver.receive(Duration::ZERO, read);
                read = &read[taken..];
                let (c, b) = self.drain(kind, check);
                assert!(taken > 0 || c > 0, "receive made no progress");
                count += c;
                bytes += b;
            }
        }
        // The wire's buffer is kept for the next batch, as a socket's is.
        self.wire = wire;
        self.wire.clear();
        assert_eq!(count, n);
        bytes
    }

    /// Takes every message the receiver has ready: `(count, bytes)`.
    fn drain(&mut self, kind: wscore::MessageKind, check: bool) -> (usize, usize) {
        use wscore::Event;
        let (mut count, mut bytes) = (0, 0);
        if self.mode == Mode::Owned {
            while let Some(event) = self.receiver.poll_owned() {
                match event {
                    wscore::OwnedEvent::Message(m) => {
                        if check {
                            assert_eq!(m.kind(), kind);
                        }
                        bytes += received(check, &self.payload, m.as_bytes());
                        count += 1;
                    }
                    other => panic!("unexpected event {other:?}"),
                }
            }
            return (count, bytes);
        }
        while let Some(event) = self.receiver.poll_event() {
            match event {
                Event::Message(m) => {
                    if check {
                        assert_eq!(m.kind(), kind);
                    }
                    bytes += received(check, &self.payload, m.as_bytes());
                    count += 1;
                }
                other => panic!("unexpected event {other:?}"),
            }
        }
        (count, bytes)
    }
}

// ----- tungstenite ----------------------------------------------------------

/// tungstenite's `WebSocket` over the in-memory socket: the sender `write`s
/// the batch into its write buffer and `flush`es it to the socket; the
/// server `read`s messages.
pub struct Tungstenite {
    sender: tungstenite::WebSocket<MemStream>,
    receiver: tungstenite::WebSocket<MemStream>,
    message: tungstenite::Message,
    payload: Vec<u8>,
}

impl Tungstenite {
    /// A connected pair with the default `WebSocketConfig`.
    pub fn new(setup: Setup, payload: &[u8]) -> Self {
        use tungstenite::protocol::{Role, WebSocket};
        let (a, b) = setup.streams();
        let message = match setup.kind {
            Kind::Binary => tungstenite::Message::Binary(bytes::Bytes::copy_from_slice(payload)),
            Kind::Text | Kind::DenseText => tungstenite::Message::Text(std::str::from_utf8(payload).unwrap().into()),
        };
        let role = |r| if r == wscore::Role::Client { Role::Client } else { Role::Server };
        let (sender, receiver) = setup.roles();
        Self {
            sender: WebSocket::from_raw_socket(a, role(sender), None),
            receiver: WebSocket::from_raw_socket(b, role(receiver), None),
            message,
            payload: payload.to_vec(),
        }
    }

    /// Sends and receives one batch.
    pub fn batch(&mut self, n: usize, check: bool) -> usize {
        use tungstenite::Message;
        for _ in 0..n {
            // A clone is a reference count increment (the payload is `Bytes`).
            self.sender.write(self.message.clone()).unwrap();
        }
        self.sender.flush().unwrap();
        let mut bytes = 0;
        for _ in 0..n {
            bytes += match self.receiver.read().unwrap() {
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
        assert_eq!(self.sender.get_ref().unread_by_peer(), 0);
        bytes
    }
}

// ----- fastwebsockets -------------------------------------------------------

/// fastwebsockets over the in-memory socket: the sender's `WebSocket`
/// `write_frame`s each message (it masks the payload in place, so the
/// message is first copied into a reusable scratch buffer and passed as
/// `Payload::BorrowedMut`: one copy, no allocation); the server reads whole
/// messages through a `FragmentCollector` (the API that reassembles
/// fragments, like the other libraries' message APIs).
pub struct FastWebSockets {
    sender: fastwebsockets::WebSocket<MemStream>,
    receiver: fastwebsockets::FragmentCollector<MemStream>,
    opcode: fastwebsockets::OpCode,
    payload: Vec<u8>,
    scratch: Vec<u8>,
}

impl FastWebSockets {
    /// A connected pair with fastwebsockets' defaults.
    pub fn new(setup: Setup, payload: &[u8]) -> Self {
        use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
        let (a, b) = setup.streams();
        let role = |r| if r == wscore::Role::Client { Role::Client } else { Role::Server };
        let (sender, receiver) = setup.roles();
        Self {
            sender: WebSocket::after_handshake(a, role(sender)),
            receiver: FragmentCollector::new(WebSocket::after_handshake(b, role(receiver))),
            opcode: if setup.kind.is_text() { OpCode::Text } else { OpCode::Binary },
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
            self.sender.write_frame(frame).await.unwrap();
        }
        self.sender.flush().await.unwrap();
        let mut bytes = 0;
        for _ in 0..n {
            let frame = self.receiver.read_frame().await.unwrap();
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
    sender: tokio_websockets::WebSocketStream<MemStream>,
    receiver: tokio_websockets::WebSocketStream<MemStream>,
    message: tokio_websockets::Message,
    payload: Vec<u8>,
}

impl TokioWebSockets {
    /// A connected pair with tokio-websockets' defaults.
    pub fn new(setup: Setup, payload: &[u8]) -> Self {
        use tokio_websockets::{ClientBuilder, Message, ServerBuilder};
        let (a, b) = setup.streams();
        let message = match setup.kind {
            Kind::Binary => Message::binary(bytes::Bytes::copy_from_slice(payload)),
            Kind::Text | Kind::DenseText => Message::text(String::from_utf8(payload.to_vec()).unwrap()),
        };
        let (client, server) = match setup.direction {
            Direction::ClientToServer => (ClientBuilder::new().take_over(a), ServerBuilder::new().serve(b)),
            Direction::ServerToClient => (ServerBuilder::new().serve(a), ClientBuilder::new().take_over(b)),
        };
        Self { sender: client, receiver: server, message, payload: payload.to_vec() }
    }

    /// Sends and receives one batch.
    pub async fn batch(&mut self, n: usize, check: bool) -> usize {
        use futures_util::{SinkExt, StreamExt};
        for _ in 0..n {
            // A clone is a reference count increment; masking copies the
            // payload into a buffer of its own.
            self.sender.feed(self.message.clone()).await.unwrap();
        }
        self.sender.flush().await.unwrap();
        let mut bytes = 0;
        for _ in 0..n {
            let message = self.receiver.next().await.unwrap().unwrap();
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

    /// Every harness, every kind, both directions, every delivery, sizes
    /// around the frame-length boundaries: each received payload is compared
    /// with what was sent, for two batches in a row (buffers reused).
    #[test]
    fn every_harness_delivers_the_payload() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let deliveries =
            [Delivery::Whole, Delivery::Max(16 << 10), Delivery::Max(64 << 10), Delivery::Random, Delivery::Max(7)];
        for size in [0, 16, 125, 126, 1024, 65535, 65536, 100_000, 1 << 20] {
            for kind in [Kind::Binary, Kind::Text, Kind::DenseText] {
                let payload = kind.payload(size);
                for direction in [Direction::ClientToServer, Direction::ServerToClient] {
                    for delivery in deliveries {
                        // Reads of 7 bytes only where they stay quick.
                        if delivery == Delivery::Max(7) && size > 1024 {
                            continue;
                        }
                        let setup = Setup { kind, direction, delivery };
                        check(&rt, setup, &payload);
                    }
                }
            }
        }
    }

    fn check(rt: &tokio::runtime::Runtime, setup: Setup, payload: &[u8]) {
        // wscore refuses to queue past its 4 MiB write high-water mark.
        for n in [1, 3, 64].into_iter().filter(|n| n * payload.len() <= 2 << 20) {
            let expected = n * payload.len();
            let what = format!("{setup:?}, {} bytes x {n}", payload.len());
            for mode in [Mode::Borrowed, Mode::Copy, Mode::Owned, Mode::Shared] {
                let mut w = Wscore::new(setup, payload, mode);
                assert_eq!(w.batch(n, true), expected, "wscore {mode:?} {what}");
                assert_eq!(w.batch(n, true), expected, "wscore {mode:?} {what}");
            }
            let mut t = Tungstenite::new(setup, payload);
            assert_eq!(t.batch(n, true), expected, "tungstenite {what}");
            assert_eq!(t.batch(n, true), expected, "tungstenite {what}");
            rt.block_on(async {
                let mut f = FastWebSockets::new(setup, payload);
                assert_eq!(f.batch(n, true).await, expected, "fastwebsockets {what}");
                assert_eq!(f.batch(n, true).await, expected, "fastwebsockets {what}");
                let mut t = TokioWebSockets::new(setup, payload);
                assert_eq!(t.batch(n, true).await, expected, "tokio-websockets {what}");
                assert_eq!(t.batch(n, true).await, expected, "tokio-websockets {what}");
            });
        }
    }
}
