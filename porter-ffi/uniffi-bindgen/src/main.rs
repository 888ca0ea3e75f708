//! `uniffi-bindgen`: generates porter-ffi's Python, Kotlin and Swift bindings from the built
//! library (`generate --library target/debug/libporter_ffi.so --language python --out-dir DIR`).
//!
//! It is a separate package so the library itself never builds uniffi's code generators, and it
//! is left out of the workspace's default members like the library.

fn main() {
    uniffi::uniffi_bindgen_main()
}
