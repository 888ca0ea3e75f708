# The README's two commands are `make run` and `make test`; .ci/run calls `make test`.

CARGO ?= cargo
GO ?= go
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
export DS_PORTER_COMMIT := $(COMMIT)
export DS_PORTER_BUILD_DATE := $(DATE)

.PHONY: build run test deps lint fmt clean release-build-all release-push go-host bench-plugin bench ffi cosign

## build: release binary at bin/ds-porter
build:
	$(CARGO) build --release -p porter-plugin --bin ds-porter
	mkdir -p bin && cp target/release/ds-porter bin/ds-porter

## release-build-all: bin/<os>/<arch>/ds-porter[.exe] for every ds.manifest.yaml platform whose Rust target is installed
release-build-all:
	./scripts/release-build-all.sh $(VERSION)

## release-push: push the built release with ds-porter itself (REF=registry/repo:tag)
release-push:
	$(CARGO) run -q --release -p porter-plugin --bin ds-porter -- push --manifest ds.manifest.yaml $(REF)

## run: pull the bundled example artifact and export this platform's binary into ./dist (offline)
run:
	$(CARGO) run -q -p porter-plugin --bin ds-porter -- pull oci:examples/store:1.0.0 -o dist

## deps: install the test suite's system packages when missing
deps:
	./scripts/ensure-deps.sh

## lint: formatting and clippy gates
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## go-host: check the generated stubs, vet and build the go-plugin v1.7.0 test host (tests/go-host) and its reference Go plugin
go-host:
	cd tests/go-host && ./gen.sh --check && $(GO) vet ./... && $(GO) build -mod=readonly -o ../../target/go-host/ . ./refplugin
	test -z "$$(gofmt -l tests/dssig)" || { gofmt -l tests/dssig; exit 1; }
	cd tests/dssig && $(GO) vet ./...

## bench-plugin: spawn → `list` through the go-plugin host, ds-porter vs a Go plugin (median of 20)
bench-plugin: build
	./tests/go-host/bench.sh 20

## bench: every benchmark case against skopeo, oras-py, curl and a Go plugin; writes target/bench.md
bench:
	./bench/setup.sh
	python3 bench/bench.py --runs 5 --out target/bench.md

## ffi: build porter-ffi (libporter_ffi.a and .so, pkgconfig/porter-ffi.pc beside them) and its uniffi-bindgen
## helper; gofmt and vet the Go package (porter-ffi/go/porter) and the cgo caller (tests/cgo); `cargo test --workspace`
## then runs the header and schema tests and the Go, cgo and Python suites (tests/tests/ffi_callers.rs)
FFI_LIB_DIR ?= $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)/debug
GO_FFI_DIRS := porter-ffi/go/porter tests/cgo
ffi:
	$(CARGO) build -p porter-ffi -p porter-ffi-bindgen
	./porter-ffi/go/install-pc.sh $(FFI_LIB_DIR)
	test -z "$$(gofmt -l $(GO_FFI_DIRS))" || { gofmt -l $(GO_FFI_DIRS); exit 1; }
	for dir in $(GO_FFI_DIRS); do (cd $$dir && CGO_LDFLAGS="-L$(FFI_LIB_DIR)" $(GO) vet ./...) || exit 1; done

## cosign: build the cosign CLI the signature tests run (once, into target/tools; reused when present)
cosign:
	./scripts/ensure-cosign.sh

## test: everything CI runs
test: deps lint go-host ffi cosign
	$(CARGO) build -p porter-plugin --bin ds-porter
	$(CARGO) test --workspace --no-fail-fast

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
	rm -rf bin dist
