-- Copies of one vector and a narrow search. An element holds 4 to 10 heap
-- rows (as many as keep its pages full; pgvector's hold 10), and elements at
-- exactly the distance of a batch's last come with it: at hnsw.ef_search = 1,
-- LIMIT 10 returns 10 of 20 copies, as pgvector does.
CREATE TABLE dup (i int, v vector(3), h halfvec(3), b bit(3));
INSERT INTO dup SELECT i, '[1,2,3]', '[1,2,3]', '101' FROM generate_series(1, 20) i;
INSERT INTO dup SELECT 100 + i, ARRAY[i, i % 7, i % 5], ARRAY[i, i % 7, i % 5], '010' FROM generate_series(1, 30) i;
CREATE INDEX dup_v ON dup USING hnsw (v vector_l2_ops);
CREATE INDEX dup_h ON dup USING hnsw (h halfvec_l2_ops);
CREATE INDEX dup_b ON dup USING hnsw (b bit_hamming_ops);
SET enable_seqscan = off;
SET hnsw.ef_search = 1;
EXPLAIN (COSTS OFF) SELECT i FROM dup ORDER BY v <-> '[1,2,3]' LIMIT 10;
SELECT count(*) FROM (SELECT i FROM dup ORDER BY v <-> '[1,2,3]' LIMIT 10) t;
SELECT count(*) FROM (SELECT i FROM dup ORDER BY h <-> '[1,2,3]' LIMIT 10) t;
SELECT count(*) FROM (SELECT i FROM dup ORDER BY b <~> '101' LIMIT 10) t;
-- rows inserted one by one after the build share elements the same way
TRUNCATE dup;
INSERT INTO dup SELECT i, '[1,2,3]', '[1,2,3]', '101' FROM generate_series(1, 20) i;
SELECT count(*) FROM (SELECT i FROM dup ORDER BY v <-> '[1,2,3]' LIMIT 10) t;
SELECT count(*) FROM (SELECT i FROM dup ORDER BY h <-> '[1,2,3]' LIMIT 10) t;
SELECT count(*) FROM (SELECT i FROM dup ORDER BY b <~> '101' LIMIT 10) t;
-- all 20 with an iterative scan
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT i FROM dup ORDER BY v <-> '[1,2,3]' LIMIT 30) t;
RESET hnsw.iterative_scan;
RESET hnsw.ef_search;
RESET enable_seqscan;
DROP TABLE dup;
