-- hnsw WITH (storage = 'halfvec'): a vector column's elements stored in
-- binary16 on the index pages (half the index), queries unchanged.
SET enable_seqscan = off;
SET hnsw.ef_search = 1000;

CREATE TABLE ts (id int, val vector(3));
INSERT INTO ts SELECT i, ARRAY[(i * 7) % 11, (i * 3) % 13, i % 5 + 1] FROM generate_series(1, 300) i;
INSERT INTO ts VALUES (1000, '[0.5,0.25,0.125]'), (1001, NULL), (1002, '[0,0,0]');

CREATE INDEX ts_l2 ON ts USING hnsw (val vector_l2_ops) WITH (storage = 'halfvec');
SELECT reloptions FROM pg_class WHERE relname = 'ts_l2';
EXPLAIN (COSTS OFF) SELECT id FROM ts ORDER BY val <-> '[3,1,2]' LIMIT 5;
SELECT id, val <-> '[3,1,2]' AS d FROM ts ORDER BY val <-> '[3,1,2]', id LIMIT 5;
-- every row in exact order: these values are exact in binary16
SELECT (SELECT array_agg(d) FROM (SELECT val <-> '[3,1,2]' AS d FROM ts ORDER BY val <-> '[3,1,2]' LIMIT 400) s)
     = (SELECT array_agg(l2_distance(val, '[3,1,2]') ORDER BY l2_distance(val, '[3,1,2]')) FROM ts WHERE val IS NOT NULL) AS exact;
-- inserts after the build
INSERT INTO ts VALUES (2000, '[3,1,2.5]');
SELECT id FROM ts ORDER BY val <-> '[3,1,2.4]' LIMIT 1;
-- a value binary16 cannot hold is refused as a cast to halfvec refuses it
INSERT INTO ts VALUES (2001, '[70000,1,1]');
SELECT '[70000,1,1]'::vector::halfvec;
-- the query stays a vector: its dimensions are checked as the column's
SELECT id FROM ts ORDER BY val <-> '[3,1]' LIMIT 1;
DROP INDEX ts_l2;

-- inner product and cosine (the zero vector is not indexed)
CREATE INDEX ts_ip ON ts USING hnsw (val vector_ip_ops) WITH (storage = 'halfvec');
SELECT id, val <#> '[1,1,1]' AS d FROM ts ORDER BY val <#> '[1,1,1]', id LIMIT 3;
DROP INDEX ts_ip;
CREATE INDEX ts_cos ON ts USING hnsw (val vector_cosine_ops) WITH (storage = 'halfvec');
SELECT count(*) FROM (SELECT id FROM ts ORDER BY val <=> '[1,2,3]' LIMIT 1000) s;
SELECT id, round((val <=> '[1,2,3]')::numeric, 4) AS d FROM ts ORDER BY val <=> '[1,2,3]', id LIMIT 3;
DROP INDEX ts_cos;

-- about 0.6 of the pages of the full-precision index, as many as an
-- expression index on val::halfvec (which every query would have to repeat)
CREATE TABLE tw (id int, val vector(512));
INSERT INTO tw SELECT i, ARRAY(SELECT ((i * j + j * j) % 1999)::float4 FROM generate_series(1, 512) j) FROM generate_series(1, 200) i;
CREATE INDEX tw_full ON tw USING hnsw (val vector_l2_ops);
CREATE INDEX tw_half ON tw USING hnsw (val vector_l2_ops) WITH (storage = 'halfvec');
CREATE INDEX tw_cast ON tw USING hnsw ((val::halfvec(512)) halfvec_l2_ops);
SELECT pg_relation_size('tw_half')::float / pg_relation_size('tw_full') < 0.65 AS smaller,
       pg_relation_size('tw_half') = pg_relation_size('tw_cast') AS as_cast;
DROP INDEX tw_full, tw_cast;
SELECT id FROM tw ORDER BY val <-> (SELECT val FROM tw WHERE id = 37) LIMIT 1;
DROP TABLE tw;

-- up to 4,000 dimensions instead of 2,000
CREATE TABLE tl (val vector(3000));
CREATE INDEX ON tl USING hnsw (val vector_l2_ops);
CREATE INDEX tl_half ON tl USING hnsw (val vector_l2_ops) WITH (storage = 'halfvec');
INSERT INTO tl SELECT array_fill(i::float4, ARRAY[3000])::vector FROM generate_series(1, 3) i;
SELECT val <-> array_fill(2.2::float4, ARRAY[3000])::vector AS d FROM tl ORDER BY val <-> array_fill(2.2::float4, ARRAY[3000])::vector LIMIT 1;
CREATE TABLE tm (val vector(5000));
CREATE INDEX ON tm USING hnsw (val vector_l2_ops) WITH (storage = 'halfvec');
DROP TABLE tl, tm;

-- halfvec columns are stored so already; other types have no binary16 form
CREATE TABLE th (val halfvec(3));
CREATE INDEX ON th USING hnsw (val halfvec_l2_ops) WITH (storage = 'halfvec');
CREATE TABLE tb (val bit(8));
CREATE INDEX ON tb USING hnsw (val bit_hamming_ops) WITH (storage = 'halfvec');
CREATE INDEX ON tb USING hnsw (val bit_hamming_ops) WITH (storage = 'full');
CREATE INDEX ON ts USING hnsw (val vector_l2_ops) WITH (storage = 'quarter');
DROP TABLE th, tb;

DROP TABLE ts;
