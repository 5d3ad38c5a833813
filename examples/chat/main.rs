//! A broadcast chat server: every text or binary message a client sends is
//! sent to every connected client, the sender included, so each browser tab
//! shows the whole conversation in the same order. It serves its own page
//! (plain HTML and JavaScript, `index.html` beside this file) at `/` and
//! the chat's WebSocket at `/ws`, on one port.
//!
//! ```text
//! cargo run --release --example chat --features tokio -- [ADDRESS] [--no-deflate] [--ping SECS]
//! ```
//!
//! then open the printed `http://` address in a few tabs. `ADDRESS`
//! defaults to `127.0.0.1:8000`; a bare port (`8001`) means
//! `127.0.0.1:PORT`, and port 0 picks a free one. permessage-deflate is
//! accepted when the browser offers it unless `--no-deflate`. Heartbeats:
//! a ping after `SECS` seconds (default 30) without hearing from a client,
//! and the client dropped (close 1001) after three times that, so a tab on
//! a laptop that went to sleep does not stay in the room; `--ping 0` turns
//! them off.
//!
//! # What it shows
//! - **One port for the page and the socket.** The request head is read
//!   (at most 8 KiB, within 10 s) and parsed first. A request without
//!   `Upgrade: websocket` gets the page at `/` (404 elsewhere, 405 for other
//!   methods), with a `Content-Length` and `Connection: close`. An upgrade
//!   is handed to [`wscore::tokio::accept_with`] on a stream that replays
//!   the bytes already read, so the handshake sees the request whole; it
//!   refuses paths other than `/ws` (404) and pages from other origins (403).
//! - **Broadcast with [`PreparedMessage`].** Each message is framed once,
//!   and compressed once when it is long enough (`with_deflate`), however
//!   many clients there are; every client's queue gets a handle to the same
//!   bytes, not a copy. The client set is a map under a mutex that is never
//!   held across an `.await`; broadcasting enqueues under it, so every
//!   client sees messages in the same order. Join and leave notices are
//!   text messages starting with `* `; a client can send such a line too,
//!   since each message goes out byte for byte as it came (a real chat
//!   would wrap messages, in JSON with the sender, say).
//! - **Split sockets.** Each connection is split into a
//!   [`ReadHalf`](wscore::tokio::ReadHalf), which receives, answers pings
//!   and runs the heartbeat, and a [`WriteHalf`](wscore::tokio::WriteHalf),
//!   which sends the client's queue; one task drives both (a `select!`
//!   with the room's signal that the client was disconnected), so a client
//!   whose socket is full stalls only its own writer.
//!
//! # Slow clients
//! Each client has a queue of [`QUEUE`] messages. Broadcasting never waits
//! for a client: a client whose queue is full is **disconnected** (not
//! skipped, which would silently leave holes in its conversation). It is
//! removed from the room at once, gets a close frame (1008, "too slow") if
//! its socket takes one within a second, and the others see it leave. So a
//! client holds at most its write buffer (`write_buffer_high_water`, set
//! to 256 KiB here, plus one message) and [`QUEUE`] messages of at most
//! 64 KiB each, which it shares with the other clients.
//!
//! `tests/browser/run.sh` runs this server and drives the page in headless
//! Chromium, with scripted clients for the heartbeat and the slow client.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use wscore::deflate::DeflateConfig;
use wscore::tokio::{ReadHalf, WriteHalf};
use wscore::{Accept, CloseCode, Config, Message, PreparedMessage, Reject, Request};

/// The page, compiled into the binary so the example is one file to run.
const PAGE: &str = include_str!("index.html");

/// Messages waiting for one client before it counts as too slow: enough to
/// ride out a burst, few enough that a stalled client is noticed quickly.
const QUEUE: usize = 64;

/// The largest message a client may send (and so the largest one queued):
/// chat lines are short, and this bounds what a queue can hold.
const MAX_MESSAGE: usize = 64 << 10;

/// The largest request head read before deciding what to serve; browsers
/// send well under 2 KiB.
const MAX_HEAD: usize = 8 << 10;

