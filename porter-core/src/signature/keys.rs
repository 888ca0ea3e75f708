//! Keys in the PEM formats DS and cosign read and write.
//!
//! Public keys are PKIX (`PUBLIC KEY`) PEM blocks, RSA or ECDSA P-256; a key's id is the
//! lower-case hex SHA-256 of its PKIX DER encoding, as DS computes it. DS signing keys are RSA,
//! PKCS#1 (`RSA PRIVATE KEY`) or PKCS#8 (`PRIVATE KEY`); cosign signing keys are ECDSA P-256 or
//! RSA, PKCS#8 or cosign's own encrypted format (`ENCRYPTED SIGSTORE PRIVATE KEY`, see
//! [`super::cosign_key`]). Private keys never appear in `Debug` output or errors.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{self as ring_sig, KeyPair as _};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::der::asn1::ObjectIdentifier;
use rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey, LineEnding};
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::SignatureError;
use crate::digest::Digest;

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const PRIME256V1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// Largest key file read (a PEM key is a few KiB).
const MAX_KEY_FILE: u64 = 64 * 1024;

/// Key sizes `key generate` offers (DS's own tooling offers the same).
pub const RSA_KEY_SIZES: [usize; 2] = [2048, 4096];

/// A public key that verifies signatures.
#[derive(Clone)]
pub struct PublicKey {
    kind: PublicKind,
    id: String,
}

#[derive(Clone)]
enum PublicKind {
    Rsa {
        key: RsaPublicKey,
        /// PKCS#1 `RSAPublicKey` DER, what ring verifies with.
        pkcs1: Vec<u8>,
    },
    /// The uncompressed P-256 point.
    EcdsaP256(Vec<u8>),
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("algorithm", &self.algorithm())
            .field("id", &self.id)
            .finish()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl PublicKey {
    /// Reads the first `PUBLIC KEY` PEM block of `text`.
    pub fn from_pem(text: &[u8]) -> Result<Self, String> {
        let (label, der) = pem_block(text)?;
        if label != "PUBLIC KEY" {
            return Err(format!(
                "expected a PEM \"PUBLIC KEY\" block, found {label:?}"
            ));
        }
        Self::from_spki_der(&der)
    }

    /// Reads a PKIX `SubjectPublicKeyInfo` DER encoding.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, String> {
        let spki = SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| format!("not a PKIX public key: {e}"))?;
        let oid = spki.algorithm.oid;
        if oid == RSA_ENCRYPTION {
            let key = RsaPublicKey::from_public_key_der(der)
                .map_err(|e| format!("invalid RSA public key: {e}"))?;
            return Ok(Self::rsa(key));
        }
        if oid == EC_PUBLIC_KEY {
            let curve = spki.algorithm.parameters_oid().ok();
            if curve != Some(PRIME256V1) {
                return Err("only the P-256 curve is supported for ECDSA keys".into());
            }
            let point = spki
                .subject_public_key
                .as_bytes()
                .ok_or("the ECDSA public key is not a whole number of bytes")?;
            return Ok(PublicKey {
                id: key_id(der),
                kind: PublicKind::EcdsaP256(point.to_vec()),
            });
        }
        Err(format!(
            "unsupported public key algorithm {oid} (RSA and ECDSA P-256 are supported)"
        ))
    }

    fn rsa(key: RsaPublicKey) -> Self {
        // Re-encoded, so the id is DS's `x509.MarshalPKIXPublicKey`, whatever the file's DER.
        let spki = key
            .to_public_key_der()
            .map(|d| d.into_vec())
            .unwrap_or_default();
        let pkcs1 = rsa::pkcs1::EncodeRsaPublicKey::to_pkcs1_der(&key)
            .map(|d| d.into_vec())
            .unwrap_or_default();
        PublicKey {
            id: key_id(&spki),
            kind: PublicKind::Rsa { key, pkcs1 },
        }
    }

    /// Reads a public key file.
    pub fn load(path: &Path) -> Result<Self, SignatureError> {
        let text = read_key_file(path)?;
        Self::from_pem(&text).map_err(|reason| SignatureError::key(path, reason))
    }

    /// Lower-case hex SHA-256 of the PKIX DER encoding.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `RSA` or `ECDSA-P256`.
    pub fn algorithm(&self) -> &'static str {
        match self.kind {
            PublicKind::Rsa { .. } => "RSA",
            PublicKind::EcdsaP256(_) => "ECDSA-P256",
        }
    }

    /// Whether this is an RSA key (DS's scheme accepts nothing else).
    pub fn is_rsa(&self) -> bool {
        matches!(self.kind, PublicKind::Rsa { .. })
    }

    /// The key as a PKIX `PUBLIC KEY` PEM block.
    pub fn to_pem(&self) -> Option<String> {
        match &self.kind {
            PublicKind::Rsa { key, .. } => key.to_public_key_pem(LineEnding::LF).ok(),
            PublicKind::EcdsaP256(_) => None,
        }
    }

    /// DS's check: RSA PKCS#1 v1.5 over a SHA-256 hash that is already known (the layer digest).
    pub(crate) fn verify_sha256_digest(&self, digest: &Digest, signature: &[u8]) -> bool {
        let PublicKind::Rsa { key, .. } = &self.kind else {
            return false;
        };
        let Ok(hash) = hex::decode(digest.hex()) else {
            return false;
        };
        key.verify(Pkcs1v15Sign::new::<Sha256>(), &hash, signature)
            .is_ok()
    }

    /// A signature over `message` (cosign's payload): ECDSA P-256 SHA-256 (ASN.1), or RSA
    /// PKCS#1 v1.5 SHA-256.
    pub(crate) fn verify_message(&self, message: &[u8], signature: &[u8]) -> bool {
        let (algorithm, key): (&dyn ring_sig::VerificationAlgorithm, &[u8]) = match &self.kind {
            PublicKind::Rsa { pkcs1, .. } => (&ring_sig::RSA_PKCS1_2048_8192_SHA256, pkcs1),
            PublicKind::EcdsaP256(point) => (&ring_sig::ECDSA_P256_SHA256_ASN1, point),
        };
        ring_sig::UnparsedPublicKey::new(algorithm, key)
            .verify(message, signature)
            .is_ok()
    }
}

