"""Both index access methods (hnsw, ivfflat) under stress: concurrent
writers with VACUUM, a kill -9 of the postmaster during inserts, damaged
pages, and a streaming standby replaying the index's WAL. After each, the
index must agree with the table: every row reachable, none twice, rows
found from their own vector."""

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

from helpers import (DSN, K, connect, exact, index_results, load, recall, run_as_cluster_owner,
                     uses_index, wait_for_server)

# Per access method: index options for small test tables, the settings for
# a scan that reaches every row, and for a search that should find a row
# from its own vector (exact for ivfflat: every list is probed), and for
# a recall check with default-like settings.
AMS = {
    "hnsw": {
        "options": "m = 8, ef_construction = 32",
        # defaults. Inserts racing each other can prune away the last link
        # to an element until VACUUM relinks it (seen: 2 of 2700 with m = 8);
        # the exhaustive scan still returns it (an iterative scan ends by
        # sweeping the pages for elements its walk never reached)
        "crash_options": "m = 16, ef_construction = 64",
        "exhaustive": {"hnsw.iterative_scan": "relaxed_order", "hnsw.max_scan_tuples": "1000000000",
                       "hnsw.scan_mem_multiplier": "1000"},
        "search": {"hnsw.ef_search": "100"},
        # greedy graph search may miss the odd row, as in any HNSW
        "misses_per_200": 1,
        "recall": {},
    },
    "ivfflat": {
        "options": "lists = 20",
        "crash_options": "lists = 20",
        "exhaustive": {"ivfflat.probes": "32768"},
        "search": {"ivfflat.probes": "32768"},
        "misses_per_200": 0,
        "recall": {"ivfflat.probes": "10"},
    },
}
for am in AMS:
    AMS[am]["plain"] = ""
# hnsw over RaBitQ codes (four bits), rows re-ranked from the heap
AMS["hnsw_rabitq"] = AMS["hnsw"] | {
    "method": "hnsw",
    "options": AMS["hnsw"]["options"] + ", quantization = rabitq",
    "crash_options": AMS["hnsw"]["crash_options"] + ", quantization = rabitq",
    "plain": "quantization = rabitq",
}


def method(am):
    """The access method an entry of AMS uses."""
    return AMS[am].get("method", am)


def with_options(options):
    return f" WITH ({options})" if options else ""


def apply(conn, settings):
    for k, v in settings.items():
        conn.execute(f"SET {k} = {v}")


def reset(conn, settings):
    for k in settings:
        conn.execute(f"RESET {k}")


def full_index_scan(conn, am, table, op, probe):
    """Every row the index can reach, through an unbounded scan."""
    apply(conn, AMS[am]["exhaustive"] | {"enable_seqscan": "off"})
    n = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    sql = f"SELECT id FROM {table} ORDER BY emb {op} %s LIMIT {n + 10}"
    uses_index(conn, sql, (probe,))
    ids = [r[0] for r in conn.execute(sql, (probe,))]
    reset(conn, AMS[am]["exhaustive"] | {"enable_seqscan": "off"})
    return ids


