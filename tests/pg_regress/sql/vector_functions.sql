-- Distances, functions and operators.
SELECT '[1,2,3]'::vector <-> '[3,2,1]' AS l2, l2_distance('[0,0]'::vector, '[3,4]');
SELECT '[1,2,3]'::vector <#> '[3,2,1]' AS neg_ip, inner_product('[1,2,3]'::vector, '[3,2,1]');
SELECT '[1,2]'::vector <=> '[2,4]' AS cos_same, '[1,0]'::vector <=> '[0,1]' AS cos_orth, '[1,1]'::vector <=> '[-1,-1]' AS cos_opp;
SELECT cosine_distance('[1,2,3]'::vector, '[4,5,6]');
SELECT '[0,0]'::vector <=> '[1,1]' AS cos_zero;
SELECT '[1,2,3]'::vector <+> '[3,2,-1]' AS l1, l1_distance('[1]'::vector, '[-1]');
SELECT vector_l2_squared_distance('[1,2,3]', '[3,2,1]');
SELECT vector_negative_inner_product('[1,2,3]', '[3,2,1]');
SELECT round(vector_spherical_distance('[1,0]', '[0,1]')::numeric, 6), vector_spherical_distance('[1,0]', '[1,0]');
SELECT '[1,2]'::vector <-> '[1,2,3]';
SELECT '[1,2]'::vector <#> '[1,2,3]';
SELECT '[1,2]'::vector <=> '[1,2,3]';
SELECT '[1,2]'::vector <+> '[1,2,3]';
SELECT inner_product('[3e38]'::vector, '[3e38]');
SELECT l2_distance('[3e38]'::vector, '[-3e38]');

-- distances over many lengths agree with plain SQL arithmetic
WITH v AS (
  SELECT n, array_agg((i % 7) - 3)::real[] AS a, array_agg((i % 5) - 2)::real[] AS b
  FROM generate_series(1, 100) n, generate_series(1, n) i GROUP BY n
), s AS (
  SELECT n, a::vector AS va, b::vector AS vb,
         (SELECT sum((x - y) ^ 2) FROM unnest(a, b) u(x, y)) AS l2sq,
         (SELECT sum(x * y) FROM unnest(a, b) u(x, y)) AS ip,
         (SELECT sum(abs(x - y)) FROM unnest(a, b) u(x, y)) AS l1
  FROM v
)
SELECT count(*) FILTER (WHERE va <-> vb = sqrt(l2sq)) AS l2_ok,
       count(*) FILTER (WHERE (va <#> vb) = -ip) AS ip_ok,
       count(*) FILTER (WHERE (va <+> vb) = l1) AS l1_ok,
       count(*) FILTER (WHERE vector_l2_squared_distance(va, vb) = l2sq) AS l2sq_ok,
       count(*) AS total
FROM s;

SELECT vector_dims('[1,2,3]'::vector);
SELECT vector_norm('[3,4]'::vector), vector_norm('[0,0]'::vector);
SELECT l2_normalize('[3,4]'::vector), l2_normalize('[0,0]'::vector), l2_normalize('[1e-40]'::vector);
SELECT binary_quantize('[1,0,-1,2,0.5,-0.1,3,4,5]'::vector);
SELECT binary_quantize('[1,-1]'::vector)::text, length(binary_quantize('[1,2,3,4,5,6,7,8]'::vector));

SELECT subvector('[1,2,3,4,5]'::vector, 1, 3), subvector('[1,2,3,4,5]'::vector, 3, 2);
SELECT subvector('[1,2,3,4,5]'::vector, -1, 3), subvector('[1,2,3,4,5]'::vector, 4, 10);
SELECT subvector('[1,2,3,4,5]'::vector, 3, 2147483647), subvector('[1,2,3,4,5]'::vector, -2147483644, 2147483647);
SELECT subvector('[1,2,3,4,5]'::vector, 1, 0);
SELECT subvector('[1,2,3,4,5]'::vector, 6, 1);
SELECT subvector('[1,2,3,4,5]'::vector, -1, 2);
SELECT subvector('[1,2,3,4,5]'::vector, -2147483648, 1);

-- arithmetic
SELECT '[1,2,3]'::vector + '[4,5,6]', '[1,2,3]'::vector - '[4,5,6]', '[1,2,3]'::vector * '[4,5,6]';
SELECT '[1,2]'::vector || '[3]', '[1]'::vector || '[2]' || '[3,4]';
SELECT '[1,2]'::vector + '[1]';
SELECT '[1,2]'::vector - '[1]';
SELECT '[1,2]'::vector * '[1]';
SELECT '[3e38]'::vector + '[3e38]';
SELECT '[-3e38]'::vector - '[3e38]';
SELECT '[1e20]'::vector * '[1e20]';
SELECT '[1e-30]'::vector * '[1e-30]';
SELECT ('[' || array_to_string(array_fill(1, ARRAY[8000]), ',') || ']')::vector ||
       ('[' || array_to_string(array_fill(1, ARRAY[8001]), ',') || ']')::vector;

-- comparison and btree
SELECT '[1,2,3]'::vector < '[1,2,4]', '[1,2,3]'::vector <= '[1,2,3]', '[1,2,3]'::vector = '[1,2,3]',
       '[1,2,3]'::vector <> '[1,2]', '[1,2,3]'::vector >= '[1,2]', '[2]'::vector > '[1,9]';
SELECT vector_cmp('[1,2]', '[1,2,0]'), vector_cmp('[1,2]', '[1,2]'), vector_cmp('[2]', '[1,2]');
SELECT '[-0]'::vector = '[0]';
CREATE TABLE vcmp (v vector);
INSERT INTO vcmp VALUES ('[3]'), ('[1,2]'), ('[1]'), ('[1,1]'), ('[-1,5]'), (NULL);
SELECT v FROM vcmp ORDER BY v;
CREATE INDEX ON vcmp (v);
SET enable_seqscan = off;
SELECT v FROM vcmp WHERE v >= '[1]' ORDER BY v;
SELECT count(*) FROM vcmp WHERE v = '[1,2]';
RESET enable_seqscan;
SELECT DISTINCT v FROM (VALUES ('[1,2]'::vector), ('[1,2]'), ('[2,1]')) t(v) ORDER BY v;
DROP TABLE vcmp;

-- ordering rows by distance, with a filter and a join
CREATE TABLE items (id int PRIMARY KEY, category text, embedding vector(3));
INSERT INTO items VALUES (1, 'a', '[1,1,1]'), (2, 'b', '[2,2,2]'), (3, 'a', '[1,1,2]'), (4, 'b', '[0,0,1]'), (5, 'a', NULL);
SELECT id, embedding <-> '[1,1,1]' AS d FROM items ORDER BY embedding <-> '[1,1,1]' LIMIT 3;
SELECT id FROM items WHERE category = 'a' ORDER BY embedding <=> '[1,1,1]', id;
CREATE TABLE categories (name text, label text);
INSERT INTO categories VALUES ('a', 'alpha'), ('b', 'beta');
SELECT c.label, i.id FROM items i JOIN categories c ON c.name = i.category
ORDER BY i.embedding <+> '[2,2,2]' NULLS LAST, i.id LIMIT 3;
DROP TABLE items, categories;
