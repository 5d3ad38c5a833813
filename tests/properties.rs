//! Property tests: (a) the frame header codec and (b) masking; (c) that how
//! received bytes are split never changes what a connection reports; (d)
//! that arbitrary input never panics, always ends in exactly one `Closed`
//! and never yields more than the configured limits; (e) that arbitrary
//! operations on a connected pair, with lost traffic and timers, keep
//! messages in order and end both sides cleanly.
//!
//! Case counts are small so the suite stays fast; set `PROPTEST_CASES` for
//! a deeper run (e.g. `PROPTEST_CASES=20000 cargo test --release --test properties`).

mod common;

use std::time::Duration;

use common::{Ev, Pair, Side, drain, join_chunks};
use proptest::prelude::*;
use wscore::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, apply_mask};
use wscore::{Accept, CloseCode, Config, Connection, MessageKind, Reject, Role, State};

const NOW: Duration = Duration::ZERO;

/// `n` cases (kept small so the suite stays fast), or as many as the
/// `PROPTEST_CASES` environment variable asks for a deeper run.
fn cases(n: u32) -> ProptestConfig {
    let default = ProptestConfig::default();
    let cases = if std::env::var_os("PROPTEST_CASES").is_some() { default.cases } else { n };
    // No regression files: failures are reported with their minimal input.
    ProptestConfig { cases, failure_persistence: None, ..default }
}

/// Splits `bytes` at the given points (taken modulo its length, any order)
/// into at least one piece, none empty unless `bytes` is.
fn split_at_points<'a>(bytes: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (bytes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(bytes.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

// ----- (a) Frame header codec -----------------------------------------------

fn opcode() -> impl Strategy<Value = OpCode> {
    prop::sample::select(vec![
        OpCode::Continuation,
        OpCode::Text,
        OpCode::Binary,
        OpCode::Close,
        OpCode::Ping,
        OpCode::Pong,
    ])
}

/// Payload lengths from each of the three encodings, and their edges.
fn payload_len() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=125,
        126u64..=0xFFFF,
        0x1_0000u64..(1 << 63),
        prop::sample::select(vec![0, 125, 126, 0xFFFF, 0x1_0000, (1 << 63) - 1]),
    ]
}

fn frame_header() -> impl Strategy<Value = FrameHeader> {
    (any::<bool>(), 0u8..8, opcode(), any::<Option<[u8; 4]>>(), payload_len())
        .prop_map(|(fin, rsv, opcode, mask, payload_len)| FrameHeader { fin, rsv, opcode, mask, payload_len })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn header_encode_decode_round_trip(header in frame_header()) {
        let mut buf = [0u8; MAX_HEADER_LEN];
        let len = header.encode(&mut buf);
        prop_assert_eq!(len, header.encoded_len());
        let expected_len = match header.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        } + if header.mask.is_some() { 4 } else { 0 };
        prop_assert_eq!(len, expected_len, "minimal length encoding");
        prop_assert_eq!(FrameHeader::decode(&buf[..len]), Ok(Some((header, len))));
        // Trailing bytes (the payload) are not part of the header.
        prop_assert_eq!(FrameHeader::decode(&buf), Ok(Some((header, len))));
        // Every proper prefix asks for more.
        for cut in 0..len {
            prop_assert_eq!(FrameHeader::decode(&buf[..cut]), Ok(None));
        }
    }
}

// ----- (b) Masking ----------------------------------------------------------

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn mask_twice_is_identity(data in prop::collection::vec(any::<u8>(), 0..300), key: [u8; 4], offset in 0usize..8) {
        let mut masked = data.clone();
        apply_mask(&mut masked, key, offset);
        for (i, (m, d)) in masked.iter().zip(&data).enumerate() {
            prop_assert_eq!(*m, d ^ key[(offset + i) % 4]);
        }
        apply_mask(&mut masked, key, offset);
        prop_assert_eq!(masked, data);
    }

    #[test]
    fn mask_in_pieces_equals_mask_at_once(
        data in prop::collection::vec(any::<u8>(), 0..300),
        key: [u8; 4],
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut whole = data.clone();
        apply_mask(&mut whole, key, 0);
        let mut pieces = data.clone();
        let mut at = 0;
        for piece in split_at_points(&data, &points) {
            let len = piece.len();
            apply_mask(&mut pieces[at..at + len], key, at);
            at += len;
        }
        prop_assert_eq!(pieces, whole);
    }
}

