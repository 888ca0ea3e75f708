//! DS's layer signatures (ds-contract §13) end to end against the real registry: ds-porter signs
//! on push and a Go program using only the standard library (`tests/dssig`, DS's algorithm)
//! verifies it; the Go program signs and ds-porter verifies; strict, permissive and disabled
//! policies through the CLI and through the go-plugin host; cached, layout and offline pulls
//! are checked the same way, and a refusal leaves nothing exported or recorded.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use porter_e2e::Registry;
use porter_e2e::cli::{Run, User};
use porter_e2e::go_host::{Launch, assert_error, assert_ok};
use porter_e2e::signing::{dssig_bin, host_platform};
use serde_json::{Value, json};

const PLUGIN_INDEX_TYPE: &str = "application/vnd.delivery-station.plugin.index.v1+json";
const PLUGIN_BINARY_TYPE: &str = "application/vnd.delivery-station.plugin.v1+binary";

/// A key pair made by `ds-porter key generate`.
struct Keys {
    private: PathBuf,
    public: PathBuf,
    id: String,
}

fn generate(user: &User, dir: &str) -> Keys {
    let out = user.path().join(dir);
    let run = user.run(&["key", "generate", "--out", out.to_str().unwrap()]);
    let result = run.ok();
    let keys = Keys {
        private: PathBuf::from(result["private_key"].as_str().unwrap()),
        public: PathBuf::from(result["public_key"].as_str().unwrap()),
        id: result["key_id"].as_str().unwrap().to_owned(),
    };
    assert_eq!(keys.id.len(), 64);
    keys
}

/// A two-platform release (this platform and linux/riscv64) as `ds.manifest.yaml` in `user`'s
/// directory; `plugin` gives it DS's plugin types, `signing_key` adds `signing-key:`.
fn release(user: &User, plugin: bool, signing_key: Option<&Path>) -> PathBuf {
    let dir = user.path().join("release");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("tool-host"), b"host platform binary").unwrap();
    fs::write(dir.join("tool-riscv"), b"riscv binary").unwrap();
    let mut yaml = String::new();
    if plugin {
        yaml.push_str(&format!("artifact-type: {PLUGIN_INDEX_TYPE}\n"));
    }
    if let Some(key) = signing_key {
        yaml.push_str(&format!("signing-key: {}\n", key.display()));
    }
    yaml.push_str("manifests:\n");
    for (platform, path) in [
        (host_platform(), "tool-host"),
        ("linux/riscv64".into(), "tool-riscv"),
    ] {
        yaml.push_str(&format!("  - platform: {platform}\n    path: {path}\n"));
        if plugin {
            yaml.push_str(&format!("    mediaType: {PLUGIN_BINARY_TYPE}\n"));
        }
    }
    let path = dir.join("ds.manifest.yaml");
    fs::write(&path, yaml).unwrap();
    path
}

/// A DS config file with `settings.porter.signature` (or `plugins.signature` for `plugins`).
fn policy_config(user: &User, name: &str, plugins: bool, policy: Value) -> String {
    let doc = if plugins {
        json!({"plugins": {"signature": policy}})
    } else {
        json!({"settings": {"porter": {"signature": policy}}})
    };
    let path = user.path().join(name);
    fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    path.display().to_string()
}

fn strict(user: &User, keys: &[&Keys]) -> String {
    let public: Vec<String> = keys
        .iter()
        .map(|k| k.public.display().to_string())
        .collect();
    policy_config(
        user,
        "strict.yaml",
        false,
        json!({"mode": "strict", "public_keys": public}),
    )
}

fn dssig(args: &[&str]) -> std::process::Output {
    Command::new(dssig_bin()).args(args).output().unwrap()
}

fn push(user: &User, manifest: &Path, reference: &str, extra: &[&str]) -> Value {
    let mut args = vec![
        "push",
        "--manifest",
        manifest.to_str().unwrap(),
        reference,
        "--insecure",
    ];
    args.extend_from_slice(extra);
    user.run_with(&args, &[("SOURCE_DATE_EPOCH", "1700000000")])
        .ok()
}

