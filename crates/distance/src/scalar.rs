//! Portable reference kernels. The SIMD paths are tested against these.

use crate::CosineParts;
use half::f16;

pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y;
        sum += d * d;
    }
    sum
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        sum += x * y;
    }
    sum
}

/// `out[i * m + j] = a_i . b_j` for the rows of `a` (n x dim) and `b`
/// (m x dim), one pair at a time with `dot`.
pub fn dot_block_by_pairs(
    a: &[f32],
    b: &[f32],
    dim: usize,
    out: &mut [f32],
    dot: fn(&[f32], &[f32]) -> f32,
) {
    let m = b.len() / dim;
    for (x, row) in a.chunks_exact(dim).zip(out.chunks_exact_mut(m.max(1))) {
        for (y, o) in b.chunks_exact(dim).zip(row.iter_mut()) {
            *o = dot(x, y);
        }
    }
}

pub fn dot_block(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    dot_block_by_pairs(a, b, dim, out, dot)
}

pub fn l2_squared_mixed(a: &[f32], b: &[f16]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        let d = x - y.to_f32();
        sum += d * d;
    }
    sum
}

pub fn dot_mixed(a: &[f32], b: &[f16]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        sum += x * y.to_f32();
    }
    sum
}

pub fn l1_mixed(a: &[f32], b: &[f16]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        sum += (x - y.to_f32()).abs();
    }
    sum
}

/// RaBitQ's counts of a code against a query's bit planes (`planes` holds
/// the planes one after another, each as long as `code`): the code's set
/// bits, and the sum over planes j of 2^j times the bits set in both.
#[inline(always)]
pub fn rabitq_counts(code: &[u64], planes: &[u64]) -> (u32, u32) {
    let words = code.len();
    assert_eq!(planes.len() % words.max(1), 0);
    // plane by plane: contiguous runs the compiler unrolls
    let ones: u32 = code.iter().map(|b| b.count_ones()).sum();
    let mut weighted = 0u32;
    for (j, plane) in planes.chunks_exact(words.max(1)).enumerate() {
        let n: u32 = code
            .iter()
            .zip(plane)
            .map(|(b, p)| (b & p).count_ones())
            .sum();
        weighted += n << j;
    }
    (ones, weighted)
}

/// Four-bit levels, two to a byte (lower dimension in the low half),
/// against 8-bit levels split into the even dimensions' and the odd ones':
/// the sum of the four-bit levels and their dot product with the others.
/// Written for the compiler to vectorise (x86 compiles it with AVX2).
#[inline(always)]
pub fn nibble_dot_split(code: &[u8], even: &[u8], odd: &[u8]) -> (u32, u32) {
    assert!(code.len() == even.len() && code.len() == odd.len());
    // blocks of 64 bytes: at most 64 * 2 * 15 * 255 fits 32 bits many times
    // over, and u16 lanes hold a block's level sums
    let (mut sum, mut dot) = (0u32, 0u32);
    for ((c, e), o) in code.chunks(64).zip(even.chunks(64)).zip(odd.chunks(64)) {
        let (mut s, mut d) = (0u32, 0u32);
        for ((&b, &qe), &qo) in c.iter().zip(e).zip(o) {
            let (lo, hi) = ((b & 15) as u32, (b >> 4) as u32);
            s += lo + hi;
            d += lo * qe as u32 + hi * qo as u32;
        }
        sum += s;
        dot += d;
    }
    (sum, dot)
}

/// `nibble_dot_split` as a kernel.
pub fn nibble_dot_kernel(code: &[u8], even: &[u8], odd: &[u8]) -> (u32, u32) {
    nibble_dot_split(code, even, odd)
}

/// Four-bit levels (two to a byte, lower dimension in the low half, bytes
/// in little-endian 64-bit words) against 8-bit levels, one per dimension:
/// the sum of the four-bit levels and their dot product with the others
/// (the reference `nibble_dot_split` is tested against).
pub fn nibble_dot(code: &[u64], levels: &[u8]) -> (u32, u32) {
    assert_eq!(code.len() * 16, levels.len());
    let (mut sum, mut dot) = (0u32, 0u32);
    for (w, q) in code.iter().zip(levels.chunks_exact(16)) {
        for (k, pair) in w.to_le_bytes().iter().zip(q.chunks_exact(2)) {
            let (lo, hi) = ((k & 15) as u32, (k >> 4) as u32);
            sum += lo + hi;
            dot += lo * pair[0] as u32 + hi * pair[1] as u32;
        }
    }
    (sum, dot)
}

