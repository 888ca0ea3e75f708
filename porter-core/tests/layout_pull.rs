//! Engine tests with an OCI image layout as the source: pull selection, cache layout, entry
//! identity across tags, and export, without any network.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use porter_core::config::{LoggingSettings, ProxySettings, Settings};
use porter_core::digest::Digest;
use porter_core::progress::NoProgress;
use porter_core::{PlatformRequest, Porter, PullRequest, platform};
use serde_json::{Value, json};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const BINARY: &str = "application/vnd.delivery-station.artifact.v1+binary";

/// Writes a blob into a layout and returns its descriptor fields.
fn blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let d = Digest::of(bytes);
    let dir = layout.join("blobs/sha256");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(d.hex()), bytes).unwrap();
    (d.to_string(), bytes.len())
}

struct Layout {
    dir: PathBuf,
    layers: Vec<(String, String)>, // (platform, layer digest)
}

/// A layout tagged `1.0` (and `stable`) with one binary layer per platform.
fn make_layout(root: &Path, platforms: &[&str]) -> Layout {
    let dir = root.join("store");
    let (cfg_digest, cfg_size) = blob(&dir, b"{}");
    let mut entries = Vec::new();
    let mut layers = Vec::new();
    for p in platforms {
        let (os, arch) = p.split_once('/').unwrap();
        let content = format!("binary for {p}");
        let (ld, ls) = blob(&dir, content.as_bytes());
        layers.push((p.to_string(), ld.clone()));
        let title = if os == "windows" { "tool.exe" } else { "tool" };
        let manifest = json!({
            "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": BINARY,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg_digest, "size": cfg_size},
            "layers": [{"mediaType": BINARY, "digest": ld, "size": ls,
                        "annotations": {"org.opencontainers.image.title": title}}]
        });
        let (md, ms) = blob(&dir, manifest.to_string().as_bytes());
        entries.push(json!({"mediaType": MANIFEST, "digest": md, "size": ms,
                            "platform": {"os": os, "architecture": arch}}));
    }
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries,
                       "annotations": {"name": "porter", "ds.plugin.name": "tool"}});
    let (id, is) = blob(&dir, index.to_string().as_bytes());
    let top = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": INDEX, "digest": id, "size": is, "annotations": {"org.opencontainers.image.ref.name": "1.0"}},
        {"mediaType": INDEX, "digest": id, "size": is, "annotations": {"org.opencontainers.image.ref.name": "stable"}}
    ]});
    fs::write(dir.join("index.json"), top.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    Layout { dir, layers }
}

fn settings(cache: &Path) -> Settings {
    Settings {
        cache_dir: cache.join("porter"),
        default_registry: "ghcr.io/delivery-station".into(),
        mirrors: vec![],
        insecure_registries: vec![],
        insecure_all: false,
        credentials: vec![],
        docker_config: None,
        proxy: ProxySettings::default(),
        cache_ttl: None,
        cache_max_size: None,
        logging: LoggingSettings::default(),
        ca_files: vec![],
        certs_dirs: vec![],
        offline: false,
        retry: Default::default(),
        block_private_redirects: None,
        export_limits: Default::default(),
        signature: Default::default(),
        signing_key: None,
        chunk_size: None,
    }
}

fn request(
    layout: &Layout,
    tag: &str,
    platforms: PlatformRequest,
    output: Option<PathBuf>,
) -> PullRequest {
    let mut r =
        PullRequest::new(&format!("oci:{}:{tag}", layout.dir.display()), platforms).unwrap();
    r.output = output;
    r
}

fn only(list: &str) -> PlatformRequest {
    PlatformRequest::Only(platform::parse_list([list]).unwrap())
}

#[tokio::test]
async fn pulling_one_platform_fetches_only_its_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64", "linux/arm64", "windows/amd64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    porter
        .pull(
            &request(&layout, "1.0", only("linux/arm64"), None),
            &NoProgress,
        )
        .await
        .unwrap();
    for (platform, digest) in &layout.layers {
        let d: Digest = digest.parse().unwrap();
        let present = porter.cache().blob_path(&d).exists();
        assert_eq!(present, platform == "linux/arm64", "{platform}");
    }
}

