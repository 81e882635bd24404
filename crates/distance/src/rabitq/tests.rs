//! RaBitQ against exact arithmetic: the rotation is orthogonal, and the
//! estimates fall within their error bounds on synthetic and real data.

use super::*;
use testkit::Rng;

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

fn l2sq(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum()
}

/// A standard normal sample (Box-Muller).
fn gauss(rng: &mut Rng) -> f32 {
    let u = rng.unit().max(1e-7);
    let v = rng.unit();
    (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
}

fn gaussian_rows(rng: &mut Rng, rows: usize, dims: usize) -> Vec<Vec<f32>> {
    (0..rows)
        .map(|_| (0..dims).map(|_| gauss(rng)).collect())
        .collect()
}

fn mean(rows: &[Vec<f32>]) -> Vec<f32> {
    let mut m = vec![0.0f64; rows[0].len()];
    for r in rows {
        m.iter_mut().zip(r).for_each(|(a, &x)| *a += x as f64);
    }
    m.iter().map(|&a| (a / rows.len() as f64) as f32).collect()
}

#[test]
fn hadamard_matches_its_matrix() {
    let mut rng = Rng::new(11);
    for n in [1usize, 2, 8, 64] {
        let x: Vec<f32> = (0..n).map(|_| rng.signed()).collect();
        let mut fast = x.clone();
        hadamard(&mut fast);
        for (i, &f) in fast.iter().enumerate() {
            let want: f64 = (0..n)
                .map(|j| {
                    if (i & j).count_ones() % 2 == 0 {
                        x[j] as f64
                    } else {
                        -x[j] as f64
                    }
                })
                .sum();
            assert!(
                (f as f64 - want).abs() < 1e-4,
                "n {n} row {i}: {f} vs {want}"
            );
        }
    }
}

#[test]
fn rotation_is_orthogonal_and_seeded() {
    let mut rng = Rng::new(12);
    for dims in [1usize, 3, 64, 300, 384, 1536, 3072, 16000] {
        let r = Rotation::new(dims, 7);
        assert_eq!(r.padded(), dims.div_ceil(64).max(1) * 64);
        let x: Vec<f32> = (0..dims).map(|_| gauss(&mut rng)).collect();
        let y: Vec<f32> = (0..dims).map(|_| gauss(&mut rng)).collect();
        let (mut rx, mut ry) = (vec![0.0; r.padded()], vec![0.0; r.padded()]);
        r.rotate(&x, &mut rx);
        r.rotate(&y, &mut ry);
        let norm = dot(&x, &x);
        assert!(
            (dot(&rx, &rx) - norm).abs() < 1e-4 * norm,
            "dims {dims}: norm changed"
        );
        let scale = (norm * dot(&y, &y)).sqrt();
        assert!(
            (dot(&rx, &ry) - dot(&x, &y)).abs() < 1e-4 * scale,
            "dims {dims}: inner product changed"
        );
        // the same seed gives the same map, another seed another one
        let mut again = vec![0.0; r.padded()];
        Rotation::new(dims, 7).rotate(&x, &mut again);
        assert_eq!(again, rx);
        Rotation::new(dims, 8).rotate(&x, &mut again);
        assert_ne!(again, rx);
    }
}

/// Checks every (data, query) estimate of `value` against `exact`: at least
/// 99% within the error bound, no bias, and an error well below the norms.
fn check_estimates(
    rows: &[Vec<f32>],
    queries: &[Vec<f32>],
    q: &Quantizer,
    estimate: impl Fn(&PreparedQuery, &Code) -> Estimate,
    exact: impl Fn(&[f32], &[f32]) -> f64,
) {
    let codes: Vec<Code> = rows.iter().map(|r| q.encode(r)).collect();
    let (mut within, mut total, mut signed, mut scale) = (0usize, 0usize, 0.0f64, 0.0f64);
    let mut abs_error = 0.0f64;
    for query in queries {
        let prepared = q.prepare(query);
        for (row, code) in rows.iter().zip(&codes) {
            let e = estimate(&prepared, code);
            let truth = exact(row, query);
            assert!(e.error.is_finite() && e.error >= 0.0);
            if (e.value as f64 - truth).abs() <= e.error as f64 {
                within += 1;
            }
            total += 1;
            signed += e.value as f64 - truth;
            abs_error += (e.value as f64 - truth).abs();
            scale += e.error as f64;
        }
    }
    let share = within as f64 / total as f64;
    assert!(
        share >= 0.99,
        "only {share:.4} of estimates within their bound"
    );
    // the bound is not vacuous: a few times the typical error, no more;
    // the errors do not lean one way
    let (bias, bound, typical) = (
        signed / total as f64,
        scale / total as f64,
        abs_error / total as f64,
    );
    assert!(
        bound < 6.0 * typical,
        "mean bound {bound} against a mean error of {typical}"
    );
    assert!(
        bias.abs() < 0.15 * typical,
        "bias {bias} against a mean error of {typical}"
    );
}

/// Squared L2 estimates of Gaussian rows against Gaussian queries, around
/// zero, with `bits` per dimension.
fn check_gaussian_l2(seed: u64, rows: usize, queries: usize, dims: usize, bits: u32) {
    let mut rng = Rng::new(seed);
    let rows = gaussian_rows(&mut rng, rows, dims);
    let queries = gaussian_rows(&mut rng, queries, dims);
    let q = Quantizer::with_bits(vec![0.0; dims], seed, bits);
    assert_eq!(q.code_words(), dims.div_ceil(64) * 64 * bits as usize / 64);
    check_estimates(
        &rows,
        &queries,
        &q,
        |p, c| p.l2_squared(&c.bits, &c.factors),
        l2sq,
    );
}

#[test]
fn l2_estimates_hold_their_bound_on_gaussian_data() {
    check_gaussian_l2(13, 400, 20, 384, 1);
}

#[test]
fn four_bit_l2_estimates_hold_their_bound_on_gaussian_data() {
    check_gaussian_l2(13, 400, 20, 384, 4);
    check_gaussian_l2(15, 100, 10, 1000, 4);
}

#[test]
fn inner_product_estimates_hold_their_bound_on_vectors_of_any_length() {
    // real embeddings scaled to lengths between 0.2 and 5, around their mean
    let mut rng = Rng::new(14);
    let scale = |rows: Vec<Vec<f32>>, rng: &mut Rng| -> Vec<Vec<f32>> {
        rows.into_iter()
            .map(|r| {
                let s = 0.2 + 4.8 * rng.unit();
                r.iter().map(|x| x * s).collect()
            })
            .collect()
    };
    let rows = scale(testkit::fixture("base", 1000), &mut rng);
    let queries = scale(testkit::fixture("query", 20), &mut rng);
    for bits in [1, 4] {
        let q = Quantizer::with_bits(mean(&rows), 2, bits);
        check_estimates(
            &rows,
            &queries,
            &q,
            |p, c| p.inner_product(&c.bits, &c.factors),
            dot,
        );
    }
}

/// Recall@10 of the `short` best estimates of 2000 384-d sentence
/// embeddings (codes of `bits` around their mean), re-ranked exactly.
fn reranked_recall(bits: u32, short: usize) -> f64 {
    let rows = testkit::fixture("base", 2000);
    let queries = testkit::fixture("query", 50);
    let q = Quantizer::with_bits(mean(&rows), 3, bits);
    let codes: Vec<Code> = rows.iter().map(|r| q.encode(r)).collect();
    let mut found = 0;
    for query in &queries {
        let prepared = q.prepare(query);
        let mut by_estimate: Vec<(f32, usize)> = codes
            .iter()
            .enumerate()
            .map(|(i, c)| (prepared.l2_squared(&c.bits, &c.factors).value, i))
            .collect();
        by_estimate.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut reranked: Vec<(f64, usize)> = by_estimate[..short]
            .iter()
            .map(|&(_, i)| (l2sq(&rows[i], query), i))
            .collect();
        reranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut exact: Vec<(f64, usize)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (l2sq(r, query), i))
            .collect();
        exact.sort_by(|a, b| a.0.total_cmp(&b.0));
        let truth: Vec<usize> = exact[..10].iter().map(|e| e.1).collect();
        found += reranked[..10]
            .iter()
            .filter(|r| truth.contains(&r.1))
            .count();
    }
    found as f64 / (10 * queries.len()) as f64
}

