//! Copying an artifact between registries and OCI image layouts, in any direction.
//!
//! A copy is a pull into the cache (verified, through mirrors, retried, signature-checked as
//! every pull is) followed by the one publish path from the cache's blobs: nothing is held
//! whole in memory but manifests, the target is not sent what it has, and blobs another
//! repository of the target registry holds are mounted. Copying every platform publishes the
//! source's documents byte for byte, so every digest is kept; a platform subset publishes a new
//! index over the source's own child manifests (their digests are kept).

use std::collections::HashSet;

use bytes::Bytes;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::digest::Digest;
use crate::engine::{Porter, PullRequest};
use crate::error::{Error, Result};
use crate::manifest::{
    self, DOCKER_LIST, DOCKER_MANIFEST, Descriptor, Node, OCI_INDEX, OCI_MANIFEST, PlatformRequest,
    Selected,
};
use crate::progress::Progress;
use crate::publish::{self, Blob, BlobSource, Document, Known, Publication, Target};
use crate::reference::ArtifactRef;
use crate::registry::Remote;

/// How deep nested indexes are followed when a whole graph is copied.
const MAX_DEPTH: usize = 4;

/// A copy, validated before any I/O.
#[derive(Debug, Clone)]
pub struct CopyRequest {
    /// The source as typed: a registry reference or `oci:DIR[:TAG|@DIGEST]`.
    pub source: String,
    /// The destination as typed; without a tag or digest it takes the source's tag.
    pub destination: String,
    /// Platforms to copy: [`PlatformRequest::All`] (the default) keeps every digest.
    pub platforms: PlatformRequest,
    /// Allow plain HTTP to the registries the source and destination name.
    pub insecure: bool,
    /// Stops the copy.
    pub cancel: CancellationToken,
}

impl CopyRequest {
    /// A copy of every platform of `source` to `destination`.
    pub fn new(source: &str, destination: &str) -> Self {
        CopyRequest {
            source: source.trim().to_owned(),
            destination: destination.trim().to_owned(),
            platforms: PlatformRequest::All,
            insecure: false,
            cancel: CancellationToken::new(),
        }
    }

    /// A copy with both references and `platforms` (`os/arch[/variant]`, comma lists allowed;
    /// none copies every platform) checked before any I/O (every front end calls this).
    pub fn checked(source: &str, destination: &str, platforms: &[String]) -> Result<Self> {
        let (source, destination) = (source.trim(), destination.trim());
        if source.is_empty() || destination.is_empty() {
            return Err(Error::InvalidInput(
                "source and destination references required".into(),
            ));
        }
        source.parse::<ArtifactRef>()?;
        destination.parse::<ArtifactRef>()?;
        let mut request = CopyRequest::new(source, destination);
        if !platforms.is_empty() {
            request.platforms = PlatformRequest::from_flags(platforms, false)?;
        }
        Ok(request)
    }
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopyOutcome {
    /// The source as typed.
    pub source: String,
    /// The destination as written (with the tag or digest it was stored under).
    pub destination: String,
    /// Digest of the source's root manifest or index.
    pub source_digest: String,
    /// Digest of what the destination now holds (equal to `source_digest` unless a platform
    /// subset was copied).
    pub digest: String,
    /// Media type of that root.
    pub media_type: String,
    /// Platforms copied (`os/arch[/variant]`), in index order.
    pub platforms: Vec<String>,
    /// `true` when a platform subset was copied under a new index.
    pub subset: bool,
    /// Manifests and indexes written.
    pub manifests: usize,
    /// Blobs sent to the destination.
    pub blobs_copied: usize,
    /// Blobs the destination already had.
    pub blobs_skipped: usize,
    /// Blobs mounted from another repository of the destination registry.
    pub blobs_mounted: usize,
    /// Bytes of the blobs sent.
    pub bytes_copied: u64,
    /// Bytes fetched from the source (what the cache did not have).
    pub bytes_downloaded: u64,
}

impl Porter {
    /// Copies `request.source` to `request.destination`: registry or layout on either side.
    ///
    /// Every blob is hashed as it leaves the cache; one that no longer matches its digest is
    /// never committed at the destination. It is taken out of the cache and, online, the copy
    /// runs once more, fetching it again (the rule a pull's export follows).
    pub async fn copy(
        &self,
        request: &CopyRequest,
        progress: &dyn Progress,
    ) -> Result<CopyOutcome> {
        let err = match self.copy_once(request, progress).await {
            Err(err) => err,
            done => return done,
        };
        if !self.take_out_damaged(&err, false).await? {
            return Err(err);
        }
        tracing::warn!("{err}; fetching it again");
        self.copy_once(request, progress).await
    }

