//! The permessage-deflate receive path: arbitrary compressed payloads, in
//! arbitrary fragments, fed to a server whose deflate parameters were
//! negotiated elsewhere (`frames_only_with_deflate`), with small limits.
//!
//! Input: a flags byte (context takeover each way, streaming, text or
//! binary, how the input is cut into frames and reads), then frames, each a
//! length byte and that many payload bytes, the first of a message marked
//! RSV1.
//!
//! Invariants:
//! * no panic and no hang, whatever the compressed data;
//! * a whole message never exceeds `max_message_size`, a chunk never the
//!   streaming chunk size, and the message buffer never holds much more
//!   than the limit (checked through the events' sizes);
//! * text delivered is UTF-8 (by type) and, streamed, its chunks join into
//!   UTF-8;
//! * after `Closed` nothing more is reported, and a failure is one of the
//!   codes the spec gives (1002 corrupt data, 1007 text, 1009 too big);
//! * round trip: data a wscore client compressed with the same parameters
//!   comes out unchanged;
//! * input is bounded but never stuck: what `receive` refuses is offered
//!   again after draining, and only a closed connection refuses input right
//!   after its events were drained.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use wscore::deflate::{DeflateConfig, DeflateParams};
use wscore::frame::{FrameHeader, MAX_HEADER_LEN, OpCode, RSV1, apply_mask};
use wscore::{CloseCode, Config, Connection, Event, Message, Role};

const LIMIT: usize = 64 * 1024;
const KEY: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

fn params(flags: u8) -> DeflateParams {
    let mut p = DeflateParams::default();
    p.server_no_context_takeover = flags & 1 != 0;
    p.client_no_context_takeover = flags & 2 != 0;
    p.client_max_window_bits = 8 + (flags >> 5);
    p
}

fn config(flags: u8) -> Config {
    let mut c = Config::default();
    c.max_message_size = LIMIT;
    c.max_frame_size = LIMIT;
    c.streaming = flags & 4 != 0;
    c.entropy = Some(|dest: &mut [u8]| dest.fill(7));
    let mut d = DeflateConfig::default();
    d.threshold = 0;
    c.deflate = Some(d);
    c
}

fn masked_frame(fin: bool, rsv: u8, opcode: OpCode, payload: &[u8]) -> Vec<u8> {
    let header = FrameHeader { fin, rsv, opcode, mask: Some(KEY), payload_len: payload.len() as u64 };
    let mut head = [0u8; MAX_HEADER_LEN];
    let n = header.encode(&mut head);
    let mut out = head[..n].to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], KEY, 0);
    out
}

/// Drains events; returns the messages (joined chunks) and whether it closed.
fn drain(conn: &mut Connection, closed: &mut bool, partial: &mut Vec<u8>, messages: &mut Vec<Vec<u8>>) {
    while let Some(event) = conn.poll_event() {
        assert!(!*closed, "event after Closed");
        match event {
            Event::Message(m) => {
                assert!(m.len() <= LIMIT, "message of {} bytes", m.len());
                if let Message::Text(t) = m {
                    assert!(std::str::from_utf8(t.as_bytes()).is_ok());
                }
                messages.push(m.as_bytes().to_vec());
            }
            Event::Chunk(c) => {
                assert!(c.data.len() <= 64 * 1024, "chunk of {} bytes", c.data.len());
                partial.extend_from_slice(c.data);
                if c.fin {
                    if c.kind == wscore::MessageKind::Text {
                        assert!(std::str::from_utf8(partial).is_ok(), "streamed text is not UTF-8");
                    }
                    messages.push(std::mem::take(partial));
                }
            }
            Event::Closed(c) => {
                *closed = true;
                if let Some(e) = c.error {
                    let code = e.close_code();
                    assert!(
                        [
                            CloseCode::PROTOCOL_ERROR,
                            CloseCode::INVALID_PAYLOAD,
                            CloseCode::TOO_BIG,
                            CloseCode::ABNORMAL
                        ]
                        .contains(&code),
                        "closed with {code} ({e:?})"
                    );
                }
            }
            _ => {}
        }
    }
}

/// Offers `piece` until it is taken, running `drain` after each receive
/// call, as an adapter does with what `receive` refused; only a closed
/// connection may refuse input right after its events were drained.
fn offer(conn: &mut Connection, piece: &[u8], mut drain: impl FnMut(&mut Connection)) {
    let mut rest = piece;
    while !rest.is_empty() {
        let n = conn.receive(Duration::ZERO, rest);
        assert!(n <= rest.len());
        rest = &rest[n..];
        if n == 0 {
            assert!(conn.closed().is_some(), "a drained, open connection refused input");
            return;
        }
        drain(conn);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let params = params(flags);
    let config = config(flags);
    let text = flags & 8 != 0;
    let opcode = if text { OpCode::Text } else { OpCode::Binary };

    // 1. Arbitrary compressed frames.
    let mut wire = Vec::new();
    let mut rest = rest;
    let mut first = true;
    while let Some((&len, after)) = rest.split_first() {
        let len = usize::from(len & 0x7F).min(after.len());
        let fin = len & 1 == 1 || after.len() == len;
        let (payload, later) = after.split_at(len);
        let (rsv, op) = if first { (RSV1, opcode) } else { (0, OpCode::Continuation) };
        wire.extend(masked_frame(fin, rsv, op, payload));
        first = fin;
        rest = later;
    }
    let mut server =
        Connection::frames_only_with_deflate(Role::Server, config.clone(), params, Duration::ZERO).unwrap();
    let (mut closed, mut partial, mut messages) = (false, Vec::new(), Vec::new());
    let step = 1 + usize::from(flags >> 4 & 1) * 63;
    for piece in wire.chunks(step) {
        offer(&mut server, piece, |s| drain(s, &mut closed, &mut partial, &mut messages));
    }
    server.handle_eof();
    drain(&mut server, &mut closed, &mut partial, &mut messages);
    assert!(closed, "EOF must end the connection");

    // 2. Round trip of the input itself, compressed by a client.
    let mut client =
        Connection::frames_only_with_deflate(Role::Client, config.clone(), params, Duration::ZERO).unwrap();
    let mut server = Connection::frames_only_with_deflate(Role::Server, config, params, Duration::ZERO).unwrap();
    let sent: Vec<u8> = if text { String::from_utf8_lossy(data).into_owned().into_bytes() } else { data.to_vec() };
    let sent = &sent[..sent.len().min(LIMIT)];
    let message = if text { Message::Text(std::str::from_utf8(sent).unwrap_or("")) } else { Message::Binary(sent) };
    for _ in 0..2 {
        client.send(message).unwrap();
    }
    let mut bytes = Vec::new();
    client.transmit_into(&mut bytes);
    let (mut closed, mut partial, mut got) = (false, Vec::new(), Vec::new());
    for piece in bytes.chunks(step.max(7)) {
        offer(&mut server, piece, |s| drain(s, &mut closed, &mut partial, &mut got));
    }
    assert!(!closed, "a valid compressed stream failed");
    assert_eq!(got, vec![message.as_bytes().to_vec(); 2]);
});
