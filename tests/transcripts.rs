//! Transcript tests of the public API: bytes in, events and exact bytes out.
//!
//! Each test plays the peer: it feeds a [`Connection`] the bytes a peer would
//! send, then checks the events the connection reports and the bytes it
//! queued, one RFC 6455 rule at a time. Client frames are built and masked by
//! hand here; what the connection sends is decoded with
//! [`FrameHeader::decode`] (and unmasked for a client) so every assertion is
//! about the wire, not about internals.

use core::time::Duration;

use wscore::frame::{FrameHeader, apply_mask};
use wscore::handshake::accept_key;
use wscore::{
    Accept, ClientHandshake, CloseCode, Config, Connection, Error, Event, HandshakeError, Message, MessageKind,
    ProtocolError, Reject, Role, State, UsageError,
};

// ===== Helpers =============================================================

/// Time plays no part in these transcripts.
const NOW: Duration = Duration::ZERO;

/// The masking key of the RFC 6455 §5.7 examples, used for every client frame.
const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

const CONT: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// A frame header, written by hand so that reserved opcodes and bits can be
/// expressed; the length is encoded minimally.
fn header(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, len: u64) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match len {
        0..=125 => out.push(mask_bit | len as u8),
        126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    if let Some(key) = mask {
        out.extend_from_slice(&key);
    }
    out
}

/// A whole frame: header and payload, masked with `mask` if given.
fn frame(fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut out = header(fin, rsv, opcode, mask, payload.len() as u64);
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(key) = mask {
        apply_mask(&mut out[start..], key, 0);
    }
    out
}

/// A frame as a client sends it: masked.
fn c2s(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, Some(KEY), payload)
}

/// A frame as a server sends it: unmasked.
fn s2c(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(fin, 0, opcode, None, payload)
}

/// A close frame payload: the code, big-endian, then the reason.
fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// The exact close frame a server sends: `0x88, len, code_hi, code_lo, reason...`.
fn server_close(code: u16, reason: &str) -> Vec<u8> {
    s2c(true, CLOSE, &close_payload(code, reason))
}

/// One frame the connection sent, decoded and unmasked.
#[derive(Debug, PartialEq, Eq)]
struct Sent {
    fin: bool,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

impl Sent {
    fn new(fin: bool, opcode: u8, masked: bool, payload: &[u8]) -> Self {
        Self { fin, opcode, masked, payload: payload.to_vec() }
    }
}

/// Splits the bytes a connection sent into frames; panics unless they are
/// exactly a sequence of whole, valid frames without reserved bits.
fn decode_frames(mut bytes: &[u8]) -> Vec<Sent> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let (h, n) = FrameHeader::decode(bytes).expect("valid frame header").expect("whole frame header");
        assert_eq!(h.rsv, 0, "reserved bits sent");
        let len = usize::try_from(h.payload_len).unwrap();
        assert!(bytes.len() >= n + len, "truncated frame on the wire");
        let mut payload = bytes[n..n + len].to_vec();
        if let Some(key) = h.mask {
            apply_mask(&mut payload, key, 0);
        }
        frames.push(Sent { fin: h.fin, opcode: h.opcode.as_u8(), masked: h.mask.is_some(), payload });
        bytes = &bytes[n + len..];
    }
    frames
}

/// An [`Event`] copied out of the connection's buffers, so that a whole
/// transcript of events can be compared at once.
#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Request { path: String, protocols: Vec<String> },
    Connected { status: u16, protocol: Option<String> },
    Rejected { status: u16, body: Vec<u8> },
    Text(String),
    Binary(Vec<u8>),
    Chunk(MessageKind, Vec<u8>, bool),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(u16, String),
    Closed(Closed2),
}

/// The parts of a [`Closed`] compared here.
#[derive(Debug, PartialEq, Eq)]
struct Closed2 {
    code: CloseCode,
    clean: bool,
    error: Option<Error>,
}

fn text(s: &str) -> Ev {
    Ev::Text(s.to_owned())
}

fn ping(payload: &[u8]) -> Ev {
    Ev::Ping(payload.to_vec())
}

/// `Event::Close` with `code` and `reason`.
fn close_ev(code: u16, reason: &str) -> Ev {
    Ev::Close(code, reason.to_owned())
}

/// `Event::Closed` after a completed closing handshake.
fn closed_clean(code: u16) -> Ev {
    Ev::Closed(Closed2 { code: CloseCode(code), clean: true, error: None })
}

/// `Event::Closed` after the connection failed with `error`.
fn closed_failed(code: u16, error: impl Into<Error>) -> Ev {
    Ev::Closed(Closed2 { code: CloseCode(code), clean: false, error: Some(error.into()) })
}

std::thread_local! {
    /// What each connection "wrote to its socket" while the harness drained
    /// its events, by the connection's address, until `output` takes it.
    static WRITTEN: std::cell::RefCell<std::collections::HashMap<usize, Vec<u8>>> = Default::default();
}

/// Drains every event the connection has ready. When the peer's close
/// arrived, the harness transmits the answer the connection queued, as a
/// socket would at once (`output` returns it), and drains again: our close
/// frame going out completes the closing handshake and brings `Closed`.
fn events(conn: &mut Connection) -> Vec<Ev> {
    let mut out = drain(conn);
    if matches!(out.last(), Some(Ev::Close(..))) {
        let mut written = Vec::new();
        conn.transmit_into(&mut written);
        let id = conn as *const Connection as usize;
        WRITTEN.with(|w| w.borrow_mut().entry(id).or_default().extend_from_slice(&written));
        out.extend(drain(conn));
    }
    out
}

fn drain(conn: &mut Connection) -> Vec<Ev> {
    let mut out = Vec::new();
    while let Some(event) = conn.poll_event() {
        out.push(match event {
            Event::Request(r) => {
                Ev::Request { path: r.path().to_owned(), protocols: r.protocols().map(String::from).collect() }
            }
            Event::Connected(r) => Ev::Connected { status: r.status(), protocol: r.protocol().map(String::from) },
            Event::Rejected(r) => Ev::Rejected { status: r.status(), body: r.body().to_vec() },
            Event::Message(Message::Text(t)) => Ev::Text(t.to_owned()),
            Event::Message(Message::Binary(b)) => Ev::Binary(b.to_vec()),
            Event::Chunk(c) => Ev::Chunk(c.kind, c.data.to_vec(), c.fin),
            Event::Ping(p) => Ev::Ping(p.to_vec()),
            Event::Pong(p) => Ev::Pong(p.to_vec()),
            Event::Close(c) => Ev::Close(c.code.0, c.reason.to_owned()),
            Event::Closed(c) => Ev::Closed(Closed2 { code: c.code, clean: c.clean, error: c.error }),
            other => panic!("unexpected event {other:?}"),
        });
    }
    out
}

/// Feeds `input` (in as many calls as the connection's input bound needs)
/// and drains the events.
fn feed(conn: &mut Connection, mut input: &[u8]) -> Vec<Ev> {
    let mut out = Vec::new();
    loop {
        let n = conn.receive(NOW, input);
        input = &input[n..];
        out.extend(events(conn));
        if input.is_empty() || n == 0 {
            return out;
        }
    }
}

/// Takes everything the connection sent: what the harness already wrote
/// for it, then whatever is still queued.
fn output(conn: &mut Connection) -> Vec<u8> {
    let id = conn as *const Connection as usize;
    let mut out = WRITTEN.with(|w| w.borrow_mut().remove(&id)).unwrap_or_default();
    conn.transmit_into(&mut out);
    out
}

fn config(change: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config::default();
    change(&mut config);
    config
}

fn server_with(config: Config) -> Connection {
    Connection::frames_only(Role::Server, config, NOW).unwrap()
}

/// A server past its handshake, for framing tests.
fn server() -> Connection {
    server_with(Config::default())
}

/// A client past its handshake, for framing tests.
fn client() -> Connection {
    Connection::frames_only(Role::Client, Config::default(), NOW).unwrap()
}

