//! Tag listing across `Link` pages, against a small paginating registry on loopback.
//!
//! The real registry the other suites use (distribution 2.8) ignores `n` and sends every tag at
//! once without a `Link` header, so paging is exercised here against a server that pages as the
//! OCI distribution spec describes — and that can also misbehave: links to another origin,
//! links that loop, endless pages, throttling, bearer-token challenges, `"tags": null`.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use porter_adapter::{AdapterOptions, Error, PorterAdapter};
use porter_core::Porter;
use porter_core::config::{HostConfig, Settings};
use porter_core::tags::TagListRequest;
use porter_e2e::tag_server::{TAGS, TOKEN, TagServer};
use serde_json::json;

fn settings(dir: &Path, host: &str) -> Settings {
    let config = json!({
        "Cache": {"Dir": dir.join("cache")},
        "Registry": {"Default": "", "InsecureRegistries": [host]},
        "Auth": {"DockerConfig": ""},
    });
    let mut settings = HostConfig::from_json(config.to_string().as_bytes())
        .unwrap()
        .to_settings(&|_| None, dir)
        .unwrap();
    settings.retry.attempts = 3;
    settings.retry.initial_backoff = Duration::from_millis(10);
    settings
}

fn adapter(dir: &Path, host: &str, page_size: usize) -> PorterAdapter {
    let options = AdapterOptions {
        store_path: Some(dir.join("store.db")),
        tag_page_size: page_size,
        ..AdapterOptions::default()
    };
    PorterAdapter::open(settings(dir, host), options).unwrap()
}

#[tokio::test]
async fn link_pages_are_followed_to_the_end_in_order() {
    let server = TagServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    for (page_size, requests) in [(2, 4), (3, 3), (7, 1), (100, 1)] {
        let before = server.seen("/v2/paged/app/tags/list").len();
        let tags = adapter(dir.path(), &server.host, page_size)
            .list_installations(&format!("{}/paged/app", server.host))
            .await
            .unwrap();
        assert_eq!(tags, TAGS, "page size {page_size}");
        let pages = server.seen("/v2/paged/app/tags/list");
        assert_eq!(
            pages.len() - before,
            requests,
            "page size {page_size}: {pages:?}"
        );
    }
    let pages: Vec<String> = server
        .seen("/v2/paged/app/tags/list")
        .into_iter()
        .take(4)
        .map(|s| s.target)
        .collect();
    assert_eq!(
        pages,
        [
            "/v2/paged/app/tags/list?n=2",
            "/v2/paged/app/tags/list?n=2&last=beta",
            "/v2/paged/app/tags/list?n=2&last=v1",
            "/v2/paged/app/tags/list?n=2&last=v2",
        ]
    );

    let absolute = adapter(dir.path(), &server.host, 2)
        .list_installations(&format!("{}/absolute/app", server.host))
        .await
        .unwrap();
    assert_eq!(absolute, TAGS);
    let null = adapter(dir.path(), &server.host, 2)
        .list_installations(&format!("{}/null/app", server.host))
        .await
        .unwrap();
    assert!(null.is_empty());
}

#[tokio::test]
async fn a_bearer_token_is_fetched_and_sent_with_every_page() {
    let server = TagServer::start(true);
    let dir = tempfile::tempdir().unwrap();
    let tags = adapter(dir.path(), &server.host, 3)
        .list_installations(&format!("{}/paged/app", server.host))
        .await
        .unwrap();
    assert_eq!(tags, TAGS);
    // The first request goes out anonymously and is answered with the challenge; every page
    // is then fetched with the token.
    let mut pages = server.seen("/v2/paged/app/tags/list");
    assert_eq!(
        pages.first().map(|p| p.authorization.is_none()),
        Some(true),
        "{pages:?}"
    );
    pages.remove(0);
    assert_eq!(pages.len(), 3, "{pages:?}");
    let bearer = format!("Bearer {TOKEN}");
    assert!(
        pages
            .iter()
            .all(|p| p.authorization.as_deref() == Some(bearer.as_str())),
        "{pages:?}"
    );
    assert!(!server.seen("/token").is_empty());
}

#[tokio::test]
async fn links_to_another_origin_or_back_to_a_seen_page_are_refused() {
    let server = TagServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter(dir.path(), &server.host, 2);

    let err = adapter
        .list_installations(&format!("{}/elsewhere/app", server.host))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("another origin"), "{err}");
    assert_eq!(
        server.seen("/v2/elsewhere/app").len(),
        1,
        "the link was not followed"
    );

    let err = adapter
        .list_installations(&format!("{}/loop/app", server.host))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loops back"), "{err}");
    assert_eq!(server.seen("/v2/loop/app").len(), 1);
}

#[tokio::test]
async fn endless_pages_stop_at_the_page_bound() {
    let server = TagServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let porter = Porter::new(settings(dir.path(), &server.host)).unwrap();
    let mut request = TagListRequest::new(&format!("{}/endless/app", server.host));
    request.page_size = 1;
    request.max_pages = 5;
    let err = porter.list_tags(&request).await.unwrap_err();
    assert!(err.to_string().contains("more than 5 pages"), "{err}");
    assert_eq!(server.seen("/v2/endless/app").len(), 5);
}

#[tokio::test]
async fn throttling_is_retried_and_unknown_repositories_are_not_found() {
    let server = TagServer::start(false);
    let dir = tempfile::tempdir().unwrap();
    let adapter = adapter(dir.path(), &server.host, 4);
    let tags = adapter
        .list_installations(&format!("{}/throttled/app", server.host))
        .await
        .unwrap();
    assert_eq!(tags, TAGS);
    assert_eq!(
        server.seen("/v2/throttled/app").len(),
        3,
        "one 429, then two pages"
    );

    let err = adapter
        .list_installations(&format!("{}/unknown/app", server.host))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(
        err.to_string().contains("repository name not known"),
        "{err}"
    );
}
