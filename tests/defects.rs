//! Regression tests for the defects a review found in the first core, one
//! test (or a few) per defect, named after it. Each failed on that core
//! (commit e540f91) and passes now.
//!
//! 1. A peeked message whose buffer a release timer freed: panic.
//! 2. The receive side buffered without bound while an event waited.
//! 3. Errors did not stay set: actions after a failure said "closing".
//! 4. A close code lost to a reset: the transport was closed with unread
//!    input (the loopback test is in `tests/blocking.rs`).
//! 5. Compressed frames were held to `max_frame_size` by their compressed
//!    length, refusing what the plain path accepts.
//! 6. `Closed::clean` was true before our answering close was handed out.
//! 7. A 426 without `Upgrade`; HTTP/1.0 answered with 505.
//!
//! Memory is counted by a global allocator, per thread.

#![allow(unsafe_code)]

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::time::Duration;

use common::{Ev, Pair, Side, client_frame, config, drain, feed_all};
use wscore::deflate::DeflateConfig;
use wscore::{
    CloseCode, Config, Connection, Error, Event, EventKind, HandshakeError, MessageKind, ProtocolError, Role, State,
    UsageError,
};

const NOW: Duration = Duration::ZERO;
const BINARY: u8 = 0x2;
const FIN: u8 = 0x80;

fn server(config: Config) -> Connection {
    Connection::frames_only(Role::Server, config, NOW).unwrap()
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// A binary message of `len` bytes in `pieces` frames, as a client sends it.
fn fragmented(data: &[u8], pieces: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = data.chunks(data.len().div_ceil(pieces)).collect();
    let mut wire = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        let opcode = if i == 0 { BINARY } else { 0 };
        let fin = if i + 1 == chunks.len() { FIN } else { 0 };
        wire.extend(client_frame(fin | opcode, chunk));
    }
    wire
}

// ===== 1. Pending events survive timers ======================================

/// Peek, then a timer past the buffer-release deadline, then poll: the
/// order an async adapter uses when its timer fires between the two.
fn peek_timer_poll(wire: &[u8], expected: &[u8]) {
    let mut conn = server(Config::default());
    // A large message first, so drained large buffers are scheduled for
    // release one `buffer_release_delay` later.
    let warm = pattern(20_000);
    assert_eq!(feed_all(&mut conn, NOW, &fragmented(&warm, 3)), [Ev::binary(&warm)]);
    let release = conn.poll_timeout().expect("a release deadline");
    assert!(feed_all(&mut conn, NOW, &[]).is_empty());
    let mut rest = wire;
    while conn.peek_event().is_none() {
        let n = conn.receive(NOW, rest);
        rest = &rest[n..];
    }
    assert_eq!(conn.peek_event(), Some(EventKind::Message));
    conn.handle_timeout(release + Duration::from_secs(5));
    match conn.poll_event() {
        Some(Event::Message(wscore::Message::Binary(got))) => assert_eq!(got, expected),
        other => panic!("{other:?}"),
    }
}

#[test]
fn defect1_peeked_fragmented_message_survives_the_buffer_release_timer() {
    let data = pattern(12_000);
    peek_timer_poll(&fragmented(&data, 3), &data);
}

#[test]
fn defect1_peeked_single_frame_message_survives_the_buffer_release_timer() {
    let data = pattern(12_000);
    peek_timer_poll(&client_frame(FIN | BINARY, &data), &data);
}

#[test]
fn defect1_peeked_event_survives_more_input_and_transmission() {
    let mut conn = server(Config::default());
    let data = pattern(9_000);
    let wire = fragmented(&data, 2);
    assert_eq!(conn.receive(NOW, &wire), wire.len());
    assert_eq!(conn.peek_event(), Some(EventKind::Message));
    // More input (a ping behind the message), a transmission, a timer.
    let ping = client_frame(FIN | 0x9, b"p");
    assert_eq!(conn.receive(NOW, &ping), ping.len());
    conn.send_text("out").unwrap();
    let mut wire = Vec::new();
    conn.transmit_into(&mut wire);
    conn.handle_timeout(Duration::from_secs(60));
    assert_eq!(drain(&mut conn), [Ev::binary(&data), Ev::Ping(b"p".to_vec())]);
}

// ===== 2. The receive side is bounded =======================================