// ----- (c) Splitting received bytes changes nothing -------------------------

/// Something a client sends.
#[derive(Clone, Debug)]
enum Outgoing {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    /// A message sent with `send_chunk` in pieces cut at `cuts` (which may
    /// split characters), with a ping between pieces if `pings`.
    Chunked {
        kind: MessageKind,
        data: Vec<u8>,
        cuts: Vec<usize>,
        pings: bool,
    },
}

fn outgoing() -> impl Strategy<Value = Outgoing> {
    let cuts = prop::collection::vec(any::<usize>(), 0..5);
    prop_oneof![
        ".{0,40}".prop_map(Outgoing::Text),
        any::<String>().prop_map(Outgoing::Text),
        prop::collection::vec(any::<u8>(), 0..300).prop_map(Outgoing::Binary),
        prop::collection::vec(any::<u8>(), 0..=125).prop_map(Outgoing::Ping),
        (any::<String>(), cuts.clone(), any::<bool>()).prop_map(|(text, cuts, pings)| Outgoing::Chunked {
            kind: MessageKind::Text,
            data: text.into_bytes(),
            cuts,
            pings
        }),
        (prop::collection::vec(any::<u8>(), 0..200), cuts, any::<bool>())
            .prop_map(|(data, cuts, pings)| Outgoing::Chunked { kind: MessageKind::Binary, data, cuts, pings }),
    ]
}

/// Sends every item from a frames-only client and returns the bytes it
/// wrote and the events a receiver must report in whole-message mode.
fn encode(sends: &[Outgoing], max_send_frame_size: usize) -> (Vec<u8>, Vec<Ev>) {
    let mut config = Config::default();
    config.max_send_frame_size = max_send_frame_size;
    let mut client = Connection::frames_only(Role::Client, config, NOW).unwrap();
    let mut expected = Vec::new();
    for send in sends {
        match send {
            Outgoing::Text(text) => {
                client.send_text(text).unwrap();
                expected.push(Ev::text(text));
            }
            Outgoing::Binary(data) => {
                client.send_binary(data).unwrap();
                expected.push(Ev::binary(data));
            }
            Outgoing::Ping(payload) => {
                client.send_ping(payload).unwrap();
                expected.push(Ev::Ping(payload.clone()));
            }
            Outgoing::Chunked { kind, data, cuts, pings } => {
                let pieces = split_at_points(data, cuts);
                for (i, piece) in pieces.iter().enumerate() {
                    let fin = i + 1 == pieces.len();
                    client.send_chunk(*kind, piece, fin).unwrap();
                    if *pings && !fin {
                        client.send_ping(b"between").unwrap();
                        expected.push(Ev::Ping(b"between".to_vec()));
                    }
                }
                expected.push(match kind {
                    MessageKind::Text => Ev::Text(String::from_utf8(data.clone()).unwrap()),
                    MessageKind::Binary => Ev::Binary(data.clone()),
                });
            }
        }
    }
    let mut wire = Vec::new();
    client.transmit_into(&mut wire);
    (wire, expected)
}

/// Feeds `pieces` one after another to a fresh frames-only server, draining
/// events after each, and returns all events.
fn receive_in_pieces(pieces: &[&[u8]], streaming: bool) -> Vec<Ev> {
    let mut config = Config::default();
    config.streaming = streaming;
    let mut server = Connection::frames_only(Role::Server, config, NOW).unwrap();
    let mut events = Vec::new();
    for piece in pieces {
        let mut piece: &[u8] = piece;
        loop {
            let n = server.receive(NOW, piece);
            piece = &piece[n..];
            events.extend(drain(&mut server));
            if piece.is_empty() || n == 0 {
                break;
            }
        }
    }
    assert_eq!(server.state(), State::Open);
    events
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn split_points_do_not_change_events(
        sends in prop::collection::vec(outgoing(), 0..8),
        max_send_frame_size in prop_oneof![1usize..40, Just(1 << 20)],
        points in prop::collection::vec(any::<usize>(), 0..24),
        byte_by_byte in prop::bool::weighted(0.1),
    ) {
        let (wire, expected) = encode(&sends, max_send_frame_size);
        let pieces = if byte_by_byte { wire.chunks(1).collect() } else { split_at_points(&wire, &points) };

        let whole = receive_in_pieces(&[&wire], false);
        prop_assert_eq!(&whole, &expected);
        let split = receive_in_pieces(&pieces, false);
        prop_assert_eq!(&split, &expected);

        let streamed_whole = receive_in_pieces(&[&wire], true);
        let streamed_split = receive_in_pieces(&pieces, true);
        for events in [&streamed_whole, &streamed_split] {
            prop_assert!(events.iter().all(|e| matches!(e, Ev::Chunk { .. } | Ev::Ping(_))), "{:?}", events);
            prop_assert_eq!(&join_chunks(events), &expected);
        }
    }
}

