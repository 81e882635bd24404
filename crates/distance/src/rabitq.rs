//! RaBitQ with one bit per dimension (Gao and Long, SIGMOD 2024): a seeded
//! random rotation, codes for data vectors, prepared queries, and the
//! distance estimate with its error bound. Pure code, no page format yet
//! (the quantized hnsw element of issue 20 stores a `Code`).
//!
//! A data vector `v` is taken relative to a center `c` (the data's mean, or
//! zero) as the unit vector `o = (v - c) / |v - c|`, zero-padded to `D`
//! dimensions (a power of two) and rotated: `y = R o`. Its code is the sign
//! of each coordinate of `y`, standing for the unit vector `x = sign(y) /
//! sqrt(D)`; with it go `|v - c|`, `<x, y>` (how well the code points at
//! `o`; about 0.8 in high dimensions) and `<v - c, c>`. A query is rotated
//! the same way, `q' = R (q - c) / |q - c|`, and its coordinates rounded to
//! 4 bits, so that `<x, q'>` comes from popcounts of the code against the
//! query's four bit planes. `<o, q>` is estimated as `<x, q'> / <x, y>`,
//! unbiased, with an error below `EPSILON0 * sqrt((1 - <x,y>^2) / <x,y>^2)
//! / sqrt(D - 1)` with high probability (the paper's Theorem 3.2); the
//! 4-bit rounding of `q'` adds an error of standard deviation `delta /
//! sqrt(12)` per set bit, of which `Estimate::error` allows four. Distances follow from `<o, q>` and the norms.
//!
//! Extended RaBitQ (Gao et al., SIGMOD 2025) stores B bits per
//! dimension: each rotated coordinate becomes a level `u_i` in 0..2^B,
//! standing for `u_i - (2^B - 1) / 2` on a grid whose direction `x = (u -
//! c_B) / |u - c_B|` is the grid point nearest in angle to `y` (found among
//! the scales where some coordinate moves to the next level, those near the
//! best of a coarse pass over scales). Estimates have the same form with `<x, y>` near 1 (0.99 at
//! four bits against 0.8 at one), so the error shrinks with `sqrt(1 -
//! <x,y>^2)`; the query is then rounded to 8 bits, not 4, and the product
//! of levels is an integer dot product instead of popcounts. Four-bit codes
//! keep two levels to a byte.
//!
//! The rotation is three rounds of random sign flips and a normalised
//! Walsh-Hadamard transform: orthogonal, O(D log D), defined by its seed
//! alone, so an index stores the seed, not a D x D matrix. `D` is the
//! dimensions rounded up to a multiple of 64, not to a power of two (a
//! 1,536-d code would be a third larger): when `D` is not a power of two,
//! each round transforms the first `B` coordinates (`B` the largest power
//! of two below `D`), mixes the two halves pairwise, then transforms the
//! last `B` (as RaBitQ's authors' library does for such dimensions).

use crate::SplitMix;

/// Rounds of sign flips and Hadamard transforms in a rotation.
const ROUNDS: usize = 3;

/// The confidence of the error bound (the paper's epsilon_0).
pub const EPSILON0: f32 = 1.9;

/// The same for multi-bit codes, whose errors spread wider relative to
/// `sqrt(1 - <x,y>^2)` (calibrated: 99% of estimates within the bound on
/// Gaussian rows and on real embeddings, `tests`).
pub const EPSILON_MULTI: f32 = 2.5;

/// Standard deviations of the query's rounding error the bound allows for.
const ROUNDING_SIGMAS: f32 = 4.0;

/// Bits per rotated query coordinate.
const QUERY_BITS: usize = 4;

/// Dimensions of the rotated vectors (and bits of a code) for vectors of
/// `dims`: the next multiple of 64 (whole 64-bit words of one-bit codes,
/// whole 32-byte blocks of four-bit ones), at least 64.
pub fn padded_dims(dims: usize) -> usize {
    dims.max(1).div_ceil(64) * 64
}

/// Bits per dimension a code may have: one (the original RaBitQ) or four
/// (extended RaBitQ).
pub const SUPPORTED_BITS: [u32; 2] = [1, 4];

/// Bytes of a code's factors in stored form (`encode_bytes`): `norm`,
/// `quality`, `center_dot` and `level_norm`, little-endian f32, before the
/// levels.
pub const FACTOR_BYTES: usize = 16;

/// Bytes of a stored code of a `dims`-dimensional vector with `bits` per
/// dimension: its factors, then its levels in little-endian 64-bit words
/// (one bit each, or two four-bit levels to a byte, lower dimension in the
/// low half).
pub fn code_bytes(dims: usize, bits: u32) -> usize {
    FACTOR_BYTES + padded_dims(dims) * bits as usize / 8
}

