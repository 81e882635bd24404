-- ivfflat on vector columns: what each operator class returns, probes and
-- iterative scans, maintenance, options, settings, errors.
SET enable_seqscan = off;

-- With one list every row is in the probed list: each operator class
-- returns all indexed rows nearest first. Four rows go in before the
-- build, one after; NULL is never indexed, under cosine neither is the
-- zero vector. No two rows lie at the same distance.
CREATE TABLE pts (id int PRIMARY KEY, v vector(3));
INSERT INTO pts VALUES (1, '[3,1,0]'), (2, '[0,0,0]'), (3, '[1,1,4]'), (4, NULL), (5, '[-2,1,1]');

CREATE INDEX pts_v ON pts USING ivfflat (v vector_l2_ops) WITH (lists = 1);
INSERT INTO pts VALUES (6, '[2,2,2]');
EXPLAIN (COSTS OFF) SELECT id FROM pts ORDER BY v <-> '[0,1,3]';
SELECT id, round((v <-> '[0,1,3]')::numeric, 4) AS l2 FROM pts ORDER BY v <-> '[0,1,3]';
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <-> (SELECT NULL::vector)) s;
SELECT id FROM pts ORDER BY v <-> '[1,2,3,4]';
DROP INDEX pts_v;

CREATE INDEX pts_v ON pts USING ivfflat (v vector_ip_ops) WITH (lists = 1);
INSERT INTO pts VALUES (7, '[1,0,6]');
SELECT id, v <#> '[0,1,2]' AS negative_ip FROM pts ORDER BY v <#> '[0,1,2]';
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <#> (SELECT NULL::vector)) s;
DROP INDEX pts_v;

CREATE INDEX pts_v ON pts USING ivfflat (v vector_cosine_ops) WITH (lists = 1);
INSERT INTO pts VALUES (8, '[5,2,0]');
SELECT id, round((v <=> '[0,1,1]')::numeric, 4) AS cosine FROM pts ORDER BY v <=> '[0,1,1]';
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <=> '[0,0,0]') s;
SELECT count(*) FROM (SELECT id FROM pts ORDER BY v <=> (SELECT NULL::vector)) s;

TRUNCATE pts;
SELECT id FROM pts ORDER BY v <=> '[0,1,1]';
DROP TABLE pts;

-- More lists than rows: some lists stay empty, every row is still found
-- when all lists are probed.
CREATE TABLE sparse_lists (id int, v vector(2));
INSERT INTO sparse_lists VALUES (1, '[1,0]'), (2, '[0,1]'), (3, NULL);
CREATE INDEX ON sparse_lists USING ivfflat (v vector_l2_ops) WITH (lists = 6);
SET ivfflat.probes = 6;
SELECT id FROM sparse_lists ORDER BY v <-> '[1,1]';
RESET ivfflat.probes;
DROP TABLE sparse_lists;

-- The default operator class is L2. The index serves ORDER BY its own
-- operator ascending, nothing else (planner_versions.sql checks the plans
-- of the rest). One probe scans the nearest list only,
-- still nearest first; equal vectors all come back; scans are counted.
CREATE TABLE spiral (id int, v vector(3));
INSERT INTO spiral SELECT i, ARRAY[cos(i / 9.0), sin(i / 9.0), i / 400.0] FROM generate_series(1, 1200) i;
CREATE INDEX spiral_v ON spiral USING ivfflat (v) WITH (lists = 12);
ANALYZE spiral;
EXPLAIN (COSTS OFF) SELECT id FROM spiral ORDER BY v <-> '[0,1,1]' LIMIT 4;
SET ivfflat.probes = 12;
SELECT id FROM spiral ORDER BY v <-> '[0,1,1]' LIMIT 4;
SELECT id FROM spiral WHERE id % 3 = 0 ORDER BY v <-> '[0,1,1]' LIMIT 4;
RESET ivfflat.probes;
SELECT bool_and(d >= before) AS never_nearer FROM (
  SELECT d, lag(d, 1, 0::float8) OVER () AS before FROM (
    SELECT v <-> '[0,1,1]' AS d FROM spiral ORDER BY v <-> '[0,1,1]') s) s2;
