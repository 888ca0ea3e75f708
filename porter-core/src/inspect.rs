//! Looking at an artifact before pulling it: its root manifest or index, and for each platform
//! the manifest's layers and sizes. Only manifests are read, never layers; several at once.
//!
//! From a registry (through mirrors, as pulls), from an `oci:` layout, or from the cache alone:
//! offline, or when a digest reference and every manifest it names are cached. The result says
//! which.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt as _, StreamExt as _, TryStreamExt as _, stream};
use serde::Serialize;

use crate::cache::Cache;
use crate::digest::Digest;
use crate::engine::Porter;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, Node, Selected};
use crate::reference::ArtifactRef;
use crate::registry::{LayoutSource, Remote, Served, Source};

/// Indexes nested deeper than this are refused.
const MAX_DEPTH: usize = 4;
/// Most manifests one inspection lists.
const MAX_LISTED: usize = 1024;
/// Manifests fetched at once.
const CONCURRENCY: usize = 8;

/// An inspection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InspectRequest {
    /// The reference as typed (registry, short name, or `oci:DIR[:TAG|@DIGEST]`).
    pub reference: String,
    /// Allow plain HTTP to the registry the reference names.
    pub insecure: bool,
    /// Answer from the cache alone (also `Settings::offline`).
    pub offline: bool,
    /// Read only the root document (for its bytes as served): no platform is described.
    pub root_only: bool,
}

impl InspectRequest {
    /// An inspection of `reference`.
    pub fn new(reference: &str) -> Self {
        InspectRequest {
            reference: reference.trim().to_owned(),
            insecure: false,
            offline: false,
            root_only: false,
        }
    }

    /// An inspection of `reference`, checked before any I/O (every front end calls this).
    pub fn checked(reference: &str) -> Result<Self> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(Error::InvalidInput("artifact reference required".into()));
        }
        reference.parse::<ArtifactRef>()?;
        Ok(InspectRequest::new(reference))
    }
}

/// What an artifact is, without its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The reference as typed.
    pub reference: String,
    /// The reference resolved (against `Registry.Default`; a layout by its directory).
    pub resolved: String,
    /// Digest of the root manifest or index.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its `artifactType`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
    /// Where the answer came from: `registry`, `mirror`, `layout` or `cache`.
    pub source: String,
    /// The mirror that answered, when one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mirror: Option<String>,
    /// Each platform's manifest, in index order (one entry for a single manifest).
    pub platforms: Vec<PlatformManifest>,
    /// Bytes of the root, every manifest listed and every config and layer they name.
    pub total_size: u64,
    /// The root exactly as served.
    #[serde(skip)]
    pub raw: Bytes,
}

/// One platform's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformManifest {
    /// `os/arch[/variant]`, or `unknown` when the index does not say.
    pub platform: String,
    /// Digest of the manifest.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its `artifactType`, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Its annotations (the index entry's and the manifest's own, the manifest's winning).
    pub annotations: BTreeMap<String, String>,
    /// The config descriptor (absent when the manifest is not available from the cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Blob>,
    /// The layers, in order (absent when the manifest is not available from the cache).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<Blob>>,
    /// Bytes of the manifest, its config and its layers (the manifest alone when its content
    /// is unknown).
    pub total_size: u64,
}

/// A config or layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Blob {
    /// `org.opencontainers.image.title`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

impl Blob {
    fn of(desc: &Descriptor) -> Self {
        Blob {
            title: desc.title().map(crate::display::escape_remote),
            media_type: desc.media_type.clone(),
            digest: desc.digest.to_string(),
            size: desc.size,
        }
    }
}

