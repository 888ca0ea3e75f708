//! `ds-porter list`: the cached artifacts, as JSON or as a table for people.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use porter_core::{ArtifactResult, Error, Porter};

use super::EngineCommand;
use crate::output::{Failure, Ui, columns, human_size, json_line, short_digest};

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
    columns(HEADERS, &rows)
}
