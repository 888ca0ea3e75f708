//! `ds-porter pull`: pull an artifact into the cache and optionally export it.

use std::path::PathBuf;

use clap::Args;
use porter_core::{Error, Porter, PullRequest};

use super::{EngineCommand, runtime};
use crate::output::{Failure, json_line};
use crate::{progress_bar, request};

/// Arguments of `pull`.
#[derive(Debug, Args)]
#[command(
    after_help = "Without --platform/--all-arch the current platform is exported straight into \
    the destination; with them, each platform goes to <dir>/<os>/<arch>[/<variant>].\n\
    A destination with an extension that does not exist yet is written as a single file.\n\n\
    Examples:\n  ds-porter pull oci:examples/store:1.0.0 -o dist\n  \
    ds-porter pull ghcr.io/delivery-station/porter:0.2.0 --platform linux/arm64 -o out\n  \
    ds-porter pull 127.0.0.1:5000/demo/tool:1.0 --insecure --all-arch -o artifacts"
)]
pub struct PullArgs {
    /// Artifact reference: registry/repository[:tag|@digest], or oci:<layout-dir>[:tag|@digest].
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// Export to a file or directory.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Platform to fetch, os/arch[/variant]; repeatable, or a comma list.
    #[arg(long = "platform", value_name = "OS/ARCH", alias = "platforms")]
    pub platforms: Vec<String>,

    /// Fetch every platform of the index (exports into per-platform directories).
    #[arg(long)]
    pub all_arch: bool,

    /// Allow plain HTTP to this reference's registry.
    #[arg(long)]
    pub insecure: bool,

    /// Serve only from the cache; never touch the network (also DS_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

impl EngineCommand for PullArgs {
    type Request = PullRequest;

    fn request(&self) -> Result<PullRequest, Error> {
        request::pull(request::PullInput {
            reference: &self.reference,
            platforms: &self.platforms,
            all_arch: self.all_arch,
            output: self.output.clone(),
            insecure: self.insecure,
            offline: self.offline,
        })
    }

    /// Pulls (and exports) one artifact and returns its `ArtifactResult`.
    fn run(porter: &Porter, request: PullRequest) -> Result<String, Failure> {
        let progress = progress_bar::reporter();
        let outcome = runtime()?.block_on(porter.pull(&request, progress.as_ref()))?;
        drop(progress);
        for f in &outcome.finalizers {
            tracing::info!(name = %f.name, operation = %f.operation, args = ?f.args, "artifact requests a finalizer");
        }
        Ok(json_line(&outcome.result))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use clap::Parser;
    use porter_core::PlatformRequest;

    use super::*;
    use crate::cli::{Cli, Command};

    fn pull_args(args: &[&str]) -> PullArgs {
        let mut argv = vec!["ds-porter", "pull"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Pull(p)) => p,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn all_arch_with_platform_is_rejected_before_any_io() {
        let err = pull_args(&["r/x:1", "--all-arch", "--platform", "linux/amd64"])
            .request()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--all-arch cannot be combined with --platform"
        );
    }

    #[test]
    fn platform_syntax_is_checked_before_pulling() {
        let err = pull_args(&["r/x:1", "--platform", "linux"])
            .request()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid platform "linux", expected os/arch or os/arch/variant"#
        );
    }

    #[test]
    fn platforms_repeat_and_comma_lists_combine() {
        let req = pull_args(&[
            "r/x:1",
            "--platform",
            "linux/amd64,linux/arm64",
            "--platform",
            "windows/amd64",
        ])
        .request()
        .unwrap();
        let PlatformRequest::Only(list) = req.platforms else {
            panic!()
        };
        assert_eq!(list.len(), 3);
    }
}
