"""Extension versions (sql/README.md): every released version installs and
updates to the current one with ALTER EXTENSION vector_ext UPDATE; the
updated extension has exactly the objects, and the same definitions, as a
fresh install of the current version; indexes of every kind built before
the update answer the same queries with the same rows after it; released
install scripts are never edited."""

import hashlib
import re

import psycopg
import pytest
from psycopg import sql
from pgvector.psycopg import register_vector

from every_kind import INDEXES, TABLE, answers, fill, queries
from helpers import DSN, ROOT, connect

SQL = ROOT / "sql"
# the install scripts of released versions, as released: an edit here
# changes what CREATE EXTENSION ... VERSION installs after the fact (a new
# release adds its line when its script is frozen)
RELEASED = {
    "0.1.0": "07c5927f5323aed81b8381904f50752243ab40f52632dbbbd367b1ff787a1396",
}


def released_scripts():
    return {m.group(1): p for p in SQL.iterdir() if (m := re.fullmatch(r"vector_ext--([0-9.]+)\.sql", p.name))}


def current_version():
    with connect() as c:
        return c.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector_ext'").fetchone()[0]


def test_released_scripts_are_frozen():
    scripts = released_scripts()
    assert set(scripts) == set(RELEASED), "record each released version's script in RELEASED"
    for version, path in scripts.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == RELEASED[version], f"{path.name} was edited"
    assert current_version() not in RELEASED, "the current version's script is made from sql/vector_ext.sql"


def test_every_released_version_updates_to_the_current_one():
    current = current_version()
    with connect() as c:
        paths = dict(c.execute(
            "SELECT source, path FROM pg_extension_update_paths('vector_ext') WHERE target = %s", (current,)))
    for version in RELEASED:
        assert paths.get(version), f"no update path from {version} to {current}"


def database(name):
    with connect() as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")
        c.execute(f"CREATE DATABASE {name}")
    conn = psycopg.connect(DSN.rsplit("dbname=", 1)[0] + f"dbname={name}", autocommit=True)
    return conn


def drop(name):
    with connect() as c:
        c.execute(f"DROP DATABASE IF EXISTS {name}")


