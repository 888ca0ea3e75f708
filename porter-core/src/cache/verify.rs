//! `cache verify`: re-hash every blob and find the blobs cached artifacts need but lack.
//!
//! Blobs are immutable once verified and renamed into place, so a blob whose content no longer
//! hashes to its name was damaged on disk. Verifying only reads; repairing (in the engine)
//! deletes a damaged blob and fetches it again from the reference that cached it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::Cache;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{ANNOTATION_REF_NAME, Descriptor};

/// A damaged or missing blob and the cached references that need it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobProblem {
    /// `sha256:…`.
    pub digest: String,
    /// Names (references) in the cache whose artifact needs the blob; empty for garbage.
    pub needed_by: Vec<String>,
}

/// What `verify` found (and, after a repair, fixed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Blobs hashed.
    pub checked: usize,
    /// Bytes hashed.
    pub checked_bytes: u64,
    /// Blobs whose content does not match their digest.
    pub corrupt: Vec<BlobProblem>,
    /// Blobs cached artifacts need that are not in the cache.
    pub missing: Vec<BlobProblem>,
    /// Digests fetched again (or deleted, when nothing needed them) by a repair.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub repaired: Vec<String>,
    /// Problems a repair could not fix, with the reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unrepaired: Vec<String>,
}

impl VerifyReport {
    /// Whether the cache is healthy (after any repair).
    pub fn is_clean(&self) -> bool {
        (self.corrupt.is_empty() && self.missing.is_empty()) || self.all_repaired()
    }

    fn all_repaired(&self) -> bool {
        self.unrepaired.is_empty() && self.corrupt.len() + self.missing.len() == self.repaired.len()
    }
}

impl Cache {
    /// Hashes every blob and checks every cached artifact's blobs are present.
    pub fn verify(&self) -> Result<VerifyReport> {
        let users = self.blob_users()?;
        let needed_by = |hex: &str| -> Vec<String> {
            users
                .get(hex)
                .map(|(names, _)| names.clone())
                .unwrap_or_default()
        };
        let mut report = VerifyReport::default();
        let dir = self.layout.blobs_dir();
        let mut files: Vec<_> = fs::read_dir(&dir)
            .map_err(|e| Error::io("failed to read", &dir, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let mut buf = vec![0u8; 1 << 20];
        for path in files {
            let Some(hex) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            let Ok(expected) = format!("sha256:{hex}").parse::<Digest>() else {
                continue;
            };
            let mut file = File::open(&path).map_err(|e| Error::io("failed to open", &path, e))?;
            let mut hasher = Sha256::new();
            loop {
                let n = file
                    .read(&mut buf)
                    .map_err(|e| Error::io("failed to read", &path, e))?;
                if n == 0 {
                    break;
                }
                report.checked_bytes += n as u64;
                hasher.update(&buf[..n]);
            }
            report.checked += 1;
            if Digest::from_hasher(hasher) != expected {
                tracing::warn!(digest = %expected, path = %path.display(), "cached blob is corrupt");
                report.corrupt.push(BlobProblem {
                    digest: expected.to_string(),
                    needed_by: needed_by(&hex),
                });
            }
        }
        for (hex, (names, desc)) in &users {
            if desc.size > 0 && !self.has_blob(&desc.digest, desc.size) && !dir.join(hex).is_file()
            {
                report.missing.push(BlobProblem {
                    digest: desc.digest.to_string(),
                    needed_by: names.clone(),
                });
            }
        }
        Ok(report)
    }

    /// Takes a blob found corrupt out of `blobs/` (by `cache verify`, or by an export whose
    /// hash of the bytes it copied did not match), so no later pull reuses it: an online pull
    /// fetches it again, an offline one fails naming it. Readers that have it open keep their
    /// bytes; a blob already gone is not an error.
    pub(crate) fn quarantine(&self, digest: &Digest) -> Result<()> {
        let path = self.blob_path(digest);
        match fs::remove_file(&path) {
            Ok(()) => {
                tracing::warn!(%digest, path = %path.display(), "removed a corrupt cached blob");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io("failed to remove", path, e)),
        }
    }

    /// For every blob some named artifact reaches: the names and the blob's descriptor.
    pub(crate) fn blob_users(&self) -> Result<BTreeMap<String, (Vec<String>, Descriptor)>> {
        let index = self.layout.read_index()?;
        let mut users: BTreeMap<String, (Vec<String>, Descriptor)> = BTreeMap::new();
        for root in index.descriptors() {
            let name = root
                .annotations
                .get(ANNOTATION_REF_NAME)
                .cloned()
                .unwrap_or_default();
            for mut desc in self.reachable(&root.digest) {
                if desc.digest == root.digest {
                    desc.size = root.size;
                    desc.media_type = root.media_type.clone();
                }
                let entry = users
                    .entry(desc.digest.hex().to_owned())
                    .or_insert_with(|| (Vec::new(), desc));
                if !entry.0.contains(&name) {
                    entry.0.push(name.clone());
                }
            }
        }
        Ok(users)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_blobs_are_found_by_rehashing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let good = Digest::of(b"good");
        let bad = Digest::of(b"bad!");
        cache.put_blob(&good, b"good").unwrap();
        cache.put_blob(&bad, b"bad!").unwrap();
        fs::write(cache.blob_path(&bad), b"bad?").unwrap();
        let report = cache.verify().unwrap();
        assert_eq!(report.checked, 2);
        assert_eq!(report.corrupt.len(), 1);
        assert_eq!(report.corrupt[0].digest, bad.to_string());
        assert!(!report.is_clean());
        cache.quarantine(&bad).unwrap();
        cache.quarantine(&bad).unwrap();
        assert!(cache.verify().unwrap().is_clean());
    }
}
