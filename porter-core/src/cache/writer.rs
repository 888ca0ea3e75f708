//! [`BlobWriter`]: a blob streaming into the cache. A blocking thread hashes and writes what
//! arrives; the blob moves into `blobs/` only when [`BlobWriter::finish`] found its size and
//! digest right. A writer dropped without `finish` (a failed or cancelled transfer) publishes
//! nothing.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::layout::{check_complete, persist};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// A blob streaming into the cache.
#[derive(Debug)]
pub(crate) struct BlobWriter {
    tx: Option<mpsc::Sender<Bytes>>,
    commit: Option<oneshot::Sender<()>>,
    handle: JoinHandle<Result<()>>,
}

impl BlobWriter {
    /// Streams blob `digest` of `size` bytes into `temp`, renamed to `target` once verified.
    pub(crate) fn start(
        temp: tempfile::NamedTempFile,
        digest: Digest,
        size: u64,
        target: PathBuf,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<Bytes>(2);
        let (commit_tx, mut commit_rx) = oneshot::channel::<()>();
        let handle = tokio::task::spawn_blocking(move || -> Result<()> {
            let temp_path = temp.path().to_path_buf();
            let mut hasher = Sha256::new();
            let mut written = 0u64;
            let mut out = BufWriter::with_capacity(256 << 10, temp);
            while let Some(chunk) = rx.blocking_recv() {
                written += chunk.len() as u64;
                if written > size {
                    return Err(Error::SizeMismatch {
                        digest: digest.to_string(),
                        expected: size,
                        found: written,
                    });
                }
                hasher.update(&chunk);
                out.write_all(&chunk)
                    .map_err(|e| Error::io("failed to write", &temp_path, e))?;
            }
            if commit_rx.try_recv().is_err() {
                // The writer was dropped without `finish`: the transfer was abandoned.
                return Err(Error::Cancelled);
            }
            check_complete(&digest, size, written, hasher, &format!("blob {digest}"))?;
            let temp = out
                .into_inner()
                .map_err(|e| Error::io("failed to write", &temp_path, e.into_error()))?;
            persist(temp, &target)
        });
        BlobWriter {
            tx: Some(tx),
            commit: Some(commit_tx),
            handle,
        }
    }

    /// Queues a chunk for hashing and writing.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let sent = match &self.tx {
            Some(tx) => tx.send(chunk).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The writer thread stopped early: its result says why.
        self.tx = None;
        match (&mut self.handle).await {
            Ok(Err(e)) => Err(e),
            _ => Err(Error::InvalidInput(
                "blob writer stopped unexpectedly".into(),
            )),
        }
    }

    /// Completes the blob: verifies size and digest and moves it into place.
    pub(crate) async fn finish(mut self) -> Result<()> {
        if let Some(commit) = self.commit.take() {
            let _ = commit.send(());
        }
        self.tx = None;
        match self.handle.await {
            Ok(result) => result,
            Err(e) => Err(Error::InvalidInput(format!("blob writer failed: {e}"))),
        }
    }
}
