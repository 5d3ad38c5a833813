//! Heap memory held by permessage-deflate, counted exactly by a global
//! allocator: per connection (idle without deflate; with context takeover
//! after a compressed message each way; with `server_no_context_takeover`
//! and `client_no_context_takeover`, which keep their reset compressor and
//! decompressor while messages flow and must hold neither, nor any buffer,
//! once quiet for `buffer_release_delay`, or between messages without a
//! delay), and the
//! peak while a decompression bomb is refused.
//!
//! The figures are printed (`cargo test --test deflate_memory -- --nocapture`)
//! and bounded by assertions. The allocator counts per thread, so tests
//! running in parallel do not see each other's allocations; every figure
//! is heap bytes only, `size_of::<Connection>()` comes on top.

// The counting allocator implements `GlobalAlloc`; Cargo.toml denies unsafe
// code so that only a file like this one can allow it.
#![allow(unsafe_code)]

mod common;

use std::time::Duration;

use common::deflate_bits::bomb;
use common::{Ev, Pair, Side, config};
use wscore::deflate::DeflateConfig;
use wscore::{Config, Connection, Error, Event, ProtocolError};

#[path = "common/counting.rs"]
mod counting;

use counting::{current, peak, reset_peak};

const NOW: Duration = Duration::ZERO;
const KIB: i64 = 1024;
const MIB: i64 = 1024 * 1024;

/// The heap bytes still held by what `make` returns: the growth of this
/// thread's allocations across the call, once everything else `make`
/// allocated has been freed.
fn held<T>(make: impl FnOnce() -> T) -> (i64, T) {
    let before = current();
    let value = make();
    (current() - before, value)
}

fn deflate(f: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut d = DeflateConfig::default();
    f(&mut d);
    d
}

/// `retained` 0 also frees large buffers as soon as they drain (no idle
/// delay), so that what remains is only what the connection must hold.
fn with(d: Option<DeflateConfig>, retained: usize) -> Config {
    config(|c| {
        c.deflate = d;
        c.retained_buffer_capacity = retained;
        if retained == 0 {
            c.buffer_release_delay = None;
        }
    })
}

/// Compressible text of `len` bytes, different for each `seed`.
fn text(len: usize, seed: usize) -> String {
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"];
    let mut s = format!("{seed} ");
    let mut i = seed;
    while s.len() < len {
        i = i.wrapping_mul(2_654_435_761).wrapping_add(1);
        s.push_str(words[i % words.len()]);
        s.push(' ');
    }
    s.truncate(len);
    s
}

/// A connected pair that exchanged `messages` 4 KiB texts each way (all
/// compressed if deflate was negotiated: they pass the 1 KiB threshold),
/// every event taken, so both ends are idle. Returns the end on `side`.
fn connection(client: Config, server: Config, messages: usize, side: Side) -> Connection {
    let mut pair = Pair::new(client, server);
    for m in 0..messages {
        let t = text(4096, m);
        pair.client.conn.send_text(&t).unwrap();
        pair.server.conn.send_text(&t).unwrap();
        pair.drive();
        assert_eq!(pair.events(Side::Server), [Ev::Text(t.clone())]);
        assert_eq!(pair.events(Side::Client), [Ev::Text(t)]);
    }
    match side {
        Side::Client => pair.client.conn,
        Side::Server => pair.server.conn,
    }
}

/// `conn` after five quiet seconds, its timers run as they came due and
/// polled after each as an adapter's loop does (peek, poll, transmit, an
/// empty read): the release delay (1 s by default) passes and frees the
/// buffers and codec state kept for reuse. Polling an idle connection is
/// no traffic and must not keep them.
fn quiet(mut conn: Connection) -> Connection {
    let end = NOW + Duration::from_secs(5);
    let mut rounds = 0;
    while let Some(deadline) = conn.poll_timeout().filter(|&d| d <= end) {
        conn.handle_timeout(deadline);
        assert!(conn.peek_event().is_none() && conn.poll_event().is_none(), "an event while quiet");
        assert!(conn.poll_transmit().is_empty(), "output while quiet");
        conn.advance_transmit(0);
        let _ = conn.receive(deadline, &[]);
        rounds += 1;
        assert!(rounds < 10, "a timer that keeps firing");
    }
    assert!(rounds > 0, "no release deadline");
    conn
}

/// One row of the table: the scenario and what each end holds.
struct Row {
    what: &'static str,
    server: i64,
    client: i64,
}

fn row(what: &'static str, make: impl Fn(Side) -> Connection) -> Row {
    // Held in the same way twice: the figure does not depend on history.
    let (server, conn) = held(|| make(Side::Server));
    let (again, _second) = held(|| make(Side::Server));
    assert_eq!(server, again, "{what}: server");
    drop(conn);
    let (client, _conn) = held(|| make(Side::Client));
    Row { what, server, client }
}

