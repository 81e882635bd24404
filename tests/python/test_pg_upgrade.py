"""Major-version upgrade: pg_upgrade from a PostgreSQL 15, 16 or 17 cluster
holding vector_ext tables and indexes of every kind to the server under test
(18 in CI). The index files are carried over as they are (pg_upgrade copies
them; their pages do not depend on the server's version): after the
upgrade, without REINDEX, every index answers as before, passes the index
check, and takes inserts and VACUUM. Runs for each older major that
vector_ext is installed for (the suite installs 15, 16 and 17 before it
tests 18)."""

import os
import subprocess

import psycopg
import pytest
from pgvector.psycopg import register_vector

from every_kind import INDEXES, INDEX_NAMES, TABLE, answers, fill, queries, stable, state
from helpers import ROOT, connect



def lib(version, expr):
    """`expr` evaluated in scripts/lib.sh for PostgreSQL `version`."""
    env = dict(os.environ, PG_VERSION=version)
    env.pop("VECTOR_EXT_PGDATA", None)
    r = subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/lib.sh" && {expr}'], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def as_owner(*cmd, cwd=None):
    """A command as the clusters' owner (postgres, when the suite runs as root)."""
    if os.geteuid() == 0:
        cmd = ("runuser", "-u", "postgres", "--", *cmd)
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, f"{' '.join(cmd)}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def connect_to(port):
    """The database `upgraded`; the vector types registered where the
    extension is."""
    c = psycopg.connect(f"host={os.environ['PGHOST']} port={port} user=postgres dbname=upgraded", autocommit=True)
    if c.execute("SELECT FROM pg_extension WHERE extname = 'vector_ext'").fetchone() is not None:
        register_vector(c)
    return c


def minor_skew(old_port, new_port):
    """Why pg_upgrade cannot restore the old cluster's catalog in the new
    server whatever the extensions, or None. PostgreSQL 15.20 (Debian's
    15.20-0+deb12u1 here) records a column option `pg_attver` on every
    column; servers of earlier releases, such as the 18.6 of the suite's
    wheel, refuse it."""
    def connect_at(port, db):
        return psycopg.connect(f"host={os.environ['PGHOST']} port={port} user=postgres dbname={db}",
                               autocommit=True)
    with connect_at(old_port, "upgraded") as c:
        if c.execute("SELECT FROM pg_attribute WHERE array_to_string(attoptions, ',') LIKE '%pg_attver=%' "
                     "LIMIT 1").fetchone() is None:
            return None
        old = c.execute("SHOW server_version").fetchone()[0]
    with connect_at(new_port, "postgres") as c:
        new = c.execute("SHOW server_version").fetchone()[0]
        try:
            c.execute("CREATE TEMP TABLE skew (a int)")
            c.execute("ALTER TABLE skew ALTER COLUMN a SET (pg_attver = 1)")
            return None
        except psycopg.errors.InvalidParameterValue:
            return (f"PostgreSQL {old} sets the column option pg_attver, which {new} refuses: pg_upgrade "
                    f"needs a {new.split('.')[0]} minor release made with or after {old.split()[0]}")


