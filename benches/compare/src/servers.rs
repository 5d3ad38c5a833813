//! Each library's TCP server, as its documentation shows one: an echo
//! loop per connection and a broadcast to many connections. The server
//! binary (`src/bin/server.rs`) runs them on a single-threaded tokio
//! runtime, one task per connection.
//!
//! What each echo does per message (the same for every message size):
//!
//! * wscore: `wscore::tokio::accept`, then the loop its README and
//!   `examples/echo_server.rs` show: `next()` from its `Stream` of owned
//!   messages (split off the receive buffer, no copy) and `send_owned`
//!   (queued without a copy, written at once);
//! * tungstenite (tokio-tungstenite): `accept_async`, then `next()` and
//!   `send(message)` (the payload is `Bytes`, echoed without a copy;
//!   `send` writes and flushes);
//! * fastwebsockets: the handshake below (it has none without hyper), then
//!   a `FragmentCollector` (whole messages, as the others deliver), auto
//!   pong and auto close on, `read_frame` and `write_frame(frame)`;
//! * tokio-websockets: `ServerBuilder::accept`, then `next()` and
//!   `send(message)`;
//! * ratchet (deflate only): `accept_with` a `DeflateExtProvider`, then
//!   `read(&mut buffer)` and `write(&buffer, type)`; ratchet does not
//!   validate text, so the loop checks it with `std::str::from_utf8`, as
//!   its docs leave to the user;
//! * soketto (deflate only): `Server` with its `Deflate` extension, then
//!   `receive_data`, `send_text(std::str::from_utf8(..))` or
//!   `send_binary`, and `flush` (its README's echo).
//!
//! Every one reads one message, then writes it back and waits for the
//! write before reading the next; none batches replies. Each library's
//! limits stay at its defaults (64 MiB messages for all; soketto's is
//! set to the same). With `deflate`, compression level 1 everywhere.

use std::io;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncReadCompatExt};

/// Any error, to be dropped: a load generator closing its connections is
/// how every run ends.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every library this module has a server for.
pub const ALL: [&str; 6] = ["wscore", "tungstenite", "fastwebsockets", "tokio-websockets", "ratchet", "soketto"];

/// The libraries with permessage-deflate.
pub fn has_deflate(library: &str) -> bool {
    matches!(library, "wscore" | "wscore_plain" | "ratchet" | "soketto")
}

fn wscore_config(deflate: bool) -> wscore::Config {
    let mut config = wscore::Config::default();
    if deflate {
        let mut d = wscore::deflate::DeflateConfig::default();
        d.level = 1;
        config.deflate = Some(d);
    }
    config
}

fn ratchet_deflate() -> ratchet_rs::deflate::DeflateExtProvider {
    let mut config = ratchet_rs::deflate::DeflateConfig::default();
    config.compression_level = ratchet_rs::deflate::Compression::new(1);
    ratchet_rs::deflate::DeflateExtProvider::with_config(config)
}

/// fastwebsockets' server handshake, which it leaves to hyper: read the
/// request head, answer 101 with the accept key.
async fn fastwebsockets_handshake(stream: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let end = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
        if let Some(end) = crate::wire::head_end(&head) {
            break end;
        }
    };
    // The client sends nothing before the answer.
    assert_eq!(end, head.len());
    let text = std::str::from_utf8(&head).map_err(io::Error::other)?;
    let key = text
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-key")))
        .map(|(_, v)| v.trim())
        .ok_or_else(|| io::Error::other("no key"))?;
    let accept = wscore::handshake::accept_key(key.as_bytes());
    let accept = std::str::from_utf8(&accept).unwrap();
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(answer.as_bytes()).await
}

