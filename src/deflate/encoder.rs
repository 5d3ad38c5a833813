//! A DEFLATE encoder (RFC 1951) for messages that refer to nothing sent
//! before them: permessage-deflate without context takeover, and prepared
//! (broadcast) messages.
//!
//! miniz_oxide keeps 312 KiB of state whose reset between messages costs
//! more than compressing a 1 KiB message. This encoder needs no reset at
//! all: its hash table holds positions in one ever-growing count, and a
//! position from before the current call is simply out of range, so a
//! stale entry is never followed. Each call encodes its input as one or
//! more non-final blocks (dynamic Huffman, fixed Huffman or stored,
//! whichever is smallest) and ends with a sync flush, like zlib's
//! `Z_SYNC_FLUSH`.
//!
//! Matching is greedy: level 1 looks at one candidate per position, higher
//! levels follow a hash chain further (see [`CHAIN`]). Matches are at least
//! 4 bytes (the hashed prefix) and never reach further back than the
//! window the peer accepts.

use alloc::boxed::Box;
use alloc::vec;
use alloc::vec::Vec;

/// Largest hash table: 2^14 heads of 4 bytes, 64 KiB (inputs of 8 KiB
/// and more).
const HASH_BITS: u32 = 14;
/// The largest distance deflate can express, and the chain table size.
const WINDOW: usize = 1 << 15;
/// Shortest match looked for: the hashed prefix.
const MIN_MATCH: usize = 4;
/// Longest match deflate can express.
const MAX_MATCH: usize = 258;
/// Tokens per block: bounds the token buffer (64 KiB) and lets the
/// Huffman codes follow changes in the data.
const BLOCK_TOKENS: usize = 1 << 14;
/// Input handled with one position range; longer input is cut into
/// independent segments so positions stay well inside `u32`.
const SEGMENT: usize = 1 << 26;
/// Candidates examined per position, by level 0 to 10 (level 0 stores).
const CHAIN: [u16; 11] = [0, 1, 4, 8, 16, 32, 64, 128, 256, 1024, 4096];

/// Literal/length alphabet size (0–285), distance alphabet size (0–29),
/// code length alphabet size (0–18).
const LITLEN: usize = 286;
const DIST: usize = 30;
const CODELEN: usize = 19;
/// End of block.
const EOB: usize = 256;
/// Order in which code length code lengths are sent (RFC 1951 §3.2.7).
const CODELEN_ORDER: [usize; CODELEN] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15];

/// A match token has this bit; its length - 3 sits in bits 16–23 and its
/// distance - 1 in bits 0–14. A literal token is the byte.
const MATCH: u32 = 1 << 31;

/// For a match length - 3 (0–255): the length symbol's index above 257,
/// its number of extra bits, and their value.
const LENGTH_CODES: [(u8, u8, u8); 256] = length_codes();

const fn length_codes() -> [(u8, u8, u8); 256] {
    let mut table = [(0, 0, 0); 256];
    let mut x = 0;
    while x < 256 {
        table[x] = if x < 8 {
            (x as u8, 0, 0)
        } else if x == 255 {
            (28, 0, 0)
        } else {
            // Symbols from 265 come in fours per number of extra bits.
            let n = usize::BITS - 1 - x.leading_zeros();
            let extra = n - 2;
            ((4 * (n - 1) as usize + ((x >> extra) & 3)) as u8, extra as u8, (x & ((1 << extra) - 1)) as u8)
        };
        x += 1;
    }
    table
}

/// For a distance - 1 (0–32767): its distance code, number of extra bits,
/// and their value.
#[inline]
fn distance_code(x: u32) -> (usize, u32, u32) {
    if x < 4 {
        (x as usize, 0, 0)
    } else {
        // Codes from 4 come in pairs per number of extra bits.
        let n = u32::BITS - 1 - x.leading_zeros();
        let extra = n - 1;
        ((2 * n + ((x >> extra) & 1)) as usize, extra, x & ((1 << extra) - 1))
    }
}

/// The encoder's reusable state; its buffers are allocated on first use.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// Position + 1 of the last occurrence of each hash; positions count
    /// across calls, so everything from before a call is below its base.
    head: Vec<u32>,
    /// Chain to the previous position with the same hash, indexed by
    /// position modulo the window (levels above 1 only).
    prev: Vec<u32>,
    /// The position the next call starts at.
    next_base: u32,
    tokens: Vec<u32>,
    /// The code of the last dynamic block, tried first for the next one.
    code: Option<Box<DynamicCode>>,
}

impl Encoder {
    /// Heap bytes held.
    pub(crate) fn memory(&self) -> usize {
        (self.head.capacity() + self.prev.capacity() + self.tokens.capacity()) * size_of::<u32>()
            + self.code.as_ref().map_or(0, |_| size_of::<DynamicCode>())
    }

