//! The CLI commands: load settings, open the engine, run, print JSON on stdout.

use std::process::ExitCode;

use porter_core::config::{self, Settings};
use porter_core::{Error, ErrorKind, Porter};
use tracing_subscriber::filter::LevelFilter;

use crate::cli::{Cli, EXIT_FAILURE, PullArgs, PushArgs, print_stdout};
use crate::{logging, progress_bar};

/// The version reported everywhere: `DS_PORTER_VERSION` at build time (release builds set it,
/// without a leading `v`), else the crate version.
pub const VERSION: &str = match option_env!("DS_PORTER_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// Version text of the `version` command (the Go plugin's format, without a final newline).
pub fn version_text() -> String {
    format!(
        "porter version {}\n  commit: {}\n  built:  {}",
        VERSION,
        option_env!("DS_PORTER_COMMIT").unwrap_or("none"),
        option_env!("DS_PORTER_BUILD_DATE").unwrap_or("unknown"),
    )
}

/// Loads settings, opens the engine and runs `op`, printing its output or the error.
pub fn run(cli: &Cli, op: impl FnOnce(&Porter) -> Result<String, Error>) -> ExitCode {
    let outcome = load_settings(cli).and_then(|settings| {
        logging::init_cli(cli.log_level.as_deref(), &settings.logging);
        for warning in &settings.logging.warnings {
            tracing::warn!("{warning}");
        }
        Porter::new(settings).map_err(|e| Error::Context {
            context: "failed to open the cache",
            source: Box::new(e),
        })
    });
    match outcome.and_then(|porter| op(&porter)) {
        Ok(text) => print_stdout(&text),
        Err(err) => {
            report(&err);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Reads the settings. The configured subscriber needs them, so until it exists a plain stderr
/// subscriber (at `--log-level`, default warn) carries what reading them logs, such as a
/// `settings.porter` value that is ignored because it cannot be used.
fn load_settings(cli: &Cli) -> Result<Settings, Error> {
    let level = cli
        .log_level
        .as_deref()
        .and_then(|level| level.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::WARN);
    let early = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .finish();
    tracing::subscriber::with_default(early, || config::load_standalone(cli.config.as_deref()))
}

pub(crate) fn report(err: &Error) {
    eprintln!("error: {err}");
    let hint = match err.kind() {
        _ if matches!(err, Error::Signature(e) if !e.is_input_problem()) => {
            Some("the signature policy refused the artifact; nothing was cached or exported")
        }
        ErrorKind::Unauthorized => Some(
            "check the registry credentials (DS_AUTH_CREDENTIALS, Auth.Credentials, or docker login)",
        ),
        ErrorKind::Integrity => {
            Some("the content did not match its digest or size; nothing was cached")
        }
        _ => None,
    };
    if let Some(hint) = hint {
        eprintln!("hint: {hint}");
    }
}

/// `pull`: pull (and export) one artifact, print its `ArtifactResult`.
pub fn pull(porter: &Porter, args: &PullArgs) -> Result<String, Error> {
    let request = args.to_request()?;
    let progress = progress_bar::reporter();
    let outcome = runtime()?.block_on(porter.pull(&request, progress.as_ref()))?;
    drop(progress);
    for f in &outcome.finalizers {
        tracing::info!(name = %f.name, operation = %f.operation, args = ?f.args, "artifact requests a finalizer");
    }
    Ok(outcome.result.to_stdout_json())
}

/// `push`: push a binary, directory or release, print the index's `ArtifactResult`.
pub fn push(porter: &Porter, args: &PushArgs) -> Result<String, Error> {
    let request = args.to_request()?;
    let progress = progress_bar::reporter();
    let result = runtime()?.block_on(porter.push(&request, progress.as_ref()))?;
    Ok(result.to_stdout_json())
}

/// `list`: the cached artifacts as a JSON array (`[]` when empty).
pub fn list(porter: &Porter) -> Result<String, Error> {
    let entries = porter.list()?;
    let mut out = porter_core::artifact::go_json(&entries, false);
    out.push('\n');
    Ok(out)
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("failed to start the async runtime", "", e))
}
