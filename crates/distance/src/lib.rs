//! Distance kernels for dense vectors: a scalar reference plus SIMD paths
//! (AVX-512F, AVX2+FMA on x86_64; NEON on aarch64) chosen once at run time.
//!
//! Every public function takes two equal-length slices; callers check the
//! dimensions first (a length mismatch is a caller bug and panics).
//!
//! Accumulation is in f32 lanes, like pgvector's auto-vectorised loops; the
//! SIMD paths differ from the scalar one only by summation order.

#![deny(unsafe_op_in_unsafe_fn)]

use half::f16;
use std::sync::OnceLock;

mod element;
mod metric;
#[cfg(target_arch = "aarch64")]
mod neon;
pub mod rabitq;
pub mod scalar;
pub mod sparse;

pub use element::{Element, ElementBuf, Query, Scorer};
pub use metric::{Metric, Storage};
#[cfg(target_arch = "x86_64")]
mod x86;

/// Dot product, |a|^2 and |b|^2 in one pass: what cosine distance needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineParts {
    pub dot: f32,
    pub norm_a: f32,
    pub norm_b: f32,
}

type F32Pair = fn(&[f32], &[f32]) -> f32;
/// Bits set in both strings, in the first, in the second.
pub type BitCounts = (u64, u64, u64);
type F16Pair = fn(&[f16], &[f16]) -> f32;
type MixedPair = fn(&[f32], &[f16]) -> f32;

/// A four-bit RaBitQ code's bytes against a query's even and odd 8-bit
/// levels: (sum of the code's levels, dot product).
pub type NibbleDot = fn(&[u8], &[u8], &[u8]) -> (u32, u32);

/// One set of kernels for one instruction set.
#[derive(Clone, Copy)]
pub struct Kernels {
    pub name: &'static str,
    pub l2_squared: F32Pair,
    pub dot: F32Pair,
    pub l1: F32Pair,
    pub cosine_parts: fn(&[f32], &[f32]) -> CosineParts,
    /// (a . b, |a|^2): cosine when |b| is already known.
    pub dot_and_norm: fn(&[f32], &[f32]) -> (f32, f32),
    /// All dot products between two sets of rows (see `dot_block`).
    pub dot_block: fn(&[f32], &[f32], usize, &mut [f32]),
    /// An f32 query against binary16 stored vectors.
    pub l2_squared_mixed: MixedPair,
    pub dot_mixed: MixedPair,
    pub l1_mixed: MixedPair,
    pub hamming: fn(&[u8], &[u8]) -> u64,
    pub jaccard_counts: fn(&[u8], &[u8]) -> BitCounts,
    /// RaBitQ code against query bit planes (see `scalar::rabitq_counts`).
    pub rabitq_counts: fn(&[u64], &[u64]) -> (u32, u32),
    /// Four-bit RaBitQ levels against a query's even and odd 8-bit levels
    /// (see `scalar::nibble_dot_split`).
    pub nibble_dot: NibbleDot,
    /// Two codes of four-bit levels' bytes: (sum of a's levels, sum of
    /// b's, dot product) (see `scalar::nibble_pair`).
    pub nibble_pair: fn(&[u8], &[u8]) -> (u32, u32, u32),
    pub l2_squared_f16: F16Pair,
    pub dot_f16: F16Pair,
    pub l1_f16: F16Pair,
    pub cosine_parts_f16: fn(&[f16], &[f16]) -> CosineParts,
}

pub const SCALAR: Kernels = Kernels {
    name: "scalar",
    l2_squared: scalar::l2_squared,
    dot: scalar::dot,
    l1: scalar::l1,
    cosine_parts: scalar::cosine_parts,
    dot_and_norm: scalar::dot_and_norm,
    dot_block: scalar::dot_block,
    l2_squared_mixed: scalar::l2_squared_mixed,
    dot_mixed: scalar::dot_mixed,
    l1_mixed: scalar::l1_mixed,
    rabitq_counts: scalar::rabitq_counts,
    nibble_dot: scalar::nibble_dot_kernel,
    nibble_pair: scalar::nibble_pair,
    hamming: scalar::hamming_bits,
    jaccard_counts: scalar::jaccard_counts,
    l2_squared_f16: scalar::l2_squared_f16,
    dot_f16: scalar::dot_f16,
    l1_f16: scalar::l1_f16,
    cosine_parts_f16: scalar::cosine_parts_f16,
};

/// Every kernel set this CPU can run, best first; the scalar set is always last.
pub fn available() -> Vec<Kernels> {
    let mut sets = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            sets.push(x86::AVX512);
        }
        if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            sets.push(x86::AVX2);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("neon") {
            sets.push(neon::NEON);
        }
    }
    sets.push(SCALAR);
    sets
}

static BEST: OnceLock<Kernels> = OnceLock::new();

/// The best kernel set for this CPU, detected on first use. The environment
/// variable `VECTOR_EXT_KERNELS` (`avx512f`, `avx2+fma`, `neon`, `scalar`) picks a
/// set by name instead, to test the fallbacks on a CPU that has better ones;
/// a name this CPU cannot run is ignored.
#[inline]
pub fn kernels() -> &'static Kernels {
    BEST.get_or_init(|| {
        let sets = available();
        let wanted = std::env::var("VECTOR_EXT_KERNELS").unwrap_or_default();
        sets.iter()
            .find(|k| !wanted.is_empty() && k.name == wanted)
            .copied()
            .unwrap_or(sets[0])
    })
}

