//! x86_64 kernels: AVX-512F (16 lanes) and AVX2+FMA+F16C (8 lanes).
//!
//! Each kernel keeps four independent accumulators so the FMA latency chain
//! does not bound throughput, and finishes the tail by copying the last
//! partial block into a zero-padded buffer (zeros add nothing to any of these
//! sums), so every lane count and length is handled by one code path.

use crate::{CosineParts, Kernels};
use half::f16;
use std::arch::x86_64::*;

/// Pads the last `a.len() % lanes` elements with zeros into stack buffers.
#[inline(always)]
fn padded_tail<A: Copy + Default, B: Copy + Default, const L: usize>(
    a: &[A],
    b: &[B],
    start: usize,
) -> ([A; L], [B; L]) {
    let mut ta = [A::default(); L];
    let mut tb = [B::default(); L];
    let n = a.len() - start;
    ta[..n].copy_from_slice(&a[start..]);
    tb[..n].copy_from_slice(&b[start..]);
    (ta, tb)
}

// ---------------------------------------------------------------- AVX-512 --

#[inline(always)]
unsafe fn load512_f32(p: *const f32) -> __m512 {
    // SAFETY: callers pass a pointer with 16 readable f32s; loadu has no alignment need.
    unsafe { _mm512_loadu_ps(p) }
}

#[inline(always)]
unsafe fn load512_f16(p: *const f16) -> __m512 {
    // SAFETY: callers pass a pointer with 16 readable f16s (32 bytes).
    unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p as *const __m256i)) }
}

/// One reduction over two slices: `$step(x, y, acc) -> acc` on 16-lane blocks.
macro_rules! avx512_reduce {
    ($name:ident, $ty:ty, $load:ident, |$x:ident, $y:ident, $acc:ident| $step:expr) => {
        avx512_reduce!($name, $ty, $load, $ty, $load, |$x, $y, $acc| $step);
    };
    ($name:ident, $ta:ty, $la:ident, $tb:ty, $lb:ident, |$x:ident, $y:ident, $acc:ident| $step:expr) => {
        #[target_feature(enable = "avx512f")]
        unsafe fn $name(a: &[$ta], b: &[$tb]) -> f32 {
            #[inline(always)]
            fn step($x: __m512, $y: __m512, $acc: __m512) -> __m512 {
                // SAFETY: only reached from the avx512f function above.
                unsafe { $step }
            }
            // the kernel set is public: a caller may pass any slices
            assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
            let n = a.len();
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc = [_mm512_setzero_ps(); 4];
            let mut i = 0;
            // SAFETY: every load reads 16 elements at i + k*16 < n (checked by the
            // loop bounds); the tail reads from 16-element stack buffers.
            unsafe {
                while i + 64 <= n {
                    for k in 0..4 {
                        acc[k] = step($la(pa.add(i + 16 * k)), $lb(pb.add(i + 16 * k)), acc[k]);
                    }
                    i += 64;
                }
                while i + 16 <= n {
                    acc[0] = step($la(pa.add(i)), $lb(pb.add(i)), acc[0]);
                    i += 16;
                }
                if i < n {
                    let (ta, tb) = padded_tail::<$ta, $tb, 16>(a, b, i);
                    acc[1] = step($la(ta.as_ptr()), $lb(tb.as_ptr()), acc[1]);
                }
            }
            let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
            _mm512_reduce_add_ps(sum)
        }
    };
}

