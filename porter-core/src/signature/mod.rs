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

pub use crate::artifact::SignatureCheck;
pub use crate::config::{Mode, SignaturePolicy, SignatureSettings};
pub use crate::engine::SignatureRequest;
pub use crate::error::SignatureError;
pub use check::VerifyReport;
pub(crate) use keys::expand_home;
pub use keys::{
    CosignSigningKey, GeneratedKey, KeyPairFiles, PRIVATE_KEY_FILE, PUBLIC_KEY_FILE, PublicKey,
    RSA_KEY_SIZES, SigningKey, generate_rsa, write_key_pair,
};
pub use policy::{TrustedKeys, Verifier};
