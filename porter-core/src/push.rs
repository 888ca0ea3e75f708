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
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::artifact::{ArtifactResult, ZERO_TIME};
use crate::cache::{FileStamp, OciLayout, Recorded, Records, stamp_time};
use crate::digest::Digest;
use crate::engine::Porter;
use crate::error::{Error, Result, blocking};
use crate::export::pack::{HashWriter, archive_dir};
use crate::manifest::{ANNOTATION_TITLE, Descriptor, DescriptorPlatform, OCI_INDEX, OCI_MANIFEST};
use crate::manifest_file::{
    ARCHIVE_MEDIA_TYPE, BINARY_MEDIA_TYPE, INDEX_ARTIFACT_TYPE, ReleaseEntry, ReleaseManifest,
};
use crate::platform::Platform;
use crate::progress::Progress;
use crate::publish::{
    self, Blob, BlobSource, Document, EMPTY_CONFIG, ImageIndex, ImageManifest, Publication, Target,
};
use crate::reference::ArtifactRef;
use crate::registry::Remote;
use crate::signature::{CosignSigningKey, SigningKey, cosign, ds};

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
    /// Upload in chunks of this many bytes (else `settings.porter.chunk_size`).
    pub chunk_size: Option<u64>,
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
            chunk_size: None,
        })
    }

    /// Whether the typed reference named a tag or digest (else `latest` is implied).
    fn explicit_identifier(&self) -> bool {
        let last = self.original.rsplit('/').next().unwrap_or_default();
        last.contains(':') || last.contains('@')
    }
}

/// A layer whose digest may not be known yet (a file to hash while it is uploaded).
struct Prepared {
    entry: ReleaseEntry,
    file: PathBuf,
    digest: Option<Digest>,
    size: u64,
    title: String,
    /// The file's stamp and when it was taken, to remember its digest by.
    stamp: Option<(FileStamp, i128)>,
    _temp: Option<tempfile::TempPath>,
}

impl Prepared {
    /// The layer, once its digest is known.
    fn known(self) -> Result<Layer> {
        let digest = self.digest.clone().ok_or_else(|| {
            Error::Internal(format!("no digest computed for {}", self.file.display()))
        })?;
        Ok(self.with_digest(digest))
    }

