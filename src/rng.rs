//! Masking keys for client frames.
//!
//! RFC 6455 §5.3 asks for masking keys that an attacker cannot predict,
//! drawn from a strong source of entropy. Asking the operating system for
//! every frame would cost a system call per message, so a client draws one
//! 256-bit seed from [`Config::entropy`](crate::Config::entropy) and expands
//! it with the ChaCha block function (RFC 8439) at 12 rounds, the margin of
//! `rand`'s standard generator, 16 keys per block.

const CONSTANTS: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// ChaCha12: the cipher's best known attacks reach 7 rounds.
const ROUNDS: usize = 12;

#[derive(Clone)]
pub(crate) struct MaskRng {
    key: [u32; 8],
    counter: u64,
    block: [u32; 16],
    next: usize,
}

impl MaskRng {
    pub(crate) fn new(seed: [u8; 32]) -> Self {
        let mut key = [0u32; 8];
        for (k, chunk) in key.iter_mut().zip(seed.chunks_exact(4)) {
            *k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Self { key, counter: 0, block: [0; 16], next: 16 }
    }

    #[inline]
    pub(crate) fn next_key(&mut self) -> [u8; 4] {
        if self.next == 16 {
            self.block = chacha_block(&self.key, self.counter, [0; 2], ROUNDS);
            self.counter = self.counter.wrapping_add(1);
            self.next = 0;
        }
        let word = self.block[self.next];
        self.next += 1;
        word.to_le_bytes()
    }
}

impl core::fmt::Debug for MaskRng {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MaskRng { .. }")
    }
}

#[inline(always)]
fn quarter_round(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// The ChaCha block function with `rounds` rounds (even), a 64-bit counter
/// in words 12–13 and a 64-bit nonce in words 14–15 (the original layout;
/// RFC 8439's 32-bit counter layout is the same function with the nonce's
/// first word moved).
fn chacha_block(key: &[u32; 8], counter: u64, nonce: [u32; 2], rounds: usize) -> [u32; 16] {
    let mut init = [0u32; 16];
    init[..4].copy_from_slice(&CONSTANTS);
    init[4..12].copy_from_slice(key);
    init[12] = counter as u32;
    init[13] = (counter >> 32) as u32;
    init[14..].copy_from_slice(&nonce);
    let mut s = init;
    for _ in 0..rounds / 2 {
        quarter_round(&mut s, 0, 4, 8, 12);
        quarter_round(&mut s, 1, 5, 9, 13);
        quarter_round(&mut s, 2, 6, 10, 14);
        quarter_round(&mut s, 3, 7, 11, 15);
        quarter_round(&mut s, 0, 5, 10, 15);
        quarter_round(&mut s, 1, 6, 11, 12);
        quarter_round(&mut s, 2, 7, 8, 13);
        quarter_round(&mut s, 3, 4, 9, 14);
    }
    for (w, i) in s.iter_mut().zip(init) {
        *w = w.wrapping_add(i);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8439 §2.3.2: key 00..1f, nonce 000000090000004a00000000, counter 1.
    // In the 64-bit-counter layout, word 13 (nonce word 0, 0x09000000) is the
    // counter's high half.
    #[test]
    fn rfc8439_block_test_vector() {
        let mut key = [0u32; 8];
        for (i, k) in key.iter_mut().enumerate() {
            let b = (i * 4) as u8;
            *k = u32::from_le_bytes([b, b + 1, b + 2, b + 3]);
        }
        let counter = 1 | (0x0900_0000u64 << 32);
        let out = chacha_block(&key, counter, [0x4a00_0000, 0], 20);
        let expected = [
            0xe4e7f110, 0x15593bd1, 0x1fdd0f50, 0xc47120a3, 0xc7f4d1c7, 0x0368c033, 0x9aaa2204, 0x4e6cd4c3, 0x466482d2,
            0x09aa9f07, 0x05d7c214, 0xa2028bd9, 0xd19c12b5, 0xb94e16de, 0xe883d0cb, 0x4e3c50a2,
        ];
        assert_eq!(out, expected);
    }

    #[test]
    fn keys_differ_across_blocks_and_seeds() {
        let mut a = MaskRng::new([7; 32]);
        let mut b = MaskRng::new([8; 32]);
        let ka: alloc::vec::Vec<_> = (0..40).map(|_| a.next_key()).collect();
        let kb: alloc::vec::Vec<_> = (0..40).map(|_| b.next_key()).collect();
        assert_ne!(ka, kb);
        assert_ne!(ka[..16], ka[16..32]);
    }
}
