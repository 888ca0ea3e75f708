//! Turning what came back into a result: a transport failure into a classified network error,
//! an error status into a classified registry error with the registry's own message, and a body
//! into bytes read within a cap and a per-chunk timeout.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::Response;
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use serde::Deserialize;

use super::client::ResolveError;
use super::retry::{Failure, classify_status, parse_retry_after};
use crate::error::{Error, NetworkCause};

/// Bytes of an error body kept for the message.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;

/// Where a request went, for messages: the registry host and the repository.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    pub host: &'a str,
    pub repository: &'a str,
}

impl Target<'_> {
    pub(crate) fn network(&self, reason: String, cause: NetworkCause) -> Error {
        Error::Network {
            registry: self.host.to_owned(),
            reason,
            cause,
        }
    }

    pub(crate) fn registry(&self, what: &str, status: u16, detail: Option<String>) -> Error {
        Error::Registry {
            registry: self.host.to_owned(),
            repository: self.repository.to_owned(),
            what: what.to_owned(),
            status,
            detail,
        }
    }
}

/// Classifies a request that got no response.
pub(crate) fn transport_failure(
    target: &Target<'_>,
    e: &reqwest::Error,
    what: &str,
    timeout: Duration,
) -> Failure {
    let (cause, reason) = match find_source::<ResolveError>(e) {
        Some(resolve) if resolve.refused => (NetworkCause::Redirect, resolve.to_string()),
        Some(resolve) => (NetworkCause::Dns, resolve.to_string()),
        None => match tls_error(e) {
            Some(rustls::Error::InvalidCertificate(problem)) => (
                NetworkCause::UntrustedCertificate,
                format!("the server's certificate is not trusted ({problem:?})"),
            ),
            Some(rustls::Error::InvalidMessage(_)) => (
                NetworkCause::PlainHttpAnswer,
                "the server answered the TLS handshake in plain HTTP".to_owned(),
            ),
            Some(other) => (NetworkCause::Tls, format!("TLS failure: {other}")),
            None if e.is_timeout() => (
                NetworkCause::Timeout,
                format!("no response within {}s", timeout.as_secs_f64()),
            ),
            None if e.is_redirect() => (NetworkCause::Redirect, causes(e)),
            None if e.is_connect() => (NetworkCause::Connect, causes(e)),
            None if e.is_body() || e.is_decode() => (NetworkCause::Interrupted, causes(e)),
            None => (NetworkCause::Other, causes(e)),
        },
    };
    let error = target.network(format!("{what}: {reason}"), cause);
    if cause.is_transient() && !e.is_builder() {
        Failure::transient(error)
    } else {
        Failure::permanent(error)
    }
}

/// Passes a success through; turns an error status into a classified failure carrying the
/// registry's message (its error envelope, or the start of a text body).
pub(crate) async fn check_status(
    target: &Target<'_>,
    response: Response,
    what: &str,
    idle: Duration,
) -> Result<Response, Failure> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let body = read_capped(response, MAX_ERROR_BODY, idle)
        .await
        .unwrap_or_default();
    let detail = error_detail(&body, &content_type);
    Err(Failure {
        error: target.registry(what, status.as_u16(), detail),
        class: classify_status(status.as_u16()),
        retry_after,
    })
}

/// Why a capped body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// The body went past the cap (in bytes).
    TooLarge(usize),
    /// The body stalled or broke off.
    Broken(String),
}

/// Reads a body of at most `cap` bytes, each chunk within `idle`.
pub(crate) async fn read_capped(
    response: Response,
    cap: usize,
    idle: Duration,
) -> Result<Bytes, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(BodyError::TooLarge(cap));
    }
    let mut body = response.bytes_stream();
    let mut out = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => {
                return Err(BodyError::Broken(format!(
                    "the body stalled for {}s",
                    idle.as_secs()
                )));
            }
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(e))) => {
                return Err(BodyError::Broken(format!(
                    "the body broke off: {}",
                    error_chain(&e)
                )));
            }
            Ok(Some(Ok(chunk))) => {
                if out.len() + chunk.len() > cap {
                    return Err(BodyError::TooLarge(cap));
                }
                out.extend_from_slice(&chunk);
            }
        }
    }
}

