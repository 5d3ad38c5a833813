//! The hyper integration over loopback: the axum example's app answering
//! the tokio adapter's client and hyper's HTTP/1.1 client, a hyper HTTP/2
//! server carrying many WebSockets on one connection (RFC 8441),
//! permessage-deflate over both versions, and the HTTP errors that bad
//! upgrade requests get.

#![cfg(feature = "hyper")]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper::ext::Protocol;
use hyper::{HeaderMap, Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use wscore::deflate::{DeflateConfig, DeflateParams};
use wscore::{Accept, ClientHandshake, CloseCode, Config, HandshakeError, Message, Reject, UsageError};

// The example's `main` is not used here, only its app.
#[allow(dead_code)]
#[path = "../examples/axum.rs"]
mod axum_example;

/// Every test gives up rather than hang.
const LIMIT: Duration = Duration::from_secs(60);

fn deflate_config() -> Config {
    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());
    config
}

/// Serves the axum example's app on a loopback port.
async fn serve_axum(config: Config) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, axum_example::app(config)).await.unwrap() });
    addr
}

/// Sends text and binary messages of sizes around each framing boundary
/// and checks every echo; `seed` makes each WebSocket's payloads its own.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut wscore::tokio::WebSocket<S>, seed: usize) {
    let sizes = [0, 1, 125, 126, 4000, 65_535, 65_536, 100_000];
    for (i, size) in sizes.into_iter().enumerate() {
        if i % 2 == 0 {
            let text: String = (0..size).map(|j| char::from(b'a' + ((j * 7 + seed + i) % 26) as u8)).collect();
            ws.send(Message::Text(&text)).await.unwrap();
            match ws.recv().await.unwrap() {
                Some(Message::Text(echo)) => assert!(echo == text, "text of {size} bytes, seed {seed}"),
                other => panic!("expected the text echo, got {other:?}"),
            }
        } else {
            let binary: Vec<u8> = (0..size).map(|j| (j.wrapping_mul(2_654_435_761) >> 7 ^ seed) as u8).collect();
            ws.send(Message::Binary(&binary)).await.unwrap();
            match ws.recv().await.unwrap() {
                Some(Message::Binary(echo)) => assert!(echo == binary, "binary of {size} bytes, seed {seed}"),
                other => panic!("expected the binary echo, got {other:?}"),
            }
        }
    }
}

/// Sends 100 KB that compress to almost nothing and returns how many bytes
/// the echo took on the wire.
async fn compressible_echo<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut wscore::tokio::WebSocket<S>) -> u64 {
    let text = "all work and no play makes jack a dull boy. ".repeat(100_000 / 44);
    let before = ws.connection().stats().bytes_received;
    ws.send(Message::Text(&text)).await.unwrap();
    assert!(matches!(ws.recv().await.unwrap(), Some(Message::Text(echo)) if echo == text));
    ws.connection().stats().bytes_received - before
}

// ----- HTTP/1.1 through axum -------------------------------------------------

