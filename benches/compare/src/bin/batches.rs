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

use wscore_compare::Kind;
use wscore_compare::data;
use wscore_compare::harness::{FastWebSockets, Mode, TokioWebSockets, Tungstenite, Wscore};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: batches LIBRARY SHAPE K   (e.g. batches tungstenite binary_16 1000)";
    let [_, library, shape, k] = args.as_slice() else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let k: usize = k.parse().expect(usage);
    let (kind, size) = shape.split_once('_').expect(usage);
    let size: usize = size.parse().expect(usage);
    let (kind, payload) = match kind {
        "binary" => (Kind::Binary, data::binary(size)),
        "text" => (Kind::Text, data::text(size).into_bytes()),
        _ => panic!("{usage}"),
    };
    let batch = if size >= 64 * 1024 { 8 } else { 64 };
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut total = 0;
    match library.as_str() {
        "wscore" | "wscore_copy" | "wscore_owned" => {
            let mut h = Wscore::new(kind, &payload, Mode::of(library));
            for _ in 0..k {
                total += black_box(h.batch(batch, false));
            }
        }
        "wscore_retain1m" => {
            let mut config = wscore::Config::default();
            config.retained_buffer_capacity = 1 << 20;
            let mut h = Wscore::with_config(kind, &payload, Mode::Borrowed, config);
            for _ in 0..k {
                total += black_box(h.batch(batch, false));
            }
        }
        "tungstenite" => {
            let mut h = Tungstenite::new(kind, &payload);
            for _ in 0..k {
                total += black_box(h.batch(batch, false));
            }
        }
        "fastwebsockets" => {
            let mut h = FastWebSockets::new(kind, &payload);
            rt.block_on(async {
                for _ in 0..k {
                    total += black_box(h.batch(batch, false).await);
                }
            });
        }
        "tokio-websockets" => {
            let mut h = TokioWebSockets::new(kind, &payload);
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
