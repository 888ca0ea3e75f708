//! Pushing: a binary, a directory (as a deterministic tar+gzip layer) or a `ds.manifest.yaml`
//! release becomes one OCI manifest per platform under an OCI image index, in exactly the shape
//! DS's `plugin install` understands (ds-contract §7.11).
//!
//! Inputs are validated before anything is uploaded; files stream from disk; blobs the registry
//! already has are skipped; `SOURCE_DATE_EPOCH` fixes the `created` annotations (and archive
//! mtimes) so the same inputs give the same digests. The target may also be an OCI image layout
//! (`oci:<dir>:<tag>`) for air-gapped transfers.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::artifact::{ArtifactResult, ZERO_TIME};
use crate::cache::Cache;
use crate::digest::Digest;
use crate::engine::Porter;
use crate::error::{Error, Result};
use crate::manifest::{ANNOTATION_TITLE, Descriptor, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use crate::manifest_file::{
    ARCHIVE_MEDIA_TYPE, BINARY_MEDIA_TYPE, INDEX_ARTIFACT_TYPE, ReleaseEntry, ReleaseManifest,
};
use crate::platform::Platform;
use crate::progress::Progress;
use crate::reference::ArtifactRef;
use crate::registry::Remote;
use crate::signature::{CosignSigningKey, SigningKey, cosign, ds};

const EMPTY_CONFIG: &[u8] = b"{}";
const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";

/// What to push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushSource {
    /// A file (a binary, or a `.yaml`/`.yml` release manifest) or a directory.
    Path(PathBuf),
    /// A release manifest given explicitly (`--manifest`).
    Manifest(PathBuf),
}

/// A push, validated before any upload.
#[derive(Debug, Clone)]
pub struct PushRequest {
    /// The reference as typed.
    pub original: String,
    /// Where to push.
    pub target: ArtifactRef,
    /// What to push.
    pub source: PushSource,
    /// Allow plain HTTP to the target registry.
    pub insecure: bool,
    /// Also tag `latest` (when the tag is another one).
    pub tag_latest: bool,
    /// Sign every layer with this RSA key (DS's scheme); else the release manifest's
    /// `signing-key`, else `settings.porter.signing_key`.
    pub sign_key: Option<PathBuf>,
    /// Also push a cosign signature of the index made with this key.
    pub cosign_key: Option<PathBuf>,
}

impl PushRequest {
    /// Parses the target reference.
    pub fn new(source: PushSource, reference: &str) -> Result<Self> {
        if reference.trim().is_empty() {
            return Err(Error::InvalidInput("artifact reference required".into()));
        }
        Ok(PushRequest {
            original: reference.trim().to_owned(),
            target: reference.parse()?,
            source,
            insecure: false,
            tag_latest: true,
            sign_key: None,
            cosign_key: None,
        })
    }

    /// Whether the typed reference named a tag or digest (else `latest` is implied).
    fn explicit_identifier(&self) -> bool {
        let last = self.original.rsplit('/').next().unwrap_or_default();
        last.contains(':') || last.contains('@')
    }
}

/// A layer ready to upload.
struct Layer {
    entry: ReleaseEntry,
    file: PathBuf,
    digest: Digest,
    size: u64,
    title: String,
    /// Keeps a temporary archive alive until the upload finished.
    _temp: Option<tempfile::TempPath>,
}

/// A built manifest.
struct Built {
    platform: Platform,
    bytes: Bytes,
    digest: Digest,
}

