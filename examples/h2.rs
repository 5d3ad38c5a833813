//! WebSockets over HTTP/2 (RFC 8441), both ends on hyper: a server that
//! announces extended CONNECT and echoes on every WebSocket, and a client
//! that opens several WebSockets as streams of one HTTP/2 connection.
//!
//! ```text
//! cargo run --example h2 --features hyper                        # both, in one process
//! cargo run --example h2 --features hyper -- serve 127.0.0.1:3001  # the server only
//! ```
//!
//! Cleartext HTTP/2 with prior knowledge (no TLS, no ALPN) keeps the
//! example short; behind TLS the same code runs on the TLS stream.

use std::convert::Infallible;

use futures_util::StreamExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use wscore::deflate::DeflateConfig;
use wscore::{ClientHandshake, CloseCode, Config, Message};

/// The configuration of both ends: compression if both agree.
fn config() -> Config {
    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());
    config
}

/// Serves HTTP/2 connections; each extended CONNECT becomes an echoing
/// WebSocket, on its own stream.
async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(handle);
            let connection = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                // SETTINGS_ENABLE_CONNECT_PROTOCOL: without it clients may not send `:protocol`.
                .enable_connect_protocol()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                eprintln!("connection: {e}");
            }
        });
    }
}

async fn handle(mut request: Request<Incoming>) -> Result<Response<String>, Infallible> {
    Ok(match wscore::hyper::upgrade(&mut request, config()) {
        Ok((response, upgrading)) => {
            tokio::spawn(async move {
                let Ok(mut ws) = upgrading.await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    if ws.send_owned(message).await.is_err() {
                        break;
                    }
                }
            });
            response
        }
        Err(refusal) => refusal.into_response(),
    })
}

/// Opens `count` WebSockets on one connection to `address`, each sending
/// a greeting and reading the echo.
async fn client(address: std::net::SocketAddr, count: usize) -> Result<(), Box<dyn std::error::Error>> {
    let stream = TcpStream::connect(address).await?;
    let (sender, connection) =
        hyper::client::conn::http2::handshake::<_, _, String>(TokioExecutor::new(), TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut tasks = Vec::new();
    for i in 0..count {
        let mut sender = sender.clone();
        let url = format!("ws://{address}/echo/{i}");
        tasks.push(tokio::spawn(async move {
            let hs = ClientHandshake::new(&url)?;
            let (mut ws, response) = wscore::hyper::connect_http2(&mut sender, hs, config()).await?;
            let greeting = format!("hello from WebSocket {i}");
            ws.send(Message::Text(&greeting)).await?;
            if let Some(Message::Text(echo)) = ws.recv().await? {
                println!("{url}: {echo:?} (compressed: {})", response.deflate().is_some());
            }
            ws.close(CloseCode::NORMAL, "").await?;
            Ok::<_, wscore::tokio::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        let address = args.get(1).map_or("127.0.0.1:3001", String::as_str);
        let listener = TcpListener::bind(address).await?;
        eprintln!("serving HTTP/2 WebSockets on {}", listener.local_addr()?);
        return Ok(serve(listener).await?);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(serve(listener));
    client(address, 8).await
}