/// Reads a small document (a manifest, a token, a tag page): a body over `cap` is a permanent
/// failure (a registry that sends one would send it again), a broken one a transient failure.
pub(crate) async fn read_document(
    target: &Target<'_>,
    response: Response,
    what: &str,
    cap: usize,
    idle: Duration,
) -> Result<Bytes, Failure> {
    let status = response.status().as_u16();
    read_capped(response, cap, idle).await.map_err(|e| match e {
        BodyError::TooLarge(cap) => Failure::permanent(target.registry(
            what,
            status,
            Some(format!("response larger than {cap} bytes")),
        )),
        BodyError::Broken(reason) => Failure::transient(
            target.network(format!("{what}: {reason}"), NetworkCause::Interrupted),
        ),
    })
}

/// The messages of an OCI error envelope; for an HTML page, that it is not a registry response;
/// otherwise the start of a text body. Remote text is escaped for display.
pub(crate) fn error_detail(body: &[u8], content_type: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        let messages: Vec<String> = envelope
            .errors
            .into_iter()
            .map(|e| {
                if e.message.is_empty() {
                    e.code
                } else {
                    e.message
                }
            })
            .filter(|m| !m.is_empty())
            .map(|m| crate::display::escape_remote(&m))
            .collect();
        return (!messages.is_empty()).then(|| messages.join("; "));
    }
    if looks_like_html(body, content_type) {
        return Some("not a registry response (an HTML page)".into());
    }
    if content_type.contains("json") {
        return None;
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!text.is_empty())
        .then(|| crate::display::escape_remote(&text.chars().take(300).collect::<String>()))
}

/// Whether a body is an HTML page (a login portal, a proxy's error page).
pub(crate) fn looks_like_html(body: &[u8], content_type: &str) -> bool {
    let content_type = content_type.trim().to_ascii_lowercase();
    if content_type.starts_with("text/html") || content_type.starts_with("application/xhtml") {
        return true;
    }
    let start = String::from_utf8_lossy(&body[..body.len().min(256)]).to_ascii_lowercase();
    let start = start.trim_start();
    start.starts_with("<!doctype html") || start.starts_with("<html")
}

/// The first error of type `E` in an error's source chain (looking inside `io::Error`s).
fn find_source<'e, E: std::error::Error + 'static>(
    e: &'e (dyn std::error::Error + 'static),
) -> Option<&'e E> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    for _ in 0..32 {
        let s = source?;
        if let Some(found) = s.downcast_ref::<E>() {
            return Some(found);
        }
        // `io::Error::source` skips the error it wraps; look inside.
        if let Some(inner) = s
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            source = Some(inner);
            continue;
        }
        source = s.source();
    }
    None
}

/// The rustls error in an error's source chain, if any.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    find_source::<rustls::Error>(e)
}

/// What went wrong below a request error (its own text repeats the URL), joined with `: `.
fn causes(e: &reqwest::Error) -> String {
    match std::error::Error::source(e) {
        Some(source) => error_chain(source),
        None => e.to_string(),
    }
}

/// An error and its sources, joined with `: `.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_details() {
        assert_eq!(
            error_detail(
                br#"{"errors":[{"code":"DENIED","message":"no"},{"code":"X","message":"way"}]}"#,
                "application/json"
            )
            .as_deref(),
            Some("no; way")
        );
        assert_eq!(
            error_detail(
                br#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
                "application/json"
            )
            .as_deref(),
            Some("UNAUTHORIZED")
        );
        assert_eq!(
            error_detail(b"upstream down\n", "text/plain").as_deref(),
            Some("upstream down")
        );
        assert_eq!(
            error_detail(b"<!DOCTYPE html><title>Login</title>", "").as_deref(),
            Some("not a registry response (an HTML page)")
        );
        assert_eq!(
            error_detail(b"bad\x1b]0;title\x07", "text/plain").as_deref(),
            Some("bad\\u{1b}]0;title\\u{7}")
        );
        assert_eq!(error_detail(b"", "text/plain"), None);
        assert_eq!(error_detail(b"{}", "application/json"), None);
    }
}