// ----- (d) Arbitrary input --------------------------------------------------

/// Something a fuzzing peer sends: raw bytes, or a frame with arbitrary
/// header fields (any opcode, reserved bits, masked or not) that is often
/// close enough to valid to get past the header checks.
#[derive(Clone, Debug)]
enum Junk {
    Raw(Vec<u8>),
    Frame { fin: bool, rsv: u8, opcode: u8, mask: Option<[u8; 4]>, payload: Vec<u8> },
}

impl Junk {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Raw(bytes) => out.extend_from_slice(bytes),
            Self::Frame { fin, rsv, opcode, mask, payload } => {
                out.push(u8::from(*fin) << 7 | rsv << 4 | opcode);
                let mask_bit = if mask.is_some() { 0x80 } else { 0 };
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
                let start = out.len() + if mask.is_some() { 4 } else { 0 };
                if let Some(key) = mask {
                    out.extend_from_slice(key);
                }
                out.extend_from_slice(payload);
                if let Some(key) = mask {
                    apply_mask(&mut out[start..], *key, 0);
                }
            }
        }
    }
}

/// A frame of kind `opcode` in the direction `masked` says.
fn frame(opcode: u8, fin: bool, payload: Vec<u8>, mask: Option<[u8; 4]>) -> Junk {
    Junk::Frame { fin, rsv: 0, opcode, mask, payload }
}

/// A piece of input from a peer whose frames are masked if `masked`: mostly
/// well-formed messages (fragmented, with pings between fragments, some
/// over the frame or message limits of [`small_config`]) and control
/// frames, sometimes a frame with arbitrary header fields or raw bytes.
fn junk(masked: bool) -> impl Strategy<Value = Vec<Junk>> {
    let key = any::<[u8; 4]>().prop_map(move |k| masked.then_some(k));
    let text_piece = prop_oneof![
        3 => "[ -~é€]{0,40}".prop_map(String::into_bytes),
        1 => "[a-z]{1000,1100}".prop_map(String::into_bytes),
        // Not always UTF-8 on its own, but may be completed by the next piece.
        1 => prop::collection::vec(any::<u8>(), 0..4),
    ];
    let binary_piece = prop_oneof![
        6 => prop::collection::vec(any::<u8>(), 0..40),
        1 => prop::collection::vec(any::<u8>(), 1000..1100),
    ];
    // Frames within the frame limit, several of which exceed the message limit.
    let big_piece = prop::collection::vec(any::<u8>(), 700..=1024);
    let message = (
        prop_oneof![
            Just(1u8).prop_flat_map(move |op| (Just(op), prop::collection::vec(text_piece.clone(), 1..8))),
            Just(2u8).prop_flat_map(move |op| (Just(op), prop::collection::vec(binary_piece.clone(), 1..8))),
            Just(2u8).prop_flat_map(move |op| (Just(op), prop::collection::vec(big_piece.clone(), 3..8))),
        ],
        prop::collection::vec(any::<bool>(), 8),
        key.clone(),
    )
        .prop_map(|((opcode, pieces), pings, key)| {
            let last = pieces.len() - 1;
            let mut frames = Vec::new();
            for (i, piece) in pieces.into_iter().enumerate() {
                frames.push(frame(if i == 0 { opcode } else { 0 }, i == last, piece, key));
                if i < last && pings[i] {
                    frames.push(frame(9, true, b"hb".to_vec(), key));
                }
            }
            frames
        });
    let control = (
        prop_oneof![
            3 => (prop_oneof![Just(9u8), Just(10)], prop::collection::vec(any::<u8>(), 0..=125)),
            1 => (Just(8u8), (prop_oneof![Just(1000u16), Just(1001), Just(4000), any::<u16>()], "[a-z]{0,10}")
                .prop_map(|(code, reason)| [&code.to_be_bytes()[..], reason.as_bytes()].concat())),
        ],
        key,
    )
        .prop_map(|((opcode, payload), key)| vec![frame(opcode, true, payload, key)]);
    let arbitrary = (
        any::<bool>(),
        0u8..8,
        0u8..16,
        any::<Option<[u8; 4]>>(),
        prop_oneof![prop::collection::vec(any::<u8>(), 0..130), prop::collection::vec(any::<u8>(), 0..1500)],
    )
        .prop_map(|(fin, rsv, opcode, mask, payload)| vec![Junk::Frame { fin, rsv, opcode, mask, payload }]);
    let raw = prop::collection::vec(any::<u8>(), 0..40).prop_map(|bytes| vec![Junk::Raw(bytes)]);
    prop_oneof![6 => message, 3 => control, 1 => arbitrary, 1 => raw]
}

