//! permessage-deflate throughput through a `Connection`: compression (a
//! client sending a compressible JSON-like text message, masked and framed)
//! and decompression (a server receiving and inflating such messages, with
//! UTF-8 validation), for 1 KiB and 64 KiB messages, with context takeover
//! and with `server_no_context_takeover` + `client_no_context_takeover`.
//! And compression of a prepared message, compressed once with a fresh
//! context to be sent on many connections: with one kept compressor
//! (`prepared`), and with a new one per message (`prepared_new_compressor`).
//!
//! Throughput counts the uncompressed message bytes. Messages rotate among
//! 64 different texts, so with context takeover each one is compressed
//! against its predecessors, as on a real connection, and no message
//! repeats one still in the 32 KiB window (with 16 texts of 1 KiB, each
//! was found whole 16 messages back, which flattered takeover).
//!
//! `cargo bench --bench deflate`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wscore::deflate::{DeflateConfig, MessageCompressor};
use wscore::{Accept, ClientHandshake, Config, Connection, Event, Message};

const SIZES: [usize; 2] = [1024, 64 * 1024];
/// Distinct texts per size, so that no message repeats within the 32 KiB
/// window at 1 KiB (see the module documentation).
const TEXTS: u64 = 64;
const NOW: Duration = Duration::ZERO;

/// A client and a server that negotiated permessage-deflate.
fn connect(no_context_takeover: bool) -> (Connection, Connection) {
    let mut deflate = DeflateConfig::default();
    deflate.server_no_context_takeover = no_context_takeover;
    deflate.client_no_context_takeover = no_context_takeover;
    let mut config = Config::default();
    config.deflate = Some(deflate);
    let handshake = ClientHandshake::new("ws://localhost/").unwrap();
    let mut client = Connection::client(handshake, config.clone(), NOW).unwrap();
    let mut server = Connection::server(config, NOW).unwrap();
    let mut wire = Vec::new();
    client.transmit_into(&mut wire);
    assert_eq!(server.receive(NOW, &wire), wire.len());
    wire.clear();
    assert!(matches!(server.poll_event(), Some(Event::Request(_))));
    server.accept(&Accept::new()).unwrap();
    server.transmit_into(&mut wire);
    assert_eq!(client.receive(NOW, &wire), wire.len());
    assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
    assert!(client.deflate().is_some() && server.deflate().is_some());
    (client, server)
}

/// [`TEXTS`] JSON-like texts of exactly `size` bytes, each different.
fn texts(size: usize) -> Vec<String> {
    let names = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"];
    let words = ["order", "shipped", "pending", "refund", "invoice", "priority", "express", "warehouse", "customer"];
    (0..TEXTS)
        .map(|seed| {
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut next = || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as usize
            };
            let mut s = String::from("[");
            while s.len() < size {
                s.push_str(&format!(
                    "{{\"id\":{},\"user\":\"{}\",\"status\":\"{}\",\"amount\":{}.{:02},\"note\":\"{} {} {}\"}},",
                    next() % 1_000_000,
                    names[next() % names.len()],
                    words[next() % words.len()],
                    next() % 10_000,
                    next() % 100,
                    words[next() % words.len()],
                    words[next() % words.len()],
                    words[next() % words.len()],
                ));
            }
            s.truncate(size);
            s
        })
        .collect()
}

fn mode(no_context_takeover: bool) -> &'static str {
    if no_context_takeover { "no_context_takeover" } else { "context_takeover" }
}

fn compress(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_compress");
    for size in SIZES {
        let texts = texts(size);
        group.throughput(Throughput::Bytes(size as u64));
        for no_context in [false, true] {
            group.bench_with_input(BenchmarkId::new(mode(no_context), size), &texts, |b, texts| {
                let (mut client, _server) = connect(no_context);
                let mut i = 0;
                b.iter(|| {
                    client.send_text(black_box(&texts[i % texts.len()])).unwrap();
                    i += 1;
                    let n = client.poll_transmit().len();
                    client.advance_transmit(n);
                })
            });
        }
        let level = DeflateConfig::default().level;
        group.bench_with_input(BenchmarkId::new("prepared", size), &texts, |b, texts| {
            let mut compressor = MessageCompressor::new(level, 15);
            let mut out = Vec::new();
            let mut i = 0;
            b.iter(|| {
                out.clear();
                compressor.compress(black_box(texts[i % texts.len()].as_bytes()), &mut out);
                i += 1;
                black_box(&out);
            })
        });
        group.bench_with_input(BenchmarkId::new("prepared_new_compressor", size), &texts, |b, texts| {
            let mut out = Vec::new();
            let mut i = 0;
            b.iter(|| {
                out.clear();
                MessageCompressor::new(level, 15).compress(black_box(texts[i % texts.len()].as_bytes()), &mut out);
                i += 1;
                black_box(&out);
            })
        });
    }
    group.finish();
}

fn decompress(c: &mut Criterion) {
    let mut group = c.benchmark_group("deflate_decompress");
    for size in SIZES {
        let texts = texts(size);
        group.throughput(Throughput::Bytes(size as u64));
        for no_context in [false, true] {
            group.bench_with_input(BenchmarkId::new(mode(no_context), size), &texts, |b, texts| {
                // The messages are compressed outside the timing, in batches,
                // by a client of the same connection, so each decompresses
                // against the history it was compressed with.
                b.iter_custom(|iters| {
                    let (mut client, mut server) = connect(no_context);
                    let mut wire = Vec::new();
                    let (mut total, mut left, mut i) = (Duration::ZERO, iters, 0);
                    while left > 0 {
                        let batch = left.min(64);
                        wire.clear();
                        for _ in 0..batch {
                            client.send_text(&texts[i % texts.len()]).unwrap();
                            i += 1;
                            client.transmit_into(&mut wire);
                        }
                        let start = Instant::now();
                        let mut received = 0;
                        let mut input = &wire[..];
                        while !input.is_empty() {
                            let n = server.receive(NOW, input);
                            input = &input[n..];
                            while let Some(event) = server.poll_event() {
                                let Event::Message(Message::Text(text)) = event else { panic!("{event:?}") };
                                black_box(text);
                                received += 1;
                            }
                        }
                        total += start.elapsed();
                        assert_eq!(received, batch);
                        left -= batch;
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = compress, decompress
}
criterion_main!(benches);
