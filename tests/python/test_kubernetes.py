"""deploy/kubernetes, for CloudNativePG: the manifests validate against the
operator's and Kubernetes' schemas (and the validator refuses broken ones),
the monitoring ConfigMap's queries run and return the columns their metrics
name, and the extension image's layout (scripts/extension-image.sh) loads
into PostgreSQL 18 the way CloudNativePG mounts an image volume. No
Kubernetes and no container runtime run here (docs/kubernetes.md)."""

import copy
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
import yaml
from pgvector.psycopg import register_vector

from helpers import DSN, ROOT, connect, exact, recall

K8S = ROOT / "deploy" / "kubernetes"
VALIDATE = K8S / "validate"
FILES = ["cluster.yaml", "database.yaml", "monitoring.yaml", "poolers.yaml"]


@pytest.fixture(scope="module")
def validator():
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed (scripts/lib.sh installs them)")
    if not (VALIDATE / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=VALIDATE, check=True)

    def run(*files):
        return subprocess.run(["node", str(VALIDATE / "validate.mjs"), *map(str, files)],
                              capture_output=True, text=True, cwd=ROOT)
    return run


def manifests():
    """file name -> its documents"""
    return {f: list(yaml.safe_load_all((K8S / f).read_text())) for f in FILES}


def queries():
    (cm,) = manifests()["monitoring.yaml"]
    return yaml.safe_load(cm["data"]["queries"])


def test_manifests_validate(validator):
    r = validator()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "5 document(s) in 4 file(s): valid" in r.stdout
    m = manifests()
    (cluster,) = m["cluster.yaml"]
    spec = cluster["spec"]
    # one primary and two replicas, PG18's minimal image, vector_ext mounted
    assert spec["instances"] == 3
    assert spec["imageName"].startswith("ghcr.io/cloudnative-pg/postgresql:18-minimal-")
    assert [e["name"] for e in spec["postgresql"]["extensions"]] == ["vector_ext"]
    (db,) = m["database.yaml"]
    assert db["spec"]["extensions"] == [{"name": "vector_ext", "ensure": "present"}]
    assert {p["spec"]["type"] for p in m["poolers.yaml"]} == {"rw", "ro"}
    ref = spec["monitoring"]["customQueriesConfigMap"]
    assert ref == [{"name": m["monitoring.yaml"][0]["metadata"]["name"], "key": "queries"}]


# file, change, what the validator must say
BROKEN = {
    "misspelt field": ("cluster.yaml", lambda d: d["spec"].update(instaces=3), "'\"instaces\"' does not exist"),
    "misspelt nested field": (
        "cluster.yaml",
        lambda d: d["spec"]["postgresql"]["extensions"][0].update(imag={"reference": "x"}),
        "'\"imag\"' does not exist",
    ),
    "wrong type": ("cluster.yaml", lambda d: d["spec"].update(instances="three"), "spec/instances must be integer"),
    "wrong enum": ("poolers.yaml", lambda d: d["spec"].update(type="readonly"), "must be equal to one of the allowed values"),
    "unknown cluster": ("poolers.yaml", lambda d: d["spec"]["cluster"].update(name="vector"), "names Cluster vector"),
    "missing queries key": (
        "cluster.yaml",
        lambda d: d["spec"]["monitoring"]["customQueriesConfigMap"][0].update(key="querys"),
        "has no key querys",
    ),
    "bad metric usage": (
        "monitoring.yaml",
        lambda d: d["data"].update(queries=d["data"]["queries"].replace("usage: COUNTER", "usage: COUNT")),
        "usage COUNT is not one of",
    ),
    "query without metrics": (
        "monitoring.yaml",
        lambda d: d["data"].update(queries="vector_ext_x:\n  query: SELECT 1 AS one\n"),
        "metrics: a non-empty list is required",
    ),
}


@pytest.mark.parametrize("case", BROKEN)
def test_validator_refuses_broken_manifests(validator, tmp_path, case):
    """The check can fail: one change to a copy of the files, and the
    validator names it."""
    target, change, message = BROKEN[case]
    for f, docs in manifests().items():
        docs = copy.deepcopy(docs)
        if f == target:
            change(docs[0])
        (tmp_path / f).write_text(yaml.safe_dump_all(docs, sort_keys=False))
    r = validator(*sorted(tmp_path.iterdir()))
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stderr, r.stderr


def test_the_query_file_in_docs_is_the_configmaps():
    """docs/monitoring-queries.yaml (for postgres_exporter) holds the
    ConfigMap's queries, word for word, after its comment."""
    text = (ROOT / "docs" / "monitoring-queries.yaml").read_text()
    body = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("#"))
    (cm,) = manifests()["monitoring.yaml"]
    assert body == cm["data"]["queries"]


