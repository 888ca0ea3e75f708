//! The uniffi surface (namespace `porter`): a [`PorterClient`] object, records for options and
//! results, one [`PorterError`] enum, a [`Cancellation`] that stops calls from another thread,
//! and a foreign-implementable [`ProgressListener`].
//!
//! Methods block the calling thread, as the C functions do (run them on a worker thread:
//! `asyncio.to_thread`, `Dispatchers.IO`, a `Task.detached`). They are deliberately not uniffi
//! async methods: those are completed by a waker on one of the runtime's threads calling into
//! the foreign language, and a Python interpreter that is shutting down at that moment
//! terminates the thread with a forced unwind, which aborts the process. Blocking calls run the
//! operation, and its progress callbacks, on the caller's own thread.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use porter_core::cache::{BlobProblem, PruneReport, VerifyReport};
use porter_core::digest::Digest;
use porter_core::progress::Progress;
use porter_core::{ArtifactResult, CopyOutcome};
use tokio_util::sync::CancellationToken;

use crate::adapter::Adapter;
use crate::engine::{Engine, TagList};
use crate::options::{
    CopyOptions, ExportOptions, InspectOptions, PruneOptions, PullOptions, PushOptions,
    TagsOptions, VerifyOptions,
};
use crate::runtime::{self, Control, Running};
use crate::status::{Failure, porter_status};

/// A failure, classified like the C statuses (same names, same meaning).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum PorterError {
    /// Malformed input: reference, platform, options, configuration.
    #[error("{message}")]
    InvalidInput { message: String },
    /// The registry, layout or cache does not have what was asked for.
    #[error("{message}")]
    NotFound { message: String },
    /// The registry refused the credentials.
    #[error("{message}")]
    Unauthorized { message: String },
    /// The registry could not be reached, or answered with a server error.
    #[error("{message}")]
    Network { message: String },
    /// Content did not match its digest or size, or a manifest was malformed.
    #[error("{message}")]
    Integrity { message: String },
    /// Reading or writing local files failed.
    #[error("{message}")]
    Io { message: String },
    /// An export would write outside the destination or through a link.
    #[error("{message}")]
    Unsafe { message: String },
    /// The operation was cancelled (or its client closed); its work has stopped.
    #[error("{message}")]
    Cancelled { message: String },
    /// The operation did not finish within its `timeout_ms` and was stopped.
    #[error("{message}")]
    TimedOut { message: String },
    /// An adapter state or metadata entry has expired.
    #[error("{message}")]
    Expired { message: String },
    /// The adapter's metadata store failed.
    #[error("{message}")]
    Store { message: String },
    /// The cache holds damaged data: verify and repair it.
    #[error("{message}")]
    CacheCorrupt { message: String },
    /// Anything else, including a panic inside the library.
    #[error("{message}")]
    Other { message: String },
}

impl From<Failure> for PorterError {
    fn from(failure: Failure) -> Self {
        use porter_status::*;
        let message = failure.message;
        match failure.status {
            PORTER_INVALID_INPUT | PORTER_NULL_PARAMETER | PORTER_INVALID_UTF8 => {
                PorterError::InvalidInput { message }
            }
            PORTER_NOT_FOUND => PorterError::NotFound { message },
            PORTER_UNAUTHORIZED => PorterError::Unauthorized { message },
            PORTER_NETWORK => PorterError::Network { message },
            PORTER_INTEGRITY => PorterError::Integrity { message },
            PORTER_IO => PorterError::Io { message },
            PORTER_UNSAFE => PorterError::Unsafe { message },
            PORTER_CANCELLED => PorterError::Cancelled { message },
            PORTER_TIMED_OUT => PorterError::TimedOut { message },
            PORTER_EXPIRED => PorterError::Expired { message },
            PORTER_STORE => PorterError::Store { message },
            PORTER_CACHE_CORRUPT => PorterError::CacheCorrupt { message },
            PORTER_OK
            | PORTER_INTERNAL
            | PORTER_PANIC
            | PORTER_CALLED_FROM_CALLBACK
            | PORTER_RUNTIME_UNAVAILABLE
            | PORTER_OTHER => PorterError::Other { message },
        }
    }
}

