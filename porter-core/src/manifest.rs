//! The OCI (and Docker) manifest and index shapes the engine reads, and platform selection over
//! an index graph.
//!
//! Parsing checks that the declared media type agrees with the content, so an index cannot pose
//! as a manifest or the other way round.
//!
//! Selection is all or nothing and takes one manifest per platform: the host's platform and
//! each requested one get the best match [`Matcher`] ranks (the exact variant, then compatible
//! lower ones); a requested platform the artifact does not offer fails the pull before anything
//! but the indexes was fetched, naming it and listing what is offered.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::display::escape_remote;
use crate::error::{Error, Result};
use crate::platform::{self, Matcher, Platform};

/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// OCI empty descriptor media type.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// The layer title annotation.
pub const ANNOTATION_TITLE: &str = "org.opencontainers.image.title";
/// The layout tag annotation.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

/// Media types accepted when fetching a manifest.
pub const ACCEPTED_MANIFEST_TYPES: &[&str] =
    &[OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];

/// Largest manifest or index the engine reads (the distribution registry's own limit).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Platform fields of a descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescriptorPlatform {
    /// OS.
    #[serde(default)]
    pub os: String,
    /// Architecture.
    #[serde(default)]
    pub architecture: String,
    /// Variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl DescriptorPlatform {
    /// As a [`Platform`], or `None` when OS or architecture is missing.
    pub fn to_platform(&self) -> Option<Platform> {
        if self.os.trim().is_empty() || self.architecture.trim().is_empty() {
            return None;
        }
        Some(Platform::new(
            &self.os,
            &self.architecture,
            self.variant.as_deref(),
        ))
    }
}

/// A content descriptor. Fields serialize in the order ds-porter has always written them
/// (layer descriptors and index entries), so the same inputs keep giving the same digests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Annotations.
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Platform, in indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<DescriptorPlatform>,
    /// Artifact type, for manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// The descriptor's `org.opencontainers.image.title`, when non-blank.
    pub fn title(&self) -> Option<&str> {
        self.annotations
            .get(ANNOTATION_TITLE)
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
    }

    /// Whether this descriptor points at an index or manifest list.
    pub fn is_index(&self) -> bool {
        self.media_type == OCI_INDEX || self.media_type == DOCKER_LIST
    }
}

fn null_as_empty<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An image index or manifest list.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Child manifests.
    #[serde(deserialize_with = "null_as_empty")]
    pub manifests: Vec<Descriptor>,
    /// Artifact type.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Config descriptor.
    pub config: Descriptor,
    /// A platform some tools write into the manifest itself (not part of the OCI schema).
    #[serde(default)]
    pub platform: Option<Box<DescriptorPlatform>>,
    /// Layers, in order.
    #[serde(deserialize_with = "null_as_empty")]
    pub layers: Vec<Descriptor>,
    /// Artifact type.
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A parsed manifest document.
#[derive(Debug, Clone)]
pub enum Node {
    /// An index / manifest list.
    Index(Index),
    /// An image manifest.
    Manifest(Manifest),
}

impl Node {
    /// The document's own annotations.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        match self {
            Node::Index(i) => &i.annotations,
            Node::Manifest(m) => &m.annotations,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<serde_json::Value>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
    #[serde(default)]
    config: Option<serde_json::Value>,
}

