//! Round trips through `Compressor` → `Decompressor`, and checks with an
//! inflater independent of ours that no message refers back into an
//! earlier one when the context is not taken over.

use alloc::vec::Vec;
use alloc::{format, vec};

use miniz_oxide::inflate::decompress_to_vec;

use super::*;

/// Text in which every message repeats much of the others: records built
/// from a few names and words, plus a run of the message number.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let words = ["order", "shipped", "pending", "refund", "invoice", "priority", "express", "warehouse"];
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut s = format!("{seed}:");
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{{\"id\":{},\"status\":\"{}\"}},", x % 1000, words[(x >> 20) as usize % words.len()]));
    }
    s.truncate(len);
    s.into_bytes()
}

/// Bytes that do not compress, from a xorshift generator.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn params(no_context_takeover: bool, bits: u8) -> DeflateParams {
    DeflateParams {
        server_no_context_takeover: no_context_takeover,
        client_no_context_takeover: no_context_takeover,
        server_max_window_bits: bits,
        client_max_window_bits: bits,
    }
}

/// A client's compressor and the server's decompressor for what it sends.
fn pair(no_context_takeover: bool, bits: u8, level: u8) -> (Compressor, Decompressor) {
    let config = DeflateConfig { level, ..DeflateConfig::default() };
    let p = params(no_context_takeover, bits);
    (Compressor::new(p, Role::Client, &config), Decompressor::new(p, Role::Server, &config))
}

/// Compresses `message` in the given pieces (`fin` on the last only).
fn compress(c: &mut Compressor, message: &[u8], pieces: &[usize]) -> Vec<u8> {
    let mut out = vec![0xAA]; // appended to, not overwritten
    let mut rest = message;
    for &n in pieces {
        let (now, later) = rest.split_at(n.min(rest.len()));
        c.compress_into(now, false, &mut out);
        rest = later;
    }
    c.compress_into(rest, true, &mut out);
    assert_eq!(out[0], 0xAA);
    out.split_off(1)
}

/// Inflates one received message as the connection does: the payload,
/// then the tail, into output buffers of `room` bytes at a time. `Err`:
/// corrupt, or cut inside a block.
fn inflate(d: &mut Decompressor, payload: &[u8], room: usize) -> Result<Vec<u8>, ()> {
    let mut message = Vec::new();
    let mut ended = false;
    for input in [payload, &TAIL[..]] {
        let mut input = input;
        loop {
            let mut out = vec![0; room];
            let got = d.inflate(input, &mut out)?;
            message.extend_from_slice(&out[..got.written]);
            input = &input[got.consumed..];
            ended |= got.ended;
            if got.consumed == 0 && got.written == 0 {
                break;
            }
        }
        if ended {
            break;
        }
    }
    if !ended && !d.at_block_boundary() {
        // The message was cut inside a block: the tail was taken as data.
        return Err(());
    }
    d.end_message(ended);
    Ok(message)
}

/// Inflates `payload` as a whole stream of its own: with the tail and an
/// empty final block appended, through miniz's one-shot inflater, whose
/// output buffer does not wrap, so any distance reaching before the start
/// of this message fails.
fn inflate_alone(payload: &[u8]) -> Vec<u8> {
    let mut stream = payload.to_vec();
    stream.extend_from_slice(&TAIL);
    stream.extend_from_slice(&[0x03, 0x00]);
    decompress_to_vec(&stream).expect("a message that stands alone")
}

