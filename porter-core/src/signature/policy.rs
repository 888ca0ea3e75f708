//! The verification policy, with DS's meaning and key loading rules (ds-contract §13):
//! `Plugins.Signature` for DS plugins, `settings.porter.signature` (the same shape, plus cosign
//! keys) for everything else.

use std::path::{Path, PathBuf};

use super::{PublicKey, SignatureError};
use crate::config::{Mode, SignaturePolicy};
use crate::manifest::{Descriptor, Manifest};

/// Artifact types of DS plugins (`…plugin.index.v1+json`, `…plugin.v1+binary`).
const PLUGIN_TYPE_PREFIX: &str = "application/vnd.delivery-station.plugin.";

/// Most files a trust store walk reads, and how deep it descends.
const MAX_TRUST_STORE_FILES: usize = 10_000;
const MAX_TRUST_STORE_DEPTH: usize = 16;

/// Whether an artifact is a DS plugin: its root, a selected manifest or a layer has a
/// `application/vnd.delivery-station.plugin.*` type.
pub(crate) fn is_plugin<'a>(
    root_type: Option<&str>,
    manifests: impl IntoIterator<Item = &'a Manifest>,
) -> bool {
    let plugin = |t: Option<&str>| t.is_some_and(|t| t.starts_with(PLUGIN_TYPE_PREFIX));
    plugin(root_type)
        || manifests.into_iter().any(|m| {
            plugin(m.artifact_type.as_deref())
                || m.layers.iter().any(|l| plugin(Some(&l.media_type)))
        })
}

/// Trusted public keys, loaded as DS loads them.
#[derive(Debug, Default)]
pub struct TrustedKeys {
    keys: Vec<PublicKey>,
}

impl TrustedKeys {
    /// Loads `policy`'s keys: each `public_keys` path (an unreadable or non-RSA key is skipped
    /// with a warning), then every `*.pem`/`*.pub` file under `trust_store` (a missing directory
    /// is not an error; unparsable files are skipped).
    pub fn load(policy: &SignaturePolicy, home: &Path) -> TrustedKeys {
        let mut keys: Vec<PublicKey> = Vec::new();
        let mut add = |key: PublicKey| {
            if !keys.contains(&key) {
                keys.push(key);
            }
        };
        for path in &policy.public_keys {
            let path = super::expand_home(path, home);
            match PublicKey::load(&path) {
                Ok(key) if key.is_rsa() => add(key),
                Ok(key) => {
                    tracing::warn!(path = %path.display(), algorithm = key.algorithm(), "skipping a public key that is not RSA")
                }
                Err(err) => tracing::warn!("skipping public key: {err}"),
            }
        }
        if let Some(store) = &policy.trust_store {
            let store = super::expand_home(store, home);
            let mut files = Vec::new();
            walk_trust_store(&store, 0, &mut files);
            files.sort();
            for path in files {
                match PublicKey::load(&path) {
                    Ok(key) if key.is_rsa() => add(key),
                    Ok(_) => tracing::debug!(path = %path.display(), "trust store: not an RSA key"),
                    Err(err) => tracing::debug!("trust store: skipping {err}"),
                }
            }
        }
        TrustedKeys { keys }
    }

    /// Trusts exactly these keys.
    pub fn from_keys(keys: Vec<PublicKey>) -> TrustedKeys {
        TrustedKeys { keys }
    }

    /// The loaded keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }
}

/// Collects `*.pem`/`*.pub` files under `dir`, not following links to directories.
fn walk_trust_store(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > MAX_TRUST_STORE_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if out.len() >= MAX_TRUST_STORE_FILES {
            return;
        }
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            walk_trust_store(&path, depth + 1, out);
        } else if path.extension().is_some_and(|e| e == "pem" || e == "pub") {
            out.push(path);
        }
    }
}

/// DS's check of one layer.
#[derive(Debug)]
pub enum LayerVerdict {
    /// A trusted key verified the signature.
    Verified {
        /// That key's id.
        key_id: String,
    },
    /// Unsigned, and the permissive policy allows it.
    UnsignedAllowed,
}

/// Why DS's check refused a layer.
#[derive(Debug)]
pub struct LayerRefusal {
    /// The key id the layer names, if any.
    pub key_id: Option<String>,
    /// DS's reason.
    pub reason: String,
}

/// A policy with its keys loaded: DS's verifier.
#[derive(Debug)]
pub struct Verifier {
    mode: Mode,
    allow_unsigned: bool,
    keys: TrustedKeys,
}

