//! `ds-porter tags`: a repository's tags, every page of them, optionally narrowed to the
//! semantic versions a constraint accepts.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use porter_core::{Error, Porter};
use serde::Serialize;

use super::{EngineCommand, until_signal};
use crate::output::{Failure, Ui, json_line};
use crate::request::{self, TagsRequest};

/// Arguments of `tags`.
#[derive(Debug, Args)]
#[command(
    after_help = "Constraints: >=1.2, <2 (or >=1.2 <2), ^1.2, ~1.2.3, 1.2.x, and \
    alternatives joined by ||. Tags count as versions when they are full semantic versions \
    (1.2.3, 1.2.3-rc.1), with or without a leading v; pre-releases match only a constraint that \
    names a pre-release of the same version.\n\n\
    Examples:\n  ds-porter tags ghcr.io/delivery-station/porter\n  \
    ds-porter tags ghcr.io/delivery-station/porter --semver '^0.2' --latest --format text"
)]
pub struct TagsArgs {
    /// Repository: registry/repository (no tag or digest), or a short name.
    #[arg(value_name = "REPOSITORY")]
    pub repository: String,

    /// Keep only tags that are semantic versions satisfying this constraint, in version order.
    #[arg(long, value_name = "CONSTRAINT")]
    pub semver: Option<String>,

    /// Print only the highest version (of those --semver keeps, else of every version tag).
    #[arg(long)]
    pub latest: bool,

    /// Output format (default: text when stdout is a terminal, else json).
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<TagsFormat>,

    /// Tags asked for per page (the registry may send fewer); every page is followed.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub page_size: u16,

    /// Allow plain HTTP to this repository's registry.
    #[arg(long)]
    pub insecure: bool,
}

/// How `tags` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TagsFormat {
    /// {"repository": …, "tags": [...]}.
    Json,
    /// One tag per line.
    Text,
}

/// A validated `tags`.
#[derive(Debug)]
pub struct Tags {
    request: TagsRequest,
    format: TagsFormat,
}

/// The JSON result.
#[derive(Serialize)]
struct Listed<'a> {
    repository: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    constraint: Option<&'a str>,
    tags: &'a [String],
}

impl EngineCommand for TagsArgs {
    type Request = Tags;

    fn request(&self) -> Result<Tags, Error> {
        let request = request::tags(
            &self.repository,
            self.insecure,
            self.semver.as_deref(),
            self.latest,
        )?;
        let mut request = request;
        request.listing.page_size = usize::from(self.page_size);
        let format = self.format.unwrap_or(if std::io::stdout().is_terminal() {
            TagsFormat::Text
        } else {
            TagsFormat::Json
        });
        Ok(Tags { request, format })
    }

    fn run(porter: &Porter, tags: Tags, _ui: Ui) -> Result<String, Failure> {
        let listed = until_signal(porter.list_tags(&tags.request.listing), || {})?;
        let selected = tags.request.select(listed)?;
        Ok(match tags.format {
            TagsFormat::Json => json_line(&Listed {
                repository: &tags.request.listing.repository,
                constraint: tags.request.constraint.as_ref().map(|c| c.as_str()),
                tags: &selected,
            }),
            TagsFormat::Text => selected.iter().map(|t| format!("{t}\n")).collect(),
        })
    }
}
