use super::*;

use testkit::Rng;

/// An integer in -8..=8, as f32 (sums of them are exact).
fn small_int(rng: &mut Rng) -> f32 {
    rng.below(17) as f32 - 8.0
}

fn lengths() -> Vec<usize> {
    let mut v: Vec<usize> = (1..=130).collect();
    v.extend([
        255, 256, 257, 383, 384, 385, 767, 768, 1536, 1537, 2000, 4000, 16000,
    ]);
    v
}

fn oracle_l2(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum()
}
fn oracle_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}
fn oracle_l1(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).abs())
        .sum()
}

fn to_f16(a: &[f32]) -> Vec<f16> {
    a.iter().map(|x| f16::from_f32(*x)).collect()
}

#[test]
fn scalar_is_always_available_and_last() {
    let sets = available();
    assert_eq!(sets.last().unwrap().name, "scalar");
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        assert_eq!(sets[0].name, "avx512f");
        assert_eq!(kernels().name, "avx512f");
    }
}

/// Small integers make every partial sum exact in f32, so every kernel must
/// agree with the oracle bit for bit; a skipped or repeated element shows.
#[test]
fn exact_on_small_integers_every_length() {
    let mut rng = Rng::new(42);
    for n in lengths() {
        let a: Vec<f32> = (0..n).map(|_| small_int(&mut rng)).collect();
        let b: Vec<f32> = (0..n).map(|_| small_int(&mut rng)).collect();
        let (ha, hb) = (to_f16(&a), to_f16(&b));
        for k in available() {
            let ctx = format!("{} n={n}", k.name);
            assert_eq!((k.l2_squared)(&a, &b) as f64, oracle_l2(&a, &b), "l2 {ctx}");
            assert_eq!((k.dot)(&a, &b) as f64, oracle_dot(&a, &b), "dot {ctx}");
            assert_eq!((k.l1)(&a, &b) as f64, oracle_l1(&a, &b), "l1 {ctx}");
            let p = (k.cosine_parts)(&a, &b);
            assert_eq!(p.dot as f64, oracle_dot(&a, &b), "cos.dot {ctx}");
            assert_eq!(p.norm_a as f64, oracle_dot(&a, &a), "cos.na {ctx}");
            assert_eq!(p.norm_b as f64, oracle_dot(&b, &b), "cos.nb {ctx}");
            let (d, na) = (k.dot_and_norm)(&a, &b);
            assert_eq!(
                (d as f64, na as f64),
                (oracle_dot(&a, &b), oracle_dot(&a, &a)),
                "dn {ctx}"
            );
            assert_eq!(
                (k.l2_squared_f16)(&ha, &hb) as f64,
                oracle_l2(&a, &b),
                "l2h {ctx}"
            );
            assert_eq!(
                (k.dot_f16)(&ha, &hb) as f64,
                oracle_dot(&a, &b),
                "doth {ctx}"
            );
            assert_eq!((k.l1_f16)(&ha, &hb) as f64, oracle_l1(&a, &b), "l1h {ctx}");
            let p = (k.cosine_parts_f16)(&ha, &hb);
            assert_eq!(
                (p.dot as f64, p.norm_a as f64, p.norm_b as f64),
                (oracle_dot(&a, &b), oracle_dot(&a, &a), oracle_dot(&b, &b)),
                "cosh {ctx}"
            );
        }
    }
}

fn close(got: f32, want: f64, scale: f64, n: usize) -> bool {
    if !want.is_finite() || !(got as f64).is_finite() {
        return (got as f64) == want || (got.is_nan() && want.is_nan());
    }
    // f32 accumulation over n/lanes steps per lane, plus the lane reduction.
    let tol = scale * f32::EPSILON as f64 * (n as f64).sqrt() * 8.0 + f32::MIN_POSITIVE as f64;
    (got as f64 - want).abs() <= tol
}

