//! The everyday registry commands against the real distribution registry, with skopeo as the
//! reference reader: `inspect`, `tags` (pages, semantic-version constraints, `pull --semver`),
//! `copy` (registry → layout → registry, platform subsets, mounts) and `cache rm`.
#![allow(clippy::unwrap_used)]

use std::fs;

use porter_e2e::cli::User;
use porter_e2e::skopeo::{skopeo, skopeo_raw};
use porter_e2e::tag_server::{TAGS, TagServer};
use porter_e2e::{AccessLogEntry, LayerSpec, PublishedIndex, Registry, block_on, publish_index};
use serde_json::Value;

const SIX: [&str; 6] = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "darwin/arm64",
    "windows/amd64",
    "windows/arm64",
];

/// A six-platform index under `repo_tag`, each platform one binary layer titled `tool`.
fn six_platforms(reg: &Registry, repo_tag: &str) -> PublishedIndex {
    let entries: Vec<(&str, Vec<LayerSpec>)> = SIX
        .iter()
        .map(|p| {
            (
                *p,
                vec![LayerSpec::binary(
                    "tool",
                    format!("tool for {p}\n").into_bytes(),
                )],
            )
        })
        .collect();
    block_on(publish_index(
        reg,
        repo_tag,
        &entries,
        &[("org.opencontainers.image.version", "1.0")],
    ))
}

fn blob_uploads(requests: &[AccessLogEntry]) -> usize {
    requests
        .iter()
        .filter(|r| {
            r.path.contains("/blobs/uploads/") && (r.method == "PATCH" || r.method == "PUT")
        })
        .count()
}

