//! `ds-porter push`: push a binary, a directory or a `ds.manifest.yaml` release.

use std::path::PathBuf;

use clap::Args;
use porter_core::{Error, Porter};

use super::{EngineCommand, until_signal};
use crate::output::{Failure, Ui, json_line};
use crate::{progress_bar, request};

/// Arguments of `push`.
#[derive(Debug, Args)]
#[command(
    after_help = "A file is pushed as a single-platform binary for this platform (or --platform), \
    a directory as a tar+gzip layer, a .yaml/.yml file (or --manifest) as a multi-platform release \
    (with --file, a .yaml/.yml file is pushed as a plain file).\n\
    The index is tagged with the reference's tag (default latest) and, unless --no-latest, latest.\n\
    --dry-run prints the index, the manifests and every digest without contacting the registry; \
    with the same inputs and SOURCE_DATE_EPOCH, a push gives the same digests.\n\n\
    Examples:\n  ds-porter push ./bin/tool 127.0.0.1:5000/demo/tool:1.0 --insecure\n  \
    ds-porter push ./dist/tool-arm64 127.0.0.1:5000/demo/tool:1.0 --platform linux/arm64 --insecure\n  \
    ds-porter push --manifest ds.manifest.yaml ghcr.io/delivery-station/ds-porter:0.3.0\n  \
    ds-porter push --file config.yaml oci:transfer:config --media-type application/yaml\n  \
    ds-porter push ./bin/tool oci:transfer:1.0"
)]
pub struct PushArgs {
    /// The file or directory to push (omit with --manifest).
    #[arg(value_name = "PATH", required_unless_present = "manifest")]
    pub path: Option<String>,

    /// Target reference: registry/repository[:tag|@digest], or oci:<layout-dir>[:tag].
    #[arg(value_name = "REFERENCE", required_unless_present = "manifest")]
    pub reference: Option<String>,

    /// A ds.manifest.yaml describing a multi-platform release.
    #[arg(short = 'm', long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,

    /// Allow plain HTTP to the target registry.
    #[arg(long)]
    pub insecure: bool,

    /// Do not also tag `latest`.
    #[arg(long)]
    pub no_latest: bool,

    /// Sign every layer with this RSA private key (DS's signature annotations).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub sign_key: Option<PathBuf>,

    /// Also push a cosign signature made with this private key (cosign's encrypted key, with
    /// COSIGN_PASSWORD, or an unencrypted PKCS#8 key).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub cosign_key: Option<PathBuf>,

    /// Upload in chunks of this size (e.g. 8MiB; at least 64KiB, and never below the
    /// registry's OCI-Chunk-Min-Length), for registries or proxies that limit request bodies.
    /// Default: settings.porter.chunk_size, else one request per blob, falling back to chunks
    /// when the registry refuses a body as too large.
    #[arg(long, value_name = "SIZE")]
    pub chunk_size: Option<String>,

    /// The platform of a single file or directory (default: this machine's). Not with a
    /// release manifest, which names its own platforms.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Add an annotation to the index (repeatable; a key given here wins over the release
    /// manifest's).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,

    /// Add an annotation to every platform manifest (repeatable; a key given here wins, even
    /// org.opencontainers.image.created).
    #[arg(long = "manifest-annotation", value_name = "KEY=VALUE")]
    pub manifest_annotations: Vec<String>,

    /// The artifactType of the index and of every manifest (type/subtype). Default: the
    /// release manifest's (else application/vnd.delivery-station.artifact.index.v1+json) for
    /// the index, the layer's media type for each manifest.
    #[arg(long, value_name = "TYPE")]
    pub artifact_type: Option<String>,

    /// The layer media type of a single file or directory (type/subtype). Not with a release
    /// manifest, which names its own.
    #[arg(long, value_name = "TYPE")]
    pub media_type: Option<String>,

    /// Read and hash the files and build the manifests and the index, then print them with
    /// every digest instead of pushing: no registry is contacted and no layout is written.
    #[arg(long)]
    pub dry_run: bool,

    /// Push PATH as a plain file even when it ends in .yaml/.yml (not as a release manifest).
    #[arg(long, conflicts_with = "manifest")]
    pub file: bool,
}

impl EngineCommand for PushArgs {
    type Request = request::Push;

    fn request(&self) -> Result<request::Push, Error> {
        // With --manifest the single positional is the reference.
        let positionals: Vec<String> = [&self.path, &self.reference]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if self.manifest.is_some() && positionals.len() > 1 {
            return Err(Error::InvalidInput(
                "with --manifest, give only the reference".into(),
            ));
        }
        request::push(request::PushInput {
            positionals: &positionals,
            manifest: self.manifest.clone(),
            insecure: self.insecure,
            no_latest: self.no_latest,
            sign_key: self.sign_key.clone(),
            cosign_key: self.cosign_key.clone(),
            chunk_size: self.chunk_size.clone(),
            platform: self.platform.clone(),
            annotations: self.annotations.clone(),
            manifest_annotations: self.manifest_annotations.clone(),
            artifact_type: self.artifact_type.clone(),
            media_type: self.media_type.clone(),
            dry_run: self.dry_run,
            file: self.file,
        })
    }

    /// Pushes and returns the `ArtifactResult` of the index it created; with `--dry-run`, the
    /// plan of the push instead.
    fn run(porter: &Porter, push: request::Push, ui: Ui) -> Result<String, Failure> {
        if push.dry_run {
            let plan = until_signal(porter.plan_push(&push.request), || {})?;
            return Ok(json_line(&plan));
        }
        let progress = progress_bar::reporter(ui.progress, ui.quiet);
        let result = until_signal(porter.push(&push.request, progress.as_ref()), || {})?;
        Ok(json_line(&result))
    }
}
