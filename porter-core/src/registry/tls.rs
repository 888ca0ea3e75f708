//! Which certificate authorities a registry connection trusts.
//!
//! Always the system roots; in addition the CA bundles named by `settings.porter.ca_file`, and
//! the `*.crt` files of `<certs dir>/<host[:port]>/` for that registry only, the `certs.d`
//! convention docker, podman and skopeo share. Client certificates (`*.cert`/`*.key`) are not
//! used.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::config::Settings;
use crate::error::{Error, Result};

/// PEM bundles to trust in addition to the system roots when talking to `host`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExtraRoots {
    /// `(file, PEM bytes)` in the order they were found.
    pub bundles: Vec<(PathBuf, Vec<u8>)>,
}

impl ExtraRoots {
    /// Reads the configured CA files and `host`'s `certs.d` directories. A configured CA file
    /// that cannot be read is an error; a missing `certs.d` directory is not.
    pub(crate) fn for_host(settings: &Settings, host: &str) -> Result<ExtraRoots> {
        let mut bundles = Vec::new();
        for file in &settings.ca_files {
            let pem =
                std::fs::read(file).map_err(|e| Error::io("failed to read CA file", file, e))?;
            bundles.push((file.clone(), pem));
        }
        for dir in &settings.certs_dirs {
            bundles.extend(certs_d(dir, host)?);
        }
        Ok(ExtraRoots { bundles })
    }

    /// The certificates in DER; a file without a certificate is an error naming it.
    pub(crate) fn to_der(&self) -> Result<Vec<CertificateDer<'static>>> {
        let mut certs = Vec::new();
        for (path, pem) in &self.bundles {
            let parsed: Vec<_> = CertificateDer::pem_slice_iter(pem)
                .collect::<std::result::Result<_, _>>()
                .ok()
                .filter(|c: &Vec<_>| !c.is_empty())
                .ok_or_else(|| Error::Config {
                    source_name: path.display().to_string(),
                    reason: "no PEM certificate in the file".into(),
                })?;
            certs.extend(parsed);
        }
        Ok(certs)
    }

    /// The TLS configuration for a connection to the registry: the system roots plus these.
    ///
    /// The system roots are read once per process, and only when a TLS handshake first needs
    /// them: a pull from a plain-HTTP registry, or one that finishes from the cache, never
    /// reads them (on hosts with `SSL_CERT_DIR` set that is hundreds of files per client).
    pub(crate) fn tls_config(&self) -> Result<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = LazyRootsVerifier {
            extra: self.to_der()?,
            provider: Arc::clone(&provider),
            inner: OnceLock::new(),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config {
                source_name: "TLS".into(),
                reason: e.to_string(),
            })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The system's root certificates, read once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        for error in &loaded.errors {
            tracing::warn!("cannot load a system CA certificate: {error}");
        }
        tracing::debug!(
            count = loaded.certs.len(),
            "loaded the system CA certificates"
        );
        loaded.certs
    })
}

/// WebPKI verification against the system roots plus a registry's extra roots, the root store
/// built on the first certificate it has to verify.
#[derive(Debug)]
struct LazyRootsVerifier {
    extra: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
    inner: OnceLock<std::result::Result<Arc<WebPkiServerVerifier>, rustls::Error>>,
}

impl LazyRootsVerifier {
    fn inner(&self) -> std::result::Result<&WebPkiServerVerifier, rustls::Error> {
        self.inner
            .get_or_init(|| {
                let mut store = rustls::RootCertStore::empty();
                for cert in &self.extra {
                    store.add(cert.clone())?;
                }
                let (_, ignored) = store.add_parsable_certificates(system_roots().iter().cloned());
                if ignored > 0 {
                    tracing::warn!("{ignored} system CA certificates were ignored as unparsable");
                }
                if store.is_empty() {
                    return Err(rustls::Error::General(
                        "no CA certificates: none in the system store and none configured".into(),
                    ));
                }
                WebPkiServerVerifier::builder_with_provider(
                    Arc::new(store),
                    Arc::clone(&self.provider),
                )
                .build()
                .map_err(|e| rustls::Error::General(e.to_string()))
            })
            .as_deref()
            .map_err(Clone::clone)
    }
}

impl ServerCertVerifier for LazyRootsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        self.inner()?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The `*.crt` files of `<dir>/<host>/`, sorted by name.
fn certs_d(dir: &Path, host: &str) -> Result<Vec<(PathBuf, Vec<u8>)>> {
    // A host is a name or address with an optional port: nothing that walks out of `dir`.
    if host.is_empty() || host.contains(['/', '\\']) || host.starts_with('.') {
        return Ok(Vec::new());
    }
    let host_dir = dir.join(host);
    let entries = match std::fs::read_dir(&host_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("failed to read", host_dir, e)),
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|ext| ext == "crt"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let pem = std::fs::read(&path).map_err(|e| Error::io("failed to read", &path, e))?;
            tracing::debug!(host, file = %path.display(), "trusting CA from certs.d");
            Ok((path, pem))
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn certs_d_reads_only_the_hosts_crt_files() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("reg.example:5000");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("ca.crt"), "A").unwrap();
        std::fs::write(host.join("b.crt"), "B").unwrap();
        std::fs::write(host.join("client.cert"), "C").unwrap();
        std::fs::write(host.join("client.key"), "K").unwrap();
        let found = certs_d(dir.path(), "reg.example:5000").unwrap();
        let names: Vec<_> = found
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["b.crt", "ca.crt"]);
        assert!(certs_d(dir.path(), "other.example").unwrap().is_empty());
        assert!(
            certs_d(dir.path(), "../reg.example:5000")
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_file_without_certificates_is_named_in_the_error() {
        let roots = ExtraRoots {
            bundles: vec![(PathBuf::from("/etc/x/ca.crt"), b"not a cert".to_vec())],
        };
        let err = roots.to_der().unwrap_err();
        assert!(err.to_string().contains("/etc/x/ca.crt"), "{err}");
    }
}
