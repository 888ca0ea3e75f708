//! Pulling: resolve the reference, walk the manifest graph, and download only the blobs the
//! requested platforms need into the cache, several at once.
//!
//! A digest reference that is cached costs no request; a tag costs one manifest request, and
//! nothing more when the blobs are already cached. Layers and configs enter the cache as soon as
//! they are verified; manifests are staged (see [`Staging`]) and the caller publishes them with
//! [`Staging::commit`] once the pull succeeded, so a failed pull publishes no manifest.

use std::collections::HashSet;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::cache::{Cache, Staging};
use crate::digest::Digest;
use crate::display::escape_remote;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, Manifest, Node, PlatformRequest, Selected};
use crate::progress::Progress;
use crate::registry::Source;

/// How deep indexes may nest before the graph is considered hostile.
const MAX_INDEX_DEPTH: usize = 4;
/// Most manifests (leaves and nested indexes together) the index graph of one pull may list;
/// an index that takes the count above it is refused before any of its children is fetched.
const MAX_LISTED: usize = 1024;

/// What a pull brought into the cache.
#[derive(Debug)]
pub(crate) struct Pulled {
    pub root: Descriptor,
    pub node: Node,
    /// Selected leaf manifests in index order, one per selected platform (platforms sharing a
    /// manifest each have an entry; it was fetched once).
    pub manifests: Vec<(Selected, Manifest)>,
    /// The manifests the pull fetched, to commit before the artifact is recorded.
    pub staged: Staging,
    /// Bytes this pull fetched from its source (manifests and blobs not already cached).
    pub downloaded: u64,
    /// Bytes of the root, the selected manifests and their configs and layers.
    pub total_size: u64,
    /// Blobs this pull downloaded and verified itself (not found cached, not finished by
    /// another pull meanwhile): an export right after need not hash them again.
    pub verified: HashSet<Digest>,
}

/// What fetching one blob did.
struct BlobFetch {
    /// Bytes counted as fetched (0 for a cache hit).
    bytes: u64,
    /// The blob's digest when this pull downloaded and verified it.
    verified: Option<Digest>,
}

