"""Planner choice for `ORDER BY v <-> $1 LIMIT 10` on hnsw-indexed tables:
which plan each system's cost estimate picks (index scan or sequential scan
plus top-N sort) against the measured time of both, across table sizes and
dimensions (random normal vectors, vector_l2_ops, default index options,
ANALYZEd). Each plan is timed as the median of --queries executions of
prepared statements, one query vector each, after a pass over the same
queries (steady state: what they read is cached, as for a served index); the
sequential plan is forced with enable_indexscan = off, the index plan with
enable_seqscan = off. Systems alternate per table.
"""

import argparse
import time

import numpy as np

from hnsw import open_systems

GRID = [(3, [1000, 10_000, 100_000, 1_000_000]),
        (32, [1000, 10_000, 100_000, 1_000_000]),
        (384, [1000, 2000, 5000, 10_000, 50_000, 100_000]),
        (1536, [500, 1000, 2000, 5000, 20_000]),
        (2000, [1000, 2000, 5000])]


def make_table(conn, name, base):
    if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0] is not None:
        indexed = conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", (name,)).fetchone()[0]
        if indexed and conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == len(base):
            return
        conn.execute(f"DROP TABLE {name}")
    conn.execute(f"CREATE TABLE {name} (id int, v vector({base.shape[1]}))")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {name} (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "vector"])
            for i, v in enumerate(base):
                copy.write_row([i, v])
    conn.execute("SET maintenance_work_mem = '2GB'")
    conn.execute(f"CREATE INDEX ON {name} USING hnsw (v vector_l2_ops)")
    conn.execute(f"VACUUM ANALYZE {name}")


def plan_of(conn, sql, q):
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + sql, (q,)).fetchone()[0][0]["Plan"]
    text = str(plan)
    return ("index" if "Index Scan" in text else "seq"), plan["Total Cost"]


def timed(conn, sql, queries, plan):
    """Median milliseconds of `sql` over `queries`, checked to run `plan`.
    Each plan gets a statement text of its own: a prepared statement keeps
    the plan it was made with when enable_* settings change."""
    sql = f"{sql} /* {plan} */"
    assert plan_of(conn, sql, queries[0])[0] == plan, (sql, plan)
    for q in queries:  # steady state: what these queries read is cached
        conn.execute(sql, (q,), prepare=True).fetchall()
    times = []
    for q in queries:
        t0 = time.perf_counter()
        conn.execute(sql, (q,), prepare=True).fetchall()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--max-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    conns = open_systems(lambda c: None)
    rng = np.random.default_rng(5)
    print("| dims | rows | vector_ext picks | index ms | seq ms | faster | pgvector picks | index ms | seq ms | faster |")
    print("|---:|---:|---|---:|---:|---|---|---:|---:|---|")
    for dims, sizes in GRID:
        for rows in sizes:
            if rows > args.max_rows:
                continue
            base = rng.standard_normal((rows, dims), dtype=np.float32)
            queries = rng.standard_normal((args.queries, dims), dtype=np.float32)
            name = f"plan_{dims}_{rows}"
            sql = f"SELECT id FROM {name} ORDER BY v <-> %s LIMIT 10"
            cells = []
            for system, c in conns.items():
                make_table(c, name, base)
                c.execute("RESET ALL")
                chosen, cost = plan_of(c, sql, queries[0])
                c.execute("SET enable_seqscan = off")
                index_plan = plan_of(c, sql, queries[0])
                index_ms = timed(c, sql, queries, "index")
                c.execute("RESET enable_seqscan")
                c.execute("SET enable_indexscan = off")
                seq_plan = plan_of(c, sql, queries[0])
                seq_ms = timed(c, sql, queries, "seq")
                c.execute("RESET enable_indexscan")
                faster = "index" if index_ms < seq_ms else "seq"
                mark = "" if chosen == faster else " (wrong)"
                cells += [f"{chosen}{mark} ({index_plan[1]:.0f} vs {seq_plan[1]:.0f})", f"{index_ms:.2f}",
                          f"{seq_ms:.2f}", faster]
            print(f"| {dims} | {rows} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
