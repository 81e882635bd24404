-- hnsw on vector columns: what each operator class returns, which queries
-- the index serves, iterative scans, maintenance, options, settings, errors.
SET enable_seqscan = off;

-- Each operator class returns rows nearest first by its own distance (no
-- two at the same distance, so the order is the only right one). Five
-- rows go in before the build, one after (the insert path); NULL is never
-- indexed, and under cosine neither is the zero vector (no direction).
CREATE TABLE pts (id int PRIMARY KEY, v vector(3));
INSERT INTO pts VALUES (1, '[2,0,1]'), (2, '[0,0,0]'), (3, '[1,4,3]'), (4, NULL), (5, '[-1,2,3]');

CREATE INDEX pts_v ON pts USING hnsw (v vector_l2_ops);
INSERT INTO pts VALUES (6, '[3,3,2]');
EXPLAIN (COSTS OFF) SELECT id FROM pts ORDER BY v <-> '[2,2,2]';
SELECT id, round((v <-> '[2,2,2]')::numeric, 4) AS l2 FROM pts ORDER BY v <-> '[2,2,2]';
-- a NULL query orders nothing but still returns every indexed row
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <-> (SELECT NULL::vector)) s;
-- a query of other dimensions fails as the operator does in a seq scan
SELECT id FROM pts ORDER BY v <-> '[2,2]';
DROP INDEX pts_v;

CREATE INDEX pts_v ON pts USING hnsw (v vector_ip_ops);
INSERT INTO pts VALUES (7, '[0,1,5]');
SELECT id, v <#> '[1,2,1]' AS negative_ip FROM pts ORDER BY v <#> '[1,2,1]';
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <#> (SELECT NULL::vector)) s;
DROP INDEX pts_v;

CREATE INDEX pts_v ON pts USING hnsw (v vector_cosine_ops);
INSERT INTO pts VALUES (8, '[4,1,2]');
SELECT id, round((v <=> '[1,1,0]')::numeric, 4) AS cosine FROM pts ORDER BY v <=> '[1,1,0]';
-- the zero query has no direction either: it orders nothing, and every
-- indexed row still comes back
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <=> '[0,0,0]') s;
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <=> (SELECT NULL::vector)) s;
-- each row's nearest other row by angle, through the index in a lateral join
SELECT p.id, q.id AS nearest FROM pts p
  CROSS JOIN LATERAL (SELECT id FROM pts o WHERE o.id <> p.id ORDER BY o.v <=> p.v LIMIT 1) q
  WHERE p.v <> '[0,0,0]' ORDER BY p.id;
DROP INDEX pts_v;

CREATE INDEX pts_v ON pts USING hnsw (v vector_l1_ops);
INSERT INTO pts VALUES (9, '[2,2,3]');
SELECT id, v <+> '[3,3,3]' AS l1 FROM pts ORDER BY v <+> '[3,3,3]';
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <+> (SELECT NULL::vector)) s;

-- an emptied table has an empty index
TRUNCATE pts;
SELECT id FROM pts ORDER BY v <+> '[3,3,3]';
DROP TABLE pts;

-- The index serves ORDER BY its own operator ascending, nothing else
-- (planner_versions.sql checks the plans of the rest); rows
-- of equal vectors all come back; scans count in pg_stat_user_indexes.
CREATE TABLE spiral (id int, v vector(3));
INSERT INTO spiral SELECT i, ARRAY[cos(i / 7.0), sin(i / 7.0), i / 500.0] FROM generate_series(1, 1500) i;
CREATE INDEX spiral_v ON spiral USING hnsw (v vector_l2_ops);
ANALYZE spiral;
EXPLAIN (COSTS OFF) SELECT id FROM spiral ORDER BY v <-> '[0,1,1]' LIMIT 4;
SELECT id FROM spiral ORDER BY v <-> '[0,1,1]' LIMIT 4;
SELECT id FROM spiral WHERE id % 3 = 0 ORDER BY v <-> '[0,1,1]' LIMIT 4;
INSERT INTO spiral SELECT 5000 + i, '[9,9,9]' FROM generate_series(1, 30) i;
SELECT count(*) AS copies FROM (SELECT id FROM spiral ORDER BY v <-> '[9,9,9]' LIMIT 30) s WHERE id > 5000;
SELECT pg_stat_force_next_flush();
SELECT idx_scan > 0 AS counted FROM pg_stat_user_indexes WHERE indexrelname = 'spiral_v';
DROP TABLE spiral;

