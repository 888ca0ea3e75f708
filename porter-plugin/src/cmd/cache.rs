//! `ds-porter cache prune`, `cache verify` and `cache rm`: cache hygiene from the command line.
//! Each prints a JSON report on stdout and are safe while other ds-porter processes pull.

use std::time::Duration;

use clap::{Args, Subcommand};
use porter_core::config::{parse_duration, parse_size};
use porter_core::{Error, Porter};

use super::{EngineCommand, runtime};
use crate::output::{Failure, Ui, json_line, print_stdout};
use crate::progress_bar;

/// Arguments of `cache`.
#[derive(Debug, Args)]
pub struct CacheArgs {
    #[command(subcommand)]
    pub command: CacheCommand,
}

/// Cache maintenance.
#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Remove artifacts unused for longer than Cache.TTL, then the least recently used ones
    /// until the cache fits Cache.MaxSize; delete only blobs no remaining artifact references.
    Prune(PruneArgs),
    /// Re-hash every cached blob and check every cached artifact is complete.
    Verify(VerifyArgs),
    /// Remove the named artifacts (id, digest or reference, as `list` shows them) and every
    /// blob no remaining artifact references. A name that matches nothing removes nothing.
    Rm(RmArgs),
}

/// Arguments of `cache rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Artifacts to remove: ids, digests or references.
    #[arg(value_name = "ID|REF", required = true)]
    pub names: Vec<String>,
}

/// Arguments of `cache prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Size limit instead of Cache.MaxSize (10GB, 512MiB, bytes; 0 removes every artifact).
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_size: Option<u64>,

    /// Age limit instead of Cache.TTL (7d, 24h, 1h30m, seconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub ttl: Option<Duration>,
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

/// A validated cache command.
#[derive(Debug)]
pub enum CacheRequest {
    /// Prune with these limits instead of the configured ones.
    Prune {
        max_size: Option<u64>,
        ttl: Option<Duration>,
    },
    /// Verify, and repair when asked.
    Verify { repair: bool, insecure: bool },
    /// Remove these artifacts.
    Rm { names: Vec<String> },
}

impl EngineCommand for CacheArgs {
    type Request = CacheRequest;

    fn request(&self) -> Result<CacheRequest, Error> {
        Ok(match &self.command {
            CacheCommand::Prune(args) => CacheRequest::Prune {
                max_size: args.max_size,
                ttl: args.ttl,
            },
            CacheCommand::Verify(args) => CacheRequest::Verify {
                repair: args.repair,
                insecure: args.insecure,
            },
            CacheCommand::Rm(args) => {
                if args.names.iter().any(|n| n.trim().is_empty()) {
                    return Err(Error::InvalidInput(
                        "an empty name cannot name a cached artifact".into(),
                    ));
                }
                CacheRequest::Rm {
                    names: args.names.clone(),
                }
            }
        })
    }

    fn run(porter: &Porter, request: CacheRequest, ui: Ui) -> Result<String, Failure> {
        match request {
            CacheRequest::Prune { max_size, ttl } => {
                let mut policy = porter.prune_policy();
                policy.max_size = max_size.or(policy.max_size);
                policy.ttl = ttl.or(policy.ttl);
                Ok(json_line(&porter.prune(&policy)?))
            }
            CacheRequest::Verify { repair, insecure } => verify(porter, repair, insecure, ui),
            CacheRequest::Rm { names } => Ok(json_line(&porter.remove_cached(&names)?)),
        }
    }
}

/// Prints the report; a cache that is not clean afterwards fails the command.
fn verify(porter: &Porter, repair: bool, insecure: bool, ui: Ui) -> Result<String, Failure> {
    let progress = progress_bar::reporter(ui.progress, ui.quiet);
    let report = runtime()?.block_on(porter.verify_cache(repair, insecure, progress.as_ref()))?;
    drop(progress);
    if report.is_clean() {
        return Ok(json_line(&report));
    }
    let _ = print_stdout(&json_line(&report));
    let problems = report.corrupt.len() + report.missing.len();
    Err(Failure::Operation(Error::InvalidInput(if repair {
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
    })))
}
