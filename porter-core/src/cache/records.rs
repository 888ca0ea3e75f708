//! Two small records the cache keeps for pushes, in `<root>/.records/`:
//!
//! - `file-digests.json`: the digest of each source file a push hashed, keyed by what identifies
//!   its content cheaply (device, inode, size, modification and change times in nanoseconds), so
//!   a re-push of unchanged inputs hashes nothing. An entry is trusted only when the file's
//!   times were already older than the moment it was recorded by more than the file system's
//!   timestamp granularity (git's rule against racy timestamps): a file rewritten in the same
//!   tick, with the same size, keeps its times, and must be hashed again.
//! - `blob-locations.json`: which repositories of which registries are known to hold a blob,
//!   from every pull and push of this cache, so a push mounts a blob from there instead of
//!   uploading it.
//!
//! Both are hints: a wrong or lost record costs a hash or an upload, never a wrong result (a
//! mount or a HEAD is answered by the registry, and a pushed digest is the one the registry
//! verifies). Each is bounded, read without a lock, and replaced atomically under the cache
//! lock, so concurrent processes never see half a file; a damaged file reads as empty.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::layout::OciLayout;
use crate::digest::Digest;
use crate::error::{Error, Result};

const RECORDS_DIR: &str = ".records";
const FILE_DIGESTS: &str = "file-digests.json";
const BLOB_LOCATIONS: &str = "blob-locations.json";
/// Most source files remembered; the oldest entries go first.
const MAX_FILES: usize = 4096;
/// Most blobs whose locations are remembered; the least recently seen go first.
const MAX_BLOBS: usize = 8192;
/// Most repositories remembered per blob.
const MAX_REPOSITORIES: usize = 8;
/// Timestamp granularity assumed for file systems with nanosecond times (covers kernels whose
/// file times come from a coarse clock, one tick behind the precise one).
const FINE_GRANULARITY_NS: i128 = 100_000_000;
/// Granularity assumed when both times are whole seconds (FAT keeps 2 s).
const COARSE_GRANULARITY_NS: i128 = 2_000_000_000;

