//! The distribution API on one [`Connection`]: manifest and blob GETs (blobs resumable with
//! `Range`), blob HEADs, cross-repository mounts, uploads, manifest PUTs and tag pages. Every
//! operation is one or a few requests through the pipeline in `http`, under the retry policy.

use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LINK, LOCATION, RANGE};
use reqwest::{StatusCode, Url};
use tokio::io::AsyncReadExt;

use super::http::response::looks_like_html;
use super::http::retry::{Class, Failure};
use super::http::{Connection, redacted};
use crate::cache::BlobDownload;
use crate::digest::Digest;
use crate::error::{Error, NetworkCause, Result};
use crate::manifest::{ACCEPTED_MANIFEST_TYPES, MAX_MANIFEST_BYTES};
use crate::progress::Progress;

/// Resumes of one blob that made progress before the download is given up.
const MAX_RESUMES: u32 = 64;
/// Bytes of one page of tags read at most.
const MAX_TAG_PAGE: usize = 4 * 1024 * 1024;
/// Chunk size of a file streamed as an upload body.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// A manifest as served: its bytes and declared media type.
#[derive(Debug, Clone)]
pub(crate) struct Served {
    pub bytes: Bytes,
    pub content_type: Option<String>,
}

/// Where an upload's bytes come from.
#[derive(Debug, Clone)]
pub(crate) enum UploadBody<'a> {
    Memory(Bytes),
    File(&'a Path),
}

/// One registry repository (upstream or mirror) speaking the distribution API.
#[derive(Debug)]
pub(crate) struct Endpoint {
    conn: Connection,
}

impl Endpoint {
    pub(crate) fn new(conn: Connection) -> Self {
        Endpoint { conn }
    }

    /// The connection.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// `GET /v2/<repo>/manifests/<reference>`: the manifest bytes (at most 4 MiB).
    pub(crate) async fn manifest(&self, reference: &str) -> Result<Served> {
        let url = self.conn.url(&format!("manifests/{reference}"));
        let what = format!("manifest {reference} request");
        let accept = ACCEPTED_MANIFEST_TYPES.join(", ");
        self.conn
            .retrier()
            .run(&format!("GET {url}"), || async {
                let response = self
                    .conn
                    .send(&what, |c| c.get(&url).header(ACCEPT, &accept))
                    .await?;
                let content_type = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(|t| t.split(';').next().unwrap_or(t).trim().to_owned());
                let bytes = self.conn.read(response, &what, MAX_MANIFEST_BYTES).await?;
                if looks_like_html(&bytes, content_type.as_deref().unwrap_or_default()) {
                    return Err(Failure::permanent(self.conn.target().registry(
                        &what,
                        200,
                        Some("not a registry response (an HTML page)".into()),
                    )));
                }
                Ok(Served {
                    bytes,
                    content_type,
                })
            })
            .await
    }

    /// Downloads the rest of a blob into `download` from its offset, resuming with a `Range`
    /// request from where an earlier download or an interrupted attempt stopped. The caller
    /// verifies it with [`BlobDownload::finish`].
    pub(crate) async fn blob(
        &self,
        download: &mut BlobDownload,
        progress: &dyn Progress,
    ) -> Result<()> {
        let (digest, size) = (download.digest().clone(), download.size());
        let url = self.conn.url(&format!("blobs/{digest}"));
        let what = format!("blob {digest} request");
        let shown = format!("GET {url}");
        let mut retrier = self.conn.retrier();
        let mut resumes = 0;
        loop {
            let before = download.offset();
            match self.blob_attempt(&url, &what, download, progress).await {
                Ok(()) => return Ok(()),
                Err(failure) => {
                    if download.offset() > before && failure.class != Class::Permanent {
                        // The attempt made progress: resuming is not a failed retry.
                        resumes += 1;
                        if resumes > MAX_RESUMES {
                            return Err(failure.error);
                        }
                        retrier = self.conn.retrier();
                    }
                    retrier.pause(failure, &shown).await?;
                    if download.offset() > 0 {
                        tracing::debug!(
                            "resuming {digest} at byte {} of {size}",
                            download.offset()
                        );
                    }
                }
            }
        }
    }

