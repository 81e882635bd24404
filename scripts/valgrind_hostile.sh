#!/usr/bin/env bash
# Runs the hostile-input tests (tests/python/test_hostile_input.py) and a set
# of oversized hostile values against a PostgreSQL whose every process runs
# under valgrind's memcheck, then lists the invalid reads and writes and the
# uses of uninitialised values valgrind saw in vector_ext's code.
#
#   bash scripts/valgrind_hostile.sh        (after the README's setup; as root)
#
# Debian's PostgreSQL is not built with USE_VALGRIND, so memcheck sees the
# bounds of malloc blocks, not of palloc chunks: a read past a small value
# stays inside its memory context's block and goes unseen. Values larger
# than a context's chunk limit (8 kB) get a block of their own, so the
# oversized values of tests/valgrind/oversized.sql (16,000 dimensions and
# more) put the end of each value at the end of a malloc block, where a read
# past it is reported.
# Every backend runs many times slower under memcheck; the run takes about a
# minute here (49 s on 2026-12-06). Not part of the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
command -v valgrind >/dev/null || as_root apt-get install -y -q valgrind >/dev/null
DATA=/tmp/vector_ext_valgrind
LOGS=/tmp/vector_ext_valgrind_logs
PORT=$((PGPORT + 70))
as_root rm -rf "$DATA" "$LOGS"
as_root mkdir -p "$DATA" "$LOGS"
as_root chown postgres "$DATA" "$LOGS"
as_pg "$PG_BIN/initdb" -A trust -U postgres -D "$DATA" >/dev/null
# the postmaster and every backend it forks run under memcheck
as_pg bash -c "valgrind --quiet --trace-children=yes --num-callers=30 --error-limit=no \
  --log-file=$LOGS/%p.log $PG_BIN/postgres -D $DATA -p $PORT -k $PGSOCK \
  -c listen_addresses='' -c fsync=off -c shared_buffers=64MB -c autovacuum=off \
  -c max_worker_processes=2 >$LOGS/server.out 2>&1 &"
for _ in $(seq 600); do
  "$PG_BIN/pg_isready" -q -h "$PGSOCK" -p "$PORT" && break
  sleep 1
done
stop() { as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 600 stop >/dev/null || true; }
trap stop EXIT
export PGPORT=$PORT
psql_db -d postgres -c "CREATE DATABASE vector_ext_valgrind"
psql_db -d vector_ext_valgrind -c "CREATE EXTENSION vector_ext"
log "oversized hostile values"
psql_db -d vector_ext_valgrind -v ON_ERROR_STOP=0 -f tests/valgrind/oversized.sql >"$LOGS/oversized.out" 2>&1 || true
log "hostile-input tests"
VECTOR_EXT_TEST_DB=vector_ext_valgrind VECTOR_EXT_SQL_FUZZ="${VECTOR_EXT_SQL_FUZZ:-300}" \
  target/venv/bin/pytest -q -p no:cacheprovider tests/python/test_hostile_input.py
stop
trap - EXIT
# errors whose stack passes through the extension
found=0
for f in "$LOGS"/*.log; do
  ours=$(awk '/^==[0-9]+== (Invalid (read|write)|Conditional jump|Use of uninitialised)/ {e=1; buf=$0; next}
              e && /^==[0-9]+== *$/ {if (buf ~ /vector_ext/) print buf "\n"; e=0; next}
              e {buf = buf "\n" $0}' "$f")
  if [ -n "$ours" ]; then
    echo "== $f"
    echo "$ours"
    found=1
  fi
done
total=$(cat "$LOGS"/*.log | grep -c "^==[0-9]*== Invalid\|^==[0-9]*== Conditional\|^==[0-9]*== Use of" || true)
echo "memcheck errors in all processes: $total; through vector_ext: $([ $found = 1 ] && echo some || echo none)"
exit $found
