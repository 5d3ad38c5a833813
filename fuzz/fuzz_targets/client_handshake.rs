//! A `Connection::client` for `ws://a/` fed an arbitrary response, split into
//! receive calls at points the input chooses (see `wscore_fuzz::Split`).
//!
//! Flags (first byte): bit 0 prefixes the input with a complete, correct 101
//! response (its `Sec-WebSocket-Accept` computed from the key the client
//! sent), bit 1 with the same head minus its blank line so that the input
//! continues the headers; bit 2 offers the subprotocols `chat` and
//! `superchat`; bit 3 ends with EOF; bit 4 lowers `max_handshake_size` to
//! 256; bit 5 lowers `max_headers` to 8; bit 6 uses `peek_event`; bit 7
//! lowers `max_unprocessed_input` to its minimum, 1 KiB.
//!
//! Invariants:
//! * no panic;
//! * the request is a well-formed upgrade request with a 24-byte key;
//! * `Event::Connected` comes iff the response head (through the first
//!   `\r\n\r\n`, within `max_handshake_size`) is a valid 101 for our key by
//!   an independent check of RFC 6455 §4.1; the subprotocol it reports is
//!   the one that check found;
//! * a head that parses with another status than 101 is handed over in
//!   `Event::Rejected` (same status, body = the `Content-Length` bytes after
//!   the head, at most `max_handshake_size`, fewer only after EOF) once its
//!   body is in, then `Closed` with `HandshakeError::Status` of that status;
//!   until the body is in the client stays in the handshake;
//! * without a complete head the client stays in the handshake, or fails
//!   with `TooLarge` or (after EOF) `Incomplete`;
//! * `receive` takes at most what it is offered, never more than the bound
//!   on unprocessed input allows (`max_unprocessed_input` + the handshake
//!   allowance); what it refuses is offered again after draining the events,
//!   and a drained client always takes input again (bit 7 lowers the bound
//!   to 1 KiB so that reads are refused);
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
use wscore_fuzz::{Split, WireChecker, buffered_in, check_handshake_work, fixed_entropy, head_end};

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

/// A head that parses with another status than 101: either handed over in
/// `Rejected` with its body (the `Content-Length` bytes after the head, as
/// the library bounds it, or what came before EOF), or refused by a
/// stricter rule of the library's parser, or still waiting for its body.
fn check_refusal(
    stream: &[u8],
    end: usize,
    seen: &Seen,
    error: Option<HandshakeError>,
    eof: bool,
    max_hs: usize,
    max_headers: usize,
) {
    let mut storage = vec![httparse::EMPTY_HEADER; max_headers];
    let mut res = httparse::Response::new(&mut storage);
    assert!(matches!(res.parse(&stream[..end]), Ok(httparse::Status::Complete(_))));
    let status = res.code.expect("a parsed status");
    let length = res
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(max_hs);
    let after = &stream[end..];
    match &seen.rejected {
        Some((got, body)) => {
            assert_eq!(*got, status, "Rejected with another status than the head's");
            if after.len() >= length {
                assert_eq!(&body[..], &after[..length], "refusal body");
            } else {
                assert!(eof, "a refusal handed over before its body was in");
                assert_eq!(&body[..], after, "refusal body cut by EOF");
            }
            assert_eq!(error, Some(HandshakeError::Status(status)));
        }
        None if error.is_some() => assert_ne!(error, Some(HandshakeError::Status(status))),
        None => {
            assert!(after.len() < length && !eof, "a complete refusal not handed over: {:?}", seen.closed);
            assert!(seen.closed.is_none());
        }
    }
}

#[derive(Default)]
struct Seen {
    connected: Option<Option<Vec<u8>>>,
    /// The status and body of a refusal.
    rejected: Option<(u16, Vec<u8>)>,
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
            Event::Rejected(response) => {
                assert!(seen.connected.is_none() && seen.rejected.is_none(), "Rejected after the handshake");
                assert_ne!(response.status(), 101);
                seen.rejected = Some((response.status(), response.body().to_vec()));
            }
            Event::Closed(closed) => {
                assert_eq!(Some(&closed), conn.closed());
                if let Some((status, _)) = &seen.rejected {
                    assert_eq!(closed.error, Some(Error::Handshake(HandshakeError::Status(*status))));
                }
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
    if flags & 128 != 0 {
        config.max_unprocessed_input = 1024;
    }
    let eof = flags & 8 != 0;
    let peek = flags & 64 != 0;
    let max_unprocessed = config.max_unprocessed_input;
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
    let bound = max_unprocessed + max_hs;
    for piece in split.pieces(&stream) {
        now += Duration::from_millis(1);
        // Offer the piece until it is taken, draining in between as an
        // adapter does with what `receive` refused.
        let mut rest = piece;
        while !rest.is_empty() {
            calls += 1;
            let before = buffered_in(&conn);
            let n = conn.receive(now, rest);
            assert!(n <= rest.len());
            let held = buffered_in(&conn);
            assert!(held <= before + n, "receive took {n} bytes but the buffer grew from {before} to {held}");
            assert!(held <= bound, "{held} unprocessed bytes, bound {bound}");
            rest = &rest[n..];
            if n == 0 {
                // Only a connection that is done with input refuses it
                // right after its events were drained.
                assert!(!conn.wants_read(), "refused input while wanting to read");
                assert!(conn.receive_buffer(1).is_empty());
                assert!(seen.closed.is_some(), "a drained, open client refused input");
                break;
            }
            drain(&mut conn, &mut seen, peek);
        }
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

    let handshake_error = match seen.closed.as_ref().and_then(|c| c.error) {
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
                (Err("status"), None) => {
                    check_refusal(&stream, end, &seen, handshake_error, eof, max_hs, max_headers);
                    assert_eq!(frames.frames, 0, "frames sent after a refused handshake");
                }
                (Err(_), None) => {
                    assert!(seen.rejected.is_none(), "a response with status 101 handed over as a refusal");
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
