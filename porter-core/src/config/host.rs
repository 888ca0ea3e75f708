//! DS's configuration (`types.Config`) and how porter derives its [`Settings`] from it.
//!
//! The same model is filled from three places: the host-config JSON DS sends over the broker,
//! DS's YAML config file, and `DS_*` environment variables. Every field is optional so layers
//! can be merged the way DS merges them (defaults < config file < `--config` < environment).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::decode::{Dialect, Node, Obj, check_size, read_file_if_exists};
use super::expand::{EnvLookup, expand_path, expand_vars};
use super::units::{parse_duration, parse_size};
use super::{
    Credential, CredentialSecret, LoggingSettings, ProxySettings, Secret, Settings,
    normalize_registry_host, redact_userinfo, same_registry,
};
use crate::config::{Mode, SignaturePolicy, SignatureSettings};
use crate::error::{Error, Result};

/// Source name used in errors about the host-config JSON.
const HOST_JSON: &str = "host config JSON";

/// DS's configuration, as the host encodes it or as its YAML file and `DS_*` variables state it.
///
/// `None` means "not set by this layer"; [`HostConfig::merge`] lets set fields override.
/// `Debug` shows only the names of the `Settings` sections, which may hold secrets.
#[derive(Clone, Default, PartialEq)]
pub struct HostConfig {
    /// `Registry` / `registry`.
    pub registry: RegistryConfig,
    /// `Auth` / `auth`.
    pub auth: AuthConfig,
    /// `Cache` / `cache`.
    pub cache: CacheConfig,
    /// `Logging` / `logging`.
    pub logging: LoggingConfig,
    /// `Proxy` / `proxy`.
    pub proxy: ProxyConfig,
    /// `Plugins.Signature` / `plugins.signature` (the only part of `Plugins` porter reads).
    pub plugin_signature: SignatureConfig,
    /// `Settings` / `settings`: per-plugin sections of arbitrary JSON, keyed by plugin name.
    pub settings: BTreeMap<String, Map<String, Value>>,
}

/// `Registry{Default,Mirrors,InsecureRegistries}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Default registry, possibly with a namespace (`ghcr.io/delivery-station`).
    pub default: Option<String>,
    /// Mirrors, in order.
    pub mirrors: Option<Vec<String>>,
    /// Registries that may be spoken to over plain HTTP.
    pub insecure_registries: Option<Vec<String>>,
    /// Every registry may be spoken to over plain HTTP (`DS_REGISTRY_INSECURE=true`; not part of
    /// DS's `types.Config`). Once a layer sets it, it stays set.
    pub insecure_all: bool,
}

/// `Auth{DockerConfig,Credentials}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Path of a docker `config.json`.
    pub docker_config: Option<PathBuf>,
    /// Explicit credentials, in order.
    pub credentials: Option<Vec<CredentialConfig>>,
}

/// One `Auth.Credentials` entry as written (not yet normalised or expanded).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialConfig {
    /// Registry host, URL or reference prefix.
    pub registry: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
    /// Token; preferred over the password when both are set.
    pub token: Secret,
}

/// `Cache{Dir,MaxSize,TTL}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheConfig {
    /// DS cache directory; porter uses its `porter` subdirectory.
    pub dir: Option<PathBuf>,
    /// Maximum cache size in bytes.
    pub max_size: Option<u64>,
    /// How long cached entries stay fresh.
    pub ttl: Option<Duration>,
}

/// `Logging{Level,Format,Output}`, before normalisation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggingConfig {
    /// Level name.
    pub level: Option<String>,
    /// `text` or `json`.
    pub format: Option<String>,
    /// `stdout`, `stderr` or a file path.
    pub output: Option<String>,
}

/// `Plugins.Signature{Mode,PublicKeys,TrustStore,AllowUnsigned}`, before it is resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureConfig {
    /// `disabled`, `permissive` or `strict` (empty means disabled).
    pub mode: Option<String>,
    /// Public key files.
    pub public_keys: Option<Vec<String>>,
    /// A directory of trusted `*.pem`/`*.pub` keys.
    pub trust_store: Option<PathBuf>,
    /// Permissive mode lets unsigned layers through.
    pub allow_unsigned: Option<bool>,
}

/// `Proxy{HTTPProxy,HTTPSProxy,NoProxy}`. `Debug` hides user info in the URLs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Proxy URL for plain-HTTP registries.
    pub http_proxy: Option<String>,
    /// Proxy URL for HTTPS registries.
    pub https_proxy: Option<String>,
    /// Comma-separated hosts that bypass the proxy.
    pub no_proxy: Option<String>,
}

