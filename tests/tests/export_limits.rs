//! Export amplification: an index that lists one small archive (65 KB of gzip, a 64 MiB file of
//! zeros) for 160 variants of one platform. The default platform selects one variant, so one
//! copy is written; `--all-arch` asks for every copy and stops at the run's byte limit
//! (`settings.porter.export_max_bytes`), which counts every platform and layer together, with an
//! error naming the limit and the setting and nothing left in the destination.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use porter_core::platform::Platform;
use porter_e2e::cli::User;
use porter_e2e::{LayerSpec, Registry, block_on, publish_index};

const ZEROS: usize = 64 << 20;
const VARIANTS: usize = 160;

/// Publishes the amplifying index for this machine's OS and architecture.
fn amplifying_index() -> (Registry, String) {
    let reg = Registry::start();
    let layer = LayerSpec::targz(&[("zeros", 0o644, &vec![0; ZEROS])], &[]);
    assert!(layer.data.len() < 128 << 10, "{} bytes", layer.data.len());
    let host = Platform::host();
    let platforms: Vec<String> = (0..VARIANTS)
        .map(|v| format!("{}/{}/v{v}", host.os, host.arch))
        .collect();
    let entries: Vec<(&str, Vec<LayerSpec>)> = platforms
        .iter()
        .map(|p| (p.as_str(), vec![layer.clone()]))
        .collect();
    block_on(publish_index(&reg, "demo/bomb:1.0", &entries, &[]));
    let reference = reg.reference("demo/bomb:1.0");
    (reg, reference)
}

/// Every file below `dir` with its size.
fn files(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                let rel = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string();
                out.push((rel, meta.len()));
            }
        }
    }
    out
}

#[test]
fn an_index_listing_one_archive_for_160_variants_is_exported_once_by_default() {
    let (_reg, reference) = amplifying_index();
    let user = User::new();
    let result = user
        .run(&["pull", &reference, "--insecure", "-o", "out"])
        .ok();
    assert_eq!(result["exported_files"], serde_json::json!(["out/zeros"]));
    assert_eq!(
        files(&user.path().join("out")),
        [("zeros".to_owned(), ZEROS as u64)]
    );
}

#[test]
fn all_platforms_of_the_index_stop_at_the_run_limit_and_leave_nothing() {
    let (_reg, reference) = amplifying_index();
    let user = User::new();
    let err = user
        .run_with(
            &["pull", &reference, "--insecure", "--all-arch", "-o", "out"],
            &[("DS_SETTINGS_PORTER_EXPORT_MAX_BYTES", "512MiB")],
        )
        .fails();
    assert!(
        err.contains(
            "failed to export artifact: the export exceeds the limit of 536870912 bytes \
             written in one run (settings.porter.export_max_bytes) at archive entry zeros"
        ),
        "{err}"
    );
    assert!(!user.path().join("out").exists(), "nothing is left");

    // The entry limit is per run too: 160 one-entry archives against a limit of 3.
    let err = user
        .run_with(
            &["pull", &reference, "--insecure", "--all-arch", "-o", "out"],
            &[("DS_SETTINGS_PORTER_EXPORT_MAX_ENTRIES", "3")],
        )
        .fails();
    assert!(
        err.contains(
            "the export exceeds the limit of 3 entries written in one run \
             (settings.porter.export_max_entries) at archive entry zeros"
        ),
        "{err}"
    );
    assert!(!user.path().join("out").exists(), "nothing is left");
}
