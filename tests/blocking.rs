//! The blocking adapter over real loopback TCP: echo, a clean close from
//! the client, a rejected handshake, a plain HTTP request, and heartbeat
//! pings. Each test keeps its wall-clock waits well under a second.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use wscore::blocking::{self, WebSocket};
use wscore::{Accept, CloseCode, Config, Error, Event, HandshakeError, Message, Reject};

/// An owned copy of a received message.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Owned {
    Text(String),
    Binary(Vec<u8>),
}

impl Owned {
    fn of(message: Message<'_>) -> Self {
        match message {
            Message::Text(t) => Self::Text(t.to_owned()),
            Message::Binary(b) => Self::Binary(b.to_vec()),
        }
    }

    fn as_message(&self) -> Message<'_> {
        match self {
            Self::Text(t) => Message::Text(t),
            Self::Binary(b) => Message::Binary(b),
        }
    }
}

/// A server configuration with a safety net: a broken test fails after a
/// few seconds of silence instead of hanging (no test waits that long).
fn server_config() -> Config {
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_secs(5));
    config
}

/// Binds a listener on an ephemeral loopback port and runs `serve` on the
/// first connection in a thread. Returns the `ws://` URL and the thread.
fn server<T: Send + 'static>(serve: impl FnOnce(TcpStream) -> T + Send + 'static) -> (String, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        serve(stream)
    });
    (url, handle)
}

/// Echoes every message until the connection ends; returns how many it
/// echoed and how `read` ended.
fn echo(mut ws: WebSocket<TcpStream>) -> (usize, io::Result<()>) {
    let mut count = 0;
    loop {
        let reply = match ws.read() {
            Ok(Some(message)) => Owned::of(message),
            Ok(None) => return (count, Ok(())),
            Err(e) => return (count, Err(e)),
        };
        if let Err(e) = ws.send(reply.as_message()) {
            return (count, Err(e));
        }
        count += 1;
    }
}

#[test]
fn echo_then_client_close_ends_both_cleanly() {
    let (url, handle) = server(|stream| {
        let ws = blocking::accept_with(stream, server_config(), |request| {
            assert_eq!(request.path(), "/");
            Ok(Accept::new())
        })
        .unwrap();
        echo(ws)
    });
    let (mut ws, response) = blocking::connect(&url).unwrap();
    assert_eq!(response.status(), 101);

    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let messages = [
        Owned::Text("hello".into()),
        Owned::Text(String::new()),
        Owned::Binary(vec![0, 1, 2, 255]),
        Owned::Text("κόσμε €𝄞".repeat(1000)),
        Owned::Binary(big),
        Owned::Text("last".into()),
    ];
    for message in &messages {
        ws.send(message.as_message()).unwrap();
        let echoed = Owned::of(ws.read().unwrap().expect("an echo, not a close"));
        assert_eq!(&echoed, message);
    }
    // Several in flight at once come back in order.
    for message in &messages[..3] {
        ws.write(message.as_message()).unwrap();
    }
    ws.flush().unwrap();
    for message in &messages[..3] {
        assert_eq!(&Owned::of(ws.read().unwrap().unwrap()), message);
    }

    ws.close(CloseCode::NORMAL, "done").unwrap();
    let closed = ws.connection().closed().unwrap().clone();
    assert!(closed.clean && closed.error.is_none() && closed.code == CloseCode::NORMAL, "{closed:?}");
    assert!(ws.connection().is_finished());

    let (count, result) = handle.join().unwrap();
    result.expect("the server's read() ended with Ok(None)");
    assert_eq!(count, messages.len() + 3);
}

#[test]
fn rejected_handshake_fails_connect_with_status() {
    let (url, handle) = server(|stream| {
        blocking::accept_with(stream, server_config(), |_| Err(Reject::new(403).body(b"go away\n"))).map(drop)
    });
    let error = blocking::connect(&url).expect_err("the server rejected the upgrade");
    assert_eq!(blocking::ws_error(&error), Some(&Error::Handshake(HandshakeError::Status(403))), "{error}");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);

    let server_error = handle.join().unwrap().expect_err("accept_with reports the rejection");
    assert_eq!(blocking::ws_error(&server_error), Some(&Error::Handshake(HandshakeError::Rejected(403))));
}

#[test]
fn plain_http_request_gets_400() {
    let (url, handle) = server(|stream| blocking::accept(stream).map(drop));
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    stream.write_all(b"GET /index.html HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\n\r\n").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{response}");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(&format!("Content-Length: {}", body.len())), "{head}");

    let server_error = handle.join().unwrap().expect_err("not a WebSocket request");
    assert_eq!(blocking::ws_error(&server_error), Some(&Error::Handshake(HandshakeError::Upgrade)));
}