avx512_reduce!(l2_512, f32, load512_f32, |x, y, acc| {
    let d = _mm512_sub_ps(x, y);
    _mm512_fmadd_ps(d, d, acc)
});
avx512_reduce!(dot_512, f32, load512_f32, |x, y, acc| _mm512_fmadd_ps(
    x, y, acc
));
avx512_reduce!(l1_512, f32, load512_f32, |x, y, acc| _mm512_add_ps(
    acc,
    _mm512_abs_ps(_mm512_sub_ps(x, y))
));
avx512_reduce!(l2_512_f16, f16, load512_f16, |x, y, acc| {
    let d = _mm512_sub_ps(x, y);
    _mm512_fmadd_ps(d, d, acc)
});
avx512_reduce!(dot_512_f16, f16, load512_f16, |x, y, acc| _mm512_fmadd_ps(
    x, y, acc
));
avx512_reduce!(l1_512_f16, f16, load512_f16, |x, y, acc| _mm512_add_ps(
    acc,
    _mm512_abs_ps(_mm512_sub_ps(x, y))
));

// f32 query against binary16 stored vectors (halfvec indexes)
avx512_reduce!(
    l2_512_mixed,
    f32,
    load512_f32,
    f16,
    load512_f16,
    |x, y, acc| {
        let d = _mm512_sub_ps(x, y);
        _mm512_fmadd_ps(d, d, acc)
    }
);
avx512_reduce!(
    dot_512_mixed,
    f32,
    load512_f32,
    f16,
    load512_f16,
    |x, y, acc| _mm512_fmadd_ps(x, y, acc)
);
avx512_reduce!(
    l1_512_mixed,
    f32,
    load512_f32,
    f16,
    load512_f16,
    |x, y, acc| _mm512_add_ps(acc, _mm512_abs_ps(_mm512_sub_ps(x, y)))
);

/// Dot, |a|^2 and |b|^2 with two blocks in flight (six accumulators).
macro_rules! avx512_cosine {
    ($name:ident, $ty:ty, $load:ident) => {
        #[target_feature(enable = "avx512f")]
        unsafe fn $name(a: &[$ty], b: &[$ty]) -> CosineParts {
            // the kernel set is public: a caller may pass any slices
            assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
            let n = a.len();
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let z = _mm512_setzero_ps();
            let (mut d, mut na, mut nb) = ([z; 2], [z; 2], [z; 2]);
            let mut i = 0;
            // SAFETY: loads stay below n (loop bounds) or read the stack tail buffers.
            unsafe {
                while i + 32 <= n {
                    for k in 0..2 {
                        let x = $load(pa.add(i + 16 * k));
                        let y = $load(pb.add(i + 16 * k));
                        d[k] = _mm512_fmadd_ps(x, y, d[k]);
                        na[k] = _mm512_fmadd_ps(x, x, na[k]);
                        nb[k] = _mm512_fmadd_ps(y, y, nb[k]);
                    }
                    i += 32;
                }
                while i < n {
                    let (x, y) = if i + 16 <= n {
                        ($load(pa.add(i)), $load(pb.add(i)))
                    } else {
                        let (ta, tb) = padded_tail::<$ty, $ty, 16>(a, b, i);
                        ($load(ta.as_ptr()), $load(tb.as_ptr()))
                    };
                    d[0] = _mm512_fmadd_ps(x, y, d[0]);
                    na[0] = _mm512_fmadd_ps(x, x, na[0]);
                    nb[0] = _mm512_fmadd_ps(y, y, nb[0]);
                    i += 16;
                }
            }
            CosineParts {
                dot: _mm512_reduce_add_ps(_mm512_add_ps(d[0], d[1])),
                norm_a: _mm512_reduce_add_ps(_mm512_add_ps(na[0], na[1])),
                norm_b: _mm512_reduce_add_ps(_mm512_add_ps(nb[0], nb[1])),
            }
        }
    };
}

avx512_cosine!(cosine_512, f32, load512_f32);
avx512_cosine!(cosine_512_f16, f16, load512_f16);

