//! k-means for the list centers: k-means++ seeding, then Lloyd iterations
//! accelerated with Hamerly's bounds (each point keeps an upper bound on
//! the distance to its center and a lower bound on the distance to any
//! other; most points skip the distance computations after a few
//! iterations). Spherical k-means (cosine, inner product) clusters unit
//! vectors and re-normalises centers, so Euclidean bounds still hold.
//!
//! All the parallel work runs inside `pool`; `between` runs on the
//! caller's thread between steps (where the extension checks interrupts
//! and reports progress).

use rayon::prelude::*;
use rayon::ThreadPool;

#[derive(Clone, Copy, Debug)]
pub struct Params {
    /// Number of centers.
    pub k: usize,
    /// Unit-length samples and centers (cosine and inner product).
    pub spherical: bool,
    pub max_iterations: usize,
    /// Stop once an iteration moves at most this share of the samples to
    /// another cluster (0: only when none moves).
    pub tolerance: f64,
    pub seed: u64,
    /// Bytes the iterations may use for per-center bounds (n x k floats);
    /// with less, one bound per sample is kept (slower in high dimensions).
    pub bounds_budget: usize,
}

/// What a run did, for tests and DEBUG output.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Report {
    pub iterations: usize,
    /// Points that changed cluster in the last iteration.
    pub last_changes: usize,
    /// Sum of squared distances of the samples to their centers.
    pub inertia: f64,
}

/// A small deterministic generator (SplitMix64), so builds are repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
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

fn dist(a: &[f32], b: &[f32]) -> f32 {
    distance::l2_squared(a, b).max(0.0).sqrt()
}

/// Distance terms (points x centers x dimensions) per parallel step.
const WORK_PER_STEP: usize = 1 << 27;

/// `0..n` in ranges of `step`.
fn steps(n: usize, step: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    let step = step.max(1);
    (0..n.div_ceil(step)).map(move |i| i * step..((i + 1) * step).min(n))
}

/// Scales `v` to unit length; false (and `v` unchanged) for a zero or
/// non-finite norm.
pub fn normalize(v: &mut [f32]) -> bool {
    let norm = distance::scalar::norm_f64(v);
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    for x in v.iter_mut() {
        *x = (*x as f64 / norm) as f32;
    }
    true
}

/// The index of the center nearest to `v` under `metric`'s order (inner
/// product for cosine and inner product, squared L2 otherwise) and its
/// distance.
pub fn nearest_center(v: &[f32], centers: &[f32], metric: crate::Metric) -> (usize, f32) {
    let dim = v.len();
    let mut best = (0, f32::INFINITY);
    for (i, c) in centers.chunks_exact(dim).enumerate() {
        let d = metric.distance(v, c);
        if d < best.1 {
            best = (i, d);
        }
    }
    best
}

/// Rows compared with all centers at once by `CenterBlock`: 32 rows x 316
/// centers is 40 KB of scores.
pub const BLOCK_ROWS: usize = 32;

/// Centers prepared for comparing blocks of rows with all of them through
/// `distance::dot_block` (squared L2 as |x|^2 + |c|^2 - 2 x.c), about twice
/// as fast as one distance call per pair. The expanded form rounds
/// differently from a direct distance (relative error near f32 epsilon
/// times the norms): fine for choosing a center, where near-ties are
/// arbitrary anyway.
pub struct CenterBlock<'a> {
    centers: &'a [f32],
    dim: usize,
    norms: Vec<f32>,
}

impl<'a> CenterBlock<'a> {
    pub fn new(centers: &'a [f32], dim: usize) -> Self {
        let norms = centers
            .chunks_exact(dim)
            .map(distance::norm_squared)
            .collect();
        CenterBlock {
            centers,
            dim,
            norms,
        }
    }

    pub fn len(&self) -> usize {
        self.norms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.norms.is_empty()
    }

    /// `out[i * k + j]` = squared Euclidean distance of row i to center j.
    pub fn squared_distances(&self, rows: &[f32], out: &mut Vec<f32>) {
        let k = self.len();
        out.resize(rows.len() / self.dim * k, 0.0);
        distance::dot_block(rows, self.centers, self.dim, out);
        for (v, scores) in rows.chunks_exact(self.dim).zip(out.chunks_exact_mut(k)) {
            let nv = distance::norm_squared(v);
            for (s, nc) in scores.iter_mut().zip(&self.norms) {
                *s = (nv + nc - 2.0 * *s).max(0.0);
            }
        }
    }

