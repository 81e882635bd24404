//! aarch64 NEON kernels (4 lanes, four accumulators). Half-precision inputs are
//! widened block by block into stack buffers and fed to the f32 kernels.
//! Not exercised by this repository's CI (x86_64 only); tested on aarch64 by
//! the same unit tests as the x86 paths.

use crate::{CosineParts, Kernels};
use half::f16;
use std::arch::aarch64::*;

macro_rules! neon_reduce {
    ($name:ident, |$x:ident, $y:ident, $acc:ident| $step:expr) => {
        fn $name(a: &[f32], b: &[f32]) -> f32 {
            // the kernel set is public: a caller may pass any slices
            assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
            let n = a.len();
            let (pa, pb) = (a.as_ptr(), b.as_ptr());
            // SAFETY: NEON is mandatory on aarch64; loads read 4 floats below n.
            unsafe {
                let mut acc = [vdupq_n_f32(0.0); 4];
                let mut i = 0;
                while i + 16 <= n {
                    for k in 0..4 {
                        let ($x, $y, $acc) = (
                            vld1q_f32(pa.add(i + 4 * k)),
                            vld1q_f32(pb.add(i + 4 * k)),
                            acc[k],
                        );
                        acc[k] = $step;
                    }
                    i += 16;
                }
                while i + 4 <= n {
                    let ($x, $y, $acc) = (vld1q_f32(pa.add(i)), vld1q_f32(pb.add(i)), acc[0]);
                    acc[0] = $step;
                    i += 4;
                }
                let mut sum = vaddvq_f32(vaddq_f32(
                    vaddq_f32(acc[0], acc[1]),
                    vaddq_f32(acc[2], acc[3]),
                ));
                while i < n {
                    let ($x, $y, $acc) = (vdupq_n_f32(a[i]), vdupq_n_f32(b[i]), vdupq_n_f32(0.0));
                    sum += vgetq_lane_f32($step, 0);
                    i += 1;
                }
                sum
            }
        }
    };
}

neon_reduce!(l2, |x, y, acc| {
    let d = vsubq_f32(x, y);
    vfmaq_f32(acc, d, d)
});
neon_reduce!(dot, |x, y, acc| vfmaq_f32(acc, x, y));
neon_reduce!(l1, |x, y, acc| vaddq_f32(acc, vabdq_f32(x, y)));

fn cosine(a: &[f32], b: &[f32]) -> CosineParts {
    // the kernel set is public: a caller may pass any slices
    assert_eq!(a.len(), b.len(), "distance kernels need equal lengths");
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // SAFETY: NEON is mandatory on aarch64; loads read 4 floats below n.
    unsafe {
        let z = vdupq_n_f32(0.0);
        let (mut d, mut na, mut nb) = (z, z, z);
        let mut i = 0;
        while i + 4 <= n {
            let x = vld1q_f32(pa.add(i));
            let y = vld1q_f32(pb.add(i));
            d = vfmaq_f32(d, x, y);
            na = vfmaq_f32(na, x, x);
            nb = vfmaq_f32(nb, y, y);
            i += 4;
        }
        let mut p = CosineParts {
            dot: vaddvq_f32(d),
            norm_a: vaddvq_f32(na),
            norm_b: vaddvq_f32(nb),
        };
        for j in i..n {
            p.dot += a[j] * b[j];
            p.norm_a += a[j] * a[j];
            p.norm_b += b[j] * b[j];
        }
        p
    }
}

fn dot_norm(a: &[f32], b: &[f32]) -> (f32, f32) {
    let p = cosine(a, b);
    (p.dot, p.norm_a)
}

/// Widens 64-element blocks of both inputs and folds `f32_kernel` results.
fn widened<R>(a: &[f16], b: &[f16], init: R, mut fold: impl FnMut(R, &[f32], &[f32]) -> R) -> R {
    let mut wa = [0.0f32; 64];
    let mut wb = [0.0f32; 64];
    let mut acc = init;
    for (ca, cb) in a.chunks(64).zip(b.chunks(64)) {
        for (w, h) in wa.iter_mut().zip(ca) {
            *w = h.to_f32();
        }
        for (w, h) in wb.iter_mut().zip(cb) {
            *w = h.to_f32();
        }
        acc = fold(acc, &wa[..ca.len()], &wb[..cb.len()]);
    }
    acc
}

fn l2_h(a: &[f16], b: &[f16]) -> f32 {
    widened(a, b, 0.0, |s, x, y| s + l2(x, y))
}
fn dot_h(a: &[f16], b: &[f16]) -> f32 {
    widened(a, b, 0.0, |s, x, y| s + dot(x, y))
}
fn l1_h(a: &[f16], b: &[f16]) -> f32 {
    widened(a, b, 0.0, |s, x, y| s + l1(x, y))
}
fn cosine_h(a: &[f16], b: &[f16]) -> CosineParts {
    let zero = CosineParts {
        dot: 0.0,
        norm_a: 0.0,
        norm_b: 0.0,
    };
    widened(a, b, zero, |s, x, y| {
        let p = cosine(x, y);
        CosineParts {
            dot: s.dot + p.dot,
            norm_a: s.norm_a + p.norm_a,
            norm_b: s.norm_b + p.norm_b,
        }
    })
}

fn dot_block(a: &[f32], b: &[f32], dim: usize, out: &mut [f32]) {
    crate::scalar::dot_block_by_pairs(a, b, dim, out, dot)
}

pub const NEON: Kernels = Kernels {
    name: "neon",
    dot_block,
    // portable loops for now (correct, not vectorised by hand)
    l2_squared_mixed: crate::scalar::l2_squared_mixed,
    dot_mixed: crate::scalar::dot_mixed,
    l1_mixed: crate::scalar::l1_mixed,
    // count_ones compiles to NEON's cnt on aarch64
    hamming: crate::scalar::hamming_bits,
    rabitq_counts: crate::scalar::rabitq_counts,
    nibble_dot: crate::scalar::nibble_dot_kernel,
    nibble_pair: crate::scalar::nibble_pair,
    jaccard_counts: crate::scalar::jaccard_counts,
    l2_squared: l2,
    dot,
    l1,
    cosine_parts: cosine,
    dot_and_norm: dot_norm,
    l2_squared_f16: l2_h,
    dot_f16: dot_h,
    l1_f16: l1_h,
    cosine_parts_f16: cosine_h,
};
