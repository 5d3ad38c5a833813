//! Hand-built deflate streams for tests: a bit writer and a
//! decompression bomb, shared by `tests/deflate.rs` and
//! `tests/deflate_memory.rs`.

/// Writes bits least significant first, as deflate does.
#[derive(Default)]
pub struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

/// The bytes `f` writes.
pub fn bitstream(f: impl FnOnce(&mut BitWriter)) -> Vec<u8> {
    let mut w = BitWriter::default();
    f(&mut w);
    w.finish()
}

impl BitWriter {
    pub fn bits(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code, which deflate packs most significant bit first.
    pub fn code(&mut self, code: u32, len: u32) {
        let reversed = (0..len).fold(0, |r, i| r | ((code >> i) & 1) << (len - 1 - i));
        self.bits(reversed, len);
    }

    pub fn zeros(&mut self, mut n: u64) {
        while self.n != 0 && n > 0 {
            self.bits(0, 1);
            n -= 1;
        }
        self.out.resize(self.out.len() + (n / 8) as usize, 0);
        self.bits(0, (n % 8) as u32);
    }

    pub fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A compressed message payload that inflates to `1 + 258 * matches` zero
/// bytes at deflate's best ratio: one dynamic Huffman block whose
/// length-258 code and distance-1 code are one bit each, so every 258
/// bytes cost two zero bits. Ends like a sync flush without its tail.
pub fn bomb(matches: u64) -> Vec<u8> {
    let mut w = BitWriter::default();
    w.bits(0, 1); // BFINAL
    w.bits(2, 2); // dynamic Huffman
    w.bits(286 - 257, 5); // HLIT: literal/length codes up to 285
    w.bits(2 - 1, 5); // HDIST: distance codes 0 and 1
    w.bits(18 - 4, 4); // HCLEN: code-length codes up to symbol 1 in ORDER
    // Code-length code: symbol 18 one bit (0), 1 and 2 two bits (10, 11).
    for sym in [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1] {
        w.bits(
            match sym {
                18 => 1,
                1 | 2 => 2,
                _ => 0,
            },
            3,
        );
    }
    let (zeros, one, two) = ((0, 1), (2, 2), (3, 2));
    // Literal/length lengths: 0 → 2, 1..=255 → 0, 256 → 2, 257..=284 → 0, 285 → 1.
    w.code(two.0, two.1);
    w.code(zeros.0, zeros.1);
    w.bits(138 - 11, 7);
    w.code(zeros.0, zeros.1);
    w.bits(117 - 11, 7);
    w.code(two.0, two.1);
    w.code(zeros.0, zeros.1);
    w.bits(28 - 11, 7);
    w.code(one.0, one.1);
    // Distance lengths: codes 0 and 1, one bit each.
    w.code(one.0, one.1);
    w.code(one.0, one.1);
    // Literal/length code: 285 → 0, literal 0 → 10, end of block → 11.
    w.code(2, 2);
    w.zeros(2 * matches); // each: length 258 (0), distance 1 (0)
    w.code(3, 2);
    // The header bits of the empty stored block the receiver completes.
    w.bits(0, 3);
    w.finish()
}