/// A client gets this long to send its request head (and to take an HTTP
/// response), so idle connections cannot pile up.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a disconnected slow client gets to take its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> io::Result<()> {
    let options = match Options::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}\nusage: chat [ADDRESS] [--no-deflate] [--ping SECS]");
            std::process::exit(2);
        }
    };
    let mut config = Config::default();
    config.max_message_size = MAX_MESSAGE;
    config.max_frame_size = MAX_MESSAGE;
    // The default (4 MiB) suits one fast peer; a room of many clients
    // should hold less for each, and the queue is the slack.
    config.write_buffer_high_water = 256 << 10;
    config.deflate = options.deflate.then(DeflateConfig::default);
    if let Some(interval) = options.ping {
        config.ping_interval = Some(interval);
        config.idle_timeout = Some(3 * interval);
    }
    let room = Arc::new(Room::new(config.deflate.clone()));
    let listener = TcpListener::bind(&options.address).await?;
    println!("chat listening on http://{}/", listener.local_addr()?);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors, say: retrying at once would spin.
                eprintln!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let room = Arc::clone(&room);
        let config = config.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(stream, &room, config).await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}

/// The command line.
struct Options {
    address: String,
    deflate: bool,
    ping: Option<Duration>,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = Self { address: "127.0.0.1:8000".into(), deflate: true, ping: Some(Duration::from_secs(30)) };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--no-deflate" => options.deflate = false,
                "--ping" => {
                    let secs = args.next().ok_or("--ping needs a number of seconds")?;
                    let secs: u64 = secs.parse().map_err(|e| format!("--ping {secs}: {e}"))?;
                    options.ping = (secs > 0).then(|| Duration::from_secs(secs));
                }
                flag if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
                port if port.bytes().all(|b| b.is_ascii_digit()) => options.address = format!("127.0.0.1:{port}"),
                address => options.address = address.into(),
            }
        }
        Ok(options)
    }
}

// ----- HTTP: the page, or the upgrade ---------------------------------------

/// What a request head asks for.
enum Route {
    /// A WebSocket upgrade, for the chat.
    Upgrade,
    /// A plain HTTP response, after which the connection closes.
    Respond(Response),
}

/// A plain HTTP response.
struct Response {
    status: &'static str,
    content_type: &'static str,
    body: &'static str,
    /// An extra header line with its CRLF, or empty.
    extra: &'static str,
    /// A `HEAD` request: the headers of the `GET` response, no body.
    head_only: bool,
}

impl Response {
    fn error(status: &'static str) -> Self {
        Self { status, content_type: "text/plain; charset=utf-8", body: status, extra: "", head_only: false }
    }
}

async fn serve(mut stream: TcpStream, room: &Room, config: Config) -> Result<(), wscore::tokio::Error> {
    stream.set_nodelay(true)?;
    let Ok(read) = tokio::time::timeout(HTTP_TIMEOUT, read_head(&mut stream)).await else {
        return Ok(()); // Too slow to say what it wants.
    };
    let Some((head, route)) = read? else {
        return Ok(()); // Gone before a whole request head.
    };
    match route {
        Route::Upgrade => chat(Replay { prefix: head, offset: 0, inner: stream }, room, config).await,
        Route::Respond(response) => {
            // A client that never reads its response must not hold the task.
            let _ = tokio::time::timeout(HTTP_TIMEOUT, respond(&mut stream, &response)).await;
            Ok(())
        }
    }
}

/// Reads until a whole request head has arrived (or [`MAX_HEAD`] bytes
/// have, which gets a 431) and decides where it goes. Returns every byte
/// read, head and anything after it, for the WebSocket handshake to read
/// again; `None` if the client left first.
async fn read_head(stream: &mut TcpStream) -> io::Result<Option<(Vec<u8>, Route)>> {
    let mut buf = vec![0; MAX_HEAD];
    let mut len = 0;
    loop {
        let n = stream.read(&mut buf[len..]).await?;
        if n == 0 {
            return Ok(None);
        }
        len += n;
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        let route = match request.parse(&buf[..len]) {
            Ok(httparse::Status::Complete(_)) => route(&request),
            Ok(httparse::Status::Partial) if len < MAX_HEAD => continue,
            Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => {
                Route::Respond(Response::error("431 Request Header Fields Too Large"))
            }
            Err(_) => Route::Respond(Response::error("400 Bad Request")),
        };
        buf.truncate(len);
        return Ok(Some((buf, route)));
    }
}

