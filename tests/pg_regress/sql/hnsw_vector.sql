SET enable_seqscan = off;

-- L2

CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_l2_ops);

INSERT INTO t (val) VALUES ('[1,2,4]');

EXPLAIN (COSTS OFF) SELECT * FROM t ORDER BY val <-> '[3,3,3]';
SELECT * FROM t ORDER BY val <-> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <-> (SELECT NULL::vector)) t2;
SELECT COUNT(*) FROM t;

-- a query of other dimensions is an error, as with a sequential scan
SELECT * FROM t ORDER BY val <-> '[3,3]';

TRUNCATE t;
SELECT * FROM t ORDER BY val <-> '[3,3,3]';

DROP TABLE t;

-- inner product

CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_ip_ops);

INSERT INTO t (val) VALUES ('[1,2,4]');

SELECT * FROM t ORDER BY val <#> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <#> (SELECT NULL::vector)) t2;

DROP TABLE t;

-- cosine: zero vectors are not indexed

CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_cosine_ops);

INSERT INTO t (val) VALUES ('[1,2,4]');

SELECT * FROM t ORDER BY val <=> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <=> '[0,0,0]') t2;
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <=> (SELECT NULL::vector)) t2;
SELECT * FROM t CROSS JOIN LATERAL (SELECT * FROM t t2 ORDER BY val <=> t.val LIMIT 1) t2 WHERE t.val != '[0,0,0]' ORDER BY t.val;

DROP TABLE t;

-- L1

CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_l1_ops);

INSERT INTO t (val) VALUES ('[1,2,4]');

SELECT * FROM t ORDER BY val <+> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <+> (SELECT NULL::vector)) t2;

DROP TABLE t;

-- the index only serves its own operator, and only in ORDER BY

CREATE TABLE t (id int, val vector(3));
INSERT INTO t SELECT i, ARRAY[i / 100.0, sin(i), cos(i)] FROM generate_series(1, 1000) i;
CREATE INDEX t_l2 ON t USING hnsw (val vector_l2_ops);
ANALYZE t;
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY val <=> '[1,0,1]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM t WHERE val = '[3,3,3]';
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY val <-> '[1,0,1]' DESC LIMIT 5;
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 5;
SELECT id FROM t WHERE id % 2 = 0 ORDER BY val <-> '[1,0,1]' LIMIT 3;
-- duplicates: many rows with one vector all come back
INSERT INTO t SELECT 2000 + i, '[50,1,1]' FROM generate_series(1, 25) i;
SELECT count(*) FROM (SELECT id FROM t ORDER BY val <-> '[50,1,1]' LIMIT 25) s WHERE id > 2000;
-- stats count index scans
SELECT pg_stat_force_next_flush();
SELECT idx_scan > 0 AS scanned FROM pg_stat_user_indexes WHERE indexrelname = 't_l2';
DROP TABLE t;

-- iterative

CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_l2_ops);

SET hnsw.iterative_scan = strict_order;
SET hnsw.ef_search = 1;
SELECT * FROM t ORDER BY val <-> '[3,3,3]';

SET hnsw.iterative_scan = relaxed_order;
SELECT * FROM t ORDER BY val <-> '[3,3,3]';

SET hnsw.iterative_scan = off;
SELECT * FROM t ORDER BY val <-> '[3,3,3]';

TRUNCATE t;
SET hnsw.iterative_scan = relaxed_order;
SELECT * FROM t ORDER BY val <-> '[3,3,3]';

RESET hnsw.iterative_scan;
RESET hnsw.ef_search;
DROP TABLE t;

-- filtered queries with iterative scans return every qualifying row

CREATE TABLE t (id int, cat int, val vector(2));
INSERT INTO t SELECT i, i % 100, ARRAY[cos(i), sin(i)] FROM generate_series(1, 5000) i;
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
SET hnsw.ef_search = 10;
SELECT count(*) FROM (SELECT id FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 10) s;
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 10) s;
SET hnsw.iterative_scan = strict_order;
SELECT count(*) FROM (SELECT id FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 10) s;
-- strict order: distances never decrease
SELECT bool_and(d >= prev) FROM (
  SELECT d, lag(d, 1, 0::float8) OVER () AS prev FROM (
    SELECT val <-> '[1,0]' AS d FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 40) s) s2;
