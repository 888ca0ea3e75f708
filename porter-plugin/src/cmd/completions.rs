//! `ds-porter completions <shell>`: a completion script on stdout.

use std::process::ExitCode;

use clap::Args;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: clap_complete::Shell,
}

/// Prints the script for `cmd`, the whole command line.
pub fn run(args: &CompletionsArgs, cmd: &mut clap::Command) -> ExitCode {
    clap_complete::generate(args.shell, cmd, "ds-porter", &mut std::io::stdout());
    ExitCode::SUCCESS
}
