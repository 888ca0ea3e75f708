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
# One launch per go-host call, alternating the two plugins, so load from other processes hits
# both alike; the medians are taken over all launches.
result() { python3 -c 'import json,sys; r=json.load(sys.stdin); assert not r["errors"], r["errors"]; print(r["bench"]["result_millis"][0], r["bench"]["total_millis"][0])'; }
plugins=("$root/target/release/ds-porter" "$out/refplugin")
declare -A results totals
for ((i = 0; i < runs; i++)); do
  for plugin in "${plugins[@]}"; do
    read -r r t < <("$out/go-host" -plugin "$plugin" -bench 1 -op list -config "$work/config.json" | result)
    results[$plugin]+="$r "
    totals[$plugin]+="$t "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for plugin in "${plugins[@]}"; do
  printf '%-12s median spawn→result %7.2f ms   spawn→exited %7.2f ms   (%s runs)\n' "$(basename "$plugin")" \
    "$(median <<<"${results[$plugin]}")" "$(median <<<"${totals[$plugin]}")" "$runs"
done
