//! Cache hygiene: access times, pruning by TTL and size, and the lock that keeps pruning away
//! from blobs a pull is still writing.
//!
//! Every pull holds a shared lock on `.gc.lock` from before its first blob until it has
//! recorded (and exported) the artifact; pruning takes it exclusively. So a prune never sees a
//! blob that a running pull has written but not yet recorded, and a pull waits at most for one
//! prune. Automatic pruning after a pull only tries the lock and skips when another process is
//! pulling.
//!
//! An artifact's last use is the modification time of `<id>/.accessed`, touched on every pull
//! that serves it (the `metadata.json` time for entries that have none). Pruning removes
//! artifacts unused for longer than `Cache.TTL`, then the least recently used ones until the
//! blobs fit in `Cache.MaxSize`, and deletes only the blobs no remaining artifact references.
//! It also clears what pulls abandoned in `.ingest/`, keeping partial downloads younger than a
//! day whose blob is still missing, for a later pull to resume.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;

use super::entries::Entries;
use super::{Cache, LEASE_SUFFIX, PARTIAL_SUFFIX, lease};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::leftovers;
use crate::manifest::{self, Descriptor, Node};

const GC_LOCK_FILE: &str = ".gc.lock";
const ACCESSED_FILE: &str = ".accessed";
const LOCK_POLL: Duration = Duration::from_millis(50);
const MANIFEST_TYPES: [&str; 4] = [
    manifest::OCI_INDEX,
    manifest::OCI_MANIFEST,
    manifest::DOCKER_LIST,
    manifest::DOCKER_MANIFEST,
];

/// Held by a pull; see the module documentation.
#[derive(Debug)]
pub(crate) struct PullGuard {
    _file: File,
}

/// Limits a prune enforces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunePolicy {
    /// Remove artifacts not used for this long.
    pub ttl: Option<Duration>,
    /// Remove least recently used artifacts until the blobs take at most this many bytes.
    pub max_size: Option<u64>,
    /// Never remove this artifact (the one a pull just served).
    pub keep: Option<String>,
    /// Remove these artifacts (by id) whatever their age and the cache's size.
    pub remove: Vec<String>,
}

/// What a prune removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    /// Ids of the removed artifacts, oldest first.
    pub removed: Vec<String>,
    /// Number of blobs deleted.
    pub removed_blobs: usize,
    /// Bytes of the deleted blobs.
    pub freed_bytes: u64,
    /// Bytes the remaining blobs take.
    pub remaining_bytes: u64,
}

/// One cached artifact as pruning sees it.
#[derive(Debug)]
struct Entry {
    id: String,
    root: Option<Digest>,
    used: SystemTime,
}

impl Cache {
    /// Takes the shared side of the prune lock for the duration of a pull.
    pub(crate) fn pull_guard(&self) -> Result<PullGuard> {
        let file = self.open_gc_lock()?;
        file.lock_shared()
            .map_err(|e| Error::io("failed to lock cache", self.root().join(GC_LOCK_FILE), e))?;
        Ok(PullGuard { _file: file })
    }

    /// Records that artifact `id` was just used. Failures only cost LRU precision.
    pub(crate) fn touch(&self, id: &str) {
        let path = self.entry_dir(id).join(ACCESSED_FILE);
        let touched = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        if let Err(err) = touched {
            tracing::debug!(path = %path.display(), error = %err, "could not record the access time");
        }
    }

    /// After a pull: prunes when an artifact is past `ttl` or the blobs exceed `max_size`,
    /// unless another process holds the cache. `Ok(None)` when nothing was due or the cache was
    /// busy.
    pub(crate) fn prune_if_due(
        &self,
        ttl: Option<Duration>,
        max_size: Option<u64>,
        keep: Option<&str>,
    ) -> Result<Option<PruneReport>> {
        if ttl.is_none() && max_size.is_none() {
            return Ok(None);
        }
        let file = self.open_gc_lock()?;
        if file.try_lock().is_err() {
            return Ok(None);
        }
        let now = SystemTime::now();
        let expired = ttl.is_some_and(|ttl| {
            self.entries()
                .iter()
                .any(|e| age(now, e.used) > ttl && keep != Some(e.id.as_str()))
        });
        let oversized = max_size.is_some_and(|max| self.blob_bytes() > max);
        if !expired && !oversized {
            return Ok(None);
        }
        let policy = PrunePolicy {
            ttl,
            max_size,
            keep: keep.map(str::to_owned),
            remove: Vec::new(),
        };
        self.prune_locked(&policy).map(Some)
    }

