//! `ds-porter list`: the cached artifacts, as JSON or as a table for people.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use porter_core::{ArtifactResult, Error, Porter};

use super::EngineCommand;
use crate::output::{Failure, Ui, json_line};

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format (default: table when stdout is a terminal, else json).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<ListFormat>,
}

/// How `list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// A JSON array of ArtifactResult objects.
    Json,
    /// One line per artifact with aligned columns.
    Table,
}

impl EngineCommand for ListArgs {
    type Request = ListFormat;

    fn request(&self) -> Result<ListFormat, Error> {
        Ok(self.format.unwrap_or(if std::io::stdout().is_terminal() {
            ListFormat::Table
        } else {
            ListFormat::Json
        }))
    }

    /// The cached artifacts (`[]` when empty).
    fn run(porter: &Porter, format: ListFormat, _ui: Ui) -> Result<String, Failure> {
        let entries = porter.list()?;
        Ok(match format {
            ListFormat::Json => json_line(&entries),
            ListFormat::Table => table(&entries),
        })
    }
}

/// Columns of the table (SIZE is `total_size`, `-` for entries that do not record it).
const HEADERS: [&str; 5] = ["ID", "REFERENCE", "DIGEST", "SIZE", "CACHED AT"];

/// The entries as aligned columns under a header line.
fn table(entries: &[ArtifactResult]) -> String {
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| {
            [
                e.id.clone(),
                e.reference.clone(),
                short_digest(&e.digest).to_owned(),
                e.total_size.map_or_else(|| "-".to_owned(), human_size),
                e.cached_at.clone(),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let header = HEADERS.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
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
fn human_size(bytes: u64) -> String {
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
fn short_digest(digest: &str) -> &str {
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
}
