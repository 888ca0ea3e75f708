//! A registry repository: the upstream registry a reference names and the mirrors in front of it.
//!
//! Pulls go through [`Endpoint`]s (mirrors in configured order, then the upstream) under the
//! retry policy; a mirror that fails is skipped for the rest of the pull with a warning naming it
//! and why. Pushes use `oci-client` against the upstream only.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;

use super::mirror::mirrors_for;
use super::transport::{Endpoint, HostAccess, InsecureHosts, Role};
use super::{Source, check_size, install_crypto_provider, root_descriptor};
use crate::cache::Cache;
use crate::config::Settings;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor};
use crate::progress::Progress;
use crate::reference::RegistryRef;

/// A registry repository.
pub(crate) struct Remote {
    /// What the `oci-client` client for pushes and tag listing is built from.
    client_config: OciClientConfig,
    /// That client, built on first use: a pull never needs it, and building it loads the
    /// system's root certificates.
    client: OnceLock<std::result::Result<oci_client::Client, String>>,
    pub(super) auth: RegistryAuth,
    pub(super) reference: RegistryRef,
    pub(super) plain_http: bool,
    /// How uploads are retried (pulls retry inside each endpoint).
    pub(super) retry: super::RetryPolicy,
    /// Mirrors in configured order, then the upstream registry.
    endpoints: Vec<Endpoint>,
    /// Index of the first endpoint still in use (failed mirrors are skipped).
    first: AtomicUsize,
    /// Hosts that served something, in order.
    served: Mutex<Vec<(Role, String)>>,
}

/// The settings of the `oci-client` client.
struct OciClientConfig {
    protocol: ClientProtocol,
    https_proxy: Option<String>,
    http_proxy: Option<String>,
    no_proxy: Option<String>,
    extra_root_certificates: Vec<oci_client::client::Certificate>,
}

/// Where a pull's network requests were answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Served {
    /// Nothing was fetched.
    Nothing,
    /// Only mirrors answered; the first one is named.
    Mirror(String),
    /// The upstream registry answered (perhaps after mirrors).
    Upstream,
}