#[test]
fn simd_matches_oracle_on_random_and_extreme_magnitudes() {
    let mut rng = Rng::new(7);
    for scale in [1.0f32, 1e-18, 1e-3, 1e3, 1e15] {
        for n in lengths() {
            let a: Vec<f32> = (0..n).map(|_| rng.signed() * scale).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.signed() * scale).collect();
            let s2 = (scale as f64).powi(2) * n as f64;
            let s1 = scale as f64 * n as f64;
            for k in available() {
                let ctx = format!("{} n={n} scale={scale}", k.name);
                assert!(
                    close((k.l2_squared)(&a, &b), oracle_l2(&a, &b), s2, n),
                    "l2 {ctx}"
                );
                assert!(
                    close((k.dot)(&a, &b), oracle_dot(&a, &b), s2, n),
                    "dot {ctx}"
                );
                assert!(close((k.l1)(&a, &b), oracle_l1(&a, &b), s1, n), "l1 {ctx}");
                let p = (k.cosine_parts)(&a, &b);
                assert!(close(p.dot, oracle_dot(&a, &b), s2, n), "cos {ctx}");
                assert!(close(p.norm_b, oracle_dot(&b, &b), s2, n), "cos {ctx}");
            }
        }
    }
}

#[test]
fn overflow_gives_infinity_in_every_path() {
    let a = vec![3e38f32; 33];
    let b = vec![-3e38f32; 33];
    for k in available() {
        assert_eq!((k.l2_squared)(&a, &b), f32::INFINITY, "{}", k.name);
        assert_eq!((k.l1)(&a, &b), f32::INFINITY, "{}", k.name);
        assert_eq!((k.dot)(&a, &b), f32::NEG_INFINITY, "{}", k.name);
    }
}

