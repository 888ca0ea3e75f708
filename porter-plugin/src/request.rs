//! The engine requests both front ends build from their arguments: the command line's flags and
//! DS's `key=value` arguments name the same things, so they become a request in one place, with
//! the same checks and the same error texts (ds-contract §7.5, §7.9).

use std::path::PathBuf;

use std::collections::BTreeMap;

use porter_core::platform::Platform;
use porter_core::tags::{SemverConstraint, TagListRequest};
use porter_core::{
    CopyRequest, Error, InspectRequest, PlatformRequest, PullRequest, PushRequest, PushSource,
    destination, parse_annotation, parse_media_type,
};

/// A pull as either front end received it.
#[derive(Debug, Default)]
pub struct PullInput<'a> {
    /// The reference as typed.
    pub reference: &'a str,
    /// `--platform` values (each may be a comma list).
    pub platforms: &'a [String],
    /// `--all-arch`.
    pub all_arch: bool,
    /// `-o/--output`.
    pub output: Option<PathBuf>,
    /// `--insecure`.
    pub insecure: bool,
    /// `--offline`.
    pub offline: bool,
    /// `--cosign-key`: cosign public keys that must verify the artifact.
    pub cosign_keys: Vec<PathBuf>,
}

/// Checks flag combinations, parses reference and platforms and refuses an export destination
/// that cannot work (`porter_core::destination`), before any network I/O.
pub fn pull(input: PullInput<'_>) -> Result<PullRequest, Error> {
    let reference = input.reference.trim();
    if reference.is_empty() {
        return Err(Error::InvalidInput("artifact reference required".into()));
    }
    // DS's own wording (ds-contract case 47), which names the flags of both front ends.
    if input.all_arch && !input.platforms.is_empty() {
        return Err(Error::InvalidInput(
            "--all-arch cannot be combined with --platform".into(),
        ));
    }
    let platforms = PlatformRequest::from_flags(input.platforms, input.all_arch)?;
    if let Some(output) = &input.output {
        destination::check(output, &platforms)?;
    }
    let mut request = PullRequest::new(reference, platforms)?;
    request.insecure = input.insecure;
    request.output = input.output;
    request.offline = input.offline;
    request.signatures.cosign_keys = input.cosign_keys;
    Ok(request)
}

/// An inspection: the reference must be one, before any I/O.
pub fn inspect(reference: &str, insecure: bool, offline: bool) -> Result<InspectRequest, Error> {
    let mut request = InspectRequest::checked(reference)?;
    request.insecure = insecure;
    request.offline = offline;
    Ok(request)
}

/// The constraint of `pull --semver` (DS: `semver=`): the reference must name a registry
/// repository without a tag or digest, since the constraint picks the tag.
pub fn pull_semver(reference: &str, constraint: &str) -> Result<SemverConstraint, Error> {
    TagListRequest::new(reference)
        .check()
        .map_err(|e| Error::InvalidInput(format!("a version constraint picks the tag: {e}")))?;
    SemverConstraint::parse(constraint)
}

/// A tag listing, narrowed by a version constraint when one is given.
#[derive(Debug, Clone)]
pub struct TagsRequest {
    /// The listing.
    pub listing: TagListRequest,
    /// `--semver`: keep the tags that are versions accepted by this, in version order.
    pub constraint: Option<SemverConstraint>,
    /// `--latest`: only the highest version (needs a constraint, or takes every version).
    pub latest: bool,
}

impl TagsRequest {
    /// The tags to print from a listing (`porter_core::tags::narrow`: all of them sorted, or the
    /// versions the constraint accepts in version order, only the highest with `latest`).
    pub fn select(&self, tags: Vec<String>) -> Result<Vec<String>, Error> {
        porter_core::tags::narrow(
            &self.listing.repository,
            tags,
            self.constraint.as_ref(),
            self.latest,
        )
    }
}

/// Checks a repository name (no tag or digest) and parses the constraint, before any I/O.
pub fn tags(
    repository: &str,
    insecure: bool,
    semver: Option<&str>,
    latest: bool,
) -> Result<TagsRequest, Error> {
    let mut listing = TagListRequest::checked(repository)?;
    listing.insecure = insecure;
    let constraint = semver.map(SemverConstraint::parse).transpose()?;
    Ok(TagsRequest {
        listing,
        constraint,
        latest,
    })
}

/// A copy as either front end received it.
#[derive(Debug, Default)]
pub struct CopyInput<'a> {
    /// Source reference.
    pub source: &'a str,
    /// Destination reference.
    pub destination: &'a str,
    /// `--platform` values (each may be a comma list); none copies every platform.
    pub platforms: &'a [String],
    /// `--all-arch` (the default, spelled out).
    pub all_arch: bool,
    /// `--insecure`: plain HTTP to the registries source and destination name.
    pub insecure: bool,
}

/// Parses both references and the platforms, before any I/O.
pub fn copy(input: CopyInput<'_>) -> Result<CopyRequest, Error> {
    // The front ends' own wording for their flags; the rest is the engine's check.
    if input.all_arch && !input.platforms.is_empty() {
        return Err(Error::InvalidInput(
            "--all-arch cannot be combined with --platform".into(),
        ));
    }
    let mut request = CopyRequest::checked(input.source, input.destination, input.platforms)?;
    request.insecure = input.insecure;
    Ok(request)
}