impl fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostConfig")
            .field("registry", &self.registry)
            .field("auth", &self.auth)
            .field("cache", &self.cache)
            .field("logging", &self.logging)
            .field("proxy", &self.proxy)
            .field("plugin_signature", &self.plugin_signature)
            .field("settings", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyConfig")
            .field("http_proxy", &redact_userinfo(self.http_proxy.as_deref()))
            .field("https_proxy", &redact_userinfo(self.https_proxy.as_deref()))
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl HostConfig {
    /// Decodes the host-config JSON DS sends (`json.Marshal(types.Config)`), tolerantly: keys in
    /// any case, unknown keys ignored, `null` anywhere; of `Plugins` only `Signature` is read.
    pub fn from_json(bytes: &[u8]) -> Result<HostConfig> {
        check_size(bytes.len(), HOST_JSON)?;
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|err| config_error(HOST_JSON, err.to_string()))?;
        HostConfig::from_value(&value, Dialect::Json)
            .map_err(|reason| config_error(HOST_JSON, reason))
    }

    /// Decodes DS's YAML config file (snake_case keys, sizes like `10GB`, durations like `7d`).
    /// `source_name` names the file in errors.
    pub fn from_yaml_str(text: &str, source_name: &str) -> Result<HostConfig> {
        let value: Value =
            crate::yaml::from_str(text).map_err(|reason| config_error(source_name, reason))?;
        HostConfig::from_value(&value, Dialect::Yaml)
            .map_err(|reason| config_error(source_name, reason))
    }

    /// Reads and decodes DS's YAML config file; the file must exist.
    pub fn from_yaml_file(path: &Path) -> Result<HostConfig> {
        HostConfig::from_yaml_file_if_exists(path)?.ok_or_else(|| {
            Error::InvalidInput(format!("config file {} does not exist", path.display()))
        })
    }

    /// Like [`HostConfig::from_yaml_file`], `Ok(None)` when the file does not exist.
    pub(super) fn from_yaml_file_if_exists(path: &Path) -> Result<Option<HostConfig>> {
        let Some(bytes) = read_file_if_exists(path, "read config file")? else {
            return Ok(None);
        };
        let source_name = path.display().to_string();
        let text = String::from_utf8(bytes)
            .map_err(|_| config_error(&source_name, "the file is not UTF-8 text".into()))?;
        tracing::debug!(path = %source_name, "reading DS config file");
        HostConfig::from_yaml_str(&text, &source_name).map(Some)
    }

    /// DS's built-in defaults (`internal/config/loader.go`), with `~` resolved to `home`.
    pub fn defaults(home: &Path) -> HostConfig {
        HostConfig {
            registry: RegistryConfig {
                default: Some("ghcr.io/delivery-station".into()),
                mirrors: Some(Vec::new()),
                insecure_registries: Some(Vec::new()),
                insecure_all: false,
            },
            auth: AuthConfig {
                docker_config: Some(home.join(".docker").join("config.json")),
                credentials: Some(Vec::new()),
            },
            cache: CacheConfig {
                dir: Some(home.join(".cache").join("ds")),
                max_size: Some(10 << 30),
                ttl: Some(Duration::from_secs(7 * 24 * 3600)),
            },
            logging: LoggingConfig {
                level: Some("info".into()),
                format: Some("text".into()),
                output: Some("stdout".into()),
            },
            proxy: ProxyConfig::default(),
            plugin_signature: SignatureConfig {
                mode: Some("permissive".into()),
                public_keys: Some(Vec::new()),
                trust_store: Some(home.join(".config").join("ds").join("trust")),
                allow_unsigned: Some(true),
            },
            settings: BTreeMap::new(),
        }
    }

    /// Lays `other` over `self`: every field `other` sets replaces this one; `Settings` sections
    /// are merged key by key.
    pub fn merge(&mut self, other: HostConfig) {
        fn overlay<T>(target: &mut Option<T>, value: Option<T>) {
            if value.is_some() {
                *target = value;
            }
        }
        let HostConfig {
            registry,
            auth,
            cache,
            logging,
            proxy,
            plugin_signature,
            settings,
        } = other;
        overlay(&mut self.registry.default, registry.default);
        overlay(&mut self.registry.mirrors, registry.mirrors);
        overlay(
            &mut self.registry.insecure_registries,
            registry.insecure_registries,
        );
        self.registry.insecure_all |= registry.insecure_all;
        overlay(&mut self.auth.docker_config, auth.docker_config);
        overlay(&mut self.auth.credentials, auth.credentials);
        overlay(&mut self.cache.dir, cache.dir);
        overlay(&mut self.cache.max_size, cache.max_size);
        overlay(&mut self.cache.ttl, cache.ttl);
        overlay(&mut self.logging.level, logging.level);
        overlay(&mut self.logging.format, logging.format);
        overlay(&mut self.logging.output, logging.output);
        overlay(&mut self.proxy.http_proxy, proxy.http_proxy);
        overlay(&mut self.proxy.https_proxy, proxy.https_proxy);
        overlay(&mut self.proxy.no_proxy, proxy.no_proxy);
        let signature = &mut self.plugin_signature;
        overlay(&mut signature.mode, plugin_signature.mode);
        overlay(&mut signature.public_keys, plugin_signature.public_keys);
        overlay(&mut signature.trust_store, plugin_signature.trust_store);
        overlay(
            &mut signature.allow_unsigned,
            plugin_signature.allow_unsigned,
        );
        for (plugin, section) in settings {
            self.settings.entry(plugin).or_default().extend(section);
        }
    }

    /// Applies the `DS_*` environment variables (viper style: `DS_` + upper-cased key path with
    /// `_`); a set, non-empty variable overrides the config. Lists (`DS_REGISTRY_MIRRORS`,
    /// `DS_REGISTRY_INSECURE_REGISTRIES`) are a JSON array or a comma/space separated list.
    /// `DS_REGISTRY_INSECURE` is a boolean (marks every registry insecure) or a list of hosts
    /// added to the insecure registries. `DS_AUTH_CREDENTIALS` is a JSON array of
    /// `{registry, username, password|token}` objects.
    pub fn apply_env(&mut self, env: EnvLookup<'_>) -> Result<()> {
        let get = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let error = |name: &str, reason: String| config_error(name, reason);

        if let Some(value) = get("DS_REGISTRY_DEFAULT") {
            self.registry.default = Some(value.trim().to_owned());
        }
        if let Some(value) = get("DS_REGISTRY_MIRRORS") {
            self.registry.mirrors =
                Some(parse_list(&value).map_err(|reason| error("DS_REGISTRY_MIRRORS", reason))?);
        }
        if let Some(value) = get("DS_REGISTRY_INSECURE_REGISTRIES") {
            let hosts = parse_list(&value)
                .map_err(|reason| error("DS_REGISTRY_INSECURE_REGISTRIES", reason))?;
            self.registry.insecure_registries = Some(hosts);
        }
        if let Some(value) = get("DS_REGISTRY_INSECURE") {
            match value.trim().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => self.registry.insecure_all = true,
                "false" | "0" | "no" | "off" => {}
                _ => {
                    let hosts = parse_list(&value)
                        .map_err(|reason| error("DS_REGISTRY_INSECURE", reason))?;
                    self.registry
                        .insecure_registries
                        .get_or_insert_default()
                        .extend(hosts);
                }
            }
        }
        if let Some(value) = get("DS_CACHE_DIR") {
            self.cache.dir = Some(PathBuf::from(value));
        }
        if let Some(value) = get("DS_CACHE_MAX_SIZE") {
            self.cache.max_size =
                Some(parse_size(&value).map_err(|reason| error("DS_CACHE_MAX_SIZE", reason))?);
        }
        if let Some(value) = get("DS_CACHE_TTL") {
            self.cache.ttl =
                Some(parse_duration(&value).map_err(|reason| error("DS_CACHE_TTL", reason))?);
        }
        for (name, field) in [
            ("DS_LOGGING_LEVEL", &mut self.logging.level),
            ("DS_LOGGING_FORMAT", &mut self.logging.format),
            ("DS_LOGGING_OUTPUT", &mut self.logging.output),
            ("DS_PROXY_NO_PROXY", &mut self.proxy.no_proxy),
        ] {
            if let Some(value) = get(name) {
                *field = Some(value);
            }
        }
        // Checked here, expanded as `to_settings` will expand them, so an error names the
        // variable rather than the `Proxy` field it sets.
        for (name, field) in [
            ("DS_PROXY_HTTP_PROXY", &mut self.proxy.http_proxy),
            ("DS_PROXY_HTTPS_PROXY", &mut self.proxy.https_proxy),
        ] {
            if let Some(value) = get(name) {
                let expanded = expand_vars(&value, env);
                check_proxy_url(expanded.trim())
                    .map_err(|reason| proxy_error(name, expanded.trim(), reason))?;
                *field = Some(value);
            }
        }
        if let Some(value) = get("DS_PLUGINS_SIGNATURE_MODE") {
            self.plugin_signature.mode = Some(value.trim().to_owned());
        }
        if let Some(value) = get("DS_PLUGINS_SIGNATURE_PUBLIC_KEYS") {
            self.plugin_signature.public_keys = Some(
                parse_list(&value)
                    .map_err(|reason| error("DS_PLUGINS_SIGNATURE_PUBLIC_KEYS", reason))?,
            );
        }
        if let Some(value) = get("DS_PLUGINS_SIGNATURE_TRUST_STORE") {
            self.plugin_signature.trust_store = Some(PathBuf::from(value.trim()));
        }
        if let Some(value) = get("DS_PLUGINS_SIGNATURE_ALLOW_UNSIGNED") {
            self.plugin_signature.allow_unsigned =
                Some(match value.trim().to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => {
                        return Err(error(
                            "DS_PLUGINS_SIGNATURE_ALLOW_UNSIGNED",
                            format!("{value:?} is not a boolean"),
                        ));
                    }
                });
        }
        if let Some(value) = get("DS_AUTH_DOCKER_CONFIG") {
            self.auth.docker_config = Some(PathBuf::from(value));
        }
        for key in super::porter::KEYS {
            let name = format!("DS_SETTINGS_PORTER_{}", key.to_ascii_uppercase());
            if let Some(value) = get(&name) {
                self.settings
                    .entry("porter".to_owned())
                    .or_default()
                    .insert(key.to_owned(), Value::String(value));
            }
        }
        if let Some(value) = get("DS_AUTH_CREDENTIALS") {
            let credentials = parse_credentials_env(&value)
                .map_err(|reason| error("DS_AUTH_CREDENTIALS", reason))?;
            self.auth.credentials = Some(credentials);
        }
        Ok(())
    }

    /// Resolves porter's [`Settings`] (ds-contract §6.5, §6.6), expanding `$VAR`, `${VAR}` and a
    /// leading `~/` (paths only) in credentials, the cache dir, the docker config and proxies.
    /// `env` also supplies the `HTTP(S)_PROXY`/`NO_PROXY` fallbacks; `home` replaces `~` and
    /// hosts the cache when `Cache.Dir` is blank.
    ///
    /// Proxy URLs are checked here, so a malformed one fails naming its field (`Proxy.HTTPProxy`)
    /// or variable (`HTTPS_PROXY`) before any request.
    pub fn to_settings(&self, env: EnvLookup<'_>, home: &Path) -> Result<Settings> {
        self.resolve(env, home, true)
    }

    /// [`HostConfig::to_settings`], optionally without expansion (the host has expanded
    /// already, and expanding twice would mangle secrets that contain `$`).
    pub(super) fn resolve(
        &self,
        env: EnvLookup<'_>,
        home: &Path,
        expand: bool,
    ) -> Result<Settings> {
        let text = |value: &str| {
            if expand {
                expand_vars(value, env)
            } else {
                value.to_owned()
            }
        };
        let path = |value: &Path| {
            if expand {
                expand_path(value, env, home)
            } else {
                value
                    .to_str()
                    .map_or_else(|| value.to_path_buf(), |text| PathBuf::from(text.trim()))
            }
        };

        let cache_dir = match self.cache.dir.as_deref().map(path) {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join("porter"),
            _ => home.join(".ds").join("porter-cache"),
        };

        let mut credentials: Vec<Credential> = Vec::new();
        for entry in self.auth.credentials.iter().flatten() {
            let registry = normalize_registry_host(&text(&entry.registry));
            if registry.is_empty()
                || credentials
                    .iter()
                    .any(|c| same_registry(&c.registry, &registry))
            {
                continue;
            }
            let token = text(entry.token.expose());
            let password = text(entry.password.expose());
            let secret = if !token.is_empty() {
                CredentialSecret::Token(Secret::new(token))
            } else if !password.is_empty() {
                CredentialSecret::Password(Secret::new(password))
            } else {
                CredentialSecret::None
            };
            credentials.push(Credential {
                registry,
                username: text(&entry.username),
                secret,
            });
        }
        let default_registry = self
            .registry
            .default
            .as_deref()
            .unwrap_or_default()
            .trim()
            .to_owned();
        let default_host = normalize_registry_host(&default_registry);
        if !default_host.is_empty()
            && !credentials
                .iter()
                .any(|c| same_registry(&c.registry, &default_host))
        {
            credentials.push(Credential {
                registry: default_host,
                username: String::new(),
                secret: CredentialSecret::None,
            });
        }

        let mut insecure_registries: Vec<String> = Vec::new();
        for host in self.registry.insecure_registries.iter().flatten() {
            let host = normalize_registry_host(host);
            if !host.is_empty() && !insecure_registries.iter().any(|h| same_registry(h, &host)) {
                insecure_registries.push(host);
            }
        }

        let non_empty = |value: String| {
            let value = value.trim();
            (!value.is_empty()).then(|| value.to_owned())
        };
        // The configured value, else the first of the conventional variables, with the name of
        // where it came from.
        let proxy_value =
            |configured: &Option<String>, field: &'static str, names: [&'static str; 2]| {
                configured
                    .as_deref()
                    .map(text)
                    .and_then(non_empty)
                    .map(|value| (field, value))
                    .or_else(|| {
                        names.into_iter().find_map(|name| {
                            env(name).and_then(non_empty).map(|value| (name, value))
                        })
                    })
            };
        let proxy_url =
            |configured: &Option<String>, field: &'static str, names: [&'static str; 2]| {
                proxy_value(configured, field, names)
                    .map(|(source, value)| {
                        check_proxy_url(&value)
                            .map_err(|reason| proxy_error(source, &value, reason))?;
                        Ok::<_, Error>(value)
                    })
                    .transpose()
            };
        let field = |value: &Option<String>| value.as_deref().unwrap_or_default().to_owned();
        let porter = super::porter::resolve(self.settings.get("porter"), env, home, expand);
        let signature = SignatureSettings {
            plugins: self.plugin_signature.to_policy(path)?,
            artifacts: super::porter::signature_policy(self.settings.get("porter"), &path)?,
            cosign_keys: super::porter::cosign_keys(self.settings.get("porter"), &path)?,
        };

        let proxy = ProxySettings {
            http: proxy_url(
                &self.proxy.http_proxy,
                "Proxy.HTTPProxy",
                ["HTTP_PROXY", "http_proxy"],
            )?,
            https: proxy_url(
                &self.proxy.https_proxy,
                "Proxy.HTTPSProxy",
                ["HTTPS_PROXY", "https_proxy"],
            )?,
            no_proxy: proxy_value(
                &self.proxy.no_proxy,
                "Proxy.NoProxy",
                ["NO_PROXY", "no_proxy"],
            )
            .map(|(_, value)| value),
        };

        Ok(Settings {
            cache_dir,
            default_registry,
            mirrors: self
                .registry
                .mirrors
                .iter()
                .flatten()
                .map(|mirror| mirror.trim().to_owned())
                .filter(|mirror| !mirror.is_empty())
                .collect(),
            insecure_registries,
            insecure_all: self.registry.insecure_all,
            credentials,
            docker_config: self
                .auth
                .docker_config
                .as_deref()
                .map(path)
                .filter(|p| !p.as_os_str().is_empty()),
            proxy,
            cache_ttl: self.cache.ttl.filter(|ttl| !ttl.is_zero()),
            cache_max_size: self.cache.max_size.filter(|size| *size != 0),
            logging: LoggingSettings::normalize(
                &field(&self.logging.level),
                &field(&self.logging.format),
                &field(&self.logging.output),
                "",
            ),
            ca_files: porter.ca_files,
            certs_dirs: porter.certs_dirs,
            offline: porter.offline,
            retry: porter.retry,
            block_private_redirects: porter.block_private_redirects,
            export_limits: porter.export_limits,
            signature,
            signing_key: porter.signing_key,
            chunk_size: porter.chunk_size,
        })
    }

    /// Reads a decoded document in either dialect.
    fn from_value(value: &Value, dialect: Dialect) -> Result<HostConfig, String> {
        let mut config = HostConfig::default();
        let Some(root) = Node::root(value, dialect) else {
            return Ok(config);
        };
        let root = root.object()?;

        if let Some(registry) = root.object("Registry", "registry")? {
            config.registry.default = registry.string("Default", "default")?;
            config.registry.mirrors = registry.strings("Mirrors", "mirrors")?;
            config.registry.insecure_registries =
                registry.strings("InsecureRegistries", "insecure_registries")?;
        }
        if let Some(auth) = root.object("Auth", "auth")? {
            config.auth.docker_config = auth
                .string("DockerConfig", "docker_config")?
                .map(PathBuf::from);
            if let Some(list) = auth.get("Credentials", "credentials") {
                config.auth.credentials = Some(credentials(&list)?);
            }
        }
        if let Some(cache) = root.object("Cache", "cache")? {
            config.cache.dir = cache.string("Dir", "dir")?.map(PathBuf::from);
            config.cache.max_size = cache.size("MaxSize", "max_size")?;
            config.cache.ttl = cache.duration("TTL", "ttl")?;
        }
        if let Some(logging) = root.object("Logging", "logging")? {
            config.logging.level = logging.string("Level", "level")?;
            config.logging.format = logging.string("Format", "format")?;
            config.logging.output = logging.string("Output", "output")?;
        }
        if let Some(plugins) = root.object("Plugins", "plugins")?
            && let Some(signature) = plugins.object("Signature", "signature")?
        {
            let sig = &mut config.plugin_signature;
            sig.mode = signature.string("Mode", "mode")?;
            sig.public_keys = signature.strings("PublicKeys", "public_keys")?;
            sig.trust_store = signature
                .string("TrustStore", "trust_store")?
                .map(PathBuf::from);
            sig.allow_unsigned = signature.boolean("AllowUnsigned", "allow_unsigned")?;
        }
        if let Some(proxy) = root.object("Proxy", "proxy")? {
            config.proxy.http_proxy = proxy.string("HTTPProxy", "http_proxy")?;
            config.proxy.https_proxy = proxy.string("HTTPSProxy", "https_proxy")?;
            config.proxy.no_proxy = proxy.string("NoProxy", "no_proxy")?;
        }
        if let Some(settings) = root.object("Settings", "settings")? {
            for (plugin, section) in settings.members() {
                config
                    .settings
                    .insert(plugin.to_owned(), section.object()?.to_map());
            }
        }
        Ok(config)
    }
}

