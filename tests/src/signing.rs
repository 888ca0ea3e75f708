//! The real signature tools the signature suites run against: the cosign CLI (built once from
//! the Go module proxy by `scripts/ensure-cosign.sh` into `<target>/tools/cosign`) and
//! `tests/dssig`, DS's layer signature algorithm written with the Go standard library.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use crate::go_host::{go_build, wait_bounded};

/// Upper bound for building cosign on a cold Go module cache.
const COSIGN_BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The cosign CLI, built by `scripts/ensure-cosign.sh` when missing (the script reuses a build
/// of the pinned version).
pub fn cosign_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("locate the running test executable");
        // <target>/<profile>/deps/<test>
        let target = exe
            .ancestors()
            .nth(3)
            .expect("the test executable lives in <target>/<profile>/deps")
            .to_path_buf();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/ensure-cosign.sh");
        let mut child = Command::new(&script)
            .env("CARGO_TARGET_DIR", &target)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
        let status =
            wait_bounded(&mut child, COSIGN_BUILD_TIMEOUT).expect("building cosign timed out");
        assert!(status.success(), "{} failed: {status}", script.display());
        let bin = target.join("tools").join("cosign");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
    .clone()
}

/// `tests/dssig`, built once per test binary.
pub fn dssig_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| go_build("dssig")).clone()
}

/// This machine's platform in Go's names (`linux/amd64`), as ds-porter reports it.
pub fn host_platform() -> String {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        arch => arch,
    };
    format!("{os}/{arch}")
}
