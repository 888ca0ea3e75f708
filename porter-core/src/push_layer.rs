//! Pushing a byte stream as a minimal OCI artifact: one manifest whose config is the empty
//! descriptor (`application/vnd.oci.empty.v1+json`, `{}`) and whose single layer carries the
//! caller's media type, tagged (or checked against a pinned digest).
//!
//! This is what higher-level clients store documents as (porter-adapter's installations and
//! bundles). The stream is spooled to a temp file while it is hashed, so memory stays bounded
//! and the upload can name its digest up front; a blob the registry already has is not sent
//! again. The manifest carries no timestamp, so the same bytes always give the same digest.

use std::collections::BTreeMap;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::artifact::ArtifactResult;
use crate::digest::Digest;
use crate::engine::Porter;
use crate::error::{Error, Result};
use crate::manifest::Descriptor;
use crate::progress::Progress;
use crate::publish::{self, Blob, BlobSource, EMPTY_CONFIG, ImageManifest, Publication, Target};
use crate::reference::ArtifactRef;
use crate::registry::Remote;

const CHUNK: usize = 256 * 1024;

/// A push of one layer, validated before any I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerPushRequest {
    /// The reference as typed (a short one is resolved against `Registry.Default`, as pulls
    /// resolve it).
    pub original: String,
    /// The layer's media type (`type/subtype`).
    pub media_type: String,
    /// The manifest's `artifactType`; the layer media type when `None`.
    pub artifact_type: Option<String>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// Allow plain HTTP to the target registry.
    pub insecure: bool,
}

impl LayerPushRequest {
    /// Checks the reference's shape and the media type.
    pub fn new(reference: &str, media_type: &str) -> Result<Self> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(Error::InvalidInput("artifact reference required".into()));
        }
        reference.parse::<ArtifactRef>()?;
        check_media_type(media_type)?;
        Ok(LayerPushRequest {
            original: reference.to_owned(),
            media_type: media_type.to_owned(),
            artifact_type: None,
            annotations: BTreeMap::new(),
            insecure: false,
        })
    }
}

/// A media type must look like `type/subtype[+suffix]` (RFC 6838 restricted names).
fn check_media_type(media_type: &str) -> Result<()> {
    let valid_name = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    match media_type.split_once('/') {
        Some((kind, sub)) if valid_name(kind) && valid_name(sub) => Ok(()),
        _ => Err(Error::InvalidInput(format!(
            "invalid media type {media_type:?}: expected type/subtype"
        ))),
    }
}

/// The spooled layer.
struct Spooled {
    file: tempfile::TempPath,
    digest: Digest,
    size: u64,
}

impl Porter {
    /// Pushes what `reader` yields as a one-layer artifact to `request.original` and returns
    /// the manifest's `ArtifactResult` (`metadata["pushed.reference"]` is the resolved
    /// reference, `metadata["layer.digest"]` the layer's digest).
    pub async fn push_layer<R: AsyncRead + Unpin + Send>(
        &self,
        request: &LayerPushRequest,
        reader: R,
        progress: &dyn Progress,
    ) -> Result<ArtifactResult> {
        check_media_type(&request.media_type)?;
        let artifact_type = request
            .artifact_type
            .clone()
            .unwrap_or_else(|| request.media_type.clone());
        check_media_type(&artifact_type)?;
        let target = self.resolve(&request.original, request.insecure)?;
        let layer = spool(reader).await?;
        let layer_desc = Descriptor {
            media_type: request.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: None,
        };
        let manifest = ImageManifest::new(
            Some(artifact_type.clone()),
            vec![layer_desc],
            request.annotations.clone(),
        )
        .document()?;
        let manifest_digest = manifest.digest.clone();
        let (tag, pinned, destination) = match &target {
            ArtifactRef::Registry(r) => (
                r.tag.as_deref(),
                r.digest.as_ref(),
                Target::Registry(Remote::upstream_only(self.settings(), r, request.insecure)),
            ),
            ArtifactRef::Layout(l) => (
                l.tag.as_deref(),
                l.digest.as_ref(),
                Target::Layout(crate::push::open_layout(&l.dir)?),
            ),
        };
        // Checked before anything is uploaded.
        let identifiers =
            publish::identifiers(&request.original, tag, pinned, &manifest_digest, false)?;
        let publication = Publication {
            blobs: vec![
                Blob::memory(Bytes::from_static(EMPTY_CONFIG)),
                Blob {
                    digest: layer.digest.clone(),
                    size: layer.size,
                    source: BlobSource::File(layer.file.to_path_buf()),
                },
            ],
            manifests: Vec::new(),
            root: manifest.clone(),
            identifiers,
        };
        let known = publish::Known {
            mount_from: Vec::new(),
            records: Some(self.cache().records()),
        };
        publish::publish(&destination, &publication, &known, progress).await?;
        tracing::info!(reference = %target, digest = %manifest_digest, "pushed");

        let mut metadata = request.annotations.clone();
        metadata.insert("artifact.type".into(), artifact_type);
        metadata.insert("layer.digest".into(), layer.digest.to_string());
        metadata.insert("layer.media_type".into(), request.media_type.clone());
        metadata.insert("pushed.reference".into(), target.to_string());
        Ok(ArtifactResult::pushed(
            request.original.clone(),
            &manifest_digest,
            manifest.bytes.len(),
            metadata,
        ))
    }
}

/// Copies the stream into a temp file, hashing it on the way.
async fn spool<R: AsyncRead + Unpin + Send>(mut reader: R) -> Result<Spooled> {
    let temp = tempfile::Builder::new()
        .prefix("ds-porter-layer-")
        .tempfile()
        .map_err(|e| Error::io("failed to create temp file in", std::env::temp_dir(), e))?;
    let (file, path) = temp.into_parts();
    let mut out = tokio::fs::File::from_std(file);
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| Error::io("failed to read the layer stream for", &*path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
        out.write_all(&buf[..n])
            .await
            .map_err(|e| Error::io("failed to write", &*path, e))?;
    }
    out.flush()
        .await
        .map_err(|e| Error::io("failed to write", &*path, e))?;
    Ok(Spooled {
        file: path,
        digest: Digest::from_hasher(hasher),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::check_media_type;

    #[test]
    fn media_types_must_be_type_slash_subtype() {
        for good in [
            "application/vnd.ds.installation.v1+json",
            "application/octet-stream",
            "text/plain",
        ] {
            assert!(check_media_type(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "application",
            "/json",
            "application/",
            "a/b/c",
            "a b/c",
            "a/\n",
        ] {
            assert!(check_media_type(bad).is_err(), "{bad:?}");
        }
    }
}
