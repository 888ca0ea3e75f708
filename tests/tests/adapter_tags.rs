//! Tag listing across `Link` pages, against a small paginating registry on loopback.
//!
//! The real registry the other suites use (distribution 2.8) ignores `n` and sends every tag at
//! once without a `Link` header, so paging is exercised here against a server that pages as the
//! OCI distribution spec describes — and that can also misbehave: links to another origin,
//! links that loop, endless pages, throttling, bearer-token challenges, `"tags": null`.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use porter_adapter::{AdapterOptions, Error, PorterAdapter};
use porter_core::Porter;
use porter_core::config::{HostConfig, Settings};
use porter_core::tags::TagListRequest;
use serde_json::json;

const TAGS: [&str; 7] = ["alpha", "beta", "latest", "v1", "v10", "v2", "v3"];
const TOKEN: &str = "tok-123";
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// A leaked server stops by itself.
const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// A request the server saw: path with query, and the `Authorization` header.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    authorization: Option<String>,
}

struct TagServer {
    host: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for TagServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl TagServer {
    /// Starts the server; with `bearer`, every `/v2/` request needs the token from `/token`.
    fn start(bearer: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let throttled = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (host, seen, stop) = (host.clone(), Arc::clone(&seen), Arc::clone(&stop));
            std::thread::spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let _ = serve(stream, &host, bearer, &seen, &throttled);
                        }
                        Err(_) => std::thread::sleep(ACCEPT_POLL),
                    }
                }
            })
        };
        TagServer {
            host,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn seen(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.target.starts_with(path))
            .cloned()
            .collect()
    }
}

/// Answers one request (`Connection: close`).
fn serve(
    stream: TcpStream,
    host: &str,
    bearer: bool,
    seen: &Mutex<Vec<Seen>>,
    throttled: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let target = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let mut authorization = None;
    for _ in 0..100 {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("authorization")
        {
            authorization = Some(value.trim().to_owned());
        }
    }
    seen.lock().unwrap().push(Seen {
        target: target.clone(),
        authorization: authorization.clone(),
    });
    let (status, headers, body) =
        respond(&target, host, bearer, authorization.as_deref(), throttled);
    let reason = match status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    };
    let mut out = stream;
    write!(
        out,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    )?;
    for (name, value) in headers {
        write!(out, "{name}: {value}\r\n")?;
    }
    write!(out, "\r\n{body}")?;
    out.flush()
}

fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn respond(
    target: &str,
    host: &str,
    bearer: bool,
    authorization: Option<&str>,
    throttled: &AtomicUsize,
) -> (u16, Vec<(String, String)>, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == "/token" {
        return (200, vec![], json!({"token": TOKEN}).to_string());
    }
    if bearer && authorization != Some(&format!("Bearer {TOKEN}")) {
        let challenge = format!(
            "Bearer realm=\"http://{host}/token\",service=\"fake\",scope=\"repository:paged/app:pull\""
        );
        let body =
            json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]});
        return (
            401,
            vec![("WWW-Authenticate".into(), challenge)],
            body.to_string(),
        );
    }
    if path == "/v2/" {
        return (200, vec![], "{}".into());
    }
    let Some(repository) = path
        .strip_prefix("/v2/")
        .and_then(|p| p.strip_suffix("/tags/list"))
    else {
        return (404, vec![], "{}".into());
    };
    let n: usize = query_param(query, "n")
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX);
    let last = query_param(query, "last");
    let page = |tags: &[&str], link_base: &str| {
        let start = last.map_or(0, |l| {
            tags.iter()
                .position(|t| *t == l)
                .map_or(tags.len(), |i| i + 1)
        });
        let end = start.saturating_add(n).min(tags.len());
        let mut headers = Vec::new();
        if end < tags.len() {
            headers.push((
                "Link".to_owned(),
                format!(
                    "<{link_base}/v2/{repository}/tags/list?n={n}&last={}>; rel=\"next\"",
                    tags[end - 1]
                ),
            ));
        }
        let body = json!({"name": repository, "tags": tags[start..end]});
        (200, headers, body.to_string())
    };
    match repository {
        "paged/app" => page(&TAGS, ""),
        "absolute/app" => page(&TAGS, &format!("http://{host}")),
        "elsewhere/app" => {
            let port = host.rsplit(':').next().unwrap_or_default();
            page(&TAGS, &format!("http://localhost:{port}"))
        }
        "loop/app" => (
            200,
            vec![("Link".into(), format!("</v2/loop/app/tags/list?n={n}>; rel=\"next\""))],
            json!({"name": repository, "tags": ["a"]}).to_string(),
        ),
        "endless/app" => {
            let k: u64 = last.and_then(|l| l.strip_prefix('t')).and_then(|k| k.parse().ok()).unwrap_or(0) + 1;
            (
                200,
                vec![("Link".into(), format!("</v2/endless/app/tags/list?n=1&last=t{k}>; rel=\"next\""))],
                json!({"name": repository, "tags": [format!("t{k}")]}).to_string(),
            )
        }
        "throttled/app" if throttled.fetch_add(1, Ordering::Relaxed) == 0 => (
            429,
            vec![("Retry-After".into(), "0".into())],
            json!({"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down"}]}).to_string(),
        ),
        "throttled/app" => page(&TAGS, ""),
        "null/app" => (200, vec![], json!({"name": repository, "tags": null}).to_string()),
        _ => (
            404,
            vec![],
            json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]})
                .to_string(),
        ),
    }
}

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
