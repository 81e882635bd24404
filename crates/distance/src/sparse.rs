//! Distances between sparse vectors: ascending indices with their non-zero
//! values, merged in one pass.
//!
//! Indexes carry a sparse vector in f32 words like the dense ones (see
//! `Storage::Sparse`): `[dim, nnz, indices[nnz], values[nnz]]`, the integers
//! as f32 bit patterns, never computed with.

/// A sparse vector: `indices` ascending, one value each.
#[derive(Clone, Copy, Debug)]
pub struct Sparse<'a> {
    pub indices: &'a [u32],
    pub values: &'a [f32],
}

impl<'a> Sparse<'a> {
    /// From a sparsevec's non-negative i32 indices, read as u32.
    pub fn from_signed(indices: &'a [i32], values: &'a [f32]) -> Self {
        debug_assert!(indices.iter().all(|i| *i >= 0));
        Sparse {
            indices: bytemuck::cast_slice(indices),
            values,
        }
    }
}

/// Words before the indices in the word form.
pub const WORDS_HEADER: usize = 2;

/// Words the word form of a vector with `nnz` non-zeros takes.
pub const fn words(nnz: usize) -> usize {
    WORDS_HEADER + 2 * nnz
}

/// Appends the word form of a vector of `dim` dimensions to `out`.
pub fn to_words(dim: u32, v: Sparse, out: &mut Vec<f32>) {
    out.push(f32::from_bits(dim));
    out.push(f32::from_bits(v.indices.len() as u32));
    out.extend(v.indices.iter().map(|i| f32::from_bits(*i)));
    out.extend_from_slice(v.values);
}

/// The dimensions a word form records.
pub fn dim_of(w: &[f32]) -> u32 {
    w.first().map_or(0, |d| d.to_bits())
}

/// Whether `w` is a well-formed word form (its length matches its count).
pub fn valid_words(w: &[f32]) -> bool {
    w.len() >= WORDS_HEADER && w.len() == words(w[1].to_bits() as usize)
}

/// Reads a word form; a malformed one reads as the empty vector (callers
/// check `valid_words` where the words come from a page).
#[inline]
pub fn from_words(w: &[f32]) -> Sparse<'_> {
    if !valid_words(w) {
        return Sparse {
            indices: &[],
            values: &[],
        };
    }
    let n = w[1].to_bits() as usize;
    let indices: &[u32] = bytemuck::cast_slice(&w[WORDS_HEADER..WORDS_HEADER + n]);
    Sparse {
        indices,
        values: &w[WORDS_HEADER + n..],
    }
}

/// Calls `f(a value, b value)` for every index either side holds (0 for the
/// side without it), in index order.
#[inline]
pub fn merge(a: Sparse, b: Sparse, mut f: impl FnMut(f32, f32)) {
    let (mut i, mut j) = (0, 0);
    while i < a.indices.len() && j < b.indices.len() {
        let (ai, bj) = (a.indices[i], b.indices[j]);
        if ai == bj {
            f(a.values[i], b.values[j]);
            i += 1;
            j += 1;
        } else if ai < bj {
            f(a.values[i], 0.0);
            i += 1;
        } else {
            f(0.0, b.values[j]);
            j += 1;
        }
    }
    a.values[i..].iter().for_each(|x| f(*x, 0.0));
    b.values[j..].iter().for_each(|y| f(0.0, *y));
}

/// The inner product over the indices both hold, skipping ahead with a
/// binary search through the longer list.
pub fn dot(a: Sparse, b: Sparse) -> f32 {
    let (short, long) = if a.indices.len() <= b.indices.len() {
        (a, b)
    } else {
        (b, a)
    };
    let mut sum = 0f32;
    let mut from = 0;
    for (i, v) in short.indices.iter().zip(short.values) {
        if from >= long.indices.len() {
            break;
        }
        match long.indices[from..].binary_search(i) {
            Ok(k) => {
                sum += v * long.values[from + k];
                from += k + 1;
            }
            Err(k) => from += k,
        }
    }
    sum
}

pub fn l2_squared(a: Sparse, b: Sparse) -> f32 {
    let mut sum = 0f32;
    merge(a, b, |x, y| sum += (x - y) * (x - y));
    sum
}

pub fn l1(a: Sparse, b: Sparse) -> f32 {
    let mut sum = 0f32;
    merge(a, b, |x, y| sum += (x - y).abs());
    sum
}

/// The squared norm, summed in f32 as the distances are.
pub fn norm_squared(a: Sparse) -> f32 {
    a.values.iter().map(|v| v * v).sum()
}

/// The norm, summed in f64.
pub fn norm_f64(a: Sparse) -> f64 {
    // fold from +0 (f64's Sum starts at -0, which an empty vector would show)
    a.values
        .iter()
        .fold(0.0f64, |acc, v| acc + *v as f64 * *v as f64)
        .sqrt()
}
