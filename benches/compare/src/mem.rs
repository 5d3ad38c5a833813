//! An in-memory socket: two one-way byte pipes, each a growable buffer
//! shared by the writing end and the reading end.
//!
//! It stands in for a TCP socket with unlimited buffer space and no system
//! calls. A write (plain or vectored) appends to the peer's pipe; a read
//! copies out as much as is there and fits, or at most a socket-sized
//! piece ([`MemStream::set_delivery`]). Reading an empty pipe is
//! `WouldBlock` for `std::io::Read` and `Pending` (waking the reader on the
//! next write) for tokio's `AsyncRead`, as on a non-blocking socket. The
//! same type serves the blocking libraries (tungstenite) and the async ones
//! (fastwebsockets, tokio-websockets), so they all pay the same for I/O.

use std::cell::RefCell;
use std::io::{self, IoSlice, Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Delivery, Reads};

#[derive(Default)]
struct PipeBuf {
    data: Vec<u8>,
    /// Bytes before `pos` have been read.
    pos: usize,
    /// Free the buffer once it has been read empty (the idle-memory
    /// measurement sets this, so that a drained pipe holds no heap).
    release_when_drained: bool,
    reader: Option<Waker>,
    /// The most each read may return (none: as much as fits).
    reads: Option<Reads>,
}

impl PipeBuf {
    fn write(&mut self, bufs: &[IoSlice<'_>]) -> usize {
        let mut n = 0;
        for buf in bufs {
            self.data.extend_from_slice(buf);
            n += buf.len();
        }
        if n > 0
            && let Some(waker) = self.reader.take()
        {
            waker.wake();
        }
        n
    }

    /// Hands the unread bytes to `take`, which copies out a prefix and says
    /// how long; `None` if the pipe is empty.
    fn read_with(&mut self, take: impl FnOnce(&[u8]) -> usize) -> Option<usize> {
        let available = &self.data[self.pos..];
        if available.is_empty() {
            return None;
        }
        let limit = self.reads.as_mut().map_or(usize::MAX, Reads::next_limit);
        let n = take(&available[..available.len().min(limit)]);
        self.pos += n;
        if self.pos == self.data.len() {
            self.data.clear();
            self.pos = 0;
            if self.release_when_drained {
                self.data = Vec::new();
            }
        }
        Some(n)
    }
}

/// One end of an in-memory connection.
pub struct MemStream {
    rx: Rc<RefCell<PipeBuf>>,
    tx: Rc<RefCell<PipeBuf>>,
}

/// Two connected ends: what one writes, the other reads.
pub fn pair() -> (MemStream, MemStream) {
    pair_with(false)
}

/// Like [`pair`]; with `release_when_drained` a pipe frees its buffer each
/// time it is read empty, so idle streams hold only their two small shared
/// cells (see [`STREAM_HEAP_BYTES`]).
pub fn pair_with(release_when_drained: bool) -> (MemStream, MemStream) {
    let new = || Rc::new(RefCell::new(PipeBuf { release_when_drained, ..PipeBuf::default() }));
    let (a, b) = (new(), new());
    (MemStream { rx: a.clone(), tx: b.clone() }, MemStream { rx: b, tx: a })
}

/// Heap held by the two pipe cells (each an `Rc<RefCell<PipeBuf>>` whose
/// data buffer is empty); shared by both ends, so held by either alone once
/// the other is dropped.
pub const STREAM_HEAP_BYTES: usize = 2 * (2 * size_of::<usize>() + size_of::<RefCell<PipeBuf>>());

impl MemStream {
    /// Reads from this end return at most what `delivery` allows each
    /// time, as reads from a socket do.
    pub fn set_delivery(&self, delivery: Delivery) {
        self.rx.borrow_mut().reads = (delivery != Delivery::Whole).then(|| delivery.reads());
    }

    /// Bytes written to this end and not yet read by the peer.
    pub fn unread_by_peer(&self) -> usize {
        let tx = self.tx.borrow();
        tx.data.len() - tx.pos
    }
}

impl Read for MemStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let copy = |available: &[u8]| {
            let n = available.len().min(buf.len());
            buf[..n].copy_from_slice(&available[..n]);
            n
        };
        self.rx.borrow_mut().read_with(copy).ok_or_else(|| io::ErrorKind::WouldBlock.into())
    }
}

impl Write for MemStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.tx.borrow_mut().write(&[IoSlice::new(buf)]))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(self.tx.borrow_mut().write(bufs))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MemStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut rx = self.rx.borrow_mut();
        // `put_slice` copies into the caller's spare capacity without
        // zeroing the rest of it, like a read from a TcpStream.
        let copy = |available: &[u8]| {
            let n = available.len().min(buf.remaining());
            buf.put_slice(&available[..n]);
            n
        };
        match rx.read_with(copy) {
            Some(_) => Poll::Ready(Ok(())),
            None => {
                rx.reader = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

impl AsyncWrite for MemStream {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.tx.borrow_mut().write(&[IoSlice::new(buf)])))
    }

    fn poll_write_vectored(self: Pin<&mut Self>, _: &mut Context<'_>, bufs: &[IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.tx.borrow_mut().write(bufs)))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
