//! `ds-porter cache prune` and `cache verify`, and pruning after a pull by `Cache.MaxSize` and
//! `Cache.TTL`: least recently used artifacts go first, and only blobs no remaining artifact
//! references are deleted. A pull that fails part-way publishes none of the blobs it fetched.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;

use porter_e2e::cli::User;
use porter_e2e::{
    Fault, FaultProxy, LayerSpec, Published, Registry, block_on, publish_index, publish_single,
};
use serde_json::Value;

/// `old` and `new` share a 10 KiB layer; `old` has 60 KiB of its own, `new` 5 KiB.
fn setup() -> (Registry, Published, Published) {
    let reg = Registry::start();
    let shared = LayerSpec::pseudo_random("shared", 1, 10 * 1024);
    let old = block_on(publish_single(
        &reg,
        "demo/old:1",
        &[
            shared.clone(),
            LayerSpec::pseudo_random("old", 2, 60 * 1024),
        ],
        &[],
    ));
    let new = block_on(publish_single(
        &reg,
        "demo/new:1",
        &[shared, LayerSpec::pseudo_random("new", 3, 5 * 1024)],
        &[],
    ));
    (reg, old, new)
}

fn blob(user: &User, digest: &str) -> PathBuf {
    user.cache()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

fn pull(user: &User, reg: &Registry, repo: &str, env: &[(&str, &str)]) -> Value {
    user.run_with(&["pull", &reg.reference(repo), "--insecure"], env)
        .ok()
}

#[test]
fn prune_removes_the_least_recently_used_artifact_and_only_its_own_blobs() {
    let (reg, old, new) = setup();
    let user = User::new();
    pull(&user, &reg, "demo/old:1", &[]);
    pull(&user, &reg, "demo/new:1", &[]);

    let report = user.run(&["cache", "prune", "--max-size", "40KiB"]).ok();
    assert_eq!(report["removed"], serde_json::json!([old.id()]));
    assert!(report["remaining_bytes"].as_u64().unwrap() <= 40 * 1024);
    assert_eq!(ids(&user.run(&["list"]).ok()), [new.id()]);
    assert!(
        blob(&user, &old.layers[0].digest).is_file(),
        "shared layer kept"
    );
    assert!(!blob(&user, &old.layers[1].digest).exists());
    assert!(blob(&user, &new.layers[1].digest).is_file());
    // The remaining artifact is intact: an offline pull needs nothing else.
    user.run(&["pull", &reg.reference("demo/new:1"), "--offline"])
        .ok();
    let gone = user
        .run(&["pull", &reg.reference("demo/old:1"), "--offline"])
        .fails();
    assert!(gone.contains("not available offline"), "{gone}");
}

#[test]
fn a_pull_prunes_by_max_size_and_ttl() {
    let (reg, old, new) = setup();
    let user = User::new();
    pull(&user, &reg, "demo/old:1", &[]);
    pull(&user, &reg, "demo/new:1", &[("DS_CACHE_MAX_SIZE", "40KiB")]);
    assert_eq!(ids(&user.run(&["list"]).ok()), [new.id()]);

    let other = User::new();
    pull(&other, &reg, "demo/old:1", &[]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    pull(&other, &reg, "demo/new:1", &[("DS_CACHE_TTL", "1s")]);
    assert_eq!(ids(&other.run(&["list"]).ok()), [new.id()]);
    assert!(!blob(&other, &old.layers[1].digest).exists());

    // Within the limits nothing is removed.
    let third = User::new();
    pull(&third, &reg, "demo/old:1", &[]);
    pull(&third, &reg, "demo/new:1", &[]);
    assert_eq!(ids(&third.run(&["list"]).ok()).len(), 2);
}

#[test]
fn verify_finds_a_corrupt_blob_and_repair_fetches_it_again() {
    let (reg, old, _) = setup();
    let user = User::new();
    pull(&user, &reg, "demo/old:1", &[]);
    let clean = user.run(&["cache", "verify"]).ok();
    assert_eq!(clean["corrupt"], serde_json::json!([]));
    assert!(clean["checked"].as_u64().unwrap() >= 4);

    let layer = &old.layers[1].digest;
    let path = blob(&user, layer);
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&path, &bytes).unwrap();

    let run = user.run(&["cache", "verify"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let report: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(report["corrupt"][0]["digest"], layer.as_str());
    assert_eq!(
        report["corrupt"][0]["needed_by"][0],
        reg.reference("demo/old:1").as_str()
    );
    assert!(run.stderr().contains("--repair"), "{}", run.stderr());

    let repaired = user
        .run(&["cache", "verify", "--repair", "--insecure"])
        .ok();
    assert_eq!(repaired["repaired"], serde_json::json!([layer]));
    assert_eq!(porter_e2e::sha256_digest(&fs::read(&path).unwrap()), *layer);
    assert_eq!(
        user.run(&["cache", "verify"]).ok()["corrupt"],
        serde_json::json!([])
    );

    // A missing blob is found and fetched again too.
    fs::remove_file(&path).unwrap();
    let report = user
        .run(&["cache", "verify", "--repair", "--insecure"])
        .ok();
    assert_eq!(report["missing"][0]["digest"], layer.as_str());
    assert!(path.is_file());
}

/// The file names in `blobs/sha256`, sorted.
fn blob_names(user: &User) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(user.cache().join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn assert_verify_clean(user: &User) {
    let report = user.run(&["cache", "verify"]).ok();
    assert_eq!(report["corrupt"], serde_json::json!([]), "{report}");
    assert_eq!(report["missing"], serde_json::json!([]), "{report}");
}

#[test]
fn a_pull_that_fails_on_a_layer_publishes_no_manifest_and_the_next_pull_works() {
    let reg = Registry::start();
    let index = block_on(publish_index(
        &reg,
        "demo/multi:1",
        &[
            (
                "linux/amd64",
                vec![LayerSpec::pseudo_random("amd64", 21, 16 * 1024)],
            ),
            (
                "linux/arm64",
                vec![
                    LayerSpec::pseudo_random("arm64-a", 22, 16 * 1024),
                    LayerSpec::pseudo_random("arm64-b", 23, 16 * 1024),
                ],
            ),
        ],
        &[],
    ));
    let proxy = FaultProxy::start(&reg.host());
    let reference = proxy.reference("demo/multi:1");
    let user = User::new();
    // The index is cached and named, with its amd64 platform.
    user.run(&[
        "pull",
        &reference,
        "--insecure",
        "--platform",
        "linux/amd64",
    ])
    .ok();
    let before = blob_names(&user);

    // Pulling every platform fetches the arm64 manifest, then one of its layers is missing.
    let arm64 = &index.platform("linux/arm64").manifest;
    let missing = &arm64.layers[1].digest;
    proxy.inject(
        &format!("/blobs/{missing}"),
        1,
        Fault::Status {
            code: 404,
            retry_after: None,
        },
    );
    let err = user
        .run(&["pull", &reference, "--insecure", "--all-arch"])
        .fails();
    assert!(err.contains("404"), "{err}");
    assert_eq!(
        proxy
            .requests_to(&format!("/manifests/{}", arm64.digest))
            .len(),
        1,
        "the arm64 manifest was fetched before the layer failed"
    );
    // Layers and configs enter blobs/ as soon as they are verified; the failed pull's manifests
    // do not, and neither does anything unverified.
    let own: Vec<String> = arm64
        .layers
        .iter()
        .chain([&arm64.config])
        .map(|b| b.digest[7..].to_owned())
        .collect();
    for added in blob_names(&user).iter().filter(|n| !before.contains(n)) {
        assert!(own.contains(added), "the failed pull published {added}");
    }
    assert!(
        !blob(&user, &arm64.digest).exists(),
        "the failed pull published its manifest"
    );
    // Only a partial download of one of its layers may be left, for the next pull to resume.
    for entry in fs::read_dir(user.cache().join(".ingest")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let partial = name.strip_suffix(".partial");
        assert!(
            partial.is_some_and(|hex| own.iter().any(|o| o == hex)),
            "the failed pull left {name} behind"
        );
    }
    // The named index does not now lead to a manifest whose layers are absent.
    assert_verify_clean(&user);
    assert_eq!(ids(&user.run(&["list"]).ok()), [index.id()]);

    let result = user
        .run(&["pull", &reference, "--insecure", "--all-arch"])
        .ok();
    assert_eq!(result["digest"], index.digest.as_str());
    for layer in &arm64.layers {
        assert!(blob(&user, &layer.digest).is_file(), "{}", layer.digest);
    }
    assert!(blob(&user, &arm64.digest).is_file());
    assert_verify_clean(&user);
}