#[test]
fn round_trips_every_window_with_and_without_takeover() {
    for bits in 8..=15u8 {
        for no_context in [false, true] {
            for level in [1, 6] {
                let (mut c, mut d) = pair(no_context, bits, level);
                for i in 0..12u64 {
                    let message = match i % 4 {
                        0 => text(3000 + 200 * i as usize, i),
                        1 => Vec::new(),
                        2 => noise(700, i),
                        _ => text(40_000, i % 3),
                    };
                    let pieces: &[usize] = if i % 3 == 0 { &[] } else { &[1, 1000, 0, 333] };
                    let payload = compress(&mut c, &message, pieces);
                    let what = format!("bits {bits}, no_context {no_context}, level {level}, message {i}");
                    let room = if i % 2 == 0 { 4096 } else { 1 << 16 };
                    assert!(inflate(&mut d, &payload, room) == Ok(message.clone()), "{what}");
                    if no_context {
                        assert!(inflate_alone(&payload) == message, "{what}: stands alone");
                    }
                }
            }
        }
    }
}

#[test]
fn takeover_refers_back_to_earlier_messages() {
    // The counterpart of the no-takeover test below, and a check that it
    // can fail: with takeover, repeated messages do reach back.
    let (mut c, mut d) = pair(false, 15, 1);
    let message = text(4000, 1);
    let first = compress(&mut c, &message, &[]);
    let second = compress(&mut c, &message, &[]);
    assert!(second.len() < first.len() / 4, "{} then {}", first.len(), second.len());
    assert!(decompress_to_vec(&[&second[..], &TAIL, &[0x03, 0x00]].concat()).is_err());
    assert_eq!(inflate(&mut d, &first, 4096), Ok(message.clone()));
    assert_eq!(inflate(&mut d, &second, 4096), Ok(message));
}

#[test]
fn no_takeover_never_refers_into_an_earlier_message() {
    // One compressor reused for many messages that repeat each other (the
    // same text again, a prefix of it, the same text shifted): each must
    // inflate on its own, from a fresh inflater.
    for bits in [15, 12, 8] {
        for level in [1, 3, 6, 9] {
            let (mut c, _) = pair(true, bits, level);
            let base = text(5000, 7);
            let mut messages = vec![base.clone(), base.clone(), base[..100].to_vec(), base[3..].to_vec()];
            messages.extend((0..40).map(|i| base[i * 37..i * 37 + 700].to_vec()));
            messages.push(base.clone());
            for (i, message) in messages.iter().enumerate() {
                let pieces: &[usize] = if i % 2 == 0 { &[] } else { &[50, 2000] };
                let payload = compress(&mut c, message, pieces);
                assert!(inflate_alone(&payload) == *message, "bits {bits}, level {level}, message {i}");
            }
        }
    }
}

#[test]
fn state_is_reused_without_takeover_and_freed_by_release() {
    let (mut c, mut d) = pair(true, 15, 1);
    assert_eq!((c.memory(), d.memory()), (0, 0));
    let message = text(2000, 3);
    let payload = compress(&mut c, &message, &[]);
    inflate(&mut d, &payload, 4096).unwrap();
    let (cm, dm) = (c.memory(), d.memory());
    // Our encoder: a hash table of about twice the message, its tokens and
    // a Huffman code, not miniz's 312 KiB.
    assert!(cm > 16 * 1024 && cm < 40 * 1024 && dm > 48 * 1024, "{cm} {dm}");
    assert_eq!((c.releasable(), d.releasable()), (cm, dm));
    // Mid-message too, every piece stands alone: nothing to keep.
    let mut out = Vec::new();
    c.compress_into(&message, false, &mut out);
    assert_eq!(c.releasable(), c.memory());
    c.release();
    assert_eq!(c.memory(), 0);
    c.compress_into(&[], true, &mut out);
    d.inflate(&payload, &mut [0; 10]).unwrap();
    assert_eq!(d.releasable(), 0);
    d.release();
    assert_eq!(d.memory(), dm);
    d.end_message(false);
    c.release();
    d.release();
    assert_eq!((c.memory(), d.memory()), (0, 0));
    // And allocated again by the next message.
    let payload = compress(&mut c, &message, &[]);
    assert_eq!(inflate(&mut d, &payload, 4096), Ok(message));
}