#[test]
fn per_connection_memory() {
    let on = || Some(DeflateConfig::default());
    let off = || {
        Some(deflate(|d| {
            d.server_no_context_takeover = true;
            d.client_no_context_takeover = true;
        }))
    };
    let r = 4096; // the default retained_buffer_capacity
    let rows = [
        row("no deflate, handshake only", |side| connection(with(None, r), with(None, r), 0, side)),
        row("no deflate, handshake only, retained 0", |side| connection(with(None, 0), with(None, 0), 0, side)),
        row("no deflate, 1 message each way", |side| connection(with(None, r), with(None, r), 1, side)),
        row("no deflate, 1 message each way, retained 0", |side| connection(with(None, 0), with(None, 0), 1, side)),
        row("no deflate, 1 message each way, then quiet", |side| {
            quiet(connection(with(None, r), with(None, r), 1, side))
        }),
        row("deflate negotiated, no message", |side| connection(with(on(), r), with(on(), r), 0, side)),
        row("takeover, 1 compressed message each way", |side| connection(with(on(), r), with(on(), r), 1, side)),
        row("takeover, 3 messages each way, retained 0", |side| connection(with(on(), 0), with(on(), 0), 3, side)),
        row("takeover, 3 messages each way, then quiet", |side| {
            quiet(connection(with(on(), r), with(on(), r), 3, side))
        }),
        row("no takeover, 3 messages each way", |side| connection(with(off(), r), with(on(), r), 3, side)),
        row("no takeover, 3 messages each way, then quiet", |side| {
            quiet(connection(with(off(), r), with(on(), r), 3, side))
        }),
        row("no takeover, 3 messages each way, retained 0", |side| connection(with(off(), 0), with(on(), 0), 3, side)),
    ];
    println!("heap bytes held per idle connection (size_of::<Connection>() = {} on top):", size_of::<Connection>());
    println!("{:<46} {:>9} {:>9}", "", "server", "client");
    for row in &rows {
        println!("{:<46} {:>9} {:>9}", row.what, row.server, row.client);
    }
    let [
        idle,
        idle0,
        plain,
        plain0,
        plain_quiet,
        negotiated,
        takeover,
        takeover0,
        takeover_quiet,
        stateless,
        stateless_quiet,
        stateless0,
    ] = &rows;
    for (side, pick) in [("server", (|r: &Row| r.server) as fn(&Row) -> i64), ("client", |r: &Row| r.client)] {
        // After the handshake a connection holds almost nothing.
        assert!(pick(idle) < 512, "{side}: {} bytes idle", pick(idle));
        // Negotiating allocates only the small codec record.
        assert!(pick(negotiated) < pick(idle) + 512, "{side}: {} bytes after negotiating", pick(negotiated));
        // Context takeover keeps a compressor and a decompressor: the docs
        // say about 340 KiB.
        for t in [takeover, takeover0] {
            assert!((256 * KIB..512 * KIB).contains(&pick(t)), "{side}: {} bytes with takeover", pick(t));
        }
        // Once quiet, the compressor goes (the next message starts from a
        // fresh context) and the inflater keeps only its 32 KiB history.
        assert!(
            (pick(negotiated) + 4 * KIB..=pick(negotiated) + 33 * KIB).contains(&pick(takeover_quiet)),
            "{side}: {} bytes with takeover, quiet",
            pick(takeover_quiet)
        );
        // Without takeover, our encoder and the decompressor are kept for
        // reuse while messages flow, like the large buffers: less than half
        // of what takeover holds (miniz_oxide's compressor alone is 312 KiB)...
        assert!(
            (64 * KIB..pick(takeover) / 2).contains(&pick(stateless)),
            "{side}: {} bytes busy, {} with takeover",
            pick(stateless),
            pick(takeover)
        );
        // ...and once quiet for the delay, nothing is kept: no buffer, no
        // codec state, only the small codec record that negotiating
        // allocated. With no delay (retained 0) the codec state goes after
        // each message. (A client also holds its boxed mask generator, 112
        // bytes.)
        assert!(
            pick(stateless_quiet) <= pick(negotiated),
            "{side}: {} bytes without takeover, quiet, vs {} negotiated",
            pick(stateless_quiet),
            pick(negotiated)
        );
        // A connection without deflate keeps its small buffers while busy
        // and drops them once quiet.
        assert!(pick(plain) > pick(idle) + 4 * KIB, "{side}: {} bytes busy without deflate", pick(plain));
        assert!(pick(plain_quiet) <= pick(idle), "{side}: {} bytes quiet without deflate", pick(plain_quiet));
        assert!(pick(stateless0) < 256, "{side}: {} bytes without takeover, retained 0", pick(stateless0));
        assert!(pick(stateless0) <= pick(negotiated), "{side}: without takeover, retained 0");
        assert!(pick(plain0) <= pick(idle0), "{side}: buffers freed with retained 0");
    }
}

