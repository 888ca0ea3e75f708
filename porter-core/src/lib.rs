//! `porter-core`: the artifact engine behind `ds-porter`.
//!
//! It pulls OCI artifacts (mostly multi-arch plugin binaries behind an image index) into a shared,
//! content-addressed cache that is itself a valid OCI image layout, exports the requested
//! platforms to files or directories, and lists what is cached. It knows nothing about gRPC, DS
//! wire types, command lines or progress bars: front ends drive it through [`Porter`] and observe
//! it through [`progress::Progress`].

pub mod artifact;
pub mod cache;
pub mod config;
mod copy;
pub mod destination;
pub mod digest;
pub mod display;
mod engine;
pub mod error;
pub mod export;
pub mod inspect;
mod leftovers;
pub mod manifest;
pub mod manifest_file;
pub mod platform;
pub mod progress;
mod publish;
mod pull;
mod push;
pub mod push_layer;
pub mod reference;
mod registry;
pub mod signature;
pub mod tags;
mod yaml;

pub use artifact::{ArtifactResult, Finalizer, PluginInfo};
pub use config::RetryPolicy;
pub use copy::{CopyOutcome, CopyRequest};
pub use engine::{Origin, Porter, PullOutcome, PullRequest};
pub use error::{Error, ErrorKind, Result};
pub use inspect::{InspectRequest, Inspection};
pub use manifest::PlatformRequest;
pub use push::{
    PlannedLayer, PlannedManifest, PushPlan, PushRequest, PushSource, parse_annotation,
    parse_media_type,
};
pub use registry::install_crypto_provider;
