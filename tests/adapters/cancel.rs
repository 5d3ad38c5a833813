//! Cancellation (async adapters only; a blocking call cannot be
//! cancelled): reads dropped at random points lose nothing, and a send
//! dropped while it waits queued its whole message or nothing.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use wscore::CloseCode;

use crate::backpressure::{HIGH_WATER, MESSAGE, OVERHEAD, high_water_config, numbered, read_numbered_until_close};
use crate::harness::{
    self, AsyncAdapter, Msg, Piece, Res, Rng, Ws, binary_of, config_with_deflate, on_thread, text_of,
};
use crate::raw::Raw;

/// The `seq`th message the server sends: mostly small, every 40th 200 KiB,
/// every 150th 1 MiB (so that a read is cancelled in the middle of
/// messages that take many reads), text and binary by turns, each starting
/// with its number.
fn nth(seq: usize) -> Msg {
    let len = match seq {
        s if s % 150 == 149 => 1 << 20,
        s if s % 40 == 39 => 200 * 1024,
        s => 16 + (s * 37) % 2000,
    };
    let head = format!("{seq:08}");
    if seq.is_multiple_of(2) {
        Msg::Text(head + &text_of(len, seq as u64))
    } else {
        let mut data = head.into_bytes();
        data.extend(binary_of(len, seq as u64));
        Msg::Binary(data)
    }
}

const COUNT: usize = 600;

/// Runs one receive attempt that is cancelled at a random point: by the
/// runtime's timer after 0 to 200 µs (a zero timeout polls once), or
/// after 1 or 2 polls.
async fn attempt<A: AsyncAdapter, T>(rng: &mut Rng, receive: impl Future<Output = T> + Send) -> Option<T> {
    if rng.below(2) == 0 {
        A::timeout(Duration::from_micros(rng.below(200)), receive).await
    } else {
        harness::poll_at_most(1 + rng.below(2) as u32, receive).await
    }
}

/// A server that sends the `nth` messages, then closes. It sends each one
/// only once the reader has `taken` the one before, so that the reader
/// keeps running dry: its reads are then pending, waiting for the network,
/// and that is where cancellations land (a read of bytes already there
/// finishes in its first poll).
fn flood<A: AsyncAdapter>(
    deflate: bool,
    messages: Arc<Vec<Msg>>,
    taken: Arc<AtomicUsize>,
) -> (std::net::SocketAddr, harness::Task<Res<()>>) {
    harness::server::<A, _, _>(config_with_deflate(deflate), move |mut ws: A::Ws| async move {
        for (seq, message) in messages.iter().enumerate() {
            while seq > taken.load(Ordering::SeqCst) {
                A::sleep(Duration::from_micros(200)).await;
            }
            ws.send(message).await?;
        }
        ws.close(CloseCode::NORMAL, "flood over").await
    })
}

async fn cancelled_reads<A: AsyncAdapter>(deflate: bool) {
    let messages: Arc<Vec<Msg>> = Arc::new((0..COUNT).map(nth).collect());
    let taken = Arc::new(AtomicUsize::new(0));
    let (addr, server) = flood::<A>(deflate, Arc::clone(&messages), Arc::clone(&taken));
    let mut ws = A::connect(addr, config_with_deflate(deflate)).await.unwrap();
    let mut rng = Rng::new(0x5eed + deflate as u64);
    let (mut received, mut cancelled) = (0, 0);
    loop {
        match attempt::<A, _>(&mut rng, ws.recv()).await {
            None => cancelled += 1,
            Some(Ok(Some(message))) => {
                assert_eq!(message, messages[received], "message {received}, after {cancelled} cancelled reads");
                received += 1;
                taken.store(received, Ordering::SeqCst);
            }
            Some(Ok(None)) => break,
            Some(Err(e)) => panic!("after {received} messages and {cancelled} cancelled reads: {e:?}"),
        }
    }
    assert_eq!(received, COUNT);
    // A run in which no read was cancelled would prove nothing.
    assert!(cancelled >= COUNT / 6, "only {cancelled} reads were cancelled");
    server.await.unwrap();
}

