//! porter-ffi as its callers use it, in-process, against the real distribution registry on
//! 127.0.0.1: a Go program linking the C ABI through cgo (`tests/cgo`, statically as the README
//! documents, and against the shared library), and a Python script importing the
//! uniffi-generated module (`tests/python`). Both pull with platforms and export, list, export
//! from the cache, push, verify and prune the cache, hit the error paths, pull concurrently,
//! cancel a pull from another thread and observe progress; the callers' own checks decide, and
//! their stderr is shown when one fails.
//!
//! The library and the bindgen helper are built here (`cargo build -p porter-ffi -p
//! porter-ffi-bindgen`, same target dir and profile) so the callers never link a stale library.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use porter_e2e::{Registry, StandardFixtures, block_on, publish_large, publish_standard};

/// Building the library on a cold target dir takes minutes on two cores.
const CARGO_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const GO_BUILD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A caller's whole run (the callers also bound themselves).
const RUN_TIMEOUT: Duration = Duration::from_secs(6 * 60);
const POLL: Duration = Duration::from_millis(100);
/// Large enough that a pull cannot finish before the cancellation lands.
const LARGE_LAYER: u64 = 48 << 20;

/// The built library's directory (`target/<profile>`) and the bindgen helper.
struct Built {
    profile_dir: PathBuf,
    bindgen: PathBuf,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let mut dir = exe.parent().unwrap();
        if dir.ends_with("deps") {
            dir = dir.parent().unwrap();
        }
        let profile = dir.file_name().unwrap().to_string_lossy().into_owned();
        let profile = if profile == "debug" {
            "dev".into()
        } else {
            profile
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["build", "-p", "porter-ffi", "-p", "porter-ffi-bindgen"])
            .arg("--manifest-path")
            .arg(repo().join("Cargo.toml"))
            .arg("--target-dir")
            .arg(dir.parent().unwrap())
            .args(["--profile", &profile]);
        let status = run(command, CARGO_TIMEOUT, None);
        assert!(
            status.success(),
            "cargo build -p porter-ffi failed: {status}"
        );
        let built = Built {
            profile_dir: dir.to_path_buf(),
            bindgen: dir.join("uniffi-bindgen"),
        };
        for file in ["libporter_ffi.a", "libporter_ffi.so"] {
            assert!(
                built.profile_dir.join(file).is_file(),
                "{file} was not built"
            );
        }
        built
    })
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `command` to completion within `limit`; its output goes to `log` (or is inherited).
fn run(mut command: Command, limit: Duration, log: Option<&Path>) -> ExitStatus {
    command.stdin(Stdio::null());
    if let Some(log) = log {
        let file = File::create(log).unwrap();
        command.stdout(file.try_clone().unwrap()).stderr(file);
    }
    let mut child: Child = command
        .spawn()
        .unwrap_or_else(|e| panic!("could not run {command:?}: {e}"));
    let polls = limit.as_millis() / POLL.as_millis() + 1;
    let started = Instant::now();
    for _ in 0..polls {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        thread::sleep(POLL);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "{command:?} did not finish within {:?}",
        started.elapsed().min(limit)
    );
}

