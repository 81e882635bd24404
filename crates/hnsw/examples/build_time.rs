//! Times an in-memory build on the first N rows of a 384-column float16 or
//! float32 .npy matrix (2 threads; float32 when the name ends in
//! `f32.npy`, as bench/scale.py's rows); the default file is the
//! repository's 20k-row fixture:
//! cargo run --release -p hnsw --example build_time -- 20000 [FILE.npy]
use hnsw::{BuildGraph, BuildParams, Metric};
use std::time::Instant;

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let path = std::env::args().nth(2).map_or_else(
        || {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../tests/data/ds-a-20k/base.f16.npy")
        },
        std::path::PathBuf::from,
    );
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let data = &bytes[10 + header_len..];
    let dim = 384;
    let width = if path.to_string_lossy().ends_with("f32.npy") {
        4
    } else {
        2
    };
    assert!(
        data.len() >= width * n * dim,
        "{} holds fewer than {n} rows",
        path.display()
    );
    let t = Instant::now();
    let mut g = BuildGraph::new(
        BuildParams {
            m: 16,
            ef_construction: 64,
            metric: Metric::Cosine,
            seed: 1,
            storage: hnsw::Storage::F32,
            quantize: None,
        },
        dim,
    );
    let mut v = vec![0f32; dim];
    for i in 0..n {
        for (j, x) in v.iter_mut().enumerate() {
            let o = width * (i * dim + j);
            *x = match width {
                4 => f32::from_le_bytes(data[o..o + 4].try_into().expect("4 bytes")),
                _ => half::f16::from_bits(u16::from_le_bytes([data[o], data[o + 1]])).to_f32(),
            };
        }
        g.push(distance::Element::F32(&v), i as u64);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    // EXACT=1 links on the f32 vectors themselves
    g.use_half_copy(std::env::var_os("EXACT").is_none());
    let t2 = Instant::now();
    g.insert_pending(&pool, 1024, |_| {});
    let built = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    let reachable = g.reachable(0).iter().filter(|r| **r).count();
    println!(
        "{n} rows: load {:.2}s, build {built:.2}s on 2 threads; one reachability walk {:.3}s ({reachable} reachable)",
        (t2 - t).as_secs_f64(),
        t3.elapsed().as_secs_f64()
    );
}
