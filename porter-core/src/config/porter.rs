//! ds-porter's own settings: the `porter` section of DS's `Settings` (`settings.porter.*` in the
//! YAML file, `Settings.porter` in the host-config JSON, `DS_SETTINGS_PORTER_<KEY>` in the
//! environment), plus `DS_OFFLINE`.
//!
//! They live in the plugin's section because DS forwards that section to the plugin untouched,
//! so the same keys work from the standalone CLI and under DS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use super::expand::{EnvLookup, expand_path};
use super::units::{parse_duration, parse_size};
use crate::config::RetryPolicy;
use crate::config::{Mode, SignaturePolicy};
use crate::error::{Error, Result};
use crate::export::ExportLimits;

/// Keys of the `porter` settings section.
pub(super) const KEYS: [&str; 10] = [
    "block_private_redirects",
    "ca_file",
    "certs_dir",
    "chunk_size",
    "export_max_bytes",
    "export_max_entries",
    "offline",
    "request_timeout",
    "retries",
    "signing_key",
];

/// Smallest chunk an upload is split into (`settings.porter.chunk_size`, `push --chunk-size`).
pub const MIN_CHUNK_SIZE: u64 = 64 * 1024;

/// Most retries of a registry request that `settings.porter.retries` (or a front end's
/// per-call option) may ask for.
pub const MAX_RETRIES: u32 = 20;

/// `retry` with `retries` retries after a request's first attempt (a mirror gets no more);
/// `None` above [`MAX_RETRIES`].
pub fn with_retries(retry: &RetryPolicy, retries: u32) -> Option<RetryPolicy> {
    (retries <= MAX_RETRIES).then(|| RetryPolicy {
        attempts: retries + 1,
        mirror_attempts: retry.mirror_attempts.min(retries + 1),
        ..retry.clone()
    })
}

/// The resolved porter section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PorterSection {
    pub ca_files: Vec<PathBuf>,
    pub certs_dirs: Vec<PathBuf>,
    pub offline: bool,
    pub retry: RetryPolicy,
    pub block_private_redirects: Option<bool>,
    pub export_limits: ExportLimits,
    pub signing_key: Option<PathBuf>,
    pub chunk_size: Option<u64>,
}

/// `certs.d` directories searched when `certs_dir` is not set.
fn default_certs_dirs(home: &Path) -> Vec<PathBuf> {
    vec![
        home.join(".config").join("ds").join("certs.d"),
        PathBuf::from("/etc/containers/certs.d"),
        PathBuf::from("/etc/docker/certs.d"),
    ]
}