#[test]
fn defect2_unprocessed_input_is_bounded_while_an_event_waits() {
    let bound = Config::default().max_unprocessed_input;
    let mut conn = server(Config::default());
    let message = client_frame(FIN | BINARY, b"waiting");
    assert_eq!(conn.receive(NOW, &message), message.len());
    assert_eq!(conn.peek_event(), Some(EventKind::Message));
    // 400,000 pings (50 MiB) offered behind the waiting message.
    let ping = client_frame(FIN | 0x9, &[0xA5; 125]);
    let chunk: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 512).collect();
    let offered = 400_000 * ping.len();
    let before = counting::current();
    counting::reset_peak();
    let mut taken = 0;
    let mut refused = 0;
    for _ in 0..offered / chunk.len() {
        let n = conn.receive(NOW, &chunk);
        taken += n;
        refused += chunk.len() - n;
        assert!(conn.receive_buffer(chunk.len()).len() + taken <= bound);
    }
    let growth = counting::peak() - before;
    println!("MEASURE 50 MiB offered behind a waiting event: {taken} bytes taken, heap grew {growth} bytes");
    assert!(taken <= bound, "{taken} bytes taken, bound {bound}");
    assert!(refused > 0 && !conn.wants_read());
    assert!(growth as usize <= bound + 4096, "heap grew {growth} bytes, bound {bound}");
    // Nothing offered is lost: what was taken is processed once the event
    // is taken, and the rest can be offered again.
    let events = drain(&mut conn);
    assert_eq!(events[0], Ev::binary(b"waiting"));
    assert_eq!(events.len() - 1, taken / ping.len());
    assert!(conn.wants_read());
}

#[test]
fn defect2_receive_buffer_offers_no_room_while_an_event_waits() {
    let mut conn = server(config(|c| c.max_unprocessed_input = 1024));
    let message = client_frame(FIN | BINARY, b"waiting");
    assert_eq!(conn.receive(NOW, &message), message.len());
    assert_eq!(conn.peek_event(), Some(EventKind::Message));
    let room = conn.receive_buffer(1 << 20).len();
    assert_eq!(room, 1024);
    conn.commit_received(NOW, room);
    assert!(conn.receive_buffer(1 << 20).is_empty());
    assert!(!conn.wants_read());
    assert_eq!(conn.receive(NOW, b"more"), 0);
}

#[test]
fn defect2_the_bound_does_not_limit_message_size() {
    // The frame being received is not "unprocessed": a message far larger
    // than the bound arrives whole through reads of any size.
    let mut conn = server(config(|c| c.max_unprocessed_input = 1024));
    let data = pattern(1 << 20);
    assert_eq!(feed_all(&mut conn, NOW, &client_frame(FIN | BINARY, &data)), [Ev::binary(&data)]);
    assert_eq!(feed_all(&mut conn, NOW, &fragmented(&data, 7)), [Ev::binary(&data)]);
}

// ===== 3. Errors stay set ====================================================

fn assert_every_action_fails_with(conn: &mut Connection, expected: Error) {
    assert_eq!(conn.closed().and_then(|c| c.error), Some(expected));
    assert_eq!(conn.send_binary(b"x"), Err(expected));
    assert_eq!(conn.send_text("x"), Err(expected));
    assert_eq!(conn.send_chunk(MessageKind::Binary, b"x", true), Err(expected));
    assert_eq!(conn.send_ping(b"x"), Err(expected));
    assert_eq!(conn.send_pong(b"x"), Err(expected));
    assert_eq!(conn.close(NOW, CloseCode::NORMAL, ""), Err(expected));
    assert!(!conn.is_writable());
    #[cfg(feature = "bytes")]
    {
        assert_eq!(conn.send_owned(wscore::OwnedMessage::text("x")), Err(expected));
        let prepared = wscore::PreparedMessage::new(wscore::Message::Text("x"));
        assert_eq!(conn.send_prepared(&prepared), Err(expected));
    }
}

#[test]
fn defect3_errors_after_a_protocol_failure_are_that_failure() {
    let mut conn = server(Config::default());
    let unmasked = [FIN | BINARY, 1, b'x'];
    let events = feed_all(&mut conn, NOW, &unmasked);
    assert_eq!(events, [Ev::failed(ProtocolError::UnmaskedFrame.into())]);
    assert_every_action_fails_with(&mut conn, ProtocolError::UnmaskedFrame.into());
}

#[test]
fn defect3_errors_after_a_timeout_or_a_lost_transport_are_that_error() {
    let idle = config(|c| c.idle_timeout = Some(Duration::from_secs(1)));
    let mut conn = server(idle);
    conn.handle_timeout(Duration::from_secs(1));
    assert!(matches!(drain(&mut conn).as_slice(), [Ev::Closed(_)]));
    assert_every_action_fails_with(&mut conn, Error::Timeout(wscore::Timeout::Idle));

    let mut conn = server(Config::default());
    conn.handle_transport_error();
    assert_every_action_fails_with(&mut conn, Error::ConnectionLost);
}

#[test]
fn defect3_after_a_clean_close_actions_say_closing() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.client.conn.close(NOW, CloseCode::NORMAL, "").unwrap();
    pair.drive();
    let closed = pair.client.conn.closed().cloned().unwrap();
    assert!(closed.clean && closed.error.is_none());
    assert_eq!(pair.client.conn.send_text("x"), Err(UsageError::Closing.into()));
}

// ===== 5. Compressed frames are limited like plain ones ======================

