//! The effective configuration of the engine.
//!
//! DS hands its configuration to plugins as the JSON encoding of its Go `types.Config` (Go field
//! names, any case, `null` anywhere, durations in nanoseconds); people write DS's YAML config file;
//! CI sets `DS_*` environment variables. All three are read into one [`HostConfig`] model and end
//! up in one [`Settings`] value; [`Settings::credential_for`] adds docker's `config.json` and
//! credential helpers.

mod decode;
mod docker;
mod expand;
mod host;
mod known;
mod porter;
mod retry;
mod signature;
mod units;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use docker::docker_credential;
pub use expand::EnvLookup;
pub use host::{
    AuthConfig, CacheConfig, CredentialConfig, HostConfig, LoggingConfig, ProxyConfig,
    RegistryConfig, SignatureConfig,
};
pub use known::check_host_json_keys;
pub use porter::{MAX_RETRIES, MIN_CHUNK_SIZE, with_retries};
pub use retry::RetryPolicy;
pub use signature::{Mode, SignaturePolicy, SignatureSettings};
pub use units::{parse_duration, parse_size};

use crate::error::Result;
use crate::export::ExportLimits;

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
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
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
///
/// `Debug` hides user info (`http://user:pass@proxy`) in the URLs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for plain-HTTP registries.
    pub http: Option<String>,
    /// Proxy for HTTPS registries.
    pub https: Option<String>,
    /// Comma-separated hosts that bypass the proxy.
    pub no_proxy: Option<String>,
}

impl fmt::Debug for ProxySettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxySettings")
            .field("http", &redact_userinfo(self.http.as_deref()))
            .field("https", &redact_userinfo(self.https.as_deref()))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

/// A URL with any user info replaced by `<redacted>`: the one way a configured URL (a proxy, a
/// mirror) is shown, in `Debug` output, logs and errors.
pub fn redact_userinfo(url: Option<&str>) -> Option<String> {
    let url = url?;
    let start = url.find("://").map_or(0, |index| index + 3);
    let end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |index| start + index);
    Some(match url[start..end].rfind('@') {
        Some(at) => format!("{}<redacted>{}", &url[..start], &url[start + at..]),
        None => url.to_owned(),
    })
}

/// Logging settings after DS's normalisation rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingSettings {
    /// `trace|debug|info|warn|error|off` (invalid values become `info`).
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
    /// CA bundles trusted for every registry, besides the system roots
    /// (`settings.porter.ca_file`).
    pub ca_files: Vec<PathBuf>,
    /// `certs.d`-style directories: `<dir>/<host[:port]>/*.crt` are trusted for that registry
    /// (`settings.porter.certs_dir`; default `~/.config/ds/certs.d`, `/etc/containers/certs.d`,
    /// `/etc/docker/certs.d`).
    pub certs_dirs: Vec<PathBuf>,
    /// Never touch the network; serve only what is cached (`--offline`, `DS_OFFLINE=1`,
    /// `settings.porter.offline`).
    pub offline: bool,
    /// Retries and timeouts of registry requests (`settings.porter.retries`,
    /// `settings.porter.request_timeout`).
    pub retry: RetryPolicy,
    /// Refuse redirects to link-local addresses, and to loopback or private addresses the
    /// registry is not on (`settings.porter.block_private_redirects`); `None` leaves it to the
    /// front end (off for the CLI and the plugin, on for porter-ffi and porter-adapter).
    pub block_private_redirects: Option<bool>,
    /// Caps on what one export writes (`settings.porter.export_max_bytes`,
    /// `settings.porter.export_max_entries`).
    pub export_limits: ExportLimits,
    /// Signature verification on pull: DS's `Plugins.Signature` for DS plugins,
    /// `settings.porter.signature` for everything else.
    pub signature: SignatureSettings,
    /// The RSA key pushes sign layers with (`settings.porter.signing_key`).
    pub signing_key: Option<PathBuf>,
    /// Uploads go in chunks of this many bytes (`settings.porter.chunk_size`); `None`: one
    /// request per blob, falling back to chunks when the registry refuses a large body.
    pub chunk_size: Option<u64>,
}

/// Log levels hclog (and so DS's plugin logger) accepts.
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

