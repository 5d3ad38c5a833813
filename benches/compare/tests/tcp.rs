//! Every TCP server delivers the exact payloads: each library's echo
//! server (plain, and with permessage-deflate where it has it) under the
//! load generator, which compares every echo with what it sent, and each
//! broadcast, whose clients compare every message. Short runs of the
//! benchmarks' own code paths, on loopback.

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use wscore_compare::Kind;
use wscore_compare::loadgen::{self, EchoScenario, ServerProcess};

fn server(args: &[&str]) -> ServerProcess {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    ServerProcess::spawn_exe(Path::new(env!("CARGO_BIN_EXE_server")), None, &args).expect("server starts")
}

fn echo(library: &str, deflate: bool, size: usize, kind: Kind, conns: usize, inflight: usize) {
    let mut args = vec![library, "echo"];
    if deflate {
        args.push("--deflate");
    }
    let server = server(&args);
    let scenario = EchoScenario { name: "test".into(), size, conns, inflight, kind, deflate };
    let r = loadgen::run_echo(&server, &scenario, Duration::from_millis(100), Duration::from_millis(300))
        .unwrap_or_else(|e| panic!("{library} deflate={deflate} {size} B: {e}"));
    assert!(r.messages > 0, "{library}: no echo in the window");
    assert_eq!(r.latencies.len() as u64, r.messages);
}

#[test]
fn every_echo_server_echoes_exactly() {
    for library in ["wscore", "tungstenite", "fastwebsockets", "tokio-websockets", "ratchet", "soketto"] {
        for (size, kind, conns, inflight) in [
            (0, Kind::Binary, 2, 1),
            (16, Kind::Text, 4, 8),
            (1024, Kind::DenseText, 2, 2),
            (65536, Kind::Binary, 2, 2),
            (1 << 20, Kind::Text, 1, 2),
        ] {
            echo(library, false, size, kind, conns, inflight);
        }
    }
}

#[test]
fn every_deflate_echo_server_echoes_exactly() {
    for library in ["wscore", "ratchet", "soketto"] {
        for (size, conns, inflight) in [(1024, 2, 2), (65536, 2, 1), (300_000, 1, 2)] {
            echo(library, true, size, Kind::Text, conns, inflight);
        }
    }
}

#[test]
fn every_broadcast_delivers_every_message() {
    let runs = [
        ("wscore", false),
        ("wscore_plain", false),
        ("tungstenite", false),
        ("fastwebsockets", false),
        ("tokio-websockets", false),
        ("wscore", true),
        ("wscore_plain", true),
        ("ratchet", true),
        ("soketto", true),
    ];
    for size in [1024, 65536] {
        for (library, deflate) in runs {
            let (clients, messages) = (5, 7);
            let (c, m, s) = (clients.to_string(), messages.to_string(), size.to_string());
            let mut args = vec![library, "broadcast", "--clients", &c, "--messages", &m, "--size", &s];
            if deflate {
                args.push("--deflate");
            }
            let mut server = server(&args);
            let texts =
                Rc::new((0..messages).map(|i| wscore_compare::data::broadcast_text(i, size)).collect::<Vec<_>>());
            loadgen::block_on(loadgen::broadcast_clients(server.port, clients, deflate, texts, || {}))
                .unwrap_or_else(|e| panic!("{library} deflate={deflate}: {e}"));
            let result = server.read_line().unwrap();
            assert!(result.starts_with("result cpu_ns="), "{result}");
        }
    }
}