impl SignatureConfig {
    /// The policy, with `resolve_path` applied to the key paths (a leading `~/` is expanded again
    /// when the keys are loaded, as DS does).
    fn to_policy(&self, resolve_path: impl Fn(&Path) -> PathBuf) -> Result<SignaturePolicy> {
        let mode = self
            .mode
            .as_deref()
            .unwrap_or_default()
            .parse::<Mode>()
            .map_err(|reason| config_error("Plugins.Signature.Mode", reason))?;
        Ok(SignaturePolicy {
            mode,
            public_keys: self
                .public_keys
                .iter()
                .flatten()
                .filter(|k| !k.trim().is_empty())
                .map(|k| resolve_path(Path::new(k.trim())))
                .collect(),
            trust_store: self
                .trust_store
                .as_deref()
                .map(&resolve_path)
                .filter(|p| !p.as_os_str().is_empty()),
            allow_unsigned: self.allow_unsigned.unwrap_or(false),
        })
    }
}

/// Builds an [`Error::Config`].
fn config_error(source_name: &str, reason: String) -> Error {
    Error::Config {
        source_name: source_name.to_owned(),
        reason,
    }
}

/// Checks a proxy URL as the registry client will use it: `http://` or `https://` (a bare
/// `host[:port]` means `http://`) and a host name or IP address.
fn check_proxy_url(value: &str) -> Result<(), String> {
    let url = match value.split_once("://") {
        Some((scheme, _))
            if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") =>
        {
            return Err(format!(
                "unsupported scheme {scheme:?}; use http:// or https://"
            ));
        }
        Some(_) => value.to_owned(),
        None => format!("http://{value}"),
    };
    let url = reqwest::Url::parse(&url).map_err(|err| err.to_string())?;
    let host = url.host_str().unwrap_or_default();
    let plain_name = host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
    if host.is_empty() || !(plain_name || host.starts_with('[')) {
        return Err(format!("invalid host {host:?}"));
    }
    Ok(())
}

