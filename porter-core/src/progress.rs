//! Progress reporting: the engine says what it transfers; front ends decide how to show it (the
//! CLI draws bars, the plugin logs, the FFI calls back).

use crate::digest::Digest;

/// Receives transfer events. All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// A blob transfer starts (`title` is the layer title when known, escaped for display as
    /// `display::escape_remote` does).
    fn blob_started(&self, _digest: &Digest, _size: u64, _title: Option<&str>) {}
    /// `bytes` more bytes of the blob arrived (or were found already downloaded, when a
    /// download resumes).
    fn blob_progress(&self, _digest: &Digest, _bytes: u64) {}
    /// The blob is complete and verified (`reused`: it was already in the cache).
    fn blob_done(&self, _digest: &Digest, _reused: bool) {}
    /// Another pull (another process, or another task of this one) is downloading the blob:
    /// this pull waits for it, or stops waiting; see [`Wait`].
    fn blob_waiting(&self, _digest: &Digest, _wait: Wait) {}
}

/// Why a pull waits for another one, or stops waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Wait {
    /// Another pull holds the blob's lease; this one waits until it publishes the blob or lets
    /// go (`holder`: its process id, when known).
    Started {
        /// The holder's process id.
        holder: Option<u32>,
    },
    /// The holder made no progress for the per-attempt timeout; this pull downloads the blob
    /// itself.
    GaveUp {
        /// The holder's process id.
        holder: Option<u32>,
    },
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
