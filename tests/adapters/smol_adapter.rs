//! The futures-io adapter (`wscore::futures`) on smol: its global executor
//! for spawned tasks, `smol::block_on` for the test, and
//! `smol::net::TcpStream`.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use smol::net::TcpStream;
use wscore::{Accept, ClientHandshake, Config};

use crate::harness::{self, Adapter, AsyncAdapter, Res, Task};

pub(crate) struct Smol;

impl Adapter for Smol {
    fn block_on<F: Future>(future: F) -> F::Output {
        smol::block_on(future)
    }

    fn spawn<F>(future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        // A smol task is cancelled when its handle is dropped; the handle
        // lives in the returned task.
        Task::new(smol::spawn(harness::catching(future)))
    }

    async fn sleep(d: Duration) {
        smol::Timer::after(d).await;
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
        let listener = smol::net::TcpListener::try_from(listener)?;
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok(wscore::futures::accept_with(stream, config, |_| Ok(Accept::new())).await?)
    }
}

impl AsyncAdapter for Smol {
    async fn timeout<F: Future + Send>(d: Duration, future: F) -> Option<F::Output> {
        // `or` polls the operation first, then the timer.
        smol::future::or(async { Some(future.await) }, async {
            smol::Timer::after(d).await;
            None
        })
        .await
    }
}

harness::async_ws!(futures, TcpStream);

common_tests!(Smol);
tests!(Smol => closing::failure_half_closes_at_once);
async_tests!(Smol);
