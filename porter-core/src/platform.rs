//! Platforms in Go's vocabulary (`linux|darwin|windows`, `amd64|arm64|…`), because that is what
//! DS, OCI indexes and `ds plugin install` use.
//!
//! Parsing normalises case and the implicit variants (`arm64` ≡ `arm64/v8`, `arm` ≡ `arm/v7`) so
//! that matching is a plain comparison.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// An `os/arch[/variant]` platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system, Go name (`linux`, `darwin`, `windows`, …).
    pub os: String,
    /// Architecture, Go name (`amd64`, `arm64`, `arm`, `386`, …).
    pub arch: String,
    /// Variant (`v7`, `v8`, …); `None` when absent.
    pub variant: Option<String>,
}

impl Platform {
    /// Builds a platform, normalising names as [`FromStr`] does.
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Self {
        let os = os.trim().to_ascii_lowercase();
        let arch = normalize_arch(&arch.trim().to_ascii_lowercase()).to_owned();
        let variant = variant
            .map(|v| v.trim().to_ascii_lowercase())
            .filter(|v| !v.is_empty());
        Platform { os, arch, variant }
    }

    /// The platform this binary runs on, in Go names.
    pub fn host() -> Self {
        Platform::new(
            go_os(std::env::consts::OS),
            go_arch(std::env::consts::ARCH),
            None,
        )
    }

    /// The variant with the architecture's implied default applied (`arm64` → `v8`, `arm` → `v7`).
    pub fn effective_variant(&self) -> Option<&str> {
        self.variant.as_deref().or(match self.arch.as_str() {
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        })
    }

    /// Whether an artifact for `candidate` satisfies a request for `self`.
    ///
    /// OS and architecture must be equal; a requested variant must equal the candidate's
    /// (implied defaults count), an absent requested variant accepts any.
    pub fn matches(&self, candidate: &Platform) -> bool {
        if self.os != candidate.os || self.arch != candidate.arch {
            return false;
        }
        match &self.variant {
            None => true,
            Some(_) => self.effective_variant() == candidate.effective_variant(),
        }
    }

    /// Path components for per-platform export directories: `os/arch[/variant]`.
    pub fn dir_components(&self) -> Vec<&str> {
        let mut parts = vec![self.os.as_str(), self.arch.as_str()];
        if let Some(v) = &self.variant {
            parts.push(v);
        }
        parts
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;

    /// Parses `os/arch` or `os/arch/variant`; anything else is an error naming the value.
    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidPlatform {
            value: s.to_owned(),
        };
        let trimmed = s.trim();
        let parts: Vec<&str> = trimmed.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(invalid());
        }
        let valid = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        };
        if !parts.iter().all(|p| valid(p.trim())) {
            return Err(invalid());
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

/// Parses the values of repeated `--platform` options, each possibly a comma list.
///
/// Duplicates are dropped, order is kept; an empty list item is an error naming the input.
pub fn parse_list<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<Platform>, Error> {
    let mut out: Vec<Platform> = Vec::new();
    for value in values {
        for item in value.split(',') {
            if item.trim().is_empty() {
                return Err(Error::InvalidPlatform {
                    value: value.to_owned(),
                });
            }
            let p: Platform = item.parse()?;
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

fn normalize_arch(arch: &str) -> &str {
    match arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i386" | "i686" | "x86" => "386",
        other => other,
    }
}

/// Maps Rust's `std::env::consts::OS` to Go's `GOOS`.
pub fn go_os(os: &str) -> &str {
    match os {
        "macos" => "darwin",
        other => other,
    }
}

/// Maps Rust's `std::env::consts::ARCH` to Go's `GOARCH`.
pub fn go_arch(arch: &str) -> &str {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "riscv64" | "riscv64gc" => "riscv64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let p: Platform = "Linux/AMD64".parse().unwrap();
        assert_eq!(p, Platform::new("linux", "amd64", None));
        let p: Platform = "linux/arm/V7".parse().unwrap();
        assert_eq!(p.variant.as_deref(), Some("v7"));
        let p: Platform = "linux/aarch64".parse().unwrap();
        assert_eq!(p.arch, "arm64");
    }

    #[test]
    fn rejects_malformed_platforms_naming_the_value() {
        for bad in [
            "linux",
            "",
            "/",
            "linux/",
            "/amd64",
            "a/b/c/d",
            "linux/amd 64",
        ] {
            let err = bad.parse::<Platform>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid platform {bad:?}, expected os/arch or os/arch/variant")
            );
        }
    }

    #[test]
    fn arm64_equals_arm64_v8() {
        let want: Platform = "linux/arm64/v8".parse().unwrap();
        let have: Platform = "linux/arm64".parse().unwrap();
        assert!(want.matches(&have));
        assert!(have.matches(&want));
        let v7: Platform = "linux/arm/v7".parse().unwrap();
        assert!(v7.matches(&"linux/arm".parse().unwrap()));
        assert!(!v7.matches(&"linux/arm/v6".parse().unwrap()));
        let any_arm: Platform = "linux/arm".parse().unwrap();
        assert!(any_arm.matches(&"linux/arm/v6".parse().unwrap()));
    }

    #[test]
    fn comma_lists_and_repeats() {
        let list = parse_list(["linux/amd64,linux/arm64", "linux/amd64", "windows/amd64"]).unwrap();
        let names: Vec<String> = list.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["linux/amd64", "linux/arm64", "windows/amd64"]);
        assert!(parse_list(["linux/amd64,"]).is_err());
    }

    #[test]
    fn host_uses_go_names() {
        let host = Platform::host();
        assert!(["linux", "darwin", "windows", "freebsd"].contains(&host.os.as_str()));
        assert!(!host.arch.contains('_'));
    }
}
