//! Bad local inputs, one at a time, through the `ds-porter` command line: export destinations and
//! cache directories that cannot be written, push sources that cannot be read, malformed
//! configuration files and `DS_*` values. Each fails with exit code 1 and an error naming the
//! offending path or variable, within a bounded time, before any request when the input is
//! checked first, and leaves nothing half-written. (Release manifests are in `cli_push.rs`.)
//!
//! "Not writable" is played by a path under a regular file, which fails for root too; the
//! read-only-directory variants run only when permissions are enforced (not as root).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use porter_e2e::cli::{Run, User};
use porter_e2e::{LayerSpec, Registry, block_on, publish_index, publish_single};
use serde_json::Value;

/// Longest any single command may take on bad input.
const LIMIT: Duration = Duration::from_secs(60);

fn run(user: &User, args: &[&str], env: &[(&str, &str)]) -> Run {
    user.run_within(LIMIT, args, env)
}

/// Exit code 1, nothing on stdout, no panic, and every one of `parts` in the error.
fn refused(run: &Run, parts: &[&str]) -> String {
    let err = run.fails();
    assert!(!err.contains("panicked"), "{err}");
    for part in parts {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    err
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether file permissions bind this process (they do not for root).
fn permissions_are_enforced() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let locked = dir.path().join("locked");
    fs::create_dir(&locked).unwrap();
    set_mode(&locked, 0o555);
    let enforced = fs::write(locked.join("probe"), b"").is_err();
    set_mode(&locked, 0o755);
    if !enforced {
        eprintln!("running with permission overrides (root?): read-only variants skipped");
    }
    enforced
}

/// Every path under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// `cache verify` passes: whatever a failed command left in the cache is complete.
fn assert_cache_verifies(user: &User) {
    let report = run(user, &["cache", "verify"], &[]).ok();
    assert_eq!(report["corrupt"], Value::Array(vec![]), "{report}");
    assert_eq!(report["missing"], Value::Array(vec![]), "{report}");
}

#[test]
fn an_export_destination_that_cannot_be_written_is_named_and_no_file_is_half_written() {
    let reg = Registry::start();
    block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"app\n".to_vec())],
        &[],
    ));
    // windows/amd64 comes first in the index, so it is staged before linux/ fails.
    let entries = ["windows/amd64", "linux/amd64", "linux/arm64"].map(|platform| {
        (
            platform,
            vec![LayerSpec::binary(
                "tool",
                format!("tool for {platform}\n").into_bytes(),
            )],
        )
    });
    block_on(publish_index(&reg, "demo/tool:1.0", &entries, &[]));
    let app = reg.reference("demo/app:1.0");
    let tool = reg.reference("demo/tool:1.0");
    let user = User::new();
    let blocker = user.path().join("blocker");
    write(&blocker, b"keep");

    for output in ["blocker/out", "blocker/app.bin", "blocker/deeper/out"] {
        let err = refused(
            &run(&user, &["pull", &app, "--insecure", "-o", output], &[]),
            &[output],
        );
        assert!(err.contains("failed to export artifact"), "{err}");
        assert_eq!(fs::read(&blocker).unwrap(), b"keep");
    }

    let multi = user.path().join("multi");
    write(
        &multi.join("linux"),
        b"a file where a platform directory goes",
    );
    refused(
        &run(
            &user,
            &["pull", &tool, "--insecure", "--all-arch", "-o", "multi"],
            &[],
        ),
        &["multi/linux"],
    );
    // The export is all or nothing: windows/amd64, staged before linux/ failed, is not left
    // behind, and neither is any temporary name.
    assert_eq!(tree(&multi), ["linux"]);
    assert_eq!(
        fs::read(multi.join("linux")).unwrap(),
        b"a file where a platform directory goes"
    );

    if permissions_are_enforced() {
        let locked = user.path().join("locked");
        fs::create_dir(&locked).unwrap();
        set_mode(&locked, 0o555);
        let result = run(
            &user,
            &["pull", &app, "--insecure", "-o", "locked/out"],
            &[],
        );
        set_mode(&locked, 0o755);
        refused(&result, &["locked/out"]);
        assert_eq!(tree(&locked), Vec::<String>::new());
    }
    // The pulls themselves completed: the cache holds whole artifacts only.
    assert_cache_verifies(&user);
}

