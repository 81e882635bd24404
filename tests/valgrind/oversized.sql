-- Oversized hostile values for scripts/valgrind_hostile.sh: every value is
-- larger than a memory context's chunk limit, so it sits at the end of a
-- malloc block of its own where memcheck sees a read past it. Errors are
-- expected and fine; what matters is what valgrind reports.
SET client_min_messages = warning;
CREATE TEMP TABLE big AS
  SELECT (SELECT array_agg(((i % 7) - 3)::real) FROM generate_series(1, 16000) i) AS a,
         (SELECT array_agg(((i % 5) - 2)::real) FROM generate_series(1, 15998) i) AS b;

-- text and casts, whole and cut short
SELECT vector_dims(a::vector), vector_dims(a::halfvec), vector_dims(b::vector) FROM big;
SELECT (a::vector::text)::vector = a::vector FROM big;
SELECT (a::halfvec::text)::halfvec = a::halfvec FROM big;
SELECT (a::sparsevec::text)::sparsevec = a::sparsevec FROM big;
SELECT left(a::vector::text, 40000)::vector FROM big;
SELECT left(a::halfvec::text, 40000)::halfvec FROM big;
SELECT left(a::sparsevec::text, 40000)::sparsevec FROM big;
SELECT rtrim(a::vector::text, ']')::vector FROM big;
SELECT (a::vector::text || ',1]')::vector FROM big;
SELECT a::vector::halfvec::sparsevec::vector = a::vector FROM big;
SELECT a::vector::real[] = a FROM big;
SELECT a::halfvec::real[] = a FROM big;
SELECT a::vector(16000) = a::vector, b::vector(16000) FROM big;
SELECT array_to_vector(a::float8[], 16000, true) IS NOT NULL FROM big;
SELECT array_to_vector(a::int[], 16000, true) IS NOT NULL FROM big;
SELECT array_to_vector(a::numeric[], 16000, true) IS NOT NULL FROM big;
SELECT array_to_halfvec(a, 16000, true) IS NOT NULL FROM big;
SELECT array_to_sparsevec(a, 16000, true) IS NOT NULL FROM big;
SELECT array_to_vector(array[a, a], -1, true) FROM big;
SELECT array_to_vector(a || NULL::real, -1, true) FROM big;

-- distances between large values, and of different sizes
SELECT l2_distance(a::vector, a::vector), inner_product(a::vector, a::vector),
       cosine_distance(a::vector, a::vector), l1_distance(a::vector, a::vector) FROM big;
SELECT l2_distance(a::halfvec, a::halfvec), inner_product(a::halfvec, a::halfvec),
       cosine_distance(a::halfvec, a::halfvec), l1_distance(a::halfvec, a::halfvec) FROM big;
SELECT l2_distance(a::sparsevec, a::sparsevec), inner_product(a::sparsevec, a::sparsevec),
       cosine_distance(a::sparsevec, a::sparsevec), l1_distance(a::sparsevec, a::sparsevec) FROM big;
SELECT a::vector <-> b::vector FROM big;
SELECT a::vector <=> b::vector FROM big;
SELECT a::vector <#> b::vector FROM big;
SELECT a::vector <+> b::vector FROM big;
SELECT a::halfvec <-> b::halfvec FROM big;
SELECT a::sparsevec <-> b::sparsevec FROM big;
SELECT a::sparsevec <=> b::sparsevec FROM big;
SELECT a::vector = b::vector, a::vector < b::vector, vector_cmp(a::vector, b::vector) FROM big;
SELECT a::halfvec = b::halfvec, halfvec_cmp(a::halfvec, b::halfvec) FROM big;
SELECT a::sparsevec = b::sparsevec, sparsevec_cmp(a::sparsevec, b::sparsevec) FROM big;

-- arithmetic and functions
SELECT vector_dims(a::vector + a::vector), vector_dims(a::vector - a::vector),
       vector_dims(a::vector * a::vector), vector_dims(a::vector || b::vector) FROM big;
SELECT a::vector + b::vector FROM big;
SELECT a::halfvec * b::halfvec FROM big;
SELECT vector_dims(a::halfvec || a::halfvec) FROM big;
SELECT vector_dims(a::vector || a::vector) FROM big;
SELECT l2_norm(a::halfvec), vector_norm(a::vector), l2_norm(a::sparsevec) FROM big;
SELECT vector_dims(l2_normalize(a::vector)), vector_dims(l2_normalize(a::halfvec)),
       l2_normalize(a::sparsevec) IS NOT NULL FROM big;
SELECT length(binary_quantize(a::vector)), length(binary_quantize(a::halfvec)) FROM big;
SELECT vector_dims(subvector(a::vector, 15990, 100)), vector_dims(subvector(a::vector, 1, 16000)),
       vector_dims(subvector(a::halfvec, 16000, 1)) FROM big;
SELECT subvector(a::vector, 16001, 1) FROM big;
SELECT subvector(a::vector, -2147483648, 2147483647) FROM big;
SELECT subvector(a::vector, 2147483647, 2147483647) FROM big;
SELECT subvector(a::halfvec, 0, 0) FROM big;

