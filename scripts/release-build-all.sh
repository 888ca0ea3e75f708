#!/usr/bin/env bash
# Builds bin/<os>/<arch>/ds-porter[.exe] for every platform in ds.manifest.yaml whose Rust target
# is installed (rustup target add <triple>), and says which platforms it could not build.
# Usage: scripts/release-build-all.sh [VERSION]   (VERSION like v1.2.3; the leading v is dropped)
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:-}"
if [ -n "$version" ]; then
  export DS_PORTER_VERSION="${version#v}"
fi

triple_for() {
  case "$1" in
    linux/amd64) echo x86_64-unknown-linux-gnu ;;
    linux/arm64) echo aarch64-unknown-linux-gnu ;;
    darwin/amd64) echo x86_64-apple-darwin ;;
    darwin/arm64) echo aarch64-apple-darwin ;;
    windows/amd64) echo x86_64-pc-windows-gnu ;;
    windows/arm64) echo aarch64-pc-windows-gnullvm ;;
    *) echo "" ;;
  esac
}

installed=$(rustup target list --installed 2>/dev/null || rustc -vV | sed -n 's/^host: //p')
# "platform path" pairs, in manifest order.
pairs=$(awk '
  /^[[:space:]]*-[[:space:]]*platform:/ { sub(/.*platform:[[:space:]]*/, ""); p=$0 }
  /^[[:space:]]*path:/ { sub(/.*path:[[:space:]]*/, ""); print p, $0 }
' ds.manifest.yaml)

built=()
skipped=()
while read -r platform path; do
  [ -n "$platform" ] || continue
  triple=$(triple_for "$platform")
  if [ -z "$triple" ] || ! grep -qx "$triple" <<<"$installed"; then
    skipped+=("$platform (Rust target ${triple:-unknown} not installed)")
    continue
  fi
  exe=ds-porter
  [[ "$triple" == *windows* ]] && exe=ds-porter.exe
  if cargo build --release --locked -p porter-plugin --bin ds-porter --target "$triple"; then
    mkdir -p "$(dirname "$path")"
    cp "target/$triple/release/$exe" "$path"
    built+=("$platform -> $path")
  else
    skipped+=("$platform (build for $triple failed)")
  fi
done <<<"$pairs"

echo "built:"; for b in "${built[@]:-}"; do [ -n "$b" ] && echo "  $b"; done
if [ ${#skipped[@]} -gt 0 ]; then
  echo "not built:"; for s in "${skipped[@]}"; do echo "  $s"; done
fi
[ ${#built[@]} -gt 0 ]
