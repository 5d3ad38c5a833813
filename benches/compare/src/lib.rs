//! Shared pieces of the comparison benchmarks: the message contents, an
//! in-memory socket that every library writes to and reads from, one
//! sender→receiver harness per library, the TCP servers of each library and
//! a raw-TCP load generator.
//!
//! Every pipe harness does the same work per batch: the sending library
//! encodes (and, from a client, masks) `n` copies of one message and writes
//! them into the pipe, then the receiving library reads them back (in
//! socket-sized pieces when asked), unmasks them, validates text as UTF-8
//! and hands each one to the caller, who looks at its length.

pub mod counting;
pub mod data;
pub mod harness;
pub mod loadgen;
pub mod mem;
pub mod servers;
pub mod wire;

/// What a batch sends: one payload, as text or binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A binary message of pseudo-random bytes.
    Binary,
    /// A text message, mostly ASCII ([`data::text`]).
    Text,
    /// A text message, mostly multi-byte characters ([`data::dense_text`]).
    DenseText,
}

impl Kind {
    /// The name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Binary => "binary",
            Kind::Text => "text",
            Kind::DenseText => "dense",
        }
    }

    /// The kind a name from [`name`](Self::name) stands for.
    pub fn from_name(name: &str) -> Option<Self> {
        [Kind::Binary, Kind::Text, Kind::DenseText].into_iter().find(|k| k.name() == name)
    }

    /// Whether messages of this kind are text.
    pub fn is_text(self) -> bool {
        self != Kind::Binary
    }

    /// The payload every library sends for this kind and size.
    pub fn payload(self, size: usize) -> Vec<u8> {
        match self {
            Kind::Binary => data::binary(size),
            Kind::Text => data::text(size).into_bytes(),
            Kind::DenseText => data::dense_text(size).into_bytes(),
        }
    }
}

/// Which end of the connection sends the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// The client sends (masked frames), the server receives and unmasks.
    ClientToServer,
    /// The server sends (unmasked frames), the client receives.
    ServerToClient,
}

impl Direction {
    /// The name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Direction::ClientToServer => "c2s",
            Direction::ServerToClient => "s2c",
        }
    }
}

/// How the receiving side gets the bytes of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Everything written so far, in one read (the pipe benchmark's
    /// original mode: it hides what sockets do).
    Whole,
    /// Reads of at most this many bytes, as from a socket whose receive
    /// buffer or the reader's buffer holds that much.
    Max(usize),
    /// Reads of random sizes from 1 byte to 64 KiB, log-uniformly
    /// distributed (as many reads under 100 bytes as between 4 and 64 KiB),
    /// from a fixed seed, so frame headers and UTF-8 characters are split
    /// at every possible point.
    Random,
}

impl Delivery {
    /// The name used in benchmark ids.
    pub fn name(self) -> String {
        match self {
            Delivery::Whole => "whole".into(),
            Delivery::Max(n) if n % 1024 == 0 => format!("{}k", n / 1024),
            Delivery::Max(n) => format!("{n}"),
            Delivery::Random => "random".into(),
        }
    }

    /// The sizes of successive reads; the same sequence every time.
    pub fn reads(self) -> Reads {
        Reads { delivery: self, state: 0x2545_F491_4F6C_DD1D }
    }
}

/// The sizes of successive reads under a [`Delivery`].
#[derive(Clone, Debug)]
pub struct Reads {
    delivery: Delivery,
    state: u64,
}

impl Reads {
    /// The most bytes the next read may return.
    pub fn next_limit(&mut self) -> usize {
        match self.delivery {
            Delivery::Whole => usize::MAX,
            Delivery::Max(n) => n,
            Delivery::Random => {
                // xorshift64: the exponent picks the scale (2^0 .. 2^16),
                // the low bits the size within it.
                self.state ^= self.state << 13;
                self.state ^= self.state >> 7;
                self.state ^= self.state << 17;
                let bits = ((self.state >> 32) % 17) as u32;
                1 + (self.state as usize & ((1usize << bits) - 1))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_reads_cover_small_and_large() {
        let mut reads = Delivery::Random.reads();
        let sizes: Vec<usize> = (0..10_000).map(|_| reads.next_limit()).collect();
        assert!(sizes.iter().all(|&s| (1..=65536).contains(&s)));
        assert!(sizes.iter().filter(|&&s| s < 16).count() > 1000);
        assert!(sizes.iter().filter(|&&s| s > 16384).count() > 500);
        let mut again = Delivery::Random.reads();
        assert!(sizes.iter().all(|&s| s == again.next_limit()), "the same sequence every time");
    }
}
