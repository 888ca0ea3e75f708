//! The shared, content-addressed cache.
//!
//! The cache root (`<Cache.Dir>/porter`) is one valid OCI image layout — `oci-layout`,
//! `index.json`, `blobs/sha256/<hex>` — so skopeo, oras or crane can read it
//! (`skopeo inspect oci:<root>:<reference>`). Beside the layout, each artifact has an entry
//! directory `<root>/<id>/metadata.json` (id = first 16 hex digits of the root digest), the same
//! place the Go plugin kept its entries, so `list` shows both.
//!
//! Blobs are hashed while they stream into a temp file inside the cache, checked against digest
//! and size, and only then renamed into place. A pull writes them through a staged view: they
//! wait in a private directory under `.ingest/` and move into `blobs/` only once the pull has every
//! blob it needs, layers and configs first, then manifests children before parents, so a failed
//! pull publishes nothing and a published manifest never names a blob that is absent. `index.json`
//! and metadata files are replaced atomically under a cross-process lock, so several `ds-porter`
//! processes can share one cache and a killed pull leaves nothing half-visible; what it leaves in
//! `.ingest/` the next pull removes.

mod prune;
mod verify;

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::artifact::ArtifactResult;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::leftovers;
use crate::manifest::{ANNOTATION_REF_NAME, Descriptor, MAX_MANIFEST_BYTES};

pub use prune::{PrunePolicy, PruneReport, PullGuard};
pub use verify::{BlobProblem, VerifyReport};

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
const INGEST_DIR: &str = ".ingest";
const LOCK_FILE: &str = ".lock";
const METADATA_FILE: &str = "metadata.json";
/// Prefix of a pull's staging directory in `.ingest/`; `leftovers` adds the owning process.
const STAGING_PREFIX: &str = "pull-";

/// A handle on the cache directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    /// Set on a pull's view (see [`Staged`]): where the blobs written through it wait.
    staging: Option<Arc<Staging>>,
}