#[test]
fn reranking_a_short_list_of_estimates_finds_the_true_neighbours() {
    // one bit: the 40 best estimates hold the 10 true nearest almost always
    let recall = reranked_recall(1, 40);
    assert!(
        recall >= 0.97,
        "recall@10 after re-ranking 40 estimates: {recall}"
    );
    // four bits: the 15 best do
    let recall = reranked_recall(4, 15);
    assert!(recall >= 0.97, "four bits, re-ranking 15: {recall}");
    // and the estimates alone rank nearly as the exact distances do
    let recall = reranked_recall(4, 10);
    assert!(recall >= 0.9, "four bits without re-ranking: {recall}");
}

#[test]
fn four_bit_levels_are_the_best_grid_point_in_angle() {
    let mut rng = Rng::new(31);
    for dims in [64usize, 200, 512] {
        let q = Quantizer::with_bits(vec![0.0; dims], 4, 4);
        let one = Quantizer::new(vec![0.0; dims], 4);
        for _ in 0..5 {
            let v: Vec<f32> = (0..dims).map(|_| gauss(&mut rng)).collect();
            let code = q.encode(&v);
            let f = code.factors;
            // four bits point far better than one: <x, y> near 0.99
            assert!(f.quality > 0.98, "dims {dims}: quality {}", f.quality);
            assert!(f.quality > one.encode(&v).factors.quality + 0.1);
            // no scale does better: the grid point of any t rounds t|y|
            let mut y = vec![0.0; q.rotation().padded()];
            let n = (dot(&v, &v) as f32).sqrt();
            let unit: Vec<f32> = v.iter().map(|x| x / n).collect();
            q.rotation().rotate(&unit, &mut y);
            for step in 1..400 {
                let t = step as f32 * 0.1;
                let x: Vec<f32> = y
                    .iter()
                    .map(|&c| ((t * c.abs()).floor().min(7.0) + 0.5).copysign(c))
                    .collect();
                let cos = dot(&x, &y) / dot(&x, &x).sqrt();
                assert!(
                    cos <= f.quality as f64 + 1e-5,
                    "t {t}: {cos} beats {}",
                    f.quality
                );
            }
            // the stored levels stand for that angle
            let levels = q.levels(&code.bits);
            let x: Vec<f32> = levels.iter().map(|&u| u as f32 - 7.5).collect();
            assert!(levels.iter().all(|&u| u < 16));
            assert!((dot(&x, &x).sqrt() as f32 - f.level_norm).abs() < 1e-3 * f.level_norm);
            let cos = dot(&x, &y) / dot(&x, &x).sqrt();
            assert!((cos as f32 - f.quality).abs() < 1e-4);
        }
    }
}

