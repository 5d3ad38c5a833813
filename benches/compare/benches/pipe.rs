//! Messages per second through an in-memory pipe, for wscore, tungstenite,
//! fastwebsockets and tokio-websockets, in two parts:
//!
//! * `binary_16`, `text_1024`, ...: the client sends a batch and the server
//!   reads it whole (one group per shape, one benchmark per library);
//! * `sock_{c2s,s2c}_{binary,dense}_{16,1024,65536,1048576}`: client→server
//!   or server→client, and the receiving end reads in socket-sized pieces
//!   (`whole`, `16k`, `64k`, `random`: see `Delivery`); one benchmark per
//!   library and delivery, named `LIBRARY/DELIVERY`.
//!
//! An iteration is one batch (64 messages; 8 of 64 KiB; 2 of 1 MiB), so
//! the throughput criterion reports is messages (or bytes, from 64 KiB up)
//! per second.
//!
//! `cargo bench --bench pipe [-- FILTER]`; `run.sh` runs it and prints the
//! tables. `PIPE_PART=whole` or `PIPE_PART=sock` runs one part.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;
use wscore_compare::harness::{FastWebSockets, LIBRARIES, Mode, Setup, TokioWebSockets, Tungstenite, Wscore};
use wscore_compare::{Delivery, Direction, Kind};

/// Whole-batch shapes: (kind, payload size, messages per batch).
const SHAPES: [(Kind, usize, usize); 6] = [
    (Kind::Binary, 16, 64),
    (Kind::Text, 16, 64),
    (Kind::Binary, 1024, 64),
    (Kind::Text, 1024, 64),
    (Kind::Binary, 64 * 1024, 8),
    (Kind::Text, 64 * 1024, 8),
];

/// Socket-sized delivery: sizes and messages per batch.
const SOCK_SIZES: [(usize, usize); 4] = [(16, 64), (1024, 64), (64 << 10, 8), (1 << 20, 2)];

/// Socket-sized delivery: the libraries. wscore as an adapter drives it,
/// its output copied to the wire as a socket write copies it: sending a
/// borrowed `Message` (`wscore_copy`: `send`) or a shared `OwnedMessage`
/// (`wscore_shared`: `send_owned`, as tungstenite and tokio-websockets send
/// a cloned `Message`).
const SOCK_LIBRARIES: [&str; 5] = ["wscore_copy", "wscore_shared", "tungstenite", "fastwebsockets", "tokio-websockets"];

const DELIVERIES: [Delivery; 4] = [Delivery::Whole, Delivery::Max(16 << 10), Delivery::Max(64 << 10), Delivery::Random];

fn part(name: &str) -> bool {
    std::env::var("PIPE_PART").map_or(true, |p| p == name)
}

fn whole(c: &mut Criterion) {
    if !part("whole") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for (kind, size, batch) in SHAPES {
        let payload = kind.payload(size);
        let mut group = c.benchmark_group(format!("{}_{size}", kind.name()));
        group.throughput(throughput(size, batch));
        // WSCORE_VARIANTS=1 adds wscore with other settings, to see what they change.
        let variants: &[&str] = if std::env::var_os("WSCORE_VARIANTS").is_some() { &["wscore_retain1m"] } else { &[] };
        for &library in LIBRARIES.iter().chain(variants) {
            let id = BenchmarkId::from_parameter(library);
            bench(&mut group, &rt, id, library, Setup::whole(kind), &payload, batch);
        }
        group.finish();
    }
}

fn sock(c: &mut Criterion) {
    if !part("sock") {
        return;
    }
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for direction in [Direction::ClientToServer, Direction::ServerToClient] {
        for kind in [Kind::Binary, Kind::DenseText] {
            for (size, batch) in SOCK_SIZES {
                let payload = kind.payload(size);
                let name = format!("sock_{}_{}_{size}", direction.name(), kind.name());
                let mut group = c.benchmark_group(name);
                group.throughput(throughput(size, batch));
                for delivery in DELIVERIES {
                    let setup = Setup { kind, direction, delivery };
                    for library in SOCK_LIBRARIES {
                        let id = BenchmarkId::new(library, delivery.name());
                        bench(&mut group, &rt, id, library, setup, &payload, batch);
                    }
                }
                group.finish();
            }
        }
    }
}

fn throughput(size: usize, batch: usize) -> Throughput {
    if size >= 64 * 1024 { Throughput::Bytes((batch * size) as u64) } else { Throughput::Elements(batch as u64) }
}

/// Benchmarks one library's harness; each is checked once (payloads
/// compared) before it is timed.
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: BenchmarkId,
    library: &str,
    setup: Setup,
    payload: &[u8],
    batch: usize,
) {
    match library {
        "wscore" | "wscore_copy" | "wscore_owned" | "wscore_shared" => {
            let mut h = Wscore::new(setup, payload, Mode::of(library));
            h.batch(batch, true);
            group.bench_function(id, |b| b.iter(|| h.batch(batch, false)));
        }
        // Buffers up to 1 MiB kept when drained (default 4 KiB), so a
        // batch does not regrow them from nothing.
        "wscore_retain1m" => {
            let mut config = wscore::Config::default();
            config.retained_buffer_capacity = 1 << 20;
            let mut h = Wscore::with_config(setup, payload, Mode::Borrowed, config);
            h.batch(batch, true);
            group.bench_function(id, |b| b.iter(|| h.batch(batch, false)));
        }
        "tungstenite" => {
            let mut h = Tungstenite::new(setup, payload);
            h.batch(batch, true);
            group.bench_function(id, |b| b.iter(|| h.batch(batch, false)));
        }
        // The async libraries run on a current-thread runtime; one
        // `block_on` covers all the iterations of a sample, so the runtime
        // adds nothing per batch (the in-memory socket never returns
        // `Pending` here).
        "fastwebsockets" => {
            let mut h = FastWebSockets::new(setup, payload);
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
            let mut h = TokioWebSockets::new(setup, payload);
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

criterion_group! {
    name = whole_batches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(50);
    targets = whole
}
// 320 benchmarks: shorter runs keep the part to about eight minutes.
criterion_group! {
    name = socket_reads;
    config = Criterion::default()
        .measurement_time(Duration::from_millis(1000))
        .warm_up_time(Duration::from_millis(300))
        .sample_size(20);
    targets = sock
}
criterion_main!(whole_batches, socket_reads);
