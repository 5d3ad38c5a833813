//! Heap bytes held per idle connection, for each library and role.
//!
//! For every library a counting global allocator measures the live heap
//! before and after creating N connected pairs over in-memory streams, of
//! which only one side (server or client) is kept; the growth divided by N
//! is what one such idle connection holds. Two moments are measured:
//!
//! * `handshake`: right after the opening handshake (wscore, tungstenite and
//!   tokio-websockets perform it over the in-memory stream);
//!   fastwebsockets has no handshake of its own outside hyper, so there it
//!   is right after construction (`after_handshake`);
//! * `after 1 KiB echo`: after the client sent one 1 KiB text message and
//!   the server sent one back, so buffers that grow on first use show.
//!
//! The in-memory streams hold a fixed amount of heap of their own
//! (`mem::STREAM_HEAP_BYTES`, their data buffers being freed once drained);
//! it is subtracted. The connection object itself is stored inline in a
//! preallocated vector, so its `size_of` is reported apart from the heap.
//!
//! `cargo run --release --bin idle_memory [N]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::time::Duration;

use wscore_compare::data;
use wscore_compare::mem::{self, MemStream, STREAM_HEAP_BYTES};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call to the system allocator unchanged and only
// counts the sizes it was asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Relaxed);
            BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Relaxed);
            BLOCKS.fetch_add(1, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> (isize, isize) {
    (LIVE.load(Relaxed), BLOCKS.load(Relaxed))
}

/// The moment at which a connection is measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Moment {
    Handshake,
    Echo,
}

/// A connected pair of one library, ready to be measured.
trait Library {
    type Client;
    type Server;
    const NAME: &'static str;
    /// Whether its "handshake" moment is after a real opening handshake.
    const HANDSHAKE: bool = true;
    /// Whether the pair talks through a [`MemStream`] (whose heap is subtracted).
    const STREAMS: bool = true;
    fn pair(rt: &tokio::runtime::Runtime, moment: Moment) -> (Self::Client, Self::Server);
}

fn echo_text() -> String {
    data::text(1024)
}

// ----- wscore ---------------------------------------------------------------

/// Moves what `from` has to send into `to`, as a socket would: copied
/// straight from `poll_transmit` (no buffer changes hands).
fn transfer(from: &mut wscore::Connection, to: &mut wscore::Connection) {
    let out = from.poll_transmit();
    let n = out.len();
    // Handshakes and 1 KiB messages: well under the bound on unprocessed input.
    assert_eq!(to.receive(Duration::ZERO, out), n);
    from.advance_transmit(n);
}

/// One 1 KiB text message each way.
fn wscore_echo(client: &mut wscore::Connection, server: &mut wscore::Connection) {
    use wscore::{Event, Message};
    let text = echo_text();
    client.send_text(&text).unwrap();
    transfer(client, server);
    assert!(matches!(server.poll_event(), Some(Event::Message(Message::Text(t))) if t.len() == 1024));
    assert!(server.poll_event().is_none());
    server.send_text(&text).unwrap();
    transfer(server, client);
    assert!(matches!(client.poll_event(), Some(Event::Message(Message::Text(t))) if t.len() == 1024));
    assert!(client.poll_event().is_none());
}

struct Wscore;

impl Library for Wscore {
    type Client = wscore::Connection;
    type Server = wscore::Connection;
    const NAME: &'static str = "wscore";
    const STREAMS: bool = false;

    fn pair(_: &tokio::runtime::Runtime, moment: Moment) -> (Self::Client, Self::Server) {
        use wscore::{Accept, ClientHandshake, Config, Connection, Event};
        let now = Duration::ZERO;
        let mut client =
            Connection::client(ClientHandshake::new("ws://localhost/").unwrap(), Config::default(), now).unwrap();
        let mut server = Connection::server(Config::default(), now).unwrap();
        transfer(&mut client, &mut server);
        while let Some(event) = server.poll_event() {
            if let Event::Request(_) = event {
                server.accept(&Accept::new()).unwrap();
            }
        }
        transfer(&mut server, &mut client);
        assert!(matches!(client.poll_event(), Some(Event::Connected(_))));
        assert!(client.poll_event().is_none());
        if moment == Moment::Echo {
            wscore_echo(&mut client, &mut server);
        }
        (client, server)
    }
}

