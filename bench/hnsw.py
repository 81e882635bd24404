"""HNSW benchmark: vector_ext against pgvector, side by side in one cluster.

ds-a-npm-minilm (100k x 384, cosine), m = 16, ef_construction = 64, the same
maintenance_work_mem and max_parallel_maintenance_workers for both. Measures:
  build time and index size;
  recall@10 (shipped exact ground truth) and single-client QPS along an
    ef_search sweep (median of three passes per point), interpolated at recall
    0.95 and 0.99;
  2-client throughput at the ef_search reaching each recall (median of five
    alternating pgbench runs: its C clients leave the two cores to the
    servers, where two Python client processes took a third of them);
  filtered queries at 1% selectivity with iterative scans (recall, latency);
  single-row INSERT throughput into the indexed table;
  VACUUM after deleting 10% of a copy of the first --vacuum-rows rows, and
    recall@10 (ef_search 40) on what remains.
Systems alternate within every measurement so machine noise hits both alike.
"""

import argparse
import os
import re
import subprocess
import tempfile
import time

import numpy as np
import psycopg

from exact_scan import connect, load  # one session setup for every benchmark

SYSTEMS = {"vector_ext": ("bench_vector_ext", "vector_ext"), "pgvector": ("bench_pgvector", "vector")}
TABLE = "h384"
QTABLE = "h384_queries"  # the query vectors, for pgbench's clients
EFS = [10, 16, 24, 32, 40, 56, 80, 120, 160, 240, 320, 400]


def loaded(conn, table, rows):
    """Whether `table` exists with all `rows` rows (a benchmark killed
    during its COPY leaves an empty table behind: it is dropped)."""
    if conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is None:
        return False
    if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows:
        return True
    conn.execute(f"DROP TABLE {table}")
    return False


def ensure_table(conn, base):
    if loaded(conn, TABLE, len(base)):
        return
    conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, cat int, emb vector(384))")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {TABLE} (id, cat, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int4", "vector"])
            for i, v in enumerate(base):
                copy.write_row([i, i % 100, v])
    conn.execute(f"VACUUM ANALYZE {TABLE}")


def ensure_queries(conn, queries):
    if not loaded(conn, QTABLE, len(queries)):
        load(conn, QTABLE, queries)
        conn.execute(f"CREATE UNIQUE INDEX ON {QTABLE} (id)")
        conn.execute(f"ANALYZE {QTABLE}")


# One query of the set at random per transaction, its vector read by id:
# the same rows and ef_search as the Python passes, so the same recall.
PGBENCH_SQL = (f"SELECT id FROM {TABLE} ORDER BY emb <=> "
               f"(SELECT emb FROM {QTABLE} WHERE id = %s) LIMIT 10")


