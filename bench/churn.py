"""HNSW under heavy churn: vector_ext against pgvector, one system at a time
on the same cluster, rounds alternating between them.

The load of tests/python/test_index_reliability.py's soak: a 5000-row table
(ds-a-npm-minilm base rows) with an hnsw index (cosine, m = 16,
ef_construction = 64); two writers (inserts, updates, deletes 5:3:2 of
near-copies of the first 4000 extra rows; updates and deletes hit the
oldest 4000 keys), two readers (kNN with and without a filter, iterative
scan) and VACUUM in a loop (3 s apart) for --seconds. Then: recall@10 at
the default ef_search against exact truth, the index size, and the same
after REINDEX (how far churn left the index from a fresh build).

Writers run as fast as each system lets them unless --rate caps their
writes per second (each writer), so that both face the same load: the size
an index keeps under churn depends on how much was written between two
VACUUMs.
"""

import argparse
import os
import threading
import time

import numpy as np

from exact_scan import connect
from hnsw import SYSTEMS, open_systems, recall

TABLE = "churn"


def exact_top10(vectors, queries):
    b = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    return np.argsort(-(q @ b.T), axis=1, kind="stable")[:, :10]


def soak(db, base, queries, extra, seconds, rate, seed):
    with connect(db) as c:
        c.execute(f"DROP TABLE IF EXISTS {TABLE}")
        c.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, cat10 int, emb vector(384))")
        with c.cursor() as cur:
            with cur.copy(f"COPY {TABLE} (id, cat10, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "int4", "vector"])
                for i, v in enumerate(base[:5000]):
                    copy.write_row([i, i % 10, v])
        c.execute(f"CREATE INDEX {TABLE}_idx ON {TABLE} USING hnsw (emb vector_cosine_ops) "
                  "WITH (m = 16, ef_construction = 64)")
        c.execute(f"VACUUM ANALYZE {TABLE}")
    expected = {i: base[i] for i in range(5000)}  # id -> vector, as committed
    next_id = [1_000_000, 1_000_001]
    lock, stop = threading.Lock(), threading.Event()
    counts, vacuum_seconds, errors = {}, [], []

    def writer(w):
        rnd = np.random.default_rng(seed * 10 + w)
        started, done = time.perf_counter(), 0
        try:
            with connect(db) as c:
                while not stop.is_set():
                    if rate:
                        ahead = done / rate - (time.perf_counter() - started)
                        if ahead > 0:
                            time.sleep(ahead)
                    op = str(rnd.choice(["insert", "update", "delete"], p=[0.5, 0.3, 0.2]))
                    v = (extra[int(rnd.integers(4000))] + rnd.normal(0, 0.01, 384)).astype(np.float32)
                    with lock:
                        if op == "insert":
                            i = next_id[w]
                            next_id[w] += 2
                        else:
                            mine = [k for k in list(expected)[:4000] if k % 2 == w]
                            i = int(rnd.choice(mine)) if mine else None
                    if i is None:
                        continue
                    if op == "insert":
                        c.execute(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", (i, i % 10, v), prepare=True)
                    elif op == "update":
                        c.execute(f"UPDATE {TABLE} SET emb = %s WHERE id = %s", (v, i), prepare=True)
                    else:
                        c.execute(f"DELETE FROM {TABLE} WHERE id = %s", (i,), prepare=True)
                    with lock:
                        if op == "delete":
                            expected.pop(i, None)
                        elif op == "insert" or i in expected:
                            expected[i] = v
                        counts[op] = counts.get(op, 0) + 1
                    done += 1
        except Exception as e:  # noqa: BLE001 - reported after the run
            errors.append(e)

    def reader(r):
        rnd = np.random.default_rng(seed * 10 + 5 + r)
        try:
            with connect(db) as c:
                c.execute("SET hnsw.iterative_scan = relaxed_order")
                while not stop.is_set():
                    q = queries[int(rnd.integers(len(queries)))]
                    c.execute(f"SELECT id FROM {TABLE} ORDER BY emb <=> %s LIMIT 10", (q,), prepare=True).fetchall()
                    c.execute(f"SELECT id FROM {TABLE} WHERE cat10 = %s ORDER BY emb <=> %s LIMIT 10",
                              (int(rnd.integers(10)), q), prepare=True).fetchall()
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def vacuumer():
        try:
            with connect(db) as c:
                while not stop.wait(3):
                    t0 = time.perf_counter()
                    c.execute(f"VACUUM {TABLE}")
                    vacuum_seconds.append(time.perf_counter() - t0)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(2)]
    threads += [threading.Thread(target=vacuumer)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if errors:
        raise errors[0]
    with connect(db) as c:
        c.execute(f"VACUUM {TABLE}")
        ids = np.array(sorted(expected))
        truth = ids[exact_top10(np.stack([expected[i] for i in ids]), queries)].tolist()
        sql = f"SELECT id FROM {TABLE} ORDER BY emb <=> %s LIMIT 10"
        found = lambda: [[r[0] for r in c.execute(sql, (q,), prepare=True)] for q in queries]  # noqa: E731
        size = f"SELECT pg_relation_size('{TABLE}_idx') / 8192"
        churned = (recall(found(), truth), c.execute(size).fetchone()[0])
        c.execute("SET maintenance_work_mem = '1GB'")
        c.execute(f"REINDEX INDEX {TABLE}_idx")
        rebuilt = (recall(found(), truth), c.execute(size).fetchone()[0])
        c.execute(f"DROP TABLE {TABLE}")
    writes = sum(counts.values()) / elapsed
    return {"writes/s": writes, "vacuums": len(vacuum_seconds),
            "vacuum s": float(np.mean(vacuum_seconds)) if vacuum_seconds else 0.0,
            "rows": len(expected), "recall": churned[0], "recall rebuilt": rebuilt[0],
            "pages": churned[1], "pages rebuilt": rebuilt[1]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/ds-a-npm-minilm"))
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--rounds", type=int, default=2, help="runs per system, alternating")
    ap.add_argument("--rate", type=float, default=0, help="writes per second per writer (0: as fast as possible)")
    ap.add_argument("--queries", type=int, default=500)
    args = ap.parse_args()
    base = np.load(os.path.join(args.data, "base.f16.npy"), mmap_mode="r")[:5000].astype(np.float32)
    queries = np.load(os.path.join(args.data, "query.f16.npy")).astype(np.float32)[: args.queries]
    extra = np.load(os.path.join(args.data, "extra.f16.npy"), mmap_mode="r")[:4000].astype(np.float32)
    for conn in open_systems(lambda c: None).values():
        conn.close()
    results = {name: [] for name in SYSTEMS}
    for r in range(args.rounds):
        for name, (db, _) in SYSTEMS.items():
            res = soak(db, base, queries, extra, args.seconds, args.rate, seed=r + 1)
            results[name].append(res)
            print(f"round {r + 1} {name}: " + ", ".join(
                f"{k} {v:.4f}" if isinstance(v, float) and v < 1 else f"{k} {v:.1f}" if isinstance(v, float)
                else f"{k} {v}" for k, v in res.items()), flush=True)
    print(f"\nchurn {args.seconds:.0f} s x {args.rounds} rounds, rate {args.rate or 'unlimited'}; "
          "recall@10 at ef_search 40 on "
          f"{len(queries)} queries; gap = churned - rebuilt")
    print(f"{'system':<12}{'writes/s':>10}{'VACUUMs':>9}{'VACUUM s':>10}{'rows':>8}"
          f"{'recall':>9}{'rebuilt':>9}{'gap':>9}{'pages':>8}{'rebuilt':>9}{'ratio':>7}")
    for name, runs in results.items():
        for res in runs:
            print(f"{name:<12}{res['writes/s']:>10.0f}{res['vacuums']:>9}{res['vacuum s']:>10.1f}{res['rows']:>8}"
                  f"{res['recall']:>9.4f}{res['recall rebuilt']:>9.4f}{res['recall'] - res['recall rebuilt']:>+9.4f}"
                  f"{res['pages']:>8}{res['pages rebuilt']:>9}{res['pages'] / res['pages rebuilt']:>7.2f}")


if __name__ == "__main__":
    main()