fn junk_bytes(masked: bool) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(junk(masked), 0..8).prop_map(|units| {
        let mut out = Vec::new();
        for junk in units.iter().flatten() {
            junk.write(&mut out);
        }
        out
    })
}

fn small_config(streaming: bool) -> Config {
    let mut config = Config::default();
    config.max_frame_size = 1024;
    config.max_message_size = 4096;
    config.streaming = streaming;
    config
}

/// Checks one event against the limits of [`small_config`].
fn check_limits(ev: &Ev) {
    match ev {
        Ev::Text(t) => assert!(t.len() <= 4096, "text message of {}", t.len()),
        Ev::Binary(b) => assert!(b.len() <= 4096, "binary message of {}", b.len()),
        Ev::Chunk { data, .. } => assert!(data.len() <= 1024, "chunk of {}", data.len()),
        Ev::Ping(p) | Ev::Pong(p) => assert!(p.len() <= 125),
        Ev::Close { reason, .. } => assert!(reason.len() <= 123),
        _ => {}
    }
}

/// The outcome rules after arbitrary input: events respect the limits and
/// nothing follows `Closed` (checked as they are collected); a connection
/// without `Closed` is still usable; EOF then ends it with exactly one
/// `Closed`, after which its transport may be closed.
fn check_outcome(conn: &mut Connection, mut events: Vec<Ev>) {
    events.iter().for_each(check_limits);
    let closed = events.iter().filter(|e| matches!(e, Ev::Closed(_))).count();
    assert!(closed <= 1);
    if closed == 1 {
        assert_eq!(conn.state(), State::Closed);
        assert!(matches!(events.last(), Some(Ev::Closed(_))));
    } else {
        assert_ne!(conn.state(), State::Closed);
        if conn.state() == State::Open {
            conn.send_ping(b"alive").unwrap();
            conn.send_text("still working").unwrap();
        }
    }
    conn.handle_eof();
    events.extend(drain(conn));
    // An answer to the peer's close may still be owed: once it is
    // transmitted, the closing handshake is over.
    let mut rest = Vec::new();
    conn.transmit_into(&mut rest);
    events.extend(drain(conn));
    assert_eq!(events.iter().filter(|e| matches!(e, Ev::Closed(_))).count(), 1, "{events:?}");
    assert!(matches!(events.last(), Some(Ev::Closed(_))));
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.is_finished());
    // Input after the end is ignored.
    let _ = conn.receive(NOW, b"\x81\x05hello");
    assert!(conn.poll_event().is_none());
}

/// Feeds `pieces` to `conn`, collecting events; a server's upgrade request
/// is accepted if `accept`, otherwise rejected with 404.
fn feed(conn: &mut Connection, pieces: &[&[u8]], accept: bool) -> Vec<Ev> {
    let mut events = Vec::new();
    for piece in pieces {
        let mut piece: &[u8] = piece;
        while !piece.is_empty() {
            let n = conn.receive(NOW, piece);
            piece = &piece[n..];
            if n == 0 {
                break;
            }
        }
        loop {
            let batch = drain(conn);
            let request = batch.iter().any(|e| matches!(e, Ev::Request { .. }));
            if matches!(events.last(), Some(Ev::Closed(_))) {
                assert!(batch.is_empty(), "{batch:?} after Closed");
            }
            events.extend(batch);
            if !request {
                break;
            }
            if accept {
                conn.accept(&Accept::new()).unwrap();
            } else {
                conn.reject(&Reject::new(404)).unwrap();
            }
        }
    }
    events
}