#[test]
fn server_heartbeat_pings_an_idle_client() {
    let interval = Duration::from_millis(100);
    let (url, handle) = server(move |stream| {
        let mut config = server_config();
        config.ping_interval = Some(interval);
        let mut ws = blocking::accept_with(stream, config, |_| Ok(Accept::new())).unwrap();
        // Watch the connection's events: the client's automatic pong, then
        // its close.
        let mut pongs = 0;
        loop {
            match ws.next_event().unwrap() {
                Event::Pong(_) => pongs += 1,
                Event::Closed(closed) => {
                    assert!(closed.clean, "{closed:?}");
                    break;
                }
                _ => {}
            }
        }
        ws.finish().unwrap();
        pongs
    });

    // The client has no timers of its own but an idle timeout, so that it
    // fails rather than waits forever if no ping comes.
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_secs(2));
    // Taken before connecting, so before the server's last receive: the
    // ping cannot come sooner than one interval after it.
    let start = Instant::now();
    let (mut ws, _) = blocking::connect_with(&url, config).unwrap();
    match ws.next_event().unwrap() {
        Event::Ping(payload) => assert!(payload.is_empty()),
        other => panic!("expected a ping, got {other:?}"),
    }
    let waited = start.elapsed();
    assert!(waited >= interval, "ping after {waited:?}");
    assert!(waited < Duration::from_millis(1500), "ping after {waited:?}");
    // The pong went out with the next_event call that returned the ping.
    ws.close(CloseCode::NORMAL, "").unwrap();
    assert!(handle.join().unwrap() >= 1, "the server saw the client's pong");
}

#[test]
fn server_initiated_close_ends_client_read() {
    let (url, handle) = server(|stream| {
        let mut ws = blocking::accept_with(stream, server_config(), |_| Ok(Accept::new())).unwrap();
        ws.send(Message::Text("bye soon")).unwrap();
        ws.close(CloseCode::GOING_AWAY, "shutting down").unwrap();
        ws.connection().closed().unwrap().clone()
        // Dropping the stream here closes TCP, which the client waits for.
    });
    let (mut ws, _) = blocking::connect(&url).unwrap();
    assert_eq!(ws.read().unwrap(), Some(Message::Text("bye soon")));
    let start = Instant::now();
    assert_eq!(ws.read().unwrap(), None);
    // The client did not sit out its 5 s close timeout: the server closed TCP.
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    let closed = ws.connection().closed().unwrap().clone();
    assert!(closed.clean && closed.code == CloseCode::GOING_AWAY, "{closed:?}");
    assert!(ws.connection().is_finished());
    let server_closed = handle.join().unwrap();
    assert!(server_closed.clean && server_closed.code == CloseCode::GOING_AWAY, "{server_closed:?}");
}

#[test]
fn silent_client_gets_408_after_handshake_timeout() {
    let (url, handle) = server(|stream| {
        let mut config = server_config();
        config.handshake_timeout = Some(Duration::from_millis(150));
        blocking::accept_with(stream, config, |_| Ok(Accept::new())).map(drop)
    });
    let mut stream = TcpStream::connect(url.trim_start_matches("ws://").trim_end_matches('/')).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let start = Instant::now();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: local").unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let waited = start.elapsed();
    assert!(response.starts_with(b"HTTP/1.1 408 "), "{}", String::from_utf8_lossy(&response));
    assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(1), "{waited:?}");
    let error = handle.join().unwrap().expect_err("the handshake timed out");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
    assert_eq!(blocking::ws_error(&error), Some(&Error::Timeout(wscore::Timeout::Handshake)));
}

#[test]
fn idle_timeout_fails_read_and_tells_the_peer() {
    let (url, handle) = server(|stream| {
        let mut ws = blocking::accept_with(stream, server_config(), |_| Ok(Accept::new())).unwrap();
        // Silent until the client gives up; then the client's close arrives,
        // and the connection ends.
        let mut close = None;
        loop {
            match ws.next_event().unwrap() {
                Event::Close(frame) => close = Some((frame.code, frame.reason.to_owned())),
                Event::Closed(closed) => {
                    assert!(closed.clean, "{closed:?}");
                    break;
                }
                other => panic!("expected the client's close, got {other:?}"),
            }
        }
        ws.finish().unwrap();
        close
    });
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_millis(150));
    let (mut ws, _) = blocking::connect_with(&url, config).unwrap();
    let start = Instant::now();
    let error = ws.read().expect_err("nothing arrives");
    let waited = start.elapsed();
    assert_eq!(blocking::ws_error(&error), Some(&Error::Timeout(wscore::Timeout::Idle)), "{error}");
    assert!(waited < Duration::from_secs(1), "{waited:?}");
    assert!(ws.connection().is_finished());
    drop(ws);
    assert_eq!(handle.join().unwrap(), Some((CloseCode::GOING_AWAY, "idle timeout".to_owned())));
}

