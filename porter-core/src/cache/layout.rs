//! [`OciLayout`]: one OCI image layout directory on disk — `oci-layout`, `index.json`,
//! `blobs/sha256/<hex>` — whoever uses it: the cache, a layout pulled from
//! ([`crate::registry::LayoutSource`]) or a layout pushed to.
//!
//! Writes are verified and atomic: a blob is hashed while it is written to a temporary file
//! beside its final name and renamed into place only when its digest and size match, and
//! `index.json` is replaced through a synced temporary file under an exclusive lock on `.lock`,
//! so concurrent writers lose no update and readers never see half a file. Temporary names
//! record the writing process ([`crate::leftovers`]), so what a killed writer left is recognised
//! and removed later; a failed write removes its own at once.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::index::ImageIndex;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::leftovers;
use crate::manifest::{Descriptor, MAX_MANIFEST_BYTES};

const OCI_LAYOUT_FILE: &str = "oci-layout";
const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
const INDEX_FILE: &str = "index.json";
const LOCK_FILE: &str = ".lock";
/// Prefix of temporary files beside their final names; `leftovers` adds the owning process.
pub(crate) const TMP_PREFIX: &str = ".tmp-";

/// An OCI image layout directory.
#[derive(Debug, Clone)]
pub(crate) struct OciLayout {
    root: PathBuf,
}

impl OciLayout {
    /// The layout at `root`, without touching the disk (for reading a layout someone else made).
    pub(crate) fn at(root: &Path) -> Self {
        OciLayout {
            root: root.to_path_buf(),
        }
    }

    /// Opens the layout at `root` for writing, creating the directory, `blobs/sha256` and
    /// `oci-layout` when missing, and removing temporary files killed writers left in `blobs/`.
    pub(crate) fn create(root: &Path) -> Result<Self> {
        create_dir_all(root, "cannot create OCI layout directory")?;
        let layout = OciLayout::at(root);
        let blobs = layout.blobs_dir();
        create_dir_all(&blobs, "failed to create")?;
        let marker = root.join(OCI_LAYOUT_FILE);
        if !marker.exists() {
            write_atomic(&marker, OCI_LAYOUT.as_bytes())?;
        }
        leftovers::sweep(&blobs, TMP_PREFIX);
        Ok(layout)
    }

