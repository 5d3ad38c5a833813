//! permessage-deflate (RFC 7692) through the public API only:
//!
//! * negotiation in both roles: every offer parameter combination against
//!   several server configurations (the exact `Sec-WebSocket-Extensions`
//!   answer and [`Connection::deflate`]), invalid offers declined, client
//!   offers and the answers that must fail a client;
//! * RFC 7692 §7.2.3's example messages byte for byte, in both directions;
//! * the protocol errors compression adds (RSV bits, corrupt or truncated
//!   deflate data, text that inflates to invalid UTF-8);
//! * round trips for every parameter, size, kind and window, fragmented
//!   sends and streaming receives, checking RSV1 on the wire;
//! * window limits, checked with an independent RFC 1951 inflater written
//!   here that measures every back-reference distance;
//! * a property test over arbitrary messages and arbitrary splits of the
//!   wire bytes, and a decompression bomb.
//!
//! Peak memory of the bomb and per-connection memory are measured in
//! `tests/deflate_memory.rs`.

mod common;

use std::time::Duration;

use common::deflate_bits::{bitstream, bomb};
use common::{Ev, Pair, Side, config, join_chunks};
use inflate::Inflater;
use proptest::prelude::*;
use wscore::deflate::{DeflateConfig, DeflateParams};
use wscore::{
    Accept, ClientHandshake, CloseCode, Config, Connection, Error, Event, HandshakeError, MessageKind, ProtocolError,
    State,
};

const NOW: Duration = Duration::ZERO;
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// What a receiver appends to a compressed message (RFC 7692 §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// "Hello" compressed with one fixed-Huffman block and a sync flush, tail
/// removed (RFC 7692 §7.2.3.1).
const HELLO: [u8; 7] = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];

// First header bytes.
const TEXT: u8 = 0x81;
const BINARY: u8 = 0x82;
const RSV1: u8 = 0x40;
const RSV2: u8 = 0x20;
const RSV3: u8 = 0x10;

// ----- Helpers ----------------------------------------------------------------

/// A default [`DeflateConfig`] changed by `f` (the struct is non-exhaustive).
fn deflate(f: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut d = DeflateConfig::default();
    f(&mut d);
    d
}

fn with(d: Option<DeflateConfig>) -> Config {
    config(|c| c.deflate = d)
}

/// The parameters as a comparable tuple: (server_no_context_takeover,
/// client_no_context_takeover, server_max_window_bits, client_max_window_bits).
type Params = (bool, bool, u8, u8);

fn params(p: &DeflateParams) -> Params {
    (p.server_no_context_takeover, p.client_no_context_takeover, p.server_max_window_bits, p.client_max_window_bits)
}

/// A connected pair that negotiated permessage-deflate.
fn deflate_pair(client: DeflateConfig, server: DeflateConfig) -> Pair {
    deflate_pair_with(with(Some(client)), with(Some(server)))
}

fn deflate_pair_with(client: Config, server: Config) -> Pair {
    let pair = Pair::new(client, server);
    let (c, s) = (pair.client.conn.deflate().copied(), pair.server.conn.deflate().copied());
    assert!(c.is_some(), "deflate negotiated");
    assert_eq!(c, s, "both ends agree on the parameters");
    pair
}

fn default_pair() -> Pair {
    deflate_pair(DeflateConfig::default(), DeflateConfig::default())
}

/// A frame with first header byte `first`, masked with `mask` if given.
fn frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(m | n as u8),
        n @ 126..=0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
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

/// A frame as `to` must receive it: masked if `to` is the server.
fn frame_to(to: Side, first: u8, payload: &[u8]) -> Vec<u8> {
    frame(first, payload, (to == Side::Server).then_some(MASK))
}

/// Frames for `to`, concatenated.
fn frames_to(to: Side, frames: &[(u8, &[u8])]) -> Vec<u8> {
    frames.iter().flat_map(|(first, payload)| frame_to(to, *first, payload)).collect()
}

/// One frame as seen on the wire: its first header byte and unmasked payload.
#[derive(Debug)]
struct WireFrame {
    first: u8,
    payload: Vec<u8>,
}

/// Splits transmitted bytes into frames (they must end on a frame boundary).
fn parse_frames(mut bytes: &[u8]) -> Vec<WireFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let first = bytes[0];
        let masked = bytes[1] & 0x80 != 0;
        let (len, mut at) = match bytes[1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
            127 => (u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize, 10),
            n => (usize::from(n), 2),
        };
        let key = masked.then(|| {
            at += 4;
            [bytes[at - 4], bytes[at - 3], bytes[at - 2], bytes[at - 1]]
        });
        let mut payload = bytes[at..at + len].to_vec();
        if let Some(key) = key {
            payload.iter_mut().enumerate().for_each(|(i, b)| *b ^= key[i % 4]);
        }
        frames.push(WireFrame { first, payload });
        bytes = &bytes[at + len..];
    }
    frames
}

/// A data message on the wire: the first header byte of each of its frames
/// and the payloads joined.
#[derive(Debug)]
struct WireMessage {
    firsts: Vec<u8>,
    payload: Vec<u8>,
}

impl WireMessage {
    fn compressed(&self) -> bool {
        self.firsts[0] & RSV1 != 0
    }
}

/// The data messages in transmitted bytes; control frames are skipped.
fn wire_messages(bytes: &[u8]) -> Vec<WireMessage> {
    let mut messages = Vec::new();
    let mut current: Option<WireMessage> = None;
    for f in parse_frames(bytes) {
        if f.first & 0x08 != 0 {
            continue;
        }
        let m = current.get_or_insert_with(|| WireMessage { firsts: Vec::new(), payload: Vec::new() });
        m.firsts.push(f.first);
        m.payload.extend_from_slice(&f.payload);
        if f.first & 0x80 != 0 {
            messages.extend(current.take());
        }
    }
    assert!(current.is_none(), "transmitted bytes end inside a message");
    messages
}

fn message_ev(kind: MessageKind, data: &[u8]) -> Ev {
    match kind {
        MessageKind::Text => Ev::Text(String::from_utf8(data.to_vec()).unwrap()),
        MessageKind::Binary => Ev::Binary(data.to_vec()),
    }
}

/// Sends a whole message from `from`, moves every byte, and returns the
/// peer's events and what `from` transmitted.
fn exchange(pair: &mut Pair, from: Side, kind: MessageKind, data: &[u8]) -> (Vec<Ev>, Vec<u8>) {
    let start = pair.endpoint(from).sent.len();
    let conn = &mut pair.endpoint(from).conn;
    match kind {
        MessageKind::Text => conn.send_text(std::str::from_utf8(data).unwrap()),
        MessageKind::Binary => conn.send_binary(data),
    }
    .unwrap();
    pair.drive();
    let wire = pair.endpoint(from).sent[start..].to_vec();
    (pair.events(from.peer()), wire)
}

/// Sends `data` from `from` and checks it arrives intact, as one message
/// whose first frame has RSV1 exactly when `compressed`, with RSV bits
/// clear on every other frame. Returns the message as it was on the wire.
fn round_trip(pair: &mut Pair, from: Side, kind: MessageKind, data: &[u8], compressed: bool) -> WireMessage {
    let (events, wire) = exchange(pair, from, kind, data);
    assert!(
        events == [message_ev(kind, data)],
        "{from:?} sent {kind:?} of {} bytes, peer got {events:.100?}",
        data.len()
    );
    let mut messages = wire_messages(&wire);
    assert_eq!(messages.len(), 1);
    let m = messages.pop().unwrap();
    assert_eq!(m.compressed(), compressed, "RSV1 for {} bytes", data.len());
    assert!(m.firsts[0] & (RSV2 | RSV3) == 0 && m.firsts[1..].iter().all(|f| f & 0x70 == 0), "{:x?}", m.firsts);
    if !compressed {
        assert_eq!(m.payload, data, "uncompressed payload on the wire");
    }
    m
}

/// xorshift64*: deterministic test data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.next() as u8).collect()
}

/// Text of exactly `len` bytes from a small vocabulary of words mixing
/// one- to four-byte characters: compresses well.
fn compressible_text(len: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let alphabet: Vec<char> = ('a'..='z').chain(['é', '€', '𝄞', 'ß']).collect();
    let words: Vec<String> =
        (0..48).map(|_| (0..2 + rng.below(8)).map(|_| alphabet[rng.below(alphabet.len())]).collect()).collect();
    let mut text = String::with_capacity(len + 40);
    while text.len() < len {
        text.push_str(&words[rng.below(words.len())]);
        text.push(if rng.below(12) == 0 { '\n' } else { ' ' });
    }
    while text.len() > len {
        text.pop();
    }
    while text.len() < len {
        text.push(' ');
    }
    text
}

/// A deflate stream of stored blocks holding `data`, ending with the header
/// of an empty stored block whose LEN/NLEN are the tail a receiver appends:
/// the "no compression" form of RFC 7692 §7.2.3.3, for arbitrary bytes.
fn stored(blocks: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for block in blocks {
        let len = block.len() as u16;
        out.push(0x00);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(block);
    }
    out.push(0x00);
    out
}

/// Injects `wire` into `to` and checks that the connection failed with
/// `error`, and that the peer got a close frame with its code.
fn fails_with(pair: &mut Pair, to: Side, wire: &[u8], error: ProtocolError) {
    pair.inject(to, wire);
    let events = pair.events(to);
    assert_eq!(events.last(), Some(&Ev::failed(Error::Protocol(error))), "{to:?}: {events:?}");
    pair.drive();
    let peer = pair.events(to.peer());
    assert!(
        matches!(peer.first(), Some(Ev::Close { code, .. }) if *code == error.close_code()),
        "peer of {to:?} got {peer:?}"
    );
}

// ----- Negotiation: the server ---------------------------------------------------

const REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/// The values of every header field called `name` in an HTTP head.
fn header_values(head: &str, name: &str) -> Vec<String> {
    head.split("\r\n")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.split_once(':'))
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
        .collect()
}

