//! Export of pulled layers to the user's `-o/--output` destination.
//!
//! The destination rules are those of `ds-contract` §7.7: a single layer goes to a file, otherwise
//! each selected manifest goes to a directory (per platform when asked), archive layers are
//! unpacked and other layers are written under their title. Unlike the Go plugin, an export never
//! writes outside its destination or through a symbolic link, caps archives against bombs, and
//! is all or nothing: every platform is staged under a temporary name inside the destination and
//! moved into place only once all of them are staged, so a failed export leaves no platform
//! exported and an interrupted one nothing half-written. Temporary names record the exporting
//! process, and an export first removes, from each directory it writes to, the temporary entries
//! of exports that were killed (see `leftovers`).

mod archive;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::leftovers;
use crate::platform::Platform;

/// Prefix of the temporary files and staging directories an export creates in the destination;
/// [`temp_prefix`] adds the owning process.
const TMP_PREFIX: &str = ".ds-porter-tmp-";

/// Caps against archive bombs, applied to each archive layer while it is decompressed.
#[derive(Debug, Clone, Copy)]
pub struct ExtractLimits {
    /// Decompressed bytes of one archive, headers included.
    pub max_total_bytes: u64,
    /// Entries of one archive.
    pub max_entries: u64,
    /// Bytes of one archive entry.
    pub max_entry_bytes: u64,
}

impl Default for ExtractLimits {
    /// 8 GiB in total, 100,000 entries, 4 GiB per entry.
    fn default() -> Self {
        ExtractLimits {
            max_total_bytes: 8 << 30,
            max_entries: 100_000,
            max_entry_bytes: 4 << 30,
        }
    }
}

/// One layer to export: a verified blob file in the cache.
#[derive(Debug, Clone)]
pub struct ExportLayer {
    /// Layer media type; decides whether the layer is unpacked.
    pub media_type: String,
    /// The `org.opencontainers.image.title` annotation, if any.
    pub title: Option<String>,
    /// The blob's file in the cache.
    pub blob_path: PathBuf,
    /// The blob's size from its descriptor.
    pub size: u64,
}

/// One selected manifest (index order) and its platform (`None` for a single manifest without one).
#[derive(Debug, Clone)]
pub struct ExportManifest {
    /// Platform from the index; names the sub-directory when sub-directories are used.
    pub platform: Option<Platform>,
    /// Layers in manifest order.
    pub layers: Vec<ExportLayer>,
}

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    /// The destination as the user gave it (relative paths are relative to the working directory).
    pub destination: PathBuf,
    /// Whether platforms were requested explicitly or all of them (sub-directories per platform).
    pub subdirs: bool,
    /// The selected manifests; never empty.
    pub manifests: Vec<ExportManifest>,
    /// File name for untitled layers, derived from the reference by the caller (e.g. `tool`).
    pub fallback_name: String,
    /// Caps for archive layers.
    pub limits: ExtractLimits,
    /// Stops the export between two reads of a layer: what it staged is removed, nothing is
    /// moved into place, and [`export`] returns [`Error::Cancelled`]. Once everything is staged
    /// the export completes.
    pub cancel: CancellationToken,
}

/// Whether the destination receives one file or a directory tree.
enum Mode {
    File,
    Directory,
}

/// Exports `plan` and returns the created paths (joined to the destination, like Go's
/// `exported_files`): the file in file mode, otherwise every written file and every directory,
/// file and link an archive named, in order.
pub fn export(plan: &ExportPlan) -> Result<Vec<String>> {
    if plan.cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let subdirs = plan.subdirs || plan.manifests.len() > 1;
    let exported = match prepare_destination(&plan.destination, subdirs)? {
        Mode::File => export_file(plan),
        Mode::Directory => export_directories(plan, subdirs),
    };
    match exported {
        Err(_) if plan.cancel.is_cancelled() => Err(Error::Cancelled),
        exported => exported,
    }
}

