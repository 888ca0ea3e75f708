//! Options of each operation, one definition for both surfaces: C callers pass them as a JSON
//! object (`null` or a NULL pointer means every default; unknown keys are refused, naming the
//! key; absent keys take the defaults below), uniffi callers as a record with the same fields
//! and defaults.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::status::{Failure, porter_status};

/// Options of `pull`: `{"platforms":["linux/amd64"],"all_arch":false,"output":"dist",
/// "overwrite":false,"insecure":false,"offline":false,"timeout_ms":60000,"retries":2}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct PullOptions {
    /// Platforms to fetch (`os/arch[/variant]`, comma lists allowed); empty: this platform.
    #[uniffi(default)]
    pub platforms: Vec<String>,
    /// Fetch every platform of the index (not together with `platforms`).
    #[uniffi(default = false)]
    pub all_arch: bool,
    /// Also export into this file or directory; absent: no export. Never empty.
    #[uniffi(default = None)]
    pub output: Option<String>,
    /// Replace a file (anything but a directory) that exists at `output`.
    #[uniffi(default = false)]
    pub overwrite: bool,
    /// Allow plain HTTP to the reference's registry.
    #[uniffi(default = false)]
    pub insecure: bool,
    /// Serve only from the cache; never touch the network.
    #[uniffi(default = false)]
    pub offline: bool,
    /// The most time the call may take, in milliseconds; absent: no limit.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// Retries of a failed registry request (0–20); absent: the configuration's
    /// (`settings.porter.retries`, 4 by default).
    #[uniffi(default = None)]
    pub retries: Option<u32>,
}

/// Options of `export` (a cached artifact to a destination, without the network):
/// `{"platforms":[…],"all_arch":false,"overwrite":false,"timeout_ms":60000}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct ExportOptions {
    /// Platforms to export; empty: this platform, straight into the destination.
    #[uniffi(default)]
    pub platforms: Vec<String>,
    /// Export every cached platform into per-platform directories.
    #[uniffi(default = false)]
    pub all_arch: bool,
    /// Replace a file (anything but a directory) that exists at the destination.
    #[uniffi(default = false)]
    pub overwrite: bool,
    /// The most time the call may take, in milliseconds; absent: no limit.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
}

/// Options of `push`: `{"manifest":false,"insecure":false,"tag_latest":true,"timeout_ms":60000,
/// "retries":2}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct PushOptions {
    /// The source is a `ds.manifest.yaml` release manifest whatever its name; otherwise a file
    /// is a binary, a `.yaml`/`.yml` file a release manifest and a directory a tar+gzip layer.
    #[uniffi(default = false)]
    pub manifest: bool,
    /// Allow plain HTTP to the target registry.
    #[uniffi(default = false)]
    pub insecure: bool,
    /// Also tag `latest` when the reference names another tag.
    #[uniffi(default = true)]
    pub tag_latest: bool,
    /// The most time the call may take, in milliseconds; absent: no limit.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// Retries of a failed registry request (0–20); absent: the configuration's.
    #[uniffi(default = None)]
    pub retries: Option<u32>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            manifest: false,
            insecure: false,
            tag_latest: true,
            timeout_ms: None,
            retries: None,
        }
    }
}

/// Options of `cache_prune`: `{"ttl_seconds":604800,"max_size_bytes":10737418240}`; an absent
/// limit is the configured one (`Cache.TTL`, `Cache.MaxSize`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct PruneOptions {
    /// Remove artifacts not used for this many seconds.
    #[uniffi(default = None)]
    pub ttl_seconds: Option<u64>,
    /// Remove least recently used artifacts until the blobs take at most this many bytes.
    #[uniffi(default = None)]
    pub max_size_bytes: Option<u64>,
}

/// Options of `cache_verify`: `{"repair":false,"insecure":false,"timeout_ms":60000,
/// "retries":2}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyOptions {
    /// Delete damaged blobs and fetch damaged or missing ones again.
    #[uniffi(default = false)]
    pub repair: bool,
    /// Allow plain HTTP to the registries a repair fetches from.
    #[uniffi(default = false)]
    pub insecure: bool,
    /// The most time the call may take, in milliseconds; absent: no limit.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// Retries of a failed registry request (0–20); absent: the configuration's.
    #[uniffi(default = None)]
    pub retries: Option<u32>,
}

