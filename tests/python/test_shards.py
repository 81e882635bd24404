"""Sharded kNN through postgres_fdw (scripts/shards.sh, docs/sharding.md):
three loopback shards behind a coordinator, a table partitioned by hash of
its key over foreign tables, an hnsw index on each shard. The coordinator's
kNN results are checked against exact search over all rows and against one
node's index on the same rows; the plans, the settings that reach the shards,
filters, joins, writes and a shard that is down are checked too."""

import os
import re
import subprocess
import time

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from helpers import ROOT, connect, exact, load, recall

SHARDS = 3
ROWS = 6000
COORD_DB = "vector_ext_shards_test"
KNN = "SELECT id FROM items ORDER BY emb <=> %s LIMIT 10"
# the form whose shard scans run at the same time: each shard's top 10
# (LIMIT reaches the shards), merged on the coordinator
KNN_ASYNC = ("WITH per_shard AS MATERIALIZED ("
             + " UNION ALL ".join(f"(SELECT id, emb <=> %(q)s AS d FROM items_{k} ORDER BY d LIMIT 10)"
                                  for k in range(1, SHARDS + 1))
             + ") SELECT id FROM per_shard ORDER BY d LIMIT 10")


def shards(*args):
    env = dict(os.environ, VECTOR_EXT_COORDINATOR_DB=COORD_DB)
    return subprocess.run(["bash", str(ROOT / "scripts" / "shards.sh"), *args], env=env, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def coordinator():
    c = psycopg.connect(f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={COORD_DB}",
                        autocommit=True)
    register_vector(c)
    return c


def shard(k):
    port = int(os.environ["PGPORT"]) + 10 + k
    return psycopg.connect(f"host={os.environ['PGHOST']} port={port} user=postgres dbname=vector_ext_shard",
                           autocommit=True)


@pytest.fixture(scope="module")
def sharded(data):
    """The shards and the coordinator's `items` (rows 0..ROWS of the fixture,
    cat10 = id % 10), and `items_local`, the same rows in one node's table
    with the same index."""
    with connect() as c:
        fdw = c.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgres_fdw'").fetchone()[0]
    if not fdw:
        pytest.skip("postgres_fdw is not installed for this PostgreSQL")
    base, queries, extra = data
    shards("start", str(SHARDS))
    try:
        shards("each", "DROP TABLE IF EXISTS items; "
                       "CREATE TABLE items (id int PRIMARY KEY, cat10 int, cat100 int, emb vector(384))")
        with coordinator() as c:
            c.execute("DROP TABLE IF EXISTS items")
            c.execute("CREATE TABLE items (id int, cat10 int, cat100 int, emb vector(384)) PARTITION BY HASH (id)")
            for k in range(1, SHARDS + 1):
                c.execute(f"CREATE FOREIGN TABLE items_{k} PARTITION OF items "
                          f"FOR VALUES WITH (MODULUS {SHARDS}, REMAINDER {k - 1}) "
                          f"SERVER shard{k} OPTIONS (table_name 'items')")
            with c.cursor() as cur:
                with cur.copy("COPY items (id, cat10, cat100, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
                    copy.set_types(["int4", "int4", "int4", "vector"])
                    for i, v in enumerate(base[:ROWS]):
                        copy.write_row([i, i % 10, i % 100, v])
            load(c, "items_local", base[:ROWS])
            c.execute("CREATE INDEX ON items_local USING hnsw (emb vector_cosine_ops)")
        shards("each", "CREATE INDEX ON items USING hnsw (emb vector_cosine_ops); ANALYZE items")
        with coordinator() as c:
            # the coordinator's estimates of its foreign tables (sampled from
            # the shards): without them it does not send LIMIT to the shards
            c.execute("ANALYZE items")
        yield base[:ROWS], queries[:100], extra
    finally:
        shards("destroy")


def knn(c, sql, queries):
    return [[r[0] for r in c.execute(sql, (q,) if "%s" in sql else {"q": q}, prepare=True).fetchall()]
            for q in queries]


def set_on_shards(c, name, value):
    updated = c.execute("UPDATE shard_settings SET setting = %s WHERE name = %s", (value, name)).rowcount
    assert updated == SHARDS


def explain(c, sql, params):
    """The plan, each query vector shown as [...]."""
    plan = "\n".join(r[0] for r in c.execute("EXPLAIN (VERBOSE, COSTS OFF) " + sql, params))
    return re.sub(r"'\[[^\]]*\]'", "'[...]'", plan)


def test_rows_are_spread_over_the_shards(sharded):
    counts = []
    for k in range(1, SHARDS + 1):
        with shard(k) as s:
            counts.append(s.execute("SELECT count(*) FROM items").fetchone()[0])
    assert sum(counts) == ROWS
    assert min(counts) > ROWS / SHARDS * 0.9, counts


def test_knn_across_shards_is_exact_and_at_least_one_nodes_recall(sharded):
    base, queries, _ = sharded
    truth = exact(base, queries, "cosine")
    with coordinator() as c:
        c.execute("SET hnsw.ef_search = 40")
        single = recall(knn(c, "SELECT id FROM items_local ORDER BY emb <=> %s LIMIT 10", queries), truth)
        for form in (KNN, KNN_ASYNC):
            set_on_shards(c, "hnsw.ef_search", "40")
            got = recall(knn(c, form, queries), truth)
            # each shard searches a third of the rows with the same ef_search
            assert got >= single - 0.01, (got, single)
            assert got > 0.9, got
            # with a search wide enough, the merge is exact: the same rows
            # and distances as an exact scan over all of them
            set_on_shards(c, "hnsw.ef_search", "400")
            found = knn(c, form, queries[:20])
            assert recall(found, truth[:20]) == 1.0
        c.execute("SET enable_indexscan = off")
        for q, f in zip(queries[:20], found):
            d = [r[0] for r in c.execute("SELECT emb <=> %s FROM items WHERE id = ANY(%s)", (q, f))]
            want = [r[0] for r in c.execute("SELECT emb <=> %s AS d FROM items_local ORDER BY d LIMIT 10", (q,))]
            assert sorted(d) == pytest.approx(want, abs=1e-6)


def idx_stats(k):
    """(index scans, index tuples read) of items' index on shard k."""
    with shard(k) as s:
        s.execute("SELECT pg_stat_clear_snapshot()")
        return s.execute("SELECT idx_scan, idx_tup_read FROM pg_stat_user_indexes "
                         "WHERE indexrelname = 'items_emb_idx'").fetchone()


def test_order_by_reaches_every_shard_which_returns_a_bounded_number_of_rows(sharded):
    _, queries, _ = sharded
    q = queries[0]
    with coordinator() as c:
        plan = explain(c, KNN, (q,))
        remote = [line for line in plan.splitlines() if "Remote SQL" in line]
        assert len(remote) == SHARDS, plan
        assert all("ORDER BY (emb OPERATOR(public.<=>)" in line for line in remote), plan
        plan = explain(c, KNN_ASYNC, {"q": q})
        assert plan.count("Async Foreign Scan") == SHARDS, plan
        remote = [line for line in plan.splitlines() if "Remote SQL" in line]
        assert all("LIMIT 10" in line for line in remote), plan
    for form, most in ((KNN, 100), (KNN_ASYNC, 10)):
        before = [idx_stats(k) for k in range(1, SHARDS + 1)]
        with coordinator() as c:
            assert len(knn(c, form, [q])[0]) == 10
        # the shards' backends flush their statistics as they exit, when the
        # coordinator's session that opened them ends
        time.sleep(1)
        after = [idx_stats(k) for k in range(1, SHARDS + 1)]
        for k, (b, a) in enumerate(zip(before, after), start=1):
            # one index scan on each shard, which returned at most a fetch
            # (fetch_size, 100 rows) or the LIMIT, of its ~2000 rows
            assert a[0] - b[0] == 1, (form, k, b, a)
            assert 0 < a[1] - b[1] <= most, (form, k, b, a)


def test_settings_reach_the_shards_per_session_and_per_transaction(sharded):
    base, queries, _ = sharded
    truth = exact(base, queries, "cosine")
    with coordinator() as c:
        # an hnsw scan returns at most ef_search rows unless it is iterative:
        # 3 a shard, 9 in all
        set_on_shards(c, "hnsw.ef_search", "3")
        set_on_shards(c, "hnsw.iterative_scan", "off")
        rows = c.execute("SELECT name, setting FROM shard_settings WHERE name LIKE 'hnsw.%' ORDER BY 1").fetchall()
        assert rows.count(("hnsw.ef_search", "3")) == SHARDS
        assert all(len(f) == 3 * SHARDS for f in knn(c, KNN, queries[:20]))
        # the coordinator's own setting does not reach the shards
        c.execute("SET hnsw.iterative_scan = relaxed_order")
        assert all(len(f) == 3 * SHARDS for f in knn(c, KNN, queries[:20]))
        # set on the shards for one transaction, an iterative scan finds 10
        with c.transaction():
            set_on_shards(c, "hnsw.iterative_scan", "relaxed_order")
            found = knn(c, KNN, queries)
            assert all(len(f) == 10 for f in found)
            assert recall(found, truth) > 0.8
            raise psycopg.Rollback()
        # undone with the transaction, as SET
        rows = c.execute("SELECT setting FROM shard_settings WHERE name = 'hnsw.iterative_scan'").fetchall()
        assert rows == [("off",)] * SHARDS
        assert all(len(f) == 3 * SHARDS for f in knn(c, KNN, queries[:20]))
        # a bad value is refused on the shard with SET's error
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="hnsw.ef_search"):
            c.execute("UPDATE shard_settings SET setting = '0' WHERE name = 'hnsw.ef_search'")
    # a new coordinator session gets new shard sessions, with the defaults
    with coordinator() as c:
        rows = c.execute("SELECT setting FROM shard_settings WHERE name = 'hnsw.ef_search'").fetchall()
        assert rows == [("40",)] * SHARDS


def test_filters_joins_and_writes_go_through_the_coordinator(sharded):
    base, queries, extra = sharded
    cat = np.arange(ROWS) % 10 == 7
    truth = exact(base, queries, "cosine", mask=cat)
    with coordinator() as c:
        set_on_shards(c, "hnsw.iterative_scan", "relaxed_order")
        sql = "SELECT id FROM items WHERE cat10 = 7 ORDER BY emb <=> %s LIMIT 10"
        plan = explain(c, sql, (queries[0],))
        assert plan.count("WHERE ((cat10 = 7))") == SHARDS, plan
        found = knn(c, sql, queries)
        assert all(i % 10 == 7 for f in found for i in f)
        assert recall(found, truth) > 0.9
        # a join with a table of the coordinator's
        c.execute("CREATE TEMP TABLE labels AS SELECT i AS id, 'row ' || i AS label FROM generate_series(0, %s) i"
                  % (ROWS - 1))
        rows = c.execute("SELECT n.id, l.label FROM (SELECT id, emb <=> %s AS d FROM items ORDER BY d LIMIT 10) n "
                         "JOIN labels l USING (id) ORDER BY n.d", (queries[0],)).fetchall()
        assert [r[1] for r in rows] == [f"row {r[0]}" for r in rows] and len(rows) == 10
        # inserts route to the shards by key; the shards' indexes find them
        with c.cursor() as cur:
            cur.executemany("INSERT INTO items (id, cat10, cat100, emb) VALUES (%s, 0, 0, %s)",
                            [(ROWS + j, extra[j]) for j in range(30)])
        for j in range(30):
            assert c.execute(KNN, (extra[j],)).fetchone()[0] == ROWS + j
        c.execute("DELETE FROM items WHERE id >= %s", (ROWS,))
        assert c.execute(KNN, (extra[0],)).fetchone()[0] != ROWS


def test_a_shard_that_is_down_gives_a_clear_error(sharded):
    _, queries, _ = sharded
    with coordinator() as c:
        elsewhere = c.execute("SELECT id FROM items_1 LIMIT 1").fetchone()[0]
    subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/lib.sh" && as_pg "$PG_BIN/pg_ctl" '
                    f'-D "$PG_WORK/shards$PG_VERSION/shard2" -m fast -w stop'],
                   check=True, stdout=subprocess.DEVNULL)
    try:
        with coordinator() as c:
            with pytest.raises(psycopg.errors.SqlclientUnableToEstablishSqlconnection,
                               match='could not connect to server "shard2"') as e:
                c.execute(KNN, (queries[0],))
            assert e.value.diag.message_detail, "the shard's connection error"
        with coordinator() as c:
            # a query pruned to the other shards goes on
            assert c.execute("SELECT id FROM items WHERE id = %s", (elsewhere,)).fetchone() == (elsewhere,)
    finally:
        shards("start", str(SHARDS))
    with coordinator() as c:
        assert len(knn(c, KNN, queries[:1])[0]) == 10
