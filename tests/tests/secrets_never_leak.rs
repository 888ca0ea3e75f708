//! Credentials and tokens never appear in what ds-porter writes: stdout (JSON results), stderr
//! (messages, errors, trace logs, including the HTTP stack's own at `RUST_LOG=trace`), log
//! files, cache metadata — in the standalone CLI and in plugin mode through the real go-plugin
//! host. Every run below uses known secrets, succeeds or fails on purpose, and everything it
//! produced is scanned for them (also base64-encoded, as a `Basic` header would carry them).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use porter_e2e::cli::{Run, User};
use porter_e2e::go_host::go_host;
use porter_e2e::{
    EMPTY_CONFIG_DIGEST, EMPTY_CONFIG_MEDIA_TYPE, FakeRegistry, LayerSpec, OCI_MANIFEST_MEDIA_TYPE,
    Registry, Reply, block_on, ds_porter_bin, publish_single, sha256_digest,
};
use serde_json::json;

const USER: &str = "alice";
const PASSWORD: &str = "pw-7Q9x-SECRET-do-not-log";
const WRONG_PASSWORD: &str = "pw-WRONG-4kZ2-SECRET";
const TOKEN: &str = "tok-Zr81-SECRET-bearer";

/// The forms a secret could leak in.
fn secret_forms() -> Vec<String> {
    let mut forms = vec![
        PASSWORD.to_owned(),
        WRONG_PASSWORD.to_owned(),
        TOKEN.to_owned(),
    ];
    for pass in [PASSWORD, WRONG_PASSWORD] {
        forms.push(base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{pass}")));
    }
    forms
}

fn assert_clean(what: &str, text: &str) {
    for secret in secret_forms() {
        assert!(
            !text.contains(&secret),
            "{what} contains the secret {secret:?}:\n{text}"
        );
    }
}

fn assert_run_clean(what: &str, run: &Run) {
    assert_clean(&format!("{what} stdout"), &run.stdout());
    assert_clean(&format!("{what} stderr"), &run.stderr());
}

/// Every file under `dir` (cache metadata, `index.json`, log files, exports), except `skip`.
fn assert_files_clean(dir: &Path, skip: &[PathBuf]) {
    let mut stack = vec![dir.to_path_buf()];
    let mut visited = 0;
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            visited += 1;
            assert!(visited < 10_000, "too many files under {}", dir.display());
            if skip.contains(&path) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && meta.len() < 64 << 20 {
                let bytes = fs::read(&path).unwrap();
                assert_clean(
                    &path.display().to_string(),
                    &String::from_utf8_lossy(&bytes),
                );
            }
        }
    }
}

fn credentials(host: &str, password: &str) -> String {
    json!([{"Registry": host, "Username": USER, "Password": password}]).to_string()
}

#[test]
fn cli_runs_at_trace_level_never_print_credentials() {
    let reg = Registry::start_with_htpasswd(USER, PASSWORD);
    block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::pseudo_random("app", 3, 64 << 10)],
        &[],
    ));
    let user = User::new();
    fs::write(user.path().join("tool"), b"#!/bin/sh\necho tool\n").unwrap();
    let good = credentials(&reg.host(), PASSWORD);
    let wrong = credentials(&reg.host(), WRONG_PASSWORD);
    let reference = reg.reference("demo/app:1.0");
    let pushed = reg.reference("demo/pushed:1.0");
    let missing = reg.reference("demo/missing:1.0");
    let output = user.path().join("out").display().to_string();

    for rust_log in ["", "trace"] {
        let env = |creds: &str| {
            let mut env = vec![("DS_AUTH_CREDENTIALS", creds.to_owned())];
            if !rust_log.is_empty() {
                env.push(("RUST_LOG", rust_log.to_owned()));
            }
            env
        };
        let cases: Vec<(&str, Vec<&str>, &str, bool)> = vec![
            ("pull", vec!["pull", &reference, "--insecure"], &good, true),
            (
                "pull -o",
                vec!["pull", &reference, "--insecure", "-o", &output],
                &good,
                true,
            ),
            (
                "push",
                vec!["push", "tool", &pushed, "--insecure"],
                &good,
                true,
            ),
            ("list", vec!["list"], &good, true),
            ("verify", vec!["cache", "verify", "--insecure"], &good, true),
            (
                "missing",
                vec!["pull", &missing, "--insecure"],
                &good,
                false,
            ),
            (
                "wrong",
                vec!["pull", &reference, "--insecure"],
                &wrong,
                false,
            ),
            (
                "push wrong",
                vec!["push", "tool", &pushed, "--insecure"],
                &wrong,
                false,
            ),
        ];
        for (what, args, creds, succeeds) in cases {
            let mut args = args;
            args.extend(["--log-level", "trace"]);
            let env = env(creds);
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let run = user.run_with(&args, &env);
            assert_eq!(
                run.code() == 0,
                succeeds,
                "{what}: {}\n{}",
                run.stdout(),
                run.stderr()
            );
            if !succeeds {
                assert!(!run.stderr().is_empty());
            }
            assert_run_clean(&format!("{what} (RUST_LOG={rust_log})"), &run);
        }
    }
    assert_files_clean(user.path(), &[]);
}

