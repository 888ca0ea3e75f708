//! `ds-porter key generate`: an RSA key pair for signing releases, in the formats DS reads and
//! writes. It needs no configuration and touches no cache.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use porter_core::signature;

use crate::output::{Failure, json_line, print_stdout};

/// Key management.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate an RSA key pair: <DIR>/ds-signing-key.pem (PKCS#1 "RSA PRIVATE KEY", mode 0600)
    /// and <DIR>/ds-signing-key.pub (PKIX "PUBLIC KEY"); prints the key id as JSON.
    Generate(GenerateArgs),
}

/// Arguments of `key generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Key size in bits.
    #[arg(
        long,
        default_value = "2048",
        value_parser = clap::builder::TypedValueParser::map(
            clap::builder::PossibleValuesParser::new(["2048", "4096"]),
            |bits: String| bits.parse::<usize>().unwrap_or(2048)
        )
    )]
    pub bits: usize,

    /// Directory to write the key pair into (created if missing).
    #[arg(long, value_name = "DIR", default_value = ".", value_hint = clap::ValueHint::DirPath)]
    pub out: PathBuf,
}

/// Runs a key command; the JSON result goes to stdout.
pub fn run(command: &KeyCommand) -> ExitCode {
    let KeyCommand::Generate(args) = command;
    match signature::write_key_pair(&args.out, args.bits) {
        Ok(files) => print_stdout(&json_line(&files)),
        Err(err) => Failure::Operation(err).report(),
    }
}
