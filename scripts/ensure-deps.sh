#!/usr/bin/env bash
# Installs what the test suite needs when it is missing: the CNCF distribution registry
# (Debian `docker-registry`), skopeo (used to check that the cache is a valid OCI layout) and
# valgrind (the cgo caller of porter-ffi runs under memcheck), zsh and fish (the completion
# scripts are loaded in them).
set -euo pipefail

missing=()
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v fish >/dev/null 2>&1 || missing+=(fish)
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a system registry on :5000; the tests start their own.
if command -v systemctl >/dev/null 2>&1; then
  $sudo systemctl disable --now docker-registry >/dev/null 2>&1 || true
fi
