//! Where artifacts come from and go to: a registry (through one HTTP pipeline, `http`) or an
//! OCI image layout on disk.
//!
//! Sources implement the narrow [`Source`] trait, so pull, cache and export logic is the same
//! for a registry, a layout and the cache alone, and can be exercised without a network (a
//! layout is a perfectly good test source).
//!
//! Transport policy: HTTPS by default; plain HTTP only for registries the configuration lists as
//! insecure or when the caller passes `insecure` explicitly for the host it named. There is no
//! silent downgrade, so credentials never travel over plain HTTP to a registry nobody marked
//! insecure.

mod endpoint;
pub(crate) mod http;
mod layout;
mod mirror;
mod offline;
mod remote;
mod tls;
mod upload;

use std::future::Future;

use bytes::Bytes;

use crate::cache::Cache;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor};
use crate::progress::Progress;

pub(crate) use endpoint::{Endpoint, UploadBody};
pub(crate) use layout::LayoutSource;
pub(crate) use offline::CacheOnly;
pub(crate) use remote::{Remote, Served};

/// A place manifests and blobs are fetched from.
pub(crate) trait Source: Send + Sync {
    /// Fetches the root manifest/index the reference names: its descriptor and bytes (verified).
    fn fetch_root(&self) -> impl Future<Output = Result<(Descriptor, Bytes)>> + Send;
    /// Fetches a manifest by descriptor, verified against digest and size.
    fn fetch_manifest(&self, desc: &Descriptor) -> impl Future<Output = Result<Bytes>> + Send;
    /// Streams a blob into `cache`, reporting progress; it becomes visible only once its size
    /// and digest are verified. `true` when this call downloaded and verified it; `false` when
    /// it was in the cache meanwhile (another pull finished it).
    fn fetch_blob(
        &self,
        desc: &Descriptor,
        cache: &Cache,
        progress: &dyn Progress,
    ) -> impl Future<Output = Result<bool>> + Send;
}

pub(crate) fn check_size(desc: &Descriptor, len: usize) -> Result<()> {
    if desc.size != len as u64 {
        return Err(Error::SizeMismatch {
            digest: desc.digest.to_string(),
            expected: desc.size,
            found: len as u64,
        });
    }
    Ok(())
}

pub(crate) fn root_descriptor(
    bytes: &[u8],
    digest: Digest,
    declared: Option<&str>,
) -> Result<Descriptor> {
    let media_type = manifest::detect_media_type(bytes, declared, &digest)?;
    Ok(Descriptor {
        media_type,
        digest,
        size: bytes.len() as u64,
        artifact_type: None,
        platform: None,
        annotations: Default::default(),
    })
}

/// Installs the process-wide rustls crypto provider (ring) once. Every entry point calls it;
/// foreign callers never run our `main`.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Fails only when another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
