use std::cell::Cell;
use std::fs;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{PermissionsExt, symlink};

use tar::{EntryType, Header};
use tempfile::TempDir;

use super::*;

const BINARY: &str = "application/vnd.delivery-station.artifact.v1+binary";
const TAR_GZ: &str = "application/vnd.delivery-station.artifact.v1+archive.tar+gzip";

/// A scratch directory holding blobs and destinations.
struct Fixture {
    root: TempDir,
    blobs: Cell<u32>,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            root: tempfile::tempdir().unwrap(),
            blobs: Cell::new(0),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn layer(&self, media_type: &str, title: Option<&str>, bytes: &[u8]) -> ExportLayer {
        let n = self.blobs.get();
        self.blobs.set(n + 1);
        let dir = self.path("blobs");
        fs::create_dir_all(&dir).unwrap();
        let blob_path = dir.join(n.to_string());
        fs::write(&blob_path, bytes).unwrap();
        ExportLayer {
            media_type: media_type.to_owned(),
            digest: Digest::of(bytes),
            title: title.map(str::to_owned),
            blob_path,
            size: bytes.len() as u64,
            verified: false,
        }
    }

    /// Exports one tar.gz layer into the directory `d` (created first).
    fn extract(&self, archive: Tar) -> Result<Vec<String>> {
        self.extract_with(archive, ExportLimits::default())
    }

    fn extract_with(&self, archive: Tar, limits: ExportLimits) -> Result<Vec<String>> {
        let dest = self.path("d");
        fs::create_dir_all(&dest).unwrap();
        let layer = self.layer(TAR_GZ, None, &archive.gz());
        let mut plan = plan(dest, false, vec![manifest(None, vec![layer])]);
        plan.limits = limits;
        export(&plan)
    }
}

fn plan(destination: PathBuf, subdirs: bool, manifests: Vec<ExportManifest>) -> ExportPlan {
    ExportPlan {
        destination,
        subdirs,
        manifests,
        fallback_name: "tool".to_owned(),
        limits: ExportLimits::default(),
        cancel: Default::default(),
    }
}

/// A plan with per-platform sub-directories, into a destination created first.
fn plan_for(destination: PathBuf, manifests: Vec<ExportManifest>) -> ExportPlan {
    fs::create_dir_all(&destination).unwrap();
    plan(destination, true, manifests)
}

fn manifest(platform: Option<&str>, layers: Vec<ExportLayer>) -> ExportManifest {
    ExportManifest {
        platform: platform.map(|p| p.parse().unwrap()),
        layers,
    }
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Builds tar archives from raw header fields, so hostile names and types survive.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Self {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn dir(self, name: &str) -> Self {
        self.entry(EntryType::Directory, name.as_bytes(), b"", 0o755, b"")
    }

    fn file(self, name: &str, data: &[u8], mode: u32) -> Self {
        self.entry(EntryType::Regular, name.as_bytes(), b"", mode, data)
    }

    fn symlink(self, name: &str, target: &str) -> Self {
        self.entry(
            EntryType::Symlink,
            name.as_bytes(),
            target.as_bytes(),
            0o777,
            b"",
        )
    }

    fn hard_link(self, name: &str, target: &str) -> Self {
        self.entry(
            EntryType::Link,
            name.as_bytes(),
            target.as_bytes(),
            0o644,
            b"",
        )
    }

    fn entry(mut self, kind: EntryType, name: &[u8], link: &[u8], mode: u32, data: &[u8]) -> Self {
        if name.len() > 100 || name.contains(&0) {
            let mut long = Header::new_gnu();
            long.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
            long.set_entry_type(EntryType::GNULongName);
            long.set_mode(0o644);
            long.set_size(name.len() as u64 + 1);
            long.set_cksum();
            self.0
                .append(&long, [name, b"\0"].concat().as_slice())
                .unwrap();
        }
        let mut header = Header::new_gnu();
        let short = &name[..name.len().min(100)];
        header.as_old_mut().name[..short.len()].copy_from_slice(short);
        header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.0.append(&header, data).unwrap();
        self
    }

    fn tar(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }

    fn gz(self) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(&self.tar()).unwrap();
        encoder.finish().unwrap()
    }
}

/// Every path under `dir`, relative and sorted, without following links.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(text(path.strip_prefix(root).unwrap()));
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    // A failed export removes the destination it created: nothing is there.
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// The message of an `Error::Unsafe`; panics on anything else.
fn unsafe_message(result: Result<Vec<String>>) -> String {
    match result {
        Err(e @ Error::Unsafe(_)) => e.to_string(),
        other => panic!("expected an unsafe-entry error, got {other:?}"),
    }
}

/// Asserts a failed archive export left the destination `d` empty.
fn assert_nothing_extracted(fx: &Fixture) {
    assert_eq!(tree(&fx.path("d")), Vec::<String>::new());
}

// Destination decision (§7.7, ds-contract §12 cases 52–61).

#[test]
fn host_platform_is_exported_directly_into_the_destination() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    let layer = fx.layer(BINARY, Some("porter"), b"amd64");
    let out = export(&plan(
        dest.clone(),
        false,
        vec![manifest(Some("linux/amd64"), vec![layer])],
    ));
    assert_eq!(out.unwrap(), [text(&dest.join("porter"))]);
    assert_eq!(fs::read(dest.join("porter")).unwrap(), b"amd64");
}

#[test]
fn requested_platform_is_exported_into_its_os_arch_subdirectory() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    let layer = fx.layer(BINARY, Some("porter"), b"arm64");
    let out = export(&plan(
        dest.clone(),
        true,
        vec![manifest(Some("linux/arm64"), vec![layer])],
    ));
    let file = dest.join("linux/arm64/porter");
    assert_eq!(out.unwrap(), [text(&file)]);
    assert_eq!(fs::read(file).unwrap(), b"arm64");
}

#[test]
fn every_platform_is_exported_into_its_own_subdirectory() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    let manifests = vec![
        manifest(
            Some("linux/amd64"),
            vec![fx.layer(BINARY, Some("porter"), b"1")],
        ),
        manifest(
            Some("linux/arm/v6"),
            vec![fx.layer(BINARY, Some("porter"), b"2")],
        ),
        manifest(
            Some("windows/amd64"),
            vec![fx.layer(BINARY, Some("porter.exe"), b"3")],
        ),
    ];
    let out = export(&plan(dest.clone(), false, manifests)).unwrap();
    let files = [
        "linux/amd64/porter",
        "linux/arm/v6/porter",
        "windows/amd64/porter.exe",
    ];
    assert_eq!(out, files.map(|f| text(&dest.join(f))));
    assert_eq!(fs::read(dest.join(files[1])).unwrap(), b"2");
}

