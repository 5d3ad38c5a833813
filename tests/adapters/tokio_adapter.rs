//! The tokio adapter (`wscore::tokio`) on a multi-threaded tokio runtime,
//! a fresh one per test.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use tokio::net::TcpStream;
use wscore::{Accept, Config};

use crate::harness::{self, Adapter, AsyncAdapter, Res, Task};

pub(crate) struct Tokio;

impl Adapter for Tokio {
    fn block_on<F: Future>(future: F) -> F::Output {
        // Two workers, as many as the machine has cores: spawned tasks run
        // on them while the test's own future runs on this thread.
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(future)
    }

    fn spawn<F>(future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = tokio::spawn(harness::catching(future));
        Task::new(async move { handle.await.unwrap_or_else(|e| Err(e.into_panic())) })
    }

    async fn sleep(d: Duration) {
        tokio::time::sleep(d).await;
    }

    type Ws = wscore::tokio::WebSocket<TcpStream>;

    async fn connect(addr: SocketAddr, config: Config) -> Res<Self::Ws> {
        // Over a plain TcpStream (`connect` would wrap it for wss://), so
        // both ends of a test have the same type.
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let handshake = wscore::ClientHandshake::new(&format!("ws://{addr}/")).map_err(wscore::Error::from)?;
        let (ws, _response) = wscore::tokio::client(stream, handshake, config).await?;
        Ok(ws)
    }

    async fn accept(listener: TcpListener, config: Config) -> Res<Self::Ws> {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok(wscore::tokio::accept_with(stream, config, |_| Ok(Accept::new())).await?)
    }
}

impl AsyncAdapter for Tokio {
    async fn timeout<F: Future + Send>(d: Duration, future: F) -> Option<F::Output> {
        tokio::time::timeout(d, future).await.ok()
    }
}

harness::async_ws!(tokio, TcpStream);

common_tests!(Tokio);
tests!(Tokio => closing::failure_half_closes_at_once);
async_tests!(Tokio);