    /// The layout directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// `blobs/sha256`.
    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where a blob lives (whether or not it is present).
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// Whether a blob file is present, whatever its size.
    pub(crate) fn has_blob_any_size(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Whether the blob is present with the expected size.
    pub(crate) fn has_blob(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.blob_path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Reads a small blob (a manifest or index) at `path`, refusing more than
    /// [`MAX_MANIFEST_BYTES`] and verifying its digest.
    pub(crate) fn read_small(path: &Path, digest: &Digest) -> Result<Vec<u8>> {
        let len = match fs::metadata(path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
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
        let bytes = fs::read(path).map_err(|e| Error::io("failed to read", path, e))?;
        digest::verify(&bytes, digest, &format!("blob {}", path.display()))?;
        Ok(bytes)
    }

    /// Reads a small blob of this layout, verified; see [`OciLayout::read_small`].
    pub(crate) fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>> {
        OciLayout::read_small(&self.blob_path(digest), digest)
    }

    /// Stores a blob held in memory after checking its digest. `false` when it was present.
    pub(crate) fn put_blob(&self, digest: &Digest, bytes: &[u8]) -> Result<bool> {
        digest::verify(bytes, digest, "blob")?;
        if self.has_blob(digest, bytes.len() as u64) {
            return Ok(false);
        }
        write_atomic(&self.blob_path(digest), bytes)?;
        Ok(true)
    }

    /// Copies the local `file` into the layout as blob `digest` of `size` bytes, hashing it on
    /// the way; the blob appears only when digest and size match. `false` when it was present
    /// (nothing is read).
    pub(crate) async fn import_file(
        &self,
        file: &Path,
        digest: &Digest,
        size: u64,
    ) -> Result<bool> {
        if self.has_blob(digest, size) {
            return Ok(false);
        }
        let (file, digest, target) = (file.to_path_buf(), digest.clone(), self.blob_path(digest));
        tokio::task::spawn_blocking(move || copy_verified(&file, &digest, size, &target))
            .await
            .map_err(|e| Error::InvalidInput(format!("blob import failed: {e}")))??;
        Ok(true)
    }

    /// `index.json`, or `None` when the layout has none.
    pub(crate) fn load_index(&self) -> Result<Option<ImageIndex>> {
        let path = self.root.join(INDEX_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("failed to read", path, e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::InvalidManifest {
                digest: path.display().to_string(),
                reason: format!("not a valid OCI image index: {e}"),
            })
    }

    /// `index.json`, empty when the layout has none yet.
    pub(crate) fn read_index(&self) -> Result<ImageIndex> {
        Ok(self.load_index()?.unwrap_or_default())
    }

    /// Changes `index.json` under the layout lock and replaces it atomically.
    pub(crate) fn update_index<T>(&self, change: impl FnOnce(&mut ImageIndex) -> T) -> Result<T> {
        let _lock = self.lock()?;
        self.update_index_locked(change)
    }

    /// [`OciLayout::update_index`] for a caller that already holds [`OciLayout::lock`].
    pub(crate) fn update_index_locked<T>(
        &self,
        change: impl FnOnce(&mut ImageIndex) -> T,
    ) -> Result<T> {
        let mut index = self.read_index()?;
        let out = change(&mut index);
        let bytes = serde_json::to_vec(&index).map_err(|e| Error::InvalidManifest {
            digest: self.root.join(INDEX_FILE).display().to_string(),
            reason: e.to_string(),
        })?;
        write_atomic(&self.root.join(INDEX_FILE), &bytes)?;
        Ok(out)
    }

    /// Names `desc` as `name` in `index.json`, replacing an earlier entry of that name.
    pub(crate) fn tag(&self, name: &str, desc: &Descriptor) -> Result<()> {
        self.update_index(|index| index.set(name, desc))
    }

    /// The descriptor `index.json` names `name`.
    pub(crate) fn resolve(&self, name: &str) -> Result<Option<Descriptor>> {
        Ok(self.read_index()?.find(name).cloned())
    }

    /// Takes the layout's exclusive lock (`.lock`), held until the file is dropped.
    pub(crate) fn lock(&self) -> Result<File> {
        let path = self.root.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("failed to open lock", &path, e))?;
        file.lock()
            .map_err(|e| Error::io("failed to lock", &path, e))?;
        Ok(file)
    }
}

/// Copies `source` to `target` through a temporary file beside `target`, verifying size and
/// digest before the rename; the temporary file is removed on failure.
fn copy_verified(source: &Path, digest: &Digest, size: u64, target: &Path) -> Result<()> {
    let mut input = File::open(source).map_err(|e| Error::io("failed to open", source, e))?;
    let dir = target.parent().unwrap_or(Path::new("."));
    let temp = temp_file_in(dir)?;
    let temp_path = temp.path().to_path_buf();
    let mut out = BufWriter::with_capacity(256 << 10, temp);
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = input
            .read(&mut buf)
            .map_err(|e| Error::io("failed to read", source, e))?;
        if n == 0 {
            break;
        }
        written += n as u64;
        if written > size {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| Error::io("failed to write", &temp_path, e))?;
    }
    check_complete(digest, size, written, hasher, &source.display().to_string())?;
    let temp = out
        .into_inner()
        .map_err(|e| Error::io("failed to write", &temp_path, e.into_error()))?;
    persist(temp, target)
}

/// Checks that a streamed blob is complete: `written` bytes of the `size` expected, hashing to
/// `digest` (`context` names the content in a mismatch).
pub(crate) fn check_complete(
    digest: &Digest,
    size: u64,
    written: u64,
    hasher: Sha256,
    context: &str,
) -> Result<()> {
    if written != size {
        return Err(Error::SizeMismatch {
            digest: digest.to_string(),
            expected: size,
            found: written,
        });
    }
    let found = Digest::from_hasher(hasher);
    if &found != digest {
        return Err(Error::DigestMismatch {
            context: context.to_owned(),
            expected: digest.to_string(),
            found: found.to_string(),
        });
    }
    Ok(())
}

/// A new temporary file in `dir`, named after this process, created 0644 before the umask:
/// nothing in a layout is secret, and users sharing a cache, or skopeo run as another user,
/// must be able to read what it publishes.
pub(crate) fn temp_file_in(dir: &Path) -> Result<tempfile::NamedTempFile> {
    let prefix = leftovers::prefix(TMP_PREFIX);
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644));
    builder
        .tempfile_in(dir)
        .map_err(|e| Error::io("failed to create temp file in", dir, e))
}

