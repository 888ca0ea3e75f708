//! Tag listing: `GET /v2/<repository>/tags/list`, following `Link: <…>; rel="next"` pages.
//!
//! `oci-client` lists one page and hides the `Link` header, so the pages are fetched here with
//! `reqwest`; `oci-client` only authenticates (it answers the registry's challenge and hands back
//! the bearer token). Credentials and tokens go only to the registry's own origin: a `Link` to
//! another scheme, host or port is refused, and redirects are not followed.

use std::time::Duration;

use oci_client::RegistryOperation;
use oci_client::secrets::RegistryAuth;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LINK, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::Remote;
use super::retry::{Failure, Retrier, classify_status, parse_retry_after};
use super::tls::ExtraRoots;
use crate::config::Settings;
use crate::error::{Error, Result};

/// Bytes of one page of tags (or of an error body) read at most.
const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// How many tags a page asks for and how many pages are followed at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TagPaging {
    pub page_size: usize,
    pub max_pages: usize,
}

#[derive(Deserialize)]
struct TagPage {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Remote {
    /// Every tag of the repository, in the order the registry returns them, page after page.
    pub(crate) async fn list_tags_all(
        &self,
        settings: &Settings,
        paging: TagPaging,
    ) -> Result<Vec<String>> {
        let what = "tag listing";
        let token = self
            .client()?
            .auth(&self.oci_ref(None), &self.auth, RegistryOperation::Pull)
            .await
            .map_err(|e| self.map_err(e, "authentication for tag listing"))?;
        let authorization = match (&token, &self.auth) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, RegistryAuth::Basic(user, pass)) => Some(basic(user, pass)),
            _ => None,
        };
        let http = self.tags_client(settings)?;
        let r = &self.reference;
        let scheme = if self.plain_http { "http" } else { "https" };
        let first = format!(
            "{scheme}://{}/v2/{}/tags/list?n={}",
            r.registry,
            r.repository,
            paging.page_size.max(1)
        );
        let mut url = Url::parse(&first).map_err(|e| Error::InvalidReference {
            reference: r.to_string(),
            reason: format!("cannot form the tag list URL: {e}"),
        })?;
        let origin = url.origin();
        let mut tags = Vec::new();
        let mut seen = Vec::new();
        for _ in 0..paging.max_pages.max(1) {
            let (page, next) = self
                .tags_page(&http, &url, authorization.as_deref(), &settings.retry)
                .await?;
            tags.extend(page);
            seen.push(url.clone());
            let Some(next) = next else {
                return Ok(tags);
            };
            let next = url.join(&next).map_err(|e| {
                self.registry_error(what, 200, format!("invalid Link {next:?}: {e}"))
            })?;
            if next.origin() != origin {
                return Err(Error::Unsafe(format!(
                    "{r}: refusing to follow a tag list Link to another origin: {next}"
                )));
            }
            if seen.contains(&next) {
                return Err(self.registry_error(
                    what,
                    200,
                    format!("the Link header loops back to {next}"),
                ));
            }
            url = next;
        }
        Err(self.registry_error(
            what,
            200,
            format!("more than {} pages of tags", paging.max_pages),
        ))
    }

    /// One page under the retry policy: its tags and the `rel="next"` link, if any.
    async fn tags_page(
        &self,
        http: &reqwest::Client,
        url: &Url,
        authorization: Option<&str>,
        policy: &super::RetryPolicy,
    ) -> Result<(Vec<String>, Option<String>)> {
        let what = "tag listing";
        let mut retrier = Retrier::new(policy, policy.attempts);
        loop {
            let attempt = async {
                let mut request = http.get(url.clone());
                if let Some(value) = authorization {
                    request = request.header(AUTHORIZATION, value);
                }
                let response = tokio::time::timeout(policy.attempt_timeout, request.send())
                    .await
                    .map_err(|_| {
                        Failure::transient(self.network_error(format!(
                            "{what}: no response within {}s",
                            policy.attempt_timeout.as_secs()
                        )))
                    })?
                    .map_err(|e| {
                        let failure = Failure::from(self.network_error(format!("{what}: {e}")));
                        if e.is_builder() || e.is_redirect() {
                            Failure::permanent(failure.error)
                        } else {
                            failure
                        }
                    })?;
                let status = response.status();
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after);
                let next = next_link(response.headers().get_all(LINK).iter());
                let json = response
                    .headers()
                    .get(CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|t| t.contains("json"));
                let body = read_capped(response, policy.attempt_timeout)
                    .await
                    .map_err(|reason| {
                        Failure::transient(self.network_error(format!("{what}: {reason}")))
                    })?;
                if status != StatusCode::OK {
                    return Err(Failure {
                        error: self.registry_error_status(what, status.as_u16(), &body, json),
                        class: classify_status(status.as_u16()),
                        retry_after,
                    });
                }
                let page: TagPage = serde_json::from_slice(&body).map_err(|e| {
                    Failure::permanent(self.registry_error(
                        what,
                        200,
                        format!("the tag list is not valid JSON: {e}"),
                    ))
                })?;
                Ok((page.tags.unwrap_or_default(), next))
            };
            match attempt.await {
                Ok(page) => return Ok(page),
                Err(failure) => {
                    let reason = failure.error.to_string();
                    let delay = retrier.next_delay(failure)?;
                    tracing::warn!(
                        registry = %self.reference.registry,
                        "{what} failed ({reason}); retrying in {:.1}s",
                        delay.as_secs_f64()
                    );
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// An HTTP client for tag pages: the registry's extra CA roots, the configured proxies, no
    /// redirects.
    fn tags_client(&self, settings: &Settings) -> Result<reqwest::Client> {
        let host = &self.reference.registry;
        let roots = ExtraRoots::for_host(settings, host)?;
        super::transport::client_builder(settings, &roots)?
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Network {
                registry: host.clone(),
                reason: format!("cannot build HTTP client: {e}"),
            })
    }

    fn network_error(&self, reason: String) -> Error {
        Error::Network {
            registry: self.reference.registry.clone(),
            reason,
        }
    }

    fn registry_error(&self, what: &str, status: u16, detail: String) -> Error {
        Error::Registry {
            registry: self.reference.registry.clone(),
            repository: self.reference.repository.clone(),
            what: what.to_owned(),
            status,
            detail: Some(detail),
        }
    }

    fn registry_error_status(&self, what: &str, status: u16, body: &[u8], json: bool) -> Error {
        let detail = if json {
            #[derive(Deserialize)]
            struct Envelope {
                #[serde(default)]
                errors: Vec<EnvelopeError>,
            }
            #[derive(Deserialize)]
            struct EnvelopeError {
                #[serde(default)]
                message: String,
            }
            serde_json::from_slice::<Envelope>(body)
                .ok()
                .map(|e| {
                    e.errors
                        .into_iter()
                        .map(|e| e.message)
                        .filter(|m| !m.is_empty())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|m| !m.is_empty())
        } else {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            (!text.is_empty()).then(|| text.chars().take(300).collect())
        };
        Error::Registry {
            registry: self.reference.registry.clone(),
            repository: self.reference.repository.clone(),
            what: what.to_owned(),
            status,
            detail,
        }
    }
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {encoded}")
}

/// Reads a body of at most [`MAX_PAGE_BYTES`], each chunk within `idle`.
async fn read_capped(mut response: reqwest::Response, idle: Duration) -> Result<Vec<u8>, String> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_PAGE_BYTES as u64)
    {
        return Err(format!("response larger than {MAX_PAGE_BYTES} bytes"));
    }
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(idle, response.chunk()).await {
            Err(_) => return Err(format!("body stalled for {}s", idle.as_secs())),
            Ok(Err(e)) => return Err(format!("body broke off: {e}")),
            Ok(Ok(None)) => return Ok(out),
            Ok(Ok(Some(chunk))) => {
                if out.len() + chunk.len() > MAX_PAGE_BYTES {
                    return Err(format!("response larger than {MAX_PAGE_BYTES} bytes"));
                }
                out.extend_from_slice(&chunk);
            }
        }
    }
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
    use super::next_in_value;

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