/// Serves one echo connection until the peer goes away.
pub async fn echo(library: &str, stream: TcpStream, deflate: bool) -> Result<(), BoxError> {
    stream.set_nodelay(true)?;
    match library {
        "wscore" => {
            let config = wscore_config(deflate);
            let mut ws = wscore::tokio::accept_with(stream, config, |_| Ok(wscore::Accept::new())).await?;
            while let Some(message) = ws.next().await {
                ws.send_owned(message?).await?;
            }
        }
        "tungstenite" => {
            let mut ws = tokio_tungstenite::accept_async(stream).await?;
            while let Some(message) = ws.next().await {
                let message = message?;
                if message.is_text() || message.is_binary() {
                    ws.send(message).await?;
                }
            }
        }
        "fastwebsockets" => {
            use fastwebsockets::{FragmentCollector, OpCode, Role, WebSocket};
            let mut stream = stream;
            fastwebsockets_handshake(&mut stream).await?;
            let mut ws = FragmentCollector::new(WebSocket::after_handshake(stream, Role::Server));
            loop {
                let frame = ws.read_frame().await?;
                match frame.opcode {
                    OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
                    OpCode::Close => break,
                    _ => {}
                }
            }
        }
        "tokio-websockets" => {
            let (_request, mut ws) = tokio_websockets::ServerBuilder::new().accept(stream).await?;
            while let Some(message) = ws.next().await {
                let message = message?;
                if message.is_text() || message.is_binary() {
                    ws.send(message).await?;
                }
            }
        }
        "ratchet" => {
            use ratchet_rs::{Message, PayloadType, SubprotocolRegistry, WebSocketConfig};
            let upgrader = ratchet_rs::accept_with(
                stream,
                WebSocketConfig::default(),
                ratchet_deflate(),
                SubprotocolRegistry::default(),
            )
            .await?;
            let mut ws = upgrader.upgrade().await?.websocket;
            let mut buf = bytes::BytesMut::new();
            loop {
                match ws.read(&mut buf).await? {
                    Message::Text => {
                        std::str::from_utf8(&buf)?;
                        ws.write(&buf, PayloadType::Text).await?;
                    }
                    Message::Binary => ws.write(&buf, PayloadType::Binary).await?,
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => {}
                }
                buf.clear();
            }
        }
        "soketto" => {
            let (mut sender, mut receiver) = soketto_accept(stream, deflate).await?;
            let mut data = Vec::new();
            loop {
                data.clear();
                if receiver.receive_data(&mut data).await?.is_text() {
                    sender.send_text(std::str::from_utf8(&data)?).await?;
                } else {
                    sender.send_binary(&data).await?;
                }
                sender.flush().await?;
            }
        }
        other => return Err(format!("no echo server for {other}").into()),
    }
    Ok(())
}

type SokettoPair = (soketto::connection::Sender<Compat<TcpStream>>, soketto::connection::Receiver<Compat<TcpStream>>);

async fn soketto_accept(stream: TcpStream, deflate: bool) -> Result<SokettoPair, BoxError> {
    use soketto::handshake::{Server, server::Response};
    let mut server = Server::new(stream.compat());
    if deflate {
        server.add_extension(Box::new(soketto::extension::deflate::Deflate::new(soketto::Mode::Server)));
    }
    let key = server.receive_request().await?.key();
    server.send_response(&Response::Accept { key, protocol: None }).await?;
    let mut builder = server.into_builder();
    builder.set_max_message_size(64 << 20);
    Ok(builder.finish())
}

/// One accepted connection of a broadcast, in its library's type.
pub enum Client {
    /// wscore's tokio adapter.
    Wscore(wscore::tokio::WebSocket<TcpStream>),
    /// tokio-tungstenite.
    Tungstenite(tokio_tungstenite::WebSocketStream<TcpStream>),
    /// fastwebsockets.
    Fast(fastwebsockets::WebSocket<TcpStream>),
    /// tokio-websockets.
    Tws(tokio_websockets::WebSocketStream<TcpStream>),
    /// ratchet, with its deflate extension.
    Ratchet(ratchet_rs::WebSocket<TcpStream, ratchet_rs::deflate::Deflate>),
    /// soketto's sending half (the receiving half is kept alive beside it).
    Soketto(soketto::connection::Sender<Compat<TcpStream>>, soketto::connection::Receiver<Compat<TcpStream>>),
}

