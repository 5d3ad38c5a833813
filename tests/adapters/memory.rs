//! What an idle connection costs while the application waits in `recv`
//! (async adapters: a blocking connection waiting in `read` holds a whole
//! thread, whose stack dwarfs its buffers). Measured with the counting
//! allocator, which counts per thread: the read is polled on the test's
//! own thread.

use std::sync::mpsc;

use wscore::Config;

use crate::counting;
use crate::harness::{self, AsyncAdapter, Ws, on_thread};
use crate::raw::Raw;

/// What waiting for input may cost on top of an idle connection: the
/// target for a whole idle connection is 2 KiB, adapter included.
const PENDING_READ_BUDGET: i64 = 1024;

pub(crate) async fn pending_recv_holds_no_read_buffer<A: AsyncAdapter>() {
    let (listener, addr) = harness::listen();
    let (done, wait) = mpsc::channel::<()>();
    // A client that connects and then says nothing.
    let peer = on_thread(move || {
        let _raw = Raw::connect(addr);
        wait.recv().unwrap();
    });
    let mut ws = A::accept(listener, Config::default()).await.unwrap();
    let before = counting::current();
    // One poll: nothing to read, so the read is left pending, as it is
    // for any connection idling in `recv`.
    assert!(harness::poll_at_most(1, ws.recv()).await.is_none(), "nothing was sent");
    let held = counting::current() - before;
    done.send(()).unwrap();
    peer.await;
    assert!(held <= PENDING_READ_BUDGET, "a pending recv holds {held} more heap bytes (budget {PENDING_READ_BUDGET})");
}
