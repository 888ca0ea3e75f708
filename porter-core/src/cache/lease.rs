//! Leases: one download per blob at a time, across processes and threads.
//!
//! Before a pull downloads a blob that is not in `blobs/`, it takes the blob's lease: an
//! exclusive OS file lock (`File::try_lock`, `flock` on unix) on `.ingest/<hex>.lease`, which
//! records the holder's process id. The kernel releases it when the holder exits, however it
//! exits, so a killed pull never blocks others. Locks belong to open files, not processes, so
//! two tasks of one process contend like two processes do.
//!
//! A pull that finds the lease held waits: it reports whom it waits for, then polls until the
//! blob appears in `blobs/` (the holder published it: reused) or the lease is free (the holder
//! failed or died: the waiter takes it and resumes from the partial bytes the holder left). A
//! holder that makes no progress — its partial file does not grow — for the stall limit (the
//! per-attempt timeout) is given up on: the waiter downloads the blob itself into a private file.
//! Both publish by an atomic rename of verified bytes, so whichever finishes second replaces the
//! blob with the same content.
//!
//! The holder removes the lease file before it unlocks it; a waiter that locks a file no longer
//! at the lease path (or replaced there) drops it and tries again, so two pulls never both hold
//! a blob's lease.

use std::fs::{self, File, TryLockError};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress::{Progress, Wait};

/// First pause between looks at a held lease; doubled up to [`MAX_POLL`].
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(100);
/// Times a lock is taken on a file that was replaced in between before giving up for one look.
const REPLACED_RETRIES: usize = 8;

/// A held lease; released (file removed, then unlocked) when dropped.
#[derive(Debug)]
pub(crate) struct Lease {
    file: File,
    path: PathBuf,
}

impl Drop for Lease {
    fn drop(&mut self) {
        // Removed while still locked: whoever opens the path next gets a fresh file; whoever
        // locked the old one sees it is no longer there. `file` unlocks when it closes.
        if cfg!(unix)
            && let Err(err) = fs::remove_file(&self.path)
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::debug!(path = %self.path.display(), error = %err, "cannot remove a lease file");
        }
    }
}

/// What [`claim`] found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// The blob is in `blobs/`: another pull published it.
    Published,
    /// This pull holds the lease and downloads the blob.
    Held(Lease),
    /// The holder stalled; this pull downloads the blob without the lease.
    Stalled,
}

/// Where one blob's lease, partial download and published file are.
#[derive(Debug)]
pub(crate) struct Paths<'a> {
    pub(crate) lease: &'a Path,
    pub(crate) partial: &'a Path,
    pub(crate) blob: &'a Path,
    pub(crate) size: u64,
}

impl Paths<'_> {
    fn published(&self) -> bool {
        fs::metadata(self.blob).is_ok_and(|m| m.is_file() && m.len() == self.size)
    }
}

/// Takes the lease of blob `digest`, waiting while another pull holds it and makes progress.
pub(crate) async fn claim(
    digest: &Digest,
    paths: &Paths<'_>,
    stall: Duration,
    progress: &dyn Progress,
) -> Result<Claim> {
    let mut watch: Option<Watch> = None;
    let mut pause = FIRST_POLL;
    loop {
        if let Some(lease) = try_take(paths.lease)? {
            // The holder may have published just before it let go.
            return Ok(if paths.published() {
                Claim::Published
            } else {
                Claim::Held(lease)
            });
        }
        match &mut watch {
            None => {
                let holder = holder(paths.lease);
                tracing::info!(%digest, pid = holder, "waiting for another pull of {digest}");
                progress.blob_waiting(digest, Wait::Started { holder });
                watch = Some(Watch::new(paths.partial, holder));
            }
            Some(watch) => {
                if paths.published() {
                    return Ok(Claim::Published);
                }
                if watch.idle(paths.partial) > stall {
                    tracing::warn!(
                        %digest,
                        pid = watch.holder,
                        "the pull downloading {digest} made no progress for {}s; downloading it here",
                        stall.as_secs()
                    );
                    progress.blob_waiting(
                        digest,
                        Wait::GaveUp {
                            holder: watch.holder,
                        },
                    );
                    return Ok(Claim::Stalled);
                }
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_POLL);
    }
}

/// What a waiter knows of the holder's progress.
struct Watch {
    holder: Option<u32>,
    len: Option<u64>,
    since: Instant,
}

impl Watch {
    fn new(partial: &Path, holder: Option<u32>) -> Self {
        Watch {
            holder,
            len: partial_len(partial),
            since: Instant::now(),
        }
    }

    /// How long the partial file has not grown.
    fn idle(&mut self, partial: &Path) -> Duration {
        let len = partial_len(partial);
        if len != self.len {
            self.len = len;
            self.since = Instant::now();
        }
        self.since.elapsed()
    }
}

fn partial_len(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.len())
}

