//! The one publish path: blobs, then manifests children first, then the root under its tags, to a
//! registry or an OCI image layout. Pushes of files, directories and releases (`push`) and of
//! byte streams (`push_layer`) only build typed documents and hand them over; copies will too.
//!
//! To a registry, a blob the repository already has is not sent; one this cache knows to be in
//! another repository of the same registry is mounted from there; anything else is uploaded. A
//! root is tagged only after everything it names is in place, so an interrupted publish never
//! leaves a tag pointing at incomplete content.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use crate::cache::{OciLayout, Records};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{Descriptor, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use crate::progress::Progress;
use crate::registry::{Endpoint, Remote, UploadBody};

/// The OCI empty config (`{}`).
pub(crate) const EMPTY_CONFIG: &[u8] = b"{}";
/// Most repositories a blob mount is tried from before uploading.
const MAX_MOUNT_SOURCES: usize = 3;
/// Blobs uploaded at once.
const PARALLEL_UPLOADS: usize = 4;

/// Where content is published.
pub(crate) enum Target {
    /// A registry repository (the upstream; pushes never go to mirrors).
    Registry(Remote),
    /// An OCI image layout directory.
    Layout(OciLayout),
}

/// Where a blob's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum BlobSource {
    Memory(Bytes),
    File(PathBuf),
}

/// A blob to publish.
#[derive(Debug, Clone)]
pub(crate) struct Blob {
    pub digest: Digest,
    pub size: u64,
    pub source: BlobSource,
}

impl Blob {
    /// A small blob held in memory.
    pub(crate) fn memory(bytes: Bytes) -> Self {
        Blob {
            digest: Digest::of(&bytes),
            size: bytes.len() as u64,
            source: BlobSource::Memory(bytes),
        }
    }
}

/// A manifest or index, serialized.
#[derive(Debug, Clone)]
pub(crate) struct Document {
    pub digest: Digest,
    pub bytes: Bytes,
    pub media_type: &'static str,
    pub artifact_type: Option<String>,
}

impl Document {
    /// Serializes `value` as a document of `media_type`.
    pub(crate) fn new(
        value: &impl Serialize,
        media_type: &'static str,
        artifact_type: Option<String>,
    ) -> Result<Self> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| Error::Internal(format!("cannot serialize a manifest: {e}")))?;
        Ok(Document {
            digest: Digest::of(&bytes),
            bytes: Bytes::from(bytes),
            media_type,
            artifact_type,
        })
    }

    /// The descriptor of this document.
    pub(crate) fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.to_owned(),
            digest: self.digest.clone(),
            size: self.bytes.len() as u64,
            annotations: BTreeMap::new(),
            platform: None,
            artifact_type: self.artifact_type.clone(),
        }
    }
}

/// Everything one publish writes.
#[derive(Debug, Clone)]
pub(crate) struct Publication {
    /// Configs and layers (duplicates are published once).
    pub blobs: Vec<Blob>,
    /// Manifests the root names, children before parents.
    pub manifests: Vec<Document>,
    /// The root manifest or index.
    pub root: Document,
    /// What the root is stored under: tags, or its own digest.
    pub identifiers: Vec<String>,
}

/// The empty config descriptor, with its content inline (`data`), as DS writes it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ConfigDescriptor {
    pub media_type: &'static str,
    pub digest: Digest,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<&'static str>,
}

impl ConfigDescriptor {
    /// The OCI empty config.
    pub(crate) fn empty() -> Self {
        ConfigDescriptor {
            media_type: OCI_EMPTY,
            digest: Digest::of(EMPTY_CONFIG),
            size: EMPTY_CONFIG.len() as u64,
            data: Some("e30="),
        }
    }
}

/// An OCI image manifest, in the field order ds-porter writes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageManifest {
    pub schema_version: u32,
    pub media_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: ConfigDescriptor,
    pub layers: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageManifest {
    /// A manifest with the empty config.
    pub(crate) fn new(
        artifact_type: Option<String>,
        layers: Vec<Descriptor>,
        annotations: BTreeMap<String, String>,
    ) -> Self {
        ImageManifest {
            schema_version: 2,
            media_type: OCI_MANIFEST,
            artifact_type,
            config: ConfigDescriptor::empty(),
            layers,
            annotations,
        }
    }

    /// Serialized.
    pub(crate) fn document(&self) -> Result<Document> {
        Document::new(self, OCI_MANIFEST, self.artifact_type.clone())
    }
}

/// An OCI image index, in the field order ds-porter writes.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageIndex {
    pub schema_version: u32,
    pub media_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl ImageIndex {
    /// Serialized.
    pub(crate) fn document(&self) -> Result<Document> {
        Document::new(self, OCI_INDEX, self.artifact_type.clone())
    }
}