/// wscore started with `frames_only` (no handshake), for comparison with
/// fastwebsockets' construction.
struct WscoreFramesOnly;

impl Library for WscoreFramesOnly {
    type Client = wscore::Connection;
    type Server = wscore::Connection;
    const NAME: &'static str = "wscore frames_only";
    const HANDSHAKE: bool = false;
    const STREAMS: bool = false;

    fn pair(_: &tokio::runtime::Runtime, moment: Moment) -> (Self::Client, Self::Server) {
        use wscore::{Config, Connection, Role};
        let now = Duration::ZERO;
        let mut client = Connection::frames_only(Role::Client, Config::default(), now).unwrap();
        let mut server = Connection::frames_only(Role::Server, Config::default(), now).unwrap();
        if moment == Moment::Echo {
            wscore_echo(&mut client, &mut server);
        }
        (client, server)
    }
}

// ----- tungstenite ----------------------------------------------------------

struct Tungstenite;

impl Library for Tungstenite {
    type Client = tungstenite::WebSocket<MemStream>;
    type Server = tungstenite::WebSocket<MemStream>;
    const NAME: &'static str = "tungstenite";

    fn pair(_: &tokio::runtime::Runtime, moment: Moment) -> (Self::Client, Self::Server) {
        use tungstenite::{HandshakeError, Message};
        let (a, b) = mem::pair_with(true);
        // The client writes its request, then would block on the response.
        let mid = match tungstenite::client("ws://localhost/", a) {
            Err(HandshakeError::Interrupted(mid)) => mid,
            Ok(_) => unreachable!("no response yet"),
            Err(e) => panic!("{e}"),
        };
        let mut server = tungstenite::accept(b).map_err(|e| e.to_string()).unwrap();
        let (mut client, _response) = mid.handshake().map_err(|e| e.to_string()).unwrap();
        if moment == Moment::Echo {
            let text = echo_text();
            client.send(Message::text(text.clone())).unwrap();
            assert!(matches!(server.read().unwrap(), Message::Text(t) if t.len() == 1024));
            server.send(Message::text(text)).unwrap();
            assert!(matches!(client.read().unwrap(), Message::Text(t) if t.len() == 1024));
        }
        (client, server)
    }
}

// ----- fastwebsockets -------------------------------------------------------

struct FastWebSockets;

impl Library for FastWebSockets {
    type Client = fastwebsockets::WebSocket<MemStream>;
    type Server = fastwebsockets::FragmentCollector<MemStream>;
    const NAME: &'static str = "fastwebsockets";
    const HANDSHAKE: bool = false;

    fn pair(rt: &tokio::runtime::Runtime, moment: Moment) -> (Self::Client, Self::Server) {
        use fastwebsockets::{FragmentCollector, Frame, OpCode, Payload, Role, WebSocket};
        let (a, b) = mem::pair_with(true);
        let mut client = WebSocket::after_handshake(a, Role::Client);
        let mut server = FragmentCollector::new(WebSocket::after_handshake(b, Role::Server));
        if moment == Moment::Echo {
            rt.block_on(async {
                let text = echo_text();
                let frame = Frame::text(Payload::Owned(text.clone().into_bytes()));
                client.write_frame(frame).await.unwrap();
                let got = server.read_frame().await.unwrap();
                assert!(got.opcode == OpCode::Text && got.payload.len() == 1024);
                server.write_frame(Frame::text(Payload::Owned(text.into_bytes()))).await.unwrap();
                let got = client.read_frame().await.unwrap();
                assert!(got.opcode == OpCode::Text && got.payload.len() == 1024);
            });
        }
        (client, server)
    }
}

// ----- tokio-websockets -----------------------------------------------------

struct TokioWebSockets;

impl Library for TokioWebSockets {
    type Client = tokio_websockets::WebSocketStream<MemStream>;
    type Server = tokio_websockets::WebSocketStream<MemStream>;
    const NAME: &'static str = "tokio-websockets";

