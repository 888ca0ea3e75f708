//! Exit codes and global flags as the README documents them: a command line that is wrong
//! exits 2 before any I/O (no registry request, no cache created); `--log-level`, `-q` and `-v`
//! choose what stderr shows; `NO_COLOR` turns colours off; a missing `--config` file is named.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use porter_e2e::cli::User;
use porter_e2e::{Registry, ds_porter_bin};

/// The example layout in the repository (a multi-platform "hello" plugin).
fn example_store() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/store");
    format!("oci:{}:1.0.0", fs::canonicalize(dir).unwrap().display())
}

#[test]
fn command_line_mistakes_exit_2_before_any_request() {
    let reg = Registry::start();
    let reference = reg.reference("demo/tool:1.0");
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "pull",
                &reference,
                "--all-arch",
                "--platform",
                "linux/amd64",
            ],
            "--all-arch cannot be combined with --platform",
        ),
        (
            &["pull", &reference, "--platform", "linux"],
            r#"invalid platform "linux", expected os/arch or os/arch/variant"#,
        ),
        (&["pull", "UPPER/x:1"], r#"invalid reference "UPPER/x:1""#),
        (
            &["pull", "oci-archive:foo.tar"],
            "the oci-archive transport is not supported; an OCI image layout directory is oci:<dir>",
        ),
        (
            &["pull", "127.0.0.1:5700"],
            "127.0.0.1:5700 names a registry but no repository",
        ),
        (&["pull"], "<REFERENCE>"),
        (&["push", "tool"], "<REFERENCE>"),
        (
            &["push", "--manifest", "m.yaml", "a", &reference],
            "with --manifest, give only the reference",
        ),
        (&["cache", "prune", "--max-size", "10XB"], "--max-size"),
        (&["cache", "prune", "--ttl", "soon"], "--ttl"),
        (&["--log-level", "loud", "list"], "loud"),
        (&["list", "--log-level", "verbose"], "verbose"),
        (&["-q", "--log-level", "info", "list"], "--quiet"),
        (&["list", "--format", "yaml"], "yaml"),
        (&["frobnicate"], "frobnicate"),
    ];
    for (args, expected) in cases {
        let user = User::new();
        let mark = reg.mark();
        let err = user.run(args).usage_error();
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(reg.requests_since(&mark).is_empty(), "{args:?}");
        assert!(
            !user.cache().exists(),
            "{args:?}: the cache was opened for a refused command line"
        );
    }
}

#[test]
fn every_documented_log_level_is_accepted() {
    let user = User::new();
    for level in ["error", "warn", "warning", "info", "debug", "trace"] {
        let run = user.run(&["list", "--log-level", level, "--format", "json"]);
        assert_eq!(run.code(), 0, "{level}: {}", run.stderr());
        assert_eq!(run.stdout(), "[]\n");
    }
}

#[test]
fn quiet_and_verbose_choose_what_stderr_shows() {
    let store = example_store();
    // `cache prune` logs each removed artifact at info level.
    let prune = |flags: &[&str], env: &[(&str, &str)]| {
        let user = User::new();
        user.run(&["pull", &store]).ok();
        let mut args = vec!["cache", "prune", "--max-size", "0"];
        args.extend_from_slice(flags);
        let run = user.run_with(&args, env);
        let report = run.ok();
        assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{flags:?}");
        run.stderr()
    };
    let info = "removed cached artifact";
    let configured_error = [("DS_LOGGING_LEVEL", "error")];
    assert!(prune(&[], &[]).contains(info), "default level is info");
    assert!(!prune(&["-q"], &[]).contains(info));
    assert!(!prune(&["--quiet"], &[]).contains(info));
    assert!(!prune(&[], &configured_error).contains(info));
    assert!(prune(&["-v"], &configured_error).contains(info), "-v wins");
    assert!(prune(&["--log-level", "info"], &configured_error).contains(info));
    // -q still shows warnings: an unknown configured level is one.
    let user = User::new();
    let run = user.run_with(&["-q", "list"], &[("DS_LOGGING_LEVEL", "LOUD")]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    assert!(
        run.stderr().contains("unknown log level"),
        "{}",
        run.stderr()
    );
}

/// Runs `ds-porter args` on a pseudo-terminal (util-linux `script`) and returns what it showed.
fn on_terminal(user: &User, args: &str, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("script");
    cmd.args([
        "-qec",
        &format!("{} {args}", ds_porter_bin().display()),
        "/dev/null",
    ])
    .current_dir(user.path())
    .env("HOME", user.path())
    .env("DS_CACHE_DIR", user.path().join("cache"))
    .env_remove("NO_COLOR")
    .env_remove("RUST_LOG");
    for (key, value) in env {
        cmd.env(key, value);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_color_turns_colours_off_on_a_terminal() {
    let user = User::new();
    let warn = ("DS_LOGGING_LEVEL", "LOUD");
    let coloured = on_terminal(&user, "list --format json", &[warn]);
    assert!(coloured.contains("unknown log level"), "{coloured:?}");
    assert!(
        coloured.contains("\x1b["),
        "colours on a terminal: {coloured:?}"
    );
    let plain = on_terminal(&user, "list --format json", &[warn, ("NO_COLOR", "1")]);
    assert!(plain.contains("unknown log level"), "{plain:?}");
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    // The empty string does not count (no-color.org).
    let empty = on_terminal(&user, "list --format json", &[warn, ("NO_COLOR", "")]);
    assert!(empty.contains("\x1b["), "{empty:?}");
}

#[test]
fn a_missing_config_file_is_named() {
    let user = User::new();
    let err = user.run(&["--config", "nope.yaml", "list"]).fails();
    assert!(
        err.contains("config file nope.yaml does not exist"),
        "{err}"
    );
    assert!(!err.contains("entity not found"), "{err}");
}

#[test]
fn insecure_never_applies_to_a_registry_the_reference_does_not_name() {
    let reg = Registry::start();
    let user = User::new();
    let mark = reg.mark();
    let err = user
        .run_with(
            &["pull", "tool:1.0", "--insecure"],
            &[("DS_REGISTRY_DEFAULT", &format!("{}/demo", reg.host()))],
        )
        .fails();
    assert!(
        err.contains("names no registry") && err.contains(&format!("{}/demo/tool:1.0", reg.host())),
        "{err}"
    );
    assert!(reg.requests_since(&mark).is_empty());
}