/// Calls `f` with a stored code's bits and factors: the bits viewed in
/// place when they are 8-aligned (as pages keep them), else from a copy.
/// None when `bytes` is not a whole code.
pub fn with_code<R>(bytes: &[u8], f: impl FnOnce(&[u64], &Factors) -> R) -> Option<R> {
    let (head, bits) = bytes.split_at_checked(FACTOR_BYTES)?;
    if bits.is_empty() || bits.len() % 8 != 0 {
        return None;
    }
    let word = |i: usize| f32::from_le_bytes(head[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    let factors = Factors {
        norm: word(0),
        quality: word(1),
        center_dot: word(2),
        level_norm: word(3),
    };
    match bytemuck::try_cast_slice::<u8, u64>(bits) {
        Ok(words) if cfg!(target_endian = "little") => Some(f(words, &factors)),
        _ => {
            let words: Vec<u64> = bits
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect();
            Some(f(&words, &factors))
        }
    }
}

/// A seeded random orthogonal map of `dims`-dimensional vectors into
/// `padded` dimensions.
#[derive(Clone, Debug)]
pub struct Rotation {
    dims: usize,
    padded: usize,
    /// The Hadamard transforms' length: `padded` when it is a power of two,
    /// else the largest power of two below it (see `rotate_in_place`).
    block: usize,
    /// `ROUNDS` masks of `padded` bits: a set bit flips that coordinate.
    signs: Vec<u64>,
}

impl Rotation {
    pub fn new(dims: usize, seed: u64) -> Rotation {
        assert!(dims > 0, "a rotation needs at least one dimension");
        let padded = padded_dims(dims);
        let mut rng = SplitMix::new(seed);
        let signs = (0..ROUNDS * padded / 64).map(|_| rng.next_u64()).collect();
        let block = if padded.is_power_of_two() {
            padded
        } else {
            padded.next_power_of_two() / 2
        };
        Rotation {
            dims,
            padded,
            block,
            signs,
        }
    }

    pub fn dims(&self) -> usize {
        self.dims
    }

    /// The rotated vectors' (and the codes') number of dimensions.
    pub fn padded(&self) -> usize {
        self.padded
    }

    /// Writes the rotation of `x` (zero-padded) into `out`; `|out| = |x|`.
    pub fn rotate(&self, x: &[f32], out: &mut [f32]) {
        assert_eq!(x.len(), self.dims);
        out[..self.dims].copy_from_slice(x);
        self.rotate_in_place(out);
    }

    /// Rotates the vector held in `out[..dims]` in place (`out` is `padded`
    /// long; what lies past `dims` becomes the padding zeros first).
    pub fn rotate_in_place(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.padded);
        out[self.dims..].fill(0.0);
        for round in 0..ROUNDS {
            self.flip(round, out);
            if self.block == self.padded {
                self.hadamard_block(out);
            } else {
                let (p, b) = (self.padded, self.block);
                self.hadamard_block(&mut out[..b]);
                halves_butterfly(out);
                self.hadamard_block(&mut out[p - b..]);
            }
        }
    }

    /// Flips the coordinates round `round`'s mask says.
    fn flip(&self, round: usize, out: &mut [f32]) {
        let words = self.padded / 64;
        let mask = &self.signs[round * words..(round + 1) * words];
        for (i, v) in out.iter_mut().enumerate() {
            if mask[i / 64] >> (i % 64) & 1 == 1 {
                *v = -*v;
            }
        }
    }

    /// The normalised Hadamard transform of `block` coordinates, in place.
    fn hadamard_block(&self, v: &mut [f32]) {
        debug_assert_eq!(v.len(), self.block);
        hadamard(v);
        let scale = 1.0 / (self.block as f32).sqrt();
        v.iter_mut().for_each(|x| *x *= scale);
    }

    /// The inverse of `rotate_in_place`: `out` (`padded` long) is rotated
    /// back; the vector is in `out[..dims]` after.
    pub fn unrotate_in_place(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.padded);
        // each step (sign flip, normalised Hadamard transform, butterfly)
        // is its own inverse: undo them in reverse order
        for round in (0..ROUNDS).rev() {
            if self.block == self.padded {
                self.hadamard_block(out);
            } else {
                let (p, b) = (self.padded, self.block);
                self.hadamard_block(&mut out[p - b..]);
                halves_butterfly(out);
                self.hadamard_block(&mut out[..b]);
            }
            self.flip(round, out);
        }
    }
}

/// Mixes the two halves of `v` pairwise, `(a, b) -> ((a + b), (a - b)) /
/// sqrt(2)` for `a = v[i]`, `b = v[i + n/2]`: orthogonal and its own
/// inverse. Between the Hadamard transforms of the first and the last
/// `block` coordinates of a length that is not a power of two, it carries
/// what each transform mixed into the other's part.
fn halves_butterfly(v: &mut [f32]) {
    let half = v.len() / 2;
    let (a, b) = v.split_at_mut(half);
    let scale = std::f32::consts::FRAC_1_SQRT_2;
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        let (s, d) = ((*x + *y) * scale, (*x - *y) * scale);
        *x = s;
        *y = d;
    }
}

