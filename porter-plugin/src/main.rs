//! `ds-porter`: the Delivery Station plugin for OCI artifacts, also usable as a standalone CLI.
//!
//! Launched with arguments it is a CLI (`ds-porter pull REF -o DIR`, `ds-porter list`, …):
//! JSON on stdout, messages and progress on stderr. Launched by DS (no arguments, magic cookie in
//! the environment) it serves DS's plugin protocol over go-plugin (see [`plugin`]).

mod cache_cmd;
mod cli;
mod cmd_key;
mod cmd_verify;
mod commands;
mod logging;
mod plugin;
mod progress_bar;

use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args_os().len() > 1 {
        return cli::run();
    }
    if std::env::var_os(plugin::MAGIC_COOKIE_KEY).is_some() {
        return plugin::serve();
    }
    eprintln!(
        "ds-porter is a Delivery Station plugin: DS launches it (install it as `ds-porter` in \
         DS's plugin directory), or run it as a command line tool: ds-porter --help"
    );
    ExitCode::FAILURE
}
