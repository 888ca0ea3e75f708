//! `ds-porter cache prune` and `ds-porter cache verify`: cache hygiene from the command line.
//! Both print a JSON report on stdout and are safe while other ds-porter processes pull.

use std::time::Duration;

use clap::{Args, Subcommand};
use porter_core::config::{parse_duration, parse_size};
use porter_core::{Error, Porter};

use crate::cli::print_stdout;
use crate::{commands, progress_bar};

/// Cache maintenance.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove artifacts unused for longer than Cache.TTL, then the least recently used ones
    /// until the cache fits Cache.MaxSize; delete only blobs no remaining artifact references.
    Prune(PruneArgs),
    /// Re-hash every cached blob and check every cached artifact is complete.
    Verify(VerifyArgs),
}

/// Arguments of `cache prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Size limit instead of Cache.MaxSize (10GB, 512MiB, bytes; 0 removes every artifact).
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,

    /// Age limit instead of Cache.TTL (7d, 24h, 1h30m, seconds).
    #[arg(long, value_name = "DURATION")]
    pub ttl: Option<String>,
}

/// Arguments of `cache verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Delete corrupt blobs and fetch corrupt or missing ones again from their registry.
    #[arg(long)]
    pub repair: bool,

    /// Allow plain HTTP to the registries blobs are fetched from again.
    #[arg(long)]
    pub insecure: bool,
}

/// Runs a cache command; the JSON report goes to stdout.
pub fn run(porter: &Porter, command: &CacheCommand) -> Result<String, Error> {
    match command {
        CacheCommand::Prune(args) => prune(porter, args),
        CacheCommand::Verify(args) => verify(porter, args),
    }
}

fn prune(porter: &Porter, args: &PruneArgs) -> Result<String, Error> {
    let mut policy = porter.prune_policy();
    if let Some(size) = &args.max_size {
        let bytes = parse_size(size).map_err(|reason| {
            Error::InvalidInput(format!("invalid --max-size {size:?}: {reason}"))
        })?;
        policy.max_size = Some(bytes);
    }
    if let Some(ttl) = &args.ttl {
        let ttl: Duration = parse_duration(ttl)
            .map_err(|reason| Error::InvalidInput(format!("invalid --ttl {ttl:?}: {reason}")))?;
        policy.ttl = Some(ttl);
    }
    let report = porter.prune(&policy)?;
    Ok(json_line(&report))
}

fn verify(porter: &Porter, args: &VerifyArgs) -> Result<String, Error> {
    let progress = progress_bar::reporter();
    let report = commands::runtime()?.block_on(porter.verify_cache(
        args.repair,
        args.insecure,
        progress.as_ref(),
    ))?;
    drop(progress);
    if report.is_clean() {
        return Ok(json_line(&report));
    }
    let _ = print_stdout(&json_line(&report));
    let problems = report.corrupt.len() + report.missing.len();
    Err(Error::InvalidInput(if args.repair {
        format!(
            "{} of {problems} damaged or missing blobs could not be repaired",
            report
                .unrepaired
                .len()
                .max(problems - report.repaired.len().min(problems))
        )
    } else {
        format!(
            "{problems} cached blobs are damaged or missing; run `ds-porter cache verify --repair`"
        )
    }))
}

fn json_line<T: serde::Serialize>(value: &T) -> String {
    let mut out = porter_core::artifact::go_json(value, false);
    out.push('\n');
    out
}