SELECT count(*) < 1200 AS one_list FROM (SELECT id FROM spiral ORDER BY v <-> '[0,1,1]') s;
INSERT INTO spiral SELECT 5000 + i, '[7,7,7]' FROM generate_series(1, 30) i;
SELECT count(*) AS copies FROM (SELECT id FROM spiral ORDER BY v <-> '[7,7,7]' LIMIT 30) s WHERE id > 5000;
SELECT pg_stat_force_next_flush();
SELECT idx_scan > 0 AS counted FROM pg_stat_user_indexes WHERE indexrelname = 'spiral_v';
DROP TABLE spiral;

-- Iterative scans: a filter keeping 1 row in 50 finds few rows in one
-- probe; relaxed_order goes on probing until LIMIT is met, up to
-- ivfflat.max_probes (ivfflat.probes wins when it is larger).
CREATE TABLE ring (id int, tag int, v vector(2));
INSERT INTO ring SELECT i, i % 50, ARRAY[cos(i * 0.37), sin(i * 0.37)] FROM generate_series(1, 4000) i;
CREATE INDEX ON ring USING ivfflat (v vector_l2_ops) WITH (lists = 40);
SELECT count(*) < 8 AS few FROM (SELECT id FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 8) s;
SET ivfflat.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT id FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 8) s;
SELECT count(*) FROM (SELECT id FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 80) s;
SET ivfflat.max_probes = 1;
SELECT count(*) < 8 AS few FROM (SELECT id FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 8) s;
SET ivfflat.probes = 40;
SELECT count(*) FROM (SELECT id FROM ring WHERE tag = 3 ORDER BY v <-> '[0,1]' LIMIT 80) s;
RESET ivfflat.probes;
RESET ivfflat.max_probes;
RESET ivfflat.iterative_scan;
DROP TABLE ring;

-- Unlogged tables get an unlogged index.
CREATE UNLOGGED TABLE scratch (id int, v vector(3));
INSERT INTO scratch VALUES (1, '[1,1,1]'), (2, '[2,2,2]'), (3, NULL);
CREATE INDEX scratch_v ON scratch USING ivfflat (v vector_l2_ops) WITH (lists = 1);
SELECT id FROM scratch ORDER BY v <-> '[2,2,3]';
SELECT relpersistence FROM pg_class WHERE relname = 'scratch_v';
DROP TABLE scratch;

-- Maintenance: CREATE INDEX CONCURRENTLY, REINDEX (also concurrently),
-- VACUUM after deletes of a few rows, of most, of all; inserts afterwards.
CREATE TABLE helix (id int, v vector(3));
INSERT INTO helix SELECT i, ARRAY[cos(i / 5.0), sin(i / 5.0), i / 50.0] FROM generate_series(1, 400) i;
CREATE INDEX CONCURRENTLY helix_v ON helix USING ivfflat (v vector_l2_ops) WITH (lists = 4);
SET ivfflat.probes = 4;
SELECT id FROM helix ORDER BY v <-> '[1,0,4]' LIMIT 3;
REINDEX INDEX helix_v;
SELECT id FROM helix ORDER BY v <-> '[1,0,4]' LIMIT 3;
REINDEX INDEX CONCURRENTLY helix_v;
SELECT id FROM helix ORDER BY v <-> '[1,0,4]' LIMIT 3;
DELETE FROM helix WHERE id IN (188, 201);
VACUUM helix;
SELECT id FROM helix ORDER BY v <-> '[1,0,4]' LIMIT 3;
DELETE FROM helix WHERE id < 390;
VACUUM helix;
SELECT id FROM helix ORDER BY v <-> '[1,0,4]';
INSERT INTO helix VALUES (1000, '[1,0,4]');
SELECT id FROM helix ORDER BY v <-> '[1,0,4]' LIMIT 1;
DELETE FROM helix;
VACUUM helix;
SELECT id FROM helix ORDER BY v <-> '[1,0,4]';
INSERT INTO helix VALUES (1001, '[0,0,0]');
SELECT id FROM helix ORDER BY v <-> '[1,0,4]';
RESET ivfflat.probes;
DROP TABLE helix;

