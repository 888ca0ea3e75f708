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
mod prune;
mod staging;
mod verify;
mod writer;

use std::fs;
use std::path::{Path, PathBuf};

use crate::artifact::ArtifactResult;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::Descriptor;

use entries::Entries;
pub(crate) use layout::OciLayout;
pub use prune::{PrunePolicy, PruneReport};
pub(crate) use staging::Staging;
pub use verify::{BlobProblem, VerifyReport};
pub(crate) use writer::BlobWriter;

/// Where downloads and staged pulls wait, inside the cache root.
const INGEST_DIR: &str = ".ingest";

/// A handle on the cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    layout: OciLayout,
    entries: Entries,
}

impl Cache {
    /// Opens (creating when needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Cache> {
        fs::create_dir_all(root)
            .map_err(|e| Error::io("failed to create cache directory", root, e))?;
        let cache = Cache {
            layout: OciLayout::create(root)?,
            entries: Entries::new(root),
        };
        let ingest = cache.ingest_dir();
        fs::create_dir_all(&ingest)
            .map_err(|e| Error::io("failed to create cache directory", &ingest, e))?;
        Ok(cache)
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    pub(crate) fn layout(&self) -> &OciLayout {
        &self.layout
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

    /// Starts streaming a layer or config into the cache; see [`BlobWriter`].
    pub(crate) fn blob_writer(&self, digest: Digest, size: u64) -> Result<BlobWriter> {
        let ingest = self.ingest_dir();
        let temp = tempfile::Builder::new()
            .prefix(&format!("{}.", digest.hex()))
            .tempfile_in(&ingest)
            .map_err(|e| Error::io("failed to create temp file in", &ingest, e))?;
        let target = self.blob_path(&digest);
        Ok(BlobWriter::start(temp, digest, size, target))
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
    /// `metadata.json`, both atomically under the cache lock.
    pub(crate) fn record(
        &self,
        name: &str,
        root: &Descriptor,
        result: &ArtifactResult,
    ) -> Result<()> {
        let _lock = self.layout.lock()?;
        self.entries.write(result)?;
        self.layout
            .update_index_locked(|index| index.set(name, root))
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

    use super::*;

    /// The names in `dir`, sorted.
    pub(crate) fn sorted_names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn blobs_become_visible_only_when_verified() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let data = Bytes::from_static(b"hello world");
        let digest = Digest::of(&data);

        let mut w = cache
            .blob_writer(digest.clone(), data.len() as u64)
            .unwrap();
        w.write(data.slice(..5)).await.unwrap();
        w.write(data.slice(5..)).await.unwrap();
        w.finish().await.unwrap();
        assert!(cache.has_blob(&digest, 11));

        let wrong = Digest::of(b"other");
        let mut w = cache.blob_writer(wrong.clone(), 11).unwrap();
        w.write(data.clone()).await.unwrap();
        let err = w.finish().await.unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!cache.blob_path(&wrong).exists());

        let mut w = cache.blob_writer(wrong.clone(), 3).unwrap();
        let first = w.write(data.clone()).await;
        let err = match first {
            Err(e) => e,
            Ok(()) => w.finish().await.unwrap_err(),
        };
        assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
        assert_eq!(
            fs::read_dir(dir.path().join(INGEST_DIR)).unwrap().count(),
            0,
            "no temp files left"
        );
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
