SET enable_seqscan = off;

-- L2

CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 1);

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
CREATE INDEX ON t USING ivfflat (val vector_ip_ops) WITH (lists = 1);

INSERT INTO t (val) VALUES ('[1,2,4]');

SELECT * FROM t ORDER BY val <#> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <#> (SELECT NULL::vector)) t2;

DROP TABLE t;

-- cosine: zero vectors are not indexed

CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING ivfflat (val vector_cosine_ops) WITH (lists = 1);

INSERT INTO t (val) VALUES ('[1,2,4]');

SELECT * FROM t ORDER BY val <=> '[3,3,3]';
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <=> '[0,0,0]') t2;
SELECT COUNT(*) FROM (SELECT * FROM t ORDER BY val <=> (SELECT NULL::vector)) t2;

DROP TABLE t;

-- little data: more lists than rows

CREATE TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 5);
SET ivfflat.probes = 5;
SELECT * FROM t ORDER BY val <-> '[3,3,3]';
RESET ivfflat.probes;
DROP TABLE t;

-- the default opclass is L2; the index serves only its operator in ORDER BY

CREATE TABLE t (id int, val vector(3));
INSERT INTO t SELECT i, ARRAY[i / 100.0, sin(i), cos(i)] FROM generate_series(1, 1000) i;
CREATE INDEX t_l2 ON t USING ivfflat (val) WITH (lists = 10);
ANALYZE t;
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY val <=> '[1,0,1]' LIMIT 5;
EXPLAIN (COSTS OFF) SELECT id FROM t WHERE val = '[3,3,3]';
EXPLAIN (COSTS OFF) SELECT id FROM t ORDER BY val <-> '[1,0,1]' DESC LIMIT 5;
SET ivfflat.probes = 10;
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 5;
SELECT id FROM t WHERE id % 2 = 0 ORDER BY val <-> '[1,0,1]' LIMIT 3;
RESET ivfflat.probes;
-- one probe: the nearest list only, still nearest first
SELECT bool_and(d >= prev) FROM (
  SELECT d, lag(d, 1, 0::float8) OVER () AS prev FROM (
    SELECT val <-> '[1,0,1]' AS d FROM t ORDER BY val <-> '[1,0,1]') s) s2;
SELECT count(*) < 1000 FROM (SELECT id FROM t ORDER BY val <-> '[1,0,1]') s;
-- duplicates: many rows with one vector all come back
INSERT INTO t SELECT 2000 + i, '[50,1,1]' FROM generate_series(1, 25) i;
SELECT count(*) FROM (SELECT id FROM t ORDER BY val <-> '[50,1,1]' LIMIT 25) s WHERE id > 2000;
-- stats count index scans
SELECT pg_stat_force_next_flush();
SELECT idx_scan > 0 AS scanned FROM pg_stat_user_indexes WHERE indexrelname = 't_l2';
DROP TABLE t;

-- iterative scans: filtered queries return every qualifying row

CREATE TABLE t (id int, cat int, val vector(2));
INSERT INTO t SELECT i, i % 100, ARRAY[cos(i), sin(i)] FROM generate_series(1, 5000) i;
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 50);
-- one probe: only the rows of the nearest list (how many depends on the clustering)
SELECT count(*) < 10 FROM (SELECT id FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 10) s;
SET ivfflat.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 10) s;
SELECT count(*) FROM (SELECT id FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 100) s;
-- max_probes bounds the scan; below probes, probes wins
SET ivfflat.max_probes = 2;
SELECT count(*) < 10 FROM (SELECT id FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 10) s;
SET ivfflat.probes = 50;
SELECT count(*) FROM (SELECT id FROM t WHERE cat = 7 ORDER BY val <-> '[1,0]' LIMIT 100) s;
RESET ivfflat.probes;
RESET ivfflat.max_probes;
RESET ivfflat.iterative_scan;
DROP TABLE t;

-- unlogged

CREATE UNLOGGED TABLE t (val vector(3));
INSERT INTO t (val) VALUES ('[0,0,0]'), ('[1,2,3]'), ('[1,1,1]'), (NULL);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 1);

