//! Layer contents for fixtures: binaries, deterministic tar+gzip archives (hostile ones too), and
//! reproducible pseudo-random data.

use flate2::Compression;
use flate2::write::GzEncoder;

/// Media type of a single-binary layer pushed by ds-porter.
pub const BINARY_MEDIA_TYPE: &str = "application/vnd.delivery-station.artifact.v1+binary";
/// Media type of a directory layer pushed by ds-porter (tar+gzip).
pub const ARCHIVE_MEDIA_TYPE: &str =
    "application/vnd.delivery-station.artifact.v1+archive.tar+gzip";
/// Media type of porter's own release binaries (`ds.manifest.yaml`).
pub const PLUGIN_BINARY_MEDIA_TYPE: &str = "application/vnd.delivery-station.plugin.v1+binary";
/// Layer media type of a Docker v2 image.
pub const DOCKER_LAYER_MEDIA_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Modification time of every archive entry (2024-01-01T00:00:00Z), so archives are reproducible.
const ARCHIVE_MTIME: u64 = 1_704_067_200;

/// One layer of a fixture manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerSpec {
    /// Descriptor media type.
    pub media_type: String,
    /// `org.opencontainers.image.title` annotation; `None` leaves the layer without annotations.
    pub title: Option<String>,
    /// Blob contents.
    pub data: Vec<u8>,
}

/// One entry of a fixture archive. Names and link targets are written verbatim (no
/// normalisation, no `..` check), so hostile archives can be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TarEntry {
    /// A directory.
    Dir {
        /// Entry name, e.g. `bin/`.
        path: String,
        /// Permission bits.
        mode: u32,
    },
    /// A regular file.
    File {
        /// Entry name.
        path: String,
        /// Permission bits.
        mode: u32,
        /// Contents.
        contents: Vec<u8>,
    },
    /// A symbolic link.
    Symlink {
        /// Entry name.
        path: String,
        /// Link target, e.g. `/tmp`.
        target: String,
    },
    /// A hard link.
    Hardlink {
        /// Entry name.
        path: String,
        /// Name of the linked entry.
        target: String,
    },
}

impl LayerSpec {
    /// A binary layer (`…artifact.v1+binary`) titled `title`.
    pub fn binary(title: &str, data: impl Into<Vec<u8>>) -> Self {
        Self {
            media_type: BINARY_MEDIA_TYPE.to_owned(),
            title: Some(title.to_owned()),
            data: data.into(),
        }
    }

    /// A binary layer without a title annotation.
    pub fn untitled(data: impl Into<Vec<u8>>) -> Self {
        Self {
            media_type: BINARY_MEDIA_TYPE.to_owned(),
            title: None,
            data: data.into(),
        }
    }

    /// A tar+gzip layer (`…artifact.v1+archive.tar+gzip`, untitled): first the directories
    /// (mode 0755), then the files as `(path, mode, contents)`, in the order given.
    pub fn targz(files: &[(&str, u32, &[u8])], dirs: &[&str]) -> Self {
        let entries: Vec<TarEntry> = dirs
            .iter()
            .map(|path| TarEntry::Dir {
                path: (*path).to_owned(),
                mode: 0o755,
            })
            .chain(files.iter().map(|(path, mode, contents)| TarEntry::File {
                path: (*path).to_owned(),
                mode: *mode,
                contents: contents.to_vec(),
            }))
            .collect();
        Self::targz_entries(&entries)
    }

    /// A tar+gzip layer (`…artifact.v1+archive.tar+gzip`, untitled) holding `entries` verbatim.
    pub fn targz_entries(entries: &[TarEntry]) -> Self {
        Self {
            media_type: ARCHIVE_MEDIA_TYPE.to_owned(),
            title: None,
            data: tar_gz(entries),
        }
    }

    /// A binary layer of `len` pseudo-random bytes, the same for the same `seed` in every run
    /// (the bytes [`crate::publish_large`] streams for a layer seeded alike).
    pub fn pseudo_random(title: &str, seed: u64, len: usize) -> Self {
        let source = PseudoRandom::new(seed);
        let mut data = Vec::with_capacity(len);
        let mut index = 0;
        while data.len() < len {
            let piece = source.piece(index, len - data.len());
            data.extend_from_slice(&piece);
            index += 1;
        }
        Self::binary(title, data)
    }

