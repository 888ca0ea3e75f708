//! Shared set-up of the adapter's store suites: settings on a temp cache, no registry.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use porter_adapter::AdapterOptions;
use porter_core::config::{HostConfig, Settings};

/// Settings whose cache lives under `dir`, with nothing from the environment.
pub fn settings(dir: &Path) -> Settings {
    let json = serde_json::json!({
        "Cache": {"Dir": dir.join("cache")},
        "Registry": {"Default": ""},
        "Auth": {"DockerConfig": ""},
    });
    HostConfig::from_json(json.to_string().as_bytes())
        .unwrap()
        .to_settings(&|_| None, dir)
        .unwrap()
}

/// Options for a store at `path` with quick event polling.
pub fn options(path: &Path) -> AdapterOptions {
    AdapterOptions {
        store_path: Some(path.to_path_buf()),
        event_poll_interval: Duration::from_millis(25),
        ..AdapterOptions::default()
    }
}
