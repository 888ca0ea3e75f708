//! Export of pulled layers to the user's `-o/--output` destination.
//!
//! Whether the destination is a file or a directory is decided by `destination` (ds-contract
//! §7.7 with its gaps closed): a single layer goes to a file, otherwise
//! each selected manifest goes to a directory (per platform when asked), archive layers are
//! unpacked and other layers are written under their title. Unlike the Go plugin, an export never
//! writes outside its destination or through a symbolic link, caps archives against bombs, and
//! is all or nothing: every platform is staged under a temporary name inside the destination and
//! moved into place only once all of them are staged, so a failed export leaves no platform
//! exported and an interrupted one nothing half-written. Temporary names record the exporting
//! process, and an export first removes, from each directory it writes to, the temporary entries
//! of exports that were killed (see `leftovers`).

mod archive;
pub(crate) mod pack;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

use std::fs::{self, DirBuilder, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use tokio_util::sync::CancellationToken;

use crate::destination::{self, Kind};
use crate::digest::Digest;
use crate::display::{escape_remote, has_unsafe_chars};
use crate::error::{Error, Result};
use crate::leftovers;
use crate::platform::Platform;
use sha2::{Digest as _, Sha256};

/// Prefix of the temporary files and staging directories an export creates in the destination;
/// [`temp_prefix`] adds the owning process.
const TMP_PREFIX: &str = ".ds-porter-tmp-";

/// The setting that changes [`ExportLimits::max_total_bytes`].
pub const MAX_BYTES_SETTING: &str = "settings.porter.export_max_bytes";
/// The setting that changes [`ExportLimits::max_entries`].
pub const MAX_ENTRIES_SETTING: &str = "settings.porter.export_max_entries";

/// Caps on what one export run writes, against archive bombs and amplification (an index that
/// lists one small archive for many platforms). The totals count every platform and layer of the
/// run together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportLimits {
    /// Bytes the run writes: raw layers' sizes plus archives' decompressed bytes (headers
    /// included).
    pub max_total_bytes: u64,
    /// Files the run writes: raw layers plus archive entries.
    pub max_entries: u64,
    /// Bytes of one archive entry.
    pub max_entry_bytes: u64,
}

impl Default for ExportLimits {
    /// 8 GiB and 100,000 entries per run, 4 GiB per entry.
    fn default() -> Self {
        ExportLimits {
            max_total_bytes: 8 << 30,
            max_entries: 100_000,
            max_entry_bytes: 4 << 30,
        }
    }
}

/// What an export run has written so far, against its [`ExportLimits`].
#[derive(Debug)]
struct Budget {
    limits: ExportLimits,
    bytes: u64,
    entries: u64,
}

impl Budget {
    fn new(limits: ExportLimits) -> Self {
        Budget {
            limits,
            bytes: 0,
            entries: 0,
        }
    }

    /// Bytes the run may still write.
    fn bytes_left(&self) -> u64 {
        self.limits.max_total_bytes.saturating_sub(self.bytes)
    }

    /// Counts one more file or entry, `at` naming it for the error.
    fn add_entry(&mut self, at: &str) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(Error::Unsafe(format!(
                "the export exceeds the limit of {} entries written in one run \
                 ({MAX_ENTRIES_SETTING}) at {at}",
                self.limits.max_entries
            )));
        }
        Ok(())
    }

    /// Counts `n` more bytes, `at` naming what writes them for the error.
    fn add_bytes(&mut self, n: u64, at: &str) -> Result<()> {
        if n > self.bytes_left() {
            return Err(self.bytes_exceeded(at));
        }
        self.bytes += n;
        Ok(())
    }

    /// The error for a run that would write more than its byte limit at `at`.
    fn bytes_exceeded(&self, at: &str) -> Error {
        Error::Unsafe(format!(
            "the export exceeds the limit of {} bytes written in one run ({MAX_BYTES_SETTING}) at {at}",
            self.limits.max_total_bytes
        ))
    }
}

