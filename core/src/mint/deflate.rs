//! A small zlib encoder (RFC 1950/1951): greedy LZ77 over a 4 KiB hash table, emitted as a
//! single fixed-Huffman block.
//!
//! Written by hand for speed, not ratio: a general-purpose deflater (miniz_oxide) clears
//! about 160 KiB of tables on every reset, which cost ~20 µs per token against ~1 µs of
//! real work. Token payloads are a few hundred bytes, where the fixed Huffman code is what
//! zlib itself picks, so the output is about as small. Any inflater reads it: the tests
//! inflate every minted token with `flate2` and the official parsers accept any zlib
//! stream.

const WINDOW: usize = 32 * 1024;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const HASH_BITS: u32 = 10;
const HASH_SIZE: usize = 1 << HASH_BITS;

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// LSB-first bit writer.
struct Bits<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits<'_> {
    #[inline]
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// A Huffman code is sent most-significant bit first.
    #[inline]
    fn code(&mut self, code: u32, bits: u32) {
        self.put(code.reverse_bits() >> (32 - bits), bits);
    }

    /// Fixed-Huffman literal/length symbol (RFC 1951 §3.2.6).
    #[inline]
    fn symbol(&mut self, sym: u32) {
        match sym {
            0..=143 => self.code(0x30 + sym, 8),
            144..=255 => self.code(0x190 + sym - 144, 9),
            256..=279 => self.code(sym - 256, 7),
            _ => self.code(0xC0 + sym - 280, 8),
        }
    }

    fn finish(self) {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65_521;
        b %= 65_521;
    }
    (b << 16) | a
}

#[inline]
fn hash(b: &[u8], i: usize) -> usize {
    let v = u32::from(b[i]) | (u32::from(b[i + 1]) << 8) | (u32::from(b[i + 2]) << 16);
    (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
}

/// Appends a complete zlib stream of `input` to `out` (cleared first). `table` is scratch
/// space reused between calls.
pub(crate) fn zlib_compress(input: &[u8], out: &mut Vec<u8>, table: &mut [u32; HASH_SIZE]) {
    out.clear();
    out.reserve(input.len() + input.len() / 8 + 16);
    out.extend_from_slice(&[0x78, 0x01]);
    table.fill(u32::MAX);
    let mut w = Bits { out, acc: 0, n: 0 };
    w.put(1, 1); // BFINAL
    w.put(1, 2); // BTYPE = 01, fixed Huffman
    let n = input.len();
    let mut i = 0;
    while i < n {
        let mut best = 0;
        let mut dist = 0;
        if i + MIN_MATCH <= n {
            let h = hash(input, i);
            let cand = table[h];
            table[h] = i as u32;
            if cand != u32::MAX {
                let c = cand as usize;
                if i - c <= WINDOW {
                    let max = (n - i).min(MAX_MATCH);
                    let mut l = 0;
                    while l < max && input[c + l] == input[i + l] {
                        l += 1;
                    }
                    if l >= MIN_MATCH {
                        best = l;
                        dist = i - c;
                    }
                }
            }
        }
        if best == 0 {
            w.symbol(u32::from(input[i]));
            i += 1;
            continue;
        }
        let li = LEN_BASE.partition_point(|&b| usize::from(b) <= best) - 1;
        w.symbol(257 + li as u32);
        w.put(
            (best - usize::from(LEN_BASE[li])) as u32,
            u32::from(LEN_EXTRA[li]),
        );
        let di = DIST_BASE.partition_point(|&b| usize::from(b) <= dist) - 1;
        w.code(di as u32, 5);
        w.put(
            (dist - usize::from(DIST_BASE[di])) as u32,
            u32::from(DIST_EXTRA[di]),
        );
        // Index the positions inside the match so later repeats are found.
        let end = i + best;
        for j in i + 1..end.min(n.saturating_sub(MIN_MATCH - 1)) {
            table[hash(input, j)] = j as u32;
        }
        i = end;
    }
    w.symbol(256);
    w.finish();
    out.extend_from_slice(&adler32(input).to_be_bytes());
}

/// Hash table size for [`zlib_compress`] scratch space.
pub(crate) const TABLE_SIZE: usize = HASH_SIZE;

#[cfg(test)]
mod tests {
    use std::io::Read;

    use proptest::prelude::*;

    use super::*;

    fn round_trip(data: &[u8]) -> Vec<u8> {
        let mut table = [0u32; TABLE_SIZE];
        let mut z = Vec::new();
        zlib_compress(data, &mut z, &mut table);
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(z.as_slice())
            .read_to_end(&mut out)
            .expect("valid zlib stream");
        out
    }

    #[test]
    fn empty_and_tiny_inputs_inflate_back() {
        for data in [&b""[..], b"a", b"ab", b"abc", b"aaaa"] {
            assert_eq!(round_trip(data), data);
        }
    }

    #[test]
    fn long_repeats_and_far_matches_inflate_back() {
        let mut data = vec![7u8; 100_000];
        data.extend((0..40_000u32).map(|i| (i % 251) as u8));
        data.extend_from_within(..5000);
        assert_eq!(round_trip(&data), data);
        // Repetitive input compresses.
        let mut z = Vec::new();
        zlib_compress(&vec![b'x'; 10_000], &mut z, &mut [0; TABLE_SIZE]);
        assert!(z.len() < 200, "{}", z.len());
    }

    proptest! {
        #[test]
        fn any_bytes_inflate_back(
            parts in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..64), 1usize..40), 0..40)
        ) {
            let data: Vec<u8> = parts.iter().flat_map(|(p, n)| p.repeat(*n)).collect();
            prop_assert_eq!(round_trip(&data), data);
        }
    }
}