impl Verifier {
    /// DS's verifier for `policy`: `None` when disabled; strict mode without any trusted key is
    /// an error, as in DS.
    pub fn new(
        policy: &SignaturePolicy,
        name: &'static str,
        home: &Path,
    ) -> Result<Option<Verifier>, SignatureError> {
        if policy.mode == Mode::Disabled {
            return Ok(None);
        }
        Self::with_keys(policy, name, TrustedKeys::load(policy, home)).map(Some)
    }

    /// A verifier for `policy`'s mode with the given keys.
    pub fn with_keys(
        policy: &SignaturePolicy,
        name: &'static str,
        keys: TrustedKeys,
    ) -> Result<Verifier, SignatureError> {
        if policy.mode == Mode::Strict && keys.keys.is_empty() {
            return Err(SignatureError::NoTrustedKeys { policy: name });
        }
        Ok(Verifier {
            mode: policy.mode,
            allow_unsigned: policy.allow_unsigned,
            keys,
        })
    }

    /// What the policy says about something unsigned: a layer without a signature, or a
    /// manifest without layers.
    pub fn unsigned(&self) -> Result<LayerVerdict, String> {
        match self.mode {
            Mode::Permissive if self.allow_unsigned => Ok(LayerVerdict::UnsignedAllowed),
            Mode::Strict => Err("missing signature annotations on layer (strict mode)".into()),
            _ => Err("layer is not signed".into()),
        }
    }

