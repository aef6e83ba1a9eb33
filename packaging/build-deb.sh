#!/usr/bin/env bash
# Build virtnet_<version>_<arch>.deb with dpkg-deb from a built tree.
#   packaging/build-deb.sh [--out DIR]       (npm run package:deb)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$src
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a value}; shift 2 ;;
    -h|--help) sed -n '2,3p' "$0" | sed 's/^# //'; exit 0 ;;
    *) echo "build-deb.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
command -v dpkg-deb >/dev/null || { echo "build-deb.sh: dpkg-deb not found (apt-get install dpkg)" >&2; exit 1; }
version=$(node -p "require('$src/package.json').version")
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT

"$src/packaging/install.sh" --prefix /usr --sysconfdir /etc --destdir "$stage" >/dev/null
mkdir -p "$stage/DEBIAN"
installed_kb=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$installed_kb/" \
  "$src/packaging/debian/control.in" > "$stage/DEBIAN/control"
for s in postinst prerm postrm; do install -m 0755 "$src/packaging/debian/$s" "$stage/DEBIAN/$s"; done
# Conffiles: everything the admin may edit under /etc (symlinks are not conffiles).
(cd "$stage" && find etc -type f | sed 's#^#/#' | sort) > "$stage/DEBIAN/conffiles"
[ -s "$stage/DEBIAN/conffiles" ] || rm -f "$stage/DEBIAN/conffiles"
mkdir -p "$out"
deb="$out/virtnet_${version}_${arch}.deb"
dpkg-deb --root-owner-group --build "$stage" "$deb" >/dev/null
echo "$deb"
