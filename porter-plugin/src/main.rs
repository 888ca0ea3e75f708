//! `ds-porter`: the Delivery Station plugin for OCI artifacts, also usable as a standalone CLI.
//!
//! Launched with arguments it is a CLI (`ds-porter pull REF -o DIR`, `ds-porter list`, …):
//! JSON on stdout, messages and progress on stderr. Launched by DS (no arguments, magic cookie in
//! the environment) it is meant to speak go-plugin; that server is not part of this build yet.

mod cli;
mod commands;
mod logging;
mod progress_bar;

use std::process::ExitCode;

/// The environment variable DS sets when it launches a plugin.
const MAGIC_COOKIE_KEY: &str = "DS_PLUGIN_MAGIC_COOKIE";

fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        return cli::run();
    }
    if std::env::var_os(MAGIC_COOKIE_KEY).is_some() {
        eprintln!(
            "ds-porter: this build has no go-plugin server yet; run it as a command line tool \
             (ds-porter --help)"
        );
    } else {
        eprintln!(
            "ds-porter is a Delivery Station plugin: DS launches it (install it as `ds-porter` in \
             DS's plugin directory), or run it as a command line tool: ds-porter --help"
        );
    }
    ExitCode::FAILURE
}
