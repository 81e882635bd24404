"""hnsw on bit strings through SQL: the binary quantization of ds-a
(384 bits a row, 20k rows), Hamming and Jaccard recall against exact
numpy distances. Hamming distances tie often, so a returned row counts
when its distance is within the exact 10th-nearest distance."""

import numpy as np
import pytest

from helpers import K, QUERIES, connect, table_with_column


@pytest.fixture(scope="module")
def bit_items(data):
    yield from table_with_column("bit_items", data[0], "b bit(384)", "binary_quantize(emb)")


def distances(metric, base_bits, q_bits):
    if metric == "hamming":
        return (base_bits != q_bits).sum(1).astype(np.float64)
    both = (base_bits & q_bits).sum(1)
    either = (base_bits | q_bits).sum(1)
    return np.where(both == 0, 1.0, 1.0 - both / np.maximum(either, 1))


@pytest.mark.parametrize("metric,opclass,op", [("hamming", "bit_hamming_ops", "<~>"),
                                               ("jaccard", "bit_jaccard_ops", "<%%>")])
def test_hnsw_bit_recall(data, bit_items, metric, opclass, op):
    base, queries, _ = data
    base_bits = base > 0
    with connect() as c:
        # op goes through psycopg's placeholders: % is written %%
        c.execute(f"CREATE INDEX bit_idx ON bit_items USING hnsw (b {opclass})")
        try:
            sql = f"SELECT id FROM bit_items ORDER BY b {op} binary_quantize(%s::vector) LIMIT {K}"
            plan = c.execute("EXPLAIN " + sql, (queries[0],)).fetchall()
            assert "Index Scan using bit_idx" in "\n".join(r[0] for r in plan)
            for ef, bar in [(40, 0.93), (100, 0.98)]:
                c.execute(f"SET hnsw.ef_search = {ef}")
                hits = 0
                for q in queries:
                    d = distances(metric, base_bits, q > 0)
                    kth = np.partition(d, K - 1)[K - 1]
                    ids = [r[0] for r in c.execute(sql, (q,), prepare=True).fetchall()]
                    assert len(ids) == K
                    # the index orders by f32 distances: a tie within f32 rounding is a hit
                    hits += sum(d[i] <= kth + 1e-6 for i in ids)
                r = hits / (K * len(queries))
                print(f"\n{metric}: recall@10 {r:.4f} at ef_search {ef} on 384-bit binary quantization "
                      f"({QUERIES} queries)")
                assert r >= bar
        finally:
            c.execute("DROP INDEX bit_idx")


def test_ivfflat_bit_recall(data, bit_items):
    base, queries, _ = data
    base_bits = base > 0
    with connect() as c:
        c.execute("CREATE INDEX bit_ivf ON bit_items USING ivfflat (b bit_hamming_ops) WITH (lists = 100)")
        try:
            sql = f"SELECT id FROM bit_items ORDER BY b <~> binary_quantize(%s::vector) LIMIT {K}"
            results = {}
            for probes in (10, 100):
                c.execute(f"SET ivfflat.probes = {probes}")
                hits = 0
                for q in queries:
                    d = distances("hamming", base_bits, q > 0)
                    kth = np.partition(d, K - 1)[K - 1]
                    ids = [r[0] for r in c.execute(sql, (q,), prepare=True).fetchall()]
                    hits += sum(d[i] <= kth for i in ids)
                results[probes] = hits / (K * len(queries))
                print(f"\nivfflat hamming: recall@10 {results[probes]:.4f} at probes {probes}")
            assert results[100] == 1.0  # every list: exact
            assert results[10] >= 0.8
        finally:
            c.execute("DROP INDEX bit_ivf")
