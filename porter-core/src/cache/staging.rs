//! A pull's staging area for manifests and indexes.
//!
//! The manifests a pull fetches wait in a private directory under `.ingest/` and move into
//! `blobs/` only when the pull commits, children before the indexes that list them, after every
//! layer and config they name is in `blobs/`. So a failed or cancelled pull publishes no
//! manifest, and a published manifest never names a blob that is absent. The directory is named
//! after the pull's process; a later pull removes those of processes that were killed.

use std::collections::HashSet;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use tempfile::TempDir;

use super::Cache;
use super::layout::{OciLayout, TMP_PREFIX, write_atomic};
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::leftovers;

/// Prefix of a pull's staging directory in `.ingest/`; `leftovers` adds the owning process.
pub(crate) const STAGING_PREFIX: &str = "pull-";

/// One pull's staged manifests. Clones share the area; it is removed when the last clone is
/// dropped, committed or not.
#[derive(Debug, Clone)]
pub(crate) struct Staging {
    cache: Cache,
    area: Arc<Area>,
}

#[derive(Debug)]
struct Area {
    dir: TempDir,
    /// Manifests staged so far, in the order they were stored.
    staged: Mutex<Vec<Digest>>,
}

impl Area {
    fn staged(&self) -> MutexGuard<'_, Vec<Digest>> {
        // A panic while pushing cannot leave the list inconsistent.
        self.staged.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.path().join(digest.hex())
    }
}

impl Staging {
    /// Starts staging a pull in `cache`, first removing what killed pulls left.
    pub(crate) fn new(cache: &Cache) -> Result<Self> {
        let ingest = cache.ingest_dir();
        leftovers::sweep(&ingest, STAGING_PREFIX);
        leftovers::sweep(&ingest, TMP_PREFIX);
        let dir = tempfile::Builder::new()
            .prefix(&leftovers::prefix(STAGING_PREFIX))
            .tempdir_in(&ingest)
            .map_err(|e| Error::io("failed to create staging directory in", &ingest, e))?;
        Ok(Staging {
            cache: cache.clone(),
            area: Arc::new(Area {
                dir,
                staged: Mutex::default(),
            }),
        })
    }

    fn layout(&self) -> &OciLayout {
        self.cache.layout()
    }

    /// Where a manifest can be read: staged by this pull, or else published.
    fn readable_path(&self, digest: &Digest) -> PathBuf {
        let staged = self.area.path(digest);
        if staged.is_file() {
            staged
        } else {
            self.layout().blob_path(digest)
        }
    }

    /// Whether the manifest is staged or published with the expected size.
    pub(crate) fn has_manifest(&self, digest: &Digest, size: u64) -> bool {
        fs::metadata(self.readable_path(digest)).is_ok_and(|m| m.is_file() && m.len() == size)
    }

    /// Reads a staged or published manifest, verifying its digest.
    pub(crate) fn read_manifest(&self, digest: &Digest) -> Result<Vec<u8>> {
        OciLayout::read_small(&self.readable_path(digest), digest)
    }

    /// Stages a manifest after checking its digest (nothing when it is published already).
    pub(crate) fn put_manifest(&self, digest: &Digest, bytes: &[u8]) -> Result<()> {
        digest::verify(bytes, digest, "manifest")?;
        if self.has_manifest(digest, bytes.len() as u64) {
            return Ok(());
        }
        write_atomic(&self.area.path(digest), bytes)?;
        self.area.staged().push(digest.clone());
        Ok(())
    }

    /// Moves every staged manifest into `blobs/`, each index after the staged manifests it
    /// lists. Called once the pull has every blob and before the artifact is recorded.
    pub(crate) fn commit(&self) -> Result<()> {
        let staged = std::mem::take(&mut *self.area.staged());
        for digest in children_first(&staged, |d| self.children(d)) {
            let target = self.layout().blob_path(&digest);
            fs::rename(self.area.path(&digest), &target)
                .map_err(|e| Error::io("failed to move blob into", &target, e))?;
        }
        Ok(())
    }

