"""Robustness of the access methods' glue (issue 21): an ERROR raised by
Postgres inside a callback our code calls, and rows whose indexed value
arrives as a TOAST pointer, each through SQL on a live server that must
stay up (its start time unchanged) and answer correctly after."""

import contextlib
import os
import subprocess

import psycopg
import pytest

from helpers import connect


def start_time(c):
    return c.execute("SELECT pg_postmaster_start_time()").fetchone()[0]


@pytest.mark.parametrize("method,opclass", [("hnsw", "vector_l2_ops"), ("ivfflat", "vector_l2_ops")])
def test_error_in_the_bulk_delete_callback(method, opclass):
    """CREATE INDEX CONCURRENTLY validates the index with a bulk delete
    whose callback writes each TID to a tuplesort; past temp_file_limit
    that callback raises an ERROR inside our ambulkdelete. The statement
    fails cleanly (53400), the server stays up, and the same session then
    builds the index and uses it."""
    with connect() as c:
        started = start_time(c)
        c.execute("DROP TABLE IF EXISTS cic_error")
        c.execute("CREATE TABLE cic_error (id int, v vector(3))")
        c.execute("INSERT INTO cic_error SELECT g, ARRAY[g % 97, g % 89, g % 83]::vector(3) "
                  "FROM generate_series(1, 120000) g")
        c.execute("SET maintenance_work_mem = '1MB'")
        c.execute("SET temp_file_limit = '64kB'")
        options = " WITH (lists = 10)" if method == "ivfflat" else " WITH (m = 4, ef_construction = 8)"
        with pytest.raises(psycopg.Error) as e:
            c.execute(f"CREATE INDEX CONCURRENTLY cic_error_idx ON cic_error USING {method} (v {opclass}){options}")
        assert e.value.sqlstate == "53400", e.value
        assert "temp_file_limit" in str(e.value)
        assert start_time(c) == started, "the server restarted"
        # the failed build leaves an invalid index behind, as Postgres does
        valid = c.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'cic_error_idx'::regclass").fetchone()
        assert valid == (False,)
        c.execute("DROP INDEX cic_error_idx")
        c.execute("RESET temp_file_limit")
        c.execute(f"CREATE INDEX CONCURRENTLY cic_error_idx ON cic_error USING {method} (v {opclass}){options}")
        c.execute("SET enable_seqscan = off")
        if method == "ivfflat":
            c.execute("SET ivfflat.probes = 10")
        rows = c.execute("SELECT id FROM cic_error ORDER BY v <-> '[5,5,5]' LIMIT 3").fetchall()
        exact = c.execute("SELECT id FROM cic_error ORDER BY (v <-> '[5,5,5]')::float8, id LIMIT 3").fetchall()
        assert len(rows) == 3 and rows[0] == exact[0]
        c.execute("DROP TABLE cic_error")


def test_update_of_another_column_passes_a_toast_pointer():
    """sparsevec is STORAGE external: a non-HOT UPDATE of another column
    hands aminsert the row's TOAST pointer, which the index detoasts
    (before it takes its update lock). Every updated row is found."""
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS toast_update")
        c.execute("CREATE TABLE toast_update (id int PRIMARY KEY, note text, s sparsevec(3000))")
        # 400 non-zeros: about 3.2 kB, stored out of line
        c.execute("""INSERT INTO toast_update
            SELECT g, 'a', ('{' || string_agg((i * 7 + g) % 3000 + 1 || ':' || (i + 1), ',') || '}/3000')::sparsevec
            FROM generate_series(1, 60) g, generate_series(0, 399) i GROUP BY g""")
        assert c.execute("SELECT count(*) FROM toast_update WHERE pg_column_size(s) < 3000").fetchone() == (0,)
        c.execute("CREATE INDEX ON toast_update USING hnsw (s sparsevec_l2_ops)")
        # a new index on note makes the update non-HOT: every index gets the row
        c.execute("CREATE INDEX ON toast_update (note)")
        c.execute("UPDATE toast_update SET note = 'b'")
        c.execute("SET enable_seqscan = off")
        for (i,) in c.execute("SELECT id FROM toast_update WHERE id % 7 = 0").fetchall():
            s = c.execute("SELECT s::text FROM toast_update WHERE id = %s", (i,)).fetchone()[0]
            first = c.execute("SELECT id, note FROM toast_update ORDER BY s <-> %s::sparsevec LIMIT 1", (s,)).fetchone()
            assert first == (i, "b"), (i, first)
        c.execute("DROP TABLE toast_update")


def index_blocks_fetched(c, index):
    c.execute("SELECT pg_stat_force_next_flush()")
    c.execute("SELECT pg_stat_clear_snapshot()")
    return c.execute("SELECT idx_blks_read + idx_blks_hit FROM pg_statio_user_indexes "
                     "WHERE indexrelname = %s", (index,)).fetchone()[0]