/// Options of `inspect`: `{"insecure":false,"offline":false,"timeout_ms":60000,"retries":2}`
/// (the C function also takes `"raw"`, see [`InspectCallOptions`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct InspectOptions {
    /// Allow plain HTTP to the reference's registry.
    #[uniffi(default = false)]
    pub insecure: bool,
    /// Answer from the cache alone; never touch the network.
    #[uniffi(default = false)]
    pub offline: bool,
    /// The most time the call may take, in milliseconds; absent: no limit.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// Retries of a failed registry request (0–20); absent: the configuration's.
    #[uniffi(default = None)]
    pub retries: Option<u32>,
}

/// The options JSON of `porter_client_inspect`: [`InspectOptions`] and `"raw"`, which returns
/// the root manifest or index exactly as served instead of the inspection. (uniffi's
/// `Inspection` record carries both, so its options have no `raw`.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct InspectCallOptions {
    pub(crate) raw: bool,
    pub(crate) insecure: bool,
    pub(crate) offline: bool,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) retries: Option<u32>,
}

impl InspectCallOptions {
    /// The options the engine reads, and whether the raw document was asked for.
    pub(crate) fn split(self) -> (InspectOptions, bool) {
        let options = InspectOptions {
            insecure: self.insecure,
            offline: self.offline,
            timeout_ms: self.timeout_ms,
            retries: self.retries,
        };
        (options, self.raw)
    }
}

/// Options of `tags`: `{"semver":"^1.2","latest":false,"insecure":false,"page_size":100,
/// "timeout_ms":60000,"retries":2}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct TagsOptions {
    /// Keep only tags that are semantic versions this constraint accepts (`>=1.2, <2`, `^1.2`,
    /// `~1.2.3`, `1.x`, alternatives joined by `||`), in version order.
    #[uniffi(default = None)]
    pub semver: Option<String>,
    /// Only the highest version (of those `semver` keeps, else of every version tag); no such
    /// tag is `NotFound`.
    #[uniffi(default = false)]
    pub latest: bool,
    /// Allow plain HTTP to the repository's registry.
    #[uniffi(default = false)]
    pub insecure: bool,
    /// Tags asked for per page (1–65535; the registry may send fewer); absent: 100. Every page is
    /// followed.
    #[uniffi(default = None)]
    pub page_size: Option<u32>,
    /// The most time the call may take, in milliseconds; absent: no limit.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// Retries of a failed registry request (0–20); absent: the configuration's.
    #[uniffi(default = None)]
    pub retries: Option<u32>,
}

/// Options of `copy`: `{"platforms":["linux/amd64"],"all_arch":false,"insecure":false,
/// "timeout_ms":60000,"retries":2}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct CopyOptions {
    /// Platforms to copy (`os/arch[/variant]`, comma lists allowed) under a new index over the
    /// source's own platform manifests; empty: every platform, every digest kept.
    #[uniffi(default)]
    pub platforms: Vec<String>,
    /// Copy every platform (the default, spelled out; not together with `platforms`).
    #[uniffi(default = false)]
    pub all_arch: bool,
    /// Allow plain HTTP to the registries the source and the destination name.
    #[uniffi(default = false)]
    pub insecure: bool,
    /// The most time the call may take, in milliseconds; absent: no limit.
    #[uniffi(default = None)]
    pub timeout_ms: Option<u64>,
    /// Retries of a failed registry request (0–20); absent: the configuration's.
    #[uniffi(default = None)]
    pub retries: Option<u32>,
}

/// A call's `timeout_ms` as a duration; 0 is refused (it could never succeed).
pub(crate) fn timeout(timeout_ms: Option<u64>) -> Result<Option<Duration>, Failure> {
    match timeout_ms {
        Some(0) => Err(invalid(
            "timeout_ms must be at least 1 (leave it out for no limit)",
        )),
        other => Ok(other.map(Duration::from_millis)),
    }
}