/// The process id the holder wrote into the lease file, when readable.
fn holder(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The lease at `path` when it is free; `None` while another open file holds it.
pub(crate) fn try_take(path: &Path) -> Result<Option<Lease>> {
    for _ in 0..REPLACED_RETRIES {
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| Error::io("failed to open lease", path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Ok(None),
            Err(TryLockError::Error(e)) => return Err(Error::io("failed to lock", path, e)),
        }
        if !is_at(&file, path) {
            // The holder removed the file between our open and lock; the path names another
            // file (or none) now.
            continue;
        }
        let mut lease = Lease {
            file,
            path: path.to_path_buf(),
        };
        lease
            .record_holder()
            .map_err(|e| Error::io("failed to write lease", path, e))?;
        return Ok(Some(lease));
    }
    Ok(None)
}

impl Lease {
    fn record_holder(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        let mut file = &self.file;
        file.write_all(std::process::id().to_string().as_bytes())
    }
}

/// Whether `path` still names the open `file`.
#[cfg(unix)]
fn is_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Lease files are never removed where open files cannot be: the path always names the file.
#[cfg(not(unix))]
fn is_at(_file: &File, _path: &Path) -> bool {
    true
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Seen(Mutex<Vec<Wait>>);

    impl Progress for Seen {
        fn blob_waiting(&self, _digest: &Digest, wait: Wait) {
            self.0.lock().unwrap().push(wait);
        }
    }

    struct Fixture {
        _dir: tempfile::TempDir,
        lease: PathBuf,
        partial: PathBuf,
        blob: PathBuf,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            Fixture {
                lease: dir.path().join("x.lease"),
                partial: dir.path().join("x.partial"),
                blob: dir.path().join("x"),
                _dir: dir,
            }
        }

        fn paths(&self) -> Paths<'_> {
            Paths {
                lease: &self.lease,
                partial: &self.partial,
                blob: &self.blob,
                size: 4,
            }
        }
    }

    #[test]
    fn one_holder_at_a_time_even_within_one_process() {
        let f = Fixture::new();
        let held = try_take(&f.lease).unwrap().unwrap();
        assert_eq!(holder(&f.lease), Some(std::process::id()));
        assert!(try_take(&f.lease).unwrap().is_none());
        drop(held);
        assert!(!f.lease.exists(), "released leases leave no file");
        assert!(try_take(&f.lease).unwrap().is_some());
    }

    #[cfg(unix)]
    #[test]
    fn a_lock_on_a_removed_lease_file_is_not_a_lease() {
        let f = Fixture::new();
        let held = try_take(&f.lease).unwrap().unwrap();
        // A waiter opened the file before the holder let go.
        let stale = File::options().write(true).open(&f.lease).unwrap();
        let next = {
            drop(held);
            stale.try_lock().unwrap();
            try_take(&f.lease).unwrap()
        };
        assert!(next.is_some(), "the path's new file is free");
        assert!(!is_at(&stale, &f.lease));
    }

    #[tokio::test]
    async fn a_waiter_reuses_what_the_holder_publishes() {
        let f = Fixture::new();
        let held = try_take(&f.lease).unwrap().unwrap();
        let seen = Seen::default();
        let digest = Digest::of(b"x");
        let publish = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            fs::write(&f.blob, b"abcd").unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(held);
        };
        let paths = f.paths();
        let (claim, ()) = tokio::join!(
            claim(&digest, &paths, Duration::from_secs(60), &seen),
            publish
        );
        assert!(matches!(claim.unwrap(), Claim::Published));
        assert_eq!(
            *seen.0.lock().unwrap(),
            [Wait::Started {
                holder: Some(std::process::id())
            }]
        );
    }

    #[tokio::test]
    async fn a_waiter_takes_the_lease_a_failed_holder_releases() {
        let f = Fixture::new();
        let held = try_take(&f.lease).unwrap().unwrap();
        let release = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(held);
        };
        let (digest, paths) = (Digest::of(b"x"), f.paths());
        let (claim, ()) = tokio::join!(
            claim(
                &digest,
                &paths,
                Duration::from_secs(60),
                &crate::progress::NoProgress
            ),
            release
        );
        assert!(matches!(claim.unwrap(), Claim::Held(_)));
    }

    #[tokio::test]
    async fn a_holder_whose_partial_does_not_grow_is_given_up_on() {
        let f = Fixture::new();
        let _held = try_take(&f.lease).unwrap().unwrap();
        fs::write(&f.partial, b"ab").unwrap();
        let seen = Seen::default();
        let claim = claim(
            &Digest::of(b"x"),
            &f.paths(),
            Duration::from_millis(200),
            &seen,
        )
        .await
        .unwrap();
        assert!(matches!(claim, Claim::Stalled));
        let holder = Some(std::process::id());
        assert_eq!(
            *seen.0.lock().unwrap(),
            [Wait::Started { holder }, Wait::GaveUp { holder }]
        );
    }
}
