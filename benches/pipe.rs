//! Messages per second through an in-memory client→server pipe: the client
//! `Connection` encodes (and masks), the server decodes (unmasks and, for
//! text, validates UTF-8), with no I/O in between. Two shapes: a batch of
//! messages per transfer, and one message per transfer (each `receive`
//! holding a single frame, the worst case for per-call overhead).
//!
//! `cargo bench --bench pipe`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wscore::{Config, Connection, Event, Message, Role};

const BATCH: usize = 64;

fn pair(config: &Config) -> (Connection, Connection) {
    let client = Connection::frames_only(Role::Client, config.clone(), Duration::ZERO).unwrap();
    let server = Connection::frames_only(Role::Server, config.clone(), Duration::ZERO).unwrap();
    (client, server)
}

fn drain(server: &mut Connection) -> usize {
    let mut n = 0;
    while let Some(event) = server.poll_event() {
        if let Event::Message(m) = event {
            black_box(m.len());
            n += 1;
        }
    }
    n
}

/// Hands `wire` to the server in as many calls as its bound on unprocessed
/// input needs, draining events after each; returns the messages.
fn feed(server: &mut Connection, mut wire: &[u8]) -> usize {
    let mut n = 0;
    while !wire.is_empty() {
        let taken = server.receive(Duration::ZERO, wire);
        wire = &wire[taken..];
        n += drain(server);
    }
    n
}

fn pipe(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("pipe");
    for size in [16usize, 1024, 64 * 1024] {
        let text = "a".repeat(size);
        let binary = vec![0x5Au8; size];
        let batch = if size >= 64 * 1024 { 8 } else { BATCH };
        group.throughput(Throughput::Elements(batch as u64));
        for (name, message) in [("binary", Message::Binary(&binary)), ("text", Message::Text(&text))] {
            group.bench_with_input(BenchmarkId::new(format!("batch_{name}"), size), &message, |b, message| {
                let (mut client, mut server) = pair(&config);
                let mut wire = Vec::new();
                b.iter(|| {
                    for _ in 0..batch {
                        client.send(*message).unwrap();
                    }
                    client.transmit_into(&mut wire);
                    assert_eq!(feed(&mut server, &wire), batch);
                    wire.clear();
                })
            });
            group.bench_with_input(BenchmarkId::new(format!("single_{name}"), size), &message, |b, message| {
                let (mut client, mut server) = pair(&config);
                let mut wire = Vec::new();
                b.iter(|| {
                    for _ in 0..batch {
                        client.send(*message).unwrap();
                        client.transmit_into(&mut wire);
                        assert_eq!(feed(&mut server, &wire), 1);
                        wire.clear();
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = pipe
}
criterion_main!(benches);