    /// Appends to `out` the compressed form of `data` on its own, ending in
    /// a sync flush (whose 4-byte tail the caller removes at the end of a
    /// message), at `level` 0 to 10, with no back-reference further than
    /// `2^window_bits` bytes.
    pub(crate) fn compress(&mut self, data: &[u8], level: u8, window_bits: u8, out: &mut Vec<u8>) {
        let mut bits = Bits::new(out);
        for segment in data.chunks(SEGMENT) {
            if level == 0 {
                write_stored(&mut bits, segment);
            } else {
                self.lz(segment, level, 1 << window_bits.clamp(8, 15), &mut bits);
            }
        }
        // Sync flush: an empty stored block, byte-aligned.
        bits.put(0, 3);
        bits.align();
        bits.out.extend_from_slice(&[0, 0, 0xFF, 0xFF]);
    }

    /// Greedy LZ77 over one segment, writing a block every
    /// [`BLOCK_TOKENS`] tokens.
    fn lz(&mut self, data: &[u8], level: u8, window: u32, bits: &mut Bits<'_>) {
        let chain = CHAIN[usize::from(level.min(10))];
        // A table about twice the input (a small message then stays in the
        // first-level cache and a connection of small messages holds a
        // small table), grown for larger input. Entries from earlier calls
        // in any part of it are below `base`, whatever size made them.
        let hash_bits = (usize::BITS - data.len().leading_zeros() + 1).clamp(10, HASH_BITS);
        if self.head.len() < 1 << hash_bits {
            self.head.resize(1 << hash_bits, 0);
        }
        if chain > 1 && self.prev.is_empty() {
            self.prev = vec![0; WINDOW];
        }
        // Positions are stored as base + offset, and base is at least 1, so
        // an empty slot (0) is never taken for one.
        if u64::from(self.next_base) + data.len() as u64 + 2 > u64::from(u32::MAX) {
            self.head.fill(0);
            self.next_base = 0;
        }
        let base = self.next_base + 1;
        self.next_base = base + data.len() as u32;
        self.tokens.clear();
        self.tokens.reserve(data.len().min(BLOCK_TOKENS));
        let mut block = Block::new();
        let mut block_start = 0;
        let mut i = 0;
        let end = data.len();
        // Literals since the last match: after many, candidates are looked
        // for less often (incompressible data goes faster).
        let mut misses = 0usize;
        while i + MIN_MATCH <= end {
            let pos = base + i as u32;
            let prefix = read_u32(data, i);
            let h = hash(prefix, hash_bits);
            let candidate = self.head[h];
            self.head[h] = pos;
            let max = (end - i).min(MAX_MATCH);
            let (best_len, best_dist) = if chain == 1 {
                // Level 1: the one candidate, if its 4 bytes agree.
                if candidate >= base
                    && pos - candidate <= window
                    && read_u32(data, candidate_at(candidate, base)) == prefix
                {
                    let at = candidate_at(candidate, base);
                    (MIN_MATCH + match_len(data, at + MIN_MATCH, i + MIN_MATCH, max - MIN_MATCH), pos - candidate)
                } else {
                    (0, 0)
                }
            } else {
                self.prev[pos as usize % WINDOW] = candidate;
                self.longest(data, i, pos, candidate, base, window, max, chain)
            };
            if best_len >= MIN_MATCH {
                self.tokens.push(MATCH | ((best_len as u32 - 3) << 16) | (best_dist - 1));
                block.count_match(best_len, best_dist);
                if chain > 1 {
                    // Index the positions inside the match too.
                    let last = (i + best_len).min(end.saturating_sub(MIN_MATCH - 1));
                    for j in i + 1..last {
                        let p = base + j as u32;
                        let h = hash(read_u32(data, j), hash_bits);
                        self.prev[p as usize % WINDOW] = self.head[h];
                        self.head[h] = p;
                    }
                }
                i += best_len;
                misses = 0;
            } else {
                // Literals, more of them at once the longer nothing matched.
                let step = 1 + (misses >> 5).min(31);
                let stop = (i + step).min(end);
                block.literals(&mut self.tokens, &data[i..stop]);
                misses += stop - i;
                i = stop;
            }
            if self.tokens.len() >= BLOCK_TOKENS {
                block.write(&self.tokens, &data[block_start..i], level, &mut self.code, bits);
                self.tokens.clear();
                block = Block::new();
                block_start = i;
            }
        }
        block.literals(&mut self.tokens, &data[i..]);
        if block_start < end {
            block.write(&self.tokens, &data[block_start..], level, &mut self.code, bits);
        }
        self.tokens.clear();
    }
}

