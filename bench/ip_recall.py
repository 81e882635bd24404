"""Inner-product recall on non-normalised rows: vector_ext against pgvector
on the same generated rows (tests/python/ip_data.py), in one cluster.

For every case (uniform 3-d, 64-d with norms 1x to 7x, sparse 1000-d; vector,
halfvec, sparsevec) and build (in memory; the insert path,
maintenance_work_mem = 1MB), each system builds the index over the rows
loaded in `--orders` different orders (the first as generated, the others
shuffled with fixed seeds), and reports recall@10 at the default ef_search
(40) against exact inner product: the mean over orders, its range and the
standard error of the mean. A build's recall depends on the level draw
(vector_ext's is seeded by the row's place in the heap, pgvector's is random
per build), so one build says little below about 0.01. The suite's test
(tests/python/test_hnsw_correctness.py) asserts a bar under the pgvector
means this prints.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import ip_data  # noqa: E402
from hnsw import open_systems  # noqa: E402

BUILDS = {
    "in memory": "64MB",
    "insert path": "1MB",
}


def summary(r):
    r = np.asarray(r)
    se = r.std(ddof=1) / np.sqrt(len(r)) if len(r) > 1 else 0.0
    return f"{r.mean():.4f} +- {se:.4f} ({r.min():.4f}-{r.max():.4f})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--orders", type=int, default=5)
    ap.add_argument("--cases", default="", help="comma-separated data sets (default: all)")
    args = ap.parse_args()
    conns = open_systems(lambda c: None)
    wanted = set(filter(None, args.cases.split(",")))
    for name, typ, opclass in ip_data.CASES:
        if wanted and name not in wanted:
            continue
        base, queries = ip_data.DATASETS[name]()
        expected = ip_data.truth(base, queries, typ)
        got = {(b, s): [] for b in BUILDS for s in conns}
        for order in range(args.orders):
            perm = np.arange(len(base)) if order == 0 else np.random.default_rng(1000 + order).permutation(len(base))
            for c in conns.values():
                ip_data.load(c, "ip_recall", base, typ, order=perm)
            for build, mwm in BUILDS.items():
                for system, c in conns.items():
                    c.execute("DROP INDEX IF EXISTS ip_recall_idx")
                    c.execute(f"SET maintenance_work_mem = '{mwm}'")
                    c.execute("SET max_parallel_maintenance_workers = 0")
                    c.execute("SET client_min_messages = warning")
                    c.execute(f"CREATE INDEX ip_recall_idx ON ip_recall USING hnsw (v {opclass})")
                    c.execute("SET enable_seqscan = off")
                    got[(build, system)].append(ip_data.recall_at(c, "ip_recall", queries, typ, expected))
        for build in BUILDS:
            line = ", ".join(f"{s} {summary(got[(build, s)])}" for s in conns)
            print(f"{name} {typ} {build}: {line}", flush=True)


if __name__ == "__main__":
    main()
