#!/usr/bin/env bash
# `vector`: vector_ext under pgvector's extension name, for applications
# whose migrations run CREATE EXTENSION vector (Django's VectorExtension,
# Rails' enable_extension, Prisma's extensions = [vector], Alembic scripts)
# and should run unchanged. Opt in, per server:
#
#   bash scripts/vector-alias.sh install     as root (or with sudo)
#   bash scripts/vector-alias.sh remove
#
# It writes vector.control and vector--*.sql next to vector_ext's, made from
# the installed vector_ext scripts: CREATE EXTENSION vector installs exactly
# vector_ext's objects, backed by vector_ext's library, and ALTER EXTENSION
# vector UPDATE follows vector_ext's versions. Run it again after
# installing a new vector_ext. It never touches a real pgvector: when the
# server has a vector.control this script did not write, it stops. In one
# database, use one of the two names (they define the same types).
#
# The server: PG_CONFIG when set, else the PG_VERSION (default 15) that
# scripts/lib.sh installs.
set -euo pipefail
action="${1:?usage: bash scripts/vector-alias.sh install|remove}"
if [ -z "${PG_CONFIG:-}" ]; then
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
dir="$("$PG_CONFIG" --sharedir)/extension"
marker="# written by vector_ext's scripts/vector-alias.sh"
[ -f "$dir/vector_ext.control" ] || { echo "vector_ext is not installed in $dir" >&2; exit 1; }
if [ -f "$dir/vector.control" ]; then
  if ! grep -qF "$marker" "$dir/vector.control"; then
    echo "$dir/vector.control is another extension's (pgvector's?): left alone" >&2
    exit 1
  fi
elif compgen -G "$dir/vector--*.sql" >/dev/null; then
  echo "$dir holds vector--*.sql scripts this script did not write: left alone" >&2
  exit 1
fi

case "$action" in
  install)
    version=$(sed -n "s/^default_version = '\(.*\)'$/\1/p" "$dir/vector_ext.control")
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    {
      echo "$marker"
      echo "# (an alias of vector_ext, not pgvector: remove with scripts/vector-alias.sh remove)"
      echo "comment = 'vector_ext under pgvector''s extension name'"
      echo "default_version = '$version'"
      grep -E '^(module_pathname|relocatable|superuser|trusted) ' "$dir/vector_ext.control"
    } > "$tmp/vector.control"
    for f in "$dir"/vector_ext--*.sql; do
      name=$(basename "$f")
      sed 's/"\(CREATE\|ALTER\) EXTENSION vector_ext/"\1 EXTENSION vector/' "$f" > "$tmp/vector--${name#vector_ext--}"
    done
    as_root rm -f "$dir"/vector--*.sql
    as_root install -m 644 "$tmp"/vector.control "$tmp"/vector--*.sql "$dir/"
    echo "installed the alias 'vector' (vector_ext $version) in $dir" >&2
    ;;
  remove)
    as_root rm -f "$dir/vector.control" "$dir"/vector--*.sql
    echo "removed the alias 'vector' from $dir" >&2
    ;;
  *)
    echo "usage: bash scripts/vector-alias.sh install|remove" >&2
    exit 2
    ;;
esac
