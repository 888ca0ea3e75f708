//! What the command line shows: exit codes, stdout writing and error reports. A leaf module: every
//! command uses it, it uses none of them.

use std::io::Write;
use std::process::ExitCode;

use porter_core::Error;

/// The operation failed; stderr says why.
pub const EXIT_FAILURE: u8 = 1;
/// The command line itself is wrong (syntax, values, combinations); nothing was done.
pub const EXIT_USAGE: u8 = 2;

/// Why a command did not succeed, and so its exit code.
#[derive(Debug)]
pub enum Failure {
    /// The command line was rejected before any I/O (exit 2).
    Usage(Error),
    /// The operation failed (exit 1).
    Operation(Error),
}

impl Failure {
    /// Reports the failure on stderr and returns its exit code.
    pub fn report(&self) -> ExitCode {
        match self {
            Failure::Usage(err) => {
                eprintln!("error: {err}");
                eprintln!("For more information, try '--help'.");
                ExitCode::from(EXIT_USAGE)
            }
            Failure::Operation(err) => {
                report(err);
                ExitCode::from(EXIT_FAILURE)
            }
        }
    }
}

impl From<Error> for Failure {
    fn from(err: Error) -> Self {
        Failure::Operation(err)
    }
}

/// Writes to stdout; a closed pipe (`ds-porter list | head`) is not an error.
pub fn print_stdout(text: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ds-porter: cannot write to stdout: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Compact JSON (Go's escaping) and a newline, as every command prints its result.
pub fn json_line<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut out = porter_core::artifact::go_json(value, false);
    out.push('\n');
    out
}

fn report(err: &Error) {
    eprintln!("error: {err}");
    if let Some(hint) = err.hint() {
        eprintln!(
            "hint: {}",
            crate::hints::render(&hint, crate::hints::Surface::Cli)
        );
    }
}

/// How the command line talks to a person on stderr.
#[derive(Debug, Clone, Copy)]
pub struct Ui {
    /// Draw progress bars.
    pub progress: bool,
    /// Use ANSI colours.
    pub color: bool,
    /// Warnings only on stderr (`-q`).
    pub quiet: bool,
}

impl Ui {
    /// Progress bars and colours only on a terminal; no progress when `quiet`; no colour when
    /// `NO_COLOR` is set to anything but the empty string (no-color.org).
    pub fn detect(quiet: bool) -> Ui {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Ui {
            progress: terminal && !quiet,
            color: terminal && !no_color,
            quiet,
        }
    }
}
