//! The keys DS's `types.Config` has (ds-contract §3.2), for callers that want a misspelt key
//! refused rather than ignored.
//!
//! The plugin reads the host-config JSON tolerantly, as Go does: a newer DS may send fields this
//! version does not know. A program that writes the configuration itself (the FFI's callers)
//! wants the opposite: a typo must not pass silently. Keys are compared case-insensitively, as
//! Go's decoder does; `null` is accepted anywhere; `Plugins` is DS's own and only its shape is
//! checked; `Settings` holds a section per plugin, and only porter's section is porter's to check.

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// What a member of the configuration may hold.
enum Shape {
    /// Any value.
    Value,
    /// An object with these members.
    Object(&'static [(&'static str, Shape)]),
    /// An array of objects with these members.
    Objects(&'static [(&'static str, Shape)]),
    /// `Settings`: a section per plugin; porter's has the keys of `settings.porter`.
    Settings,
}

use Shape::{Object, Objects, Value as Any};

const CONFIG: &[(&str, Shape)] = &[
    (
        "Registry",
        Object(&[
            ("Default", Any),
            ("Mirrors", Any),
            ("InsecureRegistries", Any),
        ]),
    ),
    (
        "Auth",
        Object(&[
            ("DockerConfig", Any),
            (
                "Credentials",
                Objects(&[
                    ("Registry", Any),
                    ("Username", Any),
                    ("Token", Any),
                    ("Password", Any),
                ]),
            ),
        ]),
    ),
    (
        "Cache",
        Object(&[("Dir", Any), ("MaxSize", Any), ("TTL", Any)]),
    ),
    (
        "Logging",
        Object(&[("Level", Any), ("Format", Any), ("Output", Any)]),
    ),
    (
        "Proxy",
        Object(&[("HTTPProxy", Any), ("HTTPSProxy", Any), ("NoProxy", Any)]),
    ),
    (
        "Plugins",
        Object(&[
            ("Dir", Any),
            ("AutoInstall", Any),
            (
                "Sources",
                Objects(&[("Registry", Any), ("VersionConstraint", Any)]),
            ),
            (
                "Signature",
                Object(&[
                    ("Mode", Any),
                    ("PublicKeys", Any),
                    ("TrustStore", Any),
                    ("AllowUnsigned", Any),
                ]),
            ),
        ]),
    ),
    ("Settings", Shape::Settings),
];

/// Refuses host-config JSON (as [`super::settings_from_host_json`] reads it) that has a key
/// `types.Config` lacks, naming the first such key by its path (`Registry.Mirorrs`,
/// `Settings.porter.retry`).
pub fn check_host_json_keys(bytes: &[u8]) -> Result<()> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| Error::Config {
        source_name: "host config JSON".into(),
        reason: e.to_string(),
    })?;
    let unknown = match &value {
        Value::Object(map) => unknown_key(map, CONFIG, ""),
        _ => None,
    };
    match unknown {
        None => Ok(()),
        Some(path) => Err(Error::Config {
            source_name: "host config JSON".into(),
            reason: format!("unknown key {path}"),
        }),
    }
}

/// The path of the first member of `map` that `members` does not name, looking inside objects.
fn unknown_key(map: &Map<String, Value>, members: &[(&str, Shape)], path: &str) -> Option<String> {
    for (key, value) in map {
        let here = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        let Some((_, shape)) = members
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(key))
        else {
            return Some(here);
        };
        let found = match (shape, value) {
            (Object(inner), Value::Object(map)) => unknown_key(map, inner, &here),
            (Objects(inner), Value::Array(items)) => {
                items.iter().enumerate().find_map(|(i, item)| match item {
                    Value::Object(map) => unknown_key(map, inner, &format!("{here}[{i}]")),
                    _ => None,
                })
            }
            (Shape::Settings, Value::Object(sections)) => {
                sections.iter().find_map(|(plugin, section)| match section {
                    Value::Object(map) if plugin == "porter" => map
                        .keys()
                        .find(|k| {
                            !super::porter::KEYS
                                .iter()
                                .any(|known| known.eq_ignore_ascii_case(k))
                        })
                        .map(|k| format!("{here}.porter.{k}")),
                    _ => None,
                })
            }
            // Values of the wrong type are the reader's to report, with the same path.
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn unknown(json: &str) -> Option<String> {
        match check_host_json_keys(json.as_bytes()) {
            Ok(()) => None,
            Err(Error::Config { reason, .. }) => Some(reason),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_key_of_ds_config_is_known_in_any_case() {
        let full = r#"{"Registry":{"Default":"ghcr.io/delivery-station","Mirrors":[],"InsecureRegistries":null},
 "Auth":{"DockerConfig":"/home/u/.docker/config.json",
         "Credentials":[{"Registry":"ghcr.io","Username":"u","Token":"t","Password":""}]},
 "Cache":{"Dir":"/home/u/.cache/ds","MaxSize":10737418240,"TTL":604800000000000},
 "Logging":{"Level":"info","Format":"text","Output":"stdout"},
 "Proxy":{"HTTPProxy":"","HTTPSProxy":"","NoProxy":""},
 "Plugins":{"Dir":"/p","AutoInstall":true,"Sources":[{"Registry":"r","VersionConstraint":"^1"}],
            "Signature":{"Mode":"permissive","PublicKeys":[],"TrustStore":"/t","AllowUnsigned":true}},
 "Settings":{"porter":{"Retries":2,"request_timeout":"5s"},"other":{"anything":1}}}"#;
        assert_eq!(unknown(full), None);
        assert_eq!(unknown(r#"{"cache":{"dir":"/c"},"registry":null}"#), None);
        assert_eq!(unknown("null"), None);
    }

    #[test]
    fn a_misspelt_key_is_named_by_its_path() {
        for (json, path) in [
            (r#"{"Cahce":{}}"#, "Cahce"),
            (r#"{"Registry":{"Mirorrs":[]}}"#, "Registry.Mirorrs"),
            (
                r#"{"Auth":{"Credentials":[{"Registry":"r"},{"User":"u"}]}}"#,
                "Auth.Credentials[1].User",
            ),
            (
                r#"{"Settings":{"porter":{"retry":1}}}"#,
                "Settings.porter.retry",
            ),
            (
                r#"{"Plugins":{"Signature":{"Mod":"strict"}}}"#,
                "Plugins.Signature.Mod",
            ),
        ] {
            assert_eq!(unknown(json), Some(format!("unknown key {path}")), "{json}");
        }
    }
}