def pgbench_throughput(db, queries, ef, clients, seconds):
    """Transactions per second of `clients` pgbench clients running
    PGBENCH_SQL at `ef` for `seconds`."""
    bindir = subprocess.run([os.environ.get("PG_CONFIG", "pg_config"), "--bindir"],
                            capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(f"\\set q random(0, {queries - 1})\n" + PGBENCH_SQL % ":q" + ";\n")
        script.flush()
        env = dict(os.environ, PGOPTIONS=f"-c hnsw.ef_search={ef} -c jit=off "
                                         "-c max_parallel_workers_per_gather=0")
        out = subprocess.run(
            [os.path.join(bindir, "pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", str(clients),
             "-T", str(seconds), "-f", script.name, "-h", os.environ["PGHOST"], "-p", os.environ["PGPORT"],
             "-U", "postgres", db],
            env=env, capture_output=True, text=True, check=True).stdout
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    if not m:
        raise RuntimeError(f"no tps in pgbench's output:\n{out}")
    return float(m.group(1))


def check_pgbench_query(conn, sql, queries):
    """PGBENCH_SQL uses the index and answers as the direct query does."""
    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN (COSTS OFF) " + PGBENCH_SQL % "0").fetchall())
    if f"Index Scan using {TABLE}_idx" not in plan:
        raise RuntimeError(f"pgbench's query does not use the index:\n{plan}")
    for i in range(20):
        direct = [r[0] for r in conn.execute(sql, (queries[i],)).fetchall()]
        by_id = [r[0] for r in conn.execute(PGBENCH_SQL % i).fetchall()]
        if direct != by_id:
            raise RuntimeError(f"query {i}: {direct} directly, {by_id} by id")


def backend_cpu(conn):
    """CPU seconds (user + system) the connection's backend has used so far;
    the server runs on this machine. Less noisy than wall time on a shared
    machine, and free of the client's share."""
    pid = conn.info.backend_pid
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_systems(ensure):
    """A connection to each system's database (created with its extension
    when missing), after `ensure(conn)` has made the benchmark's table."""
    conns = {}
    for name, (db, ext) in SYSTEMS.items():
        with psycopg.connect(f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname=postgres",
                             autocommit=True) as c:
            if not c.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone():
                c.execute(f"CREATE DATABASE {db}")
        with psycopg.connect(f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={db}",
                             autocommit=True) as c:
            c.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
        conns[name] = connect(db)
        t0 = time.perf_counter()
        ensure(conns[name])
        print(f"{name}: table ready ({time.perf_counter() - t0:.0f}s)", flush=True)
    return conns


def run_queries(conn, sql, queries):
    t0 = time.perf_counter()
    ids = [[r[0] for r in conn.execute(sql, (q,), prepare=True).fetchall()] for q in queries]
    return time.perf_counter() - t0, ids


def recall(found, truth):
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth)]))


def interpolate(points, target):
    """QPS at `target` recall, linear between the sweep points around it."""
    points = sorted(points)
    for (r0, q0), (r1, q1) in zip(points, points[1:]):
        if r0 <= target <= r1:
            return q0 if r1 == r0 else q0 + (q1 - q0) * (target - r0) / (r1 - r0)
    return None