/// A cached, pulled or pushed artifact: DS's `ArtifactResult`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Artifact {
    /// First 16 hex digits of the root digest.
    pub id: String,
    /// The reference as given.
    pub reference: String,
    /// Root digest (`sha256:…`).
    pub digest: String,
    /// Size of the root index or manifest in bytes.
    pub size: i64,
    /// The cache entry directory.
    pub local_path: String,
    /// The artifact's annotations.
    pub metadata: HashMap<String, String>,
    /// Present when the artifact declares `ds.plugin.name`.
    pub plugin_info: Option<PluginInfo>,
    /// Whether the artifact is in the cache.
    pub cached: bool,
    /// When it was cached (RFC 3339).
    pub cached_at: String,
    /// Paths written by an export.
    pub exported_files: Vec<String>,
    /// Served from the cache without the network.
    pub offline: bool,
    /// The same result as the JSON `ds-porter` prints.
    pub json: String,
}

/// Plugin details declared through `ds.plugin.*` annotations.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PluginInfo {
    /// `ds.plugin.name`.
    pub plugin_name: String,
    /// `ds.plugin.version`.
    pub version: String,
    /// `ds.plugin.param.<name>` values.
    pub parameters: HashMap<String, String>,
}

impl From<ArtifactResult> for Artifact {
    fn from(result: ArtifactResult) -> Self {
        let json = porter_core::artifact::go_json(&result, false);
        Artifact {
            id: result.id,
            reference: result.reference,
            digest: result.digest,
            size: result.size,
            local_path: result.local_path,
            metadata: result.metadata.into_iter().collect(),
            plugin_info: result.plugin_info.map(|p| PluginInfo {
                plugin_name: p.plugin_name,
                version: p.version,
                parameters: p.parameters.into_iter().collect(),
            }),
            cached: result.cached,
            cached_at: result.cached_at,
            exported_files: result.exported_files,
            offline: result.offline,
            json,
        }
    }
}

/// What a cache prune removed.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PruneSummary {
    /// Ids of the removed artifacts, oldest first.
    pub removed: Vec<String>,
    /// Number of blobs deleted.
    pub removed_blobs: u64,
    /// Bytes of the deleted blobs.
    pub freed_bytes: u64,
    /// Bytes the remaining blobs take.
    pub remaining_bytes: u64,
}

impl From<PruneReport> for PruneSummary {
    fn from(r: PruneReport) -> Self {
        PruneSummary {
            removed: r.removed,
            removed_blobs: r.removed_blobs as u64,
            freed_bytes: r.freed_bytes,
            remaining_bytes: r.remaining_bytes,
        }
    }
}

/// A damaged or missing blob and the cached references that need it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BlobIssue {
    /// `sha256:…`.
    pub digest: String,
    /// References whose artifact needs the blob.
    pub needed_by: Vec<String>,
}

/// What a cache verify found (and, after a repair, fixed).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VerifySummary {
    /// Blobs hashed.
    pub checked: u64,
    /// Bytes hashed.
    pub checked_bytes: u64,
    /// Blobs whose content does not match their digest.
    pub corrupt: Vec<BlobIssue>,
    /// Blobs cached artifacts need that are not in the cache.
    pub missing: Vec<BlobIssue>,
    /// Digests fetched again by a repair.
    pub repaired: Vec<String>,
    /// Problems a repair could not fix, with the reason.
    pub unrepaired: Vec<String>,
}

impl From<VerifyReport> for VerifySummary {
    fn from(r: VerifyReport) -> Self {
        let issues = |list: Vec<BlobProblem>| {
            list.into_iter()
                .map(|p| BlobIssue {
                    digest: p.digest,
                    needed_by: p.needed_by,
                })
                .collect()
        };
        VerifySummary {
            checked: r.checked as u64,
            checked_bytes: r.checked_bytes,
            corrupt: issues(r.corrupt),
            missing: issues(r.missing),
            repaired: r.repaired,
            unrepaired: r.unrepaired,
        }
    }
}