-- Iterative scans: with ef_search 1 a plain scan returns what one search
-- finds; iterative ones go on until every row is out (strict_order in
-- distance order), also on an empty index.
CREATE TABLE few (id int, v vector(3));
INSERT INTO few VALUES (1, '[5,5,5]'), (2, '[1,0,0]'), (3, '[4,4,5]'), (4, NULL), (5, '[0,0,2]');
CREATE INDEX ON few USING hnsw (v vector_l2_ops);
SET hnsw.ef_search = 1;
SET hnsw.iterative_scan = strict_order;
SELECT id FROM few ORDER BY v <-> '[4,4,4]';
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM few ORDER BY v <-> '[4,4,4]') s;
SET hnsw.iterative_scan = off;
SELECT count(*) FROM (SELECT id FROM few ORDER BY v <-> '[4,4,4]') s;
TRUNCATE few;
SET hnsw.iterative_scan = strict_order;
SELECT id FROM few ORDER BY v <-> '[4,4,4]';
RESET hnsw.iterative_scan;
RESET hnsw.ef_search;
DROP TABLE few;

-- A filter that keeps 1 row in 50: a plain scan of ef_search 10 finds few
-- of them, iterative scans find all that LIMIT asks for.
CREATE TABLE ring (id int, tag int, v vector(2));
INSERT INTO ring SELECT i, i % 50, ARRAY[cos(i * 0.37), sin(i * 0.37)] FROM generate_series(1, 4000) i;
CREATE INDEX ON ring USING hnsw (v vector_l2_ops);
SET hnsw.ef_search = 10;
SELECT count(*) < 8 AS few FROM (SELECT id FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 8) s;
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 8) s;
SET hnsw.iterative_scan = strict_order;
SELECT count(*) FROM (SELECT id FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 8) s;
SELECT bool_and(d >= before) AS never_nearer FROM (
  SELECT d, lag(d, 1, 0::float8) OVER () AS before FROM (
    SELECT v <-> '[0,1]' AS d FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 30) s) s2;
-- hnsw.max_scan_tuples stops a scan for a filter no row passes
SET hnsw.max_scan_tuples = 50;
SELECT count(*) FROM (SELECT id FROM ring WHERE tag = 99 ORDER BY v <-> '[0,1]' LIMIT 8) s;
RESET hnsw.max_scan_tuples;
RESET hnsw.iterative_scan;
RESET hnsw.ef_search;
DROP TABLE ring;

-- Unlogged tables get an unlogged index (and its init fork).
CREATE UNLOGGED TABLE scratch (id int, v vector(3));
INSERT INTO scratch VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, NULL);
CREATE INDEX scratch_v ON scratch USING hnsw (v vector_l2_ops);
SELECT id FROM scratch ORDER BY v <-> '[2,2,3]';
SELECT relpersistence FROM pg_class WHERE relname = 'scratch_v';
DROP TABLE scratch;