def test_index_reads_count_in_the_statistics():
    """A scan pins most pages through the backend's buffer hints
    (ReadRecentBuffer, which counts nothing in pg_statio): each such read
    is counted as the hit it is, so pg_statio_user_indexes shows the index's
    real traffic (a graph search reads hundreds of pages), and on
    PostgreSQL 16+ pg_stat_io counts them too."""
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS statio_items")
        c.execute("CREATE TABLE statio_items (id int, v vector(16))")
        c.execute("INSERT INTO statio_items SELECT g, array_agg(sin(g * i))::vector(16) "
                  "FROM generate_series(1, 5000) g, generate_series(1, 16) i GROUP BY g")
        c.execute("CREATE INDEX statio_items_idx ON statio_items USING hnsw (v vector_l2_ops)")
        c.execute("SET enable_seqscan = off")
        queries = [f"[{','.join(str((q * 7 + i) % 5 - 2) for i in range(16))}]" for q in range(40)]
        for q in queries:  # the hints are taken
            c.execute("SELECT id FROM statio_items ORDER BY v <-> %s LIMIT 10", (q,)).fetchall()
        io = c.execute("SELECT current_setting('server_version_num')::int >= 160000").fetchone()[0]
        io_hits = ("SELECT sum(hits) FROM pg_stat_io WHERE backend_type = 'client backend' "
                   "AND object = 'relation' AND context = 'normal'")
        before = index_blocks_fetched(c, "statio_items_idx")
        hits_before = io and c.execute(io_hits).fetchone()[0]
        for q in queries:
            c.execute("SELECT id FROM statio_items ORDER BY v <-> %s LIMIT 10", (q,)).fetchall()
        per_query = (index_blocks_fetched(c, "statio_items_idx") - before) / len(queries)
        if io:
            # PostgreSQL 16+: the server-wide I/O view counts the same hits
            # (every backend's, so at least this index's)
            io_per_query = (c.execute(io_hits).fetchone()[0] - hits_before) / len(queries)
            print(f"\n{io_per_query:.0f} relation hits a query in pg_stat_io")
            assert io_per_query >= per_query, (io_per_query, per_query)
        # what EXPLAIN counts for one of them
        plan = c.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT id FROM statio_items "
                         "ORDER BY v <-> %s LIMIT 10", (queries[0],)).fetchone()[0][0]["Plan"]
        shared = plan["Shared Hit Blocks"] + plan["Shared Read Blocks"]
        print(f"\n{per_query:.0f} index blocks a query in pg_statio, {shared} shared blocks in EXPLAIN")
        assert per_query >= 100, per_query
        c.execute("DROP TABLE statio_items")


def test_vacuum_of_an_insert_only_table_reads_no_index_page():
    """VACUUM with no dead rows calls only amvacuumcleanup: it reads no
    index page (it used to walk the whole graph for elements inserts left
    unreachable; inserts now adopt the links they evict). A VACUUM that
    removes rows does walk it, and vector_ext_index_repair does on demand."""
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS insert_only")
        c.execute("CREATE TABLE insert_only (id int, v vector(16))")
        rows = ("INSERT INTO insert_only SELECT g, array_agg(sin(g * i) * (1 + g %% 5))::vector(16) "
                "FROM generate_series(%s::int, %s::int) g, generate_series(1, 16) i GROUP BY g")
        c.execute(rows, (1, 3000))
        c.execute("CREATE INDEX insert_only_idx ON insert_only USING hnsw (v vector_ip_ops) WITH (m = 8)")
        c.execute(rows, (3001, 6000))  # inserted one by one into the graph
        c.execute("VACUUM insert_only")  # sets the visibility map
        c.execute(rows, (6001, 7000))
        before = index_blocks_fetched(c, "insert_only_idx")
        c.execute("VACUUM insert_only")
        insert_only = index_blocks_fetched(c, "insert_only_idx") - before
        check = c.execute("SELECT vector_ext_index_check('insert_only_idx')").fetchone()[0]
        relinked = c.execute("SELECT vector_ext_index_repair('insert_only_idx')").fetchone()[0]
        assert c.execute("SELECT vector_ext_index_repair('insert_only_idx')").fetchone()[0] == 0
        c.execute("DELETE FROM insert_only WHERE id % 10 = 0")
        before = index_blocks_fetched(c, "insert_only_idx")
        c.execute("VACUUM insert_only")
        removing = index_blocks_fetched(c, "insert_only_idx") - before
        pages = c.execute("SELECT pg_relation_size('insert_only_idx') / 8192").fetchone()[0]
        print(f"\nVACUUM read {insert_only} index blocks with nothing to remove, {removing} removing "
              f"rows ({pages} pages); {check['unreachable_elements']} unreachable, {relinked} relinked")
        assert insert_only <= 1, insert_only
        assert removing >= pages, (removing, pages)
        assert relinked == check["unreachable_elements"], (relinked, check)
        after = c.execute("SELECT vector_ext_index_check('insert_only_idx')").fetchone()[0]
        assert after["ok"] and after["heap_tids"] == 6300, after
        c.execute("DROP TABLE insert_only")


