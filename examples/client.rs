//! A line-oriented client on tokio: connects to a URL, sends every line read
//! from stdin as a text message, and prints every message that comes back.
//! A closed stdin closes the connection.
//!
//! ```text
//! cargo run --example client --features tokio -- ws://127.0.0.1:9001 [--deflate]
//! ```
//!
//! `--deflate` offers permessage-deflate with the default settings.

use tokio::io::{AsyncBufReadExt, BufReader};
use wscore::deflate::DeflateConfig;
use wscore::{CloseCode, Config, Message};

#[tokio::main]
async fn main() -> Result<(), wscore::tokio::Error> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let mut config = Config::default();
    if args.iter().any(|a| a == "--deflate") {
        config.deflate = Some(DeflateConfig::default());
    }
    let (mut ws, response) = wscore::tokio::connect_with(&url, config).await?;
    eprintln!("connected to {url} (subprotocol: {:?}, deflate: {:?})", response.protocol(), response.deflate());
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        // `recv` is cancel-safe: when a line wins the race, no message is lost.
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) => ws.send(Message::Text(&line)).await?,
                None => break,
            },
            message = ws.recv() => match message? {
                Some(Message::Text(text)) => println!("{text}"),
                Some(Message::Binary(bytes)) => println!("<{} bytes>", bytes.len()),
                None => {
                    eprintln!("closed: {:?}", ws.connection().closed());
                    return Ok(());
                }
            },
        }
    }
    ws.close(CloseCode::NORMAL, "").await
}
