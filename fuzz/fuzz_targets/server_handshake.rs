//! A `Connection::server` fed arbitrary bytes, split into receive calls at
//! points the input chooses (see `wscore_fuzz::Split`).
//!
//! Flags (first byte): bits 0-1 pick `max_handshake_size` (16 KiB default,
//! 64, 300, 1024); bit 2 lowers `max_headers` to 8; bit 3 ends with EOF;
//! bit 4 ends by running the handshake timeout; bit 5 rejects the request
//! (403) instead of accepting it; bit 6 uses `peek_event` before each poll;
//! bit 7 lowers `max_unprocessed_input` to its minimum, 1 KiB.
//!
//! Invariants:
//! * while in the handshake, unprocessed input never exceeds
//!   `max_handshake_size` after the events are drained, nor
//!   `max_handshake_size` + `max_unprocessed_input` in between: `receive`
//!   takes only what fits, the rest is offered again after draining, and a
//!   drained server always takes input again until it is closed;
//! * the parser's work (`stats().handshake_bytes_examined`) is linear in the
//!   bytes received, however they were split;
//! * `Event::Request` carries a GET with an origin-form path and a 24-byte
//!   key; accepting it queues a 101 whose `Sec-WebSocket-Accept` is derived
//!   from that key, and every byte after the 101 head is a valid unmasked
//!   frame;
//! * a handshake that fails queues a complete HTTP error response: status
//!   line `HTTP/1.1 4xx` or `5xx` matching the error's status, headers ending
//!   in `\r\n\r\n`, and a `Content-Length` equal to the body that follows,
//!   and nothing else; an EOF before the head completes queues nothing;
//! * after answering a bad or rejected request with an HTTP error the server
//!   lingers: once the response is transmitted it asks for a half-close
//!   (`wants_shutdown`) and keeps reading (`wants_read`, not
//!   `is_finished`) until EOF or the close timeout (the handshake
//!   timeout's 408 does not linger, see the README);
//! * `peek_event` predicts the kind `poll_event` returns;
//! * at most one `Event::Closed`, the last event, agreeing with `closed()`;
//!   only `Request`, `Message`, `Ping`, `Pong`, `Close`, `Closed` occur.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use wscore::handshake::accept_key;
use wscore::{Accept, Config, Connection, Error, Event, HandshakeError, Reject, Role, State, Timeout};
use wscore_fuzz::{Split, WireChecker, buffered_in, check_handshake_work, head_end};

#[derive(Default)]
struct Seen {
    requests: usize,
    accepted_key: Option<Vec<u8>>,
    rejected: bool,
    closed: Option<wscore::Closed>,
}

fn drain(conn: &mut Connection, seen: &mut Seen, reject: bool, peek: bool) {
    loop {
        let kind = if peek { conn.peek_event() } else { None };
        let Some(event) = conn.poll_event() else {
            assert_eq!(kind, None, "peek_event saw an event that poll_event did not return");
            break;
        };
        assert!(seen.closed.is_none(), "event after Closed: {event:?}");
        let actual = event.kind();
        if peek {
            assert_eq!(kind, Some(actual));
        }
        match event {
            Event::Request(request) => {
                assert_eq!(request.method(), "GET");
                assert!(request.path().starts_with('/'), "path {:?}", request.path());
                assert_eq!(request.key().len(), 24);
                assert!(request.raw().ends_with(b"\r\n\r\n"));
                let key = request.key().to_vec();
                seen.requests += 1;
                assert_eq!(seen.requests, 1, "second Request");
                if reject {
                    conn.reject(&Reject::new(403).header("X-Why", "fuzz").body(b"no\n"))
                        .expect("reject a pending request");
                    seen.rejected = true;
                } else {
                    conn.accept(&Accept::new()).expect("accept a pending request");
                    assert_eq!(conn.state(), State::Open);
                    seen.accepted_key = Some(key);
                }
            }
            Event::Closed(closed) => {
                assert_eq!(Some(&closed), conn.closed());
                seen.closed = Some(closed);
            }
            Event::Connected(_) | Event::Chunk(_) => panic!("a default-config server produced {actual:?}"),
            Event::Message(_) | Event::Ping(_) | Event::Pong(_) | Event::Close(_) => {
                assert!(seen.accepted_key.is_some(), "{actual:?} before the handshake was accepted");
            }
            _ => unreachable!(),
        }
    }
    if seen.closed.is_some() {
        assert_eq!(conn.state(), State::Closed);
        assert!(conn.poll_event().is_none());
    }
}

/// Checks a complete HTTP error response and returns its status.
fn check_error_response(out: &[u8]) -> u16 {
    assert!(
        out.starts_with(b"HTTP/1.1 4") || out.starts_with(b"HTTP/1.1 5"),
        "error response starts {:?}",
        String::from_utf8_lossy(&out[..out.len().min(40)])
    );
    let end = head_end(out).expect("error response head ends with \\r\\n\\r\\n");
    let mut headers = [httparse::EMPTY_HEADER; 16];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(&out[..end]) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, end),
        other => panic!("error response does not parse: {other:?}"),
    }
    let status = res.code.expect("status");
    let length: Vec<_> = res.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("content-length")).collect();
    assert_eq!(length.len(), 1, "one Content-Length");
    let length: usize = std::str::from_utf8(length[0].value).unwrap().parse().unwrap();
    assert_eq!(out.len() - end, length, "body length differs from Content-Length");
    status
}

