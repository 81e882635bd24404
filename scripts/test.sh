#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds and installs the
# extension, starts a private Postgres, then runs the Rust unit tests of the
# pure crates, the pg_regress SQL tests and the real-client Python tests
# (clients, hostile input, crash, replica, soak).
#
#   bash scripts/test.sh                 every part on PostgreSQL 15 and 18,
#                                        pg_regress on 16 and 17 too (CI);
#                                        18 last: its pg_upgrade test upgrades
#                                        from the others
#   PG_VERSION=17 bash scripts/test.sh   every part on one version
#
# VECTOR_EXT_TEST_PARTS picks parts for one version: any of unit, regress,
# clients (default: all three).
if [ -z "${PG_VERSION:-}" ]; then
  set -euo pipefail
  here="$(dirname "${BASH_SOURCE[0]}")"
  start=$SECONDS
  for run in "15 unit regress clients" "16 regress" "17 regress" "18 regress clients"; do
    set -- $run
    v=$1 && shift
    printf '\033[1m== PostgreSQL %s: %s\033[0m\n' "$v" "$*" >&2
    PG_VERSION=$v VECTOR_EXT_TEST_PARTS="$*" bash "$here/test.sh"
    printf '\033[1m== PostgreSQL %s passed (%d s so far)\033[0m\n' "$v" $((SECONDS - start)) >&2
  done
  exit 0
fi

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
PARTS=" ${VECTOR_EXT_TEST_PARTS:-unit regress clients} "
trap cluster_stop EXIT
setup_all

if [[ "$PARTS" == *" unit "* ]]; then
  log "unit tests: crates/distance, crates/vecfmt, crates/pagestore, crates/hnsw, crates/ivf, crates/testkit"
  (cd "$ROOT" && cargo test -q --release -p distance -p vecfmt -p pagestore -p hnsw -p ivf -p testkit)
fi

if [[ "$PARTS" == *" regress "* ]]; then
  log "pg_regress on PostgreSQL $PG_VERSION: tests/pg_regress"
  if ! run_regress vector_ext_regress vector_ext "$ROOT/target/regress"; then
    cat "$ROOT/target/regress/regression.diffs" >&2 || true
    exit 1
  fi
fi

if [[ "$PARTS" == *" clients "* ]]; then
  log "client tests on PostgreSQL $PG_VERSION: psycopg 3, asyncpg, SQLAlchemy with the pgvector package; crash, replica, soak"
  VENV="$ROOT/target/venv"
  if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s "$ROOT/tests/python/requirements.txt" "$VENV/requirements.txt"; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/python/requirements.txt"
    cp "$ROOT/tests/python/requirements.txt" "$VENV/requirements.txt"
  fi
  psql_db -d postgres -c "DROP DATABASE IF EXISTS vector_ext_clients" -c "CREATE DATABASE vector_ext_clients"
  psql_db -d vector_ext_clients -c "CREATE EXTENSION vector_ext"
  VECTOR_EXT_TEST_DB=vector_ext_clients "$VENV/bin/pytest" -q -p no:cacheprovider "$ROOT/tests/python"
fi