/// One layer to export: a blob file in the cache, verified against `digest` and `size` while it
/// is exported.
#[derive(Debug, Clone)]
pub struct ExportLayer {
    /// Layer media type; decides whether the layer is unpacked.
    pub media_type: String,
    /// The blob's digest from its descriptor.
    pub digest: Digest,
    /// The `org.opencontainers.image.title` annotation, if any.
    pub title: Option<String>,
    /// The blob's file in the cache.
    pub blob_path: PathBuf,
    /// The blob's size from its descriptor.
    pub size: u64,
    /// The pull that leads to this export downloaded the blob and checked its digest moments
    /// before: its size is checked, its bytes are not hashed a second time. `false` for every
    /// blob that was already cached (those are always hashed as they are exported).
    pub verified: bool,
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
    /// Caps on what the run writes.
    pub limits: ExportLimits,
    /// Stops the export between two reads of a layer: what it staged is removed, nothing is
    /// moved into place, and [`export`] returns [`Error::Cancelled`]. Once everything is staged
    /// the export completes.
    pub cancel: CancellationToken,
}

/// Exports `plan` and returns the created paths (joined to the destination, like Go's
/// `exported_files`): the file in file mode, otherwise every written file and every directory,
/// file and link an archive named, in order.
pub fn export(plan: &ExportPlan) -> Result<Vec<String>> {
    if plan.cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    let several = plan.manifests.len() > 1;
    let subdirs = plan.subdirs || several;
    let mut budget = Budget::new(plan.limits);
    let (kind, created) = prepare_destination(&plan.destination, several)?;
    let exported = match kind {
        Kind::File => export_file(plan, &mut budget),
        Kind::Directory => export_directories(plan, subdirs, &mut budget),
    };
    if exported.is_err() {
        // A failed export leaves the destination as it was: the directories it created go too.
        for dir in created {
            let _ = fs::remove_dir(dir);
        }
        if plan.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
    }
    exported
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

/// Chooses file or directory mode by the destination rule and creates missing directories,
/// returning the directories it created, deepest first.
fn prepare_destination(dest: &Path, several: bool) -> Result<(Kind, Vec<PathBuf>)> {
    let kind = destination::kind(dest, several)?;
    let created = match kind {
        Kind::File if file_type(dest)?.is_none() => create_missing(parent_dir(dest))?,
        Kind::File => Vec::new(),
        Kind::Directory => create_missing(dest)?,
    };
    Ok((kind, created))
}

/// `mkdir -p`, returning the directories that did not exist, deepest first.
fn create_missing(dir: &Path) -> Result<Vec<PathBuf>> {
    let missing: Vec<PathBuf> = dir
        .ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .take_while(|a| !matches!(file_type(a), Ok(Some(_))))
        .map(Path::to_path_buf)
        .collect();
    create_dir_all(dir)?;
    Ok(missing)
}

/// Writes the only layer of the only manifest, unmodified, to the destination file.
fn export_file(plan: &ExportPlan, budget: &mut Budget) -> Result<Vec<String>> {
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
    let at = format!("file {}", dest.display());
    budget.add_entry(&at)?;
    budget.add_bytes(layer.size, &at)?;
    let dir = parent_dir(dest);
    leftovers::sweep(dir, TMP_PREFIX);
    write_atomic(open_blob(layer, &plan.cancel)?, dir, dest)?;
    Ok(vec![dest.to_string_lossy().into_owned()])
}

/// Exports each manifest into the destination or its platform's sub-directory, all or nothing:
/// every platform is first staged in one private directory inside the destination, checked
/// against what the destination holds, and only once all are staged is anything moved into
/// place. A failure before that leaves the destination as it was; a failure while moving takes
/// back what this export added (files it replaced keep their new content).
fn export_directories(
    plan: &ExportPlan,
    subdirs: bool,
    budget: &mut Budget,
) -> Result<Vec<String>> {
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
                let entries = archive::extract(
                    open_blob(layer, &plan.cancel)?,
                    compression,
                    &target.stage,
                    &target.dir,
                    budget,
                )?;
                exported.extend(
                    entries
                        .iter()
                        .map(|rel| display_path(&target.dir.join(rel))),
                );
            } else {
                let name = layer_file_name(layer, manifest.platform.as_ref(), &plan.fallback_name)?;
                let path = target.dir.join(&name);
                let at = format!("file {}", path.display());
                budget.add_entry(&at)?;
                budget.add_bytes(layer.size, &at)?;
                let staged = target.stage.join(&name);
                if file_type(&path)?.is_some_and(|t| t.is_dir())
                    || file_type(&staged)?.is_some_and(|t| t.is_dir())
                {
                    return Err(Error::Unsafe(format!(
                        "layer file {name} would replace directory {}",
                        path.display()
                    )));
                }
                write_atomic(open_blob(layer, &plan.cancel)?, &target.stage, &staged)?;
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
        if matches!(*part, "" | "." | "..")
            || part.contains(['/', '\\', ':'])
            || has_unsafe_chars(part)
        {
            return Err(Error::Unsafe(format!(
                "platform component \"{}\" is not a valid directory name",
                escape_remote(part)
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

/// Rejects a name whose raw form holds control characters (NUL, newline, ESC sequences) or
/// bidirectional overrides, which would make a file name that reads differently from what it
/// is; the error shows it escaped.
fn checked_file_name(name: String, what: &str, raw: &str) -> Result<String> {
    if has_unsafe_chars(raw) {
        return Err(Error::Unsafe(format!(
            "{what} \"{}\" contains control characters or bidirectional overrides",
            escape_remote(raw)
        )));
    }
    Ok(name)
}

/// Opens a layer's blob, checking it still has its descriptor's size; what is read through the
/// returned reader is hashed, and [`VerifiedBlob::finish`] checks the digest. Reading stops with
/// an error once `cancel` is cancelled.
fn open_blob<'a>(
    layer: &'a ExportLayer,
    cancel: &'a CancellationToken,
) -> Result<VerifiedBlob<'a>> {
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
    Ok(VerifiedBlob {
        file,
        layer,
        hasher: (!layer.verified).then(Sha256::new),
        cancel,
    })
}

/// A cached blob being exported: every byte read is hashed in the same pass, so the export checks
/// exactly the bytes it wrote, and reads the file once.
struct VerifiedBlob<'a> {
    file: File,
    layer: &'a ExportLayer,
    /// `None` for a blob the pull just verified.
    hasher: Option<Sha256>,
    cancel: &'a CancellationToken,
}

impl VerifiedBlob<'_> {
    /// The blob's path, for messages.
    fn path(&self) -> &Path {
        &self.layer.blob_path
    }

    /// Reads what is left of the blob and checks its digest. A mismatch is a corrupt cache: the
    /// error names the blob, and nothing written from it may become visible.
    fn finish(mut self) -> Result<()> {
        io::copy(&mut self, &mut io::sink())
            .map_err(|e| Error::io("failed to read layer blob", &self.layer.blob_path, e))?;
        let Some(hasher) = self.hasher else {
            return Ok(());
        };
        let found = Digest::from_hasher(hasher);
        if found == self.layer.digest {
            return Ok(());
        }
        Err(Error::CorruptBlob {
            digest: self.layer.digest.to_string(),
            path: self.layer.blob_path.clone(),
            found: found.to_string(),
        })
    }
}

impl Read for VerifiedBlob<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::other("export cancelled"));
        }
        let n = self.file.read(buf)?;
        if let Some(hasher) = &mut self.hasher {
            hasher.update(&buf[..n]);
        }
        Ok(n)
    }
}

/// Bytes copied per read and write of a raw layer.
const COPY_BUFFER: usize = 1 << 20;

/// Copies `src` to `path` through a temporary file in `dir` (the directory of `path`), so `path`
/// never exists half-written, and only once the blob's digest was checked; whatever is at `path`,
/// a symlink included, is replaced, not followed.
///
/// Exported layers are plugin binaries, so on unix the file is created executable (0755 minus the
/// umask).
fn write_atomic(mut src: VerifiedBlob<'_>, dir: &Path, path: &Path) -> Result<()> {
    let prefix = temp_prefix();
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755));
    let mut temp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::io("failed to create file in", dir, e))?;
    let mut buffer = vec![0; COPY_BUFFER];
    loop {
        let n = src
            .read(&mut buffer)
            .map_err(|e| Error::io("failed to read layer blob", src.path(), e))?;
        if n == 0 {
            break;
        }
        temp.as_file_mut()
            .write_all(&buffer[..n])
            .map_err(|e| Error::io("failed to copy layer to", path, e))?;
    }
    src.finish()?;
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
