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
# clients (default: all three), and package (the Debian package, built and
# installed with apt-get in place of what the build installed; as root or
# with sudo).
if [ -z "${PG_VERSION:-}" ]; then
  set -euo pipefail
  here="$(dirname "${BASH_SOURCE[0]}")"
  start=$SECONDS
  for run in "15 unit regress clients package" "16 regress" "17 regress" "18 regress clients"; do
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

if [[ "$PARTS" == *" package "* ]]; then
  log "package: the Debian package for PostgreSQL $PG_VERSION, installed with apt-get"
  deb=$(bash "$ROOT/scripts/package.sh" "$ROOT/target/deb")
  # as on a machine that never built it: what the build installed goes first
  libdir=$("$PG_CONFIG" --pkglibdir)
  extdir="$("$PG_CONFIG" --sharedir)/extension"
  as_root rm -f "$libdir/vector_ext.so" "$extdir/vector_ext.control" "$extdir"/vector_ext--*.sql
  if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --reinstall "$deb" \
    >"$ROOT/target/deb/apt.log" 2>&1; then
    cat "$ROOT/target/deb/apt.log" >&2
    exit 1
  fi
  owner=$(dpkg -S "$libdir/vector_ext.so" | cut -d: -f1)
  [ "$owner" = "postgresql-$PG_VERSION-vector-ext" ] || { echo "vector_ext.so belongs to '$owner'" >&2; exit 1; }
  PGOPTIONS="-c client_min_messages=warning" psql_db -d postgres \
    -c "DROP DATABASE IF EXISTS vector_ext_package" -c "CREATE DATABASE vector_ext_package"
  got=$(psql_db -d vector_ext_package -At <<'SQL'
CREATE EXTENSION vector_ext;
CREATE TABLE t (id int, v vector(3));
INSERT INTO t SELECT i, ARRAY[i, i % 5, 1] FROM generate_series(1, 1000) i;
CREATE INDEX ON t USING hnsw (v vector_l2_ops);
SET enable_seqscan = off;
SELECT extversion FROM pg_extension WHERE extname = 'vector_ext';
SELECT string_agg(id::text, ',') FROM (SELECT id FROM t ORDER BY v <-> '[500,0,1]' LIMIT 3) s;
SQL
)
  want="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
500,501,502"
  [ "$got" = "$want" ] || { printf 'the installed package answered:\n%s\nnot:\n%s\n' "$got" "$want" >&2; exit 1; }
  psql_db -d postgres -c "DROP DATABASE vector_ext_package"
  log "$(basename "$deb") installed; CREATE EXTENSION vector_ext and an hnsw index work"
fi
