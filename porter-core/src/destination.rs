//! Whether an export destination is a file or a directory: the one rule every front end and the
//! export itself follow, so that what is refused before a pull and what the export then does
//! cannot disagree.
//!
//! The rule (ds-contract §7.7, with its gaps closed):
//! - A destination that ends in a path separator, or is an existing directory (or a link to
//!   one), is a directory. Platform sub-directories (`<os>/<arch>[/<variant>]`) exist only in
//!   directory destinations.
//! - Otherwise a destination that exists (a file, or a dangling link), or does not exist and
//!   whose last component has an extension (`bin/tool.bin`), is a file: it receives the raw bytes
//!   of the one layer of the one exported platform.
//! - Anything else (`out`, `bin/mytool`) is a directory, created when missing.
//! - Several platforms cannot go into a file, and `-` (standard output) is not a destination:
//!   both are refused before anything is fetched.

use std::io;
use std::path::Path;

use crate::error::{Error, Result};
use crate::manifest::PlatformRequest;

/// What a destination receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The single layer's bytes, as this file.
    File,
    /// Files and archives' contents, below this directory.
    Directory,
}

/// The message for several platforms into a file (ds-contract §7.7, case 60).
const SEVERAL_INTO_FILE: &str = "destination must be a directory when exporting multiple platforms";

/// Refuses, before any I/O beyond looking at `dest`, destinations that cannot work for
/// `platforms`: standard output, and a file for a request that can select several platforms
/// (every platform, or more than one listed). Failures to look at `dest` are left to the export.
pub fn check(dest: &Path, platforms: &PlatformRequest) -> Result<()> {
    if dest.as_os_str() == "-" {
        return Err(export_error(
            "writing to standard output (destination \"-\") is not supported; name a file or a directory"
                .to_owned(),
        ));
    }
    let several = match platforms {
        PlatformRequest::Host => false,
        PlatformRequest::Only(list) => list.len() > 1,
        PlatformRequest::All => true,
    };
    match kind(dest, several) {
        Err(Error::Export(_)) => Err(export_error(SEVERAL_INTO_FILE.to_owned())),
        // A destination that cannot even be inspected is the export's to report, naming it.
        _ => Ok(()),
    }
}

/// The kind of `dest` when `several` platforms are exported (more than one manifest selected).
pub fn kind(dest: &Path, several: bool) -> Result<Kind> {
    if !names_file(dest)? {
        return Ok(Kind::Directory);
    }
    if several {
        return Err(Error::Export(SEVERAL_INTO_FILE.to_owned()));
    }
    Ok(Kind::File)
}

/// Whether `dest` names a file under the rule above.
fn names_file(dest: &Path) -> Result<bool> {
    let text = dest.to_string_lossy();
    if text.ends_with(std::path::is_separator) {
        return Ok(false);
    }
    match std::fs::symlink_metadata(dest) {
        // A link to a directory is the user's chosen root; anything else that exists, a dangling
        // link included, is a file to be replaced.
        Ok(_) => Ok(!std::fs::metadata(dest).is_ok_and(|m| m.is_dir())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(has_extension(&text)),
        Err(e) => Err(Error::io("failed to inspect", dest, e)),
    }
}

/// Go's `filepath.Ext(dest) != ""`: the last path element contains a dot.
fn has_extension(dest: &str) -> bool {
    dest.rsplit(std::path::is_separator)
        .next()
        .is_some_and(|last| last.contains('.'))
}

/// Errors about the destination read as export failures, as DS users know them.
fn export_error(message: String) -> Error {
    Error::Context {
        context: "failed to export artifact",
        source: Box::new(Error::Export(message)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::platform::Platform;

    fn only(list: &[&str]) -> PlatformRequest {
        PlatformRequest::Only(
            list.iter()
                .map(|p| p.parse::<Platform>().unwrap())
                .collect(),
        )
    }

    #[test]
    fn extensions_are_found_like_go_filepath_ext() {
        assert!(has_extension("bin/tool.bin"));
        assert!(has_extension(".hidden"));
        assert!(!has_extension("outdir"));
        assert!(!has_extension("a.b/c"));
    }

    #[test]
    fn a_trailing_separator_always_means_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("out.d/");
        assert_eq!(kind(&new, false).unwrap(), Kind::Directory);
        assert_eq!(kind(&new, true).unwrap(), Kind::Directory);
    }

    #[test]
    fn a_new_name_with_an_extension_is_a_file_and_without_one_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            kind(&dir.path().join("tool.bin"), false).unwrap(),
            Kind::File
        );
        assert_eq!(
            kind(&dir.path().join("mytool"), false).unwrap(),
            Kind::Directory
        );
    }

    #[test]
    fn existing_paths_keep_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tool");
        std::fs::write(&file, b"x").unwrap();
        let subdir = dir.path().join("dir.d");
        std::fs::create_dir(&subdir).unwrap();
        assert_eq!(kind(&file, false).unwrap(), Kind::File);
        assert_eq!(kind(&subdir, true).unwrap(), Kind::Directory);
    }

    #[test]
    fn several_platforms_into_a_file_are_refused_before_any_pull() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.bin");
        for platforms in [PlatformRequest::All, only(&["linux/amd64", "linux/arm64"])] {
            let err = check(&dest, &platforms).unwrap_err();
            assert_eq!(
                err.to_string(),
                "failed to export artifact: destination must be a directory when exporting multiple platforms"
            );
        }
        check(&dest, &only(&["linux/arm64"])).unwrap();
        check(&dest, &PlatformRequest::Host).unwrap();
        check(&dir.path().join("out"), &PlatformRequest::All).unwrap();
        assert!(!dest.exists(), "a check creates nothing");
    }

    #[test]
    fn a_destination_that_cannot_be_inspected_is_left_to_the_export() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("blocker");
        std::fs::write(&file, b"x").unwrap();
        check(&file.join("out"), &PlatformRequest::All).unwrap();
        assert!(kind(&file.join("out"), false).is_err());
    }

    #[test]
    fn standard_output_is_refused() {
        let err = check(Path::new("-"), &PlatformRequest::Host).unwrap_err();
        assert!(err.to_string().contains("standard output"), "{err}");
        check(Path::new("./-"), &PlatformRequest::Host).unwrap();
    }
}