#[target_feature(enable = "avx512f")]
unsafe fn dot_norm_512(a: &[f32], b: &[f32]) -> (f32, f32) {
    // the kernel set is public: a caller may pass any slices
    assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let z = _mm512_setzero_ps();
    let (mut d, mut na) = ([z; 3], [z; 3]);
    let mut i = 0;
    // SAFETY: loads stay below n (loop bounds) or read the stack tail buffers.
    unsafe {
        while i + 48 <= n {
            for k in 0..3 {
                let x = load512_f32(pa.add(i + 16 * k));
                let y = load512_f32(pb.add(i + 16 * k));
                d[k] = _mm512_fmadd_ps(x, y, d[k]);
                na[k] = _mm512_fmadd_ps(x, x, na[k]);
            }
            i += 48;
        }
        while i < n {
            let (x, y) = if i + 16 <= n {
                (load512_f32(pa.add(i)), load512_f32(pb.add(i)))
            } else {
                let (ta, tb) = padded_tail::<f32, f32, 16>(a, b, i);
                (load512_f32(ta.as_ptr()), load512_f32(tb.as_ptr()))
            };
            d[0] = _mm512_fmadd_ps(x, y, d[0]);
            na[0] = _mm512_fmadd_ps(x, x, na[0]);
            i += 16;
        }
    }
    (
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(d[0], d[1]), d[2])),
        _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(na[0], na[1]), na[2])),
    )
}

// ------------------------------------------------------------- AVX2 + FMA --

#[inline(always)]
unsafe fn load256_f32(p: *const f32) -> __m256 {
    // SAFETY: callers pass a pointer with 8 readable f32s.
    unsafe { _mm256_loadu_ps(p) }
}

#[inline(always)]
unsafe fn load256_f16(p: *const f16) -> __m256 {
    // SAFETY: callers pass a pointer with 8 readable f16s (16 bytes); F16C is enabled
    // in every caller.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)) }
}

#[inline(always)]
fn hsum256(v: __m256) -> f32 {
    // SAFETY: only inlined into functions compiled with avx2.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

#[inline(always)]
fn abs256(v: __m256) -> __m256 {
    // SAFETY: only inlined into functions compiled with avx2.
    unsafe { _mm256_andnot_ps(_mm256_set1_ps(-0.0), v) }
}

macro_rules! avx2_reduce {
    ($name:ident, $ty:ty, $load:ident, |$x:ident, $y:ident, $acc:ident| $step:expr) => {
        avx2_reduce!($name, $ty, $load, $ty, $load, |$x, $y, $acc| $step);
    };
    ($name:ident, $ta:ty, $la:ident, $tb:ty, $lb:ident, |$x:ident, $y:ident, $acc:ident| $step:expr) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name(a: &[$ta], b: &[$tb]) -> f32 {
            #[inline(always)]
            fn step($x: __m256, $y: __m256, $acc: __m256) -> __m256 {
                // SAFETY: only reached from the avx2+fma function above.
                unsafe { $step }
            }
            // the kernel set is public: a caller may pass any slices
            assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
            let n = a.len();
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut i = 0;
            // SAFETY: loads stay below n (loop bounds) or read the stack tail buffers.
            unsafe {
                while i + 32 <= n {
                    for k in 0..4 {
                        acc[k] = step($la(pa.add(i + 8 * k)), $lb(pb.add(i + 8 * k)), acc[k]);
                    }
                    i += 32;
                }
                while i + 8 <= n {
                    acc[0] = step($la(pa.add(i)), $lb(pb.add(i)), acc[0]);
                    i += 8;
                }
                if i < n {
                    let (ta, tb) = padded_tail::<$ta, $tb, 8>(a, b, i);
                    acc[1] = step($la(ta.as_ptr()), $lb(tb.as_ptr()), acc[1]);
                }
            }
            hsum256(_mm256_add_ps(
                _mm256_add_ps(acc[0], acc[1]),
                _mm256_add_ps(acc[2], acc[3]),
            ))
        }
    };
}