impl Porter {
    /// Pushes `request.source` to `request.target` and returns the `ArtifactResult` of the index.
    pub async fn push(
        &self,
        request: &PushRequest,
        progress: &dyn Progress,
    ) -> Result<ArtifactResult> {
        let source = request.source.clone();
        let release = blocking(move || load_release(&source)).await?;
        let epoch = source_date_epoch()?;
        let created = created_annotation(epoch);
        let entries = release.entries.clone();
        let layers: Vec<Layer> = blocking(move || {
            entries
                .into_iter()
                .map(|e| prepare_layer(e, epoch))
                .collect()
        })
        .await?;
        let config_digest = Digest::of(EMPTY_CONFIG);
        let keys = self.push_keys(request, &release).await?;

        let built: Vec<Built> = layers
            .iter()
            .map(|l| build_manifest(l, &config_digest, &created, keys.layers.as_ref()))
            .collect::<Result<_>>()?;
        let index = build_index(&release, &layers, &built, &created);
        let index_digest = Digest::of(&index);

        match &request.target {
            ArtifactRef::Registry(r) => {
                let remote = Remote::new(self.settings(), r, request.insecure)?;
                remote.prepare_push().await?;
                let mut uploaded: Vec<Digest> = Vec::new();
                if !remote.has_blob(&config_digest).await? {
                    remote
                        .upload_bytes(&config_digest, Bytes::from_static(EMPTY_CONFIG))
                        .await?;
                }
                let mount_sources = self.mount_sources(r);
                for layer in &layers {
                    if uploaded.contains(&layer.digest) || remote.has_blob(&layer.digest).await? {
                        tracing::debug!(digest = %layer.digest, "blob already in the registry");
                        progress.blob_done(&layer.digest, true);
                        continue;
                    }
                    if self.cache().has_blob(&layer.digest, layer.size)
                        && mount(&remote, &mount_sources, &layer.digest).await
                    {
                        uploaded.push(layer.digest.clone());
                        progress.blob_done(&layer.digest, true);
                        continue;
                    }
                    remote
                        .upload_file(&layer.file, &layer.digest, layer.size, progress)
                        .await?;
                    uploaded.push(layer.digest.clone());
                }
                for m in &built {
                    remote
                        .put_manifest(&m.digest.to_string(), m.bytes.clone(), OCI_MANIFEST)
                        .await?;
                    tracing::info!(platform = %m.platform, digest = %m.digest, "pushed");
                }
                for identifier in
                    identifiers(request, r.tag.as_deref(), r.digest.as_ref(), &index_digest)?
                {
                    remote
                        .put_manifest(&identifier, Bytes::from(index.clone()), OCI_INDEX)
                        .await?;
                }
                if let Some(key) = &keys.cosign {
                    let repository = format!("{}/{}", r.registry, r.repository);
                    let sig = cosign::sign(key, &repository, &index_digest)?;
                    for blob in [&sig.config, &sig.payload] {
                        let digest = Digest::of(blob);
                        if !remote.has_blob(&digest).await? {
                            remote
                                .upload_bytes(&digest, Bytes::from(blob.clone()))
                                .await?;
                        }
                    }
                    remote
                        .put_manifest(&sig.tag, Bytes::from(sig.manifest.clone()), OCI_MANIFEST)
                        .await?;
                    tracing::info!(tag = %sig.tag, key_id = %sig.key_id, "pushed the cosign signature");
                }
            }
            ArtifactRef::Layout(l) => {
                let target = open_layout(&l.dir)?;
                target.put_blob(&config_digest, EMPTY_CONFIG)?;
                for layer in &layers {
                    let copied = target
                        .import_file(&layer.file, &layer.digest, layer.size)
                        .await?;
                    progress.blob_done(&layer.digest, !copied);
                }
                for m in &built {
                    target.put_blob(&m.digest, &m.bytes)?;
                }
                target.put_blob(&index_digest, &index)?;
                let desc = Descriptor {
                    media_type: OCI_INDEX.into(),
                    digest: index_digest.clone(),
                    size: index.len() as u64,
                    artifact_type: Some(release.artifact_type.clone()),
                    platform: None,
                    annotations: BTreeMap::new(),
                };
                if let Some(d) = &l.digest
                    && *d != index_digest
                {
                    return Err(Error::DigestMismatch {
                        context: format!("push to {}", request.original),
                        expected: d.to_string(),
                        found: index_digest.to_string(),
                    });
                }
                target.tag(l.tag.as_deref().unwrap_or("latest"), &desc)?;
                if let Some(key) = &keys.cosign {
                    // A layout has no repository name; the payload names the layout directory.
                    let sig = cosign::sign(key, &l.dir.display().to_string(), &index_digest)?;
                    target.put_blob(&sig.config_digest(), &sig.config)?;
                    target.put_blob(&sig.payload_digest(), &sig.payload)?;
                    target.put_blob(&sig.manifest_digest(), &sig.manifest)?;
                    let desc = Descriptor {
                        media_type: OCI_MANIFEST.into(),
                        digest: sig.manifest_digest(),
                        size: sig.manifest.len() as u64,
                        artifact_type: None,
                        platform: None,
                        annotations: BTreeMap::new(),
                    };
                    target.tag(&sig.tag, &desc)?;
                }
            }
        }

        let reference = if request.explicit_identifier() {
            request.original.clone()
        } else {
            format!("{}:latest", request.original)
        };
        let mut metadata = release.annotations.clone();
        metadata.insert("artifact.type".into(), release.artifact_type.clone());
        metadata.insert("pushed.reference".into(), reference.clone());
        if reference != request.original {
            metadata.insert("requested.reference".into(), request.original.clone());
        }
        for m in &built {
            metadata.insert(format!("manifest.{}", m.platform), m.digest.to_string());
        }
        if let Some(key) = &keys.layers {
            metadata.insert("signature.key.id".into(), key.key_id().to_owned());
        }
        if let Some(key) = &keys.cosign {
            metadata.insert("cosign.key.id".into(), key.key_id().to_owned());
            metadata.insert(
                "cosign.signature".into(),
                cosign::signature_tag(&index_digest),
            );
        }
        Ok(ArtifactResult {
            id: index_digest.short_id().to_owned(),
            reference,
            digest: index_digest.to_string(),
            size: index.len() as i64,
            local_path: String::new(),
            metadata,
            plugin_info: None,
            cached: false,
            cached_at: ZERO_TIME.to_owned(),
            exported_files: Vec::new(),
            offline: false,
            signatures: Vec::new(),
        })
    }
}

