//! Content digests (`sha256:<64 hex>`), parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::Error;

/// A validated `sha256:` digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    hex: String,
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// Builds a digest from a finished hasher.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Digest {
            hex: hex::encode(hasher.finalize()),
        }
    }

    /// The algorithm name (always `sha256`).
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 lower-case hex characters.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// The first 16 hex characters: the cache entry id, as the Go plugin derived it.
    pub fn short_id(&self) -> &str {
        &self.hex[..16]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl FromStr for Digest {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = |reason: &str| Error::InvalidInput(format!("invalid digest {s:?}: {reason}"));
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| invalid("expected <algorithm>:<hex>"))?;
        if alg != "sha256" {
            return Err(invalid("only sha256 digests are supported"));
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(invalid("expected 64 lower-case hex characters"));
        }
        Ok(Digest {
            hex: hex.to_owned(),
        })
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks that `bytes` hash to `expected`.
pub fn verify(bytes: &[u8], expected: &Digest, context: &str) -> Result<(), Error> {
    let found = Digest::of(bytes);
    if &found == expected {
        Ok(())
    } else {
        Err(Error::DigestMismatch {
            context: context.to_owned(),
            expected: expected.to_string(),
            found: found.to_string(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let d = Digest::of(b"{}");
        assert_eq!(
            d.to_string(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(d.short_id(), "44136fa355b3678a");
        assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn rejects_malformed_digests() {
        for bad in [
            "",
            "sha256:",
            "sha256:abc",
            "md5:00",
            "sha256:../../etc/passwd",
            &format!("sha256:{}", "A".repeat(64)),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }
}
