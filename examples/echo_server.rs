//! The echo server: every text or binary message comes back unchanged, on
//! a multi-threaded tokio runtime, one task per connection. Messages are
//! taken owned (split off the receive buffer) and sent back as they are,
//! so large payloads are never copied by the server.
//!
//! ```text
//! cargo run --release --example echo_server --features tokio -- [ADDRESS] [--no-deflate] [--ping SECS]
//! ```
//!
//! `ADDRESS` defaults to `127.0.0.1:9001`; a bare port (`9002`) means
//! `127.0.0.1:PORT`. Default [`Config`] limits; permessage-deflate accepted
//! when a client offers it unless `--no-deflate`; with `--ping SECS`, a
//! heartbeat ping after SECS seconds of silence and the connection dropped
//! (1001) after three times that.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::net::{TcpListener, TcpStream};
use wscore::deflate::DeflateConfig;
use wscore::{Accept, Config};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = Config::default();
    if !args.iter().any(|a| a == "--no-deflate") {
        config.deflate = Some(DeflateConfig::default());
    }
    if let Some(secs) = args.iter().position(|a| a == "--ping").and_then(|i| args.get(i + 1)) {
        let secs: u64 = secs.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        config.ping_interval = Some(Duration::from_secs(secs));
        config.idle_timeout = Some(Duration::from_secs(3 * secs));
    }
    let ping_value = args.iter().position(|a| a == "--ping").map(|i| i + 1);
    let arg = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && Some(*i) != ping_value)
        .map_or_else(|| "127.0.0.1:9001".to_owned(), |(_, a)| a.clone());
    let addr = if arg.bytes().all(|b| b.is_ascii_digit()) { format!("127.0.0.1:{arg}") } else { arg };
    let listener = TcpListener::bind(&addr).await?;
    eprintln!("echo server listening on ws://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, config).await {
                eprintln!("connection ended: {e}");
            }
        });
    }
}

async fn serve(stream: TcpStream, config: Config) -> Result<(), wscore::tokio::Error> {
    stream.set_nodelay(true)?;
    let mut ws = wscore::tokio::accept_with(stream, config, |_request| Ok(Accept::new())).await?;
    // Each message is owned: it is sent back without a copy. The stream
    // ends after the closing handshake (and its error, if it failed).
    while let Some(message) = ws.next().await {
        ws.send_owned(message?).await?;
    }
    Ok(())
}