-- max_scan_tuples bounds the work: a filter no row passes stops early
SET hnsw.max_scan_tuples = 100;
SELECT count(*) FROM (SELECT id FROM t WHERE cat = 1000 ORDER BY val <-> '[1,0]' LIMIT 10) s;
RESET hnsw.max_scan_tuples;
RESET hnsw.iterative_scan;
RESET hnsw.ef_search;
DROP TABLE t;

-- unlogged

CREATE UNLOGGED TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING hnsw (val vector_l2_ops);

SELECT * FROM t ORDER BY val <-> '[3,3,3]';

DROP TABLE t;

-- concurrently, reindex, vacuum

CREATE TABLE t (id int, val vector(3));
INSERT INTO t SELECT i, ARRAY[i / 100.0, sin(i), cos(i)] FROM generate_series(1, 300) i;
CREATE INDEX CONCURRENTLY t_idx ON t USING hnsw (val vector_l1_ops);
SELECT id FROM t ORDER BY val <+> '[1,0,1]' LIMIT 3;
REINDEX INDEX t_idx;
SELECT id FROM t ORDER BY val <+> '[1,0,1]' LIMIT 3;
REINDEX INDEX CONCURRENTLY t_idx;
SELECT id FROM t ORDER BY val <+> '[1,0,1]' LIMIT 3;
DELETE FROM t WHERE id IN (88, 107);
VACUUM t;
SELECT id FROM t ORDER BY val <+> '[1,0,1]' LIMIT 3;
DELETE FROM t WHERE id <= 280;
VACUUM t;
SELECT id FROM t ORDER BY val <+> '[1,0,1]' LIMIT 20;
INSERT INTO t VALUES (1, '[1,1,1]');
SELECT id FROM t ORDER BY val <+> '[1,0,1]' LIMIT 1;
DELETE FROM t;
VACUUM t;
SELECT id FROM t ORDER BY val <+> '[1,0,1]' LIMIT 1;
INSERT INTO t VALUES (2, '[2,2,2]');
SELECT id FROM t ORDER BY val <+> '[1,0,1]' LIMIT 1;
DROP TABLE t;

-- inserts take the space VACUUM freed: the index does not grow
CREATE TABLE t (id int, val vector(16));
CREATE INDEX t_idx ON t USING hnsw (val vector_l2_ops) WITH (m = 8);
INSERT INTO t SELECT i, (SELECT array_agg(sin(i * j + j)) FROM generate_series(1, 16) j)::vector FROM generate_series(1, 3000) i;
SELECT pg_relation_size('t_idx') AS grown \gset
DELETE FROM t WHERE id > 2000;
VACUUM t;
INSERT INTO t SELECT i, (SELECT array_agg(sin(i * j + j)) FROM generate_series(1, 16) j)::vector FROM generate_series(3001, 4000) i;
SELECT pg_relation_size('t_idx') <= :grown + 3 * 8192 AS space_reused;
SELECT r->'ok' AS ok, r->'heap_tids' AS heap_tids FROM (SELECT vector_ext_index_check('t_idx') AS r) s;
-- rows in reused space are found from their own vector
SET hnsw.ef_search = 100;
SELECT count(*) >= 995 AS found FROM t WHERE id > 3000 AND id = (SELECT t2.id FROM t t2 ORDER BY t2.val <-> t.val LIMIT 1);
RESET hnsw.ef_search;
DROP TABLE t;

-- a graph that outgrows maintenance_work_mem continues on disk