/// The export destination `output`: never empty, and not an existing file (or link to one)
/// unless `overwrite` says so. A directory receives the export as the engine's rules say.
pub(crate) fn destination(output: &str, overwrite: bool) -> Result<PathBuf, Failure> {
    if output.trim().is_empty() {
        return Err(invalid(
            "output is empty: name a file or directory to export to (leave output out of pull \
             options to skip the export)",
        ));
    }
    let path = PathBuf::from(output);
    let existing = std::fs::symlink_metadata(&path).is_ok();
    let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
    if existing && !is_dir && !overwrite {
        return Err(Failure::new(
            porter_status::PORTER_INVALID_INPUT,
            format!(
                "output {output} already exists and is not a directory; set \"overwrite\": true \
                 to replace it"
            ),
        ));
    }
    Ok(path)
}

/// Parses the names of `cache_remove`: a JSON array of strings (ids, digests or references),
/// none of them empty.
pub(crate) fn names(json: &str) -> Result<Vec<String>, Failure> {
    let names: Vec<String> = serde_json::from_str(json).map_err(|e| {
        invalid(&format!(
            "invalid names_json: expected a JSON array of ids, digests or references: {e}"
        ))
    })?;
    check_names(&names)?;
    Ok(names)
}

/// Refuses an empty name among the names of `cache_remove`, as the CLI does.
pub(crate) fn check_names(names: &[String]) -> Result<(), Failure> {
    if names.iter().any(|n| n.trim().is_empty()) {
        return Err(invalid("an empty name cannot name a cached artifact"));
    }
    Ok(())
}

/// Parses an options JSON object; `None` (a NULL pointer) and `null` mean every default.
pub(crate) fn parse<T: Default + for<'de> Deserialize<'de>>(
    json: Option<&str>,
    what: &str,
) -> Result<T, Failure> {
    match json {
        None => Ok(T::default()),
        Some(text) => serde_json::from_str::<Option<T>>(text)
            .map(Option::unwrap_or_default)
            .map_err(|e| invalid(&format!("invalid {what} options: {e}"))),
    }
}