/// Makes a layer title or reference name usable as a file name: `\`, `/`, `:` and spaces become
/// `-`, surrounding whitespace is trimmed, and an empty result, `.` or `..` becomes `artifact`.
pub fn sanitize_name(raw: &str) -> String {
    let replaced = raw.replace(['\\', '/', ':', ' '], "-");
    match replaced.trim() {
        "" | "." | ".." => "artifact".to_owned(),
        name => name.to_owned(),
    }
}

/// Chooses file or directory mode and creates missing directories (§7.7).
fn prepare_destination(dest: &Path, subdirs: bool) -> Result<Mode> {
    if file_type(dest)?.is_some() {
        // A link to a directory is the user's chosen root; anything else that exists, a dangling
        // link included, is a file to be replaced.
        if fs::metadata(dest).is_ok_and(|m| m.is_dir()) {
            return Ok(Mode::Directory);
        }
        if subdirs {
            return Err(Error::Export(
                "destination must be a directory when exporting multiple platforms".to_owned(),
            ));
        }
        return Ok(Mode::File);
    }
    if !subdirs && looks_like_file(dest) {
        create_dir_all(parent_dir(dest))?;
        return Ok(Mode::File);
    }
    create_dir_all(dest)?;
    Ok(Mode::Directory)
}

/// Go's `!strings.HasSuffix(dest, separator) && filepath.Ext(dest) != ""`: the last path element
/// contains a dot.
fn looks_like_file(dest: &Path) -> bool {
    dest.to_string_lossy()
        .rsplit(std::path::is_separator)
        .next()
        .is_some_and(|last| last.contains('.'))
}

/// Writes the only layer of the only manifest, unmodified, to the destination file.
fn export_file(plan: &ExportPlan) -> Result<Vec<String>> {
    let layers = plan
        .manifests
        .first()
        .map_or(&[][..], |m| m.layers.as_slice());
    let [layer] = layers else {
        return Err(Error::Export(format!(
            "expected a single layer, found {}",
            layers.len()
        )));
    };
    let dest = &plan.destination;
    if dest.file_name().is_none() {
        return Err(Error::Export(format!(
            "destination {} does not name a file",
            dest.display()
        )));
    }
    let dir = parent_dir(dest);
    leftovers::sweep(dir, TMP_PREFIX);
    write_atomic(&mut open_blob(layer, &plan.cancel)?, dir, dest)?;
    Ok(vec![dest.to_string_lossy().into_owned()])
}