/// What an artifact is, without its layers: `ds-porter inspect`'s result.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Inspection {
    /// The reference as given.
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
    pub artifact_type: Option<String>,
    /// Its annotations.
    pub annotations: HashMap<String, String>,
    /// Where the answer came from: `registry`, `mirror`, `layout` or `cache`.
    pub source: String,
    /// The mirror that answered, when one did.
    pub mirror: Option<String>,
    /// Each platform's manifest, in index order (one entry for a single manifest).
    pub platforms: Vec<PlatformManifest>,
    /// Bytes of the root, every manifest listed and every config and layer they name.
    pub total_size: u64,
    /// The same result as the JSON `ds-porter inspect` prints.
    pub json: String,
    /// The root manifest or index exactly as served.
    pub raw: Vec<u8>,
}

/// One platform's manifest in an [`Inspection`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
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
    pub artifact_type: Option<String>,
    /// Its annotations (the index entry's and the manifest's own, the manifest's winning).
    pub annotations: HashMap<String, String>,
    /// The config (absent when the manifest is not available from the cache).
    pub config: Option<ManifestBlob>,
    /// The layers, in order (absent when the manifest is not available from the cache).
    pub layers: Option<Vec<ManifestBlob>>,
    /// Bytes of the manifest, its config and its layers.
    pub total_size: u64,
}

/// A config or layer a manifest names.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ManifestBlob {
    /// `org.opencontainers.image.title`, when set.
    pub title: Option<String>,
    /// Media type.
    pub media_type: String,
    /// Digest.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
}

impl From<porter_core::Inspection> for Inspection {
    fn from(found: porter_core::Inspection) -> Self {
        let json = porter_core::artifact::go_json(&found, false);
        let blob = |b: porter_core::inspect::Blob| ManifestBlob {
            title: b.title,
            media_type: b.media_type,
            digest: b.digest,
            size: b.size,
        };
        Inspection {
            reference: found.reference,
            resolved: found.resolved,
            digest: found.digest,
            media_type: found.media_type,
            size: found.size,
            artifact_type: found.artifact_type,
            annotations: found.annotations.into_iter().collect(),
            source: found.source,
            mirror: found.mirror,
            platforms: found
                .platforms
                .into_iter()
                .map(|p| PlatformManifest {
                    platform: p.platform,
                    digest: p.digest,
                    media_type: p.media_type,
                    size: p.size,
                    artifact_type: p.artifact_type,
                    annotations: p.annotations.into_iter().collect(),
                    config: p.config.map(blob),
                    layers: p.layers.map(|l| l.into_iter().map(blob).collect()),
                    total_size: p.total_size,
                })
                .collect(),
            total_size: found.total_size,
            json,
            raw: found.raw.to_vec(),
        }
    }
}

/// What a copy did: `ds-porter copy`'s result.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct CopyResult {
    /// The source as given.
    pub source: String,
    /// The destination as written (with the tag or digest it was stored under).
    pub destination: String,
    /// Digest of the source's root manifest or index.
    pub source_digest: String,
    /// Digest of what the destination now holds (`source_digest` unless a subset was copied).
    pub digest: String,
    /// Media type of that root.
    pub media_type: String,
    /// Platforms copied, in index order.
    pub platforms: Vec<String>,
    /// A platform subset was copied under a new index.
    pub subset: bool,
    /// Manifests and indexes written.
    pub manifests: u64,
    /// Blobs sent to the destination.
    pub blobs_copied: u64,
    /// Blobs the destination already had.
    pub blobs_skipped: u64,
    /// Blobs mounted from another repository of the destination registry.
    pub blobs_mounted: u64,
    /// Bytes of the blobs sent.
    pub bytes_copied: u64,
    /// Bytes fetched from the source (what the cache did not have).
    pub bytes_downloaded: u64,
    /// The same result as the JSON `ds-porter copy` prints.
    pub json: String,
}

