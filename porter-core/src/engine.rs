//! [`Porter`]: the engine's front door. It ties configuration, sources, the cache and export
//! together for the operations front ends offer (pull with optional export, list).

use std::future::Future;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::artifact::{self, ArtifactResult, Finalizer};
use crate::cache::{Cache, PrunePolicy, PruneReport, VerifyReport};
use crate::config::RetryPolicy;
use crate::config::Settings;
use crate::error::{EXPORT_FAILED, Error, ErrorKind, PULL_FAILED, Result, blocking};
use crate::export::{self, ExportLayer, ExportManifest, ExportPlan};
use crate::manifest::{Node, PlatformRequest};
use crate::progress::Progress;
use crate::pull::{self, Pulled};
use crate::reference::ArtifactRef;
use crate::registry::{self, CacheOnly, LayoutSource, Remote, Served};

/// Blobs downloaded at once.
const DEFAULT_CONCURRENCY: usize = 4;
/// How long `cache prune` waits for running pulls.
const PRUNE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// A pull, validated before any I/O.
#[derive(Debug, Clone)]
pub struct PullRequest {
    /// The reference as the user typed it (reported back verbatim).
    pub original: String,
    /// The parsed reference.
    pub reference: ArtifactRef,
    /// Platforms to fetch (and export).
    pub platforms: PlatformRequest,
    /// Allow plain HTTP to this reference's registry.
    pub insecure: bool,
    /// Export destination, when exporting.
    pub output: Option<PathBuf>,
    /// Serve only from the cache, never touching the network (also `Settings::offline`).
    pub offline: bool,
    /// Cosign keys and strictness beyond the configured signature policy.
    pub signatures: SignatureRequest,
    /// Stops the pull: transfers are abandoned, an export under way stops and removes what it
    /// staged, and [`Porter::pull`] returns [`Error::Cancelled`] once that work has stopped.
    pub cancel: CancellationToken,
}

impl PullRequest {
    /// Parses the reference; platform and flag validation happened when `platforms` was built.
    pub fn new(reference: &str, platforms: PlatformRequest) -> Result<Self> {
        Ok(PullRequest {
            original: reference.trim().to_owned(),
            reference: reference.parse()?,
            platforms,
            insecure: false,
            output: None,
            offline: false,
            signatures: Default::default(),
            cancel: CancellationToken::new(),
        })
    }
}

/// What a pull asks of signature checking beyond the configured policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureRequest {
    /// Cosign public keys in addition to `settings.porter.signature.cosign_keys`.
    pub cosign_keys: Vec<PathBuf>,
    /// Fail when no policy applies to the artifact (`verify`), rather than checking nothing.
    pub required: bool,
}

/// A pull's outcome: the result JSON and the finalizers DS should run.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The `ArtifactResult` (with `exported_files` when exported).
    pub result: ArtifactResult,
    /// Finalizer requests derived from the artifact's annotations.
    pub finalizers: Vec<Finalizer>,
    /// Where the artifact's manifests and blobs came from.
    pub origin: Origin,
    /// The leaf manifests the platform request selected, in index order (the root itself when
    /// it is a single manifest).
    pub selected: Vec<crate::manifest::Selected>,
}

/// Where a pull got what it needed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The registry the reference names (perhaps partly through mirrors).
    Registry,
    /// Only the named mirror was contacted.
    Mirror(String),
    /// An OCI image layout on disk.
    Layout,
    /// Everything was cached; the network was not needed.
    Cache,
    /// Served from the cache without the network: offline mode, or the registry could not be
    /// reached (`offline: true` in the result).
    Offline,
}

/// The engine.
#[derive(Debug)]
pub struct Porter {
    settings: Settings,
    cache: Cache,
}

