//! The OCI (and Docker) manifest and index shapes the engine reads, and platform selection over
//! an index.
//!
//! Parsing checks that the declared media type agrees with the content, so an index cannot pose
//! as a manifest or the other way round.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::platform::Platform;

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
    /// The platform this binary runs on; exports go straight into the destination.
    Host,
    /// The listed platforms; exports go into `<dest>/<os>/<arch>[/<variant>]`.
    Only(Vec<Platform>),
    /// Every platform of the index; exports go into per-platform directories.
    All,
}

impl PlatformRequest {
    /// Whether exports use per-platform sub-directories regardless of how many manifests match.
    pub fn wants_subdirs(&self) -> bool {
        !matches!(self, PlatformRequest::Host)
    }

    fn targets(&self) -> Option<Vec<Platform>> {
        match self {
            PlatformRequest::Host => Some(vec![Platform::host()]),
            PlatformRequest::Only(list) => Some(list.clone()),
            PlatformRequest::All => None,
        }
    }

    /// Whether a leaf manifest with `platform` is wanted.
    pub fn accepts(&self, platform: Option<&Platform>) -> bool {
        match self.targets() {
            None => true,
            Some(targets) => match platform {
                // A manifest without platform matches only a request for exactly one platform.
                None => targets.len() == 1,
                Some(p) => targets.iter().any(|t| t.matches(p)),
            },
        }
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

/// Splits an index's children into wanted leaf manifests and nested indexes to expand.
///
/// Children without a platform inherit `inherited`; nested indexes are always expanded (their
/// leaves are filtered when they are expanded).
pub fn select_children(
    index: &Index,
    inherited: Option<&Platform>,
    request: &PlatformRequest,
) -> (Vec<Selected>, Vec<Selected>) {
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
        } else if request.accepts(selected.platform.as_ref()) {
            leaves.push(selected);
        }
    }
    (leaves, nested)
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
        let arm = PlatformRequest::Only(vec!["linux/arm64".parse().unwrap()]);
        let (leaves, _) = select_children(&index, None, &arm);
        // arm64 ≡ arm64/v8, and the platform-less child matches a single requested platform.
        assert_eq!(leaves.len(), 2);
        let two = PlatformRequest::Only(vec![
            "linux/arm64".parse().unwrap(),
            "linux/amd64".parse().unwrap(),
        ]);
        assert_eq!(select_children(&index, None, &two).0.len(), 2);
        assert_eq!(
            select_children(&index, None, &PlatformRequest::All).0.len(),
            3
        );
    }
}
