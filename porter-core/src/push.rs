//! Pushing: a binary, a directory (as a deterministic tar+gzip layer) or a `ds.manifest.yaml`
//! release becomes one OCI manifest per platform under an OCI image index, in exactly the shape
//! DS's `plugin install` understands (ds-contract §7.11).
//!
//! Inputs are validated before anything is uploaded; files stream from disk; blobs the registry
//! already has are skipped; `SOURCE_DATE_EPOCH` fixes the `created` annotations (and archive
//! mtimes) so the same inputs give the same digests. The target may also be an OCI image layout
//! (`oci:<dir>:<tag>`) for air-gapped transfers. A dry run ([`Porter::plan_push`]) builds the
//! same documents and stops before the publish.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Serialize;

use crate::artifact::ArtifactResult;
use crate::cache::{FileStamp, OciLayout, Recorded, Records, stamp_time};
use crate::config::Settings;
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
    /// A file or directory pushed as it is, never read as a release manifest, whatever its name.
    Plain(PathBuf),
    /// A release manifest given explicitly (`--manifest`).
    Manifest(PathBuf),
}

impl PushSource {
    /// Whether this source is read as a release manifest, which names its own platforms and
    /// media types: `Manifest`, or a `Path` ending in `.yaml`/`.yml` that is not a directory.
    pub fn is_release(&self) -> bool {
        match self {
            PushSource::Manifest(_) => true,
            PushSource::Plain(_) => false,
            PushSource::Path(p) => is_yaml_name(p) && !p.is_dir(),
        }
    }
}

/// Whether the file name ends in `.yaml`/`.yml` (any case).
fn is_yaml_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"))
}

