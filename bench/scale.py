"""Scale: 1M rows, vector_ext against pgvector on the same cluster, one
system at a time (issue 21).

Phases (--phase, in order; each appends its figures to results.json in
--out and prints them):

- make: 1M rows from ds-a-npm-minilm's 100k (each row ten times, each
  copy with independent Gaussian noise of --noise per dimension, then
  normalised), the 1k queries as given, and the exact cosine top 10 over
  the 1M rows. Written to --out (about 1.6 GB).
- build: for each --mwm (maintenance_work_mem), load the rows into each
  system's database and CREATE INDEX ... USING hnsw (emb vector_cosine_ops)
  WITH (m = 16, ef_construction = 64), max_parallel_maintenance_workers =
  --workers (1: two processes for pgvector, two threads for vector_ext, on
  the 2 cores, as bench/hnsw.py):
  wall time, the build's peak memory (below), index size, recall@10 and
  queries per second (one client) at hnsw.ef_search 40 and 100. Before
  each build the cluster is restarted (same shared_buffers) with the page
  cache dropped, and the table is read into shared buffers (pg_prewarm),
  so that each system starts from the same state.
- vacuum: on the index of the last build, delete 10% of the rows and
  VACUUM with --vacuum-mwm (each system from a restarted cluster with its
  table and index read into shared buffers, untimed): time and peak
  memory; then insert 10k rows
  and VACUUM again (nothing to remove): index blocks read, from
  pg_statio_user_indexes.

- cold: the index larger than memory. For each system and each
  hnsw.ef_search of --cold-ef, the cluster is restarted with
  shared_buffers = --shared-buffers (256MB: an eighth of the 2 GB index)
  and the kernel's page cache dropped (where /proc/sys/vm/drop_caches is
  writable; results.json says whether it was), then the queries run twice:
  first from disk ("cold"), then again with the page cache warm but
  shared buffers still too small ("page cache"). For each pass: queries
  per second, recall@10, and shared blocks read (from the kernel) and hit
  per query, index and table, from pg_statio_user_indexes/_tables.

Peak memory is sampled every 0.2 s: the private memory (RssAnon) of the
backend and its parallel workers, plus what the backend maps of dynamic
shared memory (pgvector's parallel build keeps its graph there); shared
buffers are not counted.
"""

import argparse
import json
import os
import subprocess
import threading
import time

import numpy as np
import psycopg

from exact_scan import connect, load
from hnsw import SYSTEMS, open_systems, recall

TABLE = "scale"
ROWS_PER_COPY = 100_000


def make(data, out, noise, copies):
    base = np.load(f"{data}/base.f16.npy").astype(np.float32)[:ROWS_PER_COPY]
    queries = np.load(f"{data}/query.f16.npy").astype(np.float32)
    rng = np.random.default_rng(21)
    rows = np.empty((len(base) * copies, base.shape[1]), dtype=np.float32)
    for c in range(copies):
        x = base + rng.normal(0.0, noise, size=base.shape).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        rows[c::copies] = x  # row i*copies+c is a copy of base row i
    qn = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    best_d = np.full((len(qn), 10), np.inf, dtype=np.float32)
    best_i = np.zeros((len(qn), 10), dtype=np.int64)
    for start in range(0, len(rows), 100_000):
        d = 1.0 - qn @ rows[start:start + 100_000].T
        part = np.argpartition(d, 10, axis=1)[:, :10]
        cand_d = np.concatenate([best_d, np.take_along_axis(d, part, 1)], axis=1)
        cand_i = np.concatenate([best_i, part + start], axis=1)
        order = np.argsort(cand_d, axis=1, kind="stable")[:, :10]
        best_d = np.take_along_axis(cand_d, order, 1)
        best_i = np.take_along_axis(cand_i, order, 1)
    os.makedirs(out, exist_ok=True)
    np.save(f"{out}/rows.f32.npy", rows)
    np.save(f"{out}/query.f32.npy", queries)
    np.save(f"{out}/gt_cos.i32.npy", best_i.astype(np.int32))
    between = np.sum(rows[0::copies] * rows[1::copies], axis=1) if copies > 1 else np.ones(1)
    return {"rows": len(rows), "dims": rows.shape[1], "noise": noise,
            "cosine distance between copies (median)": float(np.median(1.0 - between))}


