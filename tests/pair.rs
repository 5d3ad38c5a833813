//! A client and a server [`Connection`](wscore::Connection) driven against
//! each other in memory with a virtual clock (see `common::Pair`): the
//! handshake, messages of every length encoding, fragmentation and
//! streaming, pings, the closing handshake from either side, and every
//! timer, all without sleeping.

mod common;

use std::time::Duration;

use common::{Ev, Pair, Side, config};
use wscore::{
    Accept, ClientHandshake, CloseCode, Config, Connection, Error, HandshakeError, MessageKind, Reject, State, Timeout,
};

const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 1 << 20];

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// Text of exactly `len` bytes mixing one- to four-byte characters.
fn text_of_len(len: usize) -> String {
    let mut text = String::with_capacity(len);
    for c in ['a', 'é', '€', '𝄞'].into_iter().cycle() {
        if text.len() + c.len_utf8() > len {
            break;
        }
        text.push(c);
    }
    while text.len() < len {
        text.push('z');
    }
    text
}

fn binary_of_len(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
}

// ----- Handshake ------------------------------------------------------------

#[test]
fn handshake_negotiates_subprotocol() {
    let handshake =
        ClientHandshake::new("ws://localhost/chat?room=1").unwrap().protocol("a").unwrap().protocol("b").unwrap();
    let mut pair = Pair::connect(handshake, Config::default(), Config::default(), |request| {
        assert_eq!(request.path(), "/chat?room=1");
        assert_eq!(request.protocols().collect::<Vec<_>>(), ["a", "b"]);
        Ok(Accept::new().protocol("b"))
    });
    assert_eq!(
        pair.events(Side::Server),
        [Ev::Request { path: "/chat?room=1".into(), protocols: vec!["a".into(), "b".into()] }]
    );
    assert_eq!(pair.events(Side::Client), [Ev::Connected { status: 101, protocol: Some("b".into()) }]);
    assert_eq!(pair.client.conn.protocol(), Some("b"));
    assert_eq!(pair.server.conn.protocol(), Some("b"));
    assert_eq!(pair.client.conn.state(), State::Open);
    assert_eq!(pair.server.conn.state(), State::Open);
}

#[test]
fn handshake_without_subprotocol() {
    let pair = Pair::new(Config::default(), Config::default());
    assert_eq!(pair.client.conn.protocol(), None);
    assert_eq!(pair.server.conn.protocol(), None);
}