#[inline]
fn check_len<T>(a: &[T], b: &[T]) {
    assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
}

/// Squared Euclidean distance.
#[inline]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    check_len(a, b);
    (kernels().l2_squared)(a, b)
}

/// Inner product.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    check_len(a, b);
    (kernels().dot)(a, b)
}

/// Taxicab distance.
#[inline]
pub fn l1(a: &[f32], b: &[f32]) -> f32 {
    check_len(a, b);
    (kernels().l1)(a, b)
}

#[inline]
pub fn cosine_parts(a: &[f32], b: &[f32]) -> CosineParts {
    check_len(a, b);
    (kernels().cosine_parts)(a, b)
}

#[inline]
pub fn dot_and_norm(a: &[f32], b: &[f32]) -> (f32, f32) {
    check_len(a, b);
    (kernels().dot_and_norm)(a, b)
}

/// Every dot product between the rows of `a` (n x dim) and of `b`
/// (m x dim): `out[i * m + j] = a_i . b_j`. The SIMD paths work on tiles of
/// rows of both, so each loaded block of `a` meets several rows of `b` in
/// registers: about twice the throughput of separate `dot` calls when many
/// vectors meet many others (k-means, assigning rows to lists).
#[inline]
pub fn dot_block(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    assert!(dim > 0 && a.len().is_multiple_of(dim) && b.len().is_multiple_of(dim));
    assert_eq!(
        out.len(),
        (a.len() / dim) * (b.len() / dim),
        "dot_block output size"
    );
    (kernels().dot_block)(a, b, dim, out)
}

/// Hamming distance of two bit strings of equal byte length (bits past
/// the string's length must be zero in both, as Postgres keeps them).
#[inline]
pub fn hamming(a: &[u8], b: &[u8]) -> u64 {
    check_len(a, b);
    (kernels().hamming)(a, b)
}

/// Jaccard distance as pgvector defines it: 1 - |a & b| / |a | b|, and 1
/// when the strings share no set bit (two empty sets included).
#[inline]
pub fn jaccard(a: &[u8], b: &[u8]) -> f64 {
    check_len(a, b);
    let (ab, aa, bb) = (kernels().jaccard_counts)(a, b);
    if ab == 0 {
        1.0
    } else {
        1.0 - ab as f64 / (aa + bb - ab) as f64
    }
}

/// |a|^2 in f32 lanes (a dot with itself).
#[inline]
pub fn norm_squared(a: &[f32]) -> f32 {
    (kernels().dot)(a, a)
}

/// Squared L2 distance of an f32 vector and a binary16 one.
#[inline]
pub fn l2_squared_mixed(a: &[f32], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
    (kernels().l2_squared_mixed)(a, b)
}

#[inline]
pub fn dot_mixed(a: &[f32], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
    (kernels().dot_mixed)(a, b)
}

#[inline]
pub fn l1_mixed(a: &[f32], b: &[f16]) -> f32 {
    assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
    (kernels().l1_mixed)(a, b)
}

#[inline]
pub fn l2_squared_f16(a: &[f16], b: &[f16]) -> f32 {
    check_len(a, b);
    (kernels().l2_squared_f16)(a, b)
}

#[inline]
pub fn dot_f16(a: &[f16], b: &[f16]) -> f32 {
    check_len(a, b);
    (kernels().dot_f16)(a, b)
}

#[inline]
pub fn l1_f16(a: &[f16], b: &[f16]) -> f32 {
    check_len(a, b);
    (kernels().l1_f16)(a, b)
}

#[inline]
pub fn cosine_parts_f16(a: &[f16], b: &[f16]) -> CosineParts {
    check_len(a, b);
    (kernels().cosine_parts_f16)(a, b)
}

/// Cosine distance from its parts, as pgvector computes it: in double, with
/// the similarity clamped to [-1, 1]. A zero vector gives NaN.
#[inline]
pub fn cosine_distance_from_parts(dot: f32, norm_a: f32, norm_b: f32) -> f64 {
    let similarity = dot as f64 / ((norm_a as f64) * (norm_b as f64)).sqrt();
    if similarity.is_nan() {
        return f64::NAN;
    }
    1.0 - similarity.clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests;

/// A small deterministic generator (SplitMix64): builds and quantizer
/// rotations are repeatable from their seeds.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n
    }
}

/// Hints that the first `bytes` bytes of `v` are about to be read, so that
/// their cache misses overlap with other work (a graph search fetches
/// dozens of vectors scattered in memory per expanded node).
#[inline(always)]
pub fn prefetch<T>(v: &[T], bytes: usize) {
    prefetch_bytes(v.as_ptr() as *const u8, bytes.min(std::mem::size_of_val(v)));
}

/// Prefetches the cache lines of `len` bytes from `p`. Any address is
/// allowed: prefetch instructions never fault.
#[inline(always)]
pub fn prefetch_bytes(p: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut off = 0;
        while off < len {
            // SAFETY: _mm_prefetch is a hint with no architectural effect;
            // it does not fault on any address.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    p.wrapping_add(off) as *const i8,
                )
            };
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (p, len);
}
