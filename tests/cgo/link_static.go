//go:build !porter_shared

package main

// The static archive (the default): the linker finds libporter_ffi.a through -L (CGO_LDFLAGS),
// the system libraries Rust's std needs come from `--print native-static-libs`, and
// --gc-sections drops the unused parts of the archive (allow it with
// CGO_LDFLAGS_ALLOW='-Wl,--gc-sections').

// #cgo LDFLAGS: -l:libporter_ffi.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc -Wl,--gc-sections
import "C"