#[test]
fn a_cache_dir_that_cannot_be_created_fails_every_command_naming_it() {
    let reg = Registry::start();
    block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"app\n".to_vec())],
        &[],
    ));
    let user = User::new();
    write(&user.path().join("blocker"), b"keep");
    write(&user.path().join("tool"), b"a tool");
    let app = reg.reference("demo/app:1.0");
    let target = reg.reference("demo/pushed:1.0");
    let commands: [&[&str]; 6] = [
        &["pull", &app, "--insecure"],
        &["pull", &app, "--insecure", "-o", "out"],
        &["push", "tool", &target, "--insecure"],
        &["list"],
        &["cache", "verify"],
        &["cache", "prune", "--max-size", "0"],
    ];
    let mut dirs = vec![
        user.path().join("blocker/cache"),
        user.path().join("blocker"),
    ];
    let enforced = permissions_are_enforced();
    if enforced {
        let locked = user.path().join("locked");
        fs::create_dir(&locked).unwrap();
        set_mode(&locked, 0o555);
        dirs.push(locked);
    }
    for dir in &dirs {
        let dir_text = dir.to_str().unwrap();
        let named = format!("{dir_text}/porter");
        for args in commands {
            let mark = reg.mark();
            let err = refused(&run(&user, args, &[("DS_CACHE_DIR", dir_text)]), &[&named]);
            assert!(err.contains("cache"), "{args:?}: {err}");
            assert!(
                reg.requests_since(&mark).is_empty(),
                "{args:?} reached the registry"
            );
        }
    }
    assert_eq!(fs::read(user.path().join("blocker")).unwrap(), b"keep");
    assert!(!user.path().join("out").exists());
    if enforced {
        set_mode(&user.path().join("locked"), 0o755);
        assert_eq!(tree(&user.path().join("locked")), Vec::<String>::new());
    }
}

#[test]
fn a_push_source_that_cannot_be_read_fails_before_any_request() {
    let reg = Registry::start();
    let user = User::new();
    let home = user.path();
    write(&home.join("blocker"), b"keep");
    std::os::unix::fs::symlink("gone", home.join("dangling")).unwrap();
    mkfifo(&home.join("fifo"));
    write(&home.join("tree/bin/tool"), b"tool");
    mkfifo(&home.join("tree/bin/pipe"));
    let mut cases = vec![
        ("missing", "missing"),
        ("blocker/tool", "blocker/tool"),
        ("dangling", "dangling"),
        // Opening a FIFO for reading would wait for a writer forever.
        ("fifo", "fifo"),
        ("tree", "tree/bin/pipe"),
    ];
    if permissions_are_enforced() {
        write(&home.join("secret"), b"secret");
        set_mode(&home.join("secret"), 0o000);
        write(&home.join("closed/bin/tool"), b"tool");
        write(&home.join("closed/bin/key"), b"key");
        set_mode(&home.join("closed/bin/key"), 0o000);
        cases.extend([("secret", "secret"), ("closed", "closed/bin/key")]);
    }
    for (source, named) in cases {
        let mark = reg.mark();
        let target = reg.reference("demo/bad:1.0");
        refused(
            &run(&user, &["push", source, &target, "--insecure"], &[]),
            &[named],
        );
        assert!(
            reg.requests_since(&mark).is_empty(),
            "{source}: {:?}",
            reg.requests_since(&mark)
        );
        refused(
            &run(&user, &["push", source, "oci:layout:1.0"], &[]),
            &[named],
        );
        assert!(!home.join("layout").exists(), "{source}: layout created");
    }
    assert_eq!(fs::read(home.join("blocker")).unwrap(), b"keep");
}

