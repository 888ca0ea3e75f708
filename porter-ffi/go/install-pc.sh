#!/usr/bin/env bash
# Writes <libdir>/pkgconfig/porter-ffi.pc for the porter-ffi library built in <libdir>
# (target/<profile>), with the header from this repository. The link line is the one the Go
# package uses by default (porter/link_static.go), so the two cannot disagree.
#
#   porter-ffi/go/install-pc.sh target/release
#   PKG_CONFIG_PATH=target/release/pkgconfig go build -tags porter_pkgconfig …
set -euo pipefail

libdir=$(cd "${1:?usage: install-pc.sh <libdir>}" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
system_libs=$(sed -n 's/^\/\/ #cgo LDFLAGS: .* -l:libporter_ffi\.a \(.*\)$/\1/p' "$here/porter/link_static.go")
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n 1)
[ -n "$system_libs" ] && [ -n "$version" ] || { echo "install-pc.sh: cannot read the link line or the version" >&2; exit 1; }

mkdir -p "$libdir/pkgconfig"
cat >"$libdir/pkgconfig/porter-ffi.pc" <<PC
libdir=$libdir
includedir=$repo/porter-ffi/include

Name: porter-ffi
Description: ds-porter's engine as a C library (static)
Version: $version
Cflags: -I\${includedir}
Libs: -L\${libdir} -l:libporter_ffi.a $system_libs
PC
echo "$libdir/pkgconfig/porter-ffi.pc"