#[test]
fn bearer_tokens_never_appear_in_output_or_errors() {
    let fake = FakeRegistry::start();
    let layer: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8).collect();
    let digest = sha256_digest(&layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": EMPTY_CONFIG_MEDIA_TYPE, "digest": EMPTY_CONFIG_DIGEST, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": digest, "size": layer.len(),
                    "annotations": {"org.opencontainers.image.title": "app"}}]
    }))
    .unwrap();
    let challenge = format!(
        r#"Bearer realm="{}",service="fake",scope="repository:demo/app:pull""#,
        fake.url("/token")
    );
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    fake.route_with_auth(
        "/token",
        &basic,
        Reply::ok("application/json", json!({"token": TOKEN}).to_string()),
        Reply::status(401),
    );
    let mut corrupt = layer.clone();
    corrupt[7] ^= 1;
    for (path, reply) in [
        (
            "/v2/demo/app/manifests/1.0".to_owned(),
            Reply::ok(OCI_MANIFEST_MEDIA_TYPE, manifest),
        ),
        (
            format!("/v2/demo/app/blobs/{EMPTY_CONFIG_DIGEST}"),
            Reply::blob(&b"{}"[..]),
        ),
        (format!("/v2/demo/app/blobs/{digest}"), Reply::blob(layer)),
        ("/v2/demo/bad/manifests/1.0".to_owned(), Reply::status(403)),
    ] {
        fake.route_with_auth(
            &path,
            &format!("Bearer {TOKEN}"),
            reply,
            Reply::challenge(&challenge),
        );
    }
    let user = User::new();
    let env = credentials(&fake.host(), PASSWORD);
    for rust_log in ["debug", "trace"] {
        let ok = user.run_with(
            &["pull", &fake.reference("demo/app:1.0"), "--insecure"],
            &[("DS_AUTH_CREDENTIALS", &env), ("RUST_LOG", rust_log)],
        );
        ok.ok();
        assert_run_clean("bearer pull", &ok);
        let denied = user.run_with(
            &["pull", &fake.reference("demo/bad:1.0"), "--insecure"],
            &[("DS_AUTH_CREDENTIALS", &env), ("RUST_LOG", rust_log)],
        );
        denied.fails();
        assert_run_clean("denied pull", &denied);
    }
    // The token really was used, so not finding it above means something.
    assert!(
        fake.seen()
            .iter()
            .any(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}")))
    );
    // A corrupt blob fails with the token in use; the error names the digest, not the token.
    fake.route_with_auth(
        &format!("/v2/demo/app/blobs/{digest}"),
        &format!("Bearer {TOKEN}"),
        Reply::blob(corrupt),
        Reply::challenge(&challenge),
    );
    let user = User::new();
    let bad = user.run_with(
        &[
            "pull",
            &fake.reference("demo/app:1.0"),
            "--insecure",
            "--log-level",
            "trace",
        ],
        &[("DS_AUTH_CREDENTIALS", &env)],
    );
    bad.fails();
    assert_run_clean("corrupt pull", &bad);
    assert_files_clean(user.path(), &[]);
}

