//! `ds-porter push` against the real distribution registry: ds-contract §12 cases 71–78 and 86
//! (with the Go plugin's bugs fixed where §10.6/§10.15 say so), round trips through skopeo and
//! `pull`, reproducible digests, deduplicated re-pushes, layouts as targets, and ds-porter
//! publishing itself the way DS installs plugins.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Command;

use porter_e2e::cli::User;
use porter_e2e::{Registry, ds_porter_bin};
use serde_json::Value;

const BINARY: &str = "application/vnd.delivery-station.artifact.v1+binary";
const ARCHIVE: &str = "application/vnd.delivery-station.artifact.v1+archive.tar+gzip";
const INDEX_TYPE: &str = "application/vnd.delivery-station.artifact.index.v1+json";

fn skopeo_raw(reference: &str) -> Value {
    serde_json::from_slice(&porter_e2e::skopeo::skopeo_raw(reference)).unwrap()
}

fn tags(reg: &Registry, repo: &str) -> Vec<String> {
    let body = reg.raw_get(&format!("/v2/{repo}/tags/list"), None).body;
    let v: Value = serde_json::from_slice(&body).unwrap();
    let mut tags: Vec<String> = v["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    tags
}

fn write(path: &Path, data: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, data).unwrap();
}

fn host() -> (String, String) {
    let platform = porter_e2e::signing::host_platform();
    let (os, arch) = platform.split_once('/').unwrap();
    (os.to_owned(), arch.to_owned())
}

#[test]
fn missing_arguments_are_named() {
    // Cases 71 and 72.
    let user = User::new();
    write(&user.path().join("tool"), b"x");
    // On the command line a missing argument is a usage error (exit 2) that clap names; the
    // plugin answers DS with the Go plugin's texts (plugin_host).
    let err = user.run(&["push", "tool"]).usage_error();
    assert!(err.contains("<REFERENCE>"), "{err}");
    let err = user
        .run(&["push", "--manifest", "ds.manifest.yaml"])
        .usage_error();
    assert!(err.contains("registry reference required"), "{err}");
}

#[test]
fn a_binary_is_pushed_in_the_shape_ds_installs() {
    // Case 73.
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("tool"), b"\x7fELF tool binary");
    let reference = reg.reference("demo/tool:1.0");
    let result = user.run(&["push", "tool", &reference, "--insecure"]).ok();
    assert_eq!(result["reference"], reference.as_str());
    assert_eq!(result["cached"], false);
    assert_eq!(result["cached_at"], "0001-01-01T00:00:00Z");
    assert!(result.get("local_path").is_none());
    assert_eq!(result["metadata"]["artifact.type"], INDEX_TYPE);
    assert_eq!(result["metadata"]["pushed.reference"], reference.as_str());
    assert_eq!(tags(&reg, "demo/tool"), ["1.0", "latest"]);

    let index = skopeo_raw(&reference);
    assert_eq!(index, skopeo_raw(&reg.reference("demo/tool:latest")));
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(index["artifactType"], INDEX_TYPE);
    let entry = &index["manifests"][0];
    let (os, arch) = host();
    assert_eq!(entry["platform"]["os"], os.as_str());
    assert_eq!(entry["platform"]["architecture"], arch.as_str());
    assert_eq!(entry["annotations"]["os"], os.as_str());
    assert_eq!(entry["annotations"]["architecture"], arch.as_str());
    assert!(entry["annotations"]["org.opencontainers.image.created"].is_string());
    let manifest = skopeo_raw(&format!(
        "{}@{}",
        reg.reference("demo/tool"),
        entry["digest"].as_str().unwrap()
    ));
    assert_eq!(manifest["artifactType"], BINARY);
    assert_eq!(
        manifest["config"]["digest"],
        "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "tool"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], BINARY);
}

