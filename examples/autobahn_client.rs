//! Runs the Autobahn|Testsuite client cases against its fuzzing server with
//! the tokio adapter, echoing every message, then asks it to write the
//! report.
//!
//! ```text
//! cargo run --release --example autobahn_client --features tokio -- [ws://127.0.0.1:9001] [AGENT] [--no-deflate]
//! ```
//!
//! permessage-deflate is offered with default settings unless `--no-deflate`.

use futures_util::StreamExt;
use wscore::deflate::DeflateConfig;
use wscore::{Config, Message};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), wscore::tokio::Error> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let mut config = Config::default();
    if !all.iter().any(|a| a == "--no-deflate") {
        config.deflate = Some(DeflateConfig::default());
    }
    let mut args = all.into_iter().filter(|a| !a.starts_with("--"));
    let base = args.next().unwrap_or_else(|| "ws://127.0.0.1:9001".into());
    let agent = args.next().unwrap_or_else(|| "wscore".into());

    let count: u32 = {
        let (mut ws, _) = wscore::tokio::connect(&format!("{base}/getCaseCount")).await?;
        let count = match ws.recv().await? {
            Some(Message::Text(n)) => n.trim().parse().unwrap_or(0),
            _ => 0,
        };
        let _ = ws.recv().await;
        count
    };
    eprintln!("running {count} cases as agent {agent}");
    let mut ended_with_error = 0;
    for case in 1..=count {
        // Cases that test our failure handling end in an error by design;
        // the verdicts are in the suite's report, not here.
        if let Err(e) = run_case(&format!("{base}/runCase?case={case}&agent={agent}"), &config).await {
            if std::env::var_os("AUTOBAHN_VERBOSE").is_some() {
                eprintln!("case {case}: {e}");
            }
            ended_with_error += 1;
        }
    }
    eprintln!("{ended_with_error} of {count} cases ended with an error (expected for failure and unimplemented cases)");
    // The suite writes its report and may drop this connection while exiting.
    let url = format!("{base}/updateReports?agent={agent}&shutdownOnComplete=true");
    if let Ok((mut ws, _)) = wscore::tokio::connect(&url).await {
        while let Ok(Some(_)) = ws.recv().await {}
    }
    Ok(())
}

async fn run_case(url: &str, config: &Config) -> Result<(), wscore::tokio::Error> {
    let (mut ws, _) = wscore::tokio::connect_with(url, config.clone()).await?;
    while let Some(message) = ws.next().await {
        ws.send_owned(message?).await?;
    }
    Ok(())
}
