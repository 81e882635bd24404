"""hnsw used the way users do, on data the suite generates itself:
concurrent first inserts into a new index."""

import threading
import time

import numpy as np

from helpers import connect


def index_check(conn, index):
    return conn.execute("SELECT vector_ext_index_check(%s::regclass)", (index,)).fetchone()[0]


def test_concurrent_first_inserts_are_all_found():
    """10 clients insert one row each at the same moment into an empty
    index: every row must be found by a plain (not iterative) index scan,
    and the index check must find every element reachable. The first
    inserts all search an empty graph; before the fix only the first to set
    the entry point was linked (up to 9 of 10 rows lost in a round). The
    clients wait on an advisory lock the test holds, so that releasing it
    starts all ten inserts at once (a Python barrier lined them up too
    loosely to overlap on two cores)."""
    clients, rounds, dim = 10, 30, 16
    rng = np.random.default_rng(17)
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS hnsw_first_inserts")
        c.execute(f"CREATE TABLE hnsw_first_inserts (id int, v vector({dim}))")
        c.execute("CREATE INDEX hnsw_first_inserts_idx ON hnsw_first_inserts USING hnsw (v vector_l2_ops)")
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