// --- plugin mode, through the real go-plugin host (`tests/go-host`)

const HOST_TIMEOUT: Duration = Duration::from_secs(120);

fn wait_bounded(child: &mut std::process::Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one Execute through the host; returns the host's whole JSON report as text.
fn plugin_execute(dir: &Path, config: &str, op: &str, args: &[&str]) -> String {
    let config_path = dir.join("host-config.json");
    fs::write(&config_path, config).unwrap();
    let home = dir.join("home");
    fs::create_dir_all(&home).unwrap();
    let mut command = Command::new(go_host());
    command
        .arg("-plugin")
        .arg(ds_porter_bin())
        .arg("-config")
        .arg(&config_path)
        .args(["-op", op]);
    for arg in args {
        command.args(["-arg", arg]);
    }
    let output_path = dir.join("report.json");
    let output = fs::File::create(&output_path).unwrap();
    let mut child = command
        .current_dir(dir)
        .env("HOME", &home)
        .env("TMPDIR", dir)
        .env_remove("DS_CACHE_DIR")
        .env_remove("DS_AUTH_CREDENTIALS")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, HOST_TIMEOUT);
    let report = fs::read_to_string(&output_path).unwrap();
    fs::remove_file(&output_path).unwrap();
    assert!(status.success(), "go-host failed ({status}): {report}");
    report
}

#[test]
fn plugin_executions_at_trace_level_never_return_or_log_credentials() {
    let reg = Registry::start_with_htpasswd(USER, PASSWORD);
    block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::pseudo_random("app", 5, 32 << 10)],
        &[],
    ));
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/porter.log");
    let config = |password: &str| {
        json!({
            "Cache": {"Dir": dir.path().join("cache")},
            "Logging": {"Level": "trace", "Format": "json", "Output": log},
            "Registry": {"InsecureRegistries": [reg.host()]},
            "Auth": {"Credentials": [{"Registry": reg.host(), "Username": USER, "Password": password}]}
        })
        .to_string()
    };
    let reference = reg.reference("demo/app:1.0");
    let out = dir.path().join("out").display().to_string();
    let cases = [
        ("pull", vec![format!("arg0={reference}")], PASSWORD, true),
        (
            "pull",
            vec![format!("arg0={reference}"), format!("output={out}")],
            PASSWORD,
            true,
        ),
        ("list", vec![], PASSWORD, true),
        (
            "pull",
            vec![format!("arg0={}", reg.reference("demo/missing:1.0"))],
            PASSWORD,
            false,
        ),
        (
            "pull",
            vec![format!("arg0={reference}")],
            WRONG_PASSWORD,
            false,
        ),
    ];
    for (op, args, password, succeeds) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let report = plugin_execute(dir.path(), &config(password), op, &args);
        let parsed: serde_json::Value = serde_json::from_str(&report).unwrap();
        let error = parsed["execute"]["error"].as_str().unwrap_or_default();
        assert_eq!(error.is_empty(), succeeds, "{op} {args:?}: {report}");
        assert_clean(&format!("plugin {op} {args:?} report"), &report);
    }
    let config_path = dir.path().join("host-config.json");
    assert!(fs::read_to_string(&log).unwrap().lines().count() > 0);
    assert_files_clean(dir.path(), &[config_path]);
}

