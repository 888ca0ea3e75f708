//! Results that tell the truth, against the real registry: what a pull downloaded
//! (`downloaded_bytes`), what the selected platforms take (`total_size`), when the artifact was
//! first cached (`first_cached_at`, kept across pulls while `cached_at` moves); `list` naming
//! what is cached by its resolved reference and layouts by absolute path; the cache readable by
//! other users; `cache prune --max-size 0` emptying the cache even of entries whose blobs are
//! gone; layout pushes tagged `latest` like registry pushes. The JSON shapes of pull, push and
//! list are snapshots.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use porter_e2e::cli::{User, layout_names};
use porter_e2e::{Registry, StandardFixtures, block_on, ds_porter_bin, publish_standard};
use serde_json::Value;

fn setup() -> (Registry, StandardFixtures) {
    let reg = Registry::start();
    let fixtures = block_on(publish_standard(&reg));
    (reg, fixtures)
}

/// Snapshot of `text` with the registry, the user's directory and times (not Go's zero time)
/// replaced, and digests too when they depend on the machine (`host_dependent`).
fn snapshot(name: &str, text: &str, reg: &Registry, user: &User, host_dependent: bool) {
    let home = user.path().display().to_string();
    let host = reg.host();
    let mut filters = vec![
        (home.as_str(), "[HOME]"),
        (host.as_str(), "[REGISTRY]"),
        (
            r"\b[1-9]\d{3}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "[TIME]",
        ),
    ];
    if host_dependent {
        filters.push((r"sha256:[0-9a-f]{64}", "sha256:[DIGEST]"));
        filters.push((r#""id":"[0-9a-f]{16}""#, r#""id":"[ID]""#));
    }
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!(name, text);
    });
}

fn number(value: &Value, field: &str) -> u64 {
    value[field]
        .as_u64()
        .unwrap_or_else(|| panic!("{field} in {value}"))
}

#[test]
fn a_pull_reports_what_it_downloaded_and_what_the_selected_platforms_take() {
    let (reg, fixtures) = setup();
    let user = User::new();
    let reference = reg.reference("demo/tool:1.0");
    let pull = |args: &[&str]| {
        let mut argv = vec!["pull", reference.as_str(), "--insecure"];
        argv.extend_from_slice(args);
        user.run(&argv)
    };
    let first = pull(&["--platform", "linux/arm64"]);
    let result = first.ok();
    snapshot("pull_result", &first.stdout(), &reg, &user, false);

    let arm64 = &fixtures.tool.platform("linux/arm64").manifest;
    let selected = fixtures.tool.size
        + arm64.size
        + arm64.config.size
        + arm64.layers.iter().map(|l| l.size).sum::<u64>();
    assert_eq!(number(&result, "total_size"), selected);
    assert_eq!(
        number(&result, "downloaded_bytes"),
        selected,
        "a cold pull fetches every selected blob"
    );
    let first_cached_at = result["first_cached_at"].as_str().unwrap().to_owned();
    assert_eq!(result["cached_at"].as_str().unwrap(), first_cached_at);

    // Warm by tag: only the index is fetched again; the first caching time stays.
    let warm = pull(&["--platform", "linux/arm64"]).ok();
    assert_eq!(number(&warm, "downloaded_bytes"), fixtures.tool.size);
    assert_eq!(number(&warm, "total_size"), selected);
    assert_eq!(warm["first_cached_at"].as_str().unwrap(), first_cached_at);
    assert!(warm["cached_at"].as_str().unwrap() >= first_cached_at.as_str());

    // Another platform of the same artifact: only its blobs are new.
    let amd64 = &fixtures.tool.platform("linux/amd64").manifest;
    let more = pull(&["--platform", "linux/amd64"]).ok();
    let new_bytes = amd64.size + amd64.layers.iter().map(|l| l.size).sum::<u64>();
    let shared_config = amd64.config.digest == arm64.config.digest;
    let expected =
        fixtures.tool.size + new_bytes + if shared_config { 0 } else { amd64.config.size };
    assert_eq!(number(&more, "downloaded_bytes"), expected);
    assert_eq!(more["first_cached_at"].as_str().unwrap(), first_cached_at);

    // A cached digest costs nothing.
    let pinned = format!("{}@{}", reg.reference("demo/tool"), fixtures.tool.digest);
    let by_digest = user
        .run(&["pull", &pinned, "--insecure", "--platform", "linux/arm64"])
        .ok();
    assert_eq!(number(&by_digest, "downloaded_bytes"), 0);
}