const REQUEST: &[u8] = b"GET /fuzz HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

proptest! {
    #![proptest_config(cases(192))]

    #[test]
    fn arbitrary_frames_to_frames_only_server(
        bytes in junk_bytes(true),
        points in prop::collection::vec(any::<usize>(), 0..8),
        streaming: bool,
    ) {
        let mut server = Connection::frames_only(Role::Server, small_config(streaming), NOW).unwrap();
        let events = feed(&mut server, &split_at_points(&bytes, &points), true);
        check_outcome(&mut server, events);
    }

    #[test]
    fn arbitrary_bytes_to_frames_only_server(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        points in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut server = Connection::frames_only(Role::Server, small_config(false), NOW).unwrap();
        let events = feed(&mut server, &split_at_points(&bytes, &points), true);
        check_outcome(&mut server, events);
    }

    #[test]
    fn arbitrary_bytes_to_handshaking_server(
        prefix in prop_oneof![
            Just(Vec::new()),
            Just(REQUEST.to_vec()),
            // The request with one byte changed.
            (0..REQUEST.len(), any::<u8>()).prop_map(|(i, b)| {
                let mut r = REQUEST.to_vec();
                r[i] = b;
                r
            }),
            "[ -~\r\n]{0,200}".prop_map(String::into_bytes),
        ],
        frames in junk_bytes(true),
        points in prop::collection::vec(any::<usize>(), 0..8),
        accept: bool,
        streaming: bool,
    ) {
        let bytes = [prefix, frames].concat();
        let mut server = Connection::server(small_config(streaming), NOW).unwrap();
        let events = feed(&mut server, &split_at_points(&bytes, &points), accept);
        check_outcome(&mut server, events);
    }

    #[test]
    fn arbitrary_frames_to_connected_client(
        bytes in junk_bytes(false),
        points in prop::collection::vec(any::<usize>(), 0..8),
        streaming: bool,
    ) {
        let mut pair = Pair::new(small_config(streaming), Config::default());
        let events = feed(&mut pair.client.conn, &split_at_points(&bytes, &points), true);
        check_outcome(&mut pair.client.conn, events);
    }
}

// ----- (e) Arbitrary operations on a connected pair ---------------------------

/// Something a test does to a [`Pair`].
#[derive(Clone, Debug)]
enum Op {
    Send(Side, bool, Vec<u8>),
    Ping(Side),
    Close(Side),
    Deliver(Side),
    Drive,
    Advance(u64),
    Drop(Side, bool),
    Segment(Option<usize>),
}

fn op() -> impl Strategy<Value = Op> {
    let side = prop_oneof![Just(Side::Client), Just(Side::Server)];
    prop_oneof![
        6 => (side.clone(), any::<bool>(), prop::collection::vec(any::<u8>(), 0..300))
            .prop_map(|(side, text, data)| Op::Send(side, text, data)),
        2 => side.clone().prop_map(Op::Ping),
        1 => side.clone().prop_map(Op::Close),
        3 => side.clone().prop_map(Op::Deliver),
        3 => Just(Op::Drive),
        3 => (0u64..12_000).prop_map(Op::Advance),
        1 => (side, prop::bool::weighted(0.3)).prop_map(|(side, drop)| Op::Drop(side, drop)),
        1 => prop::option::of(1usize..50).prop_map(Op::Segment),
    ]
}

/// Timers small enough for the operations' clock steps to reach them.
fn timer_config() -> impl Strategy<Value = Config> {
    (prop::option::of(1u64..10), prop::option::of(5u64..40), 1u64..10).prop_map(|(ping, idle, close)| {
        let mut config = Config::default();
        config.ping_interval = ping.map(Duration::from_secs);
        // Config refuses an idle timeout no ping can beat.
        config.idle_timeout = idle.map(|idle| Duration::from_secs(idle.max(ping.unwrap_or(0) + 1)));
        config.close_timeout = Duration::from_secs(close);
        config
    })
}

