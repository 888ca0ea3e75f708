//! HTTPS with a private CA (a test CA and a leaf certificate it signs, as a company CA would),
//! trusted through `settings.porter.ca_file` or a `certs.d` directory; no plain HTTP (and so no
//! credentials in clear text) to a registry nobody marked insecure; configured HTTP proxies.
#![allow(clippy::unwrap_used)]

use std::fs;

use porter_e2e::cli::User;
use porter_e2e::{FaultProxy, LayerSpec, Registry, TestCa, block_on, publish_single};

fn tls_registry() -> (Registry, String) {
    let reg = Registry::start_tls(TestCa::new());
    let published = block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"over tls".to_vec())],
        &[],
    ));
    (reg, published.digest)
}

#[test]
fn a_private_ca_is_trusted_from_a_ca_file_or_a_certs_d_directory() {
    let (reg, digest) = tls_registry();
    let reference = reg.reference("demo/app:1.0");
    let user = User::new();

    let err = user.run(&["pull", &reference]).fails();
    assert!(err.contains(&reg.host()), "{err}");
    assert!(err.contains("certs.d"), "says how to trust the CA: {err}");

    let ca = user.path().join("company-ca.pem");
    fs::write(&ca, reg.ca_pem().unwrap()).unwrap();
    let result = user
        .run_with(
            &["pull", &reference],
            &[("DS_SETTINGS_PORTER_CA_FILE", ca.to_str().unwrap())],
        )
        .ok();
    assert_eq!(result["digest"], digest.as_str());

    // The default certs.d directory, per registry host (with port), as docker lays it out.
    let other = User::new();
    let host_dir = other.path().join(".config/ds/certs.d").join(reg.host());
    fs::create_dir_all(&host_dir).unwrap();
    fs::write(host_dir.join("ca.crt"), reg.ca_pem().unwrap()).unwrap();
    other.run(&["pull", &reference]).ok();

    // A certs.d entry for another host does not help.
    let third = User::new();
    let dir = third.path().join("certs");
    fs::create_dir_all(dir.join("127.0.0.1:1")).unwrap();
    fs::write(dir.join("127.0.0.1:1/ca.crt"), reg.ca_pem().unwrap()).unwrap();
    third
        .run_with(
            &["pull", &reference],
            &[("DS_SETTINGS_PORTER_CERTS_DIR", dir.to_str().unwrap())],
        )
        .fails();
}

#[test]
fn nothing_goes_over_plain_http_to_a_registry_not_marked_insecure() {
    let reg = Registry::start_with_htpasswd("user", "s3cret");
    block_on(publish_single(
        &reg,
        "demo/private:1.0",
        &[LayerSpec::binary("p", b"private".to_vec())],
        &[],
    ));
    // A plain-HTTP listener in front of it records every HTTP request it can parse.
    let proxy = FaultProxy::start(&reg.host());
    let creds = format!(
        r#"[{{"registry":"{}","username":"user","password":"s3cret"}}]"#,
        proxy.host()
    );
    let user = User::new();
    let reference = proxy.reference("demo/private:1.0");
    let err = user
        .run_with(
            &["pull", &reference],
            &[
                ("DS_AUTH_CREDENTIALS", &creds),
                ("DS_SETTINGS_PORTER_RETRIES", "0"),
            ],
        )
        .fails();
    // The listener hangs up on the TLS handshake: no HTTP answer, so no plain-HTTP suggestion.
    assert!(err.contains("handshake"), "{err}");
    assert!(!err.contains("--insecure"), "{err}");
    assert_eq!(proxy.requests(), [], "no plain-HTTP request was made");

    // Marked insecure, the same pull authenticates over plain HTTP.
    user.run_with(
        &["pull", &reference],
        &[
            ("DS_AUTH_CREDENTIALS", &creds),
            ("DS_REGISTRY_INSECURE_REGISTRIES", &proxy.host()),
        ],
    )
    .ok();
    assert!(!proxy.requests().is_empty());
}

#[test]
fn a_configured_http_proxy_carries_the_requests() {
    let reg = Registry::start();
    block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"via proxy".to_vec())],
        &[],
    ));
    // The registry itself accepts absolute-form request targets, so the fault proxy can stand
    // in for a forward proxy.
    let forward = FaultProxy::start(&reg.host());
    let user = User::new();
    let reference = reg.reference("demo/app:1.0");
    let proxy_url = format!("http://{}", forward.host());
    user.run_with(
        &["pull", &reference, "--insecure"],
        &[("DS_PROXY_HTTP_PROXY", &proxy_url)],
    )
    .ok();
    let seen = forward.requests();
    assert!(
        seen.iter()
            .any(|r| r.path == format!("http://{}/v2/demo/app/manifests/1.0", reg.host())),
        "{seen:?}"
    );

    let bypass = User::new();
    bypass
        .run_with(
            &["pull", &reference, "--insecure"],
            &[("HTTP_PROXY", &proxy_url), ("NO_PROXY", "127.0.0.1")],
        )
        .ok();
    assert_eq!(forward.requests().len(), seen.len(), "NO_PROXY bypasses it");
}