#[test]
fn idle_server_after_the_handshake_holds_no_buffer() {
    // A connection that never exchanged a message holds no buffer: the
    // handshake's are freed as it completes.
    let (mask_generator, _conn) = held(|| connection(with(None, 4096), with(None, 4096), 0, Side::Client));
    for d in [None, Some(DeflateConfig::default())] {
        let (server, _conn) = held(|| connection(with(d.clone(), 4096), with(d.clone(), 4096), 0, Side::Server));
        let (client, _conn) = held(|| connection(with(d.clone(), 4096), with(d.clone(), 4096), 0, Side::Client));
        // The deflate record is the only allocation expected; a client also
        // holds its boxed mask generator.
        assert_eq!(server, client - mask_generator, "server, deflate {}", d.is_some());
        assert!(server <= 64, "server, deflate {}: {server} bytes", d.is_some());
    }
}

#[test]
fn transient_memory_of_one_compressed_message() {
    // Without takeover the codec state exists only while a message is
    // compressed or inflated: measure that peak.
    let cfg = with(
        Some(deflate(|d| {
            d.server_no_context_takeover = true;
            d.client_no_context_takeover = true;
        })),
        0,
    );
    let mut pair = Pair::new(cfg.clone(), cfg);
    let t = text(4096, 1);
    let before = current();
    reset_peak();
    pair.client.conn.send_text(&t).unwrap();
    let send = peak() - before;
    let wire = pair.client.conn.poll_transmit().to_vec();
    pair.client.conn.advance_transmit(wire.len());
    let before = current();
    reset_peak();
    assert_eq!(pair.server.conn.receive(NOW, &wire), wire.len());
    assert!(matches!(pair.server.conn.poll_event(), Some(Event::Message(_))));
    let receive = peak() - before;
    assert!(pair.server.conn.poll_event().is_none());
    println!("peak while compressing a 4 KiB text: {send} bytes; while inflating it: {receive} bytes");
    assert!(send < 512 * KIB && receive < 256 * KIB, "{send} {receive}");
}

// ----- Decompression bomb --------------------------------------------------------

/// A masked frame (for a server) with first header byte `first`.
fn masked_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![first, 0x80 | 127];
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

#[test]
fn decompression_bomb_peak_memory() {
    // Inflates to 1 GiB; sent as one frame of about 1 MB.
    let payload = bomb((1 << 30) / 258 + 1);
    assert!(payload.len() < 1 << 20);
    let frame = masked_frame(0xc2, &payload);
    for piece in [frame.len(), 64 << 10, 1400] {
        let cfg = config(|c| {
            c.deflate = Some(DeflateConfig::default());
            c.max_message_size = 1 << 20;
        });
        let mut pair = Pair::new(cfg.clone(), cfg);
        let before = current();
        reset_peak();
        let mut events = Vec::new();
        for chunk in frame.chunks(piece) {
            pair.inject(Side::Server, chunk);
            events.extend(pair.events(Side::Server));
            if !events.is_empty() {
                break;
            }
        }
        assert_eq!(events, [Ev::failed(Error::Protocol(ProtocolError::MessageTooLarge))]);
        let growth = peak() - before;
        println!("1 GiB bomb to a 1 MiB-limit server, reads of {piece} bytes: peak heap grew {} KiB", growth / KIB);
        // The compressed frame (1 MiB, when read at once) and the message
        // up to its limit (1 MiB), nothing near the 1 GiB.
        assert!(growth < 3 * MIB, "peak grew {growth} bytes");
    }
}

#[test]
fn streamed_bomb_peak_memory() {
    // Streaming has no message limit, but holds one 64 KiB chunk at a time.
    // A frame inflating past `max_frame_size` fails (1009) as a plain frame
    // that long would: the limit is lifted here to show that memory stays
    // bounded however much one frame inflates to.
    let matches = (256 << 20) / 258;
    let frame = masked_frame(0xc2, &bomb(matches));
    let cfg = config(|c| {
        c.deflate = Some(DeflateConfig::default());
        c.streaming = true;
        c.max_frame_size = 1 << 30;
    });
    let mut pair = Pair::new(cfg.clone(), cfg);
    let before = current();
    reset_peak();
    let conn = &mut pair.server.conn;
    let mut total = 0u64;
    for chunk in frame.chunks(64 << 10) {
        assert_eq!(conn.receive(NOW, chunk), chunk.len());
        while let Some(event) = conn.poll_event() {
            let Event::Chunk(chunk) = event else { panic!("{event:?}") };
            assert!(chunk.data.len() <= 64 << 10);
            total += chunk.data.len() as u64;
        }
    }
    assert_eq!(total, 1 + 258 * matches);
    let growth = peak() - before;
    println!("256 MiB bomb, streaming mode, reads of 64 KiB: peak heap grew {} KiB", growth / KIB);
    assert!(growth < 512 * KIB, "peak grew {growth} bytes");
}