/// What identifies a file's content cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStamp {
    /// The stamp of an open file (or a path), `None` where the platform does not give one.
    pub(crate) fn of(metadata: &fs::Metadata) -> Option<FileStamp> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ns = |s: i64, n: i64| i128::from(s) * 1_000_000_000 + i128::from(n);
            Some(FileStamp {
                dev: metadata.dev(),
                ino: metadata.ino(),
                size: metadata.len(),
                mtime_ns: ns(metadata.mtime(), metadata.mtime_nsec()),
                ctime_ns: ns(metadata.ctime(), metadata.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = metadata;
            None
        }
    }

    /// Whether a digest recorded at `recorded_ns` for a file with this stamp can be trusted:
    /// both times were older than the recording by more than the timestamp granularity, so any
    /// later write would have changed one of them.
    fn settled_at(&self, recorded_ns: i128) -> bool {
        let whole_seconds =
            self.mtime_ns % 1_000_000_000 == 0 && self.ctime_ns % 1_000_000_000 == 0;
        let granularity = if whole_seconds {
            COARSE_GRANULARITY_NS
        } else {
            FINE_GRANULARITY_NS
        };
        self.mtime_ns.max(self.ctime_ns) + granularity < recorded_ns
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileEntry {
    stamp: FileStamp,
    digest: String,
    recorded_ns: i128,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct FileDigests {
    /// Keyed by the file's absolute path.
    files: BTreeMap<PathBuf, FileEntry>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BlobLocations {
    /// Digest → `registry/repository` names, most recent first.
    blobs: BTreeMap<String, Located>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Located {
    repositories: Vec<String>,
    seen_ns: i128,
}

/// What the record knows of a file's digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Recorded {
    /// Nothing for this file as it is now.
    Unknown,
    /// A digest for the same stamp, recorded too soon after the file was written to be trusted:
    /// the file was probably pushed before, so hash it first and look for it in the registry.
    Unsettled,
    /// The file's digest.
    Trusted(Digest),
}

/// The records of one cache.
#[derive(Debug, Clone)]
pub(crate) struct Records {
    dir: PathBuf,
    layout: OciLayout,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

impl Records {
    pub(crate) fn new(layout: &OciLayout) -> Records {
        Records {
            dir: layout.root().join(RECORDS_DIR),
            layout: layout.clone(),
        }
    }

    /// What the record says of the file at `path` whose stamp is `stamp`.
    pub(crate) fn file_digest(&self, path: &Path, stamp: &FileStamp) -> Recorded {
        let record: FileDigests = self.load(FILE_DIGESTS);
        match record.files.get(path) {
            Some(entry) if entry.stamp == *stamp => match entry.digest.parse() {
                Ok(digest) if stamp.settled_at(entry.recorded_ns) => Recorded::Trusted(digest),
                Ok(_) => Recorded::Unsettled,
                Err(_) => Recorded::Unknown,
            },
            _ => Recorded::Unknown,
        }
    }

    /// Remembers that the file at `path`, stamped `stamp` both before and after it was read,
    /// has `digest`. `recorded_ns` is when the stamp was taken (before reading).
    pub(crate) fn remember_file(
        &self,
        path: &Path,
        stamp: &FileStamp,
        digest: &Digest,
        recorded_ns: i128,
    ) -> Result<()> {
        self.update(FILE_DIGESTS, |record: &mut FileDigests| {
            record.files.insert(
                path.to_path_buf(),
                FileEntry {
                    stamp: *stamp,
                    digest: digest.to_string(),
                    recorded_ns,
                },
            );
            while record.files.len() > MAX_FILES {
                let oldest = record
                    .files
                    .iter()
                    .min_by_key(|(_, e)| e.recorded_ns)
                    .map(|(p, _)| p.clone());
                match oldest {
                    Some(p) => record.files.remove(&p),
                    None => break,
                };
            }
        })
    }

    /// The repositories (`registry/repository`) known to hold `digest`, most recent first.
    pub(crate) fn locations(&self, digest: &Digest) -> Vec<String> {
        let record: BlobLocations = self.load(BLOB_LOCATIONS);
        record
            .blobs
            .get(&digest.to_string())
            .map(|l| l.repositories.clone())
            .unwrap_or_default()
    }

    /// Remembers that `repository` (`registry/repository`) holds each of `digests`.
    pub(crate) fn remember_locations<'a>(
        &self,
        repository: &str,
        digests: impl IntoIterator<Item = &'a Digest>,
    ) -> Result<()> {
        let digests: Vec<String> = digests.into_iter().map(|d| d.to_string()).collect();
        let current: BlobLocations = self.load(BLOB_LOCATIONS);
        let known = |d: &String| {
            current
                .blobs
                .get(d)
                .is_some_and(|l| l.repositories.first().is_some_and(|r| r == repository))
        };
        // Nothing new (a warm re-pull): no write.
        if digests.iter().all(known) {
            return Ok(());
        }
        let now = now_ns();
        self.update(BLOB_LOCATIONS, |record: &mut BlobLocations| {
            for digest in digests {
                let located = record.blobs.entry(digest).or_default();
                located.repositories.retain(|r| r != repository);
                located.repositories.insert(0, repository.to_owned());
                located.repositories.truncate(MAX_REPOSITORIES);
                located.seen_ns = now;
            }
            if record.blobs.len() > MAX_BLOBS {
                let mut by_age: Vec<(i128, String)> = record
                    .blobs
                    .iter()
                    .map(|(d, l)| (l.seen_ns, d.clone()))
                    .collect();
                by_age.sort();
                let excess = record.blobs.len() - MAX_BLOBS;
                for (_, digest) in by_age.into_iter().take(excess) {
                    record.blobs.remove(&digest);
                }
            }
        })
    }

    /// Reads a record; a missing or damaged one reads as empty.
    fn load<T: DeserializeOwned + Default>(&self, name: &str) -> T {
        let path = self.dir.join(name);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::debug!(path = %path.display(), "damaged record ignored: {e}");
                T::default()
            }),
            Err(_) => T::default(),
        }
    }

    /// Changes a record under the cache lock and replaces it atomically.
    fn update<T: DeserializeOwned + Serialize + Default>(
        &self,
        name: &str,
        change: impl FnOnce(&mut T),
    ) -> Result<()> {
        super::layout::create_dir_all(&self.dir, "failed to create cache directory")?;
        let _lock = self.layout.lock()?;
        let mut record: T = self.load(name);
        change(&mut record);
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| Error::Internal(format!("cannot encode the {name} record: {e}")))?;
        super::layout::write_atomic(&self.dir.join(name), &bytes)?;
        Ok(())
    }
}

