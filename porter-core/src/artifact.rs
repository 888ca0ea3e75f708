//! The `ArtifactResult` JSON model that DS and scripts read (stdout of `pull`/`push`, entries of
//! `list`, each cache entry's `metadata.json`), plus what is derived from an artifact's
//! annotations: `plugin_info` and finalizer requests.
//!
//! Field names, order and omit rules follow the Go plugin's `encoding/json` output exactly, and so
//! does its string escaping (`<`, `>`, `&` as `\u003c`, `\u003e`, `\u0026`).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use crate::display::{escape_remote, has_unsafe_chars};

/// Go's zero `time.Time` as `encoding/json` writes it.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The result of a pull or push, and a cache entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactResult {
    /// First 16 hex characters of the root digest.
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    /// The reference as the user gave it.
    #[serde(default, deserialize_with = "null_default")]
    pub reference: String,
    /// Root digest (`sha256:…`).
    #[serde(default, deserialize_with = "null_default")]
    pub digest: String,
    /// Size of the root index/manifest JSON in bytes (as the Go plugin reports it).
    #[serde(default, deserialize_with = "null_default")]
    pub size: i64,
    /// The cache entry directory.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub local_path: String,
    /// Annotations of the artifact (and push bookkeeping), keys sorted.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub metadata: BTreeMap<String, String>,
    /// Present when the artifact declares `ds.plugin.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin_info: Option<PluginInfo>,
    /// Whether the artifact is in the cache.
    #[serde(default, deserialize_with = "null_default")]
    pub cached: bool,
    /// When it was cached (RFC 3339 with local offset), or [`ZERO_TIME`].
    #[serde(default = "zero_time", deserialize_with = "null_zero_time")]
    pub cached_at: String,
    /// Paths written by an export.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub exported_files: Vec<String>,
    /// Served from the cache because ds-porter is offline or the registry could not be
    /// reached (not part of the Go plugin's output; omitted when false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub offline: bool,
    /// Bytes this pull fetched from the registry or layout: manifests and blobs that were not
    /// cached yet (0 when everything was). Only in a pull's result; not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downloaded_bytes: Option<u64>,
    /// Bytes of the artifact as this pull selected it: the root index or manifest, the selected
    /// platforms' manifests and their configs and layers. In the cache entry, the latest pull's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_size: Option<u64>,
    /// When the artifact was first cached (`cached_at` is the latest pull); same format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_cached_at: Option<String>,
    /// How each exported platform fared against the signature policy (not part of the Go
    /// plugin's output; omitted when nothing was checked).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_default"
    )]
    pub signatures: Vec<SignatureCheck>,
}

impl Default for ArtifactResult {
    /// Empty, not cached, `cached_at` the zero time.
    fn default() -> Self {
        ArtifactResult {
            id: String::new(),
            reference: String::new(),
            digest: String::new(),
            size: 0,
            local_path: String::new(),
            metadata: BTreeMap::new(),
            plugin_info: None,
            cached: false,
            cached_at: zero_time(),
            exported_files: Vec::new(),
            offline: false,
            downloaded_bytes: None,
            total_size: None,
            first_cached_at: None,
            signatures: Vec::new(),
        }
    }
}

/// Plugin details declared through `ds.plugin.*` annotations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// `ds.plugin.name`.
    #[serde(default, deserialize_with = "null_default")]
    pub plugin_name: String,
    /// `ds.plugin.version`.
    #[serde(
        default,
        skip_serializing_if = "String::is_empty",
        deserialize_with = "null_default"
    )]
    pub version: String,
    /// `ds.plugin.param.<name>` values.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_default"
    )]
    pub parameters: BTreeMap<String, String>,
}

/// A follow-up plugin run the host should perform after a successful pull.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finalizer {
    /// Plugin name.
    pub name: String,
    /// Operation (default `upload`).
    pub operation: String,
    /// Arguments.
    pub args: Vec<String>,
}

fn zero_time() -> String {
    ZERO_TIME.to_owned()
}

fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_zero_time<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_else(zero_time))
}