#[test]
fn list_shows_resolved_references_first_cached_at_and_total_size() {
    let (reg, fixtures) = setup();
    let user = User::new();
    // A short reference, resolved against Registry.Default.
    let env = [
        ("DS_REGISTRY_DEFAULT", format!("{}/demo", reg.host())),
        ("DS_REGISTRY_INSECURE_REGISTRIES", reg.host()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let result = user.run_with(&["pull", "app:1.0"], &env).ok();
    assert_eq!(
        result["reference"], "app:1.0",
        "the result keeps what was typed"
    );
    let run = user.run(&["list", "--format", "json"]);
    let list = run.ok();
    snapshot("list_entries", &run.stdout(), &reg, &user, false);
    let entry = &list[0];
    assert_eq!(
        entry["reference"].as_str().unwrap(),
        reg.reference("demo/app:1.0")
    );
    assert_eq!(entry["first_cached_at"], result["first_cached_at"]);
    assert_eq!(
        number(entry, "total_size"),
        fixtures.app.size
            + fixtures.app.config.size
            + fixtures.app.layers.iter().map(|l| l.size).sum::<u64>()
    );
    assert!(entry.get("downloaded_bytes").is_none(), "a per-run figure");

    let table = user.run(&["list", "--format", "table"]);
    assert_eq!(table.code(), 0, "{}", table.stderr());
    snapshot("list_table", &table.stdout(), &reg, &user, false);
}

#[test]
fn a_push_result_keeps_its_shape() {
    let reg = Registry::start();
    let user = User::new();
    fs::write(user.path().join("tool"), b"#!/bin/sh\necho pushed\n").unwrap();
    let run = user.run_with(
        &[
            "push",
            "tool",
            &reg.reference("demo/pushed:1.0"),
            "--insecure",
        ],
        &[("SOURCE_DATE_EPOCH", "0")],
    );
    run.ok();
    let host_platform = format!("{}/{}", go_os(), go_arch());
    let text = run.stdout().replace(&host_platform, "[PLATFORM]");
    snapshot("push_result", &text, &reg, &user, true);
}

fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        os => os,
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        arch => arch,
    }
}

/// `ds-porter args` run in `dir` as `user`.
fn run_in(user: &User, dir: &Path, args: &[&str]) -> Value {
    let out = user.command(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The tags of a layout.
fn layout_tags(layout: &Path) -> Vec<String> {
    layout_names(layout)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn layouts_typed_alike_in_two_directories_are_two_entries_and_pushes_tag_latest() {
    let user = User::new();
    let mut expected = Vec::new();
    for (name, no_latest) in [("a", false), ("b", true)] {
        let dir = user.path().join(name);
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("tool"), format!("tool {name}\n")).unwrap();
        let mut push = vec!["push", "tool", "oci:store:1.0"];
        if no_latest {
            push.push("--no-latest");
        }
        run_in(&user, &dir, &push);
        let tags = layout_tags(&dir.join("store"));
        if no_latest {
            assert_eq!(tags, ["1.0"]);
        } else {
            assert_eq!(tags, ["1.0", "latest"], "as a registry push tags");
        }
        let pulled = run_in(&user, &dir, &["pull", "oci:store:1.0"]);
        assert_eq!(pulled["reference"], "oci:store:1.0");
        let abs = fs::canonicalize(dir.join("store")).unwrap();
        expected.push(format!("oci:{}:1.0", abs.display()));
    }
    let list = user.run(&["list", "--format", "json"]).ok();
    let mut listed: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reference"].as_str().unwrap().to_owned())
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected);
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Every file and directory below `dir`, `.lock` files and the staging area aside.
fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".lock") || name == ".ingest" {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        }
        out.push(path);
    }
}

#[test]
fn cached_files_are_0644_and_directories_0755_before_the_umask() {
    let (reg, _) = setup();
    for (umask, file_mode, dir_mode) in [("022", 0o644, 0o755), ("027", 0o640, 0o750)] {
        let user = User::new();
        let like_user = user.command(&[]);
        let mut sh = Command::new("sh");
        for (key, value) in like_user.get_envs() {
            match value {
                Some(value) => sh.env(key, value),
                None => sh.env_remove(key),
            };
        }
        let out = sh
            .arg("-c")
            .arg(format!(
                "umask {umask}; exec {} pull {} --insecure --all-arch",
                ds_porter_bin().display(),
                reg.reference("demo/tool:1.0")
            ))
            .current_dir(user.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let mut paths = Vec::new();
        walk(&user.cache(), &mut paths);
        let blobs = paths.iter().filter(|p| p.is_file()).count();
        assert!(
            blobs >= 8,
            "layers, configs, manifests, metadata: {paths:?}"
        );
        for path in &paths {
            let expected = if path.is_dir() { dir_mode } else { file_mode };
            assert_eq!(mode(path), expected, "umask {umask}: {}", path.display());
        }
    }
}

#[test]
fn prune_to_zero_removes_entries_whose_blobs_are_gone() {
    let (reg, _) = setup();
    let user = User::new();
    user.run(&["pull", &reg.reference("demo/app:1.0"), "--insecure"])
        .ok();
    let blobs = user.cache().join("blobs/sha256");
    for entry in fs::read_dir(&blobs).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    assert_eq!(
        user.run(&["list", "--format", "json"])
            .ok()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let report = user.run(&["cache", "prune", "--max-size", "0"]).ok();
    assert_eq!(report["removed"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(user.run(&["list", "--format", "json"]).stdout(), "[]\n");
}