/// Where manifests are read from.
enum Reader<'a> {
    Registry(&'a Remote),
    Layout(&'a LayoutSource),
    Cache(&'a Cache),
}

impl Reader<'_> {
    /// A manifest's bytes, verified; `None` when only the cache is read and it lacks it.
    async fn manifest(&self, desc: &Descriptor) -> Result<Option<Bytes>> {
        match self {
            Reader::Registry(source) => source.fetch_manifest(desc).await.map(Some),
            Reader::Layout(source) => source.fetch_manifest(desc).await.map(Some),
            Reader::Cache(cache) => cached(cache, &desc.digest),
        }
    }
}

/// A cached manifest (the cache checks it against its digest); `None` when it is not cached.
fn cached(cache: &Cache, digest: &Digest) -> Result<Option<Bytes>> {
    match cache.read_blob(digest) {
        Ok(bytes) => Ok(Some(Bytes::from(bytes))),
        Err(Error::MissingBlob { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

impl Porter {
    /// Describes an artifact without downloading its layers.
    pub async fn inspect(&self, request: &InspectRequest) -> Result<Inspection> {
        let reference = self.resolve(&request.reference, request.insecure)?;
        let mut out = match &reference {
            ArtifactRef::Layout(l) => {
                let source = LayoutSource::new(l);
                let (root, bytes) = source.fetch_root().await?;
                let mut out =
                    describe(&Reader::Layout(&source), root, bytes, request.root_only).await?;
                out.source = "layout".into();
                out
            }
            ArtifactRef::Registry(r) => match self.inspect_cached(request, &reference).await? {
                Some(out) => out,
                None => {
                    let source = Remote::new(self.settings(), r, request.insecure);
                    let (root, bytes) = source.fetch_root().await?;
                    let mut out =
                        describe(&Reader::Registry(&source), root, bytes, request.root_only)
                            .await?;
                    match source.served() {
                        Served::Mirror(host) => {
                            out.source = "mirror".into();
                            out.mirror = Some(host);
                        }
                        _ => out.source = "registry".into(),
                    }
                    out
                }
            },
        };
        out.reference.clone_from(&request.reference);
        out.resolved = reference.to_string();
        Ok(out)
    }

    /// The inspection from the cache alone: offline (or an error naming what is not cached), or
    /// for a digest reference whose manifests are all cached; `None` when the registry must be
    /// asked.
    async fn inspect_cached(
        &self,
        request: &InspectRequest,
        reference: &ArtifactRef,
    ) -> Result<Option<Inspection>> {
        let offline = request.offline || self.settings().offline;
        let cache = self.cache();
        let root = match reference.digest() {
            Some(digest) => digest.clone(),
            None if offline => {
                cache
                    .resolve_name(&reference.cache_name())?
                    .ok_or_else(|| Error::NotCached {
                        reference: request.reference.clone(),
                        what: "the tag".into(),
                    })?
                    .digest
            }
            None => return Ok(None),
        };
        let Some(bytes) = cached(cache, &root)? else {
            if offline {
                return Err(Error::NotCached {
                    reference: request.reference.clone(),
                    what: format!("manifest {root}"),
                });
            }
            return Ok(None);
        };
        let desc = crate::registry::root_descriptor(&bytes, root, None)?;
        let mut out = describe(&Reader::Cache(cache), desc, bytes, request.root_only).await?;
        if !offline && out.platforms.iter().any(|p| p.layers.is_none()) {
            return Ok(None);
        }
        out.source = "cache".into();
        Ok(Some(out))
    }
}

/// Reads the manifests under `root` and describes them (with `root_only`, only the root).
async fn describe(
    reader: &Reader<'_>,
    root: Descriptor,
    bytes: Bytes,
    root_only: bool,
) -> Result<Inspection> {
    let node = manifest::parse(&bytes, &root.media_type, &root.digest)?;
    let (artifact_type, annotations) = match &node {
        Node::Index(i) => (i.artifact_type.clone(), i.annotations.clone()),
        Node::Manifest(m) => (m.artifact_type.clone(), m.annotations.clone()),
    };
    let mut platforms = Vec::new();
    let mut total_size = root.size;
    match node {
        _ if root_only => {}
        Node::Manifest(m) => {
            let platform = m
                .platform
                .as_ref()
                .and_then(|p| p.to_platform())
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string());
            let entry = platform_manifest(platform, &root, Some(&m));
            total_size += entry.total_size - root.size;
            platforms.push(entry);
        }
        Node::Index(index) => {
            let leaves = leaves(reader, &index, &root.digest).await?;
            // Boxed, so the future stays `Send` for every caller (a stream of closures over
            // borrowed leaves is not, to the compiler).
            let tasks: Vec<BoxFuture<'_, Result<Option<Bytes>>>> = leaves
                .iter()
                .map(|leaf| reader.manifest(&leaf.descriptor).boxed())
                .collect();
            let fetched: Vec<Option<Bytes>> = stream::iter(tasks)
                .buffered(CONCURRENCY)
                .try_collect()
                .await?;
            for (leaf, bytes) in leaves.iter().zip(fetched) {
                let desc = &leaf.descriptor;
                let manifest = match bytes {
                    Some(bytes) => {
                        let media_type = manifest::detect_media_type(
                            &bytes,
                            Some(&desc.media_type),
                            &desc.digest,
                        )?;
                        match manifest::parse(&bytes, &media_type, &desc.digest)? {
                            Node::Manifest(m) => Some(m),
                            Node::Index(_) => {
                                return Err(Error::InvalidManifest {
                                    digest: desc.digest.to_string(),
                                    reason: "listed as a manifest but is an index".into(),
                                });
                            }
                        }
                    }
                    None => None,
                };
                let platform = leaf
                    .platform
                    .as_ref()
                    .map_or_else(|| "unknown".to_owned(), ToString::to_string);
                let entry = platform_manifest(platform, desc, manifest.as_ref());
                total_size += entry.total_size;
                platforms.push(entry);
            }
        }
    }
    Ok(Inspection {
        reference: String::new(),
        resolved: String::new(),
        digest: root.digest.to_string(),
        media_type: root.media_type.clone(),
        size: root.size,
        artifact_type,
        annotations,
        source: String::new(),
        mirror: None,
        platforms,
        total_size,
        raw: bytes,
    })
}

fn platform_manifest(
    platform: String,
    desc: &Descriptor,
    manifest: Option<&manifest::Manifest>,
) -> PlatformManifest {
    let mut annotations = desc.annotations.clone();
    let mut total_size = desc.size;
    let (config, layers, artifact_type) = match manifest {
        Some(m) => {
            annotations.extend(m.annotations.clone());
            total_size += m.config.size + m.layers.iter().map(|l| l.size).sum::<u64>();
            (
                Some(Blob::of(&m.config)),
                Some(m.layers.iter().map(Blob::of).collect()),
                m.artifact_type
                    .clone()
                    .or_else(|| desc.artifact_type.clone()),
            )
        }
        None => (None, None, desc.artifact_type.clone()),
    };
    PlatformManifest {
        platform,
        digest: desc.digest.to_string(),
        media_type: desc.media_type.clone(),
        size: desc.size,
        artifact_type,
        annotations,
        config,
        layers,
        total_size,
    }
}

/// The leaf manifests of an index graph, nested indexes read (bounded in depth and count).
async fn leaves(
    reader: &Reader<'_>,
    index: &manifest::Index,
    root: &Digest,
) -> Result<Vec<Selected>> {
    let mut out = Vec::new();
    let mut pending = vec![(index.clone(), None, vec![root.clone()])];
    let mut listed = 0;
    while let Some((index, inherited, ancestors)) = pending.pop() {
        let (leaves, nested) = manifest::children(&index, inherited.as_ref());
        listed += leaves.len() + nested.len();
        if listed > MAX_LISTED {
            return Err(Error::InvalidManifest {
                digest: root.to_string(),
                reason: format!("lists more than {MAX_LISTED} manifests"),
            });
        }
        out.extend(leaves);
        for child in nested.into_iter().rev() {
            let digest = &child.descriptor.digest;
            if ancestors.contains(digest) {
                return Err(Error::InvalidManifest {
                    digest: digest.to_string(),
                    reason: "index refers to itself (cycle)".into(),
                });
            }
            if ancestors.len() >= MAX_DEPTH {
                return Err(Error::InvalidManifest {
                    digest: digest.to_string(),
                    reason: format!("indexes nested deeper than {MAX_DEPTH} levels"),
                });
            }
            let Some(bytes) = reader.manifest(&child.descriptor).await? else {
                continue;
            };
            let media_type =
                manifest::detect_media_type(&bytes, Some(&child.descriptor.media_type), digest)?;
            let Node::Index(nested) = manifest::parse(&bytes, &media_type, digest)? else {
                return Err(Error::InvalidManifest {
                    digest: digest.to_string(),
                    reason: "listed as an index but is a manifest".into(),
                });
            };
            let mut path = ancestors.clone();
            path.push(digest.clone());
            pending.push((nested, child.platform.clone(), path));
        }
    }
    Ok(out)
}