impl ArtifactResult {
    /// The result of a push of the root `digest` (`size` bytes) as `reference`: nothing is
    /// cached, so no path, and Go's zero time as `cached_at`.
    pub(crate) fn pushed(
        reference: String,
        digest: &crate::digest::Digest,
        size: usize,
        metadata: BTreeMap<String, String>,
    ) -> Self {
        ArtifactResult {
            id: digest.short_id().to_owned(),
            reference,
            digest: digest.to_string(),
            size: size as i64,
            local_path: String::new(),
            metadata,
            plugin_info: None,
            cached: false,
            cached_at: ZERO_TIME.to_owned(),
            exported_files: Vec::new(),
            offline: false,
            ..ArtifactResult::default()
        }
    }

    /// Compact JSON plus a newline, as printed on stdout.
    pub fn to_stdout_json(&self) -> String {
        let mut s = go_json(self, false);
        s.push('\n');
        s
    }

    /// Two-space indented JSON without a trailing newline, as stored in `metadata.json`.
    pub fn to_metadata_json(&self) -> String {
        go_json(self, true)
    }
}

/// Serialises like Go's `encoding/json`: HTML-sensitive characters escaped.
pub fn go_json<T: Serialize + ?Sized>(value: &T, pretty: bool) -> String {
    let raw = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    // Serialising these plain data types cannot fail (string keys, no non-finite floats).
    go_escape(&raw.unwrap_or_default())
}

/// Rewrites characters Go escapes inside JSON strings. They can only occur inside strings, so a
/// plain replacement over the serialised text is exact.
fn go_escape(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// Current local time as Go's `time.Now()` marshals it (RFC 3339, nanoseconds with trailing zeros
/// trimmed, local offset or `Z`).
pub fn now_rfc3339() -> String {
    let now = chrono::Local::now();
    let s = now.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    // AutoSi picks 0, 3, 6 or 9 digits; Go trims trailing zeros of the 9-digit form.
    trim_fraction(&s)
}

fn trim_fraction(s: &str) -> String {
    let Some(dot) = s.find('.') else {
        return s.to_owned();
    };
    let end = s[dot + 1..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(s.len(), |i| dot + 1 + i);
    let digits = s[dot + 1..end].trim_end_matches('0');
    if digits.is_empty() {
        format!("{}{}", &s[..dot], &s[end..])
    } else {
        format!("{}.{}{}", &s[..dot], digits, &s[end..])
    }
}

/// `plugin_info` from annotations: present iff `ds.plugin.name` exists (even empty).
pub fn plugin_info(metadata: &BTreeMap<String, String>) -> Option<PluginInfo> {
    let name = metadata.get("ds.plugin.name")?;
    let parameters = metadata
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("ds.plugin.param.")
                .map(|p| (p.to_owned(), v.clone()))
        })
        .collect();
    Some(PluginInfo {
        plugin_name: name.clone(),
        version: metadata
            .get("ds.plugin.version")
            .cloned()
            .unwrap_or_default(),
        parameters,
    })
}

fn first_non_blank<'a>(metadata: &'a BTreeMap<String, String>, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .filter_map(|k| metadata.get(*k))
        .map(|v| v.trim())
        .find(|v| !v.is_empty())
}

/// After an export: records the absolute output path as the finalizer's argument when the
/// artifact names a finalizer and does not fix its arguments itself (§7.8).
pub fn add_export_finalizer_args(metadata: &mut BTreeMap<String, String>, abs_output: &str) {
    if first_non_blank(metadata, &["ds.finalizer", "finalizer"]).is_none()
        || metadata.contains_key("ds.finalizer.args")
    {
        return;
    }
    let args = go_json(&[abs_output], false);
    metadata.insert("ds.finalizer.args".to_owned(), args);
}

/// Argument names a finalizer's command line gets from ds-porter or DS, never from an artifact:
/// what `execute-plugin` fills (`artifact=`, `artifact-id=`, `reference=`, `digest=`, the
/// operation) and DS's positional slots (`arg<N>`). Compared without regard to case.
const RESERVED_ARGS: [&str; 6] = [
    "artifact",
    "artifact-id",
    "reference",
    "digest",
    "operation",
    "op",
];

