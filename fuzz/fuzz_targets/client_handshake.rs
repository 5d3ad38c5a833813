//! A `Connection::client` for `ws://a/` fed an arbitrary response, split into
//! receive calls at points the input chooses (see `wscore_fuzz::Split`).
//!
//! Flags (first byte): bit 0 prefixes the input with a complete, correct 101
//! response (its `Sec-WebSocket-Accept` computed from the key the client
//! sent), bit 1 with the same head minus its blank line so that the input
//! continues the headers; bit 2 offers the subprotocols `chat` and
//! `superchat`; bit 3 ends with EOF; bit 4 lowers `max_handshake_size` to
//! 256; bit 5 lowers `max_headers` to 8; bit 6 uses `peek_event`.
//!
//! Invariants:
//! * no panic;
//! * the request is a well-formed upgrade request with a 24-byte key;
//! * `Event::Connected` comes iff the response head (through the first
//!   `\r\n\r\n`, within `max_handshake_size`) is a valid 101 for our key by
//!   an independent check of RFC 6455 §4.1; the subprotocol it reports is
//!   the one that check found;
//! * without a complete head the client stays in the handshake, or fails
//!   with `TooLarge` or (after EOF) `Incomplete`;
//! * every byte the client transmits after its request is a valid masked
//!   frame;
//! * the parser's work (`stats().handshake_bytes_examined`) is linear in the
//!   bytes received, however they were split;
//! * at most one `Event::Closed`, the last event.
#![no_main]

use core::time::Duration;

use libfuzzer_sys::fuzz_target;
use wscore::handshake::accept_key;
use wscore::{ClientHandshake, Config, Connection, Error, Event, HandshakeError, Role, State};
use wscore_fuzz::{Split, WireChecker, check_handshake_work, fixed_entropy, head_end};

/// Every comma-separated element of the fields called `name`, trimmed of
/// spaces and tabs, empty ones skipped.
fn list<'a>(headers: &'a [httparse::Header<'a>], name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
    headers
        .iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name))
        .flat_map(|h| h.value.split(|&b| b == b','))
        .map(trim)
        .filter(|e| !e.is_empty())
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !matches!(b, b' ' | b'\t')).unwrap_or(s.len());
    let end = s.iter().rposition(|b| !matches!(b, b' ' | b'\t')).map_or(start, |i| i + 1);
    &s[start..end]
}

/// RFC 6455 §4.1's checks of the server's response, with httparse only
/// splitting the head into fields. `Ok(protocol)` if valid.
fn oracle(head: &[u8], accept: &[u8], offered: &[&str], max_headers: usize) -> Result<Option<Vec<u8>>, &'static str> {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut res = httparse::Response::new(&mut storage);
    match res.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err("not HTTP"),
    }
    if res.code != Some(101) {
        return Err("status");
    }
    if res.version != Some(1) {
        return Err("version");
    }
    let h = res.headers;
    if !list(h, "upgrade").any(|t| t.eq_ignore_ascii_case(b"websocket")) {
        return Err("upgrade");
    }
    if !list(h, "connection").any(|t| t.eq_ignore_ascii_case(b"upgrade")) {
        return Err("connection");
    }
    let accepts: Vec<_> = h.iter().filter(|f| f.name.eq_ignore_ascii_case("sec-websocket-accept")).collect();
    if accepts.len() != 1 || trim(accepts[0].value) != accept {
        return Err("accept");
    }
    if list(h, "sec-websocket-extensions").next().is_some() {
        return Err("extensions");
    }
    let protocols: Vec<_> = list(h, "sec-websocket-protocol").collect();
    match protocols[..] {
        [] => Ok(None),
        [p] if offered.iter().any(|o| o.as_bytes() == p) => Ok(Some(p.to_vec())),
        _ => Err("protocol"),
    }
}

#[derive(Default)]
struct Seen {
    connected: Option<Option<Vec<u8>>>,
    closed: Option<wscore::Closed>,
}

