//! [`BlockingAdapter`]: the same operations without async, for callers that have no runtime
//! (the FFI, scripts). It owns one tokio runtime and blocks the calling thread; calling it from
//! inside a tokio runtime is refused with an error rather than a panic.

use std::io::{Read, Write};
use std::time::Duration;

use porter_core::ArtifactResult;
use porter_core::config::Settings;
use serde_json::Value;

use crate::adapter::{AdapterOptions, PorterAdapter};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::installations::Installation;
use crate::state::StateEntry;

/// Worker threads of the owned runtime.
const WORKER_THREADS: usize = 2;

/// A [`PorterAdapter`] with blocking methods. Thread-safe: calls from several threads run
/// concurrently on the one runtime.
#[derive(Debug)]
pub struct BlockingAdapter {
    runtime: tokio::runtime::Runtime,
    adapter: PorterAdapter,
}

impl BlockingAdapter {
    /// Opens the adapter (see [`PorterAdapter::open`]) with a runtime of its own.
    pub fn open(settings: Settings, options: AdapterOptions) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(WORKER_THREADS)
            .thread_name("porter-adapter")
            .enable_all()
            .build()
            .map_err(|e| Error::Io {
                context: "failed to start the adapter's runtime".into(),
                source: e,
            })?;
        let adapter = PorterAdapter::open(settings, options)?;
        Ok(BlockingAdapter { runtime, adapter })
    }

    /// The async adapter underneath.
    pub fn adapter(&self) -> &PorterAdapter {
        &self.adapter
    }

    fn run<T>(&self, future: impl Future<Output = Result<T>>) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::invalid(
                "BlockingAdapter was called from inside an async runtime; use PorterAdapter there",
            ));
        }
        self.runtime.block_on(future)
    }

    /// [`PorterAdapter::pull_installation`]; `writer` receives the primary layer's bytes.
    pub fn pull_installation(
        &self,
        reference: &str,
        writer: Option<&mut dyn Write>,
    ) -> Result<ArtifactResult> {
        let result = self.run(self.adapter.pull_installation(reference, None))?;
        self.write_layer(&result, writer)?;
        Ok(result)
    }

    /// [`PorterAdapter::pull_bundle`]; `writer` receives the primary layer's bytes.
    pub fn pull_bundle(
        &self,
        reference: &str,
        writer: Option<&mut dyn Write>,
    ) -> Result<ArtifactResult> {
        let result = self.run(self.adapter.pull_bundle(reference, None))?;
        self.write_layer(&result, writer)?;
        Ok(result)
    }

    fn write_layer(&self, pulled: &ArtifactResult, writer: Option<&mut dyn Write>) -> Result<()> {
        let Some(writer) = writer else { return Ok(()) };
        let path = self.adapter.primary_layer_path(pulled)?;
        let context = || format!("failed to write the primary layer of {}", pulled.reference);
        let mut file = std::fs::File::open(&path).map_err(|e| Error::Io {
            context: context(),
            source: e,
        })?;
        std::io::copy(&mut file, writer)
            .and_then(|_| writer.flush())
            .map_err(|e| Error::Io {
                context: context(),
                source: e,
            })
    }

    /// [`PorterAdapter::push_installation`] from a blocking reader.
    pub fn push_installation(
        &self,
        reference: &str,
        reader: &mut dyn Read,
        media_type: &str,
    ) -> Result<ArtifactResult> {
        let file = spool(reader)?;
        self.run(async {
            let file = tokio::fs::File::from_std(file);
            self.adapter
                .push_installation(reference, file, media_type)
                .await
        })
    }

    /// [`PorterAdapter::push_bundle`] from a blocking reader.
    pub fn push_bundle(
        &self,
        reference: &str,
        reader: &mut dyn Read,
        media_type: &str,
    ) -> Result<ArtifactResult> {
        let file = spool(reader)?;
        self.run(async {
            let file = tokio::fs::File::from_std(file);
            self.adapter.push_bundle(reference, file, media_type).await
        })
    }

    /// [`PorterAdapter::list_installations`].
    pub fn list_installations(&self, repository: &str) -> Result<Vec<String>> {
        self.run(self.adapter.list_installations(repository))
    }

    /// [`PorterAdapter::store_installation_state`].
    pub fn store_installation_state(
        &self,
        id: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<StateEntry> {
        self.run(self.adapter.store_installation_state(id, value, ttl))
    }

    /// [`PorterAdapter::get_installation_state`].
    pub fn get_installation_state(&self, id: &str) -> Result<Value> {
        self.run(self.adapter.get_installation_state(id))
    }

    /// [`PorterAdapter::update_installation_state`].
    pub fn update_installation_state(
        &self,
        id: &str,
        ttl: Option<Duration>,
        f: impl FnOnce(Option<Value>) -> Value + Send + 'static,
    ) -> Result<StateEntry> {
        self.run(self.adapter.update_installation_state(id, ttl, f))
    }

    /// [`PorterAdapter::store_bundle_metadata`].
    pub fn store_bundle_metadata(
        &self,
        reference: &str,
        value: Value,
        ttl: Option<Duration>,
    ) -> Result<StateEntry> {
        self.run(self.adapter.store_bundle_metadata(reference, value, ttl))
    }

    /// [`PorterAdapter::get_bundle_metadata`].
    pub fn get_bundle_metadata(&self, reference: &str) -> Result<Value> {
        self.run(self.adapter.get_bundle_metadata(reference))
    }

    /// [`PorterAdapter::publish`].
    pub fn publish(&self, event_type: &str, data: Value) -> Result<Event> {
        self.run(self.adapter.publish(event_type, data))
    }

    /// [`PorterAdapter::events_since`].
    pub fn events_since(&self, cursor: u64, limit: usize) -> Result<Vec<Event>> {
        self.run(self.adapter.events_since(cursor, limit))
    }

    /// [`crate::Installations::save`].
    pub fn save_installation(&self, installation: Installation) -> Result<Installation> {
        self.run(self.adapter.installations().save(installation))
    }

    /// [`crate::Installations::get`].
    pub fn get_installation(&self, namespace: &str, name: &str) -> Result<Installation> {
        self.run(self.adapter.installations().get(namespace, name))
    }

    /// [`crate::Installations::list`].
    pub fn list_stored_installations(&self, namespace: &str) -> Result<Vec<Installation>> {
        self.run(self.adapter.installations().list(namespace))
    }

    /// [`crate::Installations::delete`].
    pub fn delete_installation(&self, namespace: &str, name: &str) -> Result<()> {
        self.run(self.adapter.installations().delete(namespace, name))
    }

    /// [`crate::Installations::update`].
    pub fn update_installation(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Installation) + Send + 'static,
    ) -> Result<Installation> {
        self.run(self.adapter.installations().update(namespace, name, f))
    }

    /// [`PorterAdapter::purge_expired`].
    pub fn purge_expired(&self) -> Result<usize> {
        self.run(self.adapter.purge_expired())
    }
}

/// Copies a blocking reader into an unnamed temp file and rewinds it.
fn spool(reader: &mut dyn Read) -> Result<std::fs::File> {
    let io = |e| Error::Io {
        context: "failed to read the artifact to push".into(),
        source: e,
    };
    let mut file = tempfile::tempfile().map_err(io)?;
    std::io::copy(reader, &mut file).map_err(io)?;
    std::io::Seek::rewind(&mut file).map_err(io)?;
    Ok(file)
}