impl From<CopyOutcome> for CopyResult {
    fn from(c: CopyOutcome) -> Self {
        let json = porter_core::artifact::go_json(&c, false);
        CopyResult {
            source: c.source,
            destination: c.destination,
            source_digest: c.source_digest,
            digest: c.digest,
            media_type: c.media_type,
            platforms: c.platforms,
            subset: c.subset,
            manifests: c.manifests as u64,
            blobs_copied: c.blobs_copied as u64,
            blobs_skipped: c.blobs_skipped as u64,
            blobs_mounted: c.blobs_mounted as u64,
            bytes_copied: c.bytes_copied,
            bytes_downloaded: c.bytes_downloaded,
            json,
        }
    }
}

/// A transfer event.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ProgressEvent {
    /// A blob transfer starts.
    Started {
        digest: String,
        size: u64,
        title: Option<String>,
    },
    /// `bytes` more bytes of the blob were transferred.
    Bytes { digest: String, bytes: u64 },
    /// The blob is complete and verified; `reused` when nothing had to be transferred.
    Done { digest: String, reused: bool },
}

/// Receives transfer events of a call, on the thread that made the call and only while it runs;
/// it must return quickly and must not call the client (transfers fail with
/// `PorterError::Other`). It may call `Cancellation::cancel`.
#[uniffi::export(with_foreign)]
pub trait ProgressListener: Send + Sync {
    /// One event.
    fn on_progress(&self, event: ProgressEvent);
}

/// A foreign listener as the engine's [`Progress`].
struct Listener(Option<Arc<dyn ProgressListener>>);

impl Listener {
    fn send(&self, event: ProgressEvent) {
        if let Some(listener) = &self.0 {
            listener.on_progress(event);
        }
    }
}

impl Progress for Listener {
    fn blob_started(&self, digest: &Digest, size: u64, title: Option<&str>) {
        self.send(ProgressEvent::Started {
            digest: digest.to_string(),
            size,
            title: title.map(str::to_owned),
        });
    }

    fn blob_progress(&self, digest: &Digest, bytes: u64) {
        self.send(ProgressEvent::Bytes {
            digest: digest.to_string(),
            bytes,
        });
    }

    fn blob_done(&self, digest: &Digest, reused: bool) {
        self.send(ProgressEvent::Done {
            digest: digest.to_string(),
            reused,
        });
    }
}

/// Cancels the calls it is passed to, from any thread: they fail with
/// `PorterError::Cancelled` once their work has stopped (transfers abandoned, an export's
/// staging removed). Calls started with it after `cancel()` fail at once.
#[derive(Debug, Default, uniffi::Object)]
pub struct Cancellation(CancellationToken);

#[uniffi::export]
impl Cancellation {
    /// A cancellation that has not fired.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Cancellation::default())
    }

    /// Cancels every call using it, now and later. Safe from any thread, also from a progress
    /// listener.
    pub fn cancel(&self) {
        self.0.cancel();
    }
}

/// The version of the library.
#[uniffi::export]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Runs `work` tracked by `running` and cancelled by `cancellation`.
fn run<T, Fut>(
    running: &Arc<Running>,
    cancellation: Option<&Cancellation>,
    timeout_ms: Option<u64>,
    work: impl FnOnce(CancellationToken) -> Fut,
) -> Result<T, PorterError>
where
    Fut: Future<Output = Result<T, Failure>>,
{
    let control = Control {
        parent: cancellation.map(|c| &c.0),
        handles: vec![running],
        timeout: crate::options::timeout(timeout_ms)?,
    };
    Ok(runtime::run(control, work)?)
}

/// A client: the engine on one configuration, safe to share between threads.
#[derive(Debug, uniffi::Object)]
pub struct PorterClient {
    engine: Engine,
    running: Arc<Running>,
}

#[uniffi::export]
impl PorterClient {
    /// Opens a client. `config_json` is DS's configuration as DS hands it to plugins (the JSON
    /// encoding of `types.Config`); without it, the configuration is read as the `ds-porter` CLI
    /// reads it (defaults < `~/.config/ds/config.yaml` < `DS_*` variables).
    #[uniffi::constructor(default(config_json = None))]
    pub fn new(config_json: Option<String>) -> Result<Arc<Self>, PorterError> {
        Ok(Arc::new(PorterClient {
            engine: Engine::open(config_json.as_deref())?,
            running: Arc::default(),
        }))
    }

