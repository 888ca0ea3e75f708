//! The HTTP side of pulling from one registry endpoint (the upstream registry or a mirror):
//! manifest and blob GETs under the retry policy, token and basic authentication, and resumable
//! blob downloads.
//!
//! Pulls speak HTTP themselves (on the same `reqwest` stack `oci-client` uses) because the retry
//! policy needs what `oci-client` does not expose: `Retry-After`, the status of every attempt,
//! and `Content-Range` on resumed downloads.
//!
//! Credentials go only where they belong: to the endpoint's own host (HTTPS, or plain HTTP when
//! that host was explicitly marked insecure) and to a token service on HTTPS or on an insecure
//! host. Redirects never downgrade from HTTPS to plain HTTP, and `reqwest` drops the
//! `Authorization` header on redirects to another host.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, RANGE, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;

use super::retry::{Class, Failure, Retrier, RetryPolicy, classify_status, parse_retry_after};
use super::tls::ExtraRoots;
use crate::cache::BlobDownload;
use crate::config::{CredentialSecret, Secret, Settings, same_registry};
use crate::error::{Error, Result};
use crate::manifest::{ACCEPTED_MANIFEST_TYPES, MAX_MANIFEST_BYTES};
use crate::progress::Progress;

/// Redirects followed per request.
const MAX_REDIRECTS: usize = 10;
/// Bytes of an error body kept for the message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Resumes of one blob that made progress before the download is given up.
const MAX_RESUMES: u32 = 64;
/// Hint appended to failures that look like talking TLS to a plain-HTTP registry.
const PLAIN_HTTP_HINT: &str = "if this registry only speaks plain HTTP, pass --insecure or list it in Registry.InsecureRegistries";
/// Hint appended to certificate failures.
const CA_HINT: &str = "to trust a private CA, set settings.porter.ca_file (DS_SETTINGS_PORTER_CA_FILE) or put it in ~/.config/ds/certs.d/<host:port>/ca.crt";

/// Which hosts were explicitly marked insecure (plain HTTP allowed, credentials allowed there).
#[derive(Debug, Clone, Default)]
pub(crate) struct InsecureHosts {
    all: bool,
    hosts: Vec<String>,
}

impl InsecureHosts {
    pub(crate) fn new(settings: &Settings, extra: Option<&str>) -> Self {
        let mut hosts = settings.insecure_registries.clone();
        hosts.extend(extra.map(str::to_owned));
        InsecureHosts {
            all: settings.insecure_all,
            hosts,
        }
    }

    pub(crate) fn contains(&self, host: &str) -> bool {
        self.all || self.hosts.iter().any(|h| same_registry(h, host))
    }
}

/// Whether an endpoint is the registry the reference names or a mirror in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Upstream,
    Mirror,
}

#[derive(Debug, Clone)]
enum Auth {
    /// No challenge seen yet: requests go out without credentials.
    Anonymous,
    Basic,
    Bearer(Secret),
}

/// One registry endpoint: `<scheme>://<host>/v2/<repository>/…`.
pub(crate) struct Endpoint {
    http: reqwest::Client,
    scheme: &'static str,
    host: String,
    repository: String,
    role: Role,
    credential: Option<(String, Secret)>,
    insecure: Arc<InsecureHosts>,
    auth: Mutex<Auth>,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("url", &format!("{}://{}", self.scheme, self.host))
            .field("repository", &self.repository)
            .field("role", &self.role)
            .field("credential", &self.credential.as_ref().map(|(u, _)| u))
            .finish()
    }
}

/// What a connection to one registry host uses: its extra CA roots and its credential (basic,
/// a token going as user `token` when no user is named). Read once per host and pull: finding
/// a credential may run a docker credential helper.
pub(crate) struct HostAccess {
    pub(crate) roots: ExtraRoots,
    pub(crate) credential: Option<(String, Secret)>,
}

impl HostAccess {
    pub(crate) fn for_host(settings: &Settings, host: &str) -> Result<HostAccess> {
        let credential = settings.credential_for(host)?.and_then(|c| match c.secret {
            CredentialSecret::Password(p) => Some((c.username, p)),
            CredentialSecret::Token(t) if c.username.is_empty() => Some(("token".into(), t)),
            CredentialSecret::Token(t) => Some((c.username, t)),
            CredentialSecret::None => None,
        });
        Ok(HostAccess {
            roots: ExtraRoots::for_host(settings, host)?,
            credential,
        })
    }
}