/// Feeds `input` and checks that the connection failed with `error`: one
/// `Closed` event with `code`, exactly one close frame with that code and the
/// error's reason on the wire (masked from a client), and nothing processed
/// afterwards.
#[track_caller]
fn assert_fails(conn: &mut Connection, input: &[u8], code: u16, error: ProtocolError) {
    assert_eq!(feed(conn, input), [closed_failed(code, error)]);
    let wire = output(conn);
    match conn.role() {
        Role::Server => assert_eq!(wire, server_close(code, error.reason())),
        Role::Client => {
            assert_eq!(decode_frames(&wire), [Sent::new(true, CLOSE, true, &close_payload(code, error.reason()))]);
        }
    }
    assert_eq!(conn.state(), State::Closed);
    // A failed connection processes nothing more and sends nothing more.
    assert_eq!(feed(conn, &c2s(true, PING, b"late")), []);
    assert_eq!(output(conn), b"");
}

/// The opening handshake request of RFC 6455 §1.3.
const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
    Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// The answer to [`RFC_REQUEST`] without a subprotocol.
const RFC_RESPONSE: &str = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// An HTTP response split into its status line, header fields and body;
/// panics unless it is complete: a head ending in a blank line and exactly
/// `Content-Length` bytes of body.
fn parse_http(bytes: &[u8]) -> (String, Vec<(String, String)>, Vec<u8>) {
    let text = String::from_utf8(bytes.to_vec()).expect("ASCII response");
    let (head, body) = text.split_once("\r\n\r\n").expect("head ends with a blank line");
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().to_owned();
    let fields: Vec<(String, String)> = lines
        .map(|line| {
            let (name, value) = line.split_once(": ").expect("header field");
            (name.to_owned(), value.to_owned())
        })
        .collect();
    let length = fields.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")).expect("Content-Length");
    assert_eq!(length.1, body.len().to_string(), "Content-Length must match the body");
    (status, fields, body.as_bytes().to_vec())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// A server that has accepted [`RFC_REQUEST`], with the 101 drained.
fn accepted_server() -> Connection {
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    feed(&mut conn, RFC_REQUEST.as_bytes());
    conn.accept(&Accept::new()).unwrap();
    output(&mut conn);
    conn
}

/// A client for `ws://host:1234/p?q` offering `chat`, with its request
/// drained; returns the connection and the request it sent.
fn client_handshake() -> (Connection, String) {
    let hs = ClientHandshake::new("ws://host:1234/p?q").unwrap().protocol("chat").unwrap();
    let mut conn = Connection::client(hs, Config::default(), NOW).unwrap();
    let request = String::from_utf8(output(&mut conn)).unwrap();
    (conn, request)
}

/// The `Sec-WebSocket-Key` of a request.
fn request_key(request: &str) -> String {
    let line = request.split("\r\n").find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).expect("key header");
    line.to_owned()
}

/// A 101 response for a request with `key`, plus `extra` header lines.
fn response_101(key: &str, extra: &str) -> String {
    let accept = accept_key(key.as_bytes());
    let accept = core::str::from_utf8(&accept).unwrap();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
    )
}

// ===== Masking direction (§5.1) =============================================
// Clients must mask, servers must not; either mistake fails the connection.

#[test]
fn masking_server_rejects_unmasked_frame() {
    assert_fails(&mut server(), &s2c(true, TEXT, b"Hello"), 1002, ProtocolError::UnmaskedFrame);
}

#[test]
fn masking_client_rejects_masked_frame() {
    assert_fails(&mut client(), &c2s(true, TEXT, b"Hello"), 1002, ProtocolError::MaskedFrame);
}

#[test]
fn masking_rfc_examples_in_the_right_direction_are_accepted() {
    // RFC 6455 §5.7: a masked "Hello" to a server, an unmasked one to a client.
    let mut conn = server();
    assert_eq!(feed(&mut conn, &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]), [text("Hello")]);
    assert_eq!(output(&mut conn), b"");
    let mut conn = client();
    assert_eq!(feed(&mut conn, &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]), [text("Hello")]);
    assert_eq!(output(&mut conn), b"");
}

// ===== Reserved bits and opcodes (§5.2) =====================================
// No extension is negotiated, so any RSV bit or reserved opcode is an error.

#[test]
fn reserved_bits_rsv1_rsv2_rsv3_fail_1002() {
    for rsv in [0b100, 0b010, 0b001, 0b111] {
        assert_fails(&mut server(), &frame(true, rsv, TEXT, Some(KEY), b"x"), 1002, ProtocolError::ReservedBits);
    }
    // On a control frame too.
    assert_fails(&mut server(), &frame(true, 0b100, PING, Some(KEY), b"x"), 1002, ProtocolError::ReservedBits);
}

#[test]
fn reserved_opcodes_fail_1002() {
    for op in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        assert_fails(&mut server(), &c2s(true, op, b""), 1002, ProtocolError::ReservedOpcode(op));
    }
}

// ===== Control frames (§5.5) ================================================
// At most 125 bytes of payload, never fragmented.

#[test]
fn control_frame_with_126_byte_payload_fails_1002() {
    for op in [PING, PONG, CLOSE] {
        let bytes = c2s(true, op, &[b'a'; 126]);
        assert_eq!(&bytes[..4], [0x80 | op, 0xFE, 0x00, 0x7E]);
        assert_fails(&mut server(), &bytes, 1002, ProtocolError::ControlFrameTooLong);
    }
}

#[test]
fn control_frame_without_fin_fails_1002() {
    for op in [PING, PONG, CLOSE] {
        assert_fails(&mut server(), &c2s(false, op, b"x"), 1002, ProtocolError::FragmentedControlFrame);
    }
}

#[test]
fn control_frame_ping_with_125_byte_payload_is_answered() {
    let payload: Vec<u8> = (0..125).collect();
    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(true, PING, &payload)), [ping(&payload)]);
    let mut expected = vec![0x8A, 0x7D];
    expected.extend_from_slice(&payload);
    assert_eq!(output(&mut conn), expected);
    assert_eq!(conn.state(), State::Open);
}

// ===== Fragmentation (§5.4) =================================================
// Continuations need a message to continue; a new message cannot start inside
// one; control frames may be interleaved and are handled at once.

#[test]
fn fragmentation_continuation_without_message_fails_1002() {
    assert_fails(&mut server(), &c2s(true, CONT, b"x"), 1002, ProtocolError::UnexpectedContinuation);
    assert_fails(&mut server(), &c2s(false, CONT, b"x"), 1002, ProtocolError::UnexpectedContinuation);
    // Also right after a message that ended.
    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(true, TEXT, b"done")), [text("done")]);
    assert_fails(&mut conn, &c2s(true, CONT, b"x"), 1002, ProtocolError::UnexpectedContinuation);
}

#[test]
fn fragmentation_new_data_frame_inside_fragmented_message_fails_1002() {
    for (first, second) in [(TEXT, TEXT), (TEXT, BINARY), (BINARY, BINARY), (BINARY, TEXT)] {
        let mut conn = server();
        assert_eq!(feed(&mut conn, &c2s(false, first, b"a")), []);
        assert_fails(&mut conn, &c2s(true, second, b"b"), 1002, ProtocolError::ExpectedContinuation);
    }
}