#[test]
fn a_directory_round_trips_as_an_archive_with_links_kept() {
    // Case 74; links are stored, never followed (§10.6), and the title is the directory's name.
    let reg = Registry::start();
    let user = User::new();
    let tree = user.path().join("tree");
    write(&tree.join("bin/tool"), b"#!/bin/sh\necho tool\n");
    write(&tree.join("README"), b"readme");
    std::os::unix::fs::symlink("bin/tool", tree.join("run")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(tree.join("bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
    let reference = reg.reference("demo/tree:1.0");
    user.run(&["push", "tree", &reference, "--insecure"]).ok();
    let index = skopeo_raw(&reference);
    let manifest = skopeo_raw(&format!(
        "{}@{}",
        reg.reference("demo/tree"),
        index["manifests"][0]["digest"].as_str().unwrap()
    ));
    assert_eq!(manifest["layers"][0]["mediaType"], ARCHIVE);
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "tree.tar.gz"
    );
    user.run(&["pull", &reference, "--insecure", "-o", "d"])
        .ok();
    assert_eq!(
        fs::read(user.path().join("d/bin/tool")).unwrap(),
        b"#!/bin/sh\necho tool\n"
    );
    assert_eq!(
        fs::metadata(user.path().join("d/bin/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o755
    );
    assert_eq!(
        fs::read_link(user.path().join("d/run")).unwrap(),
        Path::new("bin/tool")
    );
}

#[test]
fn a_release_manifest_pushes_every_platform_in_file_order() {
    // Cases 75 and 78 (JSON instead of progress text, §10.15), with --manifest and as a path.
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("rel/bin/arm64/tool"), b"arm64 tool");
    write(&user.path().join("rel/bin/amd64/tool"), b"amd64 tool");
    write(&user.path().join("rel/bin/win/tool.exe"), b"windows tool");
    write(
        &user.path().join("rel/ds.manifest.yaml"),
        b"artifact-type: application/vnd.delivery-station.plugin.index.v1+json\nannotations:\n  name: porter\nmanifests:\n  - platform: linux/arm64\n    path: bin/arm64/tool\n    mediaType: application/vnd.delivery-station.plugin.v1+binary\n  - platform: linux/amd64\n    path: bin/amd64/tool\n  - platform: windows/amd64\n    path: bin/win/tool.exe\n",
    );
    let reference = reg.reference("demo/rel:0.1.0");
    let result = user
        .run(&[
            "push",
            "--manifest",
            "rel/ds.manifest.yaml",
            &reference,
            "--insecure",
        ])
        .ok();
    let index = skopeo_raw(&reference);
    let raw = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(result["digest"], porter_e2e::sha256_digest(&raw).as_str());
    assert_eq!(
        index["artifactType"],
        "application/vnd.delivery-station.plugin.index.v1+json"
    );
    assert_eq!(index["annotations"]["name"], "porter");
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/arm64", "linux/amd64", "windows/amd64"]);
    for m in index["manifests"].as_array().unwrap() {
        let p = format!(
            "{}/{}",
            m["platform"]["os"].as_str().unwrap(),
            m["platform"]["architecture"].as_str().unwrap()
        );
        assert_eq!(result["metadata"][format!("manifest.{p}")], m["digest"]);
    }
    assert_eq!(result["metadata"]["name"], "porter");
    // As a plain path, a .yaml file is a release manifest too.
    let other = reg.reference("demo/rel2:1");
    user.run(&["push", "rel/ds.manifest.yaml", &other, "--insecure"])
        .ok();
    assert_eq!(skopeo_raw(&other)["manifests"].as_array().unwrap().len(), 3);
    // Round trip: every platform comes back byte-identical.
    user.run(&["pull", &reference, "--insecure", "--all-arch", "-o", "back"])
        .ok();
    assert_eq!(
        fs::read(user.path().join("back/linux/arm64/tool")).unwrap(),
        b"arm64 tool"
    );
    assert_eq!(
        fs::read(user.path().join("back/linux/amd64/tool")).unwrap(),
        b"amd64 tool"
    );
    assert_eq!(
        fs::read(user.path().join("back/windows/amd64/tool.exe")).unwrap(),
        b"windows tool"
    );
}

#[test]
fn one_file_released_for_several_platforms_is_exported_for_each() {
    // Regression: platforms sharing one manifest digest (one script named for every platform)
    // were exported for the first platform only, and the pull still succeeded.
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("rel/run.sh"), b"#!/bin/sh\necho noarch\n");
    write(
        &user.path().join("rel/ds.manifest.yaml"),
        b"manifests:\n  - platform: linux/amd64\n    path: run.sh\n  - platform: linux/arm64\n    path: run.sh\n  - platform: darwin/arm64\n    path: run.sh\n",
    );
    let reference = reg.reference("demo/script:1.0");
    let pushed = user
        .run(&["push", "rel/ds.manifest.yaml", &reference, "--insecure"])
        .ok();
    let index = skopeo_raw(&reference);
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3);
    let shared = &manifests[0]["digest"];
    for (m, platform) in manifests
        .iter()
        .zip(["linux/amd64", "linux/arm64", "darwin/arm64"])
    {
        assert_eq!(&m["digest"], shared, "one manifest for every platform");
        assert_eq!(pushed["metadata"][format!("manifest.{platform}")], *shared);
    }

    let exported = |result: &Value| -> Vec<String> {
        result["exported_files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap().to_owned())
            .collect()
    };
    let mark = reg.mark();
    let all = user
        .run(&["pull", &reference, "--insecure", "--all-arch", "-o", "all"])
        .ok();
    assert_eq!(
        exported(&all),
        [
            "all/linux/amd64/run.sh",
            "all/linux/arm64/run.sh",
            "all/darwin/arm64/run.sh"
        ]
    );
    let shared_gets = reg
        .manifest_gets_since(&mark)
        .into_iter()
        .filter(|g| g.reference == shared.as_str().unwrap())
        .count();
    assert_eq!(shared_gets, 1, "the shared manifest is fetched once");
    let two = user
        .run(&[
            "pull",
            &reference,
            "--insecure",
            "--platform",
            "linux/arm64,darwin/arm64",
            "-o",
            "two",
        ])
        .ok();
    assert_eq!(
        exported(&two),
        ["two/linux/arm64/run.sh", "two/darwin/arm64/run.sh"]
    );
    for file in exported(&all).iter().chain(&exported(&two)) {
        assert_eq!(
            fs::read(user.path().join(file)).unwrap(),
            b"#!/bin/sh\necho noarch\n"
        );
    }
    let list = user.run(&["list"]).ok();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["digest"], pushed["digest"]);
}

#[test]
fn bad_release_manifests_fail_before_any_upload() {
    // Case 76, plus the validation of §10.15.
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("a"), b"a");
    let cases: [(&str, &str); 4] = [
        ("", "manifest must contain at least one entry"),
        ("manifests: [", "failed to parse manifest"),
        (
            "manifests:\n  - platform: linux/amd64\n    path: a\n  - platform: linux/amd64\n    path: a\n",
            "entries 1 and 2 both have platform linux/amd64",
        ),
        (
            "manifests:\n  - platform: linux/amd64\n    path: nope\n",
            "nope",
        ),
    ];
    for (yaml, want) in cases {
        write(&user.path().join("x.yaml"), yaml.as_bytes());
        let mark = reg.mark();
        let err = user
            .run(&["push", "x.yaml", &reg.reference("demo/bad:1"), "--insecure"])
            .fails();
        assert!(err.contains(want), "{yaml:?}: {err}");
        assert!(
            reg.requests_since(&mark).is_empty(),
            "no request for {yaml:?}"
        );
    }
}

