-- vector_ext_index_stats: one row an index, from its metapage alone unless
-- full_scan; NULL where the access method or the mode does not tell
CREATE TABLE stats_items (id int, emb vector(3));
INSERT INTO stats_items SELECT i, ARRAY[i, i % 7, 1]::vector FROM generate_series(1, 300) i;
CREATE INDEX stats_hnsw ON stats_items USING hnsw (emb vector_cosine_ops) WITH (m = 8, ef_construction = 20);
CREATE INDEX stats_ivf ON stats_items USING ivfflat (emb vector_l2_ops) WITH (lists = 3);
CREATE INDEX stats_btree ON stats_items (id);
SELECT access_method, distance, storage, dimensions, m, ef_construction, lists,
       levels > 0 AS has_levels, pages = pg_relation_size('stats_hnsw') / 8192 AS pages_ok,
       elements, mean_degree, last_vacuum, last_vacuum_removed
FROM vector_ext_index_stats('stats_hnsw');
SELECT access_method, distance, storage, dimensions, m, ef_construction, lists, levels,
       pages = pg_relation_size('stats_ivf') / 8192 AS pages_ok, elements, last_vacuum
FROM vector_ext_index_stats('stats_ivf');
-- full_scan: the counts every page tells
SELECT elements, live_elements, deleted_elements, free_elements, mean_degree > 0 AS linked,
       unreachable_elements, unused_pages, problems
FROM vector_ext_index_stats('stats_hnsw', true);
SELECT elements, live_elements, deleted_elements, free_elements, unused_pages, problems
FROM vector_ext_index_stats('stats_ivf', full_scan => true);
-- what the last VACUUM did
DELETE FROM stats_items WHERE id <= 30;
VACUUM (INDEX_CLEANUP ON) stats_items;
SELECT last_vacuum BETWEEN now() - interval '1 hour' AND clock_timestamp() AS recorded,
       last_vacuum_removed, last_vacuum_remaining, last_vacuum_reused,
       last_vacuum_relinked >= 0 AS relinked_counted, last_vacuum_relink_skipped_bytes
FROM vector_ext_index_stats('stats_hnsw');
SELECT last_vacuum IS NOT NULL AS recorded, last_vacuum_removed, last_vacuum_remaining,
       last_vacuum_reused, last_vacuum_relinked
FROM vector_ext_index_stats('stats_ivf');
SELECT elements, live_elements, deleted_elements, free_elements
FROM vector_ext_index_stats('stats_hnsw', true);
-- CREATE INDEX CONCURRENTLY scans the new index as VACUUM does (to
-- validate it): that is no VACUUM, and nothing is recorded
CREATE INDEX CONCURRENTLY stats_hnsw_l2 ON stats_items USING hnsw (emb vector_l2_ops);
SELECT last_vacuum IS NULL AS none_recorded, pages > 1 AS built
FROM vector_ext_index_stats('stats_hnsw_l2');
-- not an index, not ours, NULL
SELECT * FROM vector_ext_index_stats('stats_items');
SELECT * FROM vector_ext_index_stats('stats_btree');
SELECT access_method IS NULL AS no_index FROM vector_ext_index_stats(NULL);
-- pg_monitor may call it; other roles may not
SET client_min_messages = warning;
DROP ROLE IF EXISTS stats_watcher;
DROP ROLE IF EXISTS stats_nobody;
RESET client_min_messages;
CREATE ROLE stats_watcher IN ROLE pg_monitor;
CREATE ROLE stats_nobody;
SET ROLE stats_watcher;
SELECT access_method, lists FROM vector_ext_index_stats('stats_ivf');
SET ROLE stats_nobody;
SELECT access_method FROM vector_ext_index_stats('stats_ivf');
RESET ROLE;
DROP ROLE stats_watcher;
DROP ROLE stats_nobody;
DROP TABLE stats_items;