fuzz_target!(|input: &[u8]| {
    let Some(split) = Split::parse(input) else { return };
    let flags = split.flags;
    let mut config = Config::default();
    config.max_handshake_size = match flags & 3 {
        0 => config.max_handshake_size,
        1 => 64,
        2 => 300,
        _ => 1024,
    };
    if flags & 4 != 0 {
        config.max_headers = 8;
    }
    let eof = flags & 8 != 0;
    let timeout = flags & 16 != 0;
    let reject = flags & 32 != 0;
    let peek = flags & 64 != 0;
    if flags & 128 != 0 {
        config.max_unprocessed_input = 1024;
    }
    let max_hs = config.max_handshake_size;
    let bound = max_hs + config.max_unprocessed_input;

    let mut now = Duration::ZERO;
    let mut conn = Connection::server(config, now).unwrap();
    let mut seen = Seen::default();
    let mut out = Vec::new();

    let mut calls = 0u64;
    for piece in split.pieces(split.data) {
        now += Duration::from_millis(1);
        // Offer the piece until it is taken, draining in between as an
        // adapter does with what `receive` refused.
        let mut rest = piece;
        while !rest.is_empty() {
            calls += 1;
            let handshaking = conn.state() == State::Handshake;
            if handshaking {
                assert!(buffered_in(&conn) <= max_hs, "{} unprocessed handshake bytes", buffered_in(&conn));
            }
            let n = conn.receive(now, rest);
            assert!(n <= rest.len());
            if handshaking {
                let held = buffered_in(&conn);
                assert!(held <= bound, "{held} unprocessed bytes, bound {bound}");
            }
            rest = &rest[n..];
            if n == 0 {
                assert!(!conn.wants_read(), "refused input while wanting to read");
                assert!(conn.receive_buffer(1).is_empty());
                assert!(seen.closed.is_some(), "a drained, open server refused input");
                break;
            }
            drain(&mut conn, &mut seen, reject, peek);
        }
        conn.transmit_into(&mut out);
    }
    if eof {
        conn.handle_eof();
        drain(&mut conn, &mut seen, reject, peek);
    }
    if timeout {
        conn.handle_timeout(now + Duration::from_secs(11));
        drain(&mut conn, &mut seen, reject, peek);
    }
    conn.transmit_into(&mut out);
    check_handshake_work(&conn, calls);
    if conn.state() == State::Handshake {
        assert!(buffered_in(&conn) <= max_hs);
    }

    if let Some(key) = &seen.accepted_key {
        let end = head_end(&out).expect("101 head");
        let head = std::str::from_utf8(&out[..end]).expect("101 head is ASCII");
        assert!(head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"), "{head}");
        let accept = accept_key(key);
        let line = format!("\r\nSec-WebSocket-Accept: {}\r\n", std::str::from_utf8(&accept).unwrap());
        assert!(head.contains(&line), "{head}");
        let mut frames = WireChecker::new(Role::Server, usize::MAX);
        frames.push(&out[end..]);
        assert_eq!(frames.pending(), 0, "a partial frame after the 101");
        return;
    }
    // A server that answered with an HTTP error lingers for the client's
    // EOF, bounded by the close timeout (which `timeout` runs past).
    let answered = seen.rejected
        || matches!(seen.closed.as_ref().and_then(|c| c.error),
            Some(Error::Handshake(e)) if e != HandshakeError::Incomplete);
    if answered {
        if eof || timeout {
            assert!(conn.is_finished(), "still lingering after EOF or the close timeout");
        } else {
            assert!(conn.wants_shutdown(), "no half-close asked for after the HTTP error was transmitted");
            assert!(!conn.is_finished() && conn.wants_read(), "stopped reading before the client closed");
        }
    }
    if seen.rejected {
        assert_eq!(check_error_response(&out), 403);
        assert!(matches!(seen.closed.unwrap().error, Some(Error::Handshake(HandshakeError::Rejected(403)))));
        return;
    }
    match seen.closed.map(|c| c.error) {
        None => {
            assert_eq!(conn.state(), State::Handshake);
            assert!(out.is_empty(), "output before the handshake completed");
            assert!(!eof && !timeout);
        }
        Some(Some(Error::Handshake(HandshakeError::Incomplete))) => {
            assert!(eof);
            assert!(out.is_empty(), "output after an incomplete handshake: {:?}", String::from_utf8_lossy(&out));
        }
        Some(Some(Error::Handshake(e))) => {
            let status = check_error_response(&out);
            assert_eq!(Some(status), e.status(), "{e:?}");
        }
        Some(Some(Error::Timeout(Timeout::Handshake))) => {
            assert!(timeout);
            assert_eq!(check_error_response(&out), 408);
        }
        Some(other) => panic!("handshake ended with {other:?}"),
    }
});