#[test]
fn fragmentation_interleaved_ping_and_pong_between_fragments() {
    let mut conn = server();
    // First fragment and a ping in one read: the ping is reported before the
    // message completes, and its pong is queued at once.
    let mut input = c2s(false, TEXT, b"Hel");
    input.extend(c2s(true, PING, b"p1"));
    assert_eq!(feed(&mut conn, &input), [ping(b"p1")]);
    assert!(conn.wants_write());
    // Something sent later goes out after the pong.
    conn.send_text("later").unwrap();
    let mut expected = s2c(true, PONG, b"p1");
    expected.extend(s2c(true, TEXT, b"later"));
    assert_eq!(output(&mut conn), expected);
    // A pong in the middle is reported (and not answered), then the rest.
    let mut input = c2s(true, PONG, b"x");
    input.extend(c2s(false, CONT, b"l"));
    input.extend(c2s(true, PING, b""));
    input.extend(c2s(true, CONT, b"o"));
    assert_eq!(feed(&mut conn, &input), [Ev::Pong(b"x".to_vec()), ping(b""), text("Hello")]);
    assert_eq!(output(&mut conn), [0x8A, 0x00]);
}

#[test]
fn fragmentation_message_in_many_frames_and_reads_is_reassembled() {
    let mut input = c2s(false, BINARY, &[1, 2]);
    input.extend(c2s(false, CONT, &[]));
    input.extend(c2s(false, CONT, &[3]));
    input.extend(c2s(true, CONT, &[4, 5, 6]));
    // Any split of the reads gives the same transcript.
    for step in [1, 2, 5, input.len()] {
        let mut conn = server();
        let mut got = Vec::new();
        for piece in input.chunks(step) {
            got.extend(feed(&mut conn, piece));
        }
        assert_eq!(got, [Ev::Binary(vec![1, 2, 3, 4, 5, 6])], "step {step}");
        assert_eq!(output(&mut conn), b"");
    }
}

// ===== Payload length encoding (§5.2) =======================================
// The 64-bit length has its top bit clear, and every length uses the shortest
// encoding.

#[test]
fn length_64bit_with_high_bit_set_fails_1002() {
    let mut bytes = vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(&KEY);
    assert_fails(&mut server(), &bytes, 1002, ProtocolError::LengthHighBit);
    let mut bytes = vec![0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
    bytes.extend_from_slice(&KEY);
    assert_fails(&mut server(), &bytes, 1002, ProtocolError::LengthHighBit);
}

#[test]
fn length_non_minimal_encodings_fail_1002() {
    let cases: [&[u8]; 5] = [
        &[0x82, 0xFE, 0x00, 0x00],                   // 0 in 16 bits
        &[0x82, 0xFE, 0x00, 0x7D],                   // 125 in 16 bits
        &[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x00, 0x05], // 5 in 64 bits
        &[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0x00, 0x7E], // 126 in 64 bits
        &[0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF], // 65535 in 64 bits
    ];
    for case in cases {
        let mut bytes = case.to_vec();
        bytes.extend_from_slice(&KEY);
        assert_fails(&mut server(), &bytes, 1002, ProtocolError::NonMinimalLength);
    }
}

#[test]
fn length_minimal_encodings_at_the_boundaries_are_accepted() {
    for len in [0usize, 125, 126, 65535, 65536] {
        let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut conn = server();
        assert_eq!(feed(&mut conn, &c2s(true, BINARY, &payload)), [Ev::Binary(payload)], "length {len}");
    }
}

// ===== UTF-8 in text messages (§8.1) ========================================
// Invalid text fails with 1007 as soon as the first impossible byte arrives,
// even mid-frame or across fragments.

#[test]
fn utf8_invalid_text_fails_1007() {
    let cases: [&[u8]; 5] = [b"\xff", b"ab\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"];
    for case in cases {
        assert_fails(&mut server(), &c2s(true, TEXT, case), 1007, ProtocolError::InvalidUtf8);
    }
}

#[test]
fn utf8_fails_fast_before_the_frame_is_complete() {
    let mut payload = vec![b'a'; 100];
    payload[10] = 0xFF;
    let bytes = c2s(true, TEXT, &payload);
    let header_len = 2 + 2 + 4;
    let mut conn = server();
    // Header and only the first 20 of 100 bytes: already failed.
    assert_fails(&mut conn, &bytes[..header_len + 20], 1007, ProtocolError::InvalidUtf8);
    // The rest changes nothing.
    assert_eq!(feed(&mut conn, &bytes[header_len + 20..]), []);
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn utf8_fails_fast_on_a_sequence_split_across_fragments() {
    // "abc" + the lead byte of a surrogate, then its (impossible) second byte.
    let first = c2s(false, TEXT, b"abc\xED");
    let second = c2s(true, CONT, b"\xA0\x80 and more");
    let mut conn = server();
    assert_eq!(feed(&mut conn, &first), []);
    // The second fragment's header and one payload byte are enough.
    assert_fails(&mut conn, &second[..6 + 1], 1007, ProtocolError::InvalidUtf8);

    // Autobahn 6.4.1's case: κόσμε, then 0xF4 0x90 (above U+10FFFF) split.
    let mut conn = server();
    let mut first = "κόσμε".as_bytes().to_vec();
    first.push(0xF4);
    assert_eq!(feed(&mut conn, &c2s(false, TEXT, &first)), []);
    let second = c2s(true, CONT, b"\x90\x80\x80edited");
    assert_fails(&mut conn, &second[..6 + 1], 1007, ProtocolError::InvalidUtf8);
}

#[test]
fn utf8_text_ending_inside_a_character_fails_1007() {
    let euro = "€".as_bytes();
    // One frame.
    assert_fails(&mut server(), &c2s(true, TEXT, &euro[..2]), 1007, ProtocolError::InvalidUtf8);
    // Fragments, the last with the truncated character.
    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(false, TEXT, b"ok")), []);
    assert_fails(&mut conn, &c2s(true, CONT, &euro[..1]), 1007, ProtocolError::InvalidUtf8);
    // Fragments, the last one empty.
    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(false, TEXT, &euro[..2])), []);
    assert_fails(&mut conn, &c2s(true, CONT, b""), 1007, ProtocolError::InvalidUtf8);
}

#[test]
fn utf8_characters_split_across_fragments_are_accepted() {
    let euro = "€".as_bytes();
    let mut input = c2s(false, TEXT, &euro[..1]);
    input.extend(c2s(true, PING, b""));
    input.extend(c2s(false, CONT, &euro[1..2]));
    input.extend(c2s(true, CONT, &euro[2..]));
    assert_eq!(feed(&mut server(), &input), [ping(b""), text("€")]);
}

// ===== Close frames (§5.5.1, §7.4) ==========================================
// A close payload is empty or a sendable code plus a UTF-8 reason; a valid
// close is echoed with the same code; nothing is processed after it.

#[test]
fn close_with_one_byte_payload_fails_1002() {
    assert_fails(&mut server(), &c2s(true, CLOSE, &[0x03]), 1002, ProtocolError::InvalidClosePayload);
}

#[test]
fn close_with_invalid_code_fails_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535] {
        let bytes = c2s(true, CLOSE, &close_payload(code, ""));
        assert_fails(&mut server(), &bytes, 1002, ProtocolError::InvalidCloseCode(code));
    }
}

#[test]
fn close_with_valid_code_is_echoed_with_the_same_code() {
    for code in [1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999] {
        let mut conn = server();
        let events = feed(&mut conn, &c2s(true, CLOSE, &close_payload(code, "bye")));
        assert_eq!(events, [close_ev(code, "bye"), closed_clean(code)], "code {code}");
        // The code is echoed, the reason is not.
        assert_eq!(output(&mut conn), [0x88, 0x02, (code >> 8) as u8, code as u8], "code {code}");
        assert_eq!(conn.state(), State::Closed);
    }
}

#[test]
fn close_reason_not_utf8_fails_1007() {
    let mut payload = close_payload(1000, "ok");
    payload.push(0xFF);
    assert_fails(&mut server(), &c2s(true, CLOSE, &payload), 1007, ProtocolError::InvalidUtf8);
}

#[test]
fn close_empty_payload_is_echoed_empty_and_reports_1005() {
    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(true, CLOSE, b"")), [close_ev(1005, ""), closed_clean(1005)]);
    assert_eq!(output(&mut conn), [0x88, 0x00]);
    assert!(conn.is_finished());
}

