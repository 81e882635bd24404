-- vector_ext 0.1.0 -> 0.2.0 (ALTER EXTENSION vector_ext UPDATE TO '0.2.0')
\echo Use "ALTER EXTENSION vector_ext UPDATE TO '0.2.0'" to load this file. \quit

-- statistics of an index, for monitoring (pg_monitor, or as granted): one
-- metapage read unless full_scan (which reads every page, as
-- vector_ext_index_check does); NULL where the access method or the mode
-- does not tell
CREATE FUNCTION vector_ext_index_stats(index regclass, full_scan boolean DEFAULT false,
    OUT access_method text, OUT distance text, OUT storage text, OUT dimensions integer,
    OUT m integer, OUT ef_construction integer, OUT levels integer, OUT lists integer,
    OUT pages bigint, OUT elements bigint, OUT live_elements bigint,
    OUT deleted_elements bigint, OUT free_elements bigint, OUT mean_degree double precision,
    OUT unreachable_elements bigint, OUT unused_pages bigint, OUT problems bigint,
    OUT last_vacuum timestamptz, OUT last_vacuum_removed bigint,
    OUT last_vacuum_remaining bigint, OUT last_vacuum_reused bigint,
    OUT last_vacuum_relinked bigint, OUT last_vacuum_relink_skipped_bytes bigint)
    RETURNS record
    AS 'MODULE_PATHNAME', 'vx_index_stats' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION vector_ext_index_stats(regclass, boolean) IS 'statistics of an hnsw or ivfflat index: its metapage, its size, what the last VACUUM did; with full_scan, counts of elements from every page';
REVOKE ALL ON FUNCTION vector_ext_index_stats(regclass, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION vector_ext_index_stats(regclass, boolean) TO pg_monitor;
