//! Loopback soak test of the blocking adapter, and the memory an idle
//! connection costs.
//!
//! Both tests are `#[ignore]`d; CI runs them in release mode:
//!
//! ```text
//! cargo test --release --test soak -- --ignored --nocapture
//! ```
//!
//! * [`soak_echo_over_loopback`]: a thread-per-connection echo server built
//!   on [`wscore::blocking`], and `SOAK_CONNECTIONS` (default 200) client
//!   threads sending random text and binary messages of 0 to 64 KiB for
//!   `SOAK_SECONDS` (default 20), a quarter of them with permessage-deflate.
//!   Every echoed byte is checked and no message may be lost.
//! * [`soak_heap_per_idle_connection`]: opens K connections, leaves them
//!   idle, and divides the growth of the process's memory by K, for the
//!   server and the client side, with and without permessage-deflate.
//!
//! # Measuring memory
//!
//! The crate forbids `unsafe` code in every target (`unsafe_code = "forbid"`
//! in `Cargo.toml`), so no counting `#[global_allocator]` can be installed
//! here. Each figure is measured instead in a fresh child process (this
//! binary again) from the kernel's count of resident memory
//! (`/proc/self/status`), with glibc's `malloc` told to map every
//! allocation of 16 KiB or more on its own and to return freed memory at
//! once, so the resident set follows the live heap. The K connections
//! live in one process with no thread per connection (an acceptor thread
//! and the main thread), so thread stacks do not count; what is measured
//! is the `WebSocket` value, its `Connection`, and everything they
//! allocate, to within a page over K connections.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

#[path = "common/rng.rs"]
mod rng;

use rng::Rng;
use wscore::blocking::{self, WebSocket};
use wscore::deflate::DeflateConfig;
use wscore::{Accept, CloseCode, Config, Connection, Message};

/// Random text of about `len` bytes (never more), mixing one- to four-byte
/// characters so that frames and reads split characters.
fn random_text(rng: &mut Rng, len: usize, out: &mut String) {
    const CHARS: [char; 8] = ['a', 'q', ' ', 'Z', '\u{e9}', '\u{3b1}', '\u{20ac}', '\u{1d11e}'];
    out.clear();
    loop {
        let c = CHARS[rng.below(CHARS.len() as u64) as usize];
        if out.len() + c.len_utf8() > len {
            break;
        }
        out.push(c);
    }
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn deflate_config() -> Config {
    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());
    config
}

/// Totals kept by the echo server.
#[derive(Default)]
struct ServerStats {
    connections: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    clean_closes: AtomicU64,
}