impl Encoder {
    /// The longest match for position `i` (at `pos`) among `tries`
    /// candidates of its hash chain, starting with `candidate`: (length,
    /// distance), length 0 if none reaches [`MIN_MATCH`].
    #[allow(clippy::too_many_arguments)]
    fn longest(
        &self,
        data: &[u8],
        i: usize,
        pos: u32,
        mut candidate: u32,
        base: u32,
        window: u32,
        max: usize,
        mut tries: u16,
    ) -> (usize, u32) {
        let (mut best_len, mut best_dist) = (MIN_MATCH - 1, 0);
        while candidate >= base && pos - candidate <= window {
            let at = candidate_at(candidate, base);
            // The byte that would make this match longer than the best.
            if data[at + best_len] == data[i + best_len] {
                let len = match_len(data, at, i, max);
                if len > best_len {
                    best_len = len;
                    best_dist = pos - candidate;
                    if len == max {
                        break;
                    }
                }
            }
            tries -= 1;
            if tries == 0 {
                break;
            }
            let next = self.prev[candidate as usize % WINDOW];
            if next >= candidate {
                break;
            }
            candidate = next;
        }
        if best_dist == 0 { (0, 0) } else { (best_len, best_dist) }
    }
}

/// Where in the segment a stored position is.
#[inline]
fn candidate_at(candidate: u32, base: u32) -> usize {
    (candidate - base) as usize
}

#[inline]
fn read_u32(data: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(data[at..at + 4].try_into().unwrap_or([0; 4]))
}

#[inline]
fn hash(v: u32, bits: u32) -> usize {
    (v.wrapping_mul(0x9E37_79B1) >> (32 - bits)) as usize
}

