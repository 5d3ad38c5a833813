//! A line-oriented client: connects to a URL, sends every line read from
//! stdin as a text message, and prints every message that comes back.
//!
//! ```text
//! cargo run --example client -- ws://127.0.0.1:9001 [--deflate]
//! ```
//!
//! `--deflate` offers permessage-deflate with the default settings.

use std::io::{self, BufRead};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wscore::deflate::DeflateConfig;
use wscore::{CloseCode, Config, Message, blocking};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let mut config = Config::default();
    if args.iter().any(|a| a == "--deflate") {
        config.deflate = Some(DeflateConfig::default());
    }
    let (mut ws, response) = blocking::connect_with(&url, config)?;
    eprintln!("connected to {url} (subprotocol: {:?}, deflate: {:?})", response.protocol(), response.deflate());

    // stdin is read on its own thread; the socket is polled with a short
    // read timeout so that lines and incoming messages interleave.
    let (lines_tx, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    ws.set_timeout_hook(None);
    ws.get_ref().set_read_timeout(Some(Duration::from_millis(50)))?;
    loop {
        match lines.try_recv() {
            Ok(line) => ws.send(Message::Text(&line?))?,
            Err(mpsc::TryRecvError::Disconnected) => break,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        match ws.next_event() {
            Ok(wscore::Event::Message(Message::Text(text))) => println!("{text}"),
            Ok(wscore::Event::Message(Message::Binary(bytes))) => println!("<{} bytes>", bytes.len()),
            Ok(wscore::Event::Closed(closed)) => {
                eprintln!("closed: {closed:?}");
                return ws.finish();
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) => return Err(e),
        }
    }
    ws.close(CloseCode::NORMAL, "")
}