/// The levels of `bits` per dimension (more than one) nearest in angle to
/// the rotated unit vector `y`, packed into `out` (two four-bit levels to a
/// byte); returns `<x, y>` and `|u - c_B|`.
///
/// On the grid of `u - c_B` (half-integers up to `c_B` in magnitude), the
/// code for a scale `t` rounds `t |y_i|` to the grid; as `t` grows a
/// coordinate moves one step outward at `t = k / |y_i|`. The best angle is
/// at one of those steps (extended RaBitQ's search). Trying all of them in
/// order costs a sort of `7 D` steps per vector, most of the build's time
/// at thousands of dimensions, so the angle is first taken at
/// `COARSE_SCALES` scales spread over every useful one, and the steps are
/// then tried in order only between the two scales around the best of
/// those. The result is the exhaustive search's whenever the best step lies
/// in that bracket (tested against it, `exhaustive_best_levels`); any other
/// scale would still give a valid code, its `<x, y>` stored with it.
fn best_levels(y: &[f32], bits: u32, out: &mut [u64]) -> (f32, f32) {
    assert_eq!(bits, 4, "multi-bit codes are four bits a level");
    let steps = (1u32 << (bits - 1)) - 1;
    let (lo, hi) = scale_bracket(y, steps);
    // the levels at `lo`, and the steps between `lo` and `hi` in order
    let mut steps_of = vec![0u8; y.len()];
    let mut events: Vec<(f32, u32)> = Vec::with_capacity(y.len());
    let (mut ip, mut sq) = (0.0f64, 0.0f64);
    for (i, &v) in y.iter().enumerate() {
        let a = v.abs();
        let mut s = 0;
        if a > 0.0 {
            // the steps at or below `lo`, then those up to `hi` (whichever
            // way a step exactly at a bound rounds, the sweep starts from
            // the state it counts); float to integer casts saturate, so an
            // infinite `hi` allows every step
            s = ((lo * a) as u32).min(steps);
            let last = ((hi * a) as u32).min(steps);
            events.extend((s + 1..=last).map(|k| (k as f32 / a, i as u32)));
        }
        steps_of[i] = s as u8;
        let x = 0.5 + s as f64;
        ip += x * a as f64;
        sq += x * x;
    }
    sort_steps(&mut events, lo, hi);
    take_best_steps(y, &events, &mut steps_of, ip, sq);
    pack_levels(y, &steps_of, bits, out)
}

/// Takes the steps `events` (in order of scale) one by one from the levels
/// `steps_of` (whose `<u - c_B, |y|>` and `|u - c_B|^2` are `ip` and `sq`)
/// and leaves in `steps_of` the levels of the best angle met.
fn take_best_steps(
    y: &[f32],
    events: &[(f32, u32)],
    steps_of: &mut [u8],
    mut ip: f64,
    mut sq: f64,
) {
    let (mut best, mut best_n) = (ip / sq.sqrt(), 0);
    let mut moved = steps_of.to_vec();
    for (n, &(_, i)) in events.iter().enumerate() {
        let i = i as usize;
        let x = 0.5 + moved[i] as f64;
        ip += y[i].abs() as f64;
        sq += 2.0 * x + 1.0;
        moved[i] += 1;
        let cos = ip / sq.sqrt();
        if cos > best {
            (best, best_n) = (cos, n + 1);
        }
    }
    for &(_, i) in &events[..best_n] {
        steps_of[i as usize] += 1;
    }
}

/// `x + ROUND_TO_INTEGER - ROUND_TO_INTEGER` is `x` rounded to an integer
/// for `|x| < 2^22` (2^23 + 2^22: adding it leaves no fraction bits).
const ROUND_TO_INTEGER: f32 = 12_582_912.0;

/// Sorts steps `(scale, coordinate)` that lie in `(lo, hi]` by scale: a
/// bucket sort when the bracket is finite (a few steps a bucket, each
/// bucket sorted on its own), a comparison sort otherwise.
fn sort_steps(events: &mut Vec<(f32, u32)>, lo: f32, hi: f32) {
    let buckets = events.len() / 4;
    let width = (hi - lo) / buckets as f32;
    if buckets < 2 || !(width > 0.0 && width.is_finite()) {
        events.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        return;
    }
    // steps a hair outside the bracket (rounding) go to the end buckets
    let bucket = |e: f32| (((e - lo) / width) as usize).min(buckets - 1);
    let mut starts = vec![0usize; buckets + 1];
    for &(e, _) in events.iter() {
        starts[bucket(e) + 1] += 1;
    }
    for b in 0..buckets {
        starts[b + 1] += starts[b];
    }
    let mut next = starts.clone();
    let mut sorted = vec![(0f32, 0u32); events.len()];
    for &(e, i) in events.iter() {
        let b = bucket(e);
        sorted[next[b]] = (e, i);
        next[b] += 1;
    }
    for b in 0..buckets {
        sorted[starts[b]..starts[b + 1]].sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    }
    *events = sorted;
}

