//! Registries that lie, played by the in-process [`FakeRegistry`]: wrong digests and sizes,
//! `Content-Length`s that disagree with the descriptor, endless bodies, oversized and
//! self-contradicting manifests, hostile index graphs, redirects and token realms on other
//! hosts, garbage challenges. Every pull must fail with exit code 1 and an error naming what was
//! wrong, and leave nothing visible in the cache: no unverified blob, no `index.json` entry, no
//! metadata. (Credentials that must not follow a redirect are checked on the wire.)
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use porter_e2e::cli::{Run, User};
use porter_e2e::{
    Body, EMPTY_CONFIG_DIGEST, EMPTY_CONFIG_MEDIA_TYPE, FakeRegistry, OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE, Reply, TestCa, TlsFront, sha256_digest,
};
use serde_json::{Value, json};

const REPO: &str = "demo/app";
const LAYER_TYPE: &str = "application/vnd.delivery-station.artifact.v1+binary";

/// An OCI manifest with the empty config and one layer of `size` bytes at `digest`.
fn manifest_json(digest: &str, size: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": EMPTY_CONFIG_MEDIA_TYPE, "digest": EMPTY_CONFIG_DIGEST, "size": 2},
        "layers": [{
            "mediaType": LAYER_TYPE,
            "digest": digest,
            "size": size,
            "annotations": {"org.opencontainers.image.title": "app"}
        }]
    }))
    .unwrap()
}

/// An OCI index over `children` (`(media type, digest, size, platform)`).
fn index_json(children: &[(&str, String, u64, Option<&str>)]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(media_type, digest, size, platform)| {
            let mut d = json!({"mediaType": media_type, "digest": digest, "size": size});
            if let Some(p) = platform {
                let (os, arch) = p.split_once('/').unwrap();
                d["platform"] = json!({"os": os, "architecture": arch});
            }
            d
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_MEDIA_TYPE,
        "manifests": manifests
    }))
    .unwrap()
}

/// Publishes `demo/app:1.0` (one layer, `layer`) on `fake`; returns the layer digest.
fn serve_artifact(fake: &FakeRegistry, layer: &[u8]) -> String {
    let digest = sha256_digest(layer);
    fake.blob(REPO, EMPTY_CONFIG_DIGEST, Reply::blob(&b"{}"[..]));
    fake.blob(REPO, &digest, Reply::blob(layer));
    fake.manifest(
        REPO,
        Some("1.0"),
        OCI_MANIFEST_MEDIA_TYPE,
        &manifest_json(&digest, layer.len() as u64),
    );
    digest
}

fn layer() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn pull(user: &User, fake: &FakeRegistry) -> Run {
    pull_with(user, fake, &[])
}

fn pull_with(user: &User, fake: &FakeRegistry, env: &[(&str, &str)]) -> Run {
    user.run_with(
        &[
            "pull",
            &fake.reference(&format!("{REPO}:1.0")),
            "--insecure",
            "--platform",
            "linux/amd64",
        ],
        env,
    )
}

