//! The blocking echo server, one thread per connection: every text or
//! binary message comes back unchanged. (`echo_server` is the tokio one.)
//!
//! ```text
//! cargo run --release --example echo_server_blocking [ADDRESS] [--no-deflate]
//! ```
//!
//! `ADDRESS` defaults to `127.0.0.1:9001`; a bare port (`9002`) means
//! `127.0.0.1:PORT`. One thread per connection, default [`Config`] limits,
//! and permessage-deflate accepted when a client offers it (default
//! [`DeflateConfig`]) unless `--no-deflate` is given.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::thread;

use wscore::deflate::DeflateConfig;
use wscore::{Config, MessageBuf, blocking};

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let deflate = !args.iter().any(|a| a == "--no-deflate");
    let arg = args.iter().find(|a| !a.starts_with("--")).cloned().unwrap_or_else(|| "127.0.0.1:9001".into());
    let addr = if arg.bytes().all(|b| b.is_ascii_digit()) { format!("127.0.0.1:{arg}") } else { arg };
    let listener = TcpListener::bind(&addr)?;
    eprintln!("echo server listening on ws://{}", listener.local_addr()?);
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                thread::spawn(move || {
                    if let Err(e) = serve(stream, deflate) {
                        eprintln!("connection ended: {e}");
                    }
                });
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
    }
    Ok(())
}

fn serve(stream: TcpStream, deflate: bool) -> io::Result<()> {
    let mut config = Config::default();
    config.deflate = deflate.then(DeflateConfig::default);
    let mut ws = blocking::accept_with(stream, config, |_request| Ok(wscore::Accept::new()))?;
    // The received message borrows the connection, so it is copied out
    // before being sent back, into storage reused for every message.
    let mut copy = MessageBuf::new();
    loop {
        let reply = match ws.read()? {
            None => return Ok(()),
            Some(message) => copy.set(message),
        };
        ws.send(reply)?;
    }
}