/// Exports each manifest into the destination or its platform's sub-directory, all or nothing:
/// every platform is first staged in one private directory inside the destination, checked
/// against what the destination holds, and only once all are staged is anything moved into
/// place. A failure before that leaves the destination as it was; a failure while moving takes
/// back what this export added (files it replaced keep their new content).
fn export_directories(plan: &ExportPlan, subdirs: bool) -> Result<Vec<String>> {
    let dest = &plan.destination;
    leftovers::sweep(dest, TMP_PREFIX);
    let staging = tempfile::Builder::new()
        .prefix(&temp_prefix())
        .tempdir_in(dest)
        .map_err(|e| Error::io("failed to create staging directory in", dest, e))?;
    let mut targets: Vec<Target> = Vec::new();
    let mut exported = Vec::new();
    for manifest in &plan.manifests {
        let parts = if subdirs {
            platform_parts(manifest.platform.as_ref())?
        } else {
            Vec::new()
        };
        let index = match targets.iter().position(|t| t.parts == parts) {
            Some(index) => index,
            None => {
                check_platform_dirs(dest, &parts)?;
                let dir = parts.iter().fold(dest.clone(), |dir, part| dir.join(part));
                if subdirs {
                    leftovers::sweep(&dir, TMP_PREFIX);
                }
                let stage = staging.path().join(targets.len().to_string());
                dir_builder()
                    .create(&stage)
                    .map_err(|e| Error::io("failed to create staging directory", &stage, e))?;
                targets.push(Target { parts, dir, stage });
                targets.len() - 1
            }
        };
        let target = &targets[index];
        for layer in &manifest.layers {
            if let Some(compression) = archive::Compression::of(&layer.media_type) {
                let blob = open_blob(layer, &plan.cancel)?;
                let entries = archive::extract(
                    blob,
                    &layer.blob_path,
                    compression,
                    &target.stage,
                    &target.dir,
                    plan.limits,
                )?;
                exported.extend(
                    entries
                        .iter()
                        .map(|rel| display_path(&target.dir.join(rel))),
                );
            } else {
                let name = layer_file_name(layer, manifest.platform.as_ref(), &plan.fallback_name)?;
                let path = target.dir.join(&name);
                let staged = target.stage.join(&name);
                if file_type(&path)?.is_some_and(|t| t.is_dir())
                    || file_type(&staged)?.is_some_and(|t| t.is_dir())
                {
                    return Err(Error::Unsafe(format!(
                        "layer file {name} would replace directory {}",
                        path.display()
                    )));
                }
                write_atomic(&mut open_blob(layer, &plan.cancel)?, &target.stage, &staged)?;
                exported.push(display_path(&path));
            }
        }
    }

    place_all(dest, &targets)?;
    // Everything is in place: what is left of the staging directory is empty directories, and a
    // later export removes them if this cannot.
    let staging_path = staging.path().to_path_buf();
    if let Err(err) = staging.close() {
        tracing::warn!(path = %staging_path.display(), error = %err, "cannot remove the export's staging directory");
    }
    Ok(exported)
}

/// One directory an export writes to and where its content is staged.
struct Target {
    /// Platform components below the destination (none without sub-directories).
    parts: Vec<String>,
    /// The destination joined with `parts`.
    dir: PathBuf,
    /// Its staging directory.
    stage: PathBuf,
}

/// `<os>/<arch>[/<variant>]` of a platform (`unknown` without a complete platform), refusing
/// components that are not plain names.
fn platform_parts(platform: Option<&Platform>) -> Result<Vec<String>> {
    let parts = match platform {
        Some(p) if !p.os.is_empty() && !p.arch.is_empty() => p.dir_components(),
        _ => vec!["unknown"],
    };
    for part in &parts {
        if matches!(*part, "" | "." | "..") || part.contains(['/', '\\', ':', '\0']) {
            return Err(Error::Unsafe(format!(
                "platform component {part:?} is not a valid directory name"
            )));
        }
    }
    Ok(parts.into_iter().map(str::to_owned).collect())
}

/// Checks that the existing components of `dest/<parts>` are directories, not links or files.
fn check_platform_dirs(dest: &Path, parts: &[String]) -> Result<()> {
    let mut dir = dest.to_path_buf();
    for part in parts {
        dir.push(part);
        if !existing_platform_dir(&dir)? {
            break;
        }
    }
    Ok(())
}

/// Whether the platform directory `dir` exists; a link or anything but a directory is refused.
fn existing_platform_dir(dir: &Path) -> Result<bool> {
    match file_type(dir)? {
        None => Ok(false),
        Some(t) if t.is_dir() => Ok(true),
        Some(t) if t.is_symlink() => Err(Error::Unsafe(format!(
            "platform directory {} is a symlink",
            dir.display()
        ))),
        Some(_) => Err(Error::Unsafe(format!(
            "platform directory {} exists and is not a directory",
            dir.display()
        ))),
    }
}

/// What an export added to the destination while moving staged content into place, in order.
#[derive(Default)]
struct Added(Vec<AddedPath>);

/// One path an export added.
enum AddedPath {
    /// An empty directory it created.
    Created(PathBuf),
    /// A staged file, link or directory tree it moved to a path where nothing was.
    Moved(PathBuf),
}

