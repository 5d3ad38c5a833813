//! The TCP loopback benchmarks: echo throughput and latency, echo with
//! permessage-deflate, idle memory per connection, and broadcast. Each
//! library's server runs in its own process (`server`), pinned to core
//! `--server-cpu` (default 0); run this load generator pinned to another:
//!
//! ```text
//! taskset -c 1 target/release/tcp echo      [--libs L,..] [--scenarios S,..] [--reps 3] [--warmup 1] [--secs 4]
//! taskset -c 1 target/release/tcp deflate   [--libs L,..] [--scenarios S,..] [--reps 3] [--warmup 1] [--secs 4]
//! taskset -c 1 target/release/tcp idle      [--libs L,..] [--conns 5000]
//! taskset -c 1 target/release/tcp broadcast [--libs L,..] [--clients 1000] [--reps 3] [--sizes 1024,65536] [--compression none,deflate]
//! ```
//!
//! Libraries are alternated within each repetition (the order rotates from
//! one repetition to the next) and every table shows medians over the
//! repetitions. Markdown tables go to stdout, one line per run to stderr.

use std::rc::Rc;
use std::time::Duration;

use wscore_compare::Kind;
use wscore_compare::loadgen::{self, EchoResult, EchoScenario, ServerProcess};
use wscore_compare::servers;

struct Args(Vec<String>);

impl Args {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().position(|a| a == name).and_then(|i| self.0.get(i + 1)).map(String::as_str)
    }
    fn num(&self, name: &str, default: f64) -> f64 {
        self.get(name).map_or(default, |v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
    }
    fn list(&self, name: &str, default: &[&str]) -> Vec<String> {
        match self.get(name) {
            Some(v) => v.split(',').map(str::to_owned).collect(),
            None => default.iter().map(|s| s.to_string()).collect(),
        }
    }
}

const ECHO_LIBS: [&str; 4] = ["wscore", "tungstenite", "fastwebsockets", "tokio-websockets"];
const DEFLATE_LIBS: [&str; 3] = ["wscore", "ratchet", "soketto"];

fn echo_scenarios(deflate: bool) -> Vec<EchoScenario> {
    let s = |name: &str, size, conns, inflight| EchoScenario {
        name: name.to_owned(),
        size,
        conns,
        inflight,
        kind: Kind::Text,
        deflate,
    };
    if deflate {
        vec![s("1KiB_64c", 1024, 64, 1), s("64KiB_16c", 64 << 10, 16, 1)]
    } else {
        vec![
            s("16B_64c", 16, 64, 1),
            s("16B_64c_16f", 16, 64, 16),
            s("1KiB_64c", 1024, 64, 1),
            s("64KiB_16c", 64 << 10, 16, 1),
            s("1MiB_4c", 1 << 20, 4, 1),
        ]
    }
}

