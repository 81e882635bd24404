"""Read replicas: kNN read throughput spread over the primary and one
streaming standby against the primary alone, and the standby's replication
lag under a steady insert load, on ds-a-npm-minilm (100k x 384, cosine).

The primary is the main cluster; the standby is made with pg_basebackup
(a replication slot) and runs on this machine at the primary's port + 2.
hnsw m = 16, ef_construction = 64, hnsw.ef_search = --ef.

1. The standby answers the --queries queries with the same rows as the
   primary (its index is the primary's, replayed from WAL).
2. Throughput: --clients clients for --seconds on the primary alone, then
   the same clients split between primary and standby (half each), then
   twice the clients split (each server as loaded as the primary alone was).
3. Lag: a writer inserts the extra rows in statements of --batch rows at
   --rate rows a second into the indexed table for --load-seconds, while one
   client queries the standby; pg_stat_replication is sampled every 0.2 s
   (replay lag in bytes and time).

Both servers share this machine's cores: spreading reads over them shows the
cost of the standby's replay and the routing, not the capacity a second
machine adds.
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
DB = "vector_ext_bench_replica"
SLOT = "vx_bench_standby"


def sh(cmd):
    subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/lib.sh" && {cmd}'], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def connect(port=None, db=DB):
    c = psycopg.connect(f"host={os.environ['PGHOST']} port={port or os.environ['PGPORT']} user=postgres dbname={db}",
                        autocommit=True)
    if db == DB:
        register_vector(c)
    return c


def load(c, rows):
    c.execute("DROP TABLE IF EXISTS items")
    c.execute(f"CREATE TABLE items (id int PRIMARY KEY, emb vector({rows.shape[1]}))")
    with c.cursor() as cur:
        with cur.copy("COPY items (id, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, v in enumerate(rows):
                copy.write_row([i, v])
    c.execute("SET maintenance_work_mem = '1GB'")
    c.execute("CREATE INDEX ON items USING hnsw (emb vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
    c.execute("VACUUM ANALYZE items")


def wait_caught_up(primary):
    lsn = primary.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    for _ in range(600):
        done = primary.execute("SELECT replay_lsn >= %s FROM pg_stat_replication WHERE application_name = %s",
                               (lsn, "walreceiver")).fetchone()
        if done and done[0]:
            return
        time.sleep(0.1)
    raise RuntimeError("the standby did not catch up")


SQL = "SELECT id FROM items ORDER BY emb <=> %s LIMIT 10"


def throughput(ports, queries, ef, seconds):
    """Queries a second of one client a port in `ports`, for `seconds`."""
    counts = [0] * len(ports)
    stop = time.perf_counter() + seconds

    def work(i, port):
        with connect(port) as c:
            c.execute(f"SET hnsw.ef_search = {ef}")
            j = i
            while time.perf_counter() < stop:
                c.execute(SQL, (queries[j % len(queries)],), prepare=True).fetchall()
                counts[i] += 1
                j += len(ports)

    threads = [threading.Thread(target=work, args=(i, p)) for i, p in enumerate(ports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return round(sum(counts) / seconds, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data", "ds-a-npm-minilm"))
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--ef", type=int, default=40)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--rate", type=int, default=500, help="rows inserted a second during the lag phase")
    ap.add_argument("--batch", type=int, default=10)
    ap.add_argument("--load-seconds", type=float, default=20)
    args = ap.parse_args()
    base = np.load(os.path.join(args.data, "base.f16.npy")).astype(np.float32)
    extra = np.load(os.path.join(args.data, "extra.f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(args.data, "query.f16.npy")).astype(np.float32)[: args.queries]
    primary_port = int(os.environ["PGPORT"])
    port = primary_port + 2
    standby = '"$PG_WORK/bench_standby"'
    results = {"ef_search": args.ef}

    with connect(db="postgres") as c:
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB,)).fetchone():
            c.execute(f"CREATE DATABASE {DB}")
    with psycopg.connect(f"host={os.environ['PGHOST']} port={primary_port} user=postgres dbname={DB}",
                         autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector_ext")
    primary = connect()
    load(primary, base)
    try:
        sh(f'rm -rf {standby} && as_pg "$PG_BIN/pg_basebackup" -h "$PGSOCK" -p "$PGPORT" -U postgres '
           f'-D {standby} -R -X stream -c fast -C -S {SLOT}')
        sh(f'as_pg "$PG_BIN/pg_ctl" -D {standby} -l {standby}/server.log -w start '
           f'-o "-p {port} -k $PGSOCK -c listen_addresses=\'\' -c hot_standby=on -c shared_buffers=1GB"')
        wait_caught_up(primary)

        # 1. the same rows
        with connect(port) as s:
            primary.execute(f"SET hnsw.ef_search = {args.ef}")
            s.execute(f"SET hnsw.ef_search = {args.ef}")
            same = sum(primary.execute(SQL, (q,), prepare=True).fetchall() == s.execute(SQL, (q,), prepare=True).fetchall()
                       for q in queries)
        results["queries answered with the same rows"] = f"{same} of {len(queries)}"
        print(results, flush=True)

        # 2. throughput (each set warmed by a short run first)
        n = args.clients
        for name, ports in [(f"{n} clients, primary", [primary_port] * n),
                            (f"{n} clients, half on the standby", [primary_port, port] * (n // 2)),
                            (f"{2 * n} clients, half on the standby", [primary_port, port] * n),
                            (f"{2 * n} clients, primary", [primary_port] * (2 * n))]:
            throughput(ports, queries, args.ef, 2)
            results[f"QPS, {name}"] = throughput(ports, queries, args.ef, args.seconds)
            print(name, results[f"QPS, {name}"], flush=True)

        # 3. lag under a steady insert load, one reader on the standby
        samples, inserted, read = [], [0], [0]
        stop = time.perf_counter() + args.load_seconds

        def writer():
            with connect() as w:
                t0, i = time.perf_counter(), 0
                while time.perf_counter() < stop and i + args.batch <= len(extra):
                    with w.cursor() as cur:
                        cur.executemany("INSERT INTO items (id, emb) VALUES (%s, %s)",
                                        [(len(base) + i + j, extra[i + j]) for j in range(args.batch)])
                    i += args.batch
                    inserted[0] = i
                    ahead = i / args.rate - (time.perf_counter() - t0)
                    if ahead > 0:
                        time.sleep(ahead)

        def reader():
            with connect(port) as r:
                r.execute(f"SET hnsw.ef_search = {args.ef}")
                j = 0
                while time.perf_counter() < stop:
                    r.execute(SQL, (queries[j % len(queries)],), prepare=True).fetchall()
                    j += 1
                read[0] = j

        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        with connect(db="postgres") as m:
            while time.perf_counter() < stop:
                row = m.execute("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), "
                                "extract(epoch FROM replay_lag) * 1000 FROM pg_stat_replication "
                                "WHERE application_name = 'walreceiver'").fetchone()
                if row:
                    samples.append((float(row[0]), float(row[1] or 0)))
                time.sleep(0.2)
        for t in threads:
            t.join()
        seconds = time.perf_counter() - t0
        wait_caught_up(primary)
        lag_bytes = np.array([s[0] for s in samples])
        lag_ms = np.array([s[1] for s in samples])
        results["lag phase"] = {
            "rows inserted a second": round(inserted[0] / seconds, 1),
            "standby QPS meanwhile": round(read[0] / seconds, 1),
            "replay lag bytes mean / max": [round(float(lag_bytes.mean())), round(float(lag_bytes.max()))],
            "replay lag ms mean / max": [round(float(lag_ms.mean()), 1), round(float(lag_ms.max()), 1)],
            "samples": len(samples),
        }
        probe = range(0, inserted[0], max(1, inserted[0] // 100))
        with connect(port) as s:
            found = sum(s.execute(SQL, (extra[j],), prepare=True).fetchone()[0] == len(base) + j for j in probe)
        results["lag phase"]["inserted rows the standby returns first for their own vector"] = \
            f"{found} of {len(probe)}"
        print(json.dumps(results["lag phase"]), flush=True)
    finally:
        primary.close()
        sh(f'as_pg "$PG_BIN/pg_ctl" -D {standby} -m fast -w stop; rm -rf {standby}')
        with connect(db="postgres") as c:
            c.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = %s",
                      (SLOT,))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