/// Config::buffer_release_delay: a drained buffer larger than
/// `retained_buffer_capacity` stays while traffic flows and goes once the
/// connection has been quiet for the delay (a deadline in `poll_timeout`);
/// with no delay it goes as soon as it drains.
#[test]
fn large_buffers_are_released_after_the_idle_delay() {
    let payload = vec![0x5A; 64 * 1024];
    let frame = masked_frame(0x82, &payload);
    for delay in [Some(Duration::from_secs(1)), None] {
        let mut config = Config::default();
        config.buffer_release_delay = delay;
        // The whole frame in one read.
        config.max_unprocessed_input = 1 << 20;
        let mut server = Connection::frames_only(wscore::Role::Server, config, Duration::ZERO).unwrap();
        let (grown, ()) = held(|| {
            assert_eq!(server.receive(Duration::from_millis(10), &frame), frame.len());
            assert!(matches!(server.poll_event(), Some(Event::Message(m)) if m.len() == payload.len()));
            assert!(server.poll_event().is_none());
        });
        match delay {
            Some(delay) => {
                assert!(grown >= payload.len() as i64, "kept for reuse: {grown}");
                assert_eq!(server.poll_timeout(), Some(Duration::from_millis(10) + delay));
                let (early, ()) = held(|| server.handle_timeout(Duration::from_millis(500)));
                assert_eq!(early, 0, "released before the delay");
                let (released, ()) = held(|| server.handle_timeout(Duration::from_millis(10) + delay));
                assert!(released <= -(payload.len() as i64), "released {released}");
                assert_eq!(server.poll_timeout(), None);
            }
            None => {
                assert!(grown < 1024, "freed at once: {grown}");
                assert_eq!(server.poll_timeout(), None);
            }
        }
    }
}

#[cfg(feature = "bytes")]
#[test]
fn owned_echo_holds_nothing_once_quiet() {
    // What the tokio echo server does: each message taken owned (split off
    // the receive buffer) and sent back with `send_owned` (shared, not
    // copied), read in socket-sized pieces. Large messages alone too: split
    // off whole, they leave the buffer empty from its start, and that must
    // still count as traffic that schedules the release.
    for sizes in [&[10usize, 125, 3000, 70_000, 256_000, 300_000, 40][..], &[256_000], &[70_000, 70_000]] {
        owned_echo_then_quiet(sizes);
    }
}

#[cfg(feature = "bytes")]
fn owned_echo_then_quiet(sizes: &[usize]) {
    let (held_bytes, _server) = held(|| {
        let mut pair = Pair::new(Config::default(), Config::default());
        for (i, &len) in sizes.iter().enumerate() {
            let data = vec![i as u8; len];
            pair.client.conn.send_binary(&data).unwrap();
            let wire = common::take_output(&mut pair.client.conn);
            for piece in wire.chunks(16 * 1024) {
                let mut piece = piece;
                while !piece.is_empty() {
                    // As the adapters read: straight in while nothing is
                    // buffered, into the connection's buffer otherwise.
                    let n = if pair.server.conn.buffered_input() == 0 {
                        pair.server.conn.receive(NOW, piece)
                    } else {
                        let buf = pair.server.conn.receive_buffer(piece.len());
                        let n = buf.len();
                        buf.copy_from_slice(&piece[..n]);
                        pair.server.conn.commit_received(NOW, n);
                        n
                    };
                    piece = &piece[n..];
                    while let Some(event) = pair.server.conn.poll_owned() {
                        let wscore::OwnedEvent::Message(message) = event else { panic!("not a message") };
                        assert_eq!(message.as_bytes(), &data[..]);
                        pair.server.conn.send_owned(message).unwrap();
                    }
                }
            }
            let echo = common::take_output(&mut pair.server.conn);
            assert!(echo.len() > len, "the echo went out");
        }
        quiet(pair.server.conn)
    });
    assert_eq!(held_bytes, 0, "bytes held by an idle owned-echo server after {sizes:?}");
}