#[test]
fn rejected_handshake_reaches_client_as_status() {
    let handshake = ClientHandshake::new(common::URL).unwrap();
    let mut pair =
        Pair::connect(handshake, Config::default(), Config::default(), |_| Err(Reject::new(403).body(b"no\n")));
    let rejected = Error::Handshake(HandshakeError::Rejected(403));
    assert_eq!(pair.events(Side::Server)[1..], [Ev::failed(rejected)]);
    // The client is shown the refusal whole, then closes.
    assert_eq!(
        pair.events(Side::Client),
        [
            Ev::Rejected { status: 403, retry_after: None, body: b"no\n".to_vec() },
            Ev::failed(Error::Handshake(HandshakeError::Status(403)))
        ]
    );
    assert!(pair.server.sent.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
    assert!(pair.is_finished(Side::Client));
    // The server lingers, half-closed, until the client closes TCP.
    assert!(!pair.is_finished(Side::Server) && pair.server.conn.wants_shutdown());
    pair.deliver_eof(Side::Server);
    assert!(pair.is_finished(Side::Server));
}

// ----- Messages -------------------------------------------------------------

/// Sends `message` from `from`, checks the peer got exactly it, echoes it
/// back and checks `from` got it back.
fn echo(pair: &mut Pair, from: Side, send: impl Fn(&mut wscore::Connection), expected: &Ev) {
    send(&mut pair.endpoint(from).conn);
    pair.drive();
    let got = pair.events(from.peer());
    assert!(got.len() == 1 && &got[0] == expected, "peer got something else than {} bytes", ev_len(expected));
    send(&mut pair.endpoint(from.peer()).conn);
    pair.drive();
    let back = pair.events(from);
    assert!(back.len() == 1 && &back[0] == expected, "echo differs for {} bytes", ev_len(expected));
}

fn ev_len(ev: &Ev) -> usize {
    match ev {
        Ev::Text(t) => t.len(),
        Ev::Binary(b) => b.len(),
        _ => 0,
    }
}

#[test]
fn echo_binary_of_every_length_encoding() {
    let mut pair = Pair::new(Config::default(), Config::default());
    for len in SIZES {
        let data = binary_of_len(len);
        echo(&mut pair, Side::Client, |c| c.send_binary(&data).unwrap(), &Ev::binary(&data));
        echo(&mut pair, Side::Server, |c| c.send_binary(&data).unwrap(), &Ev::binary(&data));
    }
}

#[test]
fn echo_text_of_every_length_encoding() {
    let mut pair = Pair::new(Config::default(), Config::default());
    for len in SIZES {
        let text = text_of_len(len);
        assert_eq!(text.len(), len);
        echo(&mut pair, Side::Client, |c| c.send_text(&text).unwrap(), &Ev::text(&text));
        echo(&mut pair, Side::Server, |c| c.send_text(&text).unwrap(), &Ev::text(&text));
    }
}

#[test]
fn echo_with_short_reads_and_small_send_frames() {
    // Messages split into 1000-byte frames by the sender and delivered in
    // 777-byte reads still arrive whole.
    let small_frames = config(|c| c.max_send_frame_size = 1000);
    let mut pair = Pair::new(small_frames.clone(), small_frames);
    pair.segment = Some(777);
    for len in SIZES {
        let text = text_of_len(len);
        echo(&mut pair, Side::Client, |c| c.send_text(&text).unwrap(), &Ev::text(&text));
        let data = binary_of_len(len);
        echo(&mut pair, Side::Server, |c| c.send_binary(&data).unwrap(), &Ev::binary(&data));
    }
}

#[test]
fn chunked_send_arrives_as_one_message() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let text = "héllo wörld €𝄞";
    let bytes = text.as_bytes();
    // Pieces that split characters, with pings between them.
    let cuts = [0, 2, 3, 9, 15, bytes.len()];
    for (i, piece) in cuts.windows(2).enumerate() {
        let fin = i == cuts.len() - 2;
        pair.client.conn.send_chunk(MessageKind::Text, &bytes[piece[0]..piece[1]], fin).unwrap();
        if !fin {
            pair.client.conn.send_ping(&[i as u8]).unwrap();
        }
    }
    pair.drive();
    let mut expected: Vec<Ev> = (0..cuts.len() as u8 - 2).map(|i| Ev::Ping(vec![i])).collect();
    expected.push(Ev::text(text));
    assert_eq!(pair.events(Side::Server), expected);
    let pongs: Vec<Ev> = (0..cuts.len() as u8 - 2).map(|i| Ev::Pong(vec![i])).collect();
    assert_eq!(pair.events(Side::Client), pongs);

    // Binary from the server, with an empty middle chunk and an empty final one.
    let conn = &mut pair.server.conn;
    conn.send_chunk(MessageKind::Binary, b"abc", false).unwrap();
    conn.send_chunk(MessageKind::Binary, b"", false).unwrap();
    conn.send_chunk(MessageKind::Binary, b"def", false).unwrap();
    assert_eq!(conn.send_text("x"), Err(wscore::UsageError::MessageInProgress.into()));
    assert_eq!(conn.send_chunk(MessageKind::Text, b"x", true), Err(wscore::UsageError::KindMismatch.into()));
    conn.send_chunk(MessageKind::Binary, b"", true).unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Client), [Ev::binary(b"abcdef")]);
}