#[test]
fn release_manifests_with_wrong_types_or_unusable_entries_fail_before_any_upload() {
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("a"), b"a");
    write(&user.path().join("dir/file"), b"f");
    let fifo = user.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let entry =
        |extra: &str| format!("manifests:\n  - platform: linux/amd64\n    path: a\n{extra}");
    let cases: Vec<(String, &str)> = vec![
        (
            "manifests: 5\n".into(),
            "manifests: invalid type: integer `5`, expected a sequence",
        ),
        (
            "manifests:\n  - platform: [linux, amd64]\n    path: a\n".into(),
            "manifests[0].platform: invalid type: sequence, expected a string",
        ),
        (
            "manifests:\n  - platform: linux/amd64\n    path: {a: 1}\n".into(),
            "manifests[0].path: invalid type: map, expected a string",
        ),
        (
            format!("annotations: [1, 2]\n{}", entry("")),
            "annotations: invalid type: sequence, expected a map",
        ),
        (entry("    extra: 1\n"), "unknown field `extra`"),
        (
            "manifests:\n  - platform: linux\n    path: a\n".into(),
            r#"entry 1: invalid platform "linux""#,
        ),
        (
            "manifests:\n  - platform: linux/amd64\n".into(),
            "entry 1 (linux/amd64): path required",
        ),
        (
            entry("    mediaType: not a type\n"),
            r#"mediaType "not a type": expected type/subtype"#,
        ),
        (
            format!("artifact-type: nope\n{}", entry("")),
            r#"artifact-type "nope""#,
        ),
        (
            "manifests:\n  - platform: linux/amd64\n    path: fifo\n".into(),
            "is neither a file nor a directory",
        ),
        // Platforms are compared after normalisation.
        (
            format!("{}  - platform: Linux/AMD64\n    path: dir\n", entry("")),
            "entries 1 and 2 both have platform linux/amd64",
        ),
    ];
    for (yaml, want) in &cases {
        write(&user.path().join("x.yaml"), yaml.as_bytes());
        let mark = reg.mark();
        let run = user.run(&["push", "x.yaml", &reg.reference("demo/bad:1"), "--insecure"]);
        let err = run.fails();
        assert!(
            err.contains("x.yaml") && err.contains(want),
            "{yaml:?}: {err}"
        );
        assert!(
            reg.requests_since(&mark).is_empty(),
            "no request for {yaml:?}"
        );
    }

    // The manifest file itself: missing, a directory, not UTF-8.
    write(&user.path().join("binary.yaml"), b"\xff\xfe\x00manifests");
    for (file, want) in [
        ("missing.yaml", "No such file"),
        ("dir", "Is a directory"),
        ("binary.yaml", "UTF-8"),
    ] {
        let mark = reg.mark();
        let err = user
            .run(&[
                "push",
                "--manifest",
                file,
                &reg.reference("demo/bad:1"),
                "--insecure",
            ])
            .fails();
        assert!(
            err.contains("failed to load manifest") && err.contains(file) && err.contains(want),
            "{file}: {err}"
        );
        assert!(
            reg.requests_since(&mark).is_empty(),
            "no request for {file}"
        );
    }
    assert!(
        tags_or_none(&reg, "demo/bad").is_none(),
        "nothing was pushed"
    );
}

