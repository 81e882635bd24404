-- vector_ext_settings: the search settings of the session, set by an UPDATE
-- (what a coordinator does through postgres_fdw, which cannot send SET)
SELECT name, setting FROM vector_ext_settings ORDER BY name;
UPDATE vector_ext_settings SET setting = '123' WHERE name = 'hnsw.ef_search' RETURNING name, setting;
SHOW hnsw.ef_search;
UPDATE vector_ext_settings SET setting = 'relaxed_order' WHERE name LIKE '%.iterative_scan';
SHOW hnsw.iterative_scan;
SHOW ivfflat.iterative_scan;
-- as SET: undone when the transaction aborts
BEGIN;
UPDATE vector_ext_settings SET setting = '7' WHERE name = 'ivfflat.probes';
SHOW ivfflat.probes;
ROLLBACK;
SHOW ivfflat.probes;
-- bad values are refused as SET refuses them
UPDATE vector_ext_settings SET setting = 'x' WHERE name = 'hnsw.ef_search';
UPDATE vector_ext_settings SET setting = '1001' WHERE name = 'hnsw.ef_search';
UPDATE vector_ext_settings SET setting = 'sideways' WHERE name = 'hnsw.iterative_scan';
UPDATE vector_ext_settings SET name = 'work_mem' WHERE name = 'hnsw.ef_search';
-- only the extension's settings are there to update
UPDATE vector_ext_settings SET setting = '1GB' WHERE name = 'work_mem';
SHOW hnsw.ef_search;
-- any role may use it, for its own session
CREATE ROLE vx_settings_user;
SET ROLE vx_settings_user;
UPDATE vector_ext_settings SET setting = '55' WHERE name = 'hnsw.ef_search';
SHOW hnsw.ef_search;
RESET ROLE;
DROP ROLE vx_settings_user;
RESET hnsw.ef_search;
RESET hnsw.iterative_scan;
RESET ivfflat.iterative_scan;