/// Now, in nanoseconds since the epoch: taken before a file is stamped and read.
pub(crate) fn stamp_time() -> i128 {
    now_ns()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime_ns: i128, ctime_ns: i128) -> FileStamp {
        FileStamp {
            dev: 1,
            ino: 2,
            size: 3,
            mtime_ns,
            ctime_ns,
        }
    }

    #[test]
    fn a_digest_is_trusted_only_once_the_file_times_are_older_than_the_granularity() {
        let second = 1_000_000_000i128;
        let fine = stamp(100 * second + 123, 100 * second + 456);
        assert!(!fine.settled_at(100 * second + 50_000_000));
        assert!(fine.settled_at(101 * second));
        // Whole-second times: the file system may keep 1 or 2 s, so a write 1.5 s later could
        // carry the same times.
        let coarse = stamp(100 * second, 100 * second);
        assert!(!coarse.settled_at(101 * second + second / 2));
        assert!(coarse.settled_at(103 * second));
        // The change time counts too (a rewrite that restores the modification time).
        let restored = stamp(50 * second + 7, 100 * second + 7);
        assert!(!restored.settled_at(100 * second + 10_000_000));
    }

    #[test]
    fn file_digests_and_locations_round_trip_and_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(dir.path()).unwrap();
        let records = Records::new(&layout);
        let digest = Digest::of(b"x");
        let path = Path::new("/some/file");
        let old = stamp(1_000_000_007, 1_000_000_007);
        records
            .remember_file(path, &old, &digest, 9_000_000_000)
            .unwrap();
        assert_eq!(
            records.file_digest(path, &old),
            Recorded::Trusted(digest.clone())
        );
        let changed = FileStamp { size: 4, ..old };
        assert_eq!(records.file_digest(path, &changed), Recorded::Unknown);
        assert_eq!(
            records.file_digest(Path::new("/other"), &old),
            Recorded::Unknown
        );
        let fresh = stamp(8_990_000_000, 8_990_000_000);
        records
            .remember_file(path, &fresh, &digest, 9_000_000_000)
            .unwrap();
        assert_eq!(records.file_digest(path, &fresh), Recorded::Unsettled);

        for i in 0..(MAX_REPOSITORIES + 3) {
            records
                .remember_locations(&format!("r.example/repo{i}"), [&digest])
                .unwrap();
        }
        let repos = records.locations(&digest);
        assert_eq!(repos.len(), MAX_REPOSITORIES);
        assert_eq!(repos[0], format!("r.example/repo{}", MAX_REPOSITORIES + 2));
        assert!(records.locations(&Digest::of(b"y")).is_empty());

        fs::write(
            dir.path().join(RECORDS_DIR).join(BLOB_LOCATIONS),
            b"{not json",
        )
        .unwrap();
        assert!(records.locations(&digest).is_empty());
        records
            .remember_locations("r.example/again", [&digest])
            .unwrap();
        assert_eq!(records.locations(&digest), vec!["r.example/again"]);
    }
}
