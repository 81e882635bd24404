"""The ivfflat index through SQL on real embeddings (ds-a-npm-minilm,
384-d, a 20k-row subset): recall against exact ground truth at several
probes, filtered iterative scans, inserts after the build, and build
progress and cancellation. Crash, concurrency, corruption and replica
tests for both access methods are in test_index_reliability.py."""

import threading
import time

import numpy as np
import psycopg
import pytest

from helpers import K, OPS, QUERIES, ROWS, connect, exact, index_results, load, recall, table_of


@pytest.fixture(scope="module")
def items(data):
    yield from table_of("ivf_items", data[0])


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_recall_at_probes(data, items, metric):
    base, queries, _ = data
    opclass, op = OPS[metric]
    truth = exact(base, queries, metric)
    with connect() as c:
        c.execute(f"CREATE INDEX ivf_items_idx ON {items} USING ivfflat (emb {opclass}) WITH (lists = 100)")
        try:
            plan = c.execute(f"EXPLAIN SELECT id FROM {items} ORDER BY emb {op} %s LIMIT 10", (queries[0],)).fetchall()
            assert "Index Scan using ivf_items_idx" in "\n".join(r[0] for r in plan)
            got = {}
            for probes in [1, 10, 20, 100]:
                c.execute(f"SET ivfflat.probes = {probes}")
                got[probes] = recall(index_results(c, items, op, queries), truth)
                print(f"\n{metric}: recall@10 {got[probes]:.4f} at probes {probes} ({QUERIES} queries, {ROWS} rows)")
            # IVF with 10 of 100 lists reads ~12% of these rows and its
            # recall is bounded by what those lists hold: pgvector's own
            # ivfflat gets 0.853 (cosine) and 0.826 (l2) here; 0.9 takes
            # about 15 probes for both.
            assert got[10] >= 0.81
            assert got[20] >= 0.88
            assert got[1] < got[10] < got[20] <= got[100]
            # every list probed: an exact search (ties aside)
            assert got[100] >= 0.999
        finally:
            c.execute("DROP INDEX ivf_items_idx")


@pytest.mark.parametrize("column,modulus", [("cat10", 10), ("cat100", 100)])
def test_filtered_iterative_scan_returns_k_rows(data, items, column, modulus):
    base, queries, _ = data
    queries = queries[:100]
    where = f"WHERE {column} = 3"
    mask = np.arange(len(base)) % modulus == 3
    with connect() as c:
        c.execute(f"CREATE INDEX ivf_items_idx ON {items} USING ivfflat (emb vector_cosine_ops) WITH (lists = 100)")
        try:
            c.execute("SET ivfflat.probes = 10")
            c.execute("SET ivfflat.iterative_scan = relaxed_order")
            found = index_results(c, items, "<=>", queries, where)
            assert all(len(f) == K for f in found), [len(f) for f in found if len(f) < K][:5]
            assert all(i % modulus == 3 for f in found for i in f)
            r = recall(found, exact(base, queries, "cosine", mask=mask))
            print(f"\n{column} ({100 // modulus}%) relaxed_order: recall@10 {r:.4f}")
            # the first 10 lists hold few qualifying rows, and the scan stops
            # once they give 10: lower recall than unfiltered (0.85 here)
            assert r >= (0.7 if modulus == 10 else 0.55)
            # max_probes bounds the scan: one list of ~200 rows holds ~2 at 1%
            c.execute("SET ivfflat.probes = 1")
            c.execute("SET ivfflat.max_probes = 1")
            bounded = index_results(c, items, "<=>", queries[:20], where)
            c.execute("RESET ivfflat.max_probes")
            c.execute("SET ivfflat.iterative_scan = off")
            short = index_results(c, items, "<=>", queries[:20], where)
            assert bounded == short
            if modulus == 100:
                assert sum(len(f) for f in short) < 20 * K
        finally:
            c.execute("DROP INDEX ivf_items_idx")


def test_inserts_after_build_are_found(data):
    """Rows inserted after the build land in their nearest list and are
    found; the index agrees with an exact search when every list is
    probed."""
    base, queries, extra = data
    table = "ivf_inserts"
    with connect() as c:
        load(c, table, base[:2000])
        c.execute(f"CREATE INDEX ON {table} USING ivfflat (emb vector_l2_ops) WITH (lists = 40)")
        for j in range(1000):
            c.execute(f"INSERT INTO {table} VALUES (%s, 0, 0, %s)", (100_000 + j, extra[j]), prepare=True)
        c.execute("SET enable_seqscan = off")
        c.execute("SET ivfflat.probes = 1")
        own = f"SELECT id FROM {table} ORDER BY emb <-> %s LIMIT 1"
        assert all(c.execute(own, (extra[j],), prepare=True).fetchone()[0] == 100_000 + j for j in range(0, 1000, 10))
        c.execute("SET ivfflat.probes = 40")
        ids, vecs = zip(*c.execute(f"SELECT id, emb FROM {table}").fetchall())
        truth = np.array(ids)[exact(np.stack(vecs), queries[:50], "l2")]
        assert recall(index_results(c, table, "<->", queries[:50]), truth) >= 0.999
        c.execute(f"DROP TABLE {table}")


def test_build_reports_progress_and_cancels_quickly(items):
    """pg_stat_progress_create_index shows k-means, and a cancelled build
    stops within a second (interrupts are checked between parallel steps
    of k-means, even with many lists)."""
    seen = set()
    with connect() as builder, connect() as watcher:
        pid = builder.execute("SELECT pg_backend_pid()").fetchone()[0]
        result = {}

        def build():
            try:
                builder.execute("SET maintenance_work_mem = '1GB'")
                builder.execute(f"CREATE INDEX ivf_progress_idx ON {items} USING ivfflat (emb) WITH (lists = 4000)")
                result["ok"] = True
            except psycopg.errors.QueryCanceled:
                result["cancelled"] = time.perf_counter()

        t = threading.Thread(target=build)
        t.start()
        started = None
        while t.is_alive():
            row = watcher.execute("SELECT phase FROM pg_stat_progress_create_index WHERE pid = %s", (pid,)).fetchone()
            if row:
                seen.add(row[0])
                if row[0] == "building index: performing k-means":
                    started = started or time.perf_counter()
                    if time.perf_counter() - started > 0.5:
                        break
            time.sleep(0.01)
        assert "building index: performing k-means" in seen, seen
        cancel = time.perf_counter()
        watcher.execute("SELECT pg_cancel_backend(%s)", (pid,))
        t.join()
        assert "cancelled" in result, result
        print(f"\nphases seen: {sorted(seen)}; cancelled after {result['cancelled'] - cancel:.3f}s")
        assert result["cancelled"] - cancel < 1.0
        assert watcher.execute("SELECT to_regclass('ivf_progress_idx')").fetchone()[0] is None