#[test]
fn streaming_receiver_gets_chunks_of_one_message() {
    let server = config(|c| c.streaming = true);
    let client = config(|c| c.max_send_frame_size = 16 << 10);
    let mut pair = Pair::new(client, server);
    pair.segment = Some(5000);
    let data = binary_of_len(100_000);
    pair.client.conn.send_binary(&data).unwrap();
    let text = text_of_len(40_000);
    pair.client.conn.send_text(&text).unwrap();
    pair.client.conn.send_text("").unwrap();
    pair.drive();
    let events = pair.events(Side::Server);
    // Data is handed out as it arrives: more chunks than frames.
    assert!(events.len() > 100_000 / 5000, "{} chunks", events.len());
    for ev in &events {
        let Ev::Chunk { data, .. } = ev else { panic!("{ev:?} is not a chunk") };
        assert!(data.len() <= 5000);
    }
    let fins = events.iter().filter(|e| matches!(e, Ev::Chunk { fin: true, .. })).count();
    assert_eq!(fins, 3);
    assert_eq!(common::join_chunks(&events), [Ev::Binary(data), Ev::Text(text), Ev::text("")]);
}

#[test]
fn streaming_chunks_interleave_with_pings() {
    let mut pair = Pair::new(Config::default(), config(|c| c.streaming = true));
    pair.client.conn.send_chunk(MessageKind::Text, "ab".as_bytes(), false).unwrap();
    pair.client.conn.send_ping(b"p").unwrap();
    pair.client.conn.send_chunk(MessageKind::Text, "cd".as_bytes(), true).unwrap();
    pair.drive();
    assert_eq!(
        pair.events(Side::Server),
        [
            Ev::Chunk { kind: MessageKind::Text, data: b"ab".to_vec(), fin: false },
            Ev::Ping(b"p".to_vec()),
            Ev::Chunk { kind: MessageKind::Text, data: b"cd".to_vec(), fin: true },
        ]
    );
}

#[test]
fn ping_pong_round_trip() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.client.conn.send_ping(b"hello").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Server), [Ev::Ping(b"hello".to_vec())]);
    assert_eq!(pair.events(Side::Client), [Ev::Pong(b"hello".to_vec())]);

    let payload = [7u8; 125];
    pair.server.conn.send_ping(&payload).unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Client), [Ev::Ping(payload.to_vec())]);
    assert_eq!(pair.events(Side::Server), [Ev::Pong(payload.to_vec())]);

    assert_eq!(pair.server.conn.send_ping(&[0; 126]), Err(wscore::UsageError::ControlPayloadTooLong.into()));
    pair.server.conn.send_pong(b"unsolicited").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Client), [Ev::Pong(b"unsolicited".to_vec())]);
    assert!(pair.events(Side::Server).is_empty());
}

// ----- Closing handshake ----------------------------------------------------

#[test]
fn client_initiated_close() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.client.conn.close(pair.now, CloseCode::NORMAL, "bye").unwrap();
    assert_eq!(pair.client.conn.state(), State::Closing);
    assert!(pair.client.conn.send_text("late").is_err());

    // The client's close reaches the server, which owes its answer: the
    // closing handshake is not over until that is transmitted...
    assert!(pair.deliver(Side::Client));
    assert_eq!(pair.events(Side::Server), [Ev::close(1000, "bye")]);
    assert_eq!(pair.server.conn.state(), State::Closing);
    assert!(!pair.is_finished(Side::Server));
    assert!(pair.deliver(Side::Server));
    // ...and then closed cleanly and finished at once (servers close TCP first).
    assert_eq!(pair.events(Side::Server), [Ev::closed_clean(1000)]);
    assert_eq!(pair.server.conn.state(), State::Closed);
    assert!(pair.is_finished(Side::Server));

    assert_eq!(pair.events(Side::Client), [Ev::close(1000, ""), Ev::closed_clean(1000)]);
    assert_eq!(pair.client.conn.state(), State::Closed);
    // The client waits for the server to close TCP first (RFC 6455 §7.1.1).
    assert!(!pair.is_finished(Side::Client));
    pair.drive();
    assert!(!pair.is_finished(Side::Client));
    pair.deliver_eof(Side::Client);
    assert!(pair.is_finished(Side::Client));
    assert!(pair.events(Side::Client).is_empty());
}

