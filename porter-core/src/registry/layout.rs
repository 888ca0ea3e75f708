//! An OCI image layout directory as a source: the offline quick start, air-gapped transfers, and
//! network-free tests.

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::{Source, check_size, root_descriptor};
use crate::cache::{BlobDownload, Cache, OciLayout};
use crate::digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor};
use crate::progress::Progress;
use crate::reference::LayoutRef;

/// An OCI image layout directory.
pub(crate) struct LayoutSource {
    reference: LayoutRef,
    layout: OciLayout,
}

impl LayoutSource {
    pub(crate) fn new(reference: &LayoutRef) -> Self {
        LayoutSource {
            reference: reference.clone(),
            layout: OciLayout::at(&reference.dir),
        }
    }

    async fn read_small(&self, desc: &Descriptor) -> Result<Bytes> {
        if desc.size > manifest::MAX_MANIFEST_BYTES as u64 {
            return Err(Error::InvalidManifest {
                digest: desc.digest.to_string(),
                reason: format!("larger than {} bytes", manifest::MAX_MANIFEST_BYTES),
            });
        }
        let path = self.layout.blob_path(&desc.digest);
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
        let index = self.layout.load_index()?.ok_or_else(|| Error::NotFound {
            what: "OCI image layout",
            reference: dir.display().to_string(),
        })?;
        let manifests: Vec<&Descriptor> = index.descriptors().collect();
        let found = match (&self.reference.digest, &self.reference.tag) {
            (Some(d), _) => manifests.into_iter().find(|m| &m.digest == d).cloned(),
            (None, Some(tag)) => index.find(tag).cloned(),
            (None, None) if manifests.len() == 1 => manifests.first().copied().cloned(),
            (None, None) => {
                return Err(Error::InvalidInput(format!(
                    "{} holds {} manifests; name one with oci:<dir>:<tag>",
                    dir.display(),
                    manifests.len()
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
    ) -> Result<bool> {
        let Some(mut download) = cache.download(desc, progress).await? else {
            return Ok(false);
        };
        let result = async {
            self.copy_into(&mut download, progress).await?;
            let finished = download.finish().await;
            match finished {
                Err(err) if download.damaged_resume(&err) => {
                    self.copy_into(&mut download, progress).await?;
                    download.finish().await
                }
                other => other,
            }
        }
        .await;
        download.close().await;
        result.map(|()| true)
    }
}

impl LayoutSource {
    /// Streams the blob's bytes from the download's offset on.
    async fn copy_into(&self, download: &mut BlobDownload, progress: &dyn Progress) -> Result<()> {
        let digest = download.digest().clone();
        let path = self.layout.blob_path(&digest);
        let mut file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| Error::io("failed to open", &path, e))?;
        file.seek(std::io::SeekFrom::Start(download.offset()))
            .await
            .map_err(|e| Error::io("failed to read", &path, e))?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| Error::io("failed to read", &path, e))?;
            if n == 0 {
                return Ok(());
            }
            progress.blob_progress(&digest, n as u64);
            download.write(Bytes::copy_from_slice(&buf[..n])).await?;
        }
    }
}
