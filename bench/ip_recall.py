"""Inner-product recall on non-normalised rows: vector_ext against pgvector
on the same generated rows (tests/python/ip_data.py), in one cluster.

For every case (uniform 3-d, 64-d with norms 1x to 7x, sparse 1000-d; vector,
halfvec, sparsevec) and build (in memory with the default parallel workers;
in memory on one thread; the insert path, maintenance_work_mem = 1MB), each
system builds the index `--builds` times (parallel builds vary) and reports
recall@10 at the default ef_search (40) against exact inner product. The
suite's test (tests/python/test_hnsw_correctness.py) asserts at least the
pgvector figures this prints.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
import ip_data  # noqa: E402
from hnsw import open_systems  # noqa: E402

BUILDS = {
    "parallel": ("64MB", 2),
    "serial": ("64MB", 0),
    "insert path": ("1MB", 0),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--builds", type=int, default=3)
    args = ap.parse_args()
    conns = open_systems(lambda c: None)
    for name, typ, opclass in ip_data.CASES:
        base, queries = ip_data.DATASETS[name]()
        expected = ip_data.truth(base, queries, typ)
        for system, c in conns.items():
            ip_data.load(c, "ip_recall", base, typ)
        for build, (mwm, workers) in BUILDS.items():
            got = {s: [] for s in conns}
            for _ in range(args.builds if workers else 1):
                for system, c in conns.items():
                    c.execute("DROP INDEX IF EXISTS ip_recall_idx")
                    c.execute(f"SET maintenance_work_mem = '{mwm}'")
                    c.execute(f"SET max_parallel_maintenance_workers = {workers}")
                    c.execute("SET client_min_messages = warning")
                    c.execute(f"CREATE INDEX ip_recall_idx ON ip_recall USING hnsw (v {opclass})")
                    c.execute("SET enable_seqscan = off")
                    got[system].append(ip_data.recall_at(c, "ip_recall", queries, typ, expected))
            line = ", ".join(f"{s} {np.mean(r):.4f} ({min(r):.4f}-{max(r):.4f})" for s, r in got.items())
            print(f"{name} {typ} {build}: {line}", flush=True)


if __name__ == "__main__":
    main()