/// Lower-case hex SHA-256 of a PKIX DER encoding.
fn key_id(spki_der: &[u8]) -> String {
    hex::encode(Sha256::digest(spki_der))
}

/// An RSA private key that signs layers in DS's scheme. `Debug` shows only the key id.
pub struct SigningKey {
    key: RsaPrivateKey,
    public: PublicKey,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("key_id", &self.public.id)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Reads an RSA private key: PEM `RSA PRIVATE KEY` (PKCS#1) or `PRIVATE KEY` (PKCS#8).
    /// Passphrase-protected keys are refused.
    pub fn load(path: &Path) -> Result<Self, SignatureError> {
        let text = read_key_file(path)?;
        Self::from_pem(&text).map_err(|reason| SignatureError::key(path, reason))
    }

    /// [`SigningKey::load`] from the file's text.
    pub fn from_pem(text: &[u8]) -> Result<Self, String> {
        let (label, der) = private_pem_block(text)?;
        let key = match label.as_str() {
            "RSA PRIVATE KEY" => RsaPrivateKey::from_pkcs1_der(&der)
                .map_err(|e| format!("invalid PKCS#1 RSA private key: {e}"))?,
            "PRIVATE KEY" => RsaPrivateKey::from_pkcs8_der(&der)
                .map_err(|e| format!("not a PKCS#8 RSA private key: {e}"))?,
            other => {
                return Err(format!(
                    "expected a PEM \"RSA PRIVATE KEY\" or \"PRIVATE KEY\" block, found {other:?}"
                ));
            }
        };
        let public = PublicKey::rsa(key.to_public_key());
        Ok(SigningKey { key, public })
    }

    /// The key id of the public half.
    pub fn key_id(&self) -> &str {
        self.public.id()
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// RSA PKCS#1 v1.5 SHA-256 signature whose hash is `digest` itself (DS's scheme), standard
    /// base64. Deterministic: the same key and digest give the same signature.
    pub fn sign_digest(&self, digest: &Digest) -> Result<String, SignatureError> {
        let hash = hex::decode(digest.hex()).map_err(|e| SignatureError::Sign(e.to_string()))?;
        // Blinded: the random blinding factor hides the private exponent's timing and cancels
        // out, so the signature is still deterministic.
        let signature = self
            .key
            .sign_with_rng(&mut rand_core::OsRng, Pkcs1v15Sign::new::<Sha256>(), &hash)
            .map_err(|e| SignatureError::Sign(e.to_string()))?;
        Ok(STANDARD.encode(signature))
    }
}

/// A private key that signs cosign payloads. `Debug` shows only the key id.
pub struct CosignSigningKey {
    pair: CosignPair,
    public: PublicKey,
}

enum CosignPair {
    Ecdsa(ring_sig::EcdsaKeyPair),
    Rsa(ring_sig::RsaKeyPair),
}

impl fmt::Debug for CosignSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CosignSigningKey")
            .field("algorithm", &self.public.algorithm())
            .field("key_id", &self.public.id)
            .finish_non_exhaustive()
    }
}

