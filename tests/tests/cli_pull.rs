//! `ds-porter pull` and `list` as a user runs them, against the real distribution registry on
//! 127.0.0.1: the conformance cases of ds-contract §12 (41–42, 45–69, 84–85) that concern the
//! engine and the CLI, with the Go plugin's bugs fixed where §10 says so (named in the tests).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use porter_e2e::cli::User;
use porter_e2e::skopeo::skopeo;
use porter_e2e::{
    LayerSpec, Registry, StandardFixtures, TarEntry, block_on, cache_id, publish_index,
    publish_single, publish_standard,
};
use serde_json::Value;

fn setup() -> (Registry, StandardFixtures) {
    let reg = Registry::start();
    let fixtures = block_on(publish_standard(&reg));
    (reg, fixtures)
}

fn exported(result: &Value) -> Vec<String> {
    result["exported_files"]
        .as_array()
        .map_or_else(Vec::new, |a| {
            a.iter().map(|v| v.as_str().unwrap().to_owned()).collect()
        })
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn host_is_linux_amd64() -> bool {
    cfg!(all(target_os = "linux", target_arch = "x86_64"))
}

// --- list -------------------------------------------------------------------------------------

#[test]
fn list_of_an_empty_cache_is_an_empty_array_not_null() {
    // Case 41, intentional fix of §10.16: the Go plugin printed `null`.
    let user = User::new();
    let run = user.run(&["list"]);
    assert_eq!(run.code(), 0);
    assert_eq!(run.stdout(), "[]\n");
}

#[test]
fn list_shows_entries_left_by_the_go_plugin_and_skips_stray_directories() {
    // Case 42.
    let user = User::new();
    let entry = user.cache().join("test123");
    fs::create_dir_all(&entry).unwrap();
    fs::create_dir_all(user.cache().join("stray")).unwrap();
    fs::write(
        entry.join("metadata.json"),
        r#"{"id":"test123","reference":"registry.test/artifact:v1.0.0","digest":"sha256:abc123","size":1024,"metadata":{"test":"value"}}"#,
    )
    .unwrap();
    let run = user.run(&["list"]);
    assert_eq!(run.code(), 0, "{}", run.stderr());
    insta::assert_snapshot!(run.stdout(), @r#"[{"id":"test123","reference":"registry.test/artifact:v1.0.0","digest":"sha256:abc123","size":1024,"metadata":{"test":"value"},"cached":false,"cached_at":"0001-01-01T00:00:00Z"}]"#);
}

// --- argument validation ----------------------------------------------------------------------

#[test]
fn all_arch_with_platform_fails_before_any_request() {
    // Case 47.
    let reg = Registry::start();
    let user = User::new();
    let mark = reg.mark();
    let reference = reg.reference("demo/tool:1.0");
    let err = user
        .run(&[
            "pull",
            &reference,
            "--insecure",
            "--all-arch",
            "--platform",
            "linux/amd64",
        ])
        .usage_error();
    assert!(
        err.contains("--all-arch cannot be combined with --platform"),
        "{err}"
    );
    assert!(reg.requests_since(&mark).is_empty());
}

#[test]
fn an_invalid_platform_fails_before_any_request() {
    // Case 55, fixed per §10.9: Go pulled first and failed afterwards.
    let reg = Registry::start();
    let user = User::new();
    let mark = reg.mark();
    let err = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--platform",
            "linux",
            "-o",
            "out",
        ])
        .usage_error();
    assert!(
        err.contains(r#"invalid platform "linux", expected os/arch or os/arch/variant"#),
        "{err}"
    );
    assert!(reg.requests_since(&mark).is_empty());
}

#[test]
fn malformed_references_are_named() {
    let user = User::new();
    for bad in [
        "UPPER/x:1",
        "https://ghcr.io/x:1",
        "oci:",
        "reg/x@sha256:123",
    ] {
        let err = user.run(&["pull", bad]).usage_error();
        assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
    }
}

// --- pulling into the cache -------------------------------------------------------------------

#[test]
fn pull_caches_a_single_manifest_artifact_in_a_readable_oci_layout() {
    // Case 48.
    let (reg, fx) = setup();
    let user = User::new();
    let reference = reg.reference("demo/app:1.0");
    let result = user.run(&["pull", &reference, "--insecure"]).ok();
    let id = cache_id(&fx.app.digest);
    assert_eq!(result["id"], id.as_str());
    assert_eq!(result["reference"], reference.as_str());
    assert_eq!(result["digest"], fx.app.digest.as_str());
    assert_eq!(result["size"], fx.app.raw.len());
    assert_eq!(result["cached"], true);
    assert_eq!(
        result["local_path"],
        user.cache().join(&id).display().to_string().as_str()
    );
    assert!(result.get("exported_files").is_none());
    assert!(user.cache().join(&id).join("metadata.json").is_file());
    for layer in &fx.app.layers {
        let hex = layer.digest.strip_prefix("sha256:").unwrap();
        assert!(user.cache().join("blobs/sha256").join(hex).is_file());
    }
    // skopeo reads the cache as an OCI layout under the reference's name.
    let layout_ref = format!("oci:{}:{}", user.cache().display(), reference);
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", &layout_ref])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, fx.app.raw);
    let copy = user.path().join("copy");
    let out = Command::new("skopeo")
        .args(["copy", &layout_ref, &format!("oci:{}:x", copy.display())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_plain_http_registry_needs_insecure_there_is_no_silent_downgrade() {
    // Case 49, fixed per §10.5: Go retried over plain HTTP when an error message matched.
    let (reg, _) = setup();
    let user = User::new();
    let reference = reg.reference("demo/app:1.0");
    let err = user.run(&["pull", &reference]).fails();
    assert!(err.contains(&reg.host()), "names the registry: {err}");
    assert!(
        err.contains("--insecure"),
        "says how to allow plain HTTP: {err}"
    );
    // Listing the registry as insecure in the configuration works without the flag.
    let list = format!("[\"{}\"]", reg.host());
    user.run_with(
        &["pull", &reference],
        &[("DS_REGISTRY_INSECURE_REGISTRIES", &list)],
    )
    .ok();
}

#[test]
fn metadata_and_plugin_info_come_from_index_annotations() {
    // Cases 50 and 51.
    let (reg, _) = setup();
    let user = User::new();
    let tool = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--platform",
            "linux/amd64",
        ])
        .ok();
    assert_eq!(tool["metadata"], serde_json::json!({"name": "porter"}));
    assert!(tool.get("plugin_info").is_none());
    let info = user
        .run(&[
            "pull",
            &reg.reference("demo/plugininfo:1.0"),
            "--insecure",
            "--platform",
            "linux/amd64",
        ])
        .ok();
    assert_eq!(
        info["plugin_info"],
        serde_json::json!({"plugin_name": "x", "version": "1", "parameters": {"a": "b"}})
    );
}

#[test]
fn pulling_one_platform_transfers_only_that_platforms_layer() {
    let (reg, fx) = setup();
    let user = User::new();
    let mark = reg.mark();
    user.run(&[
        "pull",
        &reg.reference("demo/tool:1.0"),
        "--insecure",
        "--platform",
        "linux/arm64",
    ])
    .ok();
    let gets = reg.blob_gets_since(&mark);
    let arm = fx.tool.platform("linux/arm64");
    let mut wanted: Vec<String> = arm
        .manifest
        .layers
        .iter()
        .map(|l| l.digest.clone())
        .collect();
    wanted.push(arm.manifest.config.digest.clone());
    for get in &gets {
        assert!(wanted.contains(&get.digest), "unexpected blob GET {get:?}");
    }
    let layer_bytes: u64 = gets
        .iter()
        .filter(|g| arm.manifest.layers.iter().any(|l| l.digest == g.digest))
        .map(|g| g.bytes_written)
        .sum();
    assert_eq!(layer_bytes, arm.manifest.layer_bytes());
    for other in ["linux/amd64", "windows/amd64"] {
        let m = &fx.tool.platform(other).manifest;
        assert!(
            gets.iter()
                .all(|g| m.layers.iter().all(|l| l.digest != g.digest)),
            "{other} layer fetched"
        );
    }
}

#[test]
fn a_warm_re_pull_by_tag_costs_one_manifest_request_and_no_blobs() {
    let (reg, fx) = setup();
    let user = User::new();
    let reference = reg.reference("demo/tool:1.0");
    user.run(&["pull", &reference, "--insecure", "--all-arch"])
        .ok();
    let mark = reg.mark();
    user.run(&["pull", &reference, "--insecure", "--all-arch"])
        .ok();
    assert!(reg.blob_gets_since(&mark).is_empty());
    assert_eq!(reg.manifest_gets_since(&mark).len(), 1);
    // By digest, a cached artifact needs no request at all.
    let pinned = reg.reference(&format!("demo/tool@{}", fx.tool.digest));
    let mark = reg.mark();
    user.run(&["pull", &pinned, "--insecure", "--all-arch"])
        .ok();
    assert!(reg.manifest_gets_since(&mark).is_empty() && reg.blob_gets_since(&mark).is_empty());
}

#[test]
fn the_same_artifact_under_two_tags_is_one_cache_entry() {
    // Case 84.
    let reg = Registry::start();
    let entries = [(
        "linux/amd64",
        vec![LayerSpec::binary("tool", b"same\n".to_vec())],
    )];
    let a = block_on(publish_index(&reg, "demo/same:1.0", &entries, &[]));
    let b = block_on(publish_index(&reg, "demo/same:stable", &entries, &[]));
    assert_eq!(a.digest, b.digest);
    let user = User::new();
    let first = user
        .run(&[
            "pull",
            &reg.reference("demo/same:1.0"),
            "--insecure",
            "--all-arch",
        ])
        .ok();
    let second = user
        .run(&[
            "pull",
            &reg.reference("demo/same:stable"),
            "--insecure",
            "--all-arch",
        ])
        .ok();
    assert_eq!(first["id"], second["id"]);
    let list: Value = serde_json::from_str(&user.run(&["list"]).stdout()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        list[0]["reference"],
        reg.reference("demo/same:stable").as_str()
    );
}

#[test]
fn an_unreachable_registry_fails_and_leaves_nothing_behind() {
    // Case 85, fixed: Go left a temp directory in the cache.
    let user = User::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = user
        .run(&["pull", &format!("127.0.0.1:{port}/demo/x:1"), "--insecure"])
        .fails();
    assert!(err.contains("failed to copy artifact:"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert_eq!(user.run(&["list"]).stdout(), "[]\n");
    let entries: Vec<_> = fs::read_dir(user.cache())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // Lock files may exist; nothing else but the empty layout may.
    let mut names: Vec<String> = entries
        .iter()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    names.sort();
    assert_eq!(names, [".ingest", "blobs", "oci-layout"]);
}

#[test]
fn a_missing_tag_is_a_not_found_error_naming_the_repository() {
    let (reg, _) = setup();
    let user = User::new();
    let err = user
        .run(&["pull", &reg.reference("demo/tool:nope"), "--insecure"])
        .fails();
    assert!(err.contains("demo/tool") && err.contains("404"), "{err}");
}

// --- export -----------------------------------------------------------------------------------

#[test]
fn the_host_platform_is_exported_straight_into_the_destination() {
    // Case 52.
    if !host_is_linux_amd64() {
        return;
    }
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "-o",
            "out",
        ])
        .ok();
    assert_eq!(exported(&result), ["out/tool"]);
    assert_eq!(
        fs::read(user.path().join("out/tool")).unwrap(),
        StandardFixtures::tool_contents("linux/amd64")
    );
    assert_eq!(
        mode(&user.path().join("out/tool")),
        0o755,
        "binaries are executable (§10.2)"
    );
    assert_eq!(fs::read_dir(user.path().join("out")).unwrap().count(), 1);
}

#[test]
fn an_explicit_platform_goes_into_os_arch_subdirectories() {
    // Case 53.
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--platform",
            "linux/arm64",
            "-o",
            "out",
        ])
        .ok();
    assert_eq!(exported(&result), ["out/linux/arm64/tool"]);
    assert_eq!(
        fs::read(user.path().join("out/linux/arm64/tool")).unwrap(),
        StandardFixtures::tool_contents("linux/arm64")
    );
}