fn main() {
    let args = Args(std::env::args().skip(1).collect());
    loadgen::raise_fd_limit();
    let server_cpu = args.num("--server-cpu", 0.0) as usize;
    match args.0.first().map(String::as_str) {
        Some("echo") => echo(&args, server_cpu, false),
        Some("deflate") => echo(&args, server_cpu, true),
        Some("idle") => idle(&args),
        Some("broadcast") => broadcast(&args, server_cpu),
        _ => {
            eprintln!("usage: tcp echo|deflate|idle|broadcast [options] (see the source's docs)");
            std::process::exit(2);
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

/// The libraries in the order of repetition `rep`: rotated, so that none
/// always runs first (on a fresh machine) or last.
fn rotated(libs: &[String], rep: usize) -> Vec<String> {
    let mut v = libs.to_vec();
    v.rotate_left(rep % libs.len().max(1));
    v
}

fn echo(args: &Args, server_cpu: usize, deflate: bool) {
    let libs = args.list("--libs", if deflate { &DEFLATE_LIBS } else { &ECHO_LIBS });
    let wanted = args.get("--scenarios").map(|s| s.split(',').map(str::to_owned).collect::<Vec<_>>());
    let scenarios: Vec<_> =
        echo_scenarios(deflate).into_iter().filter(|s| wanted.as_ref().is_none_or(|w| w.contains(&s.name))).collect();
    let reps = args.num("--reps", 3.0) as usize;
    let warmup = Duration::from_secs_f64(args.num("--warmup", 1.0));
    let secs = Duration::from_secs_f64(args.num("--secs", 4.0));
    let mut rows = Vec::new();
    for scenario in &scenarios {
        let mut results: Vec<(String, Vec<EchoResult>)> = libs.iter().map(|l| (l.clone(), Vec::new())).collect();
        for rep in 0..reps {
            for lib in rotated(&libs, rep) {
                let mut server_args = vec![lib.clone(), "echo".to_owned()];
                if deflate {
                    server_args.push("--deflate".into());
                }
                let server = ServerProcess::spawn(Some(server_cpu), &server_args).expect("server");
                let r = loadgen::run_echo(&server, scenario, warmup, secs)
                    .unwrap_or_else(|e| panic!("{lib} {}: {e}", scenario.name));
                eprintln!(
                    "run {} {lib} rep {rep}: {:.0} msg/s, server cpu {:.2} us/msg ({:.0}%), load generator {:.0}%, p50 {:.1} us, p99 {:.1} us, load {}",
                    scenario.name,
                    r.rate(),
                    r.cpu_us_per_message(),
                    100.0 * r.server_cpu / r.seconds,
                    100.0 * r.client_cpu / r.seconds,
                    r.latency_us(0.5),
                    r.latency_us(0.99),
                    load()
                );
                results.iter_mut().find(|(l, _)| *l == lib).unwrap().1.push(r);
            }
        }
        rows.push((scenario.clone(), results));
    }
    println!(
        "| scenario | library | msg/s | MB/s | server CPU µs/msg | server CPU % | load gen CPU % | p50 µs | p99 µs | p99.9 µs |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut ratios = Vec::new();
    for (scenario, results) in &rows {
        let mut best_peer: Option<(f64, f64, String)> = None;
        let mut ours = None;
        for (lib, runs) in results {
            let m = |f: &dyn Fn(&EchoResult) -> f64| median(runs.iter().map(f).collect());
            let rate = m(&|r| r.rate());
            let cpu = m(&|r| r.cpu_us_per_message());
            println!(
                "| {} | {lib} | {:.0} | {:.1} | {:.2} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
                scenario.name,
                rate,
                rate * scenario.size as f64 / 1e6,
                cpu,
                m(&|r| 100.0 * r.server_cpu / r.seconds),
                m(&|r| 100.0 * r.client_cpu / r.seconds),
                m(&|r| r.latency_us(0.5)),
                m(&|r| r.latency_us(0.99)),
                m(&|r| r.latency_us(0.999)),
            );
            if lib == "wscore" {
                ours = Some((rate, cpu));
            } else if best_peer.as_ref().is_none_or(|b| cpu < b.1) {
                best_peer = Some((rate, cpu, lib.clone()));
            }
        }
        if let (Some(o), Some(b)) = (ours, best_peer) {
            ratios.push(format!("| {} | {:.2}x | {:.2}x | {} |", scenario.name, o.0 / b.0, o.1 / b.1, b.2));
        }
    }
    println!();
    println!(
        "| scenario | wscore msg/s ÷ best peer's | wscore CPU/msg ÷ best peer's (lower is better) | best peer (least CPU/msg) |"
    );
    println!("|---|---:|---:|---|");
    for r in ratios {
        println!("{r}");
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".into(), |s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
}

fn idle(args: &Args) {
    let libs = args.list("--libs", &ECHO_LIBS);
    let n = args.num("--conns", 5000.0) as usize;
    println!("| library | heap / connection | heap blocks / connection | RSS / connection |");
    println!("|---|---:|---:|---:|");
    for lib in libs {
        let mut server =
            ServerProcess::spawn(None, &[lib.clone(), "echo".into(), "--count-heap".into()]).expect("server");
        let stats = |server: &mut ServerProcess| -> (f64, f64, f64) {
            let line = server.ask("stats").unwrap();
            let f: Vec<&str> = line.split(' ').collect();
            (f[1].parse().unwrap(), f[2].parse().unwrap(), f[4].parse().unwrap())
        };
        // One connection first, so that what the first one creates for good
        // (the runtime's I/O driver slabs, lazy statics) is in the base.
        let warm = loadgen::block_on(loadgen::connect_many(server.port, 1, false, 1)).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let base = stats(&mut server);
        let conns = loadgen::block_on(loadgen::connect_many(server.port, n, false, 100))
            .unwrap_or_else(|e| panic!("{lib}: {e}"));
        // Let the server finish each handshake it has answered.
        std::thread::sleep(Duration::from_millis(1000));
        let after = stats(&mut server);
        let per = |i: usize| match i {
            0 => (after.0 - base.0) / n as f64,
            1 => (after.1 - base.1) / n as f64,
            _ => (after.2 - base.2) / n as f64,
        };
        eprintln!("idle {lib}: base {base:?}, after {after:?}");
        println!("| {lib} | {:.0} B | {:.1} | {:.0} B |", per(0), per(1), per(2));
        drop(conns);
        drop(warm);
    }
}

fn broadcast(args: &Args, server_cpu: usize) {
    let clients = args.num("--clients", 1000.0) as usize;
    let reps = args.num("--reps", 3.0) as usize;
    let sizes: Vec<usize> = args.list("--sizes", &["1024", "65536"]).iter().map(|s| s.parse().unwrap()).collect();
    println!(
        "| message | compression | library | server CPU µs / delivery | deliveries/s | allocated B / delivery | allocations / delivery |"
    );
    println!("|---|---|---|---:|---:|---:|---:|");
    for size in sizes {
        // About 200 MB of payload per run at 1 KiB, 3.3 GB at 64 KiB.
        let messages = if size >= 64 << 10 { 50 } else { 200 };
        let texts = Rc::new((0..messages).map(|i| wscore_compare::data::broadcast_text(i, size)).collect::<Vec<_>>());
        for deflate in args.list("--compression", &["none", "deflate"]).iter().map(|c| c == "deflate") {
            let default: Vec<&str> = if deflate {
                vec!["wscore", "wscore_plain", "ratchet", "soketto"]
            } else {
                vec!["wscore", "wscore_plain", "tungstenite", "fastwebsockets", "tokio-websockets"]
            };
            let libs: Vec<String> =
                args.list("--libs", &default).into_iter().filter(|l| !deflate || servers::has_deflate(l)).collect();
            let mut results: Vec<(String, Vec<[f64; 4]>)> = libs.iter().map(|l| (l.clone(), Vec::new())).collect();
            for rep in 0..reps {
                for lib in rotated(&libs, rep) {
                    let mut server_args = vec![
                        lib.clone(),
                        "broadcast".into(),
                        "--clients".into(),
                        clients.to_string(),
                        "--messages".into(),
                        messages.to_string(),
                        "--size".into(),
                        size.to_string(),
                    ];
                    if deflate {
                        server_args.push("--deflate".into());
                    }
                    let mut server = ServerProcess::spawn(Some(server_cpu), &server_args).expect("server");
                    let port = server.port;
                    loadgen::block_on(loadgen::broadcast_clients(port, clients, deflate, texts.clone(), || {}))
                        .unwrap_or_else(|e| panic!("{lib}: {e}"));
                    // Printed once the last send returned (so before every
                    // client had read it all).
                    let result = server.read_line().unwrap();
                    let field = |name: &str| -> f64 {
                        result
                            .split(' ')
                            .find_map(|f| f.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
                            .and_then(|v| v.parse().ok())
                            .unwrap_or_else(|| panic!("{result}"))
                    };
                    let deliveries = (clients * messages) as f64;
                    let r = [
                        field("cpu_ns") / 1e3 / deliveries,
                        deliveries / (field("wall_ns") / 1e9),
                        field("allocated") / deliveries,
                        field("allocations") / deliveries,
                    ];
                    eprintln!("broadcast {size} deflate={deflate} {lib} rep {rep}: {r:?}, load {}", load());
                    results.iter_mut().find(|(l, _)| *l == lib).unwrap().1.push(r);
                }
            }
            for (lib, runs) in results {
                let m = |i: usize| median(runs.iter().map(|r| r[i]).collect());
                println!(
                    "| {} B text | {} | {lib} | {:.2} | {:.0} | {:.0} | {:.2} |",
                    size,
                    if deflate { "deflate" } else { "none" },
                    m(0),
                    m(1),
                    m(2),
                    m(3)
                );
            }
        }
    }
}