/// The identifiers a root is stored under: a pinned digest (which must be the root's), or the
/// tag (`latest` when none) and, when `also_latest`, `latest` too.
pub(crate) fn identifiers(
    shown: &str,
    tag: Option<&str>,
    pinned: Option<&Digest>,
    root: &Digest,
    also_latest: bool,
) -> Result<Vec<String>> {
    if let Some(pinned) = pinned {
        if pinned != root {
            return Err(Error::DigestMismatch {
                context: format!("push to {shown} (nothing was uploaded)"),
                expected: pinned.to_string(),
                found: root.to_string(),
            });
        }
        return Ok(vec![pinned.to_string()]);
    }
    let tag = tag.unwrap_or("latest").to_owned();
    let mut out = vec![tag.clone()];
    if also_latest && tag != "latest" {
        out.push("latest".into());
    }
    Ok(out)
}

/// What a publish knows about where blobs already are.
#[derive(Default)]
pub(crate) struct Known {
    /// Other repositories of the target's registry that may hold the blobs.
    pub mount_from: Vec<String>,
    /// The cache's records: where each blob was seen, updated with where it now is.
    pub records: Option<Records>,
}

impl Known {
    /// Repositories of `registry` other than `repository` to mount `digest` from: the ones the
    /// records name for it first, then the general candidates.
    fn sources(&self, registry: &str, repository: &str, digest: &Digest) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let recorded = self
            .records
            .as_ref()
            .map(|r| r.locations(digest))
            .unwrap_or_default();
        for name in recorded {
            if let Some((host, repo)) = name.split_once('/')
                && crate::config::same_registry(host, registry)
                && repo != repository
                && !out.iter().any(|r| r == repo)
            {
                out.push(repo.to_owned());
            }
        }
        for repo in &self.mount_from {
            if repo != repository && !out.contains(repo) {
                out.push(repo.clone());
            }
        }
        out
    }
}

/// How a blob came to be in the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// The target had it.
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Sent.
    Sent,
}

/// What a publish did with the blobs (each counted once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Published {
    /// Blobs sent to the target.
    pub sent: usize,
    /// Bytes of the blobs sent.
    pub sent_bytes: u64,
    /// Blobs the target already had.
    pub present: usize,
    /// Blobs mounted from another repository of the same registry.
    pub mounted: usize,
}

impl Published {
    fn count(&mut self, placement: Placement, size: u64) {
        match placement {
            Placement::Present => self.present += 1,
            Placement::Mounted => self.mounted += 1,
            Placement::Sent => {
                self.sent += 1;
                self.sent_bytes += size;
            }
        }
    }
}

/// Publishes `publication` to `target`. Blobs go up several at once; a registry repository
/// that already has one (HEAD) or can mount it from another repository is not sent it.
pub(crate) async fn publish(
    target: &Target,
    publication: &Publication,
    known: &Known,
    progress: &dyn Progress,
) -> Result<Published> {
    let mut published = Published::default();
    let mut seen = HashSet::new();
    let blobs: Vec<&Blob> = publication
        .blobs
        .iter()
        .filter(|b| seen.insert(b.digest.clone()))
        .collect();
    match target {
        Target::Registry(remote) => {
            let endpoint = remote.upstream();
            let reference = remote.reference();
            let tasks: Vec<BoxFuture<'_, Result<(Placement, u64)>>> = blobs
                .iter()
                .map(|blob| {
                    publish_blob(remote, known, blob, progress)
                        .map(|placed| placed.map(|p| (p, blob.size)))
                        .boxed()
                })
                .collect();
            let placed = futures_util::stream::iter(tasks)
                .buffer_unordered(PARALLEL_UPLOADS)
                .try_collect::<Vec<(Placement, u64)>>()
                .await?;
            for (placement, size) in placed {
                published.count(placement, size);
            }
            for doc in publication.manifests.iter().chain([&publication.root]) {
                if doc.digest == publication.root.digest {
                    continue;
                }
                endpoint
                    .put_manifest(&doc.digest.to_string(), doc.bytes.clone(), doc.media_type)
                    .await?;
            }
            for identifier in &publication.identifiers {
                endpoint
                    .put_manifest(
                        identifier,
                        publication.root.bytes.clone(),
                        publication.root.media_type,
                    )
                    .await?;
            }
            if let Some(records) = &known.records {
                let name = format!("{}/{}", reference.registry, reference.repository);
                let digests = blobs.iter().map(|b| &b.digest);
                if let Err(e) = records.remember_locations(&name, digests) {
                    tracing::debug!("blob locations not recorded: {e}");
                }
            }
        }
        Target::Layout(layout) => {
            for blob in blobs {
                let copied = match &blob.source {
                    BlobSource::Memory(bytes) => {
                        layout.put_blob(&blob.digest, bytes)?;
                        true
                    }
                    BlobSource::File(path) => {
                        layout.import_file(path, &blob.digest, blob.size).await?
                    }
                };
                progress.blob_done(&blob.digest, !copied);
                let placement = if copied {
                    Placement::Sent
                } else {
                    Placement::Present
                };
                published.count(placement, blob.size);
            }
            for doc in publication.manifests.iter().chain([&publication.root]) {
                layout.put_blob(&doc.digest, &doc.bytes)?;
            }
            let root = publication.root.descriptor();
            for identifier in &publication.identifiers {
                // A layout names what it holds in `index.json`: a root pushed by digest is
                // recorded as `latest`.
                let name = match identifier.parse::<Digest>() {
                    Ok(_) => "latest",
                    Err(_) => identifier.as_str(),
                };
                layout.tag(name, &root)?;
            }
        }
    }
    Ok(published)
}

