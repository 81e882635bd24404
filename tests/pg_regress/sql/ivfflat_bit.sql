-- ivfflat on bit strings: bit_hamming_ops, centers as majority bits.
SET enable_seqscan = off;
CREATE TABLE ib (id int, val bit(70));
INSERT INTO ib SELECT i, (lpad((i * 2654435761 % 4294967296)::bit(32)::text, 32, '0')
                          || lpad((i * 40503 % 65536)::bit(16)::text, 16, '0')
                          || repeat((i % 2)::text, 22))::bit(70)
FROM generate_series(1, 300) i;
INSERT INTO ib VALUES (1000, NULL), (1001, repeat('0', 70)::bit(70));
CREATE INDEX ib_h ON ib USING ivfflat (val bit_hamming_ops) WITH (lists = 4);
EXPLAIN (COSTS OFF) SELECT id FROM ib ORDER BY val <~> repeat('1', 70)::bit(70) LIMIT 5;
-- probing every list is exact
SET ivfflat.probes = 4;
SELECT (SELECT array_agg(d) FROM (SELECT val <~> repeat('10', 35)::bit(70) AS d FROM ib
                                  ORDER BY val <~> repeat('10', 35)::bit(70) LIMIT 400) s)
     = (SELECT array_agg(d ORDER BY d) FROM (SELECT val <~> repeat('10', 35)::bit(70) AS d FROM ib
                                            WHERE val IS NOT NULL) s) AS exact;
INSERT INTO ib VALUES (2000, repeat('1', 70)::bit(70));
SELECT id FROM ib ORDER BY val <~> repeat('1', 70)::bit(70) LIMIT 1;
SELECT id FROM ib ORDER BY val <~> B'101' LIMIT 1;
DELETE FROM ib WHERE id < 100;
VACUUM ib;
SELECT count(*) FROM (SELECT id FROM ib ORDER BY val <~> repeat('1', 70)::bit(70) LIMIT 1000) s;
-- an empty table, then inserts
CREATE TABLE ib2 (id int, val bit(8));
CREATE INDEX ON ib2 USING ivfflat (val bit_hamming_ops) WITH (lists = 2);
INSERT INTO ib2 VALUES (1, B'11110000'), (2, B'00001111');
SET ivfflat.probes = 2;
SELECT id FROM ib2 ORDER BY val <~> B'11100000' LIMIT 1;
-- a bit column needs a length, and fits up to 65152 bits; bit varying is
-- refused, bounded or not
CREATE TABLE ib3 (val varbit);
CREATE INDEX ON ib3 USING ivfflat (val bit_hamming_ops);
ALTER TABLE ib3 ALTER COLUMN val TYPE bit varying(8);
CREATE INDEX ON ib3 USING ivfflat (val bit_hamming_ops);
CREATE TABLE ib4 (val bit(65153));
CREATE INDEX ON ib4 USING ivfflat (val bit_hamming_ops);
DROP TABLE ib, ib2, ib3, ib4;
RESET ivfflat.probes;
RESET enable_seqscan;
