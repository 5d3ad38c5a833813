//! The permessage-deflate encoder (used without context takeover and for
//! prepared messages): a run of arbitrary messages through one
//! `MessageCompressor`, at an arbitrary level and window.
//!
//! Input: a level byte (taken modulo 11), a window byte (8 + value modulo
//! 8), then messages, each a little-endian u16 length and that many bytes.
//!
//! Invariants:
//! * no panic, whatever the data and whatever came before it (the encoder
//!   keeps its hash table and its last Huffman code between messages);
//! * each message inflates, on its own, to itself, with an inflater that is
//!   not ours (miniz_oxide);
//! * the output never ends in the sync-flush tail the caller removes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use miniz_oxide::inflate::decompress_to_vec;
use wscore::deflate::MessageCompressor;

fuzz_target!(|data: &[u8]| {
    let [level, bits, rest @ ..] = data else { return };
    let mut compressor = MessageCompressor::new(level % 11, 8 + bits % 8);
    let mut rest = rest;
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([*a, *b])).min(tail.len());
        let (message, after) = tail.split_at(len);
        rest = after;
        let mut out = Vec::new();
        compressor.compress(message, &mut out);
        assert!(!out.ends_with(&[0, 0, 0xFF, 0xFF]), "the tail is removed");
        // Put the tail back and end the stream with a final empty block.
        out.extend_from_slice(&[0, 0, 0xFF, 0xFF, 0x03, 0x00]);
        let inflated = decompress_to_vec(&out).expect("a valid deflate stream");
        assert_eq!(inflated, message);
    }
});
