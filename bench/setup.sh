#!/usr/bin/env bash
# Installs and builds what bench.py needs: docker-registry, skopeo and curl (apt-get), the ORAS
# Python SDK in a virtualenv under target/, ds-porter (release) and the go-plugin test host with
# its reference Go plugin.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-deps.sh
for tool in curl:curl /usr/bin/time:time; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    apt-get install -y -qq "${tool##*:}" >/dev/null
  fi
done
if [ ! -x target/bench-venv/bin/python ]; then
  python3 -m venv target/bench-venv
  target/bench-venv/bin/pip install -q "oras==0.2.43"
fi
cargo build --release -p porter-plugin --bin ds-porter
(cd tests/go-host && go build -mod=readonly -o ../../target/go-host/ . ./refplugin)
# Case 8: the cgo caller linked against the release static library, and the handshake timer.
cargo build --release -p porter-ffi
(cd tests/cgo && CGO_LDFLAGS="-L$PWD/../../target/release" \
  go build -mod=readonly -ldflags=-extldflags=-Wl,--gc-sections -o ../../target/bench-cgo .)
cc -O2 -Wall -o target/bench-handshake bench/handshake.c
cc -O2 -Wall -o target/bench-floor bench/floor.c