    /// The nearest center of every row under `metric`'s order (as
    /// `nearest_center`, for L2, inner product and cosine), pushed to `out`.
    pub fn nearest(&self, rows: &[f32], metric: crate::Metric, out: &mut Vec<u32>) {
        use crate::Metric::{Cosine, InnerProduct, L2};
        if !matches!(metric, L2 | InnerProduct | Cosine) {
            // no dot-product form: one distance per pair
            let rows = rows.chunks_exact(self.dim);
            out.extend(rows.map(|v| nearest_center(v, self.centers, metric).0 as u32));
            return;
        }
        let k = self.len();
        let mut scores = vec![0f32; BLOCK_ROWS.min(rows.len() / self.dim) * k];
        for block in rows.chunks(BLOCK_ROWS * self.dim) {
            let scores = &mut scores[..block.len() / self.dim * k];
            distance::dot_block(block, self.centers, self.dim, scores);
            for row in scores.chunks_exact(k) {
                // L2: |c|^2 - 2 x.c orders like the distance; otherwise -x.c
                let score = |j: usize| match metric {
                    crate::Metric::L2 => self.norms[j] - 2.0 * row[j],
                    _ => -row[j],
                };
                let mut best = (0usize, f32::INFINITY);
                for j in 0..k {
                    let s = score(j);
                    if s < best.1 {
                        best = (j, s);
                    }
                }
                out.push(best.0 as u32);
            }
        }
    }
}

/// The nearest and second-nearest of squared distances `d`: the index of
/// the nearest and both distances (not squared).
fn two_smallest(d: &[f32]) -> (u32, f32, f32) {
    let (mut i, mut d1, mut d2) = (0u32, f32::INFINITY, f32::INFINITY);
    for (j, x) in d.iter().enumerate() {
        if *x < d1 {
            (i, d1, d2) = (j as u32, *x, d1);
        } else if *x < d2 {
            d2 = *x;
        }
    }
    (i, d1.max(0.0).sqrt(), d2.max(0.0).sqrt())
}

/// Random centers for an index built without data: uniform in [-1, 1).
fn random_center(rng: &mut Rng, dim: usize, spherical: bool) -> Vec<f32> {
    loop {
        let mut c: Vec<f32> = (0..dim)
            .map(|_| (rng.next_f64() * 2.0 - 1.0) as f32)
            .collect();
        if !spherical || normalize(&mut c) {
            return c;
        }
    }
}

/// Centers (k x dim, row-major) of `samples` (n x dim).
pub fn kmeans(
    samples: &[f32],
    dim: usize,
    params: &Params,
    pool: &ThreadPool,
    mut between: impl FnMut(),
) -> (Vec<f32>, Report) {
    assert!(dim > 0 && params.k > 0 && samples.len().is_multiple_of(dim));
    let n = samples.len() / dim;
    let k = params.k;
    let mut rng = Rng::new(params.seed ^ 0x4956_4646);
    if n <= k {
        // Every sample is a center; random ones make up the rest.
        let mut centers = samples.to_vec();
        while centers.len() < k * dim {
            centers.extend(random_center(&mut rng, dim, params.spherical));
        }
        return (centers, Report::default());
    }
    let mut centers = seed_plus_plus(samples, dim, k, &mut rng, pool, &mut between);
    let mut assign = vec![0u32; n];
    let mut run = Lloyd {
        samples,
        dim,
        params,
        // Points per parallel step: about WORK_PER_STEP distance terms, so
        // `between` (interrupt checks) runs often even with many centers.
        step: (WORK_PER_STEP / (k * dim)).max(64).min(n),
        pool,
        between: &mut between,
    };
    let mut report = if n.saturating_mul(k).saturating_mul(4) <= params.bounds_budget {
        run.elkan(&mut centers, &mut assign)
    } else {
        run.hamerly(&mut centers, &mut assign)
    };
    report.inertia = pool.install(|| {
        samples
            .par_chunks(dim)
            .zip(assign.par_iter())
            .map(|(v, a)| {
                let c = &centers[*a as usize * dim..(*a as usize + 1) * dim];
                distance::l2_squared(v, c) as f64
            })
            .sum()
    });
    (centers, report)
}

/// What the Lloyd iterations work on.
struct Lloyd<'a, B: FnMut()> {
    samples: &'a [f32],
    dim: usize,
    params: &'a Params,
    step: usize,
    pool: &'a ThreadPool,
    between: &'a mut B,
}

