//! Pings, pongs and timers against a raw peer: pings are answered while
//! the application only reads, heartbeats reach a silent peer without user
//! code, and a peer that never answers is dropped with 1001 while one that
//! answers is kept.

use std::time::Duration;

use wscore::{CloseCode, Config, Error, Timeout};

use crate::harness::{self, Adapter, Fail, Msg, Ws, on_thread};
use crate::raw::{CLOSE, FIN, PING, PONG, Raw, TEXT};

fn heartbeat(ping: u64, idle: Option<u64>) -> Config {
    let mut config = Config::default();
    config.ping_interval = Some(Duration::from_millis(ping));
    config.idle_timeout = idle.map(Duration::from_millis);
    config
}

/// The raw peer's side of a closing handshake it starts.
#[track_caller]
fn close_from_raw(raw: &mut Raw, code: u16) {
    raw.send_close(code, "");
    let answer = raw.frame_skipping_pings();
    assert_eq!(answer.close_code(), Some(code), "{answer:?}");
}

pub(crate) async fn peer_ping_answered_while_reading<A: Adapter>() {
    // As a server: the application is parked in `recv`.
    let (listener, addr) = harness::listen();
    let server = A::spawn(async move { harness::drain(A::accept(listener, Config::default()).await.unwrap()).await });
    on_thread(move || {
        let mut raw = Raw::connect(addr);
        for payload in [&b"are you there"[..], b"", &[0xAB; 125]] {
            raw.send(FIN | PING, payload);
            let pong = raw.frame();
            assert_eq!((pong.opcode, &pong.payload[..]), (PONG, payload), "{pong:?}");
        }
        raw.send(FIN | TEXT, "after the pings".as_bytes());
        close_from_raw(&mut raw, 1000);
        raw.expect_eof();
    })
    .await;
    let ending = server.await;
    ending.assert_clean(1000, "");
    assert_eq!(ending.messages, [Msg::Text("after the pings".into())]);

    // As a client, which masks its pong; and the application's own ping.
    let (listener, addr) = harness::listen();
    let peer = on_thread(move || {
        let mut raw = Raw::accept(listener);
        let ping = raw.frame();
        assert_eq!((ping.opcode, &ping.payload[..]), (PING, &b"from the application"[..]));
        raw.send(FIN | PONG, b"from the application");
        raw.send(FIN | PING, b"from the raw server");
        let pong = raw.frame();
        assert_eq!((pong.opcode, &pong.payload[..]), (PONG, &b"from the raw server"[..]));
        raw.send(FIN | TEXT, b"done");
        let close = raw.frame();
        assert_eq!(close.close_code(), Some(1000));
        raw.send_close(1000, "");
        // Dropping the socket: the server closes TCP first (RFC 6455 §7.1.1).
    });
    let mut ws = A::connect(addr, Config::default()).await.unwrap();
    ws.ping(b"from the application").await.unwrap();
    assert_eq!(ws.recv().await.unwrap(), Some(Msg::Text("done".into())));
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    peer.await;
}

pub(crate) async fn heartbeat_pings_a_silent_peer<A: Adapter>() {
    const PINGS: usize = 3;
    // A silent client gets the server's pings while the server
    // application only reads.
    let (listener, addr) = harness::listen();
    let server = A::spawn(async move { harness::drain(A::accept(listener, heartbeat(50, None)).await.unwrap()).await });
    on_thread(move || {
        let mut raw = Raw::connect(addr);
        for _ in 0..PINGS {
            let ping = raw.frame();
            assert_eq!(ping.opcode, PING, "{ping:?}");
        }
        close_from_raw(&mut raw, 1000);
        raw.expect_eof();
    })
    .await;
    server.await.assert_clean(1000, "");

    // A silent server gets the client's, masked.
    let (listener, addr) = harness::listen();
    let peer = on_thread(move || {
        let mut raw = Raw::accept(listener);
        for _ in 0..PINGS {
            let ping = raw.frame();
            assert_eq!(ping.opcode, PING, "{ping:?}");
        }
        raw.send_close(1000, "enough");
        let answer = raw.frame_skipping_pings();
        assert_eq!(answer.close_code(), Some(1000), "{answer:?}");
    });
    let ws = A::connect(addr, heartbeat(50, None)).await.unwrap();
    harness::drain(ws).await.assert_clean(1000, "enough");
    peer.await;
}

pub(crate) async fn idle_peer_is_dropped_with_1001<A: Adapter>() {
    let (listener, addr) = harness::listen();
    let server =
        A::spawn(async move { harness::drain(A::accept(listener, heartbeat(50, Some(300))).await.unwrap()).await });
    on_thread(move || {
        let mut raw = Raw::connect(addr);
        // Read the pings, never answer them.
        let close = raw.frame_skipping_pings();
        assert_eq!((close.opcode, close.close_code()), (CLOSE, Some(1001)), "{close:?}");
        raw.send_close(1001, "");
        raw.expect_eof();
    })
    .await;
    let ending = server.await;
    assert_eq!(ending.result, Err(Fail::Ws(Error::Timeout(Timeout::Idle))));
    let closed = ending.closed.unwrap();
    assert_eq!((closed.code, closed.clean), (CloseCode::GOING_AWAY, false), "{closed:?}");
}

pub(crate) async fn answering_peer_outlives_the_idle_timeout<A: Adapter>() {
    // Pings every 50 ms, an idle timeout of a second (the time a loaded
    // machine has to answer in), and a peer that answers for longer.
    const PINGS: usize = 30;
    let (listener, addr) = harness::listen();
    let server =
        A::spawn(async move { harness::drain(A::accept(listener, heartbeat(50, Some(1000))).await.unwrap()).await });
    on_thread(move || {
        let mut raw = Raw::connect(addr);
        for _ in 0..PINGS {
            let ping = raw.frame();
            assert_eq!(ping.opcode, PING, "{ping:?}: the connection should still be alive");
            raw.send(FIN | PONG, &ping.payload);
        }
        raw.send(FIN | TEXT, b"still here");
        close_from_raw(&mut raw, 1000);
        raw.expect_eof();
    })
    .await;
    let ending = server.await;
    ending.assert_clean(1000, "");
    assert_eq!(ending.messages, [Msg::Text("still here".into())]);
}