#[test]
fn takeover_state_is_the_context_and_stays() {
    let (mut c, mut d) = pair(false, 15, 1);
    let message = text(2000, 4);
    let payload = compress(&mut c, &message, &[]);
    inflate(&mut d, &payload, 4096).unwrap();
    c.release();
    d.release();
    assert_eq!((c.releasable(), d.releasable()), (0, 0));
    assert!(c.memory() > 0 && d.memory() > 0);
    let again = compress(&mut c, &message, &[]);
    assert!(again.len() < payload.len() / 4);
    assert_eq!(inflate(&mut d, &again, 4096), Ok(message));
    // A window below 15 bits leaves no context to keep.
    let (mut c, _) = pair(false, 10, 1);
    compress(&mut c, &text(2000, 5), &[]);
    assert!(c.releasable() > 0);
    c.release();
    assert_eq!(c.memory(), 0);
}

#[test]
fn idle_takeover_state_shrinks_to_the_history_and_carries_on() {
    let (mut c, mut d) = pair(false, 15, 1);
    let (mut keeper, mut d2) = pair(false, 15, 1);
    let message = text(40_000, 8);
    let payload = compress(&mut c, &message, &[]);
    assert_eq!(inflate(&mut d, &payload, 4096), Ok(message.clone()));
    assert_eq!(inflate(&mut d2, &compress(&mut keeper, &message, &[]), 4096), Ok(message.clone()));
    let full = d.memory();
    // Quiet: the compressor lets its context go, the inflater keeps only
    // the last 32 KiB of output.
    c.release_idle();
    d.release_idle();
    d2.release_idle();
    assert_eq!(c.memory(), 0);
    assert!((32 * 1024..33 * 1024).contains(&d.memory()), "{} from {full}", d.memory());
    // A fresh context is still a valid continuation of the stream...
    let fresh = compress(&mut c, &message, &[]);
    assert_eq!(inflate(&mut d, &fresh, 4096), Ok(message.clone()));
    // ...and a peer that kept its context refers back into the history the
    // parked inflater restored.
    let referring = compress(&mut keeper, &message[10_000..], &[]);
    let mut alone = referring.clone();
    alone.extend_from_slice(&TAIL);
    alone.extend_from_slice(&[0x03, 0x00]);
    assert!(decompress_to_vec(&alone).is_err(), "the message refers back to the previous one");
    assert_eq!(inflate(&mut d2, &referring, 1000), Ok(message[10_000..].to_vec()));
    // Mid-message, nothing is let go.
    let mut out = Vec::new();
    keeper.compress_into(&message[..100], false, &mut out);
    keeper.release_idle();
    assert!(keeper.memory() > 0);
}

#[test]
fn a_stream_ended_by_a_final_block_starts_afresh() {
    // A peer with takeover that ends its stream: the rest of the message is
    // ignored and the next message is a new stream.
    let (_, mut d) = pair(false, 15, 1);
    let mut first = Vec::new();
    crate::deflate::compress_message(b"hello hello", 1, 15, &mut first);
    // The sync-flush tail, an empty final block, then bytes to ignore.
    first.extend_from_slice(&[0x00, 0x00, 0xff, 0xff, 0x03, 0x00, 0xde, 0xad]);
    assert_eq!(inflate(&mut d, &first, 4096), Ok(b"hello hello".to_vec()));
    assert_eq!(d.releasable(), d.memory());
    let mut second = Vec::new();
    crate::deflate::compress_message(b"world", 1, 15, &mut second);
    assert_eq!(inflate(&mut d, &second, 4096), Ok(b"world".to_vec()));
}

#[test]
fn corrupt_data_fails() {
    for no_context in [false, true] {
        let (mut c, mut d) = pair(no_context, 15, 1);
        let payload = compress(&mut c, &text(3000, 9), &[]);
        assert!(inflate(&mut d, &payload[..payload.len() / 2], 4096).is_err());
        // A first message that refers back before its start (RFC 7692's
        // "Hello" continuation: distance 5, nothing before it).
        let (_, mut d) = pair(no_context, 15, 1);
        assert!(inflate(&mut d, &[0xf2, 0x00, 0x11, 0x00, 0x00], 4096).is_err());
    }
}

