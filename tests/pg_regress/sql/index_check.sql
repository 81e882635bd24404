-- vector_ext_index_check: what a sound index reports, and what it refuses
CREATE TABLE tc (id int, v vector(3));
INSERT INTO tc SELECT i, ARRAY[i % 7, i % 11, i % 13]::real[] FROM generate_series(1, 500) i;
INSERT INTO tc SELECT 1000 + i, '[1,1,1]' FROM generate_series(1, 25) i;  -- duplicates share elements
CREATE INDEX tc_hnsw ON tc USING hnsw (v vector_l2_ops);
CREATE INDEX tc_ivf ON tc USING ivfflat (v vector_l2_ops) WITH (lists = 5);
SELECT r->'am' AS am, r->'ok' AS ok, r->'heap_tids' AS heap_tids, r->'problems' AS problems,
       (r->>'elements')::int + (r->>'deleted_elements')::int <= 525 AS elements_fit,
       r->'unreachable_elements' AS unreachable
  FROM (SELECT vector_ext_index_check('tc_hnsw') AS r) s;
SELECT r->'am' AS am, r->'ok' AS ok, r->'lists' AS lists, r->'items' AS items, r->'heap_tids' AS heap_tids,
       r->'misplaced_items' AS misplaced, r->'unused_pages' AS unused, r->'problems' AS problems
  FROM (SELECT vector_ext_index_check('tc_ivf') AS r) s;
-- after deletes and VACUUM the index holds exactly the live rows
DELETE FROM tc WHERE id % 3 = 0;
VACUUM tc;
SELECT count(*) AS live_rows FROM tc;
SELECT r->'ok' AS ok, r->'heap_tids' AS heap_tids FROM (SELECT vector_ext_index_check('tc_hnsw') AS r) s;
SELECT r->'ok' AS ok, r->'heap_tids' AS heap_tids FROM (SELECT vector_ext_index_check('tc_ivf') AS r) s;
-- vector_ext_index_repair: a sound index has nothing to relink
SELECT vector_ext_index_repair('tc_hnsw') AS relinked;
-- not ours, not an index, NULL
CREATE INDEX tc_btree ON tc (id);
SELECT vector_ext_index_check('tc_btree');
SELECT vector_ext_index_check('tc');
SELECT vector_ext_index_check(NULL);
SELECT vector_ext_index_repair('tc_ivf');
SELECT vector_ext_index_repair('tc_btree');
SELECT vector_ext_index_repair('tc');
SELECT vector_ext_index_repair(NULL);
-- superusers only unless granted, as amcheck
SELECT has_function_privilege('public', 'vector_ext_index_check(regclass)', 'execute') AS public_may_run;
SELECT has_function_privilege('public', 'vector_ext_index_repair(regclass)', 'execute') AS public_may_repair;
DROP TABLE tc;
