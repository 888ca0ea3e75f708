//! Artifact references: registry references (`registry/repo:tag`, `…@sha256:…`) and OCI image
//! layout references (`oci:<dir>[:<tag>|@<digest>]`, skopeo's convention) for air-gapped use.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

/// Where an artifact lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactRef {
    /// A registry.
    Registry(RegistryRef),
    /// An OCI image layout directory.
    Layout(LayoutRef),
}

/// A reference into a registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryRef {
    /// Registry host (`ghcr.io`, `127.0.0.1:5000`, `docker.io`).
    pub registry: String,
    /// Repository path (`delivery-station/porter`).
    pub repository: String,
    /// Tag; `latest` when neither tag nor digest was given.
    pub tag: Option<String>,
    /// Digest, when pinned.
    pub digest: Option<Digest>,
}

/// A reference into an OCI image layout directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutRef {
    /// The layout directory.
    pub dir: PathBuf,
    /// Tag (`org.opencontainers.image.ref.name`).
    pub tag: Option<String>,
    /// Digest, when pinned.
    pub digest: Option<Digest>,
}

impl ArtifactRef {
    /// The pinned digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            ArtifactRef::Registry(r) => r.digest.as_ref(),
            ArtifactRef::Layout(l) => l.digest.as_ref(),
        }
    }

    /// The name under which the cache's `index.json` records this reference.
    pub fn cache_name(&self) -> String {
        self.to_string()
    }

    /// The default export file name: the last path segment of the repository (or layout dir).
    pub fn base_name(&self) -> String {
        let last = match self {
            ArtifactRef::Registry(r) => r
                .repository
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_owned(),
            ArtifactRef::Layout(l) => l
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        if last.is_empty() {
            "artifact".to_owned()
        } else {
            last
        }
    }
}

impl ArtifactRef {
    /// Parses `text`, resolving a short reference against `default` (`Registry.Default`, such
    /// as `ghcr.io/delivery-station`):
    ///
    /// - a reference is fully qualified when the part before its first `/` looks like a host
    ///   (contains `.` or `:`, or is `localhost`); it is used as written;
    /// - a one-segment name (`porter:0.2.0`) goes under the default, namespace included:
    ///   `ghcr.io/delivery-station/porter:0.2.0`;
    /// - a multi-segment name (`delivery-station/porter:0.2.0`) is a repository path on the
    ///   default's registry host: `ghcr.io/delivery-station/porter:0.2.0`.
    ///
    /// With an empty default, short names expand as on Docker Hub (`busybox` →
    /// `docker.io/library/busybox:latest`).
    pub fn parse_with_default(text: &str, default: &str) -> Result<ArtifactRef, Error> {
        let trimmed = text.trim();
        let default = default
            .trim()
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        if default.is_empty() || trimmed.starts_with("oci:") || !is_short(trimmed) {
            return trimmed.parse();
        }
        let expanded = if trimmed.contains('/') {
            let host = default.split('/').next().unwrap_or(default);
            format!("{host}/{trimmed}")
        } else {
            format!("{default}/{trimmed}")
        };
        expanded.parse().map_err(|e| match e {
            Error::InvalidReference { reason, .. } => Error::InvalidReference {
                reference: trimmed.to_owned(),
                reason: format!("{reason} (resolved against Registry.Default as {expanded})"),
            },
            other => other,
        })
    }
}

/// Whether a registry reference names no registry host (docker's rule).
fn is_short(text: &str) -> bool {
    match text.split_once('/') {
        None => true,
        Some((first, _)) => !(first.contains('.') || first.contains(':') || first == "localhost"),
    }
}

impl RegistryRef {
    /// The tag or digest part as a registry URL path component.
    pub fn identifier(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => "latest".to_owned(),
        }
    }
}

impl fmt::Display for ArtifactRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArtifactRef::Registry(r) => r.fmt(f),
            ArtifactRef::Layout(l) => {
                write!(f, "oci:{}", l.dir.display())?;
                if let Some(t) = &l.tag {
                    write!(f, ":{t}")?;
                }
                if let Some(d) = &l.digest {
                    write!(f, "@{d}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for RegistryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for ArtifactRef {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidReference {
            reference: s.to_owned(),
            reason: reason.to_owned(),
        };
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err(invalid("reference is empty"));
        }
        if trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(invalid("contains whitespace or control characters"));
        }
        if let Some(rest) = trimmed.strip_prefix("oci:") {
            return parse_layout(rest)
                .map(ArtifactRef::Layout)
                .map_err(|r| invalid(&r));
        }
        if trimmed.contains("://") {
            return Err(invalid(
                "a reference has no URL scheme; write registry/repository:tag",
            ));
        }
        let parsed: oci_client::Reference = trimmed
            .parse()
            .map_err(|e: oci_client::ParseError| invalid(&e.to_string()))?;
        if let Some(bad) = parsed
            .repository()
            .split('/')
            .find(|c| !valid_path_component(c))
        {
            return Err(invalid(&format!(
                "repository path component {bad:?} must be lower-case letters, digits and separators (. _ -)"
            )));
        }
        let digest = parsed
            .digest()
            .map(str::parse::<Digest>)
            .transpose()
            .map_err(|e| invalid(&e.to_string()))?;
        let tag = match (parsed.tag(), &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Ok(ArtifactRef::Registry(RegistryRef {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag,
            digest,
        }))
    }
}