/// A server configured with `deflate` accepts a request carrying one
/// `Sec-WebSocket-Extensions` field per element of `fields`. Returns the
/// `Sec-WebSocket-Extensions` fields of its 101 and the connection.
fn server_answer(deflate: Option<DeflateConfig>, fields: &[&str]) -> (Vec<String>, Connection) {
    let mut conn = Connection::server(with(deflate), NOW).unwrap();
    let mut request = REQUEST.to_owned();
    for field in fields {
        request.push_str(&format!("Sec-WebSocket-Extensions: {field}\r\n"));
    }
    request.push_str("\r\n");
    assert_eq!(conn.receive(NOW, request.as_bytes()), request.len());
    assert!(matches!(conn.poll_event(), Some(Event::Request(_))), "{request}");
    conn.accept(&Accept::new()).unwrap();
    assert!(conn.poll_event().is_none());
    let response = String::from_utf8(conn.poll_transmit().to_vec()).unwrap();
    assert!(response.starts_with("HTTP/1.1 101 "), "{response}");
    (header_values(&response, "sec-websocket-extensions"), conn)
}

/// One permessage-deflate offer, as a client might send it.
#[derive(Clone, Copy, Debug, Default)]
struct Offer {
    snct: bool,
    cnct: bool,
    smwb: Option<u8>,
    /// Absent, without a value (`Some(None)`), or with one.
    cmwb: Option<Option<u8>>,
}

impl Offer {
    fn render(&self) -> String {
        let mut s = String::from("permessage-deflate");
        if self.snct {
            s.push_str("; server_no_context_takeover");
        }
        if self.cnct {
            s.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.smwb {
            s.push_str(&format!("; server_max_window_bits={bits}"));
        }
        match self.cmwb {
            Some(Some(bits)) => s.push_str(&format!("; client_max_window_bits={bits}")),
            Some(None) => s.push_str("; client_max_window_bits"),
            None => {}
        }
        s
    }

    /// What RFC 7692 §7.1 lets a server configured with `server` answer,
    /// choosing the largest values it may: the answer line and the
    /// parameters then in force.
    fn expected(&self, server: &DeflateConfig) -> (String, Params) {
        let snct = self.snct || server.server_no_context_takeover;
        let cnct = self.cnct || server.client_no_context_takeover;
        // §7.1.2.1: at most what the client asked; the server may limit
        // itself further, with or without being asked.
        let smwb = match (self.smwb, server.server_max_window_bits) {
            (Some(asked), Some(own)) => Some(asked.min(own)),
            (asked, own) => asked.or(own),
        };
        // §7.1.2.2: only if the client offered the parameter, and at most
        // its value.
        let cmwb =
            self.cmwb.and_then(|offered| server.client_max_window_bits.map(|own| own.min(offered.unwrap_or(15))));
        let answer = Offer { snct, cnct, smwb, cmwb: cmwb.map(Some) }.render();
        // A value the client offered is its own promise to stay within it.
        let client_bits = cmwb.or(self.cmwb.flatten()).unwrap_or(15);
        (answer, (snct, cnct, smwb.unwrap_or(15), client_bits))
    }
}

/// Every combination of offer parameters: 2 × 2 × 9 × 10 offers.
fn all_offers() -> Vec<Offer> {
    let mut offers = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for smwb in std::iter::once(None).chain((8..=15).map(Some)) {
                for cmwb in [None, Some(None)].into_iter().chain((8..=15).map(|b| Some(Some(b)))) {
                    offers.push(Offer { snct, cnct, smwb, cmwb });
                }
            }
        }
    }
    offers
}

/// Server configurations the offers are tried against.
fn server_configs() -> Vec<DeflateConfig> {
    vec![
        DeflateConfig::default(),
        deflate(|d| {
            d.server_no_context_takeover = true;
            d.client_no_context_takeover = true;
        }),
        deflate(|d| d.server_max_window_bits = Some(10)),
        deflate(|d| d.client_max_window_bits = Some(9)),
        deflate(|d| {
            d.server_no_context_takeover = true;
            d.server_max_window_bits = Some(12);
            d.client_max_window_bits = Some(11);
        }),
        deflate(|d| {
            d.server_max_window_bits = Some(8);
            d.client_max_window_bits = Some(8);
        }),
    ]
}

#[test]
fn server_answers_every_offer_combination() {
    for server in server_configs() {
        for offer in all_offers() {
            let (fields, conn) = server_answer(Some(server.clone()), &[&offer.render()]);
            let (answer, expected) = offer.expected(&server);
            assert_eq!(fields, [answer], "{offer:?} to {server:?}");
            assert_eq!(conn.deflate().map(params), Some(expected), "{offer:?} to {server:?}");
        }
    }
}

