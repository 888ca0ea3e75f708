//! `ds-porter pull`: pull an artifact into the cache and optionally export it.

use std::path::PathBuf;

use clap::Args;
use porter_core::tags::SemverConstraint;
use porter_core::{Error, Porter, PullRequest};

use super::{EngineCommand, until_signal};
use crate::output::{Failure, Ui, json_line};
use crate::{progress_bar, request};

/// Arguments of `pull`.
#[derive(Debug, Args)]
#[command(after_help = "Destination (-o PATH):\n  \
    PATH ending in / or an existing directory: a directory.\n  \
    An existing file, or a new name with an extension (bin/tool.bin): a file; it receives the raw \
    layer of the one platform exported (exactly one layer).\n  \
    Any other new name (out, bin/mytool): a directory, created.\n  \
    In a directory, --platform/--all-arch export each platform into <dir>/<os>/<arch>[/<variant>]; \
    without them the current platform goes straight into <dir>. Layers are written under their \
    title (else the repository name), tar+gzip layers are extracted.\n  \
    Several platforms into a file, and -o - (stdout), are refused before anything is fetched.\n\n\
    Examples:\n  ds-porter pull oci:examples/store:1.0.0 -o dist\n  \
    ds-porter pull ghcr.io/delivery-station/porter:0.2.0 --platform linux/arm64 -o out\n  \
    ds-porter pull ghcr.io/delivery-station/porter:0.2.0 --platform linux/arm64 -o bin/porter.bin\n  \
    ds-porter pull 127.0.0.1:5000/demo/tool:1.0 --insecure --all-arch -o artifacts")]
pub struct PullArgs {
    /// Artifact reference: registry/repository[:tag|@digest], or oci:<layout-dir>[:tag|@digest].
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// Export to a file or a directory (see "Destination" below).
    #[arg(short = 'o', long = "output", value_name = "PATH", value_hint = clap::ValueHint::AnyPath)]
    pub output: Option<PathBuf>,

    /// Platform to fetch, os/arch[/variant]; repeatable, or a comma list.
    #[arg(
        long = "platform",
        value_name = "OS/ARCH",
        alias = "platforms",
        value_parser = PlatformValue,
        hide_possible_values = true
    )]
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

    /// cosign public key (PEM) that must verify the artifact's cosign signature; repeatable.
    #[arg(long = "cosign-key", value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    pub cosign_keys: Vec<PathBuf>,

    /// Pull the highest tag of REFERENCE (a repository, no tag) that is a semantic version
    /// satisfying this constraint (see `ds-porter tags --help`); prints the tag it chose.
    #[arg(long, value_name = "CONSTRAINT", conflicts_with = "offline")]
    pub semver: Option<String>,
}

/// A validated `pull`: the request, and the constraint that picks its tag when one was given.
#[derive(Debug)]
pub struct Pull {
    request: PullRequest,
    semver: Option<SemverConstraint>,
}

/// Platforms shells offer to complete after `--platform` (any `os/arch[/variant]` is accepted).
const COMMON_PLATFORMS: &[&str] = &[
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/386",
    "darwin/amd64",
    "darwin/arm64",
    "windows/amd64",
    "windows/arm64",
];

/// A `--platform` value: any text (stage two parses it, so both front ends report the same
/// error), with [`COMMON_PLATFORMS`] as suggestions for completion scripts.
#[derive(Debug, Clone)]
struct PlatformValue;

impl clap::builder::TypedValueParser for PlatformValue {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            COMMON_PLATFORMS
                .iter()
                .map(|p| clap::builder::PossibleValue::new(*p)),
        ))
    }
}

impl EngineCommand for PullArgs {
    type Request = Pull;

    fn request(&self) -> Result<Pull, Error> {
        let semver = self
            .semver
            .as_deref()
            .map(|text| request::pull_semver(&self.reference, text))
            .transpose()?;
        let request = request::pull(request::PullInput {
            reference: &self.reference,
            platforms: &self.platforms,
            all_arch: self.all_arch,
            output: self.output.clone(),
            insecure: self.insecure,
            offline: self.offline,
            cosign_keys: self.cosign_keys.clone(),
        })?;
        Ok(Pull { request, semver })
    }

    /// Pulls (and exports) one artifact and returns its `ArtifactResult`.
    fn run(porter: &Porter, pull: Pull, ui: Ui) -> Result<String, Failure> {
        let Pull {
            mut request,
            semver,
        } = pull;
        if let Some(constraint) = semver {
            until_signal(porter.pin_highest_tag(&mut request, &constraint), || {})?;
            if !ui.quiet {
                eprintln!("--semver {constraint}: pulling {}", request.original);
            }
        }
        let progress = progress_bar::reporter(ui.progress, ui.quiet);
        let outcome = until_signal(porter.pull(&request, progress.as_ref()), || {
            request.cancel.cancel()
        })?;
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
        .unwrap()
        .request;
        let PlatformRequest::Only(list) = req.platforms else {
            panic!()
        };
        assert_eq!(list.len(), 3);
    }
}
