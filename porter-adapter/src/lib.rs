//! `porter-adapter`: a higher-level DS client for Porter installations and bundles.
//!
//! It mirrors the Go `internal/adapter` and `internal/storage` packages with their semantics
//! fixed:
//!
//! - **Artifacts** go through porter-core: [`PorterAdapter::pull_installation`] pulls into the
//!   shared cache and can hand the primary layer's bytes to a writer (Go wrote the manifest);
//!   [`PorterAdapter::push_installation`] pushes a real OCI artifact — a manifest with the empty
//!   config and one layer of the given media type, tagged — where Go pushed a bare blob;
//!   [`PorterAdapter::list_installations`] lists every tag, following `Link` pagination.
//! - **State and bundle metadata** are JSON documents with an optional TTL. An expired entry
//!   reads as [`Error::Expired`], not [`Error::NotFound`]; numbers come back exactly as stored.
//! - **Events** (`installation.pulled`, `bundle.pushed`, … and the caller's own) are appended
//!   to a durable log: [`PorterAdapter::subscribe`] streams them live, and
//!   [`PorterAdapter::events_since`] reads them from any process.
//! - **Installations** are stored by validated namespace and name; credentials never appear in
//!   `Debug` output or logs.
//!
//! Everything but the artifacts lives in one SQLite file (default
//! `<Cache.Dir>/porter-adapter/store.db`) in WAL mode with a busy timeout, versioned schema
//! migrations and a transaction around every read-modify-write, so several processes can use
//! it at once without losing an update, and a killed process never leaves it unreadable.
//! [`BlockingAdapter`] offers the same operations to callers without an async runtime.
//!
//! ```no_run
//! # async fn demo() -> porter_adapter::Result<()> {
//! use std::time::Duration;
//! use porter_adapter::{AdapterOptions, PorterAdapter};
//!
//! let settings = porter_core::config::load_standalone(None).expect("configuration");
//! let adapter = PorterAdapter::open(settings, AdapterOptions::default())?;
//!
//! let pushed = adapter
//!     .push_installation("127.0.0.1:5000/demo/install:v1", &b"{\"name\":\"demo\"}"[..],
//!         "application/vnd.ds.installation.v1+json")
//!     .await?;
//! let mut bytes = Vec::new();
//! adapter.pull_installation("127.0.0.1:5000/demo/install:v1", Some(&mut bytes)).await?;
//! assert_eq!(bytes, b"{\"name\":\"demo\"}");
//!
//! adapter
//!     .store_installation_state("demo", serde_json::json!({"step": 3}), Some(Duration::from_secs(3600)))
//!     .await?;
//! for event in adapter.events_since(0, 100).await? {
//!     println!("{} {} {}", event.sequence, event.event_type, event.data);
//! }
//! # let _ = pushed;
//! # Ok(())
//! # }
//! ```

mod adapter;
mod blocking;
mod error;
pub mod events;
pub mod installations;
pub mod state;
mod store;

pub use adapter::{AdapterOptions, Installations, PorterAdapter, default_store_path};
pub use blocking::BlockingAdapter;
pub use error::{Error, ErrorKind, Result};
pub use events::{Event, Subscription};
pub use installations::{Credentials, Installation};
pub use state::StateEntry;
pub use store::migrations::SCHEMA_VERSION;