/// A registry with the fixtures the callers expect, and their environment.
struct Scenario {
    _registry: Registry,
    work: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

fn scenario() -> Scenario {
    let registry = Registry::start();
    let fixtures: StandardFixtures = block_on(publish_standard(&registry));
    let large = block_on(publish_large(&registry, "demo/large:1.0", 1, LARGE_LAYER));
    let work = tempfile::tempdir().unwrap();
    let refs = [
        &fixtures.app.reference,
        &fixtures.archive.reference,
        &fixtures.untitled.reference,
        &fixtures.plugininfo.reference,
        &fixtures.finalizer.reference,
        &fixtures.dockerlist.reference,
    ]
    .map(String::as_str)
    .join(",");
    let env = vec![
        ("PORTER_TEST_REGISTRY", registry.host()),
        ("PORTER_TEST_TOOL", fixtures.tool.reference.clone()),
        ("PORTER_TEST_TOOL_ID", fixtures.tool.id()),
        ("PORTER_TEST_REFS", refs),
        ("PORTER_TEST_LARGE", large.reference.clone()),
        (
            "PORTER_TEST_WORKDIR",
            work.path().join("run").display().to_string(),
        ),
    ];
    fs::create_dir_all(work.path().join("run")).unwrap();
    Scenario {
        _registry: registry,
        work,
        env,
    }
}

impl Scenario {
    /// Runs a caller with the scenario's environment (and a private HOME) and fails with its
    /// output unless it exits 0.
    fn run_caller(&self, mut command: Command, what: &str) {
        let home = self.work.path().join("home");
        fs::create_dir_all(&home).unwrap();
        command
            .env("HOME", &home)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        for name in ["DS_CACHE_DIR", "DS_CONFIG", "DOCKER_CONFIG"] {
            command.env_remove(name);
        }
        let log = self.work.path().join(format!("{what}.log"));
        let status = run(command, RUN_TIMEOUT, Some(&log));
        let output = fs::read_to_string(&log).unwrap_or_default();
        assert!(status.success(), "{what} failed ({status}):\n{output}");
        eprintln!("{output}");
    }
}

/// Builds `tests/cgo` against the library: statically (the default, with the documented link
/// flags) or with `-tags porter_shared` against `libporter_ffi.so`.
fn build_go_caller(shared: bool) -> PathBuf {
    let lib_dir = &built().profile_dir;
    let name = if shared {
        "porter-cgo-shared"
    } else {
        "porter-cgo"
    };
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let go = std::env::var_os("GO").unwrap_or_else(|| "go".into());
    let mut command = Command::new(go);
    command
        .args(["build", "-mod=readonly", "-o"])
        .arg(&out)
        .current_dir(repo().join("tests").join("cgo"))
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "1")
        .env("CGO_LDFLAGS_ALLOW", "-Wl,--gc-sections");
    if shared {
        command.args(["-tags", "porter_shared"]).env(
            "CGO_LDFLAGS",
            format!("-L{0} -Wl,-rpath,{0}", lib_dir.display()),
        );
    } else {
        command.env("CGO_LDFLAGS", format!("-L{}", lib_dir.display()));
    }
    command.arg(".");
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-build.log"));
    let status = run(command, GO_BUILD_TIMEOUT, Some(&log));
    assert!(
        status.success(),
        "go build of tests/cgo failed ({status}):\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    out
}

#[test]
fn go_links_the_static_library_and_pulls_lists_exports_pushes_and_cancels_in_process() {
    let caller = build_go_caller(false);
    scenario().run_caller(Command::new(caller), "cgo-static");
}

/// The same run under valgrind's memcheck: everything the library hands out is freed, and the
/// library leaks nothing itself. (The Go runtime's own accesses make memcheck report errors that
/// are not ours, so only the leak summary is judged.)
#[test]
fn go_caller_under_valgrind_loses_no_memory() {
    let caller = build_go_caller(false);
    let scenario = scenario();
    let log = scenario.work.path().join("valgrind.log");
    let mut command = Command::new("valgrind");
    command
        .args(["--leak-check=full", "--show-leak-kinds=definite,indirect"])
        .arg(format!("--log-file={}", log.display()))
        .arg(caller);
    scenario.run_caller(command, "cgo-valgrind");
    let report = fs::read_to_string(&log).unwrap();
    for kind in ["definitely lost", "indirectly lost"] {
        let line = report
            .lines()
            .find(|l| l.contains(kind))
            .unwrap_or_else(|| panic!("no {kind:?} line in the valgrind log:\n{report}"));
        assert!(line.ends_with(": 0 bytes in 0 blocks"), "{line}\n{report}");
    }
}

#[test]
fn go_links_the_shared_library_and_does_the_same() {
    let caller = build_go_caller(true);
    scenario().run_caller(Command::new(caller), "cgo-shared");
}

/// Generates the uniffi bindings for `language` into a fresh directory.
fn generate(language: &str) -> PathBuf {
    let built = built();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("uniffi")
        .join(language);
    let _ = fs::remove_dir_all(&out);
    let mut command = Command::new(&built.bindgen);
    command
        .args(["generate", "--library"])
        .arg(built.profile_dir.join("libporter_ffi.so"))
        .args(["--language", language, "--no-format", "--out-dir"])
        .arg(&out);
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("uniffi-{language}.log"));
    let status = run(command, GO_BUILD_TIMEOUT, Some(&log));
    assert!(
        status.success(),
        "uniffi-bindgen for {language} failed ({status}):\n{}",
        fs::read_to_string(&log).unwrap_or_default()
    );
    out
}

#[test]
fn python_imports_the_generated_module_and_pulls_lists_exports_pushes_and_cancels() {
    let module_dir = generate("python");
    assert!(module_dir.join("porter.py").is_file());
    fs::copy(
        built().profile_dir.join("libporter_ffi.so"),
        module_dir.join("libporter_ffi.so"),
    )
    .unwrap();
    let mut command = Command::new(std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into()));
    command
        .arg(repo().join("tests").join("python").join("test_porter.py"))
        .env("PYTHONPATH", &module_dir)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    scenario().run_caller(command, "python");
}

#[test]
fn kotlin_and_swift_bindings_generate_from_the_same_library() {
    let kotlin = generate("kotlin");
    let swift = generate("swift");
    let files = |dir: &Path| -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        // The generated trees are a few directories deep.
        for _ in 0..64 {
            let Some(next) = pending.pop() else { break };
            for entry in fs::read_dir(next).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else {
                    found.push(path.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
        found
    };
    let kotlin_files = files(&kotlin);
    assert!(
        kotlin_files.iter().any(|f| f == "porter.kt"),
        "{kotlin_files:?}"
    );
    let swift_files = files(&swift);
    for file in ["porter.swift", "porterFFI.h", "porterFFI.modulemap"] {
        assert!(swift_files.iter().any(|f| f == file), "{swift_files:?}");
    }
}
