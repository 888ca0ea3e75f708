//! `kill -9` at random points (fixed seed, a bounded number of iterations) during pull, export
//! and push, then a re-run that succeeds and a `cache verify` that finds nothing wrong; and
//! `cache prune` / `cache verify` running while pulls run. A crash may leave garbage in
//! `.ingest/` or temp names, never a visible blob that is wrong, a torn `index.json` or
//! metadata file, or an exported file with partial content; and the next pull or export into the
//! same place removes that garbage, but never the staging of an export that is still running.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use porter_e2e::cli::{User, assert_cache_sound, signal};
use porter_e2e::{LayerSpec, Registry, block_on, publish_single};
use serde_json::Value;

/// Kills per scenario; each costs one process start and at most `MAX_DELAY`.
const ITERATIONS: u64 = 6;
const MAX_DELAY_MS: u64 = 250;
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// Prefix of an export's temporary files and staging directories.
const EXPORT_TMP_PREFIX: &str = ".ds-porter-tmp-";
/// Exports started to catch one with its staging directory in place.
const CATCH_ATTEMPTS: usize = 20;
/// Longest one export is watched for its staging directory.
const CATCH_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The export temporaries in `dir` (none when `dir` does not exist).
fn export_temporaries(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(EXPORT_TMP_PREFIX))
        .collect()
}

/// Starts `pull <reference> -o <out>` until one is caught while its staging directory is in
/// `out`, and returns it with the directory's name, the process held by `hold` (`kill -9` or
/// `kill -STOP`). Exports that finish before they are caught are run again, a bounded number of
/// times.
fn catch_export_staging(
    user: &User,
    reference: &str,
    out: &Path,
    hold: impl Fn(&mut Child),
) -> (Child, String) {
    let out_arg = out.display().to_string();
    for _ in 0..CATCH_ATTEMPTS {
        let mut child = quiet(user, &["pull", reference, "--insecure", "-o", &out_arg]);
        let started = Instant::now();
        loop {
            if let Some(name) = export_temporaries(out).into_iter().next() {
                hold(&mut child);
                if out.join(&name).exists() {
                    return (child, name);
                }
                // It finished staging between the look and the signal.
                break;
            }
            if child.try_wait().unwrap().is_some() || started.elapsed() > CATCH_TIMEOUT {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            signal(child.id(), "CONT");
            let _ = child.kill();
        }
        let _ = child.wait();
    }
    panic!("no export was caught with its staging directory in {out_arg}");
}

/// A stopped export, resumed and reaped however the test ends.
struct Stopped(Option<Child>);

impl Stopped {
    fn resume(mut self) -> std::process::ExitStatus {
        let child = self.0.take().unwrap();
        signal(child.id(), "CONT");
        child.wait_with_output().unwrap().status
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
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
    // The re-runs removed what the killed runs staged.
    assert_eq!(export_temporaries(&out), Vec::<String>::new());
    assert_eq!(export_temporaries(user.path()), Vec::<String>::new());
    let ingest: Vec<_> = fs::read_dir(user.cache().join(".ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(ingest.is_empty(), "{ingest:?}");
}

#[test]
fn an_export_removes_the_staging_a_killed_export_left_behind() {
    let (reg, first_file) = setup();
    let user = User::new();
    let tree = reg.reference("demo/tree:1.0");
    let out = user.path().join("out");
    user.run(&["pull", &tree, "--insecure"]).ok();
    let (_killed, staging) = catch_export_staging(&user, &tree, &out, |child| {
        // `Child::kill` is SIGKILL: the export cannot clean up.
        child.kill().unwrap();
        child.wait().unwrap();
    });
    assert!(out.join(&staging).exists());

    let result = user
        .run(&[
            "pull",
            &tree,
            "--insecure",
            "-o",
            &out.display().to_string(),
        ])
        .ok();
    assert!(result["exported_files"].as_array().unwrap().len() >= 200);
    assert_eq!(fs::read(out.join("f000")).unwrap(), first_file);
    assert_eq!(export_temporaries(&out), Vec::<String>::new());
    assert_eq!(export_temporaries(user.path()), Vec::<String>::new());
    assert_cache_sound(&user);
}

#[cfg(target_os = "linux")]
#[test]
fn an_export_keeps_the_staging_of_a_concurrent_running_export() {
    let (reg, first_file) = setup();
    let user = User::new();
    let tree = reg.reference("demo/tree:1.0");
    let out = user.path().join("out");
    let out_arg = out.display().to_string();
    user.run(&["pull", &tree, "--insecure"]).ok();
    let (child, staging) =
        catch_export_staging(&user, &tree, &out, |child| signal(child.id(), "STOP"));
    let stopped = Stopped(Some(child));

    // Another export into the same directory while the first is paused mid-staging.
    user.run(&["pull", &tree, "--insecure", "-o", &out_arg])
        .ok();
    assert!(
        out.join(&staging).exists(),
        "the running export's staging directory was removed"
    );

    assert!(stopped.resume().success(), "the paused export failed");
    assert_eq!(export_temporaries(&out), Vec::<String>::new());
    assert_eq!(fs::read(out.join("f000")).unwrap(), first_file);
    for i in 0..200 {
        assert_eq!(
            fs::metadata(out.join(format!("f{i:03}"))).unwrap().len(),
            40 << 10
        );
    }
    assert_cache_sound(&user);
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
