//go:build porter_shared

package main

// The shared library (go build -tags porter_shared): -L and -Wl,-rpath to its directory come
// from CGO_LDFLAGS.

// #cgo LDFLAGS: -lporter_ffi
import "C"
