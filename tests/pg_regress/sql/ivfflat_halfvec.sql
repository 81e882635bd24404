-- ivfflat on halfvec: centers and list items stored as binary16.
SET enable_seqscan = off;
CREATE TABLE ih (id int, val halfvec(3));
INSERT INTO ih SELECT i, ARRAY[(i * 7) % 11, (i * 3) % 13, i % 5 + 1]::halfvec FROM generate_series(1, 300) i;
INSERT INTO ih VALUES (1000, '[0.1,0.2,0.3]'), (1001, NULL), (1002, '[0,0,0]');

CREATE INDEX ih_l2 ON ih USING ivfflat (val halfvec_l2_ops) WITH (lists = 5);
EXPLAIN (COSTS OFF) SELECT id FROM ih ORDER BY val <-> '[3,1,2]' LIMIT 5;
-- probing every list is exact
SET ivfflat.probes = 5;
SELECT (SELECT array_agg(d) FROM (SELECT val <-> '[3,1,2]' AS d FROM ih ORDER BY val <-> '[3,1,2]' LIMIT 400) s)
     = (SELECT array_agg(l2_distance(val, '[3,1,2]') ORDER BY l2_distance(val, '[3,1,2]')) FROM ih WHERE val IS NOT NULL) AS exact;
SELECT id, val <-> '[3,1,2]' AS d FROM ih ORDER BY val <-> '[3,1,2]', id LIMIT 3;
DROP INDEX ih_l2;

CREATE INDEX ih_ip ON ih USING ivfflat (val halfvec_ip_ops) WITH (lists = 5);
SELECT id, val <#> '[1,1,1]' AS d FROM ih ORDER BY val <#> '[1,1,1]' LIMIT 3;
DROP INDEX ih_ip;

-- cosine: the zero vector is not indexed
CREATE INDEX ih_cos ON ih USING ivfflat (val halfvec_cosine_ops) WITH (lists = 5);
SELECT count(*) FROM (SELECT id FROM ih ORDER BY val <=> '[1,2,3]' LIMIT 1000) s;
SELECT id, round((val <=> '[1,2,3]')::numeric, 4) AS d FROM ih ORDER BY val <=> '[1,2,3]', id LIMIT 3;

-- inserts after the build, wrong dimensions, vacuum
INSERT INTO ih VALUES (2000, '[0.1,0.2,0.30001]'), (2001, '[65504,1,1]');
SELECT id FROM ih ORDER BY val <=> '[1,2,3]' LIMIT 3;
INSERT INTO ih VALUES (2002, '[1,2]');
SELECT id FROM ih ORDER BY val <=> '[1,2]' LIMIT 1;
DELETE FROM ih WHERE id < 200;
VACUUM ih;
SELECT count(*) FROM (SELECT id FROM ih ORDER BY val <=> '[1,2,3]' LIMIT 1000) s;
REINDEX INDEX ih_cos;
SELECT count(*) FROM (SELECT id FROM ih ORDER BY val <=> '[1,2,3]' LIMIT 1000) s;
-- a 1-dimensional column cannot be clustered by angle
CREATE TABLE ih1 (val halfvec(1));
CREATE INDEX ON ih1 USING ivfflat (val halfvec_cosine_ops);
DROP TABLE ih, ih1;

-- dimensions: pgvector's 4000 and up to what fits a list page (binary16)
CREATE TABLE ih (val halfvec(4000));
CREATE INDEX ON ih USING ivfflat (val halfvec_l2_ops) WITH (lists = 1);
DROP TABLE ih;
CREATE TABLE ih (val halfvec(4072));
INSERT INTO ih SELECT array_fill(i::real, ARRAY[4072]) FROM generate_series(1, 5) i;
CREATE INDEX ON ih USING ivfflat (val halfvec_l2_ops) WITH (lists = 2);
SET ivfflat.probes = 2;
SELECT subvector(val, 4071, 2) FROM ih ORDER BY val <-> array_fill(2.2::real, ARRAY[4072])::halfvec LIMIT 2;
DROP TABLE ih;
CREATE TABLE ih (val halfvec(4073));
CREATE INDEX ON ih USING ivfflat (val halfvec_l2_ops);
DROP TABLE ih;
RESET ivfflat.probes;
RESET enable_seqscan;