class PeakMemory:
    """Samples a backend's and its parallel workers' memory (see module
    comment) in a thread until stopped; `peak` in bytes."""

    def __init__(self, db, pid):
        self.pid, self.peak, self.stop_flag = pid, 0, False
        self.conn = connect(db)
        self.thread = threading.Thread(target=self.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag = True
        self.thread.join()
        self.conn.close()

    @staticmethod
    def anon(pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("RssAnon:"))
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            return 0

    @staticmethod
    def dsm(pid):
        total, in_dsm = 0, False
        try:
            with open(f"/proc/{pid}/smaps") as f:
                for line in f:
                    if not line.split()[0].endswith(":"):  # a mapping's header
                        in_dsm = "/dev/shm/PostgreSQL" in line
                    elif in_dsm and line.startswith("Rss:"):
                        total += int(line.split()[1]) * 1024
        except (FileNotFoundError, ProcessLookupError):
            pass
        return total

    def run(self):
        while not self.stop_flag:
            workers = [r[0] for r in self.conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE leader_pid = %s AND pid <> %s",
                (self.pid, self.pid)).fetchall()]
            now = self.anon(self.pid) + sum(self.anon(w) for w in workers) + self.dsm(self.pid)
            self.peak = max(self.peak, now)
            time.sleep(0.2)


def query_figures(c, queries, truth):
    out = {}
    for ef in (40, 100):
        c.execute(f"SET hnsw.ef_search = {ef}")
        sql = f"SELECT id FROM {TABLE} ORDER BY emb <=> %s LIMIT 10"
        run = lambda: [[r[0] for r in c.execute(sql, (q,), prepare=True).fetchall()] for q in queries]
        run()  # warm
        t0 = time.perf_counter()
        found = run()
        out[f"ef {ef}"] = {"recall@10": round(recall(found, truth), 4),
                           "qps": round(len(queries) / (time.perf_counter() - t0), 1)}
    return out


def build(conns, rows, queries, truth, mwms, reload, workers):
    results = {}
    for mwm in mwms:
        for system, (db, _) in SYSTEMS.items():
            conns[system].close()  # (the last build's restart ended it)
            conns[system] = c = connect(db)
            exists = c.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (TABLE,)).fetchone()[0]
            if reload or not exists or c.execute(f"SELECT count(*) FROM {TABLE}").fetchone()[0] != len(rows):
                t0 = time.perf_counter()
                load(c, TABLE, rows)
                print(f"{system}: loaded {len(rows)} rows in {time.perf_counter() - t0:.0f}s", flush=True)
            c.execute(f"DROP INDEX IF EXISTS {TABLE}_idx")
            c.execute("CHECKPOINT")
            c.close()
            conns[system], dropped = same_start(db, [TABLE])
            c = conns[system]
            # a fresh backend: one that loaded the rows keeps what COPY and
            # ANALYZE took in its allocator
            with connect(db) as b:
                b.execute(f"SET maintenance_work_mem = '{mwm}'")
                b.execute(f"SET max_parallel_maintenance_workers = {workers}")
                b.execute("SET client_min_messages = notice")
                pid = b.execute("SELECT pg_backend_pid()").fetchone()[0]
                notices = []
                b.add_notice_handler(lambda d: notices.append(d.message_primary))
                with PeakMemory(db, pid) as mem:
                    t0 = time.perf_counter()
                    b.execute(f"CREATE INDEX {TABLE}_idx ON {TABLE} USING hnsw (emb vector_cosine_ops) "
                              "WITH (m = 16, ef_construction = 64)")
                    seconds = time.perf_counter() - t0
            size = c.execute(f"SELECT pg_relation_size('{TABLE}_idx')").fetchone()[0]
            r = {"build s": round(seconds, 1), "peak memory MB": round(mem.peak / 2**20),
                 "start": f"restarted, page cache {'dropped' if dropped else 'kept'}, table prewarmed",
                 "index MB": round(size / 2**20), "notices": notices[-2:]}
            r.update(query_figures(c, queries, truth))
            results.setdefault(mwm, {})[system] = r
            print(f"mwm {mwm} {system}: {json.dumps(r)}", flush=True)
        a, b = results[mwm]["vector_ext"], results[mwm]["pgvector"]
        results[mwm]["build time ratio (vector_ext / pgvector)"] = round(a["build s"] / b["build s"], 3)
        print(f"mwm {mwm}: build time ratio {results[mwm]['build time ratio (vector_ext / pgvector)']}", flush=True)
    return results