-- Maintenance: CREATE INDEX CONCURRENTLY, REINDEX (also concurrently),
-- VACUUM after deletes of a few rows, of most, of all; inserts afterwards.
CREATE TABLE helix (id int, v vector(3));
INSERT INTO helix SELECT i, ARRAY[cos(i / 5.0), sin(i / 5.0), i / 50.0] FROM generate_series(1, 400) i;
CREATE INDEX CONCURRENTLY helix_v ON helix USING hnsw (v vector_l1_ops);
SELECT id FROM helix ORDER BY v <+> '[1,0,4]' LIMIT 3;
REINDEX INDEX helix_v;
SELECT id FROM helix ORDER BY v <+> '[1,0,4]' LIMIT 3;
REINDEX INDEX CONCURRENTLY helix_v;
SELECT id FROM helix ORDER BY v <+> '[1,0,4]' LIMIT 3;
DELETE FROM helix WHERE id IN (188, 201);
VACUUM helix;
SELECT id FROM helix ORDER BY v <+> '[1,0,4]' LIMIT 3;
DELETE FROM helix WHERE id < 390;
VACUUM helix;
SELECT id FROM helix ORDER BY v <+> '[1,0,4]';
INSERT INTO helix VALUES (1000, '[1,0,4]');
SELECT id FROM helix ORDER BY v <+> '[1,0,4]' LIMIT 1;
DELETE FROM helix;
VACUUM helix;
SELECT id FROM helix ORDER BY v <+> '[1,0,4]';
INSERT INTO helix VALUES (1001, '[0,0,0]');
SELECT id FROM helix ORDER BY v <+> '[1,0,4]';
DROP TABLE helix;

-- Space VACUUM frees is taken by later inserts: the index stays the size
-- it was, checks clean, and rows written into freed space are found
-- (most of them: rows on this curve have close neighbours).
CREATE TABLE churn (id int, v vector(12));
CREATE INDEX churn_v ON churn USING hnsw (v vector_l2_ops) WITH (m = 6);
INSERT INTO churn SELECT i, (SELECT array_agg(cos(i * k * 0.7 + k)) FROM generate_series(1, 12) k)::vector FROM generate_series(1, 2500) i;
SELECT pg_relation_size('churn_v') AS before_delete \gset
DELETE FROM churn WHERE id % 3 = 0;
VACUUM churn;
INSERT INTO churn SELECT i, (SELECT array_agg(cos(i * k * 0.7 + k)) FROM generate_series(1, 12) k)::vector FROM generate_series(2501, 3300) i;
SELECT pg_relation_size('churn_v') <= :before_delete + 2 * 8192 AS reused;
SELECT r->'ok' AS ok, r->'heap_tids' AS heap_tids FROM (SELECT vector_ext_index_check('churn_v') AS r) s;
SET hnsw.ef_search = 100;
SELECT count(*) >= 750 AS found_themselves FROM churn c
  WHERE id > 2500 AND id = (SELECT o.id FROM churn o ORDER BY o.v <-> c.v LIMIT 1);
RESET hnsw.ef_search;
DROP TABLE churn;

-- A build whose graph outgrows maintenance_work_mem goes on inserting into
-- the pages written so far; nearly every row finds itself (the curve
-- crosses itself, where rows of its two branches lie close).
CREATE TABLE wide (id int, v vector(48));
INSERT INTO wide SELECT i, array_fill(cos(i)::real, ARRAY[24]) || array_fill(sin(i * 2)::real, ARRAY[24]) FROM generate_series(1, 2500) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX ON wide USING hnsw (v vector_l2_ops);
RESET maintenance_work_mem;
SELECT count(*) AS rows, count(*) FILTER (WHERE id = (SELECT o.id FROM wide o ORDER BY o.v <-> w.v LIMIT 1)) >= 0.98 * count(*) AS found_themselves FROM wide w;
DROP TABLE wide;

-- Reloptions m (2..100) and ef_construction (4..1000, at least 2 * m).
CREATE TABLE opts (v vector(3));
CREATE INDEX opts_m1 ON opts USING hnsw (v vector_l2_ops) WITH (m = 1);
CREATE INDEX opts_m101 ON opts USING hnsw (v vector_l2_ops) WITH (m = 101);
CREATE INDEX opts_ef3 ON opts USING hnsw (v vector_l2_ops) WITH (ef_construction = 3);
CREATE INDEX opts_ef1001 ON opts USING hnsw (v vector_l2_ops) WITH (ef_construction = 1001);
CREATE INDEX opts_small_ef ON opts USING hnsw (v vector_l2_ops) WITH (m = 10, ef_construction = 19);
CREATE INDEX opts_twice ON opts USING hnsw (v vector_l2_ops) WITH (m = 10, ef_construction = 20);
CREATE INDEX opts_least ON opts USING hnsw (v vector_l2_ops) WITH (m = 2, ef_construction = 4);
CREATE INDEX opts_most ON opts USING hnsw (v vector_l2_ops) WITH (m = 100, ef_construction = 1000);
CREATE INDEX opts_lists ON opts USING hnsw (v vector_l2_ops) WITH (lists = 4);
CREATE INDEX opts_text ON opts USING hnsw (v vector_l2_ops) WITH (ef_construction = 'many');
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'opts_%' ORDER BY relname;
DROP TABLE opts;