impl Cache {
    /// Opens (creating when needed) the cache at `root`.
    pub fn open(root: &Path) -> Result<Cache> {
        let cache = Cache {
            root: root.to_path_buf(),
            staging: None,
        };
        for dir in [root.to_path_buf(), cache.blobs_dir(), root.join(INGEST_DIR)] {
            fs::create_dir_all(&dir)
                .map_err(|e| Error::io("failed to create cache directory", &dir, e))?;
        }
        let layout = root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, OCI_LAYOUT.as_bytes())?;
        }
        Ok(cache)
    }

    /// The cache root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where a blob lives (whether or not it is present).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Where a blob can be read: staged by this view's pull, or else in `blobs/`.
    fn readable_path(&self, digest: &Digest) -> PathBuf {
        if let Some(staging) = &self.staging {
            let staged = staging.path(digest);
            if staged.is_file() {
                return staged;
            }
        }
        self.blob_path(digest)
    }

    /// Whether a blob file is present, whatever its size.
    pub fn has_blob_any_size(&self, digest: &Digest) -> bool {
        self.readable_path(digest).is_file()
    }

    /// Whether the blob is present with the expected size.
    pub fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.readable_path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Reads a small blob (a manifest), verifying its digest.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.readable_path(digest);
        let len = match fs::metadata(&path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::MissingBlob {
                    digest: digest.to_string(),
                });
            }
            Err(e) => return Err(Error::io("failed to read", path, e)),
        };
        if len > MAX_MANIFEST_BYTES as u64 {
            return Err(Error::InvalidManifest {
                digest: digest.to_string(),
                reason: format!("larger than {MAX_MANIFEST_BYTES} bytes"),
            });
        }
        let bytes = fs::read(&path).map_err(|e| Error::io("failed to read", &path, e))?;
        digest::verify(&bytes, digest, &format!("cached blob {}", path.display()))?;
        Ok(bytes)
    }

    /// Stores a small blob already in memory after checking its digest.
    pub fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        digest::verify(bytes, digest, "blob")?;
        if self.has_blob(digest, bytes.len() as u64) {
            return Ok(());
        }
        match &self.staging {
            Some(staging) => {
                write_atomic(&staging.path(digest), bytes)?;
                staging.add(digest.clone(), Kind::Small);
                Ok(())
            }
            None => write_atomic(&self.blob_path(digest), bytes),
        }
    }

    /// Copies the local `file` into the cache as blob `digest` of `size` bytes, verified like a
    /// download. `false` when the cache already had it (nothing is read).
    pub async fn import_file(&self, file: &Path, digest: &Digest, size: u64) -> Result<bool> {
        if self.has_blob(digest, size) {
            return Ok(false);
        }
        let mut writer = self.blob_writer(digest.clone(), size)?;
        let mut source = tokio::fs::File::open(file)
            .await
            .map_err(|e| Error::io("failed to open", file, e))?;
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = tokio::io::AsyncReadExt::read(&mut source, &mut buf)
                .await
                .map_err(|e| Error::io("failed to read", file, e))?;
            if n == 0 {
                break;
            }
            writer.write(Bytes::copy_from_slice(&buf[..n])).await?;
        }
        writer.finish().await?;
        Ok(true)
    }

    /// Starts streaming a blob into the cache. Hashing and disk writes run on a blocking thread;
    /// the blob becomes visible only after [`BlobWriter::finish`] verified it (in a pull's view:
    /// once the pull commits).
    pub fn blob_writer(&self, digest: Digest, size: u64) -> Result<BlobWriter> {
        let staging = self.staging.clone();
        let ingest = match &staging {
            Some(staging) => staging.dir.path().to_path_buf(),
            None => self.root.join(INGEST_DIR),
        };
        let temp = tempfile::Builder::new()
            .prefix(&format!("{}.", digest.hex()))
            .tempfile_in(&ingest)
            .map_err(|e| Error::io("failed to create temp file in", &ingest, e))?;
        let target = match &staging {
            Some(staging) => staging.path(&digest),
            None => self.blob_path(&digest),
        };
        let (tx, mut rx) = mpsc::channel::<Bytes>(2);
        let (commit_tx, mut commit_rx) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::task::spawn_blocking(move || -> Result<()> {
            let temp_path = temp.path().to_path_buf();
            let mut hasher = Sha256::new();
            let mut written = 0u64;
            let mut out = BufWriter::with_capacity(256 << 10, temp);
            while let Some(chunk) = rx.blocking_recv() {
                written += chunk.len() as u64;
                if written > size {
                    return Err(Error::SizeMismatch {
                        digest: digest.to_string(),
                        expected: size,
                        found: written,
                    });
                }
                hasher.update(&chunk);
                out.write_all(&chunk)
                    .map_err(|e| Error::io("failed to write", &temp_path, e))?;
            }
            if commit_rx.try_recv().is_err() {
                // The writer was dropped without `finish`: the transfer was abandoned.
                return Err(Error::Cancelled);
            }
            if written != size {
                return Err(Error::SizeMismatch {
                    digest: digest.to_string(),
                    expected: size,
                    found: written,
                });
            }
            let found = Digest::from_hasher(hasher);
            if found != digest {
                return Err(Error::DigestMismatch {
                    context: format!("blob {digest}"),
                    expected: digest.to_string(),
                    found: found.to_string(),
                });
            }
            let temp = out
                .into_inner()
                .map_err(|e| Error::io("failed to write", &temp_path, e.into_error()))?;
            temp.persist(&target)
                .map_err(|e| Error::io("failed to move blob into", &target, e.error))?;
            if let Some(staging) = staging {
                staging.add(digest, Kind::Streamed);
            }
            Ok(())
        });
        Ok(BlobWriter {
            tx: Some(tx),
            commit: Some(commit_tx),
            handle,
        })
    }

    /// Starts a pull: returns a view of the cache whose new blobs are staged until
    /// [`Staged::commit`]. Removes the staging directories of pulls that were killed first.
    pub(crate) fn stage(&self) -> Result<Staged> {
        let ingest = self.root.join(INGEST_DIR);
        leftovers::sweep(&ingest, STAGING_PREFIX);
        let dir = tempfile::Builder::new()
            .prefix(&leftovers::prefix(STAGING_PREFIX))
            .tempdir_in(&ingest)
            .map_err(|e| Error::io("failed to create staging directory in", &ingest, e))?;
        Ok(Staged {
            view: Cache {
                root: self.root.clone(),
                staging: Some(Arc::new(Staging {
                    dir,
                    staged: Mutex::default(),
                })),
            },
        })
    }

    /// Looks up a cached reference by its cache name in `index.json`.
    pub fn resolve_name(&self, name: &str) -> Result<Option<Descriptor>> {
        let index = self.read_index()?;
        let Some(Value::Array(manifests)) = index.get("manifests") else {
            return Ok(None);
        };
        for m in manifests {
            if m.pointer("/annotations/org.opencontainers.image.ref.name")
                .and_then(Value::as_str)
                == Some(name)
            {
                let desc: Descriptor =
                    serde_json::from_value(m.clone()).map_err(|e| Error::Config {
                        source_name: self.root.join("index.json").display().to_string(),
                        reason: e.to_string(),
                    })?;
                return Ok(Some(desc));
            }
        }
        Ok(None)
    }

    /// Every name `index.json` records, in file order.
    pub fn names(&self) -> Result<Vec<String>> {
        let index = self.read_index()?;
        let Some(Value::Array(manifests)) = index.get("manifests") else {
            return Ok(Vec::new());
        };
        Ok(manifests
            .iter()
            .filter_map(|m| m.pointer("/annotations/org.opencontainers.image.ref.name"))
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect())
    }

    fn read_index(&self) -> Result<Map<String, Value>> {
        let path = self.root.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => Ok(map),
                _ => Err(Error::Config {
                    source_name: path.display().to_string(),
                    reason: "not a valid OCI index".into(),
                }),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut map = Map::new();
                map.insert("schemaVersion".into(), json!(2));
                map.insert("mediaType".into(), json!(crate::manifest::OCI_INDEX));
                map.insert("manifests".into(), json!([]));
                Ok(map)
            }
            Err(e) => Err(Error::io("failed to read", path, e)),
        }
    }

    /// Records a pulled artifact: tags `root` as `name` in `index.json` and writes the entry's
    /// `metadata.json`, both atomically under the cache lock.
    pub fn record(&self, name: &str, root: &Descriptor, result: &ArtifactResult) -> Result<()> {
        let _lock = self.lock()?;
        let entry = self.entry_dir(&result.id);
        if let Some(existing) = self.read_metadata(&entry)?
            && existing.digest != result.digest
            && !existing.digest.is_empty()
        {
            return Err(Error::InvalidInput(format!(
                "cache entry {} already holds {}, not {}",
                result.id, existing.digest, result.digest
            )));
        }
        fs::create_dir_all(&entry).map_err(|e| Error::io("failed to create", &entry, e))?;
        write_atomic(
            &entry.join(METADATA_FILE),
            result.to_metadata_json().as_bytes(),
        )?;
        self.write_tag(name, root)
    }

    /// Names `root` as `name` in `index.json` (replacing an earlier entry of that name), under
    /// the cache lock.
    pub fn tag(&self, name: &str, root: &Descriptor) -> Result<()> {
        let _lock = self.lock()?;
        self.write_tag(name, root)
    }

    fn write_tag(&self, name: &str, root: &Descriptor) -> Result<()> {
        let mut index = self.read_index()?;
        let mut desc = serde_json::to_value(root).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut desc {
            map.remove("platform");
            map.insert("annotations".into(), json!({ ANNOTATION_REF_NAME: name }));
        }
        let manifests = index.entry("manifests").or_insert_with(|| json!([]));
        if !manifests.is_array() {
            *manifests = json!([]);
        }
        if let Value::Array(list) = manifests {
            list.retain(|m| {
                m.pointer("/annotations/org.opencontainers.image.ref.name")
                    .and_then(Value::as_str)
                    != Some(name)
            });
            list.push(desc);
        }
        let bytes = serde_json::to_vec(&Value::Object(index)).unwrap_or_default();
        write_atomic(&self.root.join("index.json"), &bytes)
    }

    /// The entry directory of an artifact id.
    pub fn entry_dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Loads the metadata of a cached artifact by id (16 lower-case hex characters).
    pub fn lookup(&self, id: &str) -> Result<ArtifactResult> {
        if id.len() != 16
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::InvalidInput(format!(
                "invalid artifact id {id:?}: expected 16 hex characters"
            )));
        }
        self.read_metadata(&self.entry_dir(id))?
            .ok_or_else(|| Error::NotFound {
                what: "artifact",
                reference: id.to_owned(),
            })
    }

    fn read_metadata(&self, entry: &Path) -> Result<Option<ArtifactResult>> {
        let path = entry.join(METADATA_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Config {
                    source_name: path.display().to_string(),
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("failed to read", path, e)),
        }
    }

    /// Every cached artifact, sorted by id; entries left by the Go plugin included. Unreadable
    /// entries are skipped with a warning.
    pub fn list(&self) -> Result<Vec<ArtifactResult>> {
        let read = fs::read_dir(&self.root)
            .map_err(|e| Error::io("failed to read cache directory", &self.root, e))?;
        let mut dirs: Vec<(String, PathBuf)> = read
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(name, _)| name != "blobs" && !name.starts_with('.'))
            .collect();
        dirs.sort();
        let mut out = Vec::with_capacity(dirs.len());
        for (name, dir) in dirs {
            match self.read_metadata(&dir) {
                Ok(Some(entry)) => out.push(entry),
                Ok(None) => {
                    tracing::debug!(entry = %name, "cache directory without metadata.json skipped")
                }
                Err(err) => tracing::warn!(entry = %name, error = %err, "Failed to load metadata"),
            }
        }
        Ok(out)
    }

    fn lock(&self) -> Result<File> {
        let path = self.root.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("failed to open cache lock", &path, e))?;
        file.lock()
            .map_err(|e| Error::io("failed to lock cache", &path, e))?;
        Ok(file)
    }
}

