//! Parsing of the registry's access log.
//!
//! distribution 2.8 writes one Apache "combined" line per request to stdout (gorilla/handlers),
//! after the response is complete:
//!
//! ```text
//! 127.0.0.1 - - [27/Nov/2026:19:00:53 +0000] "GET /v2/demo/x/blobs/sha256:1c62… HTTP/1.1" 200 5000000 "" "curl/7.88.1"
//! ```
//!
//! The number after the status is the count of body bytes the handler wrote (a client that hangs
//! up early shows fewer than the blob's size; HEAD shows 0). Its application log goes to stderr;
//! [`crate::Registry`] configures it as JSON, so the two kinds of line never look alike: only
//! lines of the shape above are parsed, everything else is skipped.

/// One request as the access log recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessLogEntry {
    /// HTTP method (`GET`, `HEAD`, `PUT`, …).
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// Query string without the `?`, if there was one.
    pub query: Option<String>,
    /// Response status code.
    pub status: u16,
    /// Body bytes the registry wrote.
    pub bytes_written: u64,
}

/// A `GET /v2/<repository>/blobs/<digest>` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobGet {
    /// Repository name, e.g. `demo/tool`.
    pub repository: String,
    /// Blob digest, e.g. `sha256:…`.
    pub digest: String,
    /// Response status code.
    pub status: u16,
    /// Body bytes the registry wrote.
    pub bytes_written: u64,
}

/// A `GET /v2/<repository>/manifests/<tag or digest>` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestGet {
    /// Repository name, e.g. `demo/tool`.
    pub repository: String,
    /// The tag or digest that was asked for.
    pub reference: String,
    /// Response status code.
    pub status: u16,
    /// Body bytes the registry wrote.
    pub bytes_written: u64,
}

impl AccessLogEntry {
    /// Parses one combined-format line; `None` for any other line.
    pub(crate) fn parse(line: &str) -> Option<Self> {
        // host ident user [time] "METHOD URI PROTO" status size "referer" "user-agent"
        let (_, rest) = line.split_once("] \"")?;
        let (request, rest) = rest.split_once("\" ")?;
        let mut request_parts = request.split(' ');
        let method = request_parts.next()?;
        let uri = request_parts.next()?;
        let proto = request_parts.next()?;
        if !proto.starts_with("HTTP/") || request_parts.next().is_some() || !uri.starts_with('/') {
            return None;
        }
        let mut fields = rest.split(' ');
        let status = fields.next()?.parse().ok()?;
        let bytes_written = match fields.next()? {
            "-" => 0,
            size => size.parse().ok()?,
        };
        let (path, query) = match uri.split_once('?') {
            Some((path, query)) => (path, Some(query.to_owned())),
            None => (uri, None),
        };
        Some(Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query,
            status,
            bytes_written,
        })
    }

    /// This entry as a blob GET, if it is one (upload sessions are not).
    pub fn as_blob_get(&self) -> Option<BlobGet> {
        if self.method != "GET" {
            return None;
        }
        let (repository, digest) = split_api_path(&self.path, "/blobs/")?;
        if !digest.contains(':') {
            return None;
        }
        Some(BlobGet {
            repository,
            digest,
            status: self.status,
            bytes_written: self.bytes_written,
        })
    }

    /// This entry as a manifest GET, if it is one.
    pub fn as_manifest_get(&self) -> Option<ManifestGet> {
        if self.method != "GET" {
            return None;
        }
        let (repository, reference) = split_api_path(&self.path, "/manifests/")?;
        Some(ManifestGet {
            repository,
            reference,
            status: self.status,
            bytes_written: self.bytes_written,
        })
    }
}

/// Splits `/v2/<repository><marker><last>` into repository and last segment.
fn split_api_path(path: &str, marker: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/v2/")?;
    let (repository, last) = rest.rsplit_once(marker)?;
    if repository.is_empty() || last.is_empty() || last.contains('/') {
        return None;
    }
    Some((repository.to_owned(), last.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLOB: &str = "127.0.0.1 - - [27/Nov/2026:19:00:53 +0000] \"GET /v2/demo/x/blobs/sha256:1c62c22018026316a4afdbe6dde9e7039302f09d7388ebe1d374c40bd2c16889 HTTP/1.1\" 200 5000000 \"\" \"curl/7.88.1\"";

    #[test]
    fn parses_a_blob_get() {
        let entry = AccessLogEntry::parse(BLOB).unwrap();
        assert_eq!(entry.method, "GET");
        assert_eq!(entry.status, 200);
        assert_eq!(entry.bytes_written, 5_000_000);
        let blob = entry.as_blob_get().unwrap();
        assert_eq!(blob.repository, "demo/x");
        assert_eq!(
            blob.digest,
            "sha256:1c62c22018026316a4afdbe6dde9e7039302f09d7388ebe1d374c40bd2c16889"
        );
        assert!(entry.as_manifest_get().is_none());
    }

    #[test]
    fn parses_a_manifest_get_with_a_nested_repository() {
        let line = "127.0.0.1 - - [27/Nov/2026:19:00:53 +0000] \"GET /v2/a/b/c/manifests/1.0 HTTP/1.1\" 404 96 \"\" \"oci-client/0.18\"";
        let manifest = AccessLogEntry::parse(line)
            .unwrap()
            .as_manifest_get()
            .unwrap();
        assert_eq!(manifest.repository, "a/b/c");
        assert_eq!(manifest.reference, "1.0");
        assert_eq!(manifest.status, 404);
        assert_eq!(manifest.bytes_written, 96);
    }

    #[test]
    fn upload_sessions_and_heads_are_not_blob_gets() {
        let upload = "127.0.0.1 - - [27/Nov/2026:19:00:53 +0000] \"PATCH /v2/demo/x/blobs/uploads/5d66?_state=abc HTTP/1.1\" 202 0 \"\" \"ua\"";
        let entry = AccessLogEntry::parse(upload).unwrap();
        assert_eq!(entry.query.as_deref(), Some("_state=abc"));
        assert!(entry.as_blob_get().is_none());
        let head = BLOB.replace("\"GET ", "\"HEAD ");
        assert!(
            AccessLogEntry::parse(&head)
                .unwrap()
                .as_blob_get()
                .is_none()
        );
    }

    #[test]
    fn application_log_lines_are_skipped() {
        let json = r#"{"http.request.method":"GET","http.request.uri":"/v2/","level":"info","msg":"response completed"}"#;
        assert!(AccessLogEntry::parse(json).is_none());
        let text = r#"time="2026-11-27T19:00:30Z" level=info msg="listening on 127.0.0.1:15999""#;
        assert!(AccessLogEntry::parse(text).is_none());
    }
}