fn route(request: &httparse::Request<'_, '_>) -> Route {
    let upgrade = request.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("upgrade")
            && h.value.split(|&b| b == b',').any(|token| token.trim_ascii().eq_ignore_ascii_case(b"websocket"))
    });
    if upgrade {
        // The handshake checks the rest (method, version, key) and answers
        // a bad request itself.
        return Route::Upgrade;
    }
    let method = request.method.unwrap_or_default();
    if method != "GET" && method != "HEAD" {
        let mut response = Response::error("405 Method Not Allowed");
        response.extra = "Allow: GET, HEAD\r\n";
        return Route::Respond(response);
    }
    let path = request.path.unwrap_or_default().split('?').next().unwrap_or_default();
    let mut response = match path {
        "/" | "/index.html" => Response {
            status: "200 OK",
            content_type: "text/html; charset=utf-8",
            body: PAGE,
            extra: "",
            head_only: false,
        },
        _ => Response::error("404 Not Found"),
    };
    response.head_only = method == "HEAD";
    Route::Respond(response)
}

async fn respond(stream: &mut TcpStream, response: &Response) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n{}\r\n",
        response.status,
        response.content_type,
        response.body.len(),
        response.extra,
    );
    stream.write_all(head.as_bytes()).await?;
    if !response.head_only {
        stream.write_all(response.body.as_bytes()).await?;
    }
    stream.shutdown().await
}

/// A stream that first hands back bytes already read from it: the request
/// head read to route the request, which the WebSocket handshake must see.
struct Replay<S> {
    prefix: Vec<u8>,
    offset: usize,
    inner: S,
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let rest = &this.prefix[this.offset..];
        if rest.is_empty() || buf.remaining() == 0 {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = rest.len().min(buf.remaining());
        buf.put_slice(&rest[..n]);
        this.offset += n;
        if this.offset == this.prefix.len() {
            // Replayed: the buffer is not needed for the connection's life.
            this.prefix = Vec::new();
            this.offset = 0;
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    // Shared (broadcast) payloads go out as their own slices in a vectored
    // write; say the socket supports it, or they would go one at a time.
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// ----- The chat -------------------------------------------------------------

/// Accepts the WebSocket, joins the room, and runs the client until it
/// leaves, fails or falls behind.
async fn chat<S>(stream: S, room: &Room, config: Config) -> Result<(), wscore::tokio::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let ws = wscore::tokio::accept_with(stream, config, decide).await?;
    let (mut reader, mut writer) = ws.split();
    let (id, mut queue, mut kicked) = room.join();
    let why = tokio::select! {
        // Checked first: once a client is disconnected, nothing more of
        // its queue is worth sending.
        biased;
        _ = &mut kicked => None,
        result = receive(&mut reader, room) => Some(result.map_or_else(|e| e.to_string(), |()| "closed".into())),
        result = transmit(&mut writer, &mut queue) => Some(result.map_or_else(|e| e.to_string(), |()| "removed".into())),
    };
    let why = match why {
        Some(why) => why,
        None => {
            // Bounded: a client that stopped reading never takes the frame.
            let _ = tokio::time::timeout(CLOSE_GRACE, writer.close(CloseCode::POLICY, "too slow")).await;
            "too slow".into()
        }
    };
    room.leave(id, &why);
    Ok(())
}

/// The handshake's decision: the chat lives at `/ws`, for pages of this
/// server only.
fn decide(request: &Request) -> Result<Accept<'_>, Reject<'_>> {
    if request.path().split('?').next() != Some("/ws") {
        return Err(Reject::new(404).body(b"not found\n"));
    }
    // Browsers send Origin and let any page open a WebSocket anywhere: keep
    // other sites' pages out of the room. Clients that are not browsers
    // send none.
    if let Some(origin) = request.header("origin") {
        let host = request.header("host").unwrap_or_default();
        let origin = origin.strip_prefix(b"http://").or_else(|| origin.strip_prefix(b"https://"));
        if !origin.is_some_and(|o| o.eq_ignore_ascii_case(host)) {
            return Err(Reject::new(403).body(b"this chat only takes its own page\n"));
        }
    }
    Ok(Accept::new())
}

/// Broadcasts every message the client sends, until it closes.
async fn receive<S: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut ReadHalf<S>,
    room: &Room,
) -> Result<(), wscore::tokio::Error> {
    // Borrowed: the message is framed straight from the receive buffer.
    while let Some(message) = reader.recv().await? {
        room.broadcast(&room.prepare(message));
    }
    Ok(())
}

/// Sends the client's queue, until the room drops the client.
async fn transmit<S: AsyncRead + AsyncWrite + Unpin>(
    writer: &mut WriteHalf<S>,
    queue: &mut mpsc::Receiver<PreparedMessage>,
) -> Result<(), wscore::tokio::Error> {
    while let Some(message) = queue.recv().await {
        writer.send_prepared(&message).await?;
    }
    Ok(())
}

/// The connected clients.
struct Room {
    clients: Mutex<HashMap<u64, Client>>,
    next_id: AtomicU64,
    deflate: Option<DeflateConfig>,
}

/// A client, as the room sees it.
struct Client {
    queue: mpsc::Sender<PreparedMessage>,
    /// Dropped, with the client, to tell its task it was disconnected.
    _kick: oneshot::Sender<()>,
}

impl Room {
    fn new(deflate: Option<DeflateConfig>) -> Self {
        Self { clients: Mutex::default(), next_id: AtomicU64::new(1), deflate }
    }