/// The tags of `repo`, or `None` when the registry does not know it.
fn tags_or_none(reg: &Registry, repo: &str) -> Option<Vec<String>> {
    let response = reg.raw_get(&format!("/v2/{repo}/tags/list"), None);
    (response.status == 200).then(|| tags(reg, repo))
}

#[test]
fn references_with_a_port_and_no_tag_push_latest_only() {
    // Cases 77 and 86: Go mis-split host:port refs without a tag.
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("tool"), b"tool");
    let reference = reg.reference("demo/notag");
    let result = user.run(&["push", "tool", &reference, "--insecure"]).ok();
    assert_eq!(result["reference"], format!("{reference}:latest").as_str());
    assert_eq!(
        result["metadata"]["requested.reference"],
        reference.as_str()
    );
    assert_eq!(tags(&reg, "demo/notag"), ["latest"]);
}

#[test]
fn no_latest_keeps_latest_where_it_was() {
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("tool"), b"tool");
    user.run(&[
        "push",
        "tool",
        &reg.reference("demo/nl:1.0"),
        "--insecure",
        "--no-latest",
    ])
    .ok();
    assert_eq!(tags(&reg, "demo/nl"), ["1.0"]);
}

#[test]
fn pushes_are_reproducible_and_re_pushes_upload_nothing() {
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("tree/file"), b"content");
    let reference = reg.reference("demo/repro:1");
    let epoch = [("SOURCE_DATE_EPOCH", "1704067200")];
    let first = user
        .run_with(&["push", "tree", &reference, "--insecure"], &epoch)
        .ok();
    let mark = reg.mark();
    let second = user
        .run_with(&["push", "tree", &reference, "--insecure"], &epoch)
        .ok();
    assert_eq!(
        first["digest"], second["digest"],
        "same inputs, same SOURCE_DATE_EPOCH, same digest"
    );
    let uploads: Vec<_> = reg
        .requests_since(&mark)
        .into_iter()
        .filter(|r| r.path.contains("/blobs/uploads"))
        .collect();
    assert!(uploads.is_empty(), "re-push uploaded blobs: {uploads:?}");
}

