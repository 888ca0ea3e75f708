//! Uploading a file in one pass: `POST` opens an upload session, one or more `PATCH`es carry the
//! bytes (each with `Content-Range` and `Content-Length`) while they are hashed, and `PUT
//! ?digest=` closes the session with the digest just computed, which the registry checks. The
//! file is read once whether or not its digest was known.
//!
//! Without a chunk size the whole file goes in one `PATCH`; with one (`settings.porter.chunk_size`,
//! `push --chunk-size`, never below the registry's `OCI-Chunk-Min-Length`) in chunks of that
//! size, each sent to the `Location` the previous one returned. A registry (or a proxy in front
//! of it) that refuses a body as too large (`413`) gets smaller chunks, halved down to the
//! smallest allowed. A chunk that fails transiently is sent again from where the registry says
//! the upload stands (`GET` of the session, its `Range`), not from the start of the file.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use reqwest::{StatusCode, Url};
use sha2::{Digest as _, Sha256};

use super::endpoint::Endpoint;
use super::http::retry::{Class, Failure};
use crate::config::MIN_CHUNK_SIZE;
use crate::digest::Digest;
use crate::error::{Error, Result};

/// Bytes read from the file per piece of a request body.
const PIECE: usize = 1024 * 1024;
/// First chunk size after a registry refused a one-request body as too large.
const FALLBACK_CHUNK: u64 = 8 * 1024 * 1024;
/// Most times an upload is picked up again from the registry's `Range` after it made progress.
const MAX_RESUMES: u32 = 64;

/// The hash of the bytes sent so far and how many there were.
#[derive(Clone)]
struct Hashed {
    hasher: Sha256,
    bytes: u64,
}

/// Where one upload session stands.
struct Session {
    location: Url,
    /// Bytes the registry holds.
    offset: u64,
    /// The hash of those bytes.
    hashed: Hashed,
}

impl Endpoint {
    /// Uploads the file at `path` (`size` bytes) in one pass and returns its digest. When the
    /// digest is known (`expected`), the file must still have it; otherwise it is what the
    /// registry verified. `chunk` splits the body; `sent(n)` reports bytes the registry holds.
    pub(crate) async fn upload_file(
        &self,
        path: &Path,
        size: u64,
        chunk: Option<u64>,
        expected: Option<&Digest>,
        sent: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<Digest> {
        let what = format!("upload of {}", path.display());
        let (mut session, min_chunk) = self.open_session(&what).await?;
        let floor = min_chunk.unwrap_or(0).max(MIN_CHUNK_SIZE);
        let mut chunk = chunk.map(|c| c.max(floor));
        let mut retrier = self.conn().retrier();
        let mut resumes = 0u32;
        while session.offset < size {
            let len = chunk.map_or(size - session.offset, |c| c.min(size - session.offset));
            let before = session.offset;
            let failure = match self.send_chunk(&what, path, &session, len).await {
                Ok((location, hashed)) => {
                    session.location = location;
                    session.offset += len;
                    session.hashed = hashed;
                    sent(session.offset);
                    continue;
                }
                Err(failure) => failure,
            };
            let too_large = matches!(&failure.error, Error::Registry { status: 413, .. });
            if too_large && len > floor {
                let smaller = match chunk {
                    None => FALLBACK_CHUNK.min(len / 2),
                    Some(c) => c / 2,
                }
                .max(floor);
                tracing::info!(
                    refused = len,
                    chunk = smaller,
                    "the registry refused the body as too large; uploading in chunks"
                );
                chunk = Some(smaller);
            } else if failure.class == Class::Permanent {
                return Err(failure.error);
            } else {
                retrier.pause(failure, &what).await?;
            }
            // Pick up where the registry says the upload stands.
            session = match self.session_status(&what, &session.location).await {
                Ok(Some(offset)) if offset <= size => {
                    let hashed = if offset == session.offset {
                        session.hashed
                    } else {
                        hash_prefix(path, offset).await?
                    };
                    Session {
                        location: session.location,
                        offset,
                        hashed,
                    }
                }
                // The session is gone (or makes no sense): start a new one.
                _ => self.open_session(&what).await?.0,
            };
            if session.offset > before {
                resumes += 1;
                if resumes > MAX_RESUMES {
                    return Err(Error::Internal(format!(
                        "{what}: gave up after {MAX_RESUMES} resumed chunks"
                    )));
                }
                retrier = self.conn().retrier();
            }
            tracing::debug!(
                offset = session.offset,
                "upload resumes from the registry's range"
            );
        }
        let digest = Digest::from_hasher(session.hashed.hasher);
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(Error::DigestMismatch {
                context: format!("{} changed while it was uploaded", path.display()),
                expected: expected.to_string(),
                found: digest.to_string(),
            });
        }
        self.close_session(&what, &session.location, &digest)
            .await?;
        Ok(digest)
    }