/// Reads the section; invalid values are ignored with a warning, as DS ignores settings it
/// cannot use.
pub(super) fn resolve(
    section: Option<&Map<String, Value>>,
    env: EnvLookup<'_>,
    home: &Path,
    expand: bool,
) -> PorterSection {
    let get = |key: &str| {
        section.and_then(|s| {
            s.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        })
    };
    let path = |text: &str| {
        if expand {
            expand_path(Path::new(text.trim()), env, home)
        } else {
            PathBuf::from(text.trim())
        }
    };
    let paths = |key: &str| -> Option<Vec<PathBuf>> {
        let list: Vec<String> = match get(key)? {
            Value::String(s) => s.split(',').map(str::to_owned).collect(),
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Value::Null => return None,
            other => {
                tracing::warn!(key, value = %other, "settings.porter: expected a path or a list of paths");
                return None;
            }
        };
        Some(
            list.iter()
                .filter(|s| !s.trim().is_empty())
                .map(|s| path(s))
                .collect(),
        )
    };
    let truthy = |value: &Value| match value {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        ),
        Value::Number(n) => n.as_u64() == Some(1),
        _ => false,
    };

    let mut retry = RetryPolicy::default();
    match get("request_timeout") {
        None | Some(Value::Null) => {}
        Some(value) => {
            let parsed = match value {
                Value::Number(n) => n.as_u64().map(Duration::from_secs).ok_or_else(String::new),
                Value::String(s) => parse_duration(s),
                _ => Err(String::new()),
            };
            match parsed {
                Ok(timeout) if !timeout.is_zero() => retry.attempt_timeout = timeout,
                _ => {
                    tracing::warn!(value = %value, "settings.porter.request_timeout: expected a duration such as 30s")
                }
            }
        }
    }
    match get("retries") {
        None | Some(Value::Null) => {}
        Some(value) => {
            let parsed = match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse().ok(),
                _ => None,
            };
            match parsed
                .and_then(|n| u32::try_from(n).ok())
                .and_then(|n| with_retries(&retry, n))
            {
                Some(limited) => retry = limited,
                None => {
                    tracing::warn!(value = %value, "settings.porter.retries: expected a number from 0 to {MAX_RETRIES}")
                }
            }
        }
    }
    let mut export_limits = ExportLimits::default();
    if let Some(value) = get("export_max_bytes").filter(|v| !v.is_null()) {
        let parsed = match value {
            Value::Number(n) => n.as_u64().ok_or_else(String::new),
            Value::String(s) => parse_size(s),
            _ => Err(String::new()),
        };
        match parsed {
            Ok(bytes) if bytes > 0 => export_limits.max_total_bytes = bytes,
            _ => {
                tracing::warn!(value = %value, "settings.porter.export_max_bytes: expected a size such as 8GiB")
            }
        }
    }
    if let Some(value) = get("export_max_entries").filter(|v| !v.is_null()) {
        let parsed = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        match parsed {
            Some(entries) if entries > 0 => export_limits.max_entries = entries,
            _ => {
                tracing::warn!(value = %value, "settings.porter.export_max_entries: expected a number above 0")
            }
        }
    }
    let offline = get("offline").is_some_and(truthy)
        || env("DS_OFFLINE").is_some_and(|v| truthy(&Value::String(v)));
    let block_private_redirects = match get("block_private_redirects") {
        None | Some(Value::Null) => None,
        Some(value) => Some(truthy(value)),
    };
    let signing_key = match get("signing_key") {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(path(text)),
        None | Some(Value::Null) | Some(Value::String(_)) => None,
        Some(other) => {
            tracing::warn!(value = %other, "settings.porter.signing_key: expected a path");
            None
        }
    };
    let chunk_size = match get("chunk_size").filter(|v| !v.is_null()) {
        None => None,
        Some(value) => {
            let parsed = match value {
                Value::Number(n) => n.as_u64().ok_or_else(String::new),
                Value::String(s) => parse_size(s),
                _ => Err(String::new()),
            };
            match parsed {
                Ok(bytes) if bytes >= MIN_CHUNK_SIZE => Some(bytes),
                _ => {
                    tracing::warn!(value = %value, "settings.porter.chunk_size: expected a size of at least 64KiB, such as 8MiB");
                    None
                }
            }
        }
    };
    PorterSection {
        block_private_redirects,
        chunk_size,
        ca_files: paths("ca_file").unwrap_or_default(),
        certs_dirs: paths("certs_dir").unwrap_or_else(|| default_certs_dirs(home)),
        offline,
        retry,
        export_limits,
        signing_key,
    }
}

/// The member of `object` whose name matches `name` ignoring case and underscores, so both the
/// YAML spelling (`public_keys`) and DS's Go field names (`PublicKeys`) work.
fn member<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let simple = |key: &str| key.replace('_', "").to_ascii_lowercase();
    let wanted = simple(name);
    object
        .iter()
        .rfind(|(key, value)| simple(key) == wanted && !value.is_null())
        .map(|(_, value)| value)
}

/// The `signature` object of the section (`None` when absent).
fn signature_section(section: Option<&Map<String, Value>>) -> Result<Option<&Map<String, Value>>> {
    match section.and_then(|s| member(s, "signature")) {
        None => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(signature_error(
            "",
            format!("expected an object, found {other}"),
        )),
    }
}

fn signature_error(key: &str, reason: String) -> Error {
    let name = if key.is_empty() {
        "settings.porter.signature".to_owned()
    } else {
        format!("settings.porter.signature.{key}")
    };
    Error::Config {
        source_name: name,
        reason,
    }
}

