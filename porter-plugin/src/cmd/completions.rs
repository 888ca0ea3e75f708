//! `ds-porter completions <shell>`: a completion script on stdout.

use std::process::ExitCode;

use clap::Args;
use clap_complete::Shell;

use crate::output::print_stdout;

/// Arguments of `completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// The binary's name, as shells see it.
const BIN: &str = "ds-porter";

/// Prints the script for `cmd`, the whole command line.
pub fn run(args: &CompletionsArgs, cmd: &mut clap::Command) -> ExitCode {
    print_stdout(&script(args.shell, cmd))
}

/// The completion script for `shell`.
fn script(shell: Shell, cmd: &mut clap::Command) -> String {
    let mut out = Vec::new();
    clap_complete::generate(shell, cmd, BIN, &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    if shell != Shell::Bash {
        return text;
    }
    // clap_complete spells the state of a subcommand of a hyphenated binary two ways
    // (`ds__porter__subcmd__pull` while walking the words, `ds__subcmd__porter__subcmd__pull` in
    // the arms that complete it; clap issue 6421), so nothing after the first word completed.
    // One spelling for both; a no-op once clap_complete agrees with itself.
    text.replace("ds__subcmd__porter", "ds__porter")
}