/// Works out the media type of a manifest document from its content, checking it against the
/// media type the descriptor (or registry) declared.
pub fn detect_media_type(bytes: &[u8], declared: Option<&str>, digest: &Digest) -> Result<String> {
    let invalid = |reason: String| Error::InvalidManifest {
        digest: digest.to_string(),
        reason,
    };
    if bytes.len() > MAX_MANIFEST_BYTES {
        return Err(invalid(format!("larger than {MAX_MANIFEST_BYTES} bytes")));
    }
    let probe: Probe = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let looks_index = probe.manifests.is_some();
    let looks_manifest = probe.layers.is_some() || probe.config.is_some();
    if looks_index && looks_manifest {
        return Err(invalid("has both `manifests` and `layers`/`config`".into()));
    }
    let content_type = probe.media_type.as_deref().filter(|m| !m.is_empty());
    let declared = declared.filter(|m| !m.is_empty() && ACCEPTED_MANIFEST_TYPES.contains(m));
    if let (Some(c), Some(d)) = (content_type, declared)
        && c != d
    {
        return Err(invalid(format!("declared as {d} but the content says {c}")));
    }
    let media_type = match content_type.or(declared) {
        Some(m) => m.to_owned(),
        None if looks_index => OCI_INDEX.to_owned(),
        None if looks_manifest => OCI_MANIFEST.to_owned(),
        None => return Err(invalid("neither an index nor a manifest".into())),
    };
    let is_index_type = media_type == OCI_INDEX || media_type == DOCKER_LIST;
    let is_manifest_type = media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST;
    if !(is_index_type || is_manifest_type) {
        return Err(invalid(format!("unsupported media type {media_type}")));
    }
    if (is_index_type && looks_manifest) || (is_manifest_type && looks_index) {
        return Err(invalid(format!(
            "media type {media_type} contradicts its content"
        )));
    }
    Ok(media_type)
}

/// Parses a manifest document whose media type was established by [`detect_media_type`].
pub fn parse(bytes: &[u8], media_type: &str, digest: &Digest) -> Result<Node> {
    let invalid = |e: serde_json::Error| Error::InvalidManifest {
        digest: digest.to_string(),
        reason: e.to_string(),
    };
    if media_type == OCI_INDEX || media_type == DOCKER_LIST {
        Ok(Node::Index(serde_json::from_slice(bytes).map_err(invalid)?))
    } else {
        Ok(Node::Manifest(
            serde_json::from_slice(bytes).map_err(invalid)?,
        ))
    }
}

/// Which platforms a pull or export wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlatformRequest {
    /// The platform this binary runs on (its best match); exports go straight into the
    /// destination.
    Host,
    /// The listed platforms, each present or the pull fails; exports go into
    /// `<dest>/<os>/<arch>[/<variant>]`.
    Only(Vec<Platform>),
    /// Every platform of the index; exports go into per-platform directories.
    All,
}

impl PlatformRequest {
    /// The request every front end builds from its options: a list of `os/arch[/variant]`
    /// values (each possibly a comma list), or all platforms, or neither for this platform.
    /// Both together, or a malformed platform, are an error before any I/O.
    pub fn from_flags(platforms: &[String], all_platforms: bool) -> Result<Self> {
        match (all_platforms, platforms.is_empty()) {
            (true, false) => Err(Error::InvalidInput(
                "choose either all platforms or a list of platforms, not both".into(),
            )),
            (true, true) => Ok(PlatformRequest::All),
            (false, true) => Ok(PlatformRequest::Host),
            (false, false) => Ok(PlatformRequest::Only(platform::parse_list(
                platforms.iter().map(String::as_str),
            )?)),
        }
    }

    /// Whether exports use per-platform sub-directories regardless of how many manifests match.
    pub fn wants_subdirs(&self) -> bool {
        !matches!(self, PlatformRequest::Host)
    }
}

/// A child of an index chosen for a request, with the platform it inherits.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The child descriptor.
    pub descriptor: Descriptor,
    /// Its platform (own, or inherited from the parent descriptor).
    pub platform: Option<Platform>,
}

/// Splits an index's children into leaf manifests and nested indexes, each with its platform:
/// its own, or else `inherited` (the platform of the descriptor that listed the index).
pub fn children(index: &Index, inherited: Option<&Platform>) -> (Vec<Selected>, Vec<Selected>) {
    let mut leaves = Vec::new();
    let mut nested = Vec::new();
    for child in &index.manifests {
        let platform = child
            .platform
            .as_ref()
            .and_then(DescriptorPlatform::to_platform)
            .or_else(|| inherited.cloned());
        let selected = Selected {
            descriptor: child.clone(),
            platform,
        };
        if child.is_index() {
            nested.push(selected);
        } else {
            leaves.push(selected);
        }
    }
    (leaves, nested)
}

