//! 1 GiB transfers with bounded memory: nothing buffers a layer, in either direction.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use porter_e2e::{Registry, block_on, ds_porter_bin, publish_large};

/// Runs `ds-porter` in `dir`, polling its peak RSS; returns (success, peak KiB, stderr).
fn run_measured(dir: &std::path::Path, args: &[&str]) -> (bool, u64, String) {
    let mut child = Command::new(ds_porter_bin())
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("DS_CACHE_DIR", dir.join("cache"))
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
            "ds-porter did not finish"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    (status.success(), peak, stderr)
}

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
    let reference = reg.reference("demo/large:1.0");
    let (ok, peak, stderr) = run_measured(dir.path(), &["pull", &reference, "--insecure"]);
    assert!(ok, "{stderr}");
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

#[test]
fn a_one_gib_push_streams_with_bounded_memory_and_re_pushes_upload_nothing() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    // A sparse 1 GiB file: cheap to create, read back in full by the push.
    let file = std::fs::File::create(dir.path().join("big.bin")).unwrap();
    file.set_len(1 << 30).unwrap();
    drop(file);
    let reference = reg.reference("demo/bigpush:1.0");
    let args = ["push", "big.bin", &reference, "--insecure"];
    let (ok, peak, stderr) = run_measured(dir.path(), &args);
    assert!(ok, "{stderr}");
    eprintln!("1 GiB push: peak RSS {peak} KiB");
    assert!(
        peak > 0 && peak < 48 * 1024,
        "peak RSS {peak} KiB must stay within 48 MiB"
    );
    let mark = reg.mark();
    let (ok, _, stderr) = run_measured(dir.path(), &args);
    assert!(ok, "{stderr}");
    let uploads: Vec<_> = reg
        .requests_since(&mark)
        .into_iter()
        .filter(|r| r.path.contains("/blobs/uploads"))
        .collect();
    assert!(uploads.is_empty(), "re-push uploaded: {uploads:?}");
}