#[test]
fn server_reads_quoted_values_and_loose_whitespace() {
    let cases = [
        ("permessage-deflate; server_max_window_bits=\"10\"", "permessage-deflate; server_max_window_bits=10"),
        ("permessage-deflate;server_max_window_bits=10", "permessage-deflate; server_max_window_bits=10"),
        ("permessage-deflate ;\tserver_max_window_bits = 10 ", "permessage-deflate; server_max_window_bits=10"),
        (
            "permessage-deflate; client_max_window_bits=\"9\"; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover",
        ),
        // Parameter order is free.
        (
            "permessage-deflate; client_max_window_bits; client_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
    ];
    for (offer, answer) in cases {
        let (fields, conn) = server_answer(Some(DeflateConfig::default()), &[offer]);
        assert_eq!(fields, [answer], "{offer}");
        assert!(conn.deflate().is_some());
    }
    let (_, conn) =
        server_answer(Some(DeflateConfig::default()), &["permessage-deflate; client_max_window_bits=\"9\""]);
    assert_eq!(conn.deflate().map(params), Some((false, false, 15, 9)));
}

/// Offers a server must decline (RFC 7692 §5, §7.1).
const INVALID_OFFERS: &[&str] = &[
    "permessage-deflate; foo",
    "permessage-deflate; foo=1",
    "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
    "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
    "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
    "permessage-deflate; client_max_window_bits; client_max_window_bits",
    "permessage-deflate; client_max_window_bits=10; client_max_window_bits",
    "permessage-deflate; server_max_window_bits",
    "permessage-deflate; server_max_window_bits=",
    "permessage-deflate; server_max_window_bits=7",
    "permessage-deflate; server_max_window_bits=16",
    "permessage-deflate; server_max_window_bits=010",
    "permessage-deflate; server_max_window_bits=08",
    "permessage-deflate; server_max_window_bits=0",
    "permessage-deflate; server_max_window_bits=-9",
    "permessage-deflate; server_max_window_bits=9a",
    "permessage-deflate; server_max_window_bits=\"16\"",
    "permessage-deflate; client_max_window_bits=7",
    "permessage-deflate; client_max_window_bits=16",
    "permessage-deflate; client_max_window_bits=010",
    "permessage-deflate; client_max_window_bits=abc",
    "permessage-deflate; server_no_context_takeover=1",
    "permessage-deflate; server_no_context_takeover=",
    "permessage-deflate; client_no_context_takeover=true",
    "permessage-deflate; client_no_context_takeover=\"\"",
];

#[test]
fn server_declines_invalid_offers() {
    for server in server_configs() {
        for offer in INVALID_OFFERS {
            let (fields, conn) = server_answer(Some(server.clone()), &[offer]);
            assert!(fields.is_empty(), "{offer}: {fields:?}");
            assert!(conn.deflate().is_none(), "{offer}");
        }
    }
}

#[test]
fn server_takes_the_next_valid_offer() {
    let server = DeflateConfig::default();
    for offer in INVALID_OFFERS {
        // In the same field, and in a field of its own.
        let joined = format!("{offer}, permessage-deflate; server_no_context_takeover");
        for fields in [vec![joined.as_str()], vec![offer, "permessage-deflate; server_no_context_takeover"]] {
            let (answer, conn) = server_answer(Some(server.clone()), &fields);
            assert_eq!(answer, ["permessage-deflate; server_no_context_takeover"], "{fields:?}");
            assert_eq!(conn.deflate().map(params), Some((true, false, 15, 15)));
        }
    }
}

#[test]
fn server_takes_the_first_of_several_valid_offers() {
    let (answer, conn) = server_answer(
        Some(DeflateConfig::default()),
        &["permessage-deflate; server_max_window_bits=10; client_max_window_bits, permessage-deflate"],
    );
    assert_eq!(answer, ["permessage-deflate; server_max_window_bits=10"]);
    assert_eq!(conn.deflate().map(params), Some((false, false, 10, 15)));
    let (answer, _) = server_answer(Some(DeflateConfig::default()), &["permessage-deflate", "permessage-deflate; x"]);
    assert_eq!(answer, ["permessage-deflate"]);
}

#[test]
fn server_skips_other_extensions() {
    let cases: &[(&[&str], Option<&str>)] = &[
        (&["x-webkit-deflate-frame"], None),
        (&["deflate-frame; no_context_takeover"], None),
        (&["x-webkit-deflate-frame, permessage-deflate; client_max_window_bits"], Some("permessage-deflate")),
        (
            &["foo; bar=baz; qux, permessage-deflate; server_max_window_bits=9"],
            Some("permessage-deflate; server_max_window_bits=9"),
        ),
        (
            &["foo", "permessage-deflate; client_no_context_takeover"],
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        (&["permessage-deflate, foo"], Some("permessage-deflate")),
        (&["permessage-deflater"], None),
        (&[" , ,permessage-deflate,, "], Some("permessage-deflate")),
    ];
    for (fields, expected) in cases {
        let (answer, conn) = server_answer(Some(DeflateConfig::default()), fields);
        assert_eq!(answer, expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{fields:?}");
        assert_eq!(conn.deflate().is_some(), expected.is_some(), "{fields:?}");
    }
}

#[test]
fn server_without_deflate_never_answers_the_extension() {
    let mut offers: Vec<String> = all_offers().iter().map(Offer::render).collect();
    offers.extend(INVALID_OFFERS.iter().map(|s| s.to_string()));
    offers.push("x-webkit-deflate-frame, permessage-deflate".into());
    for offer in &offers {
        let (fields, conn) = server_answer(None, &[offer]);
        assert!(fields.is_empty(), "{offer}: {fields:?}");
        assert!(conn.deflate().is_none());
    }
    // Nor without an offer when it has deflate configured.
    let (fields, conn) = server_answer(Some(DeflateConfig::default()), &[]);
    assert!(fields.is_empty() && conn.deflate().is_none());
}

// ----- Negotiation: the client ---------------------------------------------------

/// The `Sec-WebSocket-Extensions` fields of a client's upgrade request.
fn client_offer(deflate: Option<DeflateConfig>) -> Vec<String> {
    let mut conn = Connection::client(ClientHandshake::new(common::URL).unwrap(), with(deflate), NOW).unwrap();
    let request = String::from_utf8(conn.poll_transmit().to_vec()).unwrap();
    header_values(&request, "sec-websocket-extensions")
}

#[test]
fn client_offer_lines() {
    let fallback = "permessage-deflate; client_max_window_bits";
    let cases: Vec<(Option<DeflateConfig>, Option<String>)> = vec![
        (None, None),
        (Some(DeflateConfig::default()), Some(fallback.into())),
        (Some(deflate(|d| d.fallback_offer = false)), Some(fallback.into())),
        (
            Some(deflate(|d| d.server_no_context_takeover = true)),
            Some(format!("permessage-deflate; server_no_context_takeover; client_max_window_bits, {fallback}")),
        ),
        (
            Some(deflate(|d| {
                d.server_no_context_takeover = true;
                d.fallback_offer = false;
            })),
            Some("permessage-deflate; server_no_context_takeover; client_max_window_bits".into()),
        ),
        (
            Some(deflate(|d| d.client_no_context_takeover = true)),
            Some(format!("permessage-deflate; client_no_context_takeover; client_max_window_bits, {fallback}")),
        ),
        (
            Some(deflate(|d| d.server_max_window_bits = Some(10))),
            Some(format!("permessage-deflate; server_max_window_bits=10; client_max_window_bits, {fallback}")),
        ),
        (
            Some(deflate(|d| d.client_max_window_bits = Some(8))),
            Some(format!("permessage-deflate; client_max_window_bits=8, {fallback}")),
        ),
        (
            Some(deflate(|d| {
                d.server_no_context_takeover = true;
                d.client_no_context_takeover = true;
                d.server_max_window_bits = Some(9);
                d.client_max_window_bits = Some(12);
            })),
            Some(format!(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9; client_max_window_bits=12, {fallback}"
            )),
        ),
        (
            Some(deflate(|d| {
                d.server_max_window_bits = Some(15);
                d.client_max_window_bits = Some(15);
                d.fallback_offer = false;
            })),
            Some("permessage-deflate; server_max_window_bits=15; client_max_window_bits=15".into()),
        ),
    ];
    for (config, expected) in cases {
        assert_eq!(client_offer(config.clone()), expected.into_iter().collect::<Vec<_>>(), "{config:?}");
    }
}

/// A client configured with `deflate` receives a 101 carrying one
/// `Sec-WebSocket-Extensions` field per element of `fields`: the agreed
/// parameters if it connected, or how it closed.
fn client_receives(deflate: Option<DeflateConfig>, fields: &[&str]) -> Result<Option<Params>, common::ClosedEv> {
    let mut conn = Connection::client(ClientHandshake::new(common::URL).unwrap(), with(deflate), NOW).unwrap();
    let request = String::from_utf8(conn.poll_transmit().to_vec()).unwrap();
    conn.advance_transmit(request.len());
    let key = header_values(&request, "sec-websocket-key").pop().unwrap();
    let accept = wscore::handshake::accept_key(key.as_bytes());
    let mut response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        std::str::from_utf8(&accept).unwrap()
    );
    for field in fields {
        response.push_str(&format!("Sec-WebSocket-Extensions: {field}\r\n"));
    }
    response.push_str("\r\n");
    assert_eq!(conn.receive(NOW, response.as_bytes()), response.len());
    let result = match conn.poll_event() {
        Some(Event::Connected(response)) => Ok(response.deflate().map(params)),
        Some(Event::Closed(closed)) => Err(common::ClosedEv::from(&closed)),
        other => panic!("{other:?}"),
    };
    match result {
        Ok(p) => {
            assert_eq!(conn.deflate().map(params), p, "Response::deflate and Connection::deflate agree");
            assert_eq!(conn.state(), State::Open);
        }
        Err(_) => {
            assert_eq!(conn.state(), State::Closed);
            assert!(conn.poll_transmit().is_empty(), "a failed handshake sends nothing");
        }
    }
    result
}

#[test]
fn client_fails_on_invalid_answers() {
    let plain = Some(DeflateConfig::default());
    let strict_window = Some(deflate(|d| {
        d.server_max_window_bits = Some(10);
        d.fallback_offer = false;
    }));
    let strict_snct = Some(deflate(|d| {
        d.server_no_context_takeover = true;
        d.fallback_offer = false;
    }));
    let client_window = Some(deflate(|d| {
        d.client_max_window_bits = Some(10);
        d.fallback_offer = false;
    }));
    let cases: Vec<(Option<DeflateConfig>, Vec<&str>)> = vec![
        (plain.clone(), vec!["permessage-deflate; foo"]),
        (plain.clone(), vec!["permessage-deflate; foo=1"]),
        (plain.clone(), vec!["permessage-deflate; server_no_context_takeover; server_no_context_takeover"]),
        (plain.clone(), vec!["permessage-deflate; client_no_context_takeover; client_no_context_takeover"]),
        (plain.clone(), vec!["permessage-deflate; server_max_window_bits=9; server_max_window_bits=9"]),
        (plain.clone(), vec!["permessage-deflate; client_max_window_bits=9; client_max_window_bits=9"]),
        (plain.clone(), vec!["permessage-deflate; server_max_window_bits=7"]),
        (plain.clone(), vec!["permessage-deflate; server_max_window_bits=16"]),
        (plain.clone(), vec!["permessage-deflate; server_max_window_bits=010"]),
        (plain.clone(), vec!["permessage-deflate; server_max_window_bits"]),
        (plain.clone(), vec!["permessage-deflate; client_max_window_bits=7"]),
        (plain.clone(), vec!["permessage-deflate; client_max_window_bits=16"]),
        // A value is required in an answer (§7.1.2.2).
        (plain.clone(), vec!["permessage-deflate; client_max_window_bits"]),
        (plain.clone(), vec!["permessage-deflate; server_no_context_takeover=1"]),
        (plain.clone(), vec!["permessage-deflate; client_no_context_takeover=x"]),
        // Larger than asked (§7.1.2.1), with no fallback offer to match.
        (strict_window.clone(), vec!["permessage-deflate; server_max_window_bits=11"]),
        (strict_window.clone(), vec!["permessage-deflate; server_max_window_bits=15"]),
        // Asked for, but missing from the answer.
        (strict_window, vec!["permessage-deflate"]),
        (strict_snct, vec!["permessage-deflate"]),
        // Larger than the client offered.
        (client_window, vec!["permessage-deflate; client_max_window_bits=11"]),
        // Not offered at all.
        (None, vec!["permessage-deflate"]),
        (None, vec!["permessage-deflate; server_no_context_takeover"]),
        (plain.clone(), vec!["x-webkit-deflate-frame"]),
        // Two extension elements, in one field or two.
        (plain.clone(), vec!["permessage-deflate, permessage-deflate"]),
        (plain.clone(), vec!["permessage-deflate", "permessage-deflate"]),
        (plain.clone(), vec!["permessage-deflate, x-other"]),
        (plain, vec!["x-other", "permessage-deflate"]),
    ];
    let expected = common::ClosedEv {
        code: CloseCode::ABNORMAL,
        clean: false,
        error: Some(Error::Handshake(HandshakeError::Extension)),
    };
    for (config, fields) in cases {
        assert_eq!(client_receives(config.clone(), &fields), Err(expected.clone()), "{config:?} got {fields:?}");
    }
}

#[test]
fn client_accepts_valid_answers() {
    let plain = Some(DeflateConfig::default());
    let cases: Vec<(Option<DeflateConfig>, Vec<&str>, Option<Params>)> = vec![
        (None, vec![], None),
        (plain.clone(), vec![], None),
        (plain.clone(), vec!["permessage-deflate"], Some((false, false, 15, 15))),
        (plain.clone(), vec!["PerMessage-Deflate"], Some((false, false, 15, 15))),
        (plain.clone(), vec!["permessage-deflate; server_no_context_takeover"], Some((true, false, 15, 15))),
        (plain.clone(), vec!["permessage-deflate; client_no_context_takeover"], Some((false, true, 15, 15))),
        // The server may limit its own window unasked.
        (plain.clone(), vec!["permessage-deflate; server_max_window_bits=8"], Some((false, false, 8, 15))),
        (plain.clone(), vec!["permessage-deflate; client_max_window_bits=9"], Some((false, false, 15, 9))),
        (plain.clone(), vec!["permessage-deflate; client_max_window_bits=\"12\""], Some((false, false, 15, 12))),
        (
            plain,
            vec![
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=10; client_max_window_bits=11",
            ],
            Some((true, true, 10, 11)),
        ),
        // Within what was asked.
        (
            Some(deflate(|d| {
                d.server_max_window_bits = Some(10);
                d.fallback_offer = false;
            })),
            vec!["permessage-deflate; server_max_window_bits=9"],
            Some((false, false, 9, 15)),
        ),
        // The fallback offer makes a plain answer, or a larger window, fine.
        (
            Some(deflate(|d| d.server_max_window_bits = Some(10))),
            vec!["permessage-deflate"],
            Some((false, false, 15, 15)),
        ),
        (
            Some(deflate(|d| d.server_no_context_takeover = true)),
            vec!["permessage-deflate"],
            Some((false, false, 15, 15)),
        ),
        // Having offered client_no_context_takeover, the client keeps to it.
        (
            Some(deflate(|d| d.client_no_context_takeover = true)),
            vec!["permessage-deflate"],
            Some((false, true, 15, 15)),
        ),
        // Its own offered window holds even if the answer omits it.
        (
            Some(deflate(|d| d.client_max_window_bits = Some(11))),
            vec!["permessage-deflate"],
            Some((false, false, 15, 11)),
        ),
        (
            Some(deflate(|d| d.client_max_window_bits = Some(11))),
            vec!["permessage-deflate; client_max_window_bits=10"],
            Some((false, false, 15, 10)),
        ),
    ];
    for (config, fields, expected) in cases {
        assert_eq!(client_receives(config.clone(), &fields), Ok(expected), "{config:?} got {fields:?}");
    }
}

/// Client configurations for end-to-end negotiation.
fn client_configs() -> Vec<DeflateConfig> {
    let mut configs = Vec::new();
    for snct in [false, true] {
        for cnct in [false, true] {
            for smwb in [None, Some(8), Some(12), Some(15)] {
                for cmwb in [None, Some(9), Some(15)] {
                    for fallback in [false, true] {
                        configs.push(deflate(|d| {
                            d.server_no_context_takeover = snct;
                            d.client_no_context_takeover = cnct;
                            d.server_max_window_bits = smwb;
                            d.client_max_window_bits = cmwb;
                            d.fallback_offer = fallback;
                            d.threshold = 0;
                        }));
                    }
                }
            }
        }
    }
    configs
}

#[test]
fn wscore_client_and_server_agree_on_every_combination() {
    let text = compressible_text(600, 1);
    for server in server_configs() {
        for client in client_configs() {
            let mut pair = deflate_pair(client.clone(), server.clone());
            let p = params(pair.client.conn.deflate().unwrap());
            // Each side's wishes hold.
            assert!(p.0 || !client.server_no_context_takeover && !server.server_no_context_takeover);
            assert!(p.1 || !client.client_no_context_takeover && !server.client_no_context_takeover);
            assert!(p.2 <= client.server_max_window_bits.unwrap_or(15));
            assert!(p.2 <= server.server_max_window_bits.unwrap_or(15));
            assert!(p.3 <= client.client_max_window_bits.unwrap_or(15));
            assert!(p.3 <= server.client_max_window_bits.unwrap_or(15));
            round_trip(&mut pair, Side::Client, MessageKind::Text, text.as_bytes(), true);
            round_trip(&mut pair, Side::Server, MessageKind::Text, text.as_bytes(), server.threshold <= 600);
        }
    }
}

// ----- RFC 7692 §7.2.3 examples ------------------------------------------------

/// Feeds `frames` (first header byte, payload) to each side of a pair that
/// negotiated deflate with context takeover, whole and byte by byte, and
/// checks the texts that arrive; the connection then still works.
fn rfc_example(frames: &[(u8, &[u8])], expected: &[&str]) {
    rfc_example_events(frames, &expected.iter().map(|t| Ev::text(t)).collect::<Vec<_>>());
}

/// [`rfc_example`] with any expected events.
fn rfc_example_events(frames: &[(u8, &[u8])], expected: &[Ev]) {
    for to in [Side::Server, Side::Client] {
        for bytewise in [false, true] {
            let mut pair = default_pair();
            let wire = frames_to(to, frames);
            if bytewise {
                wire.chunks(1).for_each(|b| pair.inject(to, b));
            } else {
                pair.inject(to, &wire);
            }
            assert_eq!(pair.events(to), expected, "to {to:?}, bytewise {bytewise}");
            assert_eq!(pair.endpoint(to).conn.state(), State::Open);
            // Pongs for pings among the frames.
            pair.drive();
            assert!(pair.events(to.peer()).iter().all(|e| matches!(e, Ev::Pong(_))));
            // Later messages, compressed by wscore, still decode.
            let text = compressible_text(3000, 7);
            round_trip(&mut pair, to.peer(), MessageKind::Text, text.as_bytes(), true);
            round_trip(&mut pair, to.peer(), MessageKind::Text, text.as_bytes(), true);
            round_trip(&mut pair, to, MessageKind::Text, text.as_bytes(), true);
        }
    }
}

#[test]
fn rfc7692_7_2_3_1_a_message_compressed() {
    // Also the frame exactly as RFC 7692 §7.2.3.1 prints it.
    assert_eq!(frame(TEXT | RSV1, &HELLO, None), [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    rfc_example(&[(TEXT | RSV1, &HELLO)], &["Hello"]);
}

#[test]
fn rfc7692_7_2_3_1_fragmented() {
    // "0x41 0x03 0xf2 0x48 0xcd" and "0x80 0x04 0xc9 0xc9 0x07 0x00".
    assert_eq!(frame(0x41, &HELLO[..3], None), [0x41, 0x03, 0xf2, 0x48, 0xcd]);
    rfc_example(&[(0x41, &HELLO[..3]), (0x80, &HELLO[3..])], &["Hello"]);
    // Any split, with an empty final fragment, and a ping in between.
    for at in 0..=HELLO.len() {
        rfc_example_events(
            &[(0x41, &HELLO[..at]), (0x00, &HELLO[at..]), (0x89, b"p"), (0x80, &[])],
            &[Ev::Ping(b"p".to_vec()), Ev::text("Hello")],
        );
    }
}

#[test]
fn rfc7692_7_2_3_2_sharing_the_window() {
    let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
    rfc_example(&[(TEXT | RSV1, &HELLO), (TEXT | RSV1, &second)], &["Hello", "Hello"]);
}

#[test]
fn rfc7692_7_2_3_2_without_context_takeover_the_window_is_reset() {
    let second = [0xf2, 0x00, 0x11, 0x00, 0x00];
    for to in [Side::Server, Side::Client] {
        // The sender of these frames declared it resets its context: a
        // reference into the previous message is invalid.
        let mut pair = deflate_pair(
            deflate(|d| {
                d.server_no_context_takeover = true;
                d.client_no_context_takeover = true;
            }),
            DeflateConfig::default(),
        );
        pair.inject(to, &frame_to(to, TEXT | RSV1, &HELLO));
        assert_eq!(pair.events(to), [Ev::text("Hello")]);
        fails_with(&mut pair, to, &frame_to(to, TEXT | RSV1, &second), ProtocolError::InvalidCompressedData);
    }
}

#[test]
fn rfc7692_7_2_3_3_no_compression_block() {
    let payload = [0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00];
    assert_eq!(stored(&[b"Hello"]), payload);
    assert_eq!(frame(TEXT | RSV1, &payload, None)[..2], [0xc1, 0x0b]);
    rfc_example(&[(TEXT | RSV1, &payload)], &["Hello"]);
}

#[test]
fn rfc7692_7_2_3_4_bfinal_block() {
    // "0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00": the final block, then the
    // header bits of the empty stored block a flush added after it.
    let payload = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    rfc_example(&[(TEXT | RSV1, &payload)], &["Hello"]);
}

#[test]
fn rfc7692_7_2_3_4_bfinal_block_without_trailing_byte() {
    // The same final block with nothing after it.
    let payload = [0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    rfc_example(&[(TEXT | RSV1, &payload)], &["Hello"]);
    // And a message after a final block, then one referring to it.
    rfc_example(&[(TEXT | RSV1, &payload), (TEXT | RSV1, &HELLO)], &["Hello", "Hello"]);
}

#[test]
fn rfc7692_7_2_3_5_two_deflate_blocks_in_one_message() {
    let payload = [0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00];
    rfc_example(&[(TEXT | RSV1, &payload)], &["Hello"]);
}

#[test]
fn empty_compressed_messages() {
    // The smallest valid form: the header bits of the empty stored block
    // whose LEN and NLEN the tail supplies; and an empty fixed block first.
    rfc_example(&[(TEXT | RSV1, &[0x00])], &[""]);
    rfc_example(&[(TEXT | RSV1, &[0x02, 0x00]), (TEXT | RSV1, &HELLO)], &["", "Hello"]);
    rfc_example(
        &[(TEXT | RSV1, &HELLO), (TEXT | RSV1, &[0x00]), (TEXT | RSV1, &[0xf2, 0x00, 0x11, 0x00, 0x00])],
        &["Hello", "", "Hello"],
    );
    // wscore's own empty messages, compressed when the threshold is 0.
    let cfg = deflate(|d| d.threshold = 0);
    let mut pair = deflate_pair(cfg.clone(), cfg);
    for from in [Side::Client, Side::Server] {
        for _ in 0..3 {
            let m = round_trip(&mut pair, from, MessageKind::Text, b"", true);
            assert!(!m.payload.is_empty(), "a compressed empty message still holds a block header");
            round_trip(&mut pair, from, MessageKind::Text, b"Hello", true);
        }
    }
}

#[test]
fn empty_payload_with_rsv1_keeps_the_stream_in_sync() {
    // With nothing before it, the appended tail `00 00 ff ff` is not an
    // empty stored block but the start of one with LEN 0xff00 (a sender
    // always leaves at least the byte holding the empty block's header,
    // RFC 7692 §7.2.1). Rejecting the message (1002, what wscore does) or
    // delivering "" are both defensible; delivering "" and then failing the
    // peer's next, valid, message is not.
    for to in [Side::Server, Side::Client] {
        let mut pair = default_pair();
        pair.inject(to, &frame_to(to, BINARY | RSV1, &[]));
        let first = pair.events(to);
        if first == [Ev::binary(b"")] {
            pair.inject(to, &frame_to(to, TEXT | RSV1, &HELLO));
            assert_eq!(pair.events(to), [Ev::text("Hello")], "to {to:?}: the message after the empty one");
        } else {
            assert_eq!(first, [Ev::failed(Error::Protocol(ProtocolError::InvalidCompressedData))]);
        }
    }
}

// ----- Protocol errors -------------------------------------------------------

#[test]
fn rsv1_on_a_control_frame_is_1002() {
    for to in [Side::Server, Side::Client] {
        for (opcode, payload) in [(0x8, &[0x03, 0xe8][..]), (0x9, b"ping"), (0xa, b"pong")] {
            let mut pair = default_pair();
            fails_with(&mut pair, to, &frame_to(to, 0x80 | RSV1 | opcode, payload), ProtocolError::ReservedBits);
            // Also between the fragments of a compressed message.
            let mut pair = default_pair();
            pair.inject(to, &frame_to(to, 0x41, &HELLO[..3]));
            fails_with(&mut pair, to, &frame_to(to, 0x80 | RSV1 | opcode, payload), ProtocolError::ReservedBits);
        }
    }
}

#[test]
fn rsv1_on_a_continuation_frame_is_1002() {
    for to in [Side::Server, Side::Client] {
        // After a compressed first frame.
        let mut pair = default_pair();
        pair.inject(to, &frame_to(to, 0x41, &HELLO[..3]));
        fails_with(&mut pair, to, &frame_to(to, 0x80 | RSV1, &HELLO[3..]), ProtocolError::ReservedBits);
        // After an uncompressed one.
        let mut pair = default_pair();
        pair.inject(to, &frame_to(to, 0x01, b"Hel"));
        fails_with(&mut pair, to, &frame_to(to, 0x80 | RSV1, b"lo"), ProtocolError::ReservedBits);
        // On a non-final continuation.
        let mut pair = default_pair();
        pair.inject(to, &frame_to(to, 0x41, &HELLO[..3]));
        fails_with(&mut pair, to, &frame_to(to, RSV1, &HELLO[3..5]), ProtocolError::ReservedBits);
    }
}

#[test]
fn rsv1_without_deflate_negotiated_is_1002() {
    let configs = [
        (None, None),
        // Offered, declined by the server.
        (Some(DeflateConfig::default()), None),
        // Accepted by a server but never offered.
        (None, Some(DeflateConfig::default())),
    ];
    for (client, server) in configs {
        for to in [Side::Server, Side::Client] {
            let mut pair = Pair::new(with(client.clone()), with(server.clone()));
            assert!(pair.client.conn.deflate().is_none() && pair.server.conn.deflate().is_none());
            fails_with(&mut pair, to, &frame_to(to, TEXT | RSV1, &HELLO), ProtocolError::ReservedBits);
        }
    }
}

#[test]
fn rsv2_and_rsv3_are_1002_even_with_deflate() {
    for to in [Side::Server, Side::Client] {
        for first in [TEXT | RSV2, TEXT | RSV3, TEXT | RSV1 | RSV2, BINARY | RSV1 | RSV3, TEXT | 0x70, 0x89 | RSV2] {
            let mut pair = default_pair();
            fails_with(&mut pair, to, &frame_to(to, first, &HELLO), ProtocolError::ReservedBits);
        }
        for rsv in [RSV2, RSV3] {
            let mut pair = default_pair();
            pair.inject(to, &frame_to(to, 0x41, &HELLO[..3]));
            fails_with(&mut pair, to, &frame_to(to, 0x80 | rsv, &HELLO[3..]), ProtocolError::ReservedBits);
        }
    }
}

#[test]
fn corrupt_deflate_data_is_1002() {
    let corrupt: &[&[u8]] = &[
        // BTYPE 11, reserved.
        &[0x06],
        &[0x07, 0x00],
        &[0xff, 0xff, 0xff, 0xff],
        // A stored block whose NLEN is not the complement of LEN.
        &[0x00, 0x05, 0x00, 0x00, 0x00, b'H', b'e', b'l', b'l', b'o', 0x00],
        // A dynamic block with an over-subscribed code-length code.
        &bitstream(|w| {
            w.bits(0b100, 3);
            w.bits(29, 5);
            w.bits(29, 5);
            w.bits(15, 4);
            (0..19).for_each(|_| w.bits(1, 3));
            w.bits(0, 16);
        }),
        // Fixed-Huffman literal/length code 286, which does not exist.
        &bitstream(|w| {
            w.bits(0b010, 3);
            w.code(0b1100_0110, 8);
            w.bits(0, 16);
        }),
        // Fixed-Huffman distance code 30, which does not exist.
        &bitstream(|w| {
            w.bits(0b010, 3);
            w.code(0x30 + u32::from(b'a'), 8);
            w.code(1, 7);
            w.code(30, 5);
            w.bits(0, 16);
        }),
    ];
    for to in [Side::Server, Side::Client] {
        for payload in corrupt {
            for first in [TEXT | RSV1, BINARY | RSV1] {
                let mut pair = default_pair();
                fails_with(&mut pair, to, &frame_to(to, first, payload), ProtocolError::InvalidCompressedData);
            }
        }
        // Corruption in the second fragment of a message that started well.
        let mut pair = default_pair();
        pair.inject(to, &frame_to(to, 0x42, &stored(&[b"fine so far"])[..16]));
        fails_with(&mut pair, to, &frame_to(to, 0x80, &[0x06, 0x06]), ProtocolError::InvalidCompressedData);
    }
}

#[test]
fn a_back_reference_before_the_start_of_the_stream_is_1002() {
    // RFC 1951 §3.2: a distance may not refer past the beginning of the
    // output. §7.2.3.2's second message sent first refers 5 bytes back
    // from the second byte of the stream.
    for to in [Side::Server, Side::Client] {
        for first in [TEXT | RSV1, BINARY | RSV1] {
            let mut pair = default_pair();
            fails_with(
                &mut pair,
                to,
                &frame_to(to, first, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
                ProtocolError::InvalidCompressedData,
            );
        }
        // Also in a message that starts with a few literals: distance 200
        // from 10 bytes of output.
        let mut pair = default_pair();
        let payload = bitstream(|w| {
            w.bits(0b010, 3);
            (0..10).for_each(|_| w.code(0x30 + u32::from(b'x'), 8));
            w.code(1, 7); // length 3
            w.code(15, 5); // distance code 15: 193 + 6 extra bits
            w.bits(7, 6);
            w.code(0, 7); // end of block
            w.bits(0, 3);
        });
        fails_with(&mut pair, to, &frame_to(to, BINARY | RSV1, &payload), ProtocolError::InvalidCompressedData);
    }
}

#[test]
fn text_inflating_to_invalid_utf8_is_1007() {
    let cases: &[&[&[u8]]] = &[
        &[b"\xff"],
        &[b"valid, then \xc0\xaf"],
        // A character cut short by the end of the message.
        &[b"\xe2\x82"],
        // An invalid sequence split across stored blocks.
        &[b"ok \xe2", b"\x28\xa1"],
        // A surrogate.
        &[b"\xed\xa0\x80"],
    ];
    for to in [Side::Server, Side::Client] {
        for blocks in cases {
            let mut pair = default_pair();
            fails_with(&mut pair, to, &frame_to(to, TEXT | RSV1, &stored(blocks)), ProtocolError::InvalidUtf8);
        }
        // The same bytes as binary are fine; so is a character split across
        // blocks and frames.
        let mut pair = default_pair();
        let euro = stored(&[b"\xe2", b"\x82\xac"]);
        pair.inject(to, &frame_to(to, BINARY | RSV1, &stored(&[b"\xff"])));
        pair.inject(to, &frames_to(to, &[(0x41, &euro[..7]), (0x80, &euro[7..])]));
        assert_eq!(pair.events(to), [Ev::binary(b"\xff"), Ev::text("€")]);
    }
}

#[test]
fn truncated_deflate_streams_fail_instead_of_hanging() {
    let cases: &[&[u8]] = &[
        // A stored block that promises 16 bytes and holds 2: the tail
        // becomes its data, and the message is delivered as 61 62 00 00 ff ff.
        &[0x00, 0x10, 0x00, 0xef, 0xff, b'a', b'b'],
        // A stored block of 1 byte with its byte missing.
        &[0x00, 0x01, 0x00, 0xfe, 0xff],
        // "Hello" cut after 2 and 5 bytes: the tail's bits become literals.
        &HELLO[..2],
        &HELLO[..5],
        // A dynamic block cut inside its header.
        &[0x04, 0xc0],
    ];
    for to in [Side::Server, Side::Client] {
        for streaming in [false, true] {
            for payload in cases {
                let cfg = config(|c| {
                    c.deflate = Some(DeflateConfig::default());
                    c.streaming = streaming;
                });
                let mut pair = deflate_pair_with(cfg.clone(), cfg);
                pair.inject(to, &frame_to(to, BINARY | RSV1, payload));
                let events = pair.events(to);
                assert_eq!(
                    events,
                    [Ev::failed(Error::Protocol(ProtocolError::InvalidCompressedData))],
                    "{payload:x?} to {to:?} (streaming {streaming})"
                );
            }
        }
    }
}

#[test]
fn every_truncation_of_a_compressed_message_ends_in_an_event() {
    // What wscore sends for a 1500-byte text, cut at every length: the
    // receiver must deliver something or fail, never wait for more.
    let text = compressible_text(1500, 3);
    let mut pair = default_pair();
    let message = round_trip(&mut pair, Side::Client, MessageKind::Text, text.as_bytes(), true);
    let payload = message.payload;
    let (mut delivered, mut failed) = (0, 0);
    for to in [Side::Server, Side::Client] {
        for len in 0..payload.len() {
            let mut pair = default_pair();
            pair.inject(to, &frame_to(to, BINARY | RSV1, &payload[..len]));
            match pair.events(to).as_slice() {
                [Ev::Binary(_)] => delivered += 1,
                [.., Ev::Closed(c)] if c.code == CloseCode::PROTOCOL_ERROR => failed += 1,
                other => panic!("cut at {len} of {}: {other:?}", payload.len()),
            }
        }
    }
    assert!(failed > 0, "{delivered} delivered");
}

// ----- Round trips -------------------------------------------------------------

const SIZES: [usize; 14] = [0, 1, 2, 100, 1023, 1024, 1025, 4096, 65535, 65536, 65537, 100_000, 200_000, 256 << 10];

fn no_context(d: &mut DeflateConfig) {
    d.server_no_context_takeover = true;
    d.client_no_context_takeover = true;
}

#[test]
fn round_trips_of_every_size_kind_and_data() {
    for takeover in [true, false] {
        let cfg = deflate(|d| {
            if !takeover {
                no_context(d);
            }
        });
        let mut pair = deflate_pair(cfg.clone(), cfg);
        assert_eq!(params(pair.server.conn.deflate().unwrap()), (!takeover, !takeover, 15, 15));
        for (i, size) in SIZES.into_iter().enumerate() {
            let text = compressible_text(size, i as u64);
            let random = random_bytes(size, i as u64);
            // Above the default threshold of 1024 bytes messages are compressed.
            let compressed = size >= 1024;
            for from in [Side::Client, Side::Server] {
                let m = round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), compressed);
                if size >= 4096 {
                    assert!(m.payload.len() < size / 2, "text compresses: {} of {size}", m.payload.len());
                }
                round_trip(&mut pair, from, MessageKind::Binary, text.as_bytes(), compressed);
                let m = round_trip(&mut pair, from, MessageKind::Binary, &random, compressed);
                // Incompressible data costs little more than stored blocks.
                assert!(m.payload.len() <= size + size / 100 + 16, "{} for {size}", m.payload.len());
            }
        }
    }
}

#[test]
fn context_takeover_shrinks_a_repeated_message() {
    let text = compressible_text(8000, 11);
    for takeover in [true, false] {
        let cfg = deflate(|d| {
            if !takeover {
                no_context(d);
            }
        });
        let mut pair = deflate_pair(cfg.clone(), cfg);
        for from in [Side::Client, Side::Server] {
            let first = round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), true).payload.len();
            let second = round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), true).payload.len();
            if takeover {
                assert!(second * 2 < first, "with takeover the repeat refers back: {second} vs {first}");
            } else {
                assert_eq!(second, first, "without takeover every message starts afresh");
            }
        }
    }
}