impl Porter {
    /// Opens the engine on `settings`, creating the cache directory.
    pub fn new(settings: Settings) -> Result<Self> {
        registry::install_crypto_provider();
        let cache =
            Cache::open(&settings.cache_dir)?.with_stall_limit(settings.retry.attempt_timeout);
        Ok(Porter { settings, cache })
    }

    /// The engine on the same cache with registry requests retried and timed out by `retry`
    /// instead (a front end's per-call limits).
    pub fn with_retry(&self, retry: RetryPolicy) -> Porter {
        Porter {
            settings: Settings {
                retry,
                ..self.settings.clone()
            },
            cache: self.cache.clone(),
        }
    }

    /// The effective settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Every cached artifact.
    pub fn list(&self) -> Result<Vec<ArtifactResult>> {
        self.cache.list()
    }

    /// Prunes the cache by `policy` (by default `Cache.TTL` and `Cache.MaxSize`), waiting up to
    /// a minute for running pulls. Blocking.
    pub fn prune(&self, policy: &PrunePolicy) -> Result<PruneReport> {
        self.cache.prune(policy, PRUNE_WAIT)
    }

    /// The prune policy the configuration asks for.
    pub fn prune_policy(&self) -> PrunePolicy {
        PrunePolicy {
            ttl: self.settings.cache_ttl,
            max_size: self.settings.cache_max_size,
            keep: None,
            remove: Vec::new(),
        }
    }

    /// Removes the cached artifacts `names` names (each an id, a digest, or a reference as
    /// pulled) and every blob no remaining artifact references, under the prune lock. A name
    /// that matches nothing fails the whole removal before anything is removed. Blocking.
    pub fn remove_cached(&self, names: &[String]) -> Result<PruneReport> {
        if names.is_empty() {
            return Err(Error::InvalidInput(
                "name at least one cached artifact to remove (an id, digest or reference)".into(),
            ));
        }
        let cached = self.cache.list()?;
        let mut ids: Vec<String> = Vec::new();
        let mut unknown = Vec::new();
        for name in names {
            let name = name.trim();
            let resolved = self
                .resolve(name, false)
                .ok()
                .map(|r| r.cache_name())
                .unwrap_or_default();
            let found: Vec<&ArtifactResult> = cached
                .iter()
                .filter(|a| {
                    a.id == name
                        || a.digest == name
                        || a.reference == name
                        || (!resolved.is_empty() && a.reference == resolved)
                })
                .collect();
            if found.is_empty() {
                unknown.push(name.to_owned());
            }
            for artifact in found {
                if !ids.contains(&artifact.id) {
                    ids.push(artifact.id.clone());
                }
            }
        }
        if !unknown.is_empty() {
            return Err(Error::NotFound {
                what: "cached artifact",
                reference: format!("{} (nothing was removed)", unknown.join(", ")),
            });
        }
        let policy = PrunePolicy {
            remove: ids,
            ..PrunePolicy::default()
        };
        self.cache.prune(&policy, PRUNE_WAIT)
    }

    /// Re-hashes every cached blob and checks cached artifacts are complete; with `repair`,
    /// deletes damaged blobs and fetches damaged or missing ones again from the references that
    /// cached them (`insecure` allows plain HTTP to their registries).
    pub async fn verify_cache(
        &self,
        repair: bool,
        insecure: bool,
        progress: &dyn Progress,
    ) -> Result<VerifyReport> {
        let cache = self.cache.clone();
        let guard = blocking("taking the cache lock", move || cache.pull_guard()).await?;
        let cache = self.cache.clone();
        let mut report = blocking("cache verification", move || cache.verify()).await?;
        if !repair || self.settings.offline {
            return Ok(report);
        }
        let users = self.cache.blob_users()?;
        let corrupt = report.corrupt.iter().map(|p| (p, true));
        let missing = report.missing.iter().map(|p| (p, false));
        let mut repaired = Vec::new();
        let mut unrepaired = Vec::new();
        for (problem, is_corrupt) in corrupt.chain(missing) {
            let digest: crate::digest::Digest = problem.digest.parse()?;
            if is_corrupt {
                self.cache.quarantine(&digest)?;
            }
            let Some((names, desc)) = users.get(digest.hex()) else {
                repaired.push(problem.digest.clone());
                continue;
            };
            let mut last_error = None;
            for name in names {
                match self.refetch(name, desc, insecure, progress).await {
                    Ok(()) => {
                        last_error = None;
                        break;
                    }
                    Err(err) => last_error = Some(err),
                }
            }
            match last_error {
                None => repaired.push(problem.digest.clone()),
                Some(err) => unrepaired.push(format!("{}: {err}", problem.digest)),
            }
        }
        drop(guard);
        report.repaired = repaired;
        report.unrepaired = unrepaired;
        Ok(report)
    }

