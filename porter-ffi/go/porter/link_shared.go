//go:build porter_shared && !porter_pkgconfig

package porter

// The shared library libporter_ffi.so, searched in CGO_LDFLAGS's -L directories first and then
// in the repository's target/release, which is also the run-time search path (add yours with
// -Wl,-rpath in CGO_LDFLAGS).

// #cgo LDFLAGS: -L${SRCDIR}/../../../target/release -Wl,-rpath,${SRCDIR}/../../../target/release -lporter_ffi
import "C"
