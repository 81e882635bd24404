//! What the pure crates' tests share (a dev-dependency only): one
//! deterministic generator, `Rng`, and the real-embedding fixture in the
//! repository, `tests/data/ds-a-20k` (made by `scripts/make_fixture.py`
//! from ds-a-npm-minilm: 384-d sentence embeddings of npm package
//! summaries).

#![deny(unsafe_code)]

#[allow(unsafe_code)] // a GlobalAlloc impl is unsafe by definition
pub mod alloc;

use std::path::{Path, PathBuf};

/// xorshift64 (shifts 13, 7, 17): a small, fast, deterministic generator,
/// so every test's data is the same on every run and machine. The seed
/// must not be 0 (the one state xorshift never leaves).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        assert_ne!(seed, 0, "xorshift needs a non-zero seed");
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in 0..n (0 for n = 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// Uniform in [0, 1), 24 bits.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-0.5, 0.5).
    pub fn centered(&mut self) -> f32 {
        self.unit() - 0.5
    }

    /// Uniform in [-1, 1).
    pub fn signed(&mut self) -> f32 {
        2.0 * self.unit() - 1.0
    }
}

/// The fixture's directory.
pub fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/ds-a-20k")
}

/// The first `rows` rows of the fixture's `base`, `query` or `extra`
/// matrix (float16), as f32 (binary16 widens exactly).
pub fn fixture(part: &str, rows: usize) -> Vec<Vec<f32>> {
    let path = fixture_dir().join(format!("{part}.f16.npy"));
    let (shape, data) = read_npy(&path, "'<f2'");
    assert!(
        rows <= shape[0],
        "{}: {} rows, not {rows}",
        path.display(),
        shape[0]
    );
    data.chunks_exact(2 * shape[1])
        .take(rows)
        .map(|row| {
            row.chunks_exact(2)
                .map(|h| half::f16::from_le_bytes([h[0], h[1]]).to_f32())
                .collect()
        })
        .collect()
}

/// The fixture's exact top-10 base rows per query by `metric` ("cos",
/// "l2" or "ip"), nearest first.
pub fn fixture_truth(metric: &str) -> Vec<Vec<u32>> {
    let path = fixture_dir().join(format!("gt_{metric}.i32.npy"));
    let (shape, data) = read_npy(&path, "'<i4'");
    data.chunks_exact(4 * shape[1])
        .map(|row| {
            row.chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u32)
                .collect()
        })
        .collect()
}

/// A 2-d .npy file of `dtype`: its shape and its data bytes.
pub fn read_npy(path: &Path, dtype: &str) -> ([usize; 2], Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{}", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).expect("an ASCII header");
    assert!(header.contains(dtype), "{header}");
    let shape = &header[header.find("'shape': (").expect("a shape") + 10..];
    let mut dims = shape[..shape.find(')').expect("a shape")]
        .split(',')
        .map(|d| d.trim().parse::<usize>().expect("a dimension"));
    let shape = [dims.next().expect("rows"), dims.next().expect("columns")];
    (shape, bytes[10 + header_len..].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_uniform_and_repeatable() {
        let mut a = Rng::new(5);
        let mut b = Rng::new(5);
        let xs: Vec<f32> = (0..10_000).map(|_| a.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert_eq!(b.unit(), xs[0]);
        assert!((0..1000).all(|_| a.below(7) < 7));
    }

    #[test]
    fn the_fixture_is_there() {
        assert_eq!(fixture("query", 2)[1].len(), 384);
        let truth = fixture_truth("cos");
        assert_eq!((truth.len(), truth[0].len()), (500, 10));
    }
}