impl Added {
    /// Removes what was added, newest first. Best effort: what cannot be removed is logged.
    fn undo(self) {
        for added in self.0.into_iter().rev() {
            let (result, path) = match added {
                AddedPath::Created(dir) => (fs::remove_dir(&dir), dir),
                AddedPath::Moved(path) => {
                    let is_dir = fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
                    let result = if is_dir {
                        fs::remove_dir_all(&path)
                    } else {
                        fs::remove_file(&path)
                    };
                    (result, path)
                }
            };
            if let Err(err) = result {
                tracing::warn!(path = %path.display(), error = %err, "cannot remove what a failed export added");
            }
        }
    }
}

/// Moves every target's staged content into place; on failure, removes what was added.
fn place_all(dest: &Path, targets: &[Target]) -> Result<()> {
    let mut added = Added::default();
    for target in targets {
        if let Err(err) = place(dest, target, &mut added) {
            added.undo();
            return Err(err);
        }
    }
    Ok(())
}

/// Moves `target`'s staged content into place: a platform directory that does not exist yet is
/// renamed into place whole; otherwise directories are merged and files and links renamed over
/// what is there (never followed).
fn place(dest: &Path, target: &Target, added: &mut Added) -> Result<()> {
    let mut dir = dest.to_path_buf();
    for (i, part) in target.parts.iter().enumerate() {
        dir.push(part);
        if existing_platform_dir(&dir)? {
            continue;
        }
        if i + 1 == target.parts.len() {
            fs::rename(&target.stage, &dir)
                .map_err(|e| Error::io("failed to move into place", &dir, e))?;
            added.0.push(AddedPath::Moved(dir));
            return Ok(());
        }
        dir_builder()
            .create(&dir)
            .map_err(|e| Error::io("failed to create directory", &dir, e))?;
        added.0.push(AddedPath::Created(dir.clone()));
    }
    merge(&target.stage, &dir, added)
}

/// Merges the staged tree `from` into the existing directory `into`.
fn merge(from: &Path, into: &Path, added: &mut Added) -> Result<()> {
    let mut pending = vec![PathBuf::new()];
    while let Some(rel) = pending.pop() {
        let staged_dir = from.join(&rel);
        let entries = fs::read_dir(&staged_dir)
            .and_then(|entries| entries.collect::<io::Result<Vec<_>>>())
            .map_err(|e| Error::io("failed to read staging directory", &staged_dir, e))?;
        for entry in entries {
            let rel = rel.join(entry.file_name());
            let (src, dst) = (from.join(&rel), into.join(&rel));
            let is_dir = entry
                .file_type()
                .map_err(|e| Error::io("failed to inspect", &src, e))?
                .is_dir();
            match file_type(&dst)? {
                None => {
                    fs::rename(&src, &dst)
                        .map_err(|e| Error::io("failed to move into place", &dst, e))?;
                    added.0.push(AddedPath::Moved(dst));
                }
                Some(t) if is_dir && t.is_dir() => pending.push(rel),
                Some(t) if is_dir && t.is_symlink() => {
                    return Err(Error::Unsafe(format!(
                        "exported directory {} would be written through a symlink",
                        dst.display()
                    )));
                }
                Some(_) if is_dir => {
                    return Err(Error::Unsafe(format!(
                        "exported directory {} conflicts with an existing file",
                        dst.display()
                    )));
                }
                Some(t) if t.is_dir() => {
                    return Err(Error::Unsafe(format!(
                        "exported file {} would replace a directory",
                        dst.display()
                    )));
                }
                Some(_) => fs::rename(&src, &dst)
                    .map_err(|e| Error::io("failed to move into place", &dst, e))?,
            }
        }
    }
    Ok(())
}

