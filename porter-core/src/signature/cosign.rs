//! cosign's key-based signatures: the signature manifest under `sha256-<hex>.sig` in the
//! artifact's repository, whose simple-signing payload layers carry the signature in the
//! `dev.cosignproject.cosign/signature` annotation.
//!
//! The payload names what is signed: `critical.image.docker-manifest-digest` (the artifact's
//! root digest) and `critical.identity.docker-reference` (its repository). Unlike DS's scheme,
//! the signature therefore covers the whole manifest graph (every platform, every annotation)
//! and binds it to a repository. No transparency log is consulted and no keyless certificate is
//! accepted: the trusted keys are the whole trust root.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

use super::{CosignSigningKey, PublicKey, SignatureError};
use crate::digest::Digest;
use crate::manifest::{Descriptor, Manifest, OCI_MANIFEST};

/// The annotation holding the base64 signature of a payload layer.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Media type of a simple-signing payload layer.
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The payload's `critical.type`.
pub const PAYLOAD_TYPE: &str = "cosign container image signature";
/// Media type of the signature manifest's config.
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The scheme name in [`super::SignatureCheck::scheme`].
pub const SCHEME: &str = "cosign";
/// Largest payload read (cosign's are a few hundred bytes).
pub const MAX_PAYLOAD_BYTES: u64 = 64 * 1024;
/// Most payload layers one signature manifest may list.
pub const MAX_SIGNATURES: usize = 64;

/// The tag cosign stores the signatures of `digest` under.
pub fn signature_tag(digest: &Digest) -> String {
    format!("{}-{}.sig", digest.algorithm(), digest.hex())
}

/// The simple-signing payload cosign signs for `digest` in `docker_reference` (a repository:
/// `registry/path`, no tag).
pub fn payload(docker_reference: &str, digest: &Digest) -> Vec<u8> {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// A signature manifest ready to push: its config and payload blobs and the manifest itself.
#[derive(Debug, Clone)]
pub struct SignatureArtifact {
    /// The tag to push the manifest under (`sha256-<hex>.sig`).
    pub tag: String,
    /// The config blob (an OCI image config naming the payload, as cosign writes it).
    pub config: Vec<u8>,
    /// The simple-signing payload blob.
    pub payload: Vec<u8>,
    /// The manifest (`application/vnd.oci.image.manifest.v1+json`).
    pub manifest: Vec<u8>,
    /// The signing key's id.
    pub key_id: String,
}

impl SignatureArtifact {
    /// Digest of the config blob.
    pub fn config_digest(&self) -> Digest {
        Digest::of(&self.config)
    }
    /// Digest of the payload blob.
    pub fn payload_digest(&self) -> Digest {
        Digest::of(&self.payload)
    }
    /// Digest of the manifest.
    pub fn manifest_digest(&self) -> Digest {
        Digest::of(&self.manifest)
    }
}

/// Signs `digest` in `docker_reference` cosign-style. ECDSA signatures are randomised, so two
/// signatures of the same artifact differ; the artifact's own digests do not change.
pub fn sign(
    key: &CosignSigningKey,
    docker_reference: &str,
    digest: &Digest,
) -> Result<SignatureArtifact, SignatureError> {
    let payload = payload(docker_reference, digest);
    let signature = STANDARD.encode(key.sign(&payload)?);
    let payload_digest = Digest::of(&payload);
    let config = serde_json::to_vec(&json!({
        "architecture": "",
        "config": {},
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": [payload_digest.to_string()]},
    }))
    .unwrap_or_default();
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "size": config.len(),
            "digest": Digest::of(&config).to_string(),
        },
        "layers": [{
            "mediaType": PAYLOAD_MEDIA_TYPE,
            "size": payload.len(),
            "digest": payload_digest.to_string(),
            "annotations": {SIGNATURE_ANNOTATION: signature},
        }],
    }))
    .unwrap_or_default();
    Ok(SignatureArtifact {
        tag: signature_tag(digest),
        config,
        payload,
        manifest,
        key_id: key.key_id().to_owned(),
    })
}

