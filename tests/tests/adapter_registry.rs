//! porter-adapter against the real registry: installations and bundles pushed as proper OCI
//! artifacts and pulled back through the cache with their layer bytes, tag listing across
//! `Link` pages, credentials, short references, events, and how failures are classified —
//! including the Go adapter's bugs (ds-contract §8.1–8.2), pinned so they stay fixed.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use porter_adapter::{AdapterOptions, Error, PorterAdapter, events};
use porter_core::config::{HostConfig, Settings};
use porter_e2e::{Registry, sha256_digest};
use serde_json::{Value, json};

const INSTALLATION_TYPE: &str = "application/vnd.ds.porter.installation.v1+json";
const BUNDLE_TYPE: &str = "application/vnd.cnab.bundle.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// Settings for `reg` (plain HTTP allowed to it), nothing from the environment, one attempt
/// per request so failures are quick.
fn settings(dir: &Path, reg: &Registry, default: &str) -> Settings {
    let mut auth = json!({"DockerConfig": ""});
    if let Some((user, pass)) = reg.credentials() {
        auth["Credentials"] = json!([{"Registry": reg.host(), "Username": user, "Password": pass}]);
    }
    let config = json!({
        "Cache": {"Dir": dir.join("cache")},
        "Registry": {"Default": default, "InsecureRegistries": [reg.host()]},
        "Auth": auth,
    });
    let mut settings = HostConfig::from_json(config.to_string().as_bytes())
        .unwrap()
        .to_settings(&|_| None, dir)
        .unwrap();
    settings.retry.attempts = 1;
    settings
}

fn adapter_with(dir: &Path, settings: Settings, page_size: usize) -> PorterAdapter {
    let options = AdapterOptions {
        store_path: Some(dir.join("store.db")),
        tag_page_size: page_size,
        ..AdapterOptions::default()
    };
    PorterAdapter::open(settings, options).unwrap()
}

fn adapter(dir: &Path, reg: &Registry) -> PorterAdapter {
    adapter_with(dir, settings(dir, reg, "ghcr.io/delivery-station"), 100)
}

fn manifest(reg: &Registry, repository: &str, reference: &str) -> Value {
    let response = reg.raw_get(
        &format!("/v2/{repository}/manifests/{reference}"),
        reg.credentials(),
    );
    assert_eq!(
        response.status,
        200,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    serde_json::from_slice(&response.body).unwrap()
}

#[tokio::test]
async fn installations_are_pushed_as_oci_artifacts_and_pulled_with_their_layer_bytes() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter(dir.path(), &reg);
    let reference = reg.reference("demo/install:v1");
    let body = br#"{"name":"web","bundle":"demo/web:1.0","parameters":{"replicas":3}}"#;

    let pushed = adapter
        .push_installation(&reference, &body[..], INSTALLATION_TYPE)
        .await
        .unwrap();

    // A manifest with the empty config and one layer, tagged (Go pushed a bare blob and tried
    // to tag it, which a conformant registry refuses).
    let doc = manifest(&reg, "demo/install", "v1");
    assert_eq!(doc["mediaType"], OCI_MANIFEST);
    assert_eq!(doc["artifactType"], INSTALLATION_TYPE);
    assert_eq!(doc["config"]["mediaType"], OCI_EMPTY);
    assert_eq!(doc["config"]["digest"], sha256_digest(b"{}"));
    let layers = doc["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], INSTALLATION_TYPE);
    assert_eq!(layers[0]["digest"], sha256_digest(body));
    assert_eq!(layers[0]["size"], body.len());
    let manifest_bytes = reg.raw_get("/v2/demo/install/manifests/v1", None).body;
    assert_eq!(pushed.digest, sha256_digest(&manifest_bytes));
    assert_eq!(pushed.reference, reference);
    assert_eq!(pushed.metadata["pushed.reference"], reference);

    // The writer receives the layer (Go wrote the manifest bytes).
    let mut bytes = Vec::new();
    let pulled = adapter
        .pull_installation(&reference, Some(&mut bytes))
        .await
        .unwrap();
    assert_eq!(bytes, body);
    assert_ne!(bytes, manifest_bytes);
    assert_eq!(pulled.digest, pushed.digest);
    assert!(pulled.cached);
    assert!(Path::new(&pulled.local_path).starts_with(dir.path().join("cache")));

    // A full reference is used as written, whatever Registry.Default says (Go prefixed it with
    // the default registry a second time).
    let by_digest = format!("{}@{}", reg.reference("demo/install"), pushed.digest);
    let mut again = Vec::new();
    adapter
        .pull_installation(&by_digest, Some(&mut again))
        .await
        .unwrap();
    assert_eq!(again, body);

    let log = adapter.events_since(0, 100).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = log
        .iter()
        .map(|e| {
            (
                e.event_type.as_str(),
                e.data["ref"].as_str().unwrap(),
                e.data["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                events::INSTALLATION_PUSHED,
                reference.as_str(),
                pushed.digest.as_str()
            ),
            (
                events::INSTALLATION_PULLED,
                reference.as_str(),
                pushed.digest.as_str()
            ),
            (
                events::INSTALLATION_PULLED,
                by_digest.as_str(),
                pushed.digest.as_str()
            ),
        ]
    );
    assert!(
        log.iter()
            .all(|e| e.plugin_id == "porter" && e.data["timestamp"].is_i64())
    );
}

#[tokio::test]
async fn bundles_round_trip_and_a_repush_uploads_nothing_new() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter(dir.path(), &reg);
    let reference = reg.reference("bundles/web:1.0.0");
    let body = vec![7u8; 300_000];

    let first = adapter
        .push_bundle(&reference, body.as_slice(), BUNDLE_TYPE)
        .await
        .unwrap();
    let mark = reg.mark();
    let second = adapter
        .push_bundle(&reference, body.as_slice(), BUNDLE_TYPE)
        .await
        .unwrap();
    assert_eq!(first.digest, second.digest, "the manifest is reproducible");
    let uploads: Vec<_> = reg
        .requests_since(&mark)
        .into_iter()
        .filter(|r| r.path.contains("/blobs/uploads"))
        .collect();
    assert!(uploads.is_empty(), "{uploads:?}");

    let mut bytes = Vec::new();
    adapter
        .pull_bundle(&reference, Some(&mut bytes))
        .await
        .unwrap();
    assert_eq!(bytes, body);
    let types: Vec<String> = adapter
        .events_since(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.event_type)
        .collect();
    assert_eq!(
        types,
        [
            events::BUNDLE_PUSHED,
            events::BUNDLE_PUSHED,
            events::BUNDLE_PULLED
        ]
    );
}

#[tokio::test]
async fn listing_returns_every_tag_in_the_registry_order() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter_with(dir.path(), settings(dir.path(), &reg, ""), 2);
    let tags = ["v1", "v10", "v2", "beta", "alpha", "v3", "latest"];
    for tag in tags {
        adapter
            .push_installation(
                &reg.reference(&format!("demo/app:{tag}")),
                &b"{}"[..],
                INSTALLATION_TYPE,
            )
            .await
            .unwrap();
    }

    let listed = adapter
        .list_installations(&reg.reference("demo/app"))
        .await
        .unwrap();
    // distribution 2.8 ignores `n` (it sends every tag at once, without a `Link`) and does not
    // sort: the adapter keeps its order. Paging is covered by `adapter_tags.rs`.
    let raw: Value =
        serde_json::from_slice(&reg.raw_get("/v2/demo/app/tags/list", None).body).unwrap();
    assert_eq!(json!(listed), raw["tags"]);
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(sorted, ["alpha", "beta", "latest", "v1", "v10", "v2", "v3"]);

    for bad in [
        reg.reference("demo/app:v1"),
        format!("oci:{}", dir.path().display()),
    ] {
        let err = adapter.list_installations(&bad).await.unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{bad}: {err}");
    }
}