/// A pair in which the client asks the server for a window of `bits` and
/// the server asks the client for the same; without `takeover` the client
/// also asks that neither side keep its context.
fn window_pair(bits: u8, takeover: bool) -> Pair {
    let client = deflate(|d| {
        d.server_max_window_bits = Some(bits);
        d.threshold = 0;
        if !takeover {
            no_context(d);
        }
    });
    let server = deflate(|d| {
        d.client_max_window_bits = Some(bits);
        d.threshold = 0;
    });
    deflate_pair(client, server)
}

#[test]
fn round_trips_for_every_window_size_both_directions() {
    for bits in 8..=15u8 {
        for takeover in [true, false] {
            let mut pair = window_pair(bits, takeover);
            assert_eq!(params(pair.client.conn.deflate().unwrap()), (!takeover, !takeover, bits, bits));
            for (i, size) in [0, 1, 255, 256, 257, 1500, 12_000].into_iter().enumerate() {
                let text = compressible_text(size, u64::from(bits) * 100 + i as u64);
                let random = random_bytes(size, i as u64);
                for from in [Side::Client, Side::Server] {
                    round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), true);
                    round_trip(&mut pair, from, MessageKind::Binary, &random, true);
                    round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), true);
                }
            }
        }
    }
}

#[test]
fn threshold_decides_rsv1_on_the_wire() {
    for threshold in [0, 1, 100, 1024, 5000] {
        let cfg = deflate(|d| d.threshold = threshold);
        let mut pair = deflate_pair(cfg.clone(), cfg);
        let sizes = [0, 1, 99, 100, 101, 1023, 1024, 1025, 4999, 5000, 5001];
        for size in sizes {
            let text = compressible_text(size, size as u64);
            for from in [Side::Client, Side::Server] {
                round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), size >= threshold);
                round_trip(&mut pair, from, MessageKind::Binary, text.as_bytes(), size >= threshold);
            }
        }
    }
}