/// The payload layers of a signature manifest that carry a signature, at most
/// [`MAX_SIGNATURES`], each no larger than [`MAX_PAYLOAD_BYTES`].
pub fn signed_layers(manifest: &Manifest) -> Result<Vec<&Descriptor>, String> {
    let layers: Vec<&Descriptor> = manifest
        .layers
        .iter()
        .filter(|l| l.annotations.contains_key(SIGNATURE_ANNOTATION))
        .collect();
    if layers.is_empty() {
        return Err("the signature manifest has no signed payload".into());
    }
    if layers.len() > MAX_SIGNATURES {
        return Err(format!(
            "the signature manifest lists {} signatures; more than {MAX_SIGNATURES} are refused",
            layers.len()
        ));
    }
    if let Some(big) = layers.iter().find(|l| l.size > MAX_PAYLOAD_BYTES) {
        return Err(format!(
            "payload {} is {} bytes; more than {MAX_PAYLOAD_BYTES} are refused",
            big.digest, big.size
        ));
    }
    Ok(layers)
}

/// What a payload must name.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// The digest being pulled.
    pub digest: &'a Digest,
    /// Its repository (`registry/path`), or `None` for an OCI layout, which has no name.
    pub repository: Option<(&'a str, &'a str)>,
}

/// Checks the signed payloads (`(layer, payload bytes)`) of a signature manifest: one whose
/// signature a key verifies and whose payload names the expected digest and repository is
/// enough. Returns the id of the key that verified it, or why none did.
pub fn verify(
    signed: &[(&Descriptor, Vec<u8>)],
    keys: &[PublicKey],
    expected: Expected<'_>,
) -> Result<String, String> {
    let mut reasons: Vec<String> = Vec::new();
    for (layer, payload) in signed {
        let Some(signature) = layer
            .annotations
            .get(SIGNATURE_ANNOTATION)
            .and_then(|s| STANDARD.decode(s.trim()).ok())
        else {
            reasons.push(format!(
                "payload {}: the signature is not base64",
                layer.digest
            ));
            continue;
        };
        let Some(key) = keys.iter().find(|k| k.verify_message(payload, &signature)) else {
            reasons.push(format!(
                "payload {}: no configured cosign key verifies its signature",
                layer.digest
            ));
            continue;
        };
        match check_payload(payload, expected) {
            Ok(()) => return Ok(key.id().to_owned()),
            Err(reason) => reasons.push(format!("payload {}: {reason}", layer.digest)),
        }
    }
    Err(reasons.join("; "))
}

/// Checks a verified payload's claims.
fn check_payload(payload: &[u8], expected: Expected<'_>) -> Result<(), String> {
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| format!("not a simple-signing payload: {e}"))?;
    let critical = &value["critical"];
    if critical["type"].as_str() != Some(PAYLOAD_TYPE) {
        return Err(format!("critical.type is not {PAYLOAD_TYPE:?}"));
    }
    let signed = critical["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap_or_default();
    if signed != expected.digest.to_string() {
        return Err(format!(
            "it signs {signed}, not {} (docker-manifest-digest)",
            expected.digest
        ));
    }
    if let Some((registry, repository)) = expected.repository {
        let named = critical["identity"]["docker-reference"]
            .as_str()
            .unwrap_or_default();
        if !same_repository(named, registry, repository) {
            return Err(format!(
                "it names repository {named:?}, not {registry}/{repository} (docker-reference)"
            ));
        }
    }
    Ok(())
}

/// Whether `docker-reference` names `registry/repository` (Docker Hub's aliases are one
/// registry; a tag or digest on the reference is ignored, as cosign writes none).
fn same_repository(named: &str, registry: &str, repository: &str) -> bool {
    let named = named.split('@').next().unwrap_or_default();
    let (host, path) = named.split_once('/').unwrap_or(("", named));
    let path = match path.rsplit_once(':') {
        Some((p, tag)) if !tag.contains('/') => p,
        _ => path,
    };
    crate::config::same_registry(host, registry) && path == repository
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn docker_references_compare_by_registry_and_path() {
        assert!(same_repository(
            "127.0.0.1:5000/demo/tool",
            "127.0.0.1:5000",
            "demo/tool"
        ));
        assert!(same_repository(
            "index.docker.io/library/busybox",
            "docker.io",
            "library/busybox"
        ));
        assert!(same_repository("r.io/a/b:1.0", "r.io", "a/b"));
        assert!(!same_repository("r.io/a/b", "r.io", "a/c"));
        assert!(!same_repository("other.io/a/b", "r.io", "a/b"));
        assert!(!same_repository("a/b", "r.io", "a/b"));
    }

    #[test]
    fn the_signature_tag_is_cosigns() {
        let d = Digest::of(b"x");
        assert_eq!(signature_tag(&d), format!("sha256-{}.sig", d.hex()));
    }
}