/// How many bytes at `at` equal those at `i` (`at < i`), up to `max`.
#[inline]
fn match_len(data: &[u8], at: usize, i: usize, max: usize) -> usize {
    let mut len = 0;
    while len + 8 <= max {
        let a = u64::from_le_bytes(data[at + len..at + len + 8].try_into().unwrap_or([0; 8]));
        let b = u64::from_le_bytes(data[i + len..i + len + 8].try_into().unwrap_or([0; 8]));
        let diff = a ^ b;
        if diff != 0 {
            return len + (diff.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    while len < max && data[at + len] == data[i + len] {
        len += 1;
    }
    len
}

/// Symbol frequencies of one block.
struct Block {
    litlen: [u32; LITLEN],
    dist: [u32; DIST],
}

impl Block {
    fn new() -> Self {
        Self { litlen: [0; LITLEN], dist: [0; DIST] }
    }

    /// Appends `bytes` as literal tokens and counts them.
    #[inline]
    fn literals(&mut self, tokens: &mut Vec<u32>, bytes: &[u8]) {
        for &byte in bytes {
            tokens.push(u32::from(byte));
            self.litlen[usize::from(byte)] += 1;
        }
    }

    #[inline]
    fn count_match(&mut self, len: usize, dist: u32) {
        self.litlen[257 + usize::from(LENGTH_CODES[len - 3].0)] += 1;
        self.dist[distance_code(dist - 1).0] += 1;
    }

    /// Writes the block holding `tokens`, which encode `raw`, in whichever
    /// form is shortest. A dynamic code is built only if `last`, the code
    /// of the previous dynamic block, cannot encode every symbol or costs
    /// more than the level's [`REUSE_MARGIN`] above the entropy of the
    /// block's symbols (which no code beats): successive messages of one
    /// kind have nearly the same statistics, and building a code and its
    /// header costs a third of compressing a 1 KiB message.
    fn write(
        mut self,
        tokens: &[u32],
        raw: &[u8],
        level: u8,
        last: &mut Option<Box<DynamicCode>>,
        bits: &mut Bits<'_>,
    ) {
        self.litlen[EOB] = 1;
        let extra = self.extra_bits();
        let margin = REUSE_MARGIN[usize::from(level.min(10))] as u64;
        let reused = last.as_deref().and_then(|code| code.data_bits(&self)).filter(|&data| {
            margin > 0 && data as u64 * 4096 * 100 <= (entropy(&self.litlen) + entropy(&self.dist)) * (100 + margin)
        });
        let data = match reused {
            Some(data) => data,
            None => {
                let code = DynamicCode::new(&self, last.as_deref(), margin > 0);
                match last {
                    Some(last) => **last = code,
                    None => *last = Some(Box::new(code)),
                }
                last.as_deref().and_then(|code| code.data_bits(&self)).unwrap_or(usize::MAX / 2)
            }
        };
        let Some(code) = last.as_deref() else { unreachable!("a code was kept above") };
        let dynamic = 3 + code.header.bits() + data + extra;
        let fixed = 3 + cost(&self.litlen, &FIXED_LITLEN) + cost(&self.dist, &[5; DIST]) + extra;
        // Each stored block: 3 header bits, up to 7 of padding, LEN, NLEN.
        let stored = raw.len().div_ceil(0xFFFF).max(1) * (3 + 7 + 32) + 8 * raw.len();

        if stored <= dynamic.min(fixed) {
            write_stored(bits, raw);
        } else if fixed <= dynamic {
            bits.put(0b010, 3);
            write_tokens(bits, tokens, &FIXED_LIT_CODE, &FIXED_DIST_CODE);
        } else {
            bits.put(0b100, 3);
            code.header.write(bits);
            write_tokens(bits, tokens, &code.lit, &code.dist);
        }
    }

    /// Extra bits of the block's lengths and distances.
    fn extra_bits(&self) -> usize {
        const LEN_EXTRA: [usize; 29] =
            [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
        let lengths: usize = self.litlen[257..].iter().zip(LEN_EXTRA).map(|(&f, e)| f as usize * e).sum();
        let dists: usize =
            self.dist.iter().enumerate().map(|(code, &f)| f as usize * (code / 2).saturating_sub(1)).sum();
        lengths + dists
    }
}

/// By level, how much above the entropy of a block (in percent) the data
/// bits of a previous code may be for it to be used again. A code built for
/// the block itself is typically 1% above; one built for an earlier
/// message of the same kind 2–4%. The fastest levels accept that; the
/// highest always build.
const REUSE_MARGIN: [usize; 11] = [0, 4, 4, 4, 2, 2, 2, 0, 0, 0, 0];

/// A symbol used by a block keeps a code in the next codes built, until
/// this many have been built without it being used.
const RECENT: u8 = 8;

/// A dynamic Huffman code for literals/lengths and distances, with the
/// block header that describes it.
pub(crate) struct DynamicCode {
    lit_lengths: [u8; LITLEN],
    dist_lengths: [u8; DIST],
    lit: Code<LITLEN>,
    dist: Code<DIST>,
    header: DynamicHeader,
    /// For each literal/length and distance symbol, how many more codes
    /// will give it room though no block uses it (see [`RECENT`]).
    recent: [u8; LITLEN + DIST],
    /// Codes built by this encoder, this one included.
    #[cfg(test)]
    builds: usize,
}

impl core::fmt::Debug for DynamicCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DynamicCode").finish_non_exhaustive()
    }
}

impl DynamicCode {
    /// The optimal code (within 15 bits) for the block's symbols; with
    /// `previous`, one that also has room for the symbols of the last few
    /// blocks, to be used again.
    fn new(block: &Block, previous: Option<&DynamicCode>, reusable: bool) -> Self {
        // Symbols used by one of the last blocks get a code too, with the
        // least weight, so that the next block of the same kind finds one.
        let mut recent = previous.filter(|_| reusable).map_or([0; LITLEN + DIST], |p| p.recent);
        let mut weights = Block::new();
        let slots = weights.litlen.iter_mut().chain(&mut weights.dist);
        let freqs = block.litlen.iter().chain(&block.dist);
        for ((w, &f), age) in slots.zip(freqs).zip(&mut recent) {
            *age = if f > 0 { RECENT } else { age.saturating_sub(1) };
            *w = 2 * f + u32::from(*age > 0 && reusable);
        }
        let mut lit_lengths = [0u8; LITLEN];
        let mut dist_lengths = [0u8; DIST];
        let lit_count = huffman_lengths(&weights.litlen, 15, &mut lit_lengths);
        let dist_count = huffman_lengths(&weights.dist, 15, &mut dist_lengths);
        Self {
            recent,
            #[cfg(test)]
            builds: previous.map_or(0, |p| p.builds) + 1,
            header: DynamicHeader::new(&lit_lengths, &dist_lengths),
            lit: Code::with_counts(&lit_lengths, &lit_count),
            dist: Code::with_counts(&dist_lengths, &dist_count),
            lit_lengths,
            dist_lengths,
        }
    }

    /// Bits the block's symbols take with this code (extra bits not
    /// counted), or `None` if it has no code for one of them.
    fn data_bits(&self, block: &Block) -> Option<usize> {
        let mut missing = false;
        let mut total = 0;
        for (freq, lengths) in [(&block.litlen[..], &self.lit_lengths[..]), (&block.dist[..], &self.dist_lengths[..])] {
            for (&f, &l) in freq.iter().zip(lengths) {
                missing |= f > 0 && l == 0;
                total += f as usize * usize::from(l);
            }
        }
        (!missing).then_some(total)
    }
}

/// The entropy of the symbols counted in `freq`, in 1/4096 bits: the
/// fewest bits any code can encode them in, within 0.006 bit per symbol.
fn entropy(freq: &[u32]) -> u64 {
    let total: u32 = freq.iter().sum();
    let sum: u64 = freq.iter().filter(|&&f| f > 0).map(|&f| u64::from(f) * u64::from(log2(f))).sum();
    (u64::from(total) * u64::from(log2(total.max(1)))).saturating_sub(sum)
}

/// log2(x) in 1/4096 bits, rounded down to the 8 bits after the leading
/// one (within 0.006 bit). `x` ≥ 1.
#[inline]
fn log2(x: u32) -> u32 {
    let k = u32::BITS - 1 - x.leading_zeros();
    let fraction = if k >= 8 { x >> (k - 8) } else { x << (8 - k) } & 0xFF;
    (k << 12) + LOG2_FRACTION[fraction as usize]
}

/// log2(1 + i/256) in 1/4096 bits, rounded down.
const LOG2_FRACTION: [u32; 256] = {
    let mut table = [0; 256];
    let mut i = 0;
    while i < 256 {
        // Bit by bit: square the mantissa (32 fraction bits); each time
        // it reaches 2, that bit of the logarithm is 1.
        let mut m: u64 = ((256 + i as u64) << 32) / 256;
        let mut bit = 2048;
        while bit > 0 {
            m = ((m as u128 * m as u128) >> 32) as u64;
            if m >= 2 << 32 {
                m >>= 1;
                table[i] += bit;
            }
            bit >>= 1;
        }
        i += 1;
    }
    table
};

/// Code lengths of the fixed Huffman code for literals and lengths, all
/// 288 of them: the two symbols no block uses still shape the code.
const FIXED_LITLEN: [u8; 288] = {
    let mut lengths = [8u8; 288];
    let mut s = 144;
    while s < 288 {
        lengths[s] = if s < 256 {
            9
        } else if s < 280 {
            7
        } else {
            8
        };
        s += 1;
    }
    lengths
};

/// The fixed Huffman codes (RFC 1951 §3.2.6).
const FIXED_LIT_CODE: Code<288> = Code::new(&FIXED_LITLEN);
const FIXED_DIST_CODE: Code<DIST> = Code::new(&[5; DIST]);

/// Bits the symbols of `freq` take with code `lengths`.
fn cost(freq: &[u32], lengths: &[u8]) -> usize {
    freq.iter().zip(lengths).map(|(&f, &l)| f as usize * usize::from(l)).sum()
}

/// Writes the tokens and the end of block.
fn write_tokens<const L: usize>(bits: &mut Bits<'_>, tokens: &[u32], lit: &Code<L>, dist: &Code<DIST>) {
    for &token in tokens {
        if token & MATCH == 0 {
            lit.put(bits, token as usize);
        } else {
            let (sym, extra, value) = LENGTH_CODES[((token >> 16) & 0xFF) as usize];
            let (code, len) = lit.get(257 + usize::from(sym));
            bits.put(code | (u32::from(value) << len), len + u32::from(extra));
            let (sym, extra, value) = distance_code(token & 0x7FFF);
            let (code, len) = dist.get(sym);
            bits.put(code | (value << len), len + extra);
        }
    }
    lit.put(bits, EOB);
}

/// Writes `raw` as stored blocks (none if it is empty).
fn write_stored(bits: &mut Bits<'_>, raw: &[u8]) {
    for piece in raw.chunks(0xFFFF) {
        bits.put(0, 3);
        bits.align();
        let len = piece.len() as u16;
        bits.out.extend_from_slice(&len.to_le_bytes());
        bits.out.extend_from_slice(&(!len).to_le_bytes());
        bits.out.extend_from_slice(piece);
    }
}

/// A canonical Huffman code: for each symbol, its code with the bits
/// reversed, as they are sent, and its length above bit 16.
struct Code<const N: usize> {
    entries: [u32; N],
}

impl<const N: usize> Code<N> {
    /// The code with these lengths (counted here: for the fixed codes,
    /// built at compile time).
    const fn new(lengths: &[u8; N]) -> Self {
        let mut count = [0u32; 16];
        let mut s = 0;
        while s < N {
            count[lengths[s] as usize] += 1;
            s += 1;
        }
        Self::with_counts(lengths, &count)
    }

    /// The code with these lengths, of which `count[l]` have `l` bits.
    const fn with_counts(lengths: &[u8; N], count: &[u32; 16]) -> Self {
        let mut next = [0u16; 16];
        let mut code = 0u16;
        let mut bits = 2;
        while bits < 16 {
            // Codes of each length follow those of the length before.
            code = (code + count[bits - 1] as u16) << 1;
            next[bits] = code;
            bits += 1;
        }
        let mut entries = [0u32; N];
        let mut s = 0;
        while s < N {
            // Skip unused symbols eight at a time.
            if s + 8 <= N
                && (lengths[s]
                    | lengths[s + 1]
                    | lengths[s + 2]
                    | lengths[s + 3]
                    | lengths[s + 4]
                    | lengths[s + 5]
                    | lengths[s + 6]
                    | lengths[s + 7])
                    == 0
            {
                s += 8;
                continue;
            }
            let l = lengths[s] as usize;
            if l > 0 {
                entries[s] = (next[l].reverse_bits() >> (16 - l)) as u32 | (l as u32) << 16;
                next[l] += 1;
            }
            s += 1;
        }
        Self { entries }
    }

    /// (code, length) of `symbol`.
    #[inline]
    fn get(&self, symbol: usize) -> (u32, u32) {
        let entry = self.entries[symbol];
        (entry & 0xFFFF, entry >> 16)
    }

    #[inline]
    fn put(&self, bits: &mut Bits<'_>, symbol: usize) {
        let (code, len) = self.get(symbol);
        bits.put(code, len);
    }
}

/// The code lengths of a dynamic block, run-length encoded with the code
/// length alphabet (RFC 1951 §3.2.7).
struct DynamicHeader {
    hlit: usize,
    hdist: usize,
    hclen: usize,
    /// (symbol, extra bits value) in order, `len` of them.
    runs: [(u8, u8); LITLEN + DIST],
    len: usize,
    code: Code<CODELEN>,
    lengths: [u8; CODELEN],
    freq: [u32; CODELEN],
}

impl DynamicHeader {
    fn new(lit: &[u8; LITLEN], dist: &[u8; DIST]) -> Self {
        let hlit = 257.max(LITLEN - lit.iter().rev().take_while(|&&l| l == 0).count());
        let hdist = 1.max(DIST - dist.iter().rev().take_while(|&&l| l == 0).count());
        let mut all = [0u8; LITLEN + DIST];
        all[..hlit].copy_from_slice(&lit[..hlit]);
        all[hlit..hlit + hdist].copy_from_slice(&dist[..hdist]);
        let all = &all[..hlit + hdist];
        let mut header = Self {
            hlit,
            hdist,
            hclen: 0,
            runs: [(0, 0); LITLEN + DIST],
            len: 0,
            code: Code { entries: [0; CODELEN] },
            lengths: [0; CODELEN],
            freq: [0; CODELEN],
        };
        let mut push = |sym: u8, value: u8| {
            header.runs[header.len] = (sym, value);
            header.len += 1;
            header.freq[usize::from(sym)] += 1;
        };
        let mut i = 0;
        while i < all.len() {
            let value = all[i];
            let mut run = all[i..].iter().take_while(|&&l| l == value).count();
            i += run;
            if value == 0 {
                while run >= 11 {
                    let n = run.min(138);
                    push(18, (n - 11) as u8);
                    run -= n;
                }
                if run >= 3 {
                    push(17, (run - 3) as u8);
                    run = 0;
                }
            } else {
                push(value, 0);
                run -= 1;
                while run >= 3 {
                    let n = run.min(6);
                    push(16, (n - 3) as u8);
                    run -= n;
                }
            }
            for _ in 0..run {
                push(value, 0);
            }
        }
        let mut lengths = [0u8; CODELEN];
        let count = huffman_lengths(&header.freq, 7, &mut lengths);
        header.hclen = 4.max(CODELEN - CODELEN_ORDER.iter().rev().take_while(|&&s| lengths[s] == 0).count());
        header.code = Code::with_counts(&lengths, &count);
        header.lengths = lengths;
        header
    }

    /// Bits the header takes after the block type.
    fn bits(&self) -> usize {
        let extra = self.freq[16] as usize * 2 + self.freq[17] as usize * 3 + self.freq[18] as usize * 7;
        5 + 5 + 4 + 3 * self.hclen + cost(&self.freq, &self.lengths) + extra
    }

    fn write(&self, bits: &mut Bits<'_>) {
        bits.put((self.hlit - 257) as u32, 5);
        bits.put((self.hdist - 1) as u32, 5);
        bits.put((self.hclen - 4) as u32, 4);
        for &s in &CODELEN_ORDER[..self.hclen] {
            bits.put(u32::from(self.lengths[s]), 3);
        }
        for &(sym, value) in &self.runs[..self.len] {
            self.code.put(bits, usize::from(sym));
            match sym {
                16 => bits.put(u32::from(value), 2),
                17 => bits.put(u32::from(value), 3),
                18 => bits.put(u32::from(value), 7),
                _ => {}
            }
        }
    }
}

/// Fills `lengths` with a complete Huffman code of at most `limit` bits
/// (at most 15) for the symbols of `freq` (at most [`LITLEN`], each below
/// 2^23). Fewer than two used symbols get two codes of one bit (a lone
/// code is incomplete, which zlib's inflate refuses). Returns how many
/// codes have each length.
fn huffman_lengths(freq: &[u32], limit: usize, lengths: &mut [u8]) -> [u32; 16] {
    // Used symbols by ascending frequency, as frequency << 9 | symbol
    // (collected without branches: the slot after the last is scratch).
    let mut keys = [0u32; LITLEN + 1];
    let mut n = 0;
    for (chunk, group) in freq.chunks(8).enumerate() {
        // Most of the byte range is unused in text: skip it eight at a time.
        if group.iter().all(|&f| f == 0) {
            continue;
        }
        for (s, &f) in (chunk * 8..).zip(group) {
            keys[n] = (f << 9) | s as u32;
            n += usize::from(f > 0);
        }
    }
    let mut s = 0;
    while n < 2 {
        if freq[s] == 0 {
            keys[n] = (1 << 9) | s as u32;
            n += 1;
        }
        s += 1;
    }
    let keys = &mut keys[..n];
    keys.sort_unstable();

    // Moffat and Katajainen's in-place construction. `a` starts as the
    // leaves' weights, with a heaviest sentinel after them; internal node
    // k (made in ascending weight) takes slot k, which then holds its
    // parent, then its depth. Each node's two children are the lighter of
    // the next leaf and the next unconsumed internal node, picked without
    // branches (which the data would make unpredictable).
    let mut a = [u32::MAX; LITLEN + 1];
    for (w, &k) in a.iter_mut().zip(keys.iter()) {
        *w = k >> 9;
    }
    let (mut root, mut leaf) = (0, 2);
    a[0] += a[1];
    for next in 1..n - 1 {
        // The first child: an internal node is always there to compare.
        let internal = a[root] < a[leaf];
        a[next] = if internal { a[root] } else { a[leaf] };
        a[root] = if internal { next as u32 } else { a[root] };
        root += usize::from(internal);
        leaf += usize::from(!internal);
        // The second: the sentinel loses to any internal node left.
        let internal = root < next && a[root] < a[leaf];
        a[next] += if internal { a[root] } else { a[leaf] };
        a[root] = if internal { next as u32 } else { a[root] };
        root += usize::from(internal);
        leaf += usize::from(!internal);
    }
    a[n - 2] = 0;
    for k in (0..n - 2).rev() {
        a[k] = a[a[k] as usize] + 1;
    }
    // Leaves per depth (deeper than the limit counted at the limit): each
    // level's free slots not taken by internal nodes are leaves.
    let mut count = [0u32; 16];
    let (mut available, mut depth, mut internal) = (1u32, 0usize, n as isize - 2);
    while available > 0 {
        let mut used = 0;
        while internal >= 0 && a[internal as usize] as usize == depth {
            used += 1;
            internal -= 1;
        }
        count[depth.min(limit)] += available - used;
        available = 2 * used;
        depth += 1;
    }

    // Limit the lengths: with every deeper code moved to the limit the code
    // is over-full; while it is, take a code off the limit and split a
    // shorter one into two of one more bit (each step removes one unit).
    let mut total: u32 = (1..=limit).map(|l| count[l] << (limit - l)).sum();
    while total > 1 << limit {
        count[limit] -= 1;
        if let Some(l) = (1..limit).rev().find(|&l| count[l] > 0) {
            count[l] -= 1;
            count[l + 1] += 2;
        }
        total -= 1;
    }

    // The rarest symbols get the longest codes.
    lengths.fill(0);
    let mut next = keys.iter();
    for l in (1..=limit).rev() {
        for &k in next.by_ref().take(count[l] as usize) {
            lengths[(k & 0x1FF) as usize] = l as u8;
        }
    }
    count[0] = 0;
    count
}

/// Writes bits least significant first into a byte vector.
struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl<'a> Bits<'a> {
    fn new(out: &'a mut Vec<u8>) -> Self {
        Self { out, acc: 0, n: 0 }
    }

    /// Appends the low `count` bits of `value` (`count` ≤ 32, and no bits
    /// above it set).
    #[inline]
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += count;
        if self.n >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.n -= 32;
        }
    }

    /// Writes out the pending bits, padded with zeros to a whole byte.
    fn align(&mut self) {
        let bytes = self.n.div_ceil(8) as usize;
        self.out.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
        self.acc = 0;
        self.n = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use miniz_oxide::inflate::decompress_to_vec;

    /// Inflates one call's output with an inflater that is not ours (a
    /// final empty block is appended to end the stream).
    fn inflate(compressed: &[u8]) -> Vec<u8> {
        let mut stream = compressed.to_vec();
        stream.extend_from_slice(&[0x03, 0x00]);
        decompress_to_vec(&stream).expect("valid deflate stream")
    }

    #[test]
    fn tables_match_rfc_1951() {
        // (length, symbol, extra bits, extra value)
        for (len, sym, extra, value) in [
            (3, 257, 0, 0),
            (10, 264, 0, 0),
            (11, 265, 1, 0),
            (12, 265, 1, 1),
            (18, 268, 1, 1),
            (19, 269, 2, 0),
            (34, 272, 2, 3),
            (35, 273, 3, 0),
            (131, 281, 5, 0),
            (257, 284, 5, 30),
            (258, 285, 0, 0),
        ] {
            let (s, e, v) = LENGTH_CODES[len - 3];
            assert_eq!((257 + usize::from(s), e, v), (sym, extra, value), "length {len}");
        }
        // (distance, code, extra bits, extra value)
        for (d, code, extra, value) in [
            (1, 0, 0, 0),
            (4, 3, 0, 0),
            (5, 4, 1, 0),
            (6, 4, 1, 1),
            (7, 5, 1, 0),
            (9, 6, 2, 0),
            (257, 16, 7, 0),
            (384, 16, 7, 127),
            (385, 17, 7, 0),
            (24577, 29, 13, 0),
            (32768, 29, 13, 8191),
        ] {
            assert_eq!(distance_code(d - 1), (code, extra, value), "distance {d}");
        }
    }

    #[test]
    fn lengths_are_complete_and_limited() {
        // Fibonacci frequencies make the deepest unlimited tree.
        let mut freq = [0u32; LITLEN];
        let (mut a, mut b) = (1u32, 1u32);
        for f in freq.iter_mut().take(30) {
            *f = a;
            (a, b) = (b, a.saturating_add(b));
        }
        for (limit, freq) in
            [(15usize, freq), (7, freq), (15, [0; LITLEN]), (15, core::array::from_fn(|i| u32::from(i == 7)))]
        {
            let mut lengths = [0u8; LITLEN];
            huffman_lengths(&freq, limit, &mut lengths);
            let kraft: u64 = lengths.iter().filter(|&&l| l > 0).map(|&l| 1u64 << (15 - l)).sum();
            assert_eq!(kraft, 1 << 15, "complete code, limit {limit}");
            assert!(lengths.iter().all(|&l| usize::from(l) <= limit));
            assert!(freq.iter().zip(&lengths).all(|(&f, &l)| f == 0 || l > 0), "every used symbol has a code");
        }
    }

    #[test]
    fn round_trips_at_every_level_and_window() {
        let mut text = Vec::new();
        let mut x = 7u32;
        while text.len() < 200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            text.extend_from_slice(
                ["alpha ", "beta ", "gamma ", "{\"id\":", "42,", "\"ok\"}"][x as usize % 6].as_bytes(),
            );
            if x.is_multiple_of(7) {
                text.push(x as u8);
            }
        }
        let noise: Vec<u8> = (0..70_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let mut encoder = Encoder::default();
        for data in [&b""[..], b"a", b"abcd", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", &text[..1000], &text, &noise]
        {
            for level in 0..=10 {
                for bits in [8, 9, 12, 15] {
                    let mut out = vec![0xAA];
                    encoder.compress(data, level, bits, &mut out);
                    assert_eq!(out[0], 0xAA);
                    assert!(out.ends_with(&[0, 0, 0xFF, 0xFF]));
                    assert_eq!(inflate(&out[1..]), data, "level {level}, {bits} bits, {} bytes", data.len());
                    if level > 0 && data.len() == text.len() {
                        assert!(out.len() < data.len() / 3, "level {level} compresses text: {}", out.len());
                    }
                }
            }
        }
    }

    /// 64 JSON-like records of about 1 KiB, each different, of one kind.
    fn records() -> Vec<Vec<u8>> {
        let words = ["order", "shipped", "pending", "refund", "invoice", "priority", "express"];
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as usize
        };
        (0..64)
            .map(|_| {
                let mut s = alloc::string::String::from("[");
                while s.len() < 1024 {
                    s += &alloc::format!(
                        "{{\"id\":{},\"status\":\"{}\",\"amount\":{}}},",
                        next() % 100_000,
                        words[next() % 7],
                        next() % 1000
                    );
                }
                s.into_bytes()
            })
            .collect()
    }

    #[test]
    fn reuses_codes_for_messages_of_one_kind_within_the_margin() {
        let messages = records();
        let compress_all = |encoder: &mut Encoder, level: u8| -> usize {
            let mut total = 0;
            for m in &messages {
                let mut out = Vec::new();
                encoder.compress(m, level, 15, &mut out);
                assert_eq!(&inflate(&out), m);
                total += out.len();
            }
            total
        };
        let builds = |encoder: &Encoder| encoder.code.as_ref().map_or(0, |c| c.builds);
        // Level 1 reuses the code of the message before; a fresh encoder
        // builds one; level 9 builds one for every message.
        let mut encoder = Encoder::default();
        let reusing = compress_all(&mut encoder, 1);
        let built = builds(&encoder);
        let fresh: usize = messages
            .iter()
            .map(|m| {
                let mut out = Vec::new();
                Encoder::default().compress(m, 1, 15, &mut out);
                out.len()
            })
            .sum();
        assert!(built < 32, "most messages reuse the code before: {built} built for 64");
        assert!(reusing * 100 <= fresh * 104, "reuse costs at most 4%: {reusing} against {fresh}");
        let mut encoder = Encoder::default();
        compress_all(&mut encoder, 9);
        assert_eq!(builds(&encoder), 64);
    }

    proptest::proptest! {
        /// Messages of any bytes (from a small alphabet, so they match)
        /// in a row through one encoder, at any level and window: each
        /// inflates to itself, alone.
        #[test]
        fn any_messages_round_trip(
            messages in proptest::collection::vec(proptest::collection::vec(proptest::sample::select(b"ab{}:,\"0123456789 \x00\xff".to_vec()), 0..3000), 1..6),
            level in 0u8..=10,
            bits in 8u8..=15,
        ) {
            let mut encoder = Encoder::default();
            for m in &messages {
                let mut out = Vec::new();
                encoder.compress(m, level, bits, &mut out);
                proptest::prop_assert_eq!(&inflate(&out), m);
            }
        }
    }

    #[test]
    fn refers_to_nothing_before_the_call() {
        // The same text twice: the second call must not match the first.
        let data = b"refers to nothing before the call, refers to nothing before".repeat(3);
        let mut encoder = Encoder::default();
        let mut first = Vec::new();
        encoder.compress(&data, 1, 15, &mut first);
        let mut second = Vec::new();
        encoder.compress(&data, 1, 15, &mut second);
        assert_eq!(first, second);
        assert_eq!(inflate(&second), data);
    }
}
