//! Watching a cache's `.ingest/` area while a `ds-porter` process downloads into it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cli::Background;

const POLL: Duration = Duration::from_millis(50);
/// Looks without growth after which a partial download counts as stalled.
const STABLE_POLLS: u32 = 10;

/// The partial download of blob `digest` (`sha256:…`) in `cache`.
pub fn partial_file(cache: &Path, digest: &str) -> PathBuf {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    cache.join(".ingest").join(format!("{hex}.partial"))
}

/// Waits (at most `limit`) until `child`'s partial download at `partial` holds at least
/// `at_least` bytes and has stopped growing; returns its size. Panics, with the child's stderr,
/// when the child exits first or the limit passes.
pub fn wait_for_stalled_partial(
    child: &mut Background,
    partial: &Path,
    at_least: u64,
    limit: Duration,
) -> u64 {
    let started = Instant::now();
    let mut last = None;
    let mut stable = 0;
    for _ in 0..limit.as_millis() / POLL.as_millis() + 1 {
        assert!(
            !child.has_exited(),
            "the pull ended before it stalled: {}",
            child.stderr_so_far()
        );
        let len = std::fs::metadata(partial).map(|m| m.len()).ok();
        if len.is_some() && len == last && len >= Some(at_least) {
            stable += 1;
            if stable >= STABLE_POLLS {
                return len.unwrap_or_default();
            }
        } else {
            stable = 0;
        }
        last = len;
        if started.elapsed() > limit {
            break;
        }
        std::thread::sleep(POLL);
    }
    panic!(
        "{} did not stall with {at_least} bytes within {limit:?} (last size {last:?}): {}",
        partial.display(),
        child.stderr_so_far()
    );
}

/// Waits (at most `limit`) until `child` has written `text` to stderr. Panics, with its stderr,
/// when the limit passes.
pub fn wait_for_stderr(child: &mut Background, text: &str, limit: Duration) {
    let started = Instant::now();
    for _ in 0..limit.as_millis() / POLL.as_millis() + 1 {
        if child.stderr_so_far().contains(text) {
            return;
        }
        if started.elapsed() > limit {
            break;
        }
        std::thread::sleep(POLL);
    }
    panic!(
        "{text:?} not on stderr within {limit:?}: {}",
        child.stderr_so_far()
    );
}
