//! Every byte that leaves the cache is verified: an export hashes the blob it copies or unpacks
//! in the same pass and refuses a mismatch before anything is visible at the destination. A
//! cached blob changed on disk (same size, so the pull trusts it as cached) is taken out of the
//! cache: online it is fetched again and the export repeated; offline the pull fails naming it
//! and suggesting `cache verify --repair`.
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
fn a_corrupt_cached_layer_is_fetched_again_online_and_refused_offline() {
    let reg = Registry::start();
    let published = block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"the real binary".to_vec())],
        &[],
    ));
    let reference = reg.reference("demo/app:1.0");
    let by_digest = format!("{}@{}", reg.reference("demo/app"), published.digest);
    let user = User::new();
    user.run(&["pull", &reference, "--insecure"]).ok();
    let layer = &published.layers[0].digest;

    // Offline, by tag and by digest: refused before anything is written, naming the blob, and
    // the damaged blob is out of the cache.
    for (target, output) in [(&reference, "out"), (&by_digest, "app.bin")] {
        corrupt(&user.cache(), layer);
        let err = user
            .run(&["pull", target, "--offline", "-o", output])
            .fails();
        assert!(
            err.contains(&format!("cached blob {layer} (")) && err.contains("is damaged"),
            "{err}"
        );
        assert!(
            err.contains("hint: run `ds-porter cache verify --repair`"),
            "{err}"
        );
        assert!(!user.path().join(output).exists(), "{output} was written");
        assert!(
            !user
                .cache()
                .join("blobs/sha256")
                .join(layer.trim_start_matches("sha256:"))
                .exists(),
            "the damaged blob stayed in the cache"
        );
        user.run(&["cache", "verify", "--repair", "--insecure"])
            .stdout();
    }

    // Online, by tag and by digest: the blob is fetched again, once, and the export is right.
    for (target, output) in [(&reference, "out"), (&by_digest, "app.bin")] {
        corrupt(&user.cache(), layer);
        let mark = reg.mark();
        let run = user.run(&["pull", target, "--insecure", "-o", output]);
        assert!(
            run.stderr().contains("fetching it again"),
            "{}",
            run.stderr()
        );
        run.ok();
        let exported = if output == "out" { "out/app" } else { output };
        assert_eq!(
            std::fs::read(user.path().join(exported)).unwrap(),
            b"the real binary"
        );
        let gets = reg
            .blob_gets_since(&mark)
            .into_iter()
            .filter(|g| &g.digest == layer)
            .count();
        assert_eq!(gets, 1, "the layer is fetched again once");
    }
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
        .run(&["pull", &reference, "--offline", "--all-arch", "-o", "out"])
        .fails();
    assert!(
        err.contains(&format!("cached blob {archive} (")) && err.contains("is damaged"),
        "{err}"
    );
    assert!(!user.path().join("out").exists(), "nothing is left");
}