def assert_index_matches_table(conn, am, table, op, probe, sample):
    """No row missing from the index, none found twice, and sampled rows
    found from their own vector through the index (`op`: its operator;
    `sample` None: no such search)."""
    ids = full_index_scan(conn, am, table, op, probe)
    rows = {r[0]: r[1] for r in conn.execute(f"SELECT id, emb FROM {table}")}
    assert len(ids) == len(set(ids)), "a row came back twice"
    missing = set(rows) - set(ids)
    assert not missing, f"{len(missing)} rows unreachable through the index"
    assert not set(ids) - set(rows), "the index returned rows the table does not have"
    # the index's own check: sound pages, links or lists, heap TIDs (dead
    # rows not yet vacuumed may still be held)
    check = settled_check(conn, table, index_name(conn, table, am))
    print(f"\n{table}: index check {check}")
    assert check["ok"], check["problems"]
    assert check["heap_tids"] >= len(rows)
    if sample is None:
        return
    settings = AMS[am]["search"] | {"enable_seqscan": "off"}
    apply(conn, settings)
    sql = f"SELECT emb = %s FROM {table} ORDER BY emb {op} %s LIMIT 1"
    uses_index(conn, sql, (probe, probe))
    checked = [i for i in sample if i in rows]
    misses = [i for i in checked if not conn.execute(sql, (rows[i], rows[i]), prepare=True).fetchone()[0]]
    print(f"\n{table}: {len(checked) - len(misses)}/{len(checked)} rows found from their own vector")
    assert len(misses) <= AMS[am]["misses_per_200"] * max(1, len(checked) // 200), misses
    reset(conn, settings)


UNREACHABLE = re.compile(r"\d+ live elements cannot be reached from the entry point \(vector_ext_index_repair or a VACUUM that removes rows relinks them\)")


def settled_check(conn, table, index):
    """The index check; when its only problem is hnsw elements no search
    reaches (an insert cut short by a crash, or one whose last link a
    racing insert evicted), once more after relinking them as a VACUUM
    that removes rows does."""
    check = conn.execute("SELECT vector_ext_index_check(%s::regclass)", (index,)).fetchone()[0]
    if not check["ok"] and all(UNREACHABLE.fullmatch(p) for p in check["problems"]):
        print(f"\n{table}: {check['problems']}; vector_ext_index_repair")
        assert check["unreachable_elements"] <= 10, check
        relinked = conn.execute("SELECT vector_ext_index_repair(%s::regclass)", (index,)).fetchone()[0]
        assert relinked >= 1, relinked
        check = conn.execute("SELECT vector_ext_index_check(%s::regclass)", (index,)).fetchone()[0]
    return check


def indexed_table(am, table, vectors, opclass, options="options"):
    """A table of `vectors` with an `am` index (`options`: which of AMS[am])."""
    with connect() as c:
        load(c, table, vectors)
        c.execute(f"CREATE INDEX ON {table} USING {method(am)} (emb {opclass}) WITH ({AMS[am][options]})")
        # a checkpoint now: later changes live only in WAL until the next one
        c.execute("CHECKPOINT")


@pytest.mark.parametrize("am", AMS)
def test_concurrent_inserts_queries_and_vacuum(data, am):
    base, queries, extra = data
    table = f"{am}_concurrent"
    indexed_table(am, table, base[:3000], "vector_l2_ops")
    errors = []
    stop = threading.Event()

    def inserter(w):
        try:
            with connect() as c:
                for j in range(w, 1600, 4):
                    c.execute(f"INSERT INTO {table} VALUES (%s, 0, 0, %s)", (100_000 + j, extra[j]))
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    def querier():
        try:
            with connect() as c:
                while not stop.is_set():
                    for q in queries[:20]:
                        assert len(index_results(c, table, "<->", [q])[0]) == K
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def vacuumer():
        try:
            with connect() as c:
                for lo in range(0, 3000, 500):
                    c.execute(f"DELETE FROM {table} WHERE id >= %s AND id < %s AND id %% 3 = 0", (lo, lo + 500))
                    c.execute(f"VACUUM {table}")
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    workers = [threading.Thread(target=inserter, args=(w,)) for w in range(4)]
    workers += [threading.Thread(target=vacuumer)]
    readers = [threading.Thread(target=querier) for _ in range(2)]
    for t in workers + readers:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    with connect() as c:
        c.execute(f"VACUUM {table}")
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 3000 - 1000 + 1600
        assert_index_matches_table(c, am, table, "<->", queries[0],
                                   sample=list(range(3000)) + list(range(100_000, 101_600)))
        c.execute(f"DROP TABLE {table}")


def kill_postmaster(*backends):
    """kill -9 of the postmaster and of every process it started, as a
    machine crash would end them (`backends`: ones to be sure of). Killing
    only the postmaster and a backend could leave another child waiting
    forever on a lock the killed backend held (seen: the WAL writer, after
    a VACUUM backend was killed mid-write), which kept the next start from
    taking the shared memory."""
    pid = int(Path(os.environ["VECTOR_EXT_PGDATA"], "postmaster.pid").read_text().split()[0])
    children = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if entry.name.isdigit() and int(fields[1]) == pid:
                children.append(int(entry.name))
        except (OSError, IndexError, ValueError):
            pass
    os.kill(pid, signal.SIGKILL)
    for b in set(backends) | set(children):
        try:
            os.kill(b, signal.SIGKILL)
        except ProcessLookupError:
            pass


def restart():
    """Starts the cluster after a kill -9 (its backends notice the
    postmaster is gone and exit; until then the start may fail)."""
    for _ in range(60):
        try:
            run_as_cluster_owner("cluster_start")
            break
        except subprocess.CalledProcessError:
            time.sleep(1)
    wait_for_server()


def index_name(conn, table, am):
    """The `am` index on `table`, or None."""
    index = conn.execute("SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                         "JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = %s::regclass AND a.amname = %s",
                         (table, method(am))).fetchone()
    return index and index[0]


def index_check(conn, table, am):
    index = index_name(conn, table, am)
    return index and conn.execute("SELECT vector_ext_index_check(%s::regclass)", (index,)).fetchone()[0]


@pytest.mark.parametrize("phase", ["build", "copy", "vacuum"])
@pytest.mark.parametrize("am", AMS)
def test_kill_9_during_build_copy_and_vacuum(data, am, phase):
    """kill -9 of the postmaster while CREATE INDEX, a bulk COPY into the
    indexed table, or VACUUM runs: after restart the index (if committed)
    agrees with the table and writes go on."""
    base, queries, extra = data
    table = f"{am}_crash_{phase}"
    with connect() as c:
        load(c, table, base[:3000] if phase == "copy" else base)
        if phase != "build":
            c.execute(f"CREATE INDEX ON {table} USING {method(am)} (emb vector_l2_ops) WITH ({AMS[am]['options']})")
        if phase == "vacuum":
            c.execute(f"DELETE FROM {table} WHERE id % 3 = 0")
        c.execute("CHECKPOINT")
    errors = []

    def work():
        try:
            with connect() as c:
                if phase == "build":
                    c.execute("SET maintenance_work_mem = '256MB'")
                    c.execute(f"CREATE INDEX ON {table} USING {method(am)} (emb vector_l2_ops) WITH ({AMS[am]['options']})")
                elif phase == "copy":
                    with c.cursor() as cur:
                        with cur.copy(f"COPY {table} (id, cat10, cat100, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
                            copy.set_types(["int4", "int4", "int4", "vector"])
                            for j in range(5 * len(extra)):  # long enough to be cut short
                                copy.write_row([100_000 + j, 0, 0, extra[j % len(extra)]])
                else:
                    c.execute(f"VACUUM {table}")
            errors.append("finished before the kill")
        except psycopg.Error:
            pass  # the server went away

    # kill as soon as the progress view shows the work under way: the
    # index build past its start, COPY past 2000 rows, VACUUM on the index
    under_way = {
        "build": "SELECT pid FROM pg_stat_progress_create_index WHERE phase LIKE 'building index%'",
        "copy": "SELECT pid FROM pg_stat_progress_copy WHERE tuples_processed > 2000",
        "vacuum": "SELECT pid FROM pg_stat_progress_vacuum WHERE phase = 'vacuuming indexes'",
    }
    t = threading.Thread(target=work)
    worker = []
    with connect() as watch:
        t.start()
        for _ in range(10_000):
            worker = [r[0] for r in watch.execute(under_way[phase])]
            if worker or not t.is_alive():
                break
            time.sleep(0.002)
    kill_postmaster(*worker)
    t.join()
    restart()
    with connect() as c:
        check = index_check(c, table, am)
        if phase == "build":
            assert check is None, "an index whose CREATE did not commit is not there"
            c.execute(f"CREATE INDEX ON {table} USING {method(am)} (emb vector_l2_ops) WITH ({AMS[am]['options']})")
            check = index_check(c, table, am)
        if not check["ok"]:
            check = settled_check(c, table, index_name(c, table, am))
        print(f"\nkill -9 during {phase} ({am}; {'killed' if not errors else errors[0]}): check {check}")
        assert check["ok"], check["problems"]
        rows = c.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        n = len(base)
        assert rows == {"build": n, "copy": 3000, "vacuum": n - (n + 2) // 3}[phase], "only committed rows"
        assert not errors, "the kill came after the work finished: nothing was cut short"
        for j in range(100):
            c.execute(f"INSERT INTO {table} VALUES (%s, 0, 0, %s)", (200_000 + j, extra[-1 - j]), prepare=True)
        c.execute(f"VACUUM {table}")
        assert_index_matches_table(c, am, table, "<->", queries[0],
                                   sample=list(range(1, 3000, 13)) + list(range(200_000, 200_100)))
        c.execute(f"DROP TABLE {table}")


@pytest.mark.parametrize("am", AMS)
def test_kill_9_during_inserts_loses_nothing(data, am):
    base, queries, extra = data
    table = f"{am}_crash"
    unlogged = f"{am}_crash_unlogged"
    indexed_table(am, table, base[:2000], "vector_cosine_ops", "crash_options")
    with connect() as c:
        # half the rows deleted and vacuumed: hnsw inserts below take the
        # freed elements' space (claims of two pages included), so the
        # crash also lands in the middle of those
        c.execute(f"DELETE FROM {table} WHERE id % 2 = 0")
        c.execute(f"VACUUM {table}")
        c.execute("CHECKPOINT")  # inserts below: in WAL only
        size_before = c.execute(f"SELECT pg_relation_size('{table}_emb_idx')").fetchone()[0]
    with connect() as c:  # an UNLOGGED table comes back empty, its index from the init fork
        c.execute(f"DROP TABLE IF EXISTS {unlogged}")
        c.execute(f"CREATE UNLOGGED TABLE {unlogged} (id int, emb vector(384))")
        c.execute(f"INSERT INTO {unlogged} SELECT i, %s FROM generate_series(1, 50) i", (base[0],))
        c.execute(f"CREATE INDEX ON {unlogged} USING {method(am)} (emb vector_l2_ops){with_options(AMS[am]['plain'])}")
    committed = [[] for _ in range(3)]

    def inserter(w):
        try:
            with connect() as c:
                for j in range(w, len(extra), 3):
                    c.execute(f"INSERT INTO {table} VALUES (%s, 0, 0, %s)", (100_000 + j, extra[j]))
                    committed[w].append(100_000 + j)
        except psycopg.Error:
            pass  # the server went away

    threads = [threading.Thread(target=inserter, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    while sum(len(c) for c in committed) < 600:
        time.sleep(0.05)
    kill_postmaster()
    for t in threads:
        t.join()
    done = sorted(i for c in committed for i in c)
    restart()
    with connect() as c:
        present = {r[0] for r in c.execute(f"SELECT id FROM {table} WHERE id >= 100000")}
        assert set(done) <= present, "committed rows lost"
        assert_index_matches_table(c, am, table, "<=>", queries[0], sample=done + list(range(2000)))
        size_after = c.execute(f"SELECT pg_relation_size('{table}_emb_idx')").fetchone()[0]
        print(f"\n{len(done)} inserts after freeing 1000 rows: index {size_before // 8192} -> {size_after // 8192} pages")
        if method(am) == "hnsw":  # inserts went into the freed space (a few levels had none to spare)
            assert size_after <= size_before + 16 * 8192
        # the index keeps working: more inserts, then recall against exact search
        for j in range(len(extra) - 300, len(extra)):
            c.execute(f"INSERT INTO {table} VALUES (%s, 0, 0, %s) ON CONFLICT DO NOTHING", (200_000 + j, extra[j]))
        ids, vecs = zip(*c.execute(f"SELECT id, emb FROM {table}").fetchall())
        ids = np.array(ids)
        truth = ids[exact(np.stack(vecs), queries[:100], "cosine")]
        apply(c, AMS[am]["recall"])
        r = recall(index_results(c, table, "<=>", queries[:100]), truth)
        print(f"\nafter crash recovery: {len(done)} committed inserts kept, recall@10 {r:.4f}")
        assert r >= 0.95
        # a VACUUM that removes rows gives the pages a crash left outside
        # the lists back. The crash's aborted inserts are dead rows only if
        # their WAL reached the disk: the index file grows without WAL, so a
        # crash can leave a zeroed page and no dead row; one deleted row
        # makes sure this VACUUM vacuums the index. INDEX_CLEANUP ON: a
        # plain VACUUM skips the indexes when so few rows died (under 2% of
        # the table's pages), and then nothing gives the page back until a
        # VACUUM that does vacuum them
        unused = index_check(c, table, am).get("unused_pages")
        c.execute(f"DELETE FROM {table} WHERE id = %s", (done[0],))
        c.execute(f"VACUUM (INDEX_CLEANUP ON) {table}")
        check = index_check(c, table, am)
        print(f"pages no list held: {unused} before VACUUM, {check.get('unused_pages')} after")
        assert check.get("unused_pages", 0) == 0, check
        c.execute(f"DROP TABLE {table}")
        c.execute("SET enable_seqscan = off")
        assert c.execute(f"SELECT count(*) FROM {unlogged}").fetchone()[0] == 0
        for i in range(20):
            c.execute(f"INSERT INTO {unlogged} VALUES (%s, %s)", (i, base[i]))
        got = c.execute(f"SELECT id FROM {unlogged} ORDER BY emb <-> %s LIMIT 1", (base[7],)).fetchone()
        assert got == (7,)
        c.execute(f"DROP TABLE {unlogged}")


@pytest.mark.parametrize("am", AMS)
def test_corrupted_pages_raise_errors_that_name_the_index(data, am):
    """Damaged index pages (written behind the server's back) give an ERROR
    that names the index and suggests REINDEX, never a crash; REINDEX heals."""
    base, queries, _ = data
    table = f"{am}_corrupt"
    indexed_table(am, table, base[:500], "vector_l2_ops")
    with connect() as c:
        path = c.execute(f"SELECT current_setting('data_directory') || '/' || pg_relation_filepath('{table}_emb_idx')").fetchone()[0]
        # on by default from PostgreSQL 18's initdb on
        checksums = c.execute("SHOW data_checksums").fetchone()[0] == "on"
    # hnsw: metapage, an element page's special space, a line pointer;
    # ivfflat: metapage, a list page's special space, a data page's line
    # pointer (with every list probed, every page is read)
    # (and for both: the metapage's layout version, a file cut to 3 pages,
    # an empty file)
    places = {"hnsw": [(0, 24, "metapage"), (1, 8192 - 8, "hnsw data page"), (2, 24, "line pointer")],
              "ivfflat": [(0, 24, "metapage"), (1, 8192 - 4, "ivfflat list page"), (6, 24, "line pointer")]}
    places["hnsw_rabitq"] = places["hnsw"]
    places = {k: v + [(0, 28, "layout version"), (3, None, "file cut to 3 pages"), (0, None, "empty file")]
              for k, v in places.items()}
    run_as_cluster_owner("cluster_stop")
    original = Path(path).read_bytes()
    try:
        for block, at, what in places[am]:
            page = bytearray(original)
            if at is None:
                del page[block * 8192:]
            else:
                page[block * 8192 + at: block * 8192 + at + 4] = b"\xde\xad\xbe\xef"
            Path(path).write_bytes(page)
            run_as_cluster_owner("cluster_start")
            wait_for_server()
            with connect() as c:
                apply(c, AMS[am]["exhaustive"] | {"enable_seqscan": "off"})

                def use_index():
                    for q in queries[:20]:
                        c.execute(f"SELECT id FROM {table} ORDER BY emb <-> %s LIMIT 10", (q,)).fetchall()
                    c.execute(f"INSERT INTO {table} VALUES (-1, 0, 0, %s)", (queries[0],))
                if checksums and at is not None:
                    # a damaged page fails its checksum before the index
                    # reads it; past that check, the index's own checks act
                    with pytest.raises(psycopg.errors.DataCorrupted, match="invalid page in block"):
                        use_index()
                    c.execute("SET ignore_checksum_failure = on")
                with pytest.raises(psycopg.errors.IndexCorrupted) as e:
                    use_index()
                assert f'index "{table}_emb_idx" is corrupted' in str(e.value), what
                assert e.value.diag.message_hint == "REINDEX the index."
                print(f"\n{what}: {e.value}")
                # the index check reports the damage instead of raising it
                check = c.execute(f"SELECT vector_ext_index_check('{table}_emb_idx')").fetchone()[0]
                assert not check["ok"] and check["problems"], (what, check)
                print(f"index check: {check['problems'][:2]}")
            run_as_cluster_owner("cluster_stop")
        Path(path).write_bytes(original)
    finally:
        run_as_cluster_owner("cluster_start")
        wait_for_server()
    with connect() as c:
        c.execute(f"REINDEX INDEX {table}_emb_idx")
        c.execute("SET enable_seqscan = off")
        assert len(index_results(c, table, "<->", queries[:5])[0]) == K
        c.execute(f"DROP TABLE {table}")


@pytest.mark.parametrize("build", ["in memory", "past maintenance_work_mem"])
@pytest.mark.parametrize("am", AMS)
def test_streaming_replica_serves_the_same_index(data, am, build):
    """Build, inserts and VACUUM reach a streaming standby (through a
    replication slot) by WAL alone: the standby's index answers exactly as
    the primary's. Then the standby is promoted and takes writes. An hnsw
    build logs its pages as it writes them when its graph holds every row,
    and logs them all at the end when the graph outgrew
    maintenance_work_mem (1MB: about 400 rows) and rows went in on pages."""
    if build != "in memory" and am != "hnsw":
        pytest.skip("one way to build an ivfflat index")
    base, queries, extra = data
    table = f"{am}_replicated"
    port = int(os.environ["PGPORT"]) + 1
    standby = '"$PG_WORK/standby"'
    try:
        # inside the try: a failed start must not leave the slot behind
        run_as_cluster_owner(f'rm -rf {standby} && as_pg "$PG_BIN/pg_basebackup" -h "$PGSOCK" -p "$PGPORT" '
                             f'-U postgres -D {standby} -R -X stream -C -S vx_standby')
        run_as_cluster_owner(f'as_pg "$PG_BIN/pg_ctl" -D {standby} -l {standby}/server.log -w start '
                             f'-o "-p {port} -k $PGSOCK -c listen_addresses=\'\' -c hot_standby=on"')
        with connect() as c:
            c.execute(f"DROP TABLE IF EXISTS {table}")
            load(c, table, base[:3000])
            c.execute(f"SET maintenance_work_mem = '{'64MB' if build == 'in memory' else '1MB'}'")
            c.execute(f"CREATE INDEX ON {table} USING {method(am)} (emb vector_ip_ops) WITH ({AMS[am]['options']})")
            for j in range(300):
                c.execute(f"INSERT INTO {table} VALUES (%s, 0, 0, %s)", (100_000 + j, extra[j]), prepare=True)
            c.execute(f"DELETE FROM {table} WHERE id % 4 = 0")
            c.execute(f"VACUUM {table}")
            c.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
            # nothing but this test changes the table from here on
            c.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
            # the insert position, not pg_current_wal_lsn(): that is where
            # WAL has been written to, and VACUUM (no transaction id, so no
            # commit record to flush) may leave its last records unwritten
            # in WAL buffers until the WAL writer's next round
            lsn = c.execute("SELECT pg_current_wal_insert_lsn()").fetchone()[0]
            pages = index_pages(c, table)
            apply(c, AMS[am]["search"] | {"enable_seqscan": "off"})
            on_primary = index_results(c, table, "<#>", queries[:100])
        with psycopg.connect(DSN.replace(f"port={os.environ['PGPORT']}", f"port={port}"), autocommit=True) as s:
            register_vector(s)
            for _ in range(120):
                if s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                    break
                time.sleep(0.5)
            else:
                raise AssertionError("standby did not catch up")
            # the standby's index pages are the primary's, byte for byte
            # (but the free space between pd_lower and pd_upper, which WAL
            # replay zeroes); then its answers are too
            replayed = index_pages(s, table)
            assert len(replayed) == len(pages)
            different = [b for b, (p, q) in enumerate(zip(pages, replayed)) if p != q]
            assert not different, f"index blocks {different[:20]} differ on the standby"
            apply(s, AMS[am]["search"] | {"enable_seqscan": "off"})
            assert index_results(s, table, "<#>", queries[:100]) == on_primary
            assert_index_matches_table(s, am, table, "<#>", queries[0], sample=list(range(0, 3000, 7)))
            # promoted, the standby's index takes writes and VACUUM
            assert s.execute("SELECT pg_promote(true, 60)").fetchone()[0]
            for j in range(300, 500):
                s.execute(f"INSERT INTO {table} VALUES (%s, 0, 0, %s)", (100_000 + j, extra[j]), prepare=True)
            s.execute(f"DELETE FROM {table} WHERE id % 5 = 0")
            s.execute(f"VACUUM {table}")
            assert_index_matches_table(s, am, table, "<#>", queries[0],
                                       sample=list(range(100_300, 100_500)) + list(range(1, 3000, 11)))
    finally:
        run_as_cluster_owner(f'as_pg "$PG_BIN/pg_ctl" -D {standby} -m fast -w stop; rm -rf {standby}')
        with connect() as c:
            c.execute(f"DROP TABLE IF EXISTS {table}")
            c.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                      "WHERE slot_name = 'vx_standby'")


def index_pages(conn, table):
    """The raw pages of the table's one index, the free space between
    pd_lower and pd_upper and the checksum zeroed."""
    index = conn.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = %s::regclass",
                         (table,)).fetchone()[0]
    blocks = conn.execute("SELECT pg_relation_size(%s::regclass) / current_setting('block_size')::int",
                          (index,)).fetchone()[0]
    pages = []
    for b in range(blocks):
        page = bytearray(conn.execute("SELECT get_raw_page(%s, %s)", (index, b)).fetchone()[0])
        lower, upper = int.from_bytes(page[12:14], "little"), int.from_bytes(page[14:16], "little")
        page[8:10] = bytes(2)  # pd_checksum: set when a page is written out
        if 24 <= lower <= upper <= len(page):
            page[lower:upper] = bytes(upper - lower)
        pages.append(bytes(page))
    return pages


SOAK_SECONDS = float(os.environ.get("VECTOR_EXT_SOAK_SECONDS", "15"))


@pytest.mark.parametrize("am", ["hnsw", "ivfflat"])
def test_soak_mixed_load(data, am):
    """Two writers (insert, update, delete), two readers (kNN with and
    without a filter) and a periodic VACUUM for VECTOR_EXT_SOAK_SECONDS:
    no errors, the table is exactly what the writers committed, the index
    agrees with it, and recall at the end is within 0.02 of a fresh
    rebuild's. Prints throughput and p99 latencies."""
    base, queries, extra = data
    table = f"{am}_soak"
    rng_lock = threading.Lock()
    with connect() as c:
        load(c, table, base[:5000])
        c.execute(f"CREATE INDEX ON {table} USING {method(am)} (emb vector_cosine_ops) WITH ({AMS[am]['crash_options']})")
    expected = {i: base[i] for i in range(5000)}  # id -> vector, as committed
    # each writer owns the ids of its parity, so its bookkeeping follows
    # the order its own statements commit in
    next_id = [1_000_000, 1_000_001]
    stop = threading.Event()
    errors, latencies, counts = [], {"knn": [], "filtered": [], "write": []}, {}

    def timed(kind, fn):
        t0 = time.perf_counter()
        fn()
        latencies[kind].append(time.perf_counter() - t0)

    def writer(w):
        rnd = np.random.default_rng(w)
        try:
            with connect() as c:
                while not stop.is_set():
                    op = str(rnd.choice(["insert", "update", "delete"], p=[0.5, 0.3, 0.2]))
                    # a new vector near a real one (not the same: thousands of
                    # exact copies would be a different test)
                    v = (extra[int(rnd.integers(len(extra)))] + rnd.normal(0, 0.01, 384)).astype(np.float32)
                    with rng_lock:
                        if op == "insert":
                            i = next_id[w]
                            next_id[w] += 2
                        else:
                            mine = [k for k in list(expected)[:4000] if k % 2 == w]
                            i = int(rnd.choice(mine)) if mine else None
                    if i is None:
                        continue
                    if op == "insert":
                        timed("write", lambda: c.execute(f"INSERT INTO {table} VALUES (%s, %s, 0, %s)",
                                                         (i, i % 10, v), prepare=True))
                        with rng_lock:
                            expected[i] = v
                    elif op == "update":
                        timed("write", lambda: c.execute(f"UPDATE {table} SET emb = %s WHERE id = %s",
                                                         (v, i), prepare=True))
                        with rng_lock:
                            if i in expected:
                                expected[i] = v
                    else:
                        timed("write", lambda: c.execute(f"DELETE FROM {table} WHERE id = %s", (i,), prepare=True))
                        with rng_lock:
                            expected.pop(i, None)
                    with rng_lock:
                        counts[op] = counts.get(op, 0) + 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def reader(r):
        rnd = np.random.default_rng(100 + r)
        try:
            with connect() as c:
                apply(c, AMS[am]["search"] | {"enable_seqscan": "off"})
                c.execute(f"SET {am}.iterative_scan = relaxed_order")
                while not stop.is_set():
                    q = queries[int(rnd.integers(len(queries)))]
                    got = []
                    timed("knn", lambda: got.append(c.execute(
                        f"SELECT id FROM {table} ORDER BY emb <=> %s LIMIT 10", (q,), prepare=True).fetchall()))
                    assert len(got[0]) == 10, len(got[0])
                    cat = int(rnd.integers(10))
                    timed("filtered", lambda: got.append(c.execute(
                        f"SELECT id, cat10 FROM {table} WHERE cat10 = %s ORDER BY emb <=> %s LIMIT 10",
                        (cat, q), prepare=True).fetchall()))
                    assert len(got[1]) == 10 and all(x[1] == cat for x in got[1]), got[1]
                    with rng_lock:
                        counts["knn pairs"] = counts.get("knn pairs", 0) + 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    def vacuumer():
        try:
            with connect() as c:
                while not stop.wait(3):
                    c.execute(f"VACUUM {table}")
                    counts["vacuum"] = counts.get("vacuum", 0) + 1
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(2)]
    threads += [threading.Thread(target=reader, args=(r,)) for r in range(2)]
    threads += [threading.Thread(target=vacuumer)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(SOAK_SECONDS)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    assert not errors, errors[:3]
    with connect() as c:
        # exactly what the writers committed: no lost, no phantom rows
        rows = {r[0]: r[1] for r in c.execute(f"SELECT id, emb FROM {table}")}
        assert set(rows) == set(expected), (len(set(rows) - set(expected)), len(set(expected) - set(rows)))
        assert all(np.array_equal(rows[i], expected[i]) for i in expected)
        c.execute(f"VACUUM {table}")
        # every row through the index, none twice; the search quality is
        # judged by recall against a rebuild below (near-copies of the same
        # source vectors make finding a row from its own vector harder on a
        # fresh index too: 95.7% at ef_search 100 after 120 s of this load)
        assert_index_matches_table(c, am, table, "<=>", queries[0], sample=None)
        ids = np.array(sorted(expected))
        truth = ids[exact(np.stack([expected[i] for i in ids]), queries[:200], "cosine")]
        apply(c, AMS[am]["recall"])
        r_soak = recall(index_results(c, table, "<=>", queries[:200]), truth)
        index = c.execute("SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class x ON x.oid = i.indexrelid "
                          "JOIN pg_am a ON a.oid = x.relam WHERE i.indrelid = %s::regclass AND a.amname = %s",
                          (table, method(am))).fetchone()[0]
        size = f"SELECT pg_relation_size('{index}') / 8192"
        pages_soak = c.execute(size).fetchone()[0]
        c.execute("SET maintenance_work_mem = '1GB'")  # the rebuild in memory
        c.execute(f"REINDEX INDEX {index}")
        r_fresh = recall(index_results(c, table, "<=>", queries[:200]), truth)
        pages_fresh = c.execute(size).fetchone()[0]
        c.execute(f"DROP TABLE {table}")
    p99 = {k: 1000 * float(np.percentile(v, 99)) for k, v in latencies.items() if v}
    ops = {k: round(v / elapsed, 1) for k, v in counts.items()}
    print(f"\nsoak {am} {elapsed:.0f} s: {counts.get('vacuum', 0)} VACUUMs; ops/s {ops}; p99 ms "
          + ", ".join(f"{k} {v:.1f}" for k, v in p99.items())
          + f"; {len(expected)} rows; recall@10 {r_soak:.4f} vs fresh rebuild {r_fresh:.4f}"
          + f"; index {pages_soak} pages vs {pages_fresh} rebuilt")
    assert r_soak >= r_fresh - 0.02