#[test]
fn close_later_bytes_produce_nothing() {
    // In the same read as the close, valid or not.
    let mut input = c2s(true, CLOSE, &close_payload(1000, ""));
    input.extend(c2s(true, TEXT, b"after"));
    input.extend(c2s(true, PING, b"after"));
    input.extend(s2c(true, TEXT, b"unmasked"));
    let mut conn = server();
    assert_eq!(feed(&mut conn, &input), [close_ev(1000, ""), closed_clean(1000)]);
    assert_eq!(output(&mut conn), server_close(1000, ""));
    // And in later reads.
    assert_eq!(feed(&mut conn, &c2s(true, PING, b"later")), []);
    assert_eq!(feed(&mut conn, &[0xFF; 64]), []);
    assert_eq!(output(&mut conn), b"");
    assert_eq!(conn.state(), State::Closed);
}

#[test]
fn close_client_echo_is_masked() {
    let mut conn = client();
    let events = feed(&mut conn, &s2c(true, CLOSE, &close_payload(1001, "going")));
    assert_eq!(events, [close_ev(1001, "going"), closed_clean(1001)]);
    assert_eq!(decode_frames(&output(&mut conn)), [Sent::new(true, CLOSE, true, &close_payload(1001, ""))]);
}

// ===== Limits (Config) ======================================================
// Sizes are checked from frame headers, before any payload is buffered.

#[test]
fn limits_frame_over_max_frame_size_fails_1009_from_the_header_alone() {
    let mut conn = server_with(config(|c| c.max_frame_size = 16));
    // Exactly the limit is fine.
    assert_eq!(feed(&mut conn, &c2s(true, BINARY, &[7; 16])), [Ev::Binary(vec![7; 16])]);
    // One more: only the header is fed.
    let head = header(true, 0, BINARY, Some(KEY), 17);
    assert_fails(&mut conn, &head, 1009, ProtocolError::FrameTooLarge);

    // With the defaults (16 MiB), a header claiming 1 GiB fails the same way.
    let head = header(true, 0, TEXT, Some(KEY), 1 << 30);
    assert_fails(&mut server(), &head, 1009, ProtocolError::FrameTooLarge);
    // Also as a continuation.
    let mut conn = server_with(config(|c| c.max_frame_size = 16));
    assert_eq!(feed(&mut conn, &c2s(false, TEXT, b"a")), []);
    assert_fails(&mut conn, &header(true, 0, CONT, Some(KEY), 17), 1009, ProtocolError::FrameTooLarge);
}

#[test]
fn limits_message_over_max_message_size_across_fragments_fails_1009() {
    let mut conn = server_with(config(|c| c.max_message_size = 10));
    // 10 bytes in two fragments are fine.
    let mut input = c2s(false, BINARY, &[1; 6]);
    input.extend(c2s(true, CONT, &[2; 4]));
    assert_eq!(feed(&mut conn, &input), [Ev::Binary(vec![1, 1, 1, 1, 1, 1, 2, 2, 2, 2])]);
    // 6 + 5 fail when the second header arrives.
    assert_eq!(feed(&mut conn, &c2s(false, TEXT, b"abcdef")), []);
    assert_fails(&mut conn, &header(true, 0, CONT, Some(KEY), 5), 1009, ProtocolError::MessageTooLarge);
}

#[test]
fn limits_more_fragments_than_max_fragments_fails_1009() {
    let mut conn = server_with(config(|c| c.max_fragments = 3));
    // Three fragments are fine.
    let mut input = c2s(false, TEXT, b"a");
    input.extend(c2s(false, CONT, b"b"));
    input.extend(c2s(true, CONT, b"c"));
    assert_eq!(feed(&mut conn, &input), [text("abc")]);
    // A fourth fails, even an empty one.
    let mut input = c2s(false, TEXT, b"a");
    input.extend(c2s(false, CONT, b""));
    input.extend(c2s(false, CONT, b""));
    assert_eq!(feed(&mut conn, &input), []);
    assert_fails(&mut conn, &c2s(false, CONT, b""), 1009, ProtocolError::TooManyFragments);
}

// ===== Ping auto-reply (§5.5.2, §5.5.3) =====================================
// A ping is answered with a pong carrying the same payload, unless a close was
// already sent; pongs are reported, never answered.

#[test]
fn ping_server_answers_with_same_payload() {
    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(true, PING, b"Hello")), [ping(b"Hello")]);
    // RFC 6455 §5.7's unmasked pong.
    assert_eq!(output(&mut conn), [0x8A, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!(feed(&mut conn, &c2s(true, PING, b"")), [ping(b"")]);
    assert_eq!(output(&mut conn), [0x8A, 0x00]);
}

#[test]
fn ping_client_answers_with_masked_pong() {
    let mut conn = client();
    assert_eq!(feed(&mut conn, &s2c(true, PING, b"Hello")), [ping(b"Hello")]);
    let wire = output(&mut conn);
    assert_eq!(wire[..2], [0x8A, 0x85]);
    assert_eq!(decode_frames(&wire), [Sent::new(true, PONG, true, b"Hello")]);
}

#[test]
fn ping_pong_is_reported_not_answered() {
    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(true, PONG, b"beat")), [Ev::Pong(b"beat".to_vec())]);
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn ping_after_we_sent_close_is_not_answered() {
    let mut conn = server();
    conn.close(NOW, CloseCode::NORMAL, "").unwrap();
    assert_eq!(output(&mut conn), server_close(1000, ""));
    assert_eq!(feed(&mut conn, &c2s(true, PING, b"x")), [ping(b"x")]);
    assert_eq!(output(&mut conn), b"");
    assert_eq!(conn.state(), State::Closing);
}

// ===== Closing handshake (§7.1) =============================================
// Whoever closes first, each side sends one close frame; data keeps flowing
// to us until the peer's close arrives.

#[test]
fn closing_we_close_first() {
    let mut conn = server();
    conn.close(NOW, CloseCode::NORMAL, "done").unwrap();
    assert_eq!(conn.state(), State::Closing);
    assert_eq!(output(&mut conn), server_close(1000, "done"));
    // The peer's data is still delivered.
    let mut input = c2s(true, TEXT, b"still");
    input.extend(c2s(false, BINARY, &[1]));
    input.extend(c2s(true, CONT, &[2]));
    assert_eq!(feed(&mut conn, &input), [text("still"), Ev::Binary(vec![1, 2])]);
    assert_eq!(conn.state(), State::Closing);
    // Its close finishes the handshake; no second close frame is sent.
    let events = feed(&mut conn, &c2s(true, CLOSE, &close_payload(1000, "ack")));
    assert_eq!(events, [close_ev(1000, "ack"), closed_clean(1000)]);
    assert_eq!(output(&mut conn), b"");
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.is_finished());
}

#[test]
fn closing_peer_closes_first() {
    let mut conn = server();
    let events = feed(&mut conn, &c2s(true, CLOSE, &close_payload(1001, "bye")));
    assert_eq!(events, [close_ev(1001, "bye"), closed_clean(1001)]);
    assert_eq!(output(&mut conn), server_close(1001, ""));
    assert_eq!(conn.state(), State::Closed);
    assert_eq!(conn.close(NOW, CloseCode::NORMAL, ""), Err(Error::Usage(UsageError::Closing)));
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn closing_protocol_error_while_closing_sends_no_second_close() {
    let mut conn = server();
    conn.close(NOW, CloseCode::NORMAL, "").unwrap();
    assert_eq!(output(&mut conn), server_close(1000, ""));
    let events = feed(&mut conn, &s2c(true, TEXT, b"unmasked"));
    assert_eq!(events, [closed_failed(1002, ProtocolError::UnmaskedFrame)]);
    assert_eq!(output(&mut conn), b"");
}

// ===== End of input (§7.1.5) ================================================
// The transport ending early is 1006, which is reported and never sent.

#[test]
fn eof_mid_frame_is_1006_and_sends_nothing() {
    let mut conn = server();
    let bytes = c2s(true, TEXT, b"Hello");
    assert_eq!(feed(&mut conn, &bytes[..8]), []);
    conn.handle_eof();
    assert_eq!(events(&mut conn), [closed_failed(1006, Error::ConnectionLost)]);
    assert_eq!(output(&mut conn), b"");
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.is_finished());
}