@pytest.mark.parametrize("old_major", ["15", "16", "17"])
def test_pg_upgrade_keeps_every_index_working(data, old_major):
    with connect() as c:
        new_major = c.execute("SHOW server_version_num").fetchone()[0][:2]
    if int(new_major) <= int(old_major):
        pytest.skip(f"the server under test is PostgreSQL {new_major}: nothing to upgrade from {old_major}")
    old_bin, new_bin = lib(old_major, "echo $PG_BIN"), os.environ["PG_BIN"]
    old_share = lib(old_major, '"$PG_CONFIG" --sharedir')
    if not os.path.exists(f"{old_share}/extension/vector_ext.control"):
        pytest.skip(f"vector_ext is not installed for PostgreSQL {old_major}")
    if not os.path.exists(f"{old_bin}/postgres"):
        pytest.skip(f"no PostgreSQL {old_major} server here")
    work = os.path.join(lib(new_major, "echo $PG_WORK"), "pg_upgrade")
    as_owner("rm", "-rf", work)
    as_owner("mkdir", "-p", work)
    old_data, new_data = f"{work}/old", f"{work}/new"
    old_port, new_port = int(os.environ["PGPORT"]) + 30, int(os.environ["PGPORT"]) + 31
    sock = os.environ["PGHOST"]
    opts = f"-c listen_addresses='' -k {sock} -c fsync=off"
    base = data[0]
    started = []
    try:
        as_owner(f"{old_bin}/initdb", "-D", old_data, "-A", "trust", "-U", "postgres", "--no-sync",
                 "--encoding=UTF8", "--no-locale")
        as_owner(f"{old_bin}/pg_ctl", "-D", old_data, "-w", "-l", f"{work}/old.log", "-o", f"-p {old_port} {opts}",
                 "start")
        started.append((old_bin, old_data))
        with psycopg.connect(f"host={sock} port={old_port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE upgraded")
        with connect_to(old_port) as c:
            c.execute("CREATE EXTENSION vector_ext")
            register_vector(c)
            c.execute(TABLE)
            fill(c, base)
            for s in INDEXES:
                c.execute(s)
            c.execute("DELETE FROM items WHERE id % 9 = 0")
            c.execute("VACUUM items")
            qs = queries(base[500:504])
            want_state = state(c)
            want = answers(c, qs, check_used=True)
        skew = minor_skew(old_port, os.environ["PGPORT"])
        if skew:
            pytest.skip(skew)
        as_owner(f"{old_bin}/pg_ctl", "-D", old_data, "-w", "-m", "fast", "stop")
        started.pop()
        # checksums as the old cluster has them (off: initdb's default before 18)
        extra = ["--no-data-checksums"] if int(new_major) >= 18 else []
        as_owner(f"{new_bin}/initdb", "-D", new_data, "-A", "trust", "-U", "postgres", "--no-sync",
                 "--encoding=UTF8", "--no-locale", *extra)
        upgrade = [f"{new_bin}/pg_upgrade", "-b", old_bin, "-B", new_bin, "-d", old_data, "-D", new_data,
                   "-p", str(old_port), "-P", str(new_port), "-U", "postgres", "-s", sock]
        if os.geteuid() == 0:
            upgrade = ["runuser", "-u", "postgres", "--", *upgrade]
        r = subprocess.run(upgrade, capture_output=True, text=True, cwd=work)
        if r.returncode != 0:
            logs = subprocess.run(["bash", "-c", f"grep -h -B2 -A6 -E 'ERROR|FATAL' {new_data}/pg_upgrade_output.d/*/log/*.log"],
                                  capture_output=True, text=True).stdout
            raise AssertionError(f"pg_upgrade failed:\n{r.stdout[-2000:]}\n{logs[-4000:]}")
        as_owner(f"{new_bin}/pg_ctl", "-D", new_data, "-w", "-l", f"{work}/new.log", "-o", f"-p {new_port} {opts}",
                 "start")
        started.append((new_bin, new_data))
        with connect_to(new_port) as c:
            assert state(c) == want_state
            # the same index files, the same rows (ties included), no REINDEX
            assert answers(c, qs, check_used=True) == want
            for name in INDEX_NAMES:
                check = c.execute("SELECT vector_ext_index_check(%s)", (name,)).fetchone()[0]
                assert check["ok"], (name, check)
            fill(c, base, first=400, rows=50)
            c.execute("DELETE FROM items WHERE id % 9 = 1")
            c.execute("VACUUM items")
            qe = stable(qs)
            assert answers(c, qe) == answers(c, qe, index=False)
    finally:
        for bindir, datadir in started:
            subprocess.run(["runuser", "-u", "postgres", "--", f"{bindir}/pg_ctl", "-D", datadir, "-w", "-m",
                            "immediate", "stop"] if os.geteuid() == 0 else
                           [f"{bindir}/pg_ctl", "-D", datadir, "-w", "-m", "immediate", "stop"],
                           capture_output=True)
        as_owner("rm", "-rf", work)