/// Pushes [`release`] to `repository` of `reg`, signed with `key` when given.
fn publish(
    user: &User,
    reg: &Registry,
    plugin: bool,
    repository: &str,
    key: Option<&Keys>,
) -> Value {
    let mut extra = Vec::new();
    if let Some(key) = key {
        extra = vec!["--sign-key", key.private.to_str().unwrap()];
    }
    push(
        user,
        &release(user, plugin, None),
        &reg.reference(repository),
        &extra,
    )
}

fn assert_refused(run: &Run, expected: &[&str]) {
    let err = run.fails();
    for part in expected {
        assert!(err.contains(part), "{part:?} not in {err}");
    }
    assert!(
        run.stdout().is_empty(),
        "stdout on failure: {}",
        run.stdout()
    );
}

#[test]
fn a_signed_push_verifies_with_dss_algorithm_in_the_go_standard_library() {
    let reg = Registry::start();
    let user = User::new();
    let keys = generate(&user, "keys");
    let other = generate(&user, "other");
    let manifest = release(&user, true, None);
    let reference = reg.reference("demo/signed:1.0");
    let pushed = push(
        &user,
        &manifest,
        &reference,
        &["--sign-key", keys.private.to_str().unwrap()],
    );
    assert_eq!(pushed["metadata"]["signature.key.id"], keys.id.as_str());

    for platform in [host_platform().as_str(), "linux/riscv64"] {
        let out = dssig(&[
            "verify",
            "-registry",
            &reg.host(),
            "-repo",
            "demo/signed",
            "-ref",
            "1.0",
            "-pub",
            keys.public.to_str().unwrap(),
            "-platform",
            platform,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["ok"], true);
        assert_eq!(report["layers"][0]["key_id"], keys.id.as_str());
        assert_eq!(report["layers"][0]["verified"], true);
    }
    // Another key is not trusted: the key id names the signer.
    let out = dssig(&[
        "verify",
        "-registry",
        &reg.host(),
        "-repo",
        "demo/signed",
        "-ref",
        "1.0",
        "-pub",
        other.public.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("key ID {} not found", keys.id)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn signed_pushes_are_reproducible_and_the_release_manifest_names_the_key() {
    let reg = Registry::start();
    let user = User::new();
    let keys = generate(&user, "keys");
    let by_flag = publish(&user, &reg, false, "demo/a:1", Some(&keys));
    let again = publish(&user, &reg, false, "demo/b:1", Some(&keys));
    let by_manifest = push(
        &user,
        &release(&user, false, Some(&keys.private)),
        &reg.reference("demo/c:1"),
        &[],
    );
    assert_eq!(by_flag["digest"], again["digest"]);
    assert_eq!(by_flag["digest"], by_manifest["digest"]);
    let unsigned = publish(&user, &reg, false, "demo/d:1", None);
    assert_ne!(by_flag["digest"], unsigned["digest"]);
    assert!(unsigned["metadata"].get("signature.key.id").is_none());
}

#[test]
fn strict_mode_accepts_a_signature_made_by_the_go_program_and_reports_the_key() {
    let reg = Registry::start();
    let user = User::new();
    let keys = generate(&user, "keys");
    publish(&user, &reg, false, "demo/go:1", None);
    let out = dssig(&[
        "sign",
        "-registry",
        &reg.host(),
        "-repo",
        "demo/go",
        "-ref",
        "1",
        "-key",
        keys.private.to_str().unwrap(),
        "-tag",
        "1-signed",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = strict(&user, &[&keys]);
    let result = user
        .run(&[
            "--config",
            &config,
            "pull",
            &reg.reference("demo/go:1-signed"),
            "--insecure",
            "--all-arch",
            "-o",
            "out",
        ])
        .ok();
    let mut platforms: Vec<(String, bool, String)> = result["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["scheme"], "ds");
            (
                s["platform"].as_str().unwrap().to_owned(),
                s["verified"].as_bool().unwrap(),
                s["key_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    platforms.sort();
    let mut expected = vec![
        (host_platform(), true, keys.id.clone()),
        ("linux/riscv64".to_owned(), true, keys.id.clone()),
    ];
    expected.sort();
    assert_eq!(platforms, expected);
    assert_eq!(
        fs::read(user.path().join("out/linux/riscv64/tool-riscv")).unwrap(),
        b"riscv binary"
    );
}

#[test]
fn strict_mode_refuses_unsigned_unknown_key_and_bad_signatures_before_exporting() {
    let reg = Registry::start();
    let user = User::new();
    let keys = generate(&user, "keys");
    let other = generate(&user, "other");
    publish(&user, &reg, false, "demo/unsigned:1", None);
    publish(&user, &reg, false, "demo/other:1", Some(&other));
    let config = strict(&user, &[&keys]);
    let platform = host_platform();
    let pull = |reference: &str| {
        user.run(&[
            "--config",
            &config,
            "pull",
            &reg.reference(reference),
            "--insecure",
            "-o",
            "out",
        ])
    };

    let run = pull("demo/unsigned:1");
    assert_refused(
        &run,
        &[
            "missing signature annotations on layer (strict mode)",
            &format!("platform {platform}"),
            "layer sha256:",
        ],
    );
    let run = pull("demo/other:1");
    assert_refused(
        &run,
        &[
            &format!("key ID {} not found in trusted keys", other.id),
            &format!("(key id {})", other.id),
        ],
    );

    // The other key's signature presented under the trusted key's id does not verify.
    let forged = forge_key_id(&reg, "demo/other", "1", &keys.id);
    let run = pull(&format!("demo/other@{forged}"));
    assert_refused(&run, &["signature verification failed", &keys.id]);

    assert!(!user.path().join("out").exists(), "something was exported");
    let listed = user.run(&["list"]).ok();
    assert_eq!(listed, json!([]), "a refused artifact was recorded");

    // Strict mode without a single trusted key fails before fetching anything.
    let empty = policy_config(&user, "nokeys.yaml", false, json!({"mode": "strict"}));
    let run = user.run(&[
        "--config",
        &empty,
        "pull",
        &reg.reference("demo/unsigned:1"),
        "--insecure",
    ]);
    assert!(
        run.fails().contains("no trusted public key was loaded"),
        "{}",
        run.stderr()
    );
}

/// Rewrites the key id annotations of the manifest of `tag`'s first platform to `key_id` and
/// pushes the manifest and an index for it; returns the index digest.
fn forge_key_id(reg: &Registry, repo: &str, tag: &str, key_id: &str) -> String {
    let get = |path: &str| -> Value {
        serde_json::from_slice(
            &reg.raw_get(&format!("/v2/{repo}/manifests/{path}"), None)
                .body,
        )
        .unwrap()
    };
    let mut index = get(tag);
    let child = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let mut manifest = get(&child);
    for layer in manifest["layers"].as_array_mut().unwrap() {
        layer["annotations"]["delivery-station.io/key.id"] = json!(key_id);
    }
    let body = serde_json::to_vec(&manifest).unwrap();
    let digest = reg.raw_put_manifest(
        repo,
        None,
        "application/vnd.oci.image.manifest.v1+json",
        &body,
    );
    index["manifests"] = json!([{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest, "size": body.len(),
        "platform": index["manifests"][0]["platform"].clone(),
    }]);
    let body = serde_json::to_vec(&index).unwrap();
    reg.raw_put_manifest(repo, None, "application/vnd.oci.image.index.v1+json", &body)
}

#[test]
fn permissive_mode_warns_about_unsigned_layers_only_when_allowed() {
    let reg = Registry::start();
    let user = User::new();
    let keys = generate(&user, "keys");
    let other = generate(&user, "other");
    publish(&user, &reg, false, "demo/unsigned:1", None);
    publish(&user, &reg, false, "demo/other:1", Some(&other));
    let public = keys.public.display().to_string();
    let allowing = policy_config(
        &user,
        "allow.yaml",
        false,
        json!({"mode": "permissive", "public_keys": [public], "allow_unsigned": true}),
    );
    let refusing = policy_config(
        &user,
        "refuse.yaml",
        false,
        json!({"mode": "permissive", "public_keys": [public], "allow_unsigned": false}),
    );
    let pull = |config: &str, reference: &str| {
        user.run(&[
            "--config",
            config,
            "pull",
            &reg.reference(reference),
            "--insecure",
        ])
    };

    let run = pull(&allowing, "demo/unsigned:1");
    let result = run.ok();
    assert_eq!(
        result["signatures"],
        json!([{"platform": host_platform(), "scheme": "ds", "verified": false}])
    );
    assert!(
        run.stderr().contains("layer is not signed"),
        "{}",
        run.stderr()
    );

    assert_refused(
        &pull(&refusing, "demo/unsigned:1"),
        &["layer is not signed"],
    );
    // A present signature must verify in permissive mode too.
    assert_refused(
        &pull(&allowing, "demo/other:1"),
        &[&format!("key ID {} not found in trusted keys", other.id)],
    );
    // `verify` does not accept what permissive mode lets through.
    let run = user.run(&[
        "--config",
        &allowing,
        "verify",
        &reg.reference("demo/unsigned:1"),
        "--insecure",
    ]);
    assert_eq!(run.code(), 1);
    assert!(run.stderr().contains("is not verified"), "{}", run.stderr());
}

#[test]
fn disabled_mode_checks_nothing_and_verify_says_so() {
    let reg = Registry::start();
    let user = User::new();
    publish(&user, &reg, false, "demo/t:1", None);
    let result = user
        .run(&["pull", &reg.reference("demo/t:1"), "--insecure"])
        .ok();
    assert!(result.get("signatures").is_none(), "{result}");
    let run = user.run(&["verify", &reg.reference("demo/t:1"), "--insecure"]);
    assert_eq!(run.code(), 1);
    assert!(
        run.stderr()
            .contains("settings.porter.signature has mode disabled"),
        "{}",
        run.stderr()
    );
}

#[test]
fn plugins_use_plugins_signature_and_other_artifacts_settings_porter_signature() {
    let reg = Registry::start();
    let user = User::new();
    let keys = generate(&user, "keys");
    publish(&user, &reg, true, "demo/plugin:1", None);
    publish(&user, &reg, false, "demo/other:1", None);
    let public = keys.public.display().to_string();
    let plugins_strict = policy_config(
        &user,
        "plugins.yaml",
        true,
        json!({"mode": "strict", "public_keys": [public]}),
    );
    let pull = |reference: &str| {
        user.run(&[
            "--config",
            &plugins_strict,
            "pull",
            &reg.reference(reference),
            "--insecure",
        ])
    };
    assert_refused(&pull("demo/plugin:1"), &["missing signature annotations"]);
    // settings.porter.signature stays disabled: the non-plugin artifact is not checked.
    assert!(pull("demo/other:1").ok().get("signatures").is_none());
}

#[test]
fn cached_layout_and_offline_pulls_are_checked_again() {
    let reg = Registry::start();
    let user = User::new();
    let keys = generate(&user, "keys");
    let manifest = release(&user, false, None);
    push(&user, &manifest, &reg.reference("demo/t:1"), &[]);
    // Cached without any policy …
    user.run(&["pull", &reg.reference("demo/t:1"), "--insecure"])
        .ok();
    let config = strict(&user, &[&keys]);
    // … is refused from the cache, online and offline.
    let run = user.run(&[
        "--config",
        &config,
        "pull",
        &reg.reference("demo/t:1"),
        "--insecure",
    ]);
    assert_refused(&run, &["missing signature annotations"]);
    let run = user.run(&[
        "--config",
        &config,
        "pull",
        &reg.reference("demo/t:1"),
        "--offline",
        "-o",
        "out",
    ]);
    assert_refused(&run, &["missing signature annotations"]);
    assert!(!user.path().join("out").exists());

    // OCI layouts: signed on push into the layout, verified on pull from it.
    let signed = format!("oci:{}:1.0", user.path().join("signed-layout").display());
    let unsigned = format!("oci:{}:1.0", user.path().join("unsigned-layout").display());
    push(
        &user,
        &manifest,
        &signed,
        &["--sign-key", keys.private.to_str().unwrap()],
    );
    push(&user, &manifest, &unsigned, &[]);
    let result = user.run(&["--config", &config, "pull", &signed]).ok();
    assert_eq!(result["signatures"][0]["verified"], true);
    assert_eq!(result["signatures"][0]["key_id"], keys.id.as_str());
    assert_refused(
        &user.run(&["--config", &config, "pull", &unsigned]),
        &["missing signature annotations"],
    );
}

#[test]
fn keys_are_written_in_dss_formats_and_never_overwritten() {
    let user = User::new();
    let keys = generate(&user, "keys");
    let private = fs::read_to_string(&keys.private).unwrap();
    let public = fs::read_to_string(&keys.public).unwrap();
    assert!(
        private.starts_with("-----BEGIN RSA PRIVATE KEY-----\n"),
        "{private}"
    );
    assert!(
        public.starts_with("-----BEGIN PUBLIC KEY-----\n"),
        "{public}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&keys.private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let run = user.run(&[
        "key",
        "generate",
        "--out",
        keys.private.parent().unwrap().to_str().unwrap(),
    ]);
    assert!(run.fails().contains("already exists"), "{}", run.stderr());
    assert_eq!(fs::read_to_string(&keys.private).unwrap(), private);

    let big = user
        .run(&["key", "generate", "--bits", "4096", "--out", "big"])
        .ok();
    assert_eq!(big["bits"], 4096);
    // Any other size is a command-line mistake (exit 2), refused before a key is made.
    let run = user.run(&["key", "generate", "--bits", "1024", "--out", "small"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(
        run.stderr().contains("possible values: 2048, 4096"),
        "{}",
        run.stderr()
    );
    assert!(!user.path().join("small").exists());

    // A passphrase-protected key is refused by name, before anything is uploaded.
    let encrypted = user.path().join("encrypted.pem");
    fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    fs::write(user.path().join("tool"), b"x").unwrap();
    let run = user.run(&[
        "push",
        "tool",
        "127.0.0.1:9/demo/x:1",
        "--sign-key",
        encrypted.to_str().unwrap(),
    ]);
    let err = run.fails();
    assert!(
        err.contains("passphrase-protected") && err.contains("encrypted.pem"),
        "{err}"
    );
}

/// Through the real go-plugin host, as DS runs it: DS's `Plugins.Signature` arrives in the
/// host-config JSON.
fn plugin_pull(reg: &Registry, reference: &str, signature: Value) -> Value {
    plugin_run(reg, "pull", reference, signature)
}

fn plugin_run(reg: &Registry, op: &str, reference: &str, signature: Value) -> Value {
    let launch = Launch::new();
    let config = json!({
        "Cache": {"Dir": launch.cache_root()},
        "Plugins": {"Signature": signature},
    });
    launch
        .config(&config.to_string())
        .execute(
            op,
            &[
                &format!("arg0={}", reg.reference(reference)),
                "insecure=true",
            ],
        )
        .run()
}

#[test]
fn the_plugin_applies_dss_strict_permissive_and_disabled_modes() {
    let reg = Registry::start();
    let user = User::new();
    let keys = generate(&user, "keys");
    publish(&user, &reg, true, "demo/plugin:unsigned", None);
    publish(&user, &reg, true, "demo/plugin:signed", Some(&keys));
    let public = keys.public.display().to_string();

    let strict = json!({"Mode": "strict", "PublicKeys": [public], "AllowUnsigned": false});
    let report = plugin_pull(&reg, "demo/plugin:signed", strict.clone());
    let stdout: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(stdout["signatures"][0]["key_id"], keys.id.as_str());
    assert_eq!(stdout["signatures"][0]["verified"], true);
    let report = plugin_pull(&reg, "demo/plugin:unsigned", strict);
    assert_error(&report, "signature check failed for");
    assert!(
        report["execute"]["error"]
            .as_str()
            .unwrap()
            .contains("missing signature annotations on layer (strict mode)")
    );

    let permissive = json!({"Mode": "permissive", "PublicKeys": [public], "AllowUnsigned": true});
    let report = plugin_pull(&reg, "demo/plugin:unsigned", permissive);
    let stdout: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(stdout["signatures"][0]["verified"], false);
    let warned = report["plugin_stderr"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains("layer is not signed"));
    assert!(warned, "{report:#}");
    let refusing = json!({"Mode": "permissive", "PublicKeys": [public], "AllowUnsigned": false});
    assert_error(
        &plugin_pull(&reg, "demo/plugin:unsigned", refusing),
        "signature check failed for",
    );

    let disabled = json!({"Mode": "disabled"});
    let report = plugin_pull(&reg, "demo/plugin:unsigned", disabled);
    let stdout: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert!(stdout.get("signatures").is_none());

    // `verify` is a DS operation too.
    let strict = json!({"Mode": "strict", "PublicKeys": [public]});
    let report = plugin_run(&reg, "verify", "demo/plugin:signed", strict);
    let stdout: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(stdout["verified"], true);
    assert_eq!(stdout["signatures"].as_array().unwrap().len(), 2);
}