#[test]
fn inspect_reads_no_layer_and_agrees_with_skopeo() {
    let reg = Registry::start();
    let index = six_platforms(&reg, "demo/six:1.0");
    let reference = reg.reference("demo/six:1.0");
    let user = User::new();

    let mark = reg.mark();
    let raw = user.run(&["inspect", &reference, "--insecure", "--raw"]);
    assert_eq!(raw.code(), 0, "{}", raw.stderr());
    assert_eq!(raw.0.stdout, skopeo_raw(&reference));
    assert!(reg.blob_gets_since(&mark).is_empty(), "inspect read a blob");
    // The bytes as served need the root alone (skopeo's GET came after the mark too).
    assert_eq!(
        reg.manifest_gets_since(&mark).len(),
        2,
        "{:?}",
        reg.requests_since(&mark)
    );

    let found = user.run(&["inspect", &reference, "--insecure"]).ok();
    assert_eq!(found["digest"], index.digest.as_str());
    assert_eq!(found["source"], "registry");
    assert_eq!(found["media_type"], index.media_type.as_str());
    assert_eq!(
        found["annotations"]["org.opencontainers.image.version"],
        "1.0"
    );
    let platforms = found["platforms"].as_array().unwrap();
    assert_eq!(platforms.len(), 6);
    let mut total = index.size;
    for (entry, published) in platforms.iter().zip(&index.platforms) {
        assert_eq!(entry["platform"], published.platform.as_str());
        assert_eq!(entry["digest"], published.manifest.digest.as_str());
        let layers = entry["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        assert_eq!(layers[0]["title"], "tool");
        assert_eq!(
            layers[0]["digest"],
            published.manifest.layers[0].digest.as_str()
        );
        assert_eq!(layers[0]["size"], published.manifest.layers[0].size);
        let platform_total = published.manifest.size
            + published.manifest.config.size
            + published.manifest.layers[0].size;
        assert_eq!(entry["total_size"], platform_total);
        total += platform_total;
    }
    assert_eq!(found["total_size"], total);
    assert!(reg.blob_gets_since(&mark).is_empty(), "inspect read a blob");

    let table = user
        .run(&["inspect", &reference, "--insecure", "--format", "table"])
        .stdout();
    for platform in SIX {
        assert!(table.contains(platform), "{table}");
    }
    assert!(table.contains(&index.digest), "{table}");

    // A pulled digest answers from the cache, offline too; a tag offline needs the cache.
    let pinned = reg.reference(&format!("demo/six@{}", index.digest));
    user.run(&["pull", &pinned, "--insecure", "--all-arch"])
        .ok();
    let mark = reg.mark();
    let cached = user.run(&["inspect", &pinned, "--insecure"]).ok();
    assert_eq!(cached["source"], "cache");
    assert_eq!(cached["platforms"], found["platforms"]);
    assert!(reg.requests_since(&mark).is_empty(), "the cache was enough");
    let offline = user.run(&["inspect", &pinned, "--offline"]).ok();
    assert_eq!(offline["source"], "cache");
    let missing = user
        .run(&["inspect", &reg.reference("demo/six:2.0"), "--offline"])
        .fails();
    assert!(
        missing.contains("not cached") || missing.contains("not in the cache"),
        "{missing}"
    );

    // Layouts too.
    let layout = user.path().join("layout");
    user.run(&[
        "copy",
        &reference,
        &format!("oci:{}", layout.display()),
        "--insecure",
    ])
    .ok();
    let from_layout = user
        .run(&["inspect", &format!("oci:{}:1.0", layout.display())])
        .ok();
    assert_eq!(from_layout["source"], "layout");
    assert_eq!(from_layout["digest"], index.digest.as_str());
}

/// Stores the manifest of `demo/tags:seed` under each of `tags`.
fn tag_all(reg: &Registry, tags: &[&str]) {
    let seed = six_platforms(reg, "demo/tags:seed");
    for tag in tags {
        reg.raw_put_manifest("demo/tags", Some(tag), &seed.media_type, &seed.raw);
    }
}

#[test]
fn tags_follow_every_page_and_semver_picks_versions() {
    let reg = Registry::start();
    let tags = [
        "1.0.0",
        "v1.2.0",
        "1.2.3",
        "1.3.0-rc.1",
        "1.10.0",
        "2.0.0",
        "latest",
        "main",
        "1.2",
    ];
    tag_all(&reg, &tags);
    let repo = reg.reference("demo/tags");
    let user = User::new();

    let all = user.run(&["tags", &repo, "--insecure"]).ok();
    let mut expected: Vec<&str> = tags.to_vec();
    expected.push("seed");
    expected.sort();
    assert_eq!(all["tags"], serde_json::json!(expected));

    let cases: &[(&str, &[&str])] = &[
        (">=1.2, <2", &["v1.2.0", "1.2.3", "1.10.0"]),
        (">=1.2 <2", &["v1.2.0", "1.2.3", "1.10.0"]),
        ("~1.2.3", &["1.2.3"]),
        ("^2", &["2.0.0"]),
        (">=1.3.0-rc.1, <1.4", &["1.3.0-rc.1"]),
        (">=3", &[]),
    ];
    for (constraint, want) in cases {
        let got = user
            .run(&["tags", &repo, "--insecure", "--semver", constraint])
            .ok();
        assert_eq!(got["tags"], serde_json::json!(want), "{constraint}");
    }
    let latest = user.run(&[
        "tags",
        &repo,
        "--insecure",
        "--semver",
        "^1.2",
        "--latest",
        "--format",
        "text",
    ]);
    assert_eq!(latest.stdout(), "1.10.0\n");
    let none = user.run(&["tags", &repo, "--insecure", "--semver", ">=3", "--latest"]);
    assert_eq!(none.code(), 1, "{}", none.stderr());
    assert!(none.stderr().contains(">=3"), "{}", none.stderr());
    let bad = user
        .run(&["tags", &repo, "--insecure", "--semver", ">=x"])
        .usage_error();
    assert!(bad.contains("invalid version constraint"), "{bad}");
    let tagged = user
        .run(&["tags", &reg.reference("demo/tags:1.0.0"), "--insecure"])
        .fails();
    assert!(tagged.contains("without a tag"), "{tagged}");

    // `pull --semver` pulls the highest match and says which.
    let pulled = user.run(&[
        "pull",
        &repo,
        "--insecure",
        "--semver",
        "~1.2",
        "--all-arch",
    ]);
    let result = pulled.ok();
    assert_eq!(result["reference"], format!("{repo}:1.2.3"));
    assert!(
        pulled.stderr().contains(&format!("{repo}:1.2.3")),
        "{}",
        pulled.stderr()
    );
    let pinned = user
        .run(&[
            "pull",
            &format!("{repo}:1.0.0"),
            "--insecure",
            "--semver",
            "^1",
        ])
        .usage_error();
    assert!(pinned.contains("without a tag"), "{pinned}");
}

#[test]
fn tags_follow_link_pages_to_the_end() {
    // distribution 2.8 sends every tag at once: a registry that pages as the spec says.
    let server = TagServer::start(false);
    let user = User::new();
    let repo = format!("{}/paged/app", server.host);
    for (page_size, pages) in [("2", 4), ("3", 3)] {
        let before = server.seen("/v2/paged/app/tags/list").len();
        let listed = user
            .run(&["tags", &repo, "--insecure", "--page-size", page_size])
            .ok();
        let mut expected = TAGS.to_vec();
        expected.sort();
        assert_eq!(listed["tags"], serde_json::json!(expected));
        let seen = server.seen("/v2/paged/app/tags/list").len() - before;
        assert_eq!(seen, pages, "page size {page_size}");
    }
    let text = user
        .run(&[
            "tags",
            &repo,
            "--insecure",
            "--page-size",
            "2",
            "--format",
            "text",
        ])
        .stdout();
    assert_eq!(text.lines().count(), TAGS.len());
    let looping = user
        .run(&["tags", &format!("{}/loop/app", server.host), "--insecure"])
        .fails();
    assert!(looping.contains("loops"), "{looping}");
}

#[test]
fn copy_registry_to_layout_to_registry_keeps_every_digest() {
    let reg = Registry::start();
    let other = Registry::start();
    let index = six_platforms(&reg, "demo/six:1.0");
    let user = User::new();
    let layout = user.path().join("airgap");
    let layout_ref = format!("oci:{}", layout.display());

    let to_layout = user
        .run(&[
            "copy",
            &reg.reference("demo/six:1.0"),
            &layout_ref,
            "--insecure",
        ])
        .ok();
    assert_eq!(to_layout["digest"], index.digest.as_str());
    assert_eq!(to_layout["source_digest"], index.digest.as_str());
    assert_eq!(to_layout["subset"], false);
    assert_eq!(to_layout["manifests"], 7);
    assert_eq!(to_layout["destination"], format!("{layout_ref}:1.0"));
    // skopeo reads the layout as written.
    let from_layout = skopeo(&["inspect", "--raw", &format!("oci:{}:1.0", layout.display())]);
    assert_eq!(from_layout, index.raw);

    // Layout to layout: the destination takes the source's tag.
    let second = user.path().join("second");
    let between = user
        .run(&[
            "copy",
            &format!("{layout_ref}:1.0"),
            &format!("oci:{}", second.display()),
        ])
        .ok();
    assert_eq!(between["digest"], index.digest.as_str());
    assert_eq!(
        skopeo(&["inspect", "--raw", &format!("oci:{}:1.0", second.display())]),
        index.raw
    );

    // A second user (empty cache) carries the layout to another registry.
    let carrier = User::new();
    let target = other.reference("mirror/six:1.0");
    let to_registry = carrier
        .run(&["copy", &format!("{layout_ref}:1.0"), &target, "--insecure"])
        .ok();
    assert_eq!(to_registry["digest"], index.digest.as_str());
    assert_eq!(to_registry["blobs_copied"], 7);
    assert_eq!(skopeo_raw(&target), index.raw);
    for platform in &index.platforms {
        let child = other.reference(&format!("mirror/six@{}", platform.manifest.digest));
        assert_eq!(skopeo_raw(&child), platform.manifest.raw);
    }
    // Pulled back, the bytes are the source's.
    let pulled = carrier
        .run(&[
            "pull",
            &target,
            "--insecure",
            "--platform",
            "linux/arm/v7",
            "-o",
            "out",
        ])
        .ok();
    assert_eq!(pulled["digest"], index.digest.as_str());
    assert_eq!(
        fs::read(carrier.path().join("out/linux/arm/v7/tool")).unwrap(),
        b"tool for linux/arm/v7\n"
    );

    // Again: everything is there, nothing is sent.
    let mark = other.mark();
    let again = carrier
        .run(&["copy", &format!("{layout_ref}:1.0"), &target, "--insecure"])
        .ok();
    assert_eq!(again["blobs_copied"], 0);
    assert_eq!(again["blobs_skipped"], 7);
    assert_eq!(blob_uploads(&other.requests_since(&mark)), 0);
}

#[test]
fn copy_of_a_platform_subset_writes_a_new_index_over_the_same_manifests() {
    let reg = Registry::start();
    let index = six_platforms(&reg, "demo/six:1.0");
    let user = User::new();
    let target = reg.reference("demo/arm:1.0");
    let subset = user
        .run(&[
            "copy",
            &reg.reference("demo/six:1.0"),
            &target,
            "--insecure",
            "--platform",
            "linux/arm64,darwin/arm64",
        ])
        .ok();
    assert_eq!(subset["subset"], true);
    assert_eq!(
        subset["platforms"],
        serde_json::json!(["linux/arm64", "darwin/arm64"])
    );
    assert_ne!(subset["digest"], index.digest.as_str());
    let written: Value = serde_json::from_slice(&skopeo_raw(&target)).unwrap();
    let children: Vec<&str> = written["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        children,
        [
            index.platform("linux/arm64").manifest.digest.as_str(),
            index.platform("darwin/arm64").manifest.digest.as_str()
        ]
    );
    assert_eq!(
        written["annotations"]["org.opencontainers.image.version"],
        "1.0"
    );
    assert_eq!(
        crate_digest(&skopeo_raw(&target)),
        subset["digest"].as_str().unwrap()
    );
    let missing = user
        .run(&[
            "copy",
            &reg.reference("demo/six:1.0"),
            &reg.reference("demo/none:1.0"),
            "--insecure",
            "--platform",
            "linux/s390x",
        ])
        .fails();
    assert!(missing.contains("linux/s390x"), "{missing}");
    let both = user
        .run(&[
            "copy",
            "a/b:1",
            "c/d:1",
            "--all-arch",
            "--platform",
            "linux/amd64",
        ])
        .usage_error();
    assert!(both.contains("--all-arch"), "{both}");
}

fn crate_digest(bytes: &[u8]) -> String {
    porter_e2e::sha256_digest(bytes)
}

#[test]
fn copy_within_a_registry_mounts_instead_of_uploading() {
    let reg = Registry::start();
    let index = six_platforms(&reg, "demo/six:1.0");
    let user = User::new();
    let mark = reg.mark();
    let copied = user
        .run(&[
            "copy",
            &reg.reference("demo/six:1.0"),
            &reg.reference("team/six:stable"),
            "--insecure",
        ])
        .ok();
    assert_eq!(copied["digest"], index.digest.as_str());
    assert_eq!(copied["blobs_mounted"], 7);
    assert_eq!(copied["blobs_copied"], 0);
    let requests = reg.requests_since(&mark);
    let mounts = requests
        .iter()
        .filter(|r| {
            r.method == "POST"
                && r.path == "/v2/team/six/blobs/uploads/"
                && r.query.as_deref().is_some_and(|q| q.contains("mount="))
                && r.status == 201
        })
        .count();
    assert_eq!(mounts, 7, "{requests:?}");
    assert_eq!(blob_uploads(&requests), 0, "{requests:?}");
    assert_eq!(skopeo_raw(&reg.reference("team/six:stable")), index.raw);
}

#[test]
fn cache_rm_removes_an_entry_and_only_the_blobs_nothing_else_uses() {
    let reg = Registry::start();
    let six = six_platforms(&reg, "demo/six:1.0");
    // The same manifests under a second index of two platforms: shared blobs.
    let user = User::new();
    user.run(&[
        "copy",
        &reg.reference("demo/six:1.0"),
        &reg.reference("demo/two:1.0"),
        "--insecure",
        "--platform",
        "linux/amd64,linux/arm64",
    ])
    .ok();
    let rm_user = User::new();
    let first = rm_user
        .run(&[
            "pull",
            &reg.reference("demo/six:1.0"),
            "--insecure",
            "--all-arch",
        ])
        .ok();
    rm_user
        .run(&[
            "pull",
            &reg.reference("demo/two:1.0"),
            "--insecure",
            "--all-arch",
        ])
        .ok();

    let unknown = rm_user.run(&["cache", "rm", &six.digest, "nope"]);
    assert_eq!(unknown.code(), 1, "{}", unknown.stderr());
    assert!(unknown.stderr().contains("nope"), "{}", unknown.stderr());
    assert_eq!(
        rm_user
            .run(&["list", "--format", "json"])
            .ok()
            .as_array()
            .unwrap()
            .len(),
        2,
        "nothing was removed"
    );

    let removed = rm_user
        .run(&["cache", "rm", &reg.reference("demo/six:1.0")])
        .ok();
    assert_eq!(removed["removed"], serde_json::json!([first["id"]]));
    let left = rm_user.run(&["list", "--format", "json"]).ok();
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["reference"], reg.reference("demo/two:1.0"));
    let blobs = rm_user.cache().join("blobs/sha256");
    for platform in ["linux/amd64", "linux/arm64"] {
        let layer = &six.platform(platform).manifest.layers[0].digest;
        assert!(
            blobs.join(&layer[7..]).exists(),
            "shared {platform} layer kept"
        );
    }
    let gone = &six.platform("windows/arm64").manifest.layers[0].digest;
    assert!(!blobs.join(&gone[7..]).exists(), "an unshared layer went");
    let verified = rm_user.run(&["cache", "verify"]).ok();
    assert_eq!(verified["corrupt"], serde_json::json!([]));
    assert_eq!(verified["missing"], serde_json::json!([]));
    // Offline, the remaining one still exports.
    rm_user
        .run(&[
            "pull",
            &reg.reference("demo/two:1.0"),
            "--offline",
            "--platform",
            "linux/arm64",
            "-o",
            "out",
        ])
        .ok();
    let empty = rm_user.run(&["cache", "rm"]);
    assert_eq!(empty.code(), 2, "{}", empty.stderr());
}