#[test]
fn cosine_distance_semantics() {
    assert_eq!(cosine_distance_from_parts(1.0, 1.0, 1.0), 0.0);
    assert_eq!(cosine_distance_from_parts(-1.0, 1.0, 1.0), 2.0);
    // Rounding can push similarity past 1: clamp keeps the distance >= 0.
    assert_eq!(cosine_distance_from_parts(1.0000001, 1.0, 1.0), 0.0);
    assert!(cosine_distance_from_parts(0.0, 0.0, 1.0).is_nan());
    let p = cosine_parts(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
    let d = cosine_distance_from_parts(p.dot, p.norm_a, p.norm_b);
    assert!((d - (1.0 - 32.0 / (14.0f64 * 77.0).sqrt())).abs() < 1e-7);
}

#[test]
fn norm_f64_matches_oracle() {
    let mut rng = Rng::new(3);
    for n in lengths() {
        let a: Vec<f32> = (0..n).map(|_| rng.signed()).collect();
        let want = oracle_dot(&a, &a).sqrt();
        assert!(
            (scalar::norm_f64(&a) - want).abs() <= 1e-12 * want.max(1.0),
            "n={n}"
        );
    }
    assert_eq!(scalar::norm_f64(&[3.0, 4.0]), 5.0);
}

#[test]
#[should_panic(expected = "equal lengths")]
fn mismatched_lengths_panic() {
    l2_squared(&[1.0], &[1.0, 2.0]);
}

#[test]
fn dot_block_matches_oracle_for_every_tile_edge() {
    let mut rng = Rng::new(11);
    // rows on both sides around the tile sizes (3 and 4), lengths around
    // the lane counts (8 and 16) and a real one
    for dim in [1usize, 7, 8, 9, 15, 16, 17, 33, 384] {
        for (n, m) in [
            (1, 1),
            (1, 5),
            (5, 1),
            (3, 3),
            (4, 4),
            (7, 9),
            (8, 13),
            (13, 8),
        ] {
            let a: Vec<f32> = (0..n * dim).map(|_| rng.signed()).collect();
            let b: Vec<f32> = (0..m * dim).map(|_| rng.signed()).collect();
            for k in available() {
                let mut out = vec![f32::NAN; n * m];
                (k.dot_block)(&a, &b, dim, &mut out);
                for i in 0..n {
                    for j in 0..m {
                        let want =
                            oracle_dot(&a[i * dim..(i + 1) * dim], &b[j * dim..(j + 1) * dim]);
                        let got = out[i * m + j];
                        assert!(
                            close(got, want, dim as f64, dim),
                            "{} dim={dim} {n}x{m} ({i},{j}): {got} vs {want}",
                            k.name
                        );
                    }
                }
            }
        }
    }
    // no rows on one side: nothing to write
    let mut none: Vec<f32> = Vec::new();
    dot_block(&[1.0, 2.0], &[], 2, &mut none);
}

fn oracle_bits(a: &[u8], b: &[u8]) -> (u64, u64, u64, u64) {
    let bit = |v: &[u8], i: usize| (v[i / 8] >> (7 - i % 8)) & 1 == 1;
    let (mut diff, mut ab, mut aa, mut bb) = (0, 0, 0, 0);
    for i in 0..a.len() * 8 {
        let (x, y) = (bit(a, i), bit(b, i));
        diff += (x != y) as u64;
        ab += (x && y) as u64;
        aa += x as u64;
        bb += y as u64;
    }
    (diff, ab, aa, bb)
}

#[test]
fn nibble_dots_match_a_level_by_level_oracle() {
    let mut rng = testkit::Rng::new(41);
    for words in [1usize, 4, 32] {
        let code: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
        let levels: Vec<u8> = (0..16 * words).map(|_| rng.below(256) as u8).collect();
        let (mut sum, mut dot) = (0u32, 0u32);
        for (i, &q) in levels.iter().enumerate() {
            let u = (code[i / 16] >> (4 * (i % 16)) & 15) as u32;
            sum += u;
            dot += u * q as u32;
        }
        assert_eq!(
            scalar::nibble_dot(&code, &levels),
            (sum, dot),
            "{words} words"
        );
    }
    // every kernel set's split form agrees
    for words in [4usize, 8, 32, 96] {
        let code: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
        let levels: Vec<u8> = (0..16 * words).map(|_| rng.below(256) as u8).collect();
        let bytes: Vec<u8> = code.iter().flat_map(|w| w.to_le_bytes()).collect();
        let even: Vec<u8> = levels.iter().step_by(2).copied().collect();
        let odd: Vec<u8> = levels.iter().skip(1).step_by(2).copied().collect();
        for k in crate::available() {
            assert_eq!(
                (k.nibble_dot)(&bytes, &even, &odd),
                scalar::nibble_dot(&code, &levels),
                "{} at {words} words",
                k.name
            );
        }
    }
    // pairs of codes
    let (a, b): (Vec<u64>, Vec<u64>) = (0..8).map(|_| (rng.next_u64(), rng.next_u64())).unzip();
    let level = |w: &[u64], i: usize| (w[i / 16] >> (4 * (i % 16)) & 15) as u32;
    let want = (0..128).fold((0, 0, 0), |(sa, sb, d), i| {
        (
            sa + level(&a, i),
            sb + level(&b, i),
            d + level(&a, i) * level(&b, i),
        )
    });
    let bytes = |w: &[u64]| -> Vec<u8> { w.iter().flat_map(|x| x.to_le_bytes()).collect() };
    assert_eq!(scalar::nibble_pair(&bytes(&a), &bytes(&b)), want);
    // every kernel set's pair kernel agrees, past whole 32-byte blocks too,
    // and at the largest levels
    for words in [1usize, 4, 9, 64] {
        let a: Vec<u8> = (0..8 * words).map(|_| rng.below(256) as u8).collect();
        let b: Vec<u8> = (0..8 * words).map(|_| rng.below(256) as u8).collect();
        for k in crate::available() {
            assert_eq!(
                (k.nibble_pair)(&a, &b),
                scalar::nibble_pair(&a, &b),
                "{} at {words} words",
                k.name
            );
        }
    }
    let most = vec![0xFFu8; 8192];
    for k in crate::available() {
        assert_eq!(
            (k.nibble_pair)(&most, &most),
            (15 * 16384, 15 * 16384, 225 * 16384),
            "{}",
            k.name
        );
    }
    // the largest levels do not overflow at 16,384 dimensions
    let code = vec![u64::MAX; 1024];
    let levels = vec![255u8; 16384];
    assert_eq!(
        scalar::nibble_dot(&code, &levels),
        (15 * 16384, 15 * 255 * 16384)
    );
}

#[test]
fn rabitq_counts_match_a_bit_by_bit_oracle() {
    let mut rng = Rng::new(6);
    for words in [1usize, 2, 3, 5, 8, 64, 256] {
        let code: Vec<u64> = (0..words).map(|_| rng.next_u64()).collect();
        let planes: Vec<u64> = (0..4 * words).map(|_| rng.next_u64()).collect();
        let (mut ones, mut weighted) = (0u32, 0u32);
        for i in 0..64 * words {
            if code[i / 64] >> (i % 64) & 1 == 1 {
                ones += 1;
                for j in 0..4 {
                    weighted += ((planes[j * words + i / 64] >> (i % 64) & 1) as u32) << j;
                }
            }
        }
        for k in available() {
            assert_eq!(
                (k.rabitq_counts)(&code, &planes),
                (ones, weighted),
                "{} words {words}",
                k.name
            );
        }
    }
}

#[test]
fn bit_kernels_match_a_bit_by_bit_oracle() {
    let mut rng = Rng::new(5);
    for len in (0..40).chain([63, 64, 65, 127, 128, 129, 1000, 8000]) {
        let a: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let (diff, ab, aa, bb) = oracle_bits(&a, &b);
        for k in available() {
            assert_eq!((k.hamming)(&a, &b), diff, "{} len {len}", k.name);
            assert_eq!(
                (k.jaccard_counts)(&a, &b),
                (ab, aa, bb),
                "{} len {len}",
                k.name
            );
        }
        let want = if ab == 0 {
            1.0
        } else {
            1.0 - ab as f64 / (aa + bb - ab) as f64
        };
        assert_eq!(jaccard(&a, &b), want);
    }
    // no common bit (including two empty sets) is distance 1, equal sets 0
    assert_eq!(jaccard(&[0b1010_0000], &[0b0101_0000]), 1.0);
    assert_eq!(jaccard(&[0, 0], &[0, 0]), 1.0);
    assert_eq!(jaccard(&[0xff; 9], &[0xff; 9]), 0.0);
    assert_eq!(hamming(&[0xff; 9], &[0; 9]), 72);
}

#[test]
fn mixed_f32_f16_kernels_match_oracle_every_length() {
    let mut rng = Rng::new(13);
    for n in lengths() {
        let a: Vec<f32> = (0..n).map(|_| rng.signed() * 3.0).collect();
        let b16 = to_f16(&(0..n).map(|_| rng.signed() * 3.0).collect::<Vec<f32>>());
        let b: Vec<f32> = b16.iter().map(|x| x.to_f32()).collect();
        let scale = 9.0 * n as f64;
        for k in available() {
            let ctx = format!("{} n={n}", k.name);
            assert!(
                close((k.l2_squared_mixed)(&a, &b16), oracle_l2(&a, &b), scale, n),
                "l2 {ctx}"
            );
            assert!(
                close((k.dot_mixed)(&a, &b16), oracle_dot(&a, &b), scale, n),
                "dot {ctx}"
            );
            assert!(
                close((k.l1_mixed)(&a, &b16), oracle_l1(&a, &b), scale, n),
                "l1 {ctx}"
            );
        }
    }
}

#[test]
fn stored_forms_round_trip_and_give_the_same_distances() {
    let mut rng = Rng::new(17);
    for n in [1usize, 7, 16, 33, 384] {
        let q: Vec<f32> = (0..n).map(|_| rng.signed()).collect();
        let mut v: Vec<f32> = (0..n).map(|_| rng.signed() * 2.0).collect();
        for storage in [Storage::F32, Storage::F16] {
            storage.round(&mut v);
            let mut bytes = Vec::new();
            storage.encode(&v, &mut bytes);
            assert_eq!(bytes.len(), storage.bytes(n));
            let mut back = Vec::new();
            storage.decode(&bytes, &mut back);
            assert_eq!(back, v, "{storage:?} round trip after round()");
            assert_eq!(Storage::from_code(storage.code()), Some(storage));
            // aligned (in place) and misaligned (copied) reads agree
            let mut shifted = vec![0u8; 1];
            shifted.extend_from_slice(&bytes);
            for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
                let want = metric.distance(&q, &v);
                let aligned = metric.distance_stored(storage, &q, &bytes);
                let copied = metric.distance_stored(storage, &q, &shifted[1..]);
                let tol = 1e-5 * (1.0 + want.abs());
                assert!(
                    (aligned - want).abs() <= tol,
                    "{storage:?} {metric:?} {aligned} {want}"
                );
                assert!(
                    (copied - want).abs() <= tol,
                    "{storage:?} {metric:?} {copied} {want}"
                );
            }
        }
    }
    assert_eq!(Storage::from_code(7), None);
}

