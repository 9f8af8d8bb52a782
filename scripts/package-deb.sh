#!/usr/bin/env bash
# Builds the Debian package of Herald with Debian's own tools (dpkg-shlibdeps for the library
# dependencies, dpkg-deb for the archive): build-deb/herald_<version>_<arch>.deb holding
#   /usr/bin/herald                                   the server (stripped)
#   /usr/share/herald/web/                            the admin and chat pages (web/)
#   /usr/share/herald/clients/socket.io-client/       socket.io.js, .min.js and maps (npm socket.io-client)
#   /usr/share/herald/clients/js/herald-client.js     the JSON-protocol client (clients/js)
#   /usr/share/herald/admin-ui/                        the stock Socket.IO Admin UI (npm @socket.io/admin-ui ui/dist)
#   /lib/systemd/system/herald.service                packaging/herald.service
#   /etc/herald/herald.conf                           packaging/herald.conf (a conffile)
#   /usr/share/doc/herald/                            README.md, the Grafana dashboard
# and the maintainer scripts of packaging/debian (the herald user, /var/lib/herald, the unit).
#   scripts/package-deb.sh [--binary PATH] [--out DIR]
#     --binary PATH  package that herald binary (e.g. build/herald) instead of building one
#                    (Release, in build-deb/build)
#     --out DIR      where the .deb goes (default build-deb)
# Prints the path of the package on its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN="" OUT="$ROOT/build-deb"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BIN=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    *) echo "package-deb: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in dpkg-deb dpkg-shlibdeps strip; do
  command -v "$tool" >/dev/null || { echo "package-deb: $tool not found (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [ -z "$BIN" ]; then
  cmake -S . -B "$OUT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$OUT/build" --target herald -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
  BIN="$OUT/build/herald"
fi
[ -x "$BIN" ] || { echo "package-deb: no herald binary at $BIN" >&2; exit 1; }
SIO_DIST=node_modules/socket.io-client/dist
[ -f "$SIO_DIST/socket.io.min.js" ] || { echo "package-deb: $SIO_DIST missing (npm ci)" >&2; exit 1; }
ADMIN_UI_DIST=node_modules/@socket.io/admin-ui/ui/dist
[ -f "$ADMIN_UI_DIST/index.html" ] || { echo "package-deb: $ADMIN_UI_DIST missing (npm ci)" >&2; exit 1; }

VERSION=$("$BIN" version | awk '{print $NF}')
ARCH=$(dpkg --print-architecture)
STAGE="$OUT/stage"
rm -rf "$STAGE"
mkdir -p "$STAGE/DEBIAN" "$STAGE/usr/bin" "$STAGE/usr/share/herald/clients/socket.io-client" \
  "$STAGE/usr/share/herald/clients/js" "$STAGE/lib/systemd/system" "$STAGE/etc/herald" "$STAGE/usr/share/doc/herald"

install -m 0755 "$BIN" "$STAGE/usr/bin/herald"
strip --strip-unneeded "$STAGE/usr/bin/herald"
cp -r web "$STAGE/usr/share/herald/web"
cp -r "$ADMIN_UI_DIST" "$STAGE/usr/share/herald/admin-ui"
for f in socket.io.js socket.io.js.map socket.io.min.js socket.io.min.js.map; do
  install -m 0644 "$SIO_DIST/$f" "$STAGE/usr/share/herald/clients/socket.io-client/$f"
done
install -m 0644 clients/js/herald-client.js "$STAGE/usr/share/herald/clients/js/herald-client.js"
install -m 0644 packaging/herald.service "$STAGE/lib/systemd/system/herald.service"
install -m 0644 packaging/herald.conf "$STAGE/etc/herald/herald.conf"
install -m 0644 README.md "$STAGE/usr/share/doc/herald/README.md"
install -m 0644 packaging/grafana-herald.json "$STAGE/usr/share/doc/herald/grafana-herald.json"
printf 'Herald\nThe socket.io-client bundles under /usr/share/herald/clients/socket.io-client are\nsocket.io-client (MIT License, Copyright (c) 2014-present Guillermo Rauch and Socket.IO contributors).\nThe Admin UI under /usr/share/herald/admin-ui is @socket.io/admin-ui (MIT License, Socket.IO contributors).\n' \
  >"$STAGE/usr/share/doc/herald/copyright"
find "$STAGE/usr/share" -type d -exec chmod 0755 {} +
find "$STAGE/usr/share" -type f -exec chmod 0644 {} +

# the shared libraries it links, as Debian package dependencies
SHLIB_DIR=$(mktemp -d)
trap 'rm -rf "$SHLIB_DIR"' EXIT
mkdir -p "$SHLIB_DIR/debian"
printf 'Source: herald\n\nPackage: herald\nArchitecture: any\n' >"$SHLIB_DIR/debian/control"
DEPENDS=$(cd "$SHLIB_DIR" && dpkg-shlibdeps -O "$STAGE/usr/bin/herald" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$DEPENDS" ] || { echo "package-deb: dpkg-shlibdeps found no dependencies" >&2; exit 1; }

SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" -e "s/@DEPENDS@/$DEPENDS/" \
  packaging/debian/control.in >"$STAGE/DEBIAN/control"
install -m 0644 packaging/debian/conffiles "$STAGE/DEBIAN/conffiles"
for s in postinst prerm postrm; do install -m 0755 "packaging/debian/$s" "$STAGE/DEBIAN/$s"; done

DEB="$OUT/herald_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