#[test]
fn manifest_without_platform_goes_to_unknown_with_subdirectories() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    let layer = fx.layer(BINARY, None, b"x");
    let out = export(&plan(dest.clone(), true, vec![manifest(None, vec![layer])]));
    assert_eq!(out.unwrap(), [text(&dest.join("unknown/tool"))]);
}

#[test]
fn new_path_with_extension_receives_the_raw_layer_unextracted() {
    let fx = Fixture::new();
    let dest = fx.path("bin/tool.bin");
    let archive = Tar::new().file("inner", b"data", 0o644).gz();
    let layer = fx.layer(TAR_GZ, None, &archive);
    let out = export(&plan(
        dest.clone(),
        false,
        vec![manifest(None, vec![layer])],
    ));
    assert_eq!(out.unwrap(), [text(&dest)]);
    assert_eq!(fs::read(&dest).unwrap(), archive);
    assert_eq!(tree(&fx.path("bin")), ["tool.bin"]);
}

#[test]
fn new_path_without_extension_becomes_a_directory_with_the_reference_name() {
    let fx = Fixture::new();
    let dest = fx.path("outdir");
    let layer = fx.layer(BINARY, None, b"x");
    let out = export(&plan(
        dest.clone(),
        false,
        vec![manifest(None, vec![layer])],
    ));
    assert_eq!(out.unwrap(), [text(&dest.join("tool"))]);
}

#[test]
fn untitled_windows_layer_gets_an_exe_suffix() {
    let fx = Fixture::new();
    let dest = fx.path("outdir");
    let layer = fx.layer(BINARY, None, b"x");
    let out = export(&plan(
        dest.clone(),
        true,
        vec![manifest(Some("windows/amd64"), vec![layer])],
    ));
    assert_eq!(out.unwrap(), [text(&dest.join("windows/amd64/tool.exe"))]);
}

#[test]
fn windows_names_with_an_extension_or_a_title_get_no_exe_suffix() {
    let fx = Fixture::new();
    let dest = fx.path("outdir");
    let layers = vec![
        fx.layer(BINARY, Some("porter"), b"x"),
        fx.layer(BINARY, None, b"y"),
    ];
    let mut plan = plan(
        dest.clone(),
        false,
        vec![manifest(Some("windows/amd64"), layers)],
    );
    plan.fallback_name = "tool.cmd".to_owned();
    let out = export(&plan).unwrap();
    assert_eq!(
        out,
        [text(&dest.join("porter")), text(&dest.join("tool.cmd"))]
    );
}

#[test]
fn existing_file_cannot_receive_multiple_platforms() {
    let fx = Fixture::new();
    let dest = fx.path("out.bin");
    fs::write(&dest, b"keep").unwrap();
    let manifests = vec![
        manifest(Some("linux/amd64"), vec![fx.layer(BINARY, None, b"1")]),
        manifest(Some("linux/arm64"), vec![fx.layer(BINARY, None, b"2")]),
    ];
    let err = export(&plan(dest.clone(), true, manifests)).unwrap_err();
    assert!(matches!(err, Error::Export(_)));
    assert_eq!(
        err.to_string(),
        "destination must be a directory when exporting multiple platforms"
    );
    assert_eq!(fs::read(dest).unwrap(), b"keep");
}

#[test]
fn file_destination_needs_exactly_one_layer() {
    let fx = Fixture::new();
    let layers = vec![fx.layer(BINARY, None, b"1"), fx.layer(BINARY, None, b"2")];
    let err = export(&plan(fx.path("x.bin"), false, vec![manifest(None, layers)])).unwrap_err();
    assert!(matches!(err, Error::Export(_)));
    assert_eq!(err.to_string(), "expected a single layer, found 2");
    assert!(!fx.path("x.bin").exists());
}

#[test]
fn existing_directory_with_an_extension_is_a_directory_destination() {
    let fx = Fixture::new();
    let dest = fx.path("out.d");
    fs::create_dir(&dest).unwrap();
    let out = export(&plan(
        dest.clone(),
        false,
        vec![manifest(None, vec![fx.layer(BINARY, None, b"x")])],
    ));
    assert_eq!(out.unwrap(), [text(&dest.join("tool"))]);
}

#[test]
fn trailing_separator_makes_a_directory_destination() {
    let fx = Fixture::new();
    let dest = PathBuf::from(format!("{}/", fx.path("out.d").display()));
    let out = export(&plan(
        dest,
        false,
        vec![manifest(None, vec![fx.layer(BINARY, None, b"x")])],
    ));
    assert_eq!(out.unwrap(), [text(&fx.path("out.d/tool"))]);
}

#[test]
fn layer_title_is_sanitised_into_one_file_name() {
    let fx = Fixture::new();
    let dest = fx.path("d");
    let layer = fx.layer(BINARY, Some("a b:c/d"), b"x");
    let out = export(&plan(
        dest.clone(),
        false,
        vec![manifest(None, vec![layer])],
    ));
    assert_eq!(out.unwrap(), [text(&dest.join("a-b-c-d"))]);
}

#[test]
fn dot_dot_title_is_written_as_artifact_inside_the_destination() {
    let fx = Fixture::new();
    let dest = fx.path("d");
    let layer = fx.layer(BINARY, Some(".."), b"x");
    let out = export(&plan(
        dest.clone(),
        false,
        vec![manifest(None, vec![layer])],
    ));
    assert_eq!(out.unwrap(), [text(&dest.join("artifact"))]);
    assert_eq!(
        tree(fx.root.path()),
        ["blobs", "blobs/0", "d", "d/artifact"]
    );
}

#[test]
fn title_with_nul_is_rejected() {
    let fx = Fixture::new();
    let layer = fx.layer(BINARY, Some("a\0b"), b"x");
    let message = unsafe_message(export(&plan(
        fx.path("d"),
        false,
        vec![manifest(None, vec![layer])],
    )));
    assert_eq!(
        message,
        r#"layer title "a\u{0}b" contains control characters or bidirectional overrides"#
    );
}