impl CosignSigningKey {
    /// Reads a cosign signing key: cosign's encrypted format (decrypted with `password`), or an
    /// unencrypted PKCS#8 `PRIVATE KEY` (ECDSA P-256 or RSA) or PKCS#1 `RSA PRIVATE KEY`.
    pub fn load(path: &Path, password: Option<&str>) -> Result<Self, SignatureError> {
        let text = read_key_file(path)?;
        Self::from_pem(&text, password).map_err(|reason| SignatureError::key(path, reason))
    }

    /// [`CosignSigningKey::load`] from the file's text.
    pub fn from_pem(text: &[u8], password: Option<&str>) -> Result<Self, String> {
        let (label, der) = pem_block(text)?;
        let pkcs8 = match label.as_str() {
            super::cosign_key::SIGSTORE_LABEL | super::cosign_key::COSIGN_LABEL => {
                let password = password.ok_or(
                    "the key is encrypted; its password is read from the COSIGN_PASSWORD variable, which is not set",
                )?;
                super::cosign_key::decrypt(&der, password)?
            }
            "PRIVATE KEY" => Zeroizing::new(der),
            "RSA PRIVATE KEY" => {
                let pair = ring_sig::RsaKeyPair::from_der(&der)
                    .map_err(|e| format!("invalid PKCS#1 RSA private key: {e}"))?;
                return Self::rsa(pair);
            }
            "ENCRYPTED PRIVATE KEY" => return Err(passphrase_refusal()),
            other => {
                return Err(format!(
                    "expected a cosign private key or a PEM \"PRIVATE KEY\" block, found {other:?}"
                ));
            }
        };
        let rng = ring::rand::SystemRandom::new();
        match ring_sig::EcdsaKeyPair::from_pkcs8(
            &ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING,
            &pkcs8,
            &rng,
        ) {
            Ok(pair) => {
                let public = ecdsa_public(pair.public_key().as_ref())?;
                Ok(CosignSigningKey {
                    pair: CosignPair::Ecdsa(pair),
                    public,
                })
            }
            Err(ecdsa) => match ring_sig::RsaKeyPair::from_pkcs8(&pkcs8) {
                Ok(pair) => Self::rsa(pair),
                Err(_) => Err(format!(
                    "not an ECDSA P-256 or RSA PKCS#8 private key ({ecdsa})"
                )),
            },
        }
    }

