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
use super::units::parse_duration;
use crate::registry::RetryPolicy;

/// Keys of the `porter` settings section.
pub(super) const KEYS: [&str; 5] = [
    "ca_file",
    "certs_dir",
    "offline",
    "request_timeout",
    "retries",
];

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
    let offline = get("offline").is_some_and(truthy)
        || env("DS_OFFLINE").is_some_and(|v| truthy(&Value::String(v)));
    PorterSection {
        ca_files: paths("ca_file").unwrap_or_default(),
        certs_dirs: paths("certs_dir").unwrap_or_else(|| default_certs_dirs(home)),
        offline,
        retry,
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
                             "request_timeout": "5s", "retries": 2});
        let read = resolve(section.as_object(), &|_| None, home, true);
        assert_eq!(read.ca_files, [Path::new("/home/u/ca.pem")]);
        assert_eq!(read.certs_dirs, [Path::new("/a"), Path::new("/b")]);
        assert!(read.offline);
        assert_eq!(read.retry.attempt_timeout, Duration::from_secs(5));
        assert_eq!(read.retry.attempts, 3);
    }

    #[test]
    fn ds_offline_and_bad_values() {
        let section = json!({"request_timeout": "soon", "retries": 99});
        let env = |name: &str| (name == "DS_OFFLINE").then(|| "1".to_owned());
        let read = resolve(section.as_object(), &env, Path::new("/h"), false);
        assert!(read.offline);
        assert_eq!(read.retry, RetryPolicy::default());
    }
}