#[test]
fn all_arch_exports_every_platform_and_fills_the_cache_for_skopeo() {
    // Case 54.
    let (reg, _) = setup();
    let user = User::new();
    let reference = reg.reference("demo/tool:1.0");
    let result = user
        .run(&["pull", &reference, "--insecure", "--all-arch", "-o", "out"])
        .ok();
    assert_eq!(
        exported(&result),
        [
            "out/linux/amd64/tool",
            "out/linux/arm64/tool",
            "out/windows/amd64/tool.exe"
        ]
    );
    let layout_ref = format!("oci:{}:{}", user.cache().display(), reference);
    let copy = format!("oci:{}:all", user.path().join("copy").display());
    let out = Command::new("skopeo")
        .args(["copy", "--all", &layout_ref, &copy])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn comma_separated_platform_lists_are_understood() {
    // Fixed per §10.9: Go never matched `linux/amd64,linux/arm64`.
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--platform",
            "linux/amd64,linux/arm64",
            "-o",
            "out",
        ])
        .ok();
    assert_eq!(
        exported(&result),
        ["out/linux/amd64/tool", "out/linux/arm64/tool"]
    );
}

#[test]
fn a_platform_the_index_lacks_is_an_export_error() {
    // Case 56.
    let (reg, _) = setup();
    let user = User::new();
    let err = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--platform",
            "darwin/arm64",
            "-o",
            "out",
        ])
        .fails();
    assert!(
        err.contains("failed to export artifact: no manifests found for requested platform(s)"),
        "{err}"
    );
}