    fn pair(rt: &tokio::runtime::Runtime, moment: Moment) -> (Self::Client, Self::Server) {
        use futures_util::{SinkExt, StreamExt};
        use tokio_websockets::{ClientBuilder, Message, ServerBuilder};
        let (a, b) = mem::pair_with(true);
        rt.block_on(async {
            let connect = async {
                ClientBuilder::new().uri("ws://localhost/").unwrap().connect_on(a).await.map(|(ws, _response)| ws)
            };
            let accept = async { ServerBuilder::new().accept(b).await.map(|(_request, ws)| ws) };
            let (client, server) = tokio::join!(connect, accept);
            let (mut client, mut server) = (client.unwrap(), server.unwrap());
            if moment == Moment::Echo {
                let text = echo_text();
                client.send(Message::text(text.clone())).await.unwrap();
                let got = server.next().await.unwrap().unwrap();
                assert_eq!(got.as_text().map(str::len), Some(1024));
                server.send(Message::text(text)).await.unwrap();
                let got = client.next().await.unwrap().unwrap();
                assert_eq!(got.as_text().map(str::len), Some(1024));
            }
            (client, server)
        })
    }
}

// ----- measurement ----------------------------------------------------------

/// Live heap bytes and blocks per kept connection: (server, client).
fn measure<L: Library>(rt: &tokio::runtime::Runtime, n: usize, moment: Moment) -> [(f64, f64); 2] {
    // Anything created lazily on first use (thread-local RNGs, ...) is
    // created here, outside the measurement.
    drop(L::pair(rt, moment));
    let stream = if L::STREAMS { STREAM_HEAP_BYTES as f64 } else { 0.0 };
    let stream_blocks = if L::STREAMS { 2.0 } else { 0.0 };
    let per = |before: (isize, isize), after: (isize, isize)| {
        ((after.0 - before.0) as f64 / n as f64 - stream, (after.1 - before.1) as f64 / n as f64 - stream_blocks)
    };

    let mut servers = Vec::with_capacity(n);
    let before = live();
    for _ in 0..n {
        let (_client, server) = L::pair(rt, moment);
        servers.push(server);
    }
    let server = per(before, live());
    drop(servers);

    let mut clients = Vec::with_capacity(n);
    let before = live();
    for _ in 0..n {
        let (client, _server) = L::pair(rt, moment);
        clients.push(client);
    }
    let client = per(before, live());
    drop(clients);
    [server, client]
}

fn row<L: Library>(rt: &tokio::runtime::Runtime, n: usize) {
    let [hs_server, hs_client] = measure::<L>(rt, n, Moment::Handshake);
    let [echo_server, echo_client] = measure::<L>(rt, n, Moment::Echo);
    let name = if L::HANDSHAKE { L::NAME.to_string() } else { format!("{} (no handshake)", L::NAME) };
    let cell = |(bytes, blocks): (f64, f64)| format!("{bytes:>9.0} B / {blocks:>4.1}");
    println!(
        "| {name:<34} | {} | {} | {} | {} | {:>5} / {:>5} |",
        cell(hs_server),
        cell(hs_client),
        cell(echo_server),
        cell(echo_client),
        size_of::<L::Server>(),
        size_of::<L::Client>(),
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).map_or(1000, |a| a.parse().expect("N must be a number"));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    println!("Heap per idle connection (bytes / live allocations), mean of {n}; stream heap subtracted.");
    println!("The object itself (size_of, stored inline) is not heap and is listed apart.");
    println!();
    println!(
        "| {:<34} | {:>18} | {:>18} | {:>18} | {:>18} | {:>13} |",
        "library",
        "server, handshake",
        "client, handshake",
        "server, 1 KiB echo",
        "client, 1 KiB echo",
        "size_of s / c"
    );
    println!("|{:-<36}|{:->20}|{:->20}|{:->20}|{:->20}|{:->15}|", "", ":", ":", ":", ":", ":");
    row::<Wscore>(&rt, n);
    row::<WscoreFramesOnly>(&rt, n);
    row::<Tungstenite>(&rt, n);
    row::<FastWebSockets>(&rt, n);
    row::<TokioWebSockets>(&rt, n);
}
