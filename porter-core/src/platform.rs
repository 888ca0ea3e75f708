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

    /// The variant with the architecture's implied default applied (`amd64` → `v1`, `arm64` →
    /// `v8`, `arm` → `v7`), so that equal platforms compare equal.
    pub fn effective_variant(&self) -> Option<&str> {
        self.variant.as_deref().or(match self.arch.as_str() {
            "amd64" => Some("v1"),
            "arm64" => Some("v8"),
            "arm" => Some("v7"),
            _ => None,
        })
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

/// Ranks the platforms an artifact offers against one wanted platform, as containerd's platform
/// matcher does: OS and architecture must be equal; the wanted variant is best, then the lower
/// variants the same CPU also runs, newest first (`arm/v7` accepts `v7`, `v6`, `v5`;
/// `amd64/v3` accepts `v3`, `v2`, `v1`; `arm64/v9` accepts `v9`, `v8`). An absent variant is the
/// architecture's baseline (`amd64` = `v1`, `arm` = `v7`, `arm64` = `v8`).
///
/// A platform the user names without a variant also accepts any other variant of its
/// architecture, after every compatible one; the host's platform never does, because a binary
/// built for a newer CPU than this one does not run here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matcher {
    wanted: Platform,
    /// Effective variants in order of preference.
    order: Vec<Option<String>>,
    any_variant: bool,
}

impl Matcher {
    /// The matcher for the machine this runs on, with its CPU's variant detected.
    pub fn host() -> Matcher {
        let host = Platform::host();
        let wanted = Platform::new(&host.os, &host.arch, host_variant());
        Matcher {
            order: compatible_variants(&wanted),
            wanted,
            any_variant: false,
        }
    }

    /// The matcher for a platform the user asked for.
    pub fn requested(wanted: &Platform) -> Matcher {
        Matcher {
            order: compatible_variants(wanted),
            any_variant: wanted.variant.is_none(),
            wanted: wanted.clone(),
        }
    }

    /// The platform this matcher looks for.
    pub fn wanted(&self) -> &Platform {
        &self.wanted
    }

    /// How well `candidate` fits: `Some(0)` is the best, larger is worse, `None` is unusable.
    pub fn rank(&self, candidate: &Platform) -> Option<usize> {
        if candidate.os != self.wanted.os || candidate.arch != self.wanted.arch {
            return None;
        }
        let variant = candidate.effective_variant();
        match self.order.iter().position(|v| v.as_deref() == variant) {
            Some(rank) => Some(rank),
            None => self.any_variant.then_some(self.order.len()),
        }
    }
}

/// The effective variants a CPU of `platform`'s variant runs, best first.
fn compatible_variants(platform: &Platform) -> Vec<Option<String>> {
    let variant = platform.effective_variant();
    let floor = match platform.arch.as_str() {
        "amd64" => 1,
        "arm" => 5,
        "arm64" => 8,
        _ => return vec![variant.map(str::to_owned)],
    };
    match variant.and_then(|v| v.strip_prefix('v')?.parse::<u32>().ok()) {
        Some(level) if level >= floor => (floor..=level)
            .rev()
            .map(|v| Some(format!("v{v}")))
            .collect(),
        _ => vec![variant.map(str::to_owned)],
    }
}

/// This machine's CPU variant in Go's terms: the x86-64 microarchitecture level (`v1`–`v4`), the
/// ARM architecture version of a 32-bit ARM CPU, `v8` on arm64; `None` elsewhere.
pub fn host_variant() -> Option<&'static str> {
    static VARIANT: std::sync::OnceLock<Option<&'static str>> = std::sync::OnceLock::new();
    *VARIANT.get_or_init(detect_variant)
}

#[cfg(target_arch = "x86_64")]
fn detect_variant() -> Option<&'static str> {
    use std::arch::is_x86_feature_detected as has;
    let v2 = has!("cmpxchg16b")
        && has!("popcnt")
        && has!("sse3")
        && has!("ssse3")
        && has!("sse4.1")
        && has!("sse4.2");
    let v3 = v2
        && has!("avx")
        && has!("avx2")
        && has!("bmi1")
        && has!("bmi2")
        && has!("f16c")
        && has!("fma")
        && has!("lzcnt")
        && has!("movbe")
        && has!("xsave");
    let v4 = v3
        && has!("avx512f")
        && has!("avx512bw")
        && has!("avx512cd")
        && has!("avx512dq")
        && has!("avx512vl");
    Some(match (v2, v3, v4) {
        (_, _, true) => "v4",
        (_, true, _) => "v3",
        (true, _, _) => "v2",
        _ => "v1",
    })
}