/// Iterations after one that moved more than this share of the samples
/// recompute every distance (as a block product, about three times faster
/// per distance than the bounds' one-by-one checks, which prune little
/// while centers still move far).
const FULL_PASS_SHARE: f64 = 0.1;

impl<B: FnMut()> Lloyd<'_, B> {
    /// Centers to their means; how far each moved.
    fn move_centers(&self, centers: &mut [f32], assign: &[u32]) -> Vec<f32> {
        let spherical = self.params.spherical;
        move_centers(
            self.samples,
            self.dim,
            assign,
            centers,
            spherical,
            self.pool,
        )
    }

    /// Calls `f(first row, assignments, squared distances to every
    /// center)` for blocks of rows, in parallel, a step at a time.
    fn full_pass<T: Send>(
        &mut self,
        centers: &[f32],
        assign: &mut [u32],
        bounds: &mut [T],
        per_row: usize,
        f: impl Fn(&mut [u32], &mut [T], &[f32]) + Sync,
    ) {
        let (dim, k) = (self.dim, centers.len() / self.dim);
        let n = assign.len();
        let block = CenterBlock::new(centers, dim);
        for r in steps(n, self.step) {
            let samples = &self.samples[r.start * dim..r.end * dim];
            self.pool.install(|| {
                assign[r.clone()]
                    .par_chunks_mut(BLOCK_ROWS)
                    .zip(
                        bounds[r.start * per_row..r.end * per_row]
                            .par_chunks_mut(BLOCK_ROWS * per_row),
                    )
                    .zip(samples.par_chunks(BLOCK_ROWS * dim))
                    .for_each(|((a, b), rows)| {
                        let mut d2 = Vec::with_capacity(BLOCK_ROWS * k);
                        block.squared_distances(rows, &mut d2);
                        f(a, b, &d2)
                    })
            });
            (self.between)();
        }
    }

    /// Half the distance from each center to its nearest other
    /// (`half_nearest`) and, when `half` is given (k x k), to each other.
    fn center_gaps(&mut self, centers: &[f32], half: Option<&mut [f32]>, half_nearest: &mut [f32]) {
        let (dim, k) = (self.dim, half_nearest.len());
        // one center's row; returns the smallest gap
        let row = |j: usize, out: &mut [f32]| -> f32 {
            let cj = &centers[j * dim..(j + 1) * dim];
            let mut nearest = f32::INFINITY;
            for (i, c) in centers.chunks_exact(dim).enumerate() {
                let h = if i == j { 0.0 } else { dist(cj, c) / 2.0 };
                if i != j {
                    nearest = nearest.min(h);
                }
                if let Some(o) = out.get_mut(i) {
                    *o = h;
                }
            }
            nearest
        };
        let mut half = half;
        for r in steps(k, self.step.min(k)) {
            let nearest = &mut half_nearest[r.clone()];
            self.pool.install(|| match half.as_deref_mut() {
                Some(half) => half[r.start * k..r.end * k]
                    .par_chunks_mut(k)
                    .zip(nearest.par_iter_mut())
                    .zip(r.clone())
                    .for_each(|((out, hn), j)| *hn = row(j, out)),
                None => nearest
                    .par_iter_mut()
                    .zip(r.clone())
                    .for_each(|(hn, j)| *hn = row(j, &mut [])),
            });
            (self.between)();
        }
    }

    /// Lloyd iterations with Elkan's bounds: an upper bound to the own
    /// center and a lower bound to *every* center per sample (n x k
    /// floats). Each lower bound shrinks only by its own center's shift, so
    /// once centers settle almost no distance is recomputed, where
    /// Hamerly's single bound (shrinking by the largest shift) prunes
    /// little in high dimensions. Bounds are stored plus the drift (sum of
    /// shifts) of their center when they were set, so a sample whose upper
    /// bound settles it never touches its row of k bounds.
    fn elkan(&mut self, centers: &mut [f32], assign: &mut [u32]) -> Report {
        let (k, n) = (self.params.k, assign.len());
        let mut upper = vec![0f32; n];
        let mut lower = vec![0f32; n * k];
        let mut drift = vec![0f32; k];
        let mut report = Report::default();
        let mut half = vec![0f32; k * k];
        let mut half_nearest = vec![0f32; k];
        let mut changes = n;
        for iteration in 0..=self.params.max_iterations {
            if iteration > 0 {
                report.iterations = iteration;
                let shift = self.move_centers(centers, assign);
                for (d, s) in drift.iter_mut().zip(&shift) {
                    *d += s;
                }
                for (u, a) in upper.iter_mut().zip(assign.iter()) {
                    *u += shift[*a as usize];
                }
            }
            if changes as f64 > FULL_PASS_SHARE * n as f64 {
                let was = assign.to_vec();
                let drift = &drift;
                self.full_pass(centers, assign, &mut lower, k, |a, l, d2| {
                    for ((a, l), d2) in a
                        .iter_mut()
                        .zip(l.chunks_exact_mut(k))
                        .zip(d2.chunks_exact(k))
                    {
                        let mut best = (0u32, f32::INFINITY);
                        for (j, ((lj, d2), dj)) in l.iter_mut().zip(d2).zip(drift).enumerate() {
                            let d = d2.sqrt();
                            *lj = d + dj;
                            if d < best.1 {
                                best = (j as u32, d);
                            }
                        }
                        *a = best.0;
                    }
                });
                for (i, (u, a)) in upper.iter_mut().zip(assign.iter()).enumerate() {
                    *u = lower[i * k + *a as usize] - drift[*a as usize];
                }
                changes = was
                    .iter()
                    .zip(assign.iter())
                    .filter(|(x, y)| x != y)
                    .count();
            } else {
                self.center_gaps(centers, Some(&mut half), &mut half_nearest);
                changes = self.elkan_pass(
                    centers,
                    assign,
                    &mut upper,
                    &mut lower,
                    &drift,
                    &half,
                    &half_nearest,
                );
            }
            if iteration > 0 {
                report.last_changes = changes;
                if changes as f64 <= self.params.tolerance * n as f64 {
                    break;
                }
            }
        }
        report
    }

    /// One assignment pass with Elkan's bounds; returns the samples moved.
    #[allow(clippy::too_many_arguments)]
    fn elkan_pass(
        &mut self,
        centers: &[f32],
        assign: &mut [u32],
        upper: &mut [f32],
        lower: &mut [f32],
        drift: &[f32],
        half: &[f32],
        half_nearest: &[f32],
    ) -> usize {
        let (dim, k, n) = (self.dim, half_nearest.len(), assign.len());
        let mut changes = 0;
        for r in steps(n, self.step) {
            let samples = &self.samples[r.start * dim..r.end * dim];
            changes += self.pool.install(|| {
                assign[r.clone()]
                    .par_iter_mut()
                    .zip(upper[r.clone()].par_iter_mut())
                    .zip(lower[r.start * k..r.end * k].par_chunks_mut(k))
                    .zip(samples.par_chunks(dim))
                    .map(|(((a, u), l), v)| {
                        let was = *a;
                        let mut own = was as usize;
                        if *u <= half_nearest[own] {
                            return 0;
                        }
                        let mut tight = false;
                        for j in 0..k {
                            if j == own || *u <= l[j] - drift[j] || *u <= half[own * k + j] {
                                continue;
                            }
                            if !tight {
                                *u = dist(v, &centers[own * dim..(own + 1) * dim]);
                                l[own] = *u + drift[own];
                                tight = true;
                                if *u <= l[j] - drift[j] || *u <= half[own * k + j] {
                                    continue;
                                }
                            }
                            let d = dist(v, &centers[j * dim..(j + 1) * dim]);
                            l[j] = d + drift[j];
                            if d < *u {
                                own = j;
                                *u = d;
                            }
                        }
                        *a = own as u32;
                        (own as u32 != was) as usize
                    })
                    .sum::<usize>()
            });
            (self.between)();
        }
        changes
    }

    /// Lloyd iterations with Hamerly's bounds: one upper bound (to the
    /// own center) and one lower bound (to any other) per sample. O(n)
    /// memory, for when the n x k bounds of `elkan` do not fit.
    fn hamerly(&mut self, centers: &mut [f32], assign: &mut [u32]) -> Report {
        let (dim, k, n) = (self.dim, self.params.k, assign.len());
        // (upper, lower) per sample
        let mut bounds = vec![(0f32, 0f32); n];
        self.full_pass(centers, assign, &mut bounds, 1, |a, b, d2| {
            for ((a, b), d2) in a.iter_mut().zip(b).zip(d2.chunks_exact(k)) {
                let (i, d1, second) = two_smallest(d2);
                (*a, *b) = (i, (d1, second));
            }
        });
        let mut report = Report::default();
        let mut half_gap = vec![0f32; k];
        for iteration in 1..=self.params.max_iterations {
            report.iterations = iteration;
            let shift = self.move_centers(centers, assign);
            // A point's center moved by shift[a]; any other by at most the
            // largest shift of the others.
            let (mut top, mut second) = ((0usize, 0f32), 0f32);
            for (j, s) in shift.iter().enumerate() {
                if *s > top.1 {
                    second = top.1;
                    top = (j, *s);
                } else if *s > second {
                    second = *s;
                }
            }
            // Half the distance to the nearest other center: a point
            // nearer than that to its own center cannot be nearer to
            // another. k^2 distances, so only while that is cheap next to a
            // pass over the samples (n x k when the bounds fail, as they do
            // for most points once a few of many centers move far).
            if k <= 4096 || k <= n / 4 {
                self.center_gaps(centers, None, &mut half_gap);
            }
            let (centers, half_gap, shift) = (&*centers, &half_gap, &shift);
            let block = CenterBlock::new(centers, dim);
            let mut changes = 0;
            for r in steps(n, self.step) {
                let samples = &self.samples[r.start * dim..r.end * dim];
                // bounds first; the points whose bounds fail are compared
                // with every center afterwards, BLOCK_ROWS at a time as a
                // block product (one distance call per pair cost 14 ns at 3
                // dimensions: 10 iterations into 10,000 lists took 200 s)
                let failing: Vec<usize> = self.pool.install(|| {
                    assign[r.clone()]
                        .par_iter()
                        .zip(bounds[r.clone()].par_iter_mut())
                        .zip(samples.par_chunks(dim))
                        .enumerate()
                        .filter_map(|(i, ((a, (u, l)), v))| {
                            let own = *a as usize;
                            *u += shift[own];
                            *l -= if own == top.0 { second } else { top.1 };
                            let bound = l.max(half_gap[own]);
                            if *u <= bound {
                                return None;
                            }
                            *u = dist(v, &centers[own * dim..(own + 1) * dim]);
                            (*u > bound).then_some(r.start + i)
                        })
                        .collect()
                });
                let nearest: Vec<(usize, u32, f32, f32)> = self.pool.install(|| {
                    failing
                        .par_chunks(BLOCK_ROWS)
                        .flat_map_iter(|rows| {
                            let mut block_rows = Vec::with_capacity(rows.len() * dim);
                            for &p in rows {
                                block_rows.extend_from_slice(&self.samples[p * dim..(p + 1) * dim]);
                            }
                            let mut d2 = Vec::with_capacity(rows.len() * k);
                            block.squared_distances(&block_rows, &mut d2);
                            let found: Vec<_> = rows
                                .iter()
                                .zip(d2.chunks_exact(k))
                                .map(|(&p, d)| {
                                    let (i, d1, d2) = two_smallest(d);
                                    (p, i, d1, d2)
                                })
                                .collect();
                            found
                        })
                        .collect()
                });
                for (p, i, d1, d2) in nearest {
                    changes += (assign[p] != i) as usize;
                    assign[p] = i;
                    bounds[p] = (d1, d2);
                }
                (self.between)();
            }
            report.last_changes = changes;
            if changes as f64 <= self.params.tolerance * n as f64 {
                break;
            }
        }
        report
    }
}

