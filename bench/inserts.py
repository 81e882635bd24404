"""Insert throughput into an existing hnsw index: vector_ext against
pgvector, one system at a time on the same cluster, rounds alternating.

Each round loads --rows base rows of ds-a-npm-minilm (384-d), builds an
hnsw index (m = 16, ef_construction = 64) and inserts --inserts extra rows
through it, 100 rows a statement (executemany), one client: inserts per
second of wall time and of the backend's CPU. Two cases: cosine on the rows
as given, and inner product on the same rows scaled by a factor drawn from
0.5 to 2.5 (rows that are not unit length). For vector_ext it also reports
the elements no search reaches afterwards (vector_ext_index_check).
"""

import argparse
import time

import numpy as np

from exact_scan import connect, load
from hnsw import SYSTEMS, backend_cpu, open_systems

TABLE = "inserts"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="directory of ds-a-npm-minilm")
    ap.add_argument("--rows", type=int, default=30000)
    ap.add_argument("--inserts", type=int, default=6000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    base = np.load(f"{args.data}/base.f16.npy").astype(np.float32)[: args.rows]
    extra = np.load(f"{args.data}/extra.f16.npy").astype(np.float32)[: args.inserts]
    rng = np.random.default_rng(1)
    scale = rng.uniform(0.5, 2.5, size=(len(base) + len(extra), 1)).astype(np.float32)
    cases = {
        "cosine": ("vector_cosine_ops", base, extra),
        "inner product, scaled rows": ("vector_ip_ops", base * scale[: len(base)], extra * scale[len(base):]),
    }
    conns = open_systems(lambda c: None)
    results = {}
    for r in range(args.rounds):
        order = list(SYSTEMS) if r % 2 == 0 else list(reversed(SYSTEMS))
        for case, (opclass, rows, new) in cases.items():
            for system in order:
                c = conns[system]
                load(c, TABLE, rows)
                c.execute(f"CREATE INDEX {TABLE}_idx ON {TABLE} USING hnsw (emb {opclass}) "
                          "WITH (m = 16, ef_construction = 64)")
                cpu0, t0 = backend_cpu(c), time.perf_counter()
                with c.cursor() as cur:
                    for i in range(0, len(new), 100):
                        cur.executemany(f"INSERT INTO {TABLE} (id, emb) VALUES (%s, %s)",
                                        [(len(rows) + i + j, v) for j, v in enumerate(new[i:i + 100])])
                wall, cpu = time.perf_counter() - t0, backend_cpu(c) - cpu0
                unreachable = "-"
                if system == "vector_ext":
                    check = c.execute(f"SELECT vector_ext_index_check('{TABLE}_idx')").fetchone()[0]
                    unreachable = check["unreachable_elements"]
                results.setdefault((case, system), []).append((len(new) / wall, len(new) / cpu))
                print(f"round {r} {case} {system}: {len(new) / wall:.0f} inserts/s wall, "
                      f"{len(new) / cpu:.0f} per CPU second; unreachable {unreachable}", flush=True)
                c.execute(f"DROP TABLE {TABLE}")
    print("\n| case | system | inserts/s (wall) | inserts per backend CPU s |\n|---|---|---:|---:|")
    for (case, system), v in results.items():
        w, p = np.mean([x[0] for x in v]), np.mean([x[1] for x in v])
        print(f"| {case} | {system} | {w:.0f} | {p:.0f} |")


if __name__ == "__main__":
    main()