/// The leaves of an index graph (every leaf manifest, in graph order) that `request` wants, in
/// graph order: every leaf for [`PlatformRequest::All`], otherwise the best match for each
/// wanted platform (the first one listed among equally good ones). A leaf without a platform
/// serves only a request for one platform, and only when no leaf declares a matching one.
///
/// A requested platform with no match fails, naming it and listing what the graph offers; the
/// host's platform with no match selects nothing.
pub fn select(leaves: &[Selected], request: &PlatformRequest) -> Result<Vec<Selected>> {
    let (chosen, missing) = choose(leaves, request);
    if missing.is_empty() || matches!(request, PlatformRequest::Host) {
        return Ok(chosen);
    }
    Err(platforms_missing(
        &missing,
        leaves.iter().map(|l| l.platform.as_ref()),
    ))
}

/// [`children`] of one index with its leaves narrowed to what `request` wants, for callers
/// that read one index at a time; a requested platform it lacks is simply not selected.
pub fn select_children(
    index: &Index,
    inherited: Option<&Platform>,
    request: &PlatformRequest,
) -> (Vec<Selected>, Vec<Selected>) {
    let (leaves, nested) = children(index, inherited);
    (choose(&leaves, request).0, nested)
}

/// The chosen leaves in graph order (no leaf twice), and the wanted platforms nothing matched.
fn choose(leaves: &[Selected], request: &PlatformRequest) -> (Vec<Selected>, Vec<Platform>) {
    let matchers = match request {
        PlatformRequest::All => return (distinct(leaves.iter()), Vec::new()),
        PlatformRequest::Host => vec![Matcher::host()],
        PlatformRequest::Only(list) => list.iter().map(Matcher::requested).collect(),
    };
    let single = matchers.len() == 1;
    let mut picked = std::collections::BTreeSet::new();
    let mut missing = Vec::new();
    for matcher in &matchers {
        let best = leaves
            .iter()
            .enumerate()
            .filter_map(|(i, leaf)| Some((matcher.rank(leaf.platform.as_ref()?)?, i)))
            .min();
        match best {
            Some((rank, i)) => {
                if rank > 0 {
                    tracing::info!(
                        wanted = %matcher.wanted(),
                        using = %escape_remote(&leaf_platform(&leaves[i])),
                        "no exact platform match; using the best compatible one"
                    );
                }
                picked.insert(i);
            }
            None => match leaves.iter().position(|l| l.platform.is_none()) {
                Some(i) if single => {
                    tracing::warn!(
                        platform = %matcher.wanted(),
                        manifest = %leaves[i].descriptor.digest,
                        "the artifact's manifest declares no platform; using it for the requested one"
                    );
                    picked.insert(i);
                }
                _ => missing.push(matcher.wanted().clone()),
            },
        }
    }
    (distinct(picked.into_iter().map(|i| &leaves[i])), missing)
}

/// Leaves without repeats of the same manifest for the same platform, in order.
fn distinct<'a>(leaves: impl Iterator<Item = &'a Selected>) -> Vec<Selected> {
    let mut out: Vec<Selected> = Vec::new();
    for leaf in leaves {
        let repeated = out
            .iter()
            .any(|o| o.descriptor.digest == leaf.descriptor.digest && o.platform == leaf.platform);
        if !repeated {
            out.push(leaf.clone());
        }
    }
    out
}

/// How a leaf's platform is named in messages (`os/arch[/variant]`, unescaped).
fn leaf_platform(leaf: &Selected) -> String {
    leaf.platform.as_ref().map_or_else(
        || "a manifest without a platform".to_owned(),
        ToString::to_string,
    )
}

/// Most offered platforms an error lists.
const MAX_LISTED: usize = 32;

/// The error for requested platforms nothing offers: `offered` is what the artifact has, each
/// platform once, escaped (it is remote text), at most [`MAX_LISTED`] of them.
fn platforms_missing<'a>(
    missing: &[Platform],
    offered: impl Iterator<Item = Option<&'a Platform>>,
) -> Error {
    let mut listed: Vec<String> = Vec::new();
    let mut more = 0usize;
    for platform in offered {
        let name = escape_remote(&platform.map_or_else(
            || "a manifest without a platform".to_owned(),
            ToString::to_string,
        ));
        if listed.contains(&name) {
            continue;
        }
        if listed.len() < MAX_LISTED {
            listed.push(name);
        } else {
            more += 1;
        }
    }
    if listed.is_empty() {
        listed.push("none".to_owned());
    }
    if more > 0 {
        listed.push(format!("and {more} more"));
    }
    Error::PlatformsMissing {
        missing: missing.iter().map(ToString::to_string).collect(),
        offered: listed,
    }
}