-- Settings and their bounds.
SHOW hnsw.ef_search;
SET hnsw.ef_search = 0;
SET hnsw.ef_search = 1001;
SET hnsw.ef_search = 1000;
SHOW hnsw.ef_search;
RESET hnsw.ef_search;
SHOW hnsw.iterative_scan;
SET hnsw.iterative_scan = sometimes;
SHOW hnsw.max_scan_tuples;
SET hnsw.max_scan_tuples = -1;
SHOW hnsw.scan_mem_multiplier;
SET hnsw.scan_mem_multiplier = 0.5;
SET hnsw.scan_mem_multiplier = 1000.5;
SET hnsw.not_a_setting = on;

-- Errors: no default operator class, a type hnsw has no class for, two
-- columns, and a column without dimensions.
CREATE TABLE bad (v vector(3), n int, u vector);
CREATE INDEX ON bad USING hnsw (v);
CREATE INDEX ON bad USING hnsw (n int4_ops);
CREATE INDEX ON bad USING hnsw (v vector_l2_ops, v vector_cosine_ops);
CREATE INDEX ON bad USING hnsw (u vector_l2_ops);
DROP TABLE bad;

-- Dimensions: pgvector's 2000, and up to 2020 (what one page holds); more
-- is refused with the limit in the message.
CREATE TABLE big (v vector(2000));
CREATE INDEX ON big USING hnsw (v vector_l2_ops);
DROP TABLE big;
CREATE TABLE big (v vector(2020));
INSERT INTO big SELECT array_fill(i::real, ARRAY[2020]) FROM generate_series(1, 4) i;
CREATE INDEX ON big USING hnsw (v vector_l2_ops);
SELECT subvector(v, 1, 3) FROM big ORDER BY v <-> array_fill(3.1::real, ARRAY[2020])::vector LIMIT 2;
DROP TABLE big;
CREATE TABLE big (v vector(2021));
CREATE INDEX ON big USING hnsw (v vector_l2_ops);
DROP TABLE big;

-- Temporary tables keep the index in the backend's local buffers: build,
-- inserts, VACUUM and scans all work there.
CREATE TEMP TABLE local_pts (id int, v vector(6));
INSERT INTO local_pts SELECT i, ARRAY[cos(i), sin(i), cos(3 * i), sin(3 * i), cos(7 * i), sin(7 * i)]::real[]::vector FROM generate_series(1, 2500) i;
SET max_parallel_maintenance_workers = 0;
CREATE INDEX ON local_pts USING hnsw (v vector_l2_ops);
RESET max_parallel_maintenance_workers;
INSERT INTO local_pts SELECT i, ARRAY[cos(i), sin(i), cos(3 * i), sin(3 * i), cos(7 * i), sin(7 * i)]::real[]::vector FROM generate_series(2501, 3200) i;
DELETE FROM local_pts WHERE id % 4 = 0;
VACUUM local_pts;
SET hnsw.ef_search = 200;
EXPLAIN (COSTS OFF) SELECT id FROM local_pts ORDER BY v <-> '[1,0,1,0,1,0]' LIMIT 3;
SELECT count(*) AS probed, count(*) FILTER (WHERE found = id) AS found_themselves
FROM (SELECT id, (SELECT o.id FROM local_pts o ORDER BY o.v <-> l.v LIMIT 1) AS found
      FROM local_pts l WHERE id % 40 = 1) s;
RESET hnsw.ef_search;
DROP TABLE local_pts;