impl Remote {
    /// Builds the client for one reference under the transport policy.
    pub(crate) fn new(
        settings: &Settings,
        reference: &RegistryRef,
        insecure: bool,
    ) -> Result<Self> {
        install_crypto_provider();
        let host = reference.registry.clone();
        let plain_http = settings.insecure_all
            || insecure
            || settings
                .insecure_registries
                .iter()
                .any(|r| crate::config::same_registry(r, &host));
        let protocol = if settings.insecure_all {
            ClientProtocol::Http
        } else {
            let mut plain = settings.insecure_registries.clone();
            if insecure {
                plain.push(host.clone());
            }
            if plain.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(plain)
            }
        };
        let access = HostAccess::for_host(settings, &host)?;
        let client_config = OciClientConfig {
            protocol,
            https_proxy: settings.proxy.https.clone(),
            http_proxy: settings.proxy.http.clone(),
            no_proxy: settings.proxy.no_proxy.clone(),
            extra_root_certificates: access.roots.to_oci(),
        };
        let auth = match &access.credential {
            Some((user, secret)) => RegistryAuth::Basic(user.clone(), secret.expose().to_owned()),
            None => RegistryAuth::Anonymous,
        };
        let insecure_hosts = Arc::new(InsecureHosts::new(settings, insecure.then_some(&*host)));
        let mut endpoints = Vec::new();
        for mirror in mirrors_for(&settings.mirrors, &host, &reference.repository) {
            let plain = mirror.plain_http || insecure_hosts.contains(&mirror.host);
            endpoints.push(Endpoint::new(
                settings,
                &mirror.host,
                &mirror.repository,
                Role::Mirror,
                plain,
                Arc::clone(&insecure_hosts),
                HostAccess::for_host(settings, &mirror.host)?,
            )?);
        }
        endpoints.push(Endpoint::new(
            settings,
            &host,
            &reference.repository,
            Role::Upstream,
            plain_http,
            insecure_hosts,
            access,
        )?);
        Ok(Remote {
            client_config,
            client: OnceLock::new(),
            auth,
            reference: reference.clone(),
            plain_http,
            retry: settings.retry.clone(),
            endpoints,
            first: AtomicUsize::new(0),
            served: Mutex::new(Vec::new()),
        })
    }

    /// The `oci-client` client, built on first use.
    pub(super) fn client(&self) -> Result<&oci_client::Client> {
        self.client
            .get_or_init(|| {
                let c = &self.client_config;
                let config = ClientConfig {
                    protocol: c.protocol.clone(),
                    platform_resolver: None,
                    // Uploads stream the whole blob in one PUT (chunked PATCHes are slow on
                    // distribution).
                    use_monolithic_push: true,
                    connect_timeout: Some(Duration::from_secs(30)),
                    read_timeout: Some(Duration::from_secs(120)),
                    user_agent: super::USER_AGENT,
                    https_proxy: c.https_proxy.clone(),
                    http_proxy: c.http_proxy.clone(),
                    no_proxy: c.no_proxy.clone(),
                    extra_root_certificates: c.extra_root_certificates.clone(),
                    ..Default::default()
                };
                oci_client::Client::try_from(config).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Network {
                registry: self.reference.registry.clone(),
                reason: format!("cannot build HTTP client: {e}"),
            })
    }

    /// Who answered this pull's requests.
    pub(crate) fn served(&self) -> Served {
        let served = self.served.lock().unwrap_or_else(|p| p.into_inner());
        if served.iter().any(|(role, _)| *role == Role::Upstream) {
            Served::Upstream
        } else {
            served
                .first()
                .map_or(Served::Nothing, |(_, host)| Served::Mirror(host.clone()))
        }
    }

    /// Runs `op` against the endpoints in order, from the first one still in use: a mirror's
    /// failure is logged and the next endpoint tried; the upstream's failure is the result.
    async fn each_endpoint<'s, T, F, Fut>(&'s self, what: &str, mut op: F) -> Result<T>
    where
        F: FnMut(&'s Endpoint) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let last = self.endpoints.len() - 1;
        let mut index = self.first.load(Ordering::Relaxed).min(last);
        loop {
            let endpoint = &self.endpoints[index];
            match op(endpoint).await {
                Ok(value) => {
                    let mut served = self.served.lock().unwrap_or_else(|p| p.into_inner());
                    let entry = (endpoint.role(), endpoint.host().to_owned());
                    if !served.contains(&entry) {
                        served.push(entry);
                    }
                    return Ok(value);
                }
                Err(err) if index < last => {
                    let skipped = self.first.fetch_max(index + 1, Ordering::Relaxed) <= index;
                    if skipped {
                        let next = &self.endpoints[index + 1];
                        tracing::warn!(
                            mirror = endpoint.host(),
                            "mirror {} skipped for {what}, trying {} {}: {err}",
                            endpoint.host(),
                            if next.role() == Role::Mirror {
                                "mirror"
                            } else {
                                "registry"
                            },
                            next.host(),
                        );
                    }
                    index += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    pub(super) fn oci_ref(&self, identifier: Option<&Digest>) -> oci_client::Reference {
        let r = &self.reference;
        match (identifier.or(r.digest.as_ref()), &r.tag) {
            (Some(d), _) => oci_client::Reference::with_digest(
                r.registry.clone(),
                r.repository.clone(),
                d.to_string(),
            ),
            (None, tag) => oci_client::Reference::with_tag(
                r.registry.clone(),
                r.repository.clone(),
                tag.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }

    pub(super) fn map_err(&self, err: OciDistributionError, what: &str) -> Error {
        map_oci_error(err, &self.reference, what, self.plain_http)
    }
}

/// Turns an `oci-client` error into ours, naming registry, repository and what was fetched.
fn map_oci_error(
    err: OciDistributionError,
    r: &RegistryRef,
    what: &str,
    plain_http: bool,
) -> Error {
    let registry_err = |status: u16, detail: Option<String>| Error::Registry {
        registry: r.registry.clone(),
        repository: r.repository.clone(),
        what: what.to_owned(),
        status,
        detail,
    };
    match err {
        OciDistributionError::ImageManifestNotFoundError(_) => registry_err(404, None),
        OciDistributionError::UnauthorizedError { .. } => {
            registry_err(401, Some("unauthorized".into()))
        }
        OciDistributionError::AuthenticationFailure(msg) => registry_err(401, Some(msg)),
        OciDistributionError::ServerError { code, message, .. } => {
            let message = message.trim();
            registry_err(
                code,
                (!message.is_empty()).then(|| message.chars().take(300).collect()),
            )
        }
        OciDistributionError::RegistryError { envelope, .. } => {
            let status = envelope
                .errors
                .iter()
                .map(|e| match e.code {
                    OciErrorCode::Unauthorized => 401,
                    OciErrorCode::Denied => 403,
                    OciErrorCode::Toomanyrequests => 429,
                    OciErrorCode::BlobUnknown
                    | OciErrorCode::ManifestUnknown
                    | OciErrorCode::NameUnknown
                    | OciErrorCode::NotFound => 404,
                    _ => 400,
                })
                .next()
                .unwrap_or(400);
            let detail = envelope
                .errors
                .iter()
                .map(|e| e.message.clone())
                .collect::<Vec<_>>()
                .join("; ");
            registry_err(status, (!detail.is_empty()).then_some(detail))
        }
        OciDistributionError::DigestError(e) => Error::DigestMismatch {
            context: format!("{what} from {r}"),
            expected: String::new(),
            found: e.to_string(),
        },
        OciDistributionError::RequestError(e) => {
            let mut reason = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                reason.push_str(": ");
                reason.push_str(&s.to_string());
                source = s.source();
            }
            if !plain_http && (e.is_connect() || e.is_request()) {
                reason.push_str(" (if this registry only speaks plain HTTP, pass --insecure or list it in Registry.InsecureRegistries)");
            }
            Error::Network {
                registry: r.registry.clone(),
                reason,
            }
        }
        other => Error::Network {
            registry: r.registry.clone(),
            reason: other.to_string(),
        },
    }
}

impl Source for Remote {
    async fn fetch_root(&self) -> Result<(Descriptor, Bytes)> {
        let identifier = self.reference.identifier();
        let pinned = self.reference.digest.as_ref();
        let bytes = self
            .each_endpoint(&format!("{}", self.reference), |endpoint| async {
                let bytes = endpoint.manifest(&identifier).await?;
                if let Some(pinned) = pinned {
                    digest::verify(&bytes, pinned, &format!("manifest {}", self.reference))?;
                }
                Ok(bytes)
            })
            .await?;
        let digest = Digest::of(&bytes);
        Ok((root_descriptor(&bytes, digest, None)?, bytes))
    }

    async fn fetch_manifest(&self, desc: &Descriptor) -> Result<Bytes> {
        if desc.size > manifest::MAX_MANIFEST_BYTES as u64 {
            return Err(Error::InvalidManifest {
                digest: desc.digest.to_string(),
                reason: format!(
                    "descriptor declares {} bytes, more than {}",
                    desc.size,
                    manifest::MAX_MANIFEST_BYTES
                ),
            });
        }
        let identifier = desc.digest.to_string();
        self.each_endpoint(&format!("manifest {}", desc.digest), |endpoint| async {
            let bytes = endpoint.manifest(&identifier).await?;
            digest::verify(&bytes, &desc.digest, &format!("manifest {}", desc.digest))?;
            check_size(desc, bytes.len())?;
            Ok(bytes)
        })
        .await
    }

    async fn fetch_blob(
        &self,
        desc: &Descriptor,
        cache: &Cache,
        progress: &dyn Progress,
    ) -> Result<()> {
        let Some(download) = cache.download(desc, progress).await? else {
            return Ok(());
        };
        // Each endpoint continues where the one before stopped: the bytes are the blob's
        // whoever serves them, and the digest check at the end covers all of them.
        let download = tokio::sync::Mutex::new(download);
        let result = self
            .each_endpoint(&format!("blob {}", desc.digest), |endpoint| {
                let download = &download;
                async move {
                    let mut download = download.lock().await;
                    endpoint.blob(&mut download, progress).await?;
                    let finished = download.finish().await;
                    match finished {
                        Err(err) if download.damaged_resume(&err) => {
                            endpoint.blob(&mut download, progress).await?;
                            download.finish().await
                        }
                        other => other,
                    }
                }
            })
            .await;
        download.into_inner().close().await;
        result
    }
}
