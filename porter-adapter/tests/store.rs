//! The adapter's metadata store through its public API, without a registry: state and bundle
//! metadata with TTL, exact numbers, events, installations, the blocking facade, and pushes and
//! pulls through an OCI image layout.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use porter_adapter::{
    BlockingAdapter, Credentials, Error, Event, Installation, PorterAdapter, StateEntry, events,
};
use serde_json::{Value, json};

struct Fixture {
    dir: tempfile::TempDir,
    adapter: PorterAdapter,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let adapter = PorterAdapter::open(
        common::settings(dir.path()),
        common::options(&dir.path().join("store.db")),
    )
    .unwrap();
    Fixture { dir, adapter }
}

impl Fixture {
    /// A second adapter on the same store file: another connection, as another process has.
    fn another(&self) -> PorterAdapter {
        PorterAdapter::open(
            common::settings(self.dir.path()),
            common::options(&self.dir.path().join("store.db")),
        )
        .unwrap()
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn go_adapter_state_and_metadata_round_trips_with_a_one_hour_ttl() {
    let f = fixture();
    let state = json!({"status": "installed", "version": "1.0.0"});
    let entry = f
        .adapter
        .store_installation_state("test-installation", state.clone(), Some(HOUR))
        .await
        .unwrap();
    assert_eq!(entry.key, "installation:test-installation");
    assert_eq!(entry.plugin_id, "porter");
    let expires = entry.expires_at.unwrap() - entry.updated_at;
    assert_eq!(expires.num_milliseconds(), 3_600_000);
    assert_eq!(
        f.adapter
            .get_installation_state("test-installation")
            .await
            .unwrap(),
        state
    );

    let metadata = json!({"name": "test-bundle", "version": "1.0.0"});
    let entry = f
        .adapter
        .store_bundle_metadata("test-bundle:v1.0.0", metadata.clone(), Some(HOUR))
        .await
        .unwrap();
    assert_eq!(entry.key, "bundle:test-bundle:v1.0.0");
    assert_eq!(
        f.adapter
            .get_bundle_metadata("test-bundle:v1.0.0")
            .await
            .unwrap(),
        metadata
    );
    // Installation state and bundle metadata are separate key spaces.
    let err = f
        .adapter
        .get_bundle_metadata("test-installation")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn an_expired_entry_says_so_and_a_missing_one_says_not_found() {
    let f = fixture();
    f.adapter
        .store_installation_state("short", json!(1), Some(Duration::from_millis(30)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(80)).await;

    let err = f.adapter.get_installation_state("short").await.unwrap_err();
    assert!(matches!(err, Error::Expired { .. }), "{err:?}");
    assert_eq!(err.code(), "expired");
    assert!(
        err.to_string()
            .starts_with("installation state has expired: installation:short (at "),
        "{err}"
    );
    // Reading does not delete: it keeps saying "expired".
    assert_eq!(
        f.adapter
            .get_installation_state("short")
            .await
            .unwrap_err()
            .code(),
        "expired"
    );

    let err = f.adapter.get_installation_state("never").await.unwrap_err();
    assert_eq!(err.code(), "not_found");
    assert_eq!(
        err.to_string(),
        "installation state not found: installation:never"
    );

    let err = f.adapter.get_bundle_metadata("gone:1").await.unwrap_err();
    assert_eq!(err.to_string(), "bundle metadata not found: bundle:gone:1");

    // Writing again revives the key as a new entry.
    let entry = f
        .adapter
        .store_installation_state("short", json!(2), None)
        .await
        .unwrap();
    assert_eq!(entry.expires_at, None);
    assert_eq!(entry.created_at, entry.updated_at);
    assert_eq!(
        f.adapter.get_installation_state("short").await.unwrap(),
        json!(2)
    );

    f.adapter
        .store_bundle_metadata("old:1", json!({}), Some(Duration::from_millis(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(f.adapter.purge_expired().await.unwrap(), 1);
    assert_eq!(
        f.adapter
            .get_bundle_metadata("old:1")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

#[tokio::test]
async fn numbers_come_back_as_the_numbers_that_were_stored() {
    let f = fixture();
    let values = json!({
        "u64_max": u64::MAX,
        "i64_min": i64::MIN,
        "above_2_53": 9_007_199_254_740_993_u64,
        "tenth": 0.1,
        "third": 1.0 / 3.0,
        "tiny": 5e-324,
        "huge": f64::MAX,
        "negative_zero": -0.0,
        "float_integer": 3.0,
        "nested": [1, 2.5, {"z": 1, "a": 2}],
    });
    f.adapter
        .store_installation_state("numbers", values.clone(), None)
        .await
        .unwrap();
    let back = f.adapter.get_installation_state("numbers").await.unwrap();
    assert_eq!(back, values);
    // Same text means same representation: integers stay integers, floats keep every bit,
    // object keys keep their order.
    assert_eq!(back.to_string(), values.to_string());
    assert_eq!(back["u64_max"].as_u64(), Some(u64::MAX));
    assert_eq!(back["i64_min"].as_i64(), Some(i64::MIN));
    assert_eq!(back["above_2_53"].as_u64(), Some(9_007_199_254_740_993));
    for key in [
        "tenth",
        "third",
        "tiny",
        "huge",
        "negative_zero",
        "float_integer",
    ] {
        assert_eq!(
            back[key].as_f64().unwrap().to_bits(),
            values[key].as_f64().unwrap().to_bits(),
            "{key}"
        );
        assert!(back[key].is_f64(), "{key}");
    }
}

#[tokio::test]
async fn overwrites_keep_the_first_writer_and_creation_time() {
    let f = fixture();
    let first = f
        .adapter
        .store_installation_state("app", json!("a"), Some(HOUR))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = f
        .adapter
        .store_installation_state("app", json!("b"), None)
        .await
        .unwrap();
    assert_eq!(second.created_at, first.created_at);
    assert!(second.updated_at > first.updated_at);
    assert_eq!(second.expires_at, None, "the new write decides the expiry");
    let entry = f.adapter.installation_state_entry("app").await.unwrap();
    assert_eq!(entry, second);
    assert!(f.adapter.delete_installation_state("app").await.unwrap());
    assert!(!f.adapter.delete_installation_state("app").await.unwrap());
}

#[tokio::test]
async fn updates_read_and_write_in_one_transaction() {
    let f = fixture();
    for _ in 0..5 {
        f.adapter
            .update_installation_state("counter", None, |current| {
                json!(current.and_then(|v| v.as_u64()).unwrap_or(0) + 1)
            })
            .await
            .unwrap();
    }
    assert_eq!(
        f.adapter.get_installation_state("counter").await.unwrap(),
        json!(5)
    );
    // An expired value reads as absent.
    f.adapter
        .store_installation_state("stale", json!(41), Some(Duration::from_millis(1)))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let entry = f
        .adapter
        .update_installation_state("stale", None, |current| {
            assert_eq!(current, None);
            json!(1)
        })
        .await
        .unwrap();
    assert_eq!(entry.value, json!(1));
}

#[tokio::test]
async fn bad_keys_and_ttls_are_refused_before_the_store_is_touched() {
    let f = fixture();
    for (id, ttl) in [
        ("", None),
        ("  ", None),
        ("a\nb", None),
        ("ok", Some(Duration::ZERO)),
        ("ok", Some(Duration::MAX)),
    ] {
        let err = f
            .adapter
            .store_installation_state(id, json!(1), ttl)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{id:?} {ttl:?}: {err}");
    }
    assert_eq!(
        f.adapter
            .get_installation_state("ok")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
}

#[tokio::test]
async fn events_are_durable_ordered_and_readable_from_another_connection() {
    let f = fixture();
    let other = f.another();
    let mut live = f.adapter.subscribe().await.unwrap();
    let mut from_other = other.subscribe().await.unwrap();

    let a = f
        .adapter
        .publish("custom.thing", json!({"n": 1}))
        .await
        .unwrap();
    let b = other
        .publish("custom.thing", json!({"n": 2}))
        .await
        .unwrap();
    assert!(b.sequence > a.sequence);
    assert_eq!(a.plugin_id, "porter");

    let wait = Duration::from_secs(10);
    for subscription in [&mut live, &mut from_other] {
        let first = tokio::time::timeout(wait, subscription.next())
            .await
            .unwrap()
            .unwrap();
        let second = tokio::time::timeout(wait, subscription.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first, second), (a.clone(), b.clone()));
        assert_eq!(subscription.cursor(), b.sequence);
    }

    let log = other.events_since(0, 100).await.unwrap();
    assert_eq!(log, [a.clone(), b.clone()]);
    assert_eq!(
        other.events_since(a.sequence, 100).await.unwrap(),
        std::slice::from_ref(&b)
    );
    assert_eq!(
        other.events_since(0, 1).await.unwrap(),
        std::slice::from_ref(&a)
    );
    // A subscription from a cursor replays what came after it.
    let mut replay = f.adapter.subscribe_from(a.sequence);
    assert_eq!(replay.next().await.unwrap(), b);

    for bad in ["", "has space", "slash/type", &"x".repeat(129)] {
        let err = f.adapter.publish(bad, json!(null)).await.unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{bad:?}");
    }

    let pruned = f
        .adapter
        .prune_events(Utc::now() + chrono::Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(pruned, 2);
    assert!(f.adapter.events_since(0, 10).await.unwrap().is_empty());
    let c = f.adapter.publish("custom.thing", json!(3)).await.unwrap();
    assert!(c.sequence > b.sequence, "sequences are never reused");
}

#[tokio::test]
async fn installations_crud_with_go_store_messages() {
    let f = fixture();
    let store = f.adapter.installations();
    assert!(store.list("nowhere").await.unwrap().is_empty());

    let mut installation = Installation::new("dev", "web", "127.0.0.1:5000/bundles/web:1.0");
    installation.status = "installed".into();
    installation.parameters.insert("replicas".into(), json!(3));
    installation
        .credentials
        .insert("kubeconfig", "secret-kubeconfig");
    installation.outputs.insert("url".into(), json!("http://x"));
    let saved = store.save(installation.clone()).await.unwrap();
    assert_eq!(saved.id.len(), 32, "an id is generated");
    assert_eq!(store.get("dev", "web").await.unwrap(), saved);

    tokio::time::sleep(Duration::from_millis(5)).await;
    let mut changed = saved.clone();
    changed.status = "upgraded".into();
    changed.created = DateTime::<Utc>::UNIX_EPOCH;
    let resaved = store.save(changed).await.unwrap();
    assert_eq!(
        resaved.created, saved.created,
        "save keeps the creation time"
    );
    assert!(resaved.modified > saved.modified);
    assert_eq!(resaved.id, saved.id);

    store
        .save(Installation::new("dev", "api", "b:1"))
        .await
        .unwrap();
    store
        .save(Installation::new("prod", "web", "b:1"))
        .await
        .unwrap();
    let names: Vec<String> = store
        .list("dev")
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, ["api", "web"]);

    let updated = store
        .update("dev", "web", |i| {
            i.outputs.insert("count".into(), json!(1));
        })
        .await
        .unwrap();
    assert_eq!(updated.outputs["count"], json!(1));
    assert_eq!(
        updated.credentials.get("kubeconfig"),
        Some("secret-kubeconfig")
    );
    let err = store
        .update("dev", "web", |i| i.name = "other".into())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");

    store.delete("dev", "web").await.unwrap();
    let err = store.get("dev", "web").await.unwrap_err();
    assert_eq!(err.to_string(), "installation not found: dev/web");
    let err = store.delete("dev", "web").await.unwrap_err();
    assert_eq!(err.to_string(), "installation not found: dev/web");
    let err = store.update("dev", "web", |_| {}).await.unwrap_err();
    assert_eq!(err.code(), "not_found");

    // The global namespace is the empty one.
    store
        .save(Installation::new("", "tool", "b:2"))
        .await
        .unwrap();
    assert_eq!(store.list("").await.unwrap().len(), 1);
}

#[tokio::test]
async fn installation_names_with_path_tricks_are_refused() {
    let f = fixture();
    let store = f.adapter.installations();
    for (namespace, name) in [
        ("..", "x"),
        ("dev", "../../etc/passwd"),
        ("dev/sub", "x"),
        ("dev", ""),
        ("dev", "a\\b"),
        ("dev", ".hidden"),
    ] {
        let err = store
            .save(Installation::new(namespace, name, "b"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "invalid_input", "{namespace:?}/{name:?}");
        assert!(
            err.to_string().starts_with("invalid installation "),
            "{err}"
        );
        assert_eq!(
            store.get(namespace, name).await.unwrap_err().code(),
            "invalid_input"
        );
    }
    assert!(store.list("dev").await.unwrap().is_empty());
}

#[test]
fn the_blocking_facade_works_without_a_runtime_and_refuses_inside_one() {
    let dir = tempfile::tempdir().unwrap();
    let adapter = BlockingAdapter::open(
        common::settings(dir.path()),
        common::options(&dir.path().join("store.db")),
    )
    .unwrap();
    adapter
        .store_installation_state("x", json!({"a": 1}), None)
        .unwrap();
    assert_eq!(
        adapter.get_installation_state("x").unwrap(),
        json!({"a": 1})
    );
    adapter
        .save_installation(Installation::new("ns", "app", "b"))
        .unwrap();
    assert_eq!(adapter.list_stored_installations("ns").unwrap().len(), 1);
    let event = adapter.publish("custom", json!(1)).unwrap();
    assert_eq!(adapter.events_since(0, 10).unwrap(), [event]);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let err = runtime.block_on(async { adapter.get_installation_state("x") });
    let err = err.unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    assert!(err.to_string().contains("inside an async runtime"), "{err}");
}

/// What an `oci:` layout holds for a tag: the manifest JSON.
fn layout_manifest(dir: &std::path::Path, tag: &str) -> Value {
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let hex = entry["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    serde_json::from_slice(&std::fs::read(dir.join("blobs/sha256").join(hex)).unwrap()).unwrap()
}

#[tokio::test]
async fn installations_and_bundles_push_and_pull_through_an_oci_layout() {
    let f = fixture();
    let layout = f.dir.path().join("layout");
    let reference = format!("oci:{}:v1", layout.display());
    let body = br#"{"installation":"web","replicas":3}"#;
    let media_type = "application/vnd.ds.installation.v1+json";

    let pushed = f
        .adapter
        .push_installation(&reference, &body[..], media_type)
        .await
        .unwrap();
    let manifest = layout_manifest(&layout, "v1");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(manifest["artifactType"], media_type);
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(manifest["config"]["size"], 2);
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], media_type);
    assert_eq!(layers[0]["size"], body.len());
    assert_eq!(
        pushed.metadata["layer.digest"],
        layers[0]["digest"].as_str().unwrap()
    );

    let mut bytes = Vec::new();
    let pulled = f
        .adapter
        .pull_installation(&reference, Some(&mut bytes))
        .await
        .unwrap();
    assert_eq!(bytes, body, "the writer gets the layer, not the manifest");
    assert_eq!(pulled.digest, pushed.digest);
    assert!(pulled.cached);

    let bundle_ref = format!("oci:{}:bundle-1", layout.display());
    f.adapter
        .push_bundle(
            &bundle_ref,
            &b"bundle bytes"[..],
            "application/octet-stream",
        )
        .await
        .unwrap();
    let mut bundle = Vec::new();
    f.adapter
        .pull_bundle(&bundle_ref, Some(&mut bundle))
        .await
        .unwrap();
    assert_eq!(bundle, b"bundle bytes");
    f.adapter.pull_bundle(&bundle_ref, None).await.unwrap();

    let events = f.adapter.events_since(0, 100).await.unwrap();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            events::INSTALLATION_PUSHED,
            events::INSTALLATION_PULLED,
            events::BUNDLE_PUSHED,
            events::BUNDLE_PULLED,
            events::BUNDLE_PULLED,
        ]
    );
    assert_eq!(events[0].data["ref"], reference.as_str());
    assert_eq!(events[0].data["digest"], pushed.digest.as_str());
    assert!(events[0].data["timestamp"].as_i64().unwrap() > 1_700_000_000);

    let err = f
        .adapter
        .push_installation(&reference, &b""[..], "not a media type")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input");
    let missing = format!("oci:{}:nope", layout.display());
    let err = f
        .adapter
        .pull_installation(&missing, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "not_found", "{err}");
}

fn fixed_time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 123_000_000).unwrap()
}

#[test]
fn serialized_types_snapshot() {
    let event = Event {
        sequence: 42,
        event_type: events::INSTALLATION_PULLED.into(),
        plugin_id: "porter".into(),
        timestamp: fixed_time(1_700_000_000),
        data: json!({"ref": "r.io/app:1", "digest": "sha256:00", "timestamp": 1_700_000_000}),
    };
    insta::assert_json_snapshot!("event", event);

    let entry = StateEntry {
        key: "installation:web".into(),
        value: json!({"step": 3, "ratio": 0.5}),
        plugin_id: "porter".into(),
        created_at: fixed_time(1_700_000_000),
        updated_at: fixed_time(1_700_000_060),
        expires_at: Some(fixed_time(1_700_003_660)),
    };
    insta::assert_json_snapshot!("state_entry", entry);
    let never = StateEntry {
        expires_at: None,
        ..entry
    };
    insta::assert_json_snapshot!("state_entry_without_expiry", never);

    let mut installation = Installation::new("dev", "web", "r.io/bundles/web:1.0");
    installation.id = "0123456789abcdef0123456789abcdef".into();
    installation.status = "installed".into();
    installation.created = fixed_time(1_700_000_000);
    installation.modified = fixed_time(1_700_000_100);
    installation.parameters.insert("replicas".into(), json!(3));
    installation.credentials = Credentials::from_iter([("token", "t0k3n")]);
    installation
        .outputs
        .insert("url".into(), json!("https://web"));
    insta::assert_json_snapshot!("installation", installation);
    let bare = Installation {
        parameters: Default::default(),
        credentials: Credentials::default(),
        outputs: Default::default(),
        ..installation.clone()
    };
    insta::assert_json_snapshot!("installation_minimal", bare);
    // Everything serialised reads back as itself.
    let back: Installation =
        serde_json::from_value(serde_json::to_value(&installation).unwrap()).unwrap();
    assert_eq!(back, installation);
}