#[test]
fn server_initiated_close() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.server.conn.close(pair.now, CloseCode::NORMAL, "").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Client), [Ev::close(1000, ""), Ev::closed_clean(1000)]);
    assert_eq!(pair.events(Side::Server), [Ev::close(1000, ""), Ev::closed_clean(1000)]);
    assert!(pair.is_finished(Side::Server));
    assert!(!pair.is_finished(Side::Client));
    pair.deliver_eof(Side::Client);
    assert!(pair.is_finished(Side::Client));
}

#[test]
fn client_stops_waiting_for_tcp_close_after_close_timeout() {
    let mut pair = Pair::new(config(|c| c.close_timeout = secs(3)), Config::default());
    pair.client.conn.close(pair.now, CloseCode::NORMAL, "").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Client), [Ev::close(1000, ""), Ev::closed_clean(1000)]);
    assert!(pair.is_finished(Side::Server));
    pair.advance_time(secs(3) - millis(1));
    assert!(!pair.is_finished(Side::Client));
    pair.advance_time(millis(1));
    assert!(pair.is_finished(Side::Client));
    assert_eq!(pair.client.conn.poll_timeout(), None);
    assert!(pair.events(Side::Client).is_empty());
}

#[test]
fn close_without_code_and_with_application_code() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.client.conn.close(pair.now, CloseCode::NO_STATUS, "").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Server), [Ev::close(1005, ""), Ev::closed_clean(1005)]);
    assert_eq!(pair.events(Side::Client), [Ev::close(1005, ""), Ev::closed_clean(1005)]);

    let mut pair = Pair::new(Config::default(), Config::default());
    pair.server.conn.close(pair.now, CloseCode(4321), "app").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Client), [Ev::close(4321, "app"), Ev::closed_clean(4321)]);
    assert_eq!(pair.events(Side::Server), [Ev::close(4321, ""), Ev::closed_clean(4321)]);
}

#[test]
fn messages_sent_before_close_are_delivered() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.client.conn.send_text("one").unwrap();
    pair.client.conn.close(pair.now, CloseCode::NORMAL, "").unwrap();
    // The server may still send until it has seen the close.
    pair.server.conn.send_text("two").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Server), [Ev::text("one"), Ev::close(1000, ""), Ev::closed_clean(1000)]);
    assert_eq!(pair.events(Side::Client), [Ev::text("two"), Ev::close(1000, ""), Ev::closed_clean(1000)]);
}

#[test]
fn eof_without_close_is_abnormal() {
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.deliver_eof(Side::Server);
    assert_eq!(pair.events(Side::Server), [Ev::failed(Error::ConnectionLost)]);
    assert!(pair.is_finished(Side::Server));
    assert_eq!(pair.server.conn.closed().unwrap().code, CloseCode::ABNORMAL);
}

// ----- Heartbeat and timeouts -----------------------------------------------

#[test]
fn heartbeat_pings_a_silent_peer() {
    let mut pair = Pair::new(config(|c| c.ping_interval = Some(secs(10))), Config::default());
    pair.advance_time(secs(10) - millis(1));
    assert!(pair.events(Side::Server).is_empty());
    assert!(pair.client.sent.len() < 300, "only the upgrade request was sent");
    pair.advance_time(millis(1));
    assert_eq!(pair.now, secs(10));
    assert_eq!(pair.events(Side::Server), [Ev::Ping(vec![])]);
    assert_eq!(pair.events(Side::Client), [Ev::Pong(vec![])]);
    // The pong counts as traffic: the next ping is 10 s after it.
    pair.advance_time(secs(10) - millis(1));
    assert!(pair.events(Side::Server).is_empty());
    pair.advance_time(millis(1));
    assert_eq!(pair.events(Side::Server), [Ev::Ping(vec![])]);
}

