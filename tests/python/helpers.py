"""What the index tests share: the data set, a connection, loading a
table, exact ground truth with numpy, recall, plan checks, and running the
cluster scripts (stop, start) as the cluster's owner."""

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import psycopg
from pgvector.psycopg import register_vector

DB = os.environ.get("VECTOR_EXT_TEST_DB", "vector_ext_clients")
DSN = f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user=postgres dbname={DB}"
ROOT = Path(__file__).resolve().parents[2]
# the fixture in the repository (scripts/make_fixture.py made it): the first
# 20k rows, 500 queries and 4000 extra rows of ds-a-npm-minilm
DATA = ROOT / "tests" / "data" / "ds-a-20k"
ROWS = 20_000
QUERIES = 500
K = 10

OPS = {
    "cosine": ("vector_cosine_ops", "<=>"),
    "l2": ("vector_l2_ops", "<->"),
    "ip": ("vector_ip_ops", "<#>"),
}


def connect():
    c = psycopg.connect(DSN, autocommit=True)
    register_vector(c)
    return c


def load_data():
    base = np.load(DATA / "base.f16.npy")[:ROWS].astype(np.float32)
    queries = np.load(DATA / "query.f16.npy")[:QUERIES].astype(np.float32)
    extra = np.load(DATA / "extra.f16.npy").astype(np.float32)
    return base, queries, extra


def load(conn, table, vectors, first_id=0):
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, cat10 int, cat100 int, emb vector({vectors.shape[1]}))")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} (id, cat10, cat100, emb) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int4", "int4", "int4", "vector"])
            for i, v in enumerate(vectors, start=first_id):
                copy.write_row([i, i % 10, i % 100, v])
    conn.execute(f"ANALYZE {table}")


def exact(base, queries, metric, k=K, mask=None):
    if metric == "cosine":
        b = base / np.linalg.norm(base, axis=1, keepdims=True)
        d = -(queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ b.T
    elif metric == "ip":
        d = -(queries @ base.T)
    else:
        d = (queries**2).sum(1)[:, None] - 2 * queries @ base.T + (base**2).sum(1)[None, :]
    if mask is not None:
        d[:, ~mask] = np.inf
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def index_results(conn, table, op, queries, where="", k=K):
    sql = f"SELECT id FROM {table} {where} ORDER BY emb {op} %s LIMIT {k}"
    return [[r[0] for r in conn.execute(sql, (q,), prepare=True).fetchall()] for q in queries]


def recall(found, truth):
    return np.mean([len(set(f) & set(t.tolist())) / len(t) for f, t in zip(found, truth)])


def uses_index(conn, sql, params):
    plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + sql, params))
    assert "Index Scan using" in plan, plan


def run_as_cluster_owner(cmd):
    return subprocess.run(["bash", "-c", f'source "{ROOT}/scripts/lib.sh" && {cmd}'], check=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for_server():
    for _ in range(120):
        try:
            with psycopg.connect(DSN) as c:
                c.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            time.sleep(0.5)
    raise AssertionError("server did not come back")


def table_of(name, vectors):
    """For a module fixture: `name` loaded with `vectors`, dropped after."""
    with connect() as c:
        load(c, name, vectors)
    yield name
    with connect() as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


def table_with_column(name, vectors, column, expression):
    """For a module fixture: `name` loaded with `vectors` plus `column`
    (a column definition) filled from `expression` of emb; dropped after."""
    with connect() as c:
        load(c, name, vectors)
        c.execute(f"ALTER TABLE {name} ADD COLUMN {column}")
        c.execute(f"UPDATE {name} SET {column.split()[0]} = {expression}")
        c.execute(f"VACUUM ANALYZE {name}")
    yield name
    with connect() as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")