#[test]
fn compressed_output_is_fragmented_by_max_send_frame_size() {
    let cfg = config(|c| {
        c.deflate = Some(DeflateConfig::default());
        c.max_send_frame_size = 100;
    });
    let mut pair = deflate_pair_with(cfg.clone(), cfg);
    let random = random_bytes(5000, 5);
    for from in [Side::Client, Side::Server] {
        let m = round_trip(&mut pair, from, MessageKind::Binary, &random, true);
        assert!(m.firsts.len() >= 50, "{} frames", m.firsts.len());
        assert_eq!(m.firsts[0], 0x42, "first frame: binary, RSV1, no FIN");
        assert!(m.firsts[1..m.firsts.len() - 1].iter().all(|&f| f == 0x00));
        assert_eq!(m.firsts.last(), Some(&0x80));
    }
}

/// Sends `data` from `from` with `send_chunk` in pieces of the given sizes
/// (cycled), a ping after the first, and checks what arrives and the wire.
fn chunked_round_trip(pair: &mut Pair, from: Side, kind: MessageKind, data: &[u8], sizes: &[usize], compressed: bool) {
    let start = pair.endpoint(from).sent.len();
    let mut rest = data;
    let mut sizes = sizes.iter().cycle();
    let mut pieces = 0;
    loop {
        let n = (*sizes.next().unwrap()).min(rest.len());
        let (now, later) = rest.split_at(n);
        pair.endpoint(from).conn.send_chunk(kind, now, later.is_empty()).unwrap();
        pieces += 1;
        if pieces == 1 {
            pair.endpoint(from).conn.send_ping(b"between").unwrap();
        }
        pair.drive();
        rest = later;
        if rest.is_empty() {
            break;
        }
    }
    let ping = Ev::Ping(b"between".to_vec());
    let expected = if pieces == 1 { [message_ev(kind, data), ping] } else { [ping, message_ev(kind, data)] };
    let events = pair.events(from.peer());
    assert!(events == expected, "{from:?}: {} bytes in {pieces} pieces: {events:.100?}", data.len());
    assert_eq!(pair.events(from), [Ev::Pong(b"between".to_vec())]);
    let wire = pair.endpoint(from).sent[start..].to_vec();
    let messages = wire_messages(&wire);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].compressed(), compressed);
    assert!(messages[0].firsts[1..].iter().all(|f| f & 0x70 == 0), "RSV1 only on the first frame");
}

