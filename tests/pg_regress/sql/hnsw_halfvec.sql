-- hnsw on halfvec: the four opclasses store binary16 on the index pages.
SET enable_seqscan = off;
-- every indexed row reachable in one scan on these small tables
SET hnsw.ef_search = 1000;

CREATE TABLE th (id int, val halfvec(3));
INSERT INTO th SELECT i, ARRAY[(i * 7) % 11, (i * 3) % 13, i % 5 + 1]::halfvec FROM generate_series(1, 300) i;
INSERT INTO th VALUES (1000, '[0.1,0.2,0.3]'), (1001, NULL), (1002, '[0,0,0]');

-- every opclass answers with the exact order on this small table
CREATE INDEX th_l2 ON th USING hnsw (val halfvec_l2_ops);
EXPLAIN (COSTS OFF) SELECT id FROM th ORDER BY val <-> '[3,1,2]' LIMIT 5;
SELECT id, val, val <-> '[3,1,2]' AS d FROM th ORDER BY val <-> '[3,1,2]', id LIMIT 5;
-- the whole index in order: the exact distances, sorted (the NULL row is not indexed)
SELECT (SELECT array_agg(d) FROM (SELECT val <-> '[3,1,2]' AS d FROM th ORDER BY val <-> '[3,1,2]' LIMIT 400) s)
     = (SELECT array_agg(l2_distance(val, '[3,1,2]') ORDER BY l2_distance(val, '[3,1,2]')) FROM th WHERE val IS NOT NULL) AS exact;
EXPLAIN (COSTS OFF) SELECT val <-> '[3,1,2]' AS d FROM th ORDER BY val <-> '[3,1,2]' LIMIT 400;
DROP INDEX th_l2;

CREATE INDEX th_ip ON th USING hnsw (val halfvec_ip_ops);
SELECT id, val <#> '[1,1,1]' AS d FROM th ORDER BY val <#> '[1,1,1]', id LIMIT 3;
DROP INDEX th_ip;

-- cosine: the zero vector is not indexed
CREATE INDEX th_cos ON th USING hnsw (val halfvec_cosine_ops);
SELECT count(*) FROM (SELECT id FROM th ORDER BY val <=> '[1,2,3]' LIMIT 1000) s;
SELECT id, round((val <=> '[1,2,3]')::numeric, 4) AS d FROM th ORDER BY val <=> '[1,2,3]', id LIMIT 3;
DROP INDEX th_cos;

CREATE INDEX th_l1 ON th USING hnsw (val halfvec_l1_ops);
SELECT id, val <+> '[0,0,0]' AS d FROM th ORDER BY val <+> '[0,0,0]', id LIMIT 3;

-- inserts after the build, queries of the wrong dimensions
INSERT INTO th VALUES (2000, '[0.05,0.05,0.05]');
SELECT id FROM th ORDER BY val <+> '[0,0,0]', id LIMIT 2;
SELECT id FROM th ORDER BY val <+> '[0,0]' LIMIT 1;
INSERT INTO th VALUES (2001, '[1,2]');
-- a vector query is cast to halfvec
SELECT id FROM th ORDER BY val <+> '[0,0,0]'::vector LIMIT 1;
-- vector opclasses do not take halfvec columns, nor the other way round
CREATE INDEX ON th USING hnsw (val vector_l2_ops);
CREATE TABLE tv (val vector(3));
CREATE INDEX ON tv USING hnsw (val halfvec_l2_ops);
DROP TABLE tv;
VACUUM th;
DELETE FROM th WHERE id < 100;
VACUUM th;
SELECT count(*) FROM (SELECT id FROM th ORDER BY val <+> '[0,0,0]' LIMIT 1000) s;
REINDEX INDEX th_l1;
SELECT id FROM th ORDER BY val <+> '[0,0,0]', id LIMIT 2;
DROP TABLE th;

-- dimensions: pgvector's 4000 and up to what fits on a page (binary16)
CREATE TABLE th (val halfvec(4000));
CREATE INDEX ON th USING hnsw (val halfvec_l2_ops);
DROP TABLE th;

CREATE TABLE th (val halfvec(4040));
INSERT INTO th SELECT array_fill(i::real, ARRAY[4040]) FROM generate_series(1, 5) i;
CREATE INDEX ON th USING hnsw (val halfvec_cosine_ops);
CREATE INDEX ON th USING hnsw (val halfvec_l2_ops);
SELECT subvector(val, 4039, 2) FROM th ORDER BY val <-> array_fill(2.2::real, ARRAY[4040])::halfvec LIMIT 2;
DROP TABLE th;

CREATE TABLE th (val halfvec(4041));
CREATE INDEX ON th USING hnsw (val halfvec_l2_ops);
DROP TABLE th;

-- an empty table, then inserts (the metapage of an empty index records binary16)
CREATE TABLE th (id int, val halfvec(2));
CREATE INDEX ON th USING hnsw (val halfvec_l2_ops);
INSERT INTO th VALUES (1, '[1,1]'), (2, '[2,2]'), (3, '[65504,-65504]');
SELECT id FROM th ORDER BY val <-> '[1.9,2]' LIMIT 3;
CREATE UNLOGGED TABLE thu (id int, val halfvec(2));
CREATE INDEX ON thu USING hnsw (val halfvec_l2_ops);
INSERT INTO thu VALUES (1, '[1,1]');
SELECT id FROM thu ORDER BY val <-> '[1,1]' LIMIT 1;
DROP TABLE th, thu;
RESET enable_seqscan;
RESET hnsw.ef_search;
