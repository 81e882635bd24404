"""hnsw used the way users do, on data the suite generates itself:
concurrent first inserts into a new index, inner product on vectors that
are not unit length, duplicates with a narrow search, the build's
parallelism settings and its parallel inserts on pages."""

import os
import re
import threading
import time

import numpy as np
import pytest

import ip_data
from helpers import connect, exact, index_results, load, load_data, recall


def index_check(conn, index):
    return conn.execute("SELECT vector_ext_index_check(%s::regclass)", (index,)).fetchone()[0]


@pytest.mark.parametrize("options", ["", " WITH (quantization = rabitq)"])
def test_concurrent_first_inserts_are_all_found(options):
    """10 clients insert one row each at the same moment into an empty
    index: every row must be found by a plain (not iterative) index scan,
    and the index check must find every element reachable. The first
    inserts all search an empty graph; before the fix only the first to set
    the entry point was linked (up to 9 of 10 rows lost in a round). The
    clients wait on an advisory lock the test holds, so that releasing it
    starts all ten inserts at once (a Python barrier lined them up too
    loosely to overlap on two cores). Also for an index of RaBitQ codes."""
    clients, rounds, dim = 10, 30, 16
    rng = np.random.default_rng(17)
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS hnsw_first_inserts")
        c.execute(f"CREATE TABLE hnsw_first_inserts (id int, v vector({dim}))")
        c.execute(f"CREATE INDEX hnsw_first_inserts_idx ON hnsw_first_inserts USING hnsw (v vector_l2_ops){options}")
        conns = [connect() for _ in range(clients)]
        errors = []

        def insert(conn, row, vector):
            try:
                conn.execute("INSERT INTO hnsw_first_inserts SELECT %s, %s "
                             "FROM (SELECT pg_advisory_xact_lock_shared(1717)) l", (row, vector))
            except Exception as e:  # reported below, not lost in the thread
                errors.append(e)

        c.execute("SET enable_seqscan = off")
        bad_rounds = []
        for r in range(rounds):
            c.execute("TRUNCATE hnsw_first_inserts")
            vectors = rng.random((clients, dim), dtype=np.float32)
            c.execute("SELECT pg_advisory_lock(1717)")
            threads = [threading.Thread(target=insert, args=(conns[i], i, vectors[i])) for i in range(clients)]
            for t in threads:
                t.start()
            while c.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                            "AND objid = 1717 AND NOT granted").fetchone()[0] < clients:
                time.sleep(0.002)
            c.execute("SELECT pg_advisory_unlock(1717)")
            for t in threads:
                t.join()
            assert not errors, errors
            found = c.execute("SELECT count(*) FROM (SELECT id FROM hnsw_first_inserts "
                              "ORDER BY v <-> (SELECT v FROM hnsw_first_inserts LIMIT 1)) t").fetchone()[0]
            check = index_check(c, "hnsw_first_inserts_idx")
            if found != clients or not check["ok"] or check["unreachable_elements"] != 0:
                bad_rounds.append((r, found, check))
        for conn in conns:
            conn.close()
        assert not bad_rounds, f"{len(bad_rounds)} of {rounds} rounds lost rows: {bad_rounds[:3]}"


# pgvector 0.8.6's recall@10 at ef_search 40 on the same rows in the order
# this test loads them, index built in memory with default settings (mean of
# three builds, which spread over 0.003 to 0.01: its level draw is random).
PGVECTOR_RECALL = {
    ("uniform3", "vector"): 0.9630,
    ("uniform3", "halfvec"): 0.9585,
    ("spread64", "vector"): 0.8012,
    ("spread64", "halfvec"): 0.8043,
    ("sparse1000", "sparsevec"): 0.8943,
}
# vector_ext's in-memory build measured 0.0013 to 0.0096 below those means
# (its insert path: -0.0025 to +0.008); over eight row orders it is 0.1-0.6
# points under pgvector's mean, the price of the repair that makes every row
# reachable (`bash bench/run.sh ip`, bench/README.md). The test holds it
# within this of pgvector. Before the fix it reached 0.48 (spread64), 0.64-0.72 (uniform3)
# and 0.76 (sparse1000, pgvector 0.90).
BELOW_PGVECTOR = 0.015
# An index of RaBitQ codes (four bits, around zero for inner products):
# 0.9615 / 0.9610 on uniform3, 0.7895 / 0.7880 on spread64.
BELOW_PGVECTOR_CODES = 0.02


@pytest.mark.parametrize("name,typ,opclass,options", [c + ("",) for c in ip_data.CASES] + [
    (name, typ, opclass, " WITH (quantization = rabitq)")
    for name, typ, opclass in ip_data.CASES if typ != "sparsevec"])
