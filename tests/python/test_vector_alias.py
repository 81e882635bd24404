"""The `vector` alias (scripts/vector-alias.sh): migrations written for
pgvector, which run CREATE EXTENSION vector, run unchanged against
vector_ext (a Django app with pgvector-python's VectorExtension, fields and
indexes); the script never touches a real pgvector's files."""

import json
import os
import shutil
import subprocess
import sys

import psycopg
import pytest

from helpers import ROOT, connect

MARKER = "# written by vector_ext's scripts/vector-alias.sh"


def alias(*args, pg_config=None):
    env = dict(os.environ)
    if pg_config:
        env["PG_CONFIG"] = str(pg_config)
    return subprocess.run(["bash", str(ROOT / "scripts" / "vector-alias.sh"), *args], env=env,
                          capture_output=True, text=True)


def sharedir():
    return subprocess.run([os.environ["PG_CONFIG"], "--sharedir"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_django_migrations_run_unchanged():
    control = os.path.join(sharedir(), "extension", "vector.control")
    if os.path.exists(control) and MARKER not in open(control).read():
        pytest.skip("this server has pgvector installed: the alias stays out of its way")
    r = alias("install")
    assert r.returncode == 0, r.stderr
    db = "vector_ext_django"
    try:
        with connect() as c:
            c.execute(f"DROP DATABASE IF EXISTS {db}")
            c.execute(f"CREATE DATABASE {db}")
            version = c.execute("SELECT default_version FROM pg_available_extensions "
                                "WHERE name = 'vector_ext'").fetchone()[0]
        r = subprocess.run([sys.executable, str(ROOT / "tests" / "python" / "django_run.py"), db],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-3000:]
        got = json.loads(r.stdout)
        assert got["near"] == [[50, 0, 1], [51, 1, 1], [52, 2, 1]]
        assert got["cosine"] == [[3, 3, 1]]
        assert got["half"] == [7, 1, 1]
        assert "item_embedding_hnsw" in got["plan"], got["plan"]
        dsn = f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={db}"
        with psycopg.connect(dsn, autocommit=True) as c:
            # the types are the extension `vector`'s, at vector_ext's version
            owner = c.execute("""SELECT e.extname, e.extversion FROM pg_type t
                                 JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid
                                      AND d.deptype = 'e'
                                 JOIN pg_extension e ON e.oid = d.refobjid
                                 WHERE t.typname = 'vector'""").fetchone()
            assert owner == ("vector", version)
            # one of the two names in a database: the other finds its
            # objects there already
            with pytest.raises((psycopg.errors.DuplicateObject, psycopg.errors.DuplicateFunction)):
                c.execute("CREATE EXTENSION vector_ext")
    finally:
        with connect() as c:
            c.execute(f"DROP DATABASE IF EXISTS {db}")
        r = alias("remove")
        assert r.returncode == 0, r.stderr
    assert not os.path.exists(control)


@pytest.fixture
def fake_server(tmp_path):
    """A pg_config whose share directory holds vector_ext's files only."""
    ext = tmp_path / "share" / "extension"
    ext.mkdir(parents=True)
    real = os.path.join(sharedir(), "extension")
    for f in os.listdir(real):
        if f.startswith("vector_ext"):
            shutil.copy(os.path.join(real, f), ext)
    pg_config = tmp_path / "pg_config"
    pg_config.write_text(f"#!/bin/sh\necho {tmp_path / 'share'}\n")
    pg_config.chmod(0o755)
    return pg_config, ext


def test_alias_files_follow_vector_ext_and_go_away(fake_server):
    pg_config, ext = fake_server
    for _ in range(2):  # again after an upgrade: the same files
        r = alias("install", pg_config=pg_config)
        assert r.returncode == 0, r.stderr
    ours = sorted(f.name for f in ext.iterdir() if f.name.startswith("vector_ext--"))
    assert sorted(f.name for f in ext.iterdir() if f.name.startswith("vector--")) == \
        [f.replace("vector_ext--", "vector--") for f in ours]
    control = (ext / "vector.control").read_text()
    assert MARKER in control and "module_pathname = '$libdir/vector_ext'" in control
    r = alias("remove", pg_config=pg_config)
    assert r.returncode == 0, r.stderr
    assert not [f for f in ext.iterdir() if f.name.startswith("vector.") or f.name.startswith("vector--")]


@pytest.mark.parametrize("pgvector_file", ["vector.control", "vector--0.8.0.sql"])
def test_alias_never_touches_a_real_pgvector(fake_server, pgvector_file):
    pg_config, ext = fake_server
    theirs = ext / pgvector_file
    theirs.write_text("comment = 'vector data type and ivfflat and hnsw access methods'\n")
    for action in ("install", "remove"):
        r = alias(action, pg_config=pg_config)
        assert r.returncode == 1 and "left alone" in r.stderr, r.stderr
    assert theirs.read_text().startswith("comment = 'vector data type")
    assert sorted(f.name for f in ext.iterdir() if f.name.startswith("vector.") or f.name.startswith("vector--")) \
        == [pgvector_file]
