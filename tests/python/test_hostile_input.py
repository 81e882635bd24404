"""Hostile input through the server (issue 6): mutated text literals and
mutated binary (COPY BINARY) values of vector, halfvec and sparsevec, and
random index reloptions. Every input either works or raises a clean error
of the data-exception or invalid-parameter classes; the server never
crashes (its start time stays the same) and what it accepts reads back.

VECTOR_EXT_SQL_FUZZ sets the inputs per type (default 3000)."""

import os
import random
import struct

import psycopg
import pytest

from helpers import connect

N = int(os.environ.get("VECTOR_EXT_SQL_FUZZ", "3000"))
TEXT_ALPHABET = "[]{}/:,0123456789.eE+-xXpP naifINF\t\n\\'\""
# SQLSTATE classes a bad value may raise: data exception, invalid
# parameter / program limit, syntax of a typmod
CLEAN = ("22", "54", "42")
# and for binary input, Postgres' own "insufficient data left in message"
BINARY_CLEAN = CLEAN + ("08",)

SEEDS = {
    "vector": ["[1,2,3]", "[-1.5e3,0,3.25]", "[1e-38,3.4e38,-0]", "[0x1p-2, 2 ,3]"],
    "halfvec": ["[1,2,3]", "[65504,-65504,6e-8]", "[0.1,0.2,0.3]"],
    "sparsevec": ["{1:1,3:2}/3", "{}/3", "{2:-0.5}/3", "{1:1e-3,2:5,3:7}/3"],
}


def mutate(rng, s):
    b = list(s)
    for _ in range(1 + rng.randrange(4)):
        at = rng.randrange(len(b) + 1)
        op = rng.randrange(5)
        if op == 0 and at < len(b):
            del b[at]
        elif op == 1:
            b.insert(at, rng.choice(TEXT_ALPHABET))
        elif op == 2 and at < len(b):
            b[at:at] = b[at:at + 1 + rng.randrange(6)]
        elif op == 3:
            b = b[:at]
        else:
            b.insert(at, chr(rng.randrange(1, 0x800)))
    return "".join(b)


def start_time(c):
    return c.execute("SELECT pg_postmaster_start_time()").fetchone()[0]


@pytest.mark.parametrize("typ", ["vector", "halfvec", "sparsevec"])
def test_text_input_fuzz(typ):
    rng = random.Random(f"text-{typ}")
    accepted = rejected = 0
    with connect() as c:
        started = start_time(c)
        for i in range(N):
            seed = rng.choice(SEEDS[typ])
            lit = seed if rng.random() < 0.2 else mutate(rng, seed)
            mod = rng.choice(["", "", "(3)", "(2)"])
            try:
                got = c.execute(f"SELECT (%s::text::{typ}{mod})::text", (lit,)).fetchone()[0]
            except psycopg.Error as e:
                assert e.sqlstate and e.sqlstate[:2] in CLEAN, (lit, e.sqlstate, str(e))
                rejected += 1
                continue
            accepted += 1
            # what it accepted reads back as itself
            again = c.execute(f"SELECT %s::text::{typ} = %s::text::{typ}, (%s::text::{typ})::text = %s::text",
                              (got, lit, got, got)).fetchone()
            assert again == (True, True), (lit, got)
        assert start_time(c) == started, "the server restarted"
    print(f"\n{typ} text: {accepted} accepted, {rejected} rejected cleanly of {N}")
    assert accepted > N // 20 and rejected > N // 4


def dense_binary(rng, half):
    dims = rng.randrange(0, 5)
    fmt = "e" if half else "f"
    vals = [rng.choice([0.0, -1.5, 3.0, 1e30, float("inf"), float("nan"), 65504.0]) for _ in range(dims)]
    try:
        return struct.pack(f">HH{dims}{fmt}", dims, 0, *vals)
    except (OverflowError, struct.error):
        return struct.pack(">HH", 0, 0)


def sparse_binary(rng):
    nnz = rng.randrange(0, 4)
    idx = sorted(rng.sample(range(0, 10), nnz))
    vals = [rng.choice([1.0, -2.0, 0.0, float("nan"), 1e-45]) for _ in range(nnz)]
    return struct.pack(f">iii{nnz}i{nnz}f", rng.choice([3, 10, 0, -1]), nnz, 0, *idx, *vals)


