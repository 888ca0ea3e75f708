//! Uploads to a registry: blob existence checks, streamed blob uploads from disk, manifests.

use std::path::Path;

use bytes::Bytes;
use futures_util::stream;
use oci_client::RegistryOperation;
use tokio::io::AsyncReadExt;

use super::Remote;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress::Progress;

impl Remote {
    /// Authenticates for pushing to this repository (and pulling from it, for existence checks).
    pub(crate) async fn prepare_push(&self) -> Result<()> {
        let oci_ref = self.oci_ref(None);
        self.client
            .auth(&oci_ref, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|e| self.map_err(e, "authentication for push"))?;
        Ok(())
    }

    /// Whether the repository already has the blob.
    pub(crate) async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.client
            .blob_exists(&self.oci_ref(None), &digest.to_string())
            .await
            .map_err(|e| self.map_err(e, &format!("blob {digest} check")))
    }

    /// Uploads a small blob held in memory.
    pub(crate) async fn upload_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<()> {
        self.client
            .push_blob(&self.oci_ref(None), bytes, &digest.to_string())
            .await
            .map_err(|e| self.map_err(e, &format!("upload of blob {digest}")))?;
        Ok(())
    }

    /// Streams a file to the registry in one monolithic upload; memory stays bounded.
    pub(crate) async fn upload_file(
        &self,
        path: &Path,
        digest: &Digest,
        size: u64,
        progress: &dyn Progress,
    ) -> Result<()> {
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| Error::io("failed to open", path, e))?;
        let body = stream::unfold((file, 0u64), |(mut file, sent)| async move {
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), (file, sent + n as u64)))
                }
                Err(e) => Some((
                    Err(oci_client::errors::OciDistributionError::IoError(e)),
                    (file, sent),
                )),
            }
        });
        progress.blob_started(digest, size, path.file_name().and_then(|n| n.to_str()));
        self.client
            .push_blob_stream(&self.oci_ref(None), body, &digest.to_string(), Some(size))
            .await
            .map_err(|e| self.map_err(e, &format!("upload of {}", path.display())))?;
        progress.blob_progress(digest, size);
        progress.blob_done(digest, false);
        Ok(())
    }

    /// Puts a manifest or index under `identifier` (a tag or the digest).
    pub(crate) async fn put_manifest(
        &self,
        identifier: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<()> {
        let r = &self.reference;
        let oci_ref = match identifier.parse::<Digest>() {
            Ok(d) => oci_client::Reference::with_digest(
                r.registry.clone(),
                r.repository.clone(),
                d.to_string(),
            ),
            Err(_) => oci_client::Reference::with_tag(
                r.registry.clone(),
                r.repository.clone(),
                identifier.to_owned(),
            ),
        };
        let content_type = http::HeaderValue::from_str(media_type)
            .map_err(|_| Error::InvalidInput(format!("invalid media type {media_type:?}")))?;
        self.client
            .push_manifest_raw(&oci_ref, bytes, content_type)
            .await
            .map_err(|e| self.map_err(e, &format!("manifest upload as {identifier}")))?;
        Ok(())
    }
}
