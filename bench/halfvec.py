"""halfvec HNSW benchmark: vector_ext's halfvec index against its own vector
index and against pgvector's halfvec index, in one cluster.

ds-a-npm-minilm (100k x 384, cosine), m = 16, ef_construction = 64, the same
maintenance_work_mem and max_parallel_maintenance_workers for all. Table
hv384 holds each row as vector(384) and as halfvec(384). Measures build
time and index size, then recall@10 (shipped exact ground truth) and
single-client QPS along an ef_search sweep, interpolated at recall 0.95.
The three indexes alternate within every measurement.
"""

import argparse
import os
import time

import numpy as np

from hnsw import interpolate, loaded, open_systems, recall, run_queries

TABLE = "hv384"
EFS = [10, 16, 24, 32, 40, 56, 80, 120, 200]
# (label, system, column, opclass, query cast)
INDEXES = [
    ("vector_ext vector", "vector_ext", "emb", "vector_cosine_ops", "vector"),
    ("vector_ext halfvec", "vector_ext", "h", "halfvec_cosine_ops", "halfvec"),
    ("pgvector halfvec", "pgvector", "h", "halfvec_cosine_ops", "halfvec"),
]


def ensure_table(conn, base):
    if loaded(conn, TABLE, len(base)):
        return
    conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, emb vector(384), h halfvec(384))")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {TABLE} (id, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, v in enumerate(base):
                copy.write_row([i, v])
    conn.execute(f"UPDATE {TABLE} SET h = emb")
    conn.execute(f"VACUUM ANALYZE {TABLE}")


def index_name(column):
    return f"{TABLE}_{column}_idx"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/ds-a-npm-minilm"))
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--maintenance-work-mem", default="2GB")
    ap.add_argument("--workers", type=int, default=1, help="max_parallel_maintenance_workers")
    ap.add_argument("--skip-build", action="store_true", help="keep the existing indexes")
    args = ap.parse_args()

    base = np.load(os.path.join(args.data, "base.f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(args.data, "query.f16.npy")).astype(np.float32)[: args.queries]
    truth = np.load(os.path.join(args.data, "gt_cos.i32.npy"))[: args.queries, :10].tolist()

    conns = open_systems(lambda c: ensure_table(c, base))

    build, size = {}, {}
    for label, system, column, opclass, _ in INDEXES:
        conn = conns[system]
        name = index_name(column)
        exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None
        if not (args.skip_build and exists):
            conn.execute(f"DROP INDEX IF EXISTS {name}")
            conn.execute("CHECKPOINT")
            conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
            conn.execute(f"SET max_parallel_maintenance_workers = {args.workers}")
            t0 = time.perf_counter()
            conn.execute(f"CREATE INDEX {name} ON {TABLE} USING hnsw ({column} {opclass}) "
                         "WITH (m = 16, ef_construction = 64)")
            build[label] = time.perf_counter() - t0
            print(f"{label}: build {build[label]:.1f}s", flush=True)
        size[label] = conn.execute(f"SELECT pg_relation_size('{name}')").fetchone()[0]

    sqls = {label: f"SELECT id FROM {TABLE} ORDER BY {column} <=> %s::{cast} LIMIT 10"
            for label, _, column, _, cast in INDEXES}
    for label, system, _, _, _ in INDEXES:  # warm shared buffers and plans
        conns[system].execute("SET hnsw.ef_search = 200")
        run_queries(conns[system], sqls[label], queries)
    sweep = {label: [] for label, *_ in INDEXES}
    for i, ef in enumerate(EFS):
        order = INDEXES if i % 2 == 0 else list(reversed(INDEXES))
        for label, system, *_ in order:
            conn = conns[system]
            conn.execute(f"SET hnsw.ef_search = {ef}")
            elapsed, found = run_queries(conn, sqls[label], queries)
            sweep[label].append((ef, recall(found, truth), len(queries) / elapsed))
        print(f"ef {ef:3d}: " + "  ".join(f"{lb} {sweep[lb][-1][1]:.4f} {sweep[lb][-1][2]:6.1f} q/s"
                                        for lb, *_ in INDEXES), flush=True)

    qps95 = {lb: interpolate([(r, q) for _, r, q in sweep[lb]], 0.95) for lb, *_ in INDEXES}
    print()
    print("| index | build (s) | size (MiB) | QPS at recall 0.95 |")
    print("|---|---:|---:|---:|")
    for label, *_ in INDEXES:
        b = build.get(label)
        q = qps95[label]
        print(f"| {label} | {'n/a' if b is None else f'{b:.1f}'} | {size[label] / 2**20:.1f} | "
              f"{'n/a' if q is None else f'{q:.1f}'} |")
    v, h, p = (lb for lb, *_ in INDEXES)
    print()
    print(f"halfvec index size / vector index size (vector_ext): **{size[h] / size[v]:.2f}x** (target <= 0.6x)")
    print(f"halfvec index size, vector_ext / pgvector: **{size[h] / size[p]:.2f}x**")
    if qps95[h] and qps95[v]:
        print(f"QPS at 0.95, halfvec / vector index (vector_ext): **{qps95[h] / qps95[v]:.2f}x** (target >= 1x)")
    if qps95[h] and qps95[p]:
        print(f"QPS at 0.95, vector_ext halfvec / pgvector halfvec: **{qps95[h] / qps95[p]:.2f}x**")
    if build.get(h) and build.get(p):
        print(f"build, vector_ext halfvec / pgvector halfvec: **{build[h] / build[p]:.2f}x** the time")
    gaps = [abs(a[1] - b[1]) for a, b in zip(sweep[h], sweep[v])]
    print(f"largest recall gap halfvec vs vector index at equal ef_search: {max(gaps):.4f} (target <= 0.01)")
    print()
    print("| ef_search | " + " | ".join(f"{lb} recall | {lb} q/s" for lb, *_ in INDEXES) + " |")
    print("|---:|" + "---:|---:|" * len(INDEXES))
    for i, ef in enumerate(EFS):
        print(f"| {ef} | " + " | ".join(f"{sweep[lb][i][1]:.4f} | {sweep[lb][i][2]:.1f}" for lb, *_ in INDEXES) + " |")


if __name__ == "__main__":
    main()
