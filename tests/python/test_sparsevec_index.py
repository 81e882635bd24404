"""hnsw indexes on sparsevec columns through SQL, on a sparse view of real
embeddings (ds-a-npm-minilm, 384-d, each vector keeping its 64 largest
entries by magnitude, as a pruned learned-sparse model would): recall
against exact ground truth of those sparse vectors, inserts after the
build, and a vector of more non-zeros than pgvector's 1000."""

import numpy as np
import pytest
from pgvector import SparseVector

from helpers import K, connect, exact, load, recall

KEEP = 64
OPS = {
    "cosine": ("sparsevec_cosine_ops", "<=>"),
    "l2": ("sparsevec_l2_ops", "<->"),
    "ip": ("sparsevec_ip_ops", "<#>"),
    "l1": ("sparsevec_l1_ops", "<+>"),
}


def sparsify(m, keep=KEEP):
    """Each row keeps its `keep` largest-magnitude entries, the rest 0."""
    out = np.zeros_like(m)
    top = np.argpartition(-np.abs(m), keep - 1, axis=1)[:, :keep]
    rows = np.arange(m.shape[0])[:, None]
    out[rows, top] = m[rows, top]
    return out


@pytest.fixture(scope="module")
def sparse_items(data):
    base = sparsify(data[0])
    with connect() as c:
        load(c, "sparse_items", base)
        c.execute("ALTER TABLE sparse_items ADD COLUMN s sparsevec(384)")
        c.execute("UPDATE sparse_items SET s = emb::sparsevec")
        c.execute("VACUUM ANALYZE sparse_items")
        assert c.execute("SELECT min(s::text), count(*) FROM sparse_items "
                         "WHERE array_length(string_to_array(s::text, ','), 1) <> %s", (KEEP,)).fetchone()[1] == 0
    yield base
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS sparse_items")


def exact_sparse(base, queries, metric):
    """Exact top K; taxicab distance through the query's non-zeros only:
    |q - b|_1 = |b|_1 + sum over q's non-zeros of (|q_i - b_i| - |b_i|)."""
    if metric != "l1":
        return exact(base, queries, metric)
    norms = np.abs(base).sum(1)
    out = []
    for q in queries:
        nz = np.nonzero(q)[0]
        d = norms + (np.abs(q[nz][None, :] - base[:, nz]) - np.abs(base[:, nz])).sum(1)
        out.append(np.argsort(d, kind="stable")[:K])
    return np.array(out)


def results(conn, op, queries):
    sql = f"SELECT id FROM sparse_items ORDER BY s {op} %s LIMIT {K}"
    return [[r[0] for r in conn.execute(sql, (SparseVector(q),), prepare=True).fetchall()] for q in queries]


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip", "l1"])
def test_hnsw_sparsevec_recall(data, sparse_items, metric):
    queries = sparsify(data[1])
    ops, op = OPS[metric]
    with connect() as c:
        c.execute(f"CREATE INDEX sparse_s ON sparse_items USING hnsw (s {ops})")
        try:
            plan = c.execute(f"EXPLAIN SELECT id FROM sparse_items ORDER BY s {op} %s LIMIT 10",
                             (SparseVector(queries[0]),)).fetchall()
            assert "Index Scan using sparse_s" in "\n".join(r[0] for r in plan)
            truth = exact_sparse(sparse_items, queries, metric)
            r = recall(results(c, op, queries), truth)
            c.execute("SET hnsw.ef_search = 100")
            r100 = recall(results(c, op, queries), truth)
            c.execute("RESET hnsw.ef_search")
            size = c.execute("SELECT pg_relation_size('sparse_s')").fetchone()[0]
            print(f"\n{metric}: sparsevec ({KEEP} of 384 non-zeros) recall@10 {r:.4f} at ef_search 40, "
                  f"{r100:.4f} at 100; index {size / 2**20:.1f} MiB")
            # measured 0.951-0.954 at 40 and 0.984-0.985 at 100 for cosine, l2
            # and ip (dense 384-d: 0.97 at 40), 0.928 and 0.975 for l1 (taxicab
            # neighbourhoods are harder for the graph); a parallel build's
            # graph varies a little per run
            floor40, floor100 = (0.91, 0.96) if metric == "l1" else (0.94, 0.975)
            assert r >= floor40
            assert r100 >= floor100
        finally:
            c.execute("DROP INDEX sparse_s")


def test_hnsw_sparsevec_inserts_and_long_vectors(data, sparse_items):
    extra = sparsify(data[2][:300])
    with connect() as c:
        c.execute("CREATE TABLE sparse_more (id int, s sparsevec(30522))")
        c.execute("CREATE INDEX ON sparse_more USING hnsw (s sparsevec_l2_ops)")
        try:
            # the 384 dimensions of the sparse view, spread over a vocabulary's
            for i, v in enumerate(extra):
                idx = np.nonzero(v)[0]
                c.execute("INSERT INTO sparse_more VALUES (%s, %s)",
                          (i, SparseVector(dict(zip((idx * 79).tolist(), v[idx].tolist())), 30522)))
            # more non-zeros than pgvector's hnsw takes (1000)
            long = {j: float(j % 7 + 1) for j in range(0, 30000, 30)}
            assert len(long) == 1000
            long.update({30001 + j: 1.0 for j in range(13)})
            c.execute("INSERT INTO sparse_more VALUES (-1, %s)", (SparseVector(long, 30522),))
            c.execute("SET enable_seqscan = off")
            rows = c.execute("SELECT id, s FROM sparse_more").fetchall()
            found = 0
            for i, s in rows:
                got = c.execute("SELECT id FROM sparse_more ORDER BY s <-> %s LIMIT 1", (s,), prepare=True).fetchone()
                found += got[0] == i
            print(f"\nsparsevec inserts: {found}/{len(rows)} rows found from their own vector")
            assert found >= len(rows) - 1
            assert c.execute("SELECT id FROM sparse_more ORDER BY s <-> %s LIMIT 1",
                             (SparseVector(long, 30522),)).fetchone()[0] == -1
        finally:
            c.execute("DROP TABLE sparse_more")