#[test]
fn sparse_kernels_match_dense_on_small_integers() {
    use crate::sparse::{self, Sparse};
    let mut rng = Rng::new(77);
    let dim = 300;
    // density from empty to full, so merges end on either side
    let vectors: Vec<(Vec<u32>, Vec<f32>)> = [0u64, 1, 2, 5, 30, 100]
        .iter()
        .flat_map(|&pct| {
            let mut out = Vec::new();
            for _ in 0..4 {
                let mut idx = Vec::new();
                let mut val = Vec::new();
                for i in 0..dim {
                    let x = small_int(&mut rng);
                    if rng.next_u64() % 100 < pct && x != 0.0 {
                        idx.push(i as u32);
                        val.push(x);
                    }
                }
                out.push((idx, val));
            }
            out
        })
        .collect();
    let dense = |(idx, val): &(Vec<u32>, Vec<f32>)| {
        let mut d = vec![0f32; dim];
        idx.iter().zip(val).for_each(|(i, v)| d[*i as usize] = *v);
        d
    };
    for a in &vectors {
        for b in &vectors {
            let (sa, sb) = (
                Sparse {
                    indices: &a.0,
                    values: &a.1,
                },
                Sparse {
                    indices: &b.0,
                    values: &b.1,
                },
            );
            let (da, db) = (dense(a), dense(b));
            assert_eq!(sparse::dot(sa, sb) as f64, oracle_dot(&da, &db));
            assert_eq!(sparse::l2_squared(sa, sb) as f64, oracle_l2(&da, &db));
            assert_eq!(sparse::l1(sa, sb) as f64, oracle_l1(&da, &db));
            // the word form reads back the same vector
            let mut w = Vec::new();
            sparse::to_words(dim as u32, sa, &mut w);
            assert!(sparse::valid_words(&w) && sparse::dim_of(&w) == dim as u32);
            assert_eq!(sparse::from_words(&w).indices, &a.0[..]);
            assert_eq!(sparse::from_words(&w).values, &a.1[..]);
        }
    }
    assert!(!sparse::valid_words(&[
        f32::from_bits(3),
        f32::from_bits(2),
        0.0
    ]));
}

