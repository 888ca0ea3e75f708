//! `ds-porter verify REF`: checks every platform's signatures against the policy without
//! exporting, prints a JSON report, exits 1 when the artifact is not verified.

use std::path::PathBuf;

use clap::Args;
use porter_core::{Error, PlatformRequest, Porter, PullRequest};

use super::{EngineCommand, until_signal};
use crate::output::{Failure, Ui, json_line};
use crate::progress_bar;

/// Arguments of `verify`.
#[derive(Debug, Args)]
#[command(
    after_help = "The policy is DS's Plugins.Signature for DS plugins and settings.porter.signature \
    for other artifacts; --cosign-key adds a cosign public key that must verify the artifact's \
    sha256-<digest>.sig signature. Exit code 1 when a platform is unsigned, signed by an unknown \
    key, or its signature does not verify."
)]
pub struct VerifyArgs {
    /// Artifact reference: registry/repository[:tag|@digest], or oci:<layout-dir>[:tag|@digest].
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// Platform to check, os/arch[/variant]; repeatable, or a comma list (default: every platform).
    #[arg(long = "platform", value_name = "OS/ARCH")]
    pub platforms: Vec<String>,

    /// cosign public key (PEM) that must verify the artifact's cosign signature; repeatable.
    #[arg(long = "cosign-key", value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub cosign_keys: Vec<PathBuf>,

    /// Allow plain HTTP to this reference's registry.
    #[arg(long)]
    pub insecure: bool,

    /// Serve only from the cache; never touch the network.
    #[arg(long)]
    pub offline: bool,
}

impl EngineCommand for VerifyArgs {
    type Request = PullRequest;

    fn request(&self) -> Result<PullRequest, Error> {
        let platforms = match PlatformRequest::from_flags(&self.platforms, false)? {
            PlatformRequest::Host => PlatformRequest::All,
            chosen => chosen,
        };
        let mut request = PullRequest::new(&self.reference, platforms)?;
        request.insecure = self.insecure;
        request.offline = self.offline;
        request.signatures.cosign_keys = self.cosign_keys.clone();
        Ok(request)
    }

    fn run(porter: &Porter, request: PullRequest, ui: Ui) -> Result<String, Failure> {
        let progress = progress_bar::reporter(ui.progress, ui.quiet);
        let report = until_signal(porter.verify(&request, progress.as_ref()), || {
            request.cancel.cancel()
        })?;
        Ok(json_line(&report))
    }
}