#[test]
fn a_single_manifest_with_a_platform_goes_to_unknown() {
    // Case 57.
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/app:1.0"),
            "--insecure",
            "--platform",
            "linux/amd64",
            "-o",
            "out",
        ])
        .ok();
    assert_eq!(exported(&result), ["out/unknown/app"]);
}

#[test]
fn a_destination_with_an_extension_is_written_as_one_file() {
    // Case 58.
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/untitled:1.0"),
            "--insecure",
            "-o",
            "bin/tool.bin",
        ])
        .ok();
    assert_eq!(exported(&result), ["bin/tool.bin"]);
    assert_eq!(
        fs::read(user.path().join("bin/tool.bin")).unwrap(),
        b"untitled tool\n"
    );
}

#[test]
fn untitled_layers_are_named_after_the_repository() {
    // Case 59.
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/untitled:1.0"),
            "--insecure",
            "-o",
            "outdir",
        ])
        .ok();
    assert_eq!(exported(&result), ["outdir/untitled"]);
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/winidx:1.0"),
            "--insecure",
            "--platform",
            "windows/amd64",
            "-o",
            "outdir",
        ])
        .ok();
    assert_eq!(exported(&result), ["outdir/windows/amd64/winidx.exe"]);
}

#[test]
fn several_platforms_into_an_existing_file_is_refused() {
    // Case 60.
    let (reg, _) = setup();
    let user = User::new();
    fs::write(user.path().join("out.bin"), "keep").unwrap();
    let err = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--all-arch",
            "-o",
            "out.bin",
        ])
        .usage_error();
    assert!(
        err.contains("destination must be a directory when exporting multiple platforms"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(user.path().join("out.bin")).unwrap(),
        "keep"
    );
}