/// Scales the coarse pass of `best_levels` tries, spread geometrically
/// over `COARSE_RANGE` times `1 / rms(y)`.
const COARSE_SCALES: usize = 32;

/// Coarse scales on each side of the best one that bound the exhaustive
/// sweep.
const BRACKET_SCALES: usize = 1;

/// The scales `t rms(y)` the coarse pass covers. Below the first, every
/// coordinate of a rotated vector (near Gaussian) sits on the innermost
/// levels; past the last, nearly all sit on the outermost.
const COARSE_RANGE: (f32, f32) = (0.25, 32.0);

/// The scales `(lo, hi)` between which `best_levels` tries every step: the
/// neighbours of the best of the coarse scales (0 below the first, infinity
/// past the last).
fn scale_bracket(y: &[f32], steps: u32) -> (f32, f32) {
    let sum_sq: f64 = y.iter().map(|&v| v as f64 * v as f64).sum();
    let rms = (sum_sq / y.len() as f64).sqrt() as f32;
    if !(rms > 0.0 && rms.is_finite()) {
        return (0.0, f32::INFINITY);
    }
    let ratio = (COARSE_RANGE.1 / COARSE_RANGE.0).powf(1.0 / (COARSE_SCALES - 1) as f32);
    let scale = |j: usize| COARSE_RANGE.0 * ratio.powi(j as i32) / rms;
    let top = steps as f32;
    let cos_at = |t: f32| coarse_cos(y, t, top);
    let mut best = (f32::NEG_INFINITY, 0);
    for j in 0..COARSE_SCALES {
        let cos = cos_at(scale(j));
        if cos > best.0 {
            best = (cos, j);
        }
    }
    let j = best.1;
    let lo = if j < BRACKET_SCALES {
        0.0
    } else {
        scale(j - BRACKET_SCALES)
    };
    let hi = if j + BRACKET_SCALES >= COARSE_SCALES {
        f32::INFINITY
    } else {
        scale(j + BRACKET_SCALES)
    };
    (lo, hi)
}

/// `<x, y> / |x|` for the levels of scale `t` (`top` steps at most), in f32:
/// good enough to rank scales. Eight independent sums so the loop runs in
/// vector registers; the floor is a rounding through the float mantissa
/// (`ROUND_TO_INTEGER`) of `x - 1/2`, ties at whole numbers going either
/// way (the ranking does not care).
fn coarse_cos(y: &[f32], t: f32, top: f32) -> f32 {
    let (mut ip, mut sq) = ([0f32; 8], [0f32; 8]);
    let mut chunks = y.chunks_exact(8);
    for c in &mut chunks {
        for lane in 0..8 {
            let a = c[lane].abs();
            let x = (t * a).min(top + 0.5) - 0.5 + ROUND_TO_INTEGER - ROUND_TO_INTEGER + 0.5;
            ip[lane] += x * a;
            sq[lane] += x * x;
        }
    }
    for (lane, &v) in chunks.remainder().iter().enumerate() {
        let a = v.abs();
        let x = (t * a).min(top + 0.5) - 0.5 + ROUND_TO_INTEGER - ROUND_TO_INTEGER + 0.5;
        ip[lane] += x * a;
        sq[lane] += x * x;
    }
    ip.iter().sum::<f32>() / sq.iter().sum::<f32>().sqrt()
}

/// Writes the levels `c_B +- (1/2 + steps_of[i])` (the sign of `y_i`) into
/// `out`; returns `<x, y>` and `|u - c_B|`.
fn pack_levels(y: &[f32], steps_of: &[u8], bits: u32, out: &mut [u64]) -> (f32, f32) {
    let middle = ((1u32 << bits) - 1) as f64 / 2.0;
    out.fill(0);
    let (mut ip, mut sq) = (0.0f64, 0.0f64);
    for (i, &v) in y.iter().enumerate() {
        let x = (0.5 + steps_of[i] as f64).copysign(if v < 0.0 { -1.0 } else { 1.0 });
        let u = (x + middle) as u64;
        out[i / 16] |= u << (4 * (i % 16));
        ip += x * v as f64;
        sq += x * x;
    }
    let norm = sq.sqrt();
    ((ip / norm) as f32, norm as f32)
}

/// `best_levels` trying every step from zero: the oracle its bracket is
/// tested against.
#[cfg(test)]
fn exhaustive_best_levels(y: &[f32], bits: u32, out: &mut [u64]) -> (f32, f32) {
    let steps = (1u32 << (bits - 1)) - 1;
    let mut events: Vec<(f32, u32)> = Vec::new();
    for (i, &v) in y.iter().enumerate() {
        let a = v.abs();
        if a > 0.0 {
            events.extend((1..=steps).map(|k| (k as f32 / a, i as u32)));
        }
    }
    events.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let ip: f64 = y.iter().map(|v| 0.5 * v.abs() as f64).sum();
    let mut steps_of = vec![0u8; y.len()];
    take_best_steps(y, &events, &mut steps_of, ip, 0.25 * y.len() as f64);
    pack_levels(y, &steps_of, bits, out)
}

