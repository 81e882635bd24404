-- hnsw on sparsevec: the four opclasses; each element holds its own
-- non-zeros (up to 1013 on a page, pgvector: 1000).
SET enable_seqscan = off;
-- every indexed row reachable in one scan on these small tables
SET hnsw.ef_search = 1000;

CREATE TABLE ts (id int, val sparsevec(5));
INSERT INTO ts SELECT i, ARRAY[(i * 7) % 11, 0, (i * 3) % 13, 0, i % 5 + 1]::real[]::sparsevec FROM generate_series(1, 300) i;
INSERT INTO ts VALUES (1000, '{1:0.1,3:0.2}/5'), (1001, NULL), (1002, '{}/5'), (1003, '{2:4,4:-1}/5');

-- every opclass answers with the exact order on this small table
CREATE INDEX ts_l2 ON ts USING hnsw (val sparsevec_l2_ops);
EXPLAIN (COSTS OFF) SELECT id FROM ts ORDER BY val <-> '{1:3,5:2}/5' LIMIT 5;
SELECT id, val, val <-> '{1:3,5:2}/5' AS d FROM ts ORDER BY val <-> '{1:3,5:2}/5', id LIMIT 5;
-- the whole index in order: the exact distances, sorted (the NULL row is not indexed)
SELECT (SELECT array_agg(d) FROM (SELECT val <-> '{1:3,5:2}/5' AS d FROM ts ORDER BY val <-> '{1:3,5:2}/5' LIMIT 400) s)
     = (SELECT array_agg(l2_distance(val, '{1:3,5:2}/5') ORDER BY l2_distance(val, '{1:3,5:2}/5')) FROM ts WHERE val IS NOT NULL) AS exact;
DROP INDEX ts_l2;

CREATE INDEX ts_ip ON ts USING hnsw (val sparsevec_ip_ops);
SELECT id, val <#> '{1:1,2:1,3:1,4:1,5:1}/5' AS d FROM ts ORDER BY val <#> '{1:1,2:1,3:1,4:1,5:1}/5', id LIMIT 3;
SELECT (SELECT array_agg(d) FROM (SELECT val <#> '{2:1,5:-1}/5' AS d FROM ts ORDER BY val <#> '{2:1,5:-1}/5' LIMIT 400) s)
     = (SELECT array_agg(val <#> '{2:1,5:-1}/5' ORDER BY val <#> '{2:1,5:-1}/5') FROM ts WHERE val IS NOT NULL) AS exact;
DROP INDEX ts_ip;

-- cosine: the zero vector is not indexed
CREATE INDEX ts_cos ON ts USING hnsw (val sparsevec_cosine_ops);
SELECT count(*) FROM (SELECT id FROM ts ORDER BY val <=> '{1:1,3:2}/5' LIMIT 1000) s;
SELECT id, round((val <=> '{1:1,3:2}/5')::numeric, 4) AS d FROM ts ORDER BY val <=> '{1:1,3:2}/5', id LIMIT 3;
DROP INDEX ts_cos;

CREATE INDEX ts_l1 ON ts USING hnsw (val sparsevec_l1_ops);
SELECT id, val <+> '{}/5' AS d FROM ts ORDER BY val <+> '{}/5', id LIMIT 3;

-- inserts after the build, queries of the wrong dimensions
INSERT INTO ts VALUES (2000, '{5:0.05}/5');
SELECT id FROM ts ORDER BY val <+> '{}/5', id LIMIT 2;
SELECT id FROM ts ORDER BY val <+> '{1:1}/4' LIMIT 1;
INSERT INTO ts VALUES (2001, '{1:1}/6');
-- a vector query is cast to sparsevec
SELECT id FROM ts ORDER BY val <+> '[0,0,0,0,0.05]'::vector LIMIT 1;
-- other opclasses do not take sparsevec columns, nor the other way round
CREATE INDEX ON ts USING hnsw (val vector_l2_ops);
CREATE INDEX ON ts USING ivfflat (val sparsevec_l2_ops);
CREATE TABLE tv (val vector(3));
CREATE INDEX ON tv USING hnsw (val sparsevec_l2_ops);
DROP TABLE tv;
DELETE FROM ts WHERE id < 100;
VACUUM ts;
SELECT count(*) FROM (SELECT id FROM ts ORDER BY val <+> '{}/5' LIMIT 1000) s;
REINDEX INDEX ts_l1;
SELECT id FROM ts ORDER BY val <+> '{}/5', id LIMIT 2;
DROP TABLE ts;

-- dimensions: the column must have them, up to the type's 1,000,000,000
CREATE TABLE ts (val sparsevec);
CREATE INDEX ON ts USING hnsw (val sparsevec_l2_ops);
DROP TABLE ts;
CREATE TABLE ts (id int, val sparsevec(1000000000));
INSERT INTO ts VALUES (1, '{1:1,999999999:2}/1000000000'), (2, '{1000000000:1}/1000000000');
CREATE INDEX ON ts USING hnsw (val sparsevec_cosine_ops);
SELECT id FROM ts ORDER BY val <=> '{999999999:1}/1000000000' LIMIT 1;
DROP TABLE ts;

-- non-zeros: 1013 fit a page (pgvector stops at 1000), 1014 do not
CREATE FUNCTION ones(n int, dim int) RETURNS sparsevec AS $$
  SELECT ('{' || array_to_string(ARRAY(SELECT i || ':1' FROM generate_series(1, n) i), ',') || '}/' || dim)::sparsevec
$$ LANGUAGE sql IMMUTABLE;
CREATE TABLE ts (id int, val sparsevec(30522));
INSERT INTO ts SELECT i, ones(i % 20 + 1, 30522) FROM generate_series(1, 100) i;
INSERT INTO ts VALUES (1013, ones(1013, 30522));
CREATE INDEX ts_l2 ON ts USING hnsw (val sparsevec_l2_ops);
INSERT INTO ts VALUES (1012, ones(1012, 30522));
SELECT id FROM ts ORDER BY val <-> ones(1013, 30522) LIMIT 2;
INSERT INTO ts VALUES (1014, ones(1014, 30522));
DROP INDEX ts_l2;
CREATE INDEX ON ts USING hnsw (val sparsevec_l2_ops);
-- a query may have any number of non-zeros
SELECT id FROM ts ORDER BY val <-> ones(5000, 30522) LIMIT 1;
DROP TABLE ts;
DROP FUNCTION ones;

-- an empty table, then inserts; an UNLOGGED table
CREATE TABLE ts (id int, val sparsevec(3));
CREATE INDEX ON ts USING hnsw (val sparsevec_ip_ops);
INSERT INTO ts VALUES (1, '{1:1}/3'), (2, '{2:2}/3'), (3, '{1:3,3:1}/3');
SELECT id FROM ts ORDER BY val <#> '{1:1}/3' LIMIT 3;
CREATE UNLOGGED TABLE tsu (id int, val sparsevec(3));
CREATE INDEX ON tsu USING hnsw (val sparsevec_l2_ops);
INSERT INTO tsu VALUES (1, '{1:1}/3');
SELECT id FROM tsu ORDER BY val <-> '{1:1}/3' LIMIT 1;
DROP TABLE ts, tsu;
RESET enable_seqscan;
RESET hnsw.ef_search;
