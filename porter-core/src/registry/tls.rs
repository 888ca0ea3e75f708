//! Which certificate authorities a registry connection trusts.
//!
//! Always the system roots; in addition the CA bundles named by `settings.porter.ca_file`, and
//! the `*.crt` files of `<certs dir>/<host[:port]>/` for that registry only, the `certs.d`
//! convention docker, podman and skopeo share. Client certificates (`*.cert`/`*.key`) are not
//! used.

use std::path::{Path, PathBuf};

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

    /// The certificates as `reqwest` roots; a file without a certificate is an error naming it.
    pub(crate) fn to_reqwest(&self) -> Result<Vec<reqwest::Certificate>> {
        let mut certs = Vec::new();
        for (path, pem) in &self.bundles {
            let parsed = reqwest::Certificate::from_pem_bundle(pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| Error::Config {
                    source_name: path.display().to_string(),
                    reason: "no PEM certificate in the file".into(),
                })?;
            certs.extend(parsed);
        }
        Ok(certs)
    }

    /// The same bundles for `oci-client`.
    pub(crate) fn to_oci(&self) -> Vec<oci_client::client::Certificate> {
        self.bundles
            .iter()
            .map(|(_, pem)| oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: pem.clone(),
            })
            .collect()
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
        let err = roots.to_reqwest().unwrap_err();
        assert!(err.to_string().contains("/etc/x/ca.crt"), "{err}");
    }
}
