"""halfvec and bit through real client libraries: psycopg 3 with the
pgvector package's HalfVector and Bit (text and binary), COPY BINARY,
asyncpg's codec, and the binary layout's errors as clients see them."""

import asyncio
import struct

import numpy as np
import psycopg
import pytest
from pgvector import Bit, HalfVector, SparseVector
from pgvector.psycopg import register_vector

from test_clients import DB, DSN, HOST, PORT, send_raw

rng = np.random.default_rng(11)


@pytest.fixture
def conn():
    with psycopg.connect(DSN, autocommit=True) as c:
        register_vector(c)
        c.execute("DROP TABLE IF EXISTS py_half")
        c.execute("CREATE TABLE py_half (id bigserial PRIMARY KEY, embedding halfvec(4))")
        yield c


def test_halfvec_is_discoverable(conn):
    info = psycopg.types.TypeInfo.fetch(conn, "halfvec")
    assert info is not None and info.name == "halfvec" and info.array_oid > 0
    row = conn.execute("SELECT to_regtype('halfvec')::oid, to_regtype('_halfvec')::oid").fetchone()
    assert row == (info.oid, info.array_oid)


@pytest.mark.parametrize("binary", [False, True])
def test_psycopg_halfvector_round_trip(conn, binary):
    values = [rng.standard_normal(4).astype(np.float16) for _ in range(50)]
    values.append(np.array([65504, -65504, 6e-8, 0], dtype=np.float16))
    with conn.cursor(binary=binary) as cur:
        for v in values:
            cur.execute("INSERT INTO py_half (embedding) VALUES (%s)", (HalfVector(v),))
        got = [r[0] for r in cur.execute("SELECT embedding FROM py_half ORDER BY id")]
    assert len(got) == len(values)
    for g, v in zip(got, values):
        assert isinstance(g, HalfVector)
        np.testing.assert_array_equal(g.to_numpy(), v)  # every binary16 value exact