/// How a blob was staged, which decides when it is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Streamed through a [`BlobWriter`]: a layer or config, which names no other blob.
    Streamed,
    /// Stored from memory with [`Cache::put_blob`]: a manifest or index.
    Small,
}

/// The private directory one pull stages its blobs in; removed when the last view of it is
/// dropped (writer threads hold one too, so nothing lands in it after removal).
#[derive(Debug)]
struct Staging {
    dir: TempDir,
    /// Blobs staged so far, in the order they were completed.
    staged: Mutex<Vec<(Digest, Kind)>>,
}

impl Staging {
    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.path().join(digest.hex())
    }

    fn add(&self, digest: Digest, kind: Kind) {
        self.lock().push((digest, kind));
    }

    fn lock(&self) -> MutexGuard<'_, Vec<(Digest, Kind)>> {
        // A panic while pushing cannot leave the list inconsistent.
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The digests of the manifests an index lists; none for anything else.
    fn children(&self, digest: &Digest) -> Vec<Digest> {
        let Ok(bytes) = fs::read(self.path(digest)) else {
            return Vec::new();
        };
        serde_json::from_slice::<Value>(&bytes)
            .map(|value| listed_digests(&value))
            .unwrap_or_default()
    }
}

/// The digests in an index's (or `index.json`'s) `manifests` list that parse.
pub(crate) fn listed_digests(index: &Value) -> Vec<Digest> {
    index
        .get("manifests")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|m| m.get("digest")?.as_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A pull's view of the cache and the blobs it staged; see [`Cache::stage`]. Dropping every
/// clone without [`Staged::commit`] discards the staged blobs.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    view: Cache,
}