    /// Fetches one blob or manifest of the artifact cached as `name` again.
    async fn refetch(
        &self,
        name: &str,
        desc: &crate::manifest::Descriptor,
        insecure: bool,
        progress: &dyn Progress,
    ) -> Result<()> {
        let is_manifest = [
            crate::manifest::OCI_INDEX,
            crate::manifest::OCI_MANIFEST,
            crate::manifest::DOCKER_LIST,
            crate::manifest::DOCKER_MANIFEST,
        ]
        .contains(&desc.media_type.as_str());
        async fn from<S: registry::Source>(
            source: &S,
            cache: &Cache,
            desc: &crate::manifest::Descriptor,
            is_manifest: bool,
            progress: &dyn Progress,
        ) -> Result<()> {
            if is_manifest {
                let bytes = source.fetch_manifest(desc).await?;
                cache.put_blob(&desc.digest, &bytes)
            } else {
                source.fetch_blob(desc, cache, progress).await.map(|_| ())
            }
        }
        match name.parse::<ArtifactRef>()? {
            ArtifactRef::Registry(r) => {
                let source = Remote::new(&self.settings, &r, insecure);
                from(&source, &self.cache, desc, is_manifest, progress).await
            }
            ArtifactRef::Layout(l) => {
                from(
                    &LayoutSource::new(&l),
                    &self.cache,
                    desc,
                    is_manifest,
                    progress,
                )
                .await
            }
        }
    }

    /// Pulls an artifact into the cache and, when `request.output` is set, exports it.
    ///
    /// Pull failures read `failed to copy artifact: …`, export failures
    /// `failed to export artifact: …`, as DS users know them. A cached blob that no longer
    /// matches its digest is taken out of the cache; online it is fetched again, once, and the
    /// export repeated; offline the pull fails naming it.
    pub async fn pull(
        &self,
        request: &PullRequest,
        progress: &dyn Progress,
    ) -> Result<PullOutcome> {
        let err = match self.pull_once(request, progress).await {
            Err(err) => err,
            done => return done,
        };
        if !self.take_out_damaged(&err, request.offline).await? {
            return Err(err);
        }
        tracing::warn!("{err}; fetching it again");
        self.pull_once(request, progress).await
    }

    /// The one rule for a cached blob found damaged while it was read (an export hashing what it
    /// copies, a copy hashing what it uploads): it is taken out of the cache so nothing reuses
    /// it, and `true` says the operation should run once more, which fetches it again. Offline,
    /// or for any other error, `false`: the error stands.
    pub(crate) async fn take_out_damaged(&self, err: &Error, offline: bool) -> Result<bool> {
        let damaged = match err.root() {
            Error::CorruptBlob { digest, .. } => digest.parse::<crate::digest::Digest>()?,
            _ => return Ok(false),
        };
        let cache = self.cache.clone();
        blocking("removing a damaged blob", move || {
            cache.quarantine(&damaged)
        })
        .await?;
        Ok(!(self.settings.offline || offline))
    }