avx2_reduce!(l2_256, f32, load256_f32, |x, y, acc| {
    let d = _mm256_sub_ps(x, y);
    _mm256_fmadd_ps(d, d, acc)
});
avx2_reduce!(dot_256, f32, load256_f32, |x, y, acc| _mm256_fmadd_ps(
    x, y, acc
));
avx2_reduce!(l1_256, f32, load256_f32, |x, y, acc| _mm256_add_ps(
    acc,
    abs256(_mm256_sub_ps(x, y))
));
avx2_reduce!(l2_256_f16, f16, load256_f16, |x, y, acc| {
    let d = _mm256_sub_ps(x, y);
    _mm256_fmadd_ps(d, d, acc)
});
avx2_reduce!(dot_256_f16, f16, load256_f16, |x, y, acc| _mm256_fmadd_ps(
    x, y, acc
));
avx2_reduce!(l1_256_f16, f16, load256_f16, |x, y, acc| _mm256_add_ps(
    acc,
    abs256(_mm256_sub_ps(x, y))
));

avx2_reduce!(
    l2_256_mixed,
    f32,
    load256_f32,
    f16,
    load256_f16,
    |x, y, acc| {
        let d = _mm256_sub_ps(x, y);
        _mm256_fmadd_ps(d, d, acc)
    }
);
avx2_reduce!(
    dot_256_mixed,
    f32,
    load256_f32,
    f16,
    load256_f16,
    |x, y, acc| _mm256_fmadd_ps(x, y, acc)
);
avx2_reduce!(
    l1_256_mixed,
    f32,
    load256_f32,
    f16,
    load256_f16,
    |x, y, acc| _mm256_add_ps(acc, abs256(_mm256_sub_ps(x, y)))
);

macro_rules! avx2_cosine {
    ($name:ident, $ty:ty, $load:ident) => {
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name(a: &[$ty], b: &[$ty]) -> CosineParts {
            // the kernel set is public: a caller may pass any slices
            assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
            let n = a.len();
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            let z = _mm256_setzero_ps();
            let (mut d, mut na, mut nb) = ([z; 2], [z; 2], [z; 2]);
            let mut i = 0;
            // SAFETY: loads stay below n (loop bounds) or read the stack tail buffers.
            unsafe {
                while i + 16 <= n {
                    for k in 0..2 {
                        let x = $load(pa.add(i + 8 * k));
                        let y = $load(pb.add(i + 8 * k));
                        d[k] = _mm256_fmadd_ps(x, y, d[k]);
                        na[k] = _mm256_fmadd_ps(x, x, na[k]);
                        nb[k] = _mm256_fmadd_ps(y, y, nb[k]);
                    }
                    i += 16;
                }
                while i < n {
                    let (x, y) = if i + 8 <= n {
                        ($load(pa.add(i)), $load(pb.add(i)))
                    } else {
                        let (ta, tb) = padded_tail::<$ty, $ty, 8>(a, b, i);
                        ($load(ta.as_ptr()), $load(tb.as_ptr()))
                    };
                    d[0] = _mm256_fmadd_ps(x, y, d[0]);
                    na[0] = _mm256_fmadd_ps(x, x, na[0]);
                    nb[0] = _mm256_fmadd_ps(y, y, nb[0]);
                    i += 8;
                }
            }
            CosineParts {
                dot: hsum256(_mm256_add_ps(d[0], d[1])),
                norm_a: hsum256(_mm256_add_ps(na[0], na[1])),
                norm_b: hsum256(_mm256_add_ps(nb[0], nb[1])),
            }
        }
    };
}

avx2_cosine!(cosine_256, f32, load256_f32);
avx2_cosine!(cosine_256_f16, f16, load256_f16);

#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_norm_256(a: &[f32], b: &[f32]) -> (f32, f32) {
    // SAFETY: same features as this function.
    let p = unsafe { cosine_256(a, b) };
    (p.dot, p.norm_a)
}

// ------------------------------------------------------ dot product tiles --