def test_inner_product_recall_on_rows_of_varied_norms(name, typ, opclass, options):
    """Inner product on rows that are not unit length: an index built in
    memory finds at least what pgvector's finds on the same rows (the build
    used to reach half of it: linking in rows no search reached evicted the
    links of the longest vectors), every element stays reachable, and a
    VACUUM keeps the recall (its repair did the same damage). An index of
    RaBitQ codes (rows re-ranked by their vectors) does the same."""
    base, queries = ip_data.DATASETS[name]()
    expected = ip_data.truth(base, queries, typ)
    table = f"ip_{name}_{typ}"
    with connect() as c:
        ip_data.load(c, table, base, typ)
        c.execute(f"CREATE INDEX {table}_idx ON {table} USING hnsw (v {opclass}){options}")
        c.execute("SET enable_seqscan = off")
        built = ip_data.recall_at(c, table, queries, typ, expected)
        check = index_check(c, f"{table}_idx")
        c.execute(f"DELETE FROM {table} WHERE id % 50 = 0")
        c.execute(f"VACUUM {table}")
        kept = ip_data.truth(base[np.arange(len(base)) % 50 != 0], queries, typ)
        ids = np.flatnonzero(np.arange(len(base)) % 50 != 0)
        after = ip_data.recall_at(c, table, queries, typ, ids[kept])
        after_check = index_check(c, f"{table}_idx")
        c.execute(f"DROP TABLE {table}")
    floor = PGVECTOR_RECALL[(name, typ)]
    print(f"\n{name} {typ}{options}: recall@10 {built:.4f} (pgvector {floor}), after VACUUM {after:.4f}")
    assert check["ok"] and check["unreachable_elements"] == 0, check
    assert after_check["ok"], after_check
    # codes guide the walk by estimates, widest in error at 64 dimensions
    below = BELOW_PGVECTOR if not options else BELOW_PGVECTOR_CODES
    assert built >= floor - below, (built, floor)
    assert after >= built - 0.02, (after, built)


def worker_messages(c, table, am, definition):
    """Sets up `c` for the build-worker tests (at most two workers, 256MB)
    and returns a function that rebuilds `table`'s index and gives the
    DEBUG1 `using N parallel workers` messages of that build."""
    messages = []
    c.add_notice_handler(lambda d: messages.append(d.message_primary))
    c.execute("SET max_parallel_maintenance_workers = 2")
    c.execute("SET maintenance_work_mem = '256MB'")

    def build():
        c.execute(f"DROP INDEX IF EXISTS {table}_idx")
        messages.clear()
        c.execute("SET client_min_messages = debug1")
        c.execute(f"CREATE INDEX {table}_idx ON {table} USING {am} {definition}")
        c.execute("RESET client_min_messages")
        return [m for m in messages if m.startswith("using ")]

    return build


@pytest.mark.parametrize("am,opclass", [("hnsw", "vector_l2_ops"), ("ivfflat", "vector_l2_ops")])
def test_build_parallelism_follows_the_tables_parallel_workers(am, opclass):
    """A build uses the workers Postgres plans for the table, as pgvector's
    do: the `parallel_workers` storage parameter when set (capped by
    max_parallel_maintenance_workers), none for a table below
    min_parallel_table_scan_size; DEBUG1 says `using N parallel workers` in
    pgvector's words whenever it uses any (at most one a core besides the
    backend)."""
    cores = os.cpu_count() or 1
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS build_workers")
        c.execute("CREATE TABLE build_workers (v vector(3))")
        c.execute("INSERT INTO build_workers SELECT ARRAY[random(), random(), random()] "
                  "FROM generate_series(1, 3000)")
        build_messages = worker_messages(c, "build_workers", am, f"(v {opclass})")

        def build(parallel_workers):
            if parallel_workers is None:
                c.execute("ALTER TABLE build_workers RESET (parallel_workers)")
            else:
                c.execute(f"ALTER TABLE build_workers SET (parallel_workers = {parallel_workers})")
            return build_messages()

        assert build(None) == [], "a small table builds on the backend alone"
        assert build(0) == []
        assert build(1) == ["using 1 parallel workers"]
        # capped by max_parallel_maintenance_workers, then by the cores
        assert build(8) == [f"using {min(2, cores - 1)} parallel workers"] if cores > 1 else []
        c.execute("SET max_parallel_maintenance_workers = 0")
        assert build(1) == [], "max_parallel_maintenance_workers = 0 means none"
        c.execute("DROP TABLE build_workers")