    async fn pull_once(
        &self,
        request: &PullRequest,
        progress: &dyn Progress,
    ) -> Result<PullOutcome> {
        let resolved;
        let request = match self.resolve_short(request)? {
            Some(r) => {
                resolved = r;
                &resolved
            }
            None => request,
        };
        // Prune waits while pulls hold this; a pull waits only while a prune runs.
        let cache = self.cache.clone();
        let guard = unless_cancelled(&request.cancel, async {
            blocking("taking the cache lock", move || cache.pull_guard()).await
        })
        .await?;
        let fetched = unless_cancelled(&request.cancel, self.fetch(request, progress)).await;
        let (pulled, origin) = fetched.map_err(|e| match e {
            // The platform request cannot be met: DS users know this as an export failure.
            Error::Export(_) | Error::PlatformsMissing { .. } => wrap(EXPORT_FAILED, e),
            e => wrap(PULL_FAILED, e),
        })?;
        // Before anything is recorded or exported.
        let signatures = self.check_signatures(request, &pulled, &origin).await?;
        let metadata = pulled.node.annotations().clone();
        let id = pulled.root.digest.short_id().to_owned();
        let mut result = ArtifactResult {
            id: id.clone(),
            reference: request.original.clone(),
            digest: pulled.root.digest.to_string(),
            size: pulled.root.size as i64,
            local_path: self.cache.entry_dir(&id).display().to_string(),
            plugin_info: artifact::plugin_info(&metadata),
            metadata,
            cached: true,
            cached_at: artifact::now_rfc3339(),
            exported_files: Vec::new(),
            offline: false,
            downloaded_bytes: None,
            total_size: Some(pulled.total_size),
            first_cached_at: None,
            signatures: Vec::new(),
        };
        if request.cancel.is_cancelled() {
            return Err(wrap("failed to copy artifact", Error::Cancelled));
        }
        let cache = self.cache.clone();
        // The cache records the resolved name (a layout by its absolute path), so `list` tells
        // apart what was typed the same way in different places.
        let name = request.reference.cache_name();
        let mut stored = result.clone();
        stored.reference.clone_from(&name);
        let (root, staged) = (pulled.root.clone(), pulled.staged.clone());
        result.first_cached_at = blocking("recording the artifact", move || {
            staged.commit()?;
            let first = cache.record(&name, &root, &stored)?;
            cache.touch(&stored.id);
            Ok(first)
        })
        .await?;
        result.offline = origin == Origin::Offline;
        result.downloaded_bytes = Some(pulled.downloaded);
        result.signatures = signatures;

        if let Some(output) = &request.output {
            let plan = self
                .export_plan(request, &pulled, output)
                .map_err(|e| wrap(EXPORT_FAILED, e))?;
            let exported = blocking("export", move || export::export(&plan))
                .await
                .map_err(|e| wrap(EXPORT_FAILED, e))?;
            result.exported_files = exported;
            if !result.exported_files.is_empty() {
                let abs = std::path::absolute(output).unwrap_or_else(|_| output.clone());
                artifact::add_export_finalizer_args(
                    &mut result.metadata,
                    &abs.display().to_string(),
                );
            }
        }
        drop(guard);
        if !(self.settings.offline || request.offline) {
            self.prune_after_pull(&result.id).await;
        }
        let finalizers = artifact::finalizers(&result.metadata);
        Ok(PullOutcome {
            result,
            finalizers,
            origin,
            selected: pulled.manifests.iter().map(|(s, _)| s.clone()).collect(),
        })
    }

    /// The request with a short reference resolved against `Registry.Default`, when it has one.
    fn resolve_short(&self, request: &PullRequest) -> Result<Option<PullRequest>> {
        if !matches!(request.reference, ArtifactRef::Registry(_)) {
            return Ok(None);
        }
        let resolved = self.resolve(&request.original, request.insecure)?;
        if resolved == request.reference {
            return Ok(None);
        }
        tracing::debug!(reference = %request.original, resolved = %resolved, "short reference resolved against Registry.Default");
        Ok(Some(PullRequest {
            reference: resolved,
            ..request.clone()
        }))
    }

