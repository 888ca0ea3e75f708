//! An OCI image layout directory as a source: the offline quick start, air-gapped transfers, and
//! network-free tests.

use std::path::PathBuf;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::{Source, check_size, root_descriptor};
use crate::cache::Cache;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::manifest::{self, ANNOTATION_REF_NAME, Descriptor};
use crate::progress::Progress;
use crate::reference::LayoutRef;

/// An OCI image layout directory.
pub(crate) struct LayoutSource {
    reference: LayoutRef,
}

impl LayoutSource {
    pub(crate) fn new(reference: &LayoutRef) -> Self {
        LayoutSource {
            reference: reference.clone(),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.reference
            .dir
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    async fn read_small(&self, desc: &Descriptor) -> Result<Bytes> {
        if desc.size > manifest::MAX_MANIFEST_BYTES as u64 {
            return Err(Error::InvalidManifest {
                digest: desc.digest.to_string(),
                reason: format!("larger than {} bytes", manifest::MAX_MANIFEST_BYTES),
            });
        }
        let path = self.blob_path(&desc.digest);
        let bytes = tokio::fs::read(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound {
                    what: "blob",
                    reference: format!("{} in {}", desc.digest, self.reference.dir.display()),
                }
            } else {
                Error::io("failed to read", &path, e)
            }
        })?;
        digest::verify(&bytes, &desc.digest, &path.display().to_string())?;
        check_size(desc, bytes.len())?;
        Ok(Bytes::from(bytes))
    }
}

impl Source for LayoutSource {
    async fn fetch_root(&self) -> Result<(Descriptor, Bytes)> {
        let dir = &self.reference.dir;
        let index_path = dir.join("index.json");
        let raw = tokio::fs::read(&index_path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound {
                    what: "OCI image layout",
                    reference: dir.display().to_string(),
                }
            } else {
                Error::io("failed to read", &index_path, e)
            }
        })?;
        let index: manifest::Index =
            serde_json::from_slice(&raw).map_err(|e| Error::InvalidManifest {
                digest: index_path.display().to_string(),
                reason: e.to_string(),
            })?;
        let found = match (&self.reference.digest, &self.reference.tag) {
            (Some(d), _) => index.manifests.iter().find(|m| &m.digest == d).cloned(),
            (None, Some(tag)) => index
                .manifests
                .iter()
                .find(|m| m.annotations.get(ANNOTATION_REF_NAME) == Some(tag))
                .cloned(),
            (None, None) if index.manifests.len() == 1 => index.manifests.first().cloned(),
            (None, None) => {
                return Err(Error::InvalidInput(format!(
                    "{} holds {} manifests; name one with oci:<dir>:<tag>",
                    dir.display(),
                    index.manifests.len()
                )));
            }
        };
        let desc = found.ok_or_else(|| Error::NotFound {
            what: "reference",
            reference: format!(
                "oci:{}:{}",
                dir.display(),
                self.reference.tag.as_deref().unwrap_or_default()
            ),
        })?;
        let bytes = self.read_small(&desc).await?;
        let root = root_descriptor(&bytes, desc.digest.clone(), Some(&desc.media_type))?;
        Ok((root, bytes))
    }

    async fn fetch_manifest(&self, desc: &Descriptor) -> Result<Bytes> {
        self.read_small(desc).await
    }

    async fn fetch_blob(
        &self,
        desc: &Descriptor,
        cache: &Cache,
        progress: &dyn Progress,
    ) -> Result<()> {
        let mut sink = cache.blob_writer(desc.digest.clone(), desc.size)?;
        let path = self.blob_path(&desc.digest);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::io("failed to open", &path, e))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| Error::io("failed to read", &path, e))?;
            if n == 0 {
                return sink.finish().await;
            }
            progress.blob_progress(&desc.digest, n as u64);
            sink.write(Bytes::copy_from_slice(&buf[..n])).await?;
        }
    }
}
