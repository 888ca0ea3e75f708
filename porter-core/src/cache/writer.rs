//! [`BlobDownload`]: a layer or config streaming into the cache.
//!
//! A blocking thread hashes and writes what arrives into a spool file in `.ingest/`: under the
//! blob's lease that is `<hex>.partial`, which outlives an interrupted download so the next one
//! resumes from its bytes (re-hashed first, so they need not be trusted); without the lease (the
//! holder stalled) a private temporary file. The blob is renamed into `blobs/` only once its
//! size and digest proved right, normally in [`BlobDownload::finish`]. Bytes that prove wrong
//! are discarded. A download dropped without `finish` (a failed or cancelled transfer) keeps its
//! partial bytes, or publishes the blob when every byte had arrived and proves right; the lease
//! is released only once the thread has flushed and closed the file, so the next holder never
//! reads a file that is still being written.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tempfile::TempPath;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::layout::check_complete;
use super::lease::Lease;
use crate::digest::Digest;
use crate::error::{Error, ErrorKind, Result};

/// Where a download's bytes wait until they are verified.
#[derive(Debug)]
pub(crate) enum Spool {
    /// `.ingest/<hex>.partial`, written under the blob's lease (held until the writer thread
    /// ends) and kept when the download stops.
    Partial { path: PathBuf, _lease: Lease },
    /// A private temporary file, removed when the download stops.
    Private { file: File, path: TempPath },
}

/// What the writer thread is asked to do.
enum Command {
    Data(Bytes),
    /// Discard what was written and start from byte 0.
    Restart(oneshot::Sender<Result<()>>),
    /// Verify and publish; on a mismatch the bytes are discarded and the thread keeps running.
    Finish(oneshot::Sender<Result<()>>),
}

/// A blob download in progress.
#[derive(Debug)]
pub(crate) struct BlobDownload {
    digest: Digest,
    size: u64,
    /// Bytes written so far, those found on disk included.
    offset: u64,
    /// The bytes before this session's first write came from an earlier download and are not
    /// proven yet.
    resumed: bool,
    tx: mpsc::Sender<Command>,
    handle: Option<JoinHandle<Result<()>>>,
}

impl BlobDownload {
    /// Starts the writer thread on `spool` (re-hashing a partial file's bytes) for blob
    /// `digest` of `size` bytes, published at `target`.
    pub(crate) async fn open(
        spool: Spool,
        digest: Digest,
        size: u64,
        target: PathBuf,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel(2);
        let (ready_tx, ready_rx) = oneshot::channel();
        let thread_digest = digest.clone();
        let handle = tokio::task::spawn_blocking(move || {
            let state = match Writer::open(spool, thread_digest, size, target) {
                Ok(state) => state,
                Err(err) => {
                    let _ = ready_tx.send(Err(err));
                    return Ok(());
                }
            };
            let _ = ready_tx.send(Ok(state.written));
            state.run(rx)
        });
        let offset = ready_rx
            .await
            .map_err(|_| Error::InvalidInput("blob writer stopped unexpectedly".into()))??;
        Ok(BlobDownload {
            digest,
            size,
            offset,
            resumed: offset > 0,
            tx,
            handle: Some(handle),
        })
    }

    /// The blob's digest.
    pub(crate) fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The blob's size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Bytes the download has so far: where the source continues.
    pub(crate) fn offset(&self) -> u64 {
        self.offset
    }

    /// Queues a chunk for hashing and writing. More bytes than the blob has are refused, and
    /// what was written is discarded.
    pub(crate) async fn write(&mut self, chunk: Bytes) -> Result<()> {
        let found = self.offset + chunk.len() as u64;
        if found > self.size {
            self.restart().await?;
            return Err(Error::SizeMismatch {
                digest: self.digest.to_string(),
                expected: self.size,
                found,
            });
        }
        let len = chunk.len() as u64;
        if self.tx.send(Command::Data(chunk)).await.is_err() {
            return Err(self.stopped().await);
        }
        self.offset += len;
        Ok(())
    }

    /// Discards what was written; the download starts again from byte 0.
    pub(crate) async fn restart(&mut self) -> Result<()> {
        self.offset = 0;
        self.resumed = false;
        self.request(Command::Restart).await
    }

    /// Completes the blob: verifies size and digest and moves it into `blobs/`. On a mismatch
    /// the bytes are discarded and the download can start again from byte 0.
    pub(crate) async fn finish(&mut self) -> Result<()> {
        let result = self.request(Command::Finish).await;
        if result.is_err() {
            self.offset = 0;
        }
        result
    }

    /// Whether `err` (from [`BlobDownload::finish`]) means the bytes an earlier download left
    /// were damaged, so fetching the blob once more from byte 0 is worth it. True once.
    pub(crate) fn damaged_resume(&mut self, err: &Error) -> bool {
        let damaged = self.resumed && err.kind() == ErrorKind::Integrity;
        if damaged {
            self.resumed = false;
            tracing::warn!(digest = %self.digest, "the partial download of {} was damaged; downloading it again", self.digest);
        }
        damaged
    }

    /// Ends the download and waits until the writer thread has flushed its file and released
    /// the lease. (Dropping it does the same without waiting.)
    pub(crate) async fn close(self) {
        let BlobDownload { tx, handle, .. } = self;
        drop(tx);
        if let Some(handle) = handle {
            let _ = handle.await;
        }
    }