/// `dot_block` on tiles of P rows of `a` by C rows of `b`: each step loads
/// P + C blocks of `L` lanes and does P x C fused multiply-adds in
/// registers. Rows left over at the edges take 1-row tiles. The last
/// `dim % L` elements are summed in scalar code.
macro_rules! dot_block_kernel {
    ($name:ident, $tile:ident, $feature:literal, $vec:ty, $lanes:expr,
     $zero:ident, $load:ident, $fma:ident, $hsum:path, $p:expr, $c:expr) => {
        #[target_feature(enable = $feature)]
        #[inline]
        unsafe fn $tile<const P: usize, const C: usize>(
            a: &[f32],
            b: &[f32],
            dim: usize,
            (i, j, m): (usize, usize, usize),
            out: &mut [f32],
        ) {
            assert!((i + P) * dim <= a.len() && (j + C) * dim <= b.len());
            let main = dim - dim % $lanes;
            let mut acc = [[$zero(); C]; P];
            let mut k = 0;
            while k < main {
                let mut bv = [$zero(); C];
                for (y, v) in bv.iter_mut().enumerate() {
                    // SAFETY: row j + y < b's rows and k + lanes <= dim (asserted above).
                    *v = unsafe { $load(b.as_ptr().add((j + y) * dim + k)) };
                }
                for (x, row) in acc.iter_mut().enumerate() {
                    // SAFETY: row i + x < a's rows and k + lanes <= dim.
                    let av = unsafe { $load(a.as_ptr().add((i + x) * dim + k)) };
                    for (acc, bv) in row.iter_mut().zip(&bv) {
                        *acc = $fma(av, *bv, *acc);
                    }
                }
                k += $lanes;
            }
            for (x, row) in acc.iter().enumerate() {
                for (y, v) in row.iter().enumerate() {
                    let mut sum = $hsum(*v);
                    for t in main..dim {
                        sum += a[(i + x) * dim + t] * b[(j + y) * dim + t];
                    }
                    out[(i + x) * m + j + y] = sum;
                }
            }
        }

        #[target_feature(enable = $feature)]
        unsafe fn $name(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
            let (n, m) = (a.len() / dim, b.len() / dim);
            let (full_rows, full_cols) = (n - n % $p, m - m % $c);
            // SAFETY: every tile lies inside a's n and b's m rows (each
            // tile also asserts it), and our caller enabled the features the
            // tile functions need.
            unsafe {
                for i in (0..full_rows).step_by($p) {
                    for j in (0..full_cols).step_by($c) {
                        $tile::<$p, $c>(a, b, dim, (i, j, m), out);
                    }
                    for j in full_cols..m {
                        $tile::<$p, 1>(a, b, dim, (i, j, m), out);
                    }
                }
                for i in full_rows..n {
                    for j in (0..full_cols).step_by($c) {
                        $tile::<1, $c>(a, b, dim, (i, j, m), out);
                    }
                    for j in full_cols..m {
                        $tile::<1, 1>(a, b, dim, (i, j, m), out);
                    }
                }
            }
        }
    };
}

#[inline(always)]
fn hsum512(v: __m512) -> f32 {
    // SAFETY: only inlined into functions compiled with avx512f.
    unsafe { _mm512_reduce_add_ps(v) }
}

#[inline(always)]
unsafe fn load256(p: *const f32) -> __m256 {
    // SAFETY: callers pass a pointer with 8 readable f32s.
    unsafe { _mm256_loadu_ps(p) }
}

// 32 vector registers: 4 x 4 accumulators plus 8 operands.
dot_block_kernel!(
    dot_block_512,
    tile_512,
    "avx512f",
    __m512,
    16,
    _mm512_setzero_ps,
    load512_f32,
    _mm512_fmadd_ps,
    hsum512,
    4,
    4
);
// 16 vector registers: 3 x 3 accumulators plus 6 operands.
dot_block_kernel!(
    dot_block_256,
    tile_256,
    "avx2,fma,f16c",
    __m256,
    8,
    _mm256_setzero_ps,
    load256,
    _mm256_fmadd_ps,
    hsum256,
    3,
    3
);