    /// Checks one layer descriptor as DS's installer does.
    pub fn check_layer(&self, layer: &Descriptor) -> Result<LayerVerdict, LayerRefusal> {
        let key_id = layer
            .annotations
            .get(super::ds::KEY_ID_ANNOTATION)
            .map(|k| k.trim().to_ascii_lowercase())
            .filter(|k| !k.is_empty());
        let refuse = |reason: String| LayerRefusal {
            key_id: key_id.clone(),
            reason,
        };
        let Some(signature) = layer
            .annotations
            .get(super::ds::SIGNATURE_ANNOTATION)
            .filter(|s| !s.trim().is_empty())
        else {
            return self.unsigned().map_err(refuse);
        };
        let signature = super::ds::decode_signature(signature)
            .map_err(|e| refuse(format!("invalid signature encoding: {e}")))?;
        let candidates: Vec<&PublicKey> = match &key_id {
            Some(id) => {
                let found: Vec<&PublicKey> =
                    self.keys.keys.iter().filter(|k| k.id() == id).collect();
                if found.is_empty() {
                    return Err(refuse(format!("key ID {id} not found in trusted keys")));
                }
                found
            }
            None => self.keys.keys.iter().collect(),
        };
        candidates
            .into_iter()
            .find(|key| key.verify_sha256_digest(&layer.digest, &signature))
            .map(|key| LayerVerdict::Verified {
                key_id: key.id().to_owned(),
            })
            .ok_or_else(|| refuse("signature verification failed".into()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::ds::{KEY_ID_ANNOTATION, SIGNATURE_ANNOTATION, sign_layers};
    use super::super::{SigningKey, generate_rsa};
    use super::*;
    use crate::digest::Digest;

    fn layer(content: &[u8]) -> Descriptor {
        Descriptor {
            media_type: "application/octet-stream".into(),
            digest: Digest::of(content),
            size: content.len() as u64,
            artifact_type: None,
            platform: None,
            annotations: BTreeMap::new(),
        }
    }

    fn key() -> SigningKey {
        SigningKey::from_pem(generate_rsa(2048).unwrap().private_pem.as_bytes()).unwrap()
    }

    fn verifier(mode: Mode, allow_unsigned: bool, keys: &[&SigningKey]) -> Verifier {
        let policy = SignaturePolicy {
            mode,
            allow_unsigned,
            ..SignaturePolicy::default()
        };
        let keys = keys.iter().map(|k| k.public_key().clone()).collect();
        Verifier::with_keys(&policy, "test", TrustedKeys::from_keys(keys)).unwrap()
    }

    #[test]
    fn a_signed_layer_verifies_with_and_without_its_key_id() {
        let (trusted, other) = (key(), key());
        let mut layers = [layer(b"a"), layer(b"b")];
        sign_layers(&mut layers, &trusted).unwrap();
        // Deterministic: the same key and digest give the same signature.
        let mut again = [layer(b"a")];
        sign_layers(&mut again, &trusted).unwrap();
        assert_eq!(layers[0].annotations, again[0].annotations);

        let strict = verifier(Mode::Strict, false, &[&other, &trusted]);
        for l in &layers {
            let LayerVerdict::Verified { key_id } = strict.check_layer(l).unwrap() else {
                panic!("not verified")
            };
            assert_eq!(key_id, trusted.key_id());
        }
        let mut anonymous = layers[0].clone();
        anonymous.annotations.remove(KEY_ID_ANNOTATION);
        assert!(strict.check_layer(&anonymous).is_ok());
    }

    #[test]
    fn refusals_give_dss_reasons() {
        let (trusted, other) = (key(), key());
        let strict = verifier(Mode::Strict, false, &[&trusted]);
        let reason = |l: &Descriptor| strict.check_layer(l).unwrap_err().reason;
        assert_eq!(
            reason(&layer(b"x")),
            "missing signature annotations on layer (strict mode)"
        );
        let mut by_other = [layer(b"x")];
        sign_layers(&mut by_other, &other).unwrap();
        assert_eq!(
            reason(&by_other[0]),
            format!("key ID {} not found in trusted keys", other.key_id())
        );
        // Another key's signature under the trusted key's id, or on other content.
        let mut forged = by_other[0].clone();
        forged
            .annotations
            .insert(KEY_ID_ANNOTATION.into(), trusted.key_id().into());
        assert_eq!(reason(&forged), "signature verification failed");
        let mut signed = [layer(b"x")];
        sign_layers(&mut signed, &trusted).unwrap();
        let mut moved = layer(b"y");
        moved.annotations = signed[0].annotations.clone();
        assert_eq!(reason(&moved), "signature verification failed");
        let mut garbled = signed[0].clone();
        garbled
            .annotations
            .insert(SIGNATURE_ANNOTATION.into(), "not base64!".into());
        assert!(reason(&garbled).starts_with("invalid signature encoding"));
        // Without a key id and without a matching key.
        let mut anonymous = by_other[0].clone();
        anonymous.annotations.remove(KEY_ID_ANNOTATION);
        assert_eq!(reason(&anonymous), "signature verification failed");
    }

    #[test]
    fn permissive_mode_lets_unsigned_layers_through_only_when_allowed() {
        let trusted = key();
        let allowing = verifier(Mode::Permissive, true, &[&trusted]);
        assert!(matches!(
            allowing.check_layer(&layer(b"x")).unwrap(),
            LayerVerdict::UnsignedAllowed
        ));
        let refusing = verifier(Mode::Permissive, false, &[&trusted]);
        assert_eq!(
            refusing.check_layer(&layer(b"x")).unwrap_err().reason,
            "layer is not signed"
        );
        // Permissive mode needs no key; strict mode does.
        let policy = |mode| SignaturePolicy {
            mode,
            ..SignaturePolicy::default()
        };
        assert!(
            Verifier::with_keys(&policy(Mode::Permissive), "p", TrustedKeys::default()).is_ok()
        );
        let err =
            Verifier::with_keys(&policy(Mode::Strict), "p", TrustedKeys::default()).unwrap_err();
        assert!(matches!(err, SignatureError::NoTrustedKeys { policy: "p" }));
        assert!(
            Verifier::new(&policy(Mode::Disabled), "p", Path::new("/"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn keys_load_as_ds_loads_them() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (generate_rsa(2048).unwrap(), generate_rsa(2048).unwrap());
        std::fs::write(dir.path().join("a.pem"), &a.public_pem).unwrap();
        let store = dir.path().join("trust/nested");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(store.join("b.pub"), &b.public_pem).unwrap();
        std::fs::write(store.join("junk.pem"), "not a key").unwrap();
        std::fs::write(store.join("ignored.txt"), &a.public_pem).unwrap();
        let policy = SignaturePolicy {
            mode: Mode::Strict,
            public_keys: vec!["~/a.pem".into(), "~/missing.pem".into()],
            trust_store: Some("~/trust".into()),
            allow_unsigned: false,
        };
        let keys = TrustedKeys::load(&policy, dir.path());
        let ids: Vec<&str> = keys.keys().iter().map(PublicKey::id).collect();
        assert_eq!(ids, [a.key_id.as_str(), b.key_id.as_str()]);
        // A missing trust store is not an error.
        let missing = SignaturePolicy {
            trust_store: Some(dir.path().join("nope")),
            ..SignaturePolicy::default()
        };
        assert!(TrustedKeys::load(&missing, dir.path()).keys().is_empty());
    }

    #[test]
    fn plugin_artifacts_are_recognised_by_their_types() {
        assert!(is_plugin(
            Some("application/vnd.delivery-station.plugin.index.v1+json"),
            []
        ));
        assert!(!is_plugin(
            Some("application/vnd.delivery-station.artifact.index.v1+json"),
            []
        ));
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "config": {"mediaType": "a/b", "digest": Digest::of(b"{}").to_string(), "size": 2},
            "layers": [{"mediaType": "application/vnd.delivery-station.plugin.v1+binary",
                        "digest": Digest::of(b"x").to_string(), "size": 1}],
        }))
        .unwrap();
        assert!(is_plugin(None, [&manifest]));
    }
}
