//! A 1 GiB artifact (4 × 256 MiB layers) pulls with bounded memory: nothing buffers a layer.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use porter_e2e::{Registry, block_on, ds_porter_bin, publish_large};

/// Peak resident set size (VmHWM, KiB) of a running process, if it can still be read.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn a_one_gib_pull_streams_with_bounded_memory() {
    let reg = Registry::start();
    let published = block_on(publish_large(&reg, "demo/large:1.0", 4, 256 << 20));
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(ds_porter_bin())
        .args(["pull", &reg.reference("demo/large:1.0"), "--insecure"])
        .current_dir(dir.path())
        .env("HOME", dir.path())
        .env("DS_CACHE_DIR", dir.path().join("cache"))
        .env_remove("DS_REGISTRY_INSECURE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let started = Instant::now();
    let mut peak = 0;
    // Bounded: at most 10 minutes of polling.
    let status = loop {
        if let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "pull did not finish"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(status.success());
    eprintln!("1 GiB pull: peak RSS {} KiB", peak);
    assert!(peak > 0, "peak RSS was observed");
    assert!(
        peak < 48 * 1024,
        "peak RSS {peak} KiB must stay well under 64 MiB"
    );
    let cache = dir.path().join("cache/porter/blobs/sha256");
    for layer in &published.layers {
        let len = std::fs::metadata(cache.join(layer.digest.strip_prefix("sha256:").unwrap()))
            .unwrap()
            .len();
        assert_eq!(len, layer.size);
    }
}