// ------------------------------------------------------------- bit strings --

// The portable loops, compiled with the popcnt instruction (without it
// count_ones is a dozen shifts and masks per word).
#[target_feature(enable = "popcnt")]
unsafe fn hamming_popcnt(a: &[u8], b: &[u8]) -> u64 {
    crate::scalar::hamming_bits(a, b)
}

#[target_feature(enable = "popcnt")]
unsafe fn rabitq_popcnt(code: &[u64], planes: &[u64]) -> (u32, u32) {
    crate::scalar::rabitq_counts(code, planes)
}

/// `scalar::nibble_dot_split` 32 code bytes (64 levels) at a time: each
/// byte's low and high nibble multiplied with the even and odd query levels
/// by `maddubs` (unsigned query bytes times the nibbles as signed bytes,
/// adjacent products summed to 16 bits: at most 2 * 255 * 15 each), the two
/// added (at most 15,300) and widened to 32 bits by `madd`; the levels'
/// sum by `sad` against zero.
#[target_feature(enable = "avx2")]
unsafe fn nibble_avx2(code: &[u8], even: &[u8], odd: &[u8]) -> (u32, u32) {
    assert!(code.len() == even.len() && code.len() == odd.len());
    let whole = code.len() - code.len() % 32;
    let mask = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let zero = _mm256_setzero_si256();
    let (mut dot, mut sum) = (zero, zero);
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 32 <= whole <= each slice's length; loadu takes any
        // alignment.
        let (c, qe, qo) = unsafe {
            (
                _mm256_loadu_si256(code.as_ptr().add(i) as *const __m256i),
                _mm256_loadu_si256(even.as_ptr().add(i) as *const __m256i),
                _mm256_loadu_si256(odd.as_ptr().add(i) as *const __m256i),
            )
        };
        let lo = _mm256_and_si256(c, mask);
        let hi = _mm256_and_si256(_mm256_srli_epi16(c, 4), mask);
        let pairs = _mm256_add_epi16(_mm256_maddubs_epi16(qe, lo), _mm256_maddubs_epi16(qo, hi));
        dot = _mm256_add_epi32(dot, _mm256_madd_epi16(pairs, ones));
        sum = _mm256_add_epi64(
            sum,
            _mm256_add_epi64(_mm256_sad_epu8(lo, zero), _mm256_sad_epu8(hi, zero)),
        );
        i += 32;
    }
    let mut d = [0i32; 8];
    let mut s = [0u64; 4];
    // SAFETY: storeu to local arrays of 32 bytes.
    unsafe {
        _mm256_storeu_si256(d.as_mut_ptr() as *mut __m256i, dot);
        _mm256_storeu_si256(s.as_mut_ptr() as *mut __m256i, sum);
    }
    let (ts, td) = crate::scalar::nibble_dot_split(&code[whole..], &even[whole..], &odd[whole..]);
    (
        s.iter().sum::<u64>() as u32 + ts,
        d.iter().sum::<i32>() as u32 + td,
    )
}

