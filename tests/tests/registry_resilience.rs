//! Transient failures and hostile answers between ds-porter and a real registry, injected by
//! the fault proxy: retries with backoff and `Retry-After`, resumed downloads with `Range`,
//! and permanent errors that fail at once without leaving anything in the cache.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::time::{Duration, Instant};

use porter_e2e::cli::User;
use porter_e2e::{Fault, FaultProxy, LayerSpec, Published, Registry, block_on, publish_single};

const SIZE: usize = 1 << 20;

/// A registry with `demo/app:1.0` (one 1 MiB layer) and a fault proxy in front of it.
fn setup() -> (Registry, FaultProxy, Published) {
    let reg = Registry::start();
    let published = block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::pseudo_random("app", 7, SIZE)],
        &[],
    ));
    let proxy = FaultProxy::start(&reg.host());
    (reg, proxy, published)
}

fn layer_path(published: &Published) -> String {
    format!("/blobs/{}", published.layers[0].digest)
}

fn pull(user: &User, proxy: &FaultProxy) -> porter_e2e::cli::Run {
    user.run(&["pull", &proxy.reference("demo/app:1.0"), "--insecure"])
}

fn cached_blob(user: &User, digest: &str) -> std::path::PathBuf {
    user.cache()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

#[test]
fn an_interrupted_blob_download_resumes_with_a_closed_range() {
    let (_reg, proxy, published) = setup();
    let layer = layer_path(&published);
    proxy.inject(&layer, 1, Fault::DropAfter(300_000));
    let user = User::new();
    let result = pull(&user, &proxy).ok();
    assert_eq!(result["digest"], published.digest.as_str());

    let gets = proxy.requests_to(&layer);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[0].range, None);
    assert_eq!(
        gets[1].range.as_deref(),
        Some(format!("bytes=300000-{}", SIZE - 1).as_str()),
        "resumed from where the connection broke, as a closed range"
    );
    assert_eq!(gets[1].status, 206);
    // The whole blob was still verified against its digest before it became visible.
    let bytes = fs::read(cached_blob(&user, &published.layers[0].digest)).unwrap();
    assert_eq!(
        porter_e2e::sha256_digest(&bytes),
        published.layers[0].digest
    );
}

#[test]
fn a_connection_reset_is_retried() {
    let (_reg, proxy, published) = setup();
    proxy.inject("/manifests/", 1, Fault::Reset);
    let user = User::new();
    pull(&user, &proxy).ok();
    assert_eq!(proxy.requests_to("/manifests/1.0").len(), 2);
    assert!(cached_blob(&user, &published.layers[0].digest).is_file());
}

#[test]
fn service_unavailable_twice_then_success() {
    let (_reg, proxy, published) = setup();
    let layer = layer_path(&published);
    proxy.inject(
        &layer,
        2,
        Fault::Status {
            code: 503,
            retry_after: None,
        },
    );
    let user = User::new();
    let run = pull(&user, &proxy);
    run.ok();
    let statuses: Vec<u16> = proxy.requests_to(&layer).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert!(run.stderr().contains("retrying"), "{}", run.stderr());
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let (_reg, proxy, _) = setup();
    proxy.inject(
        "/manifests/",
        1,
        Fault::Status {
            code: 429,
            retry_after: Some("2".into()),
        },
    );
    let user = User::new();
    let started = Instant::now();
    pull(&user, &proxy).ok();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    let statuses: Vec<u16> = proxy
        .requests_to("/manifests/1.0")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200]);
}

#[test]
fn a_retry_after_beyond_the_cap_fails_at_once() {
    let (_reg, proxy, _) = setup();
    proxy.inject(
        "/manifests/",
        5,
        Fault::Status {
            code: 429,
            retry_after: Some("3600".into()),
        },
    );
    let user = User::new();
    let started = Instant::now();
    let err = pull(&user, &proxy).fails();
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        err.contains("429") && err.contains("retry after 3600s"),
        "{err}"
    );
    assert_eq!(proxy.requests_to("/manifests/").len(), 1);
}

#[test]
fn a_corrupt_byte_is_a_digest_error_and_nothing_is_cached() {
    let (_reg, proxy, published) = setup();
    let layer = layer_path(&published);
    proxy.inject(&layer, 1, Fault::CorruptByte(4096));
    let user = User::new();
    let err = pull(&user, &proxy).fails();
    assert!(err.contains("digest mismatch"), "{err}");
    assert!(err.contains(&published.layers[0].digest), "{err}");
    assert_eq!(
        proxy.requests_to(&layer).len(),
        1,
        "integrity failures are not retried"
    );
    assert!(!cached_blob(&user, &published.layers[0].digest).exists());
    assert_eq!(
        fs::read_dir(user.cache().join(".ingest")).unwrap().count(),
        0
    );
    assert_eq!(user.run(&["list"]).stdout(), "[]\n");
}

#[test]
fn permanent_errors_fail_at_once_naming_registry_repository_and_reference() {
    let (_reg, proxy, _) = setup();
    proxy.inject(
        "/manifests/",
        5,
        Fault::Status {
            code: 403,
            retry_after: None,
        },
    );
    let user = User::new();
    let err = pull(&user, &proxy).fails();
    for part in [proxy.host().as_str(), "demo/app", "1.0", "403"] {
        assert!(err.contains(part), "{part} missing from: {err}");
    }
    assert_eq!(proxy.requests_to("/manifests/").len(), 1);
}