    /// `POST /v2/<repo>/blobs/uploads/`: the session's location and the registry's smallest
    /// chunk (`OCI-Chunk-Min-Length`).
    async fn open_session(&self, what: &str) -> Result<(Session, Option<u64>)> {
        let start = self.conn().url("blobs/uploads/");
        self.conn()
            .retrier()
            .run(&format!("POST {start}"), || async {
                let response = self
                    .conn()
                    .send(what, |c| c.post(&start).header(CONTENT_LENGTH, 0))
                    .await?;
                let min_chunk = response
                    .headers()
                    .get("oci-chunk-min-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let location = location(&response, &start)
                    .ok_or_else(|| no_location(self, what, response.status()))?;
                Ok((
                    Session {
                        location,
                        offset: 0,
                        hashed: Hashed {
                            hasher: Sha256::new(),
                            bytes: 0,
                        },
                    },
                    min_chunk,
                ))
            })
            .await
    }

    /// One `PATCH` of `len` bytes from the session's offset: the next location and the hash
    /// including those bytes.
    async fn send_chunk(
        &self,
        what: &str,
        path: &Path,
        session: &Session,
        len: u64,
    ) -> std::result::Result<(Url, Hashed), Failure> {
        let offset = session.offset;
        let shared = Arc::new(Mutex::new(session.hashed.clone()));
        let url = session.location.clone();
        let response = self
            .conn()
            .send_raw(what, |c| {
                // Built again when a challenge repeats the request: start from the same hash.
                *shared.lock().unwrap_or_else(PoisonError::into_inner) = session.hashed.clone();
                c.patch(url.clone())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, len)
                    .header(
                        CONTENT_RANGE,
                        format!("{offset}-{}", (offset + len).saturating_sub(1)),
                    )
                    .body(reqwest::Body::wrap_stream(hashing_stream(
                        path.to_path_buf(),
                        offset,
                        len,
                        Arc::clone(&shared),
                    )))
            })
            .await?;
        let status = response.status();
        if status != StatusCode::ACCEPTED && !status.is_success() {
            return Err(self
                .conn()
                .check(response, what)
                .await
                .err()
                .unwrap_or_else(|| {
                    Failure::permanent(self.conn().target().registry(what, status.as_u16(), None))
                }));
        }
        let next = location(&response, url.as_str())
            .ok_or_else(|| no_location(self, what, response.status()))?;
        let hashed = shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if hashed.bytes != session.hashed.bytes + len {
            return Err(Failure::permanent(Error::Internal(format!(
                "{what}: {} bytes sent where {len} were announced; the file changed while it \
                 was uploaded",
                hashed.bytes - session.hashed.bytes
            ))));
        }
        if let Some(end) = range_end(&response)
            && end != offset + len
        {
            return Err(Failure::transient(self.conn().target().registry(
                what,
                status.as_u16(),
                Some(format!(
                    "the registry holds {end} bytes after a chunk ending at {}",
                    offset + len
                )),
            )));
        }
        Ok((next, hashed))
    }

    /// `GET` of the session: how many bytes the registry holds (`Range: 0-<last>`), `None` when
    /// the session is gone.
    async fn session_status(&self, what: &str, location: &Url) -> Result<Option<u64>> {
        self.conn()
            .retrier()
            .run(&format!("GET {location}"), || async {
                let response = self
                    .conn()
                    .send_raw(what, |c| c.get(location.clone()))
                    .await?;
                match response.status() {
                    StatusCode::NOT_FOUND => Ok(None),
                    status if status.is_success() => Ok(Some(range_end(&response).unwrap_or(0))),
                    _ => {
                        self.conn().check(response, what).await?;
                        Ok(None)
                    }
                }
            })
            .await
    }

