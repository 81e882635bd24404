"""Moving data the ways operators do: pg_dump and pg_restore (plain, custom,
and custom restored with --jobs), COPY ... BINARY, and logical replication
to another cluster. A database with every type, an array column, and
indexes of every kind (options, partial, the binary-quantize expression
index) comes back holding the same rows, the same index definitions, and
answering the same queries with the same rows."""

import os
import subprocess
import time

import psycopg
import pytest
from pgvector.psycopg import register_vector

from every_kind import INDEXES, TABLE, answers, fill, queries, stable, state
from helpers import DSN, ROOT, connect

PG_BIN = os.environ.get("PG_BIN", "")
SOURCE = "vector_ext_dump_source"
ROWS = 400
SCHEMA = ["CREATE EXTENSION vector_ext", TABLE]


def dsn(db, port=None):
    base = DSN.rsplit("dbname=", 1)[0] + f"dbname={db}"
    return base if port is None else base.replace(f"port={os.environ['PGPORT']}", f"port={port}")


def open_db(db, port=None):
    """A connection; the vector types registered where the extension is."""
    c = psycopg.connect(dsn(db, port), autocommit=True)
    if c.execute("SELECT FROM pg_extension WHERE extname = 'vector_ext'").fetchone() is not None:
        register_vector(c)
    return c


def recreate(db):
    with connect() as c:
        c.execute(f"DROP DATABASE IF EXISTS {db}")
        c.execute(f"CREATE DATABASE {db}")


def drop(db):
    with connect() as c:
        c.execute(f"DROP DATABASE IF EXISTS {db}")


@pytest.fixture(scope="module")
def source(data):
    base = data[0]
    recreate(SOURCE)
    with open_db(SOURCE) as c:
        for s in SCHEMA:
            c.execute(s)
        register_vector(c)
        fill(c, base)
        for s in INDEXES:
            c.execute(s)
        c.execute("ANALYZE items")
        qs = queries(base[ROWS + 100:ROWS + 104])
        answers(c, qs, check_used=True)
        yield base, qs, state(c), answers(c, stable(qs))
    drop(SOURCE)


def run(*cmd):
    r = subprocess.run([os.path.join(PG_BIN, cmd[0]), *cmd[1:]], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r


@pytest.mark.parametrize("how", ["plain", "custom", "custom --jobs 2"])
def test_dump_and_restore_give_back_the_same_database(source, tmp_path, how):
    base, qs, want_state, want_answers = source
    target = "vector_ext_restored"
    host = ["-h", os.environ["PGHOST"], "-p", os.environ["PGPORT"], "-U", "postgres"]
    dump = tmp_path / "dump"
    recreate(target)
    try:
        if how == "plain":
            run("pg_dump", *host, "-d", SOURCE, "-f", str(dump))
            run("psql", *host, "-d", target, "-v", "ON_ERROR_STOP=1", "-q", "-f", str(dump))
        else:
            run("pg_dump", *host, "-d", SOURCE, "-Fc", "-f", str(dump))
            jobs = ["--jobs", "2"] if "jobs" in how else []
            run("pg_restore", *host, "-d", target, "--exit-on-error", *jobs, str(dump))
        with open_db(target) as c:
            assert state(c) == want_state
            answers(c, qs, check_used=True)
            assert answers(c, stable(qs)) == want_answers
            # the restored indexes keep taking writes
            fill(c, base, first=ROWS, rows=20)
            c.execute("DELETE FROM items WHERE id < 10")
            c.execute("VACUUM items")
            answers(c, qs, check_used=True)
            qe = stable(qs)
            assert answers(c, qe) == answers(c, qe, index=False)
    finally:
        drop(target)


def test_copy_binary_round_trips_every_type(source):
    _, qs, want_state, want_answers = source
    target = "vector_ext_copied"
    recreate(target)
    try:
        with open_db(SOURCE) as src, open_db(target) as dst:
            for s in SCHEMA:
                dst.execute(s)
            register_vector(dst)
            with src.cursor().copy("COPY items TO STDOUT (FORMAT BINARY)") as out, \
                    dst.cursor().copy("COPY items FROM STDIN (FORMAT BINARY)") as into:
                for chunk in out:
                    into.write(chunk)
            for s in INDEXES:
                dst.execute(s)
            assert state(dst)[0] == want_state[0]
            answers(dst, qs, check_used=True)
            assert answers(dst, stable(qs)) == want_answers
    finally:
        drop(target)


def shards(*args, **env):
    return subprocess.run(["bash", str(ROOT / "scripts" / "shards.sh"), *args], env=dict(os.environ, **env),
                          check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_until(check, what, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what}: not after {seconds} s")


def test_logical_replication_carries_inserts_updates_and_deletes(source):
    """A publication on another cluster (a loopback one that scripts/shards.sh
    starts, with wal_level = logical) and a subscription (binary) in this
    one: the subscriber's own indexes answer as the publisher's."""
    base, qs, _, _ = source
    publisher_port = int(os.environ["PGPORT"]) + 11
    subscriber = "vector_ext_subscriber"
    shards("stop")
    shards("start", "1", VECTOR_EXT_SHARD_PGOPTS="-c wal_level=logical")
    recreate(subscriber)
    with open_db(subscriber) as c:
        c.execute("CREATE EXTENSION vector_ext")
    try:
        with open_db("vector_ext_shard", publisher_port) as pub, open_db(subscriber) as sub:
            for c in (pub, sub):
                c.execute("DROP TABLE IF EXISTS items")
                c.execute(TABLE)
                for s in INDEXES:
                    c.execute(s)
            fill(pub, base, rows=200)
            pub.execute("DROP PUBLICATION IF EXISTS vectors")
            pub.execute("CREATE PUBLICATION vectors FOR TABLE items")
            sub.execute(f"CREATE SUBSCRIPTION vectors CONNECTION '{dsn('vector_ext_shard', publisher_port)}' "
                        "PUBLICATION vectors WITH (binary = true)")

            def same():
                return state(pub)[0] == state(sub)[0]

            wait_until(same, "the initial copy")
            fill(pub, base, first=200, rows=100)
            pub.execute("UPDATE items SET emb = half::vector, cat = 2 WHERE id % 7 = 0")
            pub.execute("UPDATE items SET sparse = NULL, history = NULL WHERE id % 11 = 0")
            pub.execute("DELETE FROM items WHERE id % 5 = 0")
            wait_until(same, "inserts, updates and deletes")
            assert state(sub)[0][1] == 240
            answers(sub, qs, check_used=True)
            qe = stable(qs)
            assert answers(sub, qe) == answers(pub, qe)
            assert answers(sub, qe, index=False) == answers(pub, qe, index=False)
            assert answers(sub, qe) == answers(sub, qe, index=False)
            sub.execute("DROP SUBSCRIPTION vectors")  # and its slot on the publisher
    finally:
        drop(subscriber)
        shards("destroy")
