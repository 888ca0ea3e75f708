//! [`PorterAdapter`]: the async front door.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use porter_core::config::Settings;
use porter_core::digest::Digest;
use porter_core::manifest::{self, Node, PlatformRequest};
use porter_core::progress::NoProgress;
use porter_core::push_layer::LayerPushRequest;
use porter_core::tags::TagListRequest;
use porter_core::{ArtifactResult, Porter, PullRequest};
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};
use crate::events::{self, Event, Subscription};
use crate::installations::Installation;
use crate::state::{StateEntry, StateKind};
use crate::store::Store;

/// Nested indexes followed at most when looking for the primary layer.
const MAX_INDEX_DEPTH: usize = 8;

/// How a [`PorterAdapter`] is set up.
#[derive(Debug, Clone)]
pub struct AdapterOptions {
    /// The store file; default `<Cache.Dir>/porter-adapter/store.db` (beside the porter cache).
    pub store_path: Option<PathBuf>,
    /// How long a write waits for another process's transaction before failing.
    pub busy_timeout: Duration,
    /// The plugin id recorded with state entries and events.
    pub plugin_id: String,
    /// Tags asked for per page when listing.
    pub tag_page_size: usize,
    /// How often a [`Subscription`] looks for other processes' events.
    pub event_poll_interval: Duration,
}

impl Default for AdapterOptions {
    fn default() -> Self {
        AdapterOptions {
            store_path: None,
            busy_timeout: Duration::from_secs(30),
            plugin_id: "porter".into(),
            tag_page_size: porter_core::tags::DEFAULT_PAGE_SIZE,
            event_poll_interval: Duration::from_millis(500),
        }
    }
}

/// The default store file for `settings`: `<Cache.Dir>/porter-adapter/store.db`, where the
/// porter cache is `<Cache.Dir>/porter`.
pub fn default_store_path(settings: &Settings) -> PathBuf {
    let cache = &settings.cache_dir;
    cache
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(cache)
        .join("porter-adapter")
        .join("store.db")
}

/// What an artifact operation works on: the noun in messages and the event names.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Installation,
    Bundle,
}

impl Kind {
    fn noun(self) -> &'static str {
        match self {
            Kind::Installation => "installation",
            Kind::Bundle => "bundle",
        }
    }

    fn pulled(self) -> &'static str {
        match self {
            Kind::Installation => events::INSTALLATION_PULLED,
            Kind::Bundle => events::BUNDLE_PULLED,
        }
    }

    fn pushed(self) -> &'static str {
        match self {
            Kind::Installation => events::INSTALLATION_PUSHED,
            Kind::Bundle => events::BUNDLE_PUSHED,
        }
    }
}

/// A DS client for Porter installations and bundles.
///
/// Artifacts go through porter-core (the shared cache, the registry's credentials and transport
/// policy); state, bundle metadata, events and installations go to the metadata store. Cheap to
/// share behind an `Arc`; every method takes `&self`.
#[derive(Debug)]
pub struct PorterAdapter {
    porter: Porter,
    store: Arc<Store>,
    options: AdapterOptions,
}

impl PorterAdapter {
    /// Opens the engine on `settings` and the metadata store (creating and migrating it).
    /// Redirects to private addresses are refused unless `settings.porter.block_private_redirects`
    /// says otherwise: the adapter may run inside a service that pulls references it is given.
    pub fn open(mut settings: Settings, options: AdapterOptions) -> Result<Self> {
        settings.block_private_redirects.get_or_insert(true);
        let path = options
            .store_path
            .clone()
            .unwrap_or_else(|| default_store_path(&settings));
        let porter = Porter::new(settings).map_err(|e| {
            Error::from_core("failed to open the porter cache".into(), "cache", "", e)
        })?;
        let store = Store::open(&path, options.busy_timeout)?;
        Ok(PorterAdapter {
            porter,
            store: Arc::new(store),
            options,
        })
    }

    /// The engine (the Go adapter's `Client()`).
    pub fn porter(&self) -> &Porter {
        &self.porter
    }