    /// `PUT <location>?digest=<digest>` with no body: the registry checks the digest and makes
    /// the blob visible.
    async fn close_session(&self, what: &str, location: &Url, digest: &Digest) -> Result<()> {
        let mut url = location.clone();
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        self.conn()
            .retrier()
            .run(&format!("PUT {location}"), || async {
                self.conn()
                    .send(what, |c| {
                        c.put(url.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, 0)
                    })
                    .await?;
                Ok(())
            })
            .await
    }
}

/// The upload location a response names, resolved against the request URL.
fn location(response: &reqwest::Response, base: &str) -> Option<Url> {
    let value = response.headers().get(LOCATION)?.to_str().ok()?;
    Url::parse(base).and_then(|base| base.join(value)).ok()
}

fn no_location(endpoint: &Endpoint, what: &str, status: StatusCode) -> Failure {
    Failure::permanent(endpoint.conn().target().registry(
        what,
        status.as_u16(),
        Some("the registry returned no upload location".into()),
    ))
}

/// One past the last byte a `Range: 0-<last>` header says the registry holds.
fn range_end(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(RANGE)?.to_str().ok()?;
    parse_range_end(value)
}

fn parse_range_end(value: &str) -> Option<u64> {
    let value = value.trim();
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    let (first, last) = value.split_once('-')?;
    let (first, last) = (
        first.trim().parse::<u64>().ok()?,
        last.trim().parse::<u64>().ok()?,
    );
    // Distribution answers `0-0` for an empty session.
    if first != 0 {
        return None;
    }
    Some(if last == 0 { 0 } else { last + 1 })
}

/// `len` bytes of the file from `offset`, hashed into `shared` as they are handed out.
fn hashing_stream(
    path: std::path::PathBuf,
    offset: u64,
    len: u64,
    shared: Arc<Mutex<Hashed>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let state = (None::<std::fs::File>, len);
    futures_util::stream::unfold(state, move |(file, left)| {
        let (path, shared) = (path.clone(), Arc::clone(&shared));
        async move {
            if left == 0 {
                return None;
            }
            let read = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
                let mut file = match file {
                    Some(file) => file,
                    None => {
                        let mut file = std::fs::File::open(&path)?;
                        file.seek(SeekFrom::Start(offset))?;
                        file
                    }
                };
                let mut buf = vec![0u8; PIECE.min(left as usize)];
                let n = file.read(&mut buf)?;
                buf.truncate(n);
                Ok((file, buf))
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match read {
                Ok((_, buf)) if buf.is_empty() => Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the file is shorter than when the upload started",
                    )),
                    (None, 0),
                )),
                Ok((file, buf)) => {
                    let mut hashed = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    hashed.hasher.update(&buf);
                    hashed.bytes += buf.len() as u64;
                    drop(hashed);
                    let left = left - buf.len() as u64;
                    Some((Ok(Bytes::from(buf)), (Some(file), left)))
                }
                Err(e) => Some((Err(e), (None, 0))),
            }
        }
    })
}

/// The hash of the file's first `len` bytes (after the registry kept fewer or more bytes of a
/// chunk than were sent).
async fn hash_prefix(path: &Path, len: u64) -> Result<Hashed> {
    let path = path.to_path_buf();
    crate::error::blocking("hashing the part already uploaded", move || {
        let file = std::fs::File::open(&path).map_err(|e| Error::io("failed to open", &path, e))?;
        let mut hasher = Sha256::new();
        let mut limited = file.take(len);
        let mut buf = vec![0u8; PIECE];
        let mut bytes = 0u64;
        loop {
            let n = limited
                .read(&mut buf)
                .map_err(|e| Error::io("failed to read", &path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            bytes += n as u64;
        }
        if bytes != len {
            return Err(Error::Internal(format!(
                "{} is shorter than the {len} bytes already uploaded",
                path.display()
            )));
        }
        Ok(Hashed { hasher, bytes })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::parse_range_end;

    #[test]
    fn upload_ranges_say_how_many_bytes_the_registry_holds() {
        assert_eq!(parse_range_end("0-0"), Some(0));
        assert_eq!(parse_range_end("0-4194303"), Some(4194304));
        assert_eq!(parse_range_end("bytes=0-9"), Some(10));
        assert_eq!(parse_range_end("5-9"), None);
        assert_eq!(parse_range_end("junk"), None);
    }
}
