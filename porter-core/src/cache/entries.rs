//! The artifact entries beside the cache's layout: `<root>/<id>/metadata.json` (id = the first
//! 16 hex digits of the root digest), the place the Go plugin kept its entries too, so `list`
//! shows both.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::layout::{create_dir_all, write_atomic};
use crate::artifact::ArtifactResult;
use crate::error::{Error, Result};

const METADATA_FILE: &str = "metadata.json";

/// The entry directories under the cache root.
#[derive(Debug, Clone)]
pub(crate) struct Entries {
    root: PathBuf,
}

impl Entries {
    pub(crate) fn new(root: &Path) -> Self {
        Entries {
            root: root.to_path_buf(),
        }
    }

    /// The entry directory of an artifact id.
    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    /// Writes `result` as its entry's `metadata.json`, refusing to replace an entry that holds
    /// another digest (two roots sharing a 16-digit prefix). `first_cached_at` is kept from the
    /// entry when it has one (its `cached_at` for entries written before that field existed);
    /// the value stored is returned. The caller holds the cache lock.
    pub(crate) fn write(&self, result: &ArtifactResult) -> Result<Option<String>> {
        let entry = self.dir(&result.id);
        let existing = read_metadata(&entry)?;
        if let Some(existing) = &existing
            && existing.digest != result.digest
            && !existing.digest.is_empty()
        {
            return Err(Error::InvalidInput(format!(
                "cache entry {} already holds {}, not {}",
                result.id, existing.digest, result.digest
            )));
        }
        let mut stored = result.clone();
        let known = |t: &String| t != crate::artifact::ZERO_TIME;
        stored.first_cached_at = existing
            .and_then(|e| e.first_cached_at.or(Some(e.cached_at)))
            .filter(known)
            .or_else(|| result.first_cached_at.clone())
            .or_else(|| Some(result.cached_at.clone()).filter(known));
        create_dir_all(&entry, "failed to create")?;
        write_atomic(
            &entry.join(METADATA_FILE),
            stored.to_metadata_json().as_bytes(),
        )?;
        Ok(stored.first_cached_at)
    }

    /// Loads the metadata of a cached artifact by id (16 lower-case hex characters).
    pub(crate) fn lookup(&self, id: &str) -> Result<ArtifactResult> {
        if id.len() != 16
            || !id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::InvalidInput(format!(
                "invalid artifact id {id:?}: expected 16 hex characters"
            )));
        }
        read_metadata(&self.dir(id))?.ok_or_else(|| Error::NotFound {
            what: "artifact",
            reference: id.to_owned(),
        })
    }

    /// Every entry, sorted by id; entries left by the Go plugin included. Unreadable entries
    /// are skipped with a warning.
    pub(crate) fn list(&self) -> Result<Vec<ArtifactResult>> {
        let mut out = Vec::new();
        for (name, dir) in self.dirs()? {
            match read_metadata(&dir) {
                Ok(Some(entry)) => out.push(entry),
                Ok(None) => {
                    tracing::debug!(entry = %name, "cache directory without metadata.json skipped")
                }
                Err(err) => tracing::warn!(entry = %name, error = %err, "Failed to load metadata"),
            }
        }
        Ok(out)
    }

    /// The candidate entry directories (every directory but `blobs` and dot-directories),
    /// sorted by name.
    pub(crate) fn dirs(&self) -> Result<Vec<(String, PathBuf)>> {
        let read = fs::read_dir(&self.root)
            .map_err(|e| Error::io("failed to read cache directory", &self.root, e))?;
        let mut dirs: Vec<(String, PathBuf)> = read
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .filter(|(name, _)| name != "blobs" && !name.starts_with('.'))
            .collect();
        dirs.sort();
        Ok(dirs)
    }

    /// The path of an entry's metadata file.
    pub(crate) fn metadata_path(entry: &Path) -> PathBuf {
        entry.join(METADATA_FILE)
    }
}

/// An entry's metadata, `None` when it has no `metadata.json`.
pub(crate) fn read_metadata(entry: &Path) -> Result<Option<ArtifactResult>> {
    let path = Entries::metadata_path(entry);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::CacheCorrupt {
                what: path.display().to_string(),
                reason: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("failed to read", path, e)),
    }
}