/// Why an argument an artifact supplies for a finalizer is refused: `name` is the part before
/// `=` (`None` for a positional value).
fn refusal(name: Option<&str>, value: &str) -> Option<&'static str> {
    if let Some(name) = name {
        let lower = name.to_ascii_lowercase();
        let slot = lower
            .strip_prefix("arg")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if RESERVED_ARGS.contains(&lower.as_str()) || slot {
            return Some("the name is reserved for what ds-porter and DS pass themselves");
        }
        let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if name.is_empty() || !name.bytes().all(valid) {
            return Some("a name may only contain letters, digits, '.', '_' and '-'");
        }
    }
    if has_unsafe_chars(value) {
        return Some("the value contains control characters");
    }
    None
}

/// The `<name>=<value>` arguments an artifact's `ds.plugin.param.<name>` parameters add to the
/// finalizer `execute-plugin` returns. A reserved or malformed name, or a value with control
/// characters, is dropped with a warning naming it.
pub fn param_args(parameters: &BTreeMap<String, String>) -> Vec<String> {
    parameters
        .iter()
        .filter(|(name, value)| match refusal(Some(name), value) {
            None => true,
            Some(reason) => {
                tracing::warn!(
                    parameter = %escape_remote(name),
                    "dropped the artifact's parameter ds.plugin.param.{} from the finalizer's arguments: {reason}",
                    escape_remote(name)
                );
                false
            }
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect()
}

/// One item of an artifact's `ds.finalizer.args` as DS will read it (a `key=value` when it has
/// a `=` after its first character, else a positional value), or `None` with a warning when
/// [`param_args`]' rules refuse it.
fn finalizer_arg(item: String) -> Option<String> {
    let (name, value) = match item.split_once('=') {
        Some((name, value)) if !name.is_empty() => (Some(name), value),
        _ => (None, item.as_str()),
    };
    match refusal(name, value) {
        None => Some(item),
        Some(reason) => {
            tracing::warn!(
                argument = %escape_remote(&item),
                "dropped an item of the artifact's ds.finalizer.args: {reason}"
            );
            None
        }
    }
}

/// The finalizer requested by an artifact's metadata, if any (§7.8).
pub fn finalizers(metadata: &BTreeMap<String, String>) -> Vec<Finalizer> {
    let Some(name) = first_non_blank(metadata, &["ds.finalizer", "finalizer"]) else {
        return Vec::new();
    };
    let operation = first_non_blank(metadata, &["ds.finalizer.operation", "finalizer.operation"])
        .unwrap_or("upload");
    let args = match first_non_blank(metadata, &["ds.finalizer.args", "finalizer.args"]) {
        None => Vec::new(),
        Some(raw) => {
            let parsed = raw
                .starts_with('[')
                .then(|| serde_json::from_str::<Vec<String>>(raw).ok())
                .flatten();
            let items: Vec<String> = match parsed {
                Some(list) => list,
                None => raw.split(',').map(str::to_owned).collect(),
            };
            items
                .into_iter()
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .filter_map(finalizer_arg)
                .collect()
        }
    };
    vec![Finalizer {
        name: name.to_owned(),
        operation: operation.to_owned(),
        args,
    }]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn field_order_and_omit_rules_match_go() {
        let r = ArtifactResult {
            id: "0123456789abcdef".into(),
            reference: "r/x:1".into(),
            digest: "sha256:00".into(),
            size: 10,
            local_path: String::new(),
            metadata: BTreeMap::new(),
            plugin_info: None,
            cached: false,
            cached_at: ZERO_TIME.into(),
            exported_files: vec![],
            offline: false,
            ..ArtifactResult::default()
        };
        assert_eq!(
            r.to_stdout_json(),
            "{\"id\":\"0123456789abcdef\",\"reference\":\"r/x:1\",\"digest\":\"sha256:00\",\"size\":10,\"cached\":false,\"cached_at\":\"0001-01-01T00:00:00Z\"}\n"
        );
    }

    #[test]
    fn html_characters_are_escaped_like_go() {
        assert_eq!(
            go_json(&meta(&[("k", "a<b>&c")]), false),
            r#"{"k":"a\u003cb\u003e\u0026c"}"#
        );
    }

    #[test]
    fn metadata_json_tolerates_nulls() {
        let r: ArtifactResult = serde_json::from_str(
            r#"{"id":"test123","reference":"registry.test/artifact:v1.0.0","digest":"sha256:abc123","size":1024,"metadata":null,"cached_at":null}"#,
        )
        .unwrap();
        assert_eq!(r.cached_at, ZERO_TIME);
        assert!(!r.cached);
    }

    #[test]
    fn fraction_digits_are_trimmed() {
        assert_eq!(
            trim_fraction("2026-01-02T03:04:05.120000000+01:00"),
            "2026-01-02T03:04:05.12+01:00"
        );
        assert_eq!(
            trim_fraction("2026-01-02T03:04:05.000Z"),
            "2026-01-02T03:04:05Z"
        );
        assert_eq!(
            trim_fraction("2026-01-02T03:04:05Z"),
            "2026-01-02T03:04:05Z"
        );
        assert!(!now_rfc3339().is_empty());
    }

    #[test]
    fn plugin_info_from_annotations() {
        let info = plugin_info(&meta(&[
            ("ds.plugin.name", "x"),
            ("ds.plugin.version", "1"),
            ("ds.plugin.param.a", "b"),
        ]))
        .unwrap();
        assert_eq!(
            go_json(&info, false),
            r#"{"plugin_name":"x","version":"1","parameters":{"a":"b"}}"#
        );
        assert!(plugin_info(&meta(&[("other", "x")])).is_none());
    }

    #[test]
    fn finalizer_rules() {
        // case 66
        let mut m = meta(&[("ds.finalizer", "uploader")]);
        add_export_finalizer_args(&mut m, "/abs/out");
        assert_eq!(m["ds.finalizer.args"], r#"["/abs/out"]"#);
        assert_eq!(
            finalizers(&m),
            vec![Finalizer {
                name: "uploader".into(),
                operation: "upload".into(),
                args: vec!["/abs/out".into()]
            }]
        );
        // case 67
        let m = meta(&[
            ("finalizer", "up"),
            ("finalizer.operation", "sync"),
            ("finalizer.args", "a, b,,c"),
        ]);
        assert_eq!(finalizers(&m)[0].args, ["a", "b", "c"]);
        assert_eq!(finalizers(&m)[0].operation, "sync");
        // case 68
        let m = meta(&[
            ("ds.finalizer", "up"),
            ("ds.finalizer.args", r#"[" x ",""]"#),
        ]);
        assert_eq!(finalizers(&m)[0].args, ["x"]);
        // case 69
        assert!(finalizers(&meta(&[("ds.finalizer", "  ")])).is_empty());
    }

    #[test]
    fn artifact_parameters_cannot_pose_as_reserved_or_malformed_arguments() {
        let params = meta(&[
            ("artifact", "/home/victim/.ssh"),
            ("Digest", "sha256:0000"),
            ("reference", "evil/ref:1"),
            ("artifact-id", "x"),
            ("operation", "delete"),
            ("arg0", "/etc"),
            ("x=y z", "v"),
            ("nl", "a\nb"),
            ("esc", "\u{1b}]0;t\u{7}"),
            ("rtl", "\u{202e}exe.txt"),
            ("", "empty"),
            ("region", "eu-west-1"),
            ("tls.verify_1", "true"),
            ("args", "kept"),
        ]);
        assert_eq!(
            param_args(&params),
            ["args=kept", "region=eu-west-1", "tls.verify_1=true"]
        );
    }

    #[test]
    fn finalizer_args_from_the_artifact_follow_the_same_rules() {
        let m = meta(&[
            ("ds.finalizer", "up"),
            (
                "ds.finalizer.args",
                r#"["/abs/out","artifact=/home/victim/.ssh","k=v","a\nb","bad key=1","=x","ARG1=p"]"#,
            ),
        ]);
        assert_eq!(finalizers(&m)[0].args, ["/abs/out", "k=v", "=x"]);
    }
}

/// How one platform of a pulled artifact fared against the signature policy; the result JSON's
/// `signatures` entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureCheck {
    /// `os/arch[/variant]`, or `unknown` for a manifest without a platform.
    pub platform: String,
    /// `ds` (layer annotations) or `cosign` (a `sha256-<hex>.sig` signature manifest).
    pub scheme: String,
    /// Whether a trusted key verified it; `false` only for an unsigned artifact a permissive
    /// policy let through.
    pub verified: bool,
    /// The id of the key that verified it (for `ds`, the key of the first layer).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key_id: String,
}