pub(crate) async fn cancelled_reads_lose_nothing<A: AsyncAdapter>() {
    cancelled_reads::<A>(false).await;
}

pub(crate) async fn cancelled_reads_lose_nothing_deflate<A: AsyncAdapter>() {
    cancelled_reads::<A>(true).await;
}

pub(crate) async fn cancelled_chunk_reads_lose_nothing<A: AsyncAdapter>() {
    let messages: Arc<Vec<Msg>> = Arc::new((0..COUNT).map(nth).collect());
    let taken = Arc::new(AtomicUsize::new(0));
    let (addr, server) = flood::<A>(false, Arc::clone(&messages), Arc::clone(&taken));
    let mut ws = A::connect(addr, config_with_deflate(false)).await.unwrap();
    ws.set_streaming(true);
    let mut rng = Rng::new(0xc4a2c);
    let (mut received, mut cancelled) = (0, 0);
    let mut pieces: Vec<Piece> = Vec::new();
    loop {
        match attempt::<A, _>(&mut rng, ws.recv_chunk()).await {
            None => cancelled += 1,
            Some(Ok(Some(piece))) => {
                assert_eq!(piece.kind, messages[received].kind(), "message {received}");
                let fin = piece.fin;
                pieces.push(piece);
                if fin {
                    let data: Vec<u8> = pieces.drain(..).flat_map(|p| p.data).collect();
                    assert_eq!(messages[received].as_bytes(), &data[..], "message {received}");
                    received += 1;
                    taken.store(received, Ordering::SeqCst);
                }
            }
            Some(Ok(None)) => break,
            Some(Err(e)) => panic!("after {received} messages and {cancelled} cancelled reads: {e:?}"),
        }
    }
    assert_eq!(received, COUNT);
    assert!(cancelled >= COUNT / 6, "only {cancelled} reads were cancelled");
    server.await.unwrap();
}

/// Everything ever queued on `ws`: what is buffered plus what went out.
fn total_queued<W: Ws>(ws: &W) -> u64 {
    ws.connection().buffered_amount() as u64 + ws.connection().stats().bytes_transmitted
}

pub(crate) async fn cancelled_send_queues_all_or_nothing<A: AsyncAdapter>() {
    let (listener, addr) = harness::listen();
    let (start_reading, wait) = std::sync::mpsc::channel::<()>();
    let peer = on_thread(move || {
        let mut raw = Raw::accept(listener);
        wait.recv().unwrap();
        read_numbered_until_close(&mut raw)
    });
    let mut ws = A::connect(addr, high_water_config()).await.unwrap();
    let bound = (HIGH_WATER + MESSAGE + OVERHEAD) as u64;

    // `send` writes everything it queued, so against a peer that never
    // reads it is soon pending; a send that times out is dropped.
    let mut queued = 0;
    let mut refused_in_a_row = 0;
    while refused_in_a_row < 3 {
        let before = total_queued(&ws);
        let outcome = A::timeout(Duration::from_millis(100), ws.send(&numbered(queued))).await;
        let added = total_queued(&ws) - before;
        match outcome {
            Some(result) => {
                result.unwrap();
                refused_in_a_row = 0;
                queued += 1;
            }
            // Pending and dropped: the whole message went into the queue,
            // or none of it.
            None if added == 0 => refused_in_a_row += 1,
            None => {
                assert!(added >= MESSAGE as u64 && added <= (MESSAGE + OVERHEAD) as u64, "{added} bytes queued");
                refused_in_a_row = 0;
                queued += 1;
            }
        }
        let buffered = ws.connection().buffered_amount() as u64;
        assert!(buffered <= bound, "{buffered} bytes buffered after {queued} messages");
        assert!(queued * MESSAGE < crate::backpressure::UNBOUNDED, "{queued} messages to a peer that reads nothing");
    }
    // Refused three times: the buffer is at the mark and stays there.
    assert!(ws.connection().buffered_amount() >= HIGH_WATER);

    start_reading.send(()).unwrap();
    ws.close(CloseCode::NORMAL, "").await.unwrap();
    assert_eq!(peer.await, queued, "every queued message arrived once, whole and in order");
}
