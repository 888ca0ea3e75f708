//! cosign interoperability against the real registry and the real cosign CLI (built once by
//! `scripts/ensure-cosign.sh`): cosign signs and ds-porter verifies — and refuses a wrong key, a
//! tampered artifact, a signature for another digest or another repository, an unsigned
//! artifact — and ds-porter signs and `cosign verify` accepts. Key-based only: no
//! transparency log (`--tlog-upload=false`, `--insecure-ignore-tlog=true`).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use porter_e2e::Registry;
use porter_e2e::cli::{Run, User};
use porter_e2e::go_host::{Launch, assert_ok};
use porter_e2e::signing::{cosign_bin, host_platform};
use serde_json::{Value, json};
use sha2::Digest as _;

const PASSWORD: &str = "cosign-pass-Hq2";

/// Runs cosign with its own HOME, the key password, and plain HTTP allowed to the registry.
fn cosign(home: &Path, args: &[&str]) -> Output {
    Command::new(cosign_bin())
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env("COSIGN_PASSWORD", PASSWORD)
        .env("TUF_ROOT", home.join(".sigstore"))
        .output()
        .unwrap()
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `cosign generate-key-pair` in `<home>/<dir>`: (encrypted private key, public key).
fn cosign_keys(home: &Path, dir: &str) -> (PathBuf, PathBuf) {
    let dir = home.join(dir);
    fs::create_dir_all(&dir).unwrap();
    let out = cosign(&dir, &["generate-key-pair"]);
    assert_success("generate-key-pair", &out);
    (dir.join("cosign.key"), dir.join("cosign.pub"))
}

/// Hex SHA-256 of the DER in a PEM public key file: the key id ds-porter reports.
fn key_id(public: &Path) -> String {
    let text = fs::read_to_string(public).unwrap();
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap();
    hex::encode(sha2::Sha256::digest(der))
}

fn cosign_sign(home: &Path, key: &Path, reference: &str) {
    let out = cosign(
        home,
        &[
            "sign",
            "--key",
            key.to_str().unwrap(),
            "--tlog-upload=false",
            "--allow-http-registry",
            "--allow-insecure-registry",
            "-y",
            reference,
        ],
    );
    assert_success("cosign sign", &out);
}

fn cosign_verify(home: &Path, public: &Path, reference: &str) -> Output {
    cosign(
        home,
        &[
            "verify",
            "--key",
            public.to_str().unwrap(),
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            "--allow-insecure-registry",
            reference,
        ],
    )
}

/// Pushes a one-file artifact with ds-porter; returns its digest.
fn push(user: &User, content: &[u8], reference: &str, extra: &[&str]) -> String {
    fs::write(user.path().join("tool"), content).unwrap();
    let mut args = vec!["push", "tool", reference, "--insecure"];
    args.extend_from_slice(extra);
    let result = user
        .run_with(
            &args,
            &[
                ("SOURCE_DATE_EPOCH", "1700000000"),
                ("COSIGN_PASSWORD", PASSWORD),
            ],
        )
        .ok();
    result["digest"].as_str().unwrap().to_owned()
}

fn pull(user: &User, reference: &str, public: &Path) -> Run {
    user.run(&[
        "pull",
        reference,
        "--insecure",
        "--cosign-key",
        public.to_str().unwrap(),
        "-o",
        "out",
    ])
}

fn assert_refused(run: &Run, expected: &str) {
    let err = run.fails();
    assert!(err.contains("cosign signature check failed for"), "{err}");
    assert!(err.contains(expected), "{expected:?} not in {err}");
    assert!(run.stdout().is_empty());
}

#[test]
fn cosign_signatures_verify_and_wrong_keys_tampering_and_unsigned_artifacts_are_refused() {
    let reg = Registry::start();
    let user = User::new();
    let (key, public) = cosign_keys(user.path(), "keys");
    let (_, other_public) = cosign_keys(user.path(), "other");
    let reference = reg.reference("demo/app:1");
    let signed = push(&user, b"the signed build", &reference, &[]);
    cosign_sign(
        user.path(),
        &key,
        &format!("{}@{signed}", reg.reference("demo/app")),
    );

    let result = pull(&user, &reference, &public).ok();
    assert_eq!(
        result["signatures"],
        json!([{"platform": host_platform(), "scheme": "cosign", "verified": true, "key_id": key_id(&public)}])
    );
    fs::remove_dir_all(user.path().join("out")).unwrap();

    // The same selection through settings.porter.signature.cosign_keys.
    let config = user.path().join("cosign.yaml");
    fs::write(
        &config,
        json!({"settings": {"porter": {"signature": {"cosign_keys": [public]}}}}).to_string(),
    )
    .unwrap();
    let result = user
        .run(&[
            "--config",
            config.to_str().unwrap(),
            "verify",
            &reference,
            "--insecure",
        ])
        .ok();
    assert_eq!(result["verified"], true);
    assert_eq!(result["digest"], signed.as_str());

    assert_refused(
        &pull(&user, &reference, &other_public),
        "no configured cosign key verifies its signature",
    );

    // The tag now names other content: nothing signs that digest.
    let tampered = push(&user, b"a tampered build", &reference, &[]);
    assert_refused(
        &pull(&user, &reference, &public),
        &format!("no signature manifest sha256-{}.sig", &tampered[7..]),
    );
    // A signature of the old digest stored under the new digest's tag names the old digest.
    let sig = reg.raw_get(
        &format!("/v2/demo/app/manifests/sha256-{}.sig", &signed[7..]),
        None,
    );
    assert_eq!(sig.status, 200);
    reg.raw_put_manifest(
        "demo/app",
        Some(&format!("sha256-{}.sig", &tampered[7..])),
        "application/vnd.oci.image.manifest.v1+json",
        &sig.body,
    );
    assert_refused(
        &pull(&user, &reference, &public),
        &format!("it signs {signed}, not {tampered}"),
    );
    assert!(
        !user.path().join("out").exists(),
        "a refused artifact was exported"
    );
}

#[test]
fn a_signature_copied_to_another_repository_is_refused() {
    let reg = Registry::start();
    let user = User::new();
    let (key, public) = cosign_keys(user.path(), "keys");
    let digest = push(&user, b"build", &reg.reference("demo/a:1"), &[]);
    assert_eq!(
        push(&user, b"build", &reg.reference("demo/b:1"), &[]),
        digest
    );
    cosign_sign(
        user.path(),
        &key,
        &format!("{}@{digest}", reg.reference("demo/a")),
    );
    let tag = format!("sha256-{}.sig", &digest[7..]);
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--preserve-digests",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
        ])
        .arg(format!("docker://{}:{tag}", reg.reference("demo/a")))
        .arg(format!("docker://{}:{tag}", reg.reference("demo/b")))
        .output()
        .unwrap();
    assert_success("skopeo copy", &out);
    assert!(
        pull(&user, &reg.reference("demo/a:1"), &public)
            .0
            .status
            .success()
    );
    fs::remove_dir_all(user.path().join("out")).unwrap();
    assert_refused(
        &pull(&user, &reg.reference("demo/b:1"), &public),
        &format!(
            "it names repository \"{}\", not {} (docker-reference)",
            reg.reference("demo/a"),
            reg.reference("demo/b")
        ),
    );
}

