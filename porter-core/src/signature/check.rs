//! Signature checks of a pull, between fetching and recording: nothing is cached under the
//! reference or exported unless the policy accepts the artifact. Every pull runs them, whether
//! the artifact came from the registry, a layout or the cache (a cache is not a trust anchor).

use std::path::{Path, PathBuf};

use super::cosign::{self, Expected};
use super::policy::{self, Verifier};
use super::{PublicKey, SignatureCheck, SignatureError, ds};
use crate::config::Mode;
use crate::engine::{Origin, Porter, PullRequest};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, Manifest, Node};
use crate::platform::Platform;
use crate::progress::NoProgress;
use crate::progress::Progress;
use crate::pull::Pulled;
use crate::reference::{ArtifactRef, LayoutRef, RegistryRef};
use crate::registry::{LayoutSource, Remote, Source};

/// The report of [`Porter::verify`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    /// The reference as given.
    pub reference: String,
    /// The root digest that was checked.
    pub digest: String,
    /// Always `true`: a report is returned only when every checked platform was verified.
    pub verified: bool,
    /// One entry per platform and scheme.
    pub signatures: Vec<SignatureCheck>,
}

impl Porter {
    /// Checks the signatures of every requested platform (usually all) against the policy
    /// without exporting: the artifact is pulled into the cache and recorded only when the
    /// policy accepts it. A policy that checks nothing for this artifact is an error, and so is
    /// a platform that a permissive policy accepted unsigned.
    pub async fn verify(
        &self,
        request: &PullRequest,
        progress: &dyn Progress,
    ) -> Result<VerifyReport> {
        let mut request = request.clone();
        request.output = None;
        request.signatures.required = true;
        let outcome = self.pull(&request, progress).await?;
        let signatures = outcome.result.signatures;
        let unsigned: Vec<String> = signatures
            .iter()
            .filter(|s| !s.verified)
            .map(|s| s.platform.clone())
            .collect();
        if !unsigned.is_empty() {
            return Err(SignatureError::Unverified {
                reference: outcome.result.reference,
                platforms: unsigned,
            }
            .into());
        }
        Ok(VerifyReport {
            reference: outcome.result.reference,
            digest: outcome.result.digest,
            verified: true,
            signatures,
        })
    }

    /// Checks the exported platforms of `pulled` against the signature policy. `Ok` carries one
    /// entry per platform and scheme checked; a refusal is an error naming the layer, platform
    /// and key id (DS's scheme) or the digest (cosign).
    pub(crate) async fn check_signatures(
        &self,
        request: &PullRequest,
        pulled: &Pulled,
        origin: &Origin,
    ) -> Result<Vec<SignatureCheck>> {
        let platforms: Vec<(Option<&Platform>, &Manifest)> = pulled
            .manifests
            .iter()
            .map(|(selected, m)| (selected.platform.as_ref(), m))
            .collect();
        let settings = &self.settings().signature;
        let root_type = match &pulled.node {
            Node::Index(i) => i.artifact_type.as_deref(),
            Node::Manifest(m) => m.artifact_type.as_deref(),
        };
        let plugin = policy::is_plugin(root_type, platforms.iter().map(|(_, m)| *m));
        let (policy, name) = settings.policy_for(plugin);
        let cosign_keys: Vec<PathBuf> = settings
            .cosign_keys
            .iter()
            .chain(&request.signatures.cosign_keys)
            .cloned()
            .collect();
        let started = std::time::Instant::now();
        if policy.mode == Mode::Disabled && cosign_keys.is_empty() {
            if request.signatures.required {
                return Err(SignatureError::Disabled {
                    reference: request.original.clone(),
                    policy: name,
                }
                .into());
            }
            return Ok(Vec::new());
        }
        let (verifier, cosign_keys) = {
            let (policy, home) = (policy.clone(), crate::config::home_dir());
            tokio::task::spawn_blocking(move || {
                let verifier = Verifier::new(&policy, name, &home)?;
                let keys = load_cosign_keys(&cosign_keys, &home)?;
                Ok::<_, SignatureError>((verifier, keys))
            })
            .await
            .map_err(|e| Error::InvalidInput(format!("loading signature keys failed: {e}")))??
        };

        let mut checks = Vec::new();
        if let Some(verifier) = &verifier {
            checks.extend(ds::check_manifests(
                verifier,
                &request.original,
                platforms.iter().copied(),
            )?);
        }
        if !cosign_keys.is_empty() {
            let key_id = self
                .check_cosign(request, pulled, origin, &cosign_keys)
                .await?;
            checks.extend(platforms.iter().map(|(platform, _)| SignatureCheck {
                platform: ds::platform_name(*platform),
                scheme: cosign::SCHEME.into(),
                verified: true,
                key_id: key_id.clone(),
            }));
        }
        tracing::debug!(
            reference = %request.original,
            policy = name,
            checks = checks.len(),
            elapsed_us = started.elapsed().as_micros() as u64,
            "signatures checked"
        );
        Ok(checks)
    }

