//! `ds-porter inspect`: what an artifact offers (platforms, layers, sizes, annotations) without
//! downloading its layers.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use porter_core::inspect::Inspection;
use porter_core::{Error, InspectRequest, Porter};

use super::{EngineCommand, until_signal};
use crate::output::{Failure, Ui, columns, human_size, json_line, short_digest};
use crate::request;

/// Arguments of `inspect`.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads the root manifest or index and each platform's manifest, never a \
    layer. A digest reference whose manifests are cached, and --offline, answer from the cache \
    (\"source\": \"cache\").\n\n\
    Examples:\n  ds-porter inspect ghcr.io/delivery-station/porter:0.2.0\n  \
    ds-porter inspect oci:examples/store:1.0.0 --format table\n  \
    ds-porter inspect 127.0.0.1:5000/demo/tool:1.0 --insecure --raw | jq ."
)]
pub struct InspectArgs {
    /// Artifact reference: registry/repository[:tag|@digest], or oci:<layout-dir>[:tag|@digest].
    #[arg(value_name = "REFERENCE")]
    pub reference: String,

    /// Output format (default: table when stdout is a terminal, else json).
    #[arg(long, value_enum, value_name = "FORMAT", conflicts_with = "raw")]
    pub format: Option<InspectFormat>,

    /// Print the root manifest or index exactly as served.
    #[arg(long)]
    pub raw: bool,

    /// Allow plain HTTP to this reference's registry.
    #[arg(long)]
    pub insecure: bool,

    /// Answer from the cache alone; never touch the network (also DS_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
}

/// How `inspect` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InspectFormat {
    /// One JSON object.
    Json,
    /// A summary and one line per platform and layer, for people.
    Table,
}

/// A validated `inspect`.
#[derive(Debug)]
pub struct Inspect {
    request: InspectRequest,
    output: Output,
}

#[derive(Debug, Clone, Copy)]
enum Output {
    Raw,
    Json,
    Table,
}

impl EngineCommand for InspectArgs {
    type Request = Inspect;

    fn request(&self) -> Result<Inspect, Error> {
        let mut request = request::inspect(&self.reference, self.insecure, self.offline)?;
        // The bytes as served need only the root.
        request.root_only = self.raw;
        let output = match (self.raw, self.format) {
            (true, _) => Output::Raw,
            (false, Some(InspectFormat::Json)) => Output::Json,
            (false, Some(InspectFormat::Table)) => Output::Table,
            (false, None) if std::io::stdout().is_terminal() => Output::Table,
            (false, None) => Output::Json,
        };
        Ok(Inspect { request, output })
    }

    fn run(porter: &Porter, inspect: Inspect, _ui: Ui) -> Result<String, Failure> {
        let found = until_signal(porter.inspect(&inspect.request), || {})?;
        Ok(match inspect.output {
            // Exactly as served: no newline added.
            Output::Raw => String::from_utf8_lossy(&found.raw).into_owned(),
            Output::Json => json_line(&found),
            Output::Table => table(&found),
        })
    }
}

/// The inspection for people.
fn table(found: &Inspection) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: &str| out.push_str(&format!("{name:<14}{value}\n"));
    field("Reference", &found.resolved);
    field("Digest", &found.digest);
    field("Media type", &found.media_type);
    if let Some(t) = &found.artifact_type {
        field("Artifact type", t);
    }
    let source = match &found.mirror {
        Some(mirror) => format!("{} ({mirror})", found.source),
        None => found.source.clone(),
    };
    field("Source", &source);
    field("Total size", &human_size(found.total_size));
    for (key, value) in &found.annotations {
        field("Annotation", &format!("{key}={value}"));
    }
    out.push('\n');
    let mut rows = Vec::new();
    for p in &found.platforms {
        rows.push([
            p.platform.clone(),
            short_digest(&p.digest).to_owned(),
            human_size(p.total_size),
            match &p.layers {
                Some(layers) => layers.len().to_string(),
                None => "not cached".to_owned(),
            },
            String::new(),
        ]);
        for layer in p.layers.iter().flatten() {
            rows.push([
                String::new(),
                short_digest(&layer.digest).to_owned(),
                human_size(layer.size),
                layer.title.clone().unwrap_or_else(|| "-".to_owned()),
                layer.media_type.clone(),
            ]);
        }
    }
    out.push_str(&columns(
        ["PLATFORM", "DIGEST", "SIZE", "LAYERS/TITLE", "MEDIA TYPE"],
        &rows,
    ));
    out
}