/// Puts one blob in the target repository: nothing when it is there, a mount when another
/// repository of the registry has it, else an upload.
async fn publish_blob(
    remote: &Remote,
    known: &Known,
    blob: &Blob,
    progress: &dyn Progress,
) -> Result<Placement> {
    let endpoint = remote.upstream();
    if endpoint.has_blob(&blob.digest).await? {
        tracing::debug!(digest = %blob.digest, "blob already in the registry");
        progress.blob_done(&blob.digest, true);
        return Ok(Placement::Present);
    }
    let reference = remote.reference();
    let sources = known.sources(&reference.registry, &reference.repository, &blob.digest);
    if mount(remote, &sources, &blob.digest).await {
        progress.blob_done(&blob.digest, true);
        return Ok(Placement::Mounted);
    }
    upload_known(endpoint, blob, progress).await?;
    Ok(Placement::Sent)
}

/// Uploads a blob whose digest is known: small ones and memory in one `PUT`; a file in one pass
/// through an upload session when chunks are asked for or the registry refuses one `PUT` of it
/// as too large.
async fn upload_known(endpoint: &Endpoint, blob: &Blob, progress: &dyn Progress) -> Result<()> {
    let chunk = endpoint.conn().chunk_size();
    match &blob.source {
        BlobSource::Memory(bytes) => {
            progress.blob_started(&blob.digest, blob.size, None);
            endpoint
                .upload(UploadBody::Memory(bytes.clone()), &blob.digest, blob.size)
                .await?;
        }
        BlobSource::File(path) => {
            let title = path.file_name().and_then(|n| n.to_str());
            progress.blob_started(&blob.digest, blob.size, title);
            let whole = match chunk {
                Some(_) => None,
                None => Some(
                    endpoint
                        .upload(UploadBody::File(path), &blob.digest, blob.size)
                        .await,
                ),
            };
            match whole {
                Some(Ok(())) => {}
                Some(Err(Error::Registry { status: 413, .. })) | None => {
                    endpoint
                        .upload_file(path, blob.size, chunk, Some(&blob.digest), &|_| {})
                        .await?;
                }
                Some(Err(e)) => return Err(e),
            }
        }
    }
    progress.blob_progress(&blob.digest, blob.size);
    progress.blob_done(&blob.digest, false);
    Ok(())
}

/// Uploads files whose digests are not known yet, each read once (hashed as it goes out),
/// several at once; returns their digests in order. What they are part of is published after.
pub(crate) async fn upload_new_files(
    remote: &Remote,
    files: &[(PathBuf, u64)],
    progress: &dyn Progress,
) -> Result<Vec<Digest>> {
    let endpoint = remote.upstream();
    let chunk = endpoint.conn().chunk_size();
    let tasks: Vec<BoxFuture<'_, Result<Digest>>> = files
        .iter()
        .map(|(path, size)| upload_new_file(endpoint, path, *size, chunk, progress).boxed())
        .collect();
    futures_util::stream::iter(tasks)
        .buffered(PARALLEL_UPLOADS)
        .try_collect()
        .await
}

async fn upload_new_file(
    endpoint: &Endpoint,
    path: &std::path::Path,
    size: u64,
    chunk: Option<u64>,
    progress: &dyn Progress,
) -> Result<Digest> {
    let digest = endpoint
        .upload_file(path, size, chunk, None, &|_| {})
        .await?;
    let title = path.file_name().and_then(|n| n.to_str());
    progress.blob_started(&digest, size, title);
    progress.blob_progress(&digest, size);
    progress.blob_done(&digest, false);
    Ok(digest)
}

/// Tries to mount `digest` from each candidate repository; `true` once one succeeds. A mount
/// the registry refuses is not an error: the blob is uploaded instead.
async fn mount(remote: &Remote, sources: &[String], digest: &Digest) -> bool {
    for repo in sources.iter().take(MAX_MOUNT_SOURCES) {
        match remote.upstream().mount(digest, repo).await {
            Ok(true) => {
                tracing::debug!(%digest, from = %repo, "blob mounted from another repository");
                return true;
            }
            Ok(false) => tracing::debug!(%digest, from = %repo, "mount declined"),
            Err(err) => tracing::debug!(%digest, from = %repo, "mount failed: {err}"),
        }
    }
    false
}