def blocks(c):
    return c.execute("SELECT coalesce(idx_blks_read, 0) + coalesce(idx_blks_hit, 0) FROM pg_statio_user_indexes "
                     "WHERE indexrelname = %s", (f"{TABLE}_idx",)).fetchone()[0]


def vacuum(conns, rows, mwm):
    results = {}
    for system, (db, _) in SYSTEMS.items():
        conns[system].close()  # (a build's restart may have ended it)
        # the same start for each system, as for the builds, with the index
        # in shared buffers too
        conns[system], _ = same_start(db, [TABLE, f"{TABLE}_idx"])
        c = conns[system]
        c.execute(f"DELETE FROM {TABLE} WHERE id % 10 = 3")
        with connect(db) as v:  # a fresh backend, as for the build
            v.execute(f"SET maintenance_work_mem = '{mwm}'")
            pid = v.execute("SELECT pg_backend_pid()").fetchone()[0]
            with PeakMemory(db, pid) as mem:
                t0 = time.perf_counter()
                v.execute(f"VACUUM {TABLE}")
                seconds = time.perf_counter() - t0
        n = len(rows)
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {TABLE} (id, emb) VALUES (%s, %s)",
                            [(n + i, rows[i * 97 % n]) for i in range(10_000)])
        c.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(1)
        before = blocks(c)
        c.execute(f"VACUUM {TABLE}")
        c.execute("SELECT pg_stat_force_next_flush()")
        time.sleep(1)
        insert_only = blocks(c) - before
        r = {"vacuum s (10% deleted)": round(seconds, 1), "peak memory MB": round(mem.peak / 2**20),
             "maintenance_work_mem": mwm, "insert-only vacuum index blocks": insert_only}
        results[system] = r
        print(f"vacuum {system}: {json.dumps(r)}", flush=True)
    return results


def statio(c):
    """Shared blocks (read, hit) so far of the table's index and heap."""
    c.execute("SELECT pg_stat_clear_snapshot()")
    return c.execute(
        "SELECT i.idx_blks_read, i.idx_blks_hit, t.heap_blks_read, t.heap_blks_hit "
        "FROM pg_statio_user_indexes i JOIN pg_statio_user_tables t USING (relid) "
        "WHERE i.indexrelname = %s", (f"{TABLE}_idx",)).fetchone()


def restart(shared_buffers):
    """Restarts the cluster with shared_buffers and an empty page cache;
    says whether the page cache could be dropped."""
    lib = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts", "lib.sh")
    env = dict(os.environ, VECTOR_EXT_PGOPTS=f"-c shared_buffers={shared_buffers}")
    subprocess.run(["bash", "-c", f'source "{lib}" && cluster_stop'], check=True, env=env)
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        dropped = True
    except OSError:
        dropped = False
    subprocess.run(["bash", "-c", f'source "{lib}" && cluster_start'], check=True, env=env,
                   stderr=subprocess.DEVNULL)
    return dropped


def same_start(db, relations):
    """Puts a system in the state each of its timed phases starts from: a
    fresh postmaster (shared memory nothing has touched yet: on this virtual
    machine the first touch of each page costs, and it fell on whichever
    system ran first), the page cache dropped, then `relations` read into
    shared buffers, untimed. Returns a new connection and whether the page
    cache could be dropped."""
    with connect(db) as c:
        shared_buffers = c.execute("SHOW shared_buffers").fetchone()[0]
    dropped = restart(shared_buffers)
    c = connect(db)
    c.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
    for rel in relations:
        c.execute("SELECT pg_prewarm(%s)", (rel,))
    return c, dropped