    async fn copy_once(
        &self,
        request: &CopyRequest,
        progress: &dyn Progress,
    ) -> Result<CopyOutcome> {
        let destination = self.resolve(&request.destination, request.insecure)?;
        if let ArtifactRef::Registry(_) = &destination
            && self.settings().offline
        {
            return Err(Error::InvalidInput(format!(
                "cannot copy to {} while offline",
                request.destination
            )));
        }
        let mut pull = PullRequest::new(&request.source, request.platforms.clone())?;
        pull.insecure = request.insecure;
        pull.cancel = request.cancel.clone();
        let pulled = self.pull(&pull, progress).await?;
        let source_digest: Digest = pulled.result.digest.parse()?;
        let source_tag = match &pull.reference {
            ArtifactRef::Registry(r) => r.tag.clone(),
            ArtifactRef::Layout(l) => l.tag.clone(),
        };
        let cache = self.cache().clone();
        let platforms = request.platforms.clone();
        let selected = pulled.selected.clone();
        let plan = crate::error::blocking("reading the copy from the cache", move || {
            plan(&cache, &source_digest, &platforms, &selected)
        })
        .await?;

        // Stored under the destination's digest or tag, else the source's tag, else by digest.
        let (tag, pinned) = match &destination {
            ArtifactRef::Registry(r) => (r.tag.clone(), r.digest.clone()),
            ArtifactRef::Layout(l) => (l.tag.clone(), l.digest.clone()),
        };
        let (tag, pinned) = match (pinned, tag.or(source_tag)) {
            (Some(digest), _) => (None, Some(digest)),
            (None, Some(tag)) => (Some(tag), None),
            (None, None) => (None, Some(plan.root.digest.clone())),
        };
        let identifiers = publish::identifiers(
            &request.destination,
            tag.as_deref(),
            pinned.as_ref(),
            &plan.root.digest,
            false,
        )?;
        let written = match &tag {
            Some(tag) => format!("{}:{tag}", without_identifier(&destination)),
            None => format!("{}@{}", without_identifier(&destination), plan.root.digest),
        };
        let (target, mount_from) = match &destination {
            ArtifactRef::Registry(r) => (
                Target::Registry(Remote::upstream_only(self.settings(), r, request.insecure)),
                self.mount_sources(r),
            ),
            ArtifactRef::Layout(l) => (
                Target::Layout(crate::push::open_layout(&l.dir)?),
                Vec::new(),
            ),
        };
        let known = Known {
            mount_from,
            records: Some(self.cache().records()),
        };
        let publication = Publication {
            blobs: plan.blobs,
            manifests: plan.manifests,
            root: plan.root,
            identifiers,
        };
        let published = request
            .cancel
            .run_until_cancelled(publish::publish(&target, &publication, &known, progress))
            .await
            .unwrap_or(Err(Error::Cancelled))
            .map_err(|err| damaged_in_cache(err, self.cache(), &publication.blobs))?;
        tracing::info!(
            from = %request.source,
            to = %written,
            digest = %publication.root.digest,
            "copied"
        );
        Ok(CopyOutcome {
            source: request.source.clone(),
            destination: written,
            source_digest: pulled.result.digest,
            digest: publication.root.digest.to_string(),
            media_type: publication.root.media_type.to_owned(),
            platforms: plan.platforms,
            subset: plan.subset,
            manifests: publication.manifests.len() + 1,
            blobs_copied: published.sent,
            blobs_skipped: published.present,
            blobs_mounted: published.mounted,
            bytes_copied: published.sent_bytes,
            bytes_downloaded: pulled.result.downloaded_bytes.unwrap_or(0),
        })
    }
}

/// Every blob a copy publishes is read from the cache: one whose bytes did not hash to its
/// digest on the way out is a damaged cached blob.
fn damaged_in_cache(err: Error, cache: &Cache, blobs: &[Blob]) -> Error {
    let Error::DigestMismatch {
        expected, found, ..
    } = err.root()
    else {
        return err;
    };
    match blobs.iter().find(|b| b.digest.to_string() == *expected) {
        Some(blob) => Error::CorruptBlob {
            digest: expected.clone(),
            path: cache.blob_path(&blob.digest),
            found: found.clone(),
        },
        None => err,
    }
}

/// The destination without its tag or digest, as the user wrote it.
fn without_identifier(reference: &ArtifactRef) -> String {
    match reference {
        ArtifactRef::Registry(r) => format!("{}/{}", r.registry, r.repository),
        ArtifactRef::Layout(l) => format!("oci:{}", l.dir.display()),
    }
}

/// What the cache holds for the copy, ready to publish.
struct Plan {
    root: Document,
    manifests: Vec<Document>,
    blobs: Vec<Blob>,
    platforms: Vec<String>,
    subset: bool,
}

/// Reads the copied graph from the cache: the source's documents as they are when every
/// platform was pulled, or a new index over the selected manifests.
fn plan(
    cache: &Cache,
    root: &Digest,
    platforms: &PlatformRequest,
    selected: &[Selected],
) -> Result<Plan> {
    let bytes = cache.read_blob(root)?;
    let media_type = manifest::detect_media_type(&bytes, None, root)?;
    let node = manifest::parse(&bytes, &media_type, root)?;
    let mut graph = Graph::default();
    let names: Vec<String> = selected
        .iter()
        .map(|s| {
            s.platform
                .as_ref()
                .map_or_else(|| "unknown".to_owned(), ToString::to_string)
        })
        .collect();
    let whole = matches!(platforms, PlatformRequest::All) || matches!(node, Node::Manifest(_));
    if whole {
        graph.walk(cache, root, &bytes, &media_type, 0)?;
        let root = graph
            .documents
            .pop()
            .ok_or_else(|| Error::Internal("a copied graph has no root".into()))?;
        return Ok(Plan {
            root,
            manifests: graph.documents,
            blobs: graph.blobs,
            platforms: names,
            subset: false,
        });
    }
    if selected.is_empty() {
        return Err(Error::Export(
            "no manifests found for requested platform(s)".into(),
        ));
    }
    // A new index over the selected child manifests, keeping the source index's other fields.
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| Error::InvalidManifest {
            digest: root.to_string(),
            reason: e.to_string(),
        })?;
    let mut children = Vec::new();
    for leaf in selected {
        let mut descriptor: Descriptor = leaf.descriptor.clone();
        if descriptor.platform.is_none()
            && let Some(platform) = &leaf.platform
        {
            descriptor.platform = Some(manifest::DescriptorPlatform {
                os: platform.os.clone(),
                architecture: platform.arch.clone(),
                variant: platform.variant.clone(),
            });
        }
        if children.iter().any(|c: &Descriptor| {
            c.digest == descriptor.digest && c.platform == descriptor.platform
        }) {
            continue;
        }
        let child = cache.read_blob(&descriptor.digest)?;
        let child_type =
            manifest::detect_media_type(&child, Some(&descriptor.media_type), &descriptor.digest)?;
        graph.walk(cache, &descriptor.digest, &child, &child_type, 1)?;
        children.push(descriptor);
    }
    let list = serde_json::to_value(&children)
        .map_err(|e| Error::Internal(format!("cannot serialize an index: {e}")))?;
    match value.as_object_mut() {
        Some(object) => {
            object.insert("manifests".into(), list);
        }
        None => {
            return Err(Error::InvalidManifest {
                digest: root.to_string(),
                reason: "not a JSON object".into(),
            });
        }
    }
    let index_bytes = serde_json::to_vec(&value)
        .map_err(|e| Error::Internal(format!("cannot serialize an index: {e}")))?;
    let artifact_type = match &node {
        Node::Index(index) => index.artifact_type.clone(),
        Node::Manifest(_) => None,
    };
    let root = Document {
        digest: Digest::of(&index_bytes),
        bytes: Bytes::from(index_bytes),
        media_type: known_media_type(&media_type, root)?,
        artifact_type,
    };
    Ok(Plan {
        root,
        manifests: graph.documents,
        blobs: graph.blobs,
        platforms: names,
        subset: true,
    })
}