/// `scalar::nibble_pair` 32 bytes (64 levels of each code) at a time:
/// low nibbles times low nibbles and high times high by `maddubs` (levels
/// of at most 15 are valid signed bytes; adjacent products summed to 16
/// bits, at most 450, the two added), widened to 32 bits by `madd`; each
/// code's levels summed by `sad` against zero.
#[target_feature(enable = "avx2")]
unsafe fn nibble_pair_avx2(a: &[u8], b: &[u8]) -> (u32, u32, u32) {
    assert_eq!(a.len(), b.len());
    let whole = a.len() - a.len() % 32;
    let mask = _mm256_set1_epi8(0x0F);
    let ones = _mm256_set1_epi16(1);
    let zero = _mm256_setzero_si256();
    let (mut dot, mut sum_a, mut sum_b) = (zero, zero, zero);
    let mut i = 0;
    while i < whole {
        // SAFETY: i + 32 <= whole <= both slices' length; loadu takes any
        // alignment.
        let (x, y) = unsafe {
            (
                _mm256_loadu_si256(a.as_ptr().add(i) as *const __m256i),
                _mm256_loadu_si256(b.as_ptr().add(i) as *const __m256i),
            )
        };
        let (xl, xh) = (
            _mm256_and_si256(x, mask),
            _mm256_and_si256(_mm256_srli_epi16(x, 4), mask),
        );
        let (yl, yh) = (
            _mm256_and_si256(y, mask),
            _mm256_and_si256(_mm256_srli_epi16(y, 4), mask),
        );
        let pairs = _mm256_add_epi16(_mm256_maddubs_epi16(xl, yl), _mm256_maddubs_epi16(xh, yh));
        dot = _mm256_add_epi32(dot, _mm256_madd_epi16(pairs, ones));
        sum_a = _mm256_add_epi64(sum_a, _mm256_sad_epu8(_mm256_add_epi8(xl, xh), zero));
        sum_b = _mm256_add_epi64(sum_b, _mm256_sad_epu8(_mm256_add_epi8(yl, yh), zero));
        i += 32;
    }
    let mut d = [0i32; 8];
    let (mut sa, mut sb) = ([0u64; 4], [0u64; 4]);
    // SAFETY: storeu to local arrays of 32 bytes.
    unsafe {
        _mm256_storeu_si256(d.as_mut_ptr() as *mut __m256i, dot);
        _mm256_storeu_si256(sa.as_mut_ptr() as *mut __m256i, sum_a);
        _mm256_storeu_si256(sb.as_mut_ptr() as *mut __m256i, sum_b);
    }
    let (ta, tb, td) = crate::scalar::nibble_pair(&a[whole..], &b[whole..]);
    (
        sa.iter().sum::<u64>() as u32 + ta,
        sb.iter().sum::<u64>() as u32 + tb,
        d.iter().sum::<i32>() as u32 + td,
    )
}

#[target_feature(enable = "popcnt")]
unsafe fn jaccard_popcnt(a: &[u8], b: &[u8]) -> (u64, u64, u64) {
    crate::scalar::jaccard_counts(a, b)
}

// ------------------------------------------------------- safe entry points --

/// Wraps a target-feature kernel in a plain fn; the kernel set holding it is
/// only handed out after `available()` detected the features.
macro_rules! entry {
    ($pub_name:ident, $inner:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        fn $pub_name($($arg: $ty),*) -> $ret {
            // SAFETY: this entry point is only reachable through a Kernels set that
            // `available()` returns after detecting the CPU features $inner needs.
            unsafe { $inner($($arg),*) }
        }
    };
}

entry!(e_l2_512, l2_512, (a: &[f32], b: &[f32]) -> f32);
entry!(e_dot_512, dot_512, (a: &[f32], b: &[f32]) -> f32);
entry!(e_l1_512, l1_512, (a: &[f32], b: &[f32]) -> f32);
entry!(e_cos_512, cosine_512, (a: &[f32], b: &[f32]) -> CosineParts);
entry!(e_dn_512, dot_norm_512, (a: &[f32], b: &[f32]) -> (f32, f32));
entry!(e_block_512, dot_block_512, (a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) -> ());
entry!(e_l2_512_h, l2_512_f16, (a: &[f16], b: &[f16]) -> f32);
entry!(e_dot_512_h, dot_512_f16, (a: &[f16], b: &[f16]) -> f32);
entry!(e_l1_512_h, l1_512_f16, (a: &[f16], b: &[f16]) -> f32);
entry!(e_cos_512_h, cosine_512_f16, (a: &[f16], b: &[f16]) -> CosineParts);

