"""A table of every type (vector, halfvec, sparsevec, bit, an array of
vectors) with indexes of every kind (both access methods, options, a
partial index, the binary-quantize expression index of the re-ranking
recipe), and queries that use each index: what the dump, upgrade and
replication tests move around and compare."""

TABLE = """CREATE TABLE items (id int PRIMARY KEY, cat int NOT NULL, emb vector(384), half halfvec(384),
                           sparse sparsevec(384), bits bit(384), history vector(3)[])"""
INDEXES = [
    "CREATE INDEX items_hnsw ON items USING hnsw (emb vector_cosine_ops) WITH (m = 8, ef_construction = 40)",
    "CREATE INDEX items_half ON items USING hnsw (half halfvec_l2_ops)",
    "CREATE INDEX items_sparse ON items USING hnsw (sparse sparsevec_l2_ops)",
    "CREATE INDEX items_bits ON items USING hnsw (bits bit_jaccard_ops)",
    "CREATE INDEX items_ivf ON items USING ivfflat (emb vector_l2_ops) WITH (lists = 4)",
    "CREATE INDEX items_partial ON items USING hnsw (emb vector_ip_ops) WHERE cat = 2",
    "CREATE INDEX items_bq ON items USING hnsw ((binary_quantize(emb)::bit(384)) bit_hamming_ops)",
]
INDEX_NAMES = [s.split()[2] for s in INDEXES]


def fill(c, base, first=0, rows=400):
    """Rows `first` .. `first + rows` of the fixture, every column filled."""
    with c.cursor() as cur:
        for i in range(first, first + rows):
            v = base[i]
            cur.execute("""INSERT INTO items VALUES (%s, %s, %s, %s::vector::halfvec, %s::vector::sparsevec,
                                                     binary_quantize(%s), ARRAY[%s::vector, %s::vector])""",
                        (i, i % 4, v, v, v, v, f"[{i},1,2]", f"[{-i},0.5,1e-7]"))


def queries(vectors):
    """(query, stable) for each vector: stable queries give the same rows
    from any index built over the same rows with an exhaustive search, and
    from an exact scan; the others choose among ties of Hamming or Jaccard
    distance (compared on the same index only)."""
    out = []
    for v in vectors:
        lit = "'[" + ",".join(map(str, v.tolist())) + "]'"
        out += [
            (f"SELECT id FROM items ORDER BY emb <=> {lit} LIMIT 5", True),
            (f"SELECT id FROM items ORDER BY half <-> {lit}::vector::halfvec LIMIT 5", True),
            (f"SELECT id FROM items ORDER BY sparse <-> {lit}::vector::sparsevec LIMIT 5", True),
            (f"SELECT id FROM items ORDER BY emb <-> {lit} LIMIT 5", True),
            (f"SELECT id FROM items WHERE cat = 2 ORDER BY emb <#> {lit} LIMIT 5", True),
            (f"SELECT round((bits <%> binary_quantize({lit}::vector))::numeric, 6) FROM items "
             f"ORDER BY bits <%> binary_quantize({lit}::vector) LIMIT 5", True),
            (f"SELECT id FROM (SELECT id, emb FROM items ORDER BY binary_quantize(emb)::bit(384) "
             f"<~> binary_quantize({lit}::vector) LIMIT 40) c ORDER BY emb <=> {lit} LIMIT 5", False),
        ]
    return out


def answers(c, qs, index=True, check_used=False):
    """Each query's rows: through the indexes (`index`; with `check_used`,
    each of them must be used by some query) or by an exact scan.
    ef_search above the rows and every list probed: the searches are
    exhaustive, so indexes built apart answer alike."""
    c.execute("SET hnsw.ef_search = 1000")
    c.execute("SET ivfflat.probes = 4")
    c.execute(f"SET enable_seqscan = {'off' if index else 'on'}")
    c.execute(f"SET enable_indexscan = {'on' if index else 'off'}")
    if index and check_used:
        plans = "\n".join(r[0] for q, _ in qs for r in c.execute("EXPLAIN " + q))
        unused = [n for n in INDEX_NAMES if n not in plans]
        assert not unused, f"no query used {unused}"
    out = [[r[0] for r in c.execute(q)] for q, _ in qs]
    for s in ("hnsw.ef_search", "ivfflat.probes", "enable_seqscan", "enable_indexscan"):
        c.execute(f"RESET {s}")
    return out


def stable(qs):
    return [(q, s) for q, s in qs if s]


def state(c):
    """The rows (a digest of their text, in id order, and how many), the
    index definitions, the extension's version."""
    rows = c.execute("SELECT md5(string_agg(t::text, E'\\n' ORDER BY id)), count(*) FROM items t").fetchone()
    defs = [r[0] for r in c.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'items' ORDER BY indexname")]
    version = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector_ext'").fetchone()
    return rows, defs, version