/// The keys a push signs with, loaded before anything is uploaded.
struct PushKeys {
    /// Signs every layer (DS's scheme).
    layers: Option<SigningKey>,
    /// Signs the index cosign-style.
    cosign: Option<CosignSigningKey>,
}

impl Porter {
    /// Loads the push's keys: the layer key from the request, else the release manifest, else
    /// `settings.porter.signing_key`; the cosign key from the request (an encrypted cosign key
    /// is decrypted with `COSIGN_PASSWORD`, as cosign does).
    async fn push_keys(
        &self,
        request: &PushRequest,
        release: &ReleaseManifest,
    ) -> Result<PushKeys> {
        let layer_key = request
            .sign_key
            .clone()
            .or_else(|| release.signing_key.clone())
            .or_else(|| self.settings().signing_key.clone());
        let cosign_key = request.cosign_key.clone();
        blocking(move || {
            let home = crate::config::home_dir();
            let layers = layer_key
                .map(|p| SigningKey::load(&crate::signature::expand_home(&p, &home)))
                .transpose()?;
            let password = std::env::var("COSIGN_PASSWORD").ok();
            let cosign = cosign_key
                .map(|p| {
                    CosignSigningKey::load(
                        &crate::signature::expand_home(&p, &home),
                        password.as_deref(),
                    )
                })
                .transpose()?;
            Ok(PushKeys { layers, cosign })
        })
        .await
    }
}

/// Opens the OCI image layout a push writes to, creating it when missing.
fn open_layout(dir: &Path) -> Result<Cache> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io("cannot create OCI layout directory", dir, e))?;
    Cache::open(dir).map_err(|e| Error::Context {
        context: "cannot open OCI layout",
        source: Box::new(e),
    })
}

/// Most repositories a blob mount is tried from before uploading.
const MAX_MOUNT_SOURCES: usize = 3;

impl Porter {
    /// Other repositories of the target's registry this cache pulled from: where a blob we
    /// hold locally can be mounted from instead of uploaded.
    fn mount_sources(&self, target: &crate::reference::RegistryRef) -> Vec<String> {
        let mut repos: Vec<String> = Vec::new();
        for name in self.cache().names().unwrap_or_default() {
            if let Ok(ArtifactRef::Registry(r)) = name.parse::<ArtifactRef>()
                && crate::config::same_registry(&r.registry, &target.registry)
                && r.repository != target.repository
                && !repos.contains(&r.repository)
            {
                repos.push(r.repository);
            }
        }
        repos
    }
}

/// Tries to mount `digest` from each candidate repository; `true` once one succeeds.
async fn mount(remote: &Remote, sources: &[String], digest: &Digest) -> bool {
    for repo in sources.iter().take(MAX_MOUNT_SOURCES) {
        if remote.mount_from(repo, digest).await {
            tracing::debug!(%digest, from = %repo, "blob mounted from another repository");
            return true;
        }
    }
    false
}

/// The tags (or the digest) the index is stored under.
fn identifiers(
    request: &PushRequest,
    tag: Option<&str>,
    digest: Option<&Digest>,
    index: &Digest,
) -> Result<Vec<String>> {
    if let Some(d) = digest {
        if d != index {
            return Err(Error::DigestMismatch {
                context: format!("push to {}", request.original),
                expected: d.to_string(),
                found: index.to_string(),
            });
        }
        return Ok(vec![d.to_string()]);
    }
    let tag = tag.unwrap_or("latest").to_owned();
    let mut out = vec![tag.clone()];
    if request.tag_latest && tag != "latest" {
        out.push("latest".into());
    }
    Ok(out)
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::InvalidInput(format!("push preparation failed: {e}")))?
}

/// Turns the push source into a validated release.
fn load_release(source: &PushSource) -> Result<ReleaseManifest> {
    let path = match source {
        PushSource::Manifest(p) => return ReleaseManifest::load(p),
        PushSource::Path(p) => p,
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    let meta = std::fs::metadata(&abs).map_err(|e| Error::io("failed to access", &abs, e))?;
    let is_yaml = abs
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if meta.is_file() && is_yaml {
        return ReleaseManifest::load(&abs);
    }
    if !meta.is_file() && !meta.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is neither a file nor a directory",
            abs.display()
        )));
    }
    let media_type = if meta.is_dir() {
        ARCHIVE_MEDIA_TYPE
    } else {
        BINARY_MEDIA_TYPE
    };
    Ok(ReleaseManifest {
        artifact_type: INDEX_ARTIFACT_TYPE.into(),
        annotations: BTreeMap::new(),
        signing_key: None,
        entries: vec![ReleaseEntry {
            platform: Platform::host(),
            path: abs,
            media_type: media_type.into(),
            is_dir: meta.is_dir(),
        }],
    })
}

