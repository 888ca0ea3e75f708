//! porter-ffi as its callers use it, in-process, against the real distribution registry on
//! 127.0.0.1: the Go package `porter-ffi/go/porter` (its own tests and runnable examples, linked
//! through pkg-config), the Go program `tests/cgo` built on that package (statically with
//! `--gc-sections`, against the shared library, and under valgrind's memcheck), and a Python
//! script importing the uniffi-generated module (`tests/python`). They pull with platforms and
//! export, list, export from the cache, inspect, list tags, copy, push, verify, prune and remove
//! from the cache, hit the error paths, pull concurrently, cancel pulls, copies and exports
//! (also exiting at once), close a client while it pulls, run into deadlines, observe progress
//! and validate every result against the JSON Schemas; the callers' own checks decide, and
//! their output is shown when one fails.
//!
//! The library and the bindgen helper are built here (`cargo build -p porter-ffi -p
//! porter-ffi-bindgen`, same target dir and profile) so the callers never link a stale library,
//! and the pkg-config file is written next to it as `make ffi` does.
#![allow(clippy::unwrap_used)]

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use porter_e2e::{
    LayerSpec, Registry, StandardFixtures, block_on, publish_index, publish_large, publish_standard,
};

/// Building the library on a cold target dir takes minutes on two cores.
const CARGO_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const GO_BUILD_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// A caller's whole run (the callers also bound themselves).
const RUN_TIMEOUT: Duration = Duration::from_secs(6 * 60);
const POLL: Duration = Duration::from_millis(100);
/// Large enough that a pull cannot finish before the cancellation lands.
const LARGE_LAYER: u64 = 48 << 20;
/// Each platform's layer in the six-platform index: large enough that exporting all six takes
/// long enough for cancellations to land during it.
const SIX_LAYER: usize = 12 << 20;

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
        // Cargo gives this test the package's variables (`CARGO_MANIFEST_DIR`, `CARGO_PKG_NAME`,
        // …). Build scripts (ring's) rerun when those change, so passing them on would rebuild
        // the dependencies the outer `cargo test` built, and everything above them, every run.
        for (name, _) in std::env::vars_os() {
            let Some(name) = name.to_str() else { continue };
            let inherited = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
                || matches!(
                    name,
                    "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "OUT_DIR"
                );
            if inherited {
                command.env_remove(name);
            }
        }
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
        let mut command = Command::new(repo().join("porter-ffi").join("go").join("install-pc.sh"));
        command.arg(&built.profile_dir);
        let status = run(command, GO_BUILD_TIMEOUT, None);
        assert!(status.success(), "install-pc.sh failed: {status}");
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
    let six_platforms = [
        "linux/amd64",
        "linux/arm64",
        "darwin/amd64",
        "darwin/arm64",
        "windows/amd64",
        "windows/arm64",
    ];
    let entries: Vec<(&str, Vec<LayerSpec>)> = six_platforms
        .iter()
        .enumerate()
        .map(|(i, platform)| {
            let data: Vec<u8> = (0..SIX_LAYER).map(|b| (b % 251) as u8 ^ i as u8).collect();
            (*platform, vec![LayerSpec::binary("tool", data)])
        })
        .collect();
    let six = block_on(publish_index(&registry, "demo/six:1.0", &entries, &[]));
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
        ("PORTER_TEST_SIX", six.reference.clone()),
        (
            "PORTER_TEST_SCHEMAS",
            repo()
                .join("porter-ffi")
                .join("schema")
                .display()
                .to_string(),
        ),
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
    /// output unless it exits 0; returns the output.
    fn run_caller(&self, mut command: Command, what: &str) -> String {
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
        output
    }

    /// The value the scenario gives the environment variable `name`.
    fn var(&self, name: &str) -> &str {
        let (_, value) = self.env.iter().find(|(k, _)| *k == name).unwrap();
        value
    }
}

