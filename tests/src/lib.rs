//! Test support for ds-porter's end-to-end suites.
//!
//! The suites run the real `ds-porter` binary against the real CNCF distribution registry
//! (`docker-registry` 2.8), so what they check is what DS and people see. This crate gives them:
//!
//! - [`Registry`]: a registry on `127.0.0.1:<free port>` with its own storage and log, killed on
//!   drop, whose access log is parsed into [`BlobGet`] / [`ManifestGet`] records so a test can
//!   assert exactly which bytes a pull transferred;
//! - fixture publishing with `oci-client` ([`publish_single`], [`publish_index`],
//!   [`publish_docker_list`], [`publish_large`], and the conformance set [`publish_standard`]),
//!   written as raw JSON so the bytes on the registry are exactly what ds-porter's push writes
//!   (`spec/ds-contract.md` §7.11) and the digests are the same in every run;
//! - [`Registry::start_tls`] (HTTPS with a leaf certificate signed by a throw-away [`TestCa`]) and
//!   [`Registry::start_pull_through`] (a pull-through cache of another registry, for mirrors);
//! - [`FaultProxy`]: an HTTP proxy on loopback that injects [`Fault`]s (statuses with
//!   `Retry-After`, dropped connections, corrupted bytes, resets) and records every request;
//! - [`FakeRegistry`]: a programmable registry that lies (wrong digests and sizes, endless
//!   bodies, redirects to other hosts, garbage challenges) and records every request's headers;
//! - [`TlsFront`]: HTTPS on loopback in front of a plain-HTTP server (a [`FakeRegistry`] served
//!   over TLS);
//! - [`go_host`]: `ds-porter` launched through the go-plugin host exactly as DS launches it;
//! - [`signing`]: the cosign CLI and the Go DS-signature program;
//! - [`ds_porter_bin`]: where the binary under test is.
#![allow(clippy::unwrap_used)]

mod access_log;
mod binary;
pub mod cli;
mod fake_registry;
mod fault_proxy;
pub mod go_host;
mod http;
pub mod ingest;
mod layer;
mod loopback;
mod publish;
mod registry;
pub mod signing;
pub mod skopeo;
mod standard;
pub mod tag_server;
mod tls;
mod tls_front;

pub use access_log::{AccessLogEntry, BlobGet, ManifestGet};
pub use binary::ds_porter_bin;
pub use fake_registry::{Body, FakeRegistry, Reply, SeenRequest};
pub use fault_proxy::{Fault, FaultProxy, ProxiedRequest};
pub use http::RawResponse;
pub use layer::{
    ARCHIVE_MEDIA_TYPE, BINARY_MEDIA_TYPE, DOCKER_LAYER_MEDIA_TYPE, LayerSpec,
    PLUGIN_BINARY_MEDIA_TYPE, TarEntry,
};
pub use publish::{
    ARTIFACT_INDEX_TYPE, Blob, CREATED, DOCKER_CONFIG_MEDIA_TYPE, DOCKER_LIST_MEDIA_TYPE,
    DOCKER_MANIFEST_MEDIA_TYPE, EMPTY_CONFIG_DIGEST, EMPTY_CONFIG_MEDIA_TYPE, OCI_INDEX_MEDIA_TYPE,
    OCI_MANIFEST_MEDIA_TYPE, Published, PublishedIndex, PublishedPlatform, block_on, cache_id,
    client, install_crypto_provider, publish_docker_list, publish_index, publish_large,
    publish_single, registry_auth, sha256_digest,
};
pub use registry::{LogMark, Registry};
pub use standard::{StandardFixtures, publish_standard};
pub use tls::TestCa;
pub use tls_front::TlsFront;
