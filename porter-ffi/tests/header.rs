//! The committed C header is what cbindgen makes of the current source.
//!
//! `PORTER_FFI_BLESS=1 cargo test -p porter-ffi --test header` rewrites it.

use std::path::Path;

#[test]
fn committed_header_is_current() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .expect("read porter-ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("the header is UTF-8");

    let path = crate_dir.join("include").join("porter.h");
    if std::env::var_os("PORTER_FFI_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).expect("write include/porter.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "porter-ffi/include/porter.h is stale: regenerate it with \
         `PORTER_FFI_BLESS=1 cargo test -p porter-ffi --test header` and commit it"
    );
}

/// The header is valid C99 and C23 (where the enums get their `uint32_t` underlying type) and
/// C++, warning-free, for whatever compiler the caller uses.
#[test]
fn header_compiles_as_c_and_cxx_without_warnings() {
    let header = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("include")
        .join("porter.h");
    let cc = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let cxx = std::env::var_os("CXX").unwrap_or_else(|| "c++".into());
    for (compiler, language, standard) in [
        (&cc, "c", "-std=c99"),
        (&cc, "c", "-std=c2x"),
        (&cxx, "c++", "-std=c++17"),
    ] {
        let output = std::process::Command::new(compiler)
            .args([standard, "-Wall", "-Wextra", "-Werror", "-pedantic"])
            .args(["-fsyntax-only", "-x", language])
            .arg(&header)
            .output()
            .unwrap_or_else(|e| panic!("run {compiler:?}: {e}"));
        assert!(
            output.status.success(),
            "{compiler:?} {standard}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