impl Endpoint {
    /// An endpoint for `repository` on `host`, speaking plain HTTP when `plain_http`.
    pub(crate) fn new(
        settings: &Settings,
        host: &str,
        repository: &str,
        role: Role,
        plain_http: bool,
        insecure: Arc<InsecureHosts>,
        access: HostAccess,
    ) -> Result<Self> {
        let http = build_http(settings, &access.roots, &insecure).map_err(|e| Error::Network {
            registry: host.to_owned(),
            reason: format!("cannot build HTTP client: {e}"),
        })?;
        Ok(Endpoint {
            http,
            scheme: if plain_http { "http" } else { "https" },
            host: host.to_owned(),
            repository: repository.to_owned(),
            role,
            credential: access.credential,
            insecure,
            auth: Mutex::new(Auth::Anonymous),
            policy: settings.retry.clone(),
        })
    }

    /// The endpoint's host.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Upstream or mirror.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    fn attempts(&self) -> u32 {
        match self.role {
            Role::Upstream => self.policy.attempts,
            Role::Mirror => self.policy.mirror_attempts,
        }
    }

    fn url(&self, kind: &str, reference: &str) -> String {
        format!(
            "{}://{}/v2/{}/{kind}/{reference}",
            self.scheme, self.host, self.repository
        )
    }

    /// `GET /v2/<repo>/manifests/<reference>`: the manifest bytes (at most 4 MiB).
    pub(crate) async fn manifest(&self, reference: &str) -> Result<Bytes> {
        let url = self.url("manifests", reference);
        let what = format!("manifest {reference} request");
        let accept = ACCEPTED_MANIFEST_TYPES.join(", ");
        let mut retrier = Retrier::new(&self.policy, self.attempts());
        loop {
            let attempt = async {
                let response = self
                    .send(&what, |c| c.get(&url).header(ACCEPT, &accept))
                    .await?;
                let response = self.check(response, &what).await?;
                self.read_small(response, &what).await
            };
            match attempt.await {
                Ok(bytes) => return Ok(bytes),
                Err(failure) => self.pause(&mut retrier, failure, &what).await?,
            }
        }
    }

    /// Downloads the rest of a blob into `download` from its offset, resuming with a `Range`
    /// request from where an earlier download or an interrupted attempt stopped. The caller
    /// verifies the digest with [`BlobDownload::finish`].
    pub(crate) async fn blob(
        &self,
        download: &mut BlobDownload,
        progress: &dyn Progress,
    ) -> Result<()> {
        let digest = download.digest().clone();
        let url = self.url("blobs", &digest.to_string());
        let what = format!("blob {digest} request");
        let mut retrier = Retrier::new(&self.policy, self.attempts());
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
                        retrier = Retrier::new(&self.policy, self.attempts());
                    }
                    self.pause(&mut retrier, failure, &what).await?;
                    if download.offset() > 0 {
                        tracing::info!(
                            registry = %self.host,
                            digest = %digest,
                            offset = download.offset(),
                            size = download.size(),
                            "resuming blob download"
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
            .send(what, |c| {
                let request = c.get(url);
                if ranged {
                    request.header(RANGE, format!("bytes={offset}-{last}"))
                } else {
                    request
                }
            })
            .await?;
        let response = self.check(response, what).await?;
        match response.status() {
            StatusCode::PARTIAL_CONTENT if ranged => {
                let range = response
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                if !content_range_matches(range, offset, last, size) {
                    return Err(Failure::permanent(self.registry_error(
                        what,
                        206,
                        format!(
                            "asked for bytes {offset}-{last}/{size}, got Content-Range {range:?}"
                        ),
                    )));
                }
            }
            StatusCode::OK => {
                if offset > 0 {
                    tracing::debug!(registry = %self.host, %digest, "range ignored; downloading the whole blob again");
                    download.restart().await.map_err(Failure::permanent)?;
                }
            }
            status => {
                return Err(Failure::permanent(self.registry_error(
                    what,
                    status.as_u16(),
                    "unexpected status for a blob".into(),
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
        let mut body = response.bytes_stream();
        loop {
            let next = tokio::time::timeout(self.policy.attempt_timeout, body.next()).await;
            match next {
                Err(_) => {
                    return Err(Failure::transient(self.network(format!(
                        "download of {digest} stalled for {}s at byte {}",
                        self.policy.attempt_timeout.as_secs(),
                        download.offset()
                    ))));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    return Err(Failure::transient(self.network(format!(
                        "download of {digest} broke off at byte {}: {}",
                        download.offset(),
                        error_chain(&e)
                    ))));
                }
                Ok(Some(Ok(chunk))) => {
                    progress.blob_progress(&digest, chunk.len() as u64);
                    download.write(chunk).await.map_err(Failure::permanent)?;
                }
            }
        }
        if download.offset() < size {
            return Err(Failure::transient(self.network(format!(
                "download of {digest} ended after {} of {size} bytes",
                download.offset(),
            ))));
        }
        Ok(())
    }

    /// Sleeps before the next attempt, or returns the error when retrying is over.
    async fn pause(&self, retrier: &mut Retrier<'_>, failure: Failure, what: &str) -> Result<()> {
        let reason = failure.error.to_string();
        let delay = retrier.next_delay(failure)?;
        tracing::warn!(
            registry = %self.host,
            "{what} failed ({reason}); retrying in {:.1}s",
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// One request, answering an authentication challenge once.
    async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let mut challenged = false;
        loop {
            let auth = self.current_auth();
            let request = self.authorize(build(&self.http), &auth);
            let response = tokio::time::timeout(self.policy.attempt_timeout, request.send())
                .await
                .map_err(|_| {
                    Failure::transient(self.network(format!(
                        "{what}: no response within {}s",
                        self.policy.attempt_timeout.as_secs()
                    )))
                })?
                .map_err(|e| self.request_failure(&e, what))?;
            if response.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                if let Some(next) = self.answer_challenge(&response, &auth).await? {
                    *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = next;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    fn current_auth(&self) -> Auth {
        self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn authorize(&self, request: RequestBuilder, auth: &Auth) -> RequestBuilder {
        match (auth, &self.credential) {
            (Auth::Basic, Some((user, pass))) => request.basic_auth(user, Some(pass.expose())),
            (Auth::Bearer(token), _) => request.bearer_auth(token.expose()),
            _ => request,
        }
    }

    /// Works out how to answer a 401: `Some(auth)` to repeat the request with it, `None` to
    /// report the 401.
    async fn answer_challenge(
        &self,
        response: &Response,
        current: &Auth,
    ) -> Result<Option<Auth>, Failure> {
        let Some(challenge) = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(Challenge::parse)
        else {
            return Ok(None);
        };
        match challenge {
            Challenge::Basic if self.credential.is_some() && !matches!(current, Auth::Basic) => {
                Ok(Some(Auth::Basic))
            }
            Challenge::Basic => Ok(None),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository));
                let token = self.fetch_token(&realm, service.as_deref(), &scope).await?;
                Ok(Some(Auth::Bearer(token)))
            }
        }
    }

    /// Fetches a bearer token from the challenge's realm, with our credentials when the realm
    /// may receive them.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
    ) -> Result<Secret, Failure> {
        let what = "token request";
        let url = reqwest::Url::parse(realm).map_err(|e| {
            Failure::permanent(self.registry_error(
                what,
                401,
                format!("invalid token realm {realm:?}: {e}"),
            ))
        })?;
        let realm_host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let may_send_credentials = url.scheme() == "https" || self.insecure.contains(&realm_host);
        if self.credential.is_some() && !may_send_credentials {
            return Err(Failure::permanent(self.registry_error(
                what,
                401,
                format!(
                    "refusing to send credentials to the plain-HTTP token service {realm_host} \
                     (mark it insecure to allow this)"
                ),
            )));
        }
        let mut query: Vec<(&str, &str)> = vec![("scope", scope)];
        if let Some(service) = service {
            query.push(("service", service));
        }
        let mut retrier = Retrier::new(&self.policy, self.attempts());
        loop {
            let attempt = async {
                let mut request = self.http.get(url.clone()).query(&query);
                if let Some((user, pass)) = &self.credential {
                    request = request.basic_auth(user, Some(pass.expose()));
                }
                let response = tokio::time::timeout(self.policy.attempt_timeout, request.send())
                    .await
                    .map_err(|_| Failure::transient(self.network(format!("{what}: no response"))))?
                    .map_err(|e| self.request_failure(&e, what))?;
                let response = self.check(response, what).await?;
                let body = self.read_small(response, what).await?;
                #[derive(Deserialize)]
                struct TokenResponse {
                    token: Option<String>,
                    access_token: Option<String>,
                }
                let parsed: TokenResponse = serde_json::from_slice(&body).map_err(|e| {
                    Failure::permanent(self.registry_error(what, 200, format!("bad token: {e}")))
                })?;
                parsed
                    .token
                    .or(parsed.access_token)
                    .filter(|t| !t.is_empty())
                    .map(Secret::new)
                    .ok_or_else(|| {
                        Failure::permanent(self.registry_error(
                            what,
                            200,
                            "the token service returned no token".into(),
                        ))
                    })
            };
            match attempt.await {
                Ok(token) => return Ok(token),
                Err(failure) => {
                    let reason = failure.error.to_string();
                    let delay = retrier.next_delay(failure).map_err(Failure::permanent)?;
                    tracing::warn!(registry = %self.host, "{what} failed ({reason}); retrying");
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }

    /// Passes a success through; turns an error status into a classified failure.
    async fn check(&self, response: Response, what: &str) -> Result<Response, Failure> {
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.contains("json"));
        let body = read_capped(response, MAX_ERROR_BODY, self.policy.attempt_timeout)
            .await
            .unwrap_or_default();
        let detail = error_detail(&body, json);
        Err(Failure {
            error: Error::Registry {
                registry: self.host.clone(),
                repository: self.repository.clone(),
                what: what.to_owned(),
                status: status.as_u16(),
                detail,
            },
            class: classify_status(status.as_u16()),
            retry_after,
        })
    }

    async fn read_small(&self, response: Response, what: &str) -> Result<Bytes, Failure> {
        if response
            .content_length()
            .is_some_and(|len| len > MAX_MANIFEST_BYTES as u64)
        {
            return Err(Failure::permanent(self.registry_error(
                what,
                response.status().as_u16(),
                format!("response larger than {MAX_MANIFEST_BYTES} bytes"),
            )));
        }
        let status = response.status().as_u16();
        read_capped(response, MAX_MANIFEST_BYTES, self.policy.attempt_timeout)
            .await
            .map_err(|e| match e {
                // A registry that streams an oversized document would do it again: no retry.
                BodyError::TooLarge(cap) => Failure::permanent(self.registry_error(
                    what,
                    status,
                    format!("response larger than {cap} bytes"),
                )),
                BodyError::Broken(reason) => {
                    Failure::transient(self.network(format!("{what}: {reason}")))
                }
            })
    }

    fn request_failure(&self, e: &reqwest::Error, what: &str) -> Failure {
        let mut reason = format!("{what}: {}", error_chain(e));
        let tls = tls_error(e);
        if tls.is_some_and(|t| matches!(t, rustls::Error::InvalidCertificate(_))) {
            reason.push_str(&format!(" ({CA_HINT})"));
        } else if self.scheme == "https" && (e.is_connect() || e.is_request()) {
            reason.push_str(&format!(" ({PLAIN_HTTP_HINT})"));
        }
        let error = self.network(reason);
        if tls.is_some() || e.is_builder() || e.is_redirect() {
            Failure::permanent(error)
        } else {
            Failure::transient(error)
        }
    }

    fn network(&self, reason: String) -> Error {
        Error::Network {
            registry: self.host.clone(),
            reason,
        }
    }

    fn registry_error(&self, what: &str, status: u16, detail: String) -> Error {
        Error::Registry {
            registry: self.host.clone(),
            repository: self.repository.clone(),
            what: what.to_owned(),
            status,
            detail: Some(detail),
        }
    }
}

/// Builds the HTTP client: system roots plus `roots`, configured proxies only, no redirect
/// from HTTPS to plain HTTP unless the target host is insecure.
fn build_http(
    settings: &Settings,
    roots: &ExtraRoots,
    insecure: &Arc<InsecureHosts>,
) -> Result<reqwest::Client> {
    let insecure = Arc::clone(insecure);
    let redirect = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error("too many redirects");
        }
        let downgrade = attempt.url().scheme() == "http"
            && attempt.previous().iter().any(|u| u.scheme() == "https");
        let host = attempt.url().host_str().unwrap_or_default().to_owned();
        let host = match attempt.url().port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        if downgrade && !insecure.contains(&host) {
            return attempt.error(format!(
                "refusing a redirect from HTTPS to plain HTTP ({host})"
            ));
        }
        attempt.follow()
    });
    client_builder(settings, roots)?
        .redirect(redirect)
        .build()
        .map_err(|e| Error::Network {
            registry: String::new(),
            reason: error_chain(&e),
        })
}

/// The settings every registry HTTP client shares: user agent, timeouts from the retry policy,
/// the system roots plus `roots`, and only the configured proxies.
pub(super) fn client_builder(
    settings: &Settings,
    roots: &ExtraRoots,
) -> Result<reqwest::ClientBuilder> {
    let timeout = settings.retry.attempt_timeout;
    let mut builder = reqwest::Client::builder()
        .user_agent(super::USER_AGENT)
        .connect_timeout(timeout.min(Duration::from_secs(30)))
        .read_timeout(timeout)
        .no_proxy()
        .tls_backend_preconfigured(roots.tls_config()?);
    let no_proxy = settings
        .proxy
        .no_proxy
        .as_deref()
        .and_then(reqwest::NoProxy::from_string);
    if let Some(url) = &settings.proxy.https {
        let proxy = reqwest::Proxy::https(url).map_err(|e| Error::Config {
            source_name: "Proxy.HTTPSProxy".into(),
            reason: e.to_string(),
        })?;
        builder = builder.proxy(proxy.no_proxy(no_proxy.clone()));
    }
    if let Some(url) = &settings.proxy.http {
        let proxy = reqwest::Proxy::http(url).map_err(|e| Error::Config {
            source_name: "Proxy.HTTPProxy".into(),
            reason: e.to_string(),
        })?;
        builder = builder.proxy(proxy.no_proxy(no_proxy));
    }
    Ok(builder)
}

/// Why a capped body could not be read.
#[derive(Debug)]
enum BodyError {
    /// The body went past the cap (in bytes).
    TooLarge(usize),
    /// The body stalled or broke off.
    Broken(String),
}

/// Reads a body of at most `cap` bytes, each chunk within `idle`.
async fn read_capped(response: Response, cap: usize, idle: Duration) -> Result<Bytes, BodyError> {
    let mut body = response.bytes_stream();
    let mut out = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, body.next()).await {
            Err(_) => {
                return Err(BodyError::Broken(format!(
                    "body stalled for {}s",
                    idle.as_secs()
                )));
            }
            Ok(None) => return Ok(out.freeze()),
            Ok(Some(Err(e))) => {
                return Err(BodyError::Broken(format!(
                    "body broke off: {}",
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

/// The messages of an OCI error envelope, or the start of a plain-text body.
fn error_detail(body: &[u8], json: bool) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        errors: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        message: String,
    }
    if let Ok(envelope) = serde_json::from_slice::<Envelope>(body) {
        let messages: Vec<String> = envelope
            .errors
            .into_iter()
            .map(|e| e.message)
            .filter(|m| !m.is_empty())
            .collect();
        return (!messages.is_empty()).then(|| messages.join("; "));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    (!json && !text.is_empty()).then(|| text.chars().take(300).collect())
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

/// The rustls error in an error's source chain, if any.
fn tls_error(e: &reqwest::Error) -> Option<&rustls::Error> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut hops = 0;
    while let Some(s) = source {
        hops += 1;
        if hops > 32 {
            break;
        }
        if let Some(tls) = s.downcast_ref::<rustls::Error>() {
            return Some(tls);
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

/// An error and its sources, joined with `: `.
fn error_chain(e: &dyn std::error::Error) -> String {
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

/// A `WWW-Authenticate` challenge.
#[derive(Debug, PartialEq, Eq)]
enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, params) = header.split_once(' ').unwrap_or((header, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge::Bearer {
            realm: get("realm")?,
            service: get("service"),
            scope: get("scope"),
        })
    }
}

/// `key="value", key=value` pairs; quoted values may contain commas.
fn parse_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key.trim().trim_start_matches(',').trim().to_owned();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.find('"') {
                Some(end) => (quoted[..end].to_owned(), &quoted[end + 1..]),
                None => (quoted.to_owned(), ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (after[..end].trim().to_owned(), &after[end..]),
                None => (after.trim().to_owned(), ""),
            }
        };
        out.push((key, value));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse("bearer realm=https://a/t, service=s"),
            Some(Challenge::Bearer {
                realm: "https://a/t".into(),
                service: Some("s".into()),
                scope: None,
            })
        );
        assert_eq!(Challenge::parse("Bearer service=s"), None);
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

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
    fn error_bodies_become_details() {
        assert_eq!(
            error_detail(
                br#"{"errors":[{"code":"DENIED","message":"no"},{"code":"X","message":"way"}]}"#,
                true
            )
            .as_deref(),
            Some("no; way")
        );
        assert_eq!(
            error_detail(b"upstream down\n", false).as_deref(),
            Some("upstream down")
        );
        assert_eq!(error_detail(b"", false), None);
    }
}
