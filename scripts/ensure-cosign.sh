#!/usr/bin/env bash
# Builds the cosign CLI used by the signature tests (tests/tests/signatures_cosign.rs) from the Go
# module proxy into <target dir>/tools/cosign, once: an existing binary of the pinned version is reused.
set -euo pipefail
COSIGN_VERSION=v2.6.5
root="$(cd "$(dirname "$0")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
tools="$target/tools"
bin="$tools/cosign"
if [ -x "$bin" ] && "$bin" version 2>/dev/null | grep -q "GitVersion: *${COSIGN_VERSION}"; then
  exit 0
fi
mkdir -p "$tools"
# cosign reports its version from ldflags; stamp the pinned one so the reuse check above matches.
GOBIN="$tools" go install \
  -ldflags "-X sigs.k8s.io/release-utils/version.gitVersion=${COSIGN_VERSION}" \
  "github.com/sigstore/cosign/v2/cmd/cosign@${COSIGN_VERSION}"
"$bin" version >/dev/null