    fn rsa(pair: ring_sig::RsaKeyPair) -> Result<Self, String> {
        let public = rsa_public_from_pkcs1(pair.public_key().as_ref())?;
        Ok(CosignSigningKey {
            pair: CosignPair::Rsa(pair),
            public,
        })
    }

    /// The key id of the public half.
    pub fn key_id(&self) -> &str {
        self.public.id()
    }

    /// Signs `message`: ECDSA P-256 SHA-256 (ASN.1 DER) or RSA PKCS#1 v1.5 SHA-256.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let rng = ring::rand::SystemRandom::new();
        let failed = |e: ring::error::Unspecified| SignatureError::Sign(e.to_string());
        match &self.pair {
            CosignPair::Ecdsa(pair) => {
                Ok(pair.sign(&rng, message).map_err(failed)?.as_ref().to_vec())
            }
            CosignPair::Rsa(pair) => {
                let mut signature = vec![0; pair.public().modulus_len()];
                pair.sign(&ring_sig::RSA_PKCS1_SHA256, &rng, message, &mut signature)
                    .map_err(failed)?;
                Ok(signature)
            }
        }
    }
}

/// The PKIX public key of an uncompressed P-256 point.
fn ecdsa_public(point: &[u8]) -> Result<PublicKey, String> {
    // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING { 0 unused bits, point } }
    const PREFIX: [u8; 26] = [
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
    ];
    if point.len() != 65 {
        return Err("unexpected P-256 public key length".into());
    }
    let mut der = PREFIX.to_vec();
    der.extend_from_slice(point);
    PublicKey::from_spki_der(&der)
}

/// The public half of a ring RSA key pair (ring hands it out PKCS#1-encoded).
fn rsa_public_from_pkcs1(der: &[u8]) -> Result<PublicKey, String> {
    rsa::pkcs1::DecodeRsaPublicKey::from_pkcs1_der(der)
        .map(PublicKey::rsa)
        .map_err(|e| format!("invalid RSA public key: {e}"))
}

/// A freshly generated RSA key pair in DS's formats.
pub struct GeneratedKey {
    /// PEM `RSA PRIVATE KEY` (PKCS#1); wiped from memory when dropped.
    pub private_pem: Zeroizing<String>,
    /// PEM `PUBLIC KEY` (PKIX).
    pub public_pem: String,
    /// The key id.
    pub key_id: String,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Generates an RSA key pair of `bits` (2048 or 4096) from the operating system's random source.
pub fn generate_rsa(bits: usize) -> Result<GeneratedKey, SignatureError> {
    if !RSA_KEY_SIZES.contains(&bits) {
        return Err(SignatureError::Sign(format!(
            "unsupported key size {bits}; use 2048 or 4096"
        )));
    }
    let failed = |e: &dyn fmt::Display| SignatureError::Sign(format!("key generation failed: {e}"));
    let key = RsaPrivateKey::new(&mut rand_core::OsRng, bits).map_err(|e| failed(&e))?;
    let private_pem = key.to_pkcs1_pem(LineEnding::LF).map_err(|e| failed(&e))?;
    let public = PublicKey::rsa(key.to_public_key());
    let public_pem = public
        .to_pem()
        .ok_or_else(|| failed(&"cannot encode the public key"))?;
    Ok(GeneratedKey {
        private_pem,
        public_pem,
        key_id: public.id,
    })
}

/// Where [`write_key_pair`] wrote a key pair.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyPairFiles {
    /// The key id.
    pub key_id: String,
    /// The private key (PEM `RSA PRIVATE KEY`, mode 0600).
    pub private_key: PathBuf,
    /// The public key (PEM `PUBLIC KEY`, mode 0644).
    pub public_key: PathBuf,
    /// The modulus size.
    pub bits: usize,
}

/// File names [`write_key_pair`] uses; `.pub` is one of the extensions DS's trust store reads.
pub const PRIVATE_KEY_FILE: &str = "ds-signing-key.pem";
/// See [`PRIVATE_KEY_FILE`].
pub const PUBLIC_KEY_FILE: &str = "ds-signing-key.pub";