/// Parses a `KEY=VALUE` annotation: split at the first `=`; the key must be non-empty and free of
/// whitespace and control characters, the value may be empty. `what` names it in the error.
pub fn parse_annotation(what: &str, text: &str) -> Result<(String, String)> {
    let invalid = |reason: &str| {
        Error::InvalidInput(format!(
            "invalid {what} {text:?}: {reason}, expected KEY=VALUE"
        ))
    };
    let (key, value) = text.split_once('=').ok_or_else(|| invalid("no '='"))?;
    if key.is_empty() {
        return Err(invalid("empty key"));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("the key contains whitespace or control characters"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Parses a media type or artifact type (`type/subtype`); `what` names it in the error.
pub fn parse_media_type(what: &str, text: &str) -> Result<String> {
    crate::manifest_file::validate_media_type(text)
        .map_err(|reason| Error::InvalidInput(format!("invalid {what} {text:?}: {reason}")))?;
    Ok(text.to_owned())
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
    /// The platform of a single file or directory (else this machine's). A release names its
    /// own platforms: giving one for a release is refused.
    pub platform: Option<Platform>,
    /// Index annotations, added to the release's (a key given here wins).
    pub annotations: BTreeMap<String, String>,
    /// Annotations of every platform manifest, added to `org.opencontainers.image.created`
    /// (a key given here wins).
    pub manifest_annotations: BTreeMap<String, String>,
    /// The `artifactType` of the index and of every manifest (else the release's for the
    /// index, and each layer's media type for its manifest).
    pub artifact_type: Option<String>,
    /// The layer media type of a single file or directory (else by kind). Refused for a
    /// release, which names its own.
    pub media_type: Option<String>,
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
            platform: None,
            annotations: BTreeMap::new(),
            manifest_annotations: BTreeMap::new(),
            artifact_type: None,
            media_type: None,
        })
    }

    /// Refuses what only a single file or directory can be given (a platform, a layer media
    /// type) when the source is a release, which names its own.
    pub fn check(&self) -> Result<()> {
        if !self.source.is_release() {
            return Ok(());
        }
        let path = match &self.source {
            PushSource::Path(p) | PushSource::Plain(p) | PushSource::Manifest(p) => p,
        };
        let given = match (&self.platform, &self.media_type) {
            (Some(_), _) => "a platform",
            (None, Some(_)) => "a layer media type",
            (None, None) => return Ok(()),
        };
        Err(Error::InvalidInput(format!(
            "{given} cannot be given for the release manifest {}: it names its own platforms \
             and media types",
            path.display()
        )))
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

/// Everything a push publishes, built and checked before anything is sent (a dry run stops
/// here).
struct Build {
    target: ArtifactRef,
    release: ReleaseManifest,
    layers: Vec<Layer>,
    built: Vec<Built>,
    index: Document,
    identifiers: Vec<String>,
    keys: PushKeys,
    /// The cosign signature of the index, when a cosign key was given.
    cosign: Option<cosign::SignatureArtifact>,
    settings: Settings,
    records: Records,
    /// `SOURCE_DATE_EPOCH`, when set.
    epoch: Option<i64>,
}

/// What a push would publish, reported by [`Porter::plan_push`] (`push --dry-run`).
#[derive(Debug, Clone, Serialize)]
pub struct PushPlan {
    /// The reference a push would report (`:latest` appended when it is implied).
    pub reference: String,
    /// The identifiers the index would be stored under: tags, or the pinned digest.
    pub tags: Vec<String>,
    /// The index's digest.
    pub digest: String,
    /// The index's size in bytes.
    pub size: u64,
    /// The index document, as it would be sent.
    pub index: serde_json::Value,
    /// One entry per platform, in index order.
    pub manifests: Vec<PlannedManifest>,
    /// The `metadata` a push's result would hold.
    pub metadata: BTreeMap<String, String>,
}

/// One platform's manifest in a [`PushPlan`].
#[derive(Debug, Clone, Serialize)]
pub struct PlannedManifest {
    /// `os/arch[/variant]`.
    pub platform: String,
    /// The manifest's digest.
    pub digest: String,
    /// The manifest's size in bytes.
    pub size: u64,
    /// The manifest document, as it would be sent.
    pub manifest: serde_json::Value,
    /// Its layers.
    pub layers: Vec<PlannedLayer>,
}

/// One layer in a [`PushPlan`].
#[derive(Debug, Clone, Serialize)]
pub struct PlannedLayer {
    /// The file or directory the layer is made of.
    pub path: String,
    /// Its `org.opencontainers.image.title`.
    pub title: String,
    /// Its media type.
    pub media_type: String,
    /// Its digest.
    pub digest: String,
    /// Its size in bytes.
    pub size: u64,
}

impl Porter {
    /// Pushes `request.source` to `request.target` and returns the `ArtifactResult` of the index.
    pub async fn push(
        &self,
        request: &PushRequest,
        progress: &dyn Progress,
    ) -> Result<ArtifactResult> {
        let build = self.build_push(request, Some(progress)).await?;
        let mut blobs = vec![Blob::memory(Bytes::from_static(EMPTY_CONFIG))];
        blobs.extend(build.layers.iter().map(|l| Blob {
            digest: l.digest.clone(),
            size: l.size,
            source: BlobSource::File(l.file.clone()),
        }));
        let publication = Publication {
            blobs,
            manifests: build.built.iter().map(|b| b.document.clone()).collect(),
            root: build.index.clone(),
            identifiers: build.identifiers.clone(),
        };
        let (destination, mount_from) = match &build.target {
            ArtifactRef::Registry(r) => (
                Target::Registry(Remote::upstream_only(&build.settings, r, request.insecure)),
                self.mount_sources(r),
            ),
            ArtifactRef::Layout(l) => (Target::Layout(open_layout(&l.dir)?), Vec::new()),
        };
        let known = publish::Known {
            mount_from,
            records: Some(build.records.clone()),
        };
        publish::publish(&destination, &publication, &known, progress).await?;
        if let Some(sig) = &build.cosign {
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
        for m in &build.built {
            tracing::info!(platform = %m.platform, digest = %m.document.digest, "pushed");
        }
        let (reference, metadata) = result_metadata(request, &build);
        Ok(ArtifactResult::pushed(
            reference,
            &build.index.digest,
            build.index.bytes.len(),
            metadata,
        ))
    }

    /// Does everything a push does before its first request — checks the request, reads and
    /// hashes the files, signs, builds the manifests and the index — and reports the result. It
    /// contacts no registry and writes no layout; only the digests of the files it hashed are
    /// remembered. With the same inputs and `SOURCE_DATE_EPOCH` a push gives the same digests.
    pub async fn plan_push(&self, request: &PushRequest) -> Result<PushPlan> {
        let build = self.build_push(request, None).await?;
        if build.epoch.is_none() {
            tracing::warn!(
                "SOURCE_DATE_EPOCH is not set: the created annotations hold the current time, \
                 so a push in another second gives other digests"
            );
        }
        let json = |doc: &Document| {
            serde_json::from_slice::<serde_json::Value>(&doc.bytes)
                .map_err(|e| Error::Internal(format!("cannot read back a built document: {e}")))
        };
        let manifests = build
            .layers
            .iter()
            .zip(&build.built)
            .map(|(layer, m)| {
                Ok(PlannedManifest {
                    platform: m.platform.to_string(),
                    digest: m.document.digest.to_string(),
                    size: m.document.bytes.len() as u64,
                    manifest: json(&m.document)?,
                    layers: vec![PlannedLayer {
                        path: layer.entry.path.display().to_string(),
                        title: layer.title.clone(),
                        media_type: layer.entry.media_type.clone(),
                        digest: layer.digest.to_string(),
                        size: layer.size,
                    }],
                })
            })
            .collect::<Result<_>>()?;
        let (reference, metadata) = result_metadata(request, &build);
        Ok(PushPlan {
            reference,
            tags: build.identifiers.clone(),
            digest: build.index.digest.to_string(),
            size: build.index.bytes.len() as u64,
            index: json(&build.index)?,
            manifests,
            metadata,
        })
    }

    /// Reads, hashes, signs and builds everything `request` publishes. With `upload`, files
    /// whose digest is not known yet are uploaded to a registry target while they are hashed
    /// (one pass); without it (a dry run) every file is hashed here and nothing is sent.
    async fn build_push(
        &self,
        request: &PushRequest,
        upload: Option<&dyn Progress>,
    ) -> Result<Build> {
        request.check()?;
        // Short references resolve against Registry.Default, as pulls resolve them.
        let target = match &request.target {
            ArtifactRef::Layout(_) => request.target.clone(),
            ArtifactRef::Registry(_) => self.resolve(&request.original, request.insecure)?,
        };
        let source = request.source.clone();
        let (platform, media_type) = (request.platform.clone(), request.media_type.clone());
        let mut release = blocking("reading the release", move || {
            load_release(&source, platform, media_type)
        })
        .await?;
        if let Some(t) = &request.artifact_type {
            release.artifact_type = t.clone();
        }
        release.annotations.extend(request.annotations.clone());
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
        let stream_new =
            upload.is_some() && matches!(&target, ArtifactRef::Registry(r) if r.digest.is_none());
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
        let layers = match (&target, upload) {
            (ArtifactRef::Registry(r), Some(progress))
                if prepared.iter().any(|p| p.digest.is_none()) =>
            {
                let remote = Remote::upstream_only(&settings, r, request.insecure);
                upload_unhashed(&remote, prepared, &records, progress).await?
            }
            _ => prepared
                .into_iter()
                .map(Prepared::known)
                .collect::<Result<_>>()?,
        };
        let mut manifest_annotations =
            BTreeMap::from([(ANNOTATION_CREATED.to_owned(), created.clone())]);
        manifest_annotations.extend(request.manifest_annotations.clone());
        let built: Vec<Built> = layers
            .iter()
            .map(|l| {
                build_manifest(
                    l,
                    &manifest_annotations,
                    request.artifact_type.as_deref(),
                    keys.layers.as_ref(),
                )
            })
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
        // A cosign signature names the repository (a layout has none: its directory). Made
        // before anything is uploaded, so a key that cannot sign fails the push at once.
        let signed_name = match &target {
            ArtifactRef::Registry(r) => format!("{}/{}", r.registry, r.repository),
            ArtifactRef::Layout(l) => l.dir.display().to_string(),
        };
        let cosign = match &keys.cosign {
            Some(key) => Some(cosign::sign(key, &signed_name, &index.digest)?),
            None => None,
        };
        Ok(Build {
            target,
            release,
            layers,
            built,
            index,
            identifiers,
            keys,
            cosign,
            settings,
            records,
            epoch,
        })
    }
}

/// The reference a push reports and its result's `metadata`: the index annotations,
/// `artifact.type`, `pushed.reference`, `requested.reference` (when `:latest` was implied),
/// `manifest.<platform>` and the signing keys' ids.
fn result_metadata(request: &PushRequest, build: &Build) -> (String, BTreeMap<String, String>) {
    let reference = if request.explicit_identifier() {
        request.original.clone()
    } else {
        format!("{}:latest", request.original)
    };
    let mut metadata = build.release.annotations.clone();
    metadata.insert("artifact.type".into(), build.release.artifact_type.clone());
    metadata.insert("pushed.reference".into(), reference.clone());
    if reference != request.original {
        metadata.insert("requested.reference".into(), request.original.clone());
    }
    for m in &build.built {
        metadata.insert(
            format!("manifest.{}", m.platform),
            m.document.digest.to_string(),
        );
    }
    if let Some(key) = &build.keys.layers {
        metadata.insert("signature.key.id".into(), key.key_id().to_owned());
    }
    if let Some(key) = &build.keys.cosign {
        metadata.insert("cosign.key.id".into(), key.key_id().to_owned());
        metadata.insert(
            "cosign.signature".into(),
            cosign::signature_tag(&build.index.digest),
        );
    }
    (reference, metadata)
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

/// Turns the push source into a validated release; `platform` and `media_type` apply to a
/// single file or directory ([`PushRequest::check`] refused them for a release).
fn load_release(
    source: &PushSource,
    platform: Option<Platform>,
    media_type: Option<String>,
) -> Result<ReleaseManifest> {
    let (path, plain) = match source {
        PushSource::Manifest(p) => return ReleaseManifest::load(p),
        PushSource::Path(p) => (p, false),
        PushSource::Plain(p) => (p, true),
    };
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    let meta = std::fs::metadata(&abs).map_err(|e| Error::io("failed to access", &abs, e))?;
    if meta.is_file() && !plain && is_yaml_name(&abs) {
        return ReleaseManifest::load(&abs);
    }
    if !meta.is_file() && !meta.is_dir() {
        return Err(Error::InvalidInput(format!(
            "{} is neither a file nor a directory",
            abs.display()
        )));
    }
    let media_type = media_type.unwrap_or_else(|| {
        if meta.is_dir() {
            ARCHIVE_MEDIA_TYPE
        } else {
            BINARY_MEDIA_TYPE
        }
        .to_owned()
    });
    Ok(ReleaseManifest {
        artifact_type: INDEX_ARTIFACT_TYPE.into(),
        annotations: BTreeMap::new(),
        signing_key: None,
        entries: vec![ReleaseEntry {
            platform: platform.unwrap_or_else(Platform::host),
            path: abs,
            media_type,
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

/// One platform's manifest: the layer (signed with `signing_key`), `annotations`, and
/// `artifact_type` (else the layer's media type).
fn build_manifest(
    layer: &Layer,
    annotations: &BTreeMap<String, String>,
    artifact_type: Option<&str>,
    signing_key: Option<&SigningKey>,
) -> Result<Built> {
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
        Some(artifact_type.unwrap_or(&layer.entry.media_type).to_owned()),
        layers,
        annotations.clone(),
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn annotations_split_at_the_first_equals_and_need_a_key() {
        assert_eq!(
            parse_annotation("--annotation", "a.b=c=d").unwrap(),
            ("a.b".to_owned(), "c=d".to_owned())
        );
        assert_eq!(
            parse_annotation("--annotation", "k=").unwrap(),
            ("k".to_owned(), String::new())
        );
        for (bad, reason) in [
            ("novalue", "no '='"),
            ("=v", "empty key"),
            ("a key=v", "whitespace"),
        ] {
            let err = parse_annotation("--annotation", bad)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("--annotation {bad:?}")) && err.contains(reason),
                "{err}"
            );
        }
    }

    #[test]
    fn media_types_must_be_type_slash_subtype() {
        assert!(parse_media_type("--media-type", "application/vnd.x+json").is_ok());
        for bad in ["plain", "text/", "/plain", "a b/c"] {
            let err = parse_media_type("--media-type", bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains(&format!("--media-type {bad:?}")), "{err}");
        }
    }

    #[test]
    fn a_yaml_path_is_a_release_unless_plain_or_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("config.YML");
        std::fs::write(&yaml, "manifests: []\n").unwrap();
        let yaml_dir = dir.path().join("tree.yaml");
        std::fs::create_dir(&yaml_dir).unwrap();
        assert!(PushSource::Path(yaml.clone()).is_release());
        assert!(!PushSource::Plain(yaml.clone()).is_release());
        assert!(!PushSource::Path(yaml_dir).is_release());
        assert!(!PushSource::Path(dir.path().join("tool")).is_release());

        // Read plainly, the YAML file is one layer with the given platform and media type.
        let platform: Platform = "linux/arm64".parse().unwrap();
        let release = load_release(
            &PushSource::Plain(yaml.clone()),
            Some(platform.clone()),
            Some("application/yaml".into()),
        )
        .unwrap();
        assert_eq!(release.entries.len(), 1);
        assert_eq!(release.entries[0].platform, platform);
        assert_eq!(release.entries[0].media_type, "application/yaml");
        assert!(!release.entries[0].is_dir);
    }

    #[test]
    fn a_release_refuses_a_platform_and_a_media_type() {
        let mut request = PushRequest::new(
            PushSource::Manifest("ds.manifest.yaml".into()),
            "r.io/a/b:1",
        )
        .unwrap();
        assert!(request.check().is_ok());
        request.media_type = Some("text/plain".into());
        let err = request.check().unwrap_err().to_string();
        assert!(err.contains("a layer media type"), "{err}");
        request.media_type = None;
        request.platform = Some("linux/arm64".parse().unwrap());
        let err = request.check().unwrap_err().to_string();
        assert!(err.contains("a platform"), "{err}");
        request.source = PushSource::Plain("ds.manifest.yaml".into());
        assert!(request.check().is_ok());
    }

    #[test]
    fn created_follows_source_date_epoch() {
        assert_eq!(
            created_annotation(Some(1_704_067_200)),
            "2024-01-01T00:00:00Z"
        );
    }
}
