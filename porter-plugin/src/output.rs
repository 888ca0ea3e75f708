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

/// Rows as aligned columns under a header line (the last column is not padded).
pub fn columns<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = headers.map(str::to_owned);
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  "));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Bytes in binary units, one decimal (`558 B`, `1.9 KiB`, `20.0 MiB`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `sha256:` and the first 12 hex digits.
pub fn short_digest(digest: &str) -> &str {
    digest.get(..19).unwrap_or(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(558), "558 B");
        assert_eq!(human_size(1974), "1.9 KiB");
        assert_eq!(human_size(20 << 20), "20.0 MiB");
        assert_eq!(human_size(3 << 40), "3.0 TiB");
    }

    #[test]
    fn columns_align_and_the_last_is_not_padded() {
        let rows = [["a".to_owned(), "long value".to_owned(), "x".to_owned()]];
        assert_eq!(
            columns(["ID", "V", "LAST"], &rows),
            "ID  V           LAST\na   long value  x\n"
        );
    }
}
