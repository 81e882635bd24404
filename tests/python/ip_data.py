"""Inner-product data the suite generates itself (seeded, no files): rows
whose norms vary, as non-normalised embeddings' do, with their queries.
Shared by tests/python/test_hnsw_correctness.py and bench/ip_recall.py,
which measures pgvector on the same rows."""

import numpy as np

QUERIES = 200


def uniform3():
    """10,000 rows uniform in [0, 1)^3 (most sit inside the hull: no query's
    nearest), queries drawn alike."""
    rng = np.random.default_rng(31)
    return rng.random((10_000, 3), dtype=np.float32), rng.random((QUERIES, 3), dtype=np.float32)


def spread64():
    """20,000 rows of 64 uniform values scaled by 1 + i % 7 (norms 1x to 7x),
    queries uniform in [-0.3, 0.7)."""
    rng = np.random.default_rng(32)
    n = 20_000
    base = rng.random((n, 64), dtype=np.float32) * (1 + np.arange(n) % 7)[:, None].astype(np.float32)
    return base, rng.random((QUERIES, 64), dtype=np.float32) - np.float32(0.3)


def sparse1000():
    """10,000 sparse rows of 1,000 dimensions: 8 frequent features (dims 1-8)
    and 16 rare ones at random places with a fifth of the weight, values
    uniform scaled by 1 + i % 7; queries shaped alike in [-0.3, 0.7). Dense
    arrays (zeros where nothing is stored)."""
    rng = np.random.default_rng(33)
    n, dim, frequent, rare = 10_000, 1000, 8, 16

    def draw(rows, scale, shift):
        out = np.zeros((rows, dim), dtype=np.float32)
        for i in range(rows):
            idx = frequent + rng.choice(dim - frequent, rare, replace=False)
            out[i, :frequent] = (rng.random(frequent, dtype=np.float32) + np.float32(0.01)) * scale[i] - shift
            out[i, idx] = (rng.random(rare, dtype=np.float32) + np.float32(0.01)) * np.float32(0.2) * scale[i] - shift
        return out

    base = draw(n, (1 + np.arange(n) % 7).astype(np.float32), np.float32(0))
    queries = draw(QUERIES, np.ones(QUERIES, dtype=np.float32), np.float32(0.3))
    return base, queries


DATASETS = {"uniform3": uniform3, "spread64": spread64, "sparse1000": sparse1000}

# (data set, column type, operator class)
CASES = [
    ("uniform3", "vector", "vector_ip_ops"),
    ("uniform3", "halfvec", "halfvec_ip_ops"),
    ("spread64", "vector", "vector_ip_ops"),
    ("spread64", "halfvec", "halfvec_ip_ops"),
    ("sparse1000", "sparsevec", "sparsevec_ip_ops"),
]


def literal(v, typ):
    """The text form of a row for COPY and queries."""
    if typ == "sparsevec":
        nz = np.nonzero(v)[0]
        return "{" + ",".join(f"{i + 1}:{float(v[i])!r}" for i in nz) + "}/" + str(len(v))
    return "[" + ",".join(repr(float(x)) for x in v) + "]"


def stored(m, typ):
    """What a column of `typ` keeps of float32 values."""
    return m.astype(np.float16).astype(np.float32) if typ == "halfvec" else m


def truth(base, queries, typ, k=10):
    """Exact top k by inner product of what the column stores."""
    b, q = stored(base, typ), stored(queries, typ)
    return np.argsort(-(q @ b.T), axis=1, kind="stable")[:, :k]


def load(conn, table, base, typ, order=None):
    """Loads `base` into `table` (id = row number), in heap order `order`
    (a permutation of the row numbers; default as given)."""
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id int, v {typ}({base.shape[1]}))")
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} (id, v) FROM STDIN") as copy:
            for i in range(len(base)) if order is None else order:
                copy.write_row((int(i), literal(base[i], typ)))


def recall_at(conn, table, queries, typ, expected, k=10):
    """Recall@k of `ORDER BY v <#> q LIMIT k` against `expected`."""
    hits = 0
    sql = f"SELECT id FROM {table} ORDER BY v <#> %s::{typ} LIMIT {k}"
    for q, t in zip(queries, expected):
        got = [r[0] for r in conn.execute(sql, (literal(q, typ),), prepare=True)]
        hits += len(set(got) & set(t.tolist()))
    return hits / (k * len(queries))