    /// The digests of the manifests a staged index lists; none for anything else.
    fn children(&self, digest: &Digest) -> Vec<Digest> {
        let Ok(bytes) = fs::read(self.area.path(digest)) else {
            return Vec::new();
        };
        let Ok(value) = serde_json::from_slice::<Value>(&bytes) else {
            return Vec::new();
        };
        value
            .get("manifests")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|m| m.get("digest")?.as_str()?.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[cfg(test)]
    pub(crate) fn dir_name(&self) -> String {
        let name = self.area.dir.path().file_name().unwrap_or_default();
        name.to_string_lossy().into_owned()
    }
}

/// `nodes` ordered so that every node comes after the nodes among them that `children` lists for
/// it; cycles are broken, and each node is expanded once.
fn children_first(nodes: &[Digest], children: impl Fn(&Digest) -> Vec<Digest>) -> Vec<Digest> {
    let members: HashSet<&Digest> = nodes.iter().collect();
    let mut expanded: HashSet<Digest> = HashSet::new();
    let mut placed: HashSet<Digest> = HashSet::new();
    let mut order = Vec::with_capacity(nodes.len());
    for node in nodes {
        let mut stack = vec![(node.clone(), false)];
        while let Some((digest, ready)) = stack.pop() {
            if ready {
                if placed.insert(digest.clone()) {
                    order.push(digest);
                }
                continue;
            }
            if !expanded.insert(digest.clone()) {
                continue;
            }
            stack.push((digest.clone(), true));
            for child in children(&digest) {
                if members.contains(&child) && !expanded.contains(&child) {
                    stack.push((child, false));
                }
            }
        }
    }
    order
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::INGEST_DIR;
    use super::*;
    use crate::cache::tests::sorted_names;

    fn published(cache: &Cache) -> Vec<String> {
        sorted_names(&cache.layout().blobs_dir())
    }

    fn ingest(cache: &Cache) -> Vec<String> {
        sorted_names(&cache.root().join(INGEST_DIR))
    }

    #[test]
    fn a_pull_that_does_not_commit_publishes_no_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let kept = Digest::of(b"cached before");
        cache.put_blob(&kept, b"cached before").unwrap();

        let staging = Staging::new(&cache).unwrap();
        let manifest = br#"{"schemaVersion":2}"#;
        let digest = Digest::of(manifest);
        staging.put_manifest(&digest, manifest).unwrap();
        // The pull sees what it staged and what was published; nobody else sees the staged one.
        assert!(staging.has_manifest(&digest, manifest.len() as u64));
        assert_eq!(staging.read_manifest(&digest).unwrap(), manifest);
        assert!(staging.has_manifest(&kept, 13));
        assert!(!cache.has_blob_any_size(&digest));
        assert_eq!(published(&cache), [kept.hex()]);

        drop(staging);
        assert_eq!(published(&cache), [kept.hex()]);
        assert_eq!(ingest(&cache), Vec::<String>::new());
    }

    #[test]
    fn a_commit_publishes_manifests_children_first() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let staging = Staging::new(&cache).unwrap();
        let layer = Digest::of(b"a layer");
        let leaf = format!(r#"{{"layers":[{{"digest":"{layer}"}}]}}"#);
        let leaf_digest = Digest::of(leaf.as_bytes());
        let nested = format!(r#"{{"manifests":[{{"digest":"{leaf_digest}"}}]}}"#);
        let nested_digest = Digest::of(nested.as_bytes());
        let root = format!(
            r#"{{"manifests":[{{"digest":"{leaf_digest}"}},{{"digest":"{nested_digest}"}}]}}"#
        );
        let root_digest = Digest::of(root.as_bytes());
        // Fetch order: root, its leaf, the nested index (which lists the leaf again).
        for bytes in [&root, &leaf, &nested] {
            staging
                .put_manifest(&Digest::of(bytes.as_bytes()), bytes.as_bytes())
                .unwrap();
        }
        let small = [&root_digest, &leaf_digest, &nested_digest].map(Clone::clone);
        assert_eq!(
            children_first(&small, |d| staging.children(d)),
            [
                leaf_digest.clone(),
                nested_digest.clone(),
                root_digest.clone()
            ]
        );

        staging.commit().unwrap();
        let mut expected: Vec<String> = [&leaf_digest, &nested_digest, &root_digest]
            .iter()
            .map(|d| d.hex().to_owned())
            .collect();
        expected.sort();
        assert_eq!(published(&cache), expected);
        assert_eq!(cache.read_blob(&root_digest).unwrap(), root.as_bytes());
        drop(staging);
        assert_eq!(ingest(&cache), Vec::<String>::new());
    }

    #[test]
    fn children_first_terminates_on_cycles() {
        let a = Digest::of(b"a");
        let b = Digest::of(b"b");
        let nodes = [a.clone(), b.clone()];
        let order = children_first(&nodes, |d| {
            if *d == a {
                vec![b.clone()]
            } else {
                vec![a.clone()]
            }
        });
        assert_eq!(order, [b, a]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn staging_left_by_a_killed_pull_is_removed_by_the_next_pull() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let running = Staging::new(&cache).unwrap();
        let ours = running.dir_name();
        // The same name with a pid no kernel hands out: a pull that no longer runs.
        let (_, rest) = ours
            .strip_prefix(STAGING_PREFIX)
            .unwrap()
            .split_once('-')
            .unwrap();
        let dead = dir
            .path()
            .join(INGEST_DIR)
            .join(format!("{STAGING_PREFIX}{}-{rest}", u32::MAX));
        fs::create_dir(&dead).unwrap();
        fs::write(dead.join("partial"), b"half a manifest").unwrap();

        let next = Staging::new(&cache).unwrap();
        let mut expected = vec![ours, next.dir_name()];
        expected.sort();
        assert_eq!(ingest(&cache), expected, "the running pull's staging stays");
    }
}