fn drain(conn: &mut Connection, seen: &mut Seen, peek: bool) {
    loop {
        let kind = if peek { conn.peek_event() } else { None };
        let Some(event) = conn.poll_event() else {
            assert_eq!(kind, None);
            break;
        };
        assert!(seen.closed.is_none(), "event after Closed: {event:?}");
        let actual = event.kind();
        if peek {
            assert_eq!(kind, Some(actual));
        }
        match event {
            Event::Connected(response) => {
                assert!(seen.connected.is_none(), "second Connected");
                assert_eq!(response.status(), 101);
                seen.connected = Some(response.protocol().map(|p| p.as_bytes().to_vec()));
            }
            Event::Closed(closed) => {
                assert_eq!(Some(&closed), conn.closed());
                seen.closed = Some(closed);
            }
            Event::Request(_) | Event::Chunk(_) => panic!("a client produced {actual:?}"),
            _ => assert!(seen.connected.is_some(), "{actual:?} before Connected"),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let Some(split) = Split::parse(input) else { return };
    let flags = split.flags;
    let mut handshake = ClientHandshake::new("ws://a/").unwrap();
    let offered: &[&str] = if flags & 4 != 0 { &["chat", "superchat"] } else { &[] };
    for p in offered {
        handshake = handshake.protocol(p).unwrap();
    }
    let mut config = Config::default();
    config.entropy = Some(fixed_entropy);
    if flags & 16 != 0 {
        config.max_handshake_size = 256;
    }
    if flags & 32 != 0 {
        config.max_headers = 8;
    }
    let eof = flags & 8 != 0;
    let peek = flags & 64 != 0;
    let (max_hs, max_headers) = (config.max_handshake_size, config.max_headers);

    let mut now = Duration::ZERO;
    let mut conn = Connection::client(handshake, config, now).unwrap();

    // The request, and the accept value its key calls for.
    let request = conn.poll_transmit().to_vec();
    conn.advance_transmit(request.len());
    assert_eq!(head_end(&request), Some(request.len()), "request is one head");
    let text = std::str::from_utf8(&request).expect("request is ASCII");
    assert!(text.starts_with("GET / HTTP/1.1\r\nHost: a\r\n"), "{text}");
    let key = text
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .expect("request has a Sec-WebSocket-Key");
    assert_eq!(key.len(), 24);
    let accept = accept_key(key.as_bytes());

    let mut stream = Vec::new();
    if flags & 3 != 0 {
        stream.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
        stream.extend_from_slice(b"Sec-WebSocket-Accept: ");
        stream.extend_from_slice(&accept);
        stream.extend_from_slice(b"\r\n");
        if flags & 1 != 0 {
            stream.extend_from_slice(b"\r\n");
        }
    }
    stream.extend_from_slice(split.data);

    let mut seen = Seen::default();
    let mut frames = WireChecker::new(Role::Client, usize::MAX);
    let mut calls = 0u64;
    for piece in split.pieces(&stream) {
        now += Duration::from_millis(1);
        calls += 1;
        conn.receive(now, piece);
        drain(&mut conn, &mut seen, peek);
        let out = conn.poll_transmit().to_vec();
        conn.advance_transmit(out.len());
        frames.push(&out);
    }
    if eof {
        conn.handle_eof();
        drain(&mut conn, &mut seen, peek);
        let out = conn.poll_transmit().to_vec();
        conn.advance_transmit(out.len());
        frames.push(&out);
    }
    assert_eq!(frames.pending(), 0, "a partial frame");
    check_handshake_work(&conn, calls);

    let handshake_error = match seen.closed.and_then(|c| c.error) {
        Some(Error::Handshake(e)) => Some(e),
        _ => None,
    };
    match head_end(&stream) {
        Some(end) if end <= max_hs => {
            let expected = oracle(&stream[..end], &accept, offered, max_headers);
            match (&expected, &seen.connected) {
                (Ok(protocol), Some(got)) => assert_eq!(protocol, got, "subprotocol"),
                (Ok(_), None) => panic!("valid response refused: {:?}", seen.closed),
                (Err(why), Some(_)) => panic!("invalid response ({why}) accepted"),
                (Err(_), None) => {
                    assert!(handshake_error.is_some(), "invalid response not failed: {:?}", seen.closed);
                    assert_eq!(frames.frames, 0, "frames sent after a failed handshake");
                }
            }
        }
        Some(_) => {
            assert!(seen.connected.is_none());
            assert_eq!(handshake_error, Some(HandshakeError::TooLarge));
        }
        None => {
            assert!(seen.connected.is_none());
            if stream.len() > max_hs {
                assert_eq!(handshake_error, Some(HandshakeError::TooLarge));
            } else if eof {
                assert_eq!(handshake_error, Some(HandshakeError::Incomplete));
            } else {
                assert_eq!(conn.state(), State::Handshake);
                assert!(seen.closed.is_none());
            }
        }
    }
});
