-- hnsw on bit strings: bit_hamming_ops and bit_jaccard_ops, and the
-- binary quantize then re-rank pattern through an expression index.
SET enable_seqscan = off;
SET hnsw.ef_search = 1000;

CREATE TABLE tb (id int, val bit(70));
INSERT INTO tb SELECT i, (lpad((i * 2654435761 % 4294967296)::bit(32)::text, 32, '0')
                          || lpad((i * 40503 % 65536)::bit(16)::text, 16, '0')
                          || repeat((i % 2)::text, 22))::bit(70)
FROM generate_series(1, 300) i;
INSERT INTO tb VALUES (1000, NULL), (1001, repeat('0', 70)::bit(70));

CREATE INDEX tb_h ON tb USING hnsw (val bit_hamming_ops);
EXPLAIN (COSTS OFF) SELECT id FROM tb ORDER BY val <~> repeat('1', 70)::bit(70) LIMIT 5;
-- the whole index in order: the exact distances, sorted (the NULL row is not indexed)
SELECT (SELECT array_agg(d) FROM (SELECT val <~> repeat('10', 35)::bit(70) AS d FROM tb
                                  ORDER BY val <~> repeat('10', 35)::bit(70) LIMIT 400) s)
     = (SELECT array_agg(d ORDER BY d) FROM (SELECT val <~> repeat('10', 35)::bit(70) AS d FROM tb
                                            WHERE val IS NOT NULL) s) AS exact;
SELECT id, val <~> repeat('0', 70)::bit(70) AS d FROM tb ORDER BY val <~> repeat('0', 70)::bit(70) LIMIT 2;
INSERT INTO tb VALUES (2000, repeat('1', 70)::bit(70));
SELECT id FROM tb ORDER BY val <~> repeat('1', 70)::bit(70) LIMIT 1;
-- a query of another length
SELECT id FROM tb ORDER BY val <~> B'101' LIMIT 1;
DROP INDEX tb_h;

CREATE INDEX tb_j ON tb USING hnsw (val bit_jaccard_ops);
SELECT (SELECT array_agg(d) FROM (SELECT val <%> repeat('10', 35)::bit(70) AS d FROM tb
                                  ORDER BY val <%> repeat('10', 35)::bit(70) LIMIT 400) s)
     = (SELECT array_agg(d ORDER BY d) FROM (SELECT val <%> repeat('10', 35)::bit(70) AS d FROM tb
                                            WHERE val IS NOT NULL) s) AS exact;
VACUUM tb;
DROP TABLE tb;

-- a bit column needs a length, and fits up to 64640 bits; bit varying is
-- refused, bounded or not (its strings may differ in length), as pgvector does
CREATE TABLE tb (val varbit);
CREATE INDEX ON tb USING hnsw (val bit_hamming_ops);
DROP TABLE tb;
CREATE TABLE tb (val bit varying(8));
INSERT INTO tb VALUES ('101'), ('1100');
CREATE INDEX ON tb USING hnsw (val bit_hamming_ops);
CREATE INDEX ON tb USING hnsw ((val::bit(8)) bit_hamming_ops);
DROP TABLE tb;
CREATE TABLE tb (val bit(64000));
CREATE INDEX ON tb USING hnsw (val bit_hamming_ops);
DROP TABLE tb;
CREATE TABLE tb (val bit(64641));
CREATE INDEX ON tb USING hnsw (val bit_hamming_ops);
DROP TABLE tb;

-- binary quantization with re-ranking: an expression index on the bits,
-- candidates by Hamming distance, then the exact order on the vectors
CREATE TABLE items (id int, embedding vector(8));
INSERT INTO items SELECT i, ARRAY[sin(i), cos(i), sin(2 * i), cos(3 * i), sin(5 * i), cos(7 * i),
                                  sin(11 * i), cos(13 * i)]::vector FROM generate_series(1, 500) i;
CREATE INDEX ON items USING hnsw ((binary_quantize(embedding)::bit(8)) bit_hamming_ops);
EXPLAIN (COSTS OFF)
SELECT id FROM items ORDER BY binary_quantize(embedding)::bit(8) <~> binary_quantize('[1,-1,1,-1,1,-1,1,-1]'::vector) LIMIT 20;
SELECT * FROM (
    SELECT id, embedding FROM items
    ORDER BY binary_quantize(embedding)::bit(8) <~> binary_quantize('[1,-1,1,-1,1,-1,1,-1]'::vector)
    LIMIT 20
) candidates ORDER BY embedding <=> '[1,-1,1,-1,1,-1,1,-1]' LIMIT 5;
-- the candidates are exactly the rows nearest in Hamming distance
SELECT count(*) FROM (
    SELECT id FROM items
    ORDER BY binary_quantize(embedding)::bit(8) <~> binary_quantize('[1,-1,1,-1,1,-1,1,-1]'::vector) LIMIT 20
) s WHERE binary_quantize((SELECT embedding FROM items i WHERE i.id = s.id))::bit(8)
          <~> binary_quantize('[1,-1,1,-1,1,-1,1,-1]'::vector)
      <= (SELECT max(d) FROM (SELECT binary_quantize(embedding)::bit(8) <~> binary_quantize('[1,-1,1,-1,1,-1,1,-1]'::vector) AS d
                              FROM items ORDER BY 1 LIMIT 20) t);
DROP TABLE items;
RESET hnsw.ef_search;
RESET enable_seqscan;
