"""Exact-scan benchmark: vector_ext against pgvector, side by side.

Two databases in one cluster, identical data: ds-a-npm-minilm (100k x 384)
and a 1536-d set synthesised from it (row i = rows i, i+25k, i+50k, i+75k
concatenated, so values are real embedding values). Each timed round runs the
same queries on both systems, alternating, so machine noise hits both alike.

Queries (no index, one backend, no parallel workers):
  knn: SELECT id FROM t ORDER BY emb <=> $1 LIMIT 10
  sum: SELECT sum(emb <-> $1) FROM t
"""

import argparse
import os
import statistics
import time

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

SYSTEMS = {"vector_ext": "bench_vector_ext", "pgvector": "bench_pgvector"}
EXT = {"vector_ext": "vector_ext", "pgvector": "vector"}
QUERIES = {
    "knn": "SELECT id FROM {t} ORDER BY emb <=> %s LIMIT 10",
    "sum": "SELECT sum(emb <-> %s) FROM {t}",
}


def connect(db):
    c = psycopg.connect(f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={db}",
                        autocommit=True)
    register_vector(c)
    c.execute("SET max_parallel_workers_per_gather = 0")
    c.execute("SET jit = off")
    return c


def load(conn, table, data):
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int, emb vector({data.shape[1]}))")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} (id, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, row in enumerate(data):
                copy.write_row([i, row])
    conn.execute(f"VACUUM ANALYZE {table}")
    return conn.execute(f"SELECT pg_total_relation_size('{table}')").fetchone()[0]


def time_queries(conn, sql, queries):
    times = []
    results = []
    for q in queries:
        t0 = time.perf_counter()
        rows = conn.execute(sql, (q,), prepare=True).fetchall()
        times.append(time.perf_counter() - t0)
        results.append(rows)
    return times, results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/ds-a-npm-minilm"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--per-round", type=int, default=8)
    ap.add_argument("--skip-load", action="store_true")
    args = ap.parse_args()

    base = np.load(os.path.join(args.data, "base.f16.npy")).astype(np.float32)
    query = np.load(os.path.join(args.data, "query.f16.npy")).astype(np.float32)
    n4 = base.shape[0] // 4
    # 1536-d: row i is base rows i, i+25k, i+50k, i+75k side by side.
    wide = lambda m, step: np.hstack([np.roll(m, -k * step, axis=0) for k in range(4)])
    sets = {384: (base, query), 1536: (wide(base, n4), wide(query, query.shape[0] // 4))}

    conns = {}
    for name, db in SYSTEMS.items():
        with psycopg.connect(f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname=postgres",
                             autocommit=True) as c:
            if not args.skip_load:
                c.execute(f"DROP DATABASE IF EXISTS {db}")
                c.execute(f"CREATE DATABASE {db}")
        with psycopg.connect(f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={db}",
                             autocommit=True) as c:
            c.execute(f"CREATE EXTENSION IF NOT EXISTS {EXT[name]}")
        conns[name] = connect(db)

    sizes = {}
    for dim, (data, _) in sets.items():
        for name, conn in conns.items():
            table = f"t{dim}"
            if args.skip_load:
                sizes[(name, dim)] = conn.execute(f"SELECT pg_total_relation_size('{table}')").fetchone()[0]
            else:
                t0 = time.perf_counter()
                sizes[(name, dim)] = load(conn, table, data)
                print(f"loaded {name} {table}: {data.shape[0]} rows in {time.perf_counter() - t0:.1f}s, "
                      f"{sizes[(name, dim)] / 2**20:.0f} MiB", flush=True)

    rows = []
    for dim, (data, qs) in sets.items():
        for qname, template in QUERIES.items():
            sql = template.format(t=f"t{dim}")
            per = {name: [] for name in conns}
            answers = {}
            # warm-up: caches, prepared plans, and a correctness cross-check
            for name, conn in conns.items():
                _, answers[name] = time_queries(conn, sql, qs[:2])
            if qname == "knn":
                assert answers["vector_ext"] == answers["pgvector"], "top-10 ids differ between systems"
            else:
                for a, b in zip(answers["vector_ext"], answers["pgvector"]):
                    assert abs(a[0][0] - b[0][0]) <= 1e-4 * abs(b[0][0]), (a, b)
            for r in range(args.rounds):
                batch = qs[2 + r * args.per_round: 2 + (r + 1) * args.per_round]
                order = list(conns.items()) if r % 2 == 0 else list(reversed(conns.items()))
                for name, conn in order:
                    t, _ = time_queries(conn, sql, batch)
                    per[name].extend(t)
            med = {name: statistics.median(t) for name, t in per.items()}
            ratio = med["pgvector"] / med["vector_ext"]
            rows.append((dim, qname, med["vector_ext"], med["pgvector"], ratio, len(per["vector_ext"])))
            print(f"{dim:5d} {qname}: vector_ext {1 / med['vector_ext']:.1f} q/s, pgvector {1 / med['pgvector']:.1f} q/s, "
                  f"ratio {ratio:.2f}x", flush=True)

    print()
    print("| dims | query | vector_ext q/s | pgvector q/s | throughput ratio | queries each |")
    print("|---:|---|---:|---:|---:|---:|")
    for dim, qname, vx, pg, ratio, n in rows:
        print(f"| {dim} | {qname} | {1 / vx:.2f} | {1 / pg:.2f} | **{ratio:.2f}x** | {n} |")
    print()
    print("| dims | vector_ext table size | pgvector table size (with TOAST) |")
    print("|---:|---:|---:|")
    for dim in sets:
        print(f"| {dim} | {sizes[('vector_ext', dim)] / 2**20:.0f} MiB | {sizes[('pgvector', dim)] / 2**20:.0f} MiB |")


if __name__ == "__main__":
    main()