fn invalid(message: &str) -> Failure {
    Failure::new(porter_status::PORTER_INVALID_INPUT, message)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn absent_and_null_options_are_the_defaults() {
        assert_eq!(
            parse::<PullOptions>(None, "pull").unwrap(),
            PullOptions::default()
        );
        assert_eq!(
            parse::<PullOptions>(Some("null"), "pull").unwrap(),
            PullOptions::default()
        );
        assert_eq!(
            parse::<PushOptions>(Some(" null "), "push").unwrap(),
            PushOptions::default()
        );
        assert_eq!(
            parse::<PushOptions>(Some("{}"), "push").unwrap(),
            PushOptions::default()
        );
        assert!(PushOptions::default().tag_latest);
    }

    #[test]
    fn options_parse_every_field() {
        let options: PullOptions = parse(
            Some(
                r#"{"platforms":["linux/amd64,linux/arm64"],"output":"d","insecure":true,
                    "overwrite":true,"timeout_ms":1500,"retries":0}"#,
            ),
            "pull",
        )
        .unwrap();
        assert_eq!(options.platforms, ["linux/amd64,linux/arm64"]);
        assert_eq!(options.output.as_deref(), Some("d"));
        assert!(options.insecure && options.overwrite && !options.all_arch && !options.offline);
        assert_eq!((options.timeout_ms, options.retries), (Some(1500), Some(0)));
        assert_eq!(
            timeout(options.timeout_ms).unwrap(),
            Some(Duration::from_millis(1500))
        );
    }

    #[test]
    fn unknown_keys_and_bad_json_are_invalid_input() {
        for (text, names) in [
            (r#"{"platform":["linux/amd64"]}"#, "platform"),
            (r#"{"timeout":5}"#, "timeout"),
            ("[", "EOF"),
            (r#"{"all_arch":"yes"}"#, "boolean"),
        ] {
            let err = parse::<PullOptions>(Some(text), "pull").unwrap_err();
            assert_eq!(err.status, porter_status::PORTER_INVALID_INPUT, "{text}");
            assert!(err.message.starts_with("invalid pull options: "), "{err}");
            assert!(err.message.contains(names), "{err}");
        }
    }

    #[test]
    fn inspect_options_take_raw_only_in_the_c_options() {
        let (options, raw) = parse::<InspectCallOptions>(
            Some(r#"{"raw":true,"offline":true,"retries":0}"#),
            "inspect",
        )
        .unwrap()
        .split();
        assert!(raw && options.offline && !options.insecure);
        assert_eq!(options.retries, Some(0));
        let (options, raw) = parse::<InspectCallOptions>(Some("null"), "inspect")
            .unwrap()
            .split();
        assert_eq!((options, raw), (InspectOptions::default(), false));
        let err = parse::<InspectCallOptions>(Some(r#"{"format":"raw"}"#), "inspect").unwrap_err();
        assert!(err.message.contains("unknown field `format`"), "{err}");
    }

    #[test]
    fn tags_and_copy_options_parse_and_refuse_unknown_keys() {
        let tags: TagsOptions = parse(
            Some(r#"{"semver":"^1.2","latest":true,"page_size":2,"insecure":true}"#),
            "tags",
        )
        .unwrap();
        assert_eq!(tags.semver.as_deref(), Some("^1.2"));
        assert!(tags.latest && tags.insecure);
        assert_eq!(tags.page_size, Some(2));
        let err = parse::<TagsOptions>(Some(r#"{"constraint":"^1"}"#), "tags").unwrap_err();
        assert!(err.message.contains("unknown field `constraint`"), "{err}");

        let copy: CopyOptions =
            parse(Some(r#"{"platforms":["linux/arm64"],"retries":1}"#), "copy").unwrap();
        assert_eq!(copy.platforms, ["linux/arm64"]);
        assert_eq!(copy.retries, Some(1));
        let err =
            parse::<CopyOptions>(Some(r#"{"platform":["linux/arm64"]}"#), "copy").unwrap_err();
        assert!(err.message.starts_with("invalid copy options: "), "{err}");
    }

    #[test]
    fn cache_remove_names_are_a_json_array_of_non_empty_strings() {
        assert_eq!(names(r#"["abc", "r:1"]"#).unwrap(), ["abc", "r:1"]);
        assert!(names("[]").unwrap().is_empty());
        for bad in ["null", "\"abc\"", "[1]", "["] {
            let err = names(bad).unwrap_err();
            assert_eq!(err.status, porter_status::PORTER_INVALID_INPUT, "{bad}");
            assert!(err.message.starts_with("invalid names_json"), "{err}");
        }
        let err = names(r#"["abc", " "]"#).unwrap_err();
        assert!(err.message.contains("empty name"), "{err}");
    }

    #[test]
    fn a_zero_timeout_is_refused_by_name() {
        let err = timeout(Some(0)).unwrap_err();
        assert!(err.message.contains("timeout_ms"), "{err}");
        assert_eq!(timeout(None).unwrap(), None);
    }

    #[test]
    fn an_empty_output_is_refused_and_an_existing_file_kept_unless_overwrite() {
        let err = destination(" ", false).unwrap_err();
        assert_eq!(err.status, porter_status::PORTER_INVALID_INPUT);
        assert!(err.message.starts_with("output is empty"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tool");
        std::fs::write(&file, "mine").unwrap();
        let file = file.to_str().unwrap();
        let err = destination(file, false).unwrap_err();
        assert!(err.message.contains("\"overwrite\": true"), "{err}");
        assert_eq!(destination(file, true).unwrap(), PathBuf::from(file));
        #[cfg(unix)]
        {
            let link = dir.path().join("dangling");
            std::os::unix::fs::symlink(dir.path().join("nothing"), &link).unwrap();
            assert!(destination(link.to_str().unwrap(), false).is_err());
        }
        let existing_dir = dir.path().to_str().unwrap();
        assert!(destination(existing_dir, false).is_ok());
        let absent = dir.path().join("new.bin");
        assert!(destination(absent.to_str().unwrap(), false).is_ok());
    }
}