/// Two codes of four-bit levels (as `nibble_dot` reads them): the sums of
/// each one's levels and the dot product of their levels.
pub fn nibble_pair(a: &[u8], b: &[u8]) -> (u32, u32, u32) {
    assert_eq!(a.len(), b.len());
    let (mut sa, mut sb, mut dot) = (0u32, 0u32, 0u32);
    for (p, q) in a.iter().zip(b) {
        let (pl, ph, ql, qh) = (
            (p & 15) as u32,
            (p >> 4) as u32,
            (q & 15) as u32,
            (q >> 4) as u32,
        );
        sa += pl + ph;
        sb += ql + qh;
        dot += pl * ql + ph * qh;
    }
    (sa, sb, dot)
}

/// Bits that differ between two equal-length bit strings.
#[inline(always)]
pub fn hamming_bits(a: &[u8], b: &[u8]) -> u64 {
    let (a8, a_tail) = a.split_at(a.len() - a.len() % 8);
    let (b8, b_tail) = b.split_at(a8.len());
    let mut n = 0u64;
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        let (x, y) = (word(x), word(y));
        n += (x ^ y).count_ones() as u64;
    }
    for (x, y) in a_tail.iter().zip(b_tail) {
        n += (x ^ y).count_ones() as u64;
    }
    n
}

/// Bits set in both, in `a`, and in `b`: what Jaccard distance needs.
#[inline(always)]
pub fn jaccard_counts(a: &[u8], b: &[u8]) -> (u64, u64, u64) {
    let (a8, a_tail) = a.split_at(a.len() - a.len() % 8);
    let (b8, b_tail) = b.split_at(a8.len());
    let (mut ab, mut aa, mut bb) = (0u64, 0u64, 0u64);
    for (x, y) in a8.chunks_exact(8).zip(b8.chunks_exact(8)) {
        let (x, y) = (word(x), word(y));
        ab += (x & y).count_ones() as u64;
        aa += x.count_ones() as u64;
        bb += y.count_ones() as u64;
    }
    for (x, y) in a_tail.iter().zip(b_tail) {
        ab += (x & y).count_ones() as u64;
        aa += x.count_ones() as u64;
        bb += y.count_ones() as u64;
    }
    (ab, aa, bb)
}

#[inline(always)]
fn word(b: &[u8]) -> u64 {
    u64::from_ne_bytes(b.try_into().expect("8 bytes"))
}

pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    let mut sum = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        sum += (x - y).abs();
    }
    sum
}

pub fn cosine_parts(a: &[f32], b: &[f32]) -> CosineParts {
    let (mut dot, mut norm_a, mut norm_b) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    CosineParts {
        dot,
        norm_a,
        norm_b,
    }
}

pub fn dot_and_norm(a: &[f32], b: &[f32]) -> (f32, f32) {
    let (mut dot, mut norm_a) = (0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        norm_a += x * x;
    }
    (dot, norm_a)
}

/// |a| accumulated in double, as pgvector's vector_norm does.
pub fn norm_f64(a: &[f32]) -> f64 {
    // Eight independent partial sums let the compiler vectorise without
    // reassociating a single chain.
    let mut acc = [0.0f64; 8];
    let chunks = a.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for j in 0..8 {
            acc[j] += c[j] as f64 * c[j] as f64;
        }
    }
    let mut sum: f64 = acc.iter().sum();
    for &x in tail {
        sum += x as f64 * x as f64;
    }
    sum.sqrt()
}

fn widen(a: &[f16], b: &[f16], mut f: impl FnMut(f32, f32)) {
    for (x, y) in a.iter().zip(b) {
        f(x.to_f32(), y.to_f32());
    }
}

pub fn l2_squared_f16(a: &[f16], b: &[f16]) -> f32 {
    let mut sum = 0.0f32;
    widen(a, b, |x, y| sum += (x - y) * (x - y));
    sum
}

pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    let mut sum = 0.0f32;
    widen(a, b, |x, y| sum += x * y);
    sum
}

pub fn l1_f16(a: &[f16], b: &[f16]) -> f32 {
    let mut sum = 0.0f32;
    widen(a, b, |x, y| sum += (x - y).abs());
    sum
}

pub fn cosine_parts_f16(a: &[f16], b: &[f16]) -> CosineParts {
    let (mut dot, mut norm_a, mut norm_b) = (0.0f32, 0.0f32, 0.0f32);
    widen(a, b, |x, y| {
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    });
    CosineParts {
        dot,
        norm_a,
        norm_b,
    }
}
