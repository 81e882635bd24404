"""Quantized HNSW (issue 20): pgvector, vector_ext's full-precision index and
vector_ext's indexes of RaBitQ codes (4 bits, 1 bit), side by side in one
cluster, on one data set (cosine, m = 16, ef_construction = 64).

For each index, built one at a time on the same table and dropped after:
build time, index size, and along an ef_search sweep recall@10 (the set's
exact ground truth) and single-client queries per second (best of
--passes passes per point, after a warm-up pass), interpolated at recall
0.95 and 0.99. Above 2,000 dimensions pgvector indexes the column only as
an expression on halfvec (queries repeat the cast), and vector_ext's
full-precision index stores binary16 (storage = 'halfvec').

    bash bench/run.sh quantized --data ../shared/data/ds-a-npm-minilm
    bash bench/run.sh quantized --data /tmp/ds-1536 --out bench/quantized-1536.json

The JSON written (--out) is what bench/plot_quantized.py draws.
"""

import argparse
import json
import os
import time

import numpy as np
import psycopg

from exact_scan import connect
from hnsw import SYSTEMS, interpolate, loaded, open_systems, recall

EFS = [10, 16, 24, 32, 40, 56, 80, 120, 160, 240, 320]
TABLE = "q_rows"  # with the dimensions appended: one table per data set


def indexes(dims):
    """(label, system, index expression and options, query expression)."""
    half = dims > 2000
    col = f"emb::halfvec({dims})" if half else "emb"
    ops = "halfvec_cosine_ops" if half else "vector_cosine_ops"
    full = " WITH (storage = 'halfvec')" if half else ""
    return [
        ("pgvector" + (" halfvec" if half else ""), "pgvector", f"(({col}) {ops})", col),
        ("vector_ext" + (" halfvec" if half else ""), "vector_ext", f"(emb vector_cosine_ops){full}", "emb"),
        ("vector_ext rabitq 4-bit", "vector_ext", "(emb vector_cosine_ops) WITH (quantization = 'rabitq')", "emb"),
        ("vector_ext rabitq 1-bit", "vector_ext",
         "(emb vector_cosine_ops) WITH (quantization = 'rabitq', bits = 1)", "emb"),
    ]


def ensure_table(conn, base):
    if loaded(conn, TABLE, len(base)):
        return
    conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, emb vector({base.shape[1]}))")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {TABLE} (id, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, v in enumerate(base):
                copy.write_row([i, v])
    conn.execute(f"VACUUM ANALYZE {TABLE}")


def sweep(conn, sql, queries, truth, passes):
    """(ef_search, recall@10, queries per second) along EFS."""
    out = []
    conn.execute("SET enable_seqscan = off")
    for ef in EFS:
        conn.execute(f"SET hnsw.ef_search = {ef}")
        found, best = None, float("inf")
        for _ in range(passes + 1):  # the first pass warms the pages
            t0 = time.perf_counter()
            found = [[r[0] for r in conn.execute(sql, (q,), prepare=True).fetchall()] for q in queries]
            best = min(best, time.perf_counter() - t0) if found else best
        out.append((ef, recall(found, truth), len(queries) / best))
        print(f"  ef_search {ef:4d}: recall {out[-1][1]:.4f}, {out[-1][2]:7.1f} QPS", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/ds-a-npm-minilm"))
    ap.add_argument("--rows", type=int, default=0, help="first rows only (0: all)")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--maintenance-work-mem", default="4GB")
    ap.add_argument("--only", default="", help="comma-separated labels to run (default: all)")
    ap.add_argument("--out", default="", help="JSON file for bench/plot_quantized.py")
    args = ap.parse_args()

    base = np.load(os.path.join(args.data, "base.f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(args.data, "query.f16.npy")).astype(np.float32)[:args.queries]
    gt = np.load(os.path.join(args.data, "gt_cos.i32.npy"))[:args.queries, :10]
    if args.rows:
        base = base[:args.rows]
        # ground truth of the subset, exact
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
        gt = np.argsort(-(q @ b.T), axis=1, kind="stable")[:, :10]
    dims = base.shape[1]
    global TABLE
    TABLE = f"q_rows_{dims}_{len(base)}"
    conns = open_systems(lambda c: ensure_table(c, base))
    results = {"data": os.path.abspath(args.data), "rows": len(base), "dims": dims,
               "queries": len(queries), "indexes": []}
    for label, system, definition, expr in indexes(dims):
        if args.only and label not in args.only.split(","):
            continue
        conn = conns[system]
        conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
        conn.execute("SET max_parallel_maintenance_workers = 1")
        conn.execute(f"DROP INDEX IF EXISTS {TABLE}_idx")
        conn.execute("CHECKPOINT")
        t0 = time.perf_counter()
        conn.execute(f"CREATE INDEX {TABLE}_idx ON {TABLE} USING hnsw {definition}")
        build = time.perf_counter() - t0
        size = conn.execute(f"SELECT pg_relation_size('{TABLE}_idx')").fetchone()[0]
        print(f"{label}: build {build:.1f} s, {size / 2**20:.1f} MiB", flush=True)
        cast = f"::halfvec({dims})" if expr != "emb" else ""
        sql = f"SELECT id FROM {TABLE} ORDER BY {expr} <=> %s{cast} LIMIT 10"
        points = sweep(conn, sql, queries, gt, args.passes)
        conn.execute(f"DROP INDEX {TABLE}_idx")
        rq = [(r, q) for _, r, q in points]
        results["indexes"].append({
            "label": label, "build_s": build, "size_bytes": size, "sweep": points,
            "qps_at_0.95": interpolate(rq, 0.95), "qps_at_0.99": interpolate(rq, 0.99)})
    print()
    print(f"{len(base)} x {dims}, {len(queries)} queries, cosine, m = 16, ef_construction = 64")
    print("| index | build (s) | size (MiB) | QPS @ 0.95 | QPS @ 0.99 |")
    print("|---|---|---|---|---|")
    fmt = lambda x: "-" if x is None else f"{x:.0f}"
    for r in results["indexes"]:
        print(f"| {r['label']} | {r['build_s']:.1f} | {r['size_bytes'] / 2**20:.1f} | "
              f"{fmt(r['qps_at_0.95'])} | {fmt(r['qps_at_0.99'])} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