/// Echoes every message back until the client closes.
fn echo(stream: TcpStream, stats: &ServerStats) -> io::Result<()> {
    // Accepts permessage-deflate when the client offers it.
    let mut ws = blocking::accept_with(stream, deflate_config(), |_| Ok(Accept::new()))?;
    stats.connections.fetch_add(1, Ordering::Relaxed);
    let mut buf = Vec::new();
    loop {
        let text = match ws.read()? {
            None => {
                stats.clean_closes.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            Some(message) => {
                buf.clear();
                buf.extend_from_slice(message.as_bytes());
                matches!(message, Message::Text(_))
            }
        };
        let reply = if text {
            Message::Text(std::str::from_utf8(&buf).expect("validated text"))
        } else {
            Message::Binary(&buf)
        };
        ws.send(reply)?;
        stats.messages.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(buf.len() as u64, Ordering::Relaxed);
    }
}

/// What one client did.
#[derive(Default)]
struct ClientReport {
    messages: u64,
    bytes: u64,
    compressed: bool,
}

/// Sends random messages until `deadline` (or `max_messages`), checking
/// every echo byte for byte, then closes.
fn client(url: &str, id: u64, compressed: bool, deadline: Instant, max_messages: u64) -> io::Result<ClientReport> {
    let config = if compressed { deflate_config() } else { Config::default() };
    let (mut ws, _) = blocking::connect_with(url, config)?;
    assert_eq!(ws.connection().deflate().is_some(), compressed, "client {id}: deflate negotiation");
    let mut rng = Rng::new(id + 1);
    let mut report = ClientReport { compressed, ..ClientReport::default() };
    let (mut text, mut binary) = (String::new(), Vec::new());
    while Instant::now() < deadline && report.messages < max_messages {
        let len = rng.below(64 * 1024 + 1) as usize;
        let is_text = rng.below(2) == 0;
        let sent = if is_text {
            random_text(&mut rng, len, &mut text);
            Message::Text(&text)
        } else {
            binary.resize(len, 0);
            rng.fill(&mut binary);
            Message::Binary(&binary)
        };
        ws.send(sent)?;
        let echoed = ws.read()?;
        match (sent, echoed) {
            (Message::Text(a), Some(Message::Text(b))) => {
                assert!(a == b, "client {id}: text echo differs ({len} bytes)")
            }
            (Message::Binary(a), Some(Message::Binary(b))) => {
                assert!(a == b, "client {id}: binary echo differs ({len} bytes)");
            }
            (_, other) => panic!("client {id}: expected the echo of a {len}-byte message, got {other:?}"),
        }
        report.messages += 1;
        report.bytes += sent.len() as u64;
    }
    ws.close(CloseCode::NORMAL, "done")?;
    Ok(report)
}

#[test]
#[ignore = "soak: cargo test --release --test soak -- --ignored"]
fn soak_echo_over_loopback() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let connections = env_or("SOAK_CONNECTIONS", 200);
    let seconds = env_or("SOAK_SECONDS", 20);
    let max_messages = env_or("SOAK_MAX_MESSAGES", 100_000);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/soak", listener.local_addr().unwrap());
    let stats = Arc::new(ServerStats::default());
    let server_errors = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (stats, errors, stop) = (stats.clone(), server_errors.clone(), stop.clone());
        thread::spawn(move || {
            let mut handlers = Vec::new();
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let stream = stream.expect("accept");
                let (stats, errors) = (stats.clone(), errors.clone());
                handlers.push(thread::spawn(move || {
                    if let Err(e) = echo(stream, &stats) {
                        errors.lock().unwrap().push(e.to_string());
                    }
                }));
            }
            for handler in handlers {
                handler.join().expect("echo thread panicked");
            }
        })
    };

    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds);
    let clients: Vec<_> = (0..connections)
        .map(|id| {
            let url = url.clone();
            thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn(move || client(&url, id, id % 4 == 3, deadline, max_messages))
                .unwrap()
        })
        .collect();
    let mut reports = Vec::new();
    for (id, handle) in clients.into_iter().enumerate() {
        match handle.join() {
            Ok(Ok(report)) => reports.push(report),
            Ok(Err(e)) => {
                // What the server saw tells why (its threads have had time
                // to record it once the client's error came back).
                thread::sleep(Duration::from_millis(200));
                panic!("client {id} failed: {e}; echo server errors so far: {:?}", server_errors.lock().unwrap());
            }
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches("/soak"));
    acceptor.join().unwrap();

    let errors = server_errors.lock().unwrap();
    assert!(errors.is_empty(), "echo server errors: {errors:?}");
    let messages: u64 = reports.iter().map(|r| r.messages).sum();
    let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
    let compressed = reports.iter().filter(|r| r.compressed).count();
    let fewest = reports.iter().map(|r| r.messages).min().unwrap_or(0);
    assert_eq!(reports.len() as u64, connections);
    assert_eq!(stats.connections.load(Ordering::Relaxed), connections);
    assert_eq!(stats.clean_closes.load(Ordering::Relaxed), connections, "every connection closed cleanly");
    assert_eq!(stats.messages.load(Ordering::Relaxed), messages, "messages echoed = messages verified");
    assert_eq!(stats.bytes.load(Ordering::Relaxed), bytes);
    assert!(fewest > 0, "every connection exchanged messages");
    println!(
        "SOAK {connections} connections ({compressed} with permessage-deflate), {:.1} s: {messages} messages echoed \
         and verified, {:.1} MiB each way ({:.1} MiB/s), fewest per connection {fewest}",
        elapsed.as_secs_f64(),
        bytes as f64 / (1 << 20) as f64,
        bytes as f64 / (1 << 20) as f64 / elapsed.as_secs_f64(),
    );
}

// ===== Memory per idle connection ==========================================

/// Set in a child process to what it should measure.
const CHILD_ENV: &str = "WSCORE_SOAK_CHILD";

/// The resident set of this process, in bytes.
fn rss() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Which end is kept, and what it did before going idle.
#[derive(Clone, Copy, Debug)]
struct Idle {
    server: bool,
    deflate: bool,
    /// One compressible 4 KiB message each way before going idle, so that
    /// permessage-deflate has set up its compression contexts.
    traffic: bool,
}

impl Idle {
    fn encode(self) -> String {
        format!("{}:{}:{}", self.server, self.deflate, self.traffic)
    }

    fn decode(s: &str) -> Self {
        let mut parts = s.split(':').map(|p| p == "true");
        let mut next = || parts.next().expect("three fields");
        Self { server: next(), deflate: next(), traffic: next() }
    }
}

/// A message that compresses well and is over the default threshold.
fn traffic_message() -> String {
    "the quick brown fox jumps over the lazy dog; ".repeat(100)
}

