//! The standalone command line, parsed in two stages: clap turns argv into [`Cli`], then each
//! command's [`EngineCommand::request`] turns its arguments into a validated engine request
//! (reference parsed, platforms parsed, conflicting flags rejected) before any I/O. This module
//! only dispatches; each command lives in its own module under `cmd/`.
//!
//! Exit codes: 0 success, 1 the operation failed (the message on stderr says why),
//! 2 the command line itself is wrong (unknown flag, missing argument, bad value or combination).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use porter_core::config;
use porter_core::{Error, Porter};

use crate::cmd::cache::CacheArgs;
use crate::cmd::completions::CompletionsArgs;
use crate::cmd::copy::CopyArgs;
use crate::cmd::inspect::InspectArgs;
use crate::cmd::key::KeyCommand;
use crate::cmd::list::ListArgs;
use crate::cmd::pull::PullArgs;
use crate::cmd::push::PushArgs;
use crate::cmd::tags::TagsArgs;
use crate::cmd::verify::VerifyArgs;
use crate::cmd::{self, EngineCommand};
use crate::logging::{self, Level};
use crate::output::{Failure, Ui};
use crate::version::VERSION;

/// Fetch, cache and export OCI artifacts (Delivery Station's porter plugin).
#[derive(Debug, Parser)]
#[command(
    name = "ds-porter",
    version = VERSION,
    disable_version_flag = true,
    after_help = "Configuration: DS's YAML config (~/.config/ds/config.yaml or --config) and DS_* \
                  environment variables. The cache lives at <cache dir>/porter.\n\
                  Exit codes: 0 success, 1 failure, 2 command-line syntax error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    /// Print the version and exit.
    #[arg(long, short = 'V')]
    pub version: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// DS configuration file (YAML) to read instead of only ~/.config/ds/config.yaml.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log level for messages on stderr (default: the configured Logging.Level, info).
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<Level>,

    /// No progress bars, and only warnings and errors on stderr (--log-level warn).
    #[arg(short, long, global = true, conflicts_with_all = ["log_level", "verbose"])]
    pub quiet: bool,

    /// More messages on stderr: -v info, -vv debug, -vvv trace.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "log_level")]
    pub verbose: u8,
}

impl GlobalArgs {
    /// The level the flags ask for, if any.
    fn level(&self) -> Option<Level> {
        match (self.quiet, self.verbose) {
            (true, _) => Some(Level::Warn),
            (false, 0) => self.log_level,
            (false, 1) => Some(Level::Info),
            (false, 2) => Some(Level::Debug),
            (false, _) => Some(Level::Trace),
        }
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull an artifact into the cache and optionally export it.
    Pull(PullArgs),
    /// Push a binary, a directory or a ds.manifest.yaml release.
    Push(PushArgs),
    /// Show an artifact's platforms, layers, sizes and annotations without downloading layers.
    Inspect(InspectArgs),
    /// List a repository's tags, optionally only the versions a constraint accepts.
    Tags(TagsArgs),
    /// Copy an artifact between registries and OCI layouts.
    Copy(CopyArgs),
    /// List cached artifacts as JSON.
    List(ListArgs),
    /// Prune, verify or remove cache entries.
    Cache(CacheArgs),
    /// Check an artifact's signatures against the policy without exporting.
    Verify(VerifyArgs),
    /// Signing keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Show version information.
    Version,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
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
        return cmd::version::run_short();
    }
    let Some(command) = &cli.command else {
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    match command {
        Command::Version => cmd::version::run(),
        Command::Completions(args) => cmd::completions::run(args, &mut Cli::command()),
        Command::Pull(args) => with_engine(&cli.global, args),
        Command::Push(args) => with_engine(&cli.global, args),
        Command::Inspect(args) => with_engine(&cli.global, args),
        Command::Tags(args) => with_engine(&cli.global, args),
        Command::Copy(args) => with_engine(&cli.global, args),
        Command::List(args) => with_engine(&cli.global, args),
        Command::Cache(args) => with_engine(&cli.global, args),
        Command::Verify(args) => with_engine(&cli.global, args),
        Command::Key { command } => cmd::key::run(command),
    }
}

/// Validates the command's request, opens the engine and runs it.
fn with_engine<C: EngineCommand>(global: &GlobalArgs, command: &C) -> ExitCode {
    let ui = Ui::detect(global.quiet);
    let outcome = command
        .request()
        .map_err(Failure::Usage)
        .and_then(|request| Ok((request, open_engine(global, ui)?)))
        .and_then(|(request, porter)| C::run(&porter, request, ui));
    match outcome {
        Ok(text) => crate::output::print_stdout(&text),
        Err(failure) => failure.report(),
    }
}

/// Loads settings, starts logging and opens the engine.
fn open_engine(global: &GlobalArgs, ui: Ui) -> Result<Porter, Error> {
    // Reading the settings may log (a `settings.porter` value that cannot be used, say) before
    // they configure logging: a plain subscriber at the flags' level (default warn) carries that.
    let settings = logging::with_early(global.level().unwrap_or(Level::Warn), ui.color, || {
        config::load_standalone(global.config.as_deref())
    })?;
    logging::init_cli(global.level(), &settings.logging, ui.color);
    for warning in &settings.logging.warnings {
        tracing::warn!("{warning}");
    }
    Porter::new(settings).map_err(|e| Error::Context {
        context: "failed to open the cache",
        source: Box::new(e),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// The code of a module before its tests.
    fn code(path: &str) -> String {
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let text = std::fs::read_to_string(&full).unwrap_or_default();
        assert!(!text.is_empty(), "{} is missing", full.display());
        text.split("#[cfg(test)]")
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    #[test]
    fn shared_modules_are_leaves_and_commands_never_import_the_dispatcher() {
        for leaf in [
            "src/output.rs",
            "src/version.rs",
            "src/request.rs",
            "src/progress_bar.rs",
            "src/logging.rs",
            "src/hints.rs",
        ] {
            // `hints` is itself a leaf: the report of an error renders its hint.
            let code = code(leaf).replace("crate::hints::", "");
            assert!(!code.contains("crate::"), "{leaf} imports the crate");
        }
        let commands = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/src/cmd"))
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        assert!(commands.len() >= 6, "{commands:?}");
        for command in commands {
            let path = format!(
                "src/cmd/{}",
                command.file_name().unwrap_or_default().display()
            );
            let text = code(&path);
            assert!(!text.contains("crate::cli"), "{path} imports cli");
            assert!(!text.contains("crate::plugin"), "{path} imports the plugin");
        }
        for plugin in ["src/plugin/ops.rs", "src/plugin/service.rs"] {
            let text = code(plugin);
            assert!(
                !text.contains("crate::cmd"),
                "{plugin} imports a CLI command"
            );
            assert!(!text.contains("crate::cli"), "{plugin} imports the CLI");
        }
    }
}
