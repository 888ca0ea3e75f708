//! DS's layer signatures (ds-contract §13): what a push adds to every layer descriptor and how a
//! pull checks them, exactly as `ds plugin install` does.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::policy::{LayerVerdict, Verifier};
use super::{SignatureCheck, SignatureError, SigningKey};
use crate::manifest::{Descriptor, Manifest};
use crate::platform::Platform;

/// The signature annotation: standard base64 (with padding).
pub const SIGNATURE_ANNOTATION: &str = "delivery-station.io/signature";
/// The key id annotation: lower-case hex SHA-256 of the signer's PKIX public key.
pub const KEY_ID_ANNOTATION: &str = "delivery-station.io/key.id";

/// The scheme name in [`SignatureCheck::scheme`].
pub const SCHEME: &str = "ds";

/// Signs every layer: adds the signature and key id annotations to each descriptor. A pure
/// function over the manifest model, so whichever manifest builder runs calls it before
/// serialising; the signature depends only on the key and the layer digest, so pushes stay
/// reproducible.
pub fn sign_layers(layers: &mut [Descriptor], key: &SigningKey) -> Result<(), SignatureError> {
    for layer in layers {
        let signature = key.sign_digest(&layer.digest)?;
        layer
            .annotations
            .insert(SIGNATURE_ANNOTATION.to_owned(), signature);
        layer
            .annotations
            .insert(KEY_ID_ANNOTATION.to_owned(), key.key_id().to_owned());
    }
    Ok(())
}

/// Decodes a signature annotation (standard base64; surrounding blanks ignored).
pub(crate) fn decode_signature(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    STANDARD.decode(text.trim())
}

/// Checks every layer of every platform manifest. The first refusal fails the whole artifact,
/// naming the layer, platform and key id; unsigned layers a permissive policy lets through are
/// logged as warnings.
pub fn check_manifests<'a>(
    verifier: &Verifier,
    reference: &str,
    manifests: impl IntoIterator<Item = (Option<&'a Platform>, &'a Manifest)>,
) -> Result<Vec<SignatureCheck>, SignatureError> {
    let mut checks = Vec::new();
    for (platform, manifest) in manifests {
        let platform = platform_name(platform);
        let mut first_key = None;
        // A manifest without layers has nothing signed: DS would have nothing to install.
        let mut unsigned = manifest.layers.is_empty();
        if unsigned {
            verifier
                .unsigned()
                .map_err(|reason| SignatureError::Layer {
                    reference: reference.to_owned(),
                    platform: platform.clone(),
                    layer: "(none: the manifest has no layers)".into(),
                    key_id: None,
                    reason,
                })?;
        }
        for layer in &manifest.layers {
            match verifier.check_layer(layer) {
                Ok(LayerVerdict::Verified { key_id }) => {
                    first_key.get_or_insert(key_id);
                }
                Ok(LayerVerdict::UnsignedAllowed) => {
                    tracing::warn!(
                        reference,
                        platform = %platform,
                        layer = %layer.digest,
                        "layer is not signed; allowed because the signature mode is permissive with AllowUnsigned"
                    );
                    unsigned = true;
                }
                Err(refusal) => {
                    return Err(SignatureError::Layer {
                        reference: reference.to_owned(),
                        platform,
                        layer: layer.digest.to_string(),
                        key_id: refusal.key_id,
                        reason: refusal.reason,
                    });
                }
            }
        }
        let verified = !unsigned && first_key.is_some();
        checks.push(SignatureCheck {
            platform,
            scheme: SCHEME.into(),
            verified,
            key_id: first_key.unwrap_or_default(),
        });
    }
    Ok(checks)
}

/// `os/arch[/variant]`, or `unknown` (the export directory of a platform-less manifest).
pub(crate) fn platform_name(platform: Option<&Platform>) -> String {
    platform.map_or_else(|| "unknown".to_owned(), ToString::to_string)
}