impl Staged {
    /// The cache as the pull sees it: staged blobs and the published ones.
    pub(crate) fn cache(&self) -> &Cache {
        &self.view
    }

    /// Moves every staged blob into `blobs/`: streamed blobs first, then manifests with every
    /// staged manifest an index lists before the index. Called once the pull has all its blobs
    /// and before the artifact is recorded.
    pub(crate) fn commit(&self) -> Result<()> {
        let Some(staging) = &self.view.staging else {
            return Ok(());
        };
        let staged = std::mem::take(&mut *staging.lock());
        let (streamed, small): (Vec<_>, Vec<_>) = staged
            .into_iter()
            .partition(|(_, kind)| *kind == Kind::Streamed);
        let small: Vec<Digest> = small.into_iter().map(|(digest, _)| digest).collect();
        let order = children_first(&small, |digest| staging.children(digest));
        let mut streamed: Vec<Digest> = streamed.into_iter().map(|(digest, _)| digest).collect();
        streamed.sort_unstable();
        streamed.dedup();
        for digest in streamed.iter().chain(&order) {
            let target = self.view.blob_path(digest);
            fs::rename(staging.path(digest), &target)
                .map_err(|e| Error::io("failed to move blob into", &target, e))?;
        }
        Ok(())
    }
}

/// `nodes` ordered so that every node comes after the nodes among them that `children` lists for
/// it; cycles are broken, and each node is expanded once.
fn children_first(nodes: &[Digest], children: impl Fn(&Digest) -> Vec<Digest>) -> Vec<Digest> {
    let members: HashSet<&Digest> = nodes.iter().collect();
    let mut expanded: HashSet<Digest> = HashSet::new();
    let mut placed: HashSet<Digest> = HashSet::new();
    let mut order = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut stack = vec![(node.clone(), false)];
        while let Some((digest, ready)) = stack.pop() {
            if ready {
                if placed.insert(digest.clone()) {
                    order.push(digest);
                }
                continue;
            }
            if !expanded.insert(digest.clone()) {
                continue;
            }
            stack.push((digest.clone(), true));
            for child in children(&digest) {
                if members.contains(&child) && !expanded.contains(&child) {
                    stack.push((child, false));
                }
            }
        }
    }
    order
}