entry!(e_l2_512_m, l2_512_mixed, (a: &[f32], b: &[f16]) -> f32);
entry!(e_dot_512_m, dot_512_mixed, (a: &[f32], b: &[f16]) -> f32);
entry!(e_l1_512_m, l1_512_mixed, (a: &[f32], b: &[f16]) -> f32);
entry!(e_l2_256_m, l2_256_mixed, (a: &[f32], b: &[f16]) -> f32);
entry!(e_dot_256_m, dot_256_mixed, (a: &[f32], b: &[f16]) -> f32);
entry!(e_l1_256_m, l1_256_mixed, (a: &[f32], b: &[f16]) -> f32);
entry!(e_hamming, hamming_popcnt, (a: &[u8], b: &[u8]) -> u64);
entry!(e_rabitq, rabitq_popcnt, (code: &[u64], planes: &[u64]) -> (u32, u32));
entry!(e_jaccard, jaccard_popcnt, (a: &[u8], b: &[u8]) -> (u64, u64, u64));
entry!(e_nibble, nibble_avx2, (code: &[u8], even: &[u8], odd: &[u8]) -> (u32, u32));
entry!(e_nibble_pair, nibble_pair_avx2, (a: &[u8], b: &[u8]) -> (u32, u32, u32));

entry!(e_l2_256, l2_256, (a: &[f32], b: &[f32]) -> f32);
entry!(e_dot_256, dot_256, (a: &[f32], b: &[f32]) -> f32);
entry!(e_l1_256, l1_256, (a: &[f32], b: &[f32]) -> f32);
entry!(e_cos_256, cosine_256, (a: &[f32], b: &[f32]) -> CosineParts);
entry!(e_dn_256, dot_norm_256, (a: &[f32], b: &[f32]) -> (f32, f32));
entry!(e_block_256, dot_block_256, (a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) -> ());
entry!(e_l2_256_h, l2_256_f16, (a: &[f16], b: &[f16]) -> f32);
entry!(e_dot_256_h, dot_256_f16, (a: &[f16], b: &[f16]) -> f32);
entry!(e_l1_256_h, l1_256_f16, (a: &[f16], b: &[f16]) -> f32);
entry!(e_cos_256_h, cosine_256_f16, (a: &[f16], b: &[f16]) -> CosineParts);

pub const AVX512: Kernels = Kernels {
    name: "avx512f",
    l2_squared: e_l2_512,
    dot: e_dot_512,
    l1: e_l1_512,
    cosine_parts: e_cos_512,
    dot_and_norm: e_dn_512,
    dot_block: e_block_512,
    l2_squared_mixed: e_l2_512_m,
    dot_mixed: e_dot_512_m,
    l1_mixed: e_l1_512_m,
    hamming: e_hamming,
    rabitq_counts: e_rabitq,
    nibble_dot: e_nibble,
    nibble_pair: e_nibble_pair,
    jaccard_counts: e_jaccard,
    l2_squared_f16: e_l2_512_h,
    dot_f16: e_dot_512_h,
    l1_f16: e_l1_512_h,
    cosine_parts_f16: e_cos_512_h,
};

pub const AVX2: Kernels = Kernels {
    name: "avx2+fma",
    l2_squared: e_l2_256,
    dot: e_dot_256,
    l1: e_l1_256,
    cosine_parts: e_cos_256,
    dot_and_norm: e_dn_256,
    dot_block: e_block_256,
    l2_squared_mixed: e_l2_256_m,
    dot_mixed: e_dot_256_m,
    l1_mixed: e_l1_256_m,
    hamming: e_hamming,
    rabitq_counts: e_rabitq,
    nibble_dot: e_nibble,
    nibble_pair: e_nibble_pair,
    jaccard_counts: e_jaccard,
    l2_squared_f16: e_l2_256_h,
    dot_f16: e_dot_256_h,
    l1_f16: e_l1_256_h,
    cosine_parts_f16: e_cos_256_h,
};