#[test]
fn two_layers_cannot_go_into_one_file() {
    // Case 61.
    let (reg, _) = setup();
    let user = User::new();
    let err = user
        .run(&[
            "pull",
            &reg.reference("demo/twolayers:1.0"),
            "--insecure",
            "-o",
            "x.bin",
        ])
        .fails();
    assert!(
        err.contains("failed to export artifact: expected a single layer, found 2"),
        "{err}"
    );
    assert!(!user.path().join("x.bin").exists());
}

#[test]
fn tar_gzip_layers_are_extracted_with_their_modes() {
    // Case 62.
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/archive:1.0"),
            "--insecure",
            "-o",
            "d",
        ])
        .ok();
    assert_eq!(exported(&result), ["d/bin", "d/bin/tool"]);
    assert_eq!(
        fs::read(user.path().join("d/bin/tool")).unwrap(),
        StandardFixtures::ARCHIVE_TOOL
    );
    assert_eq!(mode(&user.path().join("d/bin/tool")), 0o755);
}

#[test]
fn docker_manifest_lists_are_understood() {
    // Fixed per §10.11: Go treated manifest lists as plain manifests and exported nothing.
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/dockerlist:1.0"),
            "--insecure",
            "--platform",
            "linux/arm64",
            "-o",
            "d",
        ])
        .ok();
    assert_eq!(exported(&result), ["d/linux/arm64/tool"]);
    assert_eq!(
        fs::read_to_string(user.path().join("d/linux/arm64/tool")).unwrap(),
        "docker tool for linux/arm64\n"
    );
}

