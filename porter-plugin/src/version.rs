//! The version ds-porter reports in every mode (`--version`, `version`, DS's `GetManifest` and
//! `version` operation). A leaf: the CLI and the plugin both read it, neither through the other.

/// `DS_PORTER_VERSION` at build time (release builds set it, without a leading `v`), else the
/// crate version.
pub const VERSION: &str = match option_env!("DS_PORTER_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// Version text of the `version` command and operation (the Go plugin's format, without a final
/// newline; ds-contract §7.2).
pub fn version_text() -> String {
    format!(
        "porter version {}\n  commit: {}\n  built:  {}",
        VERSION,
        option_env!("DS_PORTER_COMMIT").unwrap_or("none"),
        option_env!("DS_PORTER_BUILD_DATE").unwrap_or("unknown"),
    )
}
