//! MD5 for download verification (W-19): lakeFS lists a plain MD5 as the checksum of objects
//! on its local blockstore and of S3 single-part uploads, and every downloaded byte must
//! match it. Not for security; for integrity against what lakeFS stored.
//!
//! Written here instead of using the `md-5` crate because MD5 is most of a download's CPU:
//! the crate (0.10, with or without its assembly) takes ~0.5 s per 256 MB on the benchmark
//! VM, OpenSSL (Python's hashlib) ~0.40 s, and this ~0.40 s. The difference is the order of
//! the additions in a step: the message word, the constant and, in round 2, the half of G
//! that does not depend on `b` are summed before `b` is known, so only a few operations wait
//! for the previous step. The optimizer would otherwise re-associate the sums and rewrite G
//! into a form that waits on `b` longer; `opaque` stops it.

/// A running MD5: `update` with the bytes in order, then `hex`.
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    pending: [u8; 64],
    pending_len: usize,
    length: u64,
}

const INITIAL_STATE: [u32; 4] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

const SHIFTS: [[u32; 4]; 4] = [[7, 12, 17, 22], [5, 9, 14, 20], [4, 11, 16, 23], [6, 10, 15, 21]];

/// floor(abs(sin(i + 1)) * 2^32), as RFC 1321 lists them.
const CONSTANTS: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

impl Default for Md5 {
    fn default() -> Self {
        Md5::new()
    }
}

impl Md5 {
    pub fn new() -> Md5 {
        Md5 { state: INITIAL_STATE, pending: [0; 64], pending_len: 0, length: 0 }
    }

    pub fn update(&mut self, mut bytes: &[u8]) {
        self.length = self.length.wrapping_add(bytes.len() as u64);
        if self.pending_len > 0 {
            let take = bytes.len().min(64 - self.pending_len);
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&bytes[..take]);
            self.pending_len += take;
            bytes = &bytes[take..];
            if self.pending_len < 64 {
                return;
            }
            let block = self.pending;
            compress(&mut self.state, &block);
            self.pending_len = 0;
        }
        let whole = bytes.len() - bytes.len() % 64;
        compress(&mut self.state, &bytes[..whole]);
        let rest = &bytes[whole..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// The digest of everything so far, as 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        let mut last = self.clone();
        let bit_length = self.length.wrapping_mul(8);
        last.update(&[0x80]);
        let zeros = (64 + 56 - last.pending_len) % 64;
        last.update(&[0u8; 64][..zeros]);
        last.update(&bit_length.to_le_bytes());
        debug_assert_eq!(last.pending_len, 0);
        last.state.iter().flat_map(|word| word.to_le_bytes()).map(|byte| format!("{byte:02x}")).collect()
    }
}

/// `x` unchanged, but opaque to the optimizer (no instruction is emitted).
#[inline(always)]
fn opaque(mut x: u32) -> u32 {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("/* {0:e} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("/* {0:w} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags));
    }
    x
}

// One step each of rounds 1 to 4: the new `a`, given the message word and constant.

#[inline(always)]
fn step_f(a: u32, b: u32, c: u32, d: u32, word: u32, constant: u32, shift: u32) -> u32 {
    let early = opaque(a.wrapping_add(word).wrapping_add(constant));
    early.wrapping_add(((c ^ d) & b) ^ d).rotate_left(shift).wrapping_add(b)
}

#[inline(always)]
fn step_g(a: u32, b: u32, c: u32, d: u32, word: u32, constant: u32, shift: u32) -> u32 {
    // G = (b & d) | (c & !d); the two halves share no bit, so `+` equals `|`
    let early = opaque(a.wrapping_add(word).wrapping_add(constant).wrapping_add(c & !d));
    early.wrapping_add(b & d).rotate_left(shift).wrapping_add(b)
}

#[inline(always)]
fn step_h(a: u32, b: u32, c: u32, d: u32, word: u32, constant: u32, shift: u32) -> u32 {
    let early = opaque(a.wrapping_add(word).wrapping_add(constant));
    early.wrapping_add(b ^ c ^ d).rotate_left(shift).wrapping_add(b)
}

#[inline(always)]
fn step_i(a: u32, b: u32, c: u32, d: u32, word: u32, constant: u32, shift: u32) -> u32 {
    let early = opaque(a.wrapping_add(word).wrapping_add(constant));
    early.wrapping_add((b | !d) ^ c).rotate_left(shift).wrapping_add(b)
}

/// Fold whole 64-byte blocks into `state`.
fn compress(state: &mut [u32; 4], blocks: &[u8]) {
    for block in blocks.chunks_exact(64) {
        let mut words = [0u32; 16];
        for (word, bytes) in words.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let [mut a, mut b, mut c, mut d] = *state;
        macro_rules! round {
            ($step:ident, $round:expr, $word_index:expr) => {
                for first in (0..16).step_by(4) {
                    let n = $round * 16 + first;
                    let [s0, s1, s2, s3] = SHIFTS[$round];
                    a = $step(a, b, c, d, words[$word_index(first)], CONSTANTS[n], s0);
                    d = $step(d, a, b, c, words[$word_index(first + 1)], CONSTANTS[n + 1], s1);
                    c = $step(c, d, a, b, words[$word_index(first + 2)], CONSTANTS[n + 2], s2);
                    b = $step(b, c, d, a, words[$word_index(first + 3)], CONSTANTS[n + 3], s3);
                }
            };
        }
        round!(step_f, 0, |i: usize| i);
        round!(step_g, 1, |i: usize| (1 + 5 * i) % 16);
        round!(step_h, 2, |i: usize| (5 + 3 * i) % 16);
        round!(step_i, 3, |i: usize| (7 * i) % 16);
        state[0] = state[0].wrapping_add(a);
        state[1] = state[1].wrapping_add(b);
        state[2] = state[2].wrapping_add(c);
        state[3] = state[3].wrapping_add(d);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5_reference::{Digest, Md5 as Reference};
    use proptest::prelude::*;

    fn hex_of(bytes: &[u8]) -> String {
        let mut md5 = Md5::new();
        md5.update(bytes);
        md5.hex()
    }

    #[test]
    fn matches_the_rfc_1321_test_suite() {
        let suite = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in suite {
            assert_eq!(hex_of(input.as_bytes()), expected, "MD5 of {input:?}");
        }
    }

    #[test]
    fn every_length_around_the_padding_boundaries_matches_the_reference() {
        let input: Vec<u8> = (0..300u32).map(|i| (i * 7 % 256) as u8).collect();
        for length in 0..input.len() {
            assert_eq!(hex_of(&input[..length]), format!("{:x}", Reference::digest(&input[..length])), "length {length}");
        }
    }

    proptest! {
        #[test]
        fn pieces_of_any_size_equal_the_reference(input in prop::collection::vec(any::<u8>(), 0..5000), cuts in prop::collection::vec(0usize..5000, 0..6)) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|cut| cut.min(input.len())).collect();
            cuts.sort_unstable();
            let mut md5 = Md5::new();
            let mut start = 0;
            for cut in cuts.into_iter().chain([input.len()]) {
                md5.update(&input[start..cut]);
                start = cut;
            }
            prop_assert_eq!(md5.hex(), format!("{:x}", Reference::digest(&input)));
        }
    }
}
