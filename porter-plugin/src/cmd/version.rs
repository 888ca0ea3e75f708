//! `ds-porter version` and `--version`.

use std::process::ExitCode;

use crate::output::print_stdout;
use crate::version::{VERSION, version_text};

/// `version`: the Go plugin's version text.
pub fn run() -> ExitCode {
    print_stdout(&format!("{}\n", version_text()))
}

/// `--version`: one line.
pub fn run_short() -> ExitCode {
    print_stdout(&format!("porter version {VERSION}\n"))
}
