//! Platform selection is all or nothing, and the default platform takes one best match: through
//! the CLI, the go-plugin host and the FFI, against the real distribution registry on 127.0.0.1.
//!
//! A requested platform the artifact does not offer fails the pull before any layer (or leaf
//! manifest) is downloaded, naming it and listing what is offered; nothing is exported or
//! cached. Without platform flags, an index listing several variants of this machine's
//! architecture yields exactly one manifest: the best variant this CPU runs, never a newer one.
#![allow(clippy::unwrap_used)]

use porter_core::platform::Platform;
use porter_e2e::cli::User;
use porter_e2e::go_host::{Launch, assert_error};
use porter_e2e::{LayerSpec, Registry, block_on, publish_docker_list, publish_index};
use porter_ffi::PullOptions;
use porter_ffi::bindings::{PorterClient, PorterError};

const REPO: &str = "demo/tool:1.0";
const MISSING: &str = "no manifests found for requested platform(s): linux/s390x not offered; \
                       the artifact offers linux/amd64, linux/arm64";

/// A registry with an index of linux/amd64 and linux/arm64.
fn two_platforms() -> Registry {
    let reg = Registry::start();
    block_on(publish_index(
        &reg,
        REPO,
        &[
            (
                "linux/amd64",
                vec![LayerSpec::binary("tool", b"amd".to_vec())],
            ),
            (
                "linux/arm64",
                vec![LayerSpec::binary("tool", b"arm".to_vec())],
            ),
        ],
        &[],
    ));
    reg
}

/// Asserts that nothing but the index was fetched since `mark`: no blob, no leaf manifest.
fn only_the_index_was_fetched(reg: &Registry, mark: &porter_e2e::LogMark) {
    assert_eq!(reg.blob_gets_since(mark), [], "no blob may be downloaded");
    let manifests: Vec<String> = reg
        .manifest_gets_since(mark)
        .into_iter()
        .map(|m| m.reference)
        .collect();
    assert_eq!(manifests, ["1.0"], "only the index is fetched");
}

