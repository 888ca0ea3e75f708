//! A small registry that pages tag lists as the OCI distribution spec describes (`n`, `last`,
//! `Link: <…>; rel="next"`) — the real registry (distribution 2.8) ignores `n` and sends every
//! tag at once — and that can also misbehave: links to another origin, links that loop, endless
//! pages, throttling, bearer-token challenges, `"tags": null`.
//!
//! Repositories: `paged/app` ([`TAGS`] in pages of `n`), `absolute/app` (absolute links),
//! `elsewhere/app` (links to another origin), `loop/app`, `endless/app`, `throttled/app` (429
//! once), `null/app`; anything else is 404.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::json;

pub const TAGS: [&str; 7] = ["alpha", "beta", "latest", "v1", "v10", "v2", "v3"];
pub const TOKEN: &str = "tok-123";
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// A leaked server stops by itself.
const MAX_LIFETIME: Duration = Duration::from_secs(300);

/// A request the server saw: path with query, and the `Authorization` header.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Path and query.
    pub target: String,
    /// The `Authorization` header.
    pub authorization: Option<String>,
}

#[derive(Debug)]
pub struct TagServer {
    /// `127.0.0.1:PORT`.
    pub host: String,
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
    pub fn start(bearer: bool) -> Self {
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

    /// Requests whose path and query start with `path`.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
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
