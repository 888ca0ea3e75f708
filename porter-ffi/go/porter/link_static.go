//go:build linux && !porter_shared && !porter_pkgconfig

package porter

// The static archive libporter_ffi.a, searched in CGO_LDFLAGS's -L directories first and then
// in the repository's target/release; -l: picks the archive even when libporter_ffi.so sits
// beside it. The system libraries are those Rust's standard library needs on Linux
// (`cargo rustc -p porter-ffi --release --lib --crate-type staticlib -- --print
// native-static-libs`).

// #cgo LDFLAGS: -L${SRCDIR}/../../../target/release -l:libporter_ffi.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
import "C"
