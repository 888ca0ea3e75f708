//! `push` options against the real distribution registry: `--platform` for a single file,
//! index and manifest annotations, `--artifact-type` and `--media-type`, `--file` for a `.yaml`
//! pushed as a plain layer, and `--dry-run`, which sends nothing (not to a registry that does
//! not exist, not to the real one, not through a proxy) and prints the digests a push then
//! produces. Bad values are usage errors (exit 2) naming what was wrong; the same options reach
//! the DS plugin's `push` through the go-plugin host.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use porter_e2e::cli::User;
use porter_e2e::go_host::{Launch, assert_error, assert_ok};
use porter_e2e::{FaultProxy, Registry, sha256_digest};
use serde_json::Value;

const EPOCH: (&str, &str) = ("SOURCE_DATE_EPOCH", "1704067200");
const RELEASE: &str = "manifests:\n  - platform: linux/amd64\n    path: tool\n";

/// A manifest or index as the registry serves it.
fn fetch(reg: &Registry, repo: &str, reference: &str) -> Value {
    let response = reg.raw_get(&format!("/v2/{repo}/manifests/{reference}"), None);
    serde_json::from_slice(&response.body).unwrap()
}

/// Runs `ds-porter` with `SOURCE_DATE_EPOCH` fixed, expecting success.
fn push(user: &User, args: &[&str]) -> Value {
    let mut all = vec!["push"];
    all.extend_from_slice(args);
    user.run_with(&all, &[EPOCH]).ok()
}

/// Every file under `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path.display().to_string());
            }
        }
    }
    out
}

#[test]
fn platform_puts_a_file_under_the_named_platform_and_pull_selects_it() {
    let reg = Registry::start();
    let user = User::new();
    fs::write(user.path().join("tool"), b"an arm64 tool").unwrap();
    let reference = reg.reference("opts/platform:1.0");
    let result = push(
        &user,
        &[
            "tool",
            &reference,
            "--insecure",
            "--platform",
            "linux/arm64",
        ],
    );
    let index = fetch(&reg, "opts/platform", "1.0");
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{index:#}");
    assert_eq!(entries[0]["platform"]["os"], "linux");
    assert_eq!(entries[0]["platform"]["architecture"], "arm64");
    assert_eq!(entries[0]["annotations"]["architecture"], "arm64");
    assert_eq!(
        result["metadata"]["manifest.linux/arm64"],
        entries[0]["digest"]
    );

    let pulled = user
        .run(&[
            "pull",
            &reference,
            "--insecure",
            "--platform",
            "linux/arm64",
            "-o",
            "out",
        ])
        .ok();
    assert_eq!(pulled["digest"], result["digest"]);
    let exported = pulled["exported_files"][0].as_str().unwrap();
    assert_eq!(
        fs::read(user.path().join(exported)).unwrap(),
        b"an arm64 tool"
    );
}

#[test]
fn annotations_types_and_media_types_reach_the_index_and_the_manifests() {
    let reg = Registry::start();
    let user = User::new();
    fs::write(user.path().join("tool"), b"typed").unwrap();
    let reference = reg.reference("opts/typed:1.0");
    push(
        &user,
        &[
            "tool",
            &reference,
            "--insecure",
            "--annotation",
            "org.example.team=delivery",
            "--annotation",
            "org.example.note=a=b",
            "--manifest-annotation",
            "org.example.build=42",
            "--artifact-type",
            "application/vnd.example.thing.v1",
            "--media-type",
            "application/vnd.example.layer.v1+bin",
        ],
    );
    let index = fetch(&reg, "opts/typed", "1.0");
    assert_eq!(index["annotations"]["org.example.team"], "delivery");
    // Split at the first '='.
    assert_eq!(index["annotations"]["org.example.note"], "a=b");
    assert_eq!(index["artifactType"], "application/vnd.example.thing.v1");
    let entry = &index["manifests"][0];
    assert_eq!(entry["artifactType"], "application/vnd.example.thing.v1");
    let manifest = fetch(&reg, "opts/typed", entry["digest"].as_str().unwrap());
    assert_eq!(manifest["artifactType"], "application/vnd.example.thing.v1");
    assert_eq!(manifest["annotations"]["org.example.build"], "42");
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.created"],
        "2024-01-01T00:00:00Z"
    );
    assert!(manifest["annotations"].get("org.example.team").is_none());
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.example.layer.v1+bin"
    );
}

