//! The futures-io adapter (`wscore::futures`) on async-std's global
//! runtime, over `async_std::net::TcpStream`.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use async_std::net::TcpStream;
use wscore::{Accept, ClientHandshake, Config};

use crate::harness::{self, Adapter, AsyncAdapter, Res, Task};

pub(crate) struct AsyncStd;

impl Adapter for AsyncStd {
    fn block_on<F: Future>(future: F) -> F::Output {
        async_std::task::block_on(future)
    }

    fn spawn<F>(future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Task::new(async_std::task::spawn(harness::catching(future)))
    }

    async fn sleep(d: Duration) {
        async_std::task::sleep(d).await;
    }

    type Ws = wscore::futures::WebSocket<TcpStream>;

    async fn connect(addr: SocketAddr, config: Config) -> Res<Self::Ws> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let handshake = ClientHandshake::new(&format!("ws://{addr}/")).map_err(wscore::Error::from)?;
        let (ws, _response) = wscore::futures::client(stream, handshake, config).await?;
        Ok(ws)
    }

    async fn accept(listener: TcpListener, config: Config) -> Res<Self::Ws> {
        listener.set_nonblocking(true)?;
        let listener = async_std::net::TcpListener::from(listener);
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok(wscore::futures::accept_with(stream, config, |_| Ok(Accept::new())).await?)
    }
}

impl AsyncAdapter for AsyncStd {
    async fn timeout<F: Future + Send>(d: Duration, future: F) -> Option<F::Output> {
        async_std::future::timeout(d, future).await.ok()
    }
}

harness::async_ws!(futures, TcpStream);

common_tests!(AsyncStd);
tests!(AsyncStd =>
    // async-std's `TcpStream::poll_close` only flushes (async-io's
    // `Async::poll_close`), so the adapter's half-close is no half-close:
    // the peer sees no end of stream until the close timeout passes.
    #[ignore = "async-std's TcpStream cannot half-close through futures-io (poll_close only flushes); \
                documented in wscore::futures"]
    closing::failure_half_closes_at_once,
);
async_tests!(AsyncStd);