#[test]
fn a_copy_never_uploads_a_damaged_cached_blob_and_fetches_it_again_online() {
    let reg = Registry::start();
    let other = Registry::start();
    let index = six_platforms(&reg, "demo/six:1.0");
    let user = User::new();
    let pull_all = || {
        user.run(&[
            "pull",
            &reg.reference("demo/six:1.0"),
            "--insecure",
            "--all-arch",
        ])
        .ok()
    };
    pull_all();
    // One byte of a cached layer flipped, same size: the cache's size check cannot see it.
    let layer = &index.platform("linux/arm64").manifest.layers[0].digest;
    let blob = user.cache().join("blobs/sha256").join(&layer[7..]);
    let damage = || {
        let mut bytes = fs::read(&blob).unwrap();
        bytes[0] ^= 0x20;
        fs::write(&blob, &bytes).unwrap();
    };
    damage();

    // Offline the blob cannot be fetched again: the copy fails naming it and commits nothing.
    let layout = user.path().join("air-gap");
    let target = format!("oci:{}:1.0", layout.display());
    let failed = user
        .run_with(
            &["copy", &reg.reference("demo/six:1.0"), &target],
            &[("DS_OFFLINE", "1")],
        )
        .fails();
    assert!(failed.contains(layer.as_str()), "{failed}");
    assert!(failed.contains("is damaged"), "{failed}");
    assert!(
        !layout.join("blobs/sha256").join(&layer[7..]).exists(),
        "the damaged bytes were never committed to the layout"
    );
    assert!(
        !layout.join("index.json").exists()
            || !fs::read_to_string(layout.join("index.json"))
                .unwrap()
                .contains("\"1.0\""),
        "no tag names incomplete content"
    );
    assert!(
        !blob.exists(),
        "the damaged blob was taken out of the cache"
    );

    // Online the copy fetches it again and the destination gets the right bytes.
    pull_all();
    damage();
    let target = other.reference("copy/six:1.0");
    let copied = user
        .run(&[
            "copy",
            &reg.reference("demo/six:1.0"),
            &target,
            "--insecure",
        ])
        .ok();
    assert_eq!(copied["digest"], index.digest.as_str(), "{copied}");
    assert!(copied["bytes_downloaded"].as_u64().unwrap() > 0, "{copied}");
    let there = other.raw_get(&format!("/v2/copy/six/blobs/{layer}"), None);
    assert_eq!(there.status, 200);
    assert_eq!(&crate_digest(&there.body), layer, "the right bytes arrived");
    let verified = user.run(&["cache", "verify"]).ok();
    assert_eq!(verified["corrupt"], serde_json::json!([]), "{verified}");
    assert_eq!(verified["missing"], serde_json::json!([]), "{verified}");
}
