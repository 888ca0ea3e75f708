//! The adapter (`porter-adapter`: installations and bundles as OCI artifacts, state and bundle
//! metadata with TTLs, the event log, the installation store) for both surfaces.
//!
//! The adapter has many small operations on JSON documents, so both surfaces take one request
//! object, `{"op":"…", …}`, parsed here into [`AdapterRequest`] (unknown ops and fields are
//! rejected) and answered with JSON. New operations extend the request type, not the ABI.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use porter_adapter::{AdapterOptions, Installation, PorterAdapter};
use porter_core::install_crypto_provider;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::status::{Failure, porter_status, status_of_kind};

/// How the adapter is opened: `{"store_path":"…","plugin_id":"porter","busy_timeout_ms":30000}`,
/// every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct OpenOptions {
    store_path: Option<PathBuf>,
    plugin_id: Option<String>,
    busy_timeout_ms: Option<u64>,
}

/// One adapter operation.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum AdapterRequest {
    /// Pulls an installation into the cache; `output` receives its primary layer.
    PullInstallation {
        reference: String,
        output: Option<PathBuf>,
    },
    /// Pulls a bundle, like `pull_installation`.
    PullBundle {
        reference: String,
        output: Option<PathBuf>,
    },
    /// Pushes the file `source` as an installation with one layer of `media_type`.
    PushInstallation {
        reference: String,
        source: PathBuf,
        media_type: String,
    },
    /// Pushes a bundle, like `push_installation`.
    PushBundle {
        reference: String,
        source: PathBuf,
        media_type: String,
    },
    /// Every tag of a repository.
    ListInstallations { repository: String },
    /// Stores an installation's state document, optionally expiring.
    StoreInstallationState {
        id: String,
        value: Value,
        ttl_seconds: Option<u64>,
    },
    /// The state document (`expired` when its TTL ran out).
    GetInstallationState { id: String },
    /// Deletes the state; answers whether there was one.
    DeleteInstallationState { id: String },
    /// Stores a bundle's metadata document, optionally expiring.
    StoreBundleMetadata {
        reference: String,
        value: Value,
        ttl_seconds: Option<u64>,
    },
    /// The metadata document.
    GetBundleMetadata { reference: String },
    /// Deletes the metadata; answers whether there was some.
    DeleteBundleMetadata { reference: String },
    /// Deletes expired state and metadata; answers how many.
    PurgeExpired,
    /// Appends an event to the log.
    Publish {
        #[serde(rename = "type")]
        event_type: String,
        data: Value,
    },
    /// Events after `cursor` (a sequence number), at most `limit`.
    EventsSince { cursor: u64, limit: usize },
    /// Saves an installation record (the Go adapter's `Installation` JSON).
    SaveInstallation { installation: Installation },
    /// One installation record.
    GetInstallation { namespace: String, name: String },
    /// The installation records of a namespace.
    ListInstallationRecords { namespace: String },
    /// Deletes an installation record.
    DeleteInstallation { namespace: String, name: String },
}

/// An open adapter, shared between threads.
#[derive(Debug, Clone)]
pub(crate) struct Adapter(Arc<PorterAdapter>);

impl Adapter {
    /// Opens the adapter on a configuration as [`crate::engine::settings`] reads it.
    pub(crate) fn open(
        config_json: Option<&str>,
        options_json: Option<&str>,
    ) -> Result<Adapter, Failure> {
        let settings = crate::engine::settings(config_json)?;
        let open: OpenOptions = crate::options::parse(options_json, "adapter")?;
        let mut options = AdapterOptions {
            store_path: open.store_path,
            ..AdapterOptions::default()
        };
        if let Some(plugin_id) = open.plugin_id {
            options.plugin_id = plugin_id;
        }
        if let Some(ms) = open.busy_timeout_ms {
            options.busy_timeout = Duration::from_millis(ms);
        }
        Ok(Adapter(Arc::new(PorterAdapter::open(settings, options)?)))
    }

    /// Parses and runs one request; the answer is JSON.
    pub(crate) async fn call(&self, request_json: &str) -> Result<String, Failure> {
        install_crypto_provider();
        let request: AdapterRequest = serde_json::from_str(request_json).map_err(|e| {
            Failure::new(
                porter_status::PORTER_INVALID_INPUT,
                format!("invalid adapter request: {e}"),
            )
        })?;
        let answer = self.run(request).await?;
        Ok(porter_core::artifact::go_json(&answer, false))
    }

