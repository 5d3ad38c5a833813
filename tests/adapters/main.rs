//! One behaviour suite for every adapter: blocking, tokio, and futures-io
//! on async-std and on smol.
//!
//! Each behaviour is written once, as an `async fn` generic over an
//! [`Adapter`](harness::Adapter) (or, for cancellation and split halves,
//! which only the async adapters have, an
//! [`AsyncAdapter`](harness::AsyncAdapter)); each adapter's module
//! implements the trait for its runtime and instantiates the behaviours as
//! `#[test]`s with [`common_tests!`] and [`async_tests!`]. Filter by
//! adapter with its module name:
//!
//! ```text
//! cargo test --all-features --test adapters -- smol_adapter::
//! ```
//!
//! Everything runs over loopback TCP. Where the other end has to misbehave
//! (unmasked frames, never reading, never answering pings) it is a raw peer
//! on a `std` socket in a thread ([`raw`]). No assertion depends on speed:
//! wall-clock waits are timeouts against hangs, or the time a peer has to
//! stay silent for a timer to fire.

#![cfg(feature = "std")]
// The counting allocator implements `GlobalAlloc`; Cargo.toml denies unsafe
// code so that only a test crate that measures memory can allow it.
#![allow(unsafe_code)]

#[path = "../common/counting.rs"]
mod counting;

mod harness;
mod raw;

mod backpressure;
mod closing;
mod control;
mod echo;
mod fragments;

#[cfg(any(feature = "tokio", feature = "futures-io"))]
mod cancel;
#[cfg(any(feature = "tokio", feature = "futures-io"))]
mod memory;
#[cfg(any(feature = "tokio", feature = "futures-io"))]
mod split;

/// Instantiates behaviours for an adapter: one `#[test]` per behaviour,
/// named after it.
macro_rules! tests {
    ($adapter:ty => $($(#[$attr:meta])* $module:ident :: $behaviour:ident),* $(,)?) => {
        $(
            #[test]
            $(#[$attr])*
            fn $behaviour() {
                $crate::harness::run::<$adapter, _>(
                    concat!(module_path!(), "::", stringify!($behaviour)),
                    $crate::$module::$behaviour::<$adapter>(),
                );
            }
        )*
    };
}

/// The behaviours every adapter has (each adapter's module lists the few
/// that one adapter cannot pass yet, ignored there with the reason).
macro_rules! common_tests {
    ($adapter:ty) => {
        tests!($adapter =>
            echo::echo_every_size_and_kind,
            echo::echo_every_size_and_kind_deflate,
            fragments::chunked_send_arrives_whole,
            fragments::chunked_send_arrives_whole_deflate,
            fragments::streamed_receive_in_pieces,
            fragments::streamed_receive_in_pieces_deflate,
            control::peer_ping_answered_while_reading,
            control::heartbeat_pings_a_silent_peer,
            control::idle_peer_is_dropped_with_1001,
            control::answering_peer_outlives_the_idle_timeout,
            closing::client_closes_with_code_and_reason,
            closing::server_closes_with_code_and_reason,
            closing::protocol_violations_close_with_the_right_code,
            closing::lingering_ends_at_the_close_answer_after_a_payload_violation,
            closing::lingering_ends_at_the_close_answer_after_a_header_violation,
            backpressure::send_waits_at_the_high_water_mark,
        );
    };
}

/// The behaviours only the async adapters have: cancellation, split
/// halves, `Stream`/`Sink`, the memory of a pending read.
#[cfg(any(feature = "tokio", feature = "futures-io"))]
macro_rules! async_tests {
    ($adapter:ty) => {
        tests!($adapter =>
            cancel::cancelled_reads_lose_nothing,
            cancel::cancelled_reads_lose_nothing_deflate,
            cancel::cancelled_chunk_reads_lose_nothing,
            cancel::cancelled_send_queues_all_or_nothing,
            split::split_reader_answers_pings_while_writer_idle,
            split::split_writer_sees_the_readers_error,
            split::split_close_through_the_writer,
            split::split_halves_work_at_once_then_reunite,
            split::stream_and_sink_of_owned_messages,
            memory::pending_recv_holds_no_read_buffer,
        );
    };
}

mod blocking_adapter;

#[cfg(feature = "tokio")]
mod tokio_adapter;

#[cfg(feature = "futures-io")]
mod async_std_adapter;

#[cfg(feature = "futures-io")]
mod smol_adapter;
