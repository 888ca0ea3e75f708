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

    /// The name under which the cache's `index.json` records this reference: registry
    /// references as resolved, layouts by absolute path (so `oci:store:1.0` typed in two
    /// directories are two names).
    pub fn cache_name(&self) -> String {
        match self {
            ArtifactRef::Layout(l) => match std::path::absolute(&l.dir) {
                Ok(dir) => ArtifactRef::Layout(LayoutRef { dir, ..l.clone() }).to_string(),
                Err(_) => self.to_string(),
            },
            ArtifactRef::Registry(_) => self.to_string(),
        }
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
        // Parsed as typed first: what is not a reference at all is refused as typed.
        let direct: ArtifactRef = trimmed.parse()?;
        if default.is_empty() || trimmed.starts_with("oci:") || !is_short(trimmed) {
            return Ok(direct);
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

/// Source and target prefixes of other tools (skopeo's transports) that are not references here.
/// (`dir:` and `docker:` are left out: `dir:1.0` is also a short reference with a tag.)
const OTHER_TRANSPORTS: [&str; 4] = [
    "oci-archive:",
    "docker-archive:",
    "docker-daemon:",
    "containers-storage:",
];

/// `host:port` when the whole text is one (an IP address, `localhost` or a dotted name, and a
/// numeric port), which would otherwise read as a repository with a numeric tag.
fn bare_host(text: &str) -> Option<&str> {
    if text.contains(['/', '@']) {
        return None;
    }
    let (host, port) = text.rsplit_once(':')?;
    let port_ok = !port.is_empty() && port.len() <= 5 && port.chars().all(|c| c.is_ascii_digit());
    let hostlike = host == "localhost"
        || host.starts_with('[')
        || host.parse::<std::net::IpAddr>().is_ok()
        || host.contains('.');
    (port_ok && hostlike).then_some(text)
}

/// Whether `text` names the registry it is in: a layout, or a registry reference whose first
/// path component is a host. A short reference gets its registry from `Registry.Default`.
pub fn names_registry(text: &str) -> bool {
    let text = text.trim();
    text.starts_with("oci:") || !is_short(text)
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
        if let Some(transport) = OTHER_TRANSPORTS.iter().find(|t| {
            trimmed.len() > t.len()
                && trimmed
                    .get(..t.len())
                    .is_some_and(|p| p.eq_ignore_ascii_case(t))
        }) {
            return Err(invalid(&format!(
                "the {} transport is not supported; an OCI image layout directory is \
                 oci:<dir>[:tag], a registry is registry/repository[:tag]",
                transport.trim_end_matches(':')
            )));
        }
        if let Some(host) = bare_host(trimmed) {
            return Err(invalid(&format!(
                "{host} names a registry but no repository; write {host}/<repository>[:tag]"
            )));
        }
        if trimmed.contains("://") {
            return Err(invalid(
                "a reference has no URL scheme; write registry/repository:tag",
            ));
        }
        parse_registry(trimmed)
            .map(ArtifactRef::Registry)
            .map_err(|r| invalid(&r))
    }
}

/// The longest repository path (the distribution reference grammar's limit).
const NAME_TOTAL_LENGTH_MAX: usize = 255;
/// The longest tag.
const TAG_LENGTH_MAX: usize = 128;

/// Parses `[host[:port]/]path[:tag][@digest]` by the distribution reference grammar, normalised
/// as docker does: the first path segment is the registry host when it contains `.` or `:` or
/// is `localhost` (and more segments follow); otherwise the host is `docker.io`, where a
/// one-segment name goes under `library/`. Hand-written rather than one large regular expression:
/// compiling that expression cost ~25 ms of every process start.
fn parse_registry(text: &str) -> Result<RegistryRef, String> {
    let (name_tag, digest) = match text.split_once('@') {
        Some((before, digest)) => (
            before,
            Some(digest.parse::<Digest>().map_err(|e| e.to_string())?),
        ),
        None => (text, None),
    };
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if !name_tag[colon..].contains('/') => {
            (&name_tag[..colon], Some(&name_tag[colon + 1..]))
        }
        _ => (name_tag, None),
    };
    if let Some(tag) = tag.filter(|t| !valid_tag(t)) {
        return Err(format!(
            "invalid tag {tag:?}: up to {TAG_LENGTH_MAX} letters, digits and . _ -, not starting with . or -"
        ));
    }
    if name.is_empty() {
        return Err("repository name is empty".into());
    }
    let (registry, path) = match name.split_once('/') {
        // Docker's rule; a host that only the path grammar admits (`a_b.com`) is kept as
        // docker keeps it.
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => {
            if !valid_host(first) && !valid_path_component(first) {
                return Err(format!("invalid registry host {first:?}"));
            }
            (first, rest)
        }
        _ => ("docker.io", name),
    };
    let registry = if registry == "index.docker.io" {
        "docker.io"
    } else {
        registry
    };
    let repository = if registry == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    if let Some(bad) = repository.split('/').find(|c| !valid_path_component(c)) {
        return Err(format!(
            "repository path component {bad:?} must be lower-case letters, digits and separators (. _ -)"
        ));
    }
    if repository.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(format!(
            "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
        ));
    }
    let tag = match (tag, &digest) {
        (Some(t), _) => Some(t.to_owned()),
        (None, Some(_)) => None,
        (None, None) => Some("latest".to_owned()),
    };
    Ok(RegistryRef {
        registry: registry.to_owned(),
        repository,
        tag,
        digest,
    })
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= TAG_LENGTH_MAX
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

