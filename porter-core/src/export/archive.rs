//! Confined extraction of tar layers.
//!
//! Archive layers come from registries, so nothing in them is trusted. The archive is unpacked
//! into a private staging directory and moved into the export's staging area for its target only
//! once every entry passed these rules:
//!
//! * names are relative, UTF-8, free of NUL, backslashes and drive prefixes, and do not climb
//!   above the root (`a/../b` is `b`, `..foo` is an ordinary name);
//! * nothing is written through a symlink, and files, links and directories never replace one
//!   another across kinds (a later file replaces an earlier file or link);
//! * symlink targets resolve inside the root, and `..` in them may only leave a directory of the
//!   archive, so chains of links cannot climb out;
//! * hard links point at an earlier regular file of the archive; devices, FIFOs and other entry
//!   types are refused;
//! * entry count, entry size and decompressed size are capped while streaming;
//! * file modes keep only the permission bits, without setuid/setgid/sticky or group/world write.
//!
//! Moving merges into existing directories and replaces existing files and links (never
//! following them); conflicts with the target's existing content, and with what earlier layers
//! staged for it, are found before anything moves.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use tar::EntryType;
use tempfile::TempDir;

use super::{ExtractLimits, create_dir_all, dir_builder, file_type, temp_prefix};
use crate::error::{Error, Result};

/// How an archive layer is compressed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Compression {
    Plain,
    Gzip,
}

impl Compression {
    /// The archive format of a layer media type; `None` for layers that are not archives.
    pub(super) fn of(media_type: &str) -> Option<Self> {
        if media_type.contains("tar+gzip") || media_type.contains("tar.gzip") {
            Some(Compression::Gzip)
        } else if media_type.ends_with(".tar") || media_type.ends_with("+tar") {
            Some(Compression::Plain)
        } else {
            None
        }
    }
}

/// Unpacks the tar in `blob` into `stage`, the staging directory of the export's `target`, and
/// returns the paths its entries named, relative to `target`, in entry order. Entries are checked
/// against what `target` already holds and what earlier layers left in `stage`.
pub(super) fn extract(
    blob: impl Read,
    blob_path: &Path,
    compression: Compression,
    stage: &Path,
    target: &Path,
    limits: ExtractLimits,
) -> Result<Vec<String>> {
    match compression {
        Compression::Plain => extract_from(BufReader::new(blob), blob_path, stage, target, limits),
        Compression::Gzip => {
            extract_from(MultiGzDecoder::new(blob), blob_path, stage, target, limits)
        }
    }
}

/// [`extract`] from the decompressed tar stream.
fn extract_from(
    reader: impl Read,
    blob_path: &Path,
    stage: &Path,
    target: &Path,
    limits: ExtractLimits,
) -> Result<Vec<String>> {
    let exceeded = Rc::new(Cell::new(false));
    let mut archive = tar::Archive::new(Capped {
        inner: reader,
        remaining: limits.max_total_bytes,
        exceeded: Rc::clone(&exceeded),
    });
    let staging = tempfile::Builder::new()
        .prefix(&temp_prefix())
        .tempdir_in(stage)
        .map_err(|e| Error::io("failed to create staging directory in", stage, e))?;
    let mut extraction = Extraction {
        staging,
        nodes: HashMap::new(),
        listed: Vec::new(),
        blob_path,
        max_entry_bytes: limits.max_entry_bytes,
    };

    let read_error = |e: io::Error, at: Option<&str>| {
        if exceeded.get() {
            let at = at.map_or_else(
                || "before its first entry".to_owned(),
                |n| format!("at entry {n}"),
            );
            Error::Unsafe(format!(
                "archive exceeds the limit of {} bytes in total {at}",
                limits.max_total_bytes
            ))
        } else {
            Error::io("failed to read archive", blob_path, e)
        }
    };
    let mut last: Option<String> = None;
    let mut count = 0u64;
    for entry in archive.entries().map_err(|e| read_error(e, None))? {
        let entry = entry.map_err(|e| read_error(e, last.as_deref()))?;
        let name = display_name(&entry.path_bytes());
        count += 1;
        if count > limits.max_entries {
            return Err(Error::Unsafe(format!(
                "archive exceeds the limit of {} entries at entry {name}",
                limits.max_entries
            )));
        }
        extraction.add(entry, &name).map_err(|e| match e {
            Error::Io { source, .. } if exceeded.get() => read_error(source, Some(&name)),
            e => e,
        })?;
        last = Some(name);
    }
    extraction.check_target(target)?;
    extraction.check_target(stage)?;
    extraction.commit(stage)
}