#[test]
fn hostile_archives_write_nothing_outside_the_destination() {
    // Cases 63 and 64; 64 is the Go plugin's documented vulnerability.
    let reg = Registry::start();
    let outside = tempfile::tempdir().unwrap();
    let outside_path = outside.path().display().to_string();
    block_on(publish_single(
        &reg,
        "demo/evil:1.0",
        &[LayerSpec::targz_entries(&[TarEntry::File {
            path: "../evil".into(),
            mode: 0o644,
            contents: b"x".to_vec(),
        }])],
        &[],
    ));
    block_on(publish_single(
        &reg,
        "demo/linkwrite:1.0",
        &[LayerSpec::targz_entries(&[
            TarEntry::Symlink {
                path: "l".into(),
                target: outside_path.clone(),
            },
            TarEntry::File {
                path: "l/pwn".into(),
                mode: 0o644,
                contents: b"pwned".to_vec(),
            },
        ])],
        &[],
    ));
    let user = User::new();
    let err = user
        .run(&[
            "pull",
            &reg.reference("demo/evil:1.0"),
            "--insecure",
            "-o",
            "d",
        ])
        .fails();
    assert!(
        err.contains("failed to export artifact:") && err.contains("../evil"),
        "{err}"
    );
    assert!(!user.path().join("evil").exists());
    let err = user
        .run(&[
            "pull",
            &reg.reference("demo/linkwrite:1.0"),
            "--insecure",
            "-o",
            "d2",
        ])
        .fails();
    assert!(err.contains("failed to export artifact:"), "{err}");
    assert!(
        !outside.path().join("pwn").exists(),
        "nothing written through the link"
    );
    assert!(!user.path().join("d2/l").exists(), "nothing half-extracted");
}

#[test]
fn layer_titles_are_sanitised() {
    // Case 65.
    let reg = Registry::start();
    block_on(publish_single(
        &reg,
        "demo/title:1.0",
        &[LayerSpec::binary("a b:c/d", b"t".to_vec())],
        &[],
    ));
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/title:1.0"),
            "--insecure",
            "-o",
            "d",
        ])
        .ok();
    assert_eq!(exported(&result), ["d/a-b-c-d"]);
}