    /// `text` resolved against `Registry.Default` as pulls, pushes and listings resolve it.
    /// Allowing plain HTTP (`insecure`) applies only to a registry the text names: a short
    /// reference with it is refused rather than downgrading a host the caller never typed.
    pub(crate) fn resolve(&self, text: &str, insecure: bool) -> Result<ArtifactRef> {
        let resolved = ArtifactRef::parse_with_default(text, &self.settings.default_registry)?;
        if insecure && !crate::reference::names_registry(text) {
            return Err(Error::InvalidReference {
                reference: text.trim().to_owned(),
                reason: format!(
                    "plain HTTP was allowed for this request, but the reference names no \
                     registry (it resolves to {resolved} through Registry.Default); name the \
                     registry in the reference, or list it in Registry.InsecureRegistries"
                ),
            });
        }
        Ok(resolved)
    }

    /// Prunes by `Cache.TTL` and `Cache.MaxSize` when due; never fails the pull.
    async fn prune_after_pull(&self, keep: &str) {
        let cache = self.cache.clone();
        let (ttl, max_size) = (self.settings.cache_ttl, self.settings.cache_max_size);
        let keep = keep.to_owned();
        let pruned =
            tokio::task::spawn_blocking(move || cache.prune_if_due(ttl, max_size, Some(&keep)));
        match pruned.await {
            Ok(Ok(Some(report))) if !report.removed.is_empty() => tracing::info!(
                removed = report.removed.len(),
                freed_bytes = report.freed_bytes,
                "pruned the cache"
            ),
            Ok(Err(err)) => tracing::warn!(error = %err, "automatic cache prune failed"),
            _ => {}
        }
    }

    async fn fetch(
        &self,
        request: &PullRequest,
        progress: &dyn Progress,
    ) -> Result<(Pulled, Origin)> {
        let pinned = request.reference.digest();
        let (pulled, origin) = match &request.reference {
            ArtifactRef::Registry(_) if self.settings.offline || request.offline => {
                (self.fetch_cached(request, progress).await?, Origin::Offline)
            }
            ArtifactRef::Registry(r) => {
                let source = Remote::new(&self.settings, r, request.insecure);
                let pulled = pull::pull(
                    &source,
                    pinned,
                    &self.cache,
                    &request.platforms,
                    progress,
                    DEFAULT_CONCURRENCY,
                )
                .await;
                match pulled {
                    Ok(pulled) => {
                        let origin = match source.served() {
                            Served::Nothing => Origin::Cache,
                            Served::Mirror(host) => Origin::Mirror(host),
                            Served::Upstream => Origin::Registry,
                        };
                        self.remember_locations(r, &pulled);
                        (pulled, origin)
                    }
                    Err(err) if err.kind() == ErrorKind::Network => {
                        match self.fetch_cached(request, progress).await {
                            Ok(pulled) => {
                                tracing::warn!(
                                    reference = %request.original,
                                    "the registry cannot be reached ({err}); serving the cached copy, which may be out of date"
                                );
                                (pulled, Origin::Offline)
                            }
                            Err(_) => return Err(err),
                        }
                    }
                    Err(err) => return Err(err),
                }
            }
            ArtifactRef::Layout(l) => {
                let source = LayoutSource::new(l);
                let pulled = pull::pull(
                    &source,
                    pinned,
                    &self.cache,
                    &request.platforms,
                    progress,
                    DEFAULT_CONCURRENCY,
                )
                .await?;
                (pulled, Origin::Layout)
            }
        };
        if pulled.manifests.is_empty() && matches!(pulled.node, Node::Index(_)) {
            let explicit = !matches!(request.platforms, PlatformRequest::Host);
            if explicit || request.output.is_some() {
                return Err(Error::Export(
                    "no manifests found for requested platform(s)".into(),
                ));
            }
            tracing::warn!(
                reference = %request.original,
                platform = %crate::platform::Platform::host(),
                "the index has no manifest for this platform; cached the index only"
            );
        }
        Ok((pulled, origin))
    }