CREATE TABLE t (id int, val vector(64));
INSERT INTO t SELECT i, array_fill(sin(i)::real, ARRAY[32]) || array_fill(cos(i)::real, ARRAY[32]) FROM generate_series(1, 3000) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
RESET maintenance_work_mem;
-- every row is its own nearest neighbour through the index
SELECT count(*) FROM t WHERE id = (SELECT t2.id FROM t t2 ORDER BY t2.val <-> t.val LIMIT 1);
SELECT count(*) FROM t;
DROP TABLE t;

-- options

CREATE TABLE t (val vector(3));
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 1);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 101);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (ef_construction = 3);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (ef_construction = 1001);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 16, ef_construction = 31);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 16, ef_construction = 32);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 2, ef_construction = 4);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 100, ef_construction = 1000);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (lists = 10);
CREATE INDEX ON t USING hnsw (val vector_l2_ops) WITH (m = 'x');
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 't_val_idx%' ORDER BY relname;
DROP TABLE t;

SHOW hnsw.ef_search;
SET hnsw.ef_search = 0;
SET hnsw.ef_search = 1001;
SET hnsw.ef_search = 1;
SET hnsw.ef_search = 1000;
RESET hnsw.ef_search;

SHOW hnsw.iterative_scan;
SET hnsw.iterative_scan = on;

SHOW hnsw.max_scan_tuples;
SET hnsw.max_scan_tuples = 0;

SHOW hnsw.scan_mem_multiplier;
SET hnsw.scan_mem_multiplier = 0;
SET hnsw.scan_mem_multiplier = 1001;

SET hnsw.no_such_setting = 1;

-- operator classes and errors

CREATE TABLE t (val vector(3), n int);
CREATE INDEX ON t USING hnsw (val);
CREATE INDEX ON t USING hnsw (n int4_ops);
CREATE INDEX ON t USING hnsw (val vector_l2_ops, val vector_ip_ops);
DROP TABLE t;

CREATE TABLE t (val vector);
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
DROP TABLE t;

-- dimensions: pgvector's 2000 and up to what fits on a page

CREATE TABLE t (val vector(2000));
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
DROP TABLE t;

CREATE TABLE t (val vector(2020));
INSERT INTO t SELECT array_fill(i::real, ARRAY[2020]) FROM generate_series(1, 5) i;
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
SELECT subvector(val, 2019, 2) FROM t ORDER BY val <-> array_fill(2.2::real, ARRAY[2020])::vector LIMIT 2;
DROP TABLE t;

CREATE TABLE t (val vector(2021));
CREATE INDEX ON t USING hnsw (val vector_l2_ops);
DROP TABLE t;

-- temporary tables: the index lives in the backend's local buffers

CREATE TEMP TABLE tt (id int, v vector(8));
INSERT INTO tt SELECT i, ARRAY[sin(i), cos(i), sin(2*i), cos(2*i), sin(3*i), cos(3*i), sin(5*i), cos(5*i)]::real[]::vector FROM generate_series(1, 3000) i;
SET max_parallel_maintenance_workers = 0;
CREATE INDEX tt_idx ON tt USING hnsw (v vector_l2_ops);
RESET max_parallel_maintenance_workers;
INSERT INTO tt SELECT i, ARRAY[sin(i), cos(i), sin(2*i), cos(2*i), sin(3*i), cos(3*i), sin(5*i), cos(5*i)]::real[]::vector FROM generate_series(3001, 4000) i;
DELETE FROM tt WHERE id % 3 = 0;
VACUUM tt;
SET enable_seqscan = off;
SET hnsw.ef_search = 200;
EXPLAIN (COSTS OFF) SELECT id FROM tt ORDER BY v <-> '[1,1,1,1,1,1,1,1]' LIMIT 5;
SELECT count(*) AS rows, count(*) FILTER (WHERE found = id) AS found_themselves
FROM (SELECT id, (SELECT t2.id FROM tt t2 ORDER BY t2.v <-> t1.v LIMIT 1) AS found
      FROM tt t1 WHERE id % 50 = 1) s;
RESET hnsw.ef_search;
RESET enable_seqscan;
DROP TABLE tt;