#[test]
fn received_traffic_postpones_the_heartbeat() {
    let mut pair = Pair::new(config(|c| c.ping_interval = Some(secs(10))), Config::default());
    pair.advance_time(secs(6));
    pair.server.conn.send_text("news").unwrap();
    pair.advance_time(secs(9));
    assert!(pair.events(Side::Server).is_empty(), "no ping 15 s in: traffic came at 6 s");
    pair.advance_time(secs(1));
    assert_eq!(pair.events(Side::Server), [Ev::Ping(vec![])]);
}

#[test]
fn idle_timeout_fails_a_dead_peer_with_going_away() {
    let client = config(|c| {
        c.ping_interval = Some(secs(10));
        c.idle_timeout = Some(secs(30));
    });
    let mut pair = Pair::new(client, Config::default());
    pair.set_dropping(Side::Server, true);
    pair.advance_time(secs(30) - millis(1));
    assert_eq!(pair.client.conn.state(), State::Open);
    // The heartbeat went out at 10 s and 20 s; the pongs were lost.
    assert_eq!(pair.events(Side::Server), [Ev::Ping(vec![]), Ev::Ping(vec![])]);
    assert!(pair.events(Side::Client).is_empty());

    pair.advance_time(millis(1));
    assert_eq!(pair.events(Side::Client), [Ev::failed(Error::Timeout(Timeout::Idle))]);
    assert_eq!(pair.client.conn.closed().unwrap().code, CloseCode::GOING_AWAY);
    // The client told the server why, with 1001.
    assert_eq!(pair.events(Side::Server), [Ev::close(1001, "idle timeout"), Ev::closed_clean(1001)]);
    assert!(pair.is_finished(Side::Server));
    // The server's answer is lost: the client lingers, half-closed, for the
    // close timeout, then gives up.
    assert!(!pair.is_finished(Side::Client) && pair.client.conn.wants_shutdown());
    pair.advance_time(Config::default().close_timeout);
    assert!(pair.is_finished(Side::Client));
}

#[test]
fn idle_timeout_never_fires_while_the_peer_answers() {
    let heartbeat = config(|c| {
        c.ping_interval = Some(secs(10));
        c.idle_timeout = Some(secs(30));
    });
    let mut pair = Pair::new(heartbeat.clone(), heartbeat);
    pair.advance_time(secs(300));
    assert_eq!(pair.client.conn.state(), State::Open);
    assert_eq!(pair.server.conn.state(), State::Open);
    let pings = |events: Vec<Ev>| {
        assert!(events.iter().all(|e| matches!(e, Ev::Ping(_) | Ev::Pong(_))), "{events:?}");
        events.iter().filter(|e| matches!(e, Ev::Ping(_))).count()
    };
    // Each ping is answered, and the answer resets both sides' timers, so
    // between them about one ping per 10 s goes out.
    let total = pings(pair.events(Side::Server)) + pings(pair.events(Side::Client));
    assert!((25..=60).contains(&total), "{total} pings in 300 s");
    pair.client.conn.send_text("still here").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Server), [Ev::text("still here")]);
}

#[test]
fn idle_timeout_only_on_server_with_client_heartbeat() {
    let client = config(|c| c.ping_interval = Some(secs(10)));
    let server = config(|c| c.idle_timeout = Some(secs(15)));
    let mut pair = Pair::new(client, server);
    pair.advance_time(secs(300));
    assert_eq!(pair.server.conn.state(), State::Open);
    // Once the client's pings stop arriving, the server gives up 15 s later.
    pair.set_dropping(Side::Client, true);
    pair.advance_time(secs(15));
    assert_eq!(pair.server.conn.state(), State::Closed);
    let events = pair.events(Side::Server);
    assert_eq!(events.last(), Some(&Ev::failed(Error::Timeout(Timeout::Idle))));
}

