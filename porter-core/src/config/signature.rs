//! The signature settings: DS's `Plugins.Signature` for DS plugins and `settings.porter.signature`
//! (the same shape, plus cosign keys) for everything else. Plain data; the `signature` module
//! applies them.

use std::path::PathBuf;
use std::str::FromStr;

/// `Plugins.Signature.Mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Nothing is checked (also an empty mode).
    #[default]
    Disabled,
    /// Unsigned layers pass with a warning when `AllowUnsigned`; present signatures must verify.
    Permissive,
    /// Every layer must carry a signature a trusted key verifies.
    Strict,
}

impl FromStr for Mode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "disabled" => Ok(Mode::Disabled),
            "permissive" => Ok(Mode::Permissive),
            "strict" => Ok(Mode::Strict),
            _ => Err(format!(
                "unknown signature mode {:?}; expected disabled, permissive or strict",
                text.trim()
            )),
        }
    }
}

/// One signature policy (`Plugins.Signature`, or `settings.porter.signature`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignaturePolicy {
    /// What is enforced.
    pub mode: Mode,
    /// Public key files (`~/` is the home directory).
    pub public_keys: Vec<PathBuf>,
    /// A directory whose `*.pem` and `*.pub` files (recursively) are trusted keys.
    pub trust_store: Option<PathBuf>,
    /// Permissive mode lets unsigned layers through (with a warning) only when this is set.
    pub allow_unsigned: bool,
}

/// Both policies and the cosign keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignatureSettings {
    /// DS's `Plugins.Signature`: artifacts whose type is `application/vnd.delivery-station.plugin.*`.
    pub plugins: SignaturePolicy,
    /// `settings.porter.signature`: every other artifact (default disabled).
    pub artifacts: SignaturePolicy,
    /// `settings.porter.signature.cosign_keys`: when set, every pulled artifact must carry a
    /// cosign signature that one of these keys verifies.
    pub cosign_keys: Vec<PathBuf>,
}

impl SignatureSettings {
    /// The policy for an artifact, and the name errors use for it.
    pub fn policy_for(&self, plugin: bool) -> (&SignaturePolicy, &'static str) {
        if plugin {
            (&self.plugins, "Plugins.Signature")
        } else {
            (&self.artifacts, "settings.porter.signature")
        }
    }
}
