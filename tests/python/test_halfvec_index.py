"""Indexes on halfvec columns through SQL on real embeddings
(ds-a-npm-minilm, 384-d, stored as binary16): recall against exact ground
truth of the binary16 values, compared with the same index on the vector
column, and the index sizes."""

import numpy as np
import pytest

from helpers import K, QUERIES, ROWS, connect, exact, index_results, recall, table_with_column

HALF_OPS = {
    "cosine": ("halfvec_cosine_ops", "vector_cosine_ops", "<=>"),
    "l2": ("halfvec_l2_ops", "vector_l2_ops", "<->"),
    "ip": ("halfvec_ip_ops", "vector_ip_ops", "<#>"),
}


@pytest.fixture(scope="module")
def half_items(data):
    yield from table_with_column("half_items", data[0], "h halfvec(384)", "emb")


def half_results(conn, op, queries):
    sql = f"SELECT id FROM half_items ORDER BY h {op} %s::halfvec LIMIT {K}"
    return [[r[0] for r in conn.execute(sql, (q,), prepare=True).fetchall()] for q in queries]


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_hnsw_halfvec_recall_and_size_against_vector(data, half_items, metric):
    base, queries, _ = data
    half_ops, vector_ops, op = HALF_OPS[metric]
    # ground truth of what the column holds: the binary16 values
    base16 = base.astype(np.float16).astype(np.float32)
    queries16 = queries.astype(np.float16).astype(np.float32)
    with connect() as c:
        c.execute(f"CREATE INDEX half_h ON half_items USING hnsw (h {half_ops})")
        c.execute(f"CREATE INDEX half_v ON half_items USING hnsw (emb {vector_ops})")
        try:
            plan = c.execute(f"EXPLAIN SELECT id FROM half_items ORDER BY h {op} %s::halfvec LIMIT 10",
                             (queries[0],)).fetchall()
            assert "Index Scan using half_h" in "\n".join(r[0] for r in plan)
            r_half = recall(half_results(c, op, queries16), exact(base16, queries16, metric))
            r_vec = recall(index_results(c, half_items, op, queries), exact(base, queries, metric))
            sizes = c.execute("SELECT pg_relation_size('half_h'), pg_relation_size('half_v')").fetchone()
            print(f"\n{metric}: recall@10 halfvec {r_half:.4f} vector {r_vec:.4f}; "
                  f"size {sizes[0] / 2**20:.1f} vs {sizes[1] / 2**20:.1f} MiB "
                  f"({sizes[0] / sizes[1]:.2f}x; {QUERIES} queries, {ROWS} rows)")
            assert r_half >= 0.95
            assert r_half >= r_vec - 0.01
            assert sizes[0] <= 0.60 * sizes[1]  # measured 0.58x
        finally:
            c.execute("DROP INDEX half_h")
            c.execute("DROP INDEX half_v")


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_ivfflat_halfvec_recall_against_vector(data, half_items, metric):
    base, queries, _ = data
    half_ops, vector_ops, op = HALF_OPS[metric]
    base16 = base.astype(np.float16).astype(np.float32)
    queries16 = queries.astype(np.float16).astype(np.float32)
    with connect() as c:
        c.execute(f"CREATE INDEX half_h ON half_items USING ivfflat (h {half_ops}) WITH (lists = 100)")
        c.execute(f"CREATE INDEX half_v ON half_items USING ivfflat (emb {vector_ops}) WITH (lists = 100)")
        try:
            c.execute("SET ivfflat.probes = 10")
            r_half = recall(half_results(c, op, queries16), exact(base16, queries16, metric))
            r_vec = recall(index_results(c, half_items, op, queries), exact(base, queries, metric))
            c.execute("SET ivfflat.probes = 100")
            r_all = recall(half_results(c, op, queries16), exact(base16, queries16, metric))
            sizes = c.execute("SELECT pg_relation_size('half_h'), pg_relation_size('half_v')").fetchone()
            print(f"\n{metric}: ivfflat recall@10 at probes 10: halfvec {r_half:.4f} vector {r_vec:.4f}; "
                  f"all lists {r_all:.4f}; size {sizes[0] / sizes[1]:.2f}x")
            # k-means on slightly different samples: the same quality within noise
            assert r_half >= r_vec - 0.03
            assert r_all >= 0.999
            assert sizes[0] <= 0.55 * sizes[1]
        finally:
            c.execute("DROP INDEX half_h")
            c.execute("DROP INDEX half_v")


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_hnsw_storage_halfvec_on_a_vector_column(data, half_items, metric):
    """WITH (storage = 'halfvec') on the vector column: queries stay vector,
    recall against the exact truth of the f32 values is within 0.01 of the
    full-precision index, and the index is as small as a halfvec one."""
    base, queries, _ = data
    _, vector_ops, op = HALF_OPS[metric]
    with connect() as c:
        c.execute(f"CREATE INDEX stored_half ON half_items USING hnsw (emb {vector_ops}) "
                  "WITH (storage = 'halfvec')")
        try:
            truth = exact(base, queries, metric)
            r_half = recall(index_results(c, half_items, op, queries), truth)
            half_size = c.execute("SELECT pg_relation_size('stored_half')").fetchone()[0]
        finally:
            c.execute("DROP INDEX stored_half")
        c.execute(f"CREATE INDEX stored_full ON half_items USING hnsw (emb {vector_ops})")
        try:
            r_full = recall(index_results(c, half_items, op, queries), truth)
            full_size = c.execute("SELECT pg_relation_size('stored_full')").fetchone()[0]
        finally:
            c.execute("DROP INDEX stored_full")
    print(f"\n{metric}: recall@10 storage=halfvec {r_half:.4f} full {r_full:.4f}; "
          f"size {half_size / full_size:.2f}x")
    assert r_half >= r_full - 0.01
    assert half_size <= 0.60 * full_size
