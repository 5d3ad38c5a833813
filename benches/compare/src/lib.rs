//! Shared pieces of the comparison benchmarks: the message contents, an
//! in-memory socket that every library writes to and reads from, and one
//! client→server harness per library.
//!
//! Every harness does the same work per batch: the client library encodes
//! (and masks) `n` copies of one message and writes them into the pipe, then
//! the server library reads them back, unmasks them, validates text as UTF-8
//! and hands each one to the caller, who looks at its length.

pub mod data;
pub mod harness;
pub mod mem;

/// What a batch sends: one payload, as text or binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A binary message.
    Binary,
    /// A text message.
    Text,
}

impl Kind {
    /// The name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Binary => "binary",
            Kind::Text => "text",
        }
    }
}
