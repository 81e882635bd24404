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

/// Nearest and second-nearest center distances (Euclidean) and the index
/// of the nearest.
fn two_nearest(v: &[f32], centers: &[f32]) -> (u32, f32, f32) {
    let dim = v.len();
    let (mut a, mut d1, mut d2) = (0u32, f32::INFINITY, f32::INFINITY);
    for (i, c) in centers.chunks_exact(dim).enumerate() {
        let d = distance::l2_squared(v, c);
        if d < d1 {
            d2 = d1;
            d1 = d;
            a = i as u32;
        } else if d < d2 {
            d2 = d;
        }
    }
    (a, d1.max(0.0).sqrt(), d2.max(0.0).sqrt())
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
    let mut upper = vec![0f32; n];
    let mut lower = vec![0f32; n];
    // Points per parallel step: about WORK_PER_STEP distance terms, so
    // `between` (interrupt checks) runs often even with many centers.
    let step = (WORK_PER_STEP / (k * dim)).max(64).min(n);
    for r in steps(n, step) {
        pool.install(|| {
            assign[r.clone()]
                .par_iter_mut()
                .zip(upper[r.clone()].par_iter_mut())
                .zip(lower[r.clone()].par_iter_mut())
                .zip(samples[r.start * dim..r.end * dim].par_chunks(dim))
                .for_each(|(((a, u), l), v)| {
                    let (i, d1, d2) = two_nearest(v, &centers);
                    (*a, *u, *l) = (i, d1, d2);
                })
        });
        between();
    }

    let mut report = Report::default();
    let mut half_gap = vec![0f32; k];
    for iteration in 1..=params.max_iterations {
        report.iterations = iteration;
        let shift = move_centers(samples, dim, &assign, &mut centers, params.spherical, pool);
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
        // Half the distance to the nearest other center: a point nearer
        // than that to its own center cannot be nearer to another. k^2
        // distances, so only for k where that is cheap next to a pass.
        if k <= 4096 {
            for r in steps(k, step.min(k)) {
                let centers = &centers;
                pool.install(|| {
                    half_gap[r.clone()]
                        .par_iter_mut()
                        .zip(r.clone())
                        .for_each(|(g, j)| {
                            let cj = &centers[j * dim..(j + 1) * dim];
                            let nearest = centers
                                .chunks_exact(dim)
                                .enumerate()
                                .filter(|(i, _)| *i != j)
                                .map(|(_, c)| dist(cj, c))
                                .fold(f32::INFINITY, f32::min);
                            *g = nearest / 2.0;
                        })
                });
                between();
            }
        }
        let centers_ref = &centers;
        let half_gap_ref = &half_gap;
        let shift_ref = &shift;
        let mut changes = 0;
        for r in steps(n, step) {
            changes += pool.install(|| {
                assign[r.clone()]
                    .par_iter_mut()
                    .zip(upper[r.clone()].par_iter_mut())
                    .zip(lower[r.clone()].par_iter_mut())
                    .zip(samples[r.start * dim..r.end * dim].par_chunks(dim))
                    .map(|(((a, u), l), v)| {
                        let own = *a as usize;
                        *u += shift_ref[own];
                        *l -= if own == top.0 { second } else { top.1 };
                        let bound = l.max(half_gap_ref[own]);
                        if *u <= bound {
                            return 0;
                        }
                        *u = dist(v, &centers_ref[own * dim..(own + 1) * dim]);
                        if *u <= bound {
                            return 0;
                        }
                        let (i, d1, d2) = two_nearest(v, centers_ref);
                        let changed = i != *a;
                        (*a, *u, *l) = (i, d1, d2);
                        changed as usize
                    })
                    .sum::<usize>()
            });
            between();
        }
        report.last_changes = changes;
        if changes as f64 <= params.tolerance * n as f64 {
            break;
        }
    }
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
                    *d = d.min(distance::l2_squared(v, c).max(0.0));
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
