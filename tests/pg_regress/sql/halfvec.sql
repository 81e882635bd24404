-- halfvec: IEEE binary16 elements; text and binary I/O, typmods, casts,
-- operators, functions, aggregates, btree, and every error.

-- text input rounds each number to the nearest binary16 (ties to even)
SELECT '[1,2,3]'::halfvec;
SELECT ' [ -1.5 , 2e-3 ,+.25 ] '::halfvec;
SELECT '[1.23456,0.1,3.14159]'::halfvec;
SELECT '[65504,-65504,65519]'::halfvec;
SELECT '[6e-8,-6e-8,1e-8,5.96e-8]'::halfvec;
SELECT '[1,2,3]'::halfvec(3);
SELECT '[1,2,3]'::halfvec::text;
-- output reads back to the same value
SELECT v = v::text::halfvec AS round_trip
FROM (SELECT ARRAY[random() * 100, random() * 1e-5, -random() * 60000]::real[]::halfvec AS v
      FROM generate_series(1, 500)) s
GROUP BY 1;

-- out of range for binary16, and for float4
SELECT '[65520]'::halfvec;
SELECT '[1,-70000]'::halfvec;
SELECT '[4e38]'::halfvec;
SELECT '[NaN]'::halfvec;
SELECT '[Infinity]'::halfvec;
SELECT '[1,-inf]'::halfvec;

-- malformed input
SELECT ''::halfvec;
SELECT '1,2'::halfvec;
SELECT '['::halfvec;
SELECT '[]'::halfvec;
SELECT '[1,,2]'::halfvec;
SELECT '[1,]'::halfvec;
SELECT '[a]'::halfvec;
SELECT '[1,2]x'::halfvec;
SELECT '[1,2]'::halfvec(3);

-- dimensions and typmods
SELECT vector_dims(('[' || array_to_string(array_fill(1, ARRAY[16000]), ',') || ']')::halfvec);
SELECT ('[' || array_to_string(array_fill(1, ARRAY[16001]), ',') || ']')::halfvec;
SELECT '[1]'::halfvec(0);
SELECT '[1]'::halfvec(16001);
SELECT '[1]'::halfvec(1, 2);
CREATE TABLE hio (v halfvec(3));
INSERT INTO hio VALUES ('[1,2,3]');
INSERT INTO hio VALUES ('[1,2]');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'hio'::regclass AND attname = 'v';
DROP TABLE hio;
SELECT typstorage, typlen FROM pg_type WHERE typname = 'halfvec';
SELECT typname FROM pg_type WHERE typname = '_halfvec';
SELECT '{"[1,2]","[3,4]"}'::halfvec[];

-- binary: int16 dim, int16 unused, big-endian binary16 elements
SELECT halfvec_send('[1,-2.5,65504]'::halfvec);
CREATE TABLE hbin (id int, v halfvec);
INSERT INTO hbin VALUES (1, '[1,2,3]'), (2, '[-0.5,0.0001,65504]'), (3, NULL);
COPY hbin TO '/tmp/vector_ext_regress_half.bin' WITH (FORMAT binary);
CREATE TABLE hbin2 (id int, v halfvec);
COPY hbin2 FROM '/tmp/vector_ext_regress_half.bin' WITH (FORMAT binary);
SELECT a.id, a.v, b.v, a.v IS NOT DISTINCT FROM b.v AS same FROM hbin a JOIN hbin2 b USING (id) ORDER BY id;
CREATE TABLE hbin3 (id int, v halfvec(2));
COPY hbin3 FROM '/tmp/vector_ext_regress_half.bin' WITH (FORMAT binary);
DROP TABLE hbin, hbin2, hbin3;

-- casts
SELECT '[1.5,2,3]'::vector::halfvec, '[1.5,2,3]'::halfvec::vector;
SELECT '[0.1]'::vector::halfvec::vector;
SELECT '[1e5]'::vector::halfvec;
SELECT '[1,2]'::vector::halfvec(3);
SELECT '[1,2,3]'::halfvec::real[];
SELECT ARRAY[1,2,3]::halfvec, ARRAY[1.5,2.5]::real[]::halfvec, ARRAY[1.25,2]::float8[]::halfvec,
       ARRAY[1.5,2]::numeric[]::halfvec;
SELECT ARRAY[1,70000]::halfvec;
SELECT ARRAY[1e40]::float8[]::halfvec;
SELECT ARRAY['NaN']::real[]::halfvec;
SELECT ARRAY['Infinity']::float8[]::halfvec;
SELECT ARRAY[1,NULL]::int[]::halfvec;
SELECT ARRAY[[1,2],[3,4]]::int[]::halfvec;
SELECT ARRAY[]::int[]::halfvec;
SELECT ARRAY[1,2]::int[]::halfvec(3);
SELECT '{1,2}'::text[]::halfvec;
-- implicit vector -> halfvec in assignment and function calls
CREATE TABLE hcast (v halfvec(2));
INSERT INTO hcast VALUES ('[1,2]'::vector), (ARRAY[3,4]);
SELECT v, l2_distance(v, '[0,0]'::vector) FROM hcast ORDER BY 1;
DROP TABLE hcast;

-- distances (computed in f32 from the binary16 values)
SELECT '[1,2]'::halfvec <-> '[4,6]', l2_distance('[1,2]'::halfvec, '[4,6]'),
       halfvec_l2_squared_distance('[1,2]', '[4,6]');
SELECT '[1,2]'::halfvec <#> '[3,4]', inner_product('[1,2]'::halfvec, '[3,4]'),
       halfvec_negative_inner_product('[1,2]', '[3,4]');