/// Largest config blob read for the platform it declares.
pub const MAX_PLATFORM_CONFIG_BYTES: u64 = 64 * 1024;

/// Whether a manifest's config is worth reading for a platform: JSON, and small.
pub fn config_may_declare_platform(config: &Descriptor) -> bool {
    config.size <= MAX_PLATFORM_CONFIG_BYTES
        && config.media_type != OCI_EMPTY
        && (config.media_type.ends_with("+json") || config.media_type.ends_with("/json"))
}

/// The platform a manifest declares: its own `platform` field, else the `os`, `architecture`
/// and `variant` of its config (as image configs carry them), else none.
pub fn declared_platform(manifest: &Manifest, config: Option<&[u8]>) -> Option<Platform> {
    manifest
        .platform
        .as_deref()
        .and_then(DescriptorPlatform::to_platform)
        .or_else(|| {
            serde_json::from_slice::<DescriptorPlatform>(config?)
                .ok()?
                .to_platform()
        })
}

/// Checks that an artifact that is a single manifest (no index) serves every requested
/// platform: a declared platform must match each one (or the pull fails as for an index); a
/// manifest that declares none is used, with a warning saying so.
pub fn check_single(manifest: &Manifest, config: Option<&[u8]>, wanted: &[Platform]) -> Result<()> {
    let Some(declared) = declared_platform(manifest, config) else {
        let wanted: Vec<String> = wanted.iter().map(ToString::to_string).collect();
        tracing::warn!(
            requested = %wanted.join(", "),
            "the artifact is a single manifest that declares no platform; it is used as requested"
        );
        return Ok(());
    };
    let missing: Vec<Platform> = wanted
        .iter()
        .filter(|w| Matcher::requested(w).rank(&declared).is_none())
        .cloned()
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(platforms_missing(
            &missing,
            std::iter::once(Some(&declared)),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d() -> Digest {
        Digest::of(b"x")
    }

    #[test]
    fn media_type_must_agree_with_content() {
        let index = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert_eq!(detect_media_type(index, None, &d()).unwrap(), OCI_INDEX);
        let err = detect_media_type(index, Some(OCI_MANIFEST), &d()).unwrap_err();
        assert!(err.to_string().contains("declared as"), "{err}");
        let lying = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","manifests":[]}"#;
        assert!(
            detect_media_type(lying, None, &d())
                .unwrap_err()
                .to_string()
                .contains("contradicts")
        );
        let untyped = br#"{"schemaVersion":2,"config":{"mediaType":"a","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
        assert_eq!(
            detect_media_type(untyped, None, &d()).unwrap(),
            OCI_MANIFEST
        );
    }

    #[test]
    fn docker_manifest_lists_are_indexes() {
        let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[]}"#;
        let mt = detect_media_type(list, None, &d()).unwrap();
        assert!(matches!(parse(list, &mt, &d()).unwrap(), Node::Index(_)));
    }

    #[test]
    fn oversized_manifests_are_rejected() {
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(
            detect_media_type(&big, None, &d())
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
    }

    fn leaves(platforms: &[Option<&str>]) -> Vec<Selected> {
        platforms
            .iter()
            .enumerate()
            .map(|(i, p)| Selected {
                descriptor: Descriptor {
                    media_type: OCI_MANIFEST.into(),
                    digest: Digest::of(&i.to_be_bytes()),
                    size: 1,
                    artifact_type: None,
                    platform: None,
                    annotations: BTreeMap::new(),
                },
                platform: p.map(|p| {
                    let parts: Vec<&str> = p.split('/').collect();
                    Platform::new(parts[0], parts[1], parts.get(2).copied())
                }),
            })
            .collect()
    }

    fn only(list: &str) -> PlatformRequest {
        PlatformRequest::Only(platform::parse_list([list]).unwrap())
    }

    fn chosen(leaves: &[Selected], request: &PlatformRequest) -> Vec<String> {
        select(leaves, request)
            .unwrap()
            .iter()
            .map(leaf_platform)
            .collect()
    }

    #[test]
    fn selection_follows_platform_rules() {
        let json = format!(
            r#"{{"manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{0}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{0}","size":1,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{0}","size":1}}]}}"#,
            d()
        );
        let index: Index = serde_json::from_str(&json).unwrap();
        // arm64 ≡ arm64/v8; the platform-less child is not needed.
        let (leaves, _) = select_children(&index, None, &only("linux/arm64"));
        assert_eq!(leaves.len(), 1);
        assert_eq!(
            select_children(&index, None, &only("linux/arm64,linux/amd64"))
                .0
                .len(),
            2
        );
        assert_eq!(
            select_children(&index, None, &PlatformRequest::All).0.len(),
            3
        );
        // A single requested platform nothing declares takes the platform-less child.
        let (leaves, _) = select_children(&index, None, &only("linux/s390x"));
        assert!(leaves[0].platform.is_none());
    }

    #[test]
    fn the_host_takes_exactly_one_manifest_the_best_its_cpu_runs() {
        let host = Matcher::host().wanted().clone();
        let (os, arch) = (host.os.as_str(), host.arch.as_str());
        // 160 variants of the host's architecture, as in the amplification finding.
        let names: Vec<String> = (0..160).map(|v| format!("{os}/{arch}/v{v}")).collect();
        let listed: Vec<Option<&str>> = names.iter().map(|n| Some(n.as_str())).collect();
        let picked = chosen(&leaves(&listed), &PlatformRequest::Host);
        assert_eq!(picked.len(), 1, "{picked:?}");
        if let Some(variant) = &host.variant {
            assert_eq!(picked[0], format!("{os}/{arch}/{variant}"));
        }
        // A newer CPU's build only: nothing for the host (the engine reports it).
        let newer = format!("{os}/{arch}/v999");
        assert!(chosen(&leaves(&[Some(&newer)]), &PlatformRequest::Host).is_empty());
    }

    #[test]
    fn arm_v7_prefers_v7_then_v6_then_v5() {
        let request = only("linux/arm/v7");
        let all = leaves(&[
            Some("linux/arm/v5"),
            Some("linux/arm/v6"),
            Some("linux/arm/v7"),
        ]);
        assert_eq!(chosen(&all, &request), ["linux/arm/v7"]);
        assert_eq!(chosen(&all[..2], &request), ["linux/arm/v6"]);
        assert_eq!(chosen(&all[..1], &request), ["linux/arm/v5"]);
        let v8 = leaves(&[Some("linux/arm/v8")]);
        let err = select(&v8, &request).unwrap_err().to_string();
        assert!(err.contains("linux/arm/v7 not offered"), "{err}");
    }

    #[test]
    fn amd64_levels_fall_back_in_order() {
        let request = only("linux/amd64/v3");
        let all = leaves(&[
            Some("linux/amd64/v4"),
            Some("linux/amd64"),
            Some("linux/amd64/v2"),
        ]);
        assert_eq!(chosen(&all, &request), ["linux/amd64/v2"]);
        assert_eq!(chosen(&all[..2], &request), ["linux/amd64"]);
        assert!(select(&all[..1], &request).is_err());
    }

    #[test]
    fn a_missing_requested_platform_fails_naming_it_and_what_is_offered() {
        let offered = leaves(&[
            Some("linux/amd64"),
            Some("linux/arm64/v8"),
            Some("linux/amd64"),
            None,
        ]);
        let err = select(&offered, &only("linux/amd64,linux/s390x,windows/arm64")).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert_eq!(
            err.to_string(),
            "no manifests found for requested platform(s): linux/s390x, windows/arm64 not \
             offered; the artifact offers linux/amd64, linux/arm64/v8, a manifest without a \
             platform"
        );
        // The host's platform missing is not an error here; the engine decides.
        assert!(
            select(&leaves(&[Some("plan9/mips")]), &PlatformRequest::Host)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn offered_platforms_are_escaped_and_bounded() {
        let hostile = leaves(&[Some("linux/amd64/v\u{1b}]0;x\u{7}")]);
        let err = select(&hostile, &only("linux/s390x"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux/amd64/v\\u{1b}]0;x\\u{7}"), "{err}");
        assert!(!crate::display::has_unsafe_chars(&err));
        let names: Vec<String> = (0..100).map(|v| format!("linux/amd64/v{v}")).collect();
        let many: Vec<Option<&str>> = names.iter().map(|n| Some(n.as_str())).collect();
        let err = select(&leaves(&many), &only("linux/s390x"))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("linux/amd64/v31, and 68 more"), "{err}");
    }

    #[test]
    fn one_manifest_per_platform_even_when_listed_twice() {
        let twice = leaves(&[Some("linux/amd64"), Some("linux/amd64")]);
        let picked = select(&twice, &only("linux/amd64")).unwrap();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].descriptor.digest, twice[0].descriptor.digest);
        // Two requests served by one manifest select it once.
        let one = leaves(&[Some("linux/arm64")]);
        assert_eq!(
            select(&one, &only("linux/arm64,linux/arm64/v8"))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(select(&twice, &PlatformRequest::All).unwrap().len(), 2);
    }

    #[test]
    fn from_flags_is_the_one_way_to_build_a_request() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            PlatformRequest::from_flags(&[], false).unwrap(),
            PlatformRequest::Host
        );
        assert_eq!(
            PlatformRequest::from_flags(&[], true).unwrap(),
            PlatformRequest::All
        );
        assert_eq!(
            PlatformRequest::from_flags(&list(&["linux/amd64,linux/arm64", "linux/amd64"]), false)
                .unwrap(),
            only("linux/amd64,linux/arm64")
        );
        let both = PlatformRequest::from_flags(&list(&["linux/amd64"]), true).unwrap_err();
        assert_eq!(
            both.to_string(),
            "choose either all platforms or a list of platforms, not both"
        );
        assert!(matches!(
            PlatformRequest::from_flags(&list(&["linux"]), false),
            Err(Error::InvalidPlatform { .. })
        ));
    }

    fn manifest(extra: &str) -> Manifest {
        serde_json::from_str(&format!(
            r#"{{"config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":2}},"layers":[]{extra}}}"#,
            d()
        ))
        .unwrap()
    }

    #[test]
    fn a_single_manifest_must_match_the_platform_it_declares() {
        let wanted = [Platform::new("linux", "amd64", None)];
        let config = br#"{"architecture":"arm64","os":"linux","rootfs":{}}"#;
        let err = check_single(&manifest(""), Some(config), &wanted).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no manifests found for requested platform(s): linux/amd64 not offered; the \
             artifact offers linux/arm64"
        );
        let own = r#","platform":{"os":"linux","architecture":"amd64"}"#;
        check_single(&manifest(own), Some(config), &wanted).unwrap();
        check_single(
            &manifest(""),
            Some(br#"{"os":"linux","architecture":"amd64"}"#),
            &wanted,
        )
        .unwrap();
        // Declaring nothing is allowed (with a warning); so is an unreadable config.
        check_single(&manifest(""), Some(b"{}"), &wanted).unwrap();
        check_single(&manifest(""), Some(b"not json"), &wanted).unwrap();
        check_single(&manifest(""), None, &wanted).unwrap();
        // Every requested platform must match.
        let two = [wanted[0].clone(), Platform::new("linux", "arm64", None)];
        let err = check_single(&manifest(own), None, &two).unwrap_err();
        assert!(err.to_string().contains("linux/arm64 not offered"), "{err}");
    }

    #[test]
    fn only_small_json_configs_are_read_for_a_platform() {
        let mut config = manifest("").config;
        assert!(config_may_declare_platform(&config));
        config.size = MAX_PLATFORM_CONFIG_BYTES + 1;
        assert!(!config_may_declare_platform(&config));
        config.size = 2;
        config.media_type = OCI_EMPTY.into();
        assert!(!config_may_declare_platform(&config));
        config.media_type = "application/octet-stream".into();
        assert!(!config_may_declare_platform(&config));
    }
}
