//! `ds-porter copy`: an artifact from a registry or layout to a registry or layout.

use clap::Args;
use porter_core::{CopyRequest, Error, Porter};

use super::{EngineCommand, until_signal};
use crate::output::{Failure, Ui, json_line};
use crate::{progress_bar, request};

/// Arguments of `copy`.
#[derive(Debug, Args)]
#[command(
    after_help = "SOURCE and DESTINATION are registry references or oci:<layout-dir> \
    references, in any combination. Every platform is copied by default and every digest is \
    kept; --platform copies a subset under a new index over the source's own platform manifests \
    (\"subset\": true in the result). A DESTINATION without a tag or digest takes the source's \
    tag. Blobs the destination has are skipped, blobs another repository of the destination \
    registry holds are mounted, everything is verified on the way.\n\n\
    Examples:\n  ds-porter copy ghcr.io/delivery-station/porter:0.2.0 oci:airgap:0.2.0\n  \
    ds-porter copy oci:airgap:0.2.0 registry.internal:5000/ds/porter\n  \
    ds-porter copy ghcr.io/delivery-station/porter:0.2.0 oci:arm --platform linux/arm64"
)]
pub struct CopyArgs {
    /// Source reference.
    #[arg(value_name = "SOURCE")]
    pub source: String,

    /// Destination reference.
    #[arg(value_name = "DESTINATION")]
    pub destination: String,

    /// Platform to copy, os/arch[/variant]; repeatable, or a comma list.
    #[arg(long = "platform", value_name = "OS/ARCH", alias = "platforms")]
    pub platforms: Vec<String>,

    /// Copy every platform (the default).
    #[arg(long)]
    pub all_arch: bool,

    /// Allow plain HTTP to the registries SOURCE and DESTINATION name.
    #[arg(long)]
    pub insecure: bool,
}

impl EngineCommand for CopyArgs {
    type Request = CopyRequest;

    fn request(&self) -> Result<CopyRequest, Error> {
        request::copy(request::CopyInput {
            source: &self.source,
            destination: &self.destination,
            platforms: &self.platforms,
            all_arch: self.all_arch,
            insecure: self.insecure,
        })
    }

    fn run(porter: &Porter, request: CopyRequest, ui: Ui) -> Result<String, Failure> {
        let progress = progress_bar::reporter(ui.progress, ui.quiet);
        let outcome = until_signal(porter.copy(&request, progress.as_ref()), || {
            request.cancel.cancel()
        })?;
        drop(progress);
        Ok(json_line(&outcome))
    }
}