/// Pulls `request`'s platforms from `source` into a staging area of `cache`.
pub(crate) async fn pull<S: Source>(
    source: &S,
    pinned: Option<&Digest>,
    cache: &Cache,
    request: &PlatformRequest,
    progress: &dyn Progress,
    concurrency: usize,
) -> Result<Pulled> {
    let staged = {
        let cache = cache.clone();
        crate::error::blocking("staging the pull", move || Staging::new(&cache)).await?
    };
    let mut downloaded = 0;
    let (root, root_bytes) = match pinned.and_then(|d| staged.read_manifest(d).ok().map(|b| (d, b)))
    {
        Some((digest, bytes)) => {
            let media_type = manifest::detect_media_type(&bytes, None, digest)?;
            let desc = Descriptor {
                media_type,
                digest: digest.clone(),
                size: bytes.len() as u64,
                artifact_type: None,
                platform: None,
                annotations: Default::default(),
            };
            (desc, Bytes::from(bytes))
        }
        None => {
            let (desc, bytes) = source.fetch_root().await?;
            staged.put_manifest(&desc.digest, &bytes)?;
            downloaded += bytes.len() as u64;
            (desc, bytes)
        }
    };
    let node = manifest::parse(&root_bytes, &root.media_type, &root.digest)?;

    let mut manifests = Vec::new();
    match &node {
        Node::Manifest(m) => {
            if let PlatformRequest::Only(wanted) = request {
                let (config, fetched) = declared_config(source, cache, &m.config, progress).await?;
                downloaded += fetched;
                manifest::check_single(m, config.as_deref(), wanted)?;
            }
            let selected = Selected {
                descriptor: root.clone(),
                platform: None,
            };
            manifests.push((selected, m.clone()));
        }
        Node::Index(index) => {
            let mut walk = Walk {
                ancestors: vec![root.digest.clone()],
                listed: 0,
            };
            let mut leaves = Vec::new();
            let mut counted = Fetched::default();
            collect(
                source,
                &staged,
                index,
                None,
                &mut walk,
                &mut counted,
                &mut leaves,
            )
            .await?;
            // Chosen (or refused) before any leaf manifest, config or layer is fetched.
            for leaf in manifest::select(&leaves, request)? {
                tracing::debug!(
                    "platform {} chosen: manifest {}",
                    leaf.platform
                        .as_ref()
                        .map_or_else(|| "unknown".to_owned(), ToString::to_string),
                    leaf.descriptor.digest
                );
                let fetched = manifests
                    .iter()
                    .find(|(s, _): &&(Selected, Manifest)| {
                        s.descriptor.digest == leaf.descriptor.digest
                    })
                    .map(|(_, m)| m.clone());
                // Several platforms may share one manifest (a script, one file pushed for each
                // platform): it is fetched once, and every platform keeps its entry.
                let manifest = match fetched {
                    Some(manifest) => manifest,
                    None => leaf_manifest(source, &staged, &leaf.descriptor, &mut counted).await?,
                };
                manifests.push((leaf, manifest));
            }
            downloaded += counted.0;
        }
    }

    let mut seen = HashSet::new();
    let blobs: Vec<(Descriptor, Option<String>)> = manifests
        .iter()
        .flat_map(|(_, m)| {
            std::iter::once((m.config.clone(), None)).chain(
                m.layers
                    .iter()
                    .map(|l| (l.clone(), l.title().map(escape_remote))),
            )
        })
        .filter(|(d, _)| seen.insert(d.digest.clone()))
        .collect();

    let mut listed = HashSet::new();
    let total_size = root.size
        + manifests
            .iter()
            .filter(|(s, _)| s.descriptor.digest != root.digest)
            .filter(|(s, _)| listed.insert(s.descriptor.digest.clone()))
            .map(|(s, _)| s.descriptor.size)
            .sum::<u64>()
        + blobs.iter().map(|(d, _)| d.size).sum::<u64>();
    let mut verified = HashSet::new();
    let fetched = stream::iter(blobs)
        .map(|(desc, title)| fetch_blob(source, cache, desc, title, progress))
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<BlobFetch>>()
        .await?;
    for blob in fetched {
        downloaded += blob.bytes;
        verified.extend(blob.verified);
    }
    Ok(Pulled {
        root,
        node,
        manifests,
        staged,
        downloaded,
        total_size,
        verified,
    })
}

async fn fetch_blob<S: Source>(
    source: &S,
    cache: &Cache,
    desc: Descriptor,
    title: Option<String>,
    progress: &dyn Progress,
) -> Result<BlobFetch> {
    if cache.has_blob(&desc.digest, desc.size) {
        tracing::debug!("cache hit: blob {} ({} bytes)", desc.digest, desc.size);
        progress.blob_done(&desc.digest, true);
        return Ok(BlobFetch {
            bytes: 0,
            verified: None,
        });
    }
    tracing::debug!("cache miss: blob {} ({} bytes)", desc.digest, desc.size);
    progress.blob_started(&desc.digest, desc.size, title.as_deref());
    let downloaded_here = source.fetch_blob(&desc, cache, progress).await?;
    progress.blob_done(&desc.digest, false);
    Ok(BlobFetch {
        bytes: desc.size,
        verified: downloaded_here.then_some(desc.digest),
    })
}

/// The config of a single-manifest artifact when it may declare a platform (small JSON), fetched
/// before any layer (the pull needs it anyway), and the bytes fetched for it.
async fn declared_config<S: Source>(
    source: &S,
    cache: &Cache,
    config: &Descriptor,
    progress: &dyn Progress,
) -> Result<(Option<Vec<u8>>, u64)> {
    if !manifest::config_may_declare_platform(config) {
        return Ok((None, 0));
    }
    let fetched = fetch_blob(source, cache, config.clone(), None, progress)
        .await?
        .bytes;
    Ok((Some(cache.read_blob(&config.digest)?), fetched))
}

