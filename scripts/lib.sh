# Shared by scripts/demo.sh and scripts/test.sh: install what is missing,
# build and install the extension, run a private Postgres cluster.
# Works as root (Postgres then runs as the `postgres` user) or as a normal
# user with sudo for apt.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PG_MAJOR="${PG_MAJOR:-15}"
PGRX_VERSION="0.18.1"
PGPORT="${VECTOR_EXT_PGPORT:-54329}"
# As root, everything the postgres user touches lives under /tmp: the
# checkout itself may sit in a directory postgres cannot enter (/root/...).
if [ "$(id -u)" = 0 ]; then
  PG_WORK="/tmp/vector_ext-$(printf %s "$ROOT" | md5sum | cut -c1-8)"
else
  PG_WORK="$ROOT/target"
fi
PGDATA_DIR="${VECTOR_EXT_PGDATA:-$PG_WORK/pgdata}"
export VECTOR_EXT_PGDATA="$PGDATA_DIR" # tests that restart the server use it
PGSOCK="${VECTOR_EXT_PGSOCK:-/tmp/vector_ext_sock}"
export PGHOST="$PGSOCK" PGPORT PGUSER=postgres
export PATH="$HOME/.cargo/bin:$PATH"
unset RUST_BACKTRACE # backtraces would be appended to error DETAIL lines

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Runs a command as the user that owns the cluster.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

install_packages() {
  local pkgs=(build-essential pkg-config libssl-dev libclang-dev clang
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" sudo python3-venv curl ca-certificates)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  # Debian's postgresql package starts a cluster of its own; we use ours.
  if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
    as_root pg_ctlcluster "$PG_MAJOR" main stop 2>/dev/null || true
  fi
}

PG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config"
PG_BIN="/usr/lib/postgresql/$PG_MAJOR/bin"

install_pgrx() {
  if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
    # --debug: builds in about a third of the time and behaves the same.
    log "installing cargo-pgrx $PGRX_VERSION (a few minutes, once)"
    cargo install cargo-pgrx --version "=$PGRX_VERSION" --locked --debug
  fi
  if ! grep -q "pg$PG_MAJOR" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    cargo pgrx init "--pg$PG_MAJOR" "$PG_CONFIG"
  fi
}

build_install() {
  log "building and installing vector_ext (release)"
  (cd "$ROOT" && as_root env "PATH=$PATH" "HOME=$HOME" ${CARGO_HOME:+"CARGO_HOME=$CARGO_HOME"} \
    cargo pgrx install --release --pg-config "$PG_CONFIG" >/dev/null)
}

cluster_stop() {
  if [ -f "$PGDATA_DIR/postmaster.pid" ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w stop >/dev/null 2>&1 || true
  fi
}

cluster_start() {
  if [ "$(id -u)" = 0 ]; then
    # PG_WORK too (tests put a standby there) when VECTOR_EXT_PGDATA is elsewhere
    install -d -o postgres -g postgres "$(dirname "$PGDATA_DIR")" "$PG_WORK" "$PGSOCK"
  else
    mkdir -p "$(dirname "$PGDATA_DIR")" "$PGSOCK"
  fi
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    log "initdb $PGDATA_DIR"
    # UTF8 whatever the caller's locale: from an environment without LANG,
    # initdb picks SQL_ASCII, and clients then get text back as bytes
    as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -A trust -U postgres --no-sync \
      --encoding=UTF8 --no-locale >/dev/null
  fi
  cluster_stop
  log "starting Postgres on $PGSOCK port $PGPORT"
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w start \
    -o "-p $PGPORT -k $PGSOCK -c listen_addresses='localhost' -c fsync=off -c shared_buffers=1GB ${VECTOR_EXT_PGOPTS:-}" >/dev/null
}

psql_db() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"; }

setup_all() {
  install_packages
  install_pgrx
  build_install
  cluster_start
}

PG_REGRESS="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"

# Runs tests/pg_regress/sql/*.sql in a fresh database holding extension $2
# and compares with tests/pg_regress/expected/ (or $4 when given).
run_regress() {
  local db="$1" ext="$2" outdir="$3" expected="${4:-$ROOT/tests/pg_regress}"
  psql_db -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  psql_db -d "$db" -c "CREATE EXTENSION $ext"
  local tests
  tests=$(cd "$ROOT/tests/pg_regress/sql" && ls *.sql | sed 's/\.sql$//' | sort)
  # pg_regress runs as the cluster's user: give it copies it can read and write.
  local work="$PG_WORK/regress-$db"
  rm -rf "$work" && mkdir -p "$work/out"
  cp -r "$expected/sql" "$expected/expected" "$work/"
  [ "$(id -u)" = 0 ] && chown -R postgres "$work"
  local rc=0
  as_pg "$PG_REGRESS" --use-existing --host="$PGSOCK" --port="$PGPORT" --user=postgres \
    --dbname="$db" --inputdir="$work" --outputdir="$work/out" \
    --bindir="$PG_BIN" $tests || rc=$?
  rm -rf "$outdir" && mkdir -p "$outdir" && cp -r "$work/out/." "$outdir/"
  return $rc
}