#[test]
fn titles_and_entry_names_with_controls_or_bidi_overrides_are_refused_escaped() {
    for title in [
        "evil\u{1b}]0;owned\u{7}.bin",
        "a\nb",
        "\u{202e}fdp.exe",
        "x\u{2066}y",
    ] {
        let fx = Fixture::new();
        let layer = fx.layer(BINARY, Some(title), b"x");
        let message = unsafe_message(export(&plan(
            fx.path("d"),
            false,
            vec![manifest(None, vec![layer])],
        )));
        let shown = escape_remote(title);
        assert_eq!(
            message,
            format!(
                "layer title \"{shown}\" contains control characters or bidirectional overrides"
            )
        );
        assert!(!has_unsafe_chars(&message));
        assert_eq!(tree(fx.root.path()), ["blobs", "blobs/0"]);
    }
    for name in [
        "bin/\u{1b}[2Jtool",
        "line\nbreak",
        "gpj.\u{202e}exe",
        "del\u{7f}",
    ] {
        let fx = Fixture::new();
        let archive = Tar::new().file("ok", b"x", 0o644).file(name, b"x", 0o644);
        let message = unsafe_message(fx.extract(archive));
        let shown = escape_remote(name);
        assert_eq!(
            message,
            format!("archive entry {shown} contains control characters or bidirectional overrides")
        );
        assert_nothing_extracted(&fx);
    }
}

#[test]
fn platform_directories_from_the_index_cannot_hold_controls() {
    let fx = Fixture::new();
    let platform = Platform::new("linux", "amd64", Some("v1\u{1b}[2J"));
    let layer = fx.layer(BINARY, Some("tool"), b"x");
    let manifests = vec![ExportManifest {
        platform: Some(platform),
        layers: vec![layer],
    }];
    let message = unsafe_message(export(&plan_for(fx.path("d"), manifests)));
    assert_eq!(
        message,
        r#"platform component "v1\u{1b}[2j" is not a valid directory name"#
    );
}

#[test]
fn existing_directory_at_the_layer_path_is_not_replaced() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.path("d/tool")).unwrap();
    let layer = fx.layer(BINARY, None, b"x");
    let message = unsafe_message(export(&plan(
        fx.path("d"),
        false,
        vec![manifest(None, vec![layer])],
    )));
    assert!(
        message.starts_with("layer file tool would replace directory"),
        "{message}"
    );
}

#[cfg(unix)]
#[test]
fn exported_binaries_are_executable() {
    let fx = Fixture::new();
    let layers = vec![fx.layer(BINARY, None, b"x")];
    export(&plan(
        fx.path("d"),
        false,
        vec![manifest(None, layers.clone())],
    ))
    .unwrap();
    export(&plan(fx.path("f.bin"), false, vec![manifest(None, layers)])).unwrap();
    for file in [fx.path("d/tool"), fx.path("f.bin")] {
        let mode = fs::metadata(file).unwrap().permissions().mode();
        assert_eq!(mode & 0o700, 0o700);
        assert_eq!(mode & 0o022, 0);
    }
}

#[test]
fn existing_file_is_replaced_without_leaving_temporary_files() {
    let fx = Fixture::new();
    let dest = fx.path("out/f.bin");
    for content in [&b"first, longer content"[..], b"second"] {
        let layer = fx.layer(BINARY, None, content);
        export(&plan(
            dest.clone(),
            false,
            vec![manifest(None, vec![layer])],
        ))
        .unwrap();
    }
    assert_eq!(fs::read(&dest).unwrap(), b"second");
    assert_eq!(tree(&fx.path("out")), ["f.bin"]);
}

#[cfg(unix)]
#[test]
fn symlink_at_the_file_destination_is_replaced_not_followed() {
    let fx = Fixture::new();
    let victim = fx.path("victim");
    fs::write(&victim, b"original").unwrap();
    let dest = fx.path("out.bin");
    symlink(&victim, &dest).unwrap();
    export(&plan(
        dest.clone(),
        false,
        vec![manifest(None, vec![fx.layer(BINARY, None, b"new")])],
    ))
    .unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert!(fs::symlink_metadata(&dest).unwrap().is_file());
    assert_eq!(fs::read(&dest).unwrap(), b"new");
}

#[cfg(unix)]
#[test]
fn symlink_at_a_layer_path_is_replaced_not_followed() {
    let fx = Fixture::new();
    let victim = fx.path("victim");
    fs::write(&victim, b"original").unwrap();
    fs::create_dir(fx.path("d")).unwrap();
    symlink(&victim, fx.path("d/tool")).unwrap();
    export(&plan(
        fx.path("d"),
        false,
        vec![manifest(None, vec![fx.layer(BINARY, None, b"new")])],
    ))
    .unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert!(fs::symlink_metadata(fx.path("d/tool")).unwrap().is_file());
}

#[cfg(unix)]
#[test]
fn destination_symlink_to_a_directory_is_used_as_the_root() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("real")).unwrap();
    symlink(fx.path("real"), fx.path("link")).unwrap();
    export(&plan(
        fx.path("link"),
        true,
        vec![manifest(
            Some("linux/amd64"),
            vec![fx.layer(BINARY, None, b"x")],
        )],
    ))
    .unwrap();
    assert_eq!(
        tree(&fx.path("real")),
        ["linux", "linux/amd64", "linux/amd64/tool"]
    );
}

#[cfg(unix)]
#[test]
fn symlinked_platform_directory_is_not_followed() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir(fx.path("d")).unwrap();
    symlink(&outside, fx.path("d/linux")).unwrap();
    let manifests = vec![manifest(
        Some("linux/amd64"),
        vec![fx.layer(BINARY, None, b"x")],
    )];
    let message = unsafe_message(export(&plan(fx.path("d"), true, manifests)));
    assert!(message.ends_with("/d/linux is a symlink"), "{message}");
    assert_eq!(tree(&outside), Vec::<String>::new());
}

#[test]
fn platform_component_that_is_not_a_name_is_rejected() {
    let fx = Fixture::new();
    let platform = Platform {
        os: "..".to_owned(),
        arch: "amd64".to_owned(),
        variant: None,
    };
    let manifests = vec![ExportManifest {
        platform: Some(platform),
        layers: vec![fx.layer(BINARY, None, b"x")],
    }];
    let message = unsafe_message(export(&plan(fx.path("d"), true, manifests)));
    assert_eq!(
        message,
        r#"platform component ".." is not a valid directory name"#
    );
    assert_eq!(tree(&fx.path("d")), Vec::<String>::new());
}

