//! Every byte that leaves the cache is verified: an export hashes the blob it copies or unpacks
//! in the same pass and refuses a mismatch before anything is visible at the destination. A
//! cached blob changed on disk (same size, so the pull trusts it as cached) makes the export
//! fail naming the blob; `cache verify --repair` then fixes the cache and the export works.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use porter_e2e::cli::User;
use porter_e2e::{LayerSpec, Registry, block_on, publish_index, publish_single};

/// Flips one bit of the cached blob `digest` (`sha256:…`), keeping its size.
fn corrupt(cache: &Path, digest: &str) {
    let path = cache
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
}

#[test]
fn a_corrupt_cached_layer_fails_the_export_naming_the_blob_and_writes_nothing() {
    let reg = Registry::start();
    let published = block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"the real binary".to_vec())],
        &[],
    ));
    let reference = reg.reference("demo/app:1.0");
    let user = User::new();
    user.run(&["pull", &reference, "--insecure"]).ok();
    let layer = &published.layers[0].digest;
    corrupt(&user.cache(), layer);

    for output in ["out", "app.bin"] {
        let err = user
            .run(&["pull", &reference, "--insecure", "-o", output])
            .fails();
        assert!(
            err.contains(&format!(
                "failed to export artifact: digest mismatch for cached blob {layer} ("
            )) && err.contains("the cache is corrupt"),
            "{err}"
        );
        assert!(!user.path().join(output).exists(), "{output} was written");
    }

    let repaired = user
        .run(&["cache", "verify", "--repair", "--insecure"])
        .stdout();
    assert!(repaired.contains(layer.as_str()), "{repaired}");
    user.run(&["pull", &reference, "--insecure", "-o", "out"])
        .ok();
    assert_eq!(
        std::fs::read(user.path().join("out/app")).unwrap(),
        b"the real binary"
    );
}

#[test]
fn a_corrupt_cached_archive_fails_every_platform_of_the_export() {
    let reg = Registry::start();
    let index = block_on(publish_index(
        &reg,
        "demo/tree:1.0",
        &[
            (
                "linux/arm64",
                vec![LayerSpec::binary("tool", b"arm".to_vec())],
            ),
            (
                "linux/amd64",
                vec![LayerSpec::targz(&[("bin/tool", 0o755, b"amd")], &["bin"])],
            ),
        ],
        &[],
    ));
    let reference = reg.reference("demo/tree:1.0");
    let user = User::new();
    user.run(&["pull", &reference, "--insecure", "--all-arch"])
        .ok();
    let archive = &index.platform("linux/amd64").manifest.layers[0].digest;
    corrupt(&user.cache(), archive);
    let err = user
        .run(&["pull", &reference, "--insecure", "--all-arch", "-o", "out"])
        .fails();
    assert!(
        err.contains(&format!("digest mismatch for cached blob {archive} (")),
        "{err}"
    );
    assert!(!user.path().join("out").exists(), "nothing is left");
}