/// Accepts one broadcast client (`wscore_plain` is wscore sending each
/// message on its own, without `PreparedMessage`).
pub async fn accept(library: &str, stream: TcpStream, deflate: bool) -> Result<Client, BoxError> {
    stream.set_nodelay(true)?;
    Ok(match library {
        "wscore" | "wscore_plain" => {
            let config = wscore_config(deflate);
            Client::Wscore(wscore::tokio::accept_with(stream, config, |_| Ok(wscore::Accept::new())).await?)
        }
        "tungstenite" => Client::Tungstenite(tokio_tungstenite::accept_async(stream).await?),
        "fastwebsockets" => {
            let mut stream = stream;
            fastwebsockets_handshake(&mut stream).await?;
            Client::Fast(fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server))
        }
        "tokio-websockets" => Client::Tws(tokio_websockets::ServerBuilder::new().accept(stream).await?.1),
        "ratchet" => {
            use ratchet_rs::{SubprotocolRegistry, WebSocketConfig};
            let upgrader = ratchet_rs::accept_with(
                stream,
                WebSocketConfig::default(),
                ratchet_deflate(),
                SubprotocolRegistry::default(),
            )
            .await?;
            Client::Ratchet(upgrader.upgrade().await?.websocket)
        }
        "soketto" => {
            let (sender, receiver) = soketto_accept(stream, deflate).await?;
            Client::Soketto(sender, receiver)
        }
        other => return Err(format!("no broadcast server for {other}").into()),
    })
}

/// Sends every message to every client, in order, each library its best
/// way; text messages.
///
/// * wscore: one `PreparedMessage` per message (framed once; with
///   `deflate`, compressed once by a `MessageCompressor` at level 1 kept
///   across messages), `send_prepared` on each connection: the frame is
///   shared, not copied (from 2 KiB; smaller ones are copied);
/// * wscore_plain: `send(Message::Text(..))` on each connection (framed,
///   and compressed, per connection), for what preparing saves;
/// * tungstenite and tokio-websockets: a `Message` built once, and
///   `send(message.clone())` on each (a clone is a reference count);
/// * fastwebsockets: `write_frame(Frame::text(Payload::Borrowed(..)))` on
///   each (it has no shared message type; a server frame needs no mask,
///   so the payload is written from the borrowed slice);
/// * ratchet and soketto: `write` / `send_text` + `flush` on each
///   (compressing per connection: neither can prepare a message).
pub async fn broadcast(
    library: &str,
    clients: &mut [Client],
    messages: &[String],
    deflate: bool,
) -> Result<(), BoxError> {
    let mut compressor = wscore::deflate::MessageCompressor::new(1, 15);
    for text in messages {
        match library {
            "wscore" => {
                let message = wscore::Message::Text(text);
                let prepared = if deflate {
                    wscore::PreparedMessage::with_compressor(message, &mut compressor)
                } else {
                    wscore::PreparedMessage::new(message)
                };
                for client in clients.iter_mut() {
                    let Client::Wscore(ws) = client else { unreachable!() };
                    ws.send_prepared(&prepared).await?;
                }
            }
            "wscore_plain" => {
                for client in clients.iter_mut() {
                    let Client::Wscore(ws) = client else { unreachable!() };
                    ws.send(wscore::Message::Text(text)).await?;
                }
            }
            "tungstenite" => {
                let message = tokio_tungstenite::tungstenite::Message::Text(text.clone().into());
                for client in clients.iter_mut() {
                    let Client::Tungstenite(ws) = client else { unreachable!() };
                    ws.send(message.clone()).await?;
                }
            }
            "tokio-websockets" => {
                let message = tokio_websockets::Message::text(text.clone());
                for client in clients.iter_mut() {
                    let Client::Tws(ws) = client else { unreachable!() };
                    ws.send(message.clone()).await?;
                }
            }
            "fastwebsockets" => {
                use fastwebsockets::{Frame, Payload};
                for client in clients.iter_mut() {
                    let Client::Fast(ws) = client else { unreachable!() };
                    ws.write_frame(Frame::text(Payload::Borrowed(text.as_bytes()))).await?;
                }
            }
            "ratchet" => {
                for client in clients.iter_mut() {
                    let Client::Ratchet(ws) = client else { unreachable!() };
                    ws.write(text.as_bytes(), ratchet_rs::PayloadType::Text).await?;
                }
            }
            "soketto" => {
                for client in clients.iter_mut() {
                    let Client::Soketto(sender, _) = client else { unreachable!() };
                    sender.send_text(text).await?;
                    sender.flush().await?;
                }
            }
            other => return Err(format!("no broadcast for {other}").into()),
        }
    }
    Ok(())
}
