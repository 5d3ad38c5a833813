//! A raw WebSocket peer on a plain `std` socket, for the cases where the
//! other end has to misbehave: send frames a conforming endpoint never
//! would, never read, never answer a ping. It does just enough of the
//! handshake to get past it and reads and writes frames byte by byte, so
//! what a test sees is exactly what the adapter put on the wire.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

pub(crate) const TEXT: u8 = 0x1;
pub(crate) const BINARY: u8 = 0x2;
pub(crate) const CLOSE: u8 = 0x8;
pub(crate) const PING: u8 = 0x9;
pub(crate) const PONG: u8 = 0xA;
pub(crate) const FIN: u8 = 0x80;

/// Every read gives up after this long, so a peer whose adapter went
/// silent fails the test instead of hanging it. No test waits this long.
const READ_LIMIT: Duration = Duration::from_secs(20);

/// The mask a raw client uses (RFC 6455 §5.7's example key).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// One frame as it was on the wire, unmasked.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) rsv: u8,
    pub(crate) opcode: u8,
    pub(crate) masked: bool,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    /// A close frame's code, if it has one.
    pub(crate) fn close_code(&self) -> Option<u16> {
        (self.opcode == CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// A close frame's reason.
    pub(crate) fn close_reason(&self) -> &str {
        std::str::from_utf8(self.payload.get(2..).unwrap_or_default()).expect("a UTF-8 close reason")
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = &self.payload[..self.payload.len().min(16)];
        write!(
            f,
            "Frame {{ fin: {}, rsv: {:#x}, opcode: {:#x}, masked: {}, {} bytes: {shown:?} }}",
            self.fin,
            self.rsv,
            self.opcode,
            self.masked,
            self.payload.len()
        )
    }
}

/// Encodes a frame; `first` is FIN, RSV and opcode. The length is
/// minimally encoded; the payload is masked with `mask` if given.
pub(crate) fn encode(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A close frame's payload.
pub(crate) fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// A raw peer: a client (which masks what it sends, as it must) or a
/// server (which does not).
pub(crate) struct Raw {
    stream: TcpStream,
    client: bool,
}

impl Raw {
    /// Connects to `addr` and performs a minimal client handshake.
    pub(crate) fn connect(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let request = format!(
            "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).unwrap();
        let response = read_head(&mut stream);
        assert!(response.starts_with("HTTP/1.1 101"), "{response}");
        // The accept value for RFC 6455 §1.3's sample key.
        assert!(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{response}");
        Self { stream, client: true }
    }

    /// Accepts one connection on `listener` and answers its upgrade
    /// request with 101.
    pub(crate) fn accept(listener: TcpListener) -> Self {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(READ_LIMIT)).unwrap();
        stream.set_nodelay(true).unwrap();
        let request = read_head(&mut stream);
        let key = request
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim().to_owned())
            })
            .expect("a Sec-WebSocket-Key");
        let accept = wscore::handshake::accept_key(key.as_bytes());
        let response = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            std::str::from_utf8(&accept).unwrap()
        );
        stream.write_all(response.as_bytes()).unwrap();
        Self { stream, client: false }
    }

    /// Sends a frame the way our role must: masked from a client, plain
    /// from a server.
    pub(crate) fn send(&mut self, first: u8, payload: &[u8]) {
        let mask = self.client.then_some(MASK);
        self.send_bytes(&encode(first, payload, mask));
    }

    /// Sends bytes as they are.
    pub(crate) fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Sends a close frame.
    pub(crate) fn send_close(&mut self, code: u16, reason: &str) {
        self.send(FIN | CLOSE, &close_payload(code, reason));
    }

    /// The next frame, or the error that ended the stream (EOF as
    /// `UnexpectedEof`).
    pub(crate) fn try_frame(&mut self) -> io::Result<Frame> {
        let mut head = [0u8; 2];
        self.stream.read_exact(&mut head)?;
        let masked = head[1] & 0x80 != 0;
        let len = match head[1] & 0x7f {
            126 => {
                let mut n = [0u8; 2];
                self.stream.read_exact(&mut n)?;
                u64::from(u16::from_be_bytes(n))
            }
            127 => {
                let mut n = [0u8; 8];
                self.stream.read_exact(&mut n)?;
                u64::from_be_bytes(n)
            }
            n => u64::from(n),
        };
        let mut key = [0u8; 4];
        if masked {
            self.stream.read_exact(&mut key)?;
        }
        let mut payload = vec![0u8; usize::try_from(len).unwrap()];
        self.stream.read_exact(&mut payload)?;
        if masked {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        Ok(Frame { fin: head[0] & 0x80 != 0, rsv: head[0] & 0x70, opcode: head[0] & 0x0f, masked, payload })
    }

    /// The next frame; panics if the stream ends or goes silent.
    #[track_caller]
    pub(crate) fn frame(&mut self) -> Frame {
        let frame = self.try_frame().unwrap_or_else(|e| panic!("reading a frame: {e}"));
        // What an adapter sends must be masked exactly when it is a client.
        assert_eq!(frame.masked, !self.client, "masking of {frame:?}");
        frame
    }

    /// The next frame that is not a ping (pings are left unanswered: this
    /// peer is not meant to prove it is alive).
    #[track_caller]
    pub(crate) fn frame_skipping_pings(&mut self) -> Frame {
        loop {
            let frame = self.frame();
            if frame.opcode != PING {
                return frame;
            }
        }
    }

    /// Half-closes: tells the adapter nothing more comes from this peer.
    pub(crate) fn shutdown_write(&mut self) {
        self.stream.shutdown(std::net::Shutdown::Write).unwrap();
    }

    /// Asserts that the adapter closes the TCP connection (a FIN, not a
    /// reset) with nothing more sent.
    #[track_caller]
    pub(crate) fn expect_eof(&mut self) {
        let mut byte = [0u8; 1];
        match self.stream.read(&mut byte) {
            Ok(0) => {}
            Ok(_) => panic!("more bytes instead of the end of the stream: {byte:?}"),
            Err(e) => panic!("the stream failed instead of ending: {e}"),
        }
    }
}

/// Reads an HTTP head up to its blank line, a byte at a time so that no
/// frame bytes after it are consumed.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("an HTTP head");
        head.push(byte[0]);
        assert!(head.len() < 16 * 1024, "an endless HTTP head");
    }
    String::from_utf8(head).unwrap()
}
