//! cosign's encrypted private key format (`cosign generate-key-pair`): a PEM block
//! `ENCRYPTED SIGSTORE PRIVATE KEY` (older releases: `ENCRYPTED COSIGN PRIVATE KEY`) holding JSON
//! `{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox",
//! "nonce"},"ciphertext"}`: the PKCS#8 key sealed with NaCl secretbox under a key that scrypt
//! derives from the password. Decryption only; ds-porter never writes this format.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{AeadInPlace, KeyInit};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The PEM label cosign writes.
pub(crate) const SIGSTORE_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The label of keys written by cosign before 2.0.
pub(crate) const COSIGN_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// Largest scrypt cost accepted (cosign uses N = 2^15 or 2^16); bounds memory and time.
const MAX_LOG_N: u8 = 20;

#[derive(Deserialize)]
struct Envelope {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Deserialize)]
#[allow(non_snake_case)]
struct KdfParams {
    N: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// Decrypts the JSON envelope in `der` (the PEM block's content) with `password`, giving the
/// PKCS#8 DER of the private key.
pub(crate) fn decrypt(der: &[u8], password: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let envelope: Envelope =
        serde_json::from_slice(der).map_err(|e| format!("malformed encrypted cosign key: {e}"))?;
    if envelope.kdf.name != "scrypt" || envelope.cipher.name != "nacl/secretbox" {
        return Err(format!(
            "unsupported encrypted key ({} with {}); cosign writes scrypt with nacl/secretbox",
            envelope.kdf.name, envelope.cipher.name
        ));
    }
    let params = &envelope.kdf.params;
    let log_n = (params.N.is_power_of_two() && params.N > 1)
        .then(|| params.N.trailing_zeros() as u8)
        .filter(|log_n| *log_n <= MAX_LOG_N)
        .ok_or_else(|| format!("unsupported scrypt cost N={}", params.N))?;
    let scrypt_params = scrypt::Params::new(log_n, params.r, params.p, 32)
        .map_err(|e| format!("unsupported scrypt parameters: {e}"))?;
    let decode = |what: &str, text: &str| {
        STANDARD
            .decode(text)
            .map_err(|e| format!("malformed encrypted cosign key ({what}): {e}"))
    };
    let salt = decode("salt", &envelope.kdf.salt)?;
    let nonce = decode("nonce", &envelope.cipher.nonce)?;
    let mut sealed = Zeroizing::new(decode("ciphertext", &envelope.ciphertext)?);
    if nonce.len() != 24 {
        return Err("malformed encrypted cosign key: the nonce is not 24 bytes".into());
    }
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), &salt, &scrypt_params, key.as_mut())
        .map_err(|e| format!("key derivation failed: {e}"))?;
    let cipher = XSalsa20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt_in_place(nonce.as_slice().into(), b"", &mut *sealed)
        .map_err(|_| {
            "cannot decrypt the cosign key: wrong password (COSIGN_PASSWORD)".to_owned()
        })?;
    Ok(sealed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Seals `plaintext` as cosign does, with a cheap scrypt cost.
    fn seal(plaintext: &[u8], password: &str) -> Vec<u8> {
        let (salt, nonce) = ([7u8; 32], [9u8; 24]);
        let params = scrypt::Params::new(10, 8, 1, 32).unwrap();
        let mut key = [0u8; 32];
        scrypt::scrypt(password.as_bytes(), &salt, &params, &mut key).unwrap();
        let mut buffer = plaintext.to_vec();
        XSalsa20Poly1305::new(&key.into())
            .encrypt_in_place(nonce.as_slice().into(), b"", &mut buffer)
            .unwrap();
        serde_json::to_vec(&serde_json::json!({
            "kdf": {"name": "scrypt", "params": {"N": 1024, "r": 8, "p": 1}, "salt": STANDARD.encode(salt)},
            "cipher": {"name": "nacl/secretbox", "nonce": STANDARD.encode(nonce)},
            "ciphertext": STANDARD.encode(buffer),
        }))
        .unwrap()
    }

    #[test]
    fn the_right_password_opens_the_envelope_and_a_wrong_one_does_not() {
        let sealed = seal(b"pkcs8 bytes", "pw");
        assert_eq!(decrypt(&sealed, "pw").unwrap().as_slice(), b"pkcs8 bytes");
        let err = decrypt(&sealed, "nope").unwrap_err();
        assert!(err.contains("wrong password"), "{err}");
    }

    #[test]
    fn hostile_envelopes_are_refused_before_deriving_a_key() {
        let envelope = |n: u64, kdf: &str| {
            serde_json::to_vec(&serde_json::json!({
                "kdf": {"name": kdf, "params": {"N": n, "r": 8, "p": 1}, "salt": ""},
                "cipher": {"name": "nacl/secretbox", "nonce": ""},
                "ciphertext": "",
            }))
            .unwrap()
        };
        assert!(
            decrypt(&envelope(1 << 30, "scrypt"), "pw")
                .unwrap_err()
                .contains("scrypt cost")
        );
        assert!(
            decrypt(&envelope(1000, "scrypt"), "pw")
                .unwrap_err()
                .contains("scrypt cost")
        );
        assert!(
            decrypt(&envelope(1024, "argon2"), "pw")
                .unwrap_err()
                .contains("unsupported")
        );
        assert!(decrypt(b"{}", "pw").unwrap_err().contains("malformed"));
    }
}