fn random(len: usize) -> Vec<u8> {
    // xorshift: incompressible enough that deflate adds bytes.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn defect5_an_incompressible_message_at_the_frame_limit_is_accepted_compressed() {
    let limit = 1 << 20;
    let cfg = config(|c| {
        c.deflate = Some(DeflateConfig::default());
        c.max_frame_size = limit;
        c.max_send_frame_size = 4 * limit;
    });
    let mut pair = Pair::new(cfg.clone(), cfg);
    assert!(pair.client.conn.deflate().is_some());
    // Plain and compressed, the same bytes are accepted.
    let data = random(limit);
    pair.client.conn.send_binary(&data).unwrap();
    let wire_len = pair.client.conn.buffered_amount();
    assert!(wire_len > limit + 14, "the compressed frame is longer than the limit: {wire_len}");
    pair.drive();
    assert_eq!(pair.events(Side::Server), [Ev::binary(&data)]);
    // One byte more inflates past the limit: 1009, as a plain frame that
    // long gets.
    let over = random(limit + 1);
    pair.client.conn.send_binary(&over).unwrap();
    pair.drive();
    let events = pair.events(Side::Server);
    assert_eq!(events.last(), Some(&Ev::failed(ProtocolError::FrameTooLarge.into())));
}

#[test]
fn defect5_plain_frames_keep_their_limit() {
    let limit = 1 << 20;
    let mut conn = server(config(|c| c.max_frame_size = limit));
    let data = random(limit);
    assert_eq!(feed_all(&mut conn, NOW, &client_frame(FIN | BINARY, &data)), [Ev::binary(&data)]);
    let header = client_frame(FIN | BINARY, &random(limit + 1));
    let events = feed_all(&mut conn, NOW, &header[..14]);
    assert_eq!(events, [Ev::failed(ProtocolError::FrameTooLarge.into())]);
}

// ===== 6. Clean means both close frames were exchanged ======================

#[test]
fn defect6_closed_is_clean_only_once_our_close_frame_is_handed_out() {
    let mut conn = server(Config::default());
    let close = client_frame(FIN | 0x8, &1000u16.to_be_bytes());
    assert_eq!(feed_all(&mut conn, NOW, &close), [Ev::close(1000, "")]);
    // Our answer is owed, not yet handed out: closing, not closed.
    assert_eq!(conn.state(), State::Closing);
    assert!(conn.closed().is_none());
    assert!(drain(&mut conn).is_empty());
    let answer = conn.poll_transmit().to_vec();
    assert_eq!(answer, [0x88, 2, 0x03, 0xE8]);
    conn.advance_transmit(3);
    assert!(drain(&mut conn).is_empty(), "one byte of our close is still to go");
    conn.advance_transmit(1);
    assert_eq!(drain(&mut conn), [Ev::closed_clean(1000)]);
    assert_eq!(conn.state(), State::Closed);
    assert!(conn.is_finished(), "a server closes TCP first");
}

#[test]
fn defect6_a_transport_lost_before_our_answer_is_not_clean() {
    let mut conn = server(Config::default());
    let close = client_frame(FIN | 0x8, &1001u16.to_be_bytes());
    assert_eq!(feed_all(&mut conn, NOW, &close), [Ev::close(1001, "")]);
    conn.handle_transport_error();
    let events = drain(&mut conn);
    let [Ev::Closed(closed)] = events.as_slice() else { panic!("{events:?}") };
    // The code is the peer's (the first close frame received), but the
    // handshake did not complete.
    assert_eq!((closed.code, closed.clean, closed.error), (CloseCode::GOING_AWAY, false, Some(Error::ConnectionLost)));
}

// ===== 7. Handshake error statuses ==========================================

#[test]
fn defect7_426_carries_upgrade_and_http10_gets_400() {
    let request = "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n";
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    let events = feed_all(&mut conn, NOW, request.as_bytes());
    assert_eq!(events, [Ev::failed(HandshakeError::UnsupportedVersion.into())]);
    let response = String::from_utf8(common::take_output(&mut conn)).unwrap();
    assert!(response.starts_with("HTTP/1.1 426 Upgrade Required\r\n"), "{response}");
    assert!(response.contains("\r\nUpgrade: websocket\r\n"), "{response}");
    assert!(response.contains("\r\nSec-WebSocket-Version: 13\r\n"), "{response}");

    let old = request.replace("HTTP/1.1", "HTTP/1.0").replace("Version: 8", "Version: 13");
    let mut conn = Connection::server(Config::default(), NOW).unwrap();
    assert_eq!(feed_all(&mut conn, NOW, old.as_bytes()), [Ev::failed(HandshakeError::HttpVersion.into())]);
    let response = String::from_utf8(common::take_output(&mut conn)).unwrap();
    assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{response}");
    assert!(response.contains("HTTP/1.1"), "the body names the version needed: {response}");
}
