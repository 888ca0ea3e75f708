//! The command line's commands, one module each. A command that uses the engine implements
//! [`EngineCommand`]: its clap arguments become a validated request before any I/O (stage two of
//! parsing; a mistake there exits 2), then the request runs against the engine and returns what
//! goes to stdout. Adding a command is a new module here and one variant in `cli::Command`.

pub mod cache;
pub mod completions;
pub mod list;
pub mod pull;
pub mod push;
pub mod version;

use porter_core::{Error, Porter};

use crate::output::{Failure, Ui};

/// A command that runs against the engine.
pub trait EngineCommand {
    /// The validated request.
    type Request;

    /// Stage two of parsing: checks values and combinations, before any I/O.
    fn request(&self) -> Result<Self::Request, Error>;

    /// Runs the request and returns the text for stdout; `ui` says how to talk on stderr.
    fn run(porter: &Porter, request: Self::Request, ui: Ui) -> Result<String, Failure>;
}

/// The single-threaded runtime a command's async engine call runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("failed to start the async runtime", "", e))
}