SELECT '[1,2]'::halfvec <=> '[2,4]', cosine_distance('[1,0]'::halfvec, '[0,1]'),
       cosine_distance('[1,1]'::halfvec, '[-1,-1]');
SELECT cosine_distance('[0,0]'::halfvec, '[1,1]');
SELECT '[1,2]'::halfvec <+> '[4,-2]', l1_distance('[1,2]'::halfvec, '[4,-2]');
SELECT halfvec_spherical_distance('[1,0]', '[0,1]'), halfvec_spherical_distance('[1,0]', '[-1,0]');
SELECT '[1,2]'::halfvec <-> '[1,2,3]';
SELECT '[1,2]'::halfvec <#> '[1,2,3]';
SELECT '[1,2]'::halfvec <=> '[1,2,3]';
SELECT '[1,2]'::halfvec <+> '[1,2,3]';
-- large values stay finite in the f32 accumulation
SELECT '[65504,65504]'::halfvec <-> '[-65504,-65504]', '[65504]'::halfvec <#> '[65504]';

-- functions
SELECT vector_dims('[1,2,3]'::halfvec), l2_norm('[3,4]'::halfvec), l2_norm('[0,0]'::halfvec);
SELECT l2_normalize('[3,4]'::halfvec), l2_normalize('[0,0]'::halfvec), l2_normalize('[65504,65504]'::halfvec);
SELECT binary_quantize('[1,-2,0,3,0.001,-0.5,7,8,-9]'::halfvec);
SELECT subvector('[1,2,3,4,5]'::halfvec, 2, 3), subvector('[1,2,3]'::halfvec, 0, 2),
       subvector('[1,2,3]'::halfvec, 2, 10);
SELECT subvector('[1,2,3]'::halfvec, 4, 1);
SELECT subvector('[1,2,3]'::halfvec, 1, 0);

-- arithmetic rounds to binary16 and reports overflow and underflow
SELECT '[1,2]'::halfvec + '[0.5,-3]', '[1,2]'::halfvec - '[0.5,-3]', '[1.5,2]'::halfvec * '[2,-3]';
SELECT '[1,2]'::halfvec || '[3]'::halfvec;
SELECT '[60000]'::halfvec + '[60000]';
SELECT '[-60000]'::halfvec - '[60000]';
SELECT '[300]'::halfvec * '[300]';
SELECT '[0.0001]'::halfvec * '[0.0001]';
SELECT '[1,2]'::halfvec + '[1]';
SELECT ('[' || array_to_string(array_fill(1, ARRAY[16000]), ',') || ']')::halfvec || '[1]'::halfvec;

-- comparison and btree
SELECT '[1,2]'::halfvec < '[1,3]', '[1,2]'::halfvec <= '[1,2]', '[1,2]'::halfvec = '[1,2]',
       '[1,2]'::halfvec <> '[1,2,0]', '[2]'::halfvec >= '[1,9]', '[1,2,3]'::halfvec > '[1,2]';
SELECT halfvec_cmp('[1,2]', '[1,2]'), halfvec_cmp('[1]', '[1,0]'), halfvec_cmp('[2]', '[1,5]');
-- 0.1 and 0.09999 round to the same binary16 value, 0.1 and 0.10003 do not
SELECT '[0.1]'::halfvec = '[0.09999]'::halfvec, '[0.1]'::halfvec = '[0.10003]'::halfvec;
CREATE TABLE hsort (id int, v halfvec);
INSERT INTO hsort VALUES (1, '[3,1]'), (2, '[1,2]'), (3, '[1,2,0]'), (4, '[-1,5]'), (5, '[1,2]');
CREATE INDEX ON hsort (v);
SET enable_seqscan = off;
SELECT id, v FROM hsort WHERE v = '[1,2]' ORDER BY id;
RESET enable_seqscan;
SELECT id, v FROM hsort ORDER BY v, id;
SELECT DISTINCT v FROM hsort ORDER BY v;
DROP TABLE hsort;

-- aggregates
SELECT avg(v), sum(v) FROM (VALUES ('[1,2]'::halfvec), ('[3,5]'), (NULL)) t(v);
SELECT avg(v), sum(v) FROM (VALUES (NULL::halfvec)) t(v);
SELECT avg(v) FROM (VALUES ('[1,2]'::halfvec), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[1,2]'::halfvec), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[60000]'::halfvec), ('[60000]')) t(v);
-- the average is taken in float8 and only the result must fit binary16
SELECT avg(v) FROM (VALUES ('[60000]'::halfvec), ('[60000]')) t(v);
CREATE TABLE hagg AS SELECT ARRAY[i % 7, -i % 5, 1]::halfvec AS v FROM generate_series(1, 2000) i;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SELECT avg(v), sum(v) FROM hagg;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
SELECT avg(v::vector)::halfvec = avg(v) AS avg_matches_vector FROM hagg;
DROP TABLE hagg;

-- every halfvec function is immutable, strict and parallel safe
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid
WHERE e.extname = 'vector_ext' AND p.prokind = 'f'
  AND (p.proargtypes::regtype[]::text LIKE '%halfvec%' OR p.prorettype = 'halfvec'::regtype)
  AND (p.provolatile <> 'i' OR NOT p.proisstrict OR p.proparallel <> 's');
SELECT castsource::regtype, casttarget::regtype, castcontext
FROM pg_cast WHERE castsource = 'halfvec'::regtype OR casttarget = 'halfvec'::regtype
ORDER BY 1::text, 2::text;