/// A registry host: DNS labels separated by `.`, or a bracketed IPv6 address, with an optional
/// numeric port.
fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        if address.is_empty()
            || !address
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match host.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (host, None),
        }
    };
    let label_ok = |label: &str| {
        let b = label.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    port_ok && (host.starts_with('[') || name.split('.').all(label_ok))
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
    #[test]
    fn other_tools_transports_and_bare_hosts_are_refused_by_name() {
        for (text, says) in [
            (
                "oci-archive:foo.tar",
                "oci-archive transport is not supported",
            ),
            ("docker-archive:x.tar:a:1", "docker-archive transport"),
            (
                "127.0.0.1:5700",
                "127.0.0.1:5700 names a registry but no repository",
            ),
            ("localhost:5000", "names a registry but no repository"),
            (
                "registry.example.com:443",
                "names a registry but no repository",
            ),
        ] {
            let err = text.parse::<ArtifactRef>().unwrap_err().to_string();
            assert!(err.contains(says), "{text}: {err}");
            let err = ArtifactRef::parse_with_default(text, "ghcr.io/ds")
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{text}: {err}");
        }
        for fine in [
            "porter:1.0",
            "dir:1.0",
            "oci:store:1.0",
            "127.0.0.1:5700/a:1",
        ] {
            assert!(fine.parse::<ArtifactRef>().is_ok(), "{fine}");
        }
        assert!(names_registry("127.0.0.1:5700/a:1"));
        assert!(!names_registry("porter:1.0"));
        assert!(!names_registry("delivery-station/porter:1.0"));
    }

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

    /// The grammar as oci-client (oci-spec's regular expression) parses it, followed by the
    /// checks this module adds: the reference the hand-written parser must agree with.
    fn via_oci_client(text: &str) -> Option<RegistryRef> {
        let parsed: oci_client::Reference = text.parse().ok()?;
        if !parsed.repository().split('/').all(valid_path_component) {
            return None;
        }
        let digest = match parsed.digest() {
            Some(d) => Some(d.parse::<Digest>().ok()?),
            None => None,
        };
        let tag = match (parsed.tag(), &digest) {
            (Some(t), _) => Some(t.to_owned()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_owned()),
        };
        Some(RegistryRef {
            registry: parsed.registry().to_owned(),
            repository: parsed.repository().to_owned(),
            tag,
            digest,
        })
    }

    fn reference_like() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let segment = prop_oneof![
            "[a-z0-9]{1,6}",
            "[a-z0-9]{1,3}[._-]{1,2}[a-z0-9]{1,3}",
            "[a-zA-Z0-9._-]{0,6}",
            Just("localhost".to_owned()),
            Just("localhost:5000".to_owned()),
            Just("127.0.0.1:5000".to_owned()),
            Just("ghcr.io".to_owned()),
            Just("index.docker.io".to_owned()),
            Just("docker.io".to_owned()),
            Just("Reg.Example.com:443".to_owned()),
            Just("a_b.com".to_owned()),
            Just("-x.com".to_owned()),
            Just("x.com:".to_owned()),
        ];
        let tag = prop_oneof![
            Just(String::new()),
            "[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}".prop_map(|t| format!(":{t}")),
            "[a-zA-Z0-9_.:-]{0,6}".prop_map(|t| format!(":{t}")),
            Just(format!(":{}", "t".repeat(128))),
            Just(format!(":{}", "t".repeat(129))),
        ];
        let digest = prop_oneof![
            Just(String::new()),
            "[0-9a-f]{64}".prop_map(|h| format!("@sha256:{h}")),
            "[0-9a-fA-F]{30,66}".prop_map(|h| format!("@sha256:{h}")),
            "[0-9a-f]{96}".prop_map(|h| format!("@sha384:{h}")),
            Just("@".to_owned()),
        ];
        (prop::collection::vec(segment, 1..5), tag, digest)
            .prop_map(|(segments, tag, digest)| format!("{}{tag}{digest}", segments.join("/")))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig {
            cases: 2048,
            failure_persistence: None,
            ..proptest::prelude::ProptestConfig::default()
        })]

        /// ASCII references parse exactly as the distribution grammar (oci-spec's regular
        /// expression) parses them: the same accept/reject and the same parts.
        #[test]
        fn the_parser_agrees_with_the_distribution_grammar(text in reference_like()) {
            let ours = parse_registry(&text).ok();
            proptest::prop_assert_eq!(ours, via_oci_client(&text), "{}", text);
        }
    }

    #[test]
    fn references_the_regular_expression_rejects_but_docker_accepts() {
        // Bracketed IPv6 hosts (docker's grammar since 2023).
        let r = reg("[::1]:5000/demo/tool:1.0");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("[::1]:5000", "demo/tool", Some("1.0"))
        );
        // Tags are ASCII only, as the distribution spec says.
        assert!("ghcr.io/a/b:é".parse::<ArtifactRef>().is_err());
        assert!("ghcr.io/a/b:[::1]".parse::<ArtifactRef>().is_err());
        assert!("[::1/x".parse::<ArtifactRef>().is_err());
    }
}
