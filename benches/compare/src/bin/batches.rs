//! Runs K batches of one pipe benchmark outside criterion, for profilers
//! that count instead of time (valgrind's callgrind works where perf has no
//! hardware counters):
//!
//! ```sh
//! cargo build --release --bin batches
//! valgrind --tool=callgrind target/release/batches wscore text_1024 2000
//! ```
//!
//! Running it for K and 2K batches and subtracting the totals gives the
//! instructions per batch without the setup.

use std::hint::black_box;

use wscore_compare::harness::{FastWebSockets, Mode, Setup, TokioWebSockets, Tungstenite, Wscore};
use wscore_compare::{Delivery, Direction, Kind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: batches LIBRARY SHAPE K [c2s|s2c] [whole|16k|64k|random]\n\
                 (e.g. batches tungstenite binary_16 1000, batches wscore_copy dense_65536 500 s2c random)";
    let (library, shape, k, rest) = match args.as_slice() {
        [_, library, shape, k, rest @ ..] if rest.len() <= 2 => (library, shape, k, rest),
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    };
    let k: usize = k.parse().expect(usage);
    let (kind, size) = shape.split_once('_').expect(usage);
    let size: usize = size.parse().expect(usage);
    let kind = Kind::from_name(kind).expect(usage);
    let payload = kind.payload(size);
    let direction = match rest.first().map(String::as_str) {
        None | Some("c2s") => Direction::ClientToServer,
        Some("s2c") => Direction::ServerToClient,
        _ => panic!("{usage}"),
    };
    let delivery = match rest.get(1).map(String::as_str) {
        None | Some("whole") => Delivery::Whole,
        Some("16k") => Delivery::Max(16 << 10),
        Some("64k") => Delivery::Max(64 << 10),
        Some("random") => Delivery::Random,
        _ => panic!("{usage}"),
    };
    let setup = Setup { kind, direction, delivery };
    let batch = match size {
        s if s >= 1 << 20 => 2,
        s if s >= 64 << 10 => 8,
        _ => 64,
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut total = 0;
    match library.as_str() {
        "wscore" | "wscore_copy" | "wscore_owned" | "wscore_shared" => {
            let mut h = Wscore::new(setup, &payload, Mode::of(library));
            for _ in 0..k {
                total += black_box(h.batch(batch, false));
            }
        }
        "wscore_retain1m" => {
            let mut config = wscore::Config::default();
            config.retained_buffer_capacity = 1 << 20;
            let mut h = Wscore::with_config(setup, &payload, Mode::Borrowed, config);
            for _ in 0..k {
                total += black_box(h.batch(batch, false));
            }
        }
        "tungstenite" => {
            let mut h = Tungstenite::new(setup, &payload);
            for _ in 0..k {
                total += black_box(h.batch(batch, false));
            }
        }
        "fastwebsockets" => {
            let mut h = FastWebSockets::new(setup, &payload);
            rt.block_on(async {
                for _ in 0..k {
                    total += black_box(h.batch(batch, false).await);
                }
            });
        }
        "tokio-websockets" => {
            let mut h = TokioWebSockets::new(setup, &payload);
            rt.block_on(async {
                for _ in 0..k {
                    total += black_box(h.batch(batch, false).await);
                }
            });
        }
        other => panic!("unknown library {other}; {usage}"),
    }
    assert_eq!(total, k * batch * size);
}
