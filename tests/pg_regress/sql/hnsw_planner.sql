-- The planner prices a distance by its dimensions (a support function on
-- the distance functions) and an hnsw search by the distances and pages it
-- reads: small tables of high-dimensional vectors use the index, which
-- serves them faster than a sequential scan and sort (bench/README.md).
SELECT setseed(0.25);
CREATE TABLE plan384 (i int, v vector(384));
INSERT INTO plan384 SELECT i, (SELECT array_agg(random()) FROM generate_series(1, 384) WHERE i > 0)
  FROM generate_series(1, 2000) i;
CREATE INDEX ON plan384 USING hnsw (v vector_l2_ops);
ANALYZE plan384;
EXPLAIN (COSTS OFF) SELECT i FROM plan384 ORDER BY v <-> (SELECT v FROM plan384 WHERE i = 1) LIMIT 10;
CREATE TABLE plan1536 (i int, v vector(1536));
INSERT INTO plan1536 SELECT i, (SELECT array_agg(random()) FROM generate_series(1, 1536) WHERE i > 0)
  FROM generate_series(1, 1000) i;
CREATE INDEX ON plan1536 USING hnsw (v vector_cosine_ops);
ANALYZE plan1536;
EXPLAIN (COSTS OFF) SELECT i FROM plan1536 ORDER BY v <=> (SELECT v FROM plan1536 WHERE i = 1) LIMIT 10;
-- halfvec and bit columns are priced by their dimensions too
CREATE TABLE planhalf AS SELECT i, v::halfvec(1536) AS h, binary_quantize(v)::bit(1536) AS b FROM plan1536;
CREATE INDEX ON planhalf USING hnsw (h halfvec_cosine_ops);
ANALYZE planhalf;
EXPLAIN (COSTS OFF) SELECT i FROM planhalf ORDER BY h <=> (SELECT h FROM planhalf WHERE i = 1) LIMIT 10;
-- the distance functions that carry the support function
SELECT p.proname, count(*) AS functions
  FROM pg_proc p JOIN pg_proc s ON s.oid = p.prosupport
 WHERE s.proname = 'vector_ext_distance_support' GROUP BY p.proname ORDER BY 1;
DROP TABLE plan384, plan1536, planhalf;
