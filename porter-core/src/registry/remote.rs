//! A registry repository spoken to through `oci-client`: client construction under the transport
//! policy, credentials, and error mapping.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;

use super::{Source, check_size, install_crypto_provider, root_descriptor};
use crate::cache::BlobWriter;
use crate::config::{CredentialSecret, Settings};
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::manifest::{self, ACCEPTED_MANIFEST_TYPES, Descriptor};
use crate::progress::Progress;
use crate::reference::RegistryRef;

const USER_AGENT: &str = concat!("ds-porter/", env!("CARGO_PKG_VERSION"));

/// A registry repository.
pub(crate) struct Remote {
    pub(super) client: oci_client::Client,
    pub(super) auth: RegistryAuth,
    pub(super) reference: RegistryRef,
    pub(super) plain_http: bool,
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
        let config = ClientConfig {
            protocol,
            platform_resolver: None,
            // Uploads stream the whole blob in one PUT (chunked PATCHes are slow on distribution).
            use_monolithic_push: true,
            connect_timeout: Some(Duration::from_secs(30)),
            read_timeout: Some(Duration::from_secs(120)),
            user_agent: USER_AGENT,
            https_proxy: settings.proxy.https.clone(),
            http_proxy: settings.proxy.http.clone(),
            no_proxy: settings.proxy.no_proxy.clone(),
            ..Default::default()
        };
        let client = oci_client::Client::try_from(config).map_err(|e| Error::Network {
            registry: host.clone(),
            reason: format!("cannot build HTTP client: {e}"),
        })?;
        let auth = match settings.credential_for(&host)? {
            Some(cred) => match cred.secret {
                CredentialSecret::Password(p) => {
                    RegistryAuth::Basic(cred.username, p.expose().to_owned())
                }
                CredentialSecret::Token(t) => {
                    let user = if cred.username.is_empty() {
                        "token".to_owned()
                    } else {
                        cred.username
                    };
                    RegistryAuth::Basic(user, t.expose().to_owned())
                }
                CredentialSecret::None => RegistryAuth::Anonymous,
            },
            None => RegistryAuth::Anonymous,
        };
        Ok(Remote {
            client,
            auth,
            reference: reference.clone(),
            plain_http,
        })
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
        let oci_ref = self.oci_ref(None);
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&oci_ref, &self.auth, ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(|e| self.map_err(e, "manifest request"))?;
        let digest = Digest::of(&bytes);
        if let Some(pinned) = &self.reference.digest {
            digest::verify(&bytes, pinned, &format!("manifest {}", self.reference))?;
        }
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
        let oci_ref = self.oci_ref(Some(&desc.digest));
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&oci_ref, &self.auth, ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(|e| self.map_err(e, "manifest request"))?;
        digest::verify(&bytes, &desc.digest, &format!("manifest {}", desc.digest))?;
        check_size(desc, bytes.len())?;
        Ok(bytes)
    }

    async fn fetch_blob(
        &self,
        desc: &Descriptor,
        sink: &mut BlobWriter,
        progress: &dyn Progress,
    ) -> Result<()> {
        let oci_ref = self.oci_ref(None);
        let layer = OciDescriptor {
            media_type: desc.media_type.clone(),
            digest: desc.digest.to_string(),
            size: desc.size as i64,
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(&oci_ref, &layer)
            .await
            .map_err(|e| self.map_err(e, &format!("blob {} request", desc.digest)))?;
        if let Some(len) = stream.content_length
            && len != desc.size
        {
            return Err(Error::SizeMismatch {
                digest: desc.digest.to_string(),
                expected: desc.size,
                found: len,
            });
        }
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| Error::Network {
                registry: self.reference.registry.clone(),
                reason: format!("download of {} broke off: {e}", desc.digest),
            })?;
            progress.blob_progress(&desc.digest, chunk.len() as u64);
            sink.write(chunk).await?;
        }
        Ok(())
    }
}