#[test]
fn malformed_ds_variables_fail_naming_the_variable_before_any_request() {
    let reg = Registry::start();
    let user = User::new();
    let reference = reg.reference("demo/app:1.0");
    for (name, value) in [
        ("DS_CACHE_MAX_SIZE", "lots"),
        ("DS_CACHE_TTL", "a week"),
        ("DS_AUTH_CREDENTIALS", r#"[{"registry":"#),
        ("DS_AUTH_CREDENTIALS", r#"{"registry":"r.io"}"#),
        ("DS_AUTH_CREDENTIALS", r#"[{"registry":5}]"#),
        ("DS_REGISTRY_MIRRORS", "[1]"),
        ("DS_REGISTRY_INSECURE_REGISTRIES", "[oops"),
    ] {
        for args in [&["pull", &reference, "--insecure"][..], &["list"]] {
            let mark = reg.mark();
            let err = refused(&run(&user, args, &[(name, value)]), &[name]);
            assert!(
                err.contains("invalid configuration"),
                "{name}={value}: {err}"
            );
            assert!(reg.requests_since(&mark).is_empty(), "{name}={value}");
            assert!(
                !user.path().join("cache").exists(),
                "{name}={value}: the cache was opened"
            );
        }
    }
}

#[test]
fn a_malformed_proxy_url_fails_naming_the_setting_before_any_request() {
    // Regression: `ht!tp://` was accepted, then the pull retried five times on a DNS error that
    // named no setting.
    let reg = Registry::start();
    let user = User::new();
    let reference = reg.reference("demo/app:1.0");
    write(
        &user.path().join("proxy.yaml"),
        b"proxy:\n  https_proxy: 'ht!tp://'\n",
    );
    let refused_before_any_request =
        |config: &[&str], env: &[(&str, &str)], named: &str, shown: &str| {
            let mut args = config.to_vec();
            args.extend(["pull", &reference, "--insecure"]);
            let mark = reg.mark();
            let started = std::time::Instant::now();
            let err = refused(&run(&user, &args, env), &[named]);
            assert!(
                err.contains("invalid configuration") && err.contains("is not a valid proxy URL"),
                "{err}"
            );
            assert!(err.contains(&format!("{shown:?}")), "{err}");
            assert!(reg.requests_since(&mark).is_empty(), "{named}");
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{named}: no retries"
            );
            assert!(
                !user.path().join("cache").exists(),
                "{named}: the cache was opened"
            );
        };
    for (name, value) in [
        ("DS_PROXY_HTTP_PROXY", "ht!tp://"),
        ("DS_PROXY_HTTPS_PROXY", "http://"),
        ("HTTP_PROXY", "http://ht!tp:3128"),
    ] {
        refused_before_any_request(&[], &[(name, value)], name, value);
    }
    refused_before_any_request(
        &["--config", "proxy.yaml"],
        &[],
        "Proxy.HTTPSProxy",
        "ht!tp://",
    );
}

#[test]
fn unusable_porter_settings_are_ignored_with_a_warning() {
    // Regression: settings were read before the CLI's log subscriber existed, so these
    // warnings were lost and a typo silently fell back to the default.
    let user = User::new();
    for (name, value, key) in [
        (
            "DS_SETTINGS_PORTER_RETRIES",
            "lots",
            "settings.porter.retries",
        ),
        (
            "DS_SETTINGS_PORTER_RETRIES",
            "99",
            "settings.porter.retries",
        ),
        (
            "DS_SETTINGS_PORTER_REQUEST_TIMEOUT",
            "soon",
            "settings.porter.request_timeout",
        ),
    ] {
        let result = run(&user, &["list"], &[(name, value)]);
        assert_eq!(result.code(), 0, "{}", result.stderr());
        assert_eq!(result.stdout(), "[]\n");
        assert!(
            result.stderr().contains(key) && result.stderr().contains(value),
            "{name}={value}: {}",
            result.stderr()
        );
        let quiet = run(&user, &["--log-level", "error", "list"], &[(name, value)]);
        assert_eq!(quiet.code(), 0);
        assert_eq!(quiet.stderr(), "", "--log-level error silences it");
    }
}

#[test]
fn malformed_config_files_fail_naming_the_file() {
    let reg = Registry::start();
    let user = User::new();
    let reference = reg.reference("demo/app:1.0");
    for (file, yaml, detail) in [
        ("syntax.yaml", "cache: [\n", "line 2"),
        ("types.yaml", "cache:\n  dir: [1, 2]\n", "cache.dir"),
        (
            "list.yaml",
            "registry:\n  insecure_registries: 5\n",
            "registry.insecure_registries",
        ),
        ("size.yaml", "cache:\n  max_size: lots\n", "cache.max_size"),
    ] {
        write(&user.path().join(file), yaml.as_bytes());
        let mark = reg.mark();
        refused(
            &run(
                &user,
                &["--config", file, "pull", &reference, "--insecure"],
                &[],
            ),
            &[file, detail],
        );
        assert!(reg.requests_since(&mark).is_empty(), "{file}");
    }
    // The default file is read on every run and named the same way.
    let default = user.path().join(".config/ds/config.yaml");
    write(&default, b"cache: [\n");
    refused(&run(&user, &["list"], &[]), &[default.to_str().unwrap()]);
    fs::remove_file(&default).unwrap();

    // A docker config file is read when a registry needs credentials.
    let docker = user.path().join("docker.json");
    write(&docker, b"{not json");
    let mark = reg.mark();
    refused(
        &run(
            &user,
            &["pull", &reference, "--insecure"],
            &[("DS_AUTH_DOCKER_CONFIG", docker.to_str().unwrap())],
        ),
        &[docker.to_str().unwrap()],
    );
    assert!(reg.requests_since(&mark).is_empty());
}
