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
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor, Manifest, Node, PlatformRequest, Selected};
use crate::progress::Progress;
use crate::registry::Source;

/// How deep indexes may nest before the graph is considered hostile.
const MAX_INDEX_DEPTH: usize = 4;
/// Most manifests (leaves and nested indexes together) one pull may fetch while it walks the
/// index graph, and most platform entries it may select; an index asking for more is refused
/// before any of its children is fetched.
const MAX_SELECTED: usize = 1024;

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
        tokio::task::spawn_blocking(move || Staging::new(&cache))
            .await
            .map_err(|e| Error::InvalidInput(format!("cache staging failed: {e}")))??
    };
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
            (desc, bytes)
        }
    };
    let node = manifest::parse(&root_bytes, &root.media_type, &root.digest)?;

    let mut manifests = Vec::new();
    match &node {
        Node::Manifest(m) => {
            let selected = Selected {
                descriptor: root.clone(),
                platform: None,
            };
            manifests.push((selected, m.clone()));
        }
        Node::Index(index) => {
            let mut walk = Walk {
                ancestors: vec![root.digest.clone()],
                fetched: 0,
            };
            collect(
                source,
                &staged,
                index,
                None,
                request,
                &mut walk,
                &mut manifests,
            )
            .await?;
        }
    }

    let mut seen = HashSet::new();
    let blobs: Vec<(Descriptor, Option<String>)> = manifests
        .iter()
        .flat_map(|(_, m)| {
            std::iter::once((m.config.clone(), None)).chain(
                m.layers
                    .iter()
                    .map(|l| (l.clone(), l.title().map(str::to_owned))),
            )
        })
        .filter(|(d, _)| seen.insert(d.digest.clone()))
        .collect();

    stream::iter(blobs)
        .map(|(desc, title)| fetch_blob(source, cache, desc, title, progress))
        .buffer_unordered(concurrency.max(1))
        .try_collect::<Vec<()>>()
        .await?;
    Ok(Pulled {
        root,
        node,
        manifests,
        staged,
    })
}

async fn fetch_blob<S: Source>(
    source: &S,
    cache: &Cache,
    desc: Descriptor,
    title: Option<String>,
    progress: &dyn Progress,
) -> Result<()> {
    if cache.has_blob(&desc.digest, desc.size) {
        progress.blob_done(&desc.digest, true);
        return Ok(());
    }
    progress.blob_started(&desc.digest, desc.size, title.as_deref());
    source.fetch_blob(&desc, cache, progress).await?;
    progress.blob_done(&desc.digest, false);
    Ok(())
}

/// Where a walk of the index graph is: the indexes above the current one, and how many
/// manifests it has fetched so far.
struct Walk {
    ancestors: Vec<Digest>,
    fetched: usize,
}

/// Walks an index depth-first, keeping wanted leaves in index order.
async fn collect<S: Source>(
    source: &S,
    staged: &Staging,
    index: &manifest::Index,
    inherited: Option<&crate::platform::Platform>,
    request: &PlatformRequest,
    walk: &mut Walk,
    out: &mut Vec<(Selected, Manifest)>,
) -> Result<()> {
    let (leaves, nested) = manifest::select_children(index, inherited, request);
    let wanted = leaves
        .iter()
        .chain(&nested)
        .map(|s| &s.descriptor.digest)
        .collect::<HashSet<_>>()
        .len();
    // Refusals name the index being walked.
    let index = walk
        .ancestors
        .last()
        .map(ToString::to_string)
        .unwrap_or_default();
    let refused = |reason: String| Error::InvalidManifest {
        digest: index.clone(),
        reason,
    };
    if walk.fetched + wanted > MAX_SELECTED {
        return Err(refused(format!(
            "lists {wanted} manifests to fetch; more than {MAX_SELECTED} in one pull are refused"
        )));
    }
    walk.fetched += wanted;
    let selected = out.len() + leaves.len();
    if selected > MAX_SELECTED {
        return Err(refused(format!(
            "selects {selected} platform manifests; more than {MAX_SELECTED} in one pull are refused"
        )));
    }
    for leaf in leaves {
        // Several platforms may share one manifest (a script, one file pushed for each
        // platform): it is fetched once, and every platform keeps its entry so each is exported.
        // The same manifest listed twice for one platform is one entry.
        let fetched = out
            .iter()
            .find(|(s, _)| s.descriptor.digest == leaf.descriptor.digest)
            .map(|(_, m)| m.clone());
        if let Some(manifest) = fetched {
            let listed = out.iter().any(|(s, _)| {
                s.descriptor.digest == leaf.descriptor.digest && s.platform == leaf.platform
            });
            if !listed {
                out.push((leaf, manifest));
            }
            continue;
        }
        let bytes = manifest_bytes(source, staged, &leaf.descriptor).await?;
        let media_type = manifest::detect_media_type(
            &bytes,
            Some(&leaf.descriptor.media_type),
            &leaf.descriptor.digest,
        )?;
        match manifest::parse(&bytes, &media_type, &leaf.descriptor.digest)? {
            Node::Manifest(m) => out.push((leaf, m)),
            Node::Index(_) => {
                return Err(Error::InvalidManifest {
                    digest: leaf.descriptor.digest.to_string(),
                    reason: "listed as a manifest but is an index".into(),
                });
            }
        }
    }
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
        let bytes = manifest_bytes(source, staged, &child.descriptor).await?;
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
            request,
            walk,
            out,
        ))
        .await?;
        walk.ancestors.pop();
    }
    Ok(())
}

async fn manifest_bytes<S: Source>(
    source: &S,
    staged: &Staging,
    desc: &Descriptor,
) -> Result<Bytes> {
    if staged.has_manifest(&desc.digest, desc.size)
        && let Ok(bytes) = staged.read_manifest(&desc.digest)
    {
        return Ok(Bytes::from(bytes));
    }
    let bytes = source.fetch_manifest(desc).await?;
    staged.put_manifest(&desc.digest, &bytes)?;
    Ok(bytes)
}