/// `mkdir -p` with mode 0755 before the umask, for the same reason as [`temp_file_in`].
/// `action` names what failed (`failed to create cache directory`).
pub(crate) fn create_dir_all(dir: &Path, action: &'static str) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    builder.create(dir).map_err(|e| Error::io(action, dir, e))
}

/// Renames a finished temporary file to `target`.
pub(crate) fn persist(temp: tempfile::NamedTempFile, target: &Path) -> Result<()> {
    temp.persist(target)
        .map_err(|e| Error::io("failed to move into place", target, e.error))?;
    Ok(())
}

/// Writes `bytes` to `path` through a synced temporary file in the same directory and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = temp_file_in(dir)?;
    temp.write_all(bytes)
        .map_err(|e| Error::io("failed to write", temp.path().to_path_buf(), e))?;
    temp.as_file()
        .sync_all()
        .map_err(|e| Error::io("failed to sync", temp.path().to_path_buf(), e))?;
    persist(temp, path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::cache::tests::sorted_names as names;
    use crate::manifest::{ANNOTATION_REF_NAME, OCI_MANIFEST};

    #[tokio::test]
    async fn a_users_layout_gets_blobs_and_a_tag_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("out");
        let layout = OciLayout::create(&root).unwrap();
        let data = b"layer bytes";
        let source = tmp.path().join("layer");
        fs::write(&source, data).unwrap();
        let digest = Digest::of(data);
        assert!(layout.import_file(&source, &digest, 11).await.unwrap());
        assert!(!layout.import_file(&source, &digest, 11).await.unwrap());
        let manifest = br#"{"schemaVersion":2}"#;
        let manifest_digest = Digest::of(manifest);
        assert!(layout.put_blob(&manifest_digest, manifest).unwrap());
        let desc = Descriptor {
            media_type: OCI_MANIFEST.into(),
            digest: manifest_digest.clone(),
            size: manifest.len() as u64,
            artifact_type: None,
            platform: None,
            annotations: Default::default(),
        };
        layout.tag("v1", &desc).unwrap();

        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(root.join(INDEX_FILE)).unwrap()).unwrap();
        assert_eq!(
            index["manifests"][0]["annotations"][ANNOTATION_REF_NAME],
            "v1"
        );
        assert_eq!(
            layout.resolve("v1").unwrap().unwrap().digest,
            manifest_digest
        );
        assert_eq!(names(&root), [".lock", "blobs", "index.json", "oci-layout"]);
        let mut blobs = vec![digest.hex().to_owned(), manifest_digest.hex().to_owned()];
        blobs.sort();
        assert_eq!(names(&layout.blobs_dir()), blobs);
    }

    #[tokio::test]
    async fn a_failed_import_leaves_no_file_beside_the_blobs() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(&tmp.path().join("out")).unwrap();
        let source = tmp.path().join("layer");
        fs::write(&source, b"layer bytes").unwrap();
        let wrong = Digest::of(b"other bytes");
        let err = layout.import_file(&source, &wrong, 11).await.unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        let err = layout
            .import_file(&source, &Digest::of(b"layer bytes"), 10)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::SizeMismatch { .. }), "{err}");
        assert_eq!(names(&layout.blobs_dir()), Vec::<String>::new());
    }

    #[test]
    fn a_broken_index_is_refused_naming_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let layout = OciLayout::create(tmp.path()).unwrap();
        assert_eq!(layout.load_index().unwrap(), None);
        fs::write(tmp.path().join(INDEX_FILE), b"[1,2]").unwrap();
        let err = layout.read_index().unwrap_err().to_string();
        assert!(
            err.contains("index.json") && err.contains("not a valid OCI image index"),
            "{err}"
        );
    }
}