/// A blob streaming into the cache.
#[derive(Debug)]
pub struct BlobWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    commit: Option<tokio::sync::oneshot::Sender<()>>,
    handle: JoinHandle<Result<()>>,
}

impl BlobWriter {
    /// Queues a chunk for hashing and writing.
    pub async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(chunk).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer thread stopped early: its result says why.
        self.tx = None;
        match (&mut self.handle).await {
            Ok(Err(e)) => Err(e),
            _ => Err(Error::InvalidInput(
                "blob writer stopped unexpectedly".into(),
            )),
        }
    }

    /// Completes the blob: verifies size and digest and moves it into place.
    pub async fn finish(mut self) -> Result<()> {
        if let Some(commit) = self.commit.take() {
            let _ = commit.send(());
        }
        self.tx = None;
        match self.handle.await {
            Ok(result) => result,
            Err(e) => Err(Error::InvalidInput(format!("blob writer failed: {e}"))),
        }
    }
}

/// Writes `bytes` to `path` through a synced temp file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("failed to create temp file in", dir, e))?;
    temp.write_all(bytes)
        .map_err(|e| Error::io("failed to write", temp.path().to_path_buf(), e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::io("failed to sync", temp.path().to_path_buf(), e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = temp
            .as_file()
            .set_permissions(fs::Permissions::from_mode(0o644));
    }
    temp.persist(path)
        .map_err(|e| Error::io("failed to replace", path, e.error))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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

    fn published(cache: &Cache) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(cache.blobs_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// The name of a staged pull's directory under `.ingest/`.
    fn staging_name(staged: &Staged) -> String {
        let dir = staged.cache().staging.as_ref().unwrap().dir.path();
        dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    fn ingest(cache: &Cache) -> Vec<String> {
        fs::read_dir(cache.root().join(INGEST_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Stages `bytes` as a streamed blob through `cache`.
    async fn stream(cache: &Cache, bytes: &'static [u8]) -> Digest {
        let digest = Digest::of(bytes);
        let mut w = cache
            .blob_writer(digest.clone(), bytes.len() as u64)
            .unwrap();
        w.write(Bytes::from_static(bytes)).await.unwrap();
        w.finish().await.unwrap();
        digest
    }

    #[tokio::test]
    async fn a_pull_that_does_not_commit_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let kept = Digest::of(b"cached before");
        cache.put_blob(&kept, b"cached before").unwrap();

        let staged = cache.stage().unwrap();
        let view = staged.cache();
        let layer = stream(view, b"a layer").await;
        let manifest = br#"{"schemaVersion":2}"#;
        view.put_blob(&Digest::of(manifest), manifest).unwrap();
        // The pull sees what it staged and what was published; nobody else sees the staged blobs.
        assert!(view.has_blob(&layer, 7));
        assert_eq!(view.read_blob(&Digest::of(manifest)).unwrap(), manifest);
        assert!(view.has_blob(&kept, 13));
        assert!(!cache.has_blob_any_size(&layer));
        assert_eq!(published(&cache), [kept.hex()]);

        drop(staged);
        assert_eq!(published(&cache), [kept.hex()]);
        assert_eq!(ingest(&cache), Vec::<String>::new());
    }

    #[tokio::test]
    async fn a_commit_publishes_streamed_blobs_then_manifests_children_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let staged = cache.stage().unwrap();
        let view = staged.cache();
        let layer = stream(view, b"a layer").await;
        let leaf = format!(r#"{{"layers":[{{"digest":"{layer}"}}]}}"#);
        let leaf_digest = Digest::of(leaf.as_bytes());
        let nested = format!(r#"{{"manifests":[{{"digest":"{leaf_digest}"}}]}}"#);
        let nested_digest = Digest::of(nested.as_bytes());
        let root = format!(
            r#"{{"manifests":[{{"digest":"{leaf_digest}"}},{{"digest":"{nested_digest}"}}]}}"#
        );
        let root_digest = Digest::of(root.as_bytes());
        // Fetch order: root, its leaf, the nested index (which lists the leaf again).
        for bytes in [&root, &leaf, &nested] {
            view.put_blob(&Digest::of(bytes.as_bytes()), bytes.as_bytes())
                .unwrap();
        }
        let small: Vec<Digest> = [&root_digest, &leaf_digest, &nested_digest]
            .map(Clone::clone)
            .to_vec();
        let staging = view.staging.as_ref().unwrap();
        assert_eq!(
            children_first(&small, |d| staging.children(d)),
            [
                leaf_digest.clone(),
                nested_digest.clone(),
                root_digest.clone()
            ]
        );

        staged.commit().unwrap();
        let mut expected: Vec<String> = [&layer, &leaf_digest, &nested_digest, &root_digest]
            .iter()
            .map(|d| d.hex().to_owned())
            .collect();
        expected.sort();
        assert_eq!(published(&cache), expected);
        assert_eq!(cache.read_blob(&root_digest).unwrap(), root.as_bytes());
        drop(staged);
        assert_eq!(ingest(&cache), Vec::<String>::new());
    }

    #[test]
    fn children_first_terminates_on_cycles() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let nodes = [a.clone(), b.clone()];
        let order = children_first(&nodes, |d| {
            if *d == a {
                vec![b.clone()]
            } else {
                vec![a.clone()]
            }
        });
        assert_eq!(order, [b, a]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn staging_left_by_a_killed_pull_is_removed_by_the_next_pull() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let running = cache.stage().unwrap();
        let ours = staging_name(&running);
        // The same name with a pid no kernel hands out: a pull that no longer runs.
        let (_, rest) = ours
            .strip_prefix(STAGING_PREFIX)
            .unwrap()
            .split_once('-')
            .unwrap();
        let dead = dir
            .path()
            .join(INGEST_DIR)
            .join(format!("{STAGING_PREFIX}{}-{rest}", u32::MAX));
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("partial"), b"half a layer").unwrap();

        let next = cache.stage().unwrap();
        let mut left = ingest(&cache);
        left.sort();
        let next_name = staging_name(&next);
        let mut expected = vec![ours, next_name];
        expected.sort();
        assert_eq!(left, expected, "the running pull's staging stays");
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
            signatures: Vec::new(),
        };
        cache.record("r/x:1", &root, &result).unwrap();
        cache.record("r/x:2", &root, &result).unwrap();
        cache.record("r/x:1", &root, &result).unwrap();
        assert_eq!(cache.resolve_name("r/x:2").unwrap().unwrap().digest, digest);
        let index: Value =
            serde_json::from_slice(&fs::read(dir.path().join("index.json")).unwrap()).unwrap();
        assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
        assert_eq!(cache.list().unwrap(), vec![result.clone()]);
        assert_eq!(cache.lookup(digest.short_id()).unwrap(), result);
        assert!(cache.lookup("../../etc/passwd").is_err());
    }
}