#[test]
fn four_bit_codes_decode_and_compare() {
    let mut rng = Rng::new(32);
    let dims = 300;
    let rows = gaussian_rows(&mut rng, 20, dims);
    let center = mean(&rows);
    let q = Quantizer::with_bits(center.clone(), 6, 4);
    let (mut scratch, mut a, mut b) = (Vec::new(), Vec::new(), Vec::new());
    q.encode_bytes(&rows[0], &mut scratch, &mut a);
    q.encode_bytes(&rows[1], &mut scratch, &mut b);
    assert_eq!(a.len(), code_bytes(dims, 4));
    assert_eq!(a.len(), FACTOR_BYTES + 320 / 2);
    // reconstructions lie close to the rows (far closer than one bit's)
    let mut approx = Vec::new();
    assert!(q.decode_bytes(&a, &mut approx));
    let err = l2sq(&approx, &rows[0]) / l2sq(&rows[0], &center);
    assert!(err < 0.05, "relative error {err}");
    let mut dir = Vec::new();
    assert!(q.direction_bytes(&a, &mut dir));
    assert!((l2sq(&dir, &center) - l2sq(&rows[0], &center)).abs() < 1e-2 * l2sq(&rows[0], &center));
    // code against code
    let pair = q.between_codes(&a, &b).unwrap();
    let exact = l2sq(&rows[0], &rows[1]);
    assert!(
        (pair.l2_squared as f64 - exact).abs() < 0.05 * exact,
        "{pair:?} against {exact}"
    );
    assert!((pair.inner_product as f64 - dot(&rows[0], &rows[1])).abs() < 0.05 * exact);
    assert!(q.between_codes(&a, &b[1..]).is_none());
}