    /// Cancels the calls running with this client and waits until they have returned; later
    /// calls fail with `PorterError::Cancelled`.
    pub fn close(&self) {
        self.running.close();
    }

    /// Every cached artifact, sorted by id.
    pub fn list(&self) -> Result<Vec<Artifact>, PorterError> {
        let list = run(&self.running, None, None, |_| async { self.engine.list() })?;
        Ok(list.into_iter().map(Artifact::from).collect())
    }

    /// Pulls `reference` into the cache and, with `options.output`, exports it.
    #[uniffi::method(default(options = None, listener = None, cancellation = None))]
    pub fn pull(
        &self,
        reference: String,
        options: Option<PullOptions>,
        listener: Option<Arc<dyn ProgressListener>>,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<Artifact, PorterError> {
        let listener = Listener(listener);
        let options = options.unwrap_or_default();
        let timeout = options.timeout_ms;
        let engine = &self.engine;
        let cancellation = cancellation.as_deref();
        run(&self.running, cancellation, timeout, |token| {
            engine.pull(&reference, options, &listener, token)
        })
        .map(Artifact::from)
    }

    /// Exports a cached artifact into `output` without touching the network (a digest as
    /// pinned, a tag as last pulled).
    #[uniffi::method(default(options = None, listener = None, cancellation = None))]
    pub fn export(
        &self,
        reference: String,
        output: String,
        options: Option<ExportOptions>,
        listener: Option<Arc<dyn ProgressListener>>,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<Artifact, PorterError> {
        let listener = Listener(listener);
        let options = options.unwrap_or_default();
        let timeout = options.timeout_ms;
        let engine = &self.engine;
        let cancellation = cancellation.as_deref();
        run(&self.running, cancellation, timeout, |token| {
            engine.export(&reference, &output, options, &listener, token)
        })
        .map(Artifact::from)
    }

    /// Pushes `source` (a binary, a directory, or a `ds.manifest.yaml` release) to `reference`
    /// (a registry reference or `oci:<dir>[:tag]`).
    #[uniffi::method(default(options = None, listener = None, cancellation = None))]
    pub fn push(
        &self,
        source: String,
        reference: String,
        options: Option<PushOptions>,
        listener: Option<Arc<dyn ProgressListener>>,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<Artifact, PorterError> {
        let listener = Listener(listener);
        let options = options.unwrap_or_default();
        let timeout = options.timeout_ms;
        let engine = &self.engine;
        let cancellation = cancellation.as_deref();
        run(&self.running, cancellation, timeout, |token| {
            engine.push(&source, &reference, options, &listener, token)
        })
        .map(Artifact::from)
    }

    /// Prunes the cache by the configured limits or those in `options`. Blocks while running
    /// pulls finish (up to a minute).
    #[uniffi::method(default(options = None))]
    pub fn cache_prune(&self, options: Option<PruneOptions>) -> Result<PruneSummary, PorterError> {
        let options = options.unwrap_or_default();
        run(&self.running, None, None, |_| async {
            self.engine.prune(options)
        })
        .map(PruneSummary::from)
    }

    /// Removes the cached artifacts `names` names (ids, digests or references) and every blob
    /// no remaining artifact needs; a name that matches nothing is `NotFound`, and then nothing
    /// is removed. Blocks while running pulls finish (up to a minute).
    pub fn cache_remove(&self, names: Vec<String>) -> Result<PruneSummary, PorterError> {
        crate::options::check_names(&names)?;
        run(&self.running, None, None, |_| async {
            self.engine.remove(&names)
        })
        .map(PruneSummary::from)
    }

    /// Describes `reference` (its root manifest or index, and each platform's manifest with its
    /// layers and sizes) without downloading layers.
    #[uniffi::method(default(options = None, cancellation = None))]
    pub fn inspect(
        &self,
        reference: String,
        options: Option<InspectOptions>,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<Inspection, PorterError> {
        let options = options.unwrap_or_default();
        let timeout = options.timeout_ms;
        let engine = &self.engine;
        run(&self.running, cancellation.as_deref(), timeout, |token| {
            engine.inspect(&reference, options, token)
        })
        .map(Inspection::from)
    }

    /// The tags of `repository`, every page of them; with `options.semver` only the versions
    /// it accepts, lowest first (only the highest with `options.latest`).
    #[uniffi::method(default(options = None, cancellation = None))]
    pub fn tags(
        &self,
        repository: String,
        options: Option<TagsOptions>,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<TagList, PorterError> {
        let options = options.unwrap_or_default();
        let timeout = options.timeout_ms;
        let engine = &self.engine;
        run(&self.running, cancellation.as_deref(), timeout, |token| {
            engine.tags(&repository, options, token)
        })
    }

    /// Copies `source` to `destination` (registry references or `oci:<dir>` layouts, in any
    /// combination); every platform and digest unless `options.platforms` names a subset.
    #[uniffi::method(default(options = None, listener = None, cancellation = None))]
    pub fn copy(
        &self,
        source: String,
        destination: String,
        options: Option<CopyOptions>,
        listener: Option<Arc<dyn ProgressListener>>,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<CopyResult, PorterError> {
        let listener = Listener(listener);
        let options = options.unwrap_or_default();
        let timeout = options.timeout_ms;
        let engine = &self.engine;
        let cancellation = cancellation.as_deref();
        run(&self.running, cancellation, timeout, |token| {
            engine.copy(&source, &destination, options, &listener, token)
        })
        .map(CopyResult::from)
    }

    /// Re-hashes every cached blob; with `options.repair`, fetches damaged or missing ones again.
    #[uniffi::method(default(options = None, listener = None, cancellation = None))]
    pub fn cache_verify(
        &self,
        options: Option<VerifyOptions>,
        listener: Option<Arc<dyn ProgressListener>>,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<VerifySummary, PorterError> {
        let listener = Listener(listener);
        let options = options.unwrap_or_default();
        let timeout = options.timeout_ms;
        let engine = &self.engine;
        let cancellation = cancellation.as_deref();
        run(&self.running, cancellation, timeout, |token| {
            engine.verify(options, &listener, token)
        })
        .map(VerifySummary::from)
    }
}

/// The adapter: installations and bundles as OCI artifacts, state and bundle metadata with
/// TTLs, the event log and the installation store. Operations are JSON requests
/// (`{"op":"publish","type":"deploy.done","data":{…}}`), answered with JSON, exactly as the C
/// function `porter_adapter_call` takes them.
#[derive(Debug, uniffi::Object)]
pub struct PorterAdapterClient {
    adapter: Adapter,
    running: Arc<Running>,
}

#[uniffi::export]
impl PorterAdapterClient {
    /// Opens the adapter. `config_json` as for [`PorterClient::new`]; `options_json`:
    /// `{"store_path":"…","plugin_id":"porter","busy_timeout_ms":30000}`.
    #[uniffi::constructor(default(config_json = None, options_json = None))]
    pub fn new(
        config_json: Option<String>,
        options_json: Option<String>,
    ) -> Result<Arc<Self>, PorterError> {
        Ok(Arc::new(PorterAdapterClient {
            adapter: Adapter::open(config_json.as_deref(), options_json.as_deref())?,
            running: Arc::default(),
        }))
    }

    /// Cancels the operations running with this adapter and waits until they have returned;
    /// later ones fail with `PorterError::Cancelled`.
    pub fn close(&self) {
        self.running.close();
    }

    /// Runs one operation; the answer is JSON.
    #[uniffi::method(default(cancellation = None))]
    pub fn call(
        &self,
        request_json: String,
        cancellation: Option<Arc<Cancellation>>,
    ) -> Result<String, PorterError> {
        let adapter = &self.adapter;
        run(&self.running, cancellation.as_deref(), None, |token| {
            runtime::abandon_on_cancel(token, adapter.call(&request_json))
        })
    }
}
