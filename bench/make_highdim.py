"""High-dimensional benchmark sets made from the shared 384-d set.

Each row x (and each query) becomes y = x G + e, then y / |y|: G is a fixed
384 x D matrix of independent standard Gaussians (seeded), e independent
Gaussian noise whose expected norm is a tenth of |x G|. The result keeps the
neighbourhoods of the real embeddings (G preserves inner products up to
scale) while spreading them over D dimensions, as larger embedding models
do, and the noise keeps the rows off a 384-d subspace. Exact cosine ground
truth (top 100 per query, nearest first) is recomputed in float64 from the
float16 rows written.

Writes, into --out, the files the benchmarks read from the shared set:
base.f16.npy, query.f16.npy, gt_cos.i32.npy, gt_cos.dist.f32.npy and
meta.json.

    target/venv/bin/python bench/make_highdim.py --dims 1536 \
        --data ../shared/data/ds-a-npm-minilm --out /tmp/ds-1536
"""

import argparse
import json
import os
import time

import numpy as np

SEED = 20_261_205
TOP = 100


def project(rows, g, rng):
    """Rows times G, plus noise of a tenth of each product's norm, unit length."""
    y = rows.astype(np.float32) @ g
    norms = np.linalg.norm(y, axis=1, keepdims=True)
    # per coordinate sigma so that the noise's expected norm is 0.1 |x G|
    noise = rng.standard_normal(y.shape, dtype=np.float32) * (0.1 * norms / np.sqrt(y.shape[1]))
    y += noise
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    return y


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/ds-a-npm-minilm"))
    ap.add_argument("--dims", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=0, help="first rows of base only (0: all)")
    args = ap.parse_args()
    started = time.time()
    base = np.load(os.path.join(args.data, "base.f16.npy"))
    queries = np.load(os.path.join(args.data, "query.f16.npy"))
    if args.rows:
        base = base[:args.rows]
    rng = np.random.default_rng(SEED)
    g = rng.standard_normal((base.shape[1], args.dims), dtype=np.float32)
    os.makedirs(args.out, exist_ok=True)
    out_base = np.concatenate([project(base[i:i + 10_000], g, rng).astype(np.float16)
                               for i in range(0, len(base), 10_000)])
    out_queries = project(queries, g, rng).astype(np.float16)
    np.save(os.path.join(args.out, "base.f16.npy"), out_base)
    np.save(os.path.join(args.out, "query.f16.npy"), out_queries)
    # exact cosine top 100 of the float16 rows as written (their norms are 1
    # up to float16 rounding: divide by them all the same)
    b = out_base.astype(np.float64)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    q = out_queries.astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ids = np.empty((len(q), TOP), dtype=np.int32)
    dist = np.empty((len(q), TOP), dtype=np.float32)
    for i in range(0, len(q), 100):
        d = 1.0 - q[i:i + 100] @ b.T
        part = np.argpartition(d, TOP, axis=1)[:, :TOP]
        order = np.take_along_axis(d, part, axis=1).argsort(axis=1, kind="stable")
        ids[i:i + 100] = np.take_along_axis(part, order, axis=1)
        dist[i:i + 100] = np.take_along_axis(d, ids[i:i + 100], axis=1)
    np.save(os.path.join(args.out, "gt_cos.i32.npy"), ids)
    np.save(os.path.join(args.out, "gt_cos.dist.f32.npy"), dist)
    meta = {"source": os.path.abspath(args.data), "dims": args.dims, "rows": len(out_base),
            "queries": len(out_queries), "seed": SEED, "noise": "0.1 of |x G|", "metric": "cosine",
            "ground_truth": f"top {TOP}, float64 over the float16 rows"}
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{args.out}: {len(out_base)} x {args.dims} rows, {len(out_queries)} queries, "
          f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
