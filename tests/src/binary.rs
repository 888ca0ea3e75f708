//! Where the `ds-porter` binary under test is.
//!
//! The binary belongs to another package, so Cargo does not build it for these tests
//! (`CARGO_BIN_EXE_*` exists only for a package's own binaries). It is looked up next to the
//! test executable and built on first use when it is missing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

/// Environment variable naming the binary under test.
const BIN_ENV: &str = "DS_PORTER_BIN";
/// Upper bound for building the binary on first use.
const BUILD_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const BUILD_POLL: Duration = Duration::from_millis(200);

/// The `ds-porter` binary: `$DS_PORTER_BIN` if set, else `ds-porter` in the profile directory
/// of the running test executable (`target/debug/` for `target/debug/deps/<test>`).
///
/// When that file does not exist, runs `cargo build -p porter-plugin --bin ds-porter` (once per
/// process, same target dir and profile) and panics with cargo's status if the build fails.
pub fn ds_porter_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("locate the running test executable");
        match locate(std::env::var_os(BIN_ENV), &exe) {
            Located::FromEnv(bin) => {
                assert!(
                    bin.is_file(),
                    "{BIN_ENV}={} does not name a file",
                    bin.display()
                );
                bin
            }
            Located::InProfileDir {
                bin,
                target_dir,
                profile,
            } => {
                if !bin.is_file() {
                    build(&target_dir, &profile);
                    assert!(
                        bin.is_file(),
                        "cargo build succeeded but {} does not exist",
                        bin.display()
                    );
                }
                bin
            }
        }
    })
    .clone()
}

#[derive(Debug, PartialEq, Eq)]
enum Located {
    FromEnv(PathBuf),
    InProfileDir {
        bin: PathBuf,
        target_dir: PathBuf,
        profile: String,
    },
}

fn locate(env: Option<OsString>, exe: &Path) -> Located {
    if let Some(bin) = env.filter(|v| !v.is_empty()) {
        return Located::FromEnv(PathBuf::from(bin));
    }
    let mut dir = exe
        .parent()
        .unwrap_or_else(|| panic!("test executable {} has no parent directory", exe.display()));
    if dir.file_name().is_some_and(|name| name == "deps") {
        dir = dir.parent().unwrap_or(dir);
    }
    let profile = dir
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| panic!("cannot tell the cargo profile from {}", dir.display()));
    let target_dir = dir
        .parent()
        .unwrap_or_else(|| panic!("cannot tell the target dir from {}", dir.display()))
        .to_path_buf();
    Located::InProfileDir {
        bin: dir.join(format!("ds-porter{}", std::env::consts::EXE_SUFFIX)),
        target_dir,
        profile,
    }
}

fn build(target_dir: &Path, profile: &str) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    // The `debug` directory belongs to the `dev` profile.
    let profile = if profile == "debug" { "dev" } else { profile };
    let mut command = Command::new(&cargo);
    command
        .args(["build", "-p", "porter-plugin", "--bin", "ds-porter"])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .args(["--profile", profile]);
    eprintln!("ds-porter binary missing; running {command:?}");
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {}: {e}", Path::new(&cargo).display()));
    let deadline = Instant::now() + BUILD_TIMEOUT;
    let max_polls = BUILD_TIMEOUT.as_millis() / BUILD_POLL.as_millis() + 1;
    for _ in 0..max_polls {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => panic!(
                "`cargo build -p porter-plugin --bin ds-porter` failed ({status}); \
                 build the binary or set {BIN_ENV}"
            ),
            Ok(None) if Instant::now() < deadline => thread::sleep(BUILD_POLL),
            Ok(None) => break,
            Err(e) => panic!("waiting for cargo build failed: {e}"),
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("`cargo build -p porter-plugin --bin ds-porter` took longer than {BUILD_TIMEOUT:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_wins() {
        assert_eq!(
            locate(
                Some("/opt/ds-porter".into()),
                Path::new("/w/target/debug/deps/t-1")
            ),
            Located::FromEnv("/opt/ds-porter".into())
        );
    }

    #[test]
    fn the_binary_sits_in_the_test_executables_profile_dir() {
        let exe_suffix = std::env::consts::EXE_SUFFIX;
        assert_eq!(
            locate(Some("".into()), Path::new("/w/target/release/deps/t-1")),
            Located::InProfileDir {
                bin: format!("/w/target/release/ds-porter{exe_suffix}").into(),
                target_dir: "/w/target".into(),
                profile: "release".into(),
            }
        );
    }
}
