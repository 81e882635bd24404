"""Real client libraries against vector_ext: the pgvector Python package's
adapters for psycopg 3 (text and binary), asyncpg (binary codec) and
SQLAlchemy must work unchanged. Connection: PGHOST/PGPORT/PGUSER from the
environment, database VECTOR_EXT_TEST_DB (created by scripts/test.sh)."""

import asyncio
import os
import struct

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector

DB = os.environ.get("VECTOR_EXT_TEST_DB", "vector_ext_clients")
HOST = os.environ["PGHOST"]
PORT = int(os.environ["PGPORT"])
DSN = f"host={HOST} port={PORT} user=postgres dbname={DB}"

rng = np.random.default_rng(7)


@pytest.fixture
def conn():
    with psycopg.connect(DSN, autocommit=True) as c:
        register_vector(c)
        c.execute("DROP TABLE IF EXISTS py_items")
        c.execute("CREATE TABLE py_items (id bigserial PRIMARY KEY, embedding vector(3))")
        yield c


def test_type_is_discoverable_like_clients_do(conn):
    # psycopg 3 TypeInfo and psycopg2's to_regtype lookups
    info = psycopg.types.TypeInfo.fetch(conn, "vector")
    assert info is not None and info.name == "vector" and info.array_oid > 0
    row = conn.execute("SELECT to_regtype('vector')::oid, to_regtype('_vector')::oid").fetchone()
    assert row == (info.oid, info.array_oid)


@pytest.mark.parametrize("binary", [False, True])
def test_psycopg_round_trip_numpy(conn, binary):
    vectors = [rng.standard_normal(3).astype(np.float32) for _ in range(50)]
    vectors.append(np.array([1e-38, -3.4e38, 0.1], dtype=np.float32))
    with conn.cursor(binary=binary) as cur:
        for v in vectors:
            cur.execute("INSERT INTO py_items (embedding) VALUES (%s)", (v,))
        cur.execute("SELECT embedding FROM py_items ORDER BY id")
        got = [r[0] for r in cur.fetchall()]
    assert len(got) == len(vectors)
    for g, v in zip(got, vectors):
        assert isinstance(g, np.ndarray)
        assert g.dtype == np.float32
        np.testing.assert_array_equal(g, v)  # bit-exact both ways


