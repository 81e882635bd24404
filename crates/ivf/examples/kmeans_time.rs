//! Times k-means on uniform random samples: `cargo run --release -p ivf
//! --example kmeans_time -- ROWS DIMS LISTS [THREADS]`.
fn main() {
    let a: Vec<usize> = std::env::args()
        .skip(1)
        .map(|s| s.parse().unwrap())
        .collect();
    let (n, dim, k, threads) = (a[0], a[1], a[2], a.get(3).copied().unwrap_or(1));
    let mut rng = ivf::kmeans::Rng::new(7);
    let samples: Vec<f32> = (0..n * dim).map(|_| rng.next_f64() as f32).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let params = ivf::kmeans::Params {
        k,
        spherical: false,
        max_iterations: 10,
        tolerance: 0.0,
        seed: 1,
        bounds_budget: 64 << 20,
    };
    let t = std::time::Instant::now();
    let (_, report) = ivf::kmeans::kmeans(&samples, dim, &params, &pool, || {});
    println!(
        "{n} x {dim} into {k}: {:.2}s {report:?}",
        t.elapsed().as_secs_f64()
    );
}