/// The unnormalised fast Walsh-Hadamard transform, in place (`v.len()` a
/// power of two).
fn hadamard(v: &mut [f32]) {
    let n = v.len();
    let mut half = 1;
    while half < n {
        for block in v.chunks_exact_mut(2 * half) {
            let (a, b) = block.split_at_mut(half);
            for (x, y) in a.iter_mut().zip(b.iter_mut()) {
                let (s, d) = (*x + *y, *x - *y);
                *x = s;
                *y = d;
            }
        }
        half *= 2;
    }
}

/// What a code keeps beside its bits.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Factors {
    /// `|v - c|`.
    pub norm: f32,
    /// `<x, y>`: the code's unit vector against the rotated unit vector.
    pub quality: f32,
    /// `<v - c, c>`, for inner products.
    pub center_dot: f32,
    /// `|u - c_B|`: the length of the levels taken around the grid's
    /// middle (`sqrt(D) / 2` for one bit).
    pub level_norm: f32,
}

/// A data vector's code: its levels (bits, or four-bit levels two to a
/// byte) in 64-bit words, and its factors.
#[derive(Clone, Debug, PartialEq)]
pub struct Code {
    pub bits: Vec<u64>,
    pub factors: Factors,
}

/// An estimated distance (or inner product) and a bound on its error that
/// holds with high probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub value: f32,
    pub error: f32,
}

/// Two stored vectors compared through their codes (`Quantizer::between_codes`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PairEstimate {
    pub l2_squared: f32,
    pub inner_product: f32,
}

/// Encodes vectors and prepares queries around one center and rotation.
#[derive(Clone, Debug)]
pub struct Quantizer {
    rotation: Rotation,
    center: Vec<f32>,
    center_norm_sq: f32,
    /// Bits per dimension (`SUPPORTED_BITS`).
    bits: u32,
}

/// `v - c`, its norm, and `<v - c, c>`, in f64.
fn relative(v: &[f32], c: &[f32], out: &mut [f32]) -> (f64, f64) {
    let (mut norm_sq, mut dot_c) = (0.0f64, 0.0f64);
    for ((o, &x), &cx) in out.iter_mut().zip(v).zip(c) {
        let r = x - cx;
        *o = r;
        norm_sq += r as f64 * r as f64;
        dot_c += r as f64 * cx as f64;
    }
    (norm_sq.sqrt(), dot_c)
}

impl Quantizer {
    /// A quantizer of one bit per dimension around `center` (its length
    /// is the vectors' dimensions).
    pub fn new(center: Vec<f32>, seed: u64) -> Quantizer {
        Quantizer::with_bits(center, seed, 1)
    }

    /// A quantizer of `bits` per dimension (one of `SUPPORTED_BITS`).
    pub fn with_bits(center: Vec<f32>, seed: u64, bits: u32) -> Quantizer {
        assert!(SUPPORTED_BITS.contains(&bits), "{bits} bits per dimension");
        let rotation = Rotation::new(center.len(), seed);
        let center_norm_sq = center.iter().map(|&x| x as f64 * x as f64).sum::<f64>() as f32;
        Quantizer {
            rotation,
            center,
            center_norm_sq,
            bits,
        }
    }

