"""Sharded kNN through postgres_fdw (scripts/shards.sh, docs/sharding.md)
against one node, on ds-a-npm-minilm (100k x 384, cosine, the shipped exact
ground truth).

One node: the 100k rows in one table of the main cluster with an hnsw index
(m = 16, ef_construction = 64). Sharded: for each shard count of --shards,
`scripts/shards.sh start N`, the rows loaded through the coordinator into a
table partitioned by hash of id over N foreign tables, the same index on
every shard. Then, at each ef_search of --ef (set on the shards through
shard_settings), the --queries queries one after another, for one node and
for both sharded forms ("merge": the plain ORDER BY ... LIMIT, a Merge Append
whose shard scans start one after another; "async": each shard's LIMIT under
an Append run asynchronously): recall@10, mean and p99 latency; then
--clients clients for --seconds each: queries per second.

Every server runs on this machine: the shards share its cores with each
other and with the coordinator, so these numbers measure what sharding costs
(round trips, the coordinator's merge, every shard searching) against one
node, not the capacity that separate machines would add.
"""

import argparse
import json
import os
import subprocess
import threading
import time

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SINGLE_DB = "vector_ext_bench_single"
COORD_DB = "vector_ext_bench_shards"


def connect(db, vectors=True):
    c = psycopg.connect(f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={db}",
                        autocommit=True)
    if vectors:
        c.execute("SET client_min_messages = warning")
        c.execute("CREATE EXTENSION IF NOT EXISTS vector_ext")
        register_vector(c)
    c.execute("SET jit = off")
    return c


def shards(*args):
    # each shard's index in its shared buffers, as the one node's is in its
    # (100k rows: 200 MB at one shard)
    env = dict(os.environ, VECTOR_EXT_COORDINATOR_DB=COORD_DB,
               VECTOR_EXT_SHARD_PGOPTS=os.environ.get("VECTOR_EXT_SHARD_PGOPTS", "-c shared_buffers=512MB"))
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "shards.sh"), *args], env=env, check=True,
                   stdout=subprocess.DEVNULL)


def copy_rows(c, table, rows):
    with c.cursor() as cur:
        with cur.copy(f"COPY {table} (id, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, v in enumerate(rows):
                copy.write_row([i, v])


def forms(n):
    merge = "SELECT id FROM items ORDER BY emb <=> %(q)s LIMIT 10"
    async_ = ("WITH per_shard AS MATERIALIZED ("
              + " UNION ALL ".join(f"(SELECT id, emb <=> %(q)s AS d FROM items_{k} ORDER BY d LIMIT 10)"
                                   for k in range(1, n + 1))
              + ") SELECT id FROM per_shard ORDER BY d LIMIT 10")
    return {"merge": merge, "async": async_}


def run_queries(c, sql, queries):
    times, found = [], []
    for q in queries:
        t0 = time.perf_counter()
        found.append([r[0] for r in c.execute(sql, {"q": q}, prepare=True).fetchall()])
        times.append(time.perf_counter() - t0)
    return times, found


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t[:10].tolist())) / 10 for f, t in zip(found, truth)]))


def throughput(make_conn, prepare, sql, queries, clients, seconds):
    counts = [0] * clients
    stop = time.perf_counter() + seconds

    def work(i):
        with make_conn() as c:
            prepare(c)
            j = i
            while time.perf_counter() < stop:
                c.execute(sql, {"q": queries[j % len(queries)]}, prepare=True).fetchall()
                counts[i] += 1
                j += clients

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / seconds


