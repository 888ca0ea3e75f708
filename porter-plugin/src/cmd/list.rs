//! `ds-porter list`: the cached artifacts.

use clap::Args;
use porter_core::{Error, Porter};

use super::EngineCommand;
use crate::output::{Failure, json_line};

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {}

impl EngineCommand for ListArgs {
    type Request = ();

    fn request(&self) -> Result<(), Error> {
        Ok(())
    }

    /// The cached artifacts as a JSON array (`[]` when empty).
    fn run(porter: &Porter, (): ()) -> Result<String, Failure> {
        Ok(json_line(&porter.list()?))
    }
}