    async fn blob_attempt(
        &self,
        url: &str,
        what: &str,
        download: &mut BlobDownload,
        progress: &dyn Progress,
    ) -> Result<(), Failure> {
        let (digest, size) = (download.digest().clone(), download.size());
        let offset = download.offset();
        let last = size.saturating_sub(1);
        let ranged = offset > 0 && offset < size;
        let response = self
            .conn
            .send(what, |c| {
                let request = c.get(url);
                if ranged {
                    request.header(RANGE, format!("bytes={offset}-{last}"))
                } else {
                    request
                }
            })
            .await?;
        let target = self.conn.target();
        match response.status() {
            StatusCode::PARTIAL_CONTENT if ranged => {
                let range = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !content_range_matches(range, offset, last, size) {
                    return Err(Failure::permanent(target.registry(
                        what,
                        206,
                        Some(format!(
                            "asked for bytes {offset}-{last}/{size}, got Content-Range {:?}",
                            crate::display::escape_remote(range)
                        )),
                    )));
                }
            }
            StatusCode::OK => {
                if offset > 0 {
                    tracing::debug!(%digest, "range ignored; downloading the whole blob again");
                    download.restart().await.map_err(Failure::permanent)?;
                }
            }
            status => {
                return Err(Failure::permanent(target.registry(
                    what,
                    status.as_u16(),
                    Some("unexpected status for a blob".into()),
                )));
            }
        }
        let expected = size - download.offset();
        if let Some(len) = response.content_length()
            && len != expected
        {
            return Err(Failure::permanent(Error::SizeMismatch {
                digest: digest.to_string(),
                expected,
                found: len,
            }));
        }
        let idle = self.conn.attempt_timeout();
        let mut body = response.bytes_stream();
        loop {
            match tokio::time::timeout(idle, body.next()).await {
                Err(_) => {
                    return Err(Failure::transient(target.network(
                        format!(
                            "download of {digest} stalled for {}s at byte {}",
                            idle.as_secs(),
                            download.offset()
                        ),
                        NetworkCause::Timeout,
                    )));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(Failure::transient(target.network(
                        format!(
                            "download of {digest} broke off at byte {}: {}",
                            download.offset(),
                            super::http::response::error_chain(&e)
                        ),
                        NetworkCause::Interrupted,
                    )));
                }
                Ok(Some(Ok(chunk))) => {
                    progress.blob_progress(&digest, chunk.len() as u64);
                    download.write(chunk).await.map_err(Failure::permanent)?;
                }
            }
        }
        if download.offset() < size {
            return Err(Failure::transient(target.network(
                format!(
                    "download of {digest} ended after {} of {size} bytes",
                    download.offset()
                ),
                NetworkCause::Interrupted,
            )));
        }
        Ok(())
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: whether the repository has the blob.
    pub(crate) async fn has_blob(&self, digest: &Digest) -> Result<bool> {
        let url = self.conn.url(&format!("blobs/{digest}"));
        let what = format!("blob {digest} check");
        self.conn
            .retrier()
            .run(&format!("HEAD {url}"), || async {
                let response = self.conn.send_raw(&what, |c| c.head(&url)).await?;
                match response.status() {
                    StatusCode::NOT_FOUND => Ok(false),
                    status if status.is_success() => Ok(true),
                    _ => {
                        self.conn.check(response, &what).await?;
                        Ok(false)
                    }
                }
            })
            .await
    }

    /// `POST /v2/<repo>/blobs/uploads/?mount=<digest>&from=<repo>`: `true` when the registry
    /// mounted the blob; `false` when it declined (it then expects an upload).
    pub(crate) async fn mount(&self, digest: &Digest, from: &str) -> Result<bool> {
        self.conn.add_scope(format!("repository:{from}:pull"));
        let url = self.conn.url("blobs/uploads/");
        let what = format!("mount of blob {digest} from {from}");
        let query = [("mount", digest.to_string()), ("from", from.to_owned())];
        self.conn
            .retrier()
            .run(&format!("POST {url}"), || async {
                let response = self
                    .conn
                    .send(&what, |c| {
                        c.post(&url).query(&query).header(CONTENT_LENGTH, 0)
                    })
                    .await?;
                Ok(response.status() == StatusCode::CREATED)
            })
            .await
    }

    /// Uploads a blob whose digest is known: `POST` for an upload location, then one `PUT`
    /// with the whole body. A failed attempt starts again from the beginning.
    pub(crate) async fn upload(
        &self,
        body: UploadBody<'_>,
        digest: &Digest,
        size: u64,
    ) -> Result<()> {
        let start = self.conn.url("blobs/uploads/");
        let what = format!("upload of blob {digest}");
        self.conn
            .retrier()
            .run(&format!("POST {start}"), || async {
                let response = self
                    .conn
                    .send(&what, |c| c.post(&start).header(CONTENT_LENGTH, 0))
                    .await?;
                let location = Self::location(&response, &start).ok_or_else(|| {
                    Failure::permanent(self.conn.target().registry(
                        &what,
                        response.status().as_u16(),
                        Some("the registry returned no upload location".into()),
                    ))
                })?;
                let mut url = location;
                url.query_pairs_mut()
                    .append_pair("digest", &digest.to_string());
                if let UploadBody::File(path) = &body {
                    // Opened again for every request below (a challenge repeats the request).
                    std::fs::File::open(path)
                        .map_err(|e| Failure::permanent(Error::io("failed to open", *path, e)))?;
                }
                let mismatch = Arc::new(Mutex::new(None));
                let sent = self
                    .conn
                    .send(&what, |c| {
                        let request = c
                            .put(url.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_LENGTH, size);
                        match &body {
                            UploadBody::Memory(bytes) => request.body(bytes.clone()),
                            UploadBody::File(path) => match std::fs::File::open(path) {
                                Ok(file) => {
                                    request.body(reqwest::Body::wrap_stream(verified_file_stream(
                                        tokio::fs::File::from_std(file),
                                        size,
                                        digest.clone(),
                                        Arc::clone(&mismatch),
                                    )))
                                }
                                // Vanished since the check above: the registry refuses the size.
                                Err(_) => request.body(Vec::new()),
                            },
                        }
                    })
                    .await;
                let found = mismatch
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take();
                if let (Some(found), UploadBody::File(path)) = (found, &body) {
                    return Err(Failure::permanent(Error::DigestMismatch {
                        context: format!("upload of {} (nothing was committed)", path.display()),
                        expected: digest.to_string(),
                        found,
                    }));
                }
                let response = sent?;
                if response.status() != StatusCode::CREATED && !response.status().is_success() {
                    return Err(Failure::permanent(self.conn.target().registry(
                        &what,
                        response.status().as_u16(),
                        None,
                    )));
                }
                Ok(())
            })
            .await
    }

    /// `PUT /v2/<repo>/manifests/<identifier>`.
    pub(crate) async fn put_manifest(
        &self,
        identifier: &str,
        bytes: Bytes,
        media_type: &str,
    ) -> Result<()> {
        let url = self.conn.url(&format!("manifests/{identifier}"));
        let what = format!("manifest upload as {identifier}");
        self.conn
            .retrier()
            .run(&format!("PUT {url}"), || async {
                self.conn
                    .send(&what, |c| {
                        c.put(&url)
                            .header(CONTENT_TYPE, media_type)
                            .body(bytes.clone())
                    })
                    .await?;
                Ok(())
            })
            .await
    }

    /// One page of `GET /v2/<repo>/tags/list`: its tags and the `rel="next"` link, if any.
    pub(crate) async fn tags_page(&self, url: &Url) -> Result<(Vec<String>, Option<String>)> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let what = "tag listing";
        self.conn
            .retrier()
            .run(&format!("GET {}", redacted(url)), || async {
                let response = self.conn.send(what, |c| c.get(url.clone())).await?;
                let next = next_link(response.headers().get_all(LINK).iter());
                let body = self.conn.read(response, what, MAX_TAG_PAGE).await?;
                let page: Page = serde_json::from_slice(&body).map_err(|e| {
                    Failure::permanent(self.conn.target().registry(
                        what,
                        200,
                        Some(format!("the tag list is not valid JSON: {e}")),
                    ))
                })?;
                Ok((page.tags.unwrap_or_default(), next))
            })
            .await
    }

