//! `ds.manifest.yaml`: the description of a multi-platform release that `push` turns into one
//! manifest per entry under an OCI image index.
//!
//! ```yaml
//! artifact-type: application/vnd.delivery-station.plugin.index.v1+json
//! annotations:
//!   org.opencontainers.image.title: ds-porter
//! manifests:
//!   - platform: linux/amd64
//!     path: bin/linux/amd64/ds-porter          # relative to this file
//!     mediaType: application/vnd.delivery-station.plugin.v1+binary
//! signing-key: keys/release.pem                # optional: sign every layer (DS's scheme)
//! ```
//!
//! Everything is validated before anything is uploaded: paths exist, platforms parse, media types
//! are well formed, no platform appears twice, the list is not empty.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::platform::Platform;

/// Default media type of a file entry.
pub const BINARY_MEDIA_TYPE: &str = "application/vnd.delivery-station.artifact.v1+binary";
/// Default media type of a directory entry (a tar+gzip archive of it).
pub const ARCHIVE_MEDIA_TYPE: &str =
    "application/vnd.delivery-station.artifact.v1+archive.tar+gzip";
/// Default artifact type of the index.
pub const INDEX_ARTIFACT_TYPE: &str = "application/vnd.delivery-station.artifact.index.v1+json";

/// A parsed, validated release manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseManifest {
    /// The index's `artifactType`.
    pub artifact_type: String,
    /// The index's annotations.
    pub annotations: BTreeMap<String, String>,
    /// Entries in file order.
    pub entries: Vec<ReleaseEntry>,
    /// The RSA key to sign every layer with (`signing-key`, relative to the file).
    pub signing_key: Option<PathBuf>,
}

/// One platform of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseEntry {
    /// Its platform.
    pub platform: Platform,
    /// The file or directory (absolute, or relative to the current directory).
    pub path: PathBuf,
    /// The layer media type.
    pub media_type: String,
    /// Whether `path` is a directory (pushed as a tar+gzip archive).
    pub is_dir: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(
        default,
        rename = "artifact-type",
        alias = "artifactType",
        alias = "artifact_type"
    )]
    artifact_type: Option<String>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    manifests: Option<Vec<RawEntry>>,
    #[serde(default, rename = "signing-key", alias = "signing_key")]
    signing_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    platform: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(
        default,
        rename = "mediaType",
        alias = "media-type",
        alias = "media_type"
    )]
    media_type: Option<String>,
}

impl ReleaseManifest {
    /// Reads and validates a manifest file; entry paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Self> {
        let mut text = String::new();
        std::fs::File::open(path)
            .and_then(|file| {
                // One byte over the limit is enough for the parser's size check to refuse it.
                file.take(crate::yaml::MAX_BYTES as u64 + 1)
                    .read_to_string(&mut text)
            })
            .map_err(|e| Error::io("failed to load manifest", path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, &path.display().to_string(), base)
    }

    /// Parses and validates manifest text; `name` appears in errors, `base` anchors paths.
    pub fn parse(text: &str, name: &str, base: &Path) -> Result<Self> {
        let invalid = |reason: String| {
            Error::InvalidInput(format!("failed to parse manifest {name}: {reason}"))
        };
        let raw: RawManifest = if text.trim().is_empty() {
            RawManifest {
                artifact_type: None,
                annotations: None,
                manifests: None,
                signing_key: None,
            }
        } else {
            crate::yaml::from_str(text).map_err(invalid)?
        };
        let raw_entries = raw.manifests.unwrap_or_default();
        if raw_entries.is_empty() {
            return Err(Error::InvalidInput(format!(
                "{name}: manifest must contain at least one entry"
            )));
        }
        let artifact_type = match raw
            .artifact_type
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
        {
            Some(t) => {
                validate_media_type(&t)
                    .map_err(|r| invalid(format!("artifact-type {t:?}: {r}")))?;
                t
            }
            None => INDEX_ARTIFACT_TYPE.to_owned(),
        };
        let mut entries: Vec<ReleaseEntry> = Vec::with_capacity(raw_entries.len());
        for (i, raw) in raw_entries.into_iter().enumerate() {
            let n = i + 1;
            let platform: Platform = raw
                .platform
                .parse()
                .map_err(|e: Error| invalid(format!("entry {n}: {e}")))?;
            if let Some(j) = entries.iter().position(|e| e.platform == platform) {
                return Err(invalid(format!(
                    "entries {} and {n} both have platform {platform}",
                    j + 1
                )));
            }
            let rel = raw
                .path
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty());
            let rel =
                rel.ok_or_else(|| invalid(format!("entry {n} ({platform}): path required")))?;
            let path = base.join(&rel);
            let meta = std::fs::metadata(&path).map_err(|e| {
                invalid(format!(
                    "entry {n} ({platform}): path {}: {e}",
                    path.display()
                ))
            })?;
            let is_dir = meta.is_dir();
            if !is_dir && !meta.is_file() {
                return Err(invalid(format!(
                    "entry {n} ({platform}): {} is neither a file nor a directory",
                    path.display()
                )));
            }
            if !is_dir {
                std::fs::File::open(&path).map_err(|e| {
                    invalid(format!(
                        "entry {n} ({platform}): cannot read {}: {e}",
                        path.display()
                    ))
                })?;
            }
            let media_type = match raw
                .media_type
                .map(|m| m.trim().to_owned())
                .filter(|m| !m.is_empty())
            {
                Some(m) => {
                    validate_media_type(&m).map_err(|r| {
                        invalid(format!("entry {n} ({platform}): mediaType {m:?}: {r}"))
                    })?;
                    m
                }
                None if is_dir => ARCHIVE_MEDIA_TYPE.to_owned(),
                None => BINARY_MEDIA_TYPE.to_owned(),
            };
            entries.push(ReleaseEntry {
                platform,
                path,
                media_type,
                is_dir,
            });
        }
        Ok(ReleaseManifest {
            artifact_type,
            annotations: raw.annotations.unwrap_or_default(),
            entries,
            signing_key: raw
                .signing_key
                .map(|k| k.trim().to_owned())
                .filter(|k| !k.is_empty())
                .map(|k| base.join(k)),
        })
    }
}

