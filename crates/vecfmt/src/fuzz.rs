//! Property tests over many generated inputs (a deterministic fuzz): valid
//! literals and binary forms of every type, mutated byte by byte, and
//! grammar-alphabet noise. Whatever the input, parsing returns (never
//! panics, never loops), and whatever it accepts obeys the type's rules
//! and reads back identically after formatting or encoding.
//!
//! Each target runs `VECTOR_EXT_FUZZ_ITERS` inputs (default 100,000, a
//! second or two in release); set it to millions for a soak.

use crate::*;

use testkit::Rng;

/// Draws for the fuzzer beyond `Rng`'s own.
trait Draws {
    fn float(&mut self) -> f32;
}

impl Draws for Rng {
    /// A float from a mix of ordinary, extreme and special values.
    fn float(&mut self) -> f32 {
        match self.below(10) {
            0 => f32::from_bits(self.next_u64() as u32), // anything, NaN included
            1 => [
                0.0,
                -0.0,
                f32::MAX,
                f32::MIN_POSITIVE,
                65504.0,
                65520.0,
                1e-8,
            ][self.below(7)],
            _ => (self.next_u64() % 20_001) as f32 / 100.0 - 100.0,
        }
    }
}

fn iterations() -> usize {
    std::env::var("VECTOR_EXT_FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

/// Changes `b` in one to four random places: flip, insert, delete,
/// duplicate a run, or cut.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>, alphabet: &[u8]) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(6) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 => b.insert(at, alphabet[rng.below(alphabet.len())]),
            2 if at < b.len() => {
                b.remove(at);
            }
            3 if at < b.len() => {
                let end = (at + 1 + rng.below(8)).min(b.len());
                let run = b[at..end].to_vec();
                b.splice(at..at, run);
            }
            4 => b.truncate(at),
            _ => b.insert(at, rng.next_u64() as u8),
        }
    }
}

const TEXT_ALPHABET: &[u8] = b"[]{}/:,0123456789.eE+-xXpP naifINF\t\n";

/// No typmod half the time, the right one or a random one otherwise.
fn typmod(rng: &mut Rng, dims: usize) -> i32 {
    match rng.below(4) {
        0 => dims as i32,
        1 => [1, 3, 16000][rng.below(3)],
        _ => -1,
    }
}