    /// The upload location a `POST` returned, resolved against the request URL.
    fn location(response: &reqwest::Response, base: &str) -> Option<Url> {
        let value = response.headers().get(LOCATION)?.to_str().ok()?;
        Url::parse(base).and_then(|base| base.join(value)).ok()
    }
}

impl Connection {
    /// Turns an error status into its failure (for callers that accept some non-2xx statuses).
    pub(crate) async fn check(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> Result<reqwest::Response, Failure> {
        super::http::response::check_status(&self.target(), response, what, self.attempt_timeout())
            .await
    }
}

/// A file as a stream of chunks, for an upload body.
/// A file's bytes for a monolithic upload, hashed as they go: the last chunk is held back until
/// the file has proved to be `size` bytes of `expected`. A file that is not — a cached blob
/// damaged on disk, a file rewritten since it was hashed — ends the body with an error before its
/// last bytes, so the registry never receives a complete blob, and its digest is left in
/// `mismatch` for the caller to report.
fn verified_file_stream(
    file: tokio::fs::File,
    size: u64,
    expected: Digest,
    mismatch: Arc<Mutex<Option<String>>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let start = Some((file, <sha2::Sha256 as sha2::Digest>::new(), 0u64));
    futures_util::stream::unfold(start, move |state| {
        let (expected, mismatch) = (expected.clone(), Arc::clone(&mismatch));
        async move {
            let (mut file, mut hasher, mut read) = state?;
            let mut buf = vec![0u8; UPLOAD_CHUNK];
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => return Some((Err(e), None)),
            };
            buf.truncate(n);
            sha2::Digest::update(&mut hasher, &buf);
            read += n as u64;
            if n > 0 && read < size {
                return Some((Ok(Bytes::from(buf)), Some((file, hasher, read))));
            }
            let found = Digest::from_hasher(hasher);
            if read == size && found == expected {
                return (n > 0).then(|| (Ok(Bytes::from(buf)), None));
            }
            let found = if read == size {
                found.to_string()
            } else {
                format!("{found} ({read} bytes, not {size})")
            };
            *mismatch
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(found);
            Some((
                Err(std::io::Error::other("the file does not match its digest")),
                None,
            ))
        }
    })
}

