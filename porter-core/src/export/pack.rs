//! Packing a directory into a layer: a deterministic tar+gzip archive (sorted entries, fixed
//! mtimes, no owners, permissions kept, symlinks stored and never followed), hashed while it is
//! written. Extraction, the other direction, is `archive`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::error::{Error, Result};

/// Counts and hashes what passes through.
pub(crate) struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }
    pub(crate) fn finish(self) -> (Digest, u64) {
        (Digest::from_hasher(self.hasher), self.len)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Archives `dir` deterministically: sorted entries, fixed mtimes, no owners; symlinks are stored
/// as links and never followed; permissions kept; anything else is refused by name.
pub(crate) fn archive_dir(dir: &Path, mtime: u64) -> Result<(tempfile::TempPath, Digest, u64)> {
    let temp = tempfile::Builder::new()
        .prefix("ds-porter-archive-")
        .suffix(".tar.gz")
        .tempfile()
        .map_err(|e| Error::io("failed to create temp archive in", std::env::temp_dir(), e))?;
    let (file, path) = temp.into_parts();
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(HashWriter::new(file), flate2::Compression::default());
    let mut builder = tar::Builder::new(gz);
    builder.follow_symlinks(false);
    append_tree(&mut builder, dir, Path::new(""), mtime)?;
    let gz = builder
        .into_inner()
        .map_err(|e| Error::io("failed to write archive", &*path, e))?;
    let hashing = gz
        .finish()
        .map_err(|e| Error::io("failed to write archive", &*path, e))?;
    let (digest, size) = hashing.finish();
    Ok((path, digest, size))
}

fn append_tree<W: Write>(
    builder: &mut tar::Builder<W>,
    root: &Path,
    rel: &Path,
    mtime: u64,
) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io("failed to read directory", &dir, e))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(|e| Error::io("failed to read directory", &dir, e))?;
    names.sort();
    for name in names {
        let rel_path = rel.join(&name);
        let full = root.join(&rel_path);
        if rel_path.to_str().is_none() {
            return Err(Error::InvalidInput(format!(
                "cannot archive {}: the name is not UTF-8",
                full.display()
            )));
        }
        let meta =
            std::fs::symlink_metadata(&full).map_err(|e| Error::io("failed to stat", &full, e))?;
        let mut header = tar::Header::new_gnu();
        header.set_mtime(mtime);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(permissions(&meta));
        let io_err = |e| Error::io("failed to archive", &full, e);
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(&full).map_err(io_err)?;
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            builder
                .append_link(&mut header, &rel_path, &target)
                .map_err(io_err)?;
        } else if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder
                .append_data(&mut header, &rel_path, io::empty())
                .map_err(io_err)?;
            append_tree(builder, root, &rel_path, mtime)?;
        } else if meta.is_file() {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(meta.len());
            let file = File::open(&full).map_err(io_err)?;
            builder
                .append_data(&mut header, &rel_path, file.take(meta.len()))
                .map_err(io_err)?;
        } else {
            return Err(Error::InvalidInput(format!(
                "cannot archive {}: not a regular file, directory or symlink",
                full.display()
            )));
        }
    }
    Ok(())
}

#[cfg(unix)]
fn permissions(meta: &std::fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn permissions(meta: &std::fs::Metadata) -> u32 {
    if meta.is_dir() { 0o755 } else { 0o644 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn directory_archives_are_deterministic_and_keep_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        std::fs::write(dir.path().join("bin/tool"), b"#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("link")).unwrap();
        let (a, da, _) = archive_dir(dir.path(), 0).unwrap();
        let (b, db, _) = archive_dir(dir.path(), 0).unwrap();
        assert_eq!(da, db);
        let (_, dc, _) = archive_dir(dir.path(), 1).unwrap();
        assert_ne!(da, dc, "mtime is part of the archive");
        let gz = flate2::read::GzDecoder::new(File::open(&a).unwrap());
        let mut archive = tar::Archive::new(gz);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let kind = entry.header().entry_type();
            names.push((entry.path().unwrap().display().to_string(), kind));
        }
        assert_eq!(names[0].0, "bin");
        assert_eq!(names[1].0, "bin/tool");
        #[cfg(unix)]
        assert_eq!(names[2], ("link".to_owned(), tar::EntryType::Symlink));
        drop(b);
    }
}