def metric_names(q):
    return [next(iter(m)) for m in q["metrics"]]


def run_query(conn, name):
    q = queries()[name]
    cur = conn.execute(q["query"])
    assert [c.name for c in cur.description] == metric_names(q), name
    return [dict(zip(metric_names(q), row)) for row in cur.fetchall()]


@pytest.fixture
def indexed(data):
    base = data[0][:500]
    with connect() as c:
        c.execute("DROP TABLE IF EXISTS k8s_monitored")
        c.execute("CREATE TABLE k8s_monitored (id int, emb vector(384))")
        c.execute("INSERT INTO k8s_monitored SELECT i, e FROM unnest(%s::vector[]) WITH ORDINALITY AS t(e, i)",
                  (list(base),))
        c.execute("CREATE INDEX k8s_monitored_hnsw ON k8s_monitored USING hnsw (emb vector_cosine_ops)")
        c.execute("CREATE INDEX k8s_monitored_ivf ON k8s_monitored USING ivfflat (emb vector_l2_ops) WITH (lists = 5)")
        yield c, base
        c.execute("DROP TABLE k8s_monitored")


def test_monitoring_queries_report_the_indexes(indexed):
    c, base = indexed
    c.execute("SET enable_seqscan = off")
    for _ in range(3):
        c.execute("SELECT id FROM k8s_monitored ORDER BY emb <=> %s LIMIT 5", (base[0],)).fetchall()
    c.execute("SELECT pg_stat_force_next_flush()")  # this backend's counts, before the next statement
    rows = {r["indexrelname"]: r for r in run_query(c, "vector_ext_index")}
    hnsw, ivf = rows["k8s_monitored_hnsw"], rows["k8s_monitored_ivf"]
    assert (hnsw["method"], ivf["method"]) == ("hnsw", "ivfflat")
    assert hnsw["relname"] == "k8s_monitored" and hnsw["datname"] == c.info.dbname
    for name, r in (("k8s_monitored_hnsw", hnsw), ("k8s_monitored_ivf", ivf)):
        size = c.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()[0]
        assert r["size_bytes"] == size > 0
    assert hnsw["scans"] == 3 and hnsw["tuples_read"] >= 15
    assert hnsw["blocks_read"] + hnsw["blocks_hit"] > 0
    assert ivf["scans"] == 0
    q = queries()["vector_ext_index_state"]
    assert c.execute(q["predicate_query"]).fetchone()[0] is True
    state = {r["indexrelname"]: r for r in run_query(c, "vector_ext_index_state")}
    assert state["k8s_monitored_hnsw"]["levels"] >= 1 and state["k8s_monitored_hnsw"]["lists"] == 0
    assert state["k8s_monitored_ivf"]["lists"] == 5 and state["k8s_monitored_ivf"]["levels"] == 0
    assert state["k8s_monitored_hnsw"]["last_vacuum_time"] == 0
    c.execute("DELETE FROM k8s_monitored WHERE id <= 50")
    c.execute("VACUUM (INDEX_CLEANUP ON) k8s_monitored")
    state = {r["indexrelname"]: r for r in run_query(c, "vector_ext_index_state")}
    for name in ("k8s_monitored_hnsw", "k8s_monitored_ivf"):
        r = state[name]
        assert abs(float(r["last_vacuum_time"]) - time.time()) < 600, r
        assert (r["last_vacuum_removed"], r["last_vacuum_remaining"]) == (50, 450), r
    (ext,) = run_query(c, "vector_ext_extension")
    version = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector_ext'").fetchone()[0]
    assert ext == {"datname": c.info.dbname, "version": version, "installed": 1}


def test_monitoring_query_reports_a_build_in_progress(indexed):
    """CREATE INDEX CONCURRENTLY waits for a transaction that wrote to the
    table: the build query shows it meanwhile."""
    c, base = indexed
    writer = psycopg.connect(DSN)
    writer.execute("INSERT INTO k8s_monitored VALUES (0, %s::vector)", (str(base[1].tolist()),))
    errors = []

    def build():
        try:
            with connect() as b:
                b.execute("CREATE INDEX CONCURRENTLY k8s_monitored_hnsw2 ON k8s_monitored USING hnsw (emb vector_l2_ops)")
        except Exception as e:  # reported below
            errors.append(e)

    t = threading.Thread(target=build)
    t.start()
    try:
        # (it shows from its start, "initializing", then waits for the
        # writer, "waiting for writers before build", until it commits)
        seen = []
        for _ in range(1000):
            seen = [r for r in run_query(c, "vector_ext_index_build") if r["relname"] == "k8s_monitored"]
            if seen and seen[0]["phase"].startswith("waiting for writers"):
                break
            time.sleep(0.01)
        assert len(seen) == 1, "the build never showed"
        assert seen[0]["phase"].startswith("waiting for writers"), seen
        assert seen[0]["command"] == "CREATE INDEX CONCURRENTLY"
        assert seen[0]["datname"] == c.info.dbname
    finally:
        writer.commit()
        writer.close()
        t.join()
    assert not errors, errors
    assert c.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = 'k8s_monitored_hnsw2'::regclass").fetchone()[0]
    assert run_query(c, "vector_ext_index_build") == []