/// The file name of a layer that is not unpacked: its sanitised title, or the sanitised fallback
/// name with `.exe` added for Windows when it has no extension.
fn layer_file_name(
    layer: &ExportLayer,
    platform: Option<&Platform>,
    fallback: &str,
) -> Result<String> {
    if let Some(title) = layer.title.as_deref().filter(|t| !t.trim().is_empty()) {
        return checked_file_name(sanitize_name(title), "layer title", title);
    }
    let mut name = checked_file_name(sanitize_name(fallback), "fallback name", fallback)?;
    if !name.contains('.') && platform.is_some_and(|p| p.os.eq_ignore_ascii_case("windows")) {
        name.push_str(".exe");
    }
    Ok(name)
}

/// Rejects a sanitised name that still cannot be a single file name.
fn checked_file_name(name: String, what: &str, raw: &str) -> Result<String> {
    if name.contains('\0') {
        return Err(Error::Unsafe(format!(
            "{what} {raw:?} is not a valid file name"
        )));
    }
    Ok(name)
}

/// A layer's blob, read until the export is cancelled.
struct Blob<'a> {
    file: File,
    cancel: &'a CancellationToken,
}

impl Read for Blob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other("export cancelled"));
        }
        self.file.read(buf)
    }
}

/// Opens a layer's blob, checking it still has its descriptor's size.
fn open_blob<'a>(layer: &ExportLayer, cancel: &'a CancellationToken) -> Result<Blob<'a>> {
    let path = &layer.blob_path;
    let file = File::open(path).map_err(|e| Error::io("failed to open layer blob", path, e))?;
    let found = file
        .metadata()
        .map_err(|e| Error::io("failed to inspect", path, e))?
        .len();
    if found != layer.size {
        return Err(Error::SizeMismatch {
            digest: path.display().to_string(),
            expected: layer.size,
            found,
        });
    }
    Ok(Blob { file, cancel })
}

/// Copies `src` to `path` through a temporary file in `dir` (the directory of `path`), so `path`
/// never exists half-written; whatever is at `path`, a symlink included, is replaced, not followed.
///
/// Exported layers are plugin binaries, so on unix the file is created executable (0755 minus the
/// umask).
fn write_atomic(src: &mut impl Read, dir: &Path, path: &Path) -> Result<()> {
    let prefix = temp_prefix();
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755));
    let mut temp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::io("failed to create file in", dir, e))?;
    io::copy(src, temp.as_file_mut()).map_err(|e| Error::io("failed to copy layer to", path, e))?;
    temp.persist(path)
        .map_err(|e| Error::io("failed to create file", path, e.error))?;
    Ok(())
}

/// The name prefix of this process's temporary files and staging directories.
fn temp_prefix() -> String {
    leftovers::prefix(TMP_PREFIX)
}

/// What is at `path` without following a final symlink; `None` if nothing is.
fn file_type(path: &Path) -> Result<Option<fs::FileType>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta.file_type())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("failed to inspect", path, e)),
    }
}

/// `mkdir -p` with mode 0755 (minus the umask) on unix.
fn create_dir_all(path: &Path) -> Result<()> {
    dir_builder()
        .recursive(true)
        .create(path)
        .map_err(|e| Error::io("failed to create directory", path, e))
}

/// A directory builder with mode 0755 on unix.
fn dir_builder() -> DirBuilder {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut builder = DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o755);
    builder
}

/// The directory a destination file lives in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Lexically cleans a path for the exported list, as Go's `filepath.Join` does (`./out/a` ⇒
/// `out/a`); only for display, the file system is never addressed through the cleaned form.
fn display_path(path: &Path) -> String {
    let mut parts: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match parts.last() {
                Some(Component::Normal(_)) => {
                    parts.pop();
                }
                Some(Component::RootDir) => {}
                _ => parts.push(component),
            },
            _ => parts.push(component),
        }
    }
    if parts.is_empty() {
        return ".".to_owned();
    }
    parts
        .iter()
        .collect::<PathBuf>()
        .to_string_lossy()
        .into_owned()
}