#[test]
fn credentials_authenticate_pushes_and_are_required() {
    // Case 79 for push: token-only credentials work.
    let reg = Registry::start_with_htpasswd("token", "t0ken");
    let user = User::new();
    write(&user.path().join("tool"), b"tool");
    let reference = reg.reference("demo/auth:1");
    let err = user
        .run(&["push", "tool", &reference, "--insecure"])
        .fails();
    assert!(err.contains("401") && err.contains("demo/auth"), "{err}");
    let creds = format!(r#"[{{"registry":"{}","token":"t0ken"}}]"#, reg.host());
    user.run_with(
        &["push", "tool", &reference, "--insecure"],
        &[("DS_AUTH_CREDENTIALS", &creds)],
    )
    .ok();
}

#[test]
fn an_oci_layout_is_a_push_target_for_air_gapped_transfer() {
    let user = User::new();
    write(&user.path().join("tool"), b"carried tool");
    let result = user.run(&["push", "tool", "oci:transfer:1.0"]).ok();
    assert_eq!(result["reference"], "oci:transfer:1.0");
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("oci:{}:1.0", user.path().join("transfer").display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pulled = user.run(&["pull", "oci:transfer:1.0", "-o", "out"]).ok();
    assert_eq!(pulled["digest"], result["digest"]);
    assert_eq!(
        fs::read(user.path().join("out/tool")).unwrap(),
        b"carried tool"
    );
}

#[test]
fn a_layout_path_under_a_regular_file_is_named_as_the_layout_directory() {
    // Regression: the error said "failed to create cache directory <layout>".
    let user = User::new();
    write(&user.path().join("tool"), b"tool");
    write(&user.path().join("blocker"), b"keep");
    for layout in ["blocker/layout", "blocker"] {
        let err = user
            .run(&["push", "tool", &format!("oci:{layout}:1.0")])
            .fails();
        assert!(
            err.contains("cannot create OCI layout directory") && err.contains(layout),
            "{err}"
        );
        assert!(!err.contains("cache directory"), "{err}");
    }
    assert_eq!(fs::read(user.path().join("blocker")).unwrap(), b"keep");
}

#[test]
fn ds_porter_publishes_itself_and_installs_like_ds() {
    // Dogfood: push the host binary with a one-entry release manifest, then select the platform
    // the way `ds plugin install` does (by `platform`, or by the os/architecture annotations).
    let reg = Registry::start();
    let user = User::new();
    let (os, arch) = host();
    fs::copy(ds_porter_bin(), user.path().join("ds-porter")).unwrap();
    write(
        &user.path().join("ds.manifest.yaml"),
        format!(
            "artifact-type: application/vnd.delivery-station.plugin.index.v1+json\nmanifests:\n  - platform: {os}/{arch}\n    path: ds-porter\n    mediaType: application/vnd.delivery-station.plugin.v1+binary\n"
        )
        .as_bytes(),
    );
    let reference = reg.reference("delivery-station/ds-porter:0.1.0");
    user.run(&[
        "push",
        "--manifest",
        "ds.manifest.yaml",
        &reference,
        "--insecure",
    ])
    .ok();
    let index = skopeo_raw(&reference);
    let chosen = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| {
            (m["platform"]["os"] == os.as_str() && m["platform"]["architecture"] == arch.as_str())
                || (m["annotations"]["os"] == os.as_str()
                    && m["annotations"]["architecture"] == arch.as_str())
        })
        .expect("an entry for this platform");
    let manifest = skopeo_raw(&format!(
        "{}@{}",
        reg.reference("delivery-station/ds-porter"),
        chosen["digest"].as_str().unwrap()
    ));
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.delivery-station.plugin.v1+binary"
    );
    // Install: the first layer, raw, as <plugin dir>/ds-porter, mode 0755.
    user.run(&["pull", &reference, "--insecure", "-o", "plugins"])
        .ok();
    let installed = user.path().join("plugins/ds-porter");
    let out = Command::new(&installed).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("porter version "));
}