#[test]
fn mirror_urls_with_credentials_are_used_and_never_printed() {
    // The upstream has no credentials; the mirror (holding the same repository) demands the
    // ones in its URL.
    let upstream = Registry::start();
    let mirror = Registry::start_with_htpasswd(USER, PASSWORD);
    for reg in [&upstream, &mirror] {
        block_on(publish_single(
            reg,
            "demo/app:1.0",
            &[LayerSpec::pseudo_random("app", 5, 32 << 10)],
            &[],
        ));
    }
    let reference = upstream.reference("demo/app:1.0");
    let user = User::new();
    let with_creds = |host: &str| format!("http://{USER}:{PASSWORD}@{host}");
    for level in ["warn", "debug", "trace"] {
        // A reachable mirror: the credential in its URL is what lets the pull through it.
        let mark = mirror.mark();
        let run = user.run_with(
            &["pull", &reference, "--insecure", "--log-level", level],
            &[("DS_REGISTRY_MIRRORS", &with_creds(&mirror.host()))],
        );
        assert_run_clean(&format!("mirror pull at {level}"), &run);
        run.ok();
        assert!(
            mirror.requests_since(&mark).iter().any(|r| r.status == 200),
            "the mirror served the pull"
        );
        // An unreachable mirror: skipped with a warning that names it without its user info.
        let run = user.run_with(
            &["pull", &reference, "--insecure", "--log-level", level],
            &[("DS_REGISTRY_MIRRORS", &with_creds("127.0.0.1:1"))],
        );
        assert_run_clean(&format!("unreachable mirror at {level}"), &run);
        assert!(!run.stderr().contains(USER), "{}", run.stderr());
        run.ok();
    }
    assert_files_clean(&user.path().join("cache"), &[]);
}

/// The forms a private key could leak in: every base64 line of its PEM body and the key
/// material's DER as one base64 text.
fn key_forms(pem: &str) -> Vec<String> {
    let lines: Vec<&str> = pem
        .lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 16)
        .collect();
    let mut forms: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    forms.push(lines.concat());
    forms
}

fn assert_no_key(what: &str, text: &str, forms: &[String]) {
    for form in forms {
        assert!(
            !text.contains(form.as_str()),
            "{what} contains private key material {form:?}:\n{text}"
        );
    }
}

#[test]
fn signing_keys_never_appear_in_output_logs_or_errors() {
    let reg = Registry::start();
    let user = User::new();
    let generated = user.run(&["key", "generate", "--out", "keys"]).ok();
    let private = PathBuf::from(generated["private_key"].as_str().unwrap());
    let pem = fs::read_to_string(&private).unwrap();
    let forms = key_forms(&pem);
    // The same key with its DER damaged in the middle: it cannot be parsed.
    let broken = user.path().join("broken.pem");
    let mut lines: Vec<String> = pem.lines().map(str::to_owned).collect();
    let middle = lines.len() / 2;
    lines[middle] = lines[middle].chars().rev().collect();
    fs::write(&broken, lines.join("\n")).unwrap();
    fs::write(user.path().join("tool"), b"#!/bin/sh\necho tool\n").unwrap();
    let target = reg.reference("demo/signed:1.0");

    for (name, key, succeeds) in [
        ("signed push", &private, true),
        ("broken key", &broken, false),
    ] {
        let run = user.run_with(
            &[
                "--log-level",
                "trace",
                "push",
                "tool",
                &target,
                "--insecure",
                "--sign-key",
                key.to_str().unwrap(),
            ],
            &[("RUST_LOG", "trace")],
        );
        assert_eq!(run.code() == 0, succeeds, "{name}: {}", run.stderr());
        assert_no_key(&format!("{name} stdout"), &run.stdout(), &forms);
        assert_no_key(&format!("{name} stderr"), &run.stderr(), &forms);
    }
    let run = user.run(&["pull", &target, "--insecure", "-o", "out"]);
    assert_no_key("pull", &run.stdout(), &forms);
    for dir in [user.cache(), user.path().join("out")] {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().is_file() {
                let text = String::from_utf8_lossy(&fs::read(entry.path()).unwrap()).into_owned();
                assert_no_key(&entry.path().display().to_string(), &text, &forms);
            }
        }
    }

    // Plugin mode at trace level: the response and the log file.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("logs/porter.log");
    let config = json!({
        "Cache": {"Dir": dir.path().join("cache")},
        "Logging": {"Level": "trace", "Format": "json", "Output": log},
    })
    .to_string();
    let tool = user.path().join("tool").display().to_string();
    for key in [&private, &broken] {
        let report = plugin_execute(
            dir.path(),
            &config,
            "push",
            &[
                &format!("arg0={tool}"),
                &format!("arg1={}", reg.reference("demo/plugin:1")),
                "insecure=true",
                &format!("sign-key={}", key.display()),
            ],
        );
        assert_no_key("plugin report", &report, &forms);
    }
    assert_no_key("plugin log", &fs::read_to_string(&log).unwrap(), &forms);
}