#[test]
fn blob_with_a_different_size_than_its_descriptor_is_rejected() {
    let fx = Fixture::new();
    let mut layer = fx.layer(BINARY, None, b"short");
    layer.size = 10;
    let err = export(&plan(
        fx.path("d"),
        false,
        vec![manifest(None, vec![layer])],
    ))
    .unwrap_err();
    assert!(
        matches!(
            err,
            Error::SizeMismatch {
                expected: 10,
                found: 5,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(tree(&fx.path("d")), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn failed_layer_copy_leaves_no_temporary_file() {
    let fx = Fixture::new();
    // A directory opens like a file on unix but fails once the copy reads it.
    let blob_path = fx.path("blob-dir");
    fs::create_dir(&blob_path).unwrap();
    let size = fs::metadata(&blob_path).unwrap().len();
    let layer = ExportLayer {
        media_type: BINARY.to_owned(),
        digest: Digest::of(b""),
        title: None,
        blob_path,
        size,
        verified: false,
    };
    let err = export(&plan(
        fx.path("d"),
        false,
        vec![manifest(None, vec![layer])],
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(tree(&fx.path("d")), Vec::<String>::new());
}

// A multi-platform export is all or nothing.

#[test]
fn a_platform_blocked_by_a_file_leaves_no_platform_exported_before_it() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    fs::create_dir_all(dest.join("linux")).unwrap();
    fs::write(dest.join("linux/arm64"), b"keep").unwrap();
    let manifests = vec![
        manifest(
            Some("windows/amd64"),
            vec![fx.layer(BINARY, Some("tool.exe"), b"1")],
        ),
        manifest(
            Some("linux/amd64"),
            vec![fx.layer(TAR_GZ, None, &Tar::new().file("bin/tool", b"2", 0o755).gz())],
        ),
        manifest(
            Some("linux/arm64"),
            vec![fx.layer(BINARY, Some("tool"), b"3")],
        ),
    ];
    let message = unsafe_message(export(&plan(dest.clone(), true, manifests)));
    assert!(
        message.ends_with("/out/linux/arm64 exists and is not a directory"),
        "{message}"
    );
    assert_eq!(tree(&dest), ["linux", "linux/arm64"]);
    assert_eq!(fs::read(dest.join("linux/arm64")).unwrap(), b"keep");
}

#[test]
fn a_hostile_archive_for_one_platform_leaves_no_platform_exported() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    fs::create_dir_all(dest.join("linux/amd64")).unwrap();
    fs::write(dest.join("linux/amd64/old"), b"keep").unwrap();
    let manifests = vec![
        manifest(
            Some("linux/amd64"),
            vec![fx.layer(BINARY, Some("tool"), b"1")],
        ),
        manifest(
            Some("linux/arm64"),
            vec![
                fx.layer(BINARY, Some("tool"), b"2"),
                fx.layer(TAR_GZ, None, &Tar::new().file("../evil", b"x", 0o644).gz()),
            ],
        ),
    ];
    let message = unsafe_message(export(&plan(dest.clone(), true, manifests)));
    assert_eq!(message, "archive entry ../evil escapes destination");
    assert_eq!(tree(&dest), ["linux", "linux/amd64", "linux/amd64/old"]);
    assert!(!fx.path("evil").exists());
}

#[test]
fn a_failure_while_moving_into_place_takes_back_what_was_added() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    fs::create_dir_all(dest.join("linux/amd64")).unwrap();
    fs::write(dest.join("linux/amd64/old"), b"keep").unwrap();
    let stage = |name: &str| {
        let dir = fx.path("staging").join(name);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::write(dir.join("bin/tool"), name).unwrap();
        dir
    };
    let target = |parts: &[&str], stage: PathBuf| Target {
        parts: parts.iter().map(|p| (*p).to_owned()).collect(),
        dir: parts.iter().fold(dest.clone(), |d, p| d.join(p)),
        stage,
    };
    let targets = [
        // Merged into an existing platform directory.
        target(&["linux", "amd64"], stage("amd64")),
        // Moved into place whole, below a parent that is created.
        target(&["windows", "arm64"], stage("arm64")),
        // Its staged content is gone: moving it fails.
        target(&["darwin", "arm64"], fx.path("staging/missing")),
    ];
    let err = place_all(&dest, &targets).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(tree(&dest), ["linux", "linux/amd64", "linux/amd64/old"]);
}

#[test]
fn sanitize_name_replaces_separators_and_refuses_dot_names() {
    assert_eq!(sanitize_name("a b:c/d"), "a-b-c-d");
    assert_eq!(sanitize_name(r"dir\tool"), "dir-tool");
    assert_eq!(sanitize_name("\ttool\n"), "tool");
    assert_eq!(sanitize_name(" tool "), "-tool-");
    for raw in ["", "\t", ".", ".."] {
        assert_eq!(sanitize_name(raw), "artifact", "{raw:?}");
    }
    assert_eq!(sanitize_name("..."), "...");
}

#[test]
fn exported_paths_are_cleaned_like_go_filepath_join() {
    assert_eq!(display_path(Path::new("./out/tool")), "out/tool");
    assert_eq!(display_path(Path::new("out/linux/../x")), "out/x");
    assert_eq!(display_path(Path::new("../out//x/")), "../out/x");
    assert_eq!(display_path(Path::new("/../x")), "/x");
    assert_eq!(display_path(Path::new("./")), ".");
}

// Archive layers.

#[cfg(unix)]
#[test]
fn tar_gzip_layer_is_extracted_with_directories_and_files_listed() {
    let fx = Fixture::new();
    let out = fx
        .extract(
            Tar::new()
                .dir("bin/")
                .file("bin/tool", b"#!/bin/sh\n", 0o755),
        )
        .unwrap();
    let dest = fx.path("d");
    assert_eq!(out, [text(&dest.join("bin")), text(&dest.join("bin/tool"))]);
    assert_eq!(fs::read(dest.join("bin/tool")).unwrap(), b"#!/bin/sh\n");
    for path in [dest.join("bin"), dest.join("bin/tool")] {
        let mode = fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o700, 0o700);
        assert_eq!(mode & 0o022, 0);
    }
    assert_eq!(tree(&dest), ["bin", "bin/tool"]);
}

#[test]
fn docker_and_plain_tar_layers_are_extracted() {
    let fx = Fixture::new();
    let dest = fx.path("d");
    let layers = vec![
        fx.layer(
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
            None,
            &Tar::new().file("a", b"1", 0o644).gz(),
        ),
        fx.layer(
            "application/vnd.oci.image.layer.v1.tar",
            None,
            &Tar::new().file("b", b"2", 0o644).tar(),
        ),
        fx.layer(
            "application/vnd.example+tar",
            None,
            &Tar::new().file("c", b"3", 0o644).tar(),
        ),
    ];
    let out = export(&plan(dest.clone(), false, vec![manifest(None, layers)])).unwrap();
    assert_eq!(out, ["a", "b", "c"].map(|f| text(&dest.join(f))));
    assert_eq!(fs::read(dest.join("c")).unwrap(), b"3");
}

#[cfg(unix)]
#[test]
fn archive_file_modes_lose_special_and_group_world_write_bits() {
    let fx = Fixture::new();
    fx.extract(
        Tar::new()
            .file("suid", b"x", 0o6777)
            .file("plain", b"y", 0o640),
    )
    .unwrap();
    let mode = |name: &str| {
        fs::metadata(fx.path("d").join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("suid") & 0o7022, 0);
    assert_eq!(mode("suid") & 0o700, 0o700);
    assert_eq!(mode("plain") & 0o777 & !0o640, 0);
}

#[test]
fn archive_merges_into_an_existing_directory() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.path("d/bin")).unwrap();
    fs::write(fx.path("d/bin/keep"), b"keep").unwrap();
    fs::write(fx.path("d/bin/tool"), b"old").unwrap();
    fx.extract(Tar::new().dir("bin").file("bin/tool", b"new", 0o755))
        .unwrap();
    assert_eq!(fs::read(fx.path("d/bin/tool")).unwrap(), b"new");
    assert_eq!(tree(&fx.path("d")), ["bin", "bin/keep", "bin/tool"]);
}

#[test]
fn duplicate_file_entry_replaces_the_earlier_one_and_is_listed_once() {
    let fx = Fixture::new();
    let out = fx
        .extract(
            Tar::new()
                .file("f", b"first", 0o644)
                .file("f", b"second", 0o644),
        )
        .unwrap();
    assert_eq!(out, [text(&fx.path("d/f"))]);
    assert_eq!(fs::read(fx.path("d/f")).unwrap(), b"second");
}

#[test]
fn root_entry_and_inner_dot_dot_are_resolved_lexically() {
    let fx = Fixture::new();
    let out = fx
        .extract(Tar::new().dir("./").file("a/../b", b"x", 0o644))
        .unwrap();
    assert_eq!(out, [text(&fx.path("d/b"))]);
    assert_eq!(tree(&fx.path("d")), ["b"]);
}

#[test]
fn dot_dot_prefixed_name_is_an_ordinary_file() {
    let fx = Fixture::new();
    let out = fx.extract(Tar::new().file("..foo", b"x", 0o644)).unwrap();
    assert_eq!(out, [text(&fx.path("d/..foo"))]);
}

#[test]
fn pax_global_header_is_ignored() {
    let fx = Fixture::new();
    let archive = Tar::new()
        .entry(
            EntryType::XGlobalHeader,
            b"pax_global_header",
            b"",
            0o644,
            b"52 comment=0123456789abcdef0123456789abcdef01234567\n",
        )
        .file("f", b"x", 0o644);
    assert_eq!(fx.extract(archive).unwrap(), [text(&fx.path("d/f"))]);
}

#[test]
fn dot_dot_entry_escapes_destination() {
    let fx = Fixture::new();
    let message = unsafe_message(fx.extract(Tar::new().file("../evil", b"x", 0o644)));
    assert_eq!(message, "archive entry ../evil escapes destination");
    assert!(!fx.path("evil").exists());
    assert_nothing_extracted(&fx);
}

#[test]
fn nested_dot_dot_entry_escapes_destination() {
    let fx = Fixture::new();
    let message = unsafe_message(fx.extract(Tar::new().file("a/../../evil", b"x", 0o644)));
    assert_eq!(message, "archive entry a/../../evil escapes destination");
    assert_nothing_extracted(&fx);
}

#[test]
fn absolute_and_drive_prefixed_entries_escape_destination() {
    for name in ["/etc/ds-porter-absolute", "C:/evil", "c:evil"] {
        let fx = Fixture::new();
        let message = unsafe_message(fx.extract(Tar::new().file(name, b"x", 0o644)));
        assert_eq!(message, format!("archive entry {name} escapes destination"));
        assert_nothing_extracted(&fx);
    }
    assert!(!Path::new("/etc/ds-porter-absolute").exists());
}

#[test]
fn backslash_in_entry_name_is_rejected() {
    let fx = Fixture::new();
    let message = unsafe_message(fx.extract(Tar::new().file(r"..\evil", b"x", 0o644)));
    assert_eq!(message, r"archive entry ..\evil contains a backslash");
    assert_nothing_extracted(&fx);
}

#[test]
fn nul_in_entry_name_is_rejected() {
    let fx = Fixture::new();
    let archive = Tar::new().entry(EntryType::Regular, b"ok\0/../../evil", b"", 0o644, b"x");
    let message = unsafe_message(fx.extract(archive));
    assert_eq!(
        message,
        r"archive entry ok\u{0}/../../evil contains a NUL byte"
    );
    assert_nothing_extracted(&fx);
}

#[cfg(unix)]
#[test]
fn symlink_to_tmp_then_write_through_it_writes_nothing_outside() {
    let fx = Fixture::new();
    // The fixture's directory name is random, which makes the name unique.
    let unique = format!(
        "ds-porter-pwn-{}",
        fx.root.path().file_name().unwrap().to_string_lossy()
    );
    let archive = Tar::new()
        .symlink("l", "/tmp")
        .file(&format!("l/{unique}"), b"pwned", 0o644);
    let message = unsafe_message(fx.extract(archive));
    assert_eq!(
        message,
        "archive entry l: symlink target /tmp is outside the destination"
    );
    assert!(!Path::new("/tmp").join(&unique).exists());
    assert_nothing_extracted(&fx);
}

#[cfg(unix)]
#[test]
fn entry_written_through_a_symlink_of_the_archive_is_rejected() {
    let fx = Fixture::new();
    let archive = Tar::new()
        .dir("sub")
        .symlink("l", "sub")
        .file("l/pwn", b"x", 0o644);
    let message = unsafe_message(fx.extract(archive));
    assert_eq!(
        message,
        "archive entry l/pwn would be written through symlink l"
    );
    assert_nothing_extracted(&fx);
}

#[cfg(unix)]
#[test]
fn symlink_to_the_parent_of_the_root_is_rejected() {
    let fx = Fixture::new();
    let message = unsafe_message(fx.extract(Tar::new().symlink("up", "..")));
    assert_eq!(
        message,
        "archive entry up: symlink target .. is outside the destination"
    );
    let message = unsafe_message(fx.extract(Tar::new().symlink("a/b", "../../x")));
    assert_eq!(
        message,
        "archive entry a/b: symlink target ../../x is outside the destination"
    );
    assert_nothing_extracted(&fx);
}

#[cfg(unix)]
#[test]
fn symlinks_resolving_inside_the_root_are_created() {
    let fx = Fixture::new();
    let archive = Tar::new()
        .file("bin/tool", b"x", 0o755)
        .symlink("bin/up", "..")
        .symlink("tool", "bin/tool");
    let out = fx.extract(archive).unwrap();
    let dest = fx.path("d");
    assert_eq!(
        out,
        ["bin/tool", "bin/up", "tool"].map(|f| text(&dest.join(f)))
    );
    assert_eq!(fs::read_link(dest.join("bin/up")).unwrap(), Path::new(".."));
    assert_eq!(fs::read(dest.join("tool")).unwrap(), b"x");
}

#[cfg(unix)]
#[test]
fn symlink_chain_cannot_climb_out_through_another_link() {
    let fx = Fixture::new();
    let archive = Tar::new()
        .dir("sub")
        .symlink("sub/up", "..")
        .symlink("x", "sub/up/..");
    let message = unsafe_message(fx.extract(archive));
    assert_eq!(
        message,
        "archive entry x: symlink target sub/up/.. climbs out of a path that is not a directory of the archive"
    );
    assert_nothing_extracted(&fx);
}

#[test]
fn hard_link_outside_the_destination_is_rejected() {
    for target in ["/etc/passwd", "../outside"] {
        let fx = Fixture::new();
        let message = unsafe_message(fx.extract(Tar::new().hard_link("x", target)));
        assert_eq!(
            message,
            format!("archive entry x: hard link target {target} is outside the destination")
        );
        assert_nothing_extracted(&fx);
    }
}

#[test]
fn hard_link_to_an_earlier_file_is_extracted() {
    let fx = Fixture::new();
    let out = fx
        .extract(
            Tar::new()
                .file("f", b"data", 0o644)
                .hard_link("dir/h", "./f"),
        )
        .unwrap();
    assert_eq!(out, [text(&fx.path("d/f")), text(&fx.path("d/dir/h"))]);
    assert_eq!(fs::read(fx.path("d/dir/h")).unwrap(), b"data");
}

#[cfg(unix)]
#[test]
fn hard_link_to_anything_but_an_earlier_regular_file_is_rejected() {
    for archive in [
        Tar::new()
            .hard_link("h", "later")
            .file("later", b"x", 0o644),
        Tar::new()
            .symlink("s", "f")
            .file("f", b"x", 0o644)
            .hard_link("h", "s"),
        Tar::new().dir("sub").hard_link("h", "sub"),
    ] {
        let fx = Fixture::new();
        let message = unsafe_message(fx.extract(archive));
        assert!(
            message.starts_with("archive entry h: hard link target "),
            "{message}"
        );
        assert!(
            message.ends_with(" is not an earlier regular file"),
            "{message}"
        );
        assert_nothing_extracted(&fx);
    }
}

#[test]
fn device_and_fifo_entries_are_rejected() {
    for (kind, what) in [
        (EntryType::Fifo, "a FIFO"),
        (EntryType::Char, "a character device"),
        (EntryType::Block, "a block device"),
    ] {
        let fx = Fixture::new();
        let message =
            unsafe_message(fx.extract(Tar::new().entry(kind, b"dev/node", b"", 0o644, b"")));
        assert_eq!(
            message,
            format!("archive entry dev/node is {what}, which is not supported")
        );
        assert_nothing_extracted(&fx);
    }
}

#[test]
fn file_and_directory_never_replace_each_other() {
    let cases = [
        (
            Tar::new().file("x", b"1", 0o644).dir("x/"),
            "archive entry x/ conflicts with file x",
        ),
        (
            Tar::new().dir("x/").file("x", b"1", 0o644),
            "archive entry x would replace directory x",
        ),
        (
            Tar::new().file("x", b"1", 0o644).file("x/y", b"2", 0o644),
            "archive entry x/y conflicts with file x",
        ),
        (
            Tar::new().file("x/y", b"1", 0o644).symlink("x", "z"),
            "archive entry x would replace directory x",
        ),
    ];
    for (archive, expected) in cases {
        let fx = Fixture::new();
        assert_eq!(unsafe_message(fx.extract(archive)), expected);
        assert_nothing_extracted(&fx);
    }
}

#[test]
fn entry_size_limit_stops_a_gzip_bomb() {
    let fx = Fixture::new();
    let limits = ExportLimits {
        max_entry_bytes: 1 << 20,
        ..ExportLimits::default()
    };
    let archive = Tar::new()
        .file("small", b"ok", 0o644)
        .file("bomb", &vec![0; 4 << 20], 0o644);
    let message = unsafe_message(fx.extract_with(archive, limits));
    assert_eq!(
        message,
        "archive entry bomb exceeds the limit of 1048576 bytes per entry"
    );
    assert_nothing_extracted(&fx);
}

#[test]
fn total_size_limit_counts_decompressed_bytes() {
    let fx = Fixture::new();
    let limits = ExportLimits {
        max_total_bytes: 1 << 20,
        ..ExportLimits::default()
    };
    let mut archive = Tar::new();
    for i in 0..4 {
        archive = archive.file(&format!("part{i}"), &vec![0; 400 << 10], 0o644);
    }
    let message = unsafe_message(fx.extract_with(archive, limits));
    assert_eq!(
        message,
        "the export exceeds the limit of 1048576 bytes written in one run \
         (settings.porter.export_max_bytes) at archive entry part2"
    );
    assert_nothing_extracted(&fx);
}

#[test]
fn the_byte_limit_counts_every_platform_and_layer_of_the_run() {
    // One 400 KiB archive listed for many platforms: each copy is within any per-archive cap,
    // together they are not.
    let fx = Fixture::new();
    let archive = Tar::new().file("zeros", &vec![0; 400 << 10], 0o644).gz();
    let manifests: Vec<ExportManifest> = (1..=4)
        .map(|v| {
            let platform = format!("linux/amd64/v{v}");
            manifest(Some(&platform), vec![fx.layer(TAR_GZ, None, &archive)])
        })
        .collect();
    let mut plan = plan(fx.path("d"), true, manifests);
    plan.limits.max_total_bytes = 1 << 20;
    let message = unsafe_message(export(&plan));
    assert!(
        message.starts_with(
            "the export exceeds the limit of 1048576 bytes written in one run \
             (settings.porter.export_max_bytes) at archive entry zeros"
        ),
        "{message}"
    );
    assert_nothing_extracted(&fx);

    // Raw layers count their size, before anything is written.
    let raw: Vec<ExportManifest> = (1..=3)
        .map(|v| {
            let platform = format!("linux/arm/v{}", v + 4);
            manifest(
                Some(&platform),
                vec![fx.layer(BINARY, Some("tool"), &vec![1; 400 << 10])],
            )
        })
        .collect();
    let mut raw_plan = plan_for(fx.path("d"), raw);
    raw_plan.limits.max_total_bytes = 1 << 20;
    let message = unsafe_message(export(&raw_plan));
    assert!(message.contains("bytes written in one run"), "{message}");
    assert!(message.ends_with("linux/arm/v7/tool"), "{message}");
    assert_nothing_extracted(&fx);
}

#[test]
fn the_entry_limit_counts_every_layer_of_the_run() {
    let fx = Fixture::new();
    let two = Tar::new().file("a", b"", 0o644).file("b", b"", 0o644).gz();
    let manifests = vec![
        manifest(Some("linux/amd64"), vec![fx.layer(TAR_GZ, None, &two)]),
        manifest(
            Some("linux/arm64"),
            vec![
                fx.layer(BINARY, Some("tool"), b"x"),
                fx.layer(TAR_GZ, None, &two),
            ],
        ),
    ];
    let mut plan = plan_for(fx.path("d"), manifests);
    plan.limits.max_entries = 4;
    let message = unsafe_message(export(&plan));
    assert_eq!(
        message,
        "the export exceeds the limit of 4 entries written in one run \
         (settings.porter.export_max_entries) at archive entry b"
    );
    assert_nothing_extracted(&fx);
    plan.limits.max_entries = 5;
    assert_eq!(export(&plan).unwrap().len(), 5);
}

#[test]
fn a_single_file_export_counts_against_the_limits() {
    let fx = Fixture::new();
    let layer = fx.layer(BINARY, None, &[7; 2048]);
    let mut plan = plan(
        fx.path("tool.bin"),
        false,
        vec![manifest(None, vec![layer])],
    );
    plan.limits.max_total_bytes = 1024;
    let message = unsafe_message(export(&plan));
    assert!(message.contains("limit of 1024 bytes"), "{message}");
    assert!(!fx.path("tool.bin").exists());
}

/// A layer whose cached blob no longer hashes to its digest (same size, one byte changed).
fn corrupt(mut layer: ExportLayer) -> ExportLayer {
    let mut bytes = fs::read(&layer.blob_path).unwrap();
    layer.digest = Digest::of(&bytes);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&layer.blob_path, &bytes).unwrap();
    layer
}

fn assert_corrupt_blob(result: Result<Vec<String>>, layer_digest: &Digest) {
    match result {
        Err(Error::CorruptBlob { digest, .. }) => assert_eq!(digest, layer_digest.to_string()),
        other => panic!("expected a corrupt blob, got {other:?}"),
    }
}

#[test]
fn a_corrupt_cached_raw_layer_is_refused_before_it_becomes_visible() {
    let fx = Fixture::new();
    let layer = corrupt(fx.layer(BINARY, Some("tool"), b"binary bytes"));
    let digest = layer.digest.clone();
    let into_dir = plan(
        fx.path("d"),
        false,
        vec![manifest(None, vec![layer.clone()])],
    );
    assert_corrupt_blob(export(&into_dir), &digest);
    assert_eq!(tree(&fx.path("d")), Vec::<String>::new());
    let into_file = plan(
        fx.path("tool.bin"),
        false,
        vec![manifest(None, vec![layer])],
    );
    assert_corrupt_blob(export(&into_file), &digest);
    assert_eq!(tree(fx.root.path()), ["blobs", "blobs/0"]);
}

/// A blob the pull itself downloaded and verified moments before is not hashed a second time
/// (its size still is); the same bytes from the cache are.
#[test]
fn only_blobs_already_cached_are_hashed_again_on_export() {
    let fx = Fixture::new();
    let mut layer = corrupt(fx.layer(BINARY, Some("tool"), b"binary bytes"));
    layer.verified = true;
    let exported = export(&plan(
        fx.path("fresh"),
        false,
        vec![manifest(None, vec![layer.clone()])],
    ));
    assert!(exported.is_ok(), "{exported:?}");
    let mut short = layer.clone();
    short.size += 1;
    assert!(matches!(
        export(&plan(
            fx.path("short"),
            false,
            vec![manifest(None, vec![short])]
        )),
        Err(Error::SizeMismatch { .. })
    ));
    layer.verified = false;
    let digest = layer.digest.clone();
    assert_corrupt_blob(
        export(&plan(
            fx.path("cached"),
            false,
            vec![manifest(None, vec![layer])],
        )),
        &digest,
    );
}

#[test]
fn a_corrupt_cached_archive_is_refused_before_anything_is_extracted() {
    // The changed byte is in the gzip trailer, after the last tar entry: the whole blob is hashed.
    let fx = Fixture::new();
    let archive = Tar::new().dir("bin").file("bin/tool", b"tool", 0o755).gz();
    let good = fx.layer(BINARY, Some("other"), b"fine");
    let layer = corrupt(fx.layer(TAR_GZ, None, &archive));
    let digest = layer.digest.clone();
    let manifests = vec![
        manifest(Some("linux/arm64"), vec![good]),
        manifest(Some("linux/amd64"), vec![layer]),
    ];
    assert_corrupt_blob(export(&plan_for(fx.path("d"), manifests)), &digest);
    assert_nothing_extracted(&fx);
}

#[test]
fn entry_count_limit_is_enforced() {
    let fx = Fixture::new();
    let limits = ExportLimits {
        max_entries: 2,
        ..ExportLimits::default()
    };
    let archive = Tar::new()
        .file("a", b"", 0o644)
        .file("b", b"", 0o644)
        .file("c", b"", 0o644);
    let message = unsafe_message(fx.extract_with(archive, limits));
    assert_eq!(
        message,
        "the export exceeds the limit of 2 entries written in one run \
         (settings.porter.export_max_entries) at archive entry c"
    );
    assert_nothing_extracted(&fx);
}

#[test]
fn failed_archive_leaves_nothing_in_the_destination() {
    let fx = Fixture::new();
    let archive = Tar::new()
        .dir("bin")
        .file("bin/tool", b"x", 0o755)
        .file("../evil", b"x", 0o644);
    unsafe_message(fx.extract(archive));
    assert_nothing_extracted(&fx);
}

#[test]
fn corrupt_archive_leaves_nothing_in_the_destination() {
    let fx = Fixture::new();
    let mut gz = Tar::new()
        .dir("bin")
        .file("bin/tool", &[7; 64 << 10], 0o755)
        .gz();
    gz.truncate(gz.len() / 2);
    let layer = fx.layer(TAR_GZ, None, &gz);
    let err = export(&plan(
        fx.path("d"),
        false,
        vec![manifest(None, vec![layer])],
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert_eq!(tree(&fx.path("d")), Vec::<String>::new());
}

#[cfg(unix)]
#[test]
fn existing_symlink_in_the_destination_is_not_written_through() {
    let fx = Fixture::new();
    let outside = fx.path("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir(fx.path("d")).unwrap();
    symlink(&outside, fx.path("d/l")).unwrap();
    let message = unsafe_message(
        fx.extract(
            Tar::new()
                .file("ok", b"x", 0o644)
                .file("l/pwn", b"x", 0o644),
        ),
    );
    assert_eq!(
        message,
        "archive entry l/pwn would be written through symlink l"
    );
    let message = unsafe_message(fx.extract(Tar::new().dir("l")));
    assert_eq!(
        message,
        "archive entry l would be written through symlink l"
    );
    assert_eq!(tree(&outside), Vec::<String>::new());
    assert_eq!(tree(&fx.path("d")), ["l"]);
}

#[cfg(unix)]
#[test]
fn archive_file_replaces_an_existing_symlink_not_its_target() {
    let fx = Fixture::new();
    let victim = fx.path("victim");
    fs::write(&victim, b"original").unwrap();
    fs::create_dir(fx.path("d")).unwrap();
    symlink(&victim, fx.path("d/f")).unwrap();
    fx.extract(Tar::new().file("f", b"new", 0o644)).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"original");
    assert!(fs::symlink_metadata(fx.path("d/f")).unwrap().is_file());
    assert_eq!(fs::read(fx.path("d/f")).unwrap(), b"new");
}

#[test]
fn archive_entry_conflicting_with_existing_destination_content_moves_nothing() {
    let fx = Fixture::new();
    fs::create_dir_all(fx.path("d/dir")).unwrap();
    fs::write(fx.path("d/file"), b"keep").unwrap();
    for (archive, expected) in [
        (
            Tar::new().file("a", b"x", 0o644).file("dir", b"x", 0o644),
            "archive entry dir would replace directory dir",
        ),
        (
            Tar::new()
                .file("a", b"x", 0o644)
                .file("file/x", b"x", 0o644),
            "archive entry file/x conflicts with file file",
        ),
        (
            Tar::new().file("a", b"x", 0o644).dir("file"),
            "archive entry file conflicts with file file",
        ),
    ] {
        assert_eq!(unsafe_message(fx.extract(archive)), expected);
        assert_eq!(tree(&fx.path("d")), ["dir", "file"]);
    }
}

// Staging left by killed exports.

/// The temporary-name prefix of a process that has exited, in this process's scope.
#[cfg(target_os = "linux")]
fn exited_prefix() -> String {
    let ours = temp_prefix();
    let fields = ours.strip_prefix(TMP_PREFIX).unwrap();
    let (_pid, rest) = fields
        .split_once('-')
        .expect("temporary names record the owner");
    format!("{TMP_PREFIX}{}-{rest}", u32::MAX)
}

#[cfg(target_os = "linux")]
#[test]
fn an_export_removes_staging_of_exited_exports_and_keeps_staging_of_running_ones() {
    let fx = Fixture::new();
    let dest = fx.path("out");
    let platform_dir = dest.join("linux/arm64");
    fs::create_dir_all(&platform_dir).unwrap();
    let dead = exited_prefix();
    for dir in [&dest, &platform_dir] {
        fs::create_dir(dir.join(format!("{dead}stage1"))).unwrap();
        fs::write(dir.join(format!("{dead}stage1/f000")), b"partial").unwrap();
        fs::write(dir.join(format!("{dead}file01")), b"partial").unwrap();
    }
    // A concurrent export of this (running) process is staging into the same directory.
    let live = platform_dir.join(format!("{}stage2", temp_prefix()));
    fs::create_dir(&live).unwrap();
    fs::write(live.join("f000"), b"in progress").unwrap();

    let archive = fx.layer(TAR_GZ, None, &Tar::new().file("f001", b"new", 0o644).gz());
    let binary = fx.layer(BINARY, Some("porter"), b"arm64");
    export(&plan(
        dest.clone(),
        true,
        vec![manifest(Some("linux/arm64"), vec![archive, binary])],
    ))
    .unwrap();

    let live_name = text(live.strip_prefix(&dest).unwrap());
    assert_eq!(
        tree(&dest),
        [
            "linux".to_owned(),
            "linux/arm64".to_owned(),
            live_name.clone(),
            format!("{live_name}/f000"),
            "linux/arm64/f001".to_owned(),
            "linux/arm64/porter".to_owned(),
        ]
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_export_removes_temporary_files_of_exited_exports_beside_it() {
    let fx = Fixture::new();
    fs::create_dir(fx.path("out")).unwrap();
    let stale = fx.path(&format!("out/{}Ab12Cd", exited_prefix()));
    fs::write(&stale, b"partial").unwrap();
    let layer = fx.layer(BINARY, None, b"tool");
    export(&plan(
        fx.path("out/tool.bin"),
        false,
        vec![manifest(None, vec![layer])],
    ))
    .unwrap();
    assert_eq!(tree(&fx.path("out")), ["tool.bin"]);
}

#[test]
fn a_cancelled_export_returns_cancelled_and_leaves_the_destination_as_it_was() {
    let fx = Fixture::new();
    let layer = fx.layer(BINARY, Some("tool"), b"binary");
    let dest = fx.path("dest");
    let plan = plan(
        dest.clone(),
        true,
        vec![manifest(Some("linux/amd64"), vec![layer])],
    );
    plan.cancel.cancel();
    assert!(matches!(export(&plan), Err(Error::Cancelled)));
    assert!(!dest.exists());
}

#[test]
fn a_blob_stops_reading_once_its_export_is_cancelled() {
    let fx = Fixture::new();
    let layer = fx.layer(BINARY, Some("tool"), &[7u8; 64]);
    let cancel = CancellationToken::new();
    let mut blob = open_blob(&layer, &cancel).unwrap();
    let mut first = [0u8; 16];
    assert_eq!(blob.read(&mut first).unwrap(), 16);
    cancel.cancel();
    let err = blob.read(&mut first).unwrap_err();
    assert_eq!(err.to_string(), "export cancelled");
    // A copy in progress fails, and its temporary file goes with it.
    let blob = open_blob(&layer, &cancel).unwrap();
    let dir = fx.path("out");
    fs::create_dir_all(&dir).unwrap();
    assert!(write_atomic(blob, &dir, &dir.join("tool")).is_err());
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}