#[test]
fn fragmented_sends_are_compressed_as_one_message() {
    for takeover in [true, false] {
        for bits in [9, 15] {
            let client = deflate(|d| {
                d.server_max_window_bits = Some(bits);
                if !takeover {
                    no_context(d);
                }
            });
            let server = deflate(|d| d.client_max_window_bits = Some(bits));
            let mut pair = deflate_pair(client, server);
            let text = compressible_text(20_000, 21);
            let random = random_bytes(12_000, 21);
            for from in [Side::Client, Side::Server] {
                for sizes in [&[20_000][..], &[1024, 7], &[4096], &[3000, 0, 9000], &[1, 5000]] {
                    // Whether the message is compressed is decided by its
                    // first piece and the threshold of 1024.
                    let compressed = sizes[0] >= 1024;
                    // Text pieces split characters anywhere.
                    chunked_round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), sizes, compressed);
                    chunked_round_trip(&mut pair, from, MessageKind::Binary, &random, sizes, compressed);
                }
                // A first piece below the threshold leaves the whole message
                // uncompressed, and an empty message is fine.
                chunked_round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), &[10, 20_000], false);
                chunked_round_trip(&mut pair, from, MessageKind::Binary, b"", &[0], false);
                chunked_round_trip(&mut pair, from, MessageKind::Binary, &random[..2000], &[1500, 0], true);
            }
        }
    }
}

#[test]
fn streaming_receive_reassembles_compressed_messages() {
    let zeros = vec![0u8; 600_000];
    let text = compressible_text(150_000, 31);
    let short_text = compressible_text(3000, 32);
    let random = random_bytes(100_000, 31);
    for takeover in [true, false] {
        for segment in [None, Some(1000), Some(7)] {
            let cfg = config(|c| {
                let mut d = DeflateConfig::default();
                if !takeover {
                    no_context(&mut d);
                }
                c.deflate = Some(d);
                c.streaming = true;
                c.max_send_frame_size = 40_000;
            });
            let mut pair = deflate_pair_with(cfg.clone(), cfg);
            pair.segment = segment;
            // Tiny reads are slow (each costs a 64 KiB buffer fill), so
            // they get small messages.
            let messages: Vec<(MessageKind, &[u8])> = if segment == Some(7) {
                vec![(MessageKind::Text, short_text.as_bytes()), (MessageKind::Binary, &random[..1200])]
            } else {
                vec![
                    (MessageKind::Binary, &zeros),
                    (MessageKind::Text, text.as_bytes()),
                    (MessageKind::Binary, &random),
                    (MessageKind::Text, b""),
                    (MessageKind::Text, short_text.as_bytes()),
                ]
            };
            for from in [Side::Client, Side::Server] {
                for (kind, data) in &messages {
                    let (events, wire) = exchange(&mut pair, from, *kind, data);
                    assert_eq!(wire_messages(&wire)[0].compressed(), data.len() >= 1024);
                    for ev in &events {
                        // Inflated data comes in bounded pieces.
                        let Ev::Chunk { data, .. } = ev else { panic!("{ev:?}") };
                        assert!(data.len() <= 64 << 10, "a chunk of {}", data.len());
                    }
                    assert!(join_chunks(&events) == [message_ev(*kind, data)], "{from:?} {} bytes", data.len());
                }
            }
        }
    }
}

// ----- Window limits, checked on the wire ----------------------------------------

