-- Hamming (<~>) and Jaccard (<%>) distances on Postgres' bit type.
SELECT B'1010' <~> B'0110', hamming_distance(B'1010', B'0110');
SELECT B'1110' <%> B'0111', jaccard_distance(B'1110', B'0111');
-- Jaccard: no common set bit is distance 1 (two empty sets too), equal sets 0
SELECT B'1100' <%> B'0011', B'0000' <%> B'0000', B'1010' <%> B'1010', B'0000' <~> B'0000';
-- lengths that are not whole bytes or words
SELECT B'1' <~> B'0', B'101010101' <~> B'010101010', B'101010101' <%> B'100000001';
SELECT repeat('1', 1000)::bit(1000) <~> repeat('0', 1000)::bit(1000),
       (repeat('10', 500))::bit(1000) <%> (repeat('11', 500))::bit(1000);
-- varbit arguments work through the implicit cast
SELECT '101'::varbit <~> '111'::varbit;
-- lengths must match
SELECT B'101' <~> B'1010';
SELECT B'101' <%> B'1010';
SELECT hamming_distance(B'1', B'');
-- NULL in, NULL out
SELECT B'1' <~> NULL, NULL <%> B'1';
-- the binary quantize then rank pattern
CREATE TABLE bq (id int, v vector(4));
INSERT INTO bq VALUES (1, '[1,-1,1,-1]'), (2, '[1,1,1,1]'), (3, '[-1,-1,-1,-1]'), (4, '[0.5,-2,3,-0.1]');
SELECT id, binary_quantize(v) AS bits, binary_quantize(v) <~> binary_quantize('[1,-1,1,1]'::vector) AS hamming,
       binary_quantize(v) <%> binary_quantize('[1,-1,1,1]'::vector) AS jaccard
FROM bq ORDER BY hamming, id;
DROP TABLE bq;
