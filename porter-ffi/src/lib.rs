//! `porter-ffi`: ds-porter's engine for programs not written in Rust.
//!
//! Go tooling links the C ABI ([`capi`], header `include/porter.h`, made by cbindgen) through cgo
//! and calls pull, export, inspect, tags, copy, list, push, the cache commands and the
//! adapter's operations in-process instead of launching a plugin process. Python, Kotlin and
//! Swift use the uniffi bindings ([`bindings`]) of the same operations.
//!
//! Both surfaces are thin: `engine` turns their options into `porter-core` requests, `adapter`
//! parses adapter requests for `porter-adapter`, and both run on the one tokio runtime this
//! library owns (`runtime`); [`status`] maps engine and adapter errors to the small, stable
//! error surface both share. The conventions every C function follows are
//! in this crate's `README.md` ("API conventions").

// The workspace denies `unsafe_code`; only the C ABI needs it, and it allows it for itself.
#![deny(unsafe_code)]

mod adapter;
pub mod bindings;
pub mod capi;
mod engine;
mod options;
mod runtime;
pub mod status;

pub use engine::TagList;
pub use options::{
    CopyOptions, ExportOptions, InspectOptions, PruneOptions, PullOptions, PushOptions,
    TagsOptions, VerifyOptions,
};

uniffi::setup_scaffolding!("porter");