#[test]
fn cosign_verify_accepts_what_ds_porter_signs() {
    let reg = Registry::start();
    let user = User::new();
    let (key, public) = cosign_keys(user.path(), "keys");
    let (_, other_public) = cosign_keys(user.path(), "other");

    // cosign's own encrypted key format, decrypted with COSIGN_PASSWORD.
    let reference = reg.reference("demo/ours:1");
    push(
        &user,
        b"ours",
        &reference,
        &["--cosign-key", key.to_str().unwrap()],
    );
    assert_success(
        "cosign verify",
        &cosign_verify(user.path(), &public, &reference),
    );
    let out = cosign_verify(user.path(), &other_public, &reference);
    assert!(!out.status.success(), "cosign accepted another key");
    let verified = user
        .run(&[
            "verify",
            &reference,
            "--insecure",
            "--cosign-key",
            public.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(
        verified["signatures"][0]["key_id"],
        key_id(&public).as_str()
    );

    // An unencrypted PKCS#8 ECDSA P-256 key.
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let plain = user.path().join("plain.pem");
    let plain_public = user.path().join("plain.pub");
    fs::write(&plain, pair.serialize_pem()).unwrap();
    fs::write(&plain_public, pair.public_key_pem()).unwrap();
    let reference = reg.reference("demo/plain:1");
    push(
        &user,
        b"plain",
        &reference,
        &["--cosign-key", plain.to_str().unwrap()],
    );
    assert_success(
        "cosign verify",
        &cosign_verify(user.path(), &plain_public, &reference),
    );

    // Into an OCI layout: the signature manifest is tagged in the layout and checked from it
    // (a layout has no repository name, so only the digest is compared).
    let layout = format!("oci:{}:1.0", user.path().join("layout").display());
    let pushed = push(
        &user,
        b"plain",
        &layout,
        &["--cosign-key", plain.to_str().unwrap()],
    );
    let verified = user
        .run(&[
            "verify",
            &layout,
            "--cosign-key",
            plain_public.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(verified["digest"], pushed.as_str());
    assert_eq!(verified["signatures"][0]["scheme"], "cosign");
    let run = user.run(&["verify", &layout, "--cosign-key", public.to_str().unwrap()]);
    assert!(
        run.fails().contains("no configured cosign key verifies"),
        "{}",
        run.stderr()
    );

    // A wrong password fails before anything is uploaded, naming the key.
    fs::write(user.path().join("tool"), b"never pushed").unwrap();
    let run = user.run_with(
        &[
            "push",
            "tool",
            &reg.reference("demo/wrong:1"),
            "--insecure",
            "--cosign-key",
            key.to_str().unwrap(),
        ],
        &[("COSIGN_PASSWORD", "not the password")],
    );
    let err = run.fails();
    assert!(
        err.contains("wrong password") && err.contains("cosign.key"),
        "{err}"
    );
    assert_eq!(reg.raw_get("/v2/demo/wrong/tags/list", None).status, 404);
}

#[test]
fn the_plugin_checks_cosign_signatures_named_in_its_settings() {
    let reg = Registry::start();
    let user = User::new();
    let (key, public) = cosign_keys(user.path(), "keys");
    let reference = reg.reference("demo/plugin:1");
    push(
        &user,
        b"plugin",
        &reference,
        &["--cosign-key", key.to_str().unwrap()],
    );
    let unsigned = reg.reference("demo/unsigned:1");
    push(&user, b"unsigned", &unsigned, &[]);
    let run = |reference: &str| {
        let launch = Launch::new();
        let config = json!({
            "Cache": {"Dir": launch.cache_root()},
            "Settings": {"porter": {"signature": {"cosign_keys": [public]}}},
        });
        launch
            .config(&config.to_string())
            .execute("pull", &[&format!("arg0={reference}"), "insecure=true"])
            .run()
    };
    let report = run(&reference);
    let stdout: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(stdout["signatures"][0]["scheme"], "cosign");
    let report = run(&unsigned);
    let error = report["execute"]["error"].as_str().unwrap();
    assert!(error.contains("the artifact is not signed"), "{error}");
}