    async fn run(&self, request: AdapterRequest) -> Result<Value, Failure> {
        use AdapterRequest::*;
        let a = &self.0;
        let ttl = |seconds: Option<u64>| seconds.map(Duration::from_secs);
        Ok(match request {
            PullInstallation { reference, output } => {
                pull_to(a, &reference, output.as_deref(), false).await?
            }
            PullBundle { reference, output } => {
                pull_to(a, &reference, output.as_deref(), true).await?
            }
            PushInstallation {
                reference,
                source,
                media_type,
            } => {
                let file = open_source(&source).await?;
                to_json(a.push_installation(&reference, file, &media_type).await?)
            }
            PushBundle {
                reference,
                source,
                media_type,
            } => {
                let file = open_source(&source).await?;
                to_json(a.push_bundle(&reference, file, &media_type).await?)
            }
            ListInstallations { repository } => json!(a.list_installations(&repository).await?),
            StoreInstallationState {
                id,
                value,
                ttl_seconds,
            } => to_json(
                a.store_installation_state(&id, value, ttl(ttl_seconds))
                    .await?,
            ),
            GetInstallationState { id } => a.get_installation_state(&id).await?,
            DeleteInstallationState { id } => json!(a.delete_installation_state(&id).await?),
            StoreBundleMetadata {
                reference,
                value,
                ttl_seconds,
            } => to_json(
                a.store_bundle_metadata(&reference, value, ttl(ttl_seconds))
                    .await?,
            ),
            GetBundleMetadata { reference } => a.get_bundle_metadata(&reference).await?,
            DeleteBundleMetadata { reference } => {
                json!(a.delete_bundle_metadata(&reference).await?)
            }
            PurgeExpired => json!(a.purge_expired().await?),
            Publish { event_type, data } => to_json(a.publish(&event_type, data).await?),
            EventsSince { cursor, limit } => to_json(a.events_since(cursor, limit).await?),
            SaveInstallation { installation } => {
                to_json(a.installations().save(installation).await?)
            }
            GetInstallation { namespace, name } => {
                to_json(a.installations().get(&namespace, &name).await?)
            }
            ListInstallationRecords { namespace } => {
                to_json(a.installations().list(&namespace).await?)
            }
            DeleteInstallation { namespace, name } => {
                a.installations().delete(&namespace, &name).await?;
                Value::Null
            }
        })
    }
}

fn to_json(value: impl serde::Serialize) -> Value {
    // The adapter's types are plain data with string keys.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

async fn open_source(source: &Path) -> Result<tokio::fs::File, Failure> {
    tokio::fs::File::open(source)
        .await
        .map_err(|e| Failure::from(porter_core::Error::io("open", source, e)))
}

/// Pulls, writing the primary layer to `output` through a temp file beside it that becomes
/// `output` only when the pull succeeded (a failed or cancelled pull leaves no partial file).
async fn pull_to(
    adapter: &PorterAdapter,
    reference: &str,
    output: Option<&Path>,
    bundle: bool,
) -> Result<Value, Failure> {
    let pull = |writer| async move {
        if bundle {
            adapter.pull_bundle(reference, writer).await
        } else {
            adapter.pull_installation(reference, writer).await
        }
    };
    let Some(output) = output else {
        return Ok(to_json(pull(None).await?));
    };
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".porter-ffi-")
        .tempfile_in(&dir)
        .map_err(|e| porter_core::Error::io("create a temp file in", &dir, e))?;
    let (file, path) = temp.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let result = pull(Some(&mut file)).await?;
    drop(file);
    path.persist(output)
        .map_err(|e| porter_core::Error::io("rename into", output, e.error))?;
    Ok(to_json(result))
}

impl From<porter_adapter::Error> for Failure {
    fn from(err: porter_adapter::Error) -> Self {
        use porter_status::*;
        let status = match err.code() {
            "invalid_input" => PORTER_INVALID_INPUT,
            "not_found" => PORTER_NOT_FOUND,
            "expired" => PORTER_EXPIRED,
            "unauthorized" => PORTER_UNAUTHORIZED,
            "network" => PORTER_NETWORK,
            "store" => PORTER_STORE,
            "io" => PORTER_IO,
            // `engine` and codes added later: the engine's own classification when there is one.
            _ => err
                .core()
                .map_or(PORTER_OTHER, |core| status_of_kind(core.kind())),
        };
        Failure::new(status, err.to_string())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_parsed_strictly() {
        let request: AdapterRequest =
            serde_json::from_str(r#"{"op":"events_since","cursor":3,"limit":10}"#).unwrap();
        assert!(matches!(
            request,
            AdapterRequest::EventsSince {
                cursor: 3,
                limit: 10
            }
        ));
        let request: AdapterRequest =
            serde_json::from_str(r#"{"op":"publish","type":"x.y","data":{"a":1}}"#).unwrap();
        assert!(matches!(request, AdapterRequest::Publish { .. }));
        for bad in [
            r#"{"op":"no_such_op"}"#,
            r#"{"op":"get_installation_state","id":"a","extra":1}"#,
            r#"{"op":"get_installation_state"}"#,
            r#"{"id":"a"}"#,
        ] {
            assert!(
                serde_json::from_str::<AdapterRequest>(bad).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn adapter_errors_keep_their_code_as_the_status_name() {
        let err = porter_adapter::Error::NotFound {
            what: "installation state".into(),
            key: "x".into(),
            source: None,
        };
        let failure = Failure::from(err);
        assert_eq!(failure.status.name(), "not_found");
    }
}
