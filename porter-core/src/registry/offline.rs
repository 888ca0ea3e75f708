//! The cache as the only source: offline pulls (`--offline`, `DS_OFFLINE=1`) and the fallback
//! when the registry cannot be reached. Everything the pull needs must already be cached; the
//! first thing that is not fails the pull, naming it.

use bytes::Bytes;

use super::Source;
use crate::cache::Cache;
use crate::error::{Error, Result};
use crate::manifest::Descriptor;
use crate::progress::Progress;

/// A source that has nothing: every fetch fails with [`Error::NotCached`].
#[derive(Debug)]
pub(crate) struct CacheOnly {
    reference: String,
}

impl CacheOnly {
    /// `reference` names the artifact in errors.
    pub(crate) fn new(reference: impl Into<String>) -> Self {
        CacheOnly {
            reference: reference.into(),
        }
    }

    fn missing(&self, what: String) -> Error {
        Error::NotCached {
            reference: self.reference.clone(),
            what,
        }
    }
}

impl Source for CacheOnly {
    async fn fetch_root(&self) -> Result<(Descriptor, Bytes)> {
        Err(self.missing("the reference".into()))
    }

    async fn fetch_manifest(&self, desc: &Descriptor) -> Result<Bytes> {
        Err(self.missing(format!("manifest {}", desc.digest)))
    }

    async fn fetch_blob(&self, desc: &Descriptor, _: &Cache, _: &dyn Progress) -> Result<bool> {
        let what = match desc.title() {
            Some(title) => format!("blob {} ({title})", desc.digest),
            None => format!("blob {}", desc.digest),
        };
        Err(self.missing(what))
    }
}
