//! The one pipeline every registry request goes through — manifests, blobs, HEADs, mounts,
//! uploads, tag pages, tokens — for pulls, pushes, copies and listings alike:
//!
//! - `client` builds the HTTP client (TLS roots, proxies, redirect and address rules, timeouts);
//! - `auth` answers challenges and decides where credentials and tokens may go;
//! - [`Connection::send`] sends one request, authorizes it, answers a challenge once, and turns
//!   whatever failed into a classified [`Failure`]; `response` reads bodies within caps and turns
//!   error statuses into registry errors with the registry's own message;
//! - `retry` is the combinator that retries transient and quota failures under the
//!   [`RetryPolicy`](crate::config::RetryPolicy), honouring `Retry-After`.
//!
//! A connection's client and credential are looked up lazily, on its first request, on the blocking pool
//! and within the attempt timeout: a docker credential helper that hangs fails that request,
//! naming the helper, and never stalls the runtime; a mirror that is never contacted is never
//! looked up.

pub(crate) mod auth;
pub(crate) mod client;
pub(crate) mod response;
pub(crate) mod retry;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, WWW_AUTHENTICATE};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use tokio::sync::OnceCell;

use self::auth::{Challenge, Credential, Scheme, State, TokenResponse};
use self::client::{Rules, Trusted, url_host};
use self::response::{Target, check_status, read_document, transport_failure};
use self::retry::{Failure, Retrier};
use super::tls::ExtraRoots;
use crate::config::{CredentialSecret, RetryPolicy, Settings, same_registry};
use crate::error::{Error, NetworkCause};
use crate::manifest::MAX_MANIFEST_BYTES;

/// Hosts explicitly marked insecure (plain HTTP allowed, credentials allowed there).
#[derive(Debug, Clone, Default)]
pub(crate) struct InsecureHosts {
    all: bool,
    hosts: Vec<String>,
}

impl InsecureHosts {
    /// The configured insecure registries, plus `extra` (a host the user allowed for this
    /// operation).
    pub(crate) fn new(settings: &Settings, extra: Option<&str>) -> Self {
        let mut hosts = settings.insecure_registries.clone();
        hosts.extend(extra.map(str::to_owned));
        InsecureHosts {
            all: settings.insecure_all,
            hosts,
        }
    }

    /// Whether `host` may be spoken to in plain HTTP.
    pub(crate) fn contains(&self, host: &str) -> bool {
        self.all || self.hosts.iter().any(|h| same_registry(h, host))
    }
}

/// Whether a connection serves the registry a reference names or a mirror in front of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Upstream,
    Mirror,
}

impl Role {
    /// `registry` or `mirror`, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Upstream => "registry",
            Role::Mirror => "mirror",
        }
    }
}

/// What to open a connection to.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// `host[:port]`, without user info.
    pub host: String,
    /// The repository on that host.
    pub repository: String,
    pub role: Role,
    /// Speak plain HTTP.
    pub plain_http: bool,
    /// A credential given with the endpoint itself (a mirror URL's user info); otherwise the
    /// host's credential is looked up on the first challenge.
    pub credential: Option<Credential>,
}