impl LoggingSettings {
    /// Applies DS's `NormalizeLoggingConfig` (ds-contract §6.6): level and format lower-cased and
    /// trimmed, an empty level replaced by `fallback_level` and then `info`, unknown values
    /// replaced by `info`/`text` with a warning each, output trimmed.
    pub fn normalize(level: &str, format: &str, output: &str, fallback_level: &str) -> Self {
        let mut warnings = Vec::new();
        let given_level = if level.trim().is_empty() {
            fallback_level.trim()
        } else {
            level.trim()
        };
        let mut level = given_level.to_lowercase();
        if level.is_empty() {
            level = "info".into();
        } else if !LOG_LEVELS.contains(&level.as_str()) {
            warnings.push(format!("Received unknown log level from DS: {given_level}"));
            level = "info".into();
        }
        let mut format_name = format.trim().to_lowercase();
        if format_name.is_empty() {
            format_name = "text".into();
        } else if format_name != "text" && format_name != "json" {
            warnings.push(format!(
                "Received unknown log format from DS: {}",
                format.trim()
            ));
            format_name = "text".into();
        }
        LoggingSettings {
            level,
            format: format_name,
            output: output.trim().to_owned(),
            warnings,
        }
    }
}

impl Settings {
    /// Credentials for `host` (any spelling `normalize_registry_host` accepts): the first entry of
    /// the credentials table for that registry if it carries a secret, else docker's
    /// `config.json` (and its credential helpers). Docker Hub's aliases are one registry.
    ///
    /// This reads files and may run a helper process (stopped after the attempt timeout): call it
    /// from blocking context.
    pub fn credential_for(&self, host: &str) -> Result<Option<Credential>> {
        let host = normalize_registry_host(host);
        let listed = self.credentials.iter().find(|entry| {
            same_registry(&entry.registry, &host) && entry.secret != CredentialSecret::None
        });
        match (listed, &self.docker_config) {
            (Some(entry), _) => Ok(Some(entry.clone())),
            (None, Some(path)) => docker_credential(path, &host, self.retry.attempt_timeout),
            (None, None) => Ok(None),
        }
    }
}