/// A list of paths: an array of strings, or one string.
fn path_list(
    object: &Map<String, Value>,
    key: &str,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Vec<PathBuf>> {
    let items: Vec<&str> = match member(object, key) {
        None => Vec::new(),
        Some(Value::String(text)) => vec![text.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| signature_error(key, format!("expected paths, found {v}")))
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(signature_error(
                key,
                format!("expected a path or a list of paths, found {other}"),
            ));
        }
    };
    Ok(items
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| resolve(Path::new(p.trim())))
        .collect())
}

/// `settings.porter.signature` as a policy (the shape of DS's `Plugins.Signature`; default
/// disabled). Malformed values fail, naming the key: a typo must not switch checking off.
pub(super) fn signature_policy(
    section: Option<&Map<String, Value>>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<SignaturePolicy> {
    let Some(signature) = signature_section(section)? else {
        return Ok(SignaturePolicy::default());
    };
    let mode = match member(signature, "mode") {
        None => Mode::Disabled,
        Some(Value::String(text)) => text
            .parse::<Mode>()
            .map_err(|reason| signature_error("mode", reason))?,
        Some(other) => {
            return Err(signature_error(
                "mode",
                format!("expected text, found {other}"),
            ));
        }
    };
    let allow_unsigned = match member(signature, "allow_unsigned") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(signature_error(
                "allow_unsigned",
                format!("expected true or false, found {other}"),
            ));
        }
    };
    let trust_store = match member(signature, "trust_store") {
        None => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(resolve(Path::new(text.trim()))),
        Some(other) => {
            return Err(signature_error(
                "trust_store",
                format!("expected a directory, found {other}"),
            ));
        }
    };
    Ok(SignaturePolicy {
        mode,
        public_keys: path_list(signature, "public_keys", resolve)?,
        trust_store,
        allow_unsigned,
    })
}

/// `settings.porter.signature.cosign_keys`.
pub(super) fn cosign_keys(
    section: Option<&Map<String, Value>>,
    resolve: &dyn Fn(&Path) -> PathBuf,
) -> Result<Vec<PathBuf>> {
    match signature_section(section)? {
        Some(signature) => path_list(signature, "cosign_keys", resolve),
        None => Ok(Vec::new()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_section_is_read_with_defaults() {
        let home = Path::new("/home/u");
        let none = resolve(None, &|_| None, home, true);
        assert_eq!(none.ca_files, Vec::<PathBuf>::new());
        assert_eq!(none.certs_dirs[0], Path::new("/home/u/.config/ds/certs.d"));
        assert!(!none.offline);
        assert_eq!(none.retry, RetryPolicy::default());

        let section = json!({"CA_File": "~/ca.pem", "certs_dir": ["/a", "/b"], "offline": true,
                             "request_timeout": "5s", "retries": 2,
                             "export_max_bytes": "512MiB", "EXPORT_MAX_ENTRIES": "1000"});
        let read = resolve(section.as_object(), &|_| None, home, true);
        assert_eq!(read.ca_files, [Path::new("/home/u/ca.pem")]);
        assert_eq!(read.certs_dirs, [Path::new("/a"), Path::new("/b")]);
        assert!(read.offline);
        assert_eq!(read.retry.attempt_timeout, Duration::from_secs(5));
        assert_eq!(read.retry.attempts, 3);
        assert_eq!(read.export_limits.max_total_bytes, 512 << 20);
        assert_eq!(read.export_limits.max_entries, 1000);
        assert_eq!(
            read.export_limits.max_entry_bytes,
            ExportLimits::default().max_entry_bytes
        );
        assert_eq!(none.export_limits, ExportLimits::default());
    }

    #[test]
    fn ds_offline_and_bad_values() {
        let section = json!({"request_timeout": "soon", "retries": 99,
                             "export_max_bytes": 0, "export_max_entries": "many"});
        let env = |name: &str| (name == "DS_OFFLINE").then(|| "1".to_owned());
        let read = resolve(section.as_object(), &env, Path::new("/h"), false);
        assert!(read.offline);
        assert_eq!(read.retry, RetryPolicy::default());
        assert_eq!(read.export_limits, ExportLimits::default());
    }
}