    /// This layer with the title annotation set.
    pub fn with_title(mut self, title: &str) -> Self {
        self.title = Some(title.to_owned());
        self
    }

    /// This layer with another media type.
    pub fn with_media_type(mut self, media_type: &str) -> Self {
        self.media_type = media_type.to_owned();
        self
    }
}

/// A deterministic tar+gzip archive: ustar headers, uid/gid 0, fixed mtime, gzip header without
/// name or time.
fn tar_gz(entries: &[TarEntry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for entry in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(ARCHIVE_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        let (path, contents): (&str, &[u8]) = match entry {
            TarEntry::Dir { path, mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                (path, &[])
            }
            TarEntry::File {
                path,
                mode,
                contents,
            } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                (path, contents)
            }
            TarEntry::Symlink { path, target } => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_mode(0o777);
                write_field(&mut header.as_old_mut().linkname, target);
                (path, &[])
            }
            TarEntry::Hardlink { path, target } => {
                header.set_entry_type(tar::EntryType::Link);
                header.set_mode(0o644);
                write_field(&mut header.as_old_mut().linkname, target);
                (path, &[])
            }
        };
        write_field(&mut header.as_old_mut().name, path);
        header.set_size(contents.len() as u64);
        header.set_cksum();
        builder
            .append(&header, contents)
            .expect("append to an in-memory tar");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish an in-memory tar.gz")
}

/// Writes `value` into a NUL-padded header field.
fn write_field(field: &mut [u8; 100], value: &str) {
    assert!(
        value.len() <= field.len(),
        "fixture archive names are limited to {} bytes: {value:?}",
        field.len()
    );
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
}

/// Reproducible incompressible-looking data, cheap to make even in an unoptimised test build:
/// one [`PseudoRandom::PIECE`]-sized block from [`XorShift`], repeated, with each repetition's
/// first 8 bytes XORed with its index so no two pieces are equal.
#[derive(Debug, Clone)]
pub(crate) struct PseudoRandom {
    block: Vec<u8>,
}

impl PseudoRandom {
    /// Size of one piece.
    pub(crate) const PIECE: usize = 1024 * 1024;

    pub(crate) fn new(seed: u64) -> Self {
        let mut block = vec![0; Self::PIECE];
        XorShift::new(seed).fill(&mut block);
        Self { block }
    }

    /// Piece `index`, cut to at most `max_len` bytes.
    pub(crate) fn piece(&self, index: u64, max_len: usize) -> Vec<u8> {
        let mut piece = self.block[..max_len.min(Self::PIECE)].to_vec();
        for (byte, salt) in piece.iter_mut().zip(index.to_le_bytes()) {
            *byte ^= salt;
        }
        piece
    }
}

/// xorshift64*: fast, reproducible, not cryptographic.
#[derive(Debug, Clone)]
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let last = self.next_u64().to_le_bytes();
            rest.copy_from_slice(&last[..rest.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn archives_are_reproducible_and_keep_hostile_names() {
        let entries = [
            TarEntry::Dir {
                path: "bin/".into(),
                mode: 0o755,
            },
            TarEntry::File {
                path: "../evil".into(),
                mode: 0o644,
                contents: b"x".to_vec(),
            },
            TarEntry::Symlink {
                path: "l".into(),
                target: "/tmp".into(),
            },
        ];
        let a = LayerSpec::targz_entries(&entries);
        assert_eq!(a, LayerSpec::targz_entries(&entries));
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(a.data.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<(String, Option<String>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8(l.to_vec()).unwrap());
                (name, link)
            })
            .collect();
        assert_eq!(
            names,
            [
                ("bin/".to_owned(), None),
                ("../evil".to_owned(), None),
                ("l".to_owned(), Some("/tmp".to_owned())),
            ]
        );
    }

    #[test]
    fn pseudo_random_data_depends_only_on_the_seed() {
        let a = LayerSpec::pseudo_random("a", 7, 1001);
        assert_eq!(a.data, LayerSpec::pseudo_random("a", 7, 1001).data);
        assert_ne!(a.data, LayerSpec::pseudo_random("a", 8, 1001).data);
        let long = LayerSpec::pseudo_random("a", 7, 2 * PseudoRandom::PIECE + 3).data;
        assert_eq!(long[..1001], a.data);
        assert_ne!(
            long[..PseudoRandom::PIECE],
            long[PseudoRandom::PIECE..2 * PseudoRandom::PIECE]
        );
    }
}