#[test]
fn a_blob_pulled_from_another_repository_is_mounted_not_uploaded() {
    // Cross-repository mount: the cache knows which repository of this registry had the blob.
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("tool"), b"promoted tool");
    let staging = reg.reference("staging/tool:1.0");
    user.run(&["push", "tool", &staging, "--insecure"]).ok();
    user.run(&["pull", &staging, "--insecure", "-o", "got"])
        .ok();
    let mark = reg.mark();
    user.run(&[
        "push",
        "got/tool",
        &reg.reference("release/tool:1.0"),
        "--insecure",
    ])
    .ok();
    let requests = reg.requests_since(&mark);
    let layer = porter_e2e::sha256_digest(b"promoted tool");
    assert!(
        requests.iter().any(|r| r.method == "POST"
            && r.status == 201
            && r.query
                .as_deref()
                .is_some_and(|q| q.contains("mount=") && q.contains("from=staging"))),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.method == "PUT"
            && r.query
                .as_deref()
                .is_some_and(|q| q.contains(&layer.replace(':', "%3A")) || q.contains(&layer))),
        "the layer was uploaded again: {requests:?}"
    );
    user.run(&[
        "pull",
        &reg.reference("release/tool:1.0"),
        "--insecure",
        "-o",
        "final",
    ])
    .ok();
    assert_eq!(
        fs::read(user.path().join("final/tool")).unwrap(),
        b"promoted tool"
    );
}

#[test]
fn transient_upload_failures_are_retried_and_permanent_ones_fail_at_once() {
    use porter_e2e::{Fault, FaultProxy};
    let reg = Registry::start();
    let proxy = FaultProxy::start(&reg.host());
    let user = User::new();
    write(&user.path().join("tool"), b"pushed through a flaky proxy");
    let unavailable = Fault::Status {
        code: 503,
        retry_after: None,
    };
    proxy.inject("/blobs/uploads/", 2, unavailable);
    proxy.inject("/manifests/1.0", 1, Fault::Reset);
    let reference = proxy.reference("demo/flaky:1.0");
    user.run(&["push", "tool", &reference, "--insecure"]).ok();
    let statuses: Vec<u16> = proxy
        .requests_to("/blobs/uploads/")
        .iter()
        .map(|r| r.status)
        .collect();
    assert!(statuses.starts_with(&[503, 503]), "{statuses:?}");
    assert!(
        proxy.requests_to("/manifests/1.0").len() >= 2,
        "the reset manifest PUT was retried"
    );
    user.run(&[
        "pull",
        &reg.reference("demo/flaky:1.0"),
        "--insecure",
        "-o",
        "back",
    ])
    .ok();
    assert_eq!(
        fs::read(user.path().join("back/tool")).unwrap(),
        b"pushed through a flaky proxy"
    );

    let denied = Fault::Status {
        code: 403,
        retry_after: None,
    };
    proxy.inject("/blobs/uploads/", 10, denied);
    write(&user.path().join("other"), b"another tool");
    let err = user
        .run(&[
            "push",
            "other",
            &proxy.reference("demo/denied:1.0"),
            "--insecure",
        ])
        .fails();
    assert!(err.contains("403") && err.contains("demo/denied"), "{err}");
    // Two blobs (config and layer) go up at once, the config after a mount attempt (which
    // may be refused: it is then uploaded); no upload refused with 403 is tried again.
    let uploads: Vec<u16> = proxy
        .requests_to("/v2/demo/denied/blobs/uploads/")
        .iter()
        .filter(|r| !r.path.contains("mount="))
        .map(|r| r.status)
        .collect();
    assert!(
        !uploads.is_empty() && uploads.len() <= 2 && uploads.iter().all(|s| *s == 403),
        "403 is not retried: {uploads:?}"
    );
}

#[test]
fn a_push_to_a_wrong_digest_fails_before_anything_is_uploaded() {
    let reg = Registry::start();
    let user = User::new();
    write(&user.path().join("tool"), b"#!/bin/sh\necho tool\n");
    let wrong = format!("sha256:{}", "0".repeat(64));
    let mark = reg.mark();
    let err = user
        .run(&[
            "push",
            "tool",
            &format!("{}@{wrong}", reg.reference("demo/pinned")),
            "--insecure",
        ])
        .fails();
    assert!(
        err.contains(&wrong) && err.contains("nothing was uploaded"),
        "{err}"
    );
    let writes: Vec<_> = reg
        .requests_since(&mark)
        .into_iter()
        .filter(|r| r.method != "GET" && r.method != "HEAD")
        .collect();
    assert!(writes.is_empty(), "uploads were made: {writes:?}");
}