/// Counts the bytes read from `inner` and fails once more than `remaining` were read.
struct Capped<R> {
    inner: R,
    remaining: u64,
    exceeded: Rc<Cell<bool>>,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.remaining.checked_sub(n as u64) {
            Some(rest) => {
                self.remaining = rest;
                Ok(n)
            }
            None => {
                self.exceeded.set(true);
                Err(io::Error::other("archive size limit exceeded"))
            }
        }
    }
}

/// What a path in the staging directory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink,
}

/// A path created in the staging directory.
#[derive(Debug)]
struct Node {
    kind: Kind,
    /// Whether an entry named this path (rather than it being an implied parent directory).
    listed: bool,
}

/// An archive being unpacked into its staging directory.
struct Extraction<'a> {
    staging: TempDir,
    /// Every path created in staging, keyed by its `/`-joined relative path.
    nodes: HashMap<String, Node>,
    /// Paths named by entries, in the order of their first entry.
    listed: Vec<String>,
    blob_path: &'a Path,
    max_entry_bytes: u64,
}

impl Extraction<'_> {
    fn add<R: Read>(&mut self, mut entry: tar::Entry<'_, R>, name: &str) -> Result<()> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            // Archive-wide metadata (`git archive` writes one), not a file.
            return Ok(());
        }
        let raw = entry.path_bytes();
        // Old archives mark directories only by a trailing slash.
        let is_dir =
            kind == EntryType::Directory || (kind == EntryType::Regular && raw.ends_with(b"/"));
        let key = normalize(&raw)
            .map_err(|bad| bad.into_error(&format!("archive entry {name}"), "escapes destination"))?
            .join("/");
        drop(raw);
        if key.is_empty() {
            return if is_dir {
                Ok(())
            } else {
                Err(Error::Unsafe(format!(
                    "archive entry {name} has no file name"
                )))
            };
        }
        if is_dir {
            return self.add_dir(&key, name);
        }
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                let mode = entry
                    .header()
                    .mode()
                    .map_err(|e| Error::io("failed to read archive", self.blob_path, e))?;
                self.add_file(&mut entry, &key, mode & 0o777 & !0o022, name)
            }
            EntryType::Symlink => {
                let target = link_target(&entry);
                self.add_symlink(&key, &target, name)
            }
            EntryType::Link => {
                let target = link_target(&entry);
                self.add_hard_link(&key, &target, name)
            }
            other => Err(Error::Unsafe(format!(
                "archive entry {name} is {}, which is not supported",
                describe(other)
            ))),
        }
    }

    fn add_dir(&mut self, key: &str, name: &str) -> Result<()> {
        self.ensure_parents(key, name)?;
        match self.kind(key) {
            Some(Kind::Dir) => {}
            Some(Kind::File) => {
                return Err(Error::Unsafe(format!(
                    "archive entry {name} conflicts with file {key}"
                )));
            }
            Some(Kind::Symlink) => {
                return Err(Error::Unsafe(format!(
                    "archive entry {name} would be written through symlink {key}"
                )));
            }
            None => {
                let path = self.path(key);
                dir_builder()
                    .create(&path)
                    .map_err(|e| Error::io("failed to create directory", path, e))?;
            }
        }
        self.record(key, Kind::Dir);
        Ok(())
    }

    fn add_file(&mut self, data: &mut impl Read, key: &str, mode: u32, name: &str) -> Result<()> {
        self.ensure_parents(key, name)?;
        self.clear(key, name)?;
        let path = self.path(key);
        let file =
            create_file(&path, mode).map_err(|e| Error::io("failed to create file", &path, e))?;
        let mut writer = BufWriter::with_capacity(1 << 16, file);
        let cap = self.max_entry_bytes;
        let copied = io::copy(&mut data.take(cap.saturating_add(1)), &mut writer)
            .and_then(|n| writer.flush().map(|()| n))
            .map_err(|e| Error::io("failed to extract archive entry to", &path, e))?;
        if copied > cap {
            return Err(Error::Unsafe(format!(
                "archive entry {name} exceeds the limit of {cap} bytes per entry"
            )));
        }
        self.record(key, Kind::File);
        Ok(())
    }

    fn add_symlink(&mut self, key: &str, target: &[u8], name: &str) -> Result<()> {
        self.ensure_parents(key, name)?;
        let shown = display_name(target);
        let target = self.checked_symlink_target(key, target).map_err(|bad| {
            let subject = format!("archive entry {name}: symlink target {shown}");
            bad.into_error(&subject, "is outside the destination")
        })?;
        self.clear(key, name)?;
        let path = self.path(key);
        symlink(target, &path).map_err(|e| Error::io("failed to create symlink", path, e))?;
        self.record(key, Kind::Symlink);
        Ok(())
    }

    fn add_hard_link(&mut self, key: &str, target: &[u8], name: &str) -> Result<()> {
        let shown = display_name(target);
        let target_key = normalize(target)
            .map_err(|bad| {
                let subject = format!("archive entry {name}: hard link target {shown}");
                bad.into_error(&subject, "is outside the destination")
            })?
            .join("/");
        if target_key == key || self.kind(&target_key) != Some(Kind::File) {
            return Err(Error::Unsafe(format!(
                "archive entry {name}: hard link target {shown} is not an earlier regular file"
            )));
        }
        self.ensure_parents(key, name)?;
        self.clear(key, name)?;
        let (from, to) = (self.path(&target_key), self.path(key));
        fs::hard_link(&from, &to).map_err(|e| Error::io("failed to create hard link", to, e))?;
        self.record(key, Kind::File);
        Ok(())
    }

    /// Checks a symlink target: relative, and resolving inside the root when `..` only leaves
    /// directories of the archive (the link's own parents are such directories).
    fn checked_symlink_target<'t>(&self, key: &str, target: &'t [u8]) -> Result<&'t str, BadPath> {
        let text = checked_text(target)?;
        let mut stack: Vec<&str> = key.split('/').collect();
        stack.pop();
        for part in text.split('/') {
            match part {
                "" | "." => {}
                ".." => {
                    if stack.is_empty() {
                        return Err(BadPath::Outside);
                    }
                    if self.kind(&stack.join("/")) != Some(Kind::Dir) {
                        return Err(BadPath::Invalid(
                            "climbs out of a path that is not a directory of the archive",
                        ));
                    }
                    stack.pop();
                }
                part => stack.push(part),
            }
        }
        Ok(text)
    }

    /// Creates the missing parent directories of `key`, refusing parents that are files or links.
    fn ensure_parents(&mut self, key: &str, name: &str) -> Result<()> {
        for (end, _) in key.match_indices('/') {
            let dir = &key[..end];
            match self.kind(dir) {
                Some(Kind::Dir) => {}
                Some(Kind::File) => {
                    return Err(Error::Unsafe(format!(
                        "archive entry {name} conflicts with file {dir}"
                    )));
                }
                Some(Kind::Symlink) => {
                    return Err(Error::Unsafe(format!(
                        "archive entry {name} would be written through symlink {dir}"
                    )));
                }
                None => {
                    let path = self.path(dir);
                    dir_builder()
                        .create(&path)
                        .map_err(|e| Error::io("failed to create directory", path, e))?;
                    self.nodes.insert(
                        dir.to_owned(),
                        Node {
                            kind: Kind::Dir,
                            listed: false,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Removes an earlier file or link at `key`; an earlier directory is a conflict.
    fn clear(&self, key: &str, name: &str) -> Result<()> {
        match self.kind(key) {
            None => Ok(()),
            Some(Kind::Dir) => Err(Error::Unsafe(format!(
                "archive entry {name} would replace directory {key}"
            ))),
            Some(Kind::File | Kind::Symlink) => {
                let path = self.path(key);
                fs::remove_file(&path).map_err(|e| Error::io("failed to remove", path, e))
            }
        }
    }

    fn record(&mut self, key: &str, kind: Kind) {
        let node = self.nodes.entry(key.to_owned()).or_insert(Node {
            kind,
            listed: false,
        });
        node.kind = kind;
        if !node.listed {
            node.listed = true;
            self.listed.push(key.to_owned());
        }
    }

    fn kind(&self, key: &str) -> Option<Kind> {
        self.nodes.get(key).map(|n| n.kind)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.staging.path().join(key)
    }

    /// Finds conflicts with what already exists in `target` before anything is moved there.
    fn check_target(&self, target: &Path) -> Result<()> {
        let mut dirs: HashSet<&str> = HashSet::new();
        for key in &self.listed {
            for (end, _) in key.match_indices('/') {
                let dir = &key[..end];
                if dirs.contains(dir) {
                    continue;
                }
                match file_type(&target.join(dir))? {
                    Some(t) if t.is_symlink() => {
                        return Err(Error::Unsafe(format!(
                            "archive entry {key} would be written through symlink {dir}"
                        )));
                    }
                    Some(t) if !t.is_dir() => {
                        return Err(Error::Unsafe(format!(
                            "archive entry {key} conflicts with file {dir}"
                        )));
                    }
                    _ => {
                        dirs.insert(dir);
                    }
                }
            }
            let Some(existing) = file_type(&target.join(key))? else {
                continue;
            };
            match self.kind(key) {
                Some(Kind::Dir) if existing.is_symlink() => {
                    return Err(Error::Unsafe(format!(
                        "archive entry {key} would be written through symlink {key}"
                    )));
                }
                Some(Kind::Dir) if !existing.is_dir() => {
                    return Err(Error::Unsafe(format!(
                        "archive entry {key} conflicts with file {key}"
                    )));
                }
                Some(Kind::File | Kind::Symlink) if existing.is_dir() => {
                    return Err(Error::Unsafe(format!(
                        "archive entry {key} would replace directory {key}"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Moves the staged entries into `target`: directories are created or merged, files and links
    /// are renamed over whatever is there.
    fn commit(self, target: &Path) -> Result<Vec<String>> {
        for key in &self.listed {
            let dest = target.join(key);
            if self.kind(key) == Some(Kind::Dir) {
                create_dir_all(&dest)?;
                continue;
            }
            if let Some(parent) = dest.parent() {
                create_dir_all(parent)?;
            }
            fs::rename(self.path(key), &dest)
                .map_err(|e| Error::io("failed to move into place", &dest, e))?;
        }
        let Extraction {
            staging, listed, ..
        } = self;
        let staging_path = staging.path().to_path_buf();
        staging
            .close()
            .map_err(|e| Error::io("failed to remove staging directory", staging_path, e))?;
        Ok(listed)
    }
}

/// Why a path from an archive was refused.
#[derive(Debug)]
enum BadPath {
    /// Not a usable path, with the reason (`contains a backslash`).
    Invalid(&'static str),
    /// Absolute, or climbing above the root.
    Outside,
}

impl BadPath {
    /// The error for `subject` (`archive entry x`), worded `outside` when the path leaves the root.
    fn into_error(self, subject: &str, outside: &str) -> Error {
        let reason = match self {
            BadPath::Invalid(why) => why,
            BadPath::Outside => outside,
        };
        Error::Unsafe(format!("{subject} {reason}"))
    }
}

/// Splits an archive path into its components, resolving `.` and `..` lexically.
fn normalize(raw: &[u8]) -> Result<Vec<&str>, BadPath> {
    let text = checked_text(raw)?;
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop().ok_or(BadPath::Outside)?;
            }
            part => parts.push(part),
        }
    }
    Ok(parts)
}

/// The path as text if it has no NUL, backslash, root or drive prefix.
fn checked_text(raw: &[u8]) -> Result<&str, BadPath> {
    let text = std::str::from_utf8(raw).map_err(|_| BadPath::Invalid("is not valid UTF-8"))?;
    if text.is_empty() {
        return Err(BadPath::Invalid("is empty"));
    }
    if text.contains('\0') {
        return Err(BadPath::Invalid("contains a NUL byte"));
    }
    if text.contains('\\') {
        return Err(BadPath::Invalid("contains a backslash"));
    }
    let bytes = text.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if text.starts_with('/') || drive {
        return Err(BadPath::Outside);
    }
    Ok(text)
}

/// The link target of a symlink or hard link entry (empty if it has none).
fn link_target<R: Read>(entry: &tar::Entry<'_, R>) -> Vec<u8> {
    entry
        .link_name_bytes()
        .map(|t| t.into_owned())
        .unwrap_or_default()
}

/// An archive name for messages: lossy UTF-8 with control characters escaped.
fn display_name(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw)
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The kind of an unsupported entry, for messages.
fn describe(kind: EntryType) -> String {
    match kind {
        EntryType::Char => "a character device".to_owned(),
        EntryType::Block => "a block device".to_owned(),
        EntryType::Fifo => "a FIFO".to_owned(),
        EntryType::GNUSparse => "a sparse file".to_owned(),
        other => format!("of type {:?}", char::from(other.as_byte())),
    }
}

/// Creates a new file (never opening an existing one) with `mode` (minus the umask) on unix.
fn create_file(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Creates the symlink `link` pointing at `target`.
#[cfg(unix)]
fn symlink(target: &str, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn symlink(_target: &str, _link: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "symlinks in archives are only extracted on unix",
    ))
}