    async fn request(
        &mut self,
        command: impl FnOnce(oneshot::Sender<Result<()>>) -> Command,
    ) -> Result<()> {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(command(reply)).await.is_err() {
            return Err(self.stopped().await);
        }
        match answer.await {
            Ok(result) => result,
            Err(_) => Err(self.stopped().await),
        }
    }

    /// Why the writer thread stopped early.
    async fn stopped(&mut self) -> Error {
        match self.handle.take() {
            Some(handle) => match handle.await {
                Ok(Err(err)) => err,
                Ok(Ok(())) => Error::InvalidInput("blob writer already finished".into()),
                Err(err) => Error::InvalidInput(format!("blob writer failed: {err}")),
            },
            None => Error::InvalidInput("blob writer stopped unexpectedly".into()),
        }
    }
}

/// The writer thread's state.
struct Writer {
    out: BufWriter<File>,
    spool: Spool,
    hasher: Sha256,
    written: u64,
    digest: Digest,
    size: u64,
    target: PathBuf,
}

impl Writer {
    /// Opens the spool; a partial file's bytes are hashed first (and dropped when they are
    /// more than the blob has).
    fn open(spool: Spool, digest: Digest, size: u64, target: PathBuf) -> Result<Self> {
        let (file, hasher, written) = match &spool {
            Spool::Private { file, path } => {
                let file = file
                    .try_clone()
                    .map_err(|e| Error::io("failed to open", path.to_path_buf(), e))?;
                (file, Sha256::new(), 0)
            }
            Spool::Partial { path, .. } => resume(path, size)?,
        };
        Ok(Writer {
            out: BufWriter::with_capacity(256 << 10, file),
            spool,
            hasher,
            written,
            digest,
            size,
            target,
        })
    }

    fn path(&self) -> &Path {
        match &self.spool {
            Spool::Partial { path, .. } => path,
            Spool::Private { path, .. } => path,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Command>) -> Result<()> {
        while let Some(command) = rx.blocking_recv() {
            match command {
                Command::Data(chunk) => {
                    self.hasher.update(&chunk);
                    self.written += chunk.len() as u64;
                    if let Err(e) = self.out.write_all(&chunk) {
                        return Err(Error::io("failed to write", self.path().to_path_buf(), e));
                    }
                }
                Command::Restart(reply) => {
                    let _ = reply.send(self.discard());
                }
                Command::Finish(reply) => match self.complete() {
                    Ok(()) => {
                        let published = self.publish();
                        let failed = published.is_err();
                        let _ = reply.send(published);
                        if !failed {
                            return Ok(());
                        }
                    }
                    Err(err) => {
                        let _ = reply.send(self.discard().and(Err(err)));
                    }
                },
            }
        }
        self.abandon();
        Ok(())
    }

    /// Flushes and checks size and digest.
    fn complete(&mut self) -> Result<()> {
        self.out
            .flush()
            .map_err(|e| Error::io("failed to write", self.path().to_path_buf(), e))?;
        let context = format!("blob {}", self.digest);
        check_complete(
            &self.digest,
            self.size,
            self.written,
            self.hasher.clone(),
            &context,
        )
    }

    /// Renames the verified spool (created 0644 before the umask) into `blobs/`.
    fn publish(&mut self) -> Result<()> {
        fs::rename(self.path(), &self.target)
            .map_err(|e| Error::io("failed to move blob into", &self.target, e))
    }

    /// Drops every byte written; the spool starts again empty.
    fn discard(&mut self) -> Result<()> {
        let path = self.path().to_path_buf();
        let reset = |out: &mut BufWriter<File>| -> io::Result<()> {
            out.flush()?;
            out.get_mut().set_len(0)?;
            out.get_mut().seek(SeekFrom::Start(0)).map(|_| ())
        };
        reset(&mut self.out).map_err(|e| Error::io("failed to truncate", path, e))?;
        self.hasher = Sha256::new();
        self.written = 0;
        Ok(())
    }

    /// The transfer stopped without `finish`. When every byte had arrived the blob is
    /// published if they prove right (a pull cancelled by a sibling's failure keeps what it
    /// completed) and discarded if not. Otherwise partial bytes stay for the next download (an
    /// empty partial file is removed) and a private file goes. The lease is released last.
    fn abandon(mut self) {
        if self.written == self.size {
            match self.complete() {
                Ok(()) if self.publish().is_ok() => return,
                Ok(()) => {}
                Err(_) => self.written = 0,
            }
        }
        let _ = self.out.flush();
        if let Spool::Partial { path, .. } = &self.spool
            && self.written == 0
        {
            let _ = fs::remove_file(path);
        }
    }
}

/// Opens a partial file for appending, with its bytes hashed; bytes beyond `size` mean the file
/// is not a prefix of the blob, so it is emptied.
fn resume(path: &Path, size: u64) -> Result<(File, Sha256, u64)> {
    let mut options = File::options();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o644);
    let mut file = options
        .open(path)
        .map_err(|e| Error::io("failed to open", path, e))?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("failed to read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        written += n as u64;
    }
    if written > size {
        file.set_len(0)
            .map_err(|e| Error::io("failed to truncate", path, e))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("failed to truncate", path, e))?;
        return Ok((file, Sha256::new(), 0));
    }
    Ok((file, hasher, written))
}
