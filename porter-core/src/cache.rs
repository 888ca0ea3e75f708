//! The shared, content-addressed cache.
//!
//! The cache root (`<Cache.Dir>/porter`) is one valid OCI image layout ([`OciLayout`]) —
//! `oci-layout`, `index.json`, `blobs/sha256/<hex>` — so skopeo, oras or crane can read it
//! (`skopeo inspect oci:<root>:<reference>`). Beside the layout, each artifact has an entry
//! directory `<root>/<id>/metadata.json` (`entries`), the same place the Go plugin kept its
//! entries, so `list` shows both.
//!
//! Layers and configs are hashed while they stream into a temporary file in `.ingest/`, checked
//! against digest and size, and only then renamed into `blobs/` (`writer`): a verified blob
//! that no index names yet is harmless, and pruning leaves it alone while pulls run. A pull's
//! manifests wait in its staging area (`staging`) and are published only when the pull
//! commits, children first, so a failed pull publishes no manifest and a published manifest
//! never names a blob that is absent. `index.json` and metadata files are replaced atomically
//! under a cross-process lock, so several `ds-porter` processes can share one cache and a
//! killed pull leaves nothing half-visible; what it leaves in `.ingest/` the next pull removes.
//!
//! Reading is public; writing is crate-private, so every write goes through a pull.

mod entries;
mod index;
mod layout;
mod lease;
mod prune;
mod records;
mod staging;
mod verify;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::artifact::ArtifactResult;
use crate::digest::Digest;
use crate::error::Result;
use crate::manifest::Descriptor;
use crate::progress::Progress;

use entries::Entries;
pub(crate) use layout::OciLayout;
use lease::{Claim, Paths};
pub use prune::{PrunePolicy, PruneReport};
pub(crate) use records::{FileStamp, Recorded, Records, stamp_time};
pub(crate) use staging::Staging;
pub use verify::{BlobProblem, VerifyReport};
pub(crate) use writer::BlobDownload;
use writer::Spool;

/// Where downloads and staged pulls wait, inside the cache root.
const INGEST_DIR: &str = ".ingest";
/// Suffix of a blob's partial download in `.ingest/` (`<hex>.partial`).
const PARTIAL_SUFFIX: &str = ".partial";
/// Suffix of a blob's lease file in `.ingest/` (`<hex>.lease`).
const LEASE_SUFFIX: &str = ".lease";
/// How long a lease holder may make no progress before waiters download the blob themselves,
/// unless the engine sets its per-attempt timeout.
const DEFAULT_STALL: Duration = Duration::from_secs(30);

/// A handle on the cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    layout: OciLayout,
    entries: Entries,
    /// See [`Cache::with_stall_limit`].
    stall: Duration,
}