/// Where a walk of the index graph is: the indexes above the current one, and how many
/// manifests the indexes walked so far list.
struct Walk {
    ancestors: Vec<Digest>,
    listed: usize,
}

/// Bytes of manifests a pull fetched (those it found cached cost nothing).
#[derive(Default)]
struct Fetched(u64);

/// Walks an index graph depth-first, fetching its nested indexes (and nothing else), and
/// gathers its leaf manifests in graph order.
async fn collect<S: Source>(
    source: &S,
    staged: &Staging,
    index: &manifest::Index,
    inherited: Option<&crate::platform::Platform>,
    walk: &mut Walk,
    fetched: &mut Fetched,
    out: &mut Vec<Selected>,
) -> Result<()> {
    let (leaves, nested) = manifest::children(index, inherited);
    let here = leaves.len() + nested.len();
    walk.listed += here;
    if walk.listed > MAX_LISTED {
        let total = walk.listed;
        let count = if total == here {
            format!("{here} manifests")
        } else {
            format!("{here} manifests, {total} in all")
        };
        return Err(Error::InvalidManifest {
            digest: walk
                .ancestors
                .last()
                .map(ToString::to_string)
                .unwrap_or_default(),
            reason: format!("lists {count}; more than {MAX_LISTED} in one pull are refused"),
        });
    }
    out.extend(leaves);
    for child in nested {
        if walk.ancestors.contains(&child.descriptor.digest) {
            return Err(Error::InvalidManifest {
                digest: child.descriptor.digest.to_string(),
                reason: "index refers to itself (cycle)".into(),
            });
        }
        if walk.ancestors.len() >= MAX_INDEX_DEPTH {
            return Err(Error::InvalidManifest {
                digest: child.descriptor.digest.to_string(),
                reason: format!("indexes nested deeper than {MAX_INDEX_DEPTH} levels"),
            });
        }
        let bytes = manifest_bytes(source, staged, &child.descriptor, fetched).await?;
        let media_type = manifest::detect_media_type(
            &bytes,
            Some(&child.descriptor.media_type),
            &child.descriptor.digest,
        )?;
        let Node::Index(nested_index) =
            manifest::parse(&bytes, &media_type, &child.descriptor.digest)?
        else {
            return Err(Error::InvalidManifest {
                digest: child.descriptor.digest.to_string(),
                reason: "listed as an index but is a manifest".into(),
            });
        };
        walk.ancestors.push(child.descriptor.digest.clone());
        Box::pin(collect(
            source,
            staged,
            &nested_index,
            child.platform.as_ref(),
            walk,
            fetched,
            out,
        ))
        .await?;
        walk.ancestors.pop();
    }
    Ok(())
}

/// Fetches and parses a selected leaf, which must be a manifest.
async fn leaf_manifest<S: Source>(
    source: &S,
    staged: &Staging,
    desc: &Descriptor,
    fetched: &mut Fetched,
) -> Result<Manifest> {
    let bytes = manifest_bytes(source, staged, desc, fetched).await?;
    let media_type = manifest::detect_media_type(&bytes, Some(&desc.media_type), &desc.digest)?;
    match manifest::parse(&bytes, &media_type, &desc.digest)? {
        Node::Manifest(m) => Ok(m),
        Node::Index(_) => Err(Error::InvalidManifest {
            digest: desc.digest.to_string(),
            reason: "listed as a manifest but is an index".into(),
        }),
    }
}

async fn manifest_bytes<S: Source>(
    source: &S,
    staged: &Staging,
    desc: &Descriptor,
    fetched: &mut Fetched,
) -> Result<Bytes> {
    if staged.has_manifest(&desc.digest, desc.size)
        && let Ok(bytes) = staged.read_manifest(&desc.digest)
    {
        return Ok(Bytes::from(bytes));
    }
    let bytes = source.fetch_manifest(desc).await?;
    staged.put_manifest(&desc.digest, &bytes)?;
    fetched.0 += bytes.len() as u64;
    Ok(bytes)
}
