//! Runs the Autobahn|Testsuite client cases against its fuzzing server,
//! echoing every message, then asks it to write the report.
//!
//! ```text
//! cargo run --release --example autobahn_client [ws://127.0.0.1:9001] [AGENT] [--no-deflate]
//! ```
//!
//! permessage-deflate is offered with default settings unless `--no-deflate`.

use std::io;

use wscore::deflate::DeflateConfig;
use wscore::{Config, Message, MessageBuf, blocking};

fn main() -> io::Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let mut config = Config::default();
    if !all.iter().any(|a| a == "--no-deflate") {
        config.deflate = Some(DeflateConfig::default());
    }
    let mut args = all.into_iter().filter(|a| !a.starts_with("--"));
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
    let mut ended_with_error = 0;
    for case in 1..=count {
        // Cases that test our failure handling end in an error by design;
        // the verdicts are in the suite's report, not here.
        if let Err(e) = run_case(&format!("{base}/runCase?case={case}&agent={agent}"), &config) {
            if std::env::var_os("AUTOBAHN_VERBOSE").is_some() {
                eprintln!("case {case}: {e}");
            }
            ended_with_error += 1;
        }
    }
    eprintln!("{ended_with_error} of {count} cases ended with an error (expected for failure and unimplemented cases)");
    // The suite writes its report and may drop this connection while exiting.
    if let Ok((mut ws, _)) = blocking::connect(&format!("{base}/updateReports?agent={agent}&shutdownOnComplete=true")) {
        while let Ok(Some(_)) = ws.read() {}
    }
    Ok(())
}

fn run_case(url: &str, config: &Config) -> io::Result<()> {
    let (mut ws, _) = blocking::connect_with(url, config.clone())?;
    let mut copy = MessageBuf::new();
    loop {
        let reply = match ws.read()? {
            None => return Ok(()),
            Some(message) => copy.set(message),
        };
        ws.send(reply)?;
    }
}