fn source_date_epoch() -> Result<Option<i64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => v.trim().parse::<i64>().map(Some).map_err(|_| {
            Error::InvalidInput(format!(
                "SOURCE_DATE_EPOCH {v:?} is not a number of seconds"
            ))
        }),
        _ => Ok(None),
    }
}

fn created_annotation(epoch: Option<i64>) -> String {
    let time = match epoch.and_then(|s| chrono::DateTime::from_timestamp(s, 0)) {
        Some(t) => t,
        None => chrono::Utc::now(),
    };
    time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Hashes a file, or archives a directory into a temp file, giving the layer to upload.
fn prepare_layer(entry: ReleaseEntry, epoch: Option<i64>) -> Result<Layer> {
    let name = entry
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "artifact".into());
    if entry.is_dir {
        let (temp, digest, size) = archive_dir(&entry.path, epoch.unwrap_or(0).max(0) as u64)?;
        return Ok(Layer {
            file: temp.to_path_buf(),
            digest,
            size,
            title: format!("{name}.tar.gz"),
            entry,
            _temp: Some(temp),
        });
    }
    let mut file =
        File::open(&entry.path).map_err(|e| Error::io("failed to open", &entry.path, e))?;
    let mut hasher = HashWriter::new(io::sink());
    io::copy(&mut file, &mut hasher).map_err(|e| Error::io("failed to read", &entry.path, e))?;
    let (digest, size) = hasher.finish();
    Ok(Layer {
        file: entry.path.clone(),
        digest,
        size,
        title: name,
        entry,
        _temp: None,
    })
}

/// Counts and hashes what passes through.
struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }
    fn finish(self) -> (Digest, u64) {
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
fn archive_dir(dir: &Path, mtime: u64) -> Result<(tempfile::TempPath, Digest, u64)> {
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

fn build_manifest(
    layer: &Layer,
    config: &Digest,
    created: &str,
    signing_key: Option<&SigningKey>,
) -> Result<Built> {
    let mut layers = [Descriptor {
        media_type: layer.entry.media_type.clone(),
        digest: layer.digest.clone(),
        size: layer.size,
        artifact_type: None,
        platform: None,
        annotations: BTreeMap::from([(ANNOTATION_TITLE.to_owned(), layer.title.clone())]),
    }];
    if let Some(key) = signing_key {
        ds::sign_layers(&mut layers, key)?;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": layer.entry.media_type,
        "config": {"mediaType": OCI_EMPTY, "digest": config.to_string(), "size": EMPTY_CONFIG.len(), "data": "e30="},
        "layers": layers,
        "annotations": {ANNOTATION_CREATED: created},
    });
    let bytes = Bytes::from(serde_json::to_vec(&manifest).unwrap_or_default());
    Ok(Built {
        platform: layer.entry.platform.clone(),
        digest: Digest::of(&bytes),
        bytes,
    })
}

fn build_index(
    release: &ReleaseManifest,
    layers: &[Layer],
    built: &[Built],
    created: &str,
) -> Vec<u8> {
    let manifests: Vec<Value> = layers
        .iter()
        .zip(built)
        .map(|(layer, m)| {
            let p = &layer.entry.platform;
            let mut annotations = BTreeMap::from([
                (ANNOTATION_CREATED.to_owned(), created.to_owned()),
                ("architecture".to_owned(), p.arch.clone()),
                ("os".to_owned(), p.os.clone()),
            ]);
            let mut platform = json!({"architecture": p.arch, "os": p.os});
            if let Some(v) = &p.variant {
                annotations.insert("variant".into(), v.clone());
                platform["variant"] = json!(v);
            }
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": m.digest.to_string(),
                "size": m.bytes.len(),
                "annotations": annotations,
                "platform": platform,
                "artifactType": layer.entry.media_type,
            })
        })
        .collect();
    let mut index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "artifactType": release.artifact_type,
        "manifests": manifests,
    });
    if !release.annotations.is_empty() {
        index["annotations"] = json!(release.annotations);
    }
    serde_json::to_vec(&index).unwrap_or_default()
}

#[cfg(test)]
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

    #[test]
    fn created_follows_source_date_epoch() {
        assert_eq!(
            created_annotation(Some(1_704_067_200)),
            "2024-01-01T00:00:00Z"
        );
    }
}