#[tokio::test]
async fn two_tags_of_one_artifact_are_one_cache_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64", "linux/arm64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    let a = porter
        .pull(
            &request(&layout, "1.0", PlatformRequest::All, None),
            &NoProgress,
        )
        .await
        .unwrap();
    let b = porter
        .pull(
            &request(&layout, "stable", PlatformRequest::All, None),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(a.result.id, b.result.id);
    let list = porter.list().unwrap();
    assert_eq!(list.len(), 1);
    assert!(
        list[0].reference.ends_with(":stable"),
        "most recent reference wins"
    );
    assert_eq!(list[0].metadata["name"], "porter");
    assert_eq!(list[0].plugin_info.as_ref().unwrap().plugin_name, "tool");
    // The cache is an OCI layout naming both references.
    let index: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("cache/porter/index.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            m["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        fs::read_to_string(tmp.path().join("cache/porter/oci-layout"))
            .unwrap()
            .contains("1.0.0")
    );
}

#[tokio::test]
async fn export_writes_selected_platforms_into_subdirectories() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64", "linux/arm64", "windows/amd64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    let out = tmp.path().join("out");
    let outcome = porter
        .pull(
            &request(&layout, "1.0", PlatformRequest::All, Some(out.clone())),
            &NoProgress,
        )
        .await
        .unwrap();
    assert_eq!(outcome.result.exported_files.len(), 3);
    assert_eq!(
        fs::read_to_string(out.join("linux/arm64/tool")).unwrap(),
        "binary for linux/arm64"
    );
    assert_eq!(
        fs::read_to_string(out.join("windows/amd64/tool.exe")).unwrap(),
        "binary for windows/amd64"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(out.join("linux/amd64/tool"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o111, 0o111, "exported binaries are executable");
    }
}

#[tokio::test]
async fn a_platform_the_index_lacks_fails_before_downloading() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    let err = porter
        .pull(
            &request(
                &layout,
                "1.0",
                only("darwin/arm64"),
                Some(tmp.path().join("o")),
            ),
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "failed to export artifact: no manifests found for requested platform(s): darwin/arm64 \
         not offered; the artifact offers linux/amd64"
    );
    let d: Digest = layout.layers[0].1.parse().unwrap();
    assert!(!porter.cache().blob_path(&d).exists());
    assert!(
        porter.list().unwrap().is_empty(),
        "a failed pull records nothing"
    );
}

#[tokio::test]
async fn a_corrupted_source_blob_never_becomes_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64"]);
    let d: Digest = layout.layers[0].1.parse().unwrap();
    fs::write(
        layout.dir.join("blobs/sha256").join(d.hex()),
        "binary for linux/amd6X",
    )
    .unwrap();
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    let err = porter
        .pull(
            &request(&layout, "1.0", only("linux/amd64"), None),
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(!porter.cache().blob_path(&d).exists());
    // Transfers abandoned by the failure clean up on their writer threads; give them a moment.
    let ingest = tmp.path().join("cache/porter/.ingest");
    let mut left = Vec::new();
    for _ in 0..100 {
        left = fs::read_dir(&ingest)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(left.is_empty(), "no temp files left behind: {left:?}");
}

#[tokio::test]
async fn a_digest_reference_that_is_cached_needs_no_source() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    let first = porter
        .pull(
            &request(&layout, "1.0", only("linux/amd64"), None),
            &NoProgress,
        )
        .await
        .unwrap();
    fs::remove_dir_all(&layout.dir).unwrap();
    let by_digest = format!("oci:{}@{}", layout.dir.display(), first.result.digest);
    let r = PullRequest::new(&by_digest, only("linux/amd64")).unwrap();
    let again = porter.pull(&r, &NoProgress).await.unwrap();
    assert_eq!(again.result.digest, first.result.digest);
}

#[tokio::test]
async fn a_pull_that_fails_on_a_layer_publishes_none_of_its_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64", "linux/arm64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    porter
        .pull(
            &request(&layout, "1.0", only("linux/amd64"), None),
            &NoProgress,
        )
        .await
        .unwrap();
    let blobs = tmp.path().join("cache/porter/blobs/sha256");
    let listing = || {
        let mut names: Vec<String> = fs::read_dir(&blobs)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let before = listing();

    // The arm64 manifest is fetched and verified, then its layer is missing.
    let arm64: Digest = layout.layers[1].1.parse().unwrap();
    fs::remove_file(layout.dir.join("blobs/sha256").join(arm64.hex())).unwrap();
    porter
        .pull(
            &request(&layout, "1.0", PlatformRequest::All, None),
            &NoProgress,
        )
        .await
        .unwrap_err();
    assert_eq!(listing(), before, "a failed pull adds nothing to blobs/");
    // The cached index does not now lead to an arm64 manifest whose layer is absent.
    let report = porter.cache().verify().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(porter.list().unwrap().len(), 1);
}