#[test]
fn close_timeout_when_peer_never_answers() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let close_timeout = pair.client.conn.config().close_timeout;
    assert_eq!(close_timeout, secs(5));
    pair.set_dropping(Side::Server, true);
    pair.client.conn.close(pair.now, CloseCode::NORMAL, "").unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Server), [Ev::close(1000, ""), Ev::closed_clean(1000)]);
    pair.advance_time(close_timeout - millis(1));
    assert_eq!(pair.client.conn.state(), State::Closing);
    assert!(pair.events(Side::Client).is_empty());
    pair.advance_time(millis(1));
    assert_eq!(pair.events(Side::Client), [Ev::failed(Error::Timeout(Timeout::Close))]);
    assert_eq!(pair.client.conn.closed().unwrap().code, CloseCode::ABNORMAL);
    assert!(pair.is_finished(Side::Client));
}

#[test]
fn handshake_timeout_answers_408() {
    let handshake = ClientHandshake::new(common::URL).unwrap();
    let client = config(|c| c.handshake_timeout = None);
    let mut pair = Pair::unconnected(handshake, client, Config::default());
    // Only half of the upgrade request ever arrives.
    let mut request = Vec::new();
    pair.client.conn.transmit_into(&mut request);
    pair.inject(Side::Server, &request[..request.len() / 2]);
    pair.advance_time(secs(10) - millis(1));
    assert_eq!(pair.server.conn.state(), State::Handshake);
    assert!(pair.server.sent.is_empty());
    pair.advance_time(millis(1));
    assert_eq!(pair.events(Side::Server), [Ev::failed(Error::Timeout(Timeout::Handshake))]);
    assert!(pair.server.sent.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"), "{:?}", pair.server.sent);
    assert!(pair.is_finished(Side::Server));
    // The client, which has no handshake timeout of its own, sees the 408.
    assert_eq!(
        pair.events(Side::Client),
        [
            Ev::Rejected { status: 408, retry_after: None, body: b"handshake timeout\n".to_vec() },
            Ev::failed(Error::Handshake(HandshakeError::Status(408)))
        ]
    );
}

#[test]
fn handshake_timeout_while_application_decides() {
    // A server application that never answers the request is bounded too.
    let handshake = ClientHandshake::new(common::URL).unwrap();
    let mut pair = Pair::unconnected(handshake, Config::default(), config(|c| c.handshake_timeout = Some(secs(2))));
    pair.drive();
    assert!(matches!(pair.events(Side::Server).as_slice(), [Ev::Request { .. }]));
    pair.advance_time(secs(2));
    assert_eq!(pair.events(Side::Server), [Ev::failed(Error::Timeout(Timeout::Handshake))]);
    assert!(pair.server.conn.accept(&Accept::new()).is_err());
}

// ----- Buffering --------------------------------------------------------------

#[test]
fn frames_in_the_same_read_as_the_101_response() {
    let handshake = ClientHandshake::new(common::URL).unwrap();
    let mut pair = Pair::unconnected(handshake, Config::default(), Config::default());
    pair.deliver(Side::Client);
    assert!(pair.server.request.take().is_some());
    pair.server.conn.accept(&Accept::new()).unwrap();
    // The server speaks first, before the client has seen the response:
    // the 101 and two messages reach the client in one read.
    pair.server.conn.send_text("welcome").unwrap();
    pair.server.conn.send_binary(&[1, 2, 3]).unwrap();
    pair.deliver(Side::Server);
    let events = pair.events(Side::Client);
    assert!(matches!(events[0], Ev::Connected { status: 101, .. }), "{events:?}");
    assert_eq!(events[1..], [Ev::text("welcome"), Ev::binary(&[1, 2, 3])]);
}

#[test]
fn request_and_first_frames_in_one_read() {
    let handshake = ClientHandshake::new(common::URL).unwrap();
    let mut pair = Pair::unconnected(handshake, Config::default(), Config::default());
    // A client that pipelines a frame behind its request (a frames-only
    // client stands in for one that does not wait for the 101).
    let mut bytes = Vec::new();
    pair.client.conn.transmit_into(&mut bytes);
    let mut early = Connection::frames_only(wscore::Role::Client, Config::default(), pair.now).unwrap();
    early.send_text("early").unwrap();
    early.transmit_into(&mut bytes);
    pair.inject(Side::Server, &bytes);
    // Nothing after the request is processed until it is answered.
    assert!(matches!(pair.events(Side::Server).as_slice(), [Ev::Request { .. }]));
    pair.server.conn.accept(&Accept::new()).unwrap();
    pair.server.poll();
    assert_eq!(pair.events(Side::Server), [Ev::text("early")]);
}

#[test]
fn pongs_go_out_first_and_are_bounded_above_the_high_water_mark() {
    let server = config(|c| {
        c.write_buffer_high_water = 1000;
        c.max_queued_pongs = 2;
    });
    let mut pair = Pair::new(Config::default(), server);
    let big = binary_of_len(5000);
    pair.server.conn.send_binary(&big).unwrap();
    // Above the mark: further messages are refused until transmitted...
    assert_eq!(pair.server.conn.send_text("more"), Err(Error::WriteBufferFull));
    assert!(!pair.server.conn.is_writable());
    // ...while the pongs owed meanwhile go out first, at most two of them,
    // the second answering the latest ping.
    for payload in [b"1", b"2", b"3"] {
        pair.client.conn.send_ping(payload).unwrap();
    }
    pair.deliver(Side::Client);
    assert_eq!(pair.events(Side::Server).len(), 3);
    pair.drive();
    assert_eq!(pair.events(Side::Client), [Ev::Pong(b"1".to_vec()), Ev::Pong(b"3".to_vec()), Ev::Binary(big)]);
    assert!(pair.server.conn.is_writable());
    pair.server.conn.send_text("more").unwrap();
}

#[test]
fn usage_errors_before_open_and_after_close() {
    let handshake = ClientHandshake::new(common::URL).unwrap();
    let mut pair = Pair::unconnected(handshake, Config::default(), Config::default());
    let not_open = Err(wscore::UsageError::NotOpen.into());
    assert_eq!(pair.client.conn.send_text("x"), not_open);
    assert_eq!(pair.client.conn.close(pair.now, CloseCode::NORMAL, ""), not_open);
    assert_eq!(pair.server.conn.accept(&Accept::new()), Err(wscore::UsageError::NoPendingRequest.into()));
    pair.drive();
    pair.server.conn.accept(&Accept::new()).unwrap();
    pair.drive();
    pair.client.conn.close(pair.now, CloseCode::NORMAL, "").unwrap();
    let closing = Err(wscore::UsageError::Closing.into());
    assert_eq!(pair.client.conn.close(pair.now, CloseCode::NORMAL, ""), closing);
    assert_eq!(pair.client.conn.send_ping(b""), closing);
    assert_eq!(
        pair.server.conn.close(pair.now, CloseCode::ABNORMAL, ""),
        Err(wscore::UsageError::InvalidCloseCode(1006).into())
    );
}

#[test]
fn client_handshake_timeout_when_server_never_answers() {
    let handshake = ClientHandshake::new(common::URL).unwrap();
    let client = config(|c| c.handshake_timeout = Some(secs(3)));
    let mut pair = Pair::unconnected(handshake, client, config(|c| c.handshake_timeout = None));
    pair.drive();
    assert!(matches!(pair.events(Side::Server).as_slice(), [Ev::Request { .. }]));
    // The server application never answers the request.
    pair.advance_time(secs(3) - millis(1));
    assert_eq!(pair.client.conn.state(), State::Handshake);
    pair.advance_time(millis(1));
    assert_eq!(pair.events(Side::Client), [Ev::failed(Error::Timeout(Timeout::Handshake))]);
    assert!(pair.is_finished(Side::Client));
}