fn cached_blobs(cache: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(cache.join("blobs/sha256"))
        .map(|dir| {
            dir.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_requested_platform_the_index_lacks_fails_the_cli_pull_before_any_download() {
    let reg = two_platforms();
    let user = User::new();
    let mark = reg.mark();
    let err = user
        .run(&[
            "pull",
            &reg.reference(REPO),
            "--insecure",
            "--platform",
            "linux/amd64,linux/s390x",
            "-o",
            "out",
        ])
        .fails();
    assert!(
        err.contains(&format!("failed to export artifact: {MISSING}")),
        "{err}"
    );
    only_the_index_was_fetched(&reg, &mark);
    assert!(!user.path().join("out").exists(), "nothing is exported");
    assert_eq!(user.run(&["list"]).stdout(), "[]\n", "nothing is recorded");
    assert_eq!(cached_blobs(&user.cache()), [] as [String; 0]);
}

#[test]
fn a_requested_platform_the_index_lacks_fails_through_the_plugin_host() {
    let reg = two_platforms();
    let mark = reg.mark();
    let launch = Launch::new().cache_config().execute(
        "pull",
        &[
            &format!("arg0={}", reg.reference(REPO)),
            "insecure=true",
            "platform=linux/amd64",
            "platform=linux/s390x",
            "o=out",
        ],
    );
    let report = launch.run();
    assert_error(&report, &format!("failed to export artifact: {MISSING}"));
    only_the_index_was_fetched(&reg, &mark);
    assert!(!launch.dir.path().join("out").exists());
    assert_eq!(cached_blobs(&launch.porter_cache()), [] as [String; 0]);
}

#[test]
fn a_requested_platform_the_index_lacks_fails_through_the_ffi() {
    let reg = two_platforms();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let config = serde_json::json!({"Cache": {"Dir": cache}}).to_string();
    let client = PorterClient::new(Some(config)).unwrap();
    let mark = reg.mark();
    let out = dir.path().join("out");
    let options = PullOptions {
        platforms: vec!["linux/amd64".into(), "linux/s390x".into()],
        insecure: true,
        output: Some(out.display().to_string()),
        ..PullOptions::default()
    };
    let err = client
        .pull(reg.reference(REPO), Some(options), None, None)
        .unwrap_err();
    assert_eq!(
        err,
        PorterError::InvalidInput {
            message: format!("failed to export artifact: {MISSING}")
        }
    );
    only_the_index_was_fetched(&reg, &mark);
    assert!(!out.exists());
    assert!(client.list().unwrap().is_empty());
}

#[test]
fn the_default_platform_takes_the_one_best_variant_this_cpu_runs() {
    let host = Platform::host();
    let base = format!("{}/{}", host.os, host.arch);
    // A build for a CPU newer than any, one for an unknown variant, and the baseline, listed
    // in that order: only the baseline runs here.
    let reg = Registry::start();
    block_on(publish_index(
        &reg,
        REPO,
        &[
            (
                &format!("{base}/v999"),
                vec![LayerSpec::binary("tool", b"future cpu".to_vec())],
            ),
            (
                &format!("{base}/vX"),
                vec![LayerSpec::binary("tool", b"unknown".to_vec())],
            ),
            (&base, vec![LayerSpec::binary("tool", b"baseline".to_vec())]),
            (&base, vec![LayerSpec::binary("tool", b"second".to_vec())]),
        ],
        &[],
    ));
    let user = User::new();
    let mark = reg.mark();
    let result = user
        .run(&["pull", &reg.reference(REPO), "--insecure", "-o", "out"])
        .ok();
    assert_eq!(result["exported_files"], serde_json::json!(["out/tool"]));
    assert_eq!(
        std::fs::read(user.path().join("out/tool")).unwrap(),
        b"baseline"
    );
    // One leaf manifest and its layer (the shared empty config may be fetched too).
    let leaves = reg.manifest_gets_since(&mark).len();
    assert_eq!(leaves, 2, "the index and one manifest");
    let layers: Vec<_> = reg
        .blob_gets_since(&mark)
        .into_iter()
        .filter(|b| b.bytes_written > 2)
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
}

#[test]
fn a_single_manifest_declaring_another_platform_is_refused_before_its_layers() {
    // The per-platform manifests of a Docker list carry image configs naming their platform.
    let reg = Registry::start();
    let list = block_on(publish_docker_list(
        &reg,
        "demo/image:1.0",
        &[(
            "linux/arm64",
            vec![LayerSpec::binary("tool", b"arm".to_vec())],
        )],
    ));
    let arm = &list.platform("linux/arm64").manifest;
    let user = User::new();
    let mark = reg.mark();
    let err = user
        .run(&[
            "pull",
            &arm.reference,
            "--insecure",
            "--platform",
            "linux/amd64",
            "-o",
            "out",
        ])
        .fails();
    assert!(
        err.contains(
            "no manifests found for requested platform(s): linux/amd64 not offered; the \
             artifact offers linux/arm64"
        ),
        "{err}"
    );
    let layer = &arm.layers[0].digest;
    assert!(
        reg.blob_gets_since(&mark)
            .iter()
            .all(|b| &b.digest != layer),
        "the layer is not downloaded"
    );
    assert!(!user.path().join("out").exists());

    // The platform it declares is served.
    user.run(&[
        "pull",
        &arm.reference,
        "--insecure",
        "--platform",
        "linux/arm64",
    ])
    .ok();
}

#[test]
fn a_single_manifest_declaring_no_platform_is_used_with_a_warning() {
    let reg = Registry::start();
    block_on(porter_e2e::publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"app".to_vec())],
        &[],
    ));
    let user = User::new();
    let run = user.run(&[
        "pull",
        &reg.reference("demo/app:1.0"),
        "--insecure",
        "--platform",
        "linux/s390x",
        "-o",
        "out",
    ]);
    let result = run.ok();
    assert_eq!(
        result["exported_files"],
        serde_json::json!(["out/unknown/app"])
    );
    assert!(
        run.stderr()
            .contains("the artifact is a single manifest that declares no platform"),
        "{}",
        run.stderr()
    );
}