    pub fn rotation(&self) -> &Rotation {
        &self.rotation
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// Words of 64 bits in a code.
    pub fn code_words(&self) -> usize {
        self.rotation.padded * self.bits as usize / 64
    }

    /// Bytes of a stored code (`code_bytes`).
    pub fn code_bytes(&self) -> usize {
        code_bytes(self.rotation.dims, self.bits)
    }

    /// `c_B`: the middle of the levels.
    fn middle(&self) -> f32 {
        ((1u32 << self.bits) - 1) as f32 / 2.0
    }

    /// The levels of a code's words, one per padded dimension.
    fn levels(&self, words: &[u64]) -> Vec<u8> {
        let padded = self.rotation.padded;
        match self.bits {
            1 => (0..padded)
                .map(|i| (words[i / 64] >> (i % 64) & 1) as u8)
                .collect(),
            _ => (0..padded)
                .map(|i| (words[i / 16] >> (4 * (i % 16)) & 15) as u8)
                .collect(),
        }
    }

    /// The code of `v` (as many dimensions as the center).
    pub fn encode(&self, v: &[f32]) -> Code {
        let mut bits = vec![0u64; self.code_words()];
        let factors = self.encode_into(v, &mut vec![0.0; self.rotation.padded], &mut bits);
        Code { bits, factors }
    }

    /// Writes the code of `v` into `bits` (`code_words()` long), using
    /// `scratch` (`rotation().padded()` long); returns its factors.
    pub fn encode_into(&self, v: &[f32], scratch: &mut [f32], bits: &mut [u64]) -> Factors {
        let dims = self.rotation.dims;
        assert_eq!(v.len(), dims);
        // v - c, normalised and rotated in the scratch buffer: no allocation
        let (norm, center_dot) = relative(v, &self.center, &mut scratch[..dims]);
        bits.fill(0);
        if !(norm > 0.0 && norm.is_finite()) {
            // at the center: every estimate is exact without the code
            return Factors {
                norm: 0.0,
                quality: 1.0,
                center_dot: 0.0,
                level_norm: 1.0,
            };
        }
        scratch[..dims]
            .iter_mut()
            .for_each(|x| *x = (*x as f64 / norm) as f32);
        self.rotation.rotate_in_place(scratch);
        if self.bits > 1 {
            let (quality, level_norm) = best_levels(scratch, self.bits, bits);
            return Factors {
                norm: norm as f32,
                quality,
                center_dot: center_dot as f32,
                level_norm,
            };
        }
        let mut abs_sum = 0.0f64;
        for (i, &y) in scratch.iter().enumerate() {
            if y > 0.0 {
                bits[i / 64] |= 1 << (i % 64);
            }
            abs_sum += y.abs() as f64;
        }
        let quality = (abs_sum / (self.rotation.padded as f64).sqrt()) as f32;
        Factors {
            norm: norm as f32,
            quality,
            center_dot: center_dot as f32,
            level_norm: (self.rotation.padded as f32).sqrt() / 2.0,
        }
    }

    /// Appends the stored form of `v`'s code (`code_bytes` long: factors,
    /// then bits) to `out`, using `scratch` for the rotation.
    pub fn encode_bytes(&self, v: &[f32], scratch: &mut Vec<f32>, out: &mut Vec<u8>) {
        scratch.resize(self.rotation.padded, 0.0);
        let mut bits = vec![0u64; self.code_words()];
        let f = self.encode_into(v, scratch, &mut bits);
        for x in [f.norm, f.quality, f.center_dot, f.level_norm] {
            out.extend_from_slice(&x.to_le_bytes());
        }
        for w in bits {
            out.extend_from_slice(&w.to_le_bytes());
        }
    }

    /// Appends to `out` the vector a stored code stands for, as well as
    /// one bit per dimension can say: `c + |v - c| R^T x / <x, y>`, whose
    /// inner products with any vector are the code's unbiased estimates.
    /// Inserts compare candidate neighbours with one another this way.
    /// False when `bytes` is not a code of this quantizer.
    pub fn decode_bytes(&self, bytes: &[u8], out: &mut Vec<f32>) -> bool {
        let (dims, padded) = (self.rotation.dims, self.rotation.padded);
        if bytes.len() != self.code_bytes() {
            return false;
        }
        let mut y = vec![0.0f32; padded];
        let middle = self.middle();
        let ok = with_code(bytes, |words, f| {
            if f.norm > 0.0 && f.quality > 0.0 && f.level_norm > 0.0 {
                // x = (u - c_B) / |u - c_B|, scaled by |v - c| / <x, y>
                let unit = f.norm / (f.quality * f.level_norm);
                for (v, u) in y.iter_mut().zip(self.levels(words)) {
                    *v = (u as f32 - middle) * unit;
                }
                self.rotation.unrotate_in_place(&mut y);
            }
        });
        if ok.is_none() {
            return false;
        }
        out.extend(y[..dims].iter().zip(&self.center).map(|(v, c)| v + c));
        true
    }

    /// Appends to `out` the vector a stored code points at, with the code's
    /// norm: `c + |v - c| R^T x`, what a search from a stored element
    /// starts with when only its code is kept. False when `bytes` is not a
    /// code of this quantizer.
    pub fn direction_bytes(&self, bytes: &[u8], out: &mut Vec<f32>) -> bool {
        let before = out.len();
        let ok = self.decode_bytes(bytes, out);
        if ok {
            let q = with_code(bytes, |_, f| f.quality).unwrap_or(1.0);
            let dims = self.rotation.dims;
            for (v, c) in out[before..].iter_mut().zip(&self.center[..dims]) {
                *v = c + (*v - c) * q;
            }
        }
        ok
    }

    /// Estimates between two stored codes of this quantizer, from their
    /// bits alone (`<x_a, x_b> / (<x_a, y_a> <x_b, y_b>)` for `<o_a, o_b>`,
    /// clamped to [-1, 1]): what inserts compare candidate neighbours with.
    /// None when either is not a whole code of the same length.
    pub fn between_codes(&self, a: &[u8], b: &[u8]) -> Option<PairEstimate> {
        if a.len() != b.len() {
            return None;
        }
        let padded = self.rotation.padded as f32;
        let fb = with_code(b, |_, f| *f)?;
        let middle = self.middle();
        with_code(a, |ba, fa| {
            with_code(b, |bb, _| {
                // <x_a, x_b>
                let codes = if self.bits == 1 {
                    let differ: u32 = ba.iter().zip(bb).map(|(x, y)| (x ^ y).count_ones()).sum();
                    (padded - 2.0 * differ as f32) / padded
                } else {
                    // sum (u_a - c)(u_b - c) from integer sums
                    let (sa, sb, dot) = (crate::kernels().nibble_pair)(
                        bytemuck::cast_slice(ba),
                        bytemuck::cast_slice(bb),
                    );
                    let centred = dot as f32 - middle * (sa + sb) as f32 + middle * middle * padded;
                    centred / (fa.level_norm * fb.level_norm)
                };
                let unit = if fa.norm == 0.0 || fb.norm == 0.0 {
                    0.0
                } else {
                    (codes / (fa.quality * fb.quality)).clamp(-1.0, 1.0)
                };
                let cross = fa.norm * fb.norm * unit;
                PairEstimate {
                    l2_squared: (fa.norm * fa.norm + fb.norm * fb.norm - 2.0 * cross).max(0.0),
                    inner_product: cross + fa.center_dot + fb.center_dot + self.center_norm_sq,
                }
            })
        })
        .flatten()
    }

    /// The query `q` prepared for estimates against codes.
    pub fn prepare(&self, q: &[f32]) -> PreparedQuery {
        let (dims, padded) = (self.rotation.dims, self.rotation.padded);
        assert_eq!(q.len(), dims);
        let mut rotated = vec![0.0f32; padded];
        let (norm, center_dot) = relative(q, &self.center, &mut rotated[..dims]);
        if norm > 0.0 && norm.is_finite() {
            rotated[..dims]
                .iter_mut()
                .for_each(|x| *x = (*x as f64 / norm) as f32);
            self.rotation.rotate_in_place(&mut rotated);
        } else {
            rotated.fill(0.0);
        }
        let lo = rotated.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = rotated.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        // four bits against one-bit codes, eight against four-bit ones
        let query_bits = if self.bits == 1 { QUERY_BITS } else { 8 };
        let top = ((1u32 << query_bits) - 1) as f32;
        let delta = (hi - lo) / top;
        let level = |y: f32| {
            if delta > 0.0 {
                ((y - lo) / delta).round().clamp(0.0, top) as u32
            } else {
                0
            }
        };
        let words = padded * self.bits as usize / 64;
        let (mut planes, mut levels) = (Vec::new(), Vec::new());
        if self.bits == 1 {
            planes = vec![0u64; QUERY_BITS * words];
            for (i, &y) in rotated.iter().enumerate() {
                let level = level(y) as u64;
                for (plane, chunk) in planes.chunks_exact_mut(words).enumerate() {
                    chunk[i / 64] |= (level >> plane & 1) << (i % 64);
                }
            }
        } else {
            levels = rotated.iter().map(|&y| level(y) as u8).collect();
        }
        // the sum of the rounded coordinates: for levels centred on the
        // grid's middle, only the rounding of each coordinate is in error
        let rounded_sum =
            lo * padded as f32 + delta * levels.iter().map(|&l| l as u32).sum::<u32>() as f32;
        // even and odd dimensions apart, as a byte of the code holds them
        let even: Vec<u8> = levels.iter().step_by(2).copied().collect();
        let odd: Vec<u8> = levels.iter().skip(1).step_by(2).copied().collect();
        PreparedQuery {
            words,
            planes,
            even,
            odd,
            nibbles: crate::kernels().nibble_dot,
            bits: self.bits,
            middle: self.middle(),
            rounded_sum,
            lo,
            delta,
            sum: rotated.iter().map(|&y| y as f64).sum::<f64>() as f32,
            norm: norm as f32,
            center_dot: center_dot as f32,
            center_norm_sq: self.center_norm_sq,
            sqrt_d: (padded as f32).sqrt(),
            bound_scale: if self.bits == 1 {
                EPSILON0
            } else {
                EPSILON_MULTI
            } / ((padded - 1) as f32).sqrt(),
            counts: crate::kernels().rabitq_counts,
        }
    }
}

/// A query rotated and rounded to 4-bit planes, with what its estimates
/// need.
#[derive(Clone, Debug)]
pub struct PreparedQuery {
    words: usize,
    /// Against one-bit codes: `QUERY_BITS` planes of `words` words, bit j
    /// of each coordinate's level.
    planes: Vec<u64>,
    /// Against four-bit codes: the 8-bit levels of the even and of the odd
    /// coordinates, and the kernel of this CPU.
    even: Vec<u8>,
    odd: Vec<u8>,
    nibbles: crate::NibbleDot,
    /// The codes' bits per dimension, and the middle of their levels.
    bits: u32,
    middle: f32,
    /// The sum of the rounded coordinates (four-bit codes).
    rounded_sum: f32,
    lo: f32,
    delta: f32,
    /// The sum of the rotated unit query's coordinates.
    sum: f32,
    /// `|q - c|`.
    norm: f32,
    /// `<q - c, c>`.
    center_dot: f32,
    center_norm_sq: f32,
    sqrt_d: f32,
    /// `EPSILON0 / sqrt(D - 1)`.
    bound_scale: f32,
    /// The popcount kernel of this CPU.
    counts: fn(&[u64], &[u64]) -> (u32, u32),
}

impl PreparedQuery {
    /// `<x, q'>` from the code's levels and the rounded query, and what
    /// the standard deviation of its error from the query's rounding is
    /// computed from (set bits for one bit per dimension).
    #[inline]
    fn code_dot(&self, words: &[u64], f: &Factors) -> (f32, u32) {
        assert_eq!(words.len(), self.words);
        if self.bits == 1 {
            let (ones, weighted) = (self.counts)(words, &self.planes);
            // sum over set bits of q'_i, rounded: lo per bit plus delta per level
            let set_sum = self.lo * ones as f32 + self.delta * weighted as f32;
            return ((2.0 * set_sum - self.sum) / self.sqrt_d, ones);
        }
        // <u, q_rounded> = lo * sum(u) + delta * <u, levels>
        let (sum_u, dot) = if cfg!(target_endian = "little") {
            (self.nibbles)(bytemuck::cast_slice(words), &self.even, &self.odd)
        } else {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            (self.nibbles)(&bytes, &self.even, &self.odd)
        };
        let u_q = self.lo * sum_u as f32 + self.delta * dot as f32;
        let centred = u_q - self.middle * self.rounded_sum;
        (centred / f.level_norm, 0)
    }

