//! The standalone command line, parsed in two stages: clap turns argv into [`Cli`], then
//! [`PullArgs::to_request`] turns that into a validated engine request (reference parsed,
//! platforms parsed, conflicting flags rejected) before any network I/O.
//!
//! Exit codes: 0 success, 1 the operation failed (the message on stderr says why),
//! 2 the command line itself could not be parsed (unknown flag, missing argument).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use porter_core::{Error, PlatformRequest, PullRequest, PushRequest, PushSource, platform};

use crate::commands;

/// Exit code for a failed operation.
pub const EXIT_FAILURE: u8 = 1;

/// Fetch, cache and export OCI artifacts (Delivery Station's porter plugin).
#[derive(Debug, Parser)]
#[command(
    name = "ds-porter",
    version = commands::VERSION,
    disable_version_flag = true,
    after_help = "Configuration: DS's YAML config (~/.config/ds/config.yaml or --config) and DS_* \
                  environment variables. The cache lives at <cache dir>/porter.\n\
                  Exit codes: 0 success, 1 failure, 2 command-line syntax error."
)]
pub struct Cli {
    /// DS configuration file (YAML) to read instead of only ~/.config/ds/config.yaml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log level for messages on stderr: error, warn, info, debug, trace.
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,

    /// Print the version and exit.
    #[arg(long, short = 'V')]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull an artifact into the cache and optionally export it.
    Pull(PullArgs),
    /// Push a binary, a directory or a ds.manifest.yaml release.
    Push(PushArgs),
    /// List cached artifacts as JSON.
    List,
    /// Prune or verify the cache.
    Cache {
        #[command(subcommand)]
        command: crate::cache_cmd::CacheCommand,
    },
    /// Check an artifact's signatures against the policy without exporting.
    Verify(crate::cmd_verify::VerifyArgs),
    /// Signing keys.
    Key {
        #[command(subcommand)]
        command: crate::cmd_key::KeyCommand,
    },
    /// Show version information.
    Version,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

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

    /// cosign public key (PEM) that must verify the artifact's cosign signature; repeatable.
    #[arg(long = "cosign-key", value_name = "FILE")]
    pub cosign_keys: Vec<PathBuf>,
}

impl PullArgs {
    /// Stage two: a validated engine request.
    pub fn to_request(&self) -> Result<PullRequest, Error> {
        if self.all_arch && !self.platforms.is_empty() {
            return Err(Error::InvalidInput(
                "--all-arch cannot be combined with --platform".into(),
            ));
        }
        let platforms = if self.all_arch {
            PlatformRequest::All
        } else if self.platforms.is_empty() {
            PlatformRequest::Host
        } else {
            PlatformRequest::Only(platform::parse_list(
                self.platforms.iter().map(String::as_str),
            )?)
        };
        if self.reference.trim().is_empty() {
            return Err(Error::InvalidInput("artifact reference required".into()));
        }
        let mut request = PullRequest::new(&self.reference, platforms)?;
        request.insecure = self.insecure;
        request.output = self.output.clone();
        request.offline = self.offline;
        request.signatures.cosign_keys = self.cosign_keys.clone();
        Ok(request)
    }
}

/// Arguments of `push`.
#[derive(Debug, Args)]
#[command(
    after_help = "A file is pushed as a single-platform binary for this platform, a directory as \
    a tar+gzip layer, a .yaml/.yml file (or --manifest) as a multi-platform release.\n\
    The index is tagged with the reference's tag (default latest) and, unless --no-latest, latest.\n\n\
    Examples:\n  ds-porter push ./bin/tool 127.0.0.1:5000/demo/tool:1.0 --insecure\n  \
    ds-porter push --manifest ds.manifest.yaml ghcr.io/delivery-station/ds-porter:0.3.0\n  \
    ds-porter push ./bin/tool oci:transfer:1.0"
)]
pub struct PushArgs {
    /// The file or directory to push (omit with --manifest).
    #[arg(value_name = "PATH", required_unless_present = "manifest")]
    pub path: Option<PathBuf>,

    /// Target reference: registry/repository[:tag|@digest], or oci:<layout-dir>[:tag].
    #[arg(value_name = "REFERENCE")]
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
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,

    /// Also push a cosign signature made with this private key (cosign's encrypted key, with
    /// COSIGN_PASSWORD, or an unencrypted PKCS#8 key).
    #[arg(long, value_name = "FILE")]
    pub cosign_key: Option<PathBuf>,
}

impl PushArgs {
    /// Stage two: a validated engine request.
    pub fn to_request(&self) -> Result<PushRequest, Error> {
        // With --manifest the single positional is the reference.
        let (source, reference) = match (&self.manifest, &self.path, &self.reference) {
            (Some(m), Some(p), None) => (PushSource::Manifest(m.clone()), p.display().to_string()),
            (Some(_), _, Some(_)) => {
                return Err(Error::InvalidInput(
                    "with --manifest, give only the reference".into(),
                ));
            }
            (Some(_), None, None) => {
                return Err(Error::InvalidInput("registry reference required".into()));
            }
            (None, Some(p), Some(r)) => (PushSource::Path(p.clone()), r.clone()),
            (None, _, _) => {
                return Err(Error::InvalidInput(
                    "artifact path and reference required".into(),
                ));
            }
        };
        let mut request = PushRequest::new(source, &reference)?;
        request.insecure = self.insecure;
        request.tag_latest = !self.no_latest;
        request.sign_key = self.sign_key.clone();
        request.cosign_key = self.cosign_key.clone();
        Ok(request)
    }
}

/// Parses argv and runs the command.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(err.exit_code() as u8);
        }
    };
    if cli.version {
        return print_stdout(&format!("porter version {}\n", commands::VERSION));
    }
    let Some(command) = &cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    match command {
        Command::Version => print_stdout(&format!("{}\n", commands::version_text())),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            clap_complete::generate(*shell, &mut cmd, "ds-porter", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Pull(args) => commands::run(&cli, |porter| commands::pull(porter, args)),
        Command::Push(args) => commands::run(&cli, |porter| commands::push(porter, args)),
        Command::List => commands::run(&cli, commands::list),
        Command::Verify(args) => commands::run(&cli, |porter| crate::cmd_verify::run(porter, args)),
        Command::Key { command } => crate::cmd_key::run(command),
        Command::Cache { command } => {
            commands::run(&cli, |porter| crate::cache_cmd::run(porter, command))
        }
    }
}

/// Writes to stdout; a closed pipe (`ds-porter list | head`) is not an error.
pub fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ds-porter: cannot write to stdout: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
            .to_request()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--all-arch cannot be combined with --platform"
        );
    }

    #[test]
    fn platform_syntax_is_checked_before_pulling() {
        let err = pull_args(&["r/x:1", "--platform", "linux"])
            .to_request()
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
        .to_request()
        .unwrap();
        let PlatformRequest::Only(list) = req.platforms else {
            panic!()
        };
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
