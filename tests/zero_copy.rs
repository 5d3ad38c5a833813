//! The owned, zero-copy paths of the `bytes` feature: messages split off
//! the receive buffer (counted by a global allocator: no copy, no
//! allocation per message), shared payloads sent as they are (the slice
//! handed out for transmission is the caller's own memory), and prepared
//! messages framed and compressed once for many connections.

#![cfg(feature = "bytes")]
#![allow(unsafe_code)]

mod common;
#[path = "common/counting.rs"]
mod counting;

use std::time::Duration;

use bytes::Bytes;
use common::{Ev, Pair, Side, client_frame, config};
use wscore::deflate::DeflateConfig;
use wscore::frame::FrameHeader;
use wscore::{Config, Connection, Message, OwnedEvent, OwnedMessage, Payload, PreparedMessage, Role};

const NOW: Duration = Duration::ZERO;

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

fn server(config: Config) -> Connection {
    Connection::frames_only(Role::Server, config, NOW).unwrap()
}

/// Takes the next owned message, counting the heap bytes it took.
fn owned_message(conn: &mut Connection) -> (OwnedMessage, i64) {
    let before = counting::current();
    let event = conn.poll_owned();
    let grown = counting::current() - before;
    match event {
        Some(OwnedEvent::Message(message)) => (message, grown),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_received_message_is_split_off_not_copied() {
    let mut conn = server(Config::default());
    let data = pattern(64 << 10);
    let frame = client_frame(0x82, &data);
    let mut rest = &frame[..];
    while !rest.is_empty() {
        let n = conn.receive(NOW, rest);
        rest = &rest[n..];
        assert!(n > 0);
        if !rest.is_empty() {
            assert!(conn.poll_owned().is_none());
        }
    }
    let (message, grown) = owned_message(&mut conn);
    // A copy would take 64 KiB; sharing the buffer takes its small shared
    // record, once per buffer.
    assert!(grown < 128, "taking the message allocated {grown} bytes");
    assert_eq!(message, OwnedMessage::binary(data.clone()));
    // The connection goes on with a buffer of its own; the message keeps
    // the old one alive for as long as it lives.
    let second = client_frame(0x81, "ünïcode".repeat(5000).as_bytes());
    assert_eq!(common::feed_all(&mut conn, NOW, &[]), []);
    let mut rest = &second[..];
    while !rest.is_empty() {
        let n = conn.receive(NOW, rest);
        rest = &rest[n..];
        if !rest.is_empty() {
            assert!(conn.poll_owned().is_none());
        }
    }
    let (text, _) = owned_message(&mut conn);
    let OwnedMessage::Text(text) = text else { panic!("text") };
    assert_eq!(text.as_str(), "ünïcode".repeat(5000));
    assert_eq!(message.as_bytes(), &data[..], "the first message is intact");
}

#[test]
fn a_fragmented_message_hands_over_its_assembly_buffer() {
    let mut conn = server(Config::default());
    let data = pattern(100_000);
    let mut wire = client_frame(0x02, &data[..50_000]);
    wire.extend(client_frame(0x80, &data[50_000..]));
    let mut rest = &wire[..];
    let mut message = None;
    while !rest.is_empty() || message.is_none() {
        let n = conn.receive(NOW, rest);
        rest = &rest[n..];
        if let Some(OwnedEvent::Message(m)) = conn.poll_owned() {
            message = Some(m);
        }
    }
    assert_eq!(message.unwrap(), OwnedMessage::binary(data));
    // The next message assembles into a new buffer.
    let next = pattern(70_000);
    let mut wire = client_frame(0x02, &next[..1000]);
    wire.extend(client_frame(0x80, &next[1000..]));
    assert_eq!(common::feed_all(&mut conn, NOW, &wire), [Ev::binary(&next)]);
}

#[test]
fn small_messages_are_held_inline_without_allocating() {
    let mut conn = server(Config::default());
    let frames: Vec<u8> = (0..100u8).flat_map(|i| client_frame(0x82, &[i; 16])).collect();
    assert_eq!(conn.receive(NOW, &frames), frames.len());
    let mut kept = Vec::new();
    let before = counting::current();
    for i in 0..100u8 {
        let Some(OwnedEvent::Message(OwnedMessage::Binary(payload))) = conn.poll_owned() else { panic!() };
        assert_eq!(payload, Payload::copy_from_slice(&[i; 16]));
        kept.push(payload);
    }
    let grown = counting::current() - before;
    // Only the Vec the test keeps them in grows.
    assert!(grown <= (100 * std::mem::size_of::<Payload>() * 2) as i64, "{grown}");
}

/// The slices a connection hands out for a vectored write.
fn slices(conn: &mut Connection) -> Vec<(*const u8, usize)> {
    let mut out = [&[][..]; 16];
    let n = conn.poll_transmit_slices(&mut out);
    out[..n].iter().map(|s| (s.as_ptr(), s.len())).collect()
}

#[test]
fn a_server_sends_a_shared_payload_without_copying_it() {
    let mut conn = server(Config::default());
    let payload = Bytes::from(pattern(100_000));
    let address = payload.as_ptr();
    let before = counting::current();
    conn.send_owned(OwnedMessage::binary(payload.clone())).unwrap();
    let grown = counting::current() - before;
    assert!(grown < 1024, "queuing the message allocated {grown} bytes");
    assert_eq!(conn.buffered_amount(), 10 + 100_000);
    // The header from the send buffer, then the caller's own bytes.
    let pieces = slices(&mut conn);
    assert_eq!(pieces, [(pieces[0].0, 10), (address, 100_000)]);
    let mut wire = Vec::new();
    conn.transmit_into(&mut wire);
    assert_eq!(wire[..2], [0x82, 127]);
    assert_eq!(wire[2..10], 100_000u64.to_be_bytes());
    assert_eq!(&wire[10..], &payload[..]);
}

#[test]
fn shared_payloads_interleave_with_framed_bytes_in_order() {
    let mut pair = Pair::new(Config::default(), Config::default());
    let big = Bytes::from(pattern(50_000));
    pair.server.conn.send_text("first").unwrap();
    pair.server.conn.send_owned(OwnedMessage::binary(big.clone())).unwrap();
    pair.server.conn.send_ping(b"between").unwrap();
    pair.server.conn.send_owned(OwnedMessage::binary(big.clone())).unwrap();
    pair.server.conn.send_text("last").unwrap();
    // Transmitted in small pieces, as a socket might take them.
    pair.segment = Some(777);
    pair.drive();
    assert_eq!(
        pair.events(Side::Client),
        [Ev::text("first"), Ev::binary(&big), Ev::Ping(b"between".to_vec()), Ev::binary(&big), Ev::text("last")]
    );
}

#[test]
fn an_owned_echo_round_trips_every_size() {
    let mut pair = Pair::new(Config::default(), Config::default());
    for len in [0, 1, 38, 39, 125, 126, 2047, 2048, 65535, 65536, 1 << 20] {
        let data = pattern(len);
        pair.client.conn.send_binary(&data).unwrap();
        pair.drive();
        let server = &mut pair.server;
        // The harness already took the event; send it back owned.
        assert_eq!(server.events.pop_front(), Some(Ev::binary(&data)));
        server.conn.send_owned(OwnedMessage::binary(data.clone())).unwrap();
        pair.drive();
        assert_eq!(pair.events(Side::Client), [Ev::binary(&data)], "{len}");
    }
}

#[test]
fn a_prepared_message_is_framed_once_and_shared() {
    let text = "broadcast ".repeat(1000);
    let prepared = PreparedMessage::new(Message::Text(&text));
    let mut a = server(Config::default());
    let mut b = server(Config::default());
    a.send_prepared(&prepared).unwrap();
    b.send_prepared(&prepared).unwrap();
    let (sa, sb) = (slices(&mut a), slices(&mut b));
    assert_eq!(sa, sb, "both connections hand out the same bytes");
    let mut wire = Vec::new();
    a.transmit_into(&mut wire);
    let (header, len) = FrameHeader::decode(&wire).unwrap().unwrap();
    assert!(header.fin && header.mask.is_none());
    assert_eq!(&wire[len..], text.as_bytes());

    // A client masks its own copy, and its peer reads the same message.
    let mut pair = Pair::new(Config::default(), Config::default());
    pair.client.conn.send_prepared(&prepared).unwrap();
    pair.server.conn.send_prepared(&prepared).unwrap();
    pair.drive();
    assert_eq!(pair.events(Side::Server), [Ev::text(&text)]);
    assert_eq!(pair.events(Side::Client), [Ev::text(&text)]);
}

#[test]
fn a_prepared_message_is_compressed_once_where_the_window_allows() {
    let text = "the same news for everyone, ".repeat(200);
    let prepared = PreparedMessage::with_deflate(Message::Text(&text), &DeflateConfig::default(), 15);
    let compressed_len = prepared.compressed_len().expect("compressed");
    assert!(compressed_len < text.len() / 4);
    let deflate = config(|c| c.deflate = Some(DeflateConfig::default()));
    let small_window = config(|c| {
        let mut d = DeflateConfig::default();
        d.server_max_window_bits = Some(10);
        c.deflate = Some(d);
    });
    for (client, server, compressed) in [
        (deflate.clone(), deflate.clone(), true),
        (small_window.clone(), deflate.clone(), false),
        (Config::default(), deflate.clone(), false),
    ] {
        let mut pair = Pair::new(client, server);
        // A regular compressed message first, so the contexts hold history.
        pair.server.conn.send_text(&text).unwrap();
        pair.drive();
        assert_eq!(pair.events(Side::Client), [Ev::text(&text)]);
        let sent_before = pair.server.sent.len();
        pair.server.conn.send_prepared(&prepared).unwrap();
        // And regular messages after it: the compressor must not refer to
        // a history the client's inflater no longer shares.
        pair.server.conn.send_text(&text).unwrap();
        pair.server.conn.send_text(&text).unwrap();
        pair.drive();
        assert_eq!(pair.events(Side::Client), [Ev::text(&text), Ev::text(&text), Ev::text(&text)]);
        let wire = &pair.server.sent[sent_before..];
        let (header, len) = FrameHeader::decode(wire).unwrap().unwrap();
        assert_eq!(header.rsv & 0b100 != 0, compressed, "RSV1");
        let expected = if compressed { compressed_len } else { text.len() };
        assert_eq!(header.payload_len as usize, expected);
        let _ = len;
    }
}

/// Feeds `wire` as sockets deliver it, in reads of 16 KiB or (when the
/// connection says how much of a frame is still to come) of that much,
/// the way the adapters read; returns the events and how many reads and
/// allocations (or reallocations) it took.
fn feed_in_reads(conn: &mut Connection, wire: &[u8]) -> (Vec<Ev>, usize, u64) {
    let mut events = Vec::new();
    let mut reads = 0;
    let mut allocations = 0;
    let mut rest = wire;
    while !rest.is_empty() {
        let before = counting::allocations();
        let buf = conn.receive_buffer((16 << 10).max(conn.frame_remaining()));
        let n = buf.len().min(rest.len());
        assert!(n > 0, "no room offered");
        buf[..n].copy_from_slice(&rest[..n]);
        conn.commit_received(NOW, n);
        rest = &rest[n..];
        reads += 1;
        allocations += counting::allocations() - before;
        loop {
            // The connection's allocations only, not the copies `Ev` makes.
            let before = counting::allocations();
            let event = conn.poll_event();
            allocations += counting::allocations() - before;
            let Some(event) = event else { break };
            events.push(Ev::from_event(event));
        }
    }
    (events, reads, allocations)
}

#[test]
fn a_large_frame_read_in_pieces_arrives_into_one_buffer() {
    for (len, text) in [(64 << 10, false), (300_000, true), (1 << 20, false)] {
        let mut conn = server(Config::default());
        let data = if text { "é".repeat(len / 2).into_bytes() } else { pattern(len) };
        let wire = client_frame(if text { 0x81 } else { 0x82 }, &data);
        // The header and the first read: the connection now knows the rest.
        let first = conn.receive(NOW, &wire[..16 << 10]);
        assert_eq!(first, 16 << 10);
        assert!(conn.poll_event().is_none());
        assert_eq!(conn.frame_remaining(), wire.len() - first, "{len}");
        let (events, reads, allocations) = feed_in_reads(&mut conn, &wire[first..]);
        let expected = if text { Ev::text(std::str::from_utf8(&data).unwrap()) } else { Ev::binary(&data) };
        assert_eq!(events, [expected], "{len}");
        // Room for the whole frame was set aside when its header came, so
        // the buffer never grew (and was never copied) as it arrived, and
        // every later read could take up to the frame's rest.
        assert_eq!(allocations, 0, "{len}: the buffer grew while the frame arrived");
        assert!(reads <= wire.len().div_ceil(64 << 10), "{len}: {reads} reads");
    }
}

#[test]
fn large_frames_in_socket_reads_each_land_at_the_front_of_one_buffer() {
    // 64 KiB frames offered in 64 KiB reads, as a caller that reads into
    // its own buffer and hands each read to `receive` does: every read but
    // the first ends one frame and goes on into the next. `receive` stops
    // at the end of the frame in progress when the next one would not fit
    // after it, so once the message is drained the rest is offered again
    // and lands at the front of the same buffer: no frame's first piece is
    // moved (taking it all, the connection moved it there), and the buffer
    // is not grown around it.
    let mut conn = server(Config::default());
    let payloads: Vec<Vec<u8>> = (0..4u8).map(|i| pattern(64 << 10).iter().map(|b| b ^ i).collect()).collect();
    let wire: Vec<u8> = payloads.iter().flat_map(|p| client_frame(0x82, p)).collect();
    let mut received = Vec::new();
    let mut allocations_after_first = 0;
    let (mut offset, mut offsets) = (0, Vec::new());
    for read in wire.chunks(64 << 10) {
        let mut read = read;
        while !read.is_empty() {
            let before = counting::allocations();
            let taken = conn.receive(NOW, read);
            if !received.is_empty() {
                allocations_after_first += counting::allocations() - before;
            }
            offset += taken;
            offsets.push(offset);
            read = &read[taken..];
            while let Some(event) = conn.poll_event() {
                match event {
                    wscore::Event::Message(Message::Binary(data)) => received.push((data.as_ptr(), data.to_vec())),
                    other => panic!("{other:?}"),
                }
            }
            assert!(taken > 0 || !received.is_empty(), "no progress");
        }
    }
    assert_eq!(received.len(), 4);
    for ((ptr, data), payload) in received.iter().zip(&payloads) {
        assert!(data == payload);
        assert_eq!(*ptr, received[0].0, "every message at the front of the first one's buffer");
    }
    assert_eq!(allocations_after_first, 0, "the buffer grew after the first frame");
    // Each read that goes on into the next frame was taken up to the end
    // of the frame in progress first.
    let frame = wire.len() / 4;
    for end in (1..=4).map(|k| k * frame) {
        assert!(offsets.contains(&end), "no receive stopped at {end}: {offsets:?}");
    }
}

#[test]
fn a_length_field_alone_sets_aside_no_more_than_the_reservation_bound() {
    // 16 MiB is within the default frame limit; only 16 x 64 KiB (and a
    // header) is set aside before the bytes come, and nothing is filled.
    let mut conn = server(Config::default());
    let header = client_frame(0x82, &[0; 0]);
    let mut claim = vec![header[0], 0x80 | 127];
    claim.extend_from_slice(&(16u64 << 20).to_be_bytes());
    claim.extend_from_slice(&header[2..6]);
    let before = counting::current();
    assert_eq!(conn.receive(NOW, &claim), claim.len());
    assert!(conn.poll_event().is_none());
    let held = counting::current() - before;
    assert!(held <= (1 << 20) + 1024, "a 16 MiB claim set aside {held} bytes");
    assert_eq!(conn.frame_remaining(), 16 << 20);
    // The frame still arrives whole, the buffer growing as it does.
    let data = pattern(16 << 20);
    let frame = client_frame(0x82, &data);
    let (events, _, allocations) = feed_in_reads(&mut conn, &frame[claim.len()..]);
    assert!(allocations < 8, "{allocations} allocations for a 16 MiB frame");
    assert_eq!(events, [Ev::binary(&data)]);
}

#[test]
fn an_owned_echo_of_large_messages_takes_one_buffer_per_message() {
    let mut conn = server(Config::default());
    let data = pattern(64 << 10);
    let wire = client_frame(0x82, &data);
    for round in 0..8 {
        let mut messages = Vec::with_capacity(1);
        let allocations = counting::allocations();
        let mut rest = &wire[..];
        while !rest.is_empty() {
            // As the adapters read: a connection holding nothing takes a
            // read whole; otherwise it reads into its own buffer.
            let n = if conn.buffered_input() == 0 {
                conn.receive(NOW, &rest[..rest.len().min(16 << 10)])
            } else {
                let buf = conn.receive_buffer((16 << 10).max(conn.frame_remaining()));
                let n = buf.len().min(rest.len());
                buf[..n].copy_from_slice(&rest[..n]);
                conn.commit_received(NOW, n);
                n
            };
            rest = &rest[n..];
            while let Some(event) = conn.poll_owned() {
                let OwnedEvent::Message(message) = event else { panic!("{event:?}") };
                messages.push(message);
            }
        }
        assert_eq!(messages.len(), 1);
        assert_eq!(messages[0].as_bytes(), &data[..]);
        // One buffer for the frame, the record that shares it, and none
        // for growth: the message took its buffer with it.
        let allocations = counting::allocations() - allocations;
        assert!(allocations <= 2, "round {round}: {allocations} allocations");
    }
}

#[test]
fn an_owned_echo_allocates_nothing_per_message_once_warm() {
    // What the tokio echo server does with each message: take it owned,
    // send it back, transmit, drop it. Reads are socket-sized.
    for size in [16, 1024, 3000] {
        let mut conn = server(Config::default());
        let data = pattern(size);
        let wire: Vec<u8> = (0..40).flat_map(|_| client_frame(0x82, &data)).collect();
        let round = |conn: &mut Connection| {
            for read in wire.chunks(16 << 10) {
                let mut read = read;
                while !read.is_empty() {
                    let n = if conn.buffered_input() == 0 {
                        conn.receive(NOW, read)
                    } else {
                        let buf = conn.receive_buffer(read.len());
                        let n = buf.len();
                        buf.copy_from_slice(&read[..n]);
                        conn.commit_received(NOW, n);
                        n
                    };
                    read = &read[n..];
                    while let Some(event) = conn.poll_owned() {
                        let OwnedEvent::Message(message) = event else { panic!("{event:?}") };
                        conn.send_owned(message).unwrap();
                        while !conn.poll_transmit().is_empty() {
                            let n = conn.poll_transmit().len();
                            conn.advance_transmit(n);
                        }
                    }
                }
            }
        };
        for _ in 0..3 {
            round(&mut conn);
        }
        let before = counting::allocations();
        for _ in 0..10 {
            round(&mut conn);
        }
        let allocations = counting::allocations() - before;
        assert_eq!(allocations, 0, "{size} B: {allocations} allocations for 400 messages");
    }
}
