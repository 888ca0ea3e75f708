//! Uploads to a registry: blob existence checks, cross-repository mounts, streamed blob uploads
//! from disk, manifests. Every request is retried under the same policy as pulls (transient
//! network errors, 408, 429, 5xx); an interrupted upload starts again from the file.

use std::future::Future;
use std::path::Path;

use bytes::Bytes;
use futures_util::stream;
use oci_client::RegistryOperation;
use tokio::io::AsyncReadExt;

use super::Remote;
use super::retry::{Failure, Retrier};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress::Progress;

impl Remote {
    /// Runs `attempt` until it succeeds, fails permanently, or runs out of attempts.
    async fn retried<T, F, Fut>(&self, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut retrier = Retrier::new(&self.retry, self.retry.attempts);
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let delay = retrier.next_delay(Failure::from(error))?;
                    tracing::debug!(?delay, "retrying an upload request");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Authenticates for pushing to this repository (and pulling from it, for existence checks).
    pub(crate) async fn prepare_push(&self) -> Result<()> {
        let oci_ref = self.oci_ref(None);
        self.retried(|| async {
            self.client()?
                .auth(&oci_ref, &self.auth, RegistryOperation::Push)
                .await
                .map_err(|e| self.map_err(e, "authentication for push"))
        })
        .await?;
        Ok(())
    }

    /// Whether the repository already has the blob.
    pub(crate) async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        self.retried(|| async {
            self.client()?
                .blob_exists(&self.oci_ref(None), &digest.to_string())
                .await
                .map_err(|e| self.map_err(e, &format!("blob {digest} check")))
        })
        .await
    }

    /// Asks the registry to mount the blob from another repository of the same registry instead
    /// of uploading it; `false` when the registry declined (it then expects an upload).
    pub(crate) async fn mount_from(&self, source_repository: &str, digest: &Digest) -> bool {
        let r = &self.reference;
        let source = oci_client::Reference::with_digest(
            r.registry.clone(),
            source_repository.to_owned(),
            digest.to_string(),
        );
        let Ok(client) = self.client() else {
            return false;
        };
        match client
            .mount_blob(&self.oci_ref(None), &source, &digest.to_string())
            .await
        {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(%digest, from = source_repository, error = %e, "mount declined");
                false
            }
        }
    }

    /// Uploads a small blob held in memory.
    pub(crate) async fn upload_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<()> {
        self.retried(|| async {
            self.client()?
                .push_blob(&self.oci_ref(None), bytes.clone(), &digest.to_string())
                .await
                .map_err(|e| self.map_err(e, &format!("upload of blob {digest}")))
        })
        .await?;
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
        progress.blob_started(digest, size, path.file_name().and_then(|n| n.to_str()));
        self.retried(|| async {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| Error::io("failed to open", path, e))?;
            self.client()?
                .push_blob_stream(
                    &self.oci_ref(None),
                    file_chunks(file),
                    &digest.to_string(),
                    Some(size),
                )
                .await
                .map_err(|e| self.map_err(e, &format!("upload of {}", path.display())))
        })
        .await?;
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
        self.retried(|| async {
            self.client()?
                .push_manifest_raw(&oci_ref, bytes.clone(), content_type.clone())
                .await
                .map_err(|e| self.map_err(e, &format!("manifest upload as {identifier}")))
        })
        .await?;
        Ok(())
    }
}

/// A file as a stream of 256 KiB chunks, for a streamed upload body.
fn file_chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<
    Item = std::result::Result<Bytes, oci_client::errors::OciDistributionError>,
> + Send
+ 'static {
    stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 256 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), file))
            }
            Err(e) => Some((
                Err(oci_client::errors::OciDistributionError::IoError(e)),
                file,
            )),
        }
    })
}
