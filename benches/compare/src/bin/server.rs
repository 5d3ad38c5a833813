//! One library's WebSocket server on a single-threaded tokio runtime, for
//! the TCP benchmarks (`tcp`, which starts it pinned to a core).
//!
//! ```text
//! server LIBRARY echo [--deflate] [--count-heap]
//! server LIBRARY broadcast --clients N --messages M --size BYTES [--deflate]
//! ```
//!
//! It listens on an ephemeral port of 127.0.0.1 and prints `port N`. Then
//! it reads commands on stdin, one per line, each answered on one line:
//! `stats` prints `heap LIVE BLOCKS rss BYTES` (heap counted only with
//! `--count-heap`, or in broadcast mode). EOF on stdin ends the process.
//!
//! `echo` serves every connection with the library's echo loop
//! (`servers::echo`), one task each. `broadcast` accepts N connections,
//! then sends M text messages of BYTES bytes to all of them
//! (`servers::broadcast`) and prints `result cpu_ns=.. wall_ns=..
//! allocated=.. allocations=..`: the process's CPU time (getrusage), the
//! wall time and what was allocated during the broadcast alone.

use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::Instant;

use tokio::net::TcpListener;
use wscore_compare::counting::{self, Counting};
use wscore_compare::{data, loadgen, servers};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: server LIBRARY echo [--deflate] [--count-heap] | server LIBRARY broadcast --clients N --messages M --size BYTES [--deflate]";
    let (Some(library), Some(mode)) = (args.first().cloned(), args.get(1).cloned()) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let flag = |name: &str| args.iter().any(|a| a == name);
    let value = |name: &str| -> usize {
        let i = args.iter().position(|a| a == name).unwrap_or_else(|| panic!("{usage}"));
        args[i + 1].parse().expect(usage)
    };
    let deflate = flag("--deflate");
    if mode == "broadcast" || flag("--count-heap") {
        counting::enable();
    }
    loadgen::raise_fd_limit();

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    println!("port {}", listener.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();

    // Commands on stdin, answered from this thread (the counters are
    // atomics); EOF ends the process.
    let (quit_tx, quit_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "stats" {
                let heap = counting::snapshot();
                let rss = std::fs::read_to_string("/proc/self/status")
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .find_map(|l| l.strip_prefix("VmRSS:"))
                            .map(|v| v.trim().trim_end_matches("kB").trim().to_owned())
                    })
                    .and_then(|kb| kb.parse::<u64>().ok())
                    .map_or(0, |kb| kb * 1024);
                println!("heap {} {} rss {rss}", heap.live, heap.blocks);
                std::io::stdout().flush().unwrap();
            }
        }
        let _ = quit_tx.send(());
    });

    match mode.as_str() {
        "echo" => {
            rt.spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else { continue };
                    let library = library.clone();
                    tokio::spawn(async move {
                        // A load generator ends each run by dropping its
                        // connections, so errors are expected; shown only
                        // when debugging.
                        if let Err(e) = servers::echo(&library, stream, deflate).await
                            && std::env::var_os("SERVER_DEBUG").is_some()
                        {
                            eprintln!("{library}: {e}");
                        }
                    });
                }
            });
            // The runtime runs its tasks while this thread waits for EOF:
            // a current-thread runtime only runs inside block_on.
            rt.block_on(async {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
                std::thread::spawn(move || {
                    let _ = quit_rx.recv();
                    let _ = tx.send(());
                });
                rx.recv().await;
            });
        }
        "broadcast" => {
            let (clients, messages, size) = (value("--clients"), value("--messages"), value("--size"));
            let texts: Vec<String> = (0..messages).map(|i| data::broadcast_text(i, size)).collect();
            rt.block_on(async {
                let mut accepted = Vec::with_capacity(clients);
                while accepted.len() < clients {
                    let (stream, _) = listener.accept().await.unwrap();
                    accepted.push(servers::accept(&library, stream, deflate).await.unwrap());
                }
                let (cpu0, heap0, t0) = (cpu_ns(), counting::snapshot(), Instant::now());
                servers::broadcast(&library, &mut accepted, &texts, deflate).await.unwrap();
                let (cpu1, heap1, wall) = (cpu_ns(), counting::snapshot(), t0.elapsed());
                println!(
                    "result cpu_ns={} wall_ns={} allocated={} allocations={}",
                    cpu1 - cpu0,
                    wall.as_nanos(),
                    heap1.allocated - heap0.allocated,
                    heap1.allocations - heap0.allocations
                );
                std::io::stdout().flush().unwrap();
                // Keep the connections open until told to quit, so every
                // client reads everything before any socket closes.
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<()>();
                std::thread::spawn(move || {
                    let _ = quit_rx.recv();
                    let _ = tx.send(());
                });
                rx.recv().await;
                drop(accepted);
            });
        }
        _ => {
            eprintln!("{usage}");
            std::process::exit(2);
        }
    }
}

/// This process's CPU time so far (user + system), in nanoseconds.
fn cpu_ns() -> u64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}