/// Squared distance for seeding: below 16 dimensions an inlined loop (the
/// kernels' call costs more than the arithmetic: 10,000 centers over
/// 100,000 3-d samples took 30 s through them).
#[inline]
fn seed_distance(v: &[f32], c: &[f32]) -> f32 {
    if v.len() < 16 {
        v.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum()
    } else {
        distance::l2_squared(v, c).max(0.0)
    }
}

/// k-means++: each next center is a sample drawn with probability
/// proportional to its squared distance from the centers chosen so far.
fn seed_plus_plus(
    samples: &[f32],
    dim: usize,
    k: usize,
    rng: &mut Rng,
    pool: &ThreadPool,
    between: &mut impl FnMut(),
) -> Vec<f32> {
    let n = samples.len() / dim;
    let mut centers = Vec::with_capacity(k * dim);
    let first = rng.below(n);
    centers.extend_from_slice(&samples[first * dim..(first + 1) * dim]);
    let mut nearest = vec![f32::INFINITY; n];
    for step in 1..k {
        let c = &centers[(step - 1) * dim..step * dim];
        let total: f64 = pool.install(|| {
            nearest
                .par_iter_mut()
                .zip(samples.par_chunks(dim))
                .map(|(d, v)| {
                    *d = d.min(seed_distance(v, c));
                    *d as f64
                })
                .sum()
        });
        let pick = if total > 0.0 && total.is_finite() {
            let mut target = rng.next_f64() * total;
            let mut pick = n - 1;
            for (i, d) in nearest.iter().enumerate() {
                target -= *d as f64;
                if target < 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            rng.below(n) // all samples coincide with centers
        };
        centers.extend_from_slice(&samples[pick * dim..(pick + 1) * dim]);
        if step % 16 == 0 {
            between();
        }
    }
    centers
}

/// Replaces each center by the mean of its points (unit-scaled when
/// spherical); an empty cluster takes the point farthest from its own
/// center. Returns how far each center moved.
fn move_centers(
    samples: &[f32],
    dim: usize,
    assign: &[u32],
    centers: &mut [f32],
    spherical: bool,
    pool: &ThreadPool,
) -> Vec<f32> {
    let k = centers.len() / dim;
    // Members of each cluster, by counting sort.
    let mut start = vec![0usize; k + 1];
    for a in assign {
        start[*a as usize + 1] += 1;
    }
    for j in 0..k {
        start[j + 1] += start[j];
    }
    let mut fill = start.clone();
    let mut order = vec![0u32; assign.len()];
    for (i, a) in assign.iter().enumerate() {
        order[fill[*a as usize]] = i as u32;
        fill[*a as usize] += 1;
    }
    let old = centers.to_vec();
    let shift: Vec<f32> = pool.install(|| {
        centers
            .par_chunks_mut(dim)
            .enumerate()
            .map(|(j, c)| {
                let members = &order[start[j]..start[j + 1]];
                if members.is_empty() {
                    return 0.0;
                }
                let mut sum = vec![0f64; dim];
                for &i in members {
                    let v = &samples[i as usize * dim..(i as usize + 1) * dim];
                    for (s, x) in sum.iter_mut().zip(v) {
                        *s += *x as f64;
                    }
                }
                let mut mean: Vec<f32> = sum
                    .iter()
                    .map(|s| (*s / members.len() as f64) as f32)
                    .collect();
                if spherical && !normalize(&mut mean) {
                    return 0.0; // keep the old center
                }
                let moved = dist(c, &mean);
                c.copy_from_slice(&mean);
                moved
            })
            .collect()
    });
    let mut shift = shift;
    // Empty clusters: take the sample farthest from its center among
    // clusters with more than one member.
    let mut sizes: Vec<usize> = (0..k).map(|j| start[j + 1] - start[j]).collect();
    let mut taken = vec![false; assign.len()];
    for j in 0..k {
        if sizes[j] != 0 {
            continue;
        }
        let mut best: Option<(usize, f32)> = None;
        for (i, a) in assign.iter().enumerate() {
            let a = *a as usize;
            if taken[i] || sizes[a] < 2 {
                continue;
            }
            let d = distance::l2_squared(
                &samples[i * dim..(i + 1) * dim],
                &centers[a * dim..(a + 1) * dim],
            );
            if best.is_none_or(|(_, bd)| d > bd) {
                best = Some((i, d));
            }
        }
        let Some((i, _)) = best else { break };
        taken[i] = true;
        sizes[assign[i] as usize] -= 1;
        sizes[j] = 1;
        let v = &samples[i * dim..(i + 1) * dim];
        centers[j * dim..(j + 1) * dim].copy_from_slice(v);
        shift[j] = dist(&old[j * dim..(j + 1) * dim], v);
    }
    shift
}

/// Bit strings carried in f32 words (`Storage::Bits`) as 0/1 values, one
/// f32 per bit, so k-means can average them (appended to `out`).
pub fn expand_bits(words: &[f32], out: &mut Vec<f32>) {
    let bytes: &[u8] = bytemuck::cast_slice(words);
    out.extend(
        bytes
            .iter()
            .flat_map(|b| (0..8).map(move |j| ((b >> (7 - j)) & 1) as f32)),
    );
}

/// The majority bits of centers averaged from `expand_bits` values, back in
/// words: bit i is set when the mean of bit i is above one half.
pub fn pack_bits(center: &[f32]) -> Vec<f32> {
    let mut bytes = vec![0u8; center.len().div_ceil(32) * 4];
    for (i, x) in center.iter().enumerate() {
        if *x > 0.5 {
            bytes[i / 8] |= 0x80 >> (i % 8);
        }
    }
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_bits(u32::from_ne_bytes(c.try_into().expect("4 bytes"))))
        .collect()
}
