package porter

// The header comes from the repository (porter-ffi/include). How the library is linked is
// chosen with build tags (see the package documentation): link_static.go (the default),
// link_shared.go (-tags porter_shared) and link_pkgconfig.go (-tags porter_pkgconfig).

// #cgo CFLAGS: -I${SRCDIR}/../../include
import "C"
