#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds and installs the
# extension, starts a private Postgres, then runs the Rust unit tests of the
# pure crates, the pg_regress SQL tests and the real-client Python tests.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
trap cluster_stop EXIT
setup_all

log "unit tests: crates/distance, crates/vecfmt, crates/pagestore, crates/hnsw, crates/ivf, crates/testkit"
(cd "$ROOT" && cargo test -q --release -p distance -p vecfmt -p pagestore -p hnsw -p ivf -p testkit)

log "pg_regress: tests/pg_regress"
if ! run_regress vector_ext_regress vector_ext "$ROOT/target/regress"; then
  cat "$ROOT/target/regress/regression.diffs" >&2 || true
  exit 1
fi

log "client tests: psycopg 3, asyncpg, SQLAlchemy with the pgvector package"
VENV="$ROOT/target/venv"
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s "$ROOT/tests/python/requirements.txt" "$VENV/requirements.txt"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/python/requirements.txt"
  cp "$ROOT/tests/python/requirements.txt" "$VENV/requirements.txt"
fi
psql_db -d postgres -c "DROP DATABASE IF EXISTS vector_ext_clients" -c "CREATE DATABASE vector_ext_clients"
psql_db -d vector_ext_clients -c "CREATE EXTENSION vector_ext"
VECTOR_EXT_TEST_DB=vector_ext_clients "$VENV/bin/pytest" -q -p no:cacheprovider "$ROOT/tests/python"
