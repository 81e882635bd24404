//! k-means for the list centers: k-means++ seeding (samples grouped by
//! their nearest center, so a new center only looks at groups it can take
//! from), then Lloyd iterations accelerated with Elkan's bounds when they
//! fit in memory, else Hamerly's (each point keeps an upper bound on the
//! distance to its center and a lower bound on the distance to any other;
//! most points skip the distance computations after a few iterations, and
//! one whose bounds fail looks among its center's nearest centers first). Spherical k-means (cosine, inner product) clusters unit
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

/// The deterministic generator builds use, so they are repeatable.
pub use distance::SplitMix as Rng;

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
    /// For many centers in few dimensions: nearest by a walk outwards
    /// along one coordinate, which visits a small share of the centers
    /// where a block product computes every distance.
    slab: Option<Slab>,
}

impl<'a> CenterBlock<'a> {
    pub fn new(centers: &'a [f32], dim: usize) -> Self {
        let norms: Vec<f32> = centers
            .chunks_exact(dim)
            .map(distance::norm_squared)
            .collect();
        let slab = (dim < 16 && norms.len() >= 256).then(|| Slab::new(centers, dim));
        CenterBlock {
            centers,
            dim,
            norms,
            slab,
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
        if let (Some(slab), L2 | Cosine) = (&self.slab, metric) {
            // cosine rows and centers are unit vectors: L2 orders alike
            let rows = rows.chunks_exact(self.dim);
            out.extend(rows.map(|v| slab.nearest(self.centers, self.dim, v)));
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
    let (mut centers, mut assign, nearest) =
        seed_plus_plus(samples, dim, k, &mut rng, pool, &mut between);
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
        run.hamerly(&mut centers, &mut assign, &nearest)
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

    /// Half the distance from each center to each other (`half`, k x k)
    /// and to its nearest other (`half_nearest`).
    fn center_gaps(&mut self, centers: &[f32], half: &mut [f32], half_nearest: &mut [f32]) {
        let (dim, k) = (self.dim, half_nearest.len());
        // one center's row; returns the smallest gap
        let row = |j: usize, out: &mut [f32]| -> f32 {
            let cj = &centers[j * dim..(j + 1) * dim];
            let mut nearest = f32::INFINITY;
            for (i, (c, o)) in centers.chunks_exact(dim).zip(out.iter_mut()).enumerate() {
                *o = if i == j { 0.0 } else { dist(cj, c) / 2.0 };
                if i != j {
                    nearest = nearest.min(*o);
                }
            }
            nearest
        };
        for r in steps(k, self.step.min(k)) {
            let nearest = &mut half_nearest[r.clone()];
            self.pool.install(|| {
                half[r.start * k..r.end * k]
                    .par_chunks_mut(k)
                    .zip(nearest.par_iter_mut())
                    .zip(r.clone())
                    .for_each(|((out, hn), j)| *hn = row(j, out))
            });
            (self.between)();
        }
    }

    /// Each center's NEAR_CENTERS nearest others (exact distances), a
    /// step of centers at a time.
    fn center_neighbors(&mut self, centers: &[f32], near: &mut Near) {
        let (dim, k) = (self.dim, centers.len() / self.dim);
        let width = NEAR_CENTERS.min(k - 1);
        near.width = width;
        near.ids.resize(k * width, 0);
        near.distances.resize(k * width, 0.0);
        near.beyond.resize(k, f32::INFINITY);
        let slab = Slab::new(centers, dim);
        for r in steps(k, self.step.min(k)) {
            self.pool.install(|| {
                near.ids[r.start * width..r.end * width]
                    .par_chunks_mut(width.max(1))
                    .zip(
                        near.distances[r.start * width..r.end * width].par_chunks_mut(width.max(1)),
                    )
                    .zip(near.beyond[r.clone()].par_iter_mut())
                    .zip(r.clone())
                    .for_each(|(((ids, ds), beyond), j)| {
                        slab.nearest_others(centers, dim, j, ids, ds);
                        // every center not listed is at least as far as
                        // the farthest listed one
                        *beyond = if width < k - 1 {
                            ds.last().copied().unwrap_or(0.0)
                        } else {
                            f32::INFINITY
                        };
                    })
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
                self.center_gaps(centers, &mut half, &mut half_nearest);
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
    /// `assign` holds each sample's nearest center and `nearest` the
    /// squared distance to it (from the seeding); the lower bounds start
    /// at zero, so the first iteration finds every sample's second nearest.
    fn hamerly(&mut self, centers: &mut [f32], assign: &mut [u32], nearest: &[f32]) -> Report {
        let (dim, k, n) = (self.dim, self.params.k, assign.len());
        // (upper, lower) per sample
        let mut bounds: Vec<(f32, f32)> =
            nearest.iter().map(|d| (d.max(0.0).sqrt(), 0.0)).collect();
        let mut report = Report::default();
        let mut half_gap = vec![0f32; k];
        let mut near = Near::default();
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
                self.center_neighbors(centers, &mut near);
                for (h, d) in half_gap.iter_mut().zip(near.nearest()) {
                    *h = d / 2.0;
                }
            } else {
                near.clear();
            }
            let (centers, half_gap, shift, near) = (&*centers, &half_gap, &shift, &near);
            let block = CenterBlock::new(centers, dim);
            let mut changes = 0;
            for r in steps(n, self.step) {
                let samples = &self.samples[r.start * dim..r.end * dim];
                // bounds first; a point whose bounds fail looks among its
                // center's nearest centers (`Near`), and when those cannot
                // settle it is compared with every center afterwards,
                // BLOCK_ROWS at a time as a block product (one distance
                // call per pair cost 14 ns at 3 dimensions: 10 iterations
                // into 10,000 lists took 200 s)
                let (settled, failing): (Vec<_>, Vec<_>) = self.pool.install(|| {
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
                            if *u <= bound {
                                return None;
                            }
                            Some(match near.search(v, own, *u, centers, dim) {
                                Some((i1, d1, d2)) => Ok((r.start + i, i1, d1, d2)),
                                None => Err(r.start + i),
                            })
                        })
                        .partition_map(|x| match x {
                            Ok(s) => rayon::iter::Either::Left(s),
                            Err(p) => rayon::iter::Either::Right(p),
                        })
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
                for (p, i, d1, d2) in settled.into_iter().chain(nearest) {
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

/// How many nearest other centers each center lists for Hamerly's
/// iterations (a point that fails its bounds is nearer to its own center
/// than to any center outside twice that distance, so in few dimensions a
/// handful of neighbours settles it without a pass over all centers).
const NEAR_CENTERS: usize = 32;

/// Every center's nearest other centers, nearest first, with their exact
/// distances (`width` per center), and the distance beyond which all
/// unlisted centers lie. Empty when not computed (too many centers).
#[derive(Default)]
struct Near {
    width: usize,
    ids: Vec<u32>,
    distances: Vec<f32>,
    beyond: Vec<f32>,
}

impl Near {
    fn clear(&mut self) {
        self.width = 0;
        self.ids.clear();
        self.distances.clear();
        self.beyond.clear();
    }

    /// The distance from each center to its nearest other.
    fn nearest(&self) -> impl Iterator<Item = f32> + '_ {
        self.distances.iter().step_by(self.width.max(1)).copied()
    }

    /// The nearest center of `v`, its distance and a lower bound on the
    /// distance to any other center, found among the neighbours of `own`
    /// (at exactly `u` from `v`); None when they cannot settle it. A center
    /// c is at least d(own, c) - u from v, so the walk (nearest first)
    /// stops once that reaches the second-nearest found.
    fn search(
        &self,
        v: &[f32],
        own: usize,
        u: f32,
        centers: &[f32],
        dim: usize,
    ) -> Option<(u32, f32, f32)> {
        // only when the list is sure to settle it (everything unlisted at
        // least u away): otherwise, in many dimensions, the walk would
        // mostly end in the pass over all centers anyway
        if self.width == 0 || 2.0 * u > self.beyond[own] {
            return None;
        }
        let list = own * self.width..(own + 1) * self.width;
        let (mut best, mut best_d, mut second) = (own as u32, u, f32::INFINITY);
        for (&c, &dc) in self.ids[list.clone()].iter().zip(&self.distances[list]) {
            if dc - u >= second {
                return Some((best, best_d, second));
            }
            let d = seed_distance(v, &centers[c as usize * dim..(c as usize + 1) * dim]).sqrt();
            if d < best_d {
                (best, best_d, second) = (c, d, best_d);
            } else if d < second {
                second = d;
            }
        }
        let beyond = self.beyond[own] - u;
        (beyond >= best_d).then_some((best, best_d, second.min(beyond)))
    }
}

/// Centers in order of one coordinate (the one they spread most along),
/// so the nearest others of a center are looked for outwards from its
/// place: a center whose coordinate alone differs by more than the
/// farthest kept cannot be nearer. In few dimensions that visits a slab of
/// the centers instead of all of them; in many it visits all, as a plain
/// scan would.
struct Slab {
    axis: usize,
    order: Vec<u32>,
    place: Vec<u32>,
}

impl Slab {
    fn new(centers: &[f32], dim: usize) -> Self {
        let k = centers.len() / dim;
        let spread = |d: usize| {
            let (lo, hi) = centers
                .iter()
                .skip(d)
                .step_by(dim)
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
                    (lo.min(*x), hi.max(*x))
                });
            hi - lo
        };
        let axis = (0..dim)
            .max_by(|a, b| spread(*a).total_cmp(&spread(*b)))
            .unwrap_or(0);
        let mut order: Vec<u32> = (0..k as u32).collect();
        order.sort_by(|a, b| {
            centers[*a as usize * dim + axis].total_cmp(&centers[*b as usize * dim + axis])
        });
        let mut place = vec![0u32; k];
        for (p, &c) in order.iter().enumerate() {
            place[c as usize] = p as u32;
        }
        Slab { axis, order, place }
    }

    /// The `ids.len()` centers nearest to center `j` (other than itself),
    /// nearest first, and their distances.
    fn nearest_others(
        &self,
        centers: &[f32],
        dim: usize,
        j: usize,
        ids: &mut [u32],
        ds: &mut [f32],
    ) {
        let width = ids.len();
        if width == 0 {
            return;
        }
        let cj = &centers[j * dim..(j + 1) * dim];
        // (squared distance, id), kept sorted nearest first
        let mut kept: Vec<(f32, u32)> = Vec::with_capacity(width + 1);
        let at = self.place[j] as usize;
        self.walk(
            centers,
            dim,
            cj,
            (at, at + 1),
            &mut kept,
            |kept| {
                if kept.len() == width {
                    kept[width - 1].0
                } else {
                    f32::INFINITY
                }
            },
            |kept, i, d| {
                let at = kept.partition_point(|e| e.0 <= d);
                kept.insert(at, (d, i));
                kept.truncate(width);
            },
        );
        for ((id, out), (d, i)) in ids.iter_mut().zip(ds.iter_mut()).zip(kept) {
            *id = i;
            *out = d.sqrt();
        }
    }

    /// The center nearest to `v` (squared L2).
    fn nearest(&self, centers: &[f32], dim: usize, v: &[f32]) -> u32 {
        let x = v[self.axis];
        let at = self
            .order
            .partition_point(|&c| centers[c as usize * dim + self.axis] < x);
        let mut best = (0u32, f32::INFINITY);
        self.walk(
            centers,
            dim,
            v,
            (at, at),
            &mut best,
            |b| b.1,
            |b, i, d| *b = (i, d),
        );
        best.0
    }

    /// Visits the centers outwards from a place in `order` (left of
    /// `from.0`, and from `from.1` on), both sides in turn, each until its
    /// coordinate alone differs from `v`'s by more than `bound(state)`
    /// allows (a squared distance); `take(state, center, squared
    /// distance)` gets each center nearer than the bound.
    #[allow(clippy::too_many_arguments)]
    fn walk<T>(
        &self,
        centers: &[f32],
        dim: usize,
        v: &[f32],
        from: (usize, usize),
        state: &mut T,
        bound: impl Fn(&T) -> f32,
        mut take: impl FnMut(&mut T, u32, f32),
    ) {
        let x = v[self.axis];
        // false once this side is done
        let mut step = |i: u32, state: &mut T| -> bool {
            let c = &centers[i as usize * dim..(i as usize + 1) * dim];
            let gap = c[self.axis] - x;
            let limit = bound(state);
            if gap * gap > limit {
                return false; // and every center farther along this side
            }
            let d = seed_distance(v, c);
            if d < limit {
                take(state, i, d);
            }
            true
        };
        let (mut left, mut right) = from;
        let (mut go_left, mut go_right) = (true, true);
        while go_left || go_right {
            if go_right {
                go_right = right < self.order.len() && step(self.order[right], state);
                right += 1;
            }
            if go_left {
                go_left = left > 0 && step(self.order[left - 1], state);
                left = left.saturating_sub(1);
            }
        }
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
/// Returns the centers, each sample's nearest center and the squared
/// distance to it.
///
/// Samples are kept grouped by their nearest center, with each group's
/// largest and summed squared distance: a new center c can only take
/// samples from a group whose center is nearer to c than twice the
/// group's radius, and the draw picks a group by its sum, then a sample in
/// it. With many centers in few dimensions a step touches a few groups
/// instead of every sample.
fn seed_plus_plus(
    samples: &[f32],
    dim: usize,
    k: usize,
    rng: &mut Rng,
    pool: &ThreadPool,
    between: &mut impl FnMut(),
) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let n = samples.len() / dim;
    let sample = |i: usize| &samples[i * dim..(i + 1) * dim];
    let mut centers = Vec::with_capacity(k * dim);
    let first = rng.below(n);
    centers.extend_from_slice(sample(first));
    let mut assign = vec![0u32; n];
    let mut nearest: Vec<f32> = pool.install(|| {
        samples
            .par_chunks(dim)
            .map(|v| seed_distance(v, sample(first)))
            .collect()
    });
    let mut groups = vec![Group::of((0..n as u32).collect(), &nearest)];
    for step in 1..k {
        let total: f64 = groups.iter().map(|g| g.mass).sum();
        let pick = if total > 0.0 && total.is_finite() {
            let mut target = rng.next_f64() * total;
            let g = groups
                .iter()
                .position(|g| {
                    target -= g.mass;
                    target < 0.0
                })
                .unwrap_or_else(|| groups.iter().rposition(|g| g.mass > 0.0).unwrap_or(0));
            let mut target = target + groups[g].mass; // back within the group
            let mut pick = None;
            for i in groups[g].live(g, &assign) {
                pick = Some(i as usize);
                target -= nearest[i as usize] as f64;
                if target < 0.0 {
                    break;
                }
            }
            pick.unwrap_or_else(|| rng.below(n))
        } else {
            rng.below(n) // all samples coincide with centers
        };
        centers.extend_from_slice(sample(pick));
        let c = &centers[step * dim..(step + 1) * dim];
        // groups the new center can take samples from
        let near: Vec<usize> = (0..step)
            .filter(|&a| {
                let g = &groups[a];
                g.live > 0 && seed_distance(c, &centers[a * dim..(a + 1) * dim]) < 4.0 * g.radius
            })
            .collect();
        let touched: usize = near.iter().map(|&a| groups[a].members.len()).sum();
        let closer = |i: u32| {
            let d = seed_distance(sample(i as usize), c);
            (d < nearest[i as usize]).then_some((i, d))
        };
        let moved: Vec<(u32, f32)> = if touched >= n / 2 {
            // most samples: one pass in their order (reading rows in
            // memory order is faster than group by group in many
            // dimensions); the others cannot move, the test says so
            pool.install(|| {
                (0..n as u32)
                    .into_par_iter()
                    .with_min_len(1024)
                    .filter_map(closer)
                    .collect()
            })
        } else if touched * dim >= 1 << 16 {
            // one flat parallel pass over the touched samples
            let touched: Vec<(usize, &[u32])> = near
                .iter()
                .flat_map(|&a| groups[a].members.chunks(1024).map(move |m| (a, m)))
                .collect();
            let assign = &assign;
            pool.install(|| {
                touched
                    .par_iter()
                    .flat_map_iter(|&(a, m)| {
                        m.iter()
                            .filter(move |i| assign[**i as usize] == a as u32)
                            .filter_map(|i| closer(*i))
                    })
                    .collect()
            })
        } else {
            near.iter()
                .flat_map(|&a| groups[a].live(a, &assign).filter_map(closer))
                .collect()
        };
        // a sample that moves stays listed in its old group until that
        // group is mostly moved-out members (radius: still an upper bound)
        let mut own = Vec::with_capacity(moved.len());
        let mut left = Vec::new();
        for &(i, d) in &moved {
            let a = assign[i as usize] as usize;
            groups[a].mass -= nearest[i as usize] as f64;
            groups[a].live -= 1;
            left.push(a);
            nearest[i as usize] = d;
            assign[i as usize] = step as u32;
            own.push(i);
        }
        left.sort_unstable();
        left.dedup();
        for a in left {
            if groups[a].live * 2 < groups[a].members.len() {
                let kept = groups[a].live(a, &assign).collect();
                groups[a] = Group::of(kept, &nearest);
            }
        }
        groups.push(Group::of(own, &nearest));
        if step % 16 == 0 {
            between();
        }
    }
    (centers, assign, nearest)
}

/// The samples whose nearest center is one center, during seeding, and
/// some that have moved to a later center since (`live` are still here).
struct Group {
    members: Vec<u32>,
    live: usize,
    /// At least the largest squared distance of a member to the center.
    radius: f32,
    /// Sum of the live members' squared distances.
    mass: f64,
}

impl Group {
    fn of(members: Vec<u32>, nearest: &[f32]) -> Self {
        let radius = members
            .iter()
            .map(|&i| nearest[i as usize])
            .fold(0.0, f32::max);
        let mass = members.iter().map(|&i| nearest[i as usize] as f64).sum();
        Group {
            live: members.len(),
            members,
            radius,
            mass,
        }
    }

    /// The members still nearest to this group's center `a`.
    fn live<'g>(&'g self, a: usize, assign: &'g [u32]) -> impl Iterator<Item = u32> + 'g {
        self.members
            .iter()
            .copied()
            .filter(move |i| assign[*i as usize] == a as u32)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(rng: &mut Rng, n: usize, dim: usize) -> Vec<f32> {
        (0..n * dim).map(|_| rng.next_f64() as f32).collect()
    }

    /// (nearest, its distance, second distance) over all centers.
    fn brute(v: &[f32], centers: &[f32], dim: usize) -> (u32, f32, f32) {
        let d: Vec<f32> = centers
            .chunks_exact(dim)
            .map(|c| seed_distance(v, c))
            .collect();
        two_smallest(&d)
    }

    #[test]
    fn near_lists_settle_points_as_a_scan_of_all_centers_does() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut rng = Rng::new(3);
        for (dim, k) in [(2, 500), (3, 1000), (8, 300), (3, 20)] {
            let centers = uniform(&mut rng, k, dim);
            let params = Params {
                k,
                spherical: false,
                max_iterations: 1,
                tolerance: 0.0,
                seed: 1,
                bounds_budget: 0,
            };
            let mut between = || {};
            let mut run = Lloyd {
                samples: &[],
                dim,
                params: &params,
                step: 97,
                pool: &pool,
                between: &mut between,
            };
            let mut near = Near::default();
            run.center_neighbors(&centers, &mut near);
            assert_eq!(near.width, NEAR_CENTERS.min(k - 1));
            // the lists are each center's nearest, in order
            for j in 0..k {
                let mut all: Vec<(f32, u32)> = (0..k)
                    .filter(|&i| i != j)
                    .map(|i| {
                        let d = seed_distance(
                            &centers[j * dim..(j + 1) * dim],
                            &centers[i * dim..(i + 1) * dim],
                        );
                        (d.sqrt(), i as u32)
                    })
                    .collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0));
                let w = near.width;
                let listed = &near.distances[j * w..(j + 1) * w];
                for (x, y) in listed.iter().zip(&all) {
                    assert_eq!(*x, y.0, "{dim}-d center {j}");
                }
            }
            // points near their own center, and points whose "own" center
            // is any center at all (a far one makes the lists give up)
            let (mut settled, mut given_up) = (0, 0);
            for p in 0..2000 {
                let v = uniform(&mut rng, 1, dim);
                let (nearest, d1, d2) = brute(&v, &centers, dim);
                let own = if p % 2 == 0 {
                    nearest as usize
                } else {
                    rng.below(k)
                };
                let u = seed_distance(&v, &centers[own * dim..(own + 1) * dim]).sqrt();
                match near.search(&v, own, u, &centers, dim) {
                    Some((i, best, second)) => {
                        settled += 1;
                        assert!((best - d1).abs() <= 1e-6, "{dim}-d: {best} vs {d1}");
                        assert!(i == nearest || best == d1);
                        assert!(second <= d2 + 1e-6, "{dim}-d: bound {second} above {d2}");
                    }
                    None => given_up += 1,
                }
            }
            assert!(settled > 200, "{dim}-d: {settled} settled");
            if k - 1 > NEAR_CENTERS {
                assert!(given_up > 0, "{dim}-d: never gave up");
            }
        }
    }

    #[test]
    fn many_centers_in_few_dimensions_are_searched_along_a_coordinate() {
        let mut rng = Rng::new(5);
        for (dim, k, metric) in [
            (3, 2000, crate::Metric::L2),
            (1, 300, crate::Metric::L2),
            (8, 500, crate::Metric::L2),
            (3, 1000, crate::Metric::Cosine),
        ] {
            let mut centers: Vec<f32> = uniform(&mut rng, k, dim)
                .iter()
                .map(|x| x * 4.0 - 2.0)
                .collect();
            let mut rows: Vec<f32> = uniform(&mut rng, 3000, dim)
                .iter()
                .map(|x| x * 5.0 - 2.5)
                .collect();
            // rows on top of centers, and a far one
            rows.extend_from_slice(&centers[..10 * dim]);
            rows.extend(std::iter::repeat_n(1e6f32, dim));
            if metric == crate::Metric::Cosine {
                centers.chunks_exact_mut(dim).for_each(|c| {
                    normalize(c);
                });
                rows.chunks_exact_mut(dim).for_each(|c| {
                    normalize(c);
                });
            }
            let block = CenterBlock::new(&centers, dim);
            assert!(block.slab.is_some());
            let mut got = Vec::new();
            block.nearest(&rows, metric, &mut got);
            assert_eq!(got.len(), rows.len() / dim);
            for (v, g) in rows.chunks_exact(dim).zip(&got) {
                let (want, d) = nearest_center(v, &centers, metric);
                let dg = metric.distance(v, &centers[*g as usize * dim..(*g as usize + 1) * dim]);
                assert!(
                    *g as usize == want || (dg - d).abs() <= 1e-5 * d.abs().max(1e-3),
                    "{dim}-d {metric:?}: {g} at {dg}, {want} at {d}"
                );
            }
        }
    }

    #[test]
    fn seeding_keeps_every_samples_nearest_center() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut rng = Rng::new(4);
        for (n, dim, k) in [(5000, 3, 700), (2000, 16, 50), (300, 2, 299)] {
            let mut samples = uniform(&mut rng, n, dim);
            // some exact copies, as real tables have
            samples.extend_from_within(..50 * dim);
            let n = samples.len() / dim;
            let (centers, assign, nearest) =
                seed_plus_plus(&samples, dim, k, &mut rng, &pool, &mut || {});
            assert_eq!(centers.len(), k * dim);
            for i in 0..n {
                let v = &samples[i * dim..(i + 1) * dim];
                let (c, d, _) = brute(v, &centers, dim);
                assert_eq!(nearest[i].sqrt(), d, "sample {i}");
                let a = assign[i] as usize;
                assert_eq!(
                    seed_distance(v, &centers[a * dim..(a + 1) * dim]),
                    nearest[i]
                );
                assert!(a == c as usize || nearest[i].sqrt() == d);
            }
            // centers are samples, none drawn twice while others are away
            let distinct = centers
                .chunks_exact(dim)
                .map(|c| c.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
                .collect::<std::collections::HashSet<_>>();
            assert_eq!(distinct.len(), k);
        }
    }
}