def figures(times, found, truth):
    ms = np.array(times) * 1000
    return {"recall@10": round(recall(found, truth), 4), "mean ms": round(float(ms.mean()), 2),
            "p99 ms": round(float(np.percentile(ms, 99)), 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "ds-a-npm-minilm"))
    ap.add_argument("--shards", default="1,2,3,4")
    ap.add_argument("--ef", default="40,100")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--fetch-size", type=int, help="the servers' fetch_size (postgres_fdw's default: 100)")
    args = ap.parse_args()
    base = np.load(os.path.join(args.data, "base.f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(args.data, "query.f16.npy")).astype(np.float32)[: args.queries]
    truth = np.load(os.path.join(args.data, "gt_cos.i32.npy"))[: args.queries]
    efs = [int(x) for x in args.ef.split(",")]
    results = {"fetch_size": args.fetch_size or 100}

    with connect("postgres", vectors=False) as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (SINGLE_DB,)).fetchone():
            c.execute(f"CREATE DATABASE {SINGLE_DB}")
    with connect(SINGLE_DB) as c:
        c.execute("DROP TABLE IF EXISTS items")
        c.execute(f"CREATE TABLE items (id int PRIMARY KEY, emb vector({base.shape[1]}))")
        copy_rows(c, "items", base)
        c.execute("SET maintenance_work_mem = '1GB'")
        c.execute("CREATE INDEX ON items USING hnsw (emb vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
        c.execute("VACUUM ANALYZE items")
        for ef in efs:
            c.execute(f"SET hnsw.ef_search = {ef}")
            sql = "SELECT id FROM items ORDER BY emb <=> %(q)s LIMIT 10"
            run_queries(c, sql, queries[:100])  # warm
            r = figures(*run_queries(c, sql, queries), truth)
            r["qps"] = round(throughput(lambda: connect(SINGLE_DB), lambda c: c.execute(f"SET hnsw.ef_search = {ef}"),
                                        sql, queries, args.clients, args.seconds), 1)
            results.setdefault("one node", {})[f"ef {ef}"] = r
            print(f"one node ef {ef}: {json.dumps(r)}", flush=True)

    try:
        for n in [int(x) for x in args.shards.split(",")]:
            shards("destroy")
            shards("start", str(n))
            shards("each", "DROP TABLE IF EXISTS items; "
                           f"CREATE TABLE items (id int PRIMARY KEY, emb vector({base.shape[1]}))")
            with connect(COORD_DB) as c:
                for k in range(1, n + 1):
                    c.execute(f"ALTER SERVER shard{k} OPTIONS (ADD batch_size '1000')")
                    if args.fetch_size:
                        c.execute(f"ALTER SERVER shard{k} OPTIONS (ADD fetch_size '{args.fetch_size}')")
                c.execute(f"CREATE TABLE items (id int, emb vector({base.shape[1]})) PARTITION BY HASH (id)")
                for k in range(1, n + 1):
                    c.execute(f"CREATE FOREIGN TABLE items_{k} PARTITION OF items "
                              f"FOR VALUES WITH (MODULUS {n}, REMAINDER {k - 1}) "
                              f"SERVER shard{k} OPTIONS (table_name 'items')")
                t0 = time.perf_counter()
                copy_rows(c, "items", base)
                load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            shards("each", "SET maintenance_work_mem = '1GB'; CREATE INDEX ON items USING hnsw (emb vector_cosine_ops) "
                           "WITH (m = 16, ef_construction = 64); ANALYZE items")
            index_s = time.perf_counter() - t0
            with connect(COORD_DB) as c:
                c.execute("ANALYZE items")
            print(f"{n} shards: loaded through the coordinator in {load_s:.1f} s, "
                  f"indexed one shard after another in {index_s:.1f} s", flush=True)
            for ef in efs:
                def prepare(c, ef=ef):
                    c.execute("UPDATE shard_settings SET setting = %s WHERE name = 'hnsw.ef_search'", (str(ef),))
                for name, sql in forms(n).items():
                    with connect(COORD_DB) as c:
                        prepare(c)
                        run_queries(c, sql, queries[:100])  # warm
                        r = figures(*run_queries(c, sql, queries), truth)
                    r["qps"] = round(throughput(lambda: connect(COORD_DB), prepare, sql, queries,
                                                args.clients, args.seconds), 1)
                    results.setdefault(f"{n} shards, {name}", {})[f"ef {ef}"] = r
                    print(f"{n} shards {name} ef {ef}: {json.dumps(r)}", flush=True)
    finally:
        shards("destroy")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