/// Parses `<dir>[:<tag>][@<digest>]`. The directory is everything before the first `:` or `@`
/// (as in skopeo on Unix), so layout directories with colons are not supported.
fn parse_layout(rest: &str) -> Result<LayoutRef, String> {
    let (before_digest, digest) = match rest.split_once('@') {
        Some((b, d)) => (b, Some(d.parse::<Digest>().map_err(|e| e.to_string())?)),
        None => (rest, None),
    };
    let (dir, tag) = match before_digest.split_once(':') {
        Some((d, t)) => (d, Some(t)),
        None => (before_digest, None),
    };
    if dir.is_empty() {
        return Err("missing layout directory in oci:<dir>[:<tag>]".into());
    }
    let tag = match tag {
        Some("") => return Err("empty tag after ':'".into()),
        Some(t) if !valid_layout_tag(t) => return Err(format!("invalid tag {t:?}")),
        Some(t) => Some(t.to_owned()),
        None => None,
    };
    Ok(LayoutRef {
        dir: PathBuf::from(dir),
        tag,
        digest,
    })
}

/// A repository path component as the distribution spec defines it:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(&bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(&bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-')) {
            return false;
        }
    }
    true
}

fn valid_layout_tag(tag: &str) -> bool {
    tag.len() <= 255
        && tag.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':' | '/' | '+' | '@')
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reg(s: &str) -> RegistryRef {
        match s.parse::<ArtifactRef>().unwrap() {
            ArtifactRef::Registry(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn registry_refs() {
        let r = reg("127.0.0.1:5000/demo/tool:1.0");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "demo/tool", Some("1.0"))
        );
        let r = reg("127.0.0.1:5000/demo/tool");
        assert_eq!(r.tag.as_deref(), Some("latest"));
        let d = Digest::of(b"x");
        let r = reg(&format!("ghcr.io/a/b@{d}"));
        assert_eq!((r.tag, r.digest), (None, Some(d)));
        assert_eq!(
            reg("busybox").to_string(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn short_references_resolve_against_the_default_registry() {
        let default = "ghcr.io/delivery-station";
        let resolve = |s: &str| {
            ArtifactRef::parse_with_default(s, default)
                .unwrap()
                .to_string()
        };
        assert_eq!(
            resolve("porter:0.2.0"),
            "ghcr.io/delivery-station/porter:0.2.0"
        );
        assert_eq!(resolve("porter"), "ghcr.io/delivery-station/porter:latest");
        assert_eq!(
            resolve("delivery-station/porter:0.2.0"),
            "ghcr.io/delivery-station/porter:0.2.0"
        );
        assert_eq!(resolve("a/b/c:1"), "ghcr.io/a/b/c:1");
        for full in [
            "127.0.0.1:5000/demo/tool:1.0",
            "quay.io/a/b:1",
            "localhost/a:1",
            "oci:examples/store:1.0.0",
        ] {
            assert_eq!(
                ArtifactRef::parse_with_default(full, default).unwrap(),
                full.parse::<ArtifactRef>().unwrap(),
                "{full}"
            );
        }
        let d = Digest::of(b"x");
        assert_eq!(
            resolve(&format!("porter@{d}")),
            format!("ghcr.io/delivery-station/porter@{d}")
        );
        assert_eq!(
            ArtifactRef::parse_with_default("busybox", "")
                .unwrap()
                .to_string(),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            ArtifactRef::parse_with_default("busybox", "https://docker.io/")
                .unwrap()
                .to_string(),
            "docker.io/library/busybox:latest"
        );
        let err = ArtifactRef::parse_with_default("Porter:1", default).unwrap_err();
        assert!(err.to_string().contains(r#""Porter:1""#), "{err}");
    }

    #[test]
    fn layout_refs() {
        let ArtifactRef::Layout(l) = "oci:examples/store:1.0.0".parse().unwrap() else {
            panic!()
        };
        assert_eq!(
            (l.dir, l.tag.as_deref()),
            (PathBuf::from("examples/store"), Some("1.0.0"))
        );
        let ArtifactRef::Layout(l) = "oci:/tmp/x".parse().unwrap() else {
            panic!()
        };
        assert_eq!(l.tag, None);
        assert_eq!(
            "oci:examples/store:1.0.0"
                .parse::<ArtifactRef>()
                .unwrap()
                .base_name(),
            "store"
        );
    }

    #[test]
    fn malformed_references_name_the_input() {
        assert!(valid_path_component("a.b_c__d--e"));
        for bad in ["a..b", "a._b", "-a", "a-", "A"] {
            assert!(!valid_path_component(bad), "{bad}");
        }
        for bad in [
            "",
            "  ",
            "UPPER/Case:1",
            "UPPER/x:1",
            "ghcr.io/Org/x:1",
            "https://ghcr.io/x:1",
            "a b",
            "oci:",
            "oci::tag",
            "reg/x@sha256:123",
            "x:",
        ] {
            let err = bad.parse::<ArtifactRef>().unwrap_err();
            assert!(
                err.to_string().contains(&format!("{bad:?}")),
                "{bad}: {err}"
            );
        }
    }
}