# Every member of the extension with its definition: what an upgrade script
# must leave exactly as a fresh install of the same version makes it.
MEMBERS = """
SELECT pg_describe_object(d.classid, d.objid, d.objsubid),
  CASE d.classid
  WHEN 'pg_proc'::regclass THEN (
    SELECT CASE WHEN p.prokind = 'a' THEN
      format('aggregate %s(%s) returns %s: %s', p.proname, pg_get_function_arguments(p.oid),
             pg_get_function_result(p.oid),
             (SELECT row(a.aggkind, a.aggtransfn::regprocedure, a.aggfinalfn::regprocedure,
                         a.aggcombinefn::regprocedure, a.aggserialfn::regprocedure,
                         a.aggdeserialfn::regprocedure, a.aggtranstype::regtype, a.agginitval,
                         a.aggfinalmodify, p.proparallel)::text
              FROM pg_aggregate a WHERE a.aggfnoid = p.oid))
    ELSE pg_get_functiondef(p.oid) END
    || ' acl ' || coalesce(p.proacl::text, 'default')
    || ' comment ' || coalesce(obj_description(p.oid, 'pg_proc'), '')
    FROM pg_proc p WHERE p.oid = d.objid)
  WHEN 'pg_type'::regclass THEN (
    SELECT row(t.typname, t.typlen, t.typbyval, t.typtype, t.typcategory, t.typispreferred,
               t.typdelim, t.typinput::regprocedure, t.typoutput::regprocedure,
               t.typreceive::regprocedure, t.typsend::regprocedure, t.typmodin::regprocedure,
               t.typmodout::regprocedure, t.typanalyze::regprocedure, t.typalign, t.typstorage,
               t.typelem::regtype, t.typsubscript::regprocedure, t.typacl)::text
    FROM pg_type t WHERE t.oid = d.objid)
  WHEN 'pg_operator'::regclass THEN (
    SELECT row(o.oprname, o.oprkind, o.oprleft::regtype, o.oprright::regtype, o.oprresult::regtype,
               o.oprcom::regoperator, o.oprnegate::regoperator, o.oprcode::regprocedure,
               o.oprrest::regprocedure, o.oprjoin::regprocedure, o.oprcanmerge, o.oprcanhash)::text
    FROM pg_operator o WHERE o.oid = d.objid)
  WHEN 'pg_opclass'::regclass THEN (
    SELECT row(c.opcname, a.amname, c.opcintype::regtype, c.opcdefault, c.opckeytype::regtype,
               f.opfname)::text
    FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod JOIN pg_opfamily f ON f.oid = c.opcfamily
    WHERE c.oid = d.objid)
  WHEN 'pg_opfamily'::regclass THEN (
    SELECT string_agg(x, '; ' ORDER BY x) FROM (
      SELECT format('operator %s %s %s %s %s %s', o.amopstrategy, o.amoplefttype::regtype,
                    o.amoprighttype::regtype, o.amopopr::regoperator, o.amoppurpose,
                    o.amopsortfamily) AS x
      FROM pg_amop o WHERE o.amopfamily = d.objid
      UNION ALL
      SELECT format('function %s %s %s %s', p.amprocnum, p.amproclefttype::regtype,
                    p.amprocrighttype::regtype, p.amproc::regprocedure)
      FROM pg_amproc p WHERE p.amprocfamily = d.objid) s)
  WHEN 'pg_cast'::regclass THEN (
    SELECT row(c.castfunc::regprocedure, c.castcontext, c.castmethod)::text
    FROM pg_cast c WHERE c.oid = d.objid)
  WHEN 'pg_am'::regclass THEN (
    SELECT row(a.amhandler::regprocedure, a.amtype)::text FROM pg_am a WHERE a.oid = d.objid)
  WHEN 'pg_class'::regclass THEN (
    SELECT row(c.relkind, pg_get_viewdef(c.oid), c.relacl,
               (SELECT string_agg(pg_get_triggerdef(g.oid), '; ' ORDER BY g.tgname)
                FROM pg_trigger g WHERE g.tgrelid = c.oid))::text
    FROM pg_class c WHERE c.oid = d.objid)
  ELSE 'a member of a kind this test does not describe: add it'
  END
FROM pg_depend d
WHERE d.refclassid = 'pg_extension'::regclass
  AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'vector_ext')
  AND d.deptype = 'e'
ORDER BY 1, 2
"""


def members(conn):
    return conn.execute(MEMBERS).fetchall()


@pytest.mark.parametrize("version", sorted(RELEASED))
def test_update_keeps_indexes_and_matches_a_fresh_install(data, version):
    base = data[0]
    current = current_version()
    old_db, new_db = f"vector_ext_from_{version.replace('.', '_')}", "vector_ext_fresh"
    try:
        with database(new_db) as fresh:
            fresh.execute("CREATE EXTENSION vector_ext")
            want = members(fresh)
        with database(old_db) as c:
            c.execute(sql.SQL("CREATE EXTENSION vector_ext VERSION {}").format(sql.Literal(version)))
            register_vector(c)
            c.execute(TABLE)
            fill(c, base)
            for stmt in INDEXES:
                c.execute(stmt)
            qs = queries(base[500:504])
            before = answers(c, qs, check_used=True)
            c.execute("ALTER EXTENSION vector_ext UPDATE")
            assert c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector_ext'").fetchone()[0] == current
            got = members(c)
            missing = sorted(set(want) - set(got))
            extra = sorted(set(got) - set(want))
            assert not missing and not extra, f"after the update, missing: {missing[:5]}, not in a fresh install: {extra[:5]}"
            # the same indexes, the same rows (ties included)
            assert answers(c, qs, check_used=True) == before
            # the indexes take inserts and VACUUM after the update, which
            # the new metapage record keeps
            fill(c, base, first=400, rows=20)
            c.execute("DELETE FROM items WHERE id < 40")
            c.execute("VACUUM (INDEX_CLEANUP ON) items")
            for name in [stmt.split()[2] for stmt in INDEXES]:
                removed = c.execute("SELECT last_vacuum_removed FROM vector_ext_index_stats(%s)",
                                    (name,)).fetchone()[0]
                assert removed == (10 if name == "items_partial" else 40), name
    finally:
        drop(old_db)
        drop(new_db)