/// A layout tagged `1.0` whose index lists one and the same manifest (a script, one layer titled
/// `run.sh`) for each of `platforms`, as a release manifest naming one file for several platforms
/// pushes it.
fn make_shared_layout(root: &Path, platforms: &[&str]) -> PathBuf {
    let dir = root.join("shared");
    let (cfg_digest, cfg_size) = blob(&dir, b"{}");
    let (ld, ls) = blob(&dir, b"#!/bin/sh\necho noarch\n");
    let manifest = json!({
        "schemaVersion": 2, "mediaType": MANIFEST, "artifactType": BINARY,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": cfg_digest, "size": cfg_size},
        "layers": [{"mediaType": BINARY, "digest": ld, "size": ls,
                    "annotations": {"org.opencontainers.image.title": "run.sh"}}]
    });
    let (md, ms) = blob(&dir, manifest.to_string().as_bytes());
    let entries: Vec<Value> = platforms
        .iter()
        .map(|p| {
            let (os, arch) = p.split_once('/').unwrap();
            json!({"mediaType": MANIFEST, "digest": md, "size": ms,
                   "platform": {"os": os, "architecture": arch}})
        })
        .collect();
    let index = json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries});
    let (id, is) = blob(&dir, index.to_string().as_bytes());
    let top = json!({"schemaVersion": 2, "manifests": [
        {"mediaType": INDEX, "digest": id, "size": is, "annotations": {"org.opencontainers.image.ref.name": "1.0"}}
    ]});
    fs::write(dir.join("index.json"), top.to_string()).unwrap();
    fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    dir
}

#[tokio::test]
async fn platforms_sharing_one_manifest_are_each_exported() {
    // Regression: the shared manifest was fetched once and only its first platform exported,
    // while the pull reported success.
    let tmp = tempfile::tempdir().unwrap();
    let dir = make_shared_layout(tmp.path(), &["linux/amd64", "linux/arm64", "darwin/arm64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    let reference = format!("oci:{}:1.0", dir.display());
    for (platforms, out, expected) in [
        (
            PlatformRequest::All,
            "all",
            &["linux/amd64", "linux/arm64", "darwin/arm64"][..],
        ),
        (
            only("linux/arm64,darwin/arm64"),
            "two",
            &["linux/arm64", "darwin/arm64"],
        ),
    ] {
        let out = tmp.path().join(out);
        let mut r = PullRequest::new(&reference, platforms).unwrap();
        r.output = Some(out.clone());
        let outcome = porter.pull(&r, &NoProgress).await.unwrap();
        let files: Vec<String> = expected
            .iter()
            .map(|p| out.join(p).join("run.sh").display().to_string())
            .collect();
        assert_eq!(outcome.result.exported_files, files);
        for file in &files {
            assert_eq!(fs::read(file).unwrap(), b"#!/bin/sh\necho noarch\n");
        }
    }
    assert_eq!(porter.list().unwrap().len(), 1);
}

/// Cancels a pull's token when its first blob starts.
struct CancelAtFirstBlob(tokio_util::sync::CancellationToken);

impl porter_core::progress::Progress for CancelAtFirstBlob {
    fn blob_started(&self, _: &Digest, _: u64, _: Option<&str>) {
        self.0.cancel();
    }
}

#[tokio::test]
async fn a_cancelled_pull_returns_cancelled_with_nothing_cached_or_exported() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64", "linux/arm64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    let out = tmp.path().join("out");
    let request = request(&layout, "1.0", PlatformRequest::All, Some(out.clone()));
    let err = porter
        .pull(&request, &CancelAtFirstBlob(request.cancel.clone()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, porter_core::Error::Context { source, .. } if matches!(**source, porter_core::Error::Cancelled)),
        "{err:?}"
    );
    assert!(porter.list().unwrap().is_empty());
    assert!(!out.exists());
    // The token stays cancelled: the same request stops before any work.
    assert!(porter.pull(&request, &NoProgress).await.is_err());
}

#[tokio::test]
async fn an_engine_with_another_retry_policy_shares_the_cache() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = make_layout(tmp.path(), &["linux/amd64"]);
    let porter = Porter::new(settings(&tmp.path().join("cache"))).unwrap();
    let policy = porter_core::RetryPolicy {
        attempts: 1,
        ..Default::default()
    };
    let limited = porter.with_retry(policy.clone());
    assert_eq!(limited.settings().retry, policy);
    let pulled = limited
        .pull(
            &request(&layout, "1.0", PlatformRequest::All, None),
            &NoProgress,
        )
        .await
        .unwrap();
    let listed: Vec<String> = porter.list().unwrap().into_iter().map(|a| a.id).collect();
    assert_eq!(listed, [pulled.result.id]);
}