def prlimit(pid, soft_hard, check=True):
    """Sets a backend's address-space limit (soft:hard) as the server's
    user (root in a container may lack CAP_SYS_RESOURCE). Lifting it
    (check=False) does not fail when the backend is gone."""
    cmd = ["prlimit", f"--pid={pid}", f"--as={soft_hard}"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    subprocess.run(cmd, check=check)


def backend_vm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmSize:"))


@contextlib.contextmanager
def out_of_memory_beyond(c, headroom_mb):
    """Caps the session's backend at `headroom_mb` more address space than
    it maps now, expects the block to raise ERROR: out of memory (53200),
    prints it, lifts the cap, and checks the server did not restart."""
    started = start_time(c)
    pid = c.execute("SELECT pg_backend_pid()").fetchone()[0]
    prlimit(pid, f"{(backend_vm_kb(pid) + headroom_mb * 1024) * 1024}:unlimited")
    try:
        with pytest.raises(psycopg.errors.OutOfMemory) as e:
            yield e
        print(f"\n{e.value.diag.message_primary}: {e.value.diag.message_detail}")
    finally:
        prlimit(pid, "unlimited:unlimited", check=False)
    assert start_time(c) == started, "the server restarted"


def test_a_build_out_of_memory_is_an_error():
    """maintenance_work_mem far above what the backend may allocate (its
    address space capped with prlimit, as ulimit -v would): the in-memory
    graph's growth fails and CREATE INDEX ends with ERROR: out of memory
    (53200); the session and the server go on (an allocation failing in
    Rust used to abort the backend, and the postmaster restarted every
    session)."""
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS oom_items")
        c.execute("CREATE TABLE oom_items (id int, v vector(256))")
        c.execute("INSERT INTO oom_items SELECT g, array_agg(sin(g * i))::vector(256) "
                  "FROM generate_series(1, 60000) g, generate_series(1, 256) i GROUP BY g")
        c.execute("SET maintenance_work_mem = '4GB'")
        with out_of_memory_beyond(c, 48):  # the graph needs about 90 MB
            c.execute("CREATE INDEX oom_items_idx ON oom_items USING hnsw (v vector_l2_ops)")
        assert c.execute("SELECT count(*) FROM oom_items").fetchone()[0] == 60000
        c.execute("DROP TABLE oom_items")


@pytest.mark.parametrize("method,options,settings", [
    ("hnsw", "m = 8, ef_construction = 16",
     ["hnsw.iterative_scan = relaxed_order", "hnsw.max_scan_tuples = 2147483647",
      "hnsw.scan_mem_multiplier = 1000"]),
    ("ivfflat", "lists = 4",
     ["ivfflat.iterative_scan = relaxed_order", "ivfflat.probes = 4"]),
])
def test_a_scan_out_of_memory_is_an_error(method, options, settings):
    """A scan whose budget is larger than what the backend may allocate
    (work_mem at its maximum, 2 TB; its address space capped with prlimit): a filter no
    row passes makes it evaluate every row, its search outgrows the cap,
    and the query ends with ERROR: out of memory (53200) whose DETAIL names
    the scan; the session and the server go on (before, the failed Rust
    allocation aborted the backend and the postmaster restarted every
    session)."""
    table = f"oom_scan_{method}"
    with connect() as c:
        c.execute(f"DROP TABLE IF EXISTS {table}")
        c.execute(f"CREATE TABLE {table} (id int, v vector(4))")
        c.execute(f"INSERT INTO {table} SELECT g, ARRAY[random(), random(), random(), random()] "
                  "FROM generate_series(1, 300000) g")
        c.execute(f"CREATE INDEX ON {table} USING {method} (v vector_l2_ops) WITH ({options})")
    # a backend that built nothing (the allocator keeps what a build freed)
    with connect() as c:
        for s in settings + ["work_mem = '2147483647kB'", "enable_seqscan = off"]:
            c.execute(f"SET {s}")
        query = f"SELECT id FROM {table} WHERE id < 0 ORDER BY v <-> '[0.5,0.5,0.5,0.5]' LIMIT 10"
        plan = "\n".join(r[0] for r in c.execute("EXPLAIN " + query).fetchall())
        assert f"{table}_v_idx" in plan, plan
        # a short scan first: what any scan loads is loaded before the cap
        # (the whole scan is not run: the allocator would keep its memory)
        assert c.execute(query.replace("LIMIT 10", "LIMIT 3").replace("id < 0", "id > 0")).rowcount == 3
        with out_of_memory_beyond(c, 2) as e:  # the scan needs about 10 MB
            c.execute(query)
        assert method in (e.value.diag.message_detail or ""), e.value.diag.message_detail
        assert c.execute(query).fetchall() == []  # uncapped, the whole scan runs
        c.execute(f"DROP TABLE {table}")