#[test]
fn an_export_records_the_output_as_finalizer_argument() {
    // Case 66.
    let (reg, _) = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/finalizer:1.0"),
            "--insecure",
            "--platform",
            "linux/amd64",
            "-o",
            "out",
        ])
        .ok();
    let abs = user.path().join("out").display().to_string();
    assert_eq!(
        result["metadata"]["ds.finalizer.args"],
        serde_json::to_string(&[abs]).unwrap().as_str()
    );
    // metadata.json keeps the artifact's own annotations only.
    let stored: Value = serde_json::from_slice(
        &fs::read(
            user.cache()
                .join(result["id"].as_str().unwrap())
                .join("metadata.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert!(stored["metadata"].get("ds.finalizer.args").is_none());
}

// --- configuration ----------------------------------------------------------------------------

#[test]
fn credentials_from_the_environment_authenticate_pulls_including_token_only_entries() {
    // Case 79, fixed per §10.4: Go ignored token-only credentials on pull.
    let reg = Registry::start_with_htpasswd("token", "s3cret");
    block_on(publish_single(
        &reg,
        "demo/private:1.0",
        &[LayerSpec::binary("p", b"private".to_vec())],
        &[],
    ));
    let user = User::new();
    let reference = reg.reference("demo/private:1.0");
    let err = user.run(&["pull", &reference, "--insecure"]).fails();
    assert!(err.contains("401") && err.contains("demo/private"), "{err}");
    let creds = format!(
        r#"[{{"registry":"http://{}/","token":"s3cret"}}]"#,
        reg.host()
    );
    let run = user.run_with(
        &["pull", &reference, "--insecure", "--log-level", "trace"],
        &[("DS_AUTH_CREDENTIALS", &creds)],
    );
    run.ok();
    assert!(!run.stderr().contains("s3cret"), "secrets are never logged");
}

#[test]
fn a_yaml_config_file_sets_the_cache_and_the_environment_wins() {
    let (reg, _) = setup();
    let user = User::new();
    let yaml = user.path().join("ds.yaml");
    fs::write(
        &yaml,
        format!(
            "cache:\n  dir: {}/yaml-cache\nregistry:\n  insecure_registries: [\"{}\"]\n",
            user.path().display(),
            reg.host()
        ),
    )
    .unwrap();
    let mut cmd = user.command(&[
        "--config",
        yaml.to_str().unwrap(),
        "pull",
        &reg.reference("demo/app:1.0"),
    ]);
    cmd.env_remove("DS_CACHE_DIR");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        result["local_path"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}/yaml-cache/porter/", user.path().display()))
    );
    // DS_CACHE_DIR overrides the file.
    let result = user
        .run(&[
            "--config",
            yaml.to_str().unwrap(),
            "pull",
            &reg.reference("demo/app:1.0"),
        ])
        .ok();
    assert!(
        result["local_path"]
            .as_str()
            .unwrap()
            .starts_with(&user.cache().display().to_string())
    );
    let err = user.run(&["--config", "missing.yaml", "list"]).fails();
    assert!(err.contains("missing.yaml"), "{err}");
}

// --- sharing one cache ------------------------------------------------------------------------

#[test]
fn concurrent_pulls_into_one_cache_lose_nothing() {
    let (reg, _) = setup();
    let user = User::new();
    let refs = [
        "demo/tool:1.0",
        "demo/app:1.0",
        "demo/plugininfo:1.0",
        "demo/finalizer:1.0",
        "demo/tool:1.0",
        "demo/archive:1.0",
    ];
    let children: Vec<_> = refs
        .iter()
        .map(|r| {
            user.command(&["pull", &reg.reference(r), "--insecure", "--all-arch"])
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        assert!(child.wait_with_output().unwrap().status.success());
    }
    let list: Value = serde_json::from_str(&user.run(&["list"]).stdout()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 5);
    let index: Value =
        serde_json::from_slice(&fs::read(user.cache().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"].as_array().unwrap().len(),
        5,
        "every reference recorded once"
    );
}

/// Waits (bounded) for every child; kills them all and panics if one is still running at the
/// deadline.
fn wait_all(mut children: Vec<std::process::Child>, limit: Duration) -> Vec<std::process::Output> {
    let started = Instant::now();
    let max_polls = limit.as_millis() / 20 + 1;
    for _ in 0..max_polls {
        let mut running = 0;
        for child in &mut children {
            if child.try_wait().unwrap().is_none() {
                running += 1;
            }
        }
        if running == 0 {
            return children
                .into_iter()
                .map(|c| c.wait_with_output().unwrap())
                .collect();
        }
        if started.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("pulls still running after {limit:?}");
}

#[test]
fn concurrent_pulls_of_the_same_and_different_artifacts_leave_one_whole_entry_each() {
    let (reg, fx) = setup();
    let user = User::new();
    let pinned = format!("demo/tool@{}", fx.tool.digest);
    // Three processes race for one tag, two for another, one asks for the first artifact by
    // digest, and two pull artifacts of their own.
    let wanted: Vec<(String, &str)> = [
        ("demo/tool:1.0", fx.tool.digest.as_str()),
        ("demo/tool:1.0", &fx.tool.digest),
        ("demo/tool:1.0", &fx.tool.digest),
        ("demo/archive:1.0", &fx.archive.digest),
        ("demo/archive:1.0", &fx.archive.digest),
        (&pinned, &fx.tool.digest),
        ("demo/twolayers:1.0", &fx.twolayers.digest),
        ("demo/plugininfo:1.0", &fx.plugininfo.digest),
    ]
    .into_iter()
    .map(|(r, d)| (reg.reference(r), d))
    .collect();
    let children: Vec<_> = wanted
        .iter()
        .map(|(reference, _)| {
            user.command(&["pull", reference, "--insecure", "--all-arch"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Meanwhile `list` runs again and again: it never shows a torn or duplicated entry.
    let pulling = AtomicBool::new(true);
    let (outputs, lists) = std::thread::scope(|scope| {
        let lister = scope.spawn(|| {
            let mut lists = Vec::new();
            for _ in 0..100 {
                if !pulling.load(Ordering::Relaxed) {
                    break;
                }
                lists.push(user.run(&["list"]));
            }
            lists
        });
        let outputs = wait_all(children, Duration::from_secs(180));
        pulling.store(false, Ordering::Relaxed);
        (outputs, lister.join().unwrap())
    });
    for run in &lists {
        let list = run.ok();
        let mut ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        let listed = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), listed, "duplicates: {list}");
        for entry in list.as_array().unwrap() {
            assert!(
                wanted.iter().any(|(_, d)| entry["digest"] == *d) && entry["cached"] == true,
                "{entry}"
            );
        }
    }
    for (out, (reference, digest)) in outputs.iter().zip(&wanted) {
        assert!(
            out.status.success(),
            "{reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(result["digest"], *digest, "{reference}");
        assert_eq!(result["id"], cache_id(digest).as_str());
    }

    let mut names: Vec<&str> = wanted.iter().map(|(r, _)| r.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut digests: Vec<&str> = wanted.iter().map(|(_, d)| *d).collect();
    digests.sort_unstable();
    digests.dedup();
    let digest_of = |name: &str| wanted.iter().find(|(r, _)| r == name).unwrap().1;

    // `list`: one entry per artifact, each whole.
    let list: Value = serde_json::from_str(&user.run(&["list"]).stdout()).unwrap();
    let mut listed: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, digests, "{list}");
    for entry in list.as_array().unwrap() {
        let digest = entry["digest"].as_str().unwrap();
        assert_eq!(entry["id"], cache_id(digest).as_str(), "{entry}");
        assert_eq!(entry["cached"], true, "{entry}");
        assert!(
            wanted
                .iter()
                .any(|(r, d)| *d == digest && entry["reference"] == r.as_str()),
            "{entry}"
        );
        let stored: Value = serde_json::from_slice(
            &fs::read(user.cache().join(cache_id(digest)).join("metadata.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(stored["digest"], digest);
    }

    // index.json: every name once, pointing at its artifact.
    let recorded = porter_e2e::cli::layout_names(&user.cache());
    let recorded: Vec<(&str, &str)> = recorded
        .iter()
        .map(|(name, digest)| (name.as_str(), digest.as_str()))
        .collect();
    let expected: Vec<(&str, &str)> = names.iter().map(|n| (*n, digest_of(n))).collect();
    assert_eq!(recorded, expected);

    // No temporary file survived, every blob hashes to its name, and verify agrees.
    let ingest: Vec<_> = fs::read_dir(user.cache().join(".ingest"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(ingest.is_empty(), "{ingest:?}");
    for entry in fs::read_dir(user.cache()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.starts_with(".tmp-"), "{name} left in the cache");
    }
    for entry in fs::read_dir(user.cache().join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let hex = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            porter_e2e::sha256_digest(&fs::read(&path).unwrap()),
            format!("sha256:{hex}")
        );
    }
    let report = user.run(&["cache", "verify"]).ok();
    assert_eq!(report["corrupt"], serde_json::json!([]), "{report}");
    assert_eq!(report["missing"], serde_json::json!([]), "{report}");

    // skopeo reads every entry as an OCI layout and copies it whole.
    for (i, name) in names.iter().enumerate() {
        let layout_ref = format!("oci:{}:{name}", user.cache().display());
        let raw = skopeo(&["inspect", "--raw", &layout_ref]);
        assert_eq!(porter_e2e::sha256_digest(&raw), digest_of(name), "{name}");
        let copy = format!(
            "oci:{}:copy",
            user.path().join(format!("copy-{i}")).display()
        );
        skopeo(&["copy", "--all", &layout_ref, &copy]);
    }
}

#[test]
fn list_output_after_pulls_is_stable() {
    let (reg, _) = setup();
    let user = User::new();
    user.run(&[
        "pull",
        &reg.reference("demo/plugininfo:1.0"),
        "--insecure",
        "--all-arch",
    ])
    .ok();
    user.run(&["pull", &reg.reference("demo/app:1.0"), "--insecure"])
        .ok();
    let list = user.run(&["list"]).stdout();
    let cache = user.cache().display().to_string();
    insta::with_settings!({filters => vec![
        (cache.as_str(), "[CACHE]"),
        (reg.host().as_str(), "[REGISTRY]"),
        (r#""(cached_at|first_cached_at)":"[^"]+""#, r#""$1":"[TIME]""#),
    ]}, {
        insta::assert_snapshot!(list);
    });
}

#[test]
fn the_default_ds_config_file_is_read_from_home() {
    let user = User::new();
    let config = user.path().join(".config/ds/config.yaml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    fs::write(
        &config,
        format!("cache:\n  dir: {}/from-yaml\n", user.path().display()),
    )
    .unwrap();
    let mut cmd = user.command(&["list"]);
    cmd.env_remove("DS_CACHE_DIR");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        user.path().join("from-yaml/porter/oci-layout").is_file(),
        "cache created where the YAML says"
    );
}

#[test]
fn help_completions_and_version_work_without_configuration() {
    let user = User::new();
    let help = user.run(&["pull", "--help"]);
    assert_eq!(help.code(), 0);
    for flag in ["--output", "--platform", "--all-arch", "--insecure"] {
        assert!(help.stdout().contains(flag), "{flag} documented");
    }
    let completions = user.run(&["completions", "bash"]);
    assert_eq!(completions.code(), 0);
    assert!(completions.stdout().contains("ds-porter"));
    let version = user.run(&["--version"]);
    assert!(version.stdout().starts_with("porter version "));
    let bad = user.run(&["pull", "--no-such-flag", "x"]);
    assert_eq!(bad.code(), 2, "command-line syntax errors exit 2");
}
