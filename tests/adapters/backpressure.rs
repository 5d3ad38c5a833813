//! Backpressure: against a peer that never reads, queuing stops at the
//! high-water mark instead of buffering without bound, and once the peer
//! reads, everything queued arrives, whole and in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wscore::{CloseCode, Config};

use crate::harness::{self, Adapter, Msg, Ws, on_thread};
use crate::raw::{BINARY, CLOSE, Raw};

pub(crate) const HIGH_WATER: usize = 64 * 1024;
pub(crate) const MESSAGE: usize = 16 * 1024;
/// A frame's header and mask, at most.
pub(crate) const OVERHEAD: usize = 14;
/// Far more than any loopback socket pair buffers (a few MiB): a sender
/// that gets this far without waiting buffers without bound.
pub(crate) const UNBOUNDED: usize = 256 << 20;

/// The `seq`th message: its number, then a pattern derived from it, so
/// that the peer can check each message is whole, in its place, and once.
pub(crate) fn numbered(seq: usize) -> Msg {
    let mut data = vec![(seq % 251) as u8; MESSAGE];
    data[..8].copy_from_slice(&(seq as u64).to_be_bytes());
    Msg::Binary(data)
}

/// Reads `numbered` messages from a raw peer until the close frame,
/// checking each, answers the close, and returns how many came.
pub(crate) fn read_numbered_until_close(raw: &mut Raw) -> usize {
    let mut count = 0;
    loop {
        let frame = raw.frame();
        if frame.opcode == CLOSE {
            assert_eq!(frame.close_code(), Some(1000), "{frame:?}");
            raw.send_close(1000, "");
            return count;
        }
        assert!(frame.fin && frame.opcode == BINARY, "{frame:?}");
        assert_eq!(Msg::Binary(frame.payload), numbered(count), "message {count}");
        count += 1;
    }
}

pub(crate) fn high_water_config() -> Config {
    let mut config = Config::default();
    config.write_buffer_high_water = HIGH_WATER;
    config
}

/// What the sending task reports while it runs.
#[derive(Default)]
struct Progress {
    queued: AtomicUsize,
    most_buffered: AtomicUsize,
    stop: AtomicBool,
}

pub(crate) async fn send_waits_at_the_high_water_mark<A: Adapter>() {
    let (listener, addr) = harness::listen();
    let progress = Arc::new(Progress::default());
    let theirs = Arc::clone(&progress);
    // The sender is the server, queuing with `feed` (blocking: `write`),
    // which writes only once the buffer reaches the mark.
    let sender = A::spawn(async move {
        let mut ws = A::accept(listener, high_water_config()).await.unwrap();
        let mut seq = 0;
        while !theirs.stop.load(Ordering::SeqCst) {
            ws.feed(&numbered(seq)).await.unwrap();
            seq += 1;
            let buffered = ws.connection().buffered_amount();
            theirs.most_buffered.fetch_max(buffered, Ordering::SeqCst);
            theirs.queued.store(seq, Ordering::SeqCst);
            assert!(seq * MESSAGE < UNBOUNDED, "{seq} messages queued to a peer that reads nothing");
        }
        ws.close(CloseCode::NORMAL, "").await.unwrap();
        seq
    });
    let (start_reading, wait) = mpsc::channel::<()>();
    let peer = on_thread(move || {
        let mut raw = Raw::connect(addr);
        wait.recv().unwrap();
        let count = read_numbered_until_close(&mut raw);
        raw.expect_eof();
        count
    });

    // Wait until the sender is stuck: the buffer has reached the mark (it
    // must, before a sender can wait) and no message was queued for half a
    // second.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = (usize::MAX, Instant::now());
    loop {
        A::sleep(Duration::from_millis(50)).await;
        let queued = progress.queued.load(Ordering::SeqCst);
        let at_mark = progress.most_buffered.load(Ordering::SeqCst) >= HIGH_WATER;
        if queued != last.0 {
            last = (queued, Instant::now());
        } else if at_mark && last.1.elapsed() >= Duration::from_millis(500) {
            break;
        }
        assert!(Instant::now() < deadline, "the sender never had to wait ({queued} messages queued)");
    }
    let stuck_at = last.0;
    let most = progress.most_buffered.load(Ordering::SeqCst);
    assert!(most <= HIGH_WATER + MESSAGE + OVERHEAD, "{most} bytes buffered, over the mark {HIGH_WATER} + a message");

    // Once the peer reads, the sender goes on, and everything arrives.
    progress.stop.store(true, Ordering::SeqCst);
    start_reading.send(()).unwrap();
    let sent = sender.await;
    assert!(sent > stuck_at, "the sender was waiting in a send, which finished when the peer read");
    assert_eq!(peer.await, sent);
}