/// Whether `Content-Range` is exactly `bytes <first>-<last>/<size or *>`.
fn content_range_matches(header: &str, first: u64, last: u64, size: u64) -> bool {
    let Some(rest) = header.trim().strip_prefix("bytes ") else {
        return false;
    };
    let Some((range, total)) = rest.split_once('/') else {
        return false;
    };
    let total_ok = total == "*" || total.parse::<u64>() == Ok(size);
    range
        .split_once('-')
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
        == Some((first, last))
        && total_ok
}

/// The target of the first `rel="next"` link in `Link` header values (RFC 8288).
fn next_link<'a>(values: impl Iterator<Item = &'a reqwest::header::HeaderValue>) -> Option<String> {
    values
        .filter_map(|v| v.to_str().ok())
        .find_map(next_in_value)
}

fn next_in_value(value: &str) -> Option<String> {
    let mut rest = value;
    // Each link is `<target>` followed by `;`-separated parameters up to the next `<`.
    for _ in 0..64 {
        let start = rest.find('<')?;
        let end = start + rest[start..].find('>')?;
        let target = &rest[start + 1..end];
        let after = &rest[end + 1..];
        let params_end = after.find('<').unwrap_or(after.len());
        let is_next = after[..params_end].split(';').any(|param| {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            name.trim().eq_ignore_ascii_case("rel")
                && value
                    .trim()
                    .trim_end_matches(',')
                    .trim()
                    .trim_matches('"')
                    .split_ascii_whitespace()
                    .any(|rel| rel.eq_ignore_ascii_case("next"))
        });
        if is_next {
            return Some(target.to_owned());
        }
        rest = &after[params_end..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges_must_match_exactly() {
        assert!(content_range_matches("bytes 100-999/1000", 100, 999, 1000));
        assert!(content_range_matches("bytes 100-999/*", 100, 999, 1000));
        assert!(!content_range_matches("bytes 0-999/1000", 100, 999, 1000));
        assert!(!content_range_matches("bytes 100-998/1000", 100, 999, 1000));
        assert!(!content_range_matches("bytes 100-999/1001", 100, 999, 1000));
        assert!(!content_range_matches("", 100, 999, 1000));
    }

    #[test]
    fn next_links_are_found_among_others() {
        assert_eq!(
            next_in_value(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_in_value(r#"<https://r/x?p=1>; rel="prev", <https://r/x?p=3>; rel="next""#)
                .as_deref(),
            Some("https://r/x?p=3")
        );
        assert_eq!(
            next_in_value(r#"</a>; title="x"; REL=next"#).as_deref(),
            Some("/a")
        );
        assert_eq!(next_in_value(r#"</a>; rel="prev""#), None);
        assert_eq!(next_in_value("garbage"), None);
        assert_eq!(next_in_value("<unterminated; rel=next"), None);
    }
}