/// Every metric on every element format: the typed seam (`encode_element`,
/// `with_view`, `Query::distance`) gives what the kernels give on the
/// values themselves, for aligned and unaligned stored bytes.
#[test]
fn typed_elements_match_their_kernels() {
    let mut rng = Rng::new(41);
    for dims in [1usize, 3, 8, 17, 64] {
        let a: Vec<f32> = (0..dims).map(|_| rng.signed() * 3.0).collect();
        let b: Vec<f32> = (0..dims).map(|_| rng.signed() * 3.0).collect();
        let bh = to_f16(&b);
        for metric in [Metric::L2, Metric::InnerProduct, Metric::L1] {
            let q = Query::new(metric, Element::F32(&a));
            for (storage, want) in [
                (
                    Storage::F32,
                    metric.between(Element::F32(&a), Element::F32(&b)),
                ),
                (
                    Storage::F16,
                    metric.between(Element::F32(&a), Element::F16(&bh)),
                ),
            ] {
                let mut bytes = vec![0u8]; // one byte ahead: unaligned
                storage.encode_element(Element::F32(&b), &mut bytes);
                for stored in [&bytes[1..], &bytes[1..].to_vec()[..]] {
                    let got = storage.with_view(stored, |e| q.distance(e));
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{metric:?} {storage:?} {dims}"
                    );
                }
            }
        }
        let l2 = Metric::L2.between(Element::F32(&a), Element::F32(&b)) as f64;
        let want = oracle_l2(&a, &b);
        assert!(close(l2 as f32, want, want + 1.0, dims));
        let mixed = Metric::L2.between(Element::F16(&bh), Element::F32(&a));
        let f16s = Metric::L2.between(Element::F16(&to_f16(&a)), Element::F16(&bh));
        let widened: Vec<f32> = to_f16(&a).iter().map(|x| x.to_f32()).collect();
        let want = oracle_l2(&widened, &Element::F16(&bh).to_f32().unwrap());
        assert!(close(f16s, want, want + 1.0, dims));
        assert!(mixed.is_finite());
    }
}

