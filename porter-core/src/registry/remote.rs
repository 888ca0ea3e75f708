//! A registry repository: the upstream registry a reference names and the mirrors in front of it.
//!
//! Pulls go through the endpoints in order — mirrors as configured, then the upstream. A mirror
//! that fails in any way (unreachable, an error status, a body that is not a manifest, a media
//! type that contradicts the content, content that does not match its digest or size, a redirect
//! to another host) is skipped for the rest of the pull with one warning naming it and why, and
//! the next endpoint is tried. When the upstream fails too, the error lists every mirror skipped
//! and why. Pushes, mounts and tag listings go to the upstream only. Nothing is looked up or
//! connected until the first request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

use super::endpoint::Endpoint;
use super::http::{Connection, InsecureHosts, Role, Spec};
use super::mirror::mirrors_for;
use super::{Source, check_size, install_crypto_provider, root_descriptor};
use crate::cache::Cache;
use crate::config::Settings;
use crate::digest::{self, Digest};
use crate::error::{Error, Result};
use crate::manifest::{self, Descriptor};
use crate::progress::Progress;
use crate::reference::RegistryRef;

/// A registry repository and the mirrors in front of it.
pub(crate) struct Remote {
    reference: RegistryRef,
    /// Mirrors in configured order, then the upstream registry.
    endpoints: Vec<Endpoint>,
    /// Index of the first endpoint still in use (failed mirrors are skipped).
    first: AtomicUsize,
    /// Hosts that served something, in order.
    served: Mutex<Vec<(Role, String)>>,
    /// Mirrors skipped so far and why.
    skipped: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("reference", &self.reference.to_string())
            .field("endpoints", &self.endpoints)
            .finish_non_exhaustive()
    }
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
    /// The repository `reference` names, behind its mirrors. `insecure` allows plain HTTP to
    /// the reference's own registry.
    pub(crate) fn new(settings: &Settings, reference: &RegistryRef, insecure: bool) -> Self {
        Self::build(settings, reference, insecure, true)
    }

    /// The repository alone, without mirrors: what pushes, mounts and listings talk to.
    pub(crate) fn upstream_only(
        settings: &Settings,
        reference: &RegistryRef,
        insecure: bool,
    ) -> Self {
        Self::build(settings, reference, insecure, false)
    }

    fn build(settings: &Settings, reference: &RegistryRef, insecure: bool, mirrors: bool) -> Self {
        install_crypto_provider();
        let host = reference.registry.clone();
        let insecure_hosts = Arc::new(InsecureHosts::new(settings, insecure.then_some(&*host)));
        let settings = Arc::new(settings.clone());
        let mut endpoints = Vec::new();
        if mirrors {
            for mirror in mirrors_for(&settings.mirrors, &host, &reference.repository) {
                let plain_http = mirror.plain_http || insecure_hosts.contains(&mirror.host);
                let spec = Spec {
                    host: mirror.host,
                    repository: mirror.repository,
                    role: Role::Mirror,
                    plain_http,
                    credential: mirror.credential,
                };
                endpoints.push(Endpoint::new(Connection::new(
                    Arc::clone(&settings),
                    Arc::clone(&insecure_hosts),
                    spec,
                )));
            }
        }
        let spec = Spec {
            plain_http: insecure_hosts.contains(&host),
            host,
            repository: reference.repository.clone(),
            role: Role::Upstream,
            credential: None,
        };
        endpoints.push(Endpoint::new(Connection::new(
            settings,
            insecure_hosts,
            spec,
        )));
        Remote {
            reference: reference.clone(),
            endpoints,
            first: AtomicUsize::new(0),
            served: Mutex::new(Vec::new()),
            skipped: Mutex::new(Vec::new()),
        }
    }

    /// The repository this remote names.
    pub(crate) fn reference(&self) -> &RegistryRef {
        &self.reference
    }

    /// The registry the reference names.
    pub(crate) fn upstream(&self) -> &Endpoint {
        // `build` always pushes the upstream last.
        &self.endpoints[self.endpoints.len() - 1]
    }

    /// Who answered this pull's requests.
    pub(crate) fn served(&self) -> Served {
        let served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
        if served.iter().any(|(role, _)| *role == Role::Upstream) {
            Served::Upstream
        } else {
            served
                .first()
                .map_or(Served::Nothing, |(_, host)| Served::Mirror(host.clone()))
        }
    }

    /// Runs `op` against the endpoints in order, from the first one still in use: a mirror's
    /// failure is logged once and the next endpoint tried; the upstream's failure is the result,
    /// listing the mirrors skipped.
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
                    let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
                    let entry = (endpoint.conn().role(), endpoint.conn().host().to_owned());
                    if !served.contains(&entry) {
                        served.push(entry);
                    }
                    return Ok(value);
                }
                Err(err) if index < last => {
                    let skipped = self.first.fetch_max(index + 1, Ordering::Relaxed) <= index;
                    if skipped {
                        let next = self.endpoints[index + 1].conn();
                        let host = endpoint.conn().host();
                        tracing::warn!(
                            "mirror {host} skipped for the rest of this pull ({what}: {err}); trying {} {}",
                            next.role().name(),
                            next.host(),
                        );
                        self.skipped
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(format!("mirror {host}: {err}"));
                    }
                    index += 1;
                }
                Err(err) => {
                    let tried = self
                        .skipped
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    return Err(if tried.is_empty() {
                        err
                    } else {
                        Error::Endpoints {
                            source: Box::new(err),
                            tried,
                        }
                    });
                }
            }
        }
    }
}

impl Source for Remote {
    async fn fetch_root(&self) -> Result<(Descriptor, Bytes)> {
        let identifier = self.reference.identifier();
        let pinned = self.reference.digest.as_ref();
        let shown = self.reference.to_string();
        self.each_endpoint(&shown, |endpoint| async {
            let served = endpoint.manifest(&identifier).await?;
            if let Some(pinned) = pinned {
                digest::verify(&served.bytes, pinned, &format!("manifest {shown}"))?;
            }
            let digest = Digest::of(&served.bytes);
            let desc = root_descriptor(&served.bytes, digest, served.content_type.as_deref())?;
            // A body that is not a usable document is the endpoint's failure (a mirror's login
            // page, an error document served with 200), not the artifact's.
            manifest::parse(&served.bytes, &desc.media_type, &desc.digest)?;
            Ok((desc, served.bytes))
        })
        .await
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
            let served = endpoint.manifest(&identifier).await?;
            digest::verify(
                &served.bytes,
                &desc.digest,
                &format!("manifest {}", desc.digest),
            )?;
            check_size(desc, served.bytes.len())?;
            Ok(served.bytes)
        })
        .await
    }

    async fn fetch_blob(
        &self,
        desc: &Descriptor,
        cache: &Cache,
        progress: &dyn Progress,
    ) -> Result<bool> {
        let Some(download) = cache.download(desc, progress).await? else {
            return Ok(false);
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
        result.map(|()| true)
    }
}