/// `read` returns whole messages; in streaming mode it refuses chunks with
/// an error instead of dropping them, and `next_event` still has them.
#[test]
fn read_refuses_chunks_in_streaming_mode() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = wscore::blocking::accept(stream).unwrap();
        ws.send(wscore::Message::Binary(b"piece")).unwrap();
        ws.close(wscore::CloseCode::NORMAL, "").unwrap();
    });
    let mut config = wscore::Config::default();
    config.streaming = true;
    let (mut ws, _) = wscore::blocking::connect_with(&format!("ws://{addr}/"), config).unwrap();
    let err = ws.read().expect_err("read refuses a chunk");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    match ws.next_event().unwrap() {
        wscore::Event::Chunk(chunk) => assert_eq!((chunk.data, chunk.fin), (&b"piece"[..], true)),
        other => panic!("{other:?}"),
    }
    // The server's close is answered while events are drained.
    while !matches!(ws.next_event().unwrap(), wscore::Event::Closed(_)) {}
    ws.finish().unwrap();
    server.join().unwrap();
}

/// Masks `payload` as a client frame with `first` as its first byte.
fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1, 2, 3, 4];
    let mut out = vec![first, 0x80 | 127];
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Review defect 4: a server that fails the connection while the peer is
/// still sending must not close the socket with input unread, or the
/// peer's kernel answers with a reset and the peer never reads our close
/// frame (nor data sent before it). A raw client sends a valid 8 MiB
/// message, then starts a 96 MiB frame (over the 16 MiB limit) and keeps
/// writing it while it reads: it must get the whole echo, the 1009 close
/// frame, and then an orderly end of stream, not a reset.
#[test]
fn defect4_a_failing_server_lingers_so_a_peer_mid_frame_reads_its_close_code() {
    let (url, handle) =
        server(|stream| echo(blocking::accept_with(stream, server_config(), |_| Ok(Accept::new())).unwrap()));
    let addr = url.trim_start_matches("ws://").trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(
            b"GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));

    let data: Vec<u8> = (0..8 << 20).map(|i: usize| (i * 13 + i / 4093) as u8).collect();
    let mut writer = stream.try_clone().unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writing = {
        let (data, stop) = (data.clone(), stop.clone());
        thread::spawn(move || {
            writer.write_all(&masked(0x82, &data))?;
            // A 96 MiB frame, written until the reader has seen the end.
            let mut header = masked(0x82, &[]);
            header[2..10].copy_from_slice(&(96u64 << 20).to_be_bytes());
            writer.write_all(&header)?;
            let piece = vec![0x55; 64 << 10];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                writer.write_all(&piece)?;
            }
            writer.shutdown(std::net::Shutdown::Write)
        })
    };

    let mut received = Vec::new();
    let mut buf = vec![0; 1 << 16];
    // A slow reader, so that the server's socket still holds unsent echo
    // and our close frame when the server fails: closing the socket then
    // would discard them and send a reset.
    let end = loop {
        match stream.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
        thread::sleep(Duration::from_millis(1));
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(end.is_ok(), "the stream ended with {end:?} after {} bytes, not with EOF", received.len());
    // The echo, whole (in frames of at most 1 MiB), then our close frame
    // with 1009, and nothing after it.
    let mut frames = Vec::new();
    let mut rest = &received[..];
    while !rest.is_empty() {
        let (header, len) = wscore::frame::FrameHeader::decode(rest).unwrap().expect("whole frames");
        let end = len + header.payload_len as usize;
        assert!(rest.len() >= end, "the stream ended inside a frame after {} bytes: data was lost", received.len());
        frames.push((header.opcode, header.fin, rest[len..end].to_vec()));
        rest = &rest[end..];
    }
    let (close, echo) = frames.split_last().unwrap();
    let echoed: Vec<u8> = echo.iter().flat_map(|(_, _, p)| p.clone()).collect();
    assert!(echoed == data, "the echo arrived whole ({} of {} bytes)", echoed.len(), data.len());
    assert!(echo.last().unwrap().1, "the echo's last frame is final");
    assert_eq!(close.0, wscore::frame::OpCode::Close);
    assert_eq!(u16::from_be_bytes([close.2[0], close.2[1]]), 1009);
    let _ = writing.join().unwrap();
    let (count, result) = handle.join().unwrap();
    assert_eq!(count, 1);
    let error = result.expect_err("the server's read failed with 1009");
    assert_eq!(blocking::ws_error(&error), Some(&Error::Protocol(wscore::ProtocolError::FrameTooLarge)));
}