/// Reduces a registry URL, host or reference to its host, as porter's `normalizeRegistryHost`
/// does: trim, strip `https://` then `http://`, keep the text before the first `/`. The host is
/// lower-cased (host names are case-insensitive).
pub fn normalize_registry_host(registry: &str) -> String {
    let mut host = registry.trim();
    for scheme in ["https://", "http://"] {
        if host.len() >= scheme.len() && host[..scheme.len()].eq_ignore_ascii_case(scheme) {
            host = &host[scheme.len()..];
        }
    }
    host.split('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// Whether two registry spellings name the same registry; `docker.io`, `index.docker.io`,
/// `registry-1.docker.io` and `https://index.docker.io/v1/` are all Docker Hub.
pub fn same_registry(a: &str, b: &str) -> bool {
    fn canonical(host: String) -> String {
        match host.as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".into(),
            _ => host,
        }
    }
    canonical(normalize_registry_host(a)) == canonical(normalize_registry_host(b))
}

/// The user's home directory: `$HOME` (on Windows also `%USERPROFILE%`), `/` when unset.
pub fn home_dir() -> PathBuf {
    let from = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    from("HOME")
        .or_else(|| {
            if cfg!(windows) {
                from("USERPROFILE")
            } else {
                None
            }
        })
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// Settings for the standalone CLI, layered as DS layers them: defaults <
/// `~/.config/ds/config.yaml` (when present) < `explicit` (`--config`, must exist) < `DS_*`
/// environment variables.
///
/// Unlike DS, `./config.yaml` is not read: a tool run from an arbitrary directory should not
/// change behaviour because of an unrelated file there.
pub fn load_standalone(explicit: Option<&Path>) -> Result<Settings> {
    let env = |name: &str| std::env::var(name).ok();
    load_layered(explicit, &env, &home_dir())
}

/// [`load_standalone`] with the environment and home directory passed in.
fn load_layered(explicit: Option<&Path>, env: EnvLookup<'_>, home: &Path) -> Result<Settings> {
    let mut config = HostConfig::defaults(home);
    let user_file = home.join(".config").join("ds").join("config.yaml");
    if let Some(user_config) = HostConfig::from_yaml_file_if_exists(&user_file)? {
        config.merge(user_config);
    }
    if let Some(path) = explicit {
        config.merge(HostConfig::from_yaml_file(path)?);
    }
    config.apply_env(env)?;
    config.to_settings(env, home)
}

/// Settings from the host-config JSON DS sends over the broker. `DS_*` variables are not applied
/// and values are not expanded again (the host did both); the process environment only supplies
/// the `HTTP(S)_PROXY`/`NO_PROXY` fallbacks.
pub fn settings_from_host_json(bytes: &[u8]) -> Result<Settings> {
    let env = |name: &str| std::env::var(name).ok();
    HostConfig::from_json(bytes)?.resolve(&env, &home_dir(), false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn user_info_is_redacted_from_urls() {
        for (url, expected) in [
            ("http://u:p@proxy:3128", "http://<redacted>@proxy:3128"),
            ("u:p@proxy:3128/x@y", "<redacted>@proxy:3128/x@y"),
            ("http://proxy:3128/a@b", "http://proxy:3128/a@b"),
            ("http://a@b@proxy", "http://<redacted>@proxy"),
        ] {
            assert_eq!(
                redact_userinfo(Some(url)).as_deref(),
                Some(expected),
                "{url}"
            );
        }
        assert_eq!(redact_userinfo(None), None);
    }

    #[test]
    fn registry_hosts_are_normalised_like_porter() {
        for (input, expected) in [
            ("ghcr.io", "ghcr.io"),
            (" https://ghcr.io/ ", "ghcr.io"),
            ("http://127.0.0.1:5000", "127.0.0.1:5000"),
            ("HTTPS://Registry.Example/v2/", "registry.example"),
            ("ghcr.io/delivery-station/porter", "ghcr.io"),
            ("https://http://x.io", "x.io"),
            ("", ""),
            ("/path", ""),
        ] {
            assert_eq!(normalize_registry_host(input), expected, "{input}");
        }
    }

    #[test]
    fn docker_hub_aliases_are_one_registry() {
        let names = [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "https://index.docker.io/v1/",
        ];
        for a in names {
            for b in names {
                assert!(same_registry(a, b), "{a} {b}");
            }
        }
        assert!(same_registry("https://ghcr.io/", "GHCR.io"));
        assert!(!same_registry("docker.io", "ghcr.io"));
    }

    #[test]
    fn case_38_invalid_level_and_format_fall_back_with_warnings() {
        let logging = LoggingSettings::normalize("LOUD", "xml", " /tmp/logs/p.log ", "");
        assert_eq!(logging.level, "info");
        assert_eq!(logging.format, "text");
        assert_eq!(logging.output, "/tmp/logs/p.log");
        assert_eq!(
            logging.warnings,
            [
                "Received unknown log level from DS: LOUD",
                "Received unknown log format from DS: xml"
            ]
        );
    }

    #[test]
    fn case_39_an_empty_level_takes_the_fallback() {
        let logging = LoggingSettings::normalize("", "json", "", "debug");
        assert_eq!(
            (logging.level.as_str(), logging.format.as_str()),
            ("debug", "json")
        );
        assert!(logging.warnings.is_empty());
    }

    #[test]
    fn case_40_all_empty_is_info_text_stderr() {
        assert_eq!(
            LoggingSettings::normalize("", "", "", ""),
            LoggingSettings::default()
        );
    }

    #[test]
    fn hclog_levels_are_accepted_and_others_are_not() {
        for level in ["trace", "DEBUG", " Info ", "warn", "error", "off"] {
            let logging = LoggingSettings::normalize(level, "JSON", "stdout", "");
            assert_eq!(logging.level, level.trim().to_lowercase());
            assert_eq!(logging.format, "json");
            assert!(logging.warnings.is_empty(), "{level}");
        }
        let logging = LoggingSettings::normalize("warning", "text", "", "");
        assert_eq!(logging.level, "info");
        assert_eq!(
            logging.warnings,
            ["Received unknown log level from DS: warning"]
        );
        let logging = LoggingSettings::normalize(" ", "", "", "bogus");
        assert_eq!(
            logging.warnings,
            ["Received unknown log level from DS: bogus"]
        );
    }

    #[test]
    fn debug_output_never_contains_secrets() {
        let json = r#"{"Auth":{"Credentials":[
            {"Registry":"a.io","Username":"alice","Password":"hunter2-password"},
            {"Registry":"b.io","Username":"bob","Token":"hunter2-token"}]},
            "Proxy":{"HTTPSProxy":"http://proxy-user:hunter2-proxy@proxy:3128/","HTTPProxy":"u:hunter2@p"},
            "Settings":{"porter":{"apiKey":"hunter2-setting"}}}"#;
        let config = HostConfig::from_json(json.as_bytes()).unwrap();
        let settings = config.to_settings(&|_| None, Path::new("/home/u")).unwrap();
        for text in [
            format!("{config:?}"),
            format!("{settings:?}"),
            format!("{settings:#?}"),
        ] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(
                text.contains("alice") && text.contains("<redacted>"),
                "{text}"
            );
        }
    }

    #[test]
    fn credentials_come_from_the_table_then_the_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let docker_config = dir.path().join("config.json");
        std::fs::write(
            &docker_config,
            r#"{"auths":{"ghcr.io":{"username":"docker","password":"dp"},
            "https://index.docker.io/v1/":{"username":"hub","password":"hp"}}}"#,
        )
        .unwrap();
        let json = format!(
            r#"{{"Registry":{{"Default":"ghcr.io/delivery-station"}},
            "Auth":{{"DockerConfig":{},"Credentials":[{{"Registry":"docker.io","Username":"u","Token":"t"}}]}}}}"#,
            serde_json::to_string(&docker_config).unwrap()
        );
        let settings = settings_for(&json);
        let hub = settings
            .credential_for("https://index.docker.io/v1/")
            .unwrap()
            .unwrap();
        assert_eq!(hub.username, "u");
        assert_eq!(hub.secret, CredentialSecret::Token(Secret::new("t")));
        // `ghcr.io` is listed without a secret (the default registry): docker's login is used.
        let ghcr = settings.credential_for("ghcr.io").unwrap().unwrap();
        assert_eq!(
            (ghcr.registry.as_str(), ghcr.username.as_str()),
            ("ghcr.io", "docker")
        );
        assert_eq!(settings.credential_for("quay.io").unwrap(), None);

        let without_docker = settings_for(r#"{"Auth":{"DockerConfig":""}}"#);
        assert_eq!(without_docker.docker_config, None);
        assert_eq!(without_docker.credential_for("ghcr.io").unwrap(), None);
    }

    fn settings_for(json: &str) -> Settings {
        HostConfig::from_json(json.as_bytes())
            .unwrap()
            .to_settings(&|_| None, Path::new("/home/u"))
            .unwrap()
    }

    #[test]
    fn standalone_layers_defaults_user_file_explicit_file_and_env() {
        let home = tempfile::tempdir().unwrap();
        let ds_dir = home.path().join(".config").join("ds");
        std::fs::create_dir_all(&ds_dir).unwrap();
        std::fs::write(
            ds_dir.join("config.yaml"),
            "registry: {default: user.io}\ncache: {ttl: 1h, max_size: 1GB}\nlogging: {level: debug}\n",
        )
        .unwrap();
        let explicit = home.path().join("explicit.yaml");
        std::fs::write(&explicit, "cache: {ttl: 2h}\nlogging: {format: json}\n").unwrap();
        let env = env_of(&[
            ("DS_LOGGING_LEVEL", "error"),
            ("DS_CACHE_DIR", "~/env-cache"),
        ]);

        let settings = load_layered(Some(&explicit), &env, home.path()).unwrap();
        assert_eq!(settings.default_registry, "user.io");
        assert_eq!(settings.cache_ttl, Some(Duration::from_secs(7200)));
        assert_eq!(settings.cache_max_size, Some(1 << 30));
        assert_eq!(settings.logging.level, "error");
        assert_eq!(settings.logging.format, "json");
        assert_eq!(settings.logging.output, "stdout");
        assert_eq!(
            settings.cache_dir,
            home.path().join("env-cache").join("porter")
        );
        assert_eq!(
            settings.docker_config,
            Some(home.path().join(".docker").join("config.json"))
        );

        let without_files = load_layered(None, &|_| None, &home.path().join("elsewhere")).unwrap();
        assert_eq!(without_files.default_registry, "ghcr.io/delivery-station");
    }

    #[test]
    fn a_missing_explicit_config_is_an_error_naming_it() {
        let home = tempfile::tempdir().unwrap();
        let missing = home.path().join("nope.yaml");
        let err = load_layered(Some(&missing), &|_| None, home.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("config file {} does not exist", missing.display())
        );
    }

    #[test]
    fn host_json_settings_keep_host_values_verbatim() {
        let settings = settings_from_host_json(
            br#"{"Cache":{"Dir":"/c"},"Auth":{"Credentials":[{"Registry":"r.io","Username":"u","Password":"p$HOME"}]}}"#,
        )
        .unwrap();
        assert_eq!(settings.cache_dir, Path::new("/c/porter"));
        assert_eq!(
            settings.credentials[0].secret,
            CredentialSecret::Password(Secret::new("p$HOME"))
        );
    }
}
