#!/usr/bin/env bash
# Sets up everything on a fresh Debian machine, builds and installs
# vector_ext, starts a local Postgres with it and runs a small demo.
# The server keeps running; connect with the psql line printed at the end.
# PG_VERSION=16, 17 or 18 picks another PostgreSQL (default 15).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
setup_all

log "demo database vector_ext_demo"
psql_db -d postgres -c "DROP DATABASE IF EXISTS vector_ext_demo" -c "CREATE DATABASE vector_ext_demo"
psql_db -d vector_ext_demo -e <<'SQL'
CREATE EXTENSION vector_ext;
CREATE TABLE categories (id int PRIMARY KEY, name text);
INSERT INTO categories VALUES (1, 'fruit'), (2, 'vehicle');
CREATE TABLE items (id bigserial PRIMARY KEY, name text, category_id int REFERENCES categories, embedding vector(3));
INSERT INTO items (name, category_id, embedding) VALUES
  ('apple', 1, '[0.9,0.1,0.0]'), ('pear', 1, '[0.8,0.2,0.1]'), ('banana', 1, '[0.7,0.0,0.3]'),
  ('car', 2, '[0.0,0.9,0.4]'), ('bike', 2, '[0.1,0.8,0.5]'), ('truck', 2, '[0.0,1.0,0.2]');
\echo '-- the three items nearest to [1,0,0] by cosine distance'
SELECT name, round((embedding <=> '[1,0,0]')::numeric, 4) AS cosine_distance
FROM items ORDER BY embedding <=> '[1,0,0]' LIMIT 3;
\echo '-- nearest vehicle to a query, joined with its category'
SELECT i.name, c.name AS category, round((i.embedding <-> '[0,1,0.3]')::numeric, 4) AS l2
FROM items i JOIN categories c ON c.id = i.category_id
WHERE c.name = 'vehicle' ORDER BY i.embedding <-> '[0,1,0.3]' LIMIT 1;
\echo '-- per-category centroid'
SELECT c.name, avg(i.embedding) FROM items i JOIN categories c ON c.id = i.category_id GROUP BY c.name ORDER BY 1;
\echo '-- an HNSW index over 10,000 more rows, used for ORDER BY ... LIMIT'
INSERT INTO items (name, category_id, embedding)
  SELECT 'item ' || i, 1 + i % 2, ARRAY[random(), random(), random()] FROM generate_series(1, 10000) i;
CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_cosine_ops);
ANALYZE items;
EXPLAIN (COSTS OFF) SELECT name FROM items ORDER BY embedding <=> '[1,0,0]' LIMIT 3;
SELECT name, round((embedding <=> '[1,0,0]')::numeric, 4) AS cosine_distance
FROM items ORDER BY embedding <=> '[1,0,0]' LIMIT 3;
\echo '-- filtered, with an iterative scan so that LIMIT rows come back'
SET hnsw.iterative_scan = relaxed_order;
SELECT count(*) FROM (SELECT name FROM items WHERE category_id = 2 ORDER BY embedding <=> '[1,0,0]' LIMIT 50) s;
SQL
log "PostgreSQL $PG_VERSION is running. Connect with:"
echo "  $PG_BIN/psql -h $PGSOCK -p $PGPORT -U postgres vector_ext_demo"
