//! Progress reporting: the engine says what it transfers; front ends decide how to show it (the
//! CLI draws bars, the plugin logs, the FFI calls back).

use crate::digest::Digest;

/// Receives transfer events. All methods have empty defaults.
pub trait Progress: Send + Sync {
    /// A blob transfer starts (`title` is the layer title when known, escaped for display as
    /// `display::escape_remote` does).
    fn blob_started(&self, _digest: &Digest, _size: u64, _title: Option<&str>) {}
    /// `bytes` more bytes of the blob arrived.
    fn blob_progress(&self, _digest: &Digest, _bytes: u64) {}
    /// The blob is complete and verified (`reused`: it was already in the cache).
    fn blob_done(&self, _digest: &Digest, _reused: bool) {}
}

/// Ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}