@pytest.mark.parametrize("am,definition", [
    ("hnsw", "(v vector_l2_ops) WITH (quantization = 'rabitq')"),
    ("ivfflat", "((v::halfvec(2100)) halfvec_l2_ops)"),
])
def test_build_parallelism_counts_the_tables_toasted_vectors(am, definition):
    """Vectors too long for a page (more than about 2,000 dimensions) live
    in the table's TOAST relation, which Postgres' size rule does not
    count: a build counts it, so a table of long vectors gets the workers
    its size calls for
    (unless its parallel_workers parameter or the settings say none)."""
    cores = os.cpu_count() or 1
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS toasted_workers")
        c.execute("CREATE TABLE toasted_workers (v vector(2100))")
        # 300 rows of 8.4 KB: about 320 TOAST pages, a few heap pages
        c.execute("INSERT INTO toasted_workers SELECT ARRAY(SELECT random() FROM generate_series(1, 2100 + i * 0)) "
                  "FROM generate_series(1, 300) i")
        heap, toast = c.execute(
            "SELECT pg_relation_size(oid) / 8192, pg_relation_size(reltoastrelid) / 8192 "
            "FROM pg_class WHERE relname = 'toasted_workers'").fetchone()
        assert heap < 16 and 250 < toast < 384, (heap, toast)
        build = worker_messages(c, "toasted_workers", am, definition)
        c.execute("SET min_parallel_table_scan_size = '1MB'")  # 128 pages

        assert build() == (["using 1 parallel workers"] if cores > 1 else [])
        c.execute("SET min_parallel_table_scan_size = '8MB'")
        assert build() == [], "below min_parallel_table_scan_size with its TOAST pages"
        c.execute("SET min_parallel_table_scan_size = '1MB'")
        c.execute("ALTER TABLE toasted_workers SET (parallel_workers = 0)")
        assert build() == [], "the table's parallel_workers = 0 is kept"
        c.execute("ALTER TABLE toasted_workers RESET (parallel_workers)")
        c.execute("SET max_parallel_maintenance_workers = 0")
        assert build() == []
        c.execute("DROP TABLE toasted_workers")


def test_a_build_past_maintenance_work_mem_inserts_on_pages_beside_its_worker():
    """A build whose graph outgrows maintenance_work_mem goes on inserting
    rows into the graph on pages, the leader and its parallel worker
    together, each taking the next 32 heap blocks in turn (before, the
    backend inserted them alone). The worker inserts rows (DEBUG1 says how
    many), leader and worker insert every row the graph did not take, the
    build then links back what the inserts left unreachable (serial or
    parallel) so that the index check finds every element reachable, and
    recall is the build's on the backend alone (within 0.03)."""
    base, queries, _ = load_data()
    rows, queries = base[:4000], queries[:100]
    truth = exact(rows, queries, "l2")
    found = {}
    with connect() as c:
        load(c, "hnsw_parts", rows)
        messages = []
        c.add_notice_handler(lambda d: messages.append(d.message_primary))
        c.execute("SET maintenance_work_mem = '1MB'")
        c.execute("SET max_parallel_maintenance_workers = 1")
        for workers in (0, 1):
            c.execute(f"ALTER TABLE hnsw_parts SET (parallel_workers = {workers})")
            c.execute("DROP INDEX IF EXISTS hnsw_parts_idx")
            messages.clear()
            c.execute("SET client_min_messages = debug1")
            c.execute("CREATE INDEX hnsw_parts_idx ON hnsw_parts USING hnsw (emb vector_l2_ops) "
                      "WITH (m = 8, ef_construction = 32)")
            c.execute("RESET client_min_messages")
            text = "\n".join(messages)
            in_memory = int(re.search(r"no longer fits into maintenance_work_mem after (\d+) tuples", text)[1])
            by_worker = [int(n) for n in re.findall(r"a parallel worker inserted (\d+) rows on pages", text)]
            by_leader = re.search(r"the leader inserted (\d+) rows on pages beside (\d+) parallel workers", text)
            if workers == 0:
                assert not by_worker and not by_leader, text
            else:
                assert by_leader and by_leader[2] == "1" and len(by_worker) == 1, text
                assert by_worker[0] > 0, text
                assert in_memory + int(by_leader[1]) + by_worker[0] == len(rows), text
            relinked = re.search(r"linked back (\d+) unreachable elements", text)
            assert relinked, text
            check = index_check(c, "hnsw_parts_idx")
            # on-page inserts racing each other (or a link-back evicting
            # an element's last in-link) leave the odd element unreachable
            # (1 or 2 of 4000 here); the build links them back
            assert check["ok"], check["problems"]
            assert check["heap_tids"] == len(rows), check
            assert check["unreachable_elements"] == 0, check
            c.execute("SET enable_seqscan = off")
            c.execute("SET hnsw.ef_search = 40")
            found[workers] = recall(index_results(c, "hnsw_parts", "<->", queries), truth)
            c.execute("RESET enable_seqscan")
            c.execute("RESET hnsw.ef_search")
            print(f"\n{workers} workers: recall@10 {found[workers]:.4f}, {relinked[1]} relinked")
        c.execute("DROP TABLE hnsw_parts")
    assert found[0] >= 0.9, found
    assert found[1] >= found[0] - 0.03, found