def test_psycopg_binary_copy(conn):
    vectors = rng.standard_normal((200, 3)).astype(np.float32)
    with conn.cursor() as cur:
        with cur.copy("COPY py_items (embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["vector"])
            for v in vectors:
                copy.write_row([v])
        got = np.array([r[0] for r in cur.execute("SELECT embedding FROM py_items ORDER BY id")])
    np.testing.assert_array_equal(got, vectors)


def test_psycopg_nearest_neighbours_match_numpy(conn):
    data = rng.standard_normal((300, 3)).astype(np.float32)
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO py_items (embedding) VALUES (%s)", [(v,) for v in data])
        q = data[17] + np.float32(0.01)
        ids = [r[0] for r in cur.execute(
            "SELECT id FROM py_items ORDER BY embedding <-> %s LIMIT 5", (q,))]
    want = np.argsort(((data - q) ** 2).sum(axis=1), kind="stable")[:5] + 1
    assert ids == list(want)


class Raw:
    """Bytes sent as a binary vector parameter, to exercise vector_recv."""

    def __init__(self, data):
        self.data = data


def send_raw(conn, data, type_name="vector"):
    """Sends `data` as a binary parameter of `type_name`: the server reads it
    with the type's receive function."""
    oid = psycopg.types.TypeInfo.fetch(conn, type_name).oid

    class RawDumper(psycopg.adapt.Dumper):
        format = psycopg.pq.Format.BINARY

        def dump(self, obj):
            return obj.data

    RawDumper.oid = oid
    conn.adapters.register_dumper(Raw, RawDumper)
    return conn.execute("SELECT %b::text", (Raw(data),)).fetchone()[0]


def vec_bytes(dim, unused, values):
    return struct.pack(">hh", dim, unused) + b"".join(struct.pack(">f", v) for v in values)


def test_binary_recv_accepts_pgvector_layout(conn):
    assert send_raw(conn, vec_bytes(3, 0, [1.0, -2.5, 3.0])) == "[1,-2.5,3]"


@pytest.mark.parametrize(
    "data, sqlstate, message",
    [
        (vec_bytes(3, 0, [1.0, 2.0]), "08P01", "insufficient data left in message"),
        (b"\x00", "08P01", "insufficient data left in message"),
        (vec_bytes(1, 7, [1.0]), "22000", "expected unused to be 0, not 7"),
        (vec_bytes(0, 0, []), "22000", "vector must have at least 1 dimension"),
        (vec_bytes(16001, 0, []), "54000", "vector cannot have more than 16000 dimensions"),
        (vec_bytes(-1, 0, []), "54000", "vector cannot have more than 16000 dimensions"),
        (vec_bytes(1, 0, [float("nan")]), "22000", "NaN not allowed in vector"),
        (vec_bytes(1, 0, [float("inf")]), "22000", "infinite value not allowed in vector"),
        (vec_bytes(1, 0, [1.0]) + b"\x00", "22P03", "incorrect binary data format in bind parameter 1"),
    ],
)
def test_binary_recv_rejects_malformed(conn, data, sqlstate, message):
    with pytest.raises(psycopg.Error) as e:
        send_raw(conn, data)
    assert e.value.sqlstate == sqlstate
    assert e.value.diag.message_primary == message


def test_text_errors_reach_clients_with_sqlstate(conn):
    for literal, sqlstate in [("[1,2", "22P02"), ("[1e39]", "22003"), ("[]", "22000")]:
        with pytest.raises(psycopg.Error) as e:
            conn.execute("SELECT %s::vector", (literal,))
        assert e.value.sqlstate == sqlstate
    with pytest.raises(psycopg.Error) as e:
        conn.execute("SELECT '[1,2'::vector")
    assert e.value.diag.message_primary == 'invalid input syntax for type vector: "[1,2"'


def test_asyncpg_binary_codec():
    import asyncpg
    from pgvector.asyncpg import register_vector as register_asyncpg

    async def run():
        c = await asyncpg.connect(host=HOST, port=PORT, user="postgres", database=DB)
        try:
            await register_asyncpg(c)
            await c.execute("DROP TABLE IF EXISTS py_async")
            await c.execute("CREATE TABLE py_async (id int, embedding vector(3))")
            vectors = rng.standard_normal((20, 3)).astype(np.float32)
            await c.executemany("INSERT INTO py_async VALUES ($1, $2)",
                                [(i, v) for i, v in enumerate(vectors)])
            rows = await c.fetch("SELECT id, embedding FROM py_async ORDER BY id")
            got = np.array([r["embedding"] for r in rows])
            np.testing.assert_array_equal(got, vectors)
            nearest = await c.fetchval(
                "SELECT id FROM py_async ORDER BY embedding <=> $1 LIMIT 1", vectors[5])
            assert nearest == 5
            await c.execute("DROP TABLE py_async")
        finally:
            await c.close()

    asyncio.run(run())


def test_sqlalchemy_vector_column():
    from pgvector.sqlalchemy import Vector
    from sqlalchemy import Integer, String, create_engine, func, select, text
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

    class Base(DeclarativeBase):
        pass

    class Item(Base):
        __tablename__ = "sa_items"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        category: Mapped[str] = mapped_column(String)
        embedding = mapped_column(Vector(3))

    engine = create_engine(f"postgresql+psycopg://postgres@/{DB}?host={HOST}&port={PORT}")
    Base.metadata.drop_all(engine)
    Base.metadata.create_all(engine)
    with engine.connect() as c:
        ddl = c.execute(text(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'sa_items'::regclass AND attname = 'embedding'")).scalar()
        assert ddl == "vector(3)"
    with Session(engine) as s:
        s.add_all([
            Item(id=1, category="a", embedding=[1, 1, 1]),
            Item(id=2, category="b", embedding=[2, 2, 2]),
            Item(id=3, category="a", embedding=np.array([1, 1, 2], dtype=np.float32)),
        ])
        s.commit()
        q = [1, 1, 1.2]
        ids = s.scalars(select(Item.id).order_by(Item.embedding.l2_distance(q))).all()
        assert ids == [1, 3, 2]
        ids = s.scalars(select(Item.id).where(Item.category == "a")
                        .order_by(Item.embedding.cosine_distance(q)).limit(1)).all()
        assert ids == [1]
        avg = s.scalar(select(func.avg(Item.embedding, type_=Vector(3))))
        np.testing.assert_allclose(avg, [4 / 3, 4 / 3, 5 / 3], rtol=1e-6)
    Base.metadata.drop_all(engine)
    engine.dispose()