def ef_for(sweep, target):
    for ef, r, _ in sweep:
        if r >= target:
            return ef
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "../../shared/data/ds-a-npm-minilm"))
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--inserts", type=int, default=2000)
    ap.add_argument("--passes", type=int, default=3, help="passes per ef_search point (median)")
    ap.add_argument("--maintenance-work-mem", default="2GB")
    ap.add_argument("--workers", type=int, default=1, help="max_parallel_maintenance_workers")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--client-seconds", type=int, default=5, help="length of each 2-client pgbench run")
    ap.add_argument("--vacuum-rows", type=int, default=50_000, help="0: no VACUUM measurement")
    args = ap.parse_args()

    base = np.load(os.path.join(args.data, "base.f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(args.data, "query.f16.npy")).astype(np.float32)[: args.queries]
    extra = np.load(os.path.join(args.data, "extra.f16.npy")).astype(np.float32)
    truth = np.load(os.path.join(args.data, "gt_cos.i32.npy"))[: args.queries, :10].tolist()

    conns = open_systems(lambda c: (ensure_table(c, base), ensure_queries(c, queries)))

    report = []
    # Build
    build = {}
    for name, conn in conns.items():
        if args.skip_build and conn.execute("SELECT to_regclass(%s)", (f"{TABLE}_idx",)).fetchone()[0]:
            build[name] = None
            continue
        conn.execute(f"DROP INDEX IF EXISTS {TABLE}_idx")
        conn.execute("CHECKPOINT")
        conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
        conn.execute(f"SET max_parallel_maintenance_workers = {args.workers}")
        t0 = time.perf_counter()
        conn.execute(f"CREATE INDEX {TABLE}_idx ON {TABLE} USING hnsw (emb vector_cosine_ops) "
                     "WITH (m = 16, ef_construction = 64)")
        build[name] = time.perf_counter() - t0
        print(f"{name}: build {build[name]:.1f}s", flush=True)
    size = {name: c.execute(f"SELECT pg_relation_size('{TABLE}_idx')").fetchone()[0] for name, c in conns.items()}

    # Sweep
    sql = f"SELECT id FROM {TABLE} ORDER BY emb <=> %s LIMIT 10"
    for name, conn in conns.items():  # warm shared buffers and plans
        conn.execute("SET hnsw.ef_search = 400")
        run_queries(conn, sql, queries)
    # Each point: the median of --passes passes per system, alternating (one
    # pass at one ef_search moved by 20% between runs on this shared machine).
    sweep = {name: [] for name in conns}
    for ef in EFS:
        passes = {name: [] for name in conns}
        for i in range(args.passes):
            order = list(conns.items()) if i % 2 == 0 else list(reversed(conns.items()))
            for name, conn in order:
                conn.execute(f"SET hnsw.ef_search = {ef}")
                elapsed, found = run_queries(conn, sql, queries)
                passes[name].append((recall(found, truth), len(queries) / elapsed))
        for name in conns:
            sweep[name].append((ef, passes[name][0][0], float(np.median([q for _, q in passes[name]]))))
        print(f"ef {ef:4d}: " + "  ".join(f"{n} recall {sweep[n][-1][1]:.4f} {sweep[n][-1][2]:7.1f} q/s"
                                         for n in conns), flush=True)

    def cell(label, vx, pg, unit, higher_better=True):
        if vx is None or pg is None:
            report.append((label, vx, pg, unit, None))
            return
        report.append((label, vx, pg, unit, vx / pg if higher_better else pg / vx))

    for target in (0.95, 0.99):
        q = {n: interpolate([(r, qps) for _, r, qps in sweep[n]], target) for n in conns}
        cell(f"1 client QPS at recall {target}", q["vector_ext"], q["pgvector"], "q/s")
    for name, conn in conns.items():
        conn.execute("SET hnsw.ef_search = 40")
        check_pgbench_query(conn, sql, queries)
    for target in (0.95, 0.99):
        # five pgbench runs per system, alternating, and the median of each
        rounds = {name: [] for name in SYSTEMS}
        for i in range(5):
            order = list(SYSTEMS.items()) if i % 2 == 0 else list(reversed(SYSTEMS.items()))
            for name, (db, _) in order:
                ef = ef_for(sweep[name], target)
                if ef:
                    rounds[name].append(pgbench_throughput(db, len(queries), ef, 2, args.client_seconds))
        t = {name: float(np.median(r)) if r else None for name, r in rounds.items()}
        print(f"2 clients at recall {target}: " + "  ".join(
            f"{n} {' '.join(f'{x:.0f}' for x in r)} q/s" for n, r in rounds.items()), flush=True)
        cell(f"2 clients QPS at recall {target}", t["vector_ext"], t["pgvector"], "q/s")
    if build["vector_ext"] is not None:
        cell("build time (s)", build["vector_ext"], build["pgvector"], "s", higher_better=False)
    cell("index size (MiB)", size["vector_ext"] / 2**20, size["pgvector"] / 2**20, "MiB", higher_better=False)

    # Filtered, 1% selectivity, iterative scan
    mask = np.arange(len(base)) % 100 == 3
    fq = queries[:200]
    sims = (fq / np.linalg.norm(fq, axis=1, keepdims=True)) @ (base[mask] / np.linalg.norm(base[mask], axis=1, keepdims=True)).T
    ftruth = np.flatnonzero(mask)[np.argsort(-sims, axis=1)[:, :10]].tolist()
    fsql = f"SELECT id FROM {TABLE} WHERE cat = 3 ORDER BY emb <=> %s LIMIT 10"
    fres = {}
    for name, conn in conns.items():
        conn.execute("RESET hnsw.ef_search")
        conn.execute("SET hnsw.iterative_scan = relaxed_order")
        run_queries(conn, fsql, fq[:20])
    for name, conn in list(conns.items()) + list(reversed(conns.items())):
        elapsed, found = run_queries(conn, fsql, fq)
        prev = fres.get(name, (0.0, None))
        fres[name] = (prev[0] + elapsed / len(fq) / 2, found)
    for name in conns:
        print(f"{name}: filtered 1% recall {recall(fres[name][1], ftruth):.4f}, "
              f"{fres[name][0] * 1000:.2f} ms/query", flush=True)
    cell("filtered 1% recall@10 (relaxed_order, ef 40)", recall(fres["vector_ext"][1], ftruth),
         recall(fres["pgvector"][1], ftruth), "")
    cell("filtered 1% latency (ms)", fres["vector_ext"][0] * 1000, fres["pgvector"][0] * 1000, "ms",
         higher_better=False)

    # Inserts, from a checkpoint on: the first change of each page after a
    # checkpoint logs a full page image, the dominant cost of an insert
    # that touches ~35 index pages; both systems start from the same state.
    for conn in conns.values():
        conn.execute("CHECKPOINT")
    ins = {name: 0.0 for name in conns}
    chunk = 100
    for lo in range(0, args.inserts, chunk):
        order = list(conns.items()) if (lo // chunk) % 2 == 0 else list(reversed(conns.items()))
        for name, conn in order:
            t0 = time.perf_counter()
            for j in range(lo, lo + chunk):
                conn.execute(f"INSERT INTO {TABLE} VALUES (%s, %s, %s)", (200_000 + j, j % 100, extra[j]),
                             prepare=True)
            ins[name] += time.perf_counter() - t0
    for name, conn in conns.items():
        conn.execute(f"DELETE FROM {TABLE} WHERE id >= 200000")
        conn.execute(f"VACUUM {TABLE}")
    cell("single-row INSERT rows/s", args.inserts / ins["vector_ext"], args.inserts / ins["pgvector"], "rows/s")

    # VACUUM after deleting 10% of a copy, and recall on what remains
    if args.vacuum_rows:
        n = args.vacuum_rows
        keep = np.arange(n)[np.arange(n) % 10 != 0]
        kq = queries[:200]
        ksims = (kq / np.linalg.norm(kq, axis=1, keepdims=True)) @ (
            base[keep] / np.linalg.norm(base[keep], axis=1, keepdims=True)).T
        ktruth = keep[np.argsort(-ksims, axis=1)[:, :10]].tolist()
        vac, vrec = {}, {}
        for name, conn in conns.items():
            conn.execute("DROP TABLE IF EXISTS vac_copy")
            conn.execute(f"CREATE TABLE vac_copy AS SELECT * FROM {TABLE} WHERE id < {n}")
            conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
            conn.execute(f"SET max_parallel_maintenance_workers = {args.workers}")
            conn.execute("CREATE INDEX ON vac_copy USING hnsw (emb vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
            conn.execute("DELETE FROM vac_copy WHERE id % 10 = 0")
            conn.execute("CHECKPOINT")
            t0 = time.perf_counter()
            conn.execute("VACUUM vac_copy")
            vac[name] = time.perf_counter() - t0
            conn.execute("RESET hnsw.ef_search")
            conn.execute("RESET hnsw.iterative_scan")
            _, found = run_queries(conn, "SELECT id FROM vac_copy ORDER BY emb <=> %s LIMIT 10", kq)
            vrec[name] = recall(found, ktruth)
            conn.execute("DROP TABLE vac_copy")
            print(f"{name}: VACUUM after deleting 10% of {n} rows {vac[name]:.1f}s, "
                  f"then recall@10 {vrec[name]:.4f}", flush=True)
        cell(f"VACUUM after deleting 10% of {n // 1000}k rows (s)", vac["vector_ext"], vac["pgvector"], "s",
             higher_better=False)
        cell("recall@10 after that VACUUM (ef 40)", vrec["vector_ext"], vrec["pgvector"], "")

    print()
    print("| measure | vector_ext | pgvector | ratio (>1: vector_ext better) |")
    print("|---|---:|---:|---:|")
    for label, vx, pg, unit, ratio in report:
        f = (lambda v: "n/a" if v is None else f"{v:.4f}" if unit == "" else f"{v:.1f}")
        r = "n/a" if ratio is None else f"**{ratio:.2f}x**"
        print(f"| {label} | {f(vx)} | {f(pg)} | {r} |")
    print()
    print("| ef_search | vector_ext recall | vector_ext q/s | pgvector recall | pgvector q/s |")
    print("|---:|---:|---:|---:|---:|")
    for (ef, r1, q1), (_, r2, q2) in zip(sweep["vector_ext"], sweep["pgvector"]):
        print(f"| {ef} | {r1:.4f} | {q1:.1f} | {r2:.4f} | {q2:.1f} |")


if __name__ == "__main__":
    main()
