#!/usr/bin/env bash
# Sharded kNN on PostgreSQL's own machinery: N loopback clusters (the
# shards), each with vector_ext, behind a coordinator database that reaches
# them through postgres_fdw. The recipe it sets up is in docs/sharding.md.
#
#   bash scripts/shards.sh start [N]   start N shards (default 3) and set up
#                                      the coordinator (builds and installs
#                                      the extension first if needed)
#   bash scripts/shards.sh each SQL    run SQL in every shard's database
#   bash scripts/shards.sh psql [ARGS] psql into the coordinator
#   bash scripts/shards.sh stop        stop the shards (their data stays)
#   bash scripts/shards.sh destroy     stop them and remove their data
#
# The coordinator is the cluster scripts/lib.sh runs (PG_VERSION, port
# $VECTOR_EXT_PGPORT, default 54329), database vector_ext_coordinator
# ($VECTOR_EXT_COORDINATOR_DB). Shard K listens on the same socket directory
# at port $VECTOR_EXT_SHARD_PORT + K (default the coordinator's port + 10 + K)
# and holds database vector_ext_shard. On the coordinator: foreign servers
# shard1..shardN (postgres_fdw with `extensions 'vector_ext'`, so the
# distance operators are sent to the shards, `async_capable`, and JIT off in
# the shards' sessions: see docs/sharding.md), a user
# mapping for postgres on each, and shard_settings, whose rows are every
# shard's search settings in the coordinator's connections (see
# docs/sharding.md). Loopback trust authentication, fsync off: a test and
# demo setup, not a production one.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SHARDS_DIR="$PG_WORK/shards$PG_VERSION"
SHARD_PORT="${VECTOR_EXT_SHARD_PORT:-$((PGPORT + 10))}"
SHARD_DB=vector_ext_shard
COORD_DB="${VECTOR_EXT_COORDINATOR_DB:-vector_ext_coordinator}"

shard_dirs() { ls -d "$SHARDS_DIR"/shard* 2>/dev/null | sort -V; }
shard_port() { echo $((SHARD_PORT + ${1##*shard})); }

shard_psql() { # port, psql arguments...
  local port="$1" && shift
  "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q -h "$PGSOCK" -p "$port" -U postgres "$@"
}

start_shard() { # k
  local dir="$SHARDS_DIR/shard$1" port
  port=$(shard_port "$dir")
  if [ ! -f "$dir/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$dir" -A trust -U postgres --no-sync \
      --encoding=UTF8 --no-locale >/dev/null
  fi
  if ! as_pg "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w start \
      -o "-p $port -k $PGSOCK -c listen_addresses='' -c fsync=off -c shared_buffers=128MB ${VECTOR_EXT_SHARD_PGOPTS:-}" >/dev/null
  fi
  if [ -z "$(shard_psql "$port" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$SHARD_DB'")" ]; then
    shard_psql "$port" -d postgres -c "CREATE DATABASE $SHARD_DB"
  fi
  shard_psql "$port" -d "$SHARD_DB" -c "SET client_min_messages = warning" -c "CREATE EXTENSION IF NOT EXISTS vector_ext"
}

# The coordinator's servers, user mappings and settings table for shards
# 1..n. Run again, it changes nothing that exists (the tables a user made on
# the servers stay), but points the servers at the current ports.
setup_coordinator() { # n
  local n="$1" k sql
  if [ -z "$(psql_db -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$COORD_DB'")" ]; then
    psql_db -d postgres -c "CREATE DATABASE $COORD_DB"
  fi
  sql="SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS vector_ext;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE TABLE IF NOT EXISTS shard_settings (name text, setting text);
COMMENT ON TABLE shard_settings IS 'the search settings of every shard, a child foreign table a shard (scripts/shards.sh)';"
  for k in $(seq 1 "$n"); do
    sql+="
CREATE SERVER IF NOT EXISTS shard$k FOREIGN DATA WRAPPER postgres_fdw OPTIONS (
    host '$PGSOCK', port '$((SHARD_PORT + k))', dbname '$SHARD_DB',
    extensions 'vector_ext', async_capable 'true', options '-c jit=off');
ALTER SERVER shard$k OPTIONS (SET host '$PGSOCK', SET port '$((SHARD_PORT + k))', SET dbname '$SHARD_DB');
CREATE USER MAPPING IF NOT EXISTS FOR postgres SERVER shard$k OPTIONS (user 'postgres');
CREATE FOREIGN TABLE IF NOT EXISTS shard_settings_$k () INHERITS (shard_settings)
    SERVER shard$k OPTIONS (table_name 'vector_ext_settings');"
  done
  psql_db -d "$COORD_DB" -c "$sql"
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  start)
    n="${1:-3}"
    if ! [[ "$n" =~ ^[1-9][0-9]?$ ]]; then
      echo "shards.sh start N: N is a number of shards from 1 to 99" >&2
      exit 2
    fi
    if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/postgres_fdw.control" ]; then
      echo "shards.sh: postgres_fdw is not installed for PostgreSQL $PG_VERSION" >&2
      exit 1
    fi
    if [ ! -f "$("$PG_CONFIG" --sharedir)/extension/vector_ext.control" ]; then
      setup_all
    elif ! "$PG_BIN/pg_isready" -q -h "$PGSOCK" -p "$PGPORT"; then
      cluster_start
    fi
    if [ "$(id -u)" = 0 ]; then
      install -d -o postgres -g postgres "$SHARDS_DIR"
    else
      mkdir -p "$SHARDS_DIR"
    fi
    for k in $(seq 1 "$n"); do start_shard "$k"; done
    setup_coordinator "$n"
    log "$n shards on ports $((SHARD_PORT + 1))-$((SHARD_PORT + n)); coordinator: database $COORD_DB on port $PGPORT"
    ;;
  each)
    [ $# -ge 1 ] || { echo "shards.sh each SQL" >&2; exit 2; }
    for dir in $(shard_dirs); do
      if as_pg "$PG_BIN/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
        shard_psql "$(shard_port "$dir")" -d "$SHARD_DB" -c "$1"
      fi
    done
    ;;
  psql)
    "$PG_BIN/psql" -X -h "$PGSOCK" -p "$PGPORT" -U postgres -d "$COORD_DB" "$@"
    ;;
  stop|destroy)
    for dir in $(shard_dirs); do
      as_pg "$PG_BIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    done
    if [ "$cmd" = destroy ]; then
      rm -rf "$SHARDS_DIR"
      if "$PG_BIN/pg_isready" -q -h "$PGSOCK" -p "$PGPORT"; then
        psql_db -d postgres -c "DROP DATABASE IF EXISTS $COORD_DB"
      fi
    fi
    ;;
  *)
    sed -n '2,/^source/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
