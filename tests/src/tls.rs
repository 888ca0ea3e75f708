//! A throw-away certificate authority and a leaf certificate it signs, for TLS registries.
//!
//! The registry serves the leaf (for `127.0.0.1` and `localhost`); clients trust the CA, as
//! with a company CA, never the server certificate itself.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A test CA and a server certificate signed by it, written to a directory.
#[derive(Debug)]
pub struct TestCa {
    /// The CA certificate (PEM): what clients trust.
    pub ca_pem: String,
    /// The server certificate (PEM), signed by the CA.
    pub leaf_pem: String,
    /// The server's private key (PEM).
    pub leaf_key_pem: String,
}

impl TestCa {
    /// Generates a CA and a leaf for `127.0.0.1` and `localhost`.
    pub fn new() -> Self {
        let ca_key = KeyPair::generate().expect("generate the CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "porter-e2e test CA");
        ca_params.distinguished_name = name;
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("self-sign the CA");

        let leaf_key = KeyPair::generate().expect("generate the leaf key");
        let mut leaf_params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .expect("leaf params");
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf_params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, "porter-e2e registry");
        leaf_params.distinguished_name = name;
        let leaf = leaf_params
            .signed_by(&leaf_key, &ca)
            .expect("sign the leaf certificate");
        TestCa {
            ca_pem: ca.pem(),
            leaf_pem: leaf.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
        }
    }

    /// Writes `ca.crt`, `server.crt` and `server.key` into `dir`; returns their paths.
    pub fn write_to(&self, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        fs::create_dir_all(dir).expect("create the certificate dir");
        let ca = dir.join("ca.crt");
        let cert = dir.join("server.crt");
        let key = dir.join("server.key");
        fs::write(&ca, &self.ca_pem).expect("write ca.crt");
        fs::write(&cert, &self.leaf_pem).expect("write server.crt");
        fs::write(&key, &self.leaf_key_pem).expect("write server.key");
        (ca, cert, key)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
