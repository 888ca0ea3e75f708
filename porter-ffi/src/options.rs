//! Options of each operation, one definition for both surfaces: C callers pass them as a JSON
//! object (unknown keys are rejected, absent keys take the defaults below), uniffi callers as a
//! record with the same fields and defaults.

use serde::Deserialize;

use crate::status::{Failure, porter_status};

/// Options of `pull`: `{"platforms":["linux/amd64"],"all_arch":false,"output":"dist",
/// "insecure":false,"offline":false}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct PullOptions {
    /// Platforms to fetch (`os/arch[/variant]`, comma lists allowed); empty: this platform.
    #[uniffi(default)]
    pub platforms: Vec<String>,
    /// Fetch every platform of the index (not together with `platforms`).
    #[uniffi(default = false)]
    pub all_arch: bool,
    /// Also export into this file or directory (the CLI's `-o`).
    #[uniffi(default = None)]
    pub output: Option<String>,
    /// Allow plain HTTP to the reference's registry.
    #[uniffi(default = false)]
    pub insecure: bool,
    /// Serve only from the cache; never touch the network.
    #[uniffi(default = false)]
    pub offline: bool,
}

/// Options of `export` (a cached artifact to a destination, without the network):
/// `{"platforms":[…],"all_arch":false}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct ExportOptions {
    /// Platforms to export; empty: this platform, straight into the destination.
    #[uniffi(default)]
    pub platforms: Vec<String>,
    /// Export every cached platform into per-platform directories.
    #[uniffi(default = false)]
    pub all_arch: bool,
}

/// Options of `push`: `{"manifest":false,"insecure":false,"tag_latest":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct PushOptions {
    /// The source is a `ds.manifest.yaml` release manifest whatever its name (the CLI's
    /// `--manifest`); otherwise a file is a binary, a `.yaml`/`.yml` file a release manifest and
    /// a directory a tar+gzip layer.
    #[uniffi(default = false)]
    pub manifest: bool,
    /// Allow plain HTTP to the target registry.
    #[uniffi(default = false)]
    pub insecure: bool,
    /// Also tag `latest` when the reference names another tag.
    #[uniffi(default = true)]
    pub tag_latest: bool,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            manifest: false,
            insecure: false,
            tag_latest: true,
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

/// Options of `cache_verify`: `{"repair":false,"insecure":false}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, uniffi::Record)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyOptions {
    /// Delete damaged blobs and fetch damaged or missing ones again.
    #[uniffi(default = false)]
    pub repair: bool,
    /// Allow plain HTTP to the registries a repair fetches from.
    #[uniffi(default = false)]
    pub insecure: bool,
}

/// Parses an options JSON object; `None` (a NULL pointer) means every default.
pub(crate) fn parse<T: Default + for<'de> Deserialize<'de>>(
    json: Option<&str>,
    what: &str,
) -> Result<T, Failure> {
    match json {
        None => Ok(T::default()),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            Failure::new(
                porter_status::PORTER_INVALID_INPUT,
                format!("invalid {what} options: {e}"),
            )
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn absent_options_are_the_defaults() {
        assert_eq!(
            parse::<PullOptions>(None, "pull").unwrap(),
            PullOptions::default()
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
            Some(r#"{"platforms":["linux/amd64,linux/arm64"],"output":"d","insecure":true}"#),
            "pull",
        )
        .unwrap();
        assert_eq!(options.platforms, ["linux/amd64,linux/arm64"]);
        assert_eq!(options.output.as_deref(), Some("d"));
        assert!(options.insecure && !options.all_arch && !options.offline);
    }

    #[test]
    fn unknown_keys_and_bad_json_are_invalid_input() {
        for text in [
            r#"{"platform":["linux/amd64"]}"#,
            "[",
            r#"{"all_arch":"yes"}"#,
        ] {
            let err = parse::<PullOptions>(Some(text), "pull").unwrap_err();
            assert_eq!(err.status, porter_status::PORTER_INVALID_INPUT, "{text}");
            assert!(err.message.starts_with("invalid pull options: "), "{err}");
        }
    }
}