    /// Prunes by `policy`, waiting up to `wait` for running pulls to finish.
    pub(crate) fn prune(&self, policy: &PrunePolicy, wait: Duration) -> Result<PruneReport> {
        let file = self.open_gc_lock()?;
        let deadline = Instant::now() + wait;
        let polls = wait.as_millis() / LOCK_POLL.as_millis() + 1;
        let mut locked = false;
        for _ in 0..polls {
            if file.try_lock().is_ok() {
                locked = true;
                break;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(LOCK_POLL);
        }
        if !locked {
            return Err(Error::InvalidInput(format!(
                "the cache at {} is busy: other ds-porter processes kept pulling for {}s",
                self.root().display(),
                wait.as_secs()
            )));
        }
        self.prune_locked(policy)
    }

    /// Prunes with the exclusive prune lock held.
    fn prune_locked(&self, policy: &PrunePolicy) -> Result<PruneReport> {
        let now = SystemTime::now();
        self.sweep_ingest(now);
        let mut entries = self.entries();
        entries.sort_by_key(|e| e.used);
        let roots = self.named_roots()?;
        let (sizes, mut refs, per_entry) = self.references(&entries, &roots);

        let mut total: u64 = sizes.values().sum();
        let mut freed_blobs: BTreeSet<String> = sizes
            .keys()
            .filter(|hex| refs.get(*hex).copied().unwrap_or(0) == 0)
            .cloned()
            .collect();
        total -= freed_blobs.iter().map(|hex| sizes[hex]).sum::<u64>();

        let mut removed = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            if policy.keep.as_deref() == Some(entry.id.as_str()) {
                continue;
            }
            let expired = policy.ttl.is_some_and(|ttl| age(now, entry.used) > ttl);
            // A limit of 0 empties the cache, also of entries whose blobs are already gone.
            let oversized = policy.max_size.is_some_and(|max| max == 0 || total > max);
            let named = policy.remove.contains(&entry.id);
            if !expired && !oversized && !named {
                continue;
            }
            for hex in &per_entry[index] {
                if let Some(count) = refs.get_mut(hex) {
                    *count -= 1;
                    if *count == 0 && freed_blobs.insert(hex.clone()) {
                        total -= sizes.get(hex).copied().unwrap_or(0);
                    }
                }
            }
            removed.push(entry);
        }

        // Forget the removed artifacts first, then delete what nothing references any more.
        let removed_roots: BTreeSet<String> = removed
            .iter()
            .filter_map(|e| e.root.as_ref().map(|d| d.hex().to_owned()))
            .collect();
        if !removed_roots.is_empty() {
            self.untag_roots(&removed_roots)?;
        }
        for entry in &removed {
            let dir = self.entry_dir(&entry.id);
            fs::remove_dir_all(&dir).map_err(|e| Error::io("failed to remove", &dir, e))?;
            tracing::info!(id = %entry.id, "removed cached artifact");
        }
        let mut freed_bytes = 0;
        for hex in &freed_blobs {
            let path = self.layout.blobs_dir().join(hex);
            match fs::remove_file(&path) {
                Ok(()) => freed_bytes += sizes.get(hex).copied().unwrap_or(0),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("failed to remove", path, e)),
            }
        }
        Ok(PruneReport {
            removed: removed.iter().map(|e| e.id.clone()).collect(),
            removed_blobs: freed_blobs.len(),
            freed_bytes,
            remaining_bytes: total,
        })
    }

    /// Clears `.ingest/` while no pull runs: staging directories and temporary files were
    /// abandoned, and so were lease files nobody holds. A partial download stays for a later
    /// pull to resume unless it is older than [`leftovers::MAX_AGE`] or its blob is in `blobs/`.
    fn sweep_ingest(&self, now: SystemTime) {
        let Ok(read) = fs::read_dir(self.ingest_dir()) else {
            return;
        };
        for entry in read.filter_map(|e| e.ok()) {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let removed = if let Some(hex) = name.strip_suffix(PARTIAL_SUFFIX) {
                let wanted = !format!("sha256:{hex}")
                    .parse::<Digest>()
                    .is_ok_and(|d| self.has_blob_any_size(&d));
                let fresh = mtime(&path).is_some_and(|t| age(now, t) <= leftovers::MAX_AGE);
                if wanted && fresh {
                    continue;
                }
                fs::remove_file(&path)
            } else if name.ends_with(LEASE_SUFFIX) {
                // Taking a free lease and dropping it removes its file.
                match lease::try_take(&path) {
                    Ok(_) => continue,
                    Err(err) => {
                        tracing::warn!(path = %path.display(), error = %err, "cannot clear a lease file");
                        continue;
                    }
                }
            } else {
                match entry.file_type() {
                    Ok(t) if t.is_dir() => fs::remove_dir_all(&path),
                    _ => fs::remove_file(&path),
                }
            };
            if let Err(err) = removed {
                tracing::warn!(path = %path.display(), error = %err, "cannot remove an abandoned download");
            }
        }
    }

    fn open_gc_lock(&self) -> Result<File> {
        let path = self.root().join(GC_LOCK_FILE);
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io("failed to open cache lock", &path, e))
    }

    /// Every artifact entry directory with its root digest and last use.
    fn entries(&self) -> Vec<Entry> {
        let Ok(dirs) = self.entries.dirs() else {
            return Vec::new();
        };
        dirs.into_iter()
            .filter_map(|(id, dir)| {
                let metadata = Entries::metadata_path(&dir);
                let used = mtime(&dir.join(ACCESSED_FILE)).or_else(|| mtime(&metadata))?;
                let root = fs::read(&metadata)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
                    .and_then(|v| v.get("digest")?.as_str()?.parse::<Digest>().ok());
                Some(Entry { id, root, used })
            })
            .collect()
    }

    /// Root digests named in `index.json`.
    fn named_roots(&self) -> Result<Vec<Digest>> {
        let index = self.layout.read_index()?;
        Ok(index.descriptors().map(|d| d.digest.clone()).collect())
    }

    /// Blob sizes by hex digest, how many artifacts reference each, and each entry's blobs.
    /// Roots named in `index.json` without an entry directory count as references too.
    #[allow(clippy::type_complexity)]
    fn references(
        &self,
        entries: &[Entry],
        named: &[Digest],
    ) -> (
        BTreeMap<String, u64>,
        HashMap<String, u32>,
        Vec<BTreeSet<String>>,
    ) {
        let mut sizes = BTreeMap::new();
        if let Ok(read) = fs::read_dir(self.layout.blobs_dir()) {
            for entry in read.filter_map(|e| e.ok()) {
                if let Ok(meta) = entry.metadata()
                    && meta.is_file()
                {
                    sizes.insert(entry.file_name().to_string_lossy().into_owned(), meta.len());
                }
            }
        }
        let mut refs: HashMap<String, u32> = HashMap::new();
        let mut per_entry = Vec::with_capacity(entries.len());
        let entry_roots: BTreeSet<&str> = entries
            .iter()
            .filter_map(|e| e.root.as_ref().map(|d| d.hex()))
            .collect();
        for entry in entries {
            let blobs: BTreeSet<String> = entry
                .root
                .as_ref()
                .map(|root| {
                    self.reachable(root)
                        .into_iter()
                        .map(|d| d.digest.hex().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            for hex in &blobs {
                *refs.entry(hex.clone()).or_default() += 1;
            }
            per_entry.push(blobs);
        }
        for root in named.iter().filter(|d| !entry_roots.contains(d.hex())) {
            for desc in self.reachable(root) {
                *refs.entry(desc.digest.hex().to_owned()).or_default() += 1;
            }
        }
        (sizes, refs, per_entry)
    }

    /// The descriptors of every blob reachable from `root` through manifests present in the
    /// cache (the root first), present or not. Children of an index that are not cached
    /// (platforms never pulled) are not followed.
    pub(crate) fn reachable(&self, root: &Digest) -> Vec<Descriptor> {
        let mut out: Vec<Descriptor> = Vec::new();
        let mut stack = vec![descriptor(root.clone(), 0, String::new())];
        let mut depth_guard = 0;
        while let Some(desc) = stack.pop() {
            depth_guard += 1;
            if depth_guard > 100_000 || out.iter().any(|d| d.digest == desc.digest) {
                continue;
            }
            let is_manifest =
                desc.media_type.is_empty() || MANIFEST_TYPES.contains(&desc.media_type.as_str());
            let node = if is_manifest {
                self.read_blob(&desc.digest).ok().and_then(|bytes| {
                    let declared =
                        (!desc.media_type.is_empty()).then_some(desc.media_type.as_str());
                    let media_type =
                        manifest::detect_media_type(&bytes, declared, &desc.digest).ok()?;
                    manifest::parse(&bytes, &media_type, &desc.digest).ok()
                })
            } else {
                None
            };
            out.push(desc);
            match node {
                Some(Node::Index(index)) => {
                    stack.extend(
                        index
                            .manifests
                            .into_iter()
                            .filter(|m| self.blob_path(&m.digest).is_file()),
                    );
                }
                Some(Node::Manifest(m)) => {
                    stack.push(m.config);
                    stack.extend(m.layers);
                }
                None => {}
            }
        }
        out
    }

    /// Total bytes in `blobs/sha256`.
    fn blob_bytes(&self) -> u64 {
        fs::read_dir(self.layout.blobs_dir())
            .map(|read| {
                read.filter_map(|e| e.ok())
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }

    /// Drops every `index.json` name whose root is in `roots` (hex digests).
    fn untag_roots(&self, roots: &BTreeSet<String>) -> Result<()> {
        self.layout.update_index(|index| {
            index.remove(|entry| {
                let untag = entry
                    .descriptor()
                    .is_some_and(|d| roots.contains(d.digest.hex()));
                if untag {
                    tracing::debug!(name = entry.name().unwrap_or_default(), "untagged");
                }
                untag
            })
        })?;
        Ok(())
    }
}

fn descriptor(digest: Digest, size: u64, media_type: String) -> Descriptor {
    Descriptor {
        media_type,
        digest,
        size,
        artifact_type: None,
        platform: None,
        annotations: Default::default(),
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn age(now: SystemTime, then: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::artifact::{ArtifactResult, ZERO_TIME};
    use crate::leftovers::tests::file_entry;

    /// Caches a one-layer artifact whose layers are `layers`; returns its id.
    fn cache_artifact(cache: &Cache, name: &str, layers: &[&[u8]]) -> String {
        let mut descs = Vec::new();
        for data in layers {
            let digest = Digest::of(data);
            cache.put_blob(&digest, data).unwrap();
            descs.push(json!({"mediaType": "application/octet-stream", "digest": digest.to_string(), "size": data.len()}));
        }
        let config = b"{}";
        cache.put_blob(&Digest::of(config), config).unwrap();
        let manifest = json!({"schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_EMPTY, "digest": Digest::of(config).to_string(), "size": 2},
            "layers": descs, "annotations": {"n": name}})
        .to_string();
        let digest = Digest::of(manifest.as_bytes());
        cache.put_blob(&digest, manifest.as_bytes()).unwrap();
        let root = descriptor(
            digest.clone(),
            manifest.len() as u64,
            manifest::OCI_MANIFEST.into(),
        );
        let result = ArtifactResult {
            id: digest.short_id().into(),
            reference: name.into(),
            digest: digest.to_string(),
            size: manifest.len() as i64,
            local_path: String::new(),
            metadata: Default::default(),
            plugin_info: None,
            cached: true,
            cached_at: ZERO_TIME.into(),
            exported_files: vec![],
            offline: false,
            ..ArtifactResult::default()
        };
        cache.record(name, &root, &result).unwrap();
        result.id
    }

    fn set_used(cache: &Cache, id: &str, ago: Duration) {
        cache.touch(id);
        let file = File::options()
            .write(true)
            .open(cache.entry_dir(id).join(ACCESSED_FILE))
            .unwrap();
        file.set_modified(SystemTime::now() - ago).unwrap();
    }

    #[test]
    fn lru_removes_old_artifacts_and_only_unreferenced_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let shared: &[u8] = &[7u8; 1000];
        let old = cache_artifact(&cache, "r/old:1", &[shared, &[1u8; 3000]]);
        let new = cache_artifact(&cache, "r/new:1", &[shared, &[2u8; 500]]);
        set_used(&cache, &old, Duration::from_secs(3600));
        set_used(&cache, &new, Duration::from_secs(60));
        let orphan = Digest::of(b"orphan");
        cache.put_blob(&orphan, b"orphan").unwrap();

        let report = cache
            .prune(
                &PrunePolicy {
                    max_size: Some(3000),
                    ..PrunePolicy::default()
                },
                Duration::from_secs(1),
            )
            .unwrap();
        assert_eq!(report.removed, std::slice::from_ref(&old));
        assert!(!cache.entry_dir(&old).exists());
        assert!(cache.resolve_name("r/old:1").unwrap().is_none());
        assert!(cache.resolve_name("r/new:1").unwrap().is_some());
        assert!(
            cache.blob_path(&Digest::of(shared)).exists(),
            "still referenced"
        );
        assert!(!cache.blob_path(&Digest::of(&[1u8; 3000])).exists());
        assert!(!cache.blob_path(&orphan).exists());
        assert!(report.remaining_bytes <= 3000, "{report:?}");
        assert_eq!(cache.list().unwrap().len(), 1);
    }

    #[test]
    fn ttl_expires_unused_artifacts_and_keep_is_respected() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let a = cache_artifact(&cache, "r/a:1", &[b"a"]);
        let b = cache_artifact(&cache, "r/b:1", &[b"b"]);
        set_used(&cache, &a, Duration::from_secs(10 * 86400));
        set_used(&cache, &b, Duration::from_secs(10 * 86400));
        let ttl = Some(Duration::from_secs(86400));
        assert_eq!(cache.prune_if_due(None, None, None).unwrap(), None);
        let report = cache.prune_if_due(ttl, None, Some(&b)).unwrap().unwrap();
        assert_eq!(report.removed, [a]);
        assert_eq!(cache.prune_if_due(ttl, None, Some(&b)).unwrap(), None);
        assert!(cache.blob_path(&Digest::of(b"b")).exists());
    }

    #[test]
    fn prune_keeps_young_partial_downloads_of_missing_blobs_and_clears_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let ingest = cache.ingest_dir();
        let file = |name: String, age: Duration| file_entry(&ingest, &name, age);
        let hex = |bytes: &[u8]| Digest::of(bytes).hex().to_owned();
        let young = format!("{}{PARTIAL_SUFFIX}", hex(b"young"));
        file(young.clone(), Duration::from_secs(3600));
        file(
            format!("{}{PARTIAL_SUFFIX}", hex(b"old")),
            Duration::from_secs(2 * 86400),
        );
        cache.put_blob(&Digest::of(b"done"), b"done").unwrap();
        file(format!("{}{PARTIAL_SUFFIX}", hex(b"done")), Duration::ZERO);
        file(
            format!("{}{LEASE_SUFFIX}", hex(b"left by a killed pull")),
            Duration::ZERO,
        );
        let held = format!("{}{LEASE_SUFFIX}", hex(b"held"));
        let _lease = lease::try_take(&ingest.join(&held)).unwrap().unwrap();
        file("pull-1-2-3-x".into(), Duration::ZERO);
        fs::create_dir(ingest.join("pull-4-5-6-y")).unwrap();

        cache
            .prune(&PrunePolicy::default(), Duration::from_secs(1))
            .unwrap();
        let mut expected = vec![held, young];
        expected.sort();
        assert_eq!(crate::cache::tests::sorted_names(&ingest), expected);
    }

    #[test]
    fn a_running_pull_blocks_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let loose = Digest::of(b"being pulled");
        cache.put_blob(&loose, b"being pulled").unwrap();
        let guard = cache.pull_guard().unwrap();
        // Another handle, as another process would have.
        let other = Cache::open(dir.path()).unwrap();
        assert_eq!(other.prune_if_due(None, Some(0), None).unwrap(), None);
        let err = other
            .prune(&PrunePolicy::default(), Duration::from_millis(100))
            .unwrap_err();
        assert!(err.to_string().contains("busy"), "{err}");
        assert!(cache.blob_path(&loose).exists());
        drop(guard);
        let report = other
            .prune(&PrunePolicy::default(), Duration::from_secs(1))
            .unwrap();
        assert_eq!(report.removed_blobs, 1);
    }
}