#[test]
fn estimates_are_unbiased_over_random_rotations() {
    // for fixed pairs of sentence embeddings, near and far, the estimate
    // averaged over 300 rotations is the exact inner product within a few
    // standard errors
    let rows = testkit::fixture("base", 8);
    let mut queries = testkit::fixture("query", 2);
    queries.extend(rows[..2].iter().map(|r| {
        r.iter()
            .zip(&rows[7])
            .map(|(a, b)| 0.8 * a + 0.2 * b)
            .collect()
    }));
    for query in &queries {
        for row in &rows {
            let runs: Vec<f64> = (0..300)
                .map(|seed| {
                    let q = Quantizer::new(vec![0.0; row.len()], seed);
                    let c = q.encode(row);
                    q.prepare(query).inner_product(&c.bits, &c.factors).value as f64
                })
                .collect();
            let m = runs.iter().sum::<f64>() / runs.len() as f64;
            let sd = (runs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / runs.len() as f64).sqrt();
            let exact = dot(row, query);
            assert!(
                (m - exact).abs() < 4.0 * sd / (runs.len() as f64).sqrt() + 1e-3,
                "mean {m} vs {exact} (sd {sd})"
            );
        }
    }
}

#[test]
fn codes_at_the_center_and_zero_queries_are_exact() {
    let rows = testkit::fixture("base", 10);
    let center = mean(&rows);
    let q = Quantizer::new(center.clone(), 4);
    let at_center = q.encode(&center);
    assert_eq!(at_center.factors.norm, 0.0);
    let prepared = q.prepare(&rows[0]);
    let e = prepared.l2_squared(&at_center.bits, &at_center.factors);
    assert_eq!(e.error, 0.0);
    assert!((e.value as f64 - l2sq(&rows[0], &center)).abs() < 1e-5);
    // a query at the center: the distance is the code's norm, exactly
    let prepared = q.prepare(&center);
    let code = q.encode(&rows[1]);
    let e = prepared.l2_squared(&code.bits, &code.factors);
    assert_eq!(e.error, 0.0);
    assert!((e.value as f64 - l2sq(&rows[1], &center)).abs() < 1e-4);
}

#[test]
fn sixteen_thousand_dimensions_estimate_within_bound() {
    check_gaussian_l2(15, 100, 10, 16000, 1);
}

#[test]
fn unrotating_undoes_the_rotation() {
    let mut rng = Rng::new(21);
    for dims in [1usize, 64, 384, 1000, 4096] {
        let r = Rotation::new(dims, 11);
        let x: Vec<f32> = (0..dims).map(|_| gauss(&mut rng)).collect();
        let mut y = vec![0.0; r.padded()];
        r.rotate(&x, &mut y);
        r.unrotate_in_place(&mut y);
        let err = l2sq(&x, &y[..dims]);
        assert!(err < 1e-8 * dot(&x, &x), "dims {dims}: error {err}");
        assert!(
            y[dims..].iter().all(|v| v.abs() < 1e-4),
            "padding came back"
        );
    }
}

#[test]
fn stored_codes_read_back_as_encoded() {
    let mut rng = Rng::new(22);
    for dims in [1usize, 65, 384, 3072] {
        let rows = gaussian_rows(&mut rng, 3, dims);
        let q = Quantizer::new(mean(&rows), 5);
        let (mut scratch, mut out) = (Vec::new(), vec![0xAAu8]);
        q.encode_bytes(&rows[0], &mut scratch, &mut out);
        assert_eq!(out.len(), 1 + code_bytes(dims, 1));
        let code = q.encode(&rows[0]);
        // read from an odd offset (a copy) and from an aligned one (in place)
        let unaligned = &out[1..];
        let read = with_code(unaligned, |b, f| Code {
            bits: b.to_vec(),
            factors: *f,
        });
        assert_eq!(read.as_ref(), Some(&code));
        let mut aligned = vec![0u64; unaligned.len().div_ceil(8) + 1];
        let bytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut aligned)[4..4 + unaligned.len()];
        bytes.copy_from_slice(unaligned);
        let read = with_code(bytes, |b, f| Code {
            bits: b.to_vec(),
            factors: *f,
        });
        assert_eq!(read, Some(code));
        // not a whole code
        assert!(with_code(&unaligned[..unaligned.len() - 1], |_, _| ()).is_none());
        assert!(with_code(&unaligned[..FACTOR_BYTES], |_, _| ()).is_none());
    }
}