/// A push as either front end received it: the positionals in order and `--manifest`.
#[derive(Debug, Default)]
pub struct PushInput<'a> {
    /// Positional arguments: `PATH REFERENCE`, or `REFERENCE` with `--manifest`.
    pub positionals: &'a [String],
    /// `-m/--manifest`.
    pub manifest: Option<PathBuf>,
    /// `--insecure`.
    pub insecure: bool,
    /// `--no-latest`.
    pub no_latest: bool,
    /// `--sign-key`: the RSA key every layer is signed with.
    pub sign_key: Option<PathBuf>,
    /// `--cosign-key`: the key a cosign signature of the index is made with.
    pub cosign_key: Option<PathBuf>,
    /// `--chunk-size`: upload in chunks of this size (`8MiB`, `65536`).
    pub chunk_size: Option<String>,
    /// `--platform`: the platform of a single file or directory.
    pub platform: Option<String>,
    /// `--annotation KEY=VALUE` values: index annotations.
    pub annotations: Vec<String>,
    /// `--manifest-annotation KEY=VALUE` values: annotations of every platform manifest.
    pub manifest_annotations: Vec<String>,
    /// `--artifact-type`: the index's and every manifest's `artifactType`.
    pub artifact_type: Option<String>,
    /// `--media-type`: the layer media type of a single file or directory.
    pub media_type: Option<String>,
    /// `--dry-run`: build everything, publish nothing.
    pub dry_run: bool,
    /// `--file`: the path is a plain file even when it ends in `.yaml`/`.yml`.
    pub file: bool,
}

/// A validated push: the engine's request, and whether it stops before publishing.
#[derive(Debug)]
pub struct Push {
    /// What to push.
    pub request: PushRequest,
    /// Build and report everything, send nothing (`Porter::plan_push`).
    pub dry_run: bool,
}

/// Picks source and reference from the positionals (further ones are ignored, as DS's plugin
/// always did), parses the reference, platform, annotations and media types, and refuses what a
/// release manifest cannot take, before any network I/O.
pub fn push(input: PushInput<'_>) -> Result<Push, Error> {
    if input.file && input.manifest.is_some() {
        return Err(Error::InvalidInput(
            "--file cannot be combined with --manifest".into(),
        ));
    }
    let (source, reference) = match (input.manifest, input.positionals) {
        (Some(_), []) => return Err(Error::InvalidInput("registry reference required".into())),
        (Some(m), [reference, ..]) => (PushSource::Manifest(m), reference),
        (None, [path, reference, ..]) if input.file => {
            (PushSource::Plain(PathBuf::from(path)), reference)
        }
        (None, [path, reference, ..]) => (PushSource::Path(PathBuf::from(path)), reference),
        (None, _) => {
            return Err(Error::InvalidInput(
                "artifact path and reference required".into(),
            ));
        }
    };
    let mut request = PushRequest::new(source, reference)?;
    request.insecure = input.insecure;
    request.tag_latest = !input.no_latest;
    request.sign_key = input.sign_key;
    request.cosign_key = input.cosign_key;
    if let Some(text) = input.chunk_size {
        let size = porter_core::config::parse_size(&text)
            .ok()
            .filter(|s| *s >= porter_core::config::MIN_CHUNK_SIZE)
            .ok_or_else(|| {
                Error::InvalidInput(format!(
                    "invalid chunk size {text:?}: expected a size of at least 64KiB, such as 8MiB"
                ))
            })?;
        request.chunk_size = Some(size);
    }
    request.platform = input.platform.map(|p| p.parse::<Platform>()).transpose()?;
    request.annotations = annotations("--annotation", &input.annotations)?;
    request.manifest_annotations =
        annotations("--manifest-annotation", &input.manifest_annotations)?;
    request.artifact_type = input
        .artifact_type
        .map(|t| parse_media_type("--artifact-type", &t))
        .transpose()?;
    request.media_type = input
        .media_type
        .map(|t| parse_media_type("--media-type", &t))
        .transpose()?;
    if request.source.is_release() {
        let flag = match (&request.platform, &request.media_type) {
            (Some(_), _) => Some(("--platform", "platforms")),
            (None, Some(_)) => Some(("--media-type", "media types")),
            (None, None) => None,
        };
        if let Some((flag, own)) = flag {
            let (path, hint) = match &request.source {
                PushSource::Path(p) => (p, " (--file pushes a .yaml file as a plain file)"),
                PushSource::Manifest(p) | PushSource::Plain(p) => (p, ""),
            };
            return Err(Error::InvalidInput(format!(
                "{flag} cannot be used with the release manifest {}, which names its own \
                 {own}{hint}",
                path.display()
            )));
        }
    }
    Ok(Push {
        request,
        dry_run: input.dry_run,
    })
}

/// `KEY=VALUE` values of `flag`, in order (a key given twice keeps its last value).
fn annotations(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>, Error> {
    values.iter().map(|v| parse_annotation(flag, v)).collect()
}