/// The messages in `events`, as `(is_text, bytes)`.
fn messages(events: &[Ev]) -> Vec<(bool, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Ev::Text(t) => Some((true, t.clone().into_bytes())),
            Ev::Binary(b) => Some((false, b.clone())),
            _ => None,
        })
        .collect()
}

fn is_subsequence<T: PartialEq>(sub: &[T], of: &[T]) -> bool {
    let mut of = of.iter();
    sub.iter().all(|x| of.any(|y| y == x))
}

proptest! {
    #![proptest_config(cases(96))]

    /// Whatever the two applications do, and whatever the network loses:
    /// nothing panics, no event follows `Closed` (checked by the harness),
    /// messages arrive in order, unchanged and at most once (all of them,
    /// in order, if nothing was lost), and once both transports end each
    /// side has reported exactly one `Closed` and may close its socket.
    #[test]
    fn arbitrary_operations_on_a_pair(
        client_config in timer_config(),
        server_config in timer_config(),
        ops in prop::collection::vec(op(), 0..40),
    ) {
        let mut pair = Pair::new(client_config, server_config);
        let mut sent: [Vec<(bool, Vec<u8>)>; 2] = Default::default();
        let mut received: [Vec<Ev>; 2] = Default::default();
        let mut lossy = false;
        for op in ops {
            match op {
                Op::Send(side, text, data) => {
                    let conn = &mut pair.endpoint(side).conn;
                    let payload = if text { String::from_utf8_lossy(&data).into_owned().into_bytes() } else { data };
                    let result = if text {
                        conn.send_text(std::str::from_utf8(&payload).unwrap())
                    } else {
                        conn.send_binary(&payload)
                    };
                    if result.is_ok() {
                        sent[side as usize].push((text, payload));
                    } else {
                        prop_assert_ne!(conn.state(), State::Open, "{:?}", result);
                    }
                }
                Op::Ping(side) => {
                    let conn = &mut pair.endpoint(side).conn;
                    if conn.send_ping(b"op").is_err() {
                        prop_assert_ne!(conn.state(), State::Open);
                    }
                }
                Op::Close(side) => {
                    let now = pair.now;
                    let conn = &mut pair.endpoint(side).conn;
                    if conn.close(now, CloseCode::NORMAL, "op").is_err() {
                        prop_assert_ne!(conn.state(), State::Open);
                    }
                }
                Op::Deliver(side) => {
                    pair.deliver(side);
                }
                Op::Drive => pair.drive(),
                Op::Advance(ms) => pair.advance_time(Duration::from_millis(ms)),
                Op::Drop(side, drop) => {
                    lossy |= drop;
                    pair.set_dropping(side, drop);
                }
                Op::Segment(segment) => pair.segment = segment,
            }
            for side in [Side::Client, Side::Server] {
                received[side as usize].extend(pair.events(side));
            }
        }

        // The end: both transports close (each after what was in flight).
        pair.drive();
        for side in [Side::Client, Side::Server] {
            pair.set_dropping(side.peer(), true);
            pair.deliver_eof(side);
        }
        for side in [Side::Client, Side::Server] {
            received[side as usize].extend(pair.events(side));
            let events = &received[side as usize];
            let closed = events.iter().filter(|e| matches!(e, Ev::Closed(_))).count();
            prop_assert_eq!(closed, 1, "{:?}: {:?}", side, events);
            prop_assert!(matches!(events.last(), Some(Ev::Closed(_))));
            prop_assert!(pair.is_finished(side), "{:?} not finished", side);
            let got = messages(events);
            let from_peer = &sent[side.peer() as usize];
            if lossy {
                prop_assert!(is_subsequence(&got, from_peer), "{:?} got messages not sent in that order", side);
            } else {
                prop_assert!(from_peer.starts_with(&got), "{:?} got messages not sent in that order", side);
                // Unless it failed on its own (a timeout), it got them all.
                let Some(Ev::Closed(closed)) = events.last() else { unreachable!() };
                if matches!(closed.error, None | Some(wscore::Error::ConnectionLost)) {
                    prop_assert_eq!(got.len(), from_peer.len(), "{:?} missed messages: {:?}", side, closed);
                }
            }
        }
    }
}