SELECT * FROM t ORDER BY val <-> '[3,3,3]';

DROP TABLE t;

-- concurrently, reindex, vacuum

CREATE TABLE t (id int, val vector(3));
INSERT INTO t SELECT i, ARRAY[i / 100.0, sin(i), cos(i)] FROM generate_series(1, 300) i;
CREATE INDEX CONCURRENTLY t_idx ON t USING ivfflat (val vector_l2_ops) WITH (lists = 3);
SET ivfflat.probes = 3;
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 3;
REINDEX INDEX t_idx;
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 3;
REINDEX INDEX CONCURRENTLY t_idx;
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 3;
DELETE FROM t WHERE id IN (99, 100);
VACUUM t;
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 3;
DELETE FROM t WHERE id <= 280;
VACUUM t;
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 20;
INSERT INTO t VALUES (1, '[1,0,1]');
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 1;
DELETE FROM t;
VACUUM t;
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 1;
INSERT INTO t VALUES (2, '[2,2,2]');
SELECT id FROM t ORDER BY val <-> '[1,0,1]' LIMIT 1;
RESET ivfflat.probes;
DROP TABLE t;

-- lists that outgrow maintenance_work_mem while building are written out
-- early, and the sample must fit in it

CREATE TABLE t (id int, val vector(64));
INSERT INTO t SELECT i, array_fill(sin(i)::real, ARRAY[32]) || array_fill(cos(i)::real, ARRAY[32]) FROM generate_series(1, 3000) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 20);
SET ivfflat.probes = 20;
-- every row is its own nearest neighbour through the index
SELECT count(*) FROM t WHERE id = (SELECT t2.id FROM t t2 ORDER BY t2.val <-> t.val LIMIT 1);
RESET ivfflat.probes;
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 1000);
RESET maintenance_work_mem;
DROP TABLE t;

-- options

CREATE TABLE t (val vector(3));
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 0);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 32769);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 1);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 32768);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (m = 16);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 'x');
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 't_val_idx%' ORDER BY relname;
DROP TABLE t;

SHOW ivfflat.probes;
SET ivfflat.probes = 0;
SET ivfflat.probes = 32769;
SET ivfflat.probes = 32768;
RESET ivfflat.probes;

SHOW ivfflat.iterative_scan;
SET ivfflat.iterative_scan = strict_order;

SHOW ivfflat.max_probes;
SET ivfflat.max_probes = 0;
SET ivfflat.max_probes = 32769;

SET ivfflat.no_such_setting = 1;

-- operator classes and errors

CREATE TABLE t (val vector(3), n int);
CREATE INDEX ON t USING ivfflat (n int4_ops);
CREATE INDEX ON t USING ivfflat (val vector_l1_ops);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops, val vector_ip_ops);
DROP TABLE t;

CREATE TABLE t (val vector);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops);
DROP TABLE t;

CREATE TABLE t (val vector(1));
CREATE INDEX ON t USING ivfflat (val vector_cosine_ops);
CREATE INDEX ON t USING ivfflat (val vector_ip_ops);
CREATE INDEX ON t USING ivfflat (val vector_l2_ops);
DROP TABLE t;

-- dimensions: pgvector's 2000 and up to what fits on a page

CREATE TABLE t (val vector(2000));
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 1);
DROP TABLE t;

CREATE TABLE t (val vector(2036));
INSERT INTO t SELECT array_fill(i::real, ARRAY[2036]) FROM generate_series(1, 5) i;
CREATE INDEX ON t USING ivfflat (val vector_l2_ops) WITH (lists = 2);
SET ivfflat.probes = 2;
SELECT subvector(val, 2035, 2) FROM t ORDER BY val <-> array_fill(2.2::real, ARRAY[2036])::vector LIMIT 2;
RESET ivfflat.probes;
DROP TABLE t;

CREATE TABLE t (val vector(2037));
CREATE INDEX ON t USING ivfflat (val vector_l2_ops);
DROP TABLE t;