#[tokio::test]
async fn short_references_resolve_against_the_default_registry() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let default = format!("{}/team", reg.host());
    let adapter = adapter_with(dir.path(), settings(dir.path(), &reg, &default), 100);

    adapter
        .push_installation("app:v1", &b"short"[..], INSTALLATION_TYPE)
        .await
        .unwrap();
    assert_eq!(manifest(&reg, "team/app", "v1")["mediaType"], OCI_MANIFEST);
    assert_eq!(adapter.list_installations("app").await.unwrap(), ["v1"]);
    assert_eq!(
        adapter.list_installations("team/app").await.unwrap(),
        ["v1"]
    );
    let mut bytes = Vec::new();
    adapter
        .pull_installation("app:v1", Some(&mut bytes))
        .await
        .unwrap();
    assert_eq!(bytes, b"short");
}

#[tokio::test]
async fn credentials_from_the_configuration_are_used_and_their_absence_is_unauthorized() {
    let reg = Registry::start_with_htpasswd("porter", "s3cret-pass");
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter(dir.path(), &reg);
    let reference = reg.reference("private/install:v1");
    adapter
        .push_installation(&reference, &b"private"[..], INSTALLATION_TYPE)
        .await
        .unwrap();
    assert_eq!(
        adapter
            .list_installations(&reg.reference("private/install"))
            .await
            .unwrap(),
        ["v1"]
    );
    let mut bytes = Vec::new();
    adapter
        .pull_installation(&reference, Some(&mut bytes))
        .await
        .unwrap();
    assert_eq!(bytes, b"private");

    let mut anonymous = settings(dir.path(), &reg, "");
    anonymous.credentials.clear();
    let other = tempfile::tempdir().unwrap();
    let anonymous = adapter_with(other.path(), anonymous, 100);
    let err = anonymous
        .list_installations(&reg.reference("private/install"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let err = anonymous
        .pull_installation(&reference, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unauthorized", "{err}");
    assert!(!format!("{err:?} {err}").contains("s3cret-pass"));
}

#[tokio::test]
async fn missing_artifacts_and_repositories_are_not_found_and_a_dead_registry_is_a_network_error() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter(dir.path(), &reg);

    let err = adapter
        .pull_installation(&reg.reference("nothing/here:v1"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with("installation not found: "),
        "{err}"
    );
    let err = adapter
        .list_installations(&reg.reference("nothing/here"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found", "{err}");
    let err = adapter
        .push_bundle(&reg.reference("demo/x:1"), &b""[..], "no-slash")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    assert!(
        adapter.events_since(0, 10).await.unwrap().is_empty(),
        "failures publish nothing"
    );

    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().to_string()
    };
    let mut settings = settings(dir.path(), &reg, "");
    settings.insecure_registries.push(dead.clone());
    let other = tempfile::tempdir().unwrap();
    let adapter = adapter_with(other.path(), settings, 100);
    let started = std::time::Instant::now();
    let err = adapter
        .list_installations(&format!("{dead}/demo/app"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "network", "{err}");
    let err = adapter
        .push_installation(&format!("{dead}/demo/app:v1"), &b"x"[..], INSTALLATION_TYPE)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "network", "{err}");
    assert!(started.elapsed() < Duration::from_secs(60));
}
