-- Text input and output, typmods, and every malformed literal.
SELECT '[1,2,3]'::vector;
SELECT '[-1,2.5,3e-5]'::vector;
SELECT ' [ 1 , 2 , 3 ] '::vector;
SELECT '[1.5e-7,1e20,123456,1234567,0.0001,0.00001,-0]'::vector;
SELECT '[0.1,0.33333334,3.4028235e38,1e-45]'::vector;
SELECT '[+1,.5,1.,0x10]'::vector;
SELECT '[1e-50]'::vector;
SELECT '[1,2,3]'::vector(3);
SELECT '[1,2,3]'::vector::text;

-- shortest round-trip output reads back bit for bit
SELECT v = v::text::vector AS round_trip
FROM (SELECT ARRAY[random(), random() * 1e-30, random() * 1e30, -random()]::real[]::vector AS v
      FROM generate_series(1, 1000)) s
GROUP BY 1;

-- malformed input
SELECT ''::vector;
SELECT '1,2,3'::vector;
SELECT '['::vector;
SELECT '[]'::vector;
SELECT '[ ]'::vector;
SELECT '[1,,2]'::vector;
SELECT '[1 2]'::vector;
SELECT '[1,]'::vector;
SELECT '[,1]'::vector;
SELECT '[1'::vector;
SELECT '[1,2'::vector;
SELECT '[a]'::vector;
SELECT '[1.2.3]'::vector;
SELECT '[1,2]x'::vector;
SELECT '[1,2] ]'::vector;
SELECT '[1e39]'::vector;
SELECT '[-1e39]'::vector;
SELECT '[1e99999999999999999999]'::vector;
SELECT '[NaN]'::vector;
SELECT '[nan(123)]'::vector;
SELECT '[Infinity]'::vector;
SELECT '[1,-inf]'::vector;
SELECT '[1,2]'::vector(3);
SELECT '[1,2,3]'::vector(2);

-- dimension limits
SELECT vector_dims(('[' || array_to_string(array_fill(1, ARRAY[16000]), ',') || ']')::vector);
SELECT ('[' || array_to_string(array_fill(1, ARRAY[16001]), ',') || ']')::vector;

-- typmods
SELECT '[1]'::vector(0);
SELECT '[1]'::vector(16001);
SELECT '[1]'::vector(-1);
SELECT '[1]'::vector(1, 2);
SELECT '[1]'::vector('a');
CREATE TABLE vio (v vector(3));
INSERT INTO vio VALUES ('[1,2,3]');
INSERT INTO vio VALUES ('[1,2]');
SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'vio'::regclass AND attname = 'v';
DROP TABLE vio;

-- binary output: int16 dim, int16 unused, big-endian float4s
SELECT vector_send('[1,-2.5]'::vector);

-- binary input through COPY (the server reads with vector_recv)
CREATE TABLE vbin (id int, v vector);
INSERT INTO vbin VALUES (1, '[1,2,3]'), (2, '[-0.5,1e-30,3.4e38]'), (3, NULL);
COPY vbin TO '/tmp/vector_ext_regress.bin' WITH (FORMAT binary);
CREATE TABLE vbin2 (id int, v vector);
COPY vbin2 FROM '/tmp/vector_ext_regress.bin' WITH (FORMAT binary);
SELECT a.id, a.v, b.v, a.v IS NOT DISTINCT FROM b.v AS same FROM vbin a JOIN vbin2 b USING (id) ORDER BY id;
CREATE TABLE vbin3 (id int, v vector(2));
COPY vbin3 FROM '/tmp/vector_ext_regress.bin' WITH (FORMAT binary);
DROP TABLE vbin, vbin2, vbin3;

-- storage: rows stay inline until they no longer fit a page
SELECT typstorage, typalign, typlen FROM pg_type WHERE typname = 'vector';
SELECT typname FROM pg_type WHERE typname = '_vector';
