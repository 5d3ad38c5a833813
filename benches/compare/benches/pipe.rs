//! Messages per second through an in-memory client→server pipe, for wscore,
//! tungstenite, fastwebsockets and tokio-websockets. One group per message
//! shape (`binary_16`, `text_1024`, ...), one benchmark per library; an
//! iteration is one batch (64 messages, 8 for 64 KiB), so the throughput
//! criterion reports is messages (or bytes, for 64 KiB) per second.
//!
//! `cargo bench --bench pipe [-- FILTER]`; `run.sh` runs it and prints a table.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use wscore_compare::Kind;
use wscore_compare::data;
use wscore_compare::harness::{FastWebSockets, LIBRARIES, Mode, TokioWebSockets, Tungstenite, Wscore};

/// Message shapes: (kind, payload size, messages per batch).
const SHAPES: [(Kind, usize, usize); 6] = [
    (Kind::Binary, 16, 64),
    (Kind::Text, 16, 64),
    (Kind::Binary, 1024, 64),
    (Kind::Text, 1024, 64),
    (Kind::Binary, 64 * 1024, 8),
    (Kind::Text, 64 * 1024, 8),
];

fn pipe(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for (kind, size, batch) in SHAPES {
        let payload = match kind {
            Kind::Binary => data::binary(size),
            Kind::Text => data::text(size).into_bytes(),
        };
        let mut group = c.benchmark_group(format!("{}_{size}", kind.name()));
        group.throughput(if size >= 64 * 1024 {
            Throughput::Bytes((batch * size) as u64)
        } else {
            Throughput::Elements(batch as u64)
        });
        // WSCORE_VARIANTS=1 adds wscore with other settings, to see what they change.
        let variants: &[&str] = if std::env::var_os("WSCORE_VARIANTS").is_some() { &["wscore_retain1m"] } else { &[] };
        for &library in LIBRARIES.iter().chain(variants) {
            let id = BenchmarkId::from_parameter(library);
            // Each harness is checked once (payloads compared) before it is timed.
            match library {
                "wscore" | "wscore_copy" | "wscore_owned" => {
                    let mut h = Wscore::new(kind, &payload, Mode::of(library));
                    h.batch(batch, true);
                    group.bench_function(id, |b| b.iter(|| h.batch(batch, false)));
                }
                // Buffers up to 1 MiB kept when drained (default 4 KiB), so a
                // batch does not regrow them from nothing.
                "wscore_retain1m" => {
                    let mut config = wscore::Config::default();
                    config.retained_buffer_capacity = 1 << 20;
                    let mut h = Wscore::with_config(kind, &payload, Mode::Borrowed, config);
                    h.batch(batch, true);
                    group.bench_function(id, |b| b.iter(|| h.batch(batch, false)));
                }
                "tungstenite" => {
                    let mut h = Tungstenite::new(kind, &payload);
                    h.batch(batch, true);
                    group.bench_function(id, |b| b.iter(|| h.batch(batch, false)));
                }
                // The async libraries run on a current-thread runtime; one
                // `block_on` covers all the iterations of a sample, so the
                // runtime adds nothing per batch (the in-memory socket never
                // returns `Pending` here).
                "fastwebsockets" => {
                    let mut h = FastWebSockets::new(kind, &payload);
                    rt.block_on(h.batch(batch, true));
                    group.bench_function(id, |b| {
                        b.iter_custom(|iters| {
                            rt.block_on(async {
                                let start = Instant::now();
                                for _ in 0..iters {
                                    black_box(h.batch(batch, false).await);
                                }
                                start.elapsed()
                            })
                        })
                    });
                }
                "tokio-websockets" => {
                    let mut h = TokioWebSockets::new(kind, &payload);
                    rt.block_on(h.batch(batch, true));
                    group.bench_function(id, |b| {
                        b.iter_custom(|iters| {
                            rt.block_on(async {
                                let start = Instant::now();
                                for _ in 0..iters {
                                    black_box(h.batch(batch, false).await);
                                }
                                start.elapsed()
                            })
                        })
                    });
                }
                other => unreachable!("{other}"),
            }
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(50);
    targets = pipe
}
criterion_main!(benches);
