//! An axum app whose `/ws` route upgrades into a wscore WebSocket that
//! echoes every message, over HTTP/1.1 (`GET`, `101`) and, since
//! `axum::serve` announces extended CONNECT when axum's `http2` feature is
//! on, over HTTP/2 (RFC 8441 `CONNECT`, `200`) alike: the route takes any
//! method and lets wscore decide.
//!
//! ```text
//! cargo run --example axum --features hyper -- [ADDRESS]
//! cargo run --example client --features tokio -- ws://127.0.0.1:3000/ws --deflate
//! ```
//!
//! `ADDRESS` defaults to `127.0.0.1:3000`. permessage-deflate is accepted
//! when offered; the `echo` subprotocol is chosen when offered. A request
//! that is no valid upgrade gets wscore's HTTP error (a wrong
//! `Sec-WebSocket-Version` a `426`, say). `tests/hyper.rs` runs this app.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::Response;
use axum::routing::any;
use futures_util::StreamExt;
use wscore::deflate::DeflateConfig;
use wscore::{Accept, Config};

/// The app, with the configuration every WebSocket gets.
pub(crate) fn app(config: Config) -> Router {
    Router::new().route("/ws", any(websocket)).with_state(config)
}

/// Answers the upgrade; the WebSocket exists once axum sent the answer,
/// so it is awaited in a task of its own.
async fn websocket(State(config): State<Config>, mut request: Request) -> Response<String> {
    let upgrade = wscore::hyper::upgrade_with(&mut request, config, |request| {
        let echo = request.protocols().any(|p| p == "echo");
        Ok(if echo { Accept::new().protocol("echo") } else { Accept::new() })
    });
    match upgrade {
        Ok((response, upgrading)) => {
            tokio::spawn(async move {
                match upgrading.await {
                    Ok(ws) => echo(ws).await,
                    Err(e) => eprintln!("upgrade failed: {e}"),
                }
            });
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Sends every message back, owned, until the peer closes; the closing
/// handshake is answered while `next` waits.
async fn echo(mut ws: wscore::hyper::WebSocket) {
    while let Some(Ok(message)) = ws.next().await {
        if ws.send_owned(message).await.is_err() {
            break;
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".into());
    let mut config = Config::default();
    config.deflate = Some(DeflateConfig::default());
    let listener = tokio::net::TcpListener::bind(&address).await?;
    eprintln!("listening on ws://{}/ws", listener.local_addr()?);
    axum::serve(listener, app(config)).await
}