/// Builds `tests/cgo` against the library through the Go package: statically (the package's
/// default, with `--gc-sections` as its documentation recommends) or with `-tags porter_shared`
/// against `libporter_ffi.so`.
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
        .env("CGO_ENABLED", "1");
    if shared {
        command.args(["-tags", "porter_shared"]).env(
            "CGO_LDFLAGS",
            format!("-L{0} -Wl,-rpath,{0}", lib_dir.display()),
        );
    } else {
        command
            .arg("-ldflags=-extldflags=-Wl,--gc-sections")
            .env("CGO_LDFLAGS", format!("-L{}", lib_dir.display()));
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

/// The Go package's own tests and runnable examples (on the repository's example layout, and
/// inspect, tags, copy and cache remove against the registry with the standard fixtures), with
/// every flag taken from the pkg-config file the build writes.
#[test]
fn go_package_tests_and_examples_pass_linked_through_pkg_config() {
    let built = built();
    let registry = Registry::start();
    let fixtures: StandardFixtures = block_on(publish_standard(&registry));
    let go = std::env::var_os("GO").unwrap_or_else(|| "go".into());
    let mut command = Command::new(go);
    command
        .args([
            "test",
            "-count=1",
            "-v",
            "-tags",
            "porter_pkgconfig",
            "./...",
        ])
        .current_dir(repo().join("porter-ffi").join("go").join("porter"))
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "1")
        .env("PKG_CONFIG_PATH", built.profile_dir.join("pkgconfig"))
        .env("PORTER_TEST_REGISTRY", registry.host())
        .env("PORTER_TEST_TOOL", &fixtures.tool.reference)
        .env("PORTER_TEST_TOOL_DIGEST", &fixtures.tool.digest)
        .env_remove("CGO_LDFLAGS");
    let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join("go-package-test.log");
    let status = run(command, GO_BUILD_TIMEOUT, Some(&log));
    let output = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "go test of porter-ffi/go/porter failed ({status}):\n{output}"
    );
    for name in [
        "Example",
        "ExampleError",
        "ExampleClient_Export",
        "ExampleClient_Inspect",
        "ExampleProgressFunc",
        "TestInspectOfAnIndexInTheRegistryListsItsPlatforms",
        "TestTagsNarrowedByASemverConstraint",
        "TestCopyFromTheRegistryToALayoutKeepsTheDigest",
        "TestCacheRemoveOfAPulledEntryLeavesTheCacheEmpty",
    ] {
        assert!(
            output.contains(&format!("--- PASS: {name} ")),
            "{name} did not run:\n{output}"
        );
    }
}

#[test]
fn go_links_the_static_library_and_pulls_lists_exports_pushes_and_cancels_in_process() {
    let caller = build_go_caller(false);
    let scenario = scenario();
    scenario.run_caller(Command::new(&caller), "cgo-static");

    // Benchmark case 8 runs the same program in its benchmark mode.
    let mut bench = Command::new(&caller);
    bench
        .env("PORTER_BENCH_RUNS", "2")
        .env("PORTER_BENCH_REF", scenario.var("PORTER_TEST_SIX"))
        .env("PORTER_BENCH_PLATFORM", "linux/arm64");
    let output = scenario.run_caller(bench, "cgo-bench");
    let last = output.lines().last().unwrap_or_default();
    let timings: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("benchmark mode printed {last:?}: {e}\n{output}"));
    let millis = timings["millis"].as_array().unwrap();
    assert!(
        millis.len() == 2 && millis.iter().all(|m| m.as_f64().unwrap() > 0.0),
        "{timings}"
    );
}

/// The same run under valgrind's memcheck, with the Go runtime's own reports suppressed
/// (`porter-ffi/go/porter/valgrind-go.supp`): everything the library hands out is freed, the
/// library leaks nothing itself, and no report points into the library (C or Rust code).
#[test]
fn go_caller_under_valgrind_loses_no_memory_and_reports_no_error() {
    let caller = build_go_caller(false);
    let scenario = scenario();
    let log = scenario.work.path().join("valgrind.log");
    let suppressions = repo()
        .join("porter-ffi")
        .join("go")
        .join("porter")
        .join("valgrind-go.supp");
    let mut command = Command::new("valgrind");
    command
        .args([
            "--leak-check=full",
            "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect",
        ])
        .arg(format!("--suppressions={}", suppressions.display()))
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
    let summary = report
        .lines()
        .find(|l| l.contains("ERROR SUMMARY"))
        .unwrap_or_else(|| panic!("no error summary in the valgrind log:\n{report}"));
    assert!(
        summary.contains("ERROR SUMMARY: 0 errors"),
        "{summary}\n{report}"
    );
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
