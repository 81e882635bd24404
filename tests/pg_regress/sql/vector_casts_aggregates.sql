-- Casts between vector and arrays.
SELECT ARRAY[1,2,3]::vector, ARRAY[1.5,2,3]::real[]::vector, ARRAY[1.5,2,3]::float8[]::vector, ARRAY[1.5,2,3]::numeric[]::vector;
SELECT '{1,2,3}'::int[]::vector(3);
SELECT '{1,2,3}'::int[]::vector(2);
SELECT '{}'::real[]::vector;
SELECT '{{1,2},{3,4}}'::real[]::vector;
SELECT '{1,NULL,3}'::real[]::vector;
SELECT '{NaN}'::real[]::vector;
SELECT '{Infinity}'::float8[]::vector;
SELECT '{1e39}'::float8[]::vector;
SELECT '{1e39}'::numeric[]::vector;
SELECT '{NaN}'::numeric[]::vector;
SELECT array_fill(1, ARRAY[16001])::vector;
SELECT '[1,2,3]'::vector::real[], ('[1,2,3]'::vector)::real[] = '{1,2,3}'::real[];
SELECT '[1,2]'::vector::vector(2), '[1,2]'::vector::vector(3);
SELECT pg_typeof(ARRAY['[1,2]'::vector, '[3,4]'::vector]), ARRAY['[1,2]'::vector, '[3,4]'::vector];
SELECT '{"[1,2]","[3]"}'::vector[];

-- assignment casts let plain arrays be stored
CREATE TABLE vcast (v vector(3));
INSERT INTO vcast VALUES (ARRAY[1,2,3]), ('{4,5,6}'::real[]), (ARRAY[7,8,9]::float8[]), (ARRAY[1.5,2.5,3.5]::numeric[]);
SELECT v FROM vcast ORDER BY v;
INSERT INTO vcast VALUES (ARRAY[1,2]);
DROP TABLE vcast;

-- aggregates
SELECT avg(v), sum(v) FROM (VALUES ('[1,2,3]'::vector), ('[3,4,5]'), (NULL)) t(v);
SELECT avg(v), sum(v) FROM (VALUES (NULL::vector)) t(v);
SELECT avg(v), sum(v) FROM (SELECT '[1]'::vector AS v WHERE false) t;
SELECT avg(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT sum(v) FROM (VALUES ('[1,2]'::vector), ('[1,2,3]')) t(v);
SELECT avg(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);
SELECT sum(v) FROM (VALUES ('[3e38]'::vector), ('[3e38]')) t(v);
SELECT g % 2 AS k, avg(v), sum(v) FROM (SELECT g, ARRAY[g, -g]::vector AS v FROM generate_series(1, 10) g) t GROUP BY 1 ORDER BY 1;
SELECT sum(v) OVER (ORDER BY i ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), avg(v) OVER (ORDER BY i)
FROM (VALUES (1, '[1,1]'::vector), (2, '[2,2]'), (3, '[3,3]')) t(i, v) ORDER BY i;
SELECT vector_accum('{0}', '[1,2]'), vector_accum('{1,1,2}', '[3,4]');
SELECT vector_combine('{0}', '{1,1,2}'), vector_combine('{1,1,2}', '{2,3,4}'), vector_combine('{0}', '{0}');
-- states of more dimensions than a vector may have are refused, as pgvector does
SELECT vector_combine(array_fill(1::float8, ARRAY[16002]), array_fill(1::float8, ARRAY[16002]));
SELECT vector_combine('{0}', array_fill(1::float8, ARRAY[16002]));
SELECT halfvec_combine(array_fill(1::float8, ARRAY[16002]), '{0}');
SELECT array_length(vector_combine(array_fill(1::float8, ARRAY[16001]), array_fill(1::float8, ARRAY[16001])), 1);
SELECT vector_avg('{2,2,4}');
SELECT vector_accum('{}', '[1]');
-- states of no dimension or of two: refused before any dimension is read
SELECT vector_avg('{}');
SELECT vector_combine('{}', '{0}');
SELECT halfvec_avg('{{1,2},{3,4}}');
SELECT vector_accum('{1,2}', '[1,2]');

-- parallel aggregation uses the combine functions
CREATE TABLE vagg AS SELECT g AS id, ARRAY[g % 10, 1, -(g % 3)]::vector(3) AS v FROM generate_series(1, 50000) g;
ANALYZE vagg;
SET max_parallel_workers_per_gather = 2;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vagg;
SELECT avg(v), sum(v) FROM vagg;
-- no matching rows (estimated as a third of the table, so aggregated in
-- parallel): every worker's state is empty (pgvector 0.8.7's fix)
EXPLAIN (COSTS OFF) SELECT avg(v), sum(v) FROM vagg WHERE id * 2 < 0;
SELECT avg(v), sum(v) FROM vagg WHERE id * 2 < 0;
SELECT avg(v::halfvec), sum(v::halfvec) FROM vagg WHERE id * 2 < 0;
SELECT avg(v::halfvec), sum(v::halfvec) FROM vagg WHERE id % 1000 = 7;
RESET max_parallel_workers_per_gather;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
SELECT avg(v), sum(v) FROM vagg;
DROP TABLE vagg;

-- volatility, strictness and parallel safety of every function (the index
-- access method handlers are volatile and parallel unsafe, as in pgvector)
SELECT p.proname, p.provolatile, p.proisstrict, p.proparallel, count(*)
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'vector_ext'
WHERE p.prokind = 'f' AND (p.provolatile <> 'i' OR NOT p.proisstrict OR p.proparallel <> 's')
GROUP BY 1, 2, 3, 4 ORDER BY 1;