/// Documents children first, and the blobs their manifests name.
#[derive(Default)]
struct Graph {
    documents: Vec<Document>,
    blobs: Vec<Blob>,
    seen: HashSet<Digest>,
}

impl Graph {
    /// Adds the document `digest` (its bytes already read) after everything it names.
    fn walk(
        &mut self,
        cache: &Cache,
        digest: &Digest,
        bytes: &[u8],
        media_type: &str,
        depth: usize,
    ) -> Result<()> {
        if !self.seen.insert(digest.clone()) {
            return Ok(());
        }
        let node = manifest::parse(bytes, media_type, digest)?;
        let artifact_type = match &node {
            Node::Index(index) => index.artifact_type.clone(),
            Node::Manifest(m) => m.artifact_type.clone(),
        };
        match node {
            Node::Index(index) => {
                if depth > MAX_DEPTH {
                    return Err(Error::InvalidManifest {
                        digest: digest.to_string(),
                        reason: format!("indexes nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                for child in &index.manifests {
                    let child_bytes = cache.read_blob(&child.digest).map_err(|e| match e {
                        Error::MissingBlob { .. } => Error::InvalidManifest {
                            digest: child.digest.to_string(),
                            reason: "listed by the index but not fetched (a media type \
                                         ds-porter does not pull); copy a platform subset"
                                .into(),
                        },
                        e => e,
                    })?;
                    let child_type = manifest::detect_media_type(
                        &child_bytes,
                        Some(&child.media_type),
                        &child.digest,
                    )?;
                    self.walk(cache, &child.digest, &child_bytes, &child_type, depth + 1)?;
                }
            }
            Node::Manifest(m) => {
                for blob in std::iter::once(&m.config).chain(&m.layers) {
                    if self.seen.insert(blob.digest.clone()) {
                        self.blobs.push(Blob {
                            digest: blob.digest.clone(),
                            size: blob.size,
                            source: BlobSource::File(cache.blob_path(&blob.digest)),
                        });
                    }
                }
            }
        }
        self.documents.push(Document {
            digest: digest.clone(),
            bytes: Bytes::copy_from_slice(bytes),
            media_type: known_media_type(media_type, digest)?,
            artifact_type,
        });
        Ok(())
    }
}

/// The manifest media types a copy writes.
fn known_media_type(media_type: &str, digest: &Digest) -> Result<&'static str> {
    [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST]
        .into_iter()
        .find(|known| *known == media_type)
        .ok_or_else(|| Error::InvalidManifest {
            digest: digest.to_string(),
            reason: format!("cannot copy a document of media type {media_type:?}"),
        })
}