def test_image_definition_runs_the_tested_script():
    """The Dockerfile's build step is the script the next test runs, and its
    extension image holds that script's output and nothing else."""
    text = (K8S / "image" / "Dockerfile").read_text()
    assert "bash scripts/extension-image.sh /out" in text
    final = text[text.rindex("\nFROM "):].splitlines()
    assert final[1] == "FROM scratch"
    assert [l for l in final[2:] if l and not l.startswith("#")] == ["COPY --from=build /out/ /"]


def test_extension_image_loads_as_cloudnativepg_mounts_it(data):
    """scripts/extension-image.sh's directory, given to PostgreSQL 18 as
    CloudNativePG gives a mounted image (extension_control_path,
    dynamic_library_path): CREATE EXTENSION takes the control file, the SQL
    and the library from it, and both index types answer exactly."""
    with connect() as c:
        if c.info.server_version < 180000:
            pytest.skip("image-volume extensions need PostgreSQL 18 (extension_control_path)")
        version = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector_ext'").fetchone()[0]
    out = Path(tempfile.mkdtemp(prefix="vector_ext_image_"))
    try:
        os.chmod(out, 0o755)  # the server's user reads it
        r = subprocess.run(["bash", str(ROOT / "scripts" / "extension-image.sh"), str(out / "image")],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        image = out / "image"
        files = sorted(str(p.relative_to(image)) for p in image.rglob("*") if p.is_file())
        scripts = {f"share/extension/{p.name}" for p in (ROOT / "sql").glob("vector_ext--*.sql")}
        assert files == sorted({"lib/vector_ext.so", "share/extension/vector_ext.control",
                                f"share/extension/vector_ext--{version}.sql"} | scripts)
        with connect() as c:
            c.execute("DROP DATABASE IF EXISTS vector_ext_image")
            c.execute("CREATE DATABASE vector_ext_image")
        # only the image's share/ (the installed copy would do as well, and
        # prove nothing); its lib/ before $libdir, as CloudNativePG adds it
        options = f"-c extension_control_path={image}/share -c dynamic_library_path={image}/lib:$libdir"
        dsn = DSN.rsplit("dbname=", 1)[0] + "dbname=vector_ext_image"
        base, queries, _ = data
        with psycopg.connect(dsn, autocommit=True, options=options) as c:
            c.execute("CREATE EXTENSION vector_ext")
            register_vector(c)
            libs = {line.split()[-1] for line in
                    c.execute("SELECT pg_read_file('/proc/self/maps')").fetchone()[0].splitlines()
                    if line.endswith("/vector_ext.so")}
            assert libs == {f"{image}/lib/vector_ext.so"}
            c.execute("CREATE TABLE items (id int, emb vector(384))")
            c.execute("INSERT INTO items SELECT i - 1, e FROM unnest(%s::vector[]) WITH ORDINALITY AS t(e, i)",
                      (list(base[:1000]),))
            c.execute("CREATE INDEX ON items USING hnsw (emb vector_l2_ops)")
            c.execute("CREATE INDEX ON items USING ivfflat (emb vector_cosine_ops) WITH (lists = 4)")
            c.execute("SET enable_seqscan = off")
            c.execute("SET hnsw.ef_search = 200")
            c.execute("SET ivfflat.probes = 4")
            for op, metric in (("<->", "l2"), ("<=>", "cosine")):
                truth = exact(base[:1000], queries[:50], metric)
                found = [[r[0] for r in c.execute(f"SELECT id FROM items ORDER BY emb {op} %s LIMIT 10", (q,))]
                         for q in queries[:50]]
                assert recall(found, truth) >= 0.99, op
    finally:
        with connect() as c:
            c.execute("DROP DATABASE IF EXISTS vector_ext_image")
        shutil.rmtree(out, ignore_errors=True)