    fn clients(&self) -> MutexGuard<'_, HashMap<u64, Client>> {
        // Nothing panics while holding it, and the map stays valid anyway.
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Frames `message` once for every client.
    fn prepare(&self, message: Message<'_>) -> PreparedMessage {
        match &self.deflate {
            // The window we compress with must fit every client that
            // negotiated compression; we never offer less than our own
            // limit, so it is that (or the largest, 15). Clients without
            // compression get the plain frame.
            Some(deflate) => {
                PreparedMessage::with_deflate(message, deflate, deflate.server_max_window_bits.unwrap_or(15))
            }
            None => PreparedMessage::new(message),
        }
    }

    /// Adds a client: its id, its queue, and what fires if the room drops it.
    fn join(&self) -> (u64, mpsc::Receiver<PreparedMessage>, oneshot::Receiver<()>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (queue, receiver) = mpsc::channel(QUEUE);
        let (kick, kicked) = oneshot::channel();
        let online = {
            let mut clients = self.clients();
            clients.insert(id, Client { queue, _kick: kick });
            clients.len()
        };
        println!("client {id} joined ({online} online)");
        // After the insert, so the newcomer learns its own id first.
        self.notice(&format!("* client {id} joined ({online} online)"));
        (id, receiver, kicked)
    }

    /// Removes a client (if the room has not already) and tells the others.
    fn leave(&self, id: u64, why: &str) {
        let online = {
            let mut clients = self.clients();
            clients.remove(&id);
            clients.len()
        };
        println!("client {id} left: {why} ({online} online)");
        self.notice(&format!("* client {id} left ({online} online)"));
    }

    fn notice(&self, text: &str) {
        self.broadcast(&self.prepare(Message::Text(text)));
    }

    /// Queues `message` for every client without waiting for any, and
    /// disconnects those whose queue is full.
    fn broadcast(&self, message: &PreparedMessage) {
        let mut dropped = Vec::new();
        // Enqueuing under the lock puts messages in the same order in every
        // queue.
        self.clients().retain(|&id, client| match client.queue.try_send(message.clone()) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                dropped.push(id);
                false
            }
            // Its task is ending; it leaves the room itself.
            Err(TrySendError::Closed(_)) => true,
        });
        for id in dropped {
            println!("client {id} dropped: its queue of {QUEUE} messages is full");
        }
    }
}
