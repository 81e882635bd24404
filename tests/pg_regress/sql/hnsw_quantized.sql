-- hnsw WITH (quantization = 'rabitq'): RaBitQ codes on the index pages
-- instead of vectors (4 bits per dimension, or 1 with bits = 1), searched
-- by estimated distance, rows returned in exact distance order (re-ranked
-- by the rows' own vectors); vector and halfvec columns of up to 16,000
-- dimensions.
SET enable_seqscan = off;

-- Each operator class returns the rows in exact order (300 rows fit the
-- search window, so every row is a candidate and the order is the only
-- right one). Rows go in before and after the build; NULL is never
-- indexed, and under cosine neither is the zero vector.
CREATE TABLE tq (id int, val vector(3));
INSERT INTO tq SELECT i, ARRAY[(i * 7) % 11 - 4, (i * 3) % 13, i % 5 + 1] FROM generate_series(1, 300) i;
INSERT INTO tq VALUES (1000, '[0.5,0.25,0.125]'), (1001, NULL), (1002, '[0,0,0]');
SET hnsw.ef_search = 1000;

CREATE INDEX tq_l2 ON tq USING hnsw (val vector_l2_ops) WITH (quantization = 'rabitq');
SELECT reloptions FROM pg_class WHERE relname = 'tq_l2';
EXPLAIN (COSTS OFF) SELECT id FROM tq ORDER BY val <-> '[3,1,2]' LIMIT 5;
SELECT id, val <-> '[3,1,2]' AS d FROM tq ORDER BY val <-> '[3,1,2]', id LIMIT 5;
SELECT (SELECT array_agg(d) FROM (SELECT val <-> '[3,1,2]' AS d FROM tq ORDER BY val <-> '[3,1,2]' LIMIT 400) s)
     = (SELECT array_agg(l2_distance(val, '[3,1,2]') ORDER BY l2_distance(val, '[3,1,2]')) FROM tq WHERE val IS NOT NULL) AS exact;
INSERT INTO tq VALUES (2000, '[3,1,2.5]');
SELECT id FROM tq ORDER BY val <-> '[3,1,2.4]' LIMIT 1;
-- the query's dimensions are checked as the column's
SELECT id FROM tq ORDER BY val <-> '[3,1]' LIMIT 1;
DROP INDEX tq_l2;

CREATE INDEX tq_ip ON tq USING hnsw (val vector_ip_ops) WITH (quantization = 'rabitq', bits = 1);
SELECT (SELECT array_agg(d) FROM (SELECT val <#> '[1,-2,1]' AS d FROM tq ORDER BY val <#> '[1,-2,1]' LIMIT 400) s)
     = (SELECT array_agg(d ORDER BY d) FROM (SELECT val <#> '[1,-2,1]' AS d FROM tq WHERE val IS NOT NULL) s) AS exact;
SELECT id, val <#> '[1,-2,1]' AS d FROM tq ORDER BY val <#> '[1,-2,1]', id LIMIT 3;
DROP INDEX tq_ip;

CREATE INDEX tq_cos ON tq USING hnsw (val vector_cosine_ops) WITH (quantization = 'rabitq');
SELECT count(*) FROM (SELECT id FROM tq ORDER BY val <=> '[1,2,3]' LIMIT 1000) s;
-- (rows of one direction tie: their distances differ by rounding alone)
SELECT (SELECT array_agg(round(d::numeric, 6)) FROM (SELECT val <=> '[1,2,3]' AS d FROM tq ORDER BY val <=> '[1,2,3]' LIMIT 400) s)
     = (SELECT array_agg(round(d::numeric, 6) ORDER BY d) FROM (SELECT val <=> '[1,2,3]' AS d FROM tq WHERE val IS NOT NULL AND val <> '[0,0,0]') s) AS exact;
DROP INDEX tq_cos;

-- Rows the query's snapshot cannot see are never returned (deleted, not
-- yet vacuumed); a row updated in place (HOT, its index entry unchanged)
-- comes back in its current version.
CREATE INDEX tq_l2 ON tq USING hnsw (val vector_l2_ops) WITH (quantization = 'rabitq', bits = 1);
BEGIN;
DELETE FROM tq WHERE id IN (SELECT id FROM tq ORDER BY val <-> '[3,1,2]' LIMIT 2);
SELECT id FROM tq ORDER BY val <-> '[3,1,2]' LIMIT 3;
ROLLBACK;
SELECT id FROM tq ORDER BY val <-> '[3,1,2]' LIMIT 3;
UPDATE tq SET id = id + 10000 WHERE val = '[3,1,2.5]';
SELECT id FROM tq ORDER BY val <-> '[3,1,2.4]' LIMIT 1;
DELETE FROM tq WHERE id > 10000;
VACUUM tq;
SELECT id FROM tq ORDER BY val <-> '[3,1,2.4]' LIMIT 1;
SELECT r->'ok' AS ok, r->'heap_tids' AS heap_tids FROM (SELECT vector_ext_index_check('tq_l2') AS r) s;
-- filters and iterative scans
SET hnsw.ef_search = 10;
SET hnsw.iterative_scan = strict_order;
SELECT id, val <-> '[3,1,2]' AS d FROM tq WHERE id % 7 = 3 ORDER BY val <-> '[3,1,2]', id LIMIT 4;
SELECT id, val <-> '[3,1,2]' AS d FROM tq WHERE id % 7 = 3 ORDER BY l2_distance(val, '[3,1,2]'), id LIMIT 4;
RESET hnsw.iterative_scan;
SET hnsw.ef_search = 1000;
DROP TABLE tq;

-- An index on an expression re-ranks by the expression's value.
CREATE TABLE te (id int, val vector(4));
INSERT INTO te SELECT i, ARRAY[i % 9, i % 4, (i * 5) % 7, 1] FROM generate_series(1, 200) i;
CREATE INDEX ON te USING hnsw ((val::halfvec(4)) halfvec_l2_ops) WITH (quantization = 'rabitq');
EXPLAIN (COSTS OFF) SELECT id FROM te ORDER BY val::halfvec(4) <-> '[1,2,3,1]' LIMIT 3;
SELECT id, val::halfvec(4) <-> '[1,2,3,1]' AS d FROM te ORDER BY val::halfvec(4) <-> '[1,2,3,1]', id LIMIT 4;
DROP TABLE te;

-- halfvec columns
CREATE TABLE th (id int, val halfvec(3));
INSERT INTO th SELECT i, ARRAY[i % 11, (i * 3) % 7, 2] FROM generate_series(1, 100) i;
CREATE INDEX ON th USING hnsw (val halfvec_cosine_ops) WITH (quantization = 'rabitq');
SELECT (SELECT array_agg(id) FROM (SELECT id FROM th ORDER BY val <=> '[1,1,1]', id LIMIT 100) s)
     = (SELECT array_agg(id ORDER BY cosine_distance(val, '[1,1,1]'), id) FROM th) AS exact;
DROP TABLE th;

-- Up to 16,000 dimensions (full vectors stop at 2,000 for vector and
-- 4,000 for halfvec): 3,072-d and 4,096-d embeddings, and the most a
-- vector has.
CREATE TABLE tbig (id int, val vector(3072));
INSERT INTO tbig SELECT i, ARRAY(SELECT sin(i * j * 0.001)::float4 FROM generate_series(1, 3072) j) FROM generate_series(1, 40) i;
CREATE INDEX tbig_cos ON tbig USING hnsw (val vector_cosine_ops) WITH (quantization = 'rabitq');
INSERT INTO tbig SELECT i, ARRAY(SELECT sin(i * j * 0.001)::float4 FROM generate_series(1, 3072) j) FROM generate_series(41, 60) i;
SELECT id FROM tbig ORDER BY val <=> (SELECT val FROM tbig WHERE id = 45) LIMIT 3;
DELETE FROM tbig WHERE id % 2 = 0;
VACUUM tbig;
SELECT id FROM tbig ORDER BY val <=> (SELECT val FROM tbig WHERE id = 45) LIMIT 3;
SELECT r->'ok' AS ok, r->'heap_tids' AS heap_tids FROM (SELECT vector_ext_index_check('tbig_cos') AS r) s;
DROP TABLE tbig;
CREATE TABLE th4 (id int, val halfvec(4096));
INSERT INTO th4 SELECT i, ARRAY(SELECT cos(i * j * 0.002)::float4 FROM generate_series(1, 4096) j) FROM generate_series(1, 30) i;
CREATE INDEX ON th4 USING hnsw (val halfvec_l2_ops) WITH (quantization = 'rabitq');
SELECT id FROM th4 ORDER BY val <-> (SELECT val FROM th4 WHERE id = 7) LIMIT 3;
DROP TABLE th4;
CREATE TABLE t16 (id int, val vector(16000));
INSERT INTO t16 SELECT i, ARRAY(SELECT ((i * j) % 17)::float4 FROM generate_series(1, 16000) j) FROM generate_series(1, 12) i;
-- four-bit and one-bit codes both take 16,000 dimensions (codes are
-- padded to a multiple of 64: a four-bit element still fits a page)
CREATE INDEX ON t16 USING hnsw (val vector_ip_ops) WITH (quantization = 'rabitq');
CREATE INDEX ON t16 USING hnsw (val vector_ip_ops) WITH (quantization = 'rabitq', bits = 1);
INSERT INTO t16 SELECT 13, ARRAY(SELECT ((13 * j) % 17)::float4 FROM generate_series(1, 16000) j);
SELECT id, val <#> (SELECT val FROM t16 WHERE id = 13) AS d FROM t16 ORDER BY val <#> (SELECT val FROM t16 WHERE id = 13), id LIMIT 3;
DROP TABLE t16;
-- without quantization the limits stay
CREATE TABLE tl (val vector(3072));
CREATE INDEX ON tl USING hnsw (val vector_l2_ops);
DROP TABLE tl;

-- Index size: codes take a fraction of the vectors' pages.
CREATE TABLE tw (id int, val vector(512));
INSERT INTO tw SELECT i, ARRAY(SELECT ((i * j + j * j) % 1999)::float4 FROM generate_series(1, 512) j) FROM generate_series(1, 500) i;
CREATE INDEX tw_full ON tw USING hnsw (val vector_l2_ops);
CREATE INDEX tw_codes ON tw USING hnsw (val vector_l2_ops) WITH (quantization = 'rabitq');
CREATE INDEX tw_bits ON tw USING hnsw (val vector_l2_ops) WITH (quantization = 'rabitq', bits = 1);
SELECT pg_relation_size('tw_codes')::float / pg_relation_size('tw_full') < 0.4 AS four_bits_smaller,
       pg_relation_size('tw_bits')::float / pg_relation_size('tw_full') < 0.25 AS one_bit_smaller;
DROP TABLE tw;

-- What quantization cannot serve is refused.
CREATE TABLE tx (val vector(3), h halfvec(3), s sparsevec(3), b bit(8));
CREATE INDEX ON tx USING hnsw (val vector_l2_ops) WITH (quantization = 'pq');
CREATE INDEX ON tx USING hnsw (val vector_l1_ops) WITH (quantization = 'rabitq');
CREATE INDEX ON tx USING hnsw (s sparsevec_l2_ops) WITH (quantization = 'rabitq');
CREATE INDEX ON tx USING hnsw (b bit_hamming_ops) WITH (quantization = 'rabitq');
CREATE INDEX ON tx USING hnsw (val vector_l2_ops) WITH (quantization = 'rabitq', storage = 'halfvec');
CREATE INDEX ON tx USING hnsw (val vector_l2_ops) WITH (quantization = 'rabitq', bits = 2);
CREATE INDEX ON tx USING hnsw (val vector_l2_ops) WITH (quantization = 'rabitq', bits = 9);
CREATE INDEX ON tx USING hnsw (val vector_l2_ops) WITH (bits = 4);
CREATE INDEX tx_none ON tx USING hnsw (val vector_l2_ops) WITH (quantization = 'none');
ALTER INDEX tx_none SET (quantization = 'rabitq');
DROP TABLE tx;
