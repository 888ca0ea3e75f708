//! `kill -9` at random points (fixed seed, a bounded number of iterations) during pull, export
//! and push, then a re-run that succeeds and a `cache verify` that finds nothing wrong; and
//! `cache prune` / `cache verify` running while pulls run. A crash may leave garbage in
//! `.ingest/` or temp names, never a visible blob that is wrong, a torn `index.json` or
//! metadata file, or an exported file with partial content.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use porter_e2e::cli::User;
use porter_e2e::{LayerSpec, Registry, block_on, publish_single, sha256_digest};
use serde_json::Value;

/// Kills per scenario; each costs one process start and at most `MAX_DELAY`.
const ITERATIONS: u64 = 6;
const MAX_DELAY_MS: u64 = 250;
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// A small deterministic generator (xorshift), so every run kills at the same points.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn kill_after(mut child: Child, delay: Duration) {
    let started = Instant::now();
    while started.elapsed() < delay {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // `Child::kill` is SIGKILL on Unix: no destructor, no cleanup runs.
    let _ = child.kill();
    let _ = child.wait();
}

fn quiet(user: &User, args: &[&str]) -> Child {
    user.command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `cache verify` reports nothing corrupt or missing, and every visible blob hashes to its name.
fn assert_cache_sound(user: &User) {
    let report = user.run(&["cache", "verify"]).ok();
    assert_eq!(report["corrupt"], Value::Array(vec![]), "{report}");
    assert_eq!(report["missing"], Value::Array(vec![]), "{report}");
    for entry in fs::read_dir(user.cache().join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_digest(&fs::read(&path).unwrap()),
            format!("sha256:{name}")
        );
    }
    let index: Value =
        serde_json::from_slice(&fs::read(user.cache().join("index.json")).unwrap()).unwrap();
    assert!(index["manifests"].is_array());
    let list: Value = serde_json::from_str(&user.run(&["list"]).stdout()).unwrap();
    assert!(list.is_array());
}

/// A registry with `demo/big:1.0` (an 8 MiB binary) and `demo/tree:1.0` (a tar+gzip of 200
/// files), so a pull and an export last long enough to be killed in the middle.
fn setup() -> (Registry, Vec<u8>) {
    let reg = Registry::start();
    let big = LayerSpec::pseudo_random("big", 11, 8 << 20);
    block_on(publish_single(&reg, "demo/big:1.0", &[big], &[]));
    let contents: Vec<(String, Vec<u8>)> = (0..200)
        .map(|i| (format!("f{i:03}"), vec![(i % 251) as u8; 40 << 10]))
        .collect();
    let files: Vec<(&str, u32, &[u8])> = contents
        .iter()
        .map(|(n, d)| (n.as_str(), 0o644, d.as_slice()))
        .collect();
    block_on(publish_single(
        &reg,
        "demo/tree:1.0",
        &[LayerSpec::targz(&files, &[]).with_title("tree.tar.gz")],
        &[],
    ));
    (reg, contents.into_iter().next().unwrap().1)
}

#[test]
fn kill_9_during_pull_and_export_then_a_rerun_succeeds_and_verify_is_clean() {
    let (reg, first_file) = setup();
    let user = User::new();
    let mut rng = Rng(SEED);
    let big = reg.reference("demo/big:1.0");
    let tree = reg.reference("demo/tree:1.0");
    let out = user.path().join("out");
    let out_arg = out.display().to_string();
    for i in 0..ITERATIONS {
        let delay = Duration::from_millis(rng.below(MAX_DELAY_MS));
        let child = if i % 2 == 0 {
            quiet(&user, &["pull", &big, "--insecure"])
        } else {
            quiet(&user, &["pull", &tree, "--insecure", "-o", &out_arg])
        };
        kill_after(child, delay);
    }
    user.run(&["pull", &big, "--insecure"]).ok();
    let result = user
        .run(&["pull", &tree, "--insecure", "-o", &out_arg])
        .ok();
    assert!(result["exported_files"].as_array().unwrap().len() >= 200);
    assert_eq!(fs::read(out.join("f000")).unwrap(), first_file);
    for i in 0..200 {
        assert_eq!(
            fs::metadata(out.join(format!("f{i:03}"))).unwrap().len(),
            40 << 10
        );
    }
    assert_cache_sound(&user);
    assert_eq!(
        serde_json::from_str::<Value>(&user.run(&["list"]).stdout())
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn kill_9_during_push_then_a_rerun_succeeds_and_pulls_back_intact() {
    let reg = Registry::start();
    let user = User::new();
    let dir = user.path().join("release");
    fs::create_dir(&dir).unwrap();
    let mut seed = SEED;
    let data: Vec<u8> = (0..(6 << 20))
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 56) as u8
        })
        .collect();
    fs::write(dir.join("tool"), &data).unwrap();
    fs::write(dir.join("README"), b"tool\n").unwrap();
    let reference = reg.reference("demo/pushed:1.0");
    let mut rng = Rng(SEED ^ 1);
    for _ in 0..ITERATIONS {
        let delay = Duration::from_millis(rng.below(MAX_DELAY_MS));
        kill_after(
            quiet(&user, &["push", "release", &reference, "--insecure"]),
            delay,
        );
    }
    user.run(&["push", "release", &reference, "--insecure"])
        .ok();
    let puller = User::new();
    let out = puller.path().join("out");
    puller
        .run(&[
            "pull",
            &reference,
            "--insecure",
            "-o",
            &out.display().to_string(),
        ])
        .ok();
    assert_eq!(fs::read(out.join("tool")).unwrap(), data);
    assert_cache_sound(&puller);
}

#[test]
fn prune_and_verify_while_pulls_run_lose_nothing() {
    let (reg, _) = setup();
    let user = User::new();
    let refs = [
        reg.reference("demo/big:1.0"),
        reg.reference("demo/tree:1.0"),
    ];
    let pulls: Vec<Child> = (0..4)
        .map(|i| {
            user.command(&["pull", &refs[i % 2], "--insecure"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Housekeeping in the middle of the pulls: verify (read-only) and a prune that keeps
    // everything recent.
    for _ in 0..3 {
        user.run(&["cache", "verify"]).ok();
        user.run(&["cache", "prune", "--ttl", "24h"]).ok();
        std::thread::sleep(Duration::from_millis(50));
    }
    for pull in pulls {
        let output = pull.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_cache_sound(&user);
    let list: Value = serde_json::from_str(&user.run(&["list"]).stdout()).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    // The artifacts are complete: an offline pull of each needs nothing from the network.
    for reference in &refs {
        user.run(&["pull", reference, "--offline"]).ok();
    }
}