/// Checks `type/subtype[+suffix]` syntax (RFC 6838 restricted names, no parameters).
pub fn validate_media_type(value: &str) -> std::result::Result<(), String> {
    let (kind, sub) = value.split_once('/').ok_or("expected type/subtype")?;
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 127
            && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    if name_ok(kind) && name_ok(sub) {
        Ok(())
    } else {
        Err("expected type/subtype".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, b"bin").unwrap();
        }
        dir
    }

    #[test]
    fn parses_entries_in_file_order_with_defaults() {
        let dir = dir_with(&["bin/a", "bin/b"]);
        std::fs::create_dir_all(dir.path().join("tree")).unwrap();
        let yaml = "artifact-type: application/vnd.x.index+json\nannotations:\n  name: porter\nmanifests:\n  - platform: linux/arm64\n    path: bin/a\n  - platform: linux/amd64\n    path: bin/b\n    mediaType: application/vnd.x+binary\n  - platform: windows/amd64\n    path: tree\n";
        let m = ReleaseManifest::parse(yaml, "m.yaml", dir.path()).unwrap();
        assert_eq!(m.artifact_type, "application/vnd.x.index+json");
        assert_eq!(m.annotations["name"], "porter");
        let platforms: Vec<String> = m.entries.iter().map(|e| e.platform.to_string()).collect();
        assert_eq!(platforms, ["linux/arm64", "linux/amd64", "windows/amd64"]);
        assert_eq!(m.entries[0].media_type, BINARY_MEDIA_TYPE);
        assert_eq!(m.entries[1].media_type, "application/vnd.x+binary");
        assert_eq!(m.entries[2].media_type, ARCHIVE_MEDIA_TYPE);
        assert!(m.entries[2].is_dir);
    }

    #[test]
    fn every_mistake_is_named() {
        let dir = dir_with(&["a"]);
        let cases = [
            ("", "manifest must contain at least one entry"),
            ("manifests: []", "manifest must contain at least one entry"),
            ("manifests: [", "failed to parse manifest m.yaml"),
            (
                "manifests:\n  - platform: linux\n    path: a",
                "entry 1: invalid platform \"linux\"",
            ),
            (
                "manifests:\n  - platform: linux/amd64\n",
                "entry 1 (linux/amd64): path required",
            ),
            (
                "manifests:\n  - platform: linux/amd64\n    path: missing",
                "path",
            ),
            (
                "manifests:\n  - platform: linux/amd64\n    path: a\n  - platform: linux/amd64\n    path: a",
                "entries 1 and 2 both have platform linux/amd64",
            ),
            (
                "manifests:\n  - platform: linux/amd64\n    path: a\n    mediaType: nonsense",
                "mediaType \"nonsense\"",
            ),
            (
                "manifests:\n  - platform: linux/amd64\n    path: a\n    colour: red",
                "unknown field",
            ),
            ("manifests: 5", "line 1"),
            (
                &format!("manifests: {}", "[".repeat(200_000)),
                "nested deeper than 64 levels at line 1 column 76",
            ),
        ];
        for (yaml, want) in cases {
            let err = ReleaseManifest::parse(yaml, "m.yaml", dir.path())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{yaml:?}: {err}");
        }
    }
}