#[test]
fn eof_mid_fragmented_message_and_between_frames_is_1006() {
    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(false, TEXT, b"Hel")), []);
    conn.handle_eof();
    assert_eq!(events(&mut conn), [closed_failed(1006, Error::ConnectionLost)]);
    assert_eq!(output(&mut conn), b"");

    let mut conn = server();
    assert_eq!(feed(&mut conn, &c2s(true, TEXT, b"whole")), [text("whole")]);
    conn.handle_eof();
    assert_eq!(events(&mut conn), [closed_failed(1006, Error::ConnectionLost)]);
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn eof_after_our_close_is_1006() {
    let mut conn = server();
    conn.close(NOW, CloseCode::NORMAL, "").unwrap();
    output(&mut conn);
    conn.handle_eof();
    assert_eq!(events(&mut conn), [closed_failed(1006, Error::ConnectionLost)]);
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn eof_mid_handshake_server_is_1006_and_sends_no_response() {
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    assert_eq!(feed(&mut conn, &RFC_REQUEST.as_bytes()[..40]), []);
    conn.handle_eof();
    assert_eq!(events(&mut conn), [closed_failed(1006, HandshakeError::Incomplete)]);
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn eof_mid_handshake_client_is_1006() {
    let (mut conn, _) = client_handshake();
    assert_eq!(feed(&mut conn, b"HTTP/1.1 101 Switching"), []);
    conn.handle_eof();
    assert_eq!(events(&mut conn), [closed_failed(1006, HandshakeError::Incomplete)]);
    assert_eq!(output(&mut conn), b"");
}

// ===== Streaming mode (Config::streaming) ===================================
// Data is handed out as it arrives, without waiting for whole messages.

/// The chunks' data joined, checking that only the last one has `fin`.
fn join_chunks(events: &[Ev]) -> Vec<u8> {
    let chunks: Vec<_> = events.iter().filter(|e| matches!(e, Ev::Chunk(..))).collect();
    let mut data = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let Ev::Chunk(_, piece, fin) = chunk else { unreachable!() };
        assert_eq!(*fin, i == chunks.len() - 1, "only the last chunk has fin: {events:?}");
        data.extend_from_slice(piece);
    }
    data
}

#[test]
fn streaming_message_in_pieces_yields_chunks_that_join_to_the_message() {
    let mut input = c2s(false, TEXT, "Hello, ".as_bytes());
    input.extend(c2s(true, PING, b"p"));
    input.extend(c2s(true, CONT, "wörld".as_bytes()));
    for step in [1, 3, 5, input.len()] {
        let mut conn = server_with(config(|c| c.streaming = true));
        let mut got = Vec::new();
        for piece in input.chunks(step) {
            got.extend(feed(&mut conn, piece));
        }
        assert_eq!(join_chunks(&got), "Hello, wörld".as_bytes(), "step {step}");
        assert!(got.iter().all(|e| matches!(e, Ev::Chunk(MessageKind::Text, ..) | Ev::Ping(_))), "{got:?}");
        // The ping arrives between the two fragments' chunks; the chunks
        // before it are the first fragment, none of them final.
        let at = got.iter().position(|e| *e == ping(b"p")).unwrap();
        let before: Vec<u8> = got[..at]
            .iter()
            .flat_map(|e| match e {
                Ev::Chunk(_, data, false) => data.clone(),
                other => panic!("before the ping: {other:?}"),
            })
            .collect();
        assert_eq!(before, "Hello, ".as_bytes(), "step {step}");
        assert_eq!(join_chunks(&got[at + 1..]), "wörld".as_bytes(), "step {step}");
        assert_eq!(output(&mut conn), s2c(true, PONG, b"p"));
    }
}

#[test]
fn streaming_frame_fed_one_byte_at_a_time_yields_a_chunk_per_byte() {
    let payload = "héllo".as_bytes();
    let bytes = c2s(true, TEXT, payload);
    let header_len = bytes.len() - payload.len();
    let mut conn = server_with(config(|c| c.streaming = true));
    for (i, byte) in bytes.iter().enumerate() {
        let got = feed(&mut conn, &[*byte]);
        if i < header_len {
            assert_eq!(got, [], "header byte {i}");
        } else {
            let at = i - header_len;
            let last = at == payload.len() - 1;
            assert_eq!(got, [Ev::Chunk(MessageKind::Text, vec![payload[at]], last)], "payload byte {at}");
        }
    }
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn streaming_binary_in_one_read_is_one_chunk() {
    let mut conn = server_with(config(|c| c.streaming = true));
    assert_eq!(feed(&mut conn, &c2s(true, BINARY, &[1, 2, 3])), [Ev::Chunk(MessageKind::Binary, vec![1, 2, 3], true)]);
    // An empty message is one empty final chunk.
    assert_eq!(feed(&mut conn, &c2s(true, BINARY, &[])), [Ev::Chunk(MessageKind::Binary, vec![], true)]);
}

// ===== Opening handshake, server side (§4.2) ================================
// A valid request is shown to the application, which accepts or rejects it;
// a bad one gets a complete HTTP error response with the matching status.

#[test]
fn handshake_server_accepts_rfc_example() {
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    assert_eq!(conn.state(), State::Handshake);
    let request = Ev::Request { path: "/chat".into(), protocols: vec!["chat".into(), "superchat".into()] };
    assert_eq!(feed(&mut conn, RFC_REQUEST.as_bytes()), [request]);
    // Nothing is sent until the application decides.
    assert_eq!(output(&mut conn), b"");
    assert_eq!(conn.state(), State::Handshake);
    conn.accept(&Accept::new()).unwrap();
    assert_eq!(String::from_utf8(output(&mut conn)).unwrap(), RFC_RESPONSE);
    assert_eq!(conn.state(), State::Open);
    assert_eq!(conn.protocol(), None);
    assert_eq!(conn.accept(&Accept::new()), Err(Error::Usage(UsageError::NoPendingRequest)));
}

#[test]
fn handshake_server_accepts_with_subprotocol() {
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    assert_eq!(feed(&mut conn, RFC_REQUEST.as_bytes()).len(), 1);
    // A protocol the client did not offer is refused, and nothing is queued.
    assert_eq!(conn.accept(&Accept::new().protocol("other")), Err(Error::Usage(UsageError::UnofferedProtocol)));
    assert_eq!(output(&mut conn), b"");
    conn.accept(&Accept::new().protocol("chat")).unwrap();
    let expected = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n";
    assert_eq!(String::from_utf8(output(&mut conn)).unwrap(), expected);
    assert_eq!(conn.protocol(), Some("chat"));
}

#[test]
fn handshake_server_reject_sends_response_then_closes() {
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    assert_eq!(feed(&mut conn, RFC_REQUEST.as_bytes()).len(), 1);
    conn.reject(&Reject::new(403).body(b"forbidden\n")).unwrap();
    let (status, fields, body) = parse_http(&output(&mut conn));
    assert_eq!(status, "HTTP/1.1 403 Forbidden");
    assert_eq!(field(&fields, "Content-Length"), Some("10"));
    assert_eq!(body, b"forbidden\n");
    assert_eq!(events(&mut conn), [closed_failed(1006, HandshakeError::Rejected(403))]);
    assert_eq!(conn.state(), State::Closed);
    // A lingering close: half-close, read until the client closes too.
    assert!(conn.wants_shutdown() && !conn.is_finished());
    conn.handle_eof();
    assert!(conn.is_finished());
}

#[test]
fn handshake_server_bad_requests_get_their_status() {
    let cases: &[(&str, &str, HandshakeError, &str)] = &[
        ("GET /chat", "POST /chat", HandshakeError::MethodNotAllowed, "HTTP/1.1 405 Method Not Allowed"),
        ("HTTP/1.1\r\n", "HTTP/1.0\r\n", HandshakeError::HttpVersion, "HTTP/1.1 400 Bad Request"),
        ("Host: server.example.com\r\n", "", HandshakeError::Host, "HTTP/1.1 400 Bad Request"),
        ("Upgrade: websocket\r\n", "", HandshakeError::Upgrade, "HTTP/1.1 400 Bad Request"),
        ("Connection: Upgrade\r\n", "", HandshakeError::Connection, "HTTP/1.1 400 Bad Request"),
        ("Connection: Upgrade", "Connection: keep-alive", HandshakeError::Connection, "HTTP/1.1 400 Bad Request"),
        ("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZQ==", HandshakeError::Key, "HTTP/1.1 400 Bad Request"),
        (
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Version: 8",
            HandshakeError::UnsupportedVersion,
            "HTTP/1.1 426 Upgrade Required",
        ),
    ];
    for (from, to, error, status_line) in cases {
        assert!(RFC_REQUEST.contains(from), "{from}");
        let request = RFC_REQUEST.replacen(from, to, 1);
        let mut conn = Connection::server(Config::default(), NOW).unwrap();
        assert_eq!(feed(&mut conn, request.as_bytes()), [closed_failed(1006, *error)], "{request}");
        let (status, fields, _) = parse_http(&output(&mut conn));
        assert_eq!(status, *status_line, "{request}");
        // A 426 names the protocol to upgrade to, with the `upgrade` option
        // that Upgrade requires (RFC 9110 §7.8), and still closes.
        let upgrade_required = *error == HandshakeError::UnsupportedVersion;
        let connection = if upgrade_required { "close, upgrade" } else { "close" };
        assert_eq!(field(&fields, "Connection"), Some(connection), "{request}");
        assert_eq!(field(&fields, "Upgrade"), upgrade_required.then_some("websocket"), "{request}");
        let version = field(&fields, "Sec-WebSocket-Version");
        assert_eq!(version, upgrade_required.then_some("13"), "{request}");
        assert!(conn.wants_shutdown() && !conn.is_finished(), "lingers until the client closes");
        conn.handle_eof();
        assert!(conn.is_finished());
    }
}

#[test]
fn handshake_server_head_over_max_handshake_size_gets_431() {
    // A whole request over the limit.
    let mut conn = Connection::server(config(|c| c.max_handshake_size = 64), NOW).unwrap();
    assert_eq!(feed(&mut conn, RFC_REQUEST.as_bytes()), [closed_failed(1006, HandshakeError::TooLarge)]);
    let (status, _, _) = parse_http(&output(&mut conn));
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
    // A head that never ends fails as soon as it passes the limit.
    let mut conn = Connection::server(config(|c| c.max_handshake_size = 64), NOW).unwrap();
    assert_eq!(feed(&mut conn, &RFC_REQUEST.as_bytes()[..64]), []);
    assert_eq!(feed(&mut conn, &RFC_REQUEST.as_bytes()[64..65]), [closed_failed(1006, HandshakeError::TooLarge)]);
    let (status, _, _) = parse_http(&output(&mut conn));
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[test]
fn handshake_server_too_many_headers_gets_431() {
    let mut conn = Connection::server(config(|c| c.max_headers = 4), NOW).unwrap();
    assert_eq!(feed(&mut conn, RFC_REQUEST.as_bytes()), [closed_failed(1006, HandshakeError::TooManyHeaders)]);
    let (status, _, _) = parse_http(&output(&mut conn));
    assert_eq!(status, "HTTP/1.1 431 Request Header Fields Too Large");
}

#[test]
fn handshake_server_frames_pipelined_after_request_are_processed_after_accept() {
    let mut input = RFC_REQUEST.as_bytes().to_vec();
    input.extend(c2s(true, TEXT, b"hi"));
    input.extend(c2s(true, PING, b"p"));
    input.extend(c2s(false, BINARY, &[1]));
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    assert_eq!(feed(&mut conn, &input).len(), 1);
    // Nothing happens until the request is answered.
    assert_eq!(events(&mut conn), []);
    assert_eq!(output(&mut conn), b"");
    conn.accept(&Accept::new()).unwrap();
    assert_eq!(events(&mut conn), [text("hi"), ping(b"p")]);
    let mut expected = RFC_RESPONSE.as_bytes().to_vec();
    expected.extend(s2c(true, PONG, b"p"));
    assert_eq!(output(&mut conn), expected);
    // The fragment was kept too.
    assert_eq!(feed(&mut conn, &c2s(true, CONT, &[2])), [Ev::Binary(vec![1, 2])]);
}

#[test]
fn handshake_server_accepted_connection_speaks_frames() {
    let mut conn = accepted_server();
    assert_fails(&mut conn, &s2c(true, TEXT, b"x"), 1002, ProtocolError::UnmaskedFrame);
}

#[test]
fn handshake_server_request_fed_one_byte_at_a_time() {
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    let (last, head) = RFC_REQUEST.as_bytes().split_last().unwrap();
    for byte in head {
        assert_eq!(feed(&mut conn, &[*byte]), []);
    }
    assert_eq!(feed(&mut conn, &[*last]).len(), 1, "the request is complete with its last byte");
    conn.accept(&Accept::new()).unwrap();
    assert_eq!(String::from_utf8(output(&mut conn)).unwrap(), RFC_RESPONSE);
}

// ===== Opening handshake, client side (§4.1) ================================
// The request follows the URL; the response must be a 101 derived from our
// key that picks nothing we did not offer.

#[test]
fn handshake_client_sends_request_and_connects() {
    let (mut conn, request) = client_handshake();
    assert_eq!(conn.state(), State::Handshake);
    let key = request_key(&request);
    assert_eq!(key.len(), 24, "16 bytes in base64");
    assert!(key.ends_with("=="));
    let expected = format!(
        "GET /p?q HTTP/1.1\r\nHost: host:1234\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
    );
    assert_eq!(request, expected);
    let response = response_101(&key, "Sec-WebSocket-Protocol: chat\r\n");
    let connected = Ev::Connected { status: 101, protocol: Some("chat".into()) };
    assert_eq!(feed(&mut conn, response.as_bytes()), [connected]);
    assert_eq!(conn.state(), State::Open);
    assert_eq!(conn.protocol(), Some("chat"));
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn handshake_client_frame_pipelined_after_101_is_delivered() {
    let (mut conn, request) = client_handshake();
    let mut input = response_101(&request_key(&request), "").into_bytes();
    input.extend(s2c(true, TEXT, b"welcome"));
    input.extend(s2c(true, PING, b"p"));
    let events = feed(&mut conn, &input);
    assert_eq!(events, [Ev::Connected { status: 101, protocol: None }, text("welcome"), ping(b"p")]);
    assert_eq!(conn.protocol(), None);
    assert_eq!(decode_frames(&output(&mut conn)), [Sent::new(true, PONG, true, b"p")]);
}

#[test]
fn handshake_client_response_and_frame_fed_one_byte_at_a_time() {
    let (mut conn, request) = client_handshake();
    let response = response_101(&request_key(&request), "");
    let mut input = response.clone().into_bytes();
    input.extend(s2c(true, TEXT, b"hi"));
    let mut got = Vec::new();
    for (i, byte) in input.iter().enumerate() {
        let events = feed(&mut conn, &[*byte]);
        if !events.is_empty() {
            got.push((i, events));
        }
    }
    let connected = Ev::Connected { status: 101, protocol: None };
    assert_eq!(got, [(response.len() - 1, vec![connected]), (input.len() - 1, vec![text("hi")])]);
}

#[test]
fn handshake_client_wrong_accept_fails() {
    let (mut conn, _) = client_handshake();
    let response = response_101("dGhlIHNhbXBsZSBub25jZQ==", "");
    assert_eq!(feed(&mut conn, response.as_bytes()), [closed_failed(1006, HandshakeError::Accept)]);
    assert_eq!(output(&mut conn), b"");
    assert_eq!(conn.state(), State::Closed);
}

#[test]
fn handshake_client_non_101_status_fails() {
    let (mut conn, _) = client_handshake();
    let response = "HTTP/1.1 403 Forbidden\r\nContent-Length: 4\r\n\r\nnope";
    assert_eq!(
        feed(&mut conn, response.as_bytes()),
        [Ev::Rejected { status: 403, body: b"nope".to_vec() }, closed_failed(1006, HandshakeError::Status(403))]
    );
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn handshake_client_refusal_keeps_status_headers_and_body_split_anywhere() {
    let response = "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 11\r\n\r\ntry later\r\n";
    for cut in 0..=response.len() {
        let (mut conn, _) = client_handshake();
        let mut events = feed(&mut conn, &response.as_bytes()[..cut]);
        events.extend(feed(&mut conn, &response.as_bytes()[cut..]));
        assert_eq!(
            events,
            [
                Ev::Rejected { status: 429, body: b"try later\r\n".to_vec() },
                closed_failed(1006, HandshakeError::Status(429))
            ],
            "cut {cut}"
        );
    }
    // The headers are kept too; a body cut short by EOF is handed out as it is.
    let (mut conn, _) = client_handshake();
    assert_eq!(feed(&mut conn, &response.as_bytes()[..response.len() - 4]), []);
    conn.handle_eof();
    match conn.poll_event() {
        Some(Event::Rejected(r)) => {
            assert_eq!(r.header("retry-after"), Some(&b"30"[..]));
            assert_eq!(r.body(), b"try lat");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(events(&mut conn), [closed_failed(1006, HandshakeError::Status(429))]);
}

#[test]
fn handshake_client_unoffered_protocol_fails() {
    let (mut conn, request) = client_handshake();
    let response = response_101(&request_key(&request), "Sec-WebSocket-Protocol: superchat\r\n");
    assert_eq!(feed(&mut conn, response.as_bytes()), [closed_failed(1006, HandshakeError::Protocol)]);
    assert_eq!(output(&mut conn), b"");
    assert_eq!(conn.protocol(), None);
}

// ===== Sending ==============================================================
// Messages are split at max_send_frame_size, streamed messages may carry
// control frames between pieces, and misuse is refused with nothing queued.

#[test]
fn sending_large_binary_is_split_into_frames() {
    const MIB: usize = 1 << 20;
    let data: Vec<u8> = (0..3 * MIB).map(|i| (i % 251) as u8).collect();
    let mut conn = server_with(config(|c| c.max_send_frame_size = MIB));
    conn.send_binary(&data).unwrap();
    let wire = output(&mut conn);
    assert_eq!(wire[..10], [0x02, 0x7F, 0, 0, 0, 0, 0, 0x10, 0, 0]);
    let frames = decode_frames(&wire);
    let shape: Vec<_> = frames.iter().map(|f| (f.fin, f.opcode, f.masked, f.payload.len())).collect();
    assert_eq!(shape, [(false, BINARY, false, MIB), (false, CONT, false, MIB), (true, CONT, false, MIB)]);
    assert_eq!(frames.into_iter().flat_map(|f| f.payload).collect::<Vec<_>>(), data);
}

#[test]
fn sending_chunks_with_control_frames_in_between() {
    let euro = "€".as_bytes();
    let mut conn = server();
    conn.send_chunk(MessageKind::Text, b"he", false).unwrap();
    conn.send_ping(b"p").unwrap();
    // A chunk may end inside a character.
    conn.send_chunk(MessageKind::Text, &[b"llo ", &euro[..1]].concat(), false).unwrap();
    assert_eq!(conn.send_chunk(MessageKind::Binary, b"x", false), Err(Error::Usage(UsageError::KindMismatch)));
    conn.send_pong(b"q").unwrap();
    conn.send_chunk(MessageKind::Text, &euro[1..], true).unwrap();
    let wire = output(&mut conn);
    assert_eq!(
        decode_frames(&wire),
        [
            Sent::new(false, TEXT, false, b"he"),
            Sent::new(true, PING, false, b"p"),
            Sent::new(false, CONT, false, &[b"llo ", &euro[..1]].concat()),
            Sent::new(true, PONG, false, b"q"),
            Sent::new(true, CONT, false, &euro[1..]),
        ]
    );
    // A client receiving it sees the control frames first, then the message.
    let mut peer = client();
    assert_eq!(feed(&mut peer, &wire), [ping(b"p"), Ev::Pong(b"q".to_vec()), text("hello €")]);
    // The message is over: whole messages can be sent again.
    conn.send_text("next").unwrap();
    assert_eq!(output(&mut conn), s2c(true, TEXT, b"next"));
}

#[test]
fn sending_before_handshake_is_not_open() {
    let not_open = Err(Error::Usage(UsageError::NotOpen));
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    assert_eq!(conn.send_text("x"), not_open);
    assert_eq!(conn.send_binary(b"x"), not_open);
    assert_eq!(conn.send_chunk(MessageKind::Binary, b"x", true), not_open);
    assert_eq!(conn.send_ping(b"x"), not_open);
    assert_eq!(conn.close(NOW, CloseCode::NORMAL, ""), not_open);
    assert_eq!(output(&mut conn), b"");
    // A client waiting for its 101 has only its request to send.
    let (mut conn, _) = client_handshake();
    assert_eq!(conn.send_text("x"), not_open);
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn sending_after_close_is_closing() {
    let closing = Err(Error::Usage(UsageError::Closing));
    let mut conn = server();
    conn.close(NOW, CloseCode::NORMAL, "").unwrap();
    output(&mut conn);
    assert_eq!(conn.send_text("x"), closing);
    assert_eq!(conn.send_binary(b"x"), closing);
    assert_eq!(conn.send_chunk(MessageKind::Text, b"x", true), closing);
    assert_eq!(conn.send_ping(b"x"), closing);
    assert_eq!(conn.send_pong(b"x"), closing);
    assert_eq!(conn.close(NOW, CloseCode::NORMAL, ""), closing);
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn sending_control_payload_over_125_is_refused() {
    let mut conn = server();
    let too_long = Err(Error::Usage(UsageError::ControlPayloadTooLong));
    assert_eq!(conn.send_ping(&[0; 126]), too_long);
    assert_eq!(conn.send_pong(&[0; 126]), too_long);
    assert_eq!(conn.close(NOW, CloseCode::NORMAL, &"r".repeat(124)), Err(Error::Usage(UsageError::CloseReasonTooLong)));
    assert_eq!(output(&mut conn), b"");
    conn.send_ping(&[0; 125]).unwrap();
    assert_eq!(output(&mut conn), s2c(true, PING, &[0; 125]));
}

#[test]
fn sending_close_with_unsendable_code_is_refused() {
    let mut conn = server();
    for code in [0u16, 999, 1004, 1006, 1015, 1016, 2999, 5000] {
        let result = conn.close(NOW, CloseCode(code), "");
        assert_eq!(result, Err(Error::Usage(UsageError::InvalidCloseCode(code))), "code {code}");
    }
    assert_eq!(output(&mut conn), b"");
    assert_eq!(conn.state(), State::Open);
    // 1005 is never put on the wire either: it means "send no code", which
    // sends an empty close frame, and so cannot carry a reason.
    let result = conn.close(NOW, CloseCode::NO_STATUS, "why");
    assert_eq!(result, Err(Error::Usage(UsageError::CloseReasonTooLong)));
    assert_eq!(output(&mut conn), b"");
    conn.close(NOW, CloseCode::NO_STATUS, "").unwrap();
    assert_eq!(output(&mut conn), [0x88, 0x00]);
}

#[test]
fn sending_whole_message_during_chunked_message_is_refused() {
    let mut conn = server();
    conn.send_chunk(MessageKind::Binary, b"a", false).unwrap();
    let in_progress = Err(Error::Usage(UsageError::MessageInProgress));
    assert_eq!(conn.send_text("b"), in_progress);
    assert_eq!(conn.send_binary(b"b"), in_progress);
    assert_eq!(conn.send(Message::Binary(b"b")), in_progress);
    conn.send_chunk(MessageKind::Binary, b"c", true).unwrap();
    conn.send_text("d").unwrap();
    assert_eq!(
        decode_frames(&output(&mut conn)),
        [Sent::new(false, BINARY, false, b"a"), Sent::new(true, CONT, false, b"c"), Sent::new(true, TEXT, false, b"d")]
    );
}

#[test]
fn sending_invalid_utf8_text_chunk_is_refused() {
    let invalid = Err(Error::Usage(UsageError::InvalidUtf8));
    let mut conn = server();
    assert_eq!(conn.send_chunk(MessageKind::Text, b"\xFF", false), invalid);
    // Ending the message inside a character.
    assert_eq!(conn.send_chunk(MessageKind::Text, b"\xE2\x82", true), invalid);
    assert_eq!(output(&mut conn), b"");
    // A refused chunk leaves the message as it was.
    conn.send_chunk(MessageKind::Text, b"a\xE2", false).unwrap();
    assert_eq!(conn.send_chunk(MessageKind::Text, b"\x82x", false), invalid);
    assert_eq!(conn.send_chunk(MessageKind::Text, b"\x82", true), invalid);
    conn.send_chunk(MessageKind::Text, b"\x82\xAC", true).unwrap();
    assert_eq!(
        decode_frames(&output(&mut conn)),
        [Sent::new(false, TEXT, false, b"a\xE2"), Sent::new(true, CONT, false, b"\x82\xAC")]
    );
}

#[test]
fn sending_with_buffer_at_high_water_is_write_buffer_full() {
    let mut conn = server_with(config(|c| c.write_buffer_high_water = 16));
    conn.send_binary(&[0; 20]).unwrap();
    assert_eq!(conn.buffered_amount(), 22);
    assert!(!conn.is_writable());
    let full = Err(Error::WriteBufferFull);
    assert_eq!(conn.send_text("x"), full);
    assert_eq!(conn.send_binary(b"x"), full);
    assert_eq!(conn.send_chunk(MessageKind::Binary, b"x", true), full);
    assert_eq!(conn.send_ping(b"x"), full);
    assert_eq!(conn.send_pong(b"x"), full);
    // Nothing was queued by the failed calls.
    assert_eq!(conn.buffered_amount(), 22);
    // Transmitting part of it brings the buffer under the mark.
    let n = conn.poll_transmit().len();
    assert_eq!(n, 22);
    conn.advance_transmit(7);
    assert_eq!(conn.buffered_amount(), 15);
    conn.send_text("x").unwrap();
    let mut expected = s2c(true, BINARY, &[0; 20])[7..].to_vec();
    expected.extend(s2c(true, TEXT, b"x"));
    assert_eq!(output(&mut conn), expected);
}

// ===== Automatic pongs ========================================================
// A ping's pong is owed and goes out at the next frame boundary, ahead of
// data queued but not yet started. A peer that pings without reading cannot
// grow memory: at most `max_queued_pongs` wait, the newest replacing the last.

#[test]
fn owed_pongs_are_bounded_and_answer_the_latest_ping() {
    let mut conn = server_with(config(|c| c.write_buffer_high_water = 1));
    conn.send_binary(b"data").unwrap();
    let buffered = conn.buffered_amount();
    assert_eq!(buffered, 6);
    for i in 0..1000u32 {
        assert_eq!(feed(&mut conn, &c2s(true, PING, &i.to_be_bytes())), [ping(&i.to_be_bytes())]);
        assert_eq!(conn.buffered_amount(), buffered, "after ping {i}: owed pongs are not queued data");
    }
    assert!(conn.wants_write());
    // The first 15 pings each got a pong, the 16th slot answers the latest.
    let limit = Config::default().max_queued_pongs as u32;
    let mut expected: Vec<Sent> = (0..limit - 1).map(|i| Sent::new(true, PONG, false, &i.to_be_bytes())).collect();
    expected.push(Sent::new(true, PONG, false, &999u32.to_be_bytes()));
    expected.push(Sent::new(true, BINARY, false, b"data"));
    assert_eq!(decode_frames(&output(&mut conn)), expected);
    assert!(!conn.wants_write());
}

#[test]
fn owed_pongs_from_one_read_keep_only_the_latest_with_a_queue_of_one() {
    let mut conn = server_with(config(|c| c.max_queued_pongs = 1));
    let mut input = Vec::new();
    for i in 0..1000u32 {
        input.extend(c2s(true, PING, &i.to_be_bytes()));
    }
    assert_eq!(feed(&mut conn, &input).len(), 1000);
    assert_eq!(conn.buffered_amount(), 0);
    assert_eq!(decode_frames(&output(&mut conn)), [Sent::new(true, PONG, false, &999u32.to_be_bytes())]);
    assert_eq!(output(&mut conn), b"");
}

#[test]
fn owed_pong_goes_out_at_the_next_frame_boundary() {
    // Queued but not started: the pong goes first.
    let mut conn = server();
    conn.send_binary(&[1; 8]).unwrap();
    assert_eq!(feed(&mut conn, &c2s(true, PING, b"p")), [ping(b"p")]);
    assert_eq!(
        decode_frames(&output(&mut conn)),
        [Sent::new(true, PONG, false, b"p"), Sent::new(true, BINARY, false, &[1; 8])]
    );
    // A frame already partly transmitted is finished first.
    conn.send_binary(&[2; 8]).unwrap();
    let first = conn.poll_transmit().to_vec();
    conn.advance_transmit(3);
    assert_eq!(feed(&mut conn, &c2s(true, PING, b"q")), [ping(b"q")]);
    conn.send_binary(&[3; 8]).unwrap();
    let mut wire = first[..3].to_vec();
    wire.extend(output(&mut conn));
    assert_eq!(
        decode_frames(&wire),
        [
            Sent::new(true, BINARY, false, &[2; 8]),
            Sent::new(true, PONG, false, b"q"),
            Sent::new(true, BINARY, false, &[3; 8]),
        ]
    );
}

#[test]
fn backpressure_held_back_pong_is_sent_before_our_close() {
    let mut conn = server_with(config(|c| c.write_buffer_high_water = 1));
    conn.send_binary(b"d").unwrap();
    assert_eq!(feed(&mut conn, &c2s(true, PING, b"p")), [ping(b"p")]);
    // The ping arrived before any close, so it must be answered (§5.5.2);
    // the pong can still go out ahead of our close frame.
    conn.close(NOW, CloseCode::NORMAL, "").unwrap();
    let mut wire = Vec::new();
    conn.transmit_into(&mut wire);
    conn.transmit_into(&mut wire);
    assert_eq!(
        decode_frames(&wire),
        [
            Sent::new(true, PONG, false, b"p"),
            Sent::new(true, BINARY, false, b"d"),
            Sent::new(true, CLOSE, false, &close_payload(1000, "")),
        ]
    );
}

#[test]
fn backpressure_zero_high_water_is_refused_or_still_answers_pings() {
    let result = Connection::frames_only(Role::Server, config(|c| c.write_buffer_high_water = 0), NOW);
    let Ok(mut conn) = result else {
        assert!(matches!(result, Err(Error::Usage(UsageError::InvalidConfig(_)))), "{result:?}");
        return;
    };
    assert_eq!(feed(&mut conn, &c2s(true, PING, b"p")), [ping(b"p")]);
    assert_eq!(output(&mut conn), s2c(true, PONG, b"p"));
    assert!(!conn.wants_write(), "wants_write() with nothing to transmit");
}
