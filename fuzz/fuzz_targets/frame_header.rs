//! `FrameHeader::decode` on arbitrary bytes.
//!
//! Invariants:
//! * a decoded header claims between 2 and 14 bytes, never more than given;
//! * re-encoding it (`encode`, `encoded_len`) gives back exactly the
//!   consumed prefix (decode accepts only minimal length encodings);
//! * decoding depends only on that prefix: every shorter prefix says "need
//!   more", and bytes appended after it change nothing;
//! * "need more" is only returned for fewer than 14 bytes, and errors are
//!   stable when more bytes are appended;
//! * unmasking the rest of the input in two pieces equals unmasking it at
//!   once, and masking twice is the identity;
//! * a close payload that parses has a sendable code (or none) and a reason
//!   of at most 123 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wscore::frame::{CloseCode, CloseFrame, FrameHeader, MAX_HEADER_LEN, apply_mask};

fuzz_target!(|data: &[u8]| {
    let mut extended = data.to_vec();
    extended.extend_from_slice(&[0xA5; MAX_HEADER_LEN]);

    match FrameHeader::decode(data) {
        Ok(Some((header, n))) => {
            assert!((2..=MAX_HEADER_LEN).contains(&n), "claimed {n} bytes");
            assert!(n <= data.len(), "claimed {n} bytes of {}", data.len());
            let mut out = [0u8; MAX_HEADER_LEN];
            let written = header.encode(&mut out);
            assert_eq!(written, n, "encode wrote {written} bytes, decode consumed {n}: {header:?}");
            assert_eq!(header.encoded_len(), n);
            assert_eq!(&out[..written], &data[..n], "re-encoding {header:?} differs");
            assert!(header.rsv <= 0b111);
            assert!(header.payload_len >> 63 == 0);
            for cut in 0..n {
                assert_eq!(FrameHeader::decode(&data[..cut]), Ok(None), "prefix of {cut} bytes");
            }
            assert_eq!(FrameHeader::decode(&extended), Ok(Some((header, n))));

            // Masking the payload bytes present, whole versus in two pieces.
            let key = header.mask.unwrap_or([data[0], data[1], 0x5A, 0xC3]);
            let rest = &data[n..];
            let mut whole = rest.to_vec();
            apply_mask(&mut whole, key, 0);
            for (i, (m, d)) in whole.iter().zip(rest).enumerate() {
                assert_eq!(*m, d ^ key[i % 4]);
            }
            let split = if rest.is_empty() { 0 } else { usize::from(data[1]) % (rest.len() + 1) };
            let mut pieces = rest.to_vec();
            let (a, b) = pieces.split_at_mut(split);
            apply_mask(a, key, 0);
            apply_mask(b, key, split);
            assert_eq!(whole, pieces);
            apply_mask(&mut whole, key, 0);
            assert_eq!(whole, rest);

            // The rest as a close payload.
            if let Ok(close) = CloseFrame::parse(rest) {
                assert!(close.code.is_sendable() || (rest.is_empty() && close.code == CloseCode::NO_STATUS));
                assert!(rest.is_empty() || close.reason.len() == rest.len() - 2);
            } else {
                assert!(!rest.is_empty());
            }
        }
        Ok(None) => {
            assert!(data.len() < MAX_HEADER_LEN, "need more with {} bytes", data.len());
            // With enough bytes it is decided one way or the other.
            assert_ne!(FrameHeader::decode(&extended), Ok(None));
        }
        Err(e) => {
            assert!(data.len() >= 2);
            assert_eq!(FrameHeader::decode(&extended), Err(e), "error changed with more bytes");
        }
    }
});