def mutate_bytes(rng, b):
    b = bytearray(b)
    for _ in range(rng.randrange(4)):
        at = rng.randrange(len(b) + 1)
        op = rng.randrange(4)
        if op == 0 and at < len(b):
            b[at] ^= 1 << rng.randrange(8)
        elif op == 1:
            b.insert(at, rng.randrange(256))
        elif op == 2:
            del b[at:]
        elif at < len(b):
            del b[at]
    return bytes(b)


@pytest.mark.parametrize("typ", ["vector", "halfvec", "sparsevec"])
def test_binary_input_fuzz(typ):
    """Raw values through COPY BINARY reach the type's recv function."""
    rng = random.Random(f"binary-{typ}")
    accepted = rejected = 0
    header = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
    with connect() as c:
        started = start_time(c)
        c.execute(f"DROP TABLE IF EXISTS fuzz_{typ}")
        c.execute(f"CREATE TABLE fuzz_{typ} (v {typ})")
        for i in range(N):
            raw = sparse_binary(rng) if typ == "sparsevec" else dense_binary(rng, typ == "halfvec")
            raw = mutate_bytes(rng, raw)
            data = header + struct.pack(">hi", 1, len(raw)) + raw + struct.pack(">h", -1)
            try:
                with c.cursor() as cur:
                    with cur.copy(f"COPY fuzz_{typ} FROM STDIN WITH (FORMAT BINARY)") as copy:
                        copy.write(data)
                accepted += 1
            except psycopg.Error as e:
                # 22P03: invalid binary representation (e.g. bytes left over)
                assert e.sqlstate and e.sqlstate[:2] in BINARY_CLEAN, (raw.hex(), e.sqlstate, str(e))
                rejected += 1
        # every accepted value reads back as text and parses to itself
        bad = c.execute(f"SELECT count(*) FROM fuzz_{typ} WHERE v::text::{typ} <> v").fetchone()[0]
        n = c.execute(f"SELECT count(*) FROM fuzz_{typ}").fetchone()[0]
        c.execute(f"DROP TABLE fuzz_{typ}")
        assert start_time(c) == started, "the server restarted"
    print(f"\n{typ} binary: {accepted} accepted, {rejected} rejected cleanly of {N}")
    assert bad == 0 and n == accepted
    assert accepted > N // 50 and rejected > N // 4


def test_reloption_fuzz():
    rng = random.Random("reloptions")
    values = ["0", "1", "2", "3", "16", "100", "1000", "1001", "32768", "-1", "2147483648",
              "1e3", "'16'", "abc", "''", "NULL", "16.5", "true"]
    ok = failed = 0
    with connect() as c:
        started = start_time(c)
        c.execute("DROP TABLE IF EXISTS fuzz_opts")
        c.execute("CREATE TABLE fuzz_opts (v vector(3))")
        c.execute("INSERT INTO fuzz_opts SELECT ARRAY[i, i % 7, 1]::real[] FROM generate_series(1, 50) i")
        for _ in range(max(200, N // 10)):
            am, names = rng.choice([("hnsw", ["m", "ef_construction"]), ("ivfflat", ["lists"])])
            opts = ", ".join(f"{rng.choice(names + ['x', 'M'])} = {rng.choice(values)}"
                             for _ in range(rng.randrange(1, 3)))
            ops = "vector_l2_ops"
            try:
                c.execute(f"CREATE INDEX fuzz_opts_idx ON fuzz_opts USING {am} (v {ops}) WITH ({opts})")
                c.execute("DROP INDEX fuzz_opts_idx")
                ok += 1
            except psycopg.Error as e:
                assert e.sqlstate and e.sqlstate[:2] in CLEAN, (opts, e.sqlstate, str(e))
                failed += 1
        c.execute("DROP TABLE fuzz_opts")
        assert start_time(c) == started
    print(f"\nreloptions: {ok} accepted, {failed} rejected cleanly")
    assert ok > 0 and failed > 0
