"""IVFFlat benchmark: vector_ext against pgvector, side by side in one cluster.

ds-a-npm-minilm (100k x 384, cosine), lists = 316, the same
maintenance_work_mem and max_parallel_maintenance_workers for both. Measures:
  build time and index size;
  recall@10 (shipped exact ground truth) and single-client QPS along an
    ivfflat.probes sweep, interpolated at recall 0.90;
  single-row INSERT throughput into the indexed table.
Systems alternate within every measurement so machine noise hits both alike.
The table is its own copy of the data (i384), so the hnsw benchmark's index
does not take part.
"""

import argparse
import os
import time

import numpy as np

from exact_scan import connect
from hnsw import backend_cpu, interpolate, loaded, open_systems, recall, run_queries

TABLE = "i384"
PROBES = [1, 2, 3, 4, 6, 8, 10, 13, 16, 20, 25, 32, 40]


def ensure_table(conn, base):
    if loaded(conn, TABLE, len(base)):
        return
    conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, emb vector(384))")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {TABLE} (id, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, v in enumerate(base):
                copy.write_row([i, v])
    conn.execute(f"VACUUM ANALYZE {TABLE}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/ds-a-npm-minilm"))
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--inserts", type=int, default=6000)
    ap.add_argument("--lists", type=int, default=316)
    ap.add_argument("--maintenance-work-mem", default="2GB")
    ap.add_argument("--workers", type=int, default=1, help="max_parallel_maintenance_workers")
    ap.add_argument("--builds", type=int, default=2, help="builds per system (alternating; the best counts)")
    ap.add_argument("--skip-build", action="store_true", help="keep the existing indexes")
    args = ap.parse_args()

    base = np.load(os.path.join(args.data, "base.f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(args.data, "query.f16.npy")).astype(np.float32)[: args.queries]
    extra = np.load(os.path.join(args.data, "extra.f16.npy")).astype(np.float32)
    truth = np.load(os.path.join(args.data, "gt_cos.i32.npy"))[: args.queries, :10].tolist()

    conns = open_systems(lambda c: ensure_table(c, base))

    report = []

    def cell(label, vx, pg, unit, higher_better=True):
        # None when a side is missing or zero (CPU time of a short run can round to 0)
        ratio = None if not vx or not pg else (vx / pg if higher_better else pg / vx)
        report.append((label, vx, pg, unit, ratio))

    # Build (alternating, best of --builds)
    build = {name: float("inf") for name in conns}
    for i in range(0 if args.skip_build else args.builds):
        order = list(conns.items()) if i % 2 == 0 else list(reversed(conns.items()))
        for name, conn in order:
            conn.execute(f"DROP INDEX IF EXISTS {TABLE}_idx")
            conn.execute("CHECKPOINT")
            conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
            conn.execute(f"SET max_parallel_maintenance_workers = {args.workers}")
            t0 = time.perf_counter()
            conn.execute(f"CREATE INDEX {TABLE}_idx ON {TABLE} USING ivfflat (emb vector_cosine_ops) "
                         f"WITH (lists = {args.lists})")
            build[name] = min(build[name], time.perf_counter() - t0)
            print(f"{name}: build {time.perf_counter() - t0:.2f}s", flush=True)
    size = {name: c.execute(f"SELECT pg_relation_size('{TABLE}_idx')").fetchone()[0] for name, c in conns.items()}

    # Sweep
    sql = f"SELECT id FROM {TABLE} ORDER BY emb <=> %s LIMIT 10"
    # Warm shared buffers and plans. Not with probes = lists: the prepared
    # statement's generic plan, costed then, would be a sequential scan and
    # stay one for the whole sweep.
    for name, conn in conns.items():
        conn.execute(f"SET ivfflat.probes = {PROBES[-1]}")
        run_queries(conn, sql, queries[:200])
        stmt = conn.execute("SELECT name FROM pg_prepared_statements WHERE statement LIKE %s",
                            (f"%{TABLE}%",)).fetchone()[0]
        literal = "[" + ",".join(str(float(x)) for x in queries[0]) + "]"
        plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN EXECUTE {stmt}('{literal}')"))
        assert "Index Scan" in plan, plan
    sweep = {name: [] for name in conns}
    for i, probes in enumerate(PROBES):
        order = list(conns.items()) if i % 2 == 0 else list(reversed(conns.items()))
        for name, conn in order:
            conn.execute(f"SET ivfflat.probes = {probes}")
            elapsed, found = run_queries(conn, sql, queries)
            sweep[name].append((probes, recall(found, truth), len(queries) / elapsed))
        print(f"probes {probes:3d}: " + "  ".join(f"{n} recall {sweep[n][-1][1]:.4f} {sweep[n][-1][2]:7.1f} q/s"
                                                 for n in conns), flush=True)
    q = {n: interpolate([(r, qps) for _, r, qps in sweep[n]], 0.90) for n in conns}
    cell("1 client QPS at recall 0.90", q["vector_ext"], q["pgvector"], "q/s")
    if not args.skip_build:
        cell("build time (s)", build["vector_ext"], build["pgvector"], "s", higher_better=False)
    cell("index size (MiB)", size["vector_ext"] / 2**20, size["pgvector"] / 2**20, "MiB", higher_better=False)

    # Inserts, from a checkpoint on, alternating chunks
    for conn in conns.values():
        conn.execute("CHECKPOINT")
    ins = {name: 0.0 for name in conns}
    ins_cpu = {name: 0.0 for name in conns}
    chunk = 100
    for lo in range(0, args.inserts, chunk):
        order = list(conns.items()) if (lo // chunk) % 2 == 0 else list(reversed(conns.items()))
        for name, conn in order:
            t0, c0 = time.perf_counter(), backend_cpu(conn)
            for j in range(lo, lo + chunk):
                conn.execute(f"INSERT INTO {TABLE} VALUES (%s, %s)", (200_000 + j, extra[j % len(extra)]),
                             prepare=True)
            ins[name] += time.perf_counter() - t0
            ins_cpu[name] += backend_cpu(conn) - c0
    for name, conn in conns.items():
        conn.execute(f"DELETE FROM {TABLE} WHERE id >= 200000")
        conn.execute(f"VACUUM {TABLE}")
    cell("single-row INSERT rows/s", args.inserts / ins["vector_ext"], args.inserts / ins["pgvector"], "rows/s")
    cell("single-row INSERT backend CPU (us/row)", 1e6 * ins_cpu["vector_ext"] / args.inserts,
         1e6 * ins_cpu["pgvector"] / args.inserts, "us", higher_better=False)

    print()
    print("| measure | vector_ext | pgvector | ratio (>1: vector_ext better) |")
    print("|---|---:|---:|---:|")
    for label, vx, pg, unit, ratio in report:
        f = (lambda v: "n/a" if v is None else f"{v:.2f}")
        r = "n/a" if ratio is None else f"**{ratio:.2f}x**"
        print(f"| {label} | {f(vx)} | {f(pg)} | {r} |")
    print()
    print("| probes | vector_ext recall | vector_ext q/s | pgvector recall | pgvector q/s |")
    print("|---:|---:|---:|---:|---:|")
    for (p, r1, q1), (_, r2, q2) in zip(sweep["vector_ext"], sweep["pgvector"]):
        print(f"| {p} | {r1:.4f} | {q1:.1f} | {r2:.4f} | {q2:.1f} |")


if __name__ == "__main__":
    main()