    fn with_digest(self, digest: Digest) -> Layer {
        Layer {
            entry: self.entry,
            file: self.file,
            digest,
            size: self.size,
            title: self.title,
            _temp: self._temp,
        }
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
    document: Document,
}

impl Porter {
    /// Pushes `request.source` to `request.target` and returns the `ArtifactResult` of the index.
    pub async fn push(
        &self,
        request: &PushRequest,
        progress: &dyn Progress,
    ) -> Result<ArtifactResult> {
        // Short references resolve against Registry.Default, as pulls resolve them.
        let target = match &request.target {
            ArtifactRef::Layout(_) => request.target.clone(),
            ArtifactRef::Registry(_) => self.resolve(&request.original, request.insecure)?,
        };
        let source = request.source.clone();
        let release = blocking("reading the release", move || load_release(&source)).await?;
        let epoch = source_date_epoch()?;
        let created = created_annotation(epoch);
        let keys = self.push_keys(request, &release).await?;
        let mut settings = self.settings().clone();
        if let Some(chunk) = request.chunk_size {
            settings.chunk_size = Some(chunk);
        }
        let entries = release.entries.clone();
        let records = self.cache().records();
        // A file whose digest is not known yet is hashed while it is uploaded (one pass), unless
        // a pinned digest must be checked first or the target is a layout.
        let stream_new = matches!(&target, ArtifactRef::Registry(r) if r.digest.is_none());
        let prepared: Vec<Prepared> = {
            let records = records.clone();
            blocking("preparing the layers", move || {
                entries
                    .into_iter()
                    .map(|e| prepare_layer(e, epoch, &records, stream_new))
                    .collect()
            })
            .await?
        };
        let layers = match &target {
            ArtifactRef::Registry(r) if prepared.iter().any(|p| p.digest.is_none()) => {
                let remote = Remote::upstream_only(&settings, r, request.insecure);
                upload_unhashed(&remote, prepared, &records, progress).await?
            }
            _ => prepared
                .into_iter()
                .map(Prepared::known)
                .collect::<Result<_>>()?,
        };
        let built: Vec<Built> = layers
            .iter()
            .map(|l| build_manifest(l, &created, keys.layers.as_ref()))
            .collect::<Result<_>>()?;
        let index = build_index(&release, &layers, &built, &created)?;
        let (tag, pinned) = match &target {
            ArtifactRef::Registry(r) => (r.tag.as_deref(), r.digest.as_ref()),
            ArtifactRef::Layout(l) => (l.tag.as_deref(), l.digest.as_ref()),
        };
        // Checked before anything is uploaded.
        let identifiers = publish::identifiers(
            &request.original,
            tag,
            pinned,
            &index.digest,
            request.tag_latest,
        )?;
        let mut blobs = vec![Blob::memory(Bytes::from_static(EMPTY_CONFIG))];
        blobs.extend(layers.iter().map(|l| Blob {
            digest: l.digest.clone(),
            size: l.size,
            source: BlobSource::File(l.file.clone()),
        }));
        let publication = Publication {
            blobs,
            manifests: built.iter().map(|b| b.document.clone()).collect(),
            root: index.clone(),
            identifiers,
        };
        // A cosign signature names the repository (a layout has none: its directory).
        let (destination, mount_from, signed_name) = match &target {
            ArtifactRef::Registry(r) => (
                Target::Registry(Remote::upstream_only(&settings, r, request.insecure)),
                self.mount_sources(r),
                format!("{}/{}", r.registry, r.repository),
            ),
            ArtifactRef::Layout(l) => (
                Target::Layout(open_layout(&l.dir)?),
                Vec::new(),
                l.dir.display().to_string(),
            ),
        };
        let known = publish::Known {
            mount_from,
            records: Some(records),
        };
        // Made before anything is uploaded, so a key that cannot sign fails the push at once.
        let cosign = match &keys.cosign {
            Some(key) => Some(cosign::sign(key, &signed_name, &index.digest)?),
            None => None,
        };
        publish::publish(&destination, &publication, &known, progress).await?;
        if let Some(sig) = cosign {
            let signature = Publication {
                blobs: vec![
                    Blob::memory(Bytes::from(sig.config.clone())),
                    Blob::memory(Bytes::from(sig.payload.clone())),
                ],
                manifests: Vec::new(),
                root: Document {
                    digest: sig.manifest_digest(),
                    bytes: Bytes::from(sig.manifest.clone()),
                    media_type: OCI_MANIFEST,
                    artifact_type: None,
                },
                identifiers: vec![sig.tag.clone()],
            };
            publish::publish(&destination, &signature, &known, progress).await?;
            tracing::info!(tag = %sig.tag, key_id = %sig.key_id, "pushed the cosign signature");
        }
        for m in &built {
            tracing::info!(platform = %m.platform, digest = %m.document.digest, "pushed");
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
            metadata.insert(
                format!("manifest.{}", m.platform),
                m.document.digest.to_string(),
            );
        }
        if let Some(key) = &keys.layers {
            metadata.insert("signature.key.id".into(), key.key_id().to_owned());
        }
        if let Some(key) = &keys.cosign {
            metadata.insert("cosign.key.id".into(), key.key_id().to_owned());
            metadata.insert(
                "cosign.signature".into(),
                cosign::signature_tag(&index.digest),
            );
        }
        Ok(ArtifactResult {
            id: index.digest.short_id().to_owned(),
            reference,
            digest: index.digest.to_string(),
            size: index.bytes.len() as i64,
            local_path: String::new(),
            metadata,
            plugin_info: None,
            cached: false,
            cached_at: ZERO_TIME.to_owned(),
            exported_files: Vec::new(),
            offline: false,
            ..ArtifactResult::default()
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
        blocking("loading the signing keys", move || {
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
pub(crate) fn open_layout(dir: &Path) -> Result<OciLayout> {
    OciLayout::create(dir).map_err(|e| Error::Context {
        context: "cannot open OCI layout",
        source: Box::new(e),
    })
}

impl Porter {
    /// Other repositories of the target's registry this cache pulled from: where a blob we
    /// hold locally can be mounted from instead of uploaded.
    pub(crate) fn mount_sources(&self, target: &crate::reference::RegistryRef) -> Vec<String> {
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

/// Files at least this big whose digest is unknown are hashed while they are uploaded; smaller
/// ones are hashed first and sent in one request.
const STREAM_MIN: u64 = 1024 * 1024;

/// Archives a directory into a temp file, or finds a file's digest: from the cache's record when
/// the file has not changed since, else by hashing it, unless `stream_new` leaves that to the
/// upload.
fn prepare_layer(
    entry: ReleaseEntry,
    epoch: Option<i64>,
    records: &Records,
    stream_new: bool,
) -> Result<Prepared> {
    let name = entry
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "artifact".into());
    if entry.is_dir {
        let (temp, digest, size) = archive_dir(&entry.path, epoch.unwrap_or(0).max(0) as u64)?;
        return Ok(Prepared {
            file: temp.to_path_buf(),
            digest: Some(digest),
            size,
            title: format!("{name}.tar.gz"),
            entry,
            stamp: None,
            _temp: Some(temp),
        });
    }
    let path = std::fs::canonicalize(&entry.path)
        .map_err(|e| Error::io("failed to open", &entry.path, e))?;
    let mut file = File::open(&path).map_err(|e| Error::io("failed to open", &entry.path, e))?;
    let taken = stamp_time();
    let metadata = file
        .metadata()
        .map_err(|e| Error::io("failed to read", &entry.path, e))?;
    let stamp = FileStamp::of(&metadata);
    let size = metadata.len();
    let mut prepared = Prepared {
        file: path.clone(),
        digest: None,
        size,
        title: name,
        entry,
        stamp: stamp.map(|s| (s, taken)),
        _temp: None,
    };
    let recorded = stamp.map_or(Recorded::Unknown, |s| records.file_digest(&path, &s));
    if let Recorded::Trusted(digest) = recorded {
        tracing::debug!(file = %path.display(), %digest, "digest from the cache's record (file unchanged)");
        prepared.digest = Some(digest);
        return Ok(prepared);
    }
    // A file pushed before is hashed first: the registry may have it, or a mount may.
    if stream_new && size >= STREAM_MIN && recorded == Recorded::Unknown {
        return Ok(prepared);
    }
    let mut hasher = HashWriter::new(io::sink());
    io::copy(&mut file, &mut hasher)
        .map_err(|e| Error::io("failed to read", &prepared.entry.path, e))?;
    let (digest, hashed) = hasher.finish();
    if hashed != size {
        return Err(changed(&prepared.entry.path));
    }
    remember(records, &prepared, &digest)?;
    prepared.digest = Some(digest);
    Ok(prepared)
}

/// The error for a file that changed while it was read.
fn changed(path: &Path) -> Error {
    Error::InvalidInput(format!(
        "{} changed while it was read; push it again once it is written",
        path.display()
    ))
}

/// Records the digest of a file read whole, when it did not change while it was read (it is
/// refused otherwise).
fn remember(records: &Records, prepared: &Prepared, digest: &Digest) -> Result<()> {
    let Some((before, taken)) = prepared.stamp else {
        return Ok(());
    };
    let after = std::fs::metadata(&prepared.file)
        .ok()
        .as_ref()
        .and_then(FileStamp::of);
    if after != Some(before) {
        return Err(changed(&prepared.entry.path));
    }
    if let Err(e) = records.remember_file(&prepared.file, &before, digest, taken) {
        tracing::debug!("file digest not recorded: {e}");
    }
    Ok(())
}

/// Uploads the files whose digest is unknown, hashing them on the way (each path once), and
/// returns every layer with its digest.
async fn upload_unhashed(
    remote: &Remote,
    prepared: Vec<Prepared>,
    records: &Records,
    progress: &dyn Progress,
) -> Result<Vec<Layer>> {
    let mut files: Vec<(PathBuf, u64)> = Vec::new();
    for p in prepared.iter().filter(|p| p.digest.is_none()) {
        if !files.iter().any(|(f, _)| *f == p.file) {
            files.push((p.file.clone(), p.size));
        }
    }
    let digests = publish::upload_new_files(remote, &files, progress).await?;
    let mut layers = Vec::with_capacity(prepared.len());
    for p in prepared {
        let digest = match &p.digest {
            Some(d) => d.clone(),
            None => {
                let i = files.iter().position(|(f, _)| *f == p.file).unwrap_or(0);
                let digest = digests[i].clone();
                remember(records, &p, &digest)?;
                digest
            }
        };
        layers.push(p.with_digest(digest));
    }
    Ok(layers)
}

fn build_manifest(layer: &Layer, created: &str, signing_key: Option<&SigningKey>) -> Result<Built> {
    let mut layers = vec![Descriptor {
        media_type: layer.entry.media_type.clone(),
        digest: layer.digest.clone(),
        size: layer.size,
        annotations: BTreeMap::from([(ANNOTATION_TITLE.to_owned(), layer.title.clone())]),
        platform: None,
        artifact_type: None,
    }];
    if let Some(key) = signing_key {
        ds::sign_layers(&mut layers, key)?;
    }
    let manifest = ImageManifest::new(
        Some(layer.entry.media_type.clone()),
        layers,
        BTreeMap::from([(ANNOTATION_CREATED.to_owned(), created.to_owned())]),
    );
    Ok(Built {
        platform: layer.entry.platform.clone(),
        document: manifest.document()?,
    })
}

fn build_index(
    release: &ReleaseManifest,
    layers: &[Layer],
    built: &[Built],
    created: &str,
) -> Result<Document> {
    let manifests = layers
        .iter()
        .zip(built)
        .map(|(layer, m)| {
            let p = &layer.entry.platform;
            let mut annotations = BTreeMap::from([
                (ANNOTATION_CREATED.to_owned(), created.to_owned()),
                ("architecture".to_owned(), p.arch.clone()),
                ("os".to_owned(), p.os.clone()),
            ]);
            if let Some(v) = &p.variant {
                annotations.insert("variant".into(), v.clone());
            }
            Descriptor {
                annotations,
                platform: Some(DescriptorPlatform {
                    os: p.os.clone(),
                    architecture: p.arch.clone(),
                    variant: p.variant.clone(),
                }),
                artifact_type: Some(layer.entry.media_type.clone()),
                ..m.document.descriptor()
            }
        })
        .collect();
    ImageIndex {
        schema_version: 2,
        media_type: OCI_INDEX,
        artifact_type: Some(release.artifact_type.clone()),
        manifests,
        annotations: release.annotations.clone(),
    }
    .document()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_follows_source_date_epoch() {
        assert_eq!(
            created_annotation(Some(1_704_067_200)),
            "2024-01-01T00:00:00Z"
        );
    }
}
