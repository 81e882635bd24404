#!/usr/bin/env bash
# Builds vector_ext and lays its files out as CloudNativePG's image-volume
# extensions expect them (the image's root holds lib/ and share/extension/):
#
#   bash scripts/extension-image.sh OUT        OUT/lib/vector_ext.so
#                                              OUT/share/extension/vector_ext.control
#                                              OUT/share/extension/vector_ext--*.sql
#                                              (the version's script, the released
#                                              versions' and the upgrade scripts)
#
# The extension image's Dockerfile (deploy/kubernetes/image/Dockerfile) runs
# this script and copies OUT into an empty image. A server loads the layout
# with extension_control_path = '$system:OUT/share' and dynamic_library_path
# = '$libdir:OUT/lib', which is what CloudNativePG sets for a mounted image
# (PostgreSQL 18 and later). The suite runs it and loads OUT that way
# (tests/python/test_kubernetes.py).
#
# The server to build for: PG_CONFIG when set (the Dockerfile's), else the
# PG_VERSION (default 18) that scripts/lib.sh installs.
set -euo pipefail
out="${1:?usage: bash scripts/extension-image.sh OUT}"
if [ -z "${PG_CONFIG:-}" ]; then
  export PG_VERSION="${PG_VERSION:-18}"
  source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
major=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
pkg=$(mktemp -d)
trap 'rm -rf "$pkg" "$pkg.log"' EXIT
if ! (cd "$root" && cargo pgrx package --pg-config "$PG_CONFIG" --out-dir "$pkg" \
  --no-default-features --features "pg$major") >"$pkg.log" 2>&1; then
  cat "$pkg.log" >&2
  exit 1
fi
rm -rf "$out" && mkdir -p "$out/lib" "$out/share/extension"
cp "$pkg$("$PG_CONFIG" --pkglibdir)/vector_ext.so" "$out/lib/"
cp "$pkg$("$PG_CONFIG" --sharedir)"/extension/vector_ext* "$out/share/extension/"
# the released versions' install scripts and every upgrade script
cp "$root"/sql/vector_ext--*.sql "$out/share/extension/"
chmod -R a+rX "$out"
(cd "$out" && find . -type f | sort)