/// In a child: opens `count` connections over loopback, keeps the chosen
/// end of each idle, and prints the memory growth per connection.
fn measure_idle(idle: Idle, count: usize, warmup: usize) {
    let config = move || if idle.deflate { deflate_config() } else { Config::default() };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/idle", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel::<WebSocket<TcpStream>>();
    let total = count + warmup;
    let acceptor = thread::spawn(move || {
        for _ in 0..total {
            let (stream, _) = listener.accept().unwrap();
            let mut ws = blocking::accept_with(stream, config(), |_| Ok(Accept::new())).unwrap();
            assert_eq!(ws.connection().deflate().is_some(), idle.deflate);
            if idle.traffic {
                let text = match ws.read().unwrap() {
                    Some(Message::Text(text)) => text.to_owned(),
                    other => panic!("{other:?}"),
                };
                ws.send(Message::Text(&text)).unwrap();
            }
            tx.send(ws).unwrap();
        }
    });
    let message = traffic_message();
    let mut servers = Vec::with_capacity(total);
    let mut clients = Vec::with_capacity(total);
    let mut baseline = None;
    for i in 0..total {
        if i == warmup {
            baseline = rss();
        }
        let (mut ws, _) = blocking::connect_with(&url, config()).unwrap();
        if idle.traffic {
            ws.send(Message::Text(&message)).unwrap();
            assert!(matches!(ws.read().unwrap(), Some(Message::Text(t)) if t == message));
        }
        let server = rx.recv().unwrap();
        // The other end is dropped (its socket closed): the kept end is
        // idle and never reads again.
        if idle.server {
            servers.push(server);
        } else {
            clients.push(ws);
        }
    }
    let after = rss();
    acceptor.join().unwrap();
    match (baseline, after) {
        (Some(before), Some(after)) => {
            let per = after.saturating_sub(before) as f64 / count as f64;
            println!("PER-CONNECTION {} {per:.0}", idle.encode());
        }
        _ => println!("PER-CONNECTION {} unmeasured", idle.encode()),
    }
    assert_eq!(servers.len() + clients.len(), total);
}

#[test]
#[ignore = "run by soak_heap_per_idle_connection in a child process"]
fn soak_idle_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let idle = Idle::decode(&spec);
    let count = if idle.traffic { 200 } else { 2000 };
    measure_idle(idle, count, 20);
}

#[test]
#[ignore = "soak: cargo test --release --test soak -- --ignored"]
fn soak_heap_per_idle_connection() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    println!(
        "SIZE size_of::<Connection>() = {} bytes, size_of::<WebSocket<TcpStream>>() = {} bytes",
        size_of::<Connection>(),
        size_of::<WebSocket<TcpStream>>()
    );
    let mut figures = Vec::new();
    for deflate in [false, true] {
        for traffic in [false, true] {
            if traffic && !deflate {
                continue;
            }
            for server in [true, false] {
                let idle = Idle { server, deflate, traffic };
                let output = Command::new(std::env::current_exe().unwrap())
                    .args(["soak_idle_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
                    .env(CHILD_ENV, idle.encode())
                    .env("MALLOC_MMAP_THRESHOLD_", "16384")
                    .env("MALLOC_TRIM_THRESHOLD_", "0")
                    .env("MALLOC_TOP_PAD_", "0")
                    .env("MALLOC_ARENA_MAX", "1")
                    .output()
                    .unwrap();
                let stdout = String::from_utf8_lossy(&output.stdout);
                assert!(
                    output.status.success(),
                    "child {idle:?} failed:\n{stdout}\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                let figure = stdout
                    .lines()
                    .find_map(|l| l.split_once("PER-CONNECTION ").map(|(_, rest)| rest.to_owned()))
                    .unwrap_or_else(|| panic!("child {idle:?} printed no figure:\n{stdout}"));
                let value = figure.rsplit(' ').next().unwrap().to_owned();
                let side = if server { "server" } else { "client" };
                let state = match (deflate, traffic) {
                    (false, _) => "no deflate, after the handshake",
                    (true, false) => "deflate negotiated, after the handshake",
                    (true, true) => "deflate, after one 4.4 KiB message each way",
                };
                println!("IDLE {side:6} {state:45}: {value} bytes per connection");
                figures.push((idle, value.parse::<f64>().ok()));
            }
        }
    }
    // Without deflate an idle connection holds no buffers: its memory is
    // the `WebSocket` value and a few small boxes, far below a page per
    // connection.
    for (idle, figure) in figures {
        let Some(bytes) = figure else { continue };
        let bound = if idle.traffic { 512.0 * 1024.0 } else { 4096.0 };
        assert!(bytes <= bound, "{idle:?}: {bytes} bytes per idle connection, bound {bound}");
    }
}