    /// The store file.
    pub fn store_path(&self) -> &Path {
        self.store.path()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| Error::store(self.store.path(), format!("store task failed: {e}"), None))?
    }

    // ---- artifacts ----------------------------------------------------------------------

    /// Pulls an installation into the shared cache; `writer`, when given, receives its primary
    /// layer's bytes (the first layer of the manifest for this platform). Publishes
    /// `installation.pulled`.
    pub async fn pull_installation(
        &self,
        reference: &str,
        writer: Option<&mut (dyn AsyncWrite + Unpin + Send)>,
    ) -> Result<ArtifactResult> {
        self.pull(Kind::Installation, reference, writer).await
    }

    /// Pulls a bundle, like [`PorterAdapter::pull_installation`]; publishes `bundle.pulled`.
    pub async fn pull_bundle(
        &self,
        reference: &str,
        writer: Option<&mut (dyn AsyncWrite + Unpin + Send)>,
    ) -> Result<ArtifactResult> {
        self.pull(Kind::Bundle, reference, writer).await
    }

    /// Pushes what `reader` yields as an installation: an OCI manifest with the empty config
    /// and one layer of `media_type`, tagged as `reference` says (default `latest`). Publishes
    /// `installation.pushed`.
    pub async fn push_installation(
        &self,
        reference: &str,
        reader: impl AsyncRead + Unpin + Send,
        media_type: &str,
    ) -> Result<ArtifactResult> {
        self.push(Kind::Installation, reference, reader, media_type)
            .await
    }

    /// Pushes a bundle, like [`PorterAdapter::push_installation`]; publishes `bundle.pushed`.
    pub async fn push_bundle(
        &self,
        reference: &str,
        reader: impl AsyncRead + Unpin + Send,
        media_type: &str,
    ) -> Result<ArtifactResult> {
        self.push(Kind::Bundle, reference, reader, media_type).await
    }

    /// Every tag of `repository` (`registry/repo`, or short and resolved against
    /// `Registry.Default`), following `Link` pagination, in the registry's order.
    pub async fn list_installations(&self, repository: &str) -> Result<Vec<String>> {
        let mut request = TagListRequest::new(repository);
        request.page_size = self.options.tag_page_size;
        self.porter.list_tags(&request).await.map_err(|e| {
            Error::from_core(
                format!("failed to list tags of {repository}"),
                "repository",
                repository,
                e,
            )
        })
    }

    async fn pull(
        &self,
        kind: Kind,
        reference: &str,
        writer: Option<&mut (dyn AsyncWrite + Unpin + Send)>,
    ) -> Result<ArtifactResult> {
        let noun = kind.noun();
        let fail = |e| {
            Error::from_core(
                format!("failed to pull {noun} {reference}"),
                noun,
                reference,
                e,
            )
        };
        let request = PullRequest::new(reference, PlatformRequest::Host).map_err(fail)?;
        let outcome = self
            .porter
            .pull(&request, &NoProgress)
            .await
            .map_err(fail)?;
        if let Some(writer) = writer {
            let path = self.primary_layer_path(&outcome.result)?;
            let mut file = tokio::fs::File::open(&path).await.map_err(|e| Error::Io {
                context: format!("failed to open the primary layer of {reference}"),
                source: e,
            })?;
            let io = |e| Error::Io {
                context: format!("failed to write the primary layer of {reference}"),
                source: e,
            };
            tokio::io::copy(&mut file, writer).await.map_err(io)?;
            writer.flush().await.map_err(io)?;
        }
        self.announce(kind.pulled(), reference, &outcome.result.digest)
            .await;
        Ok(outcome.result)
    }

    /// The cached file holding the primary layer of a pulled artifact: the first layer of its
    /// manifest, or of the manifest for this platform when it is an index.
    pub fn primary_layer_path(&self, pulled: &ArtifactResult) -> Result<PathBuf> {
        let reference = &pulled.reference;
        let fail = |e| {
            Error::from_core(
                format!("failed to read the primary layer of {reference}"),
                "layer",
                reference,
                e,
            )
        };
        let cache = self.porter.cache();
        let mut digest: Digest = pulled.digest.parse().map_err(fail)?;
        let mut declared: Option<String> = None;
        let mut platform = None;
        for _ in 0..MAX_INDEX_DEPTH {
            let bytes = cache.read_blob(&digest).map_err(fail)?;
            let media_type =
                manifest::detect_media_type(&bytes, declared.as_deref(), &digest).map_err(fail)?;
            match manifest::parse(&bytes, &media_type, &digest).map_err(fail)? {
                Node::Manifest(m) => {
                    let layer = m.layers.into_iter().next().ok_or_else(|| {
                        Error::invalid(format!("{reference} has no layer to write"))
                    })?;
                    return Ok(cache.blob_path(&layer.digest));
                }
                Node::Index(index) => {
                    let (leaves, nested) = manifest::select_children(
                        &index,
                        platform.as_ref(),
                        &PlatformRequest::Host,
                    );
                    let next = leaves
                        .into_iter()
                        .next()
                        .or_else(|| nested.into_iter().next());
                    let Some(next) = next else {
                        return Err(Error::invalid(format!(
                            "{reference} has no manifest for {}",
                            porter_core::platform::Platform::host()
                        )));
                    };
                    digest = next.descriptor.digest.clone();
                    declared = Some(next.descriptor.media_type.clone());
                    platform = next.platform;
                }
            }
        }
        Err(Error::invalid(format!(
            "{reference} nests indexes deeper than {MAX_INDEX_DEPTH} levels"
        )))
    }

    async fn push(
        &self,
        kind: Kind,
        reference: &str,
        reader: impl AsyncRead + Unpin + Send,
        media_type: &str,
    ) -> Result<ArtifactResult> {
        let noun = kind.noun();
        let fail = |e| {
            Error::from_core(
                format!("failed to push {noun} {reference}"),
                noun,
                reference,
                e,
            )
        };
        let request = LayerPushRequest::new(reference, media_type).map_err(fail)?;
        let result = self
            .porter
            .push_layer(&request, reader, &NoProgress)
            .await
            .map_err(fail)?;
        self.announce(kind.pushed(), reference, &result.digest)
            .await;
        Ok(result)
    }

    /// Publishes an artifact event; the artifact operation already succeeded, so a failure to
    /// record it is logged, not returned.
    async fn announce(&self, event_type: &'static str, reference: &str, digest: &str) {
        let data = json!({
            "ref": reference,
            "digest": digest,
            "timestamp": Utc::now().timestamp(),
        });
        if let Err(err) = self.publish(event_type, data).await {
            tracing::warn!(event = event_type, reference, error = %err, "could not record the event");
        }
    }

    // ---- state and bundle metadata ------------------------------------------------------

    /// Stores an installation's state (any JSON), expiring after `ttl` when given.
    pub async fn store_installation_state(
        &self,
        id: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<StateEntry> {
        self.put(StateKind::Installation, id, value, ttl).await
    }

    /// An installation's state: [`Error::NotFound`] when there is none, [`Error::Expired`] when
    /// its TTL ran out.
    pub async fn get_installation_state(&self, id: &str) -> Result<Value> {
        Ok(self.entry(StateKind::Installation, id).await?.value)
    }

    /// An installation's state with its bookkeeping (writer, times, expiry).
    pub async fn installation_state_entry(&self, id: &str) -> Result<StateEntry> {
        self.entry(StateKind::Installation, id).await
    }

    /// Replaces an installation's state with `f(current)` atomically across processes
    /// (`current` is `None` when there is none or it expired).
    pub async fn update_installation_state(
        &self,
        id: &str,
        ttl: Option<Duration>,
        f: impl FnOnce(Option<Value>) -> Value + Send + 'static,
    ) -> Result<StateEntry> {
        let key = StateKind::Installation.key(id)?;
        let plugin_id = self.options.plugin_id.clone();
        self.blocking(move |store| store.update_state(&key, &plugin_id, ttl, f))
            .await
    }

    /// Deletes an installation's state; whether there was any.
    pub async fn delete_installation_state(&self, id: &str) -> Result<bool> {
        let key = StateKind::Installation.key(id)?;
        self.blocking(move |store| store.delete_state(&key)).await
    }

    /// Stores a bundle's metadata (any JSON), expiring after `ttl` when given.
    pub async fn store_bundle_metadata(
        &self,
        reference: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<StateEntry> {
        self.put(StateKind::Bundle, reference, value, ttl).await
    }

    /// A bundle's metadata: [`Error::NotFound`] or [`Error::Expired`] like installation state.
    pub async fn get_bundle_metadata(&self, reference: &str) -> Result<Value> {
        Ok(self.entry(StateKind::Bundle, reference).await?.value)
    }

    /// Deletes a bundle's metadata; whether there was any.
    pub async fn delete_bundle_metadata(&self, reference: &str) -> Result<bool> {
        let key = StateKind::Bundle.key(reference)?;
        self.blocking(move |store| store.delete_state(&key)).await
    }

    /// Deletes every expired state and metadata entry; how many there were.
    pub async fn purge_expired(&self) -> Result<usize> {
        self.blocking(Store::purge_expired).await
    }

    async fn put(
        &self,
        kind: StateKind,
        id: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<StateEntry> {
        let key = kind.key(id)?;
        let plugin_id = self.options.plugin_id.clone();
        self.blocking(move |store| store.put_state(&key, &value, &plugin_id, ttl))
            .await
    }

    async fn entry(&self, kind: StateKind, id: &str) -> Result<StateEntry> {
        let key = kind.key(id)?;
        self.blocking(move |store| store.get_state(&key, kind.what()))
            .await
    }

    // ---- events -------------------------------------------------------------------------

    /// Appends an event of `event_type` (1–128 of `[A-Za-z0-9._-]`) with `data` to the
    /// durable log, from this adapter's plugin id.
    pub async fn publish(&self, event_type: &str, data: Value) -> Result<Event> {
        let event_type = event_type.to_owned();
        let plugin_id = self.options.plugin_id.clone();
        self.blocking(move |store| store.append_event(&event_type, &plugin_id, &data))
            .await
    }

    /// Up to `limit` events after sequence `cursor` (0 for the beginning), oldest first.
    pub async fn events_since(&self, cursor: u64, limit: usize) -> Result<Vec<Event>> {
        self.blocking(move |store| store.events_since(cursor, limit))
            .await
    }

    /// A live stream of the events published from now on, by this process or any other.
    pub async fn subscribe(&self) -> Result<Subscription> {
        let last = self.blocking(Store::last_sequence).await?;
        Ok(self.subscribe_from(last))
    }

    /// A live stream of the events after sequence `cursor`, past ones first.
    pub fn subscribe_from(&self, cursor: u64) -> Subscription {
        Subscription::new(
            Arc::clone(&self.store),
            cursor,
            self.options.event_poll_interval,
        )
    }

    /// Deletes events published before `before`; how many there were.
    pub async fn prune_events(&self, before: DateTime<Utc>) -> Result<usize> {
        self.blocking(move |store| store.prune_events(before)).await
    }

    // ---- installations and the store ----------------------------------------------------

    /// The installation store.
    pub fn installations(&self) -> Installations<'_> {
        Installations { adapter: self }
    }

    /// Runs SQLite's integrity check on the store.
    pub async fn check_store(&self) -> Result<()> {
        self.blocking(Store::check_integrity).await
    }
}

/// The installation store of a [`PorterAdapter`]: CRUD by namespace and name.
#[derive(Debug, Clone, Copy)]
pub struct Installations<'a> {
    adapter: &'a PorterAdapter,
}