    /// The standard deviation of `code_dot`'s error from the query's
    /// rounding: for one bit, each set bit's error spread evenly over
    /// +-delta/2 (delta / sqrt(12)); for four, `<u - c_B, q_rounded - q> /
    /// |u - c_B|`, delta / sqrt(12) overall.
    fn rounding(&self, ones: u32) -> f32 {
        if self.bits == 1 {
            2.0 * self.delta * (ones as f32 / 12.0).sqrt() / self.sqrt_d
        } else {
            self.delta / 12f32.sqrt()
        }
    }

    /// The estimate of `<o, q>` alone (what a search ranks by).
    #[inline]
    pub fn unit_inner_value(&self, words: &[u64], f: &Factors) -> f32 {
        self.code_dot(words, f).0 / f.quality
    }

    /// The estimate of `<o, q>` (both unit vectors relative to the center).
    pub fn unit_inner(&self, words: &[u64], f: &Factors) -> Estimate {
        let (dot, ones) = self.code_dot(words, f);
        let rounding = self.rounding(ones);
        let quality = f.quality;
        let spread = ((1.0 - quality * quality).max(0.0)).sqrt() / quality;
        // ROUNDING_SIGMAS standard deviations of the query's rounding
        let rounding = ROUNDING_SIGMAS * rounding / quality;
        Estimate {
            value: dot / quality,
            error: spread * self.bound_scale + rounding,
        }
    }