/// The pull failed with exit code 1 and an error containing every one of `parts`; nothing is
/// visible in the cache.
fn assert_refused(user: &User, run: &Run, parts: &[&str]) -> String {
    let err = run.fails();
    for part in parts {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert_nothing_visible(&user.cache());
    err
}

/// No blob whose bytes do not hash to its name, no half-written file, no `index.json` entry, no
/// metadata, an empty `list`.
fn assert_nothing_visible(cache: &Path) {
    let blobs = cache.join("blobs/sha256");
    if let Ok(entries) = fs::read_dir(&blobs) {
        for entry in entries {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = fs::read(&path).unwrap();
            assert_eq!(
                sha256_digest(&bytes),
                format!("sha256:{name}"),
                "an unverified blob became visible: {}",
                path.display()
            );
        }
    }
    if let Ok(entries) = fs::read_dir(cache.join(".ingest")) {
        assert_eq!(entries.count(), 0, "a partial download was left in .ingest");
    }
    if let Ok(text) = fs::read_to_string(cache.join("index.json")) {
        let index: Value = serde_json::from_str(&text).unwrap();
        let entries = index["manifests"].as_array().map_or(0, Vec::len);
        assert_eq!(entries, 0, "index.json names a failed pull: {text}");
    }
    if let Ok(entries) = fs::read_dir(cache) {
        for entry in entries {
            let path = entry.unwrap().path();
            assert!(
                !path.join("metadata.json").exists(),
                "metadata written for a failed pull: {}",
                path.display()
            );
        }
    }
}

#[test]
fn a_blob_with_the_wrong_digest_is_refused_and_not_cached() {
    let fake = FakeRegistry::start();
    let good = layer();
    let digest = serve_artifact(&fake, &good);
    let mut bad = good.clone();
    bad[1000] ^= 0xff;
    fake.blob(REPO, &digest, Reply::blob(bad));
    let user = User::new();
    assert_refused(&user, &pull(&user, &fake), &["digest mismatch", &digest]);
    assert!(
        !user
            .cache()
            .join("blobs/sha256")
            .join(&digest[7..])
            .exists()
    );
}

#[test]
fn a_blob_with_the_right_digest_but_a_wrong_descriptor_size_is_refused() {
    let fake = FakeRegistry::start();
    let good = layer();
    let digest = serve_artifact(&fake, &good);
    for declared in [good.len() as u64 + 10, good.len() as u64 - 10] {
        fake.manifest(
            REPO,
            Some("1.0"),
            OCI_MANIFEST_MEDIA_TYPE,
            &manifest_json(&digest, declared),
        );
        let user = User::new();
        assert_refused(
            &user,
            &pull(&user, &fake),
            &["size mismatch", &digest, &declared.to_string()],
        );
    }
}

#[test]
fn a_content_length_larger_or_smaller_than_the_descriptor_is_refused() {
    let fake = FakeRegistry::start();
    let good = layer();
    let digest = serve_artifact(&fake, &good);
    let len = good.len() as u64;
    for (bytes, declared) in [
        (good.clone(), len + 4096),
        (good[..good.len() / 2].to_vec(), len / 2),
    ] {
        fake.blob(
            REPO,
            &digest,
            Reply::blob(Vec::new()).with_body(Body::Declared { bytes, declared }),
        );
        let user = User::new();
        let started = Instant::now();
        assert_refused(
            &user,
            &pull(&user, &fake),
            &["size mismatch", &digest, &declared.to_string()],
        );
        assert!(started.elapsed() < Duration::from_secs(20));
    }
    let blob_gets = fake.seen_to(&format!("/blobs/{digest}")).len();
    assert_eq!(blob_gets, 2, "a size lie is permanent, not retried");
}

#[test]
fn an_endless_blob_body_stops_at_the_descriptor_size() {
    let fake = FakeRegistry::start();
    let good = layer();
    let digest = serve_artifact(&fake, &good);
    fake.blob(
        REPO,
        &digest,
        Reply::blob(Vec::new()).with_body(Body::Endless(b'x')),
    );
    let user = User::new();
    let started = Instant::now();
    assert_refused(&user, &pull(&user, &fake), &["size mismatch", &digest]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // What the server managed to push into socket buffers before ds-porter hung up.
    let sent = fake.endless_bytes_sent();
    assert!(sent < 64 << 20, "ds-porter kept reading: {sent} bytes");
}

#[test]
fn a_manifest_larger_than_4_mib_is_refused_at_once() {
    let fake = FakeRegistry::start();
    serve_artifact(&fake, &layer());
    let mut huge = manifest_json(EMPTY_CONFIG_DIGEST, 2);
    huge.pop();
    huge.extend_from_slice(br#","annotations":{"x":""#);
    huge.extend(std::iter::repeat_n(b'a', 5 << 20));
    huge.extend_from_slice(br#""}}"#);
    let path = format!("/v2/{REPO}/manifests/1.0");
    for body in [Body::Exact(huge.clone()), Body::Chunked(huge)] {
        let user = User::new();
        fake.route(
            &path,
            Reply::ok(OCI_MANIFEST_MEDIA_TYPE, Vec::new()).with_body(body),
        );
        let before = fake.seen_to(&path).len();
        let started = Instant::now();
        assert_refused(&user, &pull(&user, &fake), &["larger than 4194304 bytes"]);
        assert_eq!(
            fake.seen_to(&path).len() - before,
            1,
            "an oversized manifest is refused at once, not retried"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}

#[test]
fn a_manifest_whose_media_type_contradicts_its_content_is_refused() {
    let fake = FakeRegistry::start();
    let digest = serve_artifact(&fake, &layer());
    // A document that says it is an index but has layers.
    let mut lying: Value = serde_json::from_slice(&manifest_json(&digest, 200_000)).unwrap();
    lying["mediaType"] = json!(OCI_INDEX_MEDIA_TYPE);
    let lying = serde_json::to_vec(&lying).unwrap();
    fake.manifest(REPO, Some("1.0"), OCI_INDEX_MEDIA_TYPE, &lying);
    let user = User::new();
    assert_refused(&user, &pull(&user, &fake), &["contradicts its content"]);

    // An index whose descriptor calls a manifest an index (type confusion, CVE-2024-3727).
    let child = manifest_json(&digest, 200_000);
    let child_digest = fake.manifest(REPO, None, OCI_MANIFEST_MEDIA_TYPE, &child);
    let index = index_json(&[(
        OCI_INDEX_MEDIA_TYPE,
        child_digest.clone(),
        child.len() as u64,
        Some("linux/amd64"),
    )]);
    fake.manifest(REPO, Some("1.0"), OCI_INDEX_MEDIA_TYPE, &index);
    let user = User::new();
    assert_refused(
        &user,
        &pull(&user, &fake),
        &[
            &child_digest,
            "declared as application/vnd.oci.image.index.v1+json",
        ],
    );
}

#[test]
fn an_index_answered_with_itself_or_nested_too_deep_is_refused() {
    let fake = FakeRegistry::start();
    serve_artifact(&fake, &layer());
    // The index names a child index; the registry answers the child's digest with the index
    // itself (a cycle is impossible with honest digests, so a lying registry is the only way).
    let child = sha256_digest(b"child");
    let mut index = Vec::new();
    for _ in 0..3 {
        let size = index.len() as u64;
        index = index_json(&[(OCI_INDEX_MEDIA_TYPE, child.clone(), size, None)]);
    }
    fake.manifest(REPO, Some("1.0"), OCI_INDEX_MEDIA_TYPE, &index);
    fake.route(
        &format!("/v2/{REPO}/manifests/{child}"),
        Reply::ok(OCI_INDEX_MEDIA_TYPE, index.clone()),
    );
    let user = User::new();
    assert_refused(&user, &pull(&user, &fake), &["digest mismatch", &child]);

    // A chain of indexes, each wrapping the next: bounded depth.
    let mut digest = serve_artifact(&fake, &layer());
    let mut bytes = manifest_json(&digest, layer().len() as u64);
    let mut media_type = OCI_MANIFEST_MEDIA_TYPE;
    for _ in 0..8 {
        digest = fake.manifest(REPO, None, media_type, &bytes);
        let platform = (media_type == OCI_MANIFEST_MEDIA_TYPE).then_some("linux/amd64");
        bytes = index_json(&[(media_type, digest.clone(), bytes.len() as u64, platform)]);
        media_type = OCI_INDEX_MEDIA_TYPE;
    }
    fake.manifest(REPO, Some("1.0"), OCI_INDEX_MEDIA_TYPE, &bytes);
    let user = User::new();
    assert_refused(&user, &pull(&user, &fake), &["nested deeper than"]);
}

#[test]
fn a_10000_entry_index_is_refused_before_fetching_its_children() {
    let fake = FakeRegistry::start();
    serve_artifact(&fake, &layer());
    let children: Vec<(&str, String, u64, Option<&str>)> = (0..10_000u32)
        .map(|i| {
            (
                OCI_MANIFEST_MEDIA_TYPE,
                sha256_digest(&i.to_be_bytes()),
                500,
                Some("linux/amd64"),
            )
        })
        .collect();
    fake.manifest(
        REPO,
        Some("1.0"),
        OCI_INDEX_MEDIA_TYPE,
        &index_json(&children),
    );
    let user = User::new();
    let started = Instant::now();
    assert_refused(&user, &pull(&user, &fake), &["10000", "more than 1024"]);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        fake.seen_to("/manifests/sha256:").len(),
        0,
        "no child was fetched"
    );

    // 10,000 nested indexes are refused the same way.
    let nested: Vec<_> = children
        .iter()
        .map(|(_, d, s, _)| (OCI_INDEX_MEDIA_TYPE, d.clone(), *s, None))
        .collect();
    fake.manifest(
        REPO,
        Some("1.0"),
        OCI_INDEX_MEDIA_TYPE,
        &index_json(&nested),
    );
    let user = User::new();
    assert_refused(&user, &pull(&user, &fake), &["10000", "more than 1024"]);
    assert_eq!(fake.seen_to("/manifests/sha256:").len(), 0);
}

fn basic(user: &str, pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    )
}

fn credentials_env(host: &str, user: &str, pass: &str) -> String {
    json!([{"Registry": host, "Username": user, "Password": pass}]).to_string()
}

#[test]
fn a_blob_redirect_to_another_host_does_not_carry_the_authorization_header() {
    let fake = FakeRegistry::start();
    let other = FakeRegistry::start();
    let good = layer();
    let digest = serve_artifact(&fake, &good);
    let authorization = basic("alice", "s3cret-redirect");
    // Everything under the repository needs the credentials…
    for (path, reply) in [
        (
            format!("/v2/{REPO}/manifests/1.0"),
            Reply::ok(
                OCI_MANIFEST_MEDIA_TYPE,
                manifest_json(&digest, good.len() as u64),
            ),
        ),
        (
            format!("/v2/{REPO}/blobs/{EMPTY_CONFIG_DIGEST}"),
            Reply::blob(&b"{}"[..]),
        ),
        (
            format!("/v2/{REPO}/blobs/{digest}"),
            Reply::redirect(&other.url(&format!("/storage/{digest}?sig=1"))),
        ),
    ] {
        fake.route_with_auth(
            &path,
            &authorization,
            reply,
            Reply::challenge(r#"Basic realm="fake""#),
        );
    }
    // …and the blob itself lives on another host (another port of 127.0.0.1).
    other.route(&format!("/storage/{digest}"), Reply::blob(good));
    let user = User::new();
    let env = credentials_env(&fake.host(), "alice", "s3cret-redirect");
    pull_with(&user, &fake, &[("DS_AUTH_CREDENTIALS", &env)]).ok();

    let authorized = fake.seen_to(&format!("/blobs/{digest}"));
    assert!(
        authorized
            .iter()
            .any(|r| r.header("authorization") == Some(authorization.as_str())),
        "the registry itself got the credentials: {authorized:?}"
    );
    let redirected = other.seen();
    assert_eq!(redirected.len(), 1, "{redirected:?}");
    assert_eq!(
        redirected[0].header("authorization"),
        None,
        "credentials followed the redirect to {}",
        other.host()
    );
}

#[test]
fn an_https_registry_cannot_redirect_a_pull_to_plain_http_on_a_host_not_marked_insecure() {
    // The registry speaks HTTPS (a TLS front with a private CA the user trusts); the redirect
    // target is plain HTTP on another port of 127.0.0.1.
    let origin = FakeRegistry::start();
    let ca = TestCa::new();
    let front = TlsFront::start(&origin.host(), &ca);
    let plain = FakeRegistry::start();
    let good = layer();
    let digest = serve_artifact(&origin, &good);
    let manifest = manifest_json(&digest, good.len() as u64);
    let manifest_path = format!("/v2/{REPO}/manifests/1.0");
    let blob_path = format!("/v2/{REPO}/blobs/{digest}");
    plain.route(&manifest_path, Reply::ok(OCI_MANIFEST_MEDIA_TYPE, manifest));
    plain.route(&format!("/storage/{digest}"), Reply::blob(good.clone()));

    let ca_file = tempfile::NamedTempFile::new().unwrap();
    fs::write(ca_file.path(), &ca.ca_pem).unwrap();
    let ca_path = ca_file.path().to_str().unwrap();
    let reference = front.reference(&format!("{REPO}:1.0"));
    let pull = |user: &User, insecure: Option<&str>| {
        let mut env = vec![("DS_SETTINGS_PORTER_CA_FILE", ca_path)];
        env.extend(insecure.map(|host| ("DS_REGISTRY_INSECURE_REGISTRIES", host)));
        user.run_with(&["pull", &reference, "--platform", "linux/amd64"], &env)
    };
    // The front works: without redirects the pull succeeds over HTTPS.
    pull(&User::new(), None).ok();

    let refused = "refusing a redirect from HTTPS to plain HTTP";
    for (path, target) in [
        (&manifest_path, plain.url(&manifest_path)),
        (&blob_path, plain.url(&format!("/storage/{digest}"))),
    ] {
        origin.route(path, Reply::redirect(&target));
        let before = origin.seen_to(path).len();
        let user = User::new();
        let started = Instant::now();
        let err = assert_refused(&user, &pull(&user, None), &[refused, &plain.host()]);
        assert!(started.elapsed() < Duration::from_secs(20), "{err}");
        assert!(plain.seen().is_empty(), "followed: {:?}", plain.seen());
        assert_eq!(
            origin.seen_to(path).len() - before,
            1,
            "a refused redirect is not retried"
        );
        // Back to serving it directly, for the next case.
        serve_artifact(&origin, &good);
    }

    // Marked insecure, the redirect target may be followed over plain HTTP.
    origin.route(
        &blob_path,
        Reply::redirect(&plain.url(&format!("/storage/{digest}"))),
    );
    let user = User::new();
    let result = pull(&user, Some(&plain.host())).ok();
    assert_eq!(
        fs::read(user.cache().join("blobs/sha256").join(&digest[7..])).unwrap(),
        good
    );
    assert_eq!(result["cached"], true);
    assert_eq!(plain.seen_to(&format!("/storage/{digest}")).len(), 1);
}

#[test]
fn a_token_realm_on_another_plain_http_host_gets_no_credentials() {
    let fake = FakeRegistry::start();
    let auth_server = FakeRegistry::start();
    let good = layer();
    let digest = serve_artifact(&fake, &good);
    auth_server.route(
        "/token",
        Reply::ok("application/json", r#"{"token":"tok-123"}"#),
    );
    let challenge = format!(
        r#"Bearer realm="{}",service="fake",scope="repository:{REPO}:pull""#,
        auth_server.url("/token")
    );
    for path in [
        format!("/v2/{REPO}/manifests/1.0"),
        format!("/v2/{REPO}/blobs/{EMPTY_CONFIG_DIGEST}"),
        format!("/v2/{REPO}/blobs/{digest}"),
    ] {
        let reply = if path.contains("/manifests/") {
            Reply::ok(
                OCI_MANIFEST_MEDIA_TYPE,
                manifest_json(&digest, good.len() as u64),
            )
        } else if path.contains(EMPTY_CONFIG_DIGEST) {
            Reply::blob(&b"{}"[..])
        } else {
            Reply::blob(good.clone())
        };
        fake.route_with_auth(&path, "Bearer tok-123", reply, Reply::challenge(&challenge));
    }

    // With credentials, a plain-HTTP realm nobody marked insecure is refused before any request.
    let user = User::new();
    let env = credentials_env(&fake.host(), "alice", "s3cret-realm");
    let run = pull_with(&user, &fake, &[("DS_AUTH_CREDENTIALS", &env)]);
    assert_refused(
        &user,
        &run,
        &["refusing to send credentials", &auth_server.host()],
    );
    assert!(auth_server.seen().is_empty(), "{:?}", auth_server.seen());

    // Anonymous, the token is fetched from the other host without an Authorization header.
    let user = User::new();
    pull(&user, &fake).ok();
    let tokens = auth_server.seen();
    assert!(!tokens.is_empty());
    assert!(tokens.iter().all(|r| r.header("authorization").is_none()));
}

#[test]
fn a_garbage_www_authenticate_is_a_clear_401() {
    let fake = FakeRegistry::start();
    serve_artifact(&fake, &layer());
    let path = format!("/v2/{REPO}/manifests/1.0");
    for garbage in [
        "",
        "Negotiate",
        "Bearer",
        "Bearer service=\"x\"",
        "Bearer realm=\"not a url\"",
        "Bearer realm=\"ftp://127.0.0.1:1/t\"",
        "Bearer realm=\"http://127.0.0.1:1/t",
        "Basic realm=",
        "=,=,=,\"\"\"",
    ] {
        fake.route(&path, Reply::challenge(garbage));
        let user = User::new();
        let started = Instant::now();
        let run = pull(&user, &fake);
        let err = assert_refused(&user, &run, &[&fake.host()]);
        assert!(
            err.contains("401") || err.contains("token"),
            "{garbage:?}: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{garbage:?} took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_redirect_target_that_asks_for_authentication_never_gets_the_registrys_credentials() {
    // Registry X (HTTPS, basic `alice`) redirects the blob to Y (HTTPS, another port), which
    // answers with a bearer challenge whose realm is on Y. Neither Y nor its token service may
    // see alice's credentials, nor a token obtained with them.
    let ca = TestCa::new();
    let x = FakeRegistry::start();
    let x_front = TlsFront::start(&x.host(), &ca);
    let y = FakeRegistry::start();
    let y_front = TlsFront::start(&y.host(), &ca);
    let good = layer();
    let digest = serve_artifact(&x, &good);
    let authorization = basic("alice", "s3cret-x");
    for (path, reply) in [
        (
            format!("/v2/{REPO}/manifests/1.0"),
            Reply::ok(
                OCI_MANIFEST_MEDIA_TYPE,
                manifest_json(&digest, good.len() as u64),
            ),
        ),
        (
            format!("/v2/{REPO}/blobs/{EMPTY_CONFIG_DIGEST}"),
            Reply::blob(&b"{}"[..]),
        ),
        (
            format!("/v2/{REPO}/blobs/{digest}"),
            Reply::redirect(&y_front.url(&format!("/storage/{digest}"))),
        ),
    ] {
        x.route_with_auth(
            &path,
            &authorization,
            reply,
            Reply::challenge(r#"Basic realm="x""#),
        );
    }
    y.route(
        &format!("/storage/{digest}"),
        Reply::challenge(&format!(
            r#"Bearer realm="{}",service="y""#,
            y_front.url("/token")
        )),
    );
    y.route(
        "/token",
        Reply::ok("application/json", r#"{"token":"y-token"}"#),
    );

    let ca_file = tempfile::NamedTempFile::new().unwrap();
    fs::write(ca_file.path(), &ca.ca_pem).unwrap();
    let user = User::new();
    let env = credentials_env(&x_front.host(), "alice", "s3cret-x");
    let run = user.run_with(
        &[
            "pull",
            &x_front.reference(&format!("{REPO}:1.0")),
            "--platform",
            "linux/amd64",
        ],
        &[
            ("DS_AUTH_CREDENTIALS", &env),
            (
                "DS_SETTINGS_PORTER_CA_FILE",
                ca_file.path().to_str().unwrap(),
            ),
        ],
    );
    let err = assert_refused(
        &user,
        &run,
        &[&x_front.host(), &y_front.host(), "asks for authentication"],
    );
    assert!(!err.contains("retrying"), "{err}");
    assert!(
        y.seen_to("/token").is_empty(),
        "the redirect target's token service was asked: {:?}",
        y.seen_to("/token")
    );
    for request in y.seen() {
        assert_eq!(request.header("authorization"), None, "{request:?}");
    }
}

#[test]
fn redirects_to_link_local_addresses_are_refused_when_private_redirects_are_blocked() {
    let fake = FakeRegistry::start();
    let good = layer();
    let digest = serve_artifact(&fake, &good);
    fake.blob(
        REPO,
        &digest,
        Reply::redirect(&format!("http://169.254.169.254/latest/meta-data/{digest}")),
    );
    let user = User::new();
    let run = pull_with(
        &user,
        &fake,
        &[("DS_SETTINGS_PORTER_BLOCK_PRIVATE_REDIRECTS", "true")],
    );
    let err = assert_refused(
        &user,
        &run,
        &["refusing a redirect to 169.254.169.254", "link-local"],
    );
    assert!(!err.contains("retrying"), "{err}");
}
