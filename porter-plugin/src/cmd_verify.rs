//! `ds-porter verify REF`: checks every platform's signatures against the policy without
//! exporting, prints a JSON report, exits 1 when the artifact is not verified.

use std::path::PathBuf;

use clap::Args;
use porter_core::{Error, PlatformRequest, Porter, PullRequest, platform};

use crate::{commands, progress_bar};

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
    #[arg(long = "cosign-key", value_name = "FILE")]
    pub cosign_keys: Vec<PathBuf>,

    /// Allow plain HTTP to this reference's registry.
    #[arg(long)]
    pub insecure: bool,

    /// Serve only from the cache; never touch the network.
    #[arg(long)]
    pub offline: bool,
}

/// Runs `verify`.
pub fn run(porter: &Porter, args: &VerifyArgs) -> Result<String, Error> {
    let platforms = if args.platforms.is_empty() {
        PlatformRequest::All
    } else {
        PlatformRequest::Only(platform::parse_list(
            args.platforms.iter().map(String::as_str),
        )?)
    };
    let mut request = PullRequest::new(&args.reference, platforms)?;
    request.insecure = args.insecure;
    request.offline = args.offline;
    request.signatures.cosign_keys = args.cosign_keys.clone();
    let progress = progress_bar::reporter();
    let report = commands::runtime()?.block_on(porter.verify(&request, progress.as_ref()))?;
    let mut text = serde_json::to_string(&report).unwrap_or_default();
    text.push('\n');
    Ok(text)
}
