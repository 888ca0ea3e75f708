#!/usr/bin/env bash
# Regenerates pluginpb/ from ../../proto/ds_plugin.proto with the protoc that the Rust build
# uses (crate protoc-bin-vendored, fetched by cargo) and the Go plugins pinned in go.mod.
# go_plugin.proto is not generated for Go: go-plugin itself serves those services on the host.
# Run via `go generate ./...` in tests/go-host after changing the proto; `gen.sh --check` only
# verifies that the committed files are up to date.
set -euo pipefail
cd "$(dirname "$0")"
root=../..
cargo_home=${CARGO_HOME:-$HOME/.cargo}
( cd "$root" && cargo fetch -q )
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) platform=linux-x86_64 ;;
  Linux-aarch64) platform=linux-aarch_64 ;;
  Darwin-*) platform=macos-aarch_64 ;;
  *) echo "gen.sh: no vendored protoc for $(uname -sm)" >&2; exit 1 ;;
esac
protoc=$(ls -d "$cargo_home"/registry/src/*/protoc-bin-vendored-"$platform"-*/bin/protoc | sort -V | tail -1)
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
dest=pluginpb
if [ "${1:-}" = --check ]; then
  dest=$bin/pluginpb
  mkdir -p "$dest"
fi
go build -o "$bin/" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc
"$protoc" \
  --plugin=protoc-gen-go="$bin/protoc-gen-go" \
  --plugin=protoc-gen-go-grpc="$bin/protoc-gen-go-grpc" \
  -I "$root/proto" \
  --go_out="$dest" --go_opt=paths=source_relative \
  --go-grpc_out="$dest" --go-grpc_opt=paths=source_relative \
  ds_plugin.proto
if [ "$dest" != pluginpb ] && ! diff -r pluginpb "$dest" >&2; then
  echo "gen.sh: tests/go-host/pluginpb is stale; run tests/go-host/gen.sh and commit the result" >&2
  exit 1
fi