-- A build whose lists outgrow maintenance_work_mem writes them out early;
-- every row still finds itself. The k-means sample must fit in it.
CREATE TABLE wide (id int, v vector(48));
INSERT INTO wide SELECT i, array_fill(cos(i)::real, ARRAY[24]) || array_fill(sin(i * 2)::real, ARRAY[24]) FROM generate_series(1, 2500) i;
SET maintenance_work_mem = '1MB';
CREATE INDEX ON wide USING ivfflat (v vector_l2_ops) WITH (lists = 16);
SET ivfflat.probes = 16;
SELECT count(*) AS rows, count(*) FILTER (WHERE id = (SELECT o.id FROM wide o ORDER BY o.v <-> w.v LIMIT 1)) AS found_themselves FROM wide w;
RESET ivfflat.probes;
CREATE INDEX ON wide USING ivfflat (v vector_l2_ops) WITH (lists = 20000);
RESET maintenance_work_mem;
DROP TABLE wide;

-- The reloption lists (1..32768).
CREATE TABLE opts (v vector(3));
CREATE INDEX opts_zero ON opts USING ivfflat (v vector_l2_ops) WITH (lists = 0);
CREATE INDEX opts_over ON opts USING ivfflat (v vector_l2_ops) WITH (lists = 32769);
CREATE INDEX opts_least ON opts USING ivfflat (v vector_l2_ops) WITH (lists = 1);
CREATE INDEX opts_most ON opts USING ivfflat (v vector_l2_ops) WITH (lists = 32768);
CREATE INDEX opts_m ON opts USING ivfflat (v vector_l2_ops) WITH (m = 8);
CREATE INDEX opts_text ON opts USING ivfflat (v vector_l2_ops) WITH (lists = 'several');
SELECT relname, reloptions FROM pg_class WHERE relname LIKE 'opts_%' ORDER BY relname;
DROP TABLE opts;

-- Settings and their bounds.
SHOW ivfflat.probes;
SET ivfflat.probes = 0;
SET ivfflat.probes = 32769;
SET ivfflat.probes = 32768;
SHOW ivfflat.probes;
RESET ivfflat.probes;
SHOW ivfflat.iterative_scan;
SET ivfflat.iterative_scan = strict_order;
SHOW ivfflat.max_probes;
SET ivfflat.max_probes = 0;
SET ivfflat.max_probes = 40000;
SET ivfflat.not_a_setting = on;

-- Errors: a type ivfflat has no class for, L1 (no ivfflat class), two
-- columns, a column without dimensions; cosine and inner product need
-- more than one dimension (L2 does not).
CREATE TABLE bad (v vector(3), n int, u vector);
CREATE INDEX ON bad USING ivfflat (n int4_ops);
CREATE INDEX ON bad USING ivfflat (v vector_l1_ops);
CREATE INDEX ON bad USING ivfflat (v vector_l2_ops, v vector_ip_ops);
CREATE INDEX ON bad USING ivfflat (u vector_l2_ops);
DROP TABLE bad;
CREATE TABLE one_dim (v vector(1));
CREATE INDEX ON one_dim USING ivfflat (v vector_cosine_ops);
CREATE INDEX ON one_dim USING ivfflat (v vector_ip_ops);
CREATE INDEX ON one_dim USING ivfflat (v vector_l2_ops);
DROP TABLE one_dim;

-- Dimensions: pgvector's 2000, and up to 2036 (what one page holds); more
-- is refused with the limit in the message.
CREATE TABLE big (v vector(2000));
CREATE INDEX ON big USING ivfflat (v vector_l2_ops) WITH (lists = 1);
DROP TABLE big;
CREATE TABLE big (v vector(2036));
INSERT INTO big SELECT array_fill(i::real, ARRAY[2036]) FROM generate_series(1, 4) i;
CREATE INDEX ON big USING ivfflat (v vector_l2_ops) WITH (lists = 2);
SET ivfflat.probes = 2;
SELECT subvector(v, 1, 3) FROM big ORDER BY v <-> array_fill(3.1::real, ARRAY[2036])::vector LIMIT 2;
RESET ivfflat.probes;
DROP TABLE big;
CREATE TABLE big (v vector(2037));
CREATE INDEX ON big USING ivfflat (v vector_l2_ops);
DROP TABLE big;