#[test]
fn bit_strings_compare_by_bits_and_pad_to_words() {
    let mut rng = Rng::new(43);
    for len in [1usize, 4, 5, 13, 64] {
        let a: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let mut b = a.clone();
        b[len / 2] ^= 0b1010_0001;
        // words whose bits form NaNs are still equal bytes
        let nan = [0xffu8, 0xff, 0xff, 0x7f];
        let pa = Metric::Hamming.prepare(Element::Bits(&a)).unwrap();
        assert_eq!(pa.as_element().dims(), len.div_ceil(4));
        let mut stored = Vec::new();
        Storage::Bits.encode_element(Element::Bits(&b), &mut stored);
        assert_eq!(stored.len(), 4 * len.div_ceil(4));
        let q = Query::new(Metric::Hamming, pa.as_element());
        assert_eq!(Storage::Bits.with_view(&stored, |e| q.distance(e)), 3.0);
        let q = Query::new(Metric::Jaccard, pa.as_element());
        let want = 1.0
            - crate::scalar::jaccard_counts(&a, &b).0 as f64 / {
                let (both, x, y) = crate::scalar::jaccard_counts(&a, &b);
                (x + y - both) as f64
            };
        let got = Storage::Bits.with_view(&stored, |e| q.distance(e));
        assert!((got as f64 - want).abs() < 1e-6, "{got} {want}");
        assert!(Element::Bits(&nan).same(&Element::Bits(&nan)));
    }
}

#[test]
fn sparse_elements_round_trip_and_match_dense() {
    let mut rng = Rng::new(47);
    for _ in 0..50 {
        let dim = 1 + rng.below(40);
        let dense = |rng: &mut Rng| -> Vec<f32> {
            (0..dim)
                .map(|_| if rng.below(3) == 0 { rng.signed() } else { 0.0 })
                .collect()
        };
        let (a, b) = (dense(&mut rng), dense(&mut rng));
        let parts = |v: &[f32]| -> (Vec<u32>, Vec<f32>) {
            v.iter()
                .enumerate()
                .filter(|(_, x)| **x != 0.0)
                .map(|(i, x)| (i as u32, *x))
                .unzip()
        };
        let ((ai, av), (bi, bv)) = (parts(&a), parts(&b));
        let sa = Element::Sparse {
            dim: dim as u32,
            v: sparse::Sparse {
                indices: &ai,
                values: &av,
            },
        };
        let sb = Element::Sparse {
            dim: dim as u32,
            v: sparse::Sparse {
                indices: &bi,
                values: &bv,
            },
        };
        let mut stored = vec![0u8; 2]; // unaligned
        Storage::Sparse.encode_element(sb, &mut stored);
        let stored = &stored[2..];
        assert!(Storage::Sparse.with_view(stored, |e| e.same(&sb)));
        for (sm, dm) in [
            (Metric::SparseL2, Metric::L2),
            (Metric::SparseInnerProduct, Metric::InnerProduct),
            (Metric::SparseL1, Metric::L1),
        ] {
            let got = Storage::Sparse.with_view(stored, |e| Query::new(sm, sa).distance(e));
            let want = dm.between(Element::F32(&a), Element::F32(&b));
            assert!(
                (got - want).abs() <= 1e-5 * (1.0 + want.abs()),
                "{sm:?}: {got} {want}"
            );
        }
    }
    // a malformed one reads as empty, without a panic
    Storage::Sparse.with_view(&[1, 0, 0, 0, 9, 0, 0, 0], |e| match e {
        Element::Sparse { v, .. } => assert!(v.indices.is_empty()),
        _ => panic!(),
    });
}

#[test]
fn cosine_prepares_unit_vectors_and_refuses_zero() {
    let v = [3.0f32, 4.0];
    let p = Metric::Cosine.prepare(Element::F32(&v)).unwrap();
    assert_eq!(p, ElementBuf::F32(vec![0.6, 0.8]));
    let h = to_f16(&v);
    assert_eq!(Metric::Cosine.prepare(Element::F16(&h)).unwrap(), p);
    assert!(Metric::Cosine.prepare(Element::F32(&[0.0, 0.0])).is_none());
    assert_eq!(
        Metric::L2.prepare(Element::F32(&v)).unwrap(),
        ElementBuf::F32(v.to_vec())
    );
}

#[test]
#[should_panic(expected = "cannot compare")]
fn formats_that_do_not_pair_are_a_bug() {
    Metric::L2.between(Element::F32(&[1.0]), Element::Bits(&[1, 0, 0, 0]));
}

