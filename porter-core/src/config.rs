//! The effective configuration of the engine.
//!
//! DS hands its configuration to plugins as the JSON encoding of its Go `types.Config` (Go field
//! names, any case, `null` anywhere, durations in nanoseconds); people write DS's YAML config file;
//! CI sets `DS_*` environment variables. All three end up in one [`Settings`] value.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret value; call only where it is sent to a registry.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"<redacted>\"" })
    }
}

/// How a credential authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSecret {
    /// Username and password (HTTP basic).
    Password(Secret),
    /// A token; sent as the basic-auth password with the username (or `token` when empty).
    Token(Secret),
    /// No secret: the registry is listed without credentials (anonymous).
    None,
}

/// One entry of the credentials table, keyed by registry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Normalised registry host (`ghcr.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// User name; may be empty.
    pub username: String,
    /// The secret.
    pub secret: CredentialSecret,
}

/// Proxy settings (`Proxy.*`, falling back to `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for plain-HTTP registries.
    pub http: Option<String>,
    /// Proxy for HTTPS registries.
    pub https: Option<String>,
    /// Comma-separated hosts that bypass the proxy.
    pub no_proxy: Option<String>,
}

/// Logging settings after DS's normalisation rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingSettings {
    /// `trace|debug|info|warn|error` (invalid values become `info`).
    pub level: String,
    /// `text` or `json`.
    pub format: String,
    /// `""`/`stderr`, `stdout`, or a file path.
    pub output: String,
    /// Human warnings produced while normalising (unknown level/format).
    pub warnings: Vec<String>,
}

impl Default for LoggingSettings {
    fn default() -> Self {
        LoggingSettings {
            level: "info".into(),
            format: "text".into(),
            output: String::new(),
            warnings: Vec::new(),
        }
    }
}

/// Everything the engine needs to know, resolved from DS config, YAML, env and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The porter cache root: `<Cache.Dir>/porter` (or `$HOME/.ds/porter-cache` when blank).
    pub cache_dir: PathBuf,
    /// `Registry.Default` as configured (may carry a namespace: `ghcr.io/delivery-station`).
    pub default_registry: String,
    /// `Registry.Mirrors`, in order.
    pub mirrors: Vec<String>,
    /// Registries (normalised hosts) that may be spoken to over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Every registry may be spoken to over plain HTTP (`DS_REGISTRY_INSECURE=true`).
    pub insecure_all: bool,
    /// Credentials table, first entry per host wins.
    pub credentials: Vec<Credential>,
    /// Docker `config.json` consulted for hosts not in `credentials`.
    pub docker_config: Option<PathBuf>,
    /// Proxy configuration.
    pub proxy: ProxySettings,
    /// `Cache.TTL`, when set.
    pub cache_ttl: Option<Duration>,
    /// `Cache.MaxSize` in bytes, when set.
    pub cache_max_size: Option<u64>,
    /// Logging configuration.
    pub logging: LoggingSettings,
}