/// One registry host and repository, as every request to it is sent.
pub(crate) struct Connection {
    scheme: &'static str,
    host: String,
    repository: String,
    role: Role,
    attempts: u32,
    policy: RetryPolicy,
    settings: Arc<Settings>,
    insecure: Arc<InsecureHosts>,
    trusted: Arc<Trusted>,
    client: OnceCell<reqwest::Client>,
    given_credential: Option<Credential>,
    credential: OnceCell<Option<Credential>>,
    auth: Mutex<State>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &format!("{}://{}", self.scheme, self.host))
            .field("repository", &self.repository)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection; nothing is looked up or built until the first request.
    pub(crate) fn new(settings: Arc<Settings>, insecure: Arc<InsecureHosts>, spec: Spec) -> Self {
        let policy = settings.retry.clone();
        Connection {
            scheme: if spec.plain_http { "http" } else { "https" },
            attempts: match spec.role {
                Role::Upstream => policy.attempts,
                Role::Mirror => policy.mirror_attempts,
            },
            host: spec.host,
            repository: spec.repository,
            role: spec.role,
            policy,
            settings,
            insecure,
            trusted: Arc::new(Trusted::default()),
            client: OnceCell::new(),
            given_credential: spec.credential,
            credential: OnceCell::new(),
            auth: Mutex::new(State {
                scheme: Scheme::Anonymous,
                scopes: Default::default(),
            }),
        }
    }

    /// `host[:port]`.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Upstream or mirror.
    pub(crate) fn role(&self) -> Role {
        self.role
    }

    /// The retry policy and the attempts each request gets here.
    pub(crate) fn retrier(&self) -> Retrier<'_> {
        Retrier::new(&self.policy, self.attempts)
    }

    /// The chunk size uploads are split into, if any (`settings.porter.chunk_size`).
    pub(crate) fn chunk_size(&self) -> Option<u64> {
        self.settings.chunk_size
    }

    /// The attempt timeout.
    pub(crate) fn attempt_timeout(&self) -> Duration {
        self.policy.attempt_timeout
    }

    /// `<scheme>://<host>/v2/<repository>/<path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!(
            "{}://{}/v2/{}/{path}",
            self.scheme, self.host, self.repository
        )
    }

    /// For messages about this connection.
    pub(crate) fn target(&self) -> Target<'_> {
        Target {
            host: &self.host,
            repository: &self.repository,
        }
    }

    /// Adds a token scope every later token is requested with (a mount needs pull access to
    /// the source repository).
    pub(crate) fn add_scope(&self, scope: String) {
        self.state().scopes.insert(scope);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.auth.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn client(&self) -> Result<&reqwest::Client, Failure> {
        self.client
            .get_or_try_init(|| async {
                let settings = Arc::clone(&self.settings);
                let host = self.host.clone();
                let roots = crate::error::blocking("reading CA bundles", move || {
                    ExtraRoots::for_host(&settings, &host)
                })
                .await?;
                let rules = Rules {
                    host: self.host.clone(),
                    same_host_redirects_only: self.role == Role::Mirror,
                    insecure: Arc::clone(&self.insecure),
                    block_private: self.settings.block_private_redirects.unwrap_or(false),
                };
                client::build(&self.settings, &roots, rules, Arc::clone(&self.trusted))
            })
            .await
            .map_err(Failure::permanent)
    }

    /// The host's credential, looked up on the connection's first request (this may run a
    /// docker credential helper, on the blocking pool, stopped after the attempt timeout).
    async fn credential(&self) -> Result<Option<&Credential>, Failure> {
        if let Some(given) = &self.given_credential {
            return Ok(Some(given));
        }
        let found = self
            .credential
            .get_or_try_init(|| async {
                let settings = Arc::clone(&self.settings);
                let host = self.host.clone();
                let lookup = crate::error::blocking("credential lookup", move || {
                    Ok(settings
                        .credential_for(&host)?
                        .and_then(|c| match c.secret {
                            CredentialSecret::Password(p) => Some(Credential {
                                user: c.username,
                                secret: p,
                            }),
                            CredentialSecret::Token(t) => Some(Credential {
                                user: if c.username.is_empty() {
                                    "token".into()
                                } else {
                                    c.username
                                },
                                secret: t,
                            }),
                            CredentialSecret::None => None,
                        }))
                });
                let limit = self.policy.attempt_timeout + Duration::from_secs(1);
                match tokio::time::timeout(limit, lookup).await {
                    Ok(result) => result,
                    Err(_) => Err(Error::Config {
                        source_name: format!("credentials for {}", self.host),
                        reason: format!("the lookup did not finish within {}s", limit.as_secs()),
                    }),
                }
            })
            .await
            .map_err(Failure::permanent)?;
        Ok(found.as_ref())
    }

    /// Sends a request and returns its response whatever the status, after answering one
    /// authentication challenge. `build` is called once per attempt (a body is rebuilt).
    pub(crate) async fn send_raw(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let client = self.client().await?;
        // Looked up before the first request (a malformed docker config or a failing helper is
        // reported at once, naming the file or helper), then kept for the connection.
        self.credential().await?;
        let mut challenged = false;
        loop {
            let mut request = build(client).build().map_err(|e| {
                Failure::permanent(Error::InvalidInput(format!(
                    "{what}: cannot form the request: {e}"
                )))
            })?;
            let own = self.is_own(request.url());
            let scheme = self.state().scheme.clone();
            if own {
                let credential = match scheme {
                    Scheme::Basic => self.credential().await?,
                    _ => None,
                };
                scheme.apply(&mut request, credential);
            }
            let (method, url) = (request.method().clone(), request.url().clone());
            trace_headers("request", &method, &url, request.headers());
            let started = Instant::now();
            let response =
                tokio::time::timeout(self.policy.attempt_timeout, client.execute(request))
                    .await
                    .map_err(|_| {
                        Failure::transient(self.target().network(
                            format!(
                                "{what}: no response within {}s",
                                self.policy.attempt_timeout.as_secs_f64()
                            ),
                            NetworkCause::Timeout,
                        ))
                    })?
                    .map_err(|e| {
                        transport_failure(&self.target(), &e, what, self.policy.attempt_timeout)
                    })?;
            tracing::debug!(
                "{method} {} -> {} ({} bytes, {} ms, {} {}, {})",
                redacted(&url),
                response.status().as_u16(),
                response
                    .content_length()
                    .map_or_else(|| "?".to_owned(), |n| n.to_string()),
                started.elapsed().as_millis(),
                self.role.name(),
                self.host,
                scheme.name(),
            );
            trace_headers("response", &method, response.url(), response.headers());
            if response.status() == StatusCode::UNAUTHORIZED && !challenged {
                challenged = true;
                if !self.is_own(response.url()) {
                    return Err(Failure::permanent(self.target().network(
                        format!(
                            "{what}: {} redirected to {}, which asks for authentication; \
                             credentials for {} are never sent to another host",
                            self.host,
                            url_host(response.url()),
                            self.host
                        ),
                        NetworkCause::Redirect,
                    )));
                }
                if let Some(next) = self.answer_challenge(response.headers(), &scheme).await? {
                    tracing::debug!(host = %self.host, scheme = next.name(), "authenticating");
                    self.state().scheme = next;
                    continue;
                }
            }
            return Ok(response);
        }
    }

    /// [`Connection::send_raw`] with an error status turned into a classified failure.
    pub(crate) async fn send(
        &self,
        what: &str,
        build: impl Fn(&reqwest::Client) -> RequestBuilder,
    ) -> Result<Response, Failure> {
        let response = self.send_raw(what, build).await?;
        check_status(&self.target(), response, what, self.policy.attempt_timeout).await
    }

    /// A successful response's body, at most `cap` bytes.
    pub(crate) async fn read(
        &self,
        response: Response,
        what: &str,
        cap: usize,
    ) -> Result<bytes::Bytes, Failure> {
        read_document(
            &self.target(),
            response,
            what,
            cap,
            self.policy.attempt_timeout,
        )
        .await
    }

    /// Whether `url` is this connection's own host (the only place credentials and tokens go).
    fn is_own(&self, url: &Url) -> bool {
        url.scheme() == self.scheme && same_registry(&url_host(url), &self.host)
    }

    /// How to answer a 401: `Some(scheme)` to repeat the request with it, `None` to report it.
    async fn answer_challenge(
        &self,
        headers: &HeaderMap,
        current: &Scheme,
    ) -> Result<Option<Scheme>, Failure> {
        let Some(challenge) = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(Challenge::parse)
        else {
            return Ok(None);
        };
        match challenge {
            Challenge::Basic => {
                let fresh = !matches!(current, Scheme::Basic);
                Ok((fresh && self.credential().await?.is_some()).then_some(Scheme::Basic))
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let scopes: Vec<String> = {
                    let mut state = self.state();
                    state.scopes.insert(
                        scope.unwrap_or_else(|| format!("repository:{}:pull", self.repository)),
                    );
                    state.scopes.iter().cloned().collect()
                };
                let token = self
                    .fetch_token(&realm, service.as_deref(), &scopes)
                    .await?;
                Ok(Some(Scheme::Bearer(token)))
            }
        }
    }

    /// Fetches a bearer token from the realm the registry's own challenge named, with the
    /// host's credential when the realm may receive it.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<crate::config::Secret, Failure> {
        let what = "token request";
        let refused =
            |reason: String| Failure::permanent(self.target().registry(what, 401, Some(reason)));
        let url = Url::parse(realm)
            .map_err(|e| refused(format!("invalid token realm {realm:?}: {e}")))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(refused(format!("invalid token realm {realm:?}")));
        }
        let realm_host = url_host(&url);
        let credential = self.credential().await?;
        let may_send = url.scheme() == "https" || self.insecure.contains(&realm_host);
        if credential.is_some() && !may_send {
            return Err(refused(format!(
                "refusing to send credentials to the plain-HTTP token service {realm_host} \
                 (mark it insecure to allow this)"
            )));
        }
        if let Some(name) = url.host_str() {
            self.trusted.add(name);
        }
        let mut query: Vec<(&str, &str)> = scopes.iter().map(|s| ("scope", s.as_str())).collect();
        if let Some(service) = service {
            query.push(("service", service));
        }
        let client = self.client().await?;
        let what = format!("token request to {realm_host}");
        let what = what.as_str();
        let target = self.target();
        let mut retrier = self.retrier();
        loop {
            let attempt = async {
                let mut request =
                    client.get(url.clone()).query(&query).build().map_err(|e| {
                        Failure::permanent(Error::InvalidInput(format!("{what}: {e}")))
                    })?;
                if let Some(credential) = credential {
                    Scheme::Basic.apply(&mut request, Some(credential));
                }
                let started = Instant::now();
                let response =
                    tokio::time::timeout(self.policy.attempt_timeout, client.execute(request))
                        .await
                        .map_err(|_| {
                            Failure::transient(
                                target
                                    .network(format!("{what}: no response"), NetworkCause::Timeout),
                            )
                        })?
                        .map_err(|e| {
                            transport_failure(&target, &e, what, self.policy.attempt_timeout)
                        })?;
                tracing::debug!(
                    "GET {} -> {} ({} ms, token service for {})",
                    redacted(&url),
                    response.status().as_u16(),
                    started.elapsed().as_millis(),
                    self.host
                );
                let response =
                    check_status(&target, response, what, self.policy.attempt_timeout).await?;
                let body = read_document(
                    &target,
                    response,
                    what,
                    MAX_MANIFEST_BYTES,
                    self.policy.attempt_timeout,
                )
                .await?;
                serde_json::from_slice::<TokenResponse>(&body)
                    .ok()
                    .and_then(TokenResponse::into_token)
                    .ok_or_else(|| {
                        Failure::permanent(target.registry(
                            what,
                            200,
                            Some("the token service returned no token".into()),
                        ))
                    })
            };
            match attempt.await {
                Ok(token) => return Ok(token),
                Err(failure) => retrier
                    .pause(failure, &format!("GET {}", redacted(&url)))
                    .await
                    .map_err(Failure::permanent)?,
            }
        }
    }
}

/// A URL as it may be shown: without user info and query (tokens and signatures travel there).
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    if shown.query().is_some() {
        shown.set_query(Some("…"));
    }
    shown.to_string()
}

/// At trace level, the headers of a request or response, with credentials, cookies and tokens
/// replaced.
fn trace_headers(direction: &str, method: &Method, url: &Url, headers: &HeaderMap) {
    if !tracing::enabled!(tracing::Level::TRACE) {
        return;
    }
    let shown: Vec<String> = headers
        .iter()
        .map(|(name, value)| {
            let secret = value.is_sensitive()
                || matches!(
                    name.as_str(),
                    "authorization" | "proxy-authorization" | "cookie" | "set-cookie"
                )
                || name.as_str().contains("token");
            let value = if secret {
                "<redacted>".to_owned()
            } else {
                crate::display::escape_remote(&String::from_utf8_lossy(value.as_bytes()))
            };
            format!("{name}: {value}")
        })
        .collect();
    tracing::trace!(
        "{direction} {method} {}: {}",
        redacted(url),
        shown.join("; ")
    );
}