def cold(queries, truth, efs, shared_buffers):
    results = {"shared_buffers": shared_buffers}
    sql = f"SELECT id FROM {TABLE} ORDER BY emb <=> %s LIMIT 10"
    for system, (db, _) in SYSTEMS.items():
        for ef in efs:
            dropped = restart(shared_buffers)
            results["page cache dropped"] = dropped
            with connect(db) as c, connect(db) as stats:
                c.execute(f"SET hnsw.ef_search = {ef}")
                r = {}
                for name in ("cold", "page cache"):
                    before = statio(stats)
                    t0 = time.perf_counter()
                    found = [[x[0] for x in c.execute(sql, (q,), prepare=True).fetchall()] for q in queries]
                    seconds = time.perf_counter() - t0
                    c.execute("SELECT pg_stat_force_next_flush()")
                    c.execute("SELECT 1")
                    time.sleep(0.5)
                    d = [b - a for a, b in zip(before, statio(stats))]
                    n = len(queries)
                    r[name] = {"qps": round(n / seconds, 1), "recall@10": round(recall(found, truth), 4),
                               "index reads/query": round(d[0] / n, 1), "index hits/query": round(d[1] / n, 1),
                               "heap reads/query": round(d[2] / n, 1), "heap hits/query": round(d[3] / n, 1)}
            results.setdefault(system, {})[f"ef {ef}"] = r
            print(f"cold {system} ef {ef}: {json.dumps(r)}", flush=True)
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="directory of ds-a-npm-minilm (phase make)")
    ap.add_argument("--out", required=True, help="directory for the 1M rows and results.json")
    ap.add_argument("--phase", action="append", choices=["make", "build", "vacuum", "cold"], required=True)
    ap.add_argument("--copies", type=int, default=10)
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--mwm", action="append", help="maintenance_work_mem of a build (default 8GB, 256MB)")
    ap.add_argument("--vacuum-mwm", default="256MB")
    ap.add_argument("--workers", type=int, default=1, help="max_parallel_maintenance_workers")
    ap.add_argument("--shared-buffers", default="256MB", help="shared_buffers of phase cold")
    ap.add_argument("--cold-ef", type=int, action="append", help="hnsw.ef_search of phase cold "
                    "(default 40, 100, 200, 400, 1000)")
    ap.add_argument("--reload", action="store_true", help="load the rows even when the table has them")
    args = ap.parse_args()
    path = f"{args.out}/results.json"
    results = json.load(open(path)) if os.path.exists(path) else {}

    def save(key, value):
        results[key] = value
        with open(path, "w") as f:
            json.dump(results, f, indent=1)

    if "make" in args.phase:
        t0 = time.perf_counter()
        save("make", make(args.data, args.out, args.noise, args.copies))
        print(f"made the rows in {time.perf_counter() - t0:.0f}s: {results['make']}", flush=True)
    if {"build", "vacuum"} & set(args.phase):
        rows = np.load(f"{args.out}/rows.f32.npy", mmap_mode="r")
        queries = np.load(f"{args.out}/query.f32.npy")
        truth = np.load(f"{args.out}/gt_cos.i32.npy").tolist()
        conns = open_systems(lambda c: None)
        if "build" in args.phase:
            done = results.get("build", {})
            done.update(build(conns, rows, queries, truth, args.mwm or ["8GB", "256MB"], args.reload,
                              args.workers))
            save("build", done)
        if "vacuum" in args.phase:
            save("vacuum", vacuum(conns, rows, args.vacuum_mwm))
    if "cold" in args.phase:
        queries = np.load(f"{args.out}/query.f32.npy")
        truth = np.load(f"{args.out}/gt_cos.i32.npy").tolist()
        save("cold", cold(queries, truth, args.cold_ef or [40, 100, 200, 400, 1000], args.shared_buffers))


if __name__ == "__main__":
    main()