    /// Records that the repository `r` names holds what a pull from it fetched or found (a push
    /// to another repository of its registry then mounts those blobs).
    fn remember_locations(&self, r: &crate::reference::RegistryRef, pulled: &Pulled) {
        let mut digests = vec![&pulled.root.digest];
        if let Node::Manifest(m) = &pulled.node {
            digests.push(&m.config.digest);
            digests.extend(m.layers.iter().map(|l| &l.digest));
        }
        for (selected, manifest) in &pulled.manifests {
            digests.push(&selected.descriptor.digest);
            digests.push(&manifest.config.digest);
            digests.extend(manifest.layers.iter().map(|l| &l.digest));
        }
        let name = format!("{}/{}", r.registry, r.repository);
        if let Err(e) = self.cache.records().remember_locations(&name, digests) {
            tracing::debug!("blob locations not recorded: {e}");
        }
    }

    /// Pulls from the cache alone: a digest reference as pinned, a tag as `index.json` last
    /// recorded it.
    async fn fetch_cached(&self, request: &PullRequest, progress: &dyn Progress) -> Result<Pulled> {
        let source = CacheOnly::new(request.original.clone());
        let root = match request.reference.digest() {
            Some(digest) => digest.clone(),
            None => {
                self.cache
                    .resolve_name(&request.reference.cache_name())?
                    .ok_or_else(|| Error::NotCached {
                        reference: request.original.clone(),
                        what: "the tag".into(),
                    })?
                    .digest
            }
        };
        if !self.cache.has_blob_any_size(&root) {
            return Err(Error::NotCached {
                reference: request.original.clone(),
                what: format!("manifest {root}"),
            });
        }
        pull::pull(
            &source,
            Some(&root),
            &self.cache,
            &request.platforms,
            progress,
            DEFAULT_CONCURRENCY,
        )
        .await
    }

    fn export_plan(
        &self,
        request: &PullRequest,
        pulled: &Pulled,
        output: &Path,
    ) -> Result<ExportPlan> {
        let manifests: Vec<ExportManifest> = pulled
            .manifests
            .iter()
            .map(|(selected, m)| ExportManifest {
                platform: selected.platform.clone(),
                layers: m
                    .layers
                    .iter()
                    .map(|l| ExportLayer {
                        media_type: l.media_type.clone(),
                        digest: l.digest.clone(),
                        title: l.title().map(str::to_owned),
                        blob_path: self.cache.blob_path(&l.digest),
                        size: l.size,
                        verified: pulled.verified.contains(&l.digest),
                    })
                    .collect(),
            })
            .collect();
        if manifests.is_empty() {
            let msg = match (&pulled.node, &request.platforms) {
                (Node::Index(i), _) if i.manifests.is_empty() => "no manifests found in index",
                _ => "no manifests found for requested platform(s)",
            };
            return Err(Error::Export(msg.into()));
        }
        Ok(ExportPlan {
            destination: output.to_path_buf(),
            subdirs: request.platforms.wants_subdirs(),
            manifests,
            fallback_name: request.reference.base_name(),
            limits: self.settings.export_limits,
            cancel: request.cancel.clone(),
        })
    }
}

/// `work`, or [`Error::Cancelled`] as soon as `cancel` fires (dropping `work`).
async fn unless_cancelled<T>(
    cancel: &CancellationToken,
    work: impl Future<Output = Result<T>>,
) -> Result<T> {
    cancel
        .run_until_cancelled(work)
        .await
        .unwrap_or(Err(Error::Cancelled))
}

fn wrap(context: &'static str, source: Error) -> Error {
    Error::Context {
        context,
        source: Box::new(source),
    }
}
