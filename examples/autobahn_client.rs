//! Runs the Autobahn|Testsuite client cases against its fuzzing server,
//! echoing every message, then asks it to write the report.
//!
//! ```text
//! cargo run --release --example autobahn_client [ws://127.0.0.1:9001] [AGENT]
//! ```

use std::io;

use wscore::{Message, blocking};

fn main() -> io::Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wscore".into());

    let count: u32 = {
        let (mut ws, _) = blocking::connect(&format!("{base}/getCaseCount"))?;
        let n = match ws.read()? {
            Some(Message::Text(n)) => n.trim().parse().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            other => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{other:?}"))),
        };
        let _ = ws.read();
        n
    };
    eprintln!("running {count} cases as agent {agent}");
    for case in 1..=count {
        if let Err(e) = run_case(&format!("{base}/runCase?case={case}&agent={agent}")) {
            eprintln!("case {case}: {e}");
        }
    }
    let (mut ws, _) = blocking::connect(&format!("{base}/updateReports?agent={agent}"))?;
    while ws.read()?.is_some() {}
    Ok(())
}

fn run_case(url: &str) -> io::Result<()> {
    let (mut ws, _) = blocking::connect(url)?;
    let mut text = String::new();
    let mut binary = Vec::new();
    loop {
        let reply = match ws.read()? {
            None => return Ok(()),
            Some(Message::Text(t)) => {
                text.clear();
                text.push_str(t);
                Message::Text(&text)
            }
            Some(Message::Binary(b)) => {
                binary.clear();
                binary.extend_from_slice(b);
                Message::Binary(&binary)
            }
        };
        ws.send(reply)?;
    }
}
