#!/usr/bin/env bash
# Builds the Debian package of vector_ext for one PostgreSQL major:
#
#   bash scripts/package.sh [OUTDIR]              PostgreSQL 15 (PG_VERSION=16|17|18 for another)
#   apt-get install ./OUTDIR/postgresql-15-vector-ext_<version>-1_<arch>.deb
#
# The package installs into Debian's (and PGDG's) layout for that major,
# /usr/lib/postgresql/NN/lib and /usr/share/postgresql/NN/extension, and
# depends on postgresql-NN and the shared libraries the library links
# (dpkg-shlibdeps). Then CREATE EXTENSION vector_ext works in any of the
# server's databases. The suite builds and installs the one for 15
# (scripts/test.sh, part "package"); the others are built the same way from
# servers scripts/lib.sh installs (PyPI wheels of the same major) and have
# not been installed on a machine with postgresql-16, -17 or -18.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
out="${1:-$ROOT/target/deb}"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -1)
arch=$(dpkg --print-architecture)
name="postgresql-$PG_VERSION-vector-ext"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# the files, as scripts/extension-image.sh lays them out
PG_CONFIG="$PG_CONFIG" bash "$ROOT/scripts/extension-image.sh" "$work/files" >/dev/null
root="$work/root"
install -d "$root/usr/lib/postgresql/$PG_VERSION/lib" "$root/usr/share/postgresql/$PG_VERSION/extension" \
  "$root/usr/share/doc/$name" "$root/DEBIAN"
install -m 644 "$work/files/lib/vector_ext.so" "$root/usr/lib/postgresql/$PG_VERSION/lib/"
install -m 644 "$work/files/share/extension/"* "$root/usr/share/postgresql/$PG_VERSION/extension/"
strip --strip-unneeded "$root/usr/lib/postgresql/$PG_VERSION/lib/vector_ext.so"
gzip -9n -c "$ROOT/CHANGELOG.md" > "$root/usr/share/doc/$name/changelog.gz"
cat > "$root/usr/share/doc/$name/copyright" <<COPYRIGHT
vector_ext: vector similarity search for PostgreSQL, SQL-compatible with pgvector.
License: PostgreSQL (see the PostgreSQL License, https://www.postgresql.org/about/licence/).
COPYRIGHT

# the shared libraries the library needs, as Debian names their packages
mkdir -p "$work/shlibs/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$name" "$name" > "$work/shlibs/debian/control"
libs=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$root/usr/lib/postgresql/$PG_VERSION/lib/vector_ext.so" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
installed=$(du -sk "$root/usr" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: $name
Version: $version-1
Architecture: $arch
Maintainer: vector_ext developers <vector_ext@localhost>
Section: database
Priority: optional
Installed-Size: $installed
Depends: postgresql-$PG_VERSION${libs:+, $libs}
Description: vector similarity search for PostgreSQL $PG_VERSION, SQL-compatible with pgvector
 vector_ext adds the vector, halfvec, sparsevec and bit operators, functions
 and casts of pgvector, and the hnsw and ivfflat index access methods, under
 the extension name vector_ext (CREATE EXTENSION vector_ext).
CONTROL
mkdir -p "$out"
deb="$out/${name}_${version}-1_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
