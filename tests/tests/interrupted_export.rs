//! SIGINT or SIGTERM during an export ends the run with 130/143 after the export stopped and
//! removed what it staged in the destination: nothing half-written stays behind, and nothing
//! appears afterwards.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use porter_e2e::cli::User;
use porter_e2e::{LayerSpec, Registry, block_on, publish_single};

const LIMIT: Duration = Duration::from_secs(60);

/// Every entry under `dir` whose name says it is a temporary or staging file.
fn temp_entries(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".ds-porter-tmp-") {
                found.push(entry.path().display().to_string());
            }
            if entry.file_type().is_ok_and(|t| t.is_dir()) && found.len() < 1000 {
                stack.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn a_signal_during_an_export_leaves_nothing_staged_in_the_destination() {
    // A large file in a small archive: extracting it takes long enough to be interrupted.
    let big = vec![0u8; 384 << 20];
    let reg = Registry::start();
    block_on(publish_single(
        &reg,
        "demo/big:1.0",
        &[LayerSpec::targz(&[("data/zeros", 0o644, &big)], &["data"])],
        &[],
    ));
    drop(big);
    let reference = reg.reference("demo/big:1.0");
    let user = User::new();
    user.run(&["pull", &reference, "--insecure"]).ok();

    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let out = user.path().join(format!("out-{signal}"));
        let run = user.spawn(
            &["pull", &reference, "--offline", "-o", out.to_str().unwrap()],
            &[],
        );
        let started = Instant::now();
        while temp_entries(&out).is_empty() && started.elapsed() < LIMIT {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(!temp_entries(&out).is_empty(), "the export never started");
        run.signal(signal);
        let run = run.wait(LIMIT);
        assert_eq!(run.code(), code, "{}", run.stderr());
        assert_eq!(temp_entries(&out), Vec::<String>::new());
        // Nothing appears afterwards either.
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(temp_entries(&out), Vec::<String>::new());
        assert!(
            !out.join("data/zeros").exists(),
            "a half export became visible"
        );
    }
}