impl Installations<'_> {
    /// Saves `installation` (insert or replace): keeps `created` of an existing record, stamps
    /// `modified`, generates an `id` when it is empty. Returns what was stored.
    pub async fn save(&self, installation: Installation) -> Result<Installation> {
        self.adapter
            .blocking(move |store| store.save_installation(installation))
            .await
    }

    /// The installation `namespace/name` (`installation not found: <ns>/<name>` when missing).
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Installation> {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        self.adapter
            .blocking(move |store| store.get_installation(&namespace, &name))
            .await
    }

    /// Every installation of `namespace`, by name; empty for an unknown namespace.
    pub async fn list(&self, namespace: &str) -> Result<Vec<Installation>> {
        let namespace = namespace.to_owned();
        self.adapter
            .blocking(move |store| store.list_installations(&namespace))
            .await
    }

    /// Deletes `namespace/name` (`installation not found: …` when missing).
    pub async fn delete(&self, namespace: &str, name: &str) -> Result<()> {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        self.adapter
            .blocking(move |store| store.delete_installation(&namespace, &name))
            .await
    }

    /// Changes `namespace/name` with `f` atomically across processes and returns the result.
    pub async fn update(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Installation) + Send + 'static,
    ) -> Result<Installation> {
        let (namespace, name) = (namespace.to_owned(), name.to_owned());
        self.adapter
            .blocking(move |store| store.update_installation(&namespace, &name, f))
            .await
    }
}