/// Generates an RSA key pair and writes it into `dir` (created if missing; the result names
/// absolute paths). Existing key files
/// are never overwritten; the private key is created with mode 0600 before anything is written
/// to it.
pub fn write_key_pair(dir: &Path, bits: usize) -> crate::Result<KeyPairFiles> {
    use std::io::Write;
    let generated = generate_rsa(bits)?;
    let dir = &std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    std::fs::create_dir_all(dir).map_err(|e| crate::Error::io("cannot create", dir, e))?;
    let private_key = dir.join(PRIVATE_KEY_FILE);
    let public_key = dir.join(PUBLIC_KEY_FILE);
    for path in [&private_key, &public_key] {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(crate::Error::InvalidInput(format!(
                "{} already exists; remove it or choose another directory",
                path.display()
            )));
        }
    }
    let write = |path: &Path, mode: u32, text: &[u8]| -> crate::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        let mut file = options
            .open(path)
            .map_err(|e| crate::Error::io("cannot create", path, e))?;
        file.write_all(text)
            .and_then(|()| file.sync_all())
            .map_err(|e| crate::Error::io("cannot write", path, e))
    };
    write(&private_key, 0o600, generated.private_pem.as_bytes())?;
    if let Err(err) = write(&public_key, 0o644, generated.public_pem.as_bytes()) {
        let _ = std::fs::remove_file(&private_key);
        return Err(err);
    }
    Ok(KeyPairFiles {
        key_id: generated.key_id,
        private_key,
        public_key,
        bits,
    })
}

fn passphrase_refusal() -> String {
    "the key is passphrase-protected, which is not supported; store it unencrypted with mode 0600 \
     (as DS's own key tooling does)"
        .into()
}

/// The first PEM block of a private key file, refusing OpenSSL's legacy encrypted form.
fn private_pem_block(text: &[u8]) -> Result<(String, Zeroizing<Vec<u8>>), String> {
    let (label, der) = pem_block(text)?;
    if label == "ENCRYPTED PRIVATE KEY" {
        return Err(passphrase_refusal());
    }
    Ok((label, Zeroizing::new(der)))
}

/// The label and DER content of the first PEM block in `text`.
fn pem_block(text: &[u8]) -> Result<(String, Vec<u8>), String> {
    let text = std::str::from_utf8(text).map_err(|_| "the file is not PEM text")?;
    let begin = text.find("-----BEGIN ").ok_or("no PEM block found")?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----").ok_or("malformed PEM header")?;
    let label = &rest[..label_end];
    let end_marker = format!("-----END {label}-----");
    let end = text[begin..]
        .find(&end_marker)
        .ok_or_else(|| format!("PEM block {label:?} has no END line"))?;
    let block = &text[begin..begin + end + end_marker.len()];
    // OpenSSL's legacy encryption puts headers inside the block.
    if block.contains("Proc-Type:") && block.contains("ENCRYPTED") {
        return Err(passphrase_refusal());
    }
    let (label, der) = rsa::pkcs8::der::pem::decode_vec(block.as_bytes())
        .map_err(|e| format!("malformed PEM block {label:?}: {e}"))?;
    Ok((label.to_owned(), der))
}

/// Reads a key file (bounded), naming it in errors.
fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, SignatureError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| SignatureError::key(path, e.to_string()))?;
    let mut text = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE + 1)
        .read_to_end(&mut text)
        .map_err(|e| SignatureError::key(path, e.to_string()))?;
    if text.len() as u64 > MAX_KEY_FILE {
        return Err(SignatureError::key(
            path,
            "larger than 64 KiB, not a key".into(),
        ));
    }
    Ok(text)
}

