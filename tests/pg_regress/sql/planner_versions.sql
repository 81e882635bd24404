-- What EXPLAIN prints differently across PostgreSQL majors, in one file
-- with one expected output per format: planner_versions.out for 15 to 17,
-- planner_versions_1.out for 18 (which marks disabled plan nodes, prints
-- fractional row counts, and reports each index scan's Index Searches).
SET enable_seqscan = off;
CREATE TABLE spiral (id int, v vector(3));
INSERT INTO spiral SELECT i, ARRAY[cos(i / 7.0), sin(i / 7.0), i / 500.0] FROM generate_series(1, 1500) i;
CREATE INDEX spiral_hnsw ON spiral USING hnsw (v vector_l2_ops);
CREATE INDEX spiral_ivf ON spiral USING ivfflat (v vector_cosine_ops) WITH (lists = 10);
ANALYZE spiral;
-- Neither index serves another operator, a descending order or an equality
-- filter: even with sequential scans disabled, a sequential scan does
-- (never one of our index paths, which would fail without an ORDER BY).
EXPLAIN (COSTS OFF) SELECT id FROM spiral ORDER BY v <#> '[0,1,1]' LIMIT 4;
EXPLAIN (COSTS OFF) SELECT id FROM spiral ORDER BY v <-> '[0,1,1]' DESC LIMIT 4;
EXPLAIN (COSTS OFF) SELECT id FROM spiral WHERE v = '[1,0,0]';
SELECT id FROM spiral WHERE v = ARRAY[cos(7 / 7.0), sin(7 / 7.0), 7 / 500.0]::vector;
-- Each scan of either index is one index search; a scan run again for
-- each outer row counts one search per run.
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
  SELECT id FROM spiral ORDER BY v <-> '[0,1,1]' LIMIT 4;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
  SELECT id FROM spiral ORDER BY v <=> '[0,1,1]' LIMIT 4;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
  SELECT q.id, (SELECT s.id FROM spiral s WHERE s.id <> q.id ORDER BY s.v <-> q.v LIMIT 1) AS nearest
    FROM spiral q WHERE q.id <= 3;
DROP TABLE spiral;
RESET enable_seqscan;