#[test]
fn decoded_codes_give_the_estimates_inner_products() {
    let mut rng = Rng::new(23);
    let dims = 300;
    let rows = gaussian_rows(&mut rng, 20, dims);
    let q = Quantizer::new(mean(&rows), 6);
    let (mut scratch, mut bytes) = (Vec::new(), Vec::new());
    for row in &rows {
        bytes.clear();
        q.encode_bytes(row, &mut scratch, &mut bytes);
        let mut approx = Vec::new();
        assert!(q.decode_bytes(&bytes, &mut approx));
        assert_eq!(approx.len(), dims);
        // the reconstruction's inner product with any vector is the
        // estimate from an unrounded query: close to the rounded one's
        let other = &rows[0];
        let code = q.encode(row);
        let est = q.prepare(other).inner_product(&code.bits, &code.factors);
        let recon = dot(&approx, other);
        assert!(
            (recon - est.value as f64).abs() <= est.error as f64 + 1e-3 * (1.0 + recon.abs()),
            "reconstruction {recon} against estimate {est:?}"
        );
        // and it is nearer the row than the center is
        assert!(l2sq(&approx, row) < l2sq(&mean(&rows), row));
    }
    assert!(!q.decode_bytes(&bytes[1..], &mut Vec::new()));
}

#[test]
fn queries_with_their_code_form_estimate_every_metric() {
    for bits in [1, 4] {
        code_queries_estimate(bits);
    }
}

fn code_queries_estimate(bits: u32) {
    use crate::{Element, Metric, Query};
    let mut rng = Rng::new(24);
    let dims = 256;
    let rows = gaussian_rows(&mut rng, 2, dims);
    let quant = Quantizer::with_bits(vec![0.0; dims], 9, bits);
    let mut bytes = Vec::new();
    quant.encode_bytes(&rows[0], &mut Vec::new(), &mut bytes);
    let code = quant.encode(&rows[0]);
    let prepared = quant.prepare(&rows[1]);
    let l2 = Query::new(Metric::L2, Element::F32(&rows[1])).with_code(Some(&prepared));
    let want = prepared.l2_squared(&code.bits, &code.factors);
    assert_eq!(l2.estimate(&bytes), Some(want));
    assert_eq!(l2.distance(Element::Code(&bytes)), want.value);
    let ip = Query::new(Metric::InnerProduct, Element::F32(&rows[1])).with_code(Some(&prepared));
    let want = prepared.inner_product(&code.bits, &code.factors);
    assert_eq!(ip.distance(Element::Code(&bytes)), -want.value);
    assert_eq!(ip.estimate(&bytes).map(|e| e.error), Some(want.error));
    // without the code form, or for a metric codes do not serve: unmeasured
    let bare = Query::new(Metric::L2, Element::F32(&rows[1]));
    assert_eq!(bare.distance(Element::Code(&bytes)), f32::INFINITY);
    let l1 = Query::new(Metric::L1, Element::F32(&rows[1])).with_code(Some(&prepared));
    assert!(l1.estimate(&bytes).is_none());
}

#[test]
fn bracketed_level_search_finds_the_exhaustive_searchs_levels() {
    let mut rng = Rng::new(77);
    let mut checked = 0;
    for dims in [3usize, 64, 200, 384, 1536, 3000] {
        let rotation = Rotation::new(dims, 9);
        let padded = rotation.padded();
        for case in 0..12 {
            // rotated rows as encoding makes them: Gaussian, shifted (an
            // embedding's common direction), sparse and one-hot
            let v: Vec<f32> = (0..dims)
                .map(|i| match case % 4 {
                    0 => gauss(&mut rng),
                    1 => 3.0 + gauss(&mut rng),
                    2 if i % 17 == 0 => gauss(&mut rng),
                    2 => 0.0,
                    _ if i == 0 => 1.0,
                    _ => 0.0,
                })
                .collect();
            let n = (dot(&v, &v) as f32).sqrt();
            if n == 0.0 {
                continue;
            }
            let unit: Vec<f32> = v.iter().map(|x| x / n).collect();
            let mut rotated = vec![0.0; padded];
            rotation.rotate(&unit, &mut rotated);
            // and unrotated, heavy-tailed coordinates (a worse case than
            // encoding ever sees)
            let tailed: Vec<f32> = (0..padded)
                .map(|_| {
                    let g = gauss(&mut rng);
                    g * g * g
                })
                .collect();
            for y in [rotated, tailed] {
                let (mut fast, mut slow) = (vec![0u64; padded / 16], vec![0u64; padded / 16]);
                let got = best_levels(&y, 4, &mut fast);
                let want = exhaustive_best_levels(&y, 4, &mut slow);
                assert!(
                    got.0 >= want.0 - 1e-6,
                    "dims {dims} case {case}: {} against {}",
                    got.0,
                    want.0
                );
                if got.0 == want.0 {
                    assert_eq!(fast, slow, "dims {dims} case {case}");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 144);
}
