//! Signed releases: DS's own layer signatures and cosign's key-based signatures.
//!
//! - **DS scheme** ([`ds`]; ds-contract §13): each layer descriptor carries
//!   `delivery-station.io/signature` (RSA PKCS#1 v1.5 SHA-256 whose hash is the layer's own
//!   sha256 digest, standard base64) and `delivery-station.io/key.id` (hex SHA-256 of the signer's
//!   PKIX public key). Pushes sign every layer; pulls check every exported platform's layers
//!   against DS's `Plugins.Signature` policy (DS plugins) or `settings.porter.signature` (every
//!   other artifact), before anything is recorded in the cache or exported.
//! - **cosign** ([`cosign`]): a signature manifest under the tag `sha256-<hex>.sig` in the same
//!   repository whose simple-signing payload names the signed digest and repository. Key-based
//!   only: no transparency log, no keyless (Fulcio) certificates.
//!
//! Keys are PEM files ([`keys`]). ring verifies and signs whole messages (cosign payloads);
//! RSA over a digest that is already known (DS's scheme: a layer's digest was computed while it
//! streamed, so signing or checking it never re-reads the layer) and RSA key generation use
//! RustCrypto's `rsa`.

mod check;
pub mod cosign;
mod cosign_key;
pub mod ds;
mod keys;
mod policy;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use check::{SignatureRequest, VerifyReport};
pub(crate) use keys::expand_home;
pub use keys::{
    CosignSigningKey, GeneratedKey, KeyPairFiles, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, PublicKey,
    RSA_KEY_SIZES, SigningKey, generate_rsa, write_key_pair,
};
pub use policy::{Mode, SignaturePolicy, SignatureSettings, TrustedKeys, Verifier};

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

/// Why signing or a signature check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A key file could not be used.
    #[error("key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },

    /// Strict mode without a single trusted key (DS refuses to create its verifier then).
    #[error(
        "signature mode is strict for {policy} but no trusted public key was loaded (set its public keys or trust store)"
    )]
    NoTrustedKeys { policy: &'static str },

    /// A layer of a platform failed DS's check.
    #[error(
        "signature check failed for {reference}: layer {layer} of platform {platform}{}: {reason}",
        key_id.as_deref().map(|k| format!(" (key id {k})")).unwrap_or_default()
    )]
    Layer {
        reference: String,
        platform: String,
        layer: String,
        key_id: Option<String>,
        reason: String,
    },

    /// The artifact's cosign signature is missing or does not verify.
    #[error("cosign signature check failed for {reference} ({digest}): {reason}")]
    Cosign {
        reference: String,
        digest: String,
        reason: String,
    },

    /// Nothing could be checked because no policy applies (`verify` with signatures disabled).
    #[error(
        "signature verification is disabled for {reference}: {policy} has mode disabled and no cosign key is configured"
    )]
    Disabled {
        reference: String,
        policy: &'static str,
    },

    /// `verify`: the policy accepted the artifact, but these platforms carry no signature a
    /// trusted key verified (a permissive policy with `AllowUnsigned` lets that through on pull).
    #[error("{reference} is not verified: platform(s) {} are not signed", platforms.join(", "))]
    Unverified {
        reference: String,
        platforms: Vec<String>,
    },

    /// Producing a signature or a key failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

impl SignatureError {
    pub(crate) fn key(path: &Path, reason: String) -> Self {
        SignatureError::Key {
            path: path.to_path_buf(),
            reason,
        }
    }

    /// Whether the problem is the caller's input (a key or the configuration) rather than the
    /// artifact.
    pub fn is_input_problem(&self) -> bool {
        matches!(
            self,
            SignatureError::Key { .. }
                | SignatureError::NoTrustedKeys { .. }
                | SignatureError::Disabled { .. }
                | SignatureError::Sign(_)
        )
    }
}
