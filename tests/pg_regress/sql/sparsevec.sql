-- sparsevec: {index:value,...}/dim with 1-based indices; text and binary
-- I/O, typmods, casts, distances, norms, comparison and every error.
SELECT '{1:1.5,3:2}/5'::sparsevec, ' { 3 : -2 , 1:1 } / 4 '::sparsevec, '{}/3'::sparsevec;
SELECT '{1:0,2:1,3:0.0}/3'::sparsevec;
SELECT '{1:3.4028235e38,2:1e-45}/2'::sparsevec;
SELECT '{1:1}/3'::sparsevec(3), '{1:1}/3'::sparsevec::text;

-- malformed input and out-of-range values
SELECT '[1,2]'::sparsevec;
SELECT '{1:1}'::sparsevec;
SELECT '{1:1}/3x'::sparsevec;
SELECT '{1:1,}/3'::sparsevec;
SELECT '{1:1}/'::sparsevec;
SELECT '{a:1}/3'::sparsevec;
SELECT '{1:a}/3'::sparsevec;
SELECT '{1 1}/3'::sparsevec;
SELECT '{1:1e39}/3'::sparsevec;
SELECT '{1:1e-50}/3'::sparsevec;
SELECT '{1:NaN}/3'::sparsevec;
SELECT '{1:-Infinity}/3'::sparsevec;
SELECT '{1:1,1:2}/3'::sparsevec;
SELECT '{0:1}/3'::sparsevec;
SELECT '{4:1}/3'::sparsevec;
SELECT '{}/0'::sparsevec;
SELECT '{}/1000000001'::sparsevec;
SELECT '{1:1}/3'::sparsevec(4);
SELECT '{}/1000000000'::sparsevec;
SELECT ('{' || array_to_string(ARRAY(SELECT i || ':1' FROM generate_series(1, 16001) i), ',') || '}/20000')::sparsevec;
SELECT '{1:1}/3'::sparsevec(0);
SELECT '{1:1}/3'::sparsevec(1000000001);
CREATE TABLE sio (v sparsevec(3));
INSERT INTO sio VALUES ('{1:1}/3');
INSERT INTO sio VALUES ('{1:1}/4');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sio'::regclass AND attname = 'v';
DROP TABLE sio;
SELECT typname, typstorage FROM pg_type WHERE typname IN ('sparsevec', '_sparsevec') ORDER BY 1;

-- binary: int32 dim, nnz, unused, 0-based indices, float4 values
SELECT sparsevec_send('{1:1.5,3:-2}/5'::sparsevec);
CREATE TABLE sbin (id int, v sparsevec);
INSERT INTO sbin VALUES (1, '{1:1.5,3:-2}/5'), (2, '{}/2'), (3, NULL);
COPY sbin TO '/tmp/vector_ext_regress_sparse.bin' WITH (FORMAT binary);
CREATE TABLE sbin2 (id int, v sparsevec);
COPY sbin2 FROM '/tmp/vector_ext_regress_sparse.bin' WITH (FORMAT binary);
SELECT a.id, a.v, b.v, a.v IS NOT DISTINCT FROM b.v AS same FROM sbin a JOIN sbin2 b USING (id) ORDER BY id;
DROP TABLE sbin, sbin2;

-- casts
SELECT '[1,0,-2,0]'::vector::sparsevec, '[0,0]'::vector::sparsevec, '[1,0,2.5]'::halfvec::sparsevec;
SELECT '{1:1,3:-2}/4'::sparsevec::vector, '{2:1.5}/3'::sparsevec::halfvec;
SELECT '{1:1e5}/2'::sparsevec::halfvec;
SELECT '{1:1}/16001'::sparsevec::vector;
SELECT ARRAY[0,1,0,2]::sparsevec, ARRAY[0.5,0]::real[]::sparsevec, ARRAY[1.5]::numeric[]::sparsevec;
SELECT ARRAY['NaN']::real[]::sparsevec;
SELECT ARRAY[]::int[]::sparsevec;
SELECT '[1,2]'::vector::sparsevec(3);
SELECT castsource::regtype, casttarget::regtype, castcontext
FROM pg_cast WHERE castsource = 'sparsevec'::regtype OR casttarget = 'sparsevec'::regtype
ORDER BY 1::text, 2::text;

-- distances match the dense vectors'
SELECT a <-> b, l2_distance(a::vector, b::vector), a <#> b, -inner_product(a::vector, b::vector),
       a <=> b, cosine_distance(a::vector, b::vector), a <+> b, l1_distance(a::vector, b::vector),
       sparsevec_l2_squared_distance(a, b), sparsevec_negative_inner_product(a, b), inner_product(a, b)
FROM (VALUES ('{1:1,3:2,7:-1}/8'::sparsevec, '{2:1,3:1,7:3,8:0.5}/8'::sparsevec)) t(a, b);
SELECT '{}/3'::sparsevec <-> '{}/3', '{}/3'::sparsevec <=> '{1:1}/3', '{1:1}/3'::sparsevec <#> '{2:1}/3';
SELECT '{1:1}/3'::sparsevec <-> '{1:1}/4';
SELECT '{1:1}/3'::sparsevec <=> '{1:1}/4';
SELECT l2_norm('{1:3,5:4}/5'::sparsevec), l2_norm('{}/5'::sparsevec);
SELECT l2_normalize('{1:3,5:4}/5'::sparsevec), l2_normalize('{}/5'::sparsevec),
       l2_normalize('{1:3e38,2:1e-38}/2'::sparsevec);

-- comparison orders as the dense vectors do, then by dimensions
SELECT a, b, sparsevec_cmp(a, b), a < b, a = b, a > b
FROM (VALUES ('{1:1}/3'::sparsevec, '{1:1}/3'::sparsevec), ('{1:1}/3', '{2:1}/3'), ('{2:-1}/3', '{}/3'),
             ('{1:1}/3', '{1:1}/4'), ('{1:1,2:1}/3', '{1:1}/3'), ('{1:2}/3', '{1:1,3:5}/3')) t(a, b);
CREATE TABLE ssort (id int, v sparsevec);
INSERT INTO ssort VALUES (1, '{1:3}/2'), (2, '{2:1}/2'), (3, '{}/2'), (4, '{1:-1}/2'), (5, '{2:1}/2'), (6, '{}/3');
CREATE INDEX ON ssort (v);
SET enable_seqscan = off;
SELECT id, v FROM ssort WHERE v = '{2:1}/2' ORDER BY id;
RESET enable_seqscan;
SELECT id, v FROM ssort ORDER BY v, id;
SELECT array_agg(id ORDER BY v::vector, id) = array_agg(id ORDER BY v, id) AS dense_order
FROM ssort WHERE id <> 6;
DROP TABLE ssort;