#[tokio::test]
async fn axum_app_echoes_over_http1() {
    tokio::time::timeout(LIMIT, async {
        let addr = serve_axum(Config::default()).await;
        let url = format!("ws://{addr}/ws");
        let (mut ws, response) = wscore::tokio::connect(&url).await.unwrap();
        assert_eq!((response.status(), response.protocol(), response.deflate()), (101, None, None));
        exchange(&mut ws, 1).await;
        ws.close(CloseCode::NORMAL, "done").await.unwrap();

        // The app's `decide` picks the subprotocol when offered.
        let stream = TcpStream::connect(addr).await.unwrap();
        let hs = ClientHandshake::new(&url).unwrap().protocol("other").unwrap().protocol("echo").unwrap();
        let (mut ws, response) = wscore::tokio::client(stream, hs, Config::default()).await.unwrap();
        assert_eq!(response.protocol(), Some("echo"));
        exchange(&mut ws, 2).await;
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn axum_app_negotiates_deflate_over_http1() {
    tokio::time::timeout(LIMIT, async {
        let addr = serve_axum(deflate_config()).await;
        let url = format!("ws://{addr}/ws");
        let (mut ws, response) = wscore::tokio::connect_with(&url, deflate_config()).await.unwrap();
        assert_eq!(response.deflate(), Some(&DeflateParams::default()));
        exchange(&mut ws, 3).await;
        let wire = compressible_echo(&mut ws).await;
        assert!(wire < 2_000, "100 KB of repetition took {wire} bytes");
        ws.close(CloseCode::NORMAL, "").await.unwrap();

        // Offered by nobody, agreed by nobody: the same text goes plain.
        let (mut plain, response) = wscore::tokio::connect(&url).await.unwrap();
        assert_eq!(response.deflate(), None);
        let wire = compressible_echo(&mut plain).await;
        assert!(wire > 100_000 - 100, "uncompressed echo took only {wire} bytes");
        plain.close(CloseCode::NORMAL, "").await.unwrap();
    })
    .await
    .unwrap();
}

/// Sends one request on a new HTTP/1.1 connection; status, headers, body.
async fn http1_exchange(addr: SocketAddr, request: Request<String>) -> (StatusCode, HeaderMap, String) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
}

fn http1_upgrade(addr: SocketAddr, version: &str) -> hyper::http::request::Builder {
    Request::builder()
        .uri("/ws")
        .header("host", addr.to_string())
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", version)
}

#[tokio::test]
async fn axum_app_answers_bad_upgrades_with_their_http_errors() {
    tokio::time::timeout(LIMIT, async {
        let addr = serve_axum(Config::default()).await;

        // A version we do not speak: 426, naming the protocol and version we do.
        let request = http1_upgrade(addr, "8").body(String::new()).unwrap();
        let (status, headers, body) = http1_exchange(addr, request).await;
        assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["sec-websocket-version"], "13");
        assert!(headers.get_all("connection").iter().any(|v| v.to_str().unwrap().contains("upgrade")), "{headers:?}");
        assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
        assert_eq!(body, "Sec-WebSocket-Version must be 13\n");

        // A plain GET is no upgrade.
        let request = Request::get("/ws").header("host", "x").body(String::new()).unwrap();
        let (status, _, body) = http1_exchange(addr, request).await;
        assert_eq!((status, body.as_str()), (StatusCode::BAD_REQUEST, "Upgrade header must be \"websocket\"\n"));

        // The wrong method: 405 with what is allowed.
        let request = http1_upgrade(addr, "13").method("POST").body(String::new()).unwrap();
        let (status, headers, _) = http1_exchange(addr, request).await;
        assert_eq!((status, &headers["allow"]), (StatusCode::METHOD_NOT_ALLOWED, &"GET".parse().unwrap()));

        // More header fields than `Config::max_headers`, as the built-in handshake counts them.
        let mut request = http1_upgrade(addr, "13");
        for i in 0..Config::default().max_headers {
            request = request.header(format!("x-filler-{i}"), "1");
        }
        let (status, _, _) = http1_exchange(addr, request.body(String::new()).unwrap()).await;
        assert_eq!(status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);

        // And a good one over the same kind of connection is accepted.
        let request = http1_upgrade(addr, "13").body(String::new()).unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = http1::handshake::<_, String>(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection.with_upgrades());
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()["sec-websocket-accept"], "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn hyper_http1_client_upgrades_with_deflate() {
    tokio::time::timeout(LIMIT, async {
        let addr = serve_axum(deflate_config()).await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = http1::handshake::<_, String>(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection.with_upgrades());
        let hs = ClientHandshake::new(&format!("ws://{addr}/ws")).unwrap().protocol("echo").unwrap();
        let (mut ws, response) = wscore::hyper::connect_http1(&mut sender, hs, deflate_config()).await.unwrap();
        assert_eq!((response.status(), response.protocol()), (101, Some("echo")));
        assert_eq!(response.deflate(), Some(&DeflateParams::default()));
        exchange(&mut ws, 4).await;
        assert!(compressible_echo(&mut ws).await < 2_000);
        ws.close(CloseCode::NORMAL, "").await.unwrap();

        // A route that is not there: the refusal comes back whole.
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = http1::handshake::<_, String>(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(connection.with_upgrades());
        let hs = ClientHandshake::new(&format!("ws://{addr}/nowhere")).unwrap();
        match wscore::hyper::connect_http1(&mut sender, hs, Config::default()).await {
            Err(wscore::tokio::Error::Rejected(response)) => assert_eq!(response.status(), 404),
            other => panic!("expected a 404 refusal, got {other:?}"),
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn axum_app_echoes_over_http2() {
    tokio::time::timeout(LIMIT, async {
        // axum::serve announces extended CONNECT; the app's route takes it.
        let addr = serve_axum(deflate_config()).await;
        let mut sender = h2_connect(addr).await;
        let hs = ClientHandshake::new(&format!("ws://{addr}/ws")).unwrap().protocol("echo").unwrap();
        let (mut ws, response) = wscore::hyper::connect_http2(&mut sender, hs, deflate_config()).await.unwrap();
        assert_eq!((response.status(), response.version()), (200, wscore::HttpVersion::Http2));
        assert_eq!((response.protocol(), response.deflate()), (Some("echo"), Some(&DeflateParams::default())));
        exchange(&mut ws, 5).await;
        ws.close(CloseCode::NORMAL, "").await.unwrap();
    })
    .await
    .unwrap();
}

// ----- HTTP/2 through hyper's server (RFC 8441) ------------------------------

/// What the test server saw.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    /// The deflate parameters of every WebSocket it accepted.
    accepted: Mutex<Vec<Option<DeflateParams>>>,
    /// Every refusal's error.
    refused: Mutex<Vec<wscore::Error>>,
}

/// Serves HTTP/2 with prior knowledge, answering every request with
/// `wscore::hyper::upgrade_with` and echoing on every WebSocket;
/// `/private` is rejected by `decide`, `/bad-protocol` makes `decide` choose
/// a subprotocol nobody offered, `/stall` is never answered. Without `connect_protocol`, the server
/// does not announce extended CONNECT.
async fn serve_h2(config: Config, connect_protocol: bool) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let server_seen = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            server_seen.connections.fetch_add(1, Ordering::SeqCst);
            let (config, seen) = (config.clone(), Arc::clone(&server_seen));
            let service =
                hyper::service::service_fn(move |request| h2_handle(request, config.clone(), Arc::clone(&seen)));
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            if connect_protocol {
                builder.enable_connect_protocol();
            }
            tokio::spawn(builder.serve_connection(TokioIo::new(stream), service));
        }
    });
    (addr, seen)
}

async fn h2_handle(
    mut request: Request<Incoming>,
    config: Config,
    seen: Arc<Seen>,
) -> Result<Response<String>, Infallible> {
    if request.uri().path() == "/stall" {
        std::future::pending::<()>().await;
    }
    let upgrade = wscore::hyper::upgrade_with(&mut request, config, |request| match request.path() {
        "/private" => Err(Reject::new(403).header("X-Reason", "private").body(b"not for you\n")),
        "/bad-protocol" => Ok(Accept::new().protocol("never-offered")),
        _ => Ok(Accept::new()),
    });
    match upgrade {
        Ok((response, upgrading)) => {
            seen.accepted.lock().unwrap().push(upgrading.deflate().copied());
            tokio::spawn(async move {
                let mut ws = upgrading.await.unwrap();
                while let Some(message) = futures_util::StreamExt::next(&mut ws).await {
                    ws.send_owned(message.unwrap()).await.unwrap();
                }
            });
            Ok(response)
        }
        Err(refusal) => {
            seen.refused.lock().unwrap().push(refusal.error());
            Ok(refusal.into_response())
        }
    }
}

/// An HTTP/2 connection (prior knowledge) to `addr`, driven in a task.
async fn h2_connect(addr: SocketAddr) -> http2::SendRequest<String> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    sender
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_websockets_share_one_http2_connection() {
    tokio::time::timeout(LIMIT, async {
        const COUNT: usize = 50;
        let (addr, seen) = serve_h2(Config::default(), true).await;
        let sender = h2_connect(addr).await;
        // All open before any closes, so they are multiplexed for real.
        let opened = Arc::new(tokio::sync::Barrier::new(COUNT));
        let tasks: Vec<_> = (0..COUNT)
            .map(|i| {
                let (mut sender, opened) = (sender.clone(), Arc::clone(&opened));
                tokio::spawn(async move {
                    let hs = ClientHandshake::new(&format!("ws://{addr}/chat/{i}")).unwrap();
                    let (mut ws, response) =
                        wscore::hyper::connect_http2(&mut sender, hs, Config::default()).await.unwrap();
                    assert_eq!((response.status(), response.deflate()), (200, None));
                    opened.wait().await;
                    exchange(&mut ws, i).await;
                    ws.close(CloseCode::NORMAL, "").await.unwrap();
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "one TCP connection carried them all");
        assert_eq!(seen.accepted.lock().unwrap().len(), COUNT);
        // The connection outlives its WebSockets and takes more.
        let mut sender = sender;
        let hs = ClientHandshake::new(&format!("ws://{addr}/again")).unwrap();
        let (mut ws, _) = wscore::hyper::connect_http2(&mut sender, hs, Config::default()).await.unwrap();
        exchange(&mut ws, COUNT).await;
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn deflate_is_negotiated_over_http2_as_over_http1() {
    tokio::time::timeout(LIMIT, async {
        let (addr, seen) = serve_h2(deflate_config(), true).await;
        let mut sender = h2_connect(addr).await;
        let url = format!("ws://{addr}/deflate");

        // Parameters asked for by the client are agreed by both ends.
        let mut asking = Config::default();
        let mut offer = DeflateConfig::default();
        offer.client_no_context_takeover = true;
        offer.server_max_window_bits = Some(10);
        asking.deflate = Some(offer);
        let hs = ClientHandshake::new(&url).unwrap();
        let (mut ws, response) = wscore::hyper::connect_http2(&mut sender, hs, asking).await.unwrap();
        let agreed = *response.deflate().expect("deflate agreed");
        assert!(agreed.client_no_context_takeover && agreed.server_max_window_bits == 10, "{agreed:?}");
        assert_eq!(seen.accepted.lock().unwrap().last(), Some(&Some(agreed)), "both ends use the same parameters");
        exchange(&mut ws, 6).await;
        // The server compresses with the 1 KiB window asked for: a tenth still.
        let wire = compressible_echo(&mut ws).await;
        assert!(wire < 10_000, "100 KB of repetition took {wire} bytes over h2");
        ws.close(CloseCode::NORMAL, "").await.unwrap();

        // A client that offers nothing gets nothing, on the same connection.
        let hs = ClientHandshake::new(&url).unwrap();
        let (mut plain, response) = wscore::hyper::connect_http2(&mut sender, hs, Config::default()).await.unwrap();
        assert_eq!(response.deflate(), None);
        assert_eq!(seen.accepted.lock().unwrap().last(), Some(&None));
        assert!(compressible_echo(&mut plain).await > 100_000 - 100);
        plain.close(CloseCode::NORMAL, "").await.unwrap();
    })
    .await
    .unwrap();
}

/// Sends one request on the HTTP/2 connection; status, headers, body.
async fn h2_exchange(
    sender: &mut http2::SendRequest<String>,
    request: Request<String>,
) -> (StatusCode, HeaderMap, String) {
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body: Bytes = body.collect().await.unwrap().to_bytes();
    (parts.status, parts.headers, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn http2_requests_that_are_not_websocket_connects_get_400() {
    tokio::time::timeout(LIMIT, async {
        let (addr, seen) = serve_h2(Config::default(), true).await;
        let mut sender = h2_connect(addr).await;
        let not_websocket = "HTTP/2 WebSocket request must be CONNECT with :protocol websocket\n";

        // A classic CONNECT (a TCP tunnel), no `:protocol`.
        let tunnel = Request::builder()
            .method(Method::CONNECT)
            .version(Version::HTTP_2)
            .uri(addr.to_string())
            .header("sec-websocket-version", "13")
            .body(String::new())
            .unwrap();
        let (status, _, body) = h2_exchange(&mut sender, tunnel).await;
        assert_eq!((status, body.as_str()), (StatusCode::BAD_REQUEST, not_websocket));

        let extended = |protocol: &'static str, version: &'static str| {
            Request::builder()
                .method(Method::CONNECT)
                .version(Version::HTTP_2)
                .uri(format!("http://{addr}/ws"))
                .extension(Protocol::from_static(protocol))
                .header("sec-websocket-version", version)
                .body(String::new())
                .unwrap()
        };
        // Another protocol than websocket.
        let (status, _, body) = h2_exchange(&mut sender, extended("webtransport", "13")).await;
        assert_eq!((status, body.as_str()), (StatusCode::BAD_REQUEST, not_websocket));

        // A GET, as over HTTP/1.1.
        let get = Request::get(format!("http://{addr}/ws"))
            .version(Version::HTTP_2)
            .header("sec-websocket-version", "13")
            .body(String::new())
            .unwrap();
        let (status, _, body) = h2_exchange(&mut sender, get).await;
        assert_eq!((status, body.as_str()), (StatusCode::BAD_REQUEST, not_websocket));

        // A version we do not speak: 400, since a 426 would need `Upgrade`.
        let (status, headers, _) = h2_exchange(&mut sender, extended("websocket", "8")).await;
        assert_eq!((status, &headers["sec-websocket-version"]), (StatusCode::BAD_REQUEST, &"13".parse().unwrap()));
        assert!(headers.get("upgrade").is_none());

        let refused = seen.refused.lock().unwrap().clone();
        let expected = [
            HandshakeError::ExtendedConnect,
            HandshakeError::ExtendedConnect,
            HandshakeError::ExtendedConnect,
            HandshakeError::UnsupportedVersionHttp2,
        ]
        .map(wscore::Error::Handshake);
        assert_eq!(refused, expected);
        assert!(seen.accepted.lock().unwrap().is_empty());

        // The connection is still good for a WebSocket.
        let hs = ClientHandshake::new(&format!("ws://{addr}/ws")).unwrap();
        let (mut ws, _) = wscore::hyper::connect_http2(&mut sender, hs, Config::default()).await.unwrap();
        exchange(&mut ws, 7).await;
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn http2_refusals_reach_the_client_whole() {
    tokio::time::timeout(LIMIT, async {
        let (addr, seen) = serve_h2(Config::default(), true).await;
        let mut sender = h2_connect(addr).await;

        let hs = ClientHandshake::new(&format!("ws://{addr}/private")).unwrap();
        match wscore::hyper::connect_http2(&mut sender, hs, Config::default()).await {
            Err(wscore::tokio::Error::Rejected(response)) => {
                assert_eq!((response.status(), response.body()), (403, &b"not for you\n"[..]));
                assert_eq!(response.header("x-reason"), Some(&b"private"[..]));
            }
            other => panic!("expected the 403, got {other:?}"),
        }
        // `decide` chose a subprotocol nobody offered: the server's mistake.
        let hs = ClientHandshake::new(&format!("ws://{addr}/bad-protocol")).unwrap();
        match wscore::hyper::connect_http2(&mut sender, hs, Config::default()).await {
            Err(wscore::tokio::Error::Rejected(response)) => assert_eq!(response.status(), 500),
            other => panic!("expected a 500, got {other:?}"),
        }
        let refused = seen.refused.lock().unwrap().clone();
        assert_eq!(
            refused,
            [
                wscore::Error::Handshake(HandshakeError::Rejected(403)),
                wscore::Error::Usage(UsageError::UnofferedProtocol)
            ]
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn http2_client_fails_cleanly_without_extended_connect() {
    tokio::time::timeout(LIMIT, async {
        let (addr, seen) = serve_h2(Config::default(), false).await;
        let mut sender = h2_connect(addr).await;
        let hs = ClientHandshake::new(&format!("ws://{addr}/ws")).unwrap();
        let mut config = Config::default();
        config.handshake_timeout = Some(Duration::from_secs(30));
        let error = wscore::hyper::connect_http2(&mut sender, hs, config).await.unwrap_err();
        // The stream is reset at once: a transport error, not the timeout.
        assert!(matches!(error, wscore::tokio::Error::Io(_)), "{error:?}");
        assert!(seen.accepted.lock().unwrap().is_empty() && seen.refused.lock().unwrap().is_empty());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn http2_client_gives_up_on_a_server_that_does_not_answer() {
    tokio::time::timeout(LIMIT, async {
        let (addr, _) = serve_h2(Config::default(), true).await;
        let mut sender = h2_connect(addr).await;
        let hs = ClientHandshake::new(&format!("ws://{addr}/stall")).unwrap();
        let mut config = Config::default();
        config.handshake_timeout = Some(Duration::from_millis(200));
        let started = std::time::Instant::now();
        let error = wscore::hyper::connect_http2(&mut sender, hs, config).await.unwrap_err();
        assert!(
            matches!(error, wscore::tokio::Error::WebSocket(wscore::Error::Timeout(wscore::Timeout::Handshake))),
            "{error:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        // Only that stream was given up: the connection still works.
        let hs = ClientHandshake::new(&format!("ws://{addr}/ws")).unwrap();
        let (mut ws, _) = wscore::hyper::connect_http2(&mut sender, hs, Config::default()).await.unwrap();
        exchange(&mut ws, 8).await;
    })
    .await
    .unwrap();
}

// ----- Without a connection behind the request -------------------------------

fn valid_http1_request() -> Request<()> {
    Request::get("/chat")
        .header("host", "example.com")
        .header("upgrade", "websocket")
        .header("connection", "upgrade")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .header("sec-websocket-version", "13")
        .body(())
        .unwrap()
}

#[test]
fn a_request_hyper_cannot_hand_over_is_the_servers_error() {
    // Valid, but not from a hyper connection, so there is nothing to take over.
    let refusal = wscore::hyper::upgrade(&mut valid_http1_request(), Config::default()).unwrap_err();
    assert_eq!((refusal.status(), refusal.error()), (500, wscore::Error::Usage(UsageError::NotUpgradable)));
    // The same through the parts an axum extractor gets.
    let (mut parts, ()) = valid_http1_request().into_parts();
    let refusal = wscore::hyper::upgrade(&mut parts, Config::default()).unwrap_err();
    assert_eq!(refusal.error(), wscore::Error::Usage(UsageError::NotUpgradable));
    // A bad request is still answered as one first.
    let mut request = valid_http1_request();
    request.headers_mut().remove("sec-websocket-key");
    let refusal = wscore::hyper::upgrade(&mut request, Config::default()).unwrap_err();
    assert_eq!((refusal.status(), refusal.error()), (400, wscore::Error::Handshake(HandshakeError::Key)));
    // And so is a request over the size limit.
    let mut small = Config::default();
    small.max_handshake_size = 100;
    let refusal = wscore::hyper::upgrade(&mut valid_http1_request(), small).unwrap_err();
    assert_eq!((refusal.status(), refusal.error()), (431, wscore::Error::Handshake(HandshakeError::TooLarge)));
}

#[tokio::test]
async fn upgrading_fails_when_hyper_keeps_the_connection() {
    tokio::time::timeout(LIMIT, async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let tx = Arc::new(Mutex::new(Some(tx)));
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
                let tx = Arc::clone(&tx);
                async move {
                    let (response, upgrading) = wscore::hyper::upgrade(&mut request, Config::default()).unwrap();
                    tokio::spawn(async move {
                        let result = upgrading.await.map(|_| ());
                        let _ = tx.lock().unwrap().take().unwrap().send(result);
                    });
                    Ok::<_, Infallible>(response)
                }
            });
            // Served without `with_upgrades`: hyper never lets go.
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
        let _ = wscore::tokio::connect(&format!("ws://{addr}/")).await;
        let result = rx.await.unwrap();
        assert!(matches!(result, Err(wscore::tokio::Error::Io(_))), "{result:?}");
    })
    .await
    .unwrap();
}