-- bit strings of different lengths
SELECT hamming_distance(binary_quantize(a::vector), binary_quantize(a::vector)),
       jaccard_distance(binary_quantize(a::vector), binary_quantize(a::vector)) FROM big;
SELECT hamming_distance(binary_quantize(a::vector), binary_quantize(b::vector)) FROM big;
SELECT jaccard_distance(binary_quantize(a::vector), binary_quantize(b::vector)) FROM big;
SELECT hamming_distance(repeat('1', 70000)::varbit, repeat('1', 69999)::varbit);
SELECT hamming_distance(repeat('10', 35000)::bit(70000), repeat('01', 35000)::bit(70000));

-- aggregates, and their states made by hand
SELECT vector_dims(avg(x)), vector_dims(sum(x)) FROM (SELECT a::vector AS x FROM big UNION ALL SELECT a::vector FROM big) s;
SELECT vector_dims(avg(x)), vector_dims(sum(x)) FROM (SELECT a::halfvec AS x FROM big UNION ALL SELECT a::halfvec FROM big) s;
SELECT avg(x) FROM (SELECT a::vector AS x FROM big UNION ALL SELECT b::vector FROM big) s;
SELECT vector_dims(vector_avg(array_fill(1::float8, ARRAY[16001])));
SELECT vector_avg(array_fill(0::float8, ARRAY[16001]));
SELECT vector_avg(array_fill(-1::float8, ARRAY[16001]));
SELECT vector_avg(array_fill(1e300::float8, ARRAY[16001]));
SELECT vector_avg(array_fill(1::float8, ARRAY[2, 8001]));
SELECT vector_avg(array_fill(1::float8, ARRAY[16001], ARRAY[0]));
SELECT vector_avg(array_fill(1::float8, ARRAY[16001]) || NULL::float8);
SELECT vector_avg('{}'::float8[]);
SELECT vector_avg('{1}'::float8[]);
SELECT halfvec_avg(array_fill(1::float8, ARRAY[16001])) IS NOT NULL;
SELECT halfvec_avg('{}'::float8[]);
SELECT vector_combine(array_fill(1::float8, ARRAY[16001]), array_fill(1::float8, ARRAY[15001]));
SELECT vector_combine(array_fill(1::float8, ARRAY[16001]), '{}'::float8[]);
SELECT vector_combine('{}'::float8[], array_fill(1::float8, ARRAY[16001])) IS NOT NULL;
SELECT vector_accum(array_fill(1::float8, ARRAY[16001]), b::vector) FROM big;
SELECT vector_accum('{}'::float8[], a::vector) IS NOT NULL FROM big;
SELECT vector_accum(array_fill(1::float8, ARRAY[16001]), a::vector) IS NOT NULL FROM big;
SELECT halfvec_accum(array_fill(1::float8, ARRAY[16001]), b::halfvec) FROM big;

-- sparse values: large dimensions, few and many entries
SELECT '{1:1,16000:2}/16000'::sparsevec;
SELECT '{16001:1}/16000'::sparsevec;
SELECT '{0:1}/16000'::sparsevec;
SELECT '{2:1,1:1}/16000'::sparsevec;
SELECT '{1:1,1:2}/16000'::sparsevec;
SELECT '{1:1}/1000000000'::sparsevec;
SELECT ('{' || string_agg(i || ':1', ',') || '}/20000')::sparsevec IS NOT NULL FROM generate_series(1, 20000, 2) i;
SELECT ('{' || string_agg(i || ':1', ',') || '}/20000')::sparsevec::vector IS NOT NULL FROM generate_series(1, 20000, 2) i;
SELECT ('{' || string_agg(i || ':1', ',') || '}/20000')::sparsevec::halfvec IS NOT NULL FROM generate_series(1, 20000, 2) i;
SELECT ('{' || string_agg(i || ':1', ',') || '}/16000')::sparsevec FROM generate_series(1, 20000, 2) i;

-- indexes over large values
CREATE TEMP TABLE t (id int, h halfvec(3000), s sparsevec(16000));
INSERT INTO t SELECT i, (SELECT array_agg(((i * j) % 11)::real) FROM generate_series(1, 3000) j),
  ('{' || i || ':1,' || (i + 8000) || ':2}/16000')::sparsevec FROM generate_series(1, 40) i;
CREATE INDEX ON t USING hnsw (h halfvec_l2_ops);
CREATE INDEX ON t USING hnsw (s sparsevec_l2_ops);
CREATE INDEX ON t USING ivfflat (h halfvec_l2_ops) WITH (lists = 4);
SET enable_seqscan = off;
SELECT id FROM t ORDER BY h <-> (SELECT h FROM t WHERE id = 7) LIMIT 3;
SELECT id FROM t ORDER BY s <-> (SELECT s FROM t WHERE id = 7) LIMIT 3;
SELECT vector_ext_index_check(indexrelid::regclass) IS NOT NULL FROM pg_index WHERE indrelid = 't'::regclass;