/// The error for a malformed proxy URL from `source`, with any user info in it hidden.
fn proxy_error(source: &str, value: &str, reason: String) -> Error {
    let shown = redact_userinfo(Some(value)).unwrap_or_default();
    config_error(
        source,
        format!("{shown:?} is not a valid proxy URL: {reason}"),
    )
}

/// Reads a credentials array (`Auth.Credentials`, `DS_AUTH_CREDENTIALS`).
fn credentials(list: &Node<'_>) -> Result<Vec<CredentialConfig>, String> {
    list.elements("an array of credentials")?
        .iter()
        .map(|item| {
            let item: Obj<'_> = item.object()?;
            let text = |go: &str, yaml: &str| item.string(go, yaml).map(Option::unwrap_or_default);
            Ok(CredentialConfig {
                registry: text("Registry", "registry")?,
                username: text("Username", "username")?,
                password: Secret::new(text("Password", "password")?),
                token: Secret::new(text("Token", "token")?),
            })
        })
        .collect()
}

/// Parses `DS_AUTH_CREDENTIALS`: a JSON array of credential objects, keys in any case.
fn parse_credentials_env(value: &str) -> Result<Vec<CredentialConfig>, String> {
    let parsed: Value =
        serde_json::from_str(value).map_err(|err| format!("invalid JSON: {err}"))?;
    match Node::root(&parsed, Dialect::Json) {
        Some(node) => credentials(&node),
        None => Ok(Vec::new()),
    }
}