#[test]
fn annotations_override_and_add_to_the_release_manifest() {
    let reg = Registry::start();
    let user = User::new();
    fs::write(user.path().join("tool"), b"released").unwrap();
    fs::write(
        user.path().join("ds.manifest.yaml"),
        format!(
            "annotations:\n  org.opencontainers.image.title: from-release\n  keep: kept\n{RELEASE}"
        ),
    )
    .unwrap();
    let reference = reg.reference("opts/release:1.0");
    let result = push(
        &user,
        &[
            "--manifest",
            "ds.manifest.yaml",
            &reference,
            "--insecure",
            "--annotation",
            "org.opencontainers.image.title=from-flag",
            "--annotation",
            "added=yes",
        ],
    );
    let index = fetch(&reg, "opts/release", "1.0");
    assert_eq!(
        index["annotations"]["org.opencontainers.image.title"],
        "from-flag"
    );
    assert_eq!(index["annotations"]["keep"], "kept");
    assert_eq!(index["annotations"]["added"], "yes");
    assert_eq!(
        result["metadata"]["org.opencontainers.image.title"],
        "from-flag"
    );
}

#[test]
fn file_pushes_a_yaml_file_as_a_plain_layer() {
    let reg = Registry::start();
    let user = User::new();
    // A valid release manifest: without --file it would be read as one.
    fs::write(user.path().join("tool"), b"tool").unwrap();
    fs::write(user.path().join("config.yaml"), RELEASE).unwrap();
    let reference = reg.reference("opts/config:1.0");
    push(
        &user,
        &[
            "config.yaml",
            &reference,
            "--insecure",
            "--file",
            "--media-type",
            "application/yaml",
        ],
    );
    let index = fetch(&reg, "opts/config", "1.0");
    let manifest = fetch(
        &reg,
        "opts/config",
        index["manifests"][0]["digest"].as_str().unwrap(),
    );
    let layer = &manifest["layers"][0];
    assert_eq!(
        layer["annotations"]["org.opencontainers.image.title"],
        "config.yaml"
    );
    assert_eq!(layer["mediaType"], "application/yaml");
    assert_eq!(layer["size"], RELEASE.len());
    assert_eq!(layer["digest"], sha256_digest(RELEASE.as_bytes()).as_str());

    // Without --file the same path is a release of the file it names.
    let release = push(
        &user,
        &[
            "config.yaml",
            &reg.reference("opts/config:2.0"),
            "--insecure",
        ],
    );
    assert!(
        release["metadata"]["manifest.linux/amd64"].is_string(),
        "{release:#}"
    );
}

