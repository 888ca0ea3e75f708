//! [`Porter`]: the engine's front door. It ties configuration, sources, the cache and export
//! together for the operations front ends offer (pull with optional export, list).

use std::path::{Path, PathBuf};

use crate::artifact::{self, ArtifactResult, Finalizer};
use crate::cache::Cache;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::export::{self, ExportLayer, ExportManifest, ExportPlan, ExtractLimits};
use crate::manifest::{Node, PlatformRequest};
use crate::progress::Progress;
use crate::pull::{self, Pulled};
use crate::reference::ArtifactRef;
use crate::registry::{self, LayoutSource, Remote};

/// Blobs downloaded at once.
const DEFAULT_CONCURRENCY: usize = 4;

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
        })
    }
}

/// A pull's outcome: the result JSON and the finalizers DS should run.
#[derive(Debug, Clone)]
pub struct PullOutcome {
    /// The `ArtifactResult` (with `exported_files` when exported).
    pub result: ArtifactResult,
    /// Finalizer requests derived from the artifact's annotations.
    pub finalizers: Vec<Finalizer>,
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
        let cache = Cache::open(&settings.cache_dir)?;
        Ok(Porter { settings, cache })
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

    /// Pulls an artifact into the cache and, when `request.output` is set, exports it.
    ///
    /// Pull failures read `failed to copy artifact: …`, export failures
    /// `failed to export artifact: …`, as DS users know them.
    pub async fn pull(
        &self,
        request: &PullRequest,
        progress: &dyn Progress,
    ) -> Result<PullOutcome> {
        let pulled = self.fetch(request, progress).await.map_err(|e| match e {
            // The platform request cannot be met: DS users know this as an export failure.
            Error::Export(_) => wrap("failed to export artifact", e),
            e => wrap("failed to copy artifact", e),
        })?;
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
        };
        let cache = self.cache.clone();
        let name = request.reference.cache_name();
        let (root, stored) = (pulled.root.clone(), result.clone());
        tokio::task::spawn_blocking(move || cache.record(&name, &root, &stored))
            .await
            .map_err(|e| Error::InvalidInput(format!("cache update failed: {e}")))??;

        if let Some(output) = &request.output {
            let plan = self
                .export_plan(request, &pulled, output)
                .map_err(|e| wrap("failed to export artifact", e))?;
            let exported = tokio::task::spawn_blocking(move || export::export(&plan))
                .await
                .map_err(|e| Error::InvalidInput(format!("export failed: {e}")))?
                .map_err(|e| wrap("failed to export artifact", e))?;
            result.exported_files = exported;
            if !result.exported_files.is_empty() {
                let abs = std::path::absolute(output).unwrap_or_else(|_| output.clone());
                artifact::add_export_finalizer_args(
                    &mut result.metadata,
                    &abs.display().to_string(),
                );
            }
        }
        let finalizers = artifact::finalizers(&result.metadata);
        Ok(PullOutcome { result, finalizers })
    }

    async fn fetch(&self, request: &PullRequest, progress: &dyn Progress) -> Result<Pulled> {
        let pinned = request.reference.digest();
        let pulled = match &request.reference {
            ArtifactRef::Registry(r) => {
                let source = Remote::new(&self.settings, r, request.insecure)?;
                pull::pull(
                    &source,
                    pinned,
                    &self.cache,
                    &request.platforms,
                    progress,
                    DEFAULT_CONCURRENCY,
                )
                .await?
            }
            ArtifactRef::Layout(l) => {
                let source = LayoutSource::new(l);
                pull::pull(
                    &source,
                    pinned,
                    &self.cache,
                    &request.platforms,
                    progress,
                    DEFAULT_CONCURRENCY,
                )
                .await?
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
        Ok(pulled)
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
            .filter(|(selected, _)| request.platforms.accepts(selected.platform.as_ref()))
            .map(|(selected, m)| ExportManifest {
                platform: selected.platform.clone(),
                layers: m
                    .layers
                    .iter()
                    .map(|l| ExportLayer {
                        media_type: l.media_type.clone(),
                        title: l.title().map(str::to_owned),
                        blob_path: self.cache.blob_path(&l.digest),
                        size: l.size,
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
            limits: ExtractLimits::default(),
        })
    }
}

fn wrap(context: &'static str, source: Error) -> Error {
    Error::Context {
        context,
        source: Box::new(source),
    }
}
