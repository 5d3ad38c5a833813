//! The receive side's byte buffers: a `Vec<u8>`, or with the `bytes`
//! feature a `BytesMut`, so that received messages can be split off as
//! shared [`Bytes`](bytes::Bytes) without a copy. Both offer the same
//! vector-like methods the receive half uses.

#[cfg(feature = "bytes")]
pub(crate) type Buf = bytes::BytesMut;

#[cfg(not(feature = "bytes"))]
pub(crate) type Buf = alloc::vec::Vec<u8>;