#[test]
fn dense_text_inputs_never_panic_and_accepted_ones_round_trip() {
    let mut rng = Rng::new(1);
    let mut out = Vec::new();
    let (mut accepted, mut text) = (0usize, String::new());
    for _ in 0..iterations() {
        let dims = 1 + rng.below(6);
        let values: Vec<f32> = (0..dims)
            .map(|_| rng.float())
            .filter(|v| v.is_finite())
            .collect();
        text.clear();
        format_dense(values.iter().copied(), &mut text);
        let mut input = text.clone().into_bytes();
        if rng.below(4) != 0 {
            mutate(&mut rng, &mut input, TEXT_ALPHABET);
        }
        let tm = typmod(&mut rng, dims);
        let half = rng.below(2) == 0;
        let fits = |x: f32| !half || !half::f16::from_f32(x).is_infinite();
        let name = if half { "halfvec" } else { "vector" };
        if parse_dense_within(name, &input, tm, fits, &mut out).is_ok() {
            accepted += 1;
            assert!(!out.is_empty() && out.len() <= MAX_DIM);
            assert!(tm < 0 || out.len() == tm as usize);
            assert!(out.iter().all(|v| v.is_finite() && fits(*v)));
            let mut again = String::new();
            format_dense(out.iter().copied(), &mut again);
            let mut back = Vec::new();
            parse_dense(name, again.as_bytes(), tm, &mut back).expect("formatted text parses");
            assert_eq!(
                back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
    assert!(accepted > iterations() / 10, "{accepted} accepted");
}

#[test]
fn dense_binary_inputs_never_panic_and_accepted_ones_are_canonical() {
    let mut rng = Rng::new(2);
    let mut accepted = 0usize;
    for _ in 0..iterations() {
        let dims = rng.below(6);
        let values: Vec<f32> = (0..dims).map(|_| rng.float()).collect();
        let half = rng.below(2) == 0;
        let mut buf = Vec::new();
        if half {
            let h: Vec<half::f16> = values.iter().map(|v| half::f16::from_f32(*v)).collect();
            encode_dense_f16(&h, &mut buf);
        } else {
            encode_dense_f32(&values, &mut buf);
        }
        if rng.below(3) != 0 {
            mutate(&mut rng, &mut buf, &[0, 1, 0x7f, 0x80, 0xff]);
        }
        let tm = typmod(&mut rng, dims);
        let mut again = Vec::new();
        let used = if half {
            decode_dense_f16("halfvec", &buf, tm).map(|(v, used)| {
                assert!(v.iter().all(|x| x.is_finite()));
                encode_dense_f16(&v, &mut again);
                (v.len(), used)
            })
        } else {
            decode_dense_f32("vector", &buf, tm).map(|(v, used)| {
                assert!(v.iter().all(|x| x.is_finite()));
                encode_dense_f32(&v, &mut again);
                (v.len(), used)
            })
        };
        if let Ok((n, used)) = used {
            accepted += 1;
            assert!((1..=MAX_DIM).contains(&n) && (tm < 0 || n == tm as usize));
            assert_eq!(again, buf[..used], "the bytes read are the canonical form");
        }
    }
    assert!(accepted > iterations() / 20, "{accepted} accepted");
}

fn random_sparse(rng: &mut Rng) -> Sparse {
    let dim = [1, 5, 100, 1_000_000_000][rng.below(4)];
    let mut s = Sparse {
        dim,
        ..Default::default()
    };
    let mut i = 0i64;
    while s.indices.len() < rng.below(6) {
        i += 1 + rng.below(40) as i64;
        if i >= dim as i64 {
            break;
        }
        let v = rng.float();
        if v != 0.0 && v.is_finite() {
            s.indices.push(i as i32);
            s.values.push(v);
        }
    }
    s
}

fn check_sparse(s: &Sparse, tm: i32) {
    assert!(s.dim >= 1 && s.dim as usize <= SPARSE_MAX_DIM);
    assert!(tm < 0 || s.dim == tm);
    assert_eq!(s.indices.len(), s.values.len());
    assert!(s.indices.len() <= SPARSE_MAX_NNZ);
    assert!(
        s.indices.windows(2).all(|w| w[0] < w[1]),
        "ascending, unique"
    );
    assert!(s.indices.iter().all(|i| *i >= 0 && *i < s.dim));
    assert!(s.values.iter().all(|v| *v != 0.0 && v.is_finite()));
}

#[test]
fn sparse_text_inputs_never_panic_and_accepted_ones_round_trip() {
    let mut rng = Rng::new(3);
    let mut accepted = 0usize;
    let mut text = String::new();
    for _ in 0..iterations() {
        let s = random_sparse(&mut rng);
        text.clear();
        format_sparse(s.dim, &s.indices, &s.values, &mut text);
        let mut input = text.clone().into_bytes();
        if rng.below(4) != 0 {
            mutate(&mut rng, &mut input, TEXT_ALPHABET);
        }
        let tm = [-1, 5, 100][rng.below(3)];
        if let Ok(got) = parse_sparse(&input, tm) {
            accepted += 1;
            check_sparse(&got, tm);
            let mut again = String::new();
            format_sparse(got.dim, &got.indices, &got.values, &mut again);
            assert_eq!(
                parse_sparse(again.as_bytes(), tm).expect("formatted text parses"),
                got
            );
        }
    }
    assert!(accepted > iterations() / 10, "{accepted} accepted");
}

#[test]
fn sparse_binary_inputs_never_panic_and_accepted_ones_are_canonical() {
    let mut rng = Rng::new(4);
    let mut accepted = 0usize;
    for _ in 0..iterations() {
        let s = random_sparse(&mut rng);
        let mut buf = Vec::new();
        encode_sparse(s.dim, &s.indices, &s.values, &mut buf);
        if rng.below(3) != 0 {
            mutate(&mut rng, &mut buf, &[0, 1, 0x3b, 0x7f, 0x80, 0xff]);
        }
        let tm = [-1, 5, 100][rng.below(3)];
        if let Ok((got, used)) = decode_sparse(&buf, tm) {
            accepted += 1;
            check_sparse(&got, tm);
            let mut again = Vec::new();
            encode_sparse(got.dim, &got.indices, &got.values, &mut again);
            assert_eq!(again, buf[..used]);
        }
    }
    assert!(accepted > iterations() / 20, "{accepted} accepted");
}