#[cfg(target_arch = "aarch64")]
fn detect_variant() -> Option<&'static str> {
    Some("v8")
}

/// A 32-bit ARM CPU's architecture version from `/proc/cpuinfo` (`CPU architecture: 7`), else
/// the version this binary was built for.
#[cfg(target_arch = "arm")]
fn detect_variant() -> Option<&'static str> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let version = cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == "CPU architecture")
        .map(|(_, value)| value.trim().to_owned());
    Some(match version.as_deref() {
        Some("8") | Some("AArch64") => "v8",
        Some("7") => "v7",
        Some("6") => "v6",
        Some("5") | Some("5TE") | Some("5TEJ") => "v5",
        _ if cfg!(target_feature = "v7") => "v7",
        _ => "v6",
    })
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")))]
fn detect_variant() -> Option<&'static str> {
    None
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

    fn p(text: &str) -> Platform {
        text.parse().unwrap()
    }

    #[test]
    fn implied_variants_compare_equal() {
        for (a, b) in [
            ("linux/arm64", "linux/arm64/v8"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/amd64", "linux/amd64/v1"),
        ] {
            assert_eq!(p(a).effective_variant(), p(b).effective_variant());
            assert_eq!(Matcher::requested(&p(a)).rank(&p(b)), Some(0), "{a} {b}");
            assert_eq!(Matcher::requested(&p(b)).rank(&p(a)), Some(0), "{b} {a}");
        }
        assert_eq!(p("linux/s390x").effective_variant(), None);
    }

    #[test]
    fn lower_compatible_variants_rank_after_the_exact_one_newest_first() {
        let v7 = Matcher::requested(&p("linux/arm/v7"));
        let ranks: Vec<_> = [
            "linux/arm/v7",
            "linux/arm/v6",
            "linux/arm/v5",
            "linux/arm/v8",
        ]
        .map(|c| v7.rank(&p(c)))
        .into();
        assert_eq!(ranks, [Some(0), Some(1), Some(2), None]);
        let v3 = Matcher::requested(&p("linux/amd64/v3"));
        let ranks: Vec<_> = [
            "linux/amd64/v3",
            "linux/amd64/v2",
            "linux/amd64",
            "linux/amd64/v4",
            "linux/amd64/v0",
            "linux/amd64/v159",
        ]
        .map(|c| v3.rank(&p(c)))
        .into();
        assert_eq!(ranks, [Some(0), Some(1), Some(2), None, None, None]);
        let v9 = Matcher::requested(&p("linux/arm64/v9"));
        assert_eq!(v9.rank(&p("linux/arm64")), Some(1));
        assert_eq!(v9.rank(&p("linux/arm/v7")), None, "no 32-bit fallback");
    }

    #[test]
    fn a_requested_platform_without_variant_takes_any_variant_last() {
        let amd64 = Matcher::requested(&p("linux/amd64"));
        assert_eq!(amd64.rank(&p("linux/amd64/v1")), Some(0));
        assert_eq!(amd64.rank(&p("linux/amd64/v3")), Some(1));
        assert_eq!(amd64.rank(&p("linux/amd64/v0")), Some(1));
        assert_eq!(amd64.rank(&p("linux/arm64")), None);
        assert_eq!(amd64.rank(&p("windows/amd64")), None);
        let arm = Matcher::requested(&p("linux/arm"));
        assert_eq!(arm.rank(&p("linux/arm/v6")), Some(1));
        assert_eq!(arm.rank(&p("linux/arm/v8")), Some(3));
        // An explicit variant is strict above it.
        assert_eq!(
            Matcher::requested(&p("linux/arm/v6")).rank(&p("linux/arm/v7")),
            None
        );
    }

    #[test]
    fn the_host_never_takes_a_newer_variant_than_its_cpu() {
        let host = Matcher::host();
        let wanted = host.wanted().clone();
        assert_eq!(wanted.os, Platform::host().os);
        assert_eq!(wanted.arch, Platform::host().arch);
        assert_eq!(host.rank(&wanted), Some(0));
        let newer = Platform::new(&wanted.os, &wanted.arch, Some("v999"));
        assert_eq!(host.rank(&newer), None);
        if wanted.arch == "amd64" {
            assert!(["v1", "v2", "v3", "v4"].contains(&wanted.variant.as_deref().unwrap()));
            assert!(
                host.rank(&Platform::new(&wanted.os, "amd64", None))
                    .is_some()
            );
        }
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