/// Expands a leading `~/` to `home`, as DS does for key paths.
pub(crate) fn expand_home(path: &Path, home: &Path) -> PathBuf {
    match path.strip_prefix("~") {
        Ok(rest) if path.to_str().is_some_and(|p| p.starts_with("~/")) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pkcs1_and_pkcs8_private_keys_sign_alike() {
        let generated = generate_rsa(2048).unwrap();
        let pkcs1 = SigningKey::from_pem(generated.private_pem.as_bytes()).unwrap();
        let pkcs8_pem =
            rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&pkcs1.key, LineEnding::LF).unwrap();
        let pkcs8 = SigningKey::from_pem(pkcs8_pem.as_bytes()).unwrap();
        assert_eq!(pkcs1.key_id(), generated.key_id);
        assert_eq!(pkcs8.key_id(), generated.key_id);
        let digest = Digest::of(b"layer");
        assert_eq!(
            pkcs1.sign_digest(&digest).unwrap(),
            pkcs8.sign_digest(&digest).unwrap()
        );
        let public = PublicKey::from_pem(generated.public_pem.as_bytes()).unwrap();
        let signature = STANDARD
            .decode(pkcs1.sign_digest(&digest).unwrap())
            .unwrap();
        assert!(public.verify_sha256_digest(&digest, &signature));
        assert!(!public.verify_sha256_digest(&Digest::of(b"other"), &signature));
    }

    #[test]
    fn the_key_id_is_the_sha256_of_the_pkix_der() {
        let generated = generate_rsa(2048).unwrap();
        let (_, der) = pem_block(generated.public_pem.as_bytes()).unwrap();
        assert_eq!(generated.key_id, hex::encode(Sha256::digest(&der)));
    }

    #[test]
    fn unusable_keys_are_refused_with_a_reason_and_never_echoed() {
        let generated = generate_rsa(2048).unwrap();
        let body: String = generated
            .private_pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        for (text, reason) in [
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"
                    .to_owned(),
                "passphrase-protected",
            ),
            (
                format!(
                    "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n{body}\n-----END RSA PRIVATE KEY-----\n"
                ),
                "passphrase-protected",
            ),
            (generated.public_pem.clone(), "found \"PUBLIC KEY\""),
            ("hello".to_owned(), "no PEM block found"),
            (
                generated.private_pem.replacen(&body[4..44], &"A".repeat(40), 1),
                "invalid PKCS#1 RSA private key",
            ),
        ] {
            let err = SigningKey::from_pem(text.as_bytes()).unwrap_err();
            assert!(err.contains(reason), "{reason:?} not in {err}");
            assert!(!err.contains(&body[..32]), "the key leaked into {err}");
        }
        let key = SigningKey::from_pem(generated.private_pem.as_bytes()).unwrap();
        let debug = format!("{key:?}");
        assert!(debug.contains(&generated.key_id) && !debug.contains(&body[..32]));
    }

    #[test]
    fn cosign_keys_sign_what_their_public_keys_verify() {
        let rsa_pkcs8 = {
            let generated = generate_rsa(2048).unwrap();
            let key = SigningKey::from_pem(generated.private_pem.as_bytes()).unwrap();
            rsa::pkcs8::EncodePrivateKey::to_pkcs8_pem(&key.key, LineEnding::LF)
                .unwrap()
                .to_string()
        };
        let rng = ring::rand::SystemRandom::new();
        let ec =
            ring_sig::EcdsaKeyPair::generate_pkcs8(&ring_sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
                .unwrap();
        let ec_pem =
            rsa::pkcs8::der::pem::encode_string("PRIVATE KEY", LineEnding::LF, ec.as_ref())
                .unwrap();
        for (pem, algorithm) in [(rsa_pkcs8, "RSA"), (ec_pem, "ECDSA-P256")] {
            let key = CosignSigningKey::from_pem(pem.as_bytes(), None).unwrap();
            assert_eq!(key.public.algorithm(), algorithm);
            let signature = key.sign(b"payload").unwrap();
            assert!(key.public.verify_message(b"payload", &signature));
            assert!(!key.public.verify_message(b"other", &signature));
        }
    }
}