    /// The estimated squared L2 distance between the query and a code's vector.
    pub fn l2_squared(&self, bits: &[u64], f: &Factors) -> Estimate {
        let base = f.norm * f.norm + self.norm * self.norm;
        if f.norm == 0.0 || self.norm == 0.0 {
            return Estimate {
                value: base,
                error: 0.0,
            };
        }
        let unit = self.unit_inner(bits, f);
        let scale = 2.0 * f.norm * self.norm;
        Estimate {
            value: base - scale * unit.value,
            error: scale * unit.error,
        }
    }

    /// The estimated inner product of the query and a code's vector.
    pub fn inner_product(&self, bits: &[u64], f: &Factors) -> Estimate {
        let base = f.center_dot + self.center_dot + self.center_norm_sq;
        if f.norm == 0.0 || self.norm == 0.0 {
            return Estimate {
                value: base,
                error: 0.0,
            };
        }
        let unit = self.unit_inner(bits, f);
        let scale = f.norm * self.norm;
        Estimate {
            value: base + scale * unit.value,
            error: scale * unit.error,
        }
    }

    /// `l2_squared`'s value alone.
    #[inline]
    pub fn l2_squared_value(&self, bits: &[u64], f: &Factors) -> f32 {
        let base = f.norm * f.norm + self.norm * self.norm;
        if f.norm == 0.0 || self.norm == 0.0 {
            return base;
        }
        base - 2.0 * f.norm * self.norm * self.unit_inner_value(bits, f)
    }

    /// `inner_product`'s value alone.
    #[inline]
    pub fn inner_product_value(&self, bits: &[u64], f: &Factors) -> f32 {
        let base = f.center_dot + self.center_dot + self.center_norm_sq;
        if f.norm == 0.0 || self.norm == 0.0 {
            return base;
        }
        base + f.norm * self.norm * self.unit_inner_value(bits, f)
    }
}

#[cfg(test)]
mod tests;
