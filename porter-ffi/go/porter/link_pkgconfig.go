//go:build porter_pkgconfig

package porter

// Header and link flags from pkg-config's porter-ffi.pc, which `make ffi` writes next to the
// library (target/<profile>/pkgconfig); put that directory on PKG_CONFIG_PATH.

// #cgo pkg-config: porter-ffi
import "C"