    /// Fetches the cosign signature manifest of the pulled root from the same repository (or
    /// layout) and verifies it; returns the id of the key that verified it.
    async fn check_cosign(
        &self,
        request: &PullRequest,
        pulled: &Pulled,
        origin: &Origin,
        keys: &[PublicKey],
    ) -> Result<String> {
        let digest = &pulled.root.digest;
        let refused = |reason: String| -> Error {
            SignatureError::Cosign {
                reference: request.original.clone(),
                digest: digest.to_string(),
                reason,
            }
            .into()
        };
        let tag = cosign::signature_tag(digest);
        if *origin == Origin::Offline {
            return Err(refused(format!(
                "cosign signatures are fetched from the registry ({tag}), which this pull did not reach"
            )));
        }
        let signed = match &request.reference {
            ArtifactRef::Registry(r) => {
                let sig_ref = RegistryRef {
                    tag: Some(tag.clone()),
                    digest: None,
                    ..r.clone()
                };
                let source = Remote::new(self.settings(), &sig_ref, request.insecure);
                self.fetch_signatures(&source, &tag).await
            }
            ArtifactRef::Layout(l) => {
                let sig_ref = LayoutRef {
                    tag: Some(tag.clone()),
                    digest: None,
                    ..l.clone()
                };
                self.fetch_signatures(&LayoutSource::new(&sig_ref), &tag)
                    .await
            }
        };
        let signed = signed.map_err(|e| match e {
            SignatureFetch::Refused(reason) => refused(reason),
            SignatureFetch::Failed(err) => err,
        })?;
        let repository = match &request.reference {
            ArtifactRef::Registry(r) => Some((r.registry.as_str(), r.repository.as_str())),
            ArtifactRef::Layout(_) => None,
        };
        let signed: Vec<_> = signed.iter().map(|(d, p)| (d, p.clone())).collect();
        cosign::verify(&signed, keys, Expected { digest, repository }).map_err(refused)
    }

    /// The signed payload layers of the signature manifest tagged `tag` in `source`, with their
    /// bytes. Payloads are verified blobs like any other (no index names them, so pruning removes
    /// them); the signature manifest itself is fetched on every pull, never trusted from the cache.
    async fn fetch_signatures<S: Source>(
        &self,
        source: &S,
        tag: &str,
    ) -> std::result::Result<Vec<(manifest::Descriptor, Vec<u8>)>, SignatureFetch> {
        let (desc, bytes) = match source.fetch_root().await {
            Ok(root) => root,
            Err(err) if err.kind() == ErrorKind::NotFound => {
                return Err(SignatureFetch::Refused(format!(
                    "the artifact is not signed (no signature manifest {tag})"
                )));
            }
            Err(err) => return Err(SignatureFetch::Failed(err)),
        };
        let Node::Manifest(sig_manifest) = manifest::parse(&bytes, &desc.media_type, &desc.digest)
            .map_err(SignatureFetch::Failed)?
        else {
            return Err(SignatureFetch::Refused(format!(
                "{tag} is an index, not a signature manifest"
            )));
        };
        let layers = cosign::signed_layers(&sig_manifest).map_err(SignatureFetch::Refused)?;
        let cache = self.cache();
        let mut signed = Vec::new();
        for layer in layers {
            if !cache.has_blob(&layer.digest, layer.size) {
                source
                    .fetch_blob(layer, cache, &NoProgress)
                    .await
                    .map_err(SignatureFetch::Failed)?;
            }
            let payload = cache
                .read_blob(&layer.digest)
                .map_err(SignatureFetch::Failed)?;
            signed.push((layer.clone(), payload));
        }
        Ok(signed)
    }
}

/// Why the signature manifest could not be used.
enum SignatureFetch {
    /// The artifact has no usable signature: a refusal.
    Refused(String),
    /// Fetching failed (network, registry, disk): reported as such.
    Failed(Error),
}

/// Loads the cosign public keys; an unusable key is an error (it was asked for by name).
fn load_cosign_keys(paths: &[PathBuf], home: &Path) -> Result<Vec<PublicKey>, SignatureError> {
    paths
        .iter()
        .map(|p| PublicKey::load(&super::expand_home(p, home)))
        .collect()
}