/// A handshake done by another HTTP stack: the server side negotiates with
/// `deflate::negotiate`, both ends start with `frames_only_with_deflate`,
/// and compressed messages flow with the agreed parameters.
#[test]
fn frames_only_with_deflate_after_an_external_handshake() {
    let offer = "permessage-deflate; client_max_window_bits, x-webkit-deflate-frame";
    let (params, answer) =
        wscore::deflate::negotiate(&[offer, "permessage-deflate; server_max_window_bits=9"], &DeflateConfig::default())
            .expect("an acceptable offer");
    assert_eq!(answer, "permessage-deflate");
    let mut cfg = Config::default();
    let mut deflate = DeflateConfig::default();
    deflate.threshold = 0;
    cfg.deflate = Some(deflate);
    let mut client =
        Connection::frames_only_with_deflate(wscore::Role::Client, cfg.clone(), params, Duration::ZERO).unwrap();
    let mut server = Connection::frames_only_with_deflate(wscore::Role::Server, cfg, params, Duration::ZERO).unwrap();
    assert_eq!(client.deflate(), Some(&params));
    let text = "compress me, ".repeat(100);
    client.send_text(&text).unwrap();
    let mut wire = Vec::new();
    client.transmit_into(&mut wire);
    assert_eq!(wire[0] & 0x40, 0x40, "RSV1 set");
    assert!(wire.len() < text.len() / 4, "{} bytes on the wire", wire.len());
    assert_eq!(server.receive(Duration::ZERO, &wire), wire.len());
    match server.poll_event() {
        Some(Event::Message(wscore::Message::Text(got))) => assert_eq!(got, text),
        other => panic!("{other:?}"),
    }
    assert_eq!(wscore::deflate::negotiate(&["x-webkit-deflate-frame"], &DeflateConfig::default()), None);
    let mut bad = DeflateParams::default();
    bad.client_max_window_bits = 16;
    assert!(matches!(
        Connection::frames_only_with_deflate(wscore::Role::Server, Config::default(), bad, Duration::ZERO),
        Err(Error::Usage(wscore::UsageError::InvalidConfig(_)))
    ));
}

/// A test-only RFC 1951 inflater (stored, fixed and dynamic Huffman
/// blocks, after zlib's `puff`) that records back-reference distances.
mod inflate {
    /// Decodes a sequence of raw deflate messages, keeping the history.
    #[derive(Default)]
    pub(crate) struct Inflater {
        pub(crate) out: Vec<u8>,
        pub(crate) max_distance: usize,
        pub(crate) matches: usize,
        pub(crate) final_block: bool,
    }

    struct Huffman {
        count: [u16; 16],
        symbol: Vec<u16>,
    }