#[test]
fn dry_run_contacts_no_registry_and_prints_the_digests_a_push_then_produces() {
    let reg = Registry::start();
    let user = User::new();
    fs::write(user.path().join("tool"), b"planned tool").unwrap();
    fs::create_dir_all(user.path().join("tree/bin")).unwrap();
    fs::write(user.path().join("tree/bin/run"), b"#!/bin/sh\n").unwrap();
    let options = [
        "--insecure",
        "--platform",
        "linux/arm64/v8",
        "--annotation",
        "org.example.team=delivery",
        "--manifest-annotation",
        "org.example.build=7",
    ];

    // Nothing listens on port 1: a request would fail the command.
    let nowhere = [
        &["tool", "127.0.0.1:1/opts/nowhere:1.0", "--dry-run"][..],
        &options,
    ]
    .concat();
    let plan = push(&user, &nowhere);
    assert_eq!(plan["reference"], "127.0.0.1:1/opts/nowhere:1.0");
    assert_eq!(plan["tags"], serde_json::json!(["1.0", "latest"]));

    // Against the real registry and through a proxy, the access logs stay empty.
    let proxy = FaultProxy::start(&reg.host());
    let mark = reg.mark();
    for (source, reference) in [
        ("tool", reg.reference("opts/dry:1.0")),
        ("tree", proxy.reference("opts/dry-tree:1.0")),
    ] {
        let args = [&[source, reference.as_str(), "--dry-run"][..], &options].concat();
        push(&user, &args);
    }
    let layout = user.path().join("layout");
    let layout_ref = format!("oci:{}:1.0", layout.display());
    push(&user, &["tool", &layout_ref, "--dry-run"]);
    assert!(!layout.exists(), "a dry run created the layout");
    assert_eq!(proxy.requests(), [], "the proxy saw requests");

    let plan = push(
        &user,
        &[
            &["tool", reg.reference("opts/dry:1.0").as_str(), "--dry-run"][..],
            &options,
        ]
        .concat(),
    );
    // The printed index is the document whose digest is printed.
    let index_bytes = serde_json::to_vec(&plan["index"]).unwrap();
    assert_eq!(plan["digest"], sha256_digest(&index_bytes).as_str());
    assert_eq!(plan["size"], index_bytes.len());
    let planned = &plan["manifests"][0];
    assert_eq!(planned["platform"], "linux/arm64/v8");
    assert_eq!(
        planned["digest"],
        sha256_digest(&serde_json::to_vec(&planned["manifest"]).unwrap()).as_str()
    );
    assert_eq!(
        planned["layers"][0]["digest"],
        sha256_digest(b"planned tool").as_str()
    );
    assert_eq!(planned["layers"][0]["size"], 12);
    assert_eq!(plan["index"]["manifests"][0]["digest"], planned["digest"]);
    assert_eq!(plan["index"]["annotations"]["org.example.team"], "delivery");
    assert_eq!(reg.requests_since(&mark), [], "the registry saw requests");
    // Nothing was cached: no entry, no blob.
    assert_eq!(user.run(&["list"]).ok(), serde_json::json!([]));
    assert_eq!(
        files_under(&user.cache().join("blobs")),
        Vec::<String>::new()
    );

    // The real push gives exactly the planned digests.
    let pushed = push(
        &user,
        &[
            &["tool", reg.reference("opts/dry:1.0").as_str()][..],
            &options,
        ]
        .concat(),
    );
    assert_eq!(pushed["digest"], plan["digest"]);
    assert_eq!(pushed["metadata"], plan["metadata"]);
    assert_eq!(fetch(&reg, "opts/dry", "1.0"), plan["index"]);
    // The logs above were empty because nothing was sent, not because they record nothing.
    assert!(!reg.requests_since(&mark).is_empty());
    push(
        &user,
        &[
            &["tree", proxy.reference("opts/dry-tree:0.9").as_str()][..],
            &options,
        ]
        .concat(),
    );
    assert!(!proxy.requests().is_empty());
    let directory_plan = push(
        &user,
        &[
            &[
                "tree",
                reg.reference("opts/dry-tree:1.0").as_str(),
                "--dry-run",
            ][..],
            &options,
        ]
        .concat(),
    );
    let directory = push(
        &user,
        &[
            &["tree", reg.reference("opts/dry-tree:1.0").as_str()][..],
            &options,
        ]
        .concat(),
    );
    assert_eq!(directory["digest"], directory_plan["digest"]);
}