/// Parses a list variable: a JSON array of strings, or items separated by commas or spaces.
fn parse_list(value: &str) -> Result<Vec<String>, String> {
    let trimmed = value.trim();
    if trimmed.starts_with('[') {
        let parsed: Value =
            serde_json::from_str(trimmed).map_err(|err| format!("invalid JSON: {err}"))?;
        return Node::root(&parsed, Dialect::Json).map_or(Ok(Vec::new()), |node| node.strings());
    }
    Ok(trimmed
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;

    use super::super::decode::MAX_CONFIG_BYTES;
    use super::*;
    use crate::config::RetryPolicy;
    use crate::export::ExportLimits;

    const HOME: &str = "/home/u";

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn settings(json: &str) -> Settings {
        HostConfig::from_json(json.as_bytes())
            .unwrap()
            .to_settings(&no_env, Path::new(HOME))
            .unwrap()
    }

    /// The `(source_name, reason)` of a config error.
    fn config_error_of<T: fmt::Debug>(result: Result<T>) -> (String, String) {
        match result.unwrap_err() {
            Error::Config {
                source_name,
                reason,
            } => (source_name, reason),
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn token(registry: &str, username: &str, value: &str) -> Credential {
        Credential {
            registry: registry.into(),
            username: username.into(),
            secret: CredentialSecret::Token(Secret::new(value)),
        }
    }

    fn password(registry: &str, username: &str, value: &str) -> Credential {
        Credential {
            registry: registry.into(),
            username: username.into(),
            secret: CredentialSecret::Password(Secret::new(value)),
        }
    }

    fn anonymous(registry: &str) -> Credential {
        Credential {
            registry: registry.into(),
            username: String::new(),
            secret: CredentialSecret::None,
        }
    }

    const CONTRACT_EXAMPLE: &str = r#"{"Registry":{"Default":"ghcr.io/delivery-station","Mirrors":[],"InsecureRegistries":[]},
 "Auth":{"DockerConfig":"/home/u/.docker/config.json",
         "Credentials":[{"Registry":"ghcr.io","Username":"u","Token":"t","Password":""}]},
 "Cache":{"Dir":"/home/u/.cache/ds","MaxSize":10737418240,"TTL":604800000000000},
 "Logging":{"Level":"info","Format":"text","Output":"stdout"},
 "Proxy":{"HTTPProxy":"","HTTPSProxy":"","NoProxy":""},
 "Plugins":{"Dir":"/home/u/.config/ds/plugins","AutoInstall":true,"Sources":[],
            "Signature":{"Mode":"permissive","PublicKeys":[],"TrustStore":"/home/u/.config/ds/trust","AllowUnsigned":true}},
 "Settings":{"porter":{"k":"v"}}}"#;

    #[test]
    fn the_contract_example_decodes_to_the_expected_settings() {
        let config = HostConfig::from_json(CONTRACT_EXAMPLE.as_bytes()).unwrap();
        assert_eq!(config.settings["porter"]["k"], "v");
        assert_eq!(
            config.to_settings(&no_env, Path::new(HOME)).unwrap(),
            Settings {
                cache_dir: "/home/u/.cache/ds/porter".into(),
                default_registry: "ghcr.io/delivery-station".into(),
                mirrors: vec![],
                insecure_registries: vec![],
                insecure_all: false,
                credentials: vec![token("ghcr.io", "u", "t")],
                docker_config: Some("/home/u/.docker/config.json".into()),
                proxy: ProxySettings::default(),
                cache_ttl: Some(Duration::from_secs(7 * 24 * 3600)),
                cache_max_size: Some(10 << 30),
                logging: LoggingSettings {
                    level: "info".into(),
                    format: "text".into(),
                    output: "stdout".into(),
                    warnings: vec![],
                },
                ca_files: vec![],
                certs_dirs: vec![
                    "/home/u/.config/ds/certs.d".into(),
                    "/etc/containers/certs.d".into(),
                    "/etc/docker/certs.d".into(),
                ],
                offline: false,
                retry: RetryPolicy::default(),
                block_private_redirects: None,
                export_limits: ExportLimits::default(),
                signature: SignatureSettings {
                    plugins: SignaturePolicy {
                        mode: Mode::Permissive,
                        public_keys: vec![],
                        trust_store: Some("/home/u/.config/ds/trust".into()),
                        allow_unsigned: true,
                    },
                    ..SignatureSettings::default()
                },
                signing_key: None,
                chunk_size: None,
            }
        );
    }

    #[test]
    fn case_17_nulls_and_lower_case_keys_decode() {
        let json = r#"{"registry":{"Default":"r.io","InsecureRegistries":null},
            "Cache":{"Dir":"/c","TTL":604800000000000},"Settings":null}"#;
        let settings = settings(json);
        assert_eq!(settings.cache_ttl, Some(Duration::from_secs(604_800)));
        assert_eq!(settings.default_registry, "r.io");
        assert_eq!(settings.cache_dir, Path::new("/c/porter"));
    }

    #[test]
    fn case_35_credential_hosts_are_normalised_and_the_default_is_not_repeated() {
        let settings = settings(
            r#"{"Registry":{"Default":"ghcr.io/delivery-station"},"Cache":{"Dir":"/c"},
            "Auth":{"Credentials":[{"Registry":"ghcr.io/delivery-station/porter","Username":"alice","Token":"token"}]}}"#,
        );
        assert_eq!(settings.credentials, [token("ghcr.io", "alice", "token")]);
        assert_eq!(settings.cache_dir, Path::new("/c/porter"));
    }

    #[test]
    fn case_36_blank_cache_dir_uses_the_home_cache() {
        for json in [
            r#"{"Cache":{"Dir":""}}"#,
            r#"{"Cache":{"Dir":"  "}}"#,
            "{}",
            "null",
        ] {
            assert_eq!(
                settings(json).cache_dir,
                Path::new("/home/u/.ds/porter-cache"),
                "{json}"
            );
        }
    }

    #[test]
    fn case_37_the_first_credential_per_host_wins() {
        let settings = settings(
            r#"{"Auth":{"Credentials":[{"Registry":"https://r.io/","Username":"a","Password":"p"},
            {"Registry":"r.io","Username":"b","Password":"q"}]}}"#,
        );
        assert_eq!(settings.credentials, [password("r.io", "a", "p")]);
    }

    #[test]
    fn credentials_prefer_the_token_skip_empty_hosts_and_end_with_the_default() {
        let settings = settings(
            r#"{"Registry":{"Default":"Docker.io/library"},"Auth":{"Credentials":[
            {"Registry":" ","Username":"x","Password":"p"},
            {"Registry":"http://a.io","Username":"u","Password":"p","Token":"t"},
            {"Registry":"b.io:5000/ns","Username":"v"},
            {"Registry":"reg.io","Token":"only"}]}}"#,
        );
        assert_eq!(
            settings.credentials,
            [
                token("a.io", "u", "t"),
                Credential {
                    registry: "b.io:5000".into(),
                    username: "v".into(),
                    secret: CredentialSecret::None
                },
                token("reg.io", "", "only"),
                anonymous("docker.io"),
            ]
        );
        let aliased = self::settings(
            r#"{"Registry":{"Default":"index.docker.io"},
            "Auth":{"Credentials":[{"Registry":"https://index.docker.io/v1/","Username":"d","Password":"p"}]}}"#,
        );
        assert_eq!(aliased.credentials, [password("index.docker.io", "d", "p")]);
    }

    #[test]
    fn keys_match_in_any_case_at_every_level() {
        let settings = settings(
            r#"{"REGISTRY":{"default":"r.io","insecureregistries":["h:5000"],"MIRRORS":["m.io"]},
            "auth":{"CREDENTIALS":[{"registry":"x.io","USERNAME":"a","password":"p"}],"dockerconfig":"/d.json"},
            "cache":{"DIR":"/c","maxsize":5,"ttl":1000000000},
            "LOGGING":{"level":"DEBUG","FORMAT":"json","output":"stderr"},
            "proxy":{"httpproxy":"http://p:1","HTTPSPROXY":"http://p:2","noproxy":"localhost"}}"#,
        );
        assert_eq!(settings.default_registry, "r.io");
        assert_eq!(settings.insecure_registries, ["h:5000"]);
        assert_eq!(settings.mirrors, ["m.io"]);
        assert_eq!(settings.credentials[0], password("x.io", "a", "p"));
        assert_eq!(
            settings.docker_config.as_deref(),
            Some(Path::new("/d.json"))
        );
        assert_eq!(settings.cache_dir, Path::new("/c/porter"));
        assert_eq!(settings.cache_max_size, Some(5));
        assert_eq!(settings.cache_ttl, Some(Duration::from_secs(1)));
        assert_eq!(
            (
                settings.logging.level.as_str(),
                settings.logging.format.as_str()
            ),
            ("debug", "json")
        );
        assert_eq!(settings.proxy.http.as_deref(), Some("http://p:1"));
        assert_eq!(settings.proxy.https.as_deref(), Some("http://p:2"));
        assert_eq!(settings.proxy.no_proxy.as_deref(), Some("localhost"));
    }

    #[test]
    fn null_is_accepted_anywhere_and_of_plugins_only_the_signature_is_read() {
        let json = r#"{"Registry":null,"Auth":{"DockerConfig":null,"Credentials":[null]},
            "Cache":{"Dir":null,"MaxSize":null,"TTL":null},"Logging":null,"Proxy":{"NoProxy":null},
            "Plugins":{"Sources":"not a list","Signature":null},"Settings":{"porter":null,"x":{}}}"#;
        let config = HostConfig::from_json(json.as_bytes()).unwrap();
        assert_eq!(config.auth.credentials, Some(vec![]));
        assert_eq!(config.cache, CacheConfig::default());
        assert_eq!(config.plugin_signature, SignatureConfig::default());
        assert_eq!(config.settings.keys().collect::<Vec<_>>(), ["x"]);
        assert_eq!(
            HostConfig::from_json(b"null").unwrap(),
            HostConfig::default()
        );
        // The signature policy is security-relevant: a malformed one fails, naming the field.
        let (source, reason) =
            config_error_of(HostConfig::from_json(br#"{"Plugins":{"Signature":5}}"#));
        assert_eq!(source, HOST_JSON);
        assert!(reason.contains("Plugins.Signature"), "{reason}");
        let (_, reason) = config_error_of(HostConfig::from_json(
            br#"{"Plugins":{"Signature":{"AllowUnsigned":"yes"}}}"#,
        ));
        assert!(reason.contains("AllowUnsigned"), "{reason}");
    }

    #[test]
    fn the_signature_policies_are_read_from_every_layer() {
        let json = r#"{"plugins":{"signature":{"mode":"STRICT","publickeys":["~/k.pem",""],
            "truststore":"/t","allowunsigned":false}},
            "Settings":{"porter":{"Signature":{"Mode":"permissive","Public_Keys":"/p.pem",
            "AllowUnsigned":true,"cosign_keys":["/c.pub"]},"signing_key":"/s.pem"}}}"#;
        let resolved = settings(json);
        let sig = &resolved.signature;
        assert_eq!(sig.plugins.mode, Mode::Strict);
        assert_eq!(sig.plugins.public_keys, [Path::new("/home/u/k.pem")]);
        assert_eq!(sig.plugins.trust_store.as_deref(), Some(Path::new("/t")));
        assert!(!sig.plugins.allow_unsigned);
        assert_eq!(sig.artifacts.mode, Mode::Permissive);
        assert_eq!(sig.artifacts.public_keys, [Path::new("/p.pem")]);
        assert!(sig.artifacts.allow_unsigned);
        assert_eq!(sig.cosign_keys, [Path::new("/c.pub")]);
        assert_eq!(resolved.signing_key.as_deref(), Some(Path::new("/s.pem")));

        // Absent: DS's empty mode (disabled) for plugins, disabled for everything else.
        let none = settings("{}");
        assert_eq!(none.signature, SignatureSettings::default());

        for (json, field) in [
            (
                r#"{"Plugins":{"Signature":{"Mode":"stict"}}}"#,
                "Plugins.Signature.Mode",
            ),
            (
                r#"{"Settings":{"porter":{"signature":{"mode":"on"}}}}"#,
                "settings.porter.signature.mode",
            ),
            (
                r#"{"Settings":{"porter":{"signature":{"allow_unsigned":"yes"}}}}"#,
                "settings.porter.signature.allow_unsigned",
            ),
            (
                r#"{"Settings":{"porter":{"signature":{"cosign_keys":[1]}}}}"#,
                "settings.porter.signature.cosign_keys",
            ),
            (
                r#"{"Settings":{"porter":{"signature":"strict"}}}"#,
                "settings.porter.signature",
            ),
        ] {
            let err = HostConfig::from_json(json.as_bytes())
                .unwrap()
                .to_settings(&no_env, Path::new(HOME))
                .unwrap_err();
            assert!(
                matches!(&err, Error::Config { source_name, .. } if source_name == field),
                "{json}: {err}"
            );
        }
    }

    #[test]
    fn the_signature_policy_follows_ds_defaults_yaml_and_env() {
        let defaults = HostConfig::defaults(Path::new(HOME))
            .to_settings(&no_env, Path::new(HOME))
            .unwrap();
        assert_eq!(defaults.signature.plugins.mode, Mode::Permissive);
        assert!(defaults.signature.plugins.allow_unsigned);
        assert_eq!(
            defaults.signature.plugins.trust_store.as_deref(),
            Some(Path::new("/home/u/.config/ds/trust"))
        );
        assert_eq!(defaults.signature.artifacts.mode, Mode::Disabled);

        let mut config = HostConfig::defaults(Path::new(HOME));
        config.merge(
            HostConfig::from_yaml_str(
                "plugins:\n  signature:\n    mode: strict\n    public_keys: [~/keys/a.pub]\n",
                "config.yaml",
            )
            .unwrap(),
        );
        let env = env_of(&[
            ("DS_PLUGINS_SIGNATURE_ALLOW_UNSIGNED", "false"),
            ("DS_PLUGINS_SIGNATURE_TRUST_STORE", "/env/trust"),
        ]);
        config.apply_env(&env).unwrap();
        let settings = config.to_settings(&env, Path::new(HOME)).unwrap();
        let plugins = &settings.signature.plugins;
        assert_eq!(plugins.mode, Mode::Strict);
        assert_eq!(plugins.public_keys, [Path::new("/home/u/keys/a.pub")]);
        assert_eq!(
            plugins.trust_store.as_deref(),
            Some(Path::new("/env/trust"))
        );
        assert!(!plugins.allow_unsigned);
        let bad = env_of(&[("DS_PLUGINS_SIGNATURE_ALLOW_UNSIGNED", "maybe")]);
        let err = HostConfig::default().apply_env(&bad).unwrap_err();
        assert!(
            err.to_string()
                .contains("DS_PLUGINS_SIGNATURE_ALLOW_UNSIGNED"),
            "{err}"
        );
    }

    #[test]
    fn go_escapes_are_decoded() {
        let json = r#"{"Registry":{"Default":"a\u003cb\u003e\u0026c"}}"#;
        assert_eq!(settings(json).default_registry, "a<b>&c");
    }

    #[test]
    fn numbers_may_be_integral_floats_or_text() {
        let settings = settings(r#"{"Cache":{"MaxSize":1024.0,"TTL":1e9}}"#);
        assert_eq!(
            (settings.cache_max_size, settings.cache_ttl),
            (Some(1024), Some(Duration::from_secs(1)))
        );
        let settings = self::settings(r#"{"Cache":{"MaxSize":"10GB","TTL":"7d"}}"#);
        assert_eq!(settings.cache_max_size, Some(10 << 30));
        assert_eq!(settings.cache_ttl, Some(Duration::from_secs(604_800)));
    }

    #[test]
    fn zero_ttl_and_max_size_mean_unset() {
        let settings = settings(r#"{"Cache":{"MaxSize":0,"TTL":0}}"#);
        assert_eq!((settings.cache_max_size, settings.cache_ttl), (None, None));
    }

    #[test]
    fn wrong_types_name_the_field() {
        for (json, expected) in [
            (
                r#"{"Registry":{"Mirrors":5}}"#,
                "Registry.Mirrors: expected an array of strings, found a number",
            ),
            (
                r#"{"Registry":{"Mirrors":["a",1]}}"#,
                "Registry.Mirrors[1]: expected a string, found a number",
            ),
            (
                r#"{"Registry":"x"}"#,
                "Registry: expected an object, found a string",
            ),
            (
                r#"{"Auth":{"Credentials":[{"Username":1}]}}"#,
                "Auth.Credentials[0].Username: expected a string, found a number",
            ),
            (
                r#"{"Auth":{"Credentials":{}}}"#,
                "Auth.Credentials: expected an array of credentials, found an object",
            ),
            (
                r#"{"Cache":{"MaxSize":-1}}"#,
                "Cache.MaxSize: expected a number of bytes or a size like 10GB, found -1",
            ),
            (
                r#"{"Cache":{"TTL":true}}"#,
                "Cache.TTL: expected a number of nanoseconds or a duration like 7d, found a boolean",
            ),
            (
                r#"{"Settings":{"porter":5}}"#,
                "Settings.porter: expected an object, found a number",
            ),
            ("[]", "expected an object, found an array"),
        ] {
            let (source, reason) = config_error_of(HostConfig::from_json(json.as_bytes()));
            assert_eq!(source, "host config JSON");
            assert_eq!(reason, expected, "{json}");
        }
        let (_, reason) = config_error_of(HostConfig::from_json(br#"{"Cache":{"TTL":"forever"}}"#));
        assert!(
            reason.starts_with("Cache.TTL: expected a duration"),
            "{reason}"
        );
    }

    #[test]
    fn truncated_json_reports_the_parser_error() {
        let (source, reason) =
            config_error_of(HostConfig::from_json(br#"{"Registry":{"Default":"x""#));
        assert_eq!(source, "host config JSON");
        assert!(reason.contains("EOF while parsing"), "{reason}");
        assert!(HostConfig::from_json(b"").is_err());
    }

    #[test]
    fn oversized_json_is_rejected_before_parsing() {
        let mut json = vec![b' '; MAX_CONFIG_BYTES];
        json.extend_from_slice(b"{}");
        let (_, reason) = config_error_of(HostConfig::from_json(&json));
        assert!(reason.contains("4 MiB"), "{reason}");
    }

    const YAML: &str = r#"
registry:
  default: ghcr.io/acme
  mirrors: [mirror.acme.io]
  Insecure_Registries: ["localhost:5000"]
auth:
  docker_config: /etc/docker.json
  credentials:
    - registry: ghcr.io
      username: bot
      token: abc
    - registry: registry.acme.io
      username: 12345
      password: 987
cache:
  dir: /var/cache/ds
  max_size: 512MB
  ttl: 1h30m
logging:
  level: warn
  format: json
  output: /tmp/ds.log
proxy:
  http_proxy: http://proxy:3128
  no_proxy: localhost,127.0.0.1
plugins:
  dir: /opt/plugins
settings:
  porter:
    registry: ghcr.io
unknown: true
"#;

    #[test]
    fn yaml_uses_snake_case_keys_sizes_and_durations() {
        let config = HostConfig::from_yaml_str(YAML, "config.yaml").unwrap();
        assert_eq!(config.settings["porter"]["registry"], "ghcr.io");
        let settings = config.to_settings(&no_env, Path::new(HOME)).unwrap();
        assert_eq!(settings.default_registry, "ghcr.io/acme");
        assert_eq!(settings.mirrors, ["mirror.acme.io"]);
        assert_eq!(settings.insecure_registries, ["localhost:5000"]);
        assert_eq!(
            settings.credentials,
            [
                token("ghcr.io", "bot", "abc"),
                password("registry.acme.io", "12345", "987")
            ]
        );
        assert_eq!(
            settings.docker_config.as_deref(),
            Some(Path::new("/etc/docker.json"))
        );
        assert_eq!(settings.cache_dir, Path::new("/var/cache/ds/porter"));
        assert_eq!(settings.cache_max_size, Some(512 << 20));
        assert_eq!(settings.cache_ttl, Some(Duration::from_secs(5400)));
        assert_eq!(settings.logging.level, "warn");
        assert_eq!(settings.logging.format, "json");
        assert_eq!(settings.logging.output, "/tmp/ds.log");
        assert_eq!(settings.proxy.http.as_deref(), Some("http://proxy:3128"));
        assert_eq!(
            settings.proxy.no_proxy.as_deref(),
            Some("localhost,127.0.0.1")
        );
    }

    #[test]
    fn yaml_numbers_are_bytes_and_seconds() {
        let config =
            HostConfig::from_yaml_str("cache: {max_size: 4096, ttl: 3600}", "c.yaml").unwrap();
        assert_eq!(config.cache.max_size, Some(4096));
        assert_eq!(config.cache.ttl, Some(Duration::from_secs(3600)));
        let config =
            HostConfig::from_yaml_str("cache: {max_size: 10GB, TTL: 7d}", "c.yaml").unwrap();
        assert_eq!(config.cache.max_size, Some(10 * 1024 * 1024 * 1024));
        assert_eq!(config.cache.ttl, Some(Duration::from_secs(7 * 86_400)));
    }

    #[test]
    fn yaml_errors_name_the_file_and_field() {
        let (source, reason) = config_error_of(HostConfig::from_yaml_str(
            "registry: {mirrors: 5}",
            "/etc/ds.yaml",
        ));
        assert_eq!(source, "/etc/ds.yaml");
        assert_eq!(
            reason,
            "registry.mirrors: expected an array of strings, found a number"
        );
        let (_, reason) =
            config_error_of(HostConfig::from_yaml_str("cache: {ttl: forever}", "c.yaml"));
        assert!(
            reason.starts_with("cache.ttl: expected a duration"),
            "{reason}"
        );
        let (source, _) = config_error_of(HostConfig::from_yaml_str("registry: [", "c.yaml"));
        assert_eq!(source, "c.yaml");
        assert!(HostConfig::from_yaml_str("- a list", "c.yaml").is_err());
    }

    #[test]
    fn empty_yaml_is_an_empty_config() {
        for text in ["", "# only a comment\n", "---\n"] {
            assert_eq!(
                HostConfig::from_yaml_str(text, "c.yaml").unwrap(),
                HostConfig::default()
            );
        }
    }

    #[test]
    fn yaml_files_must_exist_when_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing.yaml");
        let err = HostConfig::from_yaml_file(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("config file {} does not exist", path.display())
        );
        let file = dir.path().join("ds.yaml");
        std::fs::write(&file, "registry: {default: r.io}\n").unwrap();
        let config = HostConfig::from_yaml_file(&file).unwrap();
        assert_eq!(config.registry.default.as_deref(), Some("r.io"));
        std::fs::write(&file, b"\xff\xfe").unwrap();
        let (source, _) = config_error_of(HostConfig::from_yaml_file(&file));
        assert!(source.ends_with("ds.yaml"), "{source}");
    }

    #[test]
    fn defaults_match_ds() {
        let settings = HostConfig::defaults(Path::new(HOME))
            .to_settings(&no_env, Path::new(HOME))
            .unwrap();
        assert_eq!(settings.cache_dir, Path::new("/home/u/.cache/ds/porter"));
        assert_eq!(settings.default_registry, "ghcr.io/delivery-station");
        assert_eq!(settings.credentials, [anonymous("ghcr.io")]);
        assert_eq!(
            settings.docker_config.as_deref(),
            Some(Path::new("/home/u/.docker/config.json"))
        );
        assert_eq!(settings.cache_max_size, Some(10 << 30));
        assert_eq!(settings.cache_ttl, Some(Duration::from_secs(604_800)));
        assert_eq!(
            settings.logging,
            LoggingSettings::normalize("info", "text", "stdout", "")
        );
        assert_eq!(settings.proxy, ProxySettings::default());
        assert!(!settings.insecure_all);
    }

    #[test]
    fn merge_overrides_only_what_the_upper_layer_sets() {
        let mut config = HostConfig::defaults(Path::new(HOME));
        config.settings.insert(
            "porter".into(),
            serde_json::json!({"a": 1, "b": 2})
                .as_object()
                .unwrap()
                .clone(),
        );
        let file = HostConfig::from_yaml_str(
            "registry: {mirrors: null, default: r.io}\ncache: {ttl: 1h}\nsettings: {porter: {b: 3}}",
            "c.yaml",
        )
        .unwrap();
        config.merge(file);
        assert_eq!(config.registry.default.as_deref(), Some("r.io"));
        assert_eq!(config.registry.mirrors, Some(vec![]));
        assert_eq!(config.cache.ttl, Some(Duration::from_secs(3600)));
        assert_eq!(config.cache.max_size, Some(10 << 30));
        assert_eq!(
            config.settings["porter"],
            *serde_json::json!({"a": 1, "b": 3}).as_object().unwrap()
        );

        let mut explicit = HostConfig::default();
        explicit.registry.insecure_all = true;
        explicit.auth.credentials = Some(vec![]);
        config.merge(explicit);
        config.merge(HostConfig::default());
        assert!(config.registry.insecure_all);
        assert_eq!(config.auth.credentials, Some(vec![]));
    }

    #[test]
    fn env_variables_override_the_config() {
        let mut config = HostConfig::defaults(Path::new(HOME));
        config.apply_env(&env_of(&[
            ("DS_REGISTRY_DEFAULT", "env.io/ns"),
            ("DS_REGISTRY_MIRRORS", r#"["m1.io", "m2.io"]"#),
            ("DS_REGISTRY_INSECURE_REGISTRIES", "a:5000, b:5000"),
            ("DS_CACHE_DIR", "/env/cache"),
            ("DS_CACHE_MAX_SIZE", "1GiB"),
            ("DS_CACHE_TTL", "24h"),
            ("DS_LOGGING_LEVEL", "debug"),
            ("DS_LOGGING_FORMAT", "json"),
            ("DS_LOGGING_OUTPUT", "stderr"),
            ("DS_AUTH_DOCKER_CONFIG", "/env/docker.json"),
            ("DS_AUTH_CREDENTIALS", r#"[{"Registry":"ghcr.io","Username":"u","Password":"p"},{"REGISTRY":"reg.io","token":"t"}]"#),
            ("DS_PROXY_HTTP_PROXY", "http://p:1"),
            ("DS_PROXY_HTTPS_PROXY", "http://p:2"),
            ("DS_PROXY_NO_PROXY", "localhost"),
            ("DS_LOGGING_UNKNOWN", "ignored"),
        ]))
        .unwrap();
        let settings = config.to_settings(&no_env, Path::new(HOME)).unwrap();
        assert_eq!(settings.default_registry, "env.io/ns");
        assert_eq!(settings.mirrors, ["m1.io", "m2.io"]);
        assert_eq!(settings.insecure_registries, ["a:5000", "b:5000"]);
        assert_eq!(settings.cache_dir, Path::new("/env/cache/porter"));
        assert_eq!(settings.cache_max_size, Some(1 << 30));
        assert_eq!(settings.cache_ttl, Some(Duration::from_secs(86_400)));
        assert_eq!(
            settings.logging,
            LoggingSettings::normalize("debug", "json", "stderr", "")
        );
        assert_eq!(
            settings.docker_config.as_deref(),
            Some(Path::new("/env/docker.json"))
        );
        assert_eq!(
            settings.credentials,
            [
                password("ghcr.io", "u", "p"),
                token("reg.io", "", "t"),
                anonymous("env.io")
            ]
        );
        assert_eq!(
            settings.proxy,
            ProxySettings {
                http: Some("http://p:1".into()),
                https: Some("http://p:2".into()),
                no_proxy: Some("localhost".into()),
            }
        );
    }

    #[test]
    fn empty_env_variables_are_ignored() {
        let mut config = HostConfig::defaults(Path::new(HOME));
        let before = config.clone();
        config
            .apply_env(&env_of(&[
                ("DS_REGISTRY_DEFAULT", ""),
                ("DS_CACHE_TTL", " "),
                ("DS_REGISTRY_INSECURE", ""),
            ]))
            .unwrap();
        assert_eq!(config, before);
    }

    #[test]
    fn ds_registry_insecure_is_a_flag_or_a_host_list() {
        for (value, all, hosts) in [
            ("true", true, vec![]),
            ("ON", true, vec![]),
            ("1", true, vec![]),
            ("no", false, vec![]),
            ("off", false, vec![]),
            (
                "localhost:5000,127.0.0.1:5000",
                false,
                vec!["old:1", "localhost:5000", "127.0.0.1:5000"],
            ),
            (r#"["h:1"]"#, false, vec!["old:1", "h:1"]),
        ] {
            let mut config = HostConfig::default();
            config.registry.insecure_registries = Some(vec!["old:1".into()]);
            config
                .apply_env(&env_of(&[("DS_REGISTRY_INSECURE", value)]))
                .unwrap();
            let settings = config.to_settings(&no_env, Path::new(HOME)).unwrap();
            assert_eq!(settings.insecure_all, all, "{value}");
            let expected = if hosts.is_empty() {
                vec!["old:1"]
            } else {
                hosts
            };
            assert_eq!(settings.insecure_registries, expected, "{value}");
        }
    }

    #[test]
    fn malformed_env_values_name_the_variable() {
        for (name, value) in [
            ("DS_AUTH_CREDENTIALS", r#"[{"registry":"r.io""#),
            ("DS_AUTH_CREDENTIALS", r#"{"registry":"r.io"}"#),
            ("DS_AUTH_CREDENTIALS", r#"[{"registry":5}]"#),
            ("DS_CACHE_MAX_SIZE", "lots"),
            ("DS_CACHE_TTL", "a week"),
            ("DS_REGISTRY_MIRRORS", "[1]"),
            ("DS_REGISTRY_INSECURE_REGISTRIES", "[oops"),
        ] {
            let mut config = HostConfig::default();
            let (source, reason) = config_error_of(config.apply_env(&env_of(&[(name, value)])));
            assert_eq!(source, name, "{reason}");
        }
    }

    #[test]
    fn variables_and_home_are_expanded_when_resolving() {
        let json = r#"{"Auth":{"DockerConfig":"~/.docker/config.json","Credentials":[
            {"Registry":"${REG}","Username":"$USER","Password":"${PASS}x"}]},
            "Cache":{"Dir":"$XDG_CACHE/ds"},"Proxy":{"HTTPSProxy":"http://${PROXY_HOST}:3128"}}"#;
        let env = env_of(&[
            ("REG", "https://reg.io/"),
            ("USER", "alice"),
            ("PASS", "s3cret"),
            ("XDG_CACHE", "/xdg"),
            ("PROXY_HOST", "proxy"),
        ]);
        let settings = HostConfig::from_json(json.as_bytes())
            .unwrap()
            .to_settings(&env, Path::new(HOME))
            .unwrap();
        assert_eq!(
            settings.credentials,
            [password("reg.io", "alice", "s3cretx")]
        );
        assert_eq!(
            settings.docker_config.as_deref(),
            Some(Path::new("/home/u/.docker/config.json"))
        );
        assert_eq!(settings.cache_dir, Path::new("/xdg/ds/porter"));
        assert_eq!(settings.proxy.https.as_deref(), Some("http://proxy:3128"));

        let tilde = HostConfig::from_json(br#"{"Cache":{"Dir":"~/c"}}"#).unwrap();
        let settings = tilde.to_settings(&no_env, Path::new(HOME)).unwrap();
        assert_eq!(settings.cache_dir, Path::new("/home/u/c/porter"));
    }

    #[test]
    fn host_values_are_not_expanded_twice() {
        let json = r#"{"Auth":{"Credentials":[{"Registry":"r.io","Username":"u","Password":"pa$word"}]},
            "Cache":{"Dir":"/c/$x"}}"#;
        let config = HostConfig::from_json(json.as_bytes()).unwrap();
        let settings = config
            .resolve(&env_of(&[("word", "WORD")]), Path::new(HOME), false)
            .unwrap();
        assert_eq!(settings.credentials[0], password("r.io", "u", "pa$word"));
        assert_eq!(settings.cache_dir, Path::new("/c/$x/porter"));
    }

    #[test]
    fn proxies_fall_back_to_the_standard_variables() {
        let env = env_of(&[
            ("HTTPS_PROXY", "http://upper"),
            ("https_proxy", "http://lower"),
            ("http_proxy", "http://h"),
            ("NO_PROXY", " "),
        ]);
        let settings = settings_with_env(r#"{"Proxy":{"HTTPSProxy":" ","NoProxy":""}}"#, &env);
        assert_eq!(settings.proxy.https.as_deref(), Some("http://upper"));
        assert_eq!(settings.proxy.http.as_deref(), Some("http://h"));
        assert_eq!(settings.proxy.no_proxy, None);
        let lower_only = env_of(&[("https_proxy", "http://lower")]);
        assert_eq!(
            settings_with_env("{}", &lower_only).proxy.https.as_deref(),
            Some("http://lower")
        );
        let configured = settings_with_env(r#"{"Proxy":{"HTTPSProxy":"http://cfg"}}"#, &env);
        assert_eq!(configured.proxy.https.as_deref(), Some("http://cfg"));
    }

    #[test]
    fn malformed_proxy_urls_fail_naming_their_source_before_any_request() {
        // Regression: `ht!tp://` was accepted, and the pull retried a DNS error for `ht!tp`
        // that named no setting.
        let bad = [
            (
                "ht!tp://",
                r#""ht!tp://" is not a valid proxy URL: unsupported scheme "ht!tp"; use http:// or https://"#,
            ),
            (
                "http://",
                r#""http://" is not a valid proxy URL: empty host"#,
            ),
            (
                "http://ht!tp:3128",
                r#""http://ht!tp:3128" is not a valid proxy URL: invalid host "ht!tp""#,
            ),
            (
                "socks5://p:1080",
                r#""socks5://p:1080" is not a valid proxy URL: unsupported scheme "socks5"; use http:// or https://"#,
            ),
            (
                "http://p:99999",
                r#""http://p:99999" is not a valid proxy URL: invalid port number"#,
            ),
            (
                "http://u:pw@p:x",
                r#""http://<redacted>@p:x" is not a valid proxy URL: invalid port number"#,
            ),
        ];
        for (value, expected) in bad {
            for variable in ["DS_PROXY_HTTP_PROXY", "DS_PROXY_HTTPS_PROXY"] {
                let mut config = HostConfig::default();
                let result = config.apply_env(&env_of(&[(variable, value)]));
                assert_eq!(
                    config_error_of(result),
                    (variable.to_owned(), expected.to_owned())
                );
            }
            for (field, variable) in [("HTTPProxy", "HTTP_PROXY"), ("HTTPSProxy", "https_proxy")] {
                let json = format!(r#"{{"Proxy":{{"{field}":{value:?}}}}}"#);
                let config = HostConfig::from_json(json.as_bytes()).unwrap();
                let result = config.to_settings(&no_env, Path::new(HOME));
                assert_eq!(
                    config_error_of(result),
                    (format!("Proxy.{field}"), expected.to_owned())
                );
                let from_env = env_of(&[(variable, value)]);
                let result = HostConfig::default().to_settings(&from_env, Path::new(HOME));
                assert_eq!(
                    config_error_of(result),
                    (variable.to_owned(), expected.to_owned())
                );
            }
        }
        // Expanded first, like every proxy value; a bare host means http://.
        let env = env_of(&[
            ("DS_PROXY_HTTPS_PROXY", "${PROXY_HOST}:3128"),
            ("PROXY_HOST", "p!"),
        ]);
        let (source, _) = config_error_of(HostConfig::default().apply_env(&env));
        assert_eq!(source, "DS_PROXY_HTTPS_PROXY");
        for good in [
            "proxy:3128",
            "HTTPS://proxy.corp",
            "http://u:p@10.0.0.1:8080",
            "http://[::1]:3128/",
        ] {
            let env = env_of(&[("DS_PROXY_HTTPS_PROXY", good)]);
            let mut config = HostConfig::default();
            config.apply_env(&env).unwrap();
            let settings = config.to_settings(&env, Path::new(HOME)).unwrap();
            assert_eq!(settings.proxy.https.as_deref(), Some(good));
        }
    }

    fn settings_with_env(json: &str, env: EnvLookup<'_>) -> Settings {
        HostConfig::from_json(json.as_bytes())
            .unwrap()
            .to_settings(env, Path::new(HOME))
            .unwrap()
    }

    #[test]
    fn registry_lists_are_cleaned() {
        let settings = settings(
            r#"{"Registry":{"Mirrors":[" m.io ",""],
            "InsecureRegistries":["https://h:5000/","h:5000"," ","docker.io","index.docker.io","HTTP://Local:1"]}}"#,
        );
        assert_eq!(settings.mirrors, ["m.io"]);
        assert_eq!(
            settings.insecure_registries,
            ["h:5000", "docker.io", "local:1"]
        );
    }
}