    impl Huffman {
        fn new(lengths: &[u8]) -> Result<Self, &'static str> {
            let mut count = [0u16; 16];
            for &len in lengths {
                count[usize::from(len)] += 1;
            }
            let mut left = 1i32;
            for &c in &count[1..] {
                left = (left << 1) - i32::from(c);
                if left < 0 {
                    return Err("over-subscribed code");
                }
            }
            let mut offsets = [0u16; 16];
            for len in 1..15 {
                offsets[len + 1] = offsets[len] + count[len];
            }
            let mut symbol = vec![0; lengths.len()];
            for (sym, &len) in lengths.iter().enumerate() {
                if len != 0 {
                    symbol[usize::from(offsets[usize::from(len)])] = sym as u16;
                    offsets[usize::from(len)] += 1;
                }
            }
            count[0] = 0;
            Ok(Self { count, symbol })
        }
    }

    struct Bits<'a> {
        data: &'a [u8],
        pos: usize,
        buf: u32,
        cnt: u32,
    }

    impl Bits<'_> {
        fn bits(&mut self, n: u32) -> Result<u32, &'static str> {
            while self.cnt < n {
                let byte = *self.data.get(self.pos).ok_or("out of input")?;
                self.pos += 1;
                self.buf |= u32::from(byte) << self.cnt;
                self.cnt += 8;
            }
            let value = self.buf & ((1u32 << n) - 1);
            self.buf >>= n;
            self.cnt -= n;
            Ok(value)
        }

        fn decode(&mut self, h: &Huffman) -> Result<u16, &'static str> {
            let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
            for len in 1..16 {
                code |= self.bits(1)? as i32;
                let count = i32::from(h.count[len]);
                if code - count < first {
                    return Ok(h.symbol[(index + (code - first)) as usize]);
                }
                index += count;
                first = (first + count) << 1;
                code <<= 1;
            }
            Err("invalid code")
        }
    }

    const LBASE: [u16; 29] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227,
        258,
    ];
    const LEXT: [u8; 29] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
    const DBASE: [u16; 30] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097,
        6145, 8193, 12289, 16385, 24577,
    ];
    const DEXT: [u8; 30] =
        [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13];
    const ORDER: [usize; 19] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

    impl Inflater {
        /// Decodes one message: its payload with the tail appended, which
        /// must end exactly at a block boundary.
        pub(crate) fn message(&mut self, payload: &[u8]) -> Result<(), &'static str> {
            let mut data = payload.to_vec();
            data.extend_from_slice(&super::TAIL);
            let mut bits = Bits { data: &data, pos: 0, buf: 0, cnt: 0 };
            while !(bits.pos == data.len() && bits.cnt == 0) {
                if self.final_block {
                    return Err("data after the final block");
                }
                self.final_block = bits.bits(1)? == 1;
                match bits.bits(2)? {
                    0 => self.stored(&mut bits)?,
                    1 => {
                        let mut lengths = [8u8; 288];
                        lengths[144..256].fill(9);
                        lengths[256..280].fill(7);
                        self.codes(&mut bits, &Huffman::new(&lengths)?, &Huffman::new(&[5; 30])?)?;
                    }
                    2 => self.dynamic(&mut bits)?,
                    _ => return Err("reserved block type"),
                }
            }
            Ok(())
        }

        fn stored(&mut self, bits: &mut Bits<'_>) -> Result<(), &'static str> {
            bits.buf = 0;
            bits.cnt = 0;
            let len = bits.bits(16)? as usize;
            if bits.bits(16)? as usize != !len & 0xffff {
                return Err("stored block length complement");
            }
            let block = bits.data.get(bits.pos..bits.pos + len).ok_or("out of input")?;
            self.out.extend_from_slice(block);
            bits.pos += len;
            Ok(())
        }

        fn dynamic(&mut self, bits: &mut Bits<'_>) -> Result<(), &'static str> {
            let nlen = bits.bits(5)? as usize + 257;
            let ndist = bits.bits(5)? as usize + 1;
            let ncode = bits.bits(4)? as usize + 4;
            if nlen > 286 || ndist > 30 {
                return Err("bad counts");
            }
            let mut cl = [0u8; 19];
            for &i in &ORDER[..ncode] {
                cl[i] = bits.bits(3)? as u8;
            }
            let clcode = Huffman::new(&cl)?;
            let mut lengths = vec![0u8; nlen + ndist];
            let mut i = 0;
            while i < nlen + ndist {
                let sym = bits.decode(&clcode)?;
                let (value, repeat) = match sym {
                    0..=15 => (sym as u8, 1),
                    16 => (*lengths[..i].last().ok_or("repeat with no length")?, 3 + bits.bits(2)? as usize),
                    17 => (0, 3 + bits.bits(3)? as usize),
                    _ => (0, 11 + bits.bits(7)? as usize),
                };
                if i + repeat > nlen + ndist {
                    return Err("too many lengths");
                }
                lengths[i..i + repeat].fill(value);
                i += repeat;
            }
            if lengths[256] == 0 {
                return Err("no end-of-block code");
            }
            let lencode = Huffman::new(&lengths[..nlen])?;
            let distcode = Huffman::new(&lengths[nlen..])?;
            self.codes(bits, &lencode, &distcode)
        }

        fn codes(&mut self, bits: &mut Bits<'_>, lencode: &Huffman, distcode: &Huffman) -> Result<(), &'static str> {
            loop {
                let sym = usize::from(bits.decode(lencode)?);
                match sym {
                    0..=255 => self.out.push(sym as u8),
                    256 => return Ok(()),
                    _ => {
                        let i = sym - 257;
                        if i >= 29 {
                            return Err("bad length symbol");
                        }
                        let len = usize::from(LBASE[i]) + bits.bits(u32::from(LEXT[i]))? as usize;
                        let d = usize::from(bits.decode(distcode)?);
                        if d >= 30 {
                            return Err("bad distance symbol");
                        }
                        let dist = usize::from(DBASE[d]) + bits.bits(u32::from(DEXT[d]))? as usize;
                        if dist > self.out.len() {
                            return Err("distance too far back");
                        }
                        self.max_distance = self.max_distance.max(dist);
                        self.matches += 1;
                        let start = self.out.len() - dist;
                        for k in 0..len {
                            let byte = self.out[start + k];
                            self.out.push(byte);
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn test_inflater_decodes_the_rfc_examples() {
    let mut inflater = Inflater::default();
    inflater.message(&HELLO).unwrap();
    inflater.message(&[0xf2, 0x00, 0x11, 0x00, 0x00]).unwrap();
    assert_eq!(inflater.out, b"HelloHello");
    assert_eq!((inflater.matches, inflater.max_distance), (1, 5));
    let mut inflater = Inflater::default();
    inflater.message(&stored(&[b"Hello"])).unwrap();
    inflater.message(&[0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]).unwrap();
    assert_eq!(inflater.out, b"HelloHello");
    assert!(Inflater::default().message(&[0xf2, 0x00, 0x11, 0x00, 0x00]).is_err());
}

/// Text whose repeats lie at every distance: paragraphs of random letters
/// (chance three-byte matches anywhere) drawn from a pool of eight, so
/// whole paragraphs recur at multiples of `paragraph` bytes.
fn far_repeats(len: usize, paragraph: usize, seed: u64) -> String {
    let mut rng = Rng::new(seed);
    let pool: Vec<String> = (0..8)
        .map(|_| {
            (0..paragraph).map(|_| if rng.below(6) == 0 { ' ' } else { (b'a' + rng.below(26) as u8) as char }).collect()
        })
        .collect();
    let mut text = String::with_capacity(len + paragraph);
    while text.len() < len {
        text.push_str(&pool[rng.below(pool.len())]);
    }
    text.truncate(len);
    text
}

#[test]
fn window_limits_are_honoured_on_the_wire() {
    for bits in 8..=15u8 {
        let window = 1usize << bits;
        for takeover in [true, false] {
            let mut pair = window_pair(bits, takeover);
            assert_eq!(params(pair.server.conn.deflate().unwrap()), (!takeover, !takeover, bits, bits));
            for from in [Side::Server, Side::Client] {
                let mut inflater = Inflater::default();
                let mut sent = Vec::new();
                let (mut compressed, mut plain) = (0, 0);
                for i in 0..3u64 {
                    let text = far_repeats(4 * window + 1000, (window / 4).max(64), u64::from(bits) * 10 + i);
                    // Whole, and the last message in uneven pieces.
                    let wire = if i < 2 {
                        let (events, wire) = exchange(&mut pair, from, MessageKind::Text, text.as_bytes());
                        assert!(events == [Ev::text(&text)]);
                        wire
                    } else {
                        let start = pair.endpoint(from).sent.len();
                        chunked_round_trip(
                            &mut pair,
                            from,
                            MessageKind::Text,
                            text.as_bytes(),
                            &[window + 17, 3],
                            true,
                        );
                        pair.endpoint(from).sent[start..].to_vec()
                    };
                    let messages = wire_messages(&wire);
                    let [message] = messages.as_slice() else { panic!("{} messages", messages.len()) };
                    assert!(message.compressed());
                    if !takeover {
                        inflater.out.clear();
                    }
                    let before = inflater.out.len();
                    inflater.message(&message.payload).unwrap();
                    assert!(inflater.out[before..] == *text.as_bytes(), "the test inflater agrees");
                    sent.extend_from_slice(text.as_bytes());
                    compressed += message.payload.len();
                    plain += text.len();
                }
                let what = format!("{from:?}, window 2^{bits}, takeover {takeover}");
                println!("{what}: max distance {}, {compressed} of {plain} bytes", inflater.max_distance);
                assert!(
                    inflater.max_distance <= window,
                    "{what}: a back-reference {} bytes back, window {window}",
                    inflater.max_distance
                );
                // The window is used, not merely avoided.
                assert!(inflater.max_distance > window / 4, "{what}: max distance {}", inflater.max_distance);
                assert!(compressed < plain * 3 / 4, "{what}: {compressed} of {plain}");
            }
        }
    }
}

// ----- Property test -----------------------------------------------------------

/// `n` cases, or as many as `PROPTEST_CASES` asks for a deeper run.
fn cases(n: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { default.cases } else { n };
    ProptestConfig { cases, failure_persistence: None, ..default }
}

/// Splits `bytes` at the given points (modulo its length) into pieces.
fn split_at_points<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.extend([0, bytes.len()]);
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

/// Message bytes: random, or a short pattern repeated (compressible).
fn message_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..3000),
        (prop::collection::vec(any::<u8>(), 1..40), 0usize..20_000).prop_map(|(pattern, n)| pattern
            .iter()
            .cycle()
            .take(n)
            .copied()
            .collect()),
    ]
}

/// Text of characters of every UTF-8 length, from bytes.
fn bytes_to_text(bytes: &[u8]) -> String {
    const CHARS: [char; 8] = ['a', 'b', ' ', '\n', 'é', '€', '𝄞', '\u{7ff}'];
    bytes.iter().map(|b| CHARS[usize::from(b % 8)]).collect()
}

proptest! {
    #![proptest_config(cases(40))]

    #[test]
    fn compress_then_decompress_is_identity(
        messages in prop::collection::vec((any::<bool>(), message_bytes()), 1..6),
        takeover in any::<bool>(),
        bits in 8u8..=15,
        threshold in prop_oneof![Just(0usize), 0usize..3000],
        streaming in any::<bool>(),
        from_client in any::<bool>(),
        points in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let client = deflate(|d| {
            d.threshold = threshold;
            d.server_max_window_bits = Some(bits);
            d.server_no_context_takeover = !takeover;
            d.client_no_context_takeover = !takeover;
        });
        let server = deflate(|d| {
            d.threshold = threshold;
            d.client_max_window_bits = Some(bits);
        });
        let mut client = with(Some(client));
        let mut server = with(Some(server));
        client.streaming = streaming;
        server.streaming = streaming;
        let mut pair = deflate_pair_with(client, server);
        let (from, to) = if from_client { (Side::Client, Side::Server) } else { (Side::Server, Side::Client) };
        let mut expected = Vec::new();
        let mut lengths = Vec::new();
        for (text, bytes) in &messages {
            let conn = &mut pair.endpoint(from).conn;
            if *text {
                let text = bytes_to_text(bytes);
                conn.send_text(&text).unwrap();
                lengths.push(text.len());
                expected.push(Ev::Text(text));
            } else {
                conn.send_binary(bytes).unwrap();
                lengths.push(bytes.len());
                expected.push(Ev::Binary(bytes.clone()));
            }
        }
        let wire = pair.endpoint(from).conn.poll_transmit().to_vec();
        pair.endpoint(from).conn.advance_transmit(wire.len());
        let on_wire = wire_messages(&wire);
        prop_assert_eq!(on_wire.len(), messages.len());
        for (message, len) in on_wire.iter().zip(lengths) {
            prop_assert_eq!(message.compressed(), len >= threshold);
        }
        for piece in split_at_points(&wire, &points) {
            pair.inject(to, piece);
        }
        let events = pair.events(to);
        prop_assert_eq!(join_chunks(&events), expected);
    }
}

// ----- Decompression bomb --------------------------------------------------------

#[test]
fn the_bomb_inflates_as_designed() {
    let payload = bomb(1000);
    let mut inflater = Inflater::default();
    inflater.message(&payload).unwrap();
    assert_eq!(inflater.out.len(), 1 + 258 * 1000);
    assert!(inflater.out.iter().all(|&b| b == 0));
    // wscore agrees, given room.
    let cfg = with(Some(DeflateConfig::default()));
    let mut pair = deflate_pair_with(cfg.clone(), cfg);
    pair.inject(Side::Server, &frame_to(Side::Server, BINARY | RSV1, &payload));
    assert_eq!(pair.events(Side::Server), [Ev::Binary(vec![0; 1 + 258 * 1000])]);
}

/// Enough 258-byte matches to inflate to 1 GiB.
const GIB_MATCHES: u64 = (1 << 30) / 258 + 1;

#[test]
fn decompression_bomb_fails_with_1009() {
    let payload = bomb(GIB_MATCHES);
    // Under the limit as sent: only inflating exceeds it.
    assert!(payload.len() < 1 << 20, "{}", payload.len());
    for to in [Side::Server, Side::Client] {
        for piece in [usize::MAX, 4096] {
            let cfg = config(|c| {
                c.deflate = Some(DeflateConfig::default());
                c.max_message_size = 1 << 20;
            });
            let mut pair = deflate_pair_with(cfg.clone(), cfg);
            let wire = frame_to(to, BINARY | RSV1, &payload);
            let mut events = Vec::new();
            for chunk in wire.chunks(piece.min(wire.len())) {
                pair.inject(to, chunk);
                events.extend(pair.events(to));
                if !events.is_empty() {
                    break;
                }
            }
            assert_eq!(events, [Ev::failed(Error::Protocol(ProtocolError::MessageTooLarge))], "to {to:?}");
            pair.drive();
            assert!(matches!(pair.events(to.peer()).first(), Some(Ev::Close { code: CloseCode::TOO_BIG, .. })));
        }
    }
}

#[test]
fn a_bomb_in_streaming_mode_arrives_in_bounded_chunks() {
    // Streaming has no message limit: the 16 MiB arrive 64 KiB at a time.
    let matches = (16 << 20) / 258;
    let payload = bomb(matches);
    let cfg = config(|c| {
        c.deflate = Some(DeflateConfig::default());
        c.streaming = true;
    });
    let mut pair = deflate_pair_with(cfg.clone(), cfg);
    let wire = frame_to(Side::Server, BINARY | RSV1, &payload);
    let (mut total, mut chunks, mut fin) = (0u64, 0, false);
    for piece in wire.chunks(16 << 10) {
        assert_eq!(pair.server.conn.receive(NOW, piece), piece.len());
        while let Some(event) = pair.server.conn.poll_event() {
            let Event::Chunk(chunk) = event else { panic!("{event:?}") };
            assert!(!fin && chunk.data.len() <= 64 << 10 && chunk.data.iter().all(|&b| b == 0));
            total += chunk.data.len() as u64;
            chunks += 1;
            fin = chunk.fin;
        }
    }
    assert!(fin);
    assert_eq!(total, 1 + 258 * matches);
    assert!(chunks >= 256, "{chunks}");
}

#[test]
fn takeover_carries_on_after_the_idle_release() {
    // A quiet spell frees the compressor (the next message starts from a
    // fresh context) and parks the inflater's history: messages before and
    // after must still arrive intact, both ways, and a sender that keeps
    // its context across the spell must still be understood.
    let mut pair = default_pair();
    let mut keeper = deflate_pair_with(
        with(Some(DeflateConfig::default())),
        config(|c| {
            c.deflate = Some(DeflateConfig::default());
            c.buffer_release_delay = None;
        }),
    );
    for round in 0..3u64 {
        for from in [Side::Client, Side::Server] {
            for seed in 0..3 {
                let text = compressible_text(3000 + 500 * seed as usize, round * 10 + seed);
                round_trip(&mut pair, from, MessageKind::Text, text.as_bytes(), true);
                round_trip(&mut keeper, from, MessageKind::Text, text.as_bytes(), true);
            }
        }
        pair.advance_time(Duration::from_secs(3));
        keeper.advance_time(Duration::from_secs(3));
    }
    // After the spell, a repeated message is small only where the sender
    // kept its context: the server without a release delay.
    let text = compressible_text(4000, 99);
    round_trip(&mut keeper, Side::Server, MessageKind::Text, text.as_bytes(), true);
    keeper.advance_time(Duration::from_secs(3));
    let kept = round_trip(&mut keeper, Side::Server, MessageKind::Text, text.as_bytes(), true);
    round_trip(&mut pair, Side::Server, MessageKind::Text, text.as_bytes(), true);
    pair.advance_time(Duration::from_secs(3));
    let fresh = round_trip(&mut pair, Side::Server, MessageKind::Text, text.as_bytes(), true);
    assert!(kept.payload.len() * 2 < fresh.payload.len(), "{} vs {}", kept.payload.len(), fresh.payload.len());
}
