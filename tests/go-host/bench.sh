#!/usr/bin/env bash
# Plugin round-trip benchmark (design.md §8): median spawn → `list` result through the go-plugin
# host over N launches, ds-porter (release build) next to refplugin (a minimal go-plugin DS plugin
# doing the same work), alternating in the same run. Usage: bench.sh [N] (default 20).
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:-20}
root=$(cd ../.. && pwd)
out=$root/target/go-host
go build -mod=readonly -o "$out/" . ./refplugin
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '{"Cache":{"Dir":"%s"}}' "$work/cache" > "$work/config.json"
median() { python3 -c 'import json,sys; r=json.load(sys.stdin); assert not r["errors"], r["errors"]; print(r["rpcs"]["median_result_millis"], r["rpcs"]["median_total_millis"])'; }
for plugin in "$root/target/release/ds-porter" "$out/refplugin"; do
  read -r result total < <("$out/go-host" -plugin "$plugin" -bench "$runs" -op list -config "$work/config.json" | median)
  printf '%-12s median spawn→result %7.2f ms   spawn→exited %7.2f ms   (%s runs)\n' "$(basename "$plugin")" "$result" "$total" "$runs"
done