#[test]
fn bad_values_are_usage_errors_naming_them() {
    let user = User::new();
    fs::write(user.path().join("tool"), b"tool").unwrap();
    fs::write(user.path().join("ds.manifest.yaml"), RELEASE).unwrap();
    let target = "127.0.0.1:1/opts/bad:1.0";
    let cases: &[(&[&str], &str)] = &[
        (&["tool", target, "--platform", "linux"], "\"linux\""),
        (
            &["tool", target, "--platform", "linux/arm64/v8/x"],
            "linux/arm64/v8/x",
        ),
        (
            &["tool", target, "--annotation", "no-equals"],
            "--annotation \"no-equals\"",
        ),
        (
            &["tool", target, "--annotation", "=value"],
            "--annotation \"=value\": empty key",
        ),
        (
            &["tool", target, "--manifest-annotation", "broken"],
            "--manifest-annotation \"broken\"",
        ),
        (
            &["tool", target, "--artifact-type", "thing"],
            "--artifact-type \"thing\"",
        ),
        (
            &["tool", target, "--media-type", "text/"],
            "--media-type \"text/\"",
        ),
        (
            &["ds.manifest.yaml", target, "--platform", "linux/arm64"],
            "--platform cannot be used with the release manifest ds.manifest.yaml",
        ),
        (
            &[
                "--manifest",
                "ds.manifest.yaml",
                target,
                "--platform",
                "linux/arm64",
            ],
            "--platform cannot be used with the release manifest",
        ),
        (
            &[
                "--manifest",
                "ds.manifest.yaml",
                target,
                "--media-type",
                "text/plain",
            ],
            "--media-type cannot be used with the release manifest",
        ),
        (
            &["--manifest", "ds.manifest.yaml", target, "--file"],
            "--file",
        ),
    ];
    for (args, named) in cases {
        let mut all = vec!["push"];
        all.extend_from_slice(args);
        all.push("--dry-run");
        let err = user.run(&all).usage_error();
        assert!(err.contains(named), "{args:?}: {err}");
    }
}

#[test]
fn the_plugin_push_takes_the_same_options() {
    let reg = Registry::start();
    let reference = reg.reference("opts/plugin:1.0");
    let plugin_push = |args: &[&str]| {
        let launch = Launch::new().env(EPOCH.0, EPOCH.1);
        fs::write(launch.dir().join("config.yaml"), RELEASE).unwrap();
        launch.cache_config().execute("push", args).run()
    };
    let options = [
        "arg0=config.yaml".to_owned(),
        format!("arg1={reference}"),
        "insecure=true".to_owned(),
        "file=true".to_owned(),
        "platform=linux/arm64".to_owned(),
        "annotation=org.example.team=delivery".to_owned(),
        "annotation=org.example.more=1".to_owned(),
        "manifest-annotation=org.example.build=9".to_owned(),
        "artifact-type=application/vnd.example.thing.v1".to_owned(),
        "media-type=application/yaml".to_owned(),
    ];
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let mark = reg.mark();
    let report = plugin_push(&[&options[..], &["dry-run=true"]].concat());
    let plan: Value = serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(reg.requests_since(&mark), [], "a dry run sent requests");
    assert_eq!(plan["manifests"][0]["platform"], "linux/arm64");
    assert_eq!(
        plan["manifests"][0]["layers"][0]["media_type"],
        "application/yaml"
    );

    let report = plugin_push(&options);
    let pushed: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(pushed["digest"], plan["digest"]);
    let index = fetch(&reg, "opts/plugin", "1.0");
    assert_eq!(index["annotations"]["org.example.team"], "delivery");
    assert_eq!(index["annotations"]["org.example.more"], "1");
    assert_eq!(index["artifactType"], "application/vnd.example.thing.v1");
    assert_eq!(index["manifests"][0]["platform"]["architecture"], "arm64");

    // A mistyped switch is refused rather than read as false (it would push for real).
    let report = plugin_push(&[&options[..], &["dry-run=maybe"]].concat());
    assert_error(&report, "invalid dry-run value \"maybe\"");
    let report = plugin_push(&[&options[..2], &["platform=linux"]].concat());
    assert_error(&report, "invalid platform \"linux\"");
    let report = plugin_push(&[&options[..2], &["annotation=broken"]].concat());
    assert_error(&report, "invalid --annotation \"broken\"");
}