#[test]
fn no_takeover_forgets_even_after_a_reset_buffer_held_the_same_bytes() {
    // The reused history buffer still holds the previous message; a
    // reference into it (from a compressor that keeps its context) must
    // fail as if the buffer were new.
    let (mut c, _) = pair(false, 15, 1);
    let message = text(3000, 11);
    let first = compress(&mut c, &message, &[]);
    let second = compress(&mut c, &message, &[]);
    let (_, mut fresh) = pair(true, 15, 1);
    assert_eq!(inflate(&mut fresh, &first, 4096), Ok(message));
    assert!(inflate(&mut fresh, &second, 4096).is_err());
}

#[test]
fn prepared_messages_continue_any_stream() {
    // Compressed once, sent between a connection's own messages, with and
    // without takeover; with takeover the connection forgets after it.
    for bits in [15, 9] {
        for no_context in [false, true] {
            let (mut c, mut d) = pair(no_context, 15, 1);
            let own = text(3000, 21);
            let shared = text(3000, 22);
            let mut prepared = Vec::new();
            compress_message(&shared, 1, bits, &mut prepared);
            assert_eq!(inflate_alone(&prepared), shared);
            let mut keeper = Compressor::standalone(1, bits);
            for _ in 0..3 {
                let payload = compress(&mut c, &own, &[]);
                assert_eq!(inflate(&mut d, &payload, 4096), Ok(own.clone()));
                let mut again = Vec::new();
                keeper.compress_into(&shared, true, &mut again);
                assert!(again == prepared, "a kept compressor gives the same bytes");
                assert_eq!(inflate(&mut d, &prepared, 4096), Ok(shared.clone()));
                c.forget();
            }
        }
    }
}

#[test]
fn forgetting_is_needed_after_a_prepared_message_with_takeover() {
    // Without `forget`, our compressor refers back to its previous message
    // at a distance that, on the peer's side, lands in the prepared one.
    let (mut c, mut d) = pair(false, 15, 1);
    let own = text(3000, 31);
    let mut prepared = Vec::new();
    compress_message(&text(3000, 32), 1, 15, &mut prepared);
    inflate(&mut d, &compress(&mut c, &own, &[]), 4096).unwrap();
    inflate(&mut d, &prepared, 4096).unwrap();
    let stale = compress(&mut c, &own, &[]);
    assert!(inflate(&mut d, &stale, 4096) != Ok(own));
}

#[test]
fn window_bits_8_is_honoured_not_rounded_to_9() {
    // Distances up to 256 only: a repeat 300 bytes back must not match.
    let unit = noise(300, 5);
    let message = [&unit[..], &unit[..]].concat();
    let (mut c, _) = pair(false, 8, 9);
    let small = compress(&mut c, &message, &[]);
    let (mut c, _) = pair(false, 9, 9);
    let larger = compress(&mut c, &message, &[]);
    // Nothing matched with 8 bits; 212 bytes of the repeat with 9.
    assert!(small.len() >= message.len() && larger.len() + 150 < small.len(), "{} {}", small.len(), larger.len());
    assert_eq!(inflate_alone(&small), message);
}

#[test]
fn empty_messages() {
    for no_context in [false, true] {
        let (mut c, mut d) = pair(no_context, 15, 1);
        for _ in 0..3 {
            let payload = compress(&mut c, &[], &[]);
            assert!(payload.len() <= 2, "{payload:?}");
            assert_eq!(inflate(&mut d, &payload, 4096), Ok(Vec::new()));
            let payload = compress(&mut c, &[], &[0, 0]);
            assert_eq!(inflate(&mut d, &payload, 4096), Ok(Vec::new()));
        }
    }
    let mut out = Vec::new();
    compress_message(&[], 1, 15, &mut out);
    assert_eq!(inflate_alone(&out), b"");
}
