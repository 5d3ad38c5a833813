//! The blocking adapter (`wscore::blocking`) on threads: every task is a
//! thread, so the facade's `async fn`s may block.
//!
//! Not instantiated here: cancelled operations (a blocking call cannot be
//! cancelled; the adapter's only way out is a socket timeout, which fails
//! the connection) and split halves (the blocking `WebSocket` has none;
//! two threads would drive a split `Connection` themselves, as
//! `tests/split.rs` does).

use std::future::Future;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use wscore::blocking::{self, WebSocket};
use wscore::{Accept, CloseCode, Config, Connection, Event, MessageKind};

use crate::harness::{self, Adapter, Fail, Msg, Piece, Res, Task, Ws};

pub(crate) struct Blocking;

impl Adapter for Blocking {
    fn block_on<F: Future>(future: F) -> F::Output {
        harness::block_on(future)
    }

    fn spawn<F>(future: F) -> Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        harness::on_thread(move || harness::block_on(future))
    }

    async fn sleep(d: Duration) {
        // Blocks only this task's own thread.
        thread::sleep(d);
    }

    type Ws = WebSocket<TcpStream>;

    async fn connect(addr: SocketAddr, config: Config) -> Res<Self::Ws> {
        // Over a plain TcpStream (`connect` would wrap it for wss://), so
        // both ends of a test have the same type.
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let handshake = wscore::ClientHandshake::new(&format!("ws://{addr}/")).map_err(wscore::Error::from)?;
        let (mut ws, _response) = blocking::client(stream, handshake, config)?;
        // What `connect` sets up for its TcpStream: read timeouts for the
        // timers, a half-close for lingering.
        ws.set_timeout_hook(Some(TcpStream::set_read_timeout));
        ws.set_shutdown_hook(Some(|s: &TcpStream| s.shutdown(std::net::Shutdown::Write)));
        Ok(ws)
    }

    async fn accept(listener: TcpListener, config: Config) -> Res<Self::Ws> {
        let (stream, _) = listener.accept()?;
        Ok(blocking::accept_with(stream, config, |_| Ok(Accept::new()))?)
    }
}

impl Ws for WebSocket<TcpStream> {
    async fn send(&mut self, message: &Msg) -> Res<()> {
        Ok(WebSocket::send(self, message.as_message())?)
    }

    async fn feed(&mut self, message: &Msg) -> Res<()> {
        Ok(WebSocket::write(self, message.as_message())?)
    }

    async fn flush(&mut self) -> Res<()> {
        Ok(WebSocket::flush(self)?)
    }

    async fn send_chunk(&mut self, kind: MessageKind, data: &[u8], fin: bool) -> Res<()> {
        Ok(WebSocket::send_chunk(self, kind, data, fin)?)
    }

    async fn ping(&mut self, payload: &[u8]) -> Res<()> {
        Ok(WebSocket::ping(self, payload)?)
    }

    async fn recv(&mut self) -> Res<Option<Msg>> {
        Ok(self.read()?.map(Msg::of))
    }

    async fn recv_chunk(&mut self) -> Res<Option<Piece>> {
        // `read` refuses chunks; `next_event` is the blocking way to them.
        loop {
            match self.next_event()? {
                Event::Chunk(chunk) => {
                    return Ok(Some(Piece { kind: chunk.kind, data: chunk.data.to_vec(), fin: chunk.fin }));
                }
                Event::Message(message) => {
                    return Ok(Some(Piece { kind: message.kind(), data: message.as_bytes().to_vec(), fin: true }));
                }
                Event::Closed(closed) => {
                    let error = closed.error;
                    self.finish()?;
                    return error.map_or(Ok(None), |e| Err(Fail::Ws(e)));
                }
                _ => {}
            }
        }
    }

    async fn close(&mut self, code: CloseCode, reason: &str) -> Res<()> {
        Ok(WebSocket::close(self, code, reason)?)
    }

    fn set_streaming(&mut self, streaming: bool) {
        self.connection_mut().set_streaming(streaming);
    }

    fn connection(&self) -> &Connection {
        WebSocket::connection(self)
    }
}

common_tests!(Blocking);
tests!(Blocking => closing::failure_half_closes_at_once);