/// A scorer gives what `Query::distance` gives, bit for bit, for every
/// metric and storage, aligned or not.
#[test]
fn scorers_match_query_distance() {
    let mut rng = Rng::new(53);
    for dims in [1usize, 7, 16, 33, 384] {
        let a: Vec<f32> = (0..dims).map(|_| rng.signed() * 2.0).collect();
        let b: Vec<f32> = (0..dims).map(|_| rng.signed() * 2.0).collect();
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine, Metric::L1] {
            let q = Query::new(metric, Element::F32(&a));
            for storage in [Storage::F32, Storage::F16] {
                let mut bytes = vec![0u8; 4];
                storage.encode_element(Element::F32(&b), &mut bytes);
                for stored in [&bytes[4..], &bytes[3..bytes.len() - 1]] {
                    let want = storage.with_view(stored, |e| q.distance(e));
                    let got = q.scorer(storage).distance(stored);
                    assert_eq!(
                        got.to_bits(),
                        want.to_bits(),
                        "{metric:?} {storage:?} {dims}"
                    );
                }
            }
        }
    }
    let bits = [0b1011_0000u8, 1, 0, 0];
    let q = Query::new(Metric::Hamming, Element::Bits(&bits));
    assert_eq!(q.scorer(Storage::Bits).distance(&[0, 1, 0, 0]), 3.0);
}

#[test]
fn distances_to_unprepared_rows_match_the_prepared_ones() {
    let mut rng = testkit::Rng::new(23);
    for dims in [3usize, 384, 1536] {
        let row = |rng: &mut testkit::Rng| -> Vec<f32> {
            (0..dims)
                .map(|_| (rng.below(2001) as f32 - 1000.0) / 97.0)
                .collect()
        };
        let (q, v) = (row(&mut rng), row(&mut rng));
        let h: Vec<f16> = v.iter().map(|x| f16::from_f32(*x)).collect();
        for metric in [Metric::L2, Metric::InnerProduct, Metric::Cosine] {
            let pq = metric.prepare(Element::F32(&q)).unwrap();
            for e in [Element::F32(&v), Element::F16(&h)] {
                let want = metric.between(pq.as_element(), metric.prepare(e).unwrap().as_element());
                let got = metric.between_unprepared(pq.as_element(), e).unwrap();
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{metric:?} {dims}: {got} against {want}"
                );
            }
        }
    }
    // a zero row cannot be ordered by cosine, as `prepare` says
    let pq = Metric::Cosine.prepare(Element::F32(&[1.0, 2.0])).unwrap();
    assert_eq!(
        Metric::Cosine.between_unprepared(pq.as_element(), Element::F32(&[0.0, 0.0])),
        None
    );
    assert_eq!(
        Metric::L2.between_unprepared(Element::F32(&[1.0, 2.0]), Element::F32(&[0.0, 0.0])),
        Some(5.0)
    );
}

/// The kernel sets are public and their kernels safe functions: slices of
/// different lengths panic instead of reading past the end of the shorter
/// one. (The scalar set's loops stop at the shorter and read nothing past.)
#[test]
fn simd_kernels_refuse_mismatched_lengths() {
    let (a, b) = (vec![0.5f32; 40], vec![0.25f32; 24]);
    let (ah, bh): (Vec<f16>, Vec<f16>) = (
        a.iter().map(|x| f16::from_f32(*x)).collect(),
        b.iter().map(|x| f16::from_f32(*x)).collect(),
    );
    for k in available().into_iter().filter(|k| k.name != "scalar") {
        let calls: [(&str, &dyn Fn()); 12] = [
            ("l2_squared", &|| drop((k.l2_squared)(&a, &b))),
            ("dot", &|| drop((k.dot)(&a, &b))),
            ("l1", &|| drop((k.l1)(&a, &b))),
            ("cosine_parts", &|| drop((k.cosine_parts)(&a, &b))),
            ("dot_and_norm", &|| drop((k.dot_and_norm)(&a, &b))),
            ("l2_squared_mixed", &|| drop((k.l2_squared_mixed)(&a, &bh))),
            ("dot_mixed", &|| drop((k.dot_mixed)(&a, &bh))),
            ("l1_mixed", &|| drop((k.l1_mixed)(&a, &bh))),
            ("l2_squared_f16", &|| drop((k.l2_squared_f16)(&ah, &bh))),
            ("dot_f16", &|| drop((k.dot_f16)(&ah, &bh))),
            ("l1_f16", &|| drop((k.l1_f16)(&ah, &bh))),
            ("cosine_parts_f16", &|| drop((k.cosine_parts_f16)(&ah, &bh))),
        ];
        for (name, call) in calls {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
            assert!(r.is_err(), "{} {name}: read past the shorter slice", k.name);
        }
    }
}