def test_psycopg_copy_binary_and_server_side_math(conn):
    values = rng.standard_normal((100, 4)).astype(np.float16)
    with conn.cursor() as cur:
        with cur.copy("COPY py_half (embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["halfvec"])
            for v in values:
                copy.write_row([HalfVector(v)])
        got = np.array([r[0].to_numpy() for r in cur.execute("SELECT embedding FROM py_half ORDER BY id")])
        np.testing.assert_array_equal(got, values)
        # distances are computed from the stored binary16 values
        q = values[0].astype(np.float32)
        d = [r[0] for r in cur.execute("SELECT embedding <-> %s FROM py_half ORDER BY id", (HalfVector(q),))]
        want = np.linalg.norm(values.astype(np.float64) - q.astype(np.float64), axis=1)
        np.testing.assert_allclose(d, want, rtol=1e-5, atol=1e-6)


def half_bytes(dim, unused, bits):
    return struct.pack(">hh", dim, unused) + b"".join(struct.pack(">H", b) for b in bits)


@pytest.mark.parametrize(
    "data, sqlstate, message",
    [
        (half_bytes(2, 0, [0x3C00]), "08P01", "insufficient data left in message"),
        (half_bytes(1, 3, [0x3C00]), "22000", "expected unused to be 0, not 3"),
        (half_bytes(0, 0, []), "22000", "halfvec must have at least 1 dimension"),
        (half_bytes(1, 0, [0x7E00]), "22000", "NaN not allowed in halfvec"),
        (half_bytes(1, 0, [0xFC00]), "22000", "infinite value not allowed in halfvec"),
    ],
)
def test_halfvec_recv_rejects_malformed(conn, data, sqlstate, message):
    with pytest.raises(psycopg.Error) as e:
        send_raw(conn, data, "halfvec")
    assert e.value.sqlstate == sqlstate
    assert e.value.diag.message_primary == message


def test_halfvec_recv_accepts_pgvector_layout(conn):
    assert send_raw(conn, half_bytes(3, 0, [0x3C00, 0xC100, 0x7BFF]), "halfvec") == "[1,-2.5,65504]"


def test_text_range_error_reaches_clients(conn):
    with pytest.raises(psycopg.Error) as e:
        conn.execute("SELECT %s::halfvec", ("[1,65520]",))
    assert e.value.sqlstate == "22003"
    assert e.value.diag.message_primary == '"65520" is out of range for type halfvec'


def test_asyncpg_halfvec_codec():
    import asyncpg
    from pgvector.asyncpg import register_vector as register_asyncpg

    async def run():
        c = await asyncpg.connect(host=HOST, port=PORT, user="postgres", database=DB)
        try:
            await register_asyncpg(c)
            v = HalfVector([1.5, -2, 0.099975586, 65504])
            got = await c.fetchval("SELECT $1::halfvec", v)
            assert got == v
            got = await c.fetchval("SELECT '[1,2,3]'::vector::halfvec")
            assert got.to_list() == [1.0, 2.0, 3.0]
        finally:
            await c.close()

    asyncio.run(run())


@pytest.mark.parametrize("binary", [False, True])
def test_bit_distances_with_pgvector_bit(conn, binary):
    conn.execute("DROP TABLE IF EXISTS py_bits")
    conn.execute("CREATE TABLE py_bits (id int, b bit(70))")
    rows = rng.integers(0, 2, (40, 70)).astype(bool)
    q = rng.integers(0, 2, 70).astype(bool)
    with conn.cursor(binary=binary) as cur:
        for i, r in enumerate(rows):
            cur.execute("INSERT INTO py_bits VALUES (%s, %s)", (i, Bit(r)))
        got = cur.execute(
            "SELECT b, b <~> %s, b <%%> %s FROM py_bits ORDER BY id", (Bit(q), Bit(q))
        ).fetchall()
    for r, (b, hamming, jaccard) in zip(rows, got):
        # the package only dumps Bit; psycopg loads bit as text or bytes
        b = Bit.from_binary(b) if isinstance(b, bytes) else Bit.from_text(b)
        np.testing.assert_array_equal(b.to_numpy(), r)
        assert hamming == np.count_nonzero(r != q)
        both, either = np.count_nonzero(r & q), np.count_nonzero(r | q)
        assert jaccard == (1.0 if both == 0 else 1.0 - both / either)
    # binary_quantize of a halfvec is a bit string the client reads back
    b = conn.execute("SELECT binary_quantize(%s)", (HalfVector([1, -1, 0, 2]),)).fetchone()[0]
    assert Bit.from_text(b).to_list() == [True, False, False, True]


@pytest.mark.parametrize("binary", [False, True])
def test_psycopg_sparsevector_round_trip(conn, binary):
    conn.execute("DROP TABLE IF EXISTS py_sparse")
    conn.execute("CREATE TABLE py_sparse (id int, s sparsevec(1000))")
    rows = []
    for i in range(30):
        idx = sorted(rng.choice(1000, size=int(rng.integers(0, 20)), replace=False).tolist())
        vals = rng.standard_normal(len(idx)).astype(np.float32).tolist()
        rows.append(SparseVector(dict(zip(idx, vals)), 1000))
    with conn.cursor(binary=binary) as cur:
        for i, s in enumerate(rows):
            cur.execute("INSERT INTO py_sparse VALUES (%s, %s)", (i, s))
        got = [r[0] for r in cur.execute("SELECT s FROM py_sparse ORDER BY id")]
        for g, s in zip(got, rows):
            assert isinstance(g, SparseVector)
            assert g.dimensions() == 1000 and g.indices() == s.indices()
            np.testing.assert_array_equal(np.array(g.values(), dtype=np.float32),
                                          np.array(s.values(), dtype=np.float32))
        # distances agree with the dense form
        q = rows[0]
        d = cur.execute("SELECT s <-> %s, s::vector <-> %s::sparsevec::vector FROM py_sparse ORDER BY id",
                        (q, q)).fetchall()
        for a, b in d:
            assert abs(a - b) <= 1e-5 * (1 + abs(b))


def test_sparsevec_recv_rejects_zero_values(conn):
    data = struct.pack(">iii", 5, 1, 0) + struct.pack(">i", 0) + struct.pack(">f", 0.0)
    with pytest.raises(psycopg.Error) as e:
        send_raw(conn, data, "sparsevec")
    assert e.value.sqlstate == "22000"
    assert e.value.diag.message_primary == "binary representation of sparsevec cannot contain zero values"