impl Cache {
    /// Opens (creating when needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Cache> {
        layout::create_dir_all(root, "failed to create cache directory")?;
        let cache = Cache {
            layout: OciLayout::create(root)?,
            entries: Entries::new(root),
            stall: DEFAULT_STALL,
        };
        layout::create_dir_all(&cache.ingest_dir(), "failed to create cache directory")?;
        Ok(cache)
    }

    /// Sets how long a pull waits for another one downloading the same blob while that one
    /// makes no progress (the per-attempt timeout) before downloading the blob itself.
    pub(crate) fn with_stall_limit(mut self, stall: Duration) -> Self {
        self.stall = stall;
        self
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    pub(crate) fn layout(&self) -> &OciLayout {
        &self.layout
    }

    /// The push records kept beside the layout (file digests, blob locations).
    pub(crate) fn records(&self) -> Records {
        Records::new(&self.layout)
    }

    fn ingest_dir(&self) -> PathBuf {
        self.root().join(INGEST_DIR)
    }

    /// Where a blob lives (whether or not it is present).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.layout.blob_path(digest)
    }

    /// Whether a blob file is present, whatever its size.
    pub fn has_blob_any_size(&self, digest: &Digest) -> bool {
        self.layout.has_blob_any_size(digest)
    }

    /// Whether the blob is present with the expected size.
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        self.layout.has_blob(digest, size)
    }

    /// Reads a small blob (a manifest), verifying its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        self.layout.read_blob(digest)
    }

    /// Stores a small blob already in memory after checking its digest, visible at once.
    pub(crate) fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        self.layout.put_blob(digest, bytes).map(|_| ())
    }

    /// `.ingest/<hex><suffix>`.
    fn ingest_file(&self, digest: &Digest, suffix: &str) -> PathBuf {
        self.ingest_dir().join(format!("{}{suffix}", digest.hex()))
    }

    /// Starts downloading a layer or config that is not in `blobs/`: takes the blob's lease,
    /// waiting while another pull downloads it (see `lease`), and resumes from the bytes an
    /// earlier download left. `None` when the blob is in `blobs/` now (another pull published it,
    /// or the bytes on disk were the whole blob).
    pub(crate) async fn download(
        &self,
        desc: &Descriptor,
        progress: &dyn Progress,
    ) -> Result<Option<BlobDownload>> {
        let digest = &desc.digest;
        let (lease, partial, blob) = (
            self.ingest_file(digest, LEASE_SUFFIX),
            self.ingest_file(digest, PARTIAL_SUFFIX),
            self.blob_path(digest),
        );
        let paths = Paths {
            lease: &lease,
            partial: &partial,
            blob: &blob,
            size: desc.size,
        };
        let spool = match lease::claim(digest, &paths, self.stall, progress).await? {
            Claim::Published => return Ok(None),
            Claim::Held(lease) => Spool::Partial {
                path: partial,
                _lease: lease,
            },
            Claim::Stalled => {
                let (file, path) = layout::temp_file_in(&self.ingest_dir())?.into_parts();
                Spool::Private { file, path }
            }
        };
        let mut download = BlobDownload::open(spool, digest.clone(), desc.size, blob).await?;
        let offset = download.offset();
        if offset > 0 && offset == desc.size {
            match download.finish().await {
                Ok(()) => return Ok(None),
                Err(err) => {
                    download.damaged_resume(&err);
                }
            }
        } else if offset > 0 {
            tracing::info!(%digest, offset, size = desc.size, "resuming an interrupted download");
            progress.blob_progress(digest, offset);
        }
        Ok(Some(download))
    }

    /// Looks up a cached reference by its cache name in `index.json`.
    pub fn resolve_name(&self, name: &str) -> Result<Option<Descriptor>> {
        self.layout.resolve(name)
    }

    /// Every name `index.json` records, in file order.
    pub fn names(&self) -> Result<Vec<String>> {
        let index = self.layout.read_index()?;
        Ok(index
            .entries()
            .iter()
            .filter_map(|e| e.name())
            .map(str::to_owned)
            .collect())
    }

    /// Records a pulled artifact: tags `root` as `name` in `index.json` and writes the entry's
    /// `metadata.json`, both atomically under the cache lock; returns the entry's
    /// `first_cached_at`.
    pub(crate) fn record(
        &self,
        name: &str,
        root: &Descriptor,
        result: &ArtifactResult,
    ) -> Result<Option<String>> {
        let _lock = self.layout.lock()?;
        let first = self.entries.write(result)?;
        self.layout
            .update_index_locked(|index| index.set(name, root))?;
        Ok(first)
    }

    /// The entry directory of an artifact id.
    pub fn entry_dir(&self, id: &str) -> PathBuf {
        self.entries.dir(id)
    }

    /// Loads the metadata of a cached artifact by id (16 lower-case hex characters).
    pub fn lookup(&self, id: &str) -> Result<ArtifactResult> {
        self.entries.lookup(id)
    }

    /// Every cached artifact, sorted by id; entries left by the Go plugin included. Unreadable
    /// entries are skipped with a warning.
    pub fn list(&self) -> Result<Vec<ArtifactResult>> {
        self.entries.list()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use bytes::Bytes;
    use serde_json::Value;

    use std::fs;

    use super::*;
    use crate::error::Error;
    use crate::progress::NoProgress;

    /// The names in `dir`, sorted.
    pub(crate) fn sorted_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn layer(bytes: &'static [u8]) -> Descriptor {
        Descriptor {
            media_type: "application/octet-stream".into(),
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
            artifact_type: None,
            platform: None,
            annotations: Default::default(),
        }
    }

    async fn start(cache: &Cache, desc: &Descriptor) -> BlobDownload {
        cache
            .download(desc, &NoProgress)
            .await
            .unwrap()
            .expect("the blob is not cached yet")
    }

    /// A fresh cache and the blob `hello world`.
    fn hello() -> (tempfile::TempDir, Cache, Bytes, Descriptor) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let data = Bytes::from_static(b"hello world");
        (dir, cache, data, layer(b"hello world"))
    }

    fn ingest(cache: &Cache) -> Vec<String> {
        sorted_names(&cache.ingest_dir())
    }

    #[tokio::test]
    async fn a_download_becomes_visible_only_when_verified() {
        let (_dir, cache, data, desc) = hello();

        let mut d = start(&cache, &desc).await;
        d.write(data.slice(..5)).await.unwrap();
        d.write(data.slice(5..)).await.unwrap();
        assert!(!cache.has_blob_any_size(&desc.digest));
        d.finish().await.unwrap();
        assert!(cache.has_blob(&desc.digest, 11));
        drop(d);
        assert!(cache.download(&desc, &NoProgress).await.unwrap().is_none());

        let wrong = Descriptor {
            digest: Digest::of(b"other"),
            ..desc.clone()
        };
        let mut d = start(&cache, &wrong).await;
        d.write(data.clone()).await.unwrap();
        let err = d.finish().await.unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!cache.has_blob_any_size(&wrong.digest));
        assert_eq!(d.offset(), 0, "wrong bytes are discarded");
        d.close().await;

        let short = Descriptor {
            size: 3,
            ..wrong.clone()
        };
        let mut d = start(&cache, &short).await;
        let err = d.write(data.clone()).await.unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
        d.close().await;
        assert_eq!(ingest(&cache), Vec::<String>::new(), "nothing left");
    }

    #[tokio::test]
    async fn an_interrupted_download_keeps_its_bytes_and_the_next_one_resumes_from_them() {
        let (_dir, cache, data, desc) = hello();
        let mut d = start(&cache, &desc).await;
        d.write(data.slice(..5)).await.unwrap();
        d.close().await;
        let partial = cache.ingest_file(&desc.digest, PARTIAL_SUFFIX);
        assert_eq!(
            ingest(&cache),
            [format!("{}{PARTIAL_SUFFIX}", desc.digest.hex())]
        );
        let mut d = start(&cache, &desc).await;
        assert_eq!(fs::read(&partial).unwrap(), b"hello");
        assert_eq!(d.offset(), 5);
        d.write(data.slice(5..)).await.unwrap();
        d.finish().await.unwrap();
        assert_eq!(fs::read(cache.blob_path(&desc.digest)).unwrap(), data);
        drop(d);
        assert!(!partial.exists());
    }

    #[tokio::test]
    async fn a_download_dropped_after_its_last_byte_publishes_it_or_discards_wrong_bytes() {
        let (_dir, cache, data, desc) = hello();
        let mut d = start(&cache, &desc).await;
        d.write(data.clone()).await.unwrap();
        d.close().await;
        assert!(cache.has_blob(&desc.digest, 11), "verified bytes are kept");
        assert_eq!(ingest(&cache), Vec::<String>::new());

        let wrong = Descriptor {
            digest: Digest::of(b"other"),
            ..desc.clone()
        };
        let mut d = start(&cache, &wrong).await;
        d.write(data.clone()).await.unwrap();
        d.close().await;
        assert!(!cache.has_blob_any_size(&wrong.digest));
        assert_eq!(ingest(&cache), Vec::<String>::new(), "wrong bytes go");
    }

    #[tokio::test]
    async fn damaged_partial_bytes_are_found_and_the_blob_is_fetched_again() {
        let (_dir, cache, data, desc) = hello();
        fs::write(cache.ingest_file(&desc.digest, PARTIAL_SUFFIX), b"jello").unwrap();
        let mut d = start(&cache, &desc).await;
        assert_eq!(d.offset(), 5);
        d.write(data.slice(5..)).await.unwrap();
        let err = d.finish().await.unwrap_err();
        assert!(d.damaged_resume(&err), "{err}");
        assert_eq!(d.offset(), 0);
        d.write(data.clone()).await.unwrap();
        d.finish().await.unwrap();
        assert!(cache.has_blob(&desc.digest, 11));
    }

    #[tokio::test]
    async fn a_complete_partial_is_published_without_fetching() {
        let (_dir, cache, _, desc) = hello();
        fs::write(
            cache.ingest_file(&desc.digest, PARTIAL_SUFFIX),
            b"hello world",
        )
        .unwrap();
        assert!(cache.download(&desc, &NoProgress).await.unwrap().is_none());
        assert!(cache.has_blob(&desc.digest, 11));
    }

    #[tokio::test]
    async fn a_second_download_of_a_blob_waits_for_the_first_and_reuses_it() {
        let (_dir, cache, _, desc) = hello();
        let mut first = start(&cache, &desc).await;
        let second = cache.download(&desc, &NoProgress);
        let finish = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            first
                .write(Bytes::from_static(b"hello world"))
                .await
                .unwrap();
            first.finish().await.unwrap();
        };
        let (second, ()) = tokio::join!(second, finish);
        assert!(
            second.unwrap().is_none(),
            "the first download's blob is reused"
        );
        assert!(cache.has_blob(&desc.digest, 11));
    }

    #[test]
    fn record_tags_index_and_writes_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let bytes = br#"{"schemaVersion":2,"manifests":[]}"#;
        let digest = Digest::of(bytes);
        cache.put_blob(&digest, bytes).unwrap();
        let root = Descriptor {
            media_type: crate::manifest::OCI_INDEX.into(),
            digest: digest.clone(),
            size: bytes.len() as u64,
            artifact_type: None,
            platform: None,
            annotations: Default::default(),
        };
        let result = ArtifactResult {
            id: digest.short_id().into(),
            reference: "r/x:1".into(),
            digest: digest.to_string(),
            size: bytes.len() as i64,
            local_path: cache.entry_dir(digest.short_id()).display().to_string(),
            metadata: Default::default(),
            plugin_info: None,
            cached: true,
            cached_at: crate::artifact::ZERO_TIME.into(),
            exported_files: vec![],
            offline: false,
            ..ArtifactResult::default()
        };
        cache.record("r/x:1", &root, &result).unwrap();
        cache.record("r/x:2", &root, &result).unwrap();
        cache.record("r/x:1", &root, &result).unwrap();
        assert_eq!(cache.resolve_name("r/x:2").unwrap().unwrap().digest, digest);
        assert_eq!(cache.names().unwrap(), ["r/x:2", "r/x:1"]);
        let index: Value =
            serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(cache.list().unwrap(), vec![result.clone()]);
        assert_eq!(cache.lookup(digest.short_id()).unwrap(), result);
        assert!(cache.lookup("../../etc/passwd").is_err());
    }
}
