//! A programmable fake registry on 127.0.0.1: a small HTTP/1.1 server whose answers a test
//! sets path by path, to play a registry that lies.
//!
//! The real registry never serves a blob whose bytes do not match its digest, a body longer
//! than its `Content-Length`, a redirect to another host or a garbage `WWW-Authenticate`; this
//! one does whatever a [`Reply`] says. Every request is recorded with its headers, so a test can
//! check what ds-porter sent where (an `Authorization` header on a redirect, say). One request
//! per connection, `Connection: close`, socket timeouts, a bounded lifetime: it cannot hang a
//! suite.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::publish::sha256_digest;

use crate::loopback::Loopback;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest the server runs; a leaked server stops by itself.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// Most bytes an endless body sends before giving up (the client should stop far earlier).
const ENDLESS_CAP: usize = 256 << 20;

/// How a body is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// These bytes with a `Content-Length` equal to their length.
    Exact(Vec<u8>),
    /// These bytes with a `Content-Length` that claims `declared` bytes; the connection is
    /// closed after the bytes.
    Declared {
        /// Bytes actually sent.
        bytes: Vec<u8>,
        /// The `Content-Length` header value.
        declared: u64,
    },
    /// These bytes chunked (no `Content-Length`).
    Chunked(Vec<u8>),
    /// Chunks of this byte without end (up to a safety cap), chunked; counts what was sent.
    Endless(u8),
}

/// One programmed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Body,
}

impl Reply {
    /// `200` with `body` and `Content-Type`.
    pub fn ok(content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Exact(body.into()),
        }
    }

    /// `200` with a blob body.
    pub fn blob(body: impl Into<Vec<u8>>) -> Self {
        Reply::ok("application/octet-stream", body)
    }

    /// A status with a JSON error envelope.
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Body::Exact(
                format!(r#"{{"errors":[{{"code":"FAKE","message":"fake status {status}"}}]}}"#)
                    .into_bytes(),
            ),
        }
    }

    /// `307` to `location`.
    pub fn redirect(location: &str) -> Self {
        Reply {
            status: 307,
            headers: vec![("Location".into(), location.into())],
            body: Body::Exact(Vec::new()),
        }
    }

    /// `401` with this `WWW-Authenticate` value.
    pub fn challenge(www_authenticate: &str) -> Self {
        let mut reply = Reply::status(401);
        reply
            .headers
            .push(("WWW-Authenticate".into(), www_authenticate.into()));
        reply
    }

    /// The same reply with another body.
    pub fn with_body(mut self, body: Body) -> Self {
        self.body = body;
        self
    }
}

/// A request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRequest {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header fields in order, names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl SeenRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http::header(&self.headers, name)
    }
}

/// A route: answers requests whose path (without query) equals `path`, or starts with it when
/// it ends with `*`. When `auth` is set, requests without exactly that `Authorization` value get
/// `unauthorized` instead.
#[derive(Debug, Clone)]
struct Route {
    path: String,
    reply: Reply,
    auth: Option<(String, Reply)>,
}

#[derive(Debug, Default)]
struct State {
    routes: Vec<Route>,
    seen: Vec<SeenRequest>,
    endless_sent: usize,
}

/// The server; stops when dropped.
pub struct FakeRegistry {
    server: Loopback,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FakeRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeRegistry")
            .field("host", &self.server.host())
            .finish()
    }
}

impl Default for FakeRegistry {
    fn default() -> Self {
        Self::start()
    }
}

impl FakeRegistry {
    /// Starts a server on a free port of 127.0.0.1 that answers `GET /v2/` with 200 and
    /// everything else with 404 until routes are added.
    pub fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let server = {
            let state = Arc::clone(&state);
            Loopback::start("fake registry", MAX_LIFETIME, move |stream| {
                serve(stream, &state)
            })
        };
        let registry = FakeRegistry { server, state };
        registry.route("/v2/", Reply::ok("application/json", "{}"));
        registry
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.host().to_owned()
    }

    /// `127.0.0.1:PORT/<repo_and_tag>`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.server.host())
    }

    /// `http://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.host())
    }

    /// Answers `path` (exact, or a prefix when it ends with `*`) with `reply`; a later route for
    /// the same path replaces an earlier one.
    pub fn route(&self, path: &str, reply: Reply) {
        self.add(Route {
            path: path.to_owned(),
            reply,
            auth: None,
        });
    }

    /// Like [`FakeRegistry::route`], but only for requests carrying exactly this
    /// `Authorization` value; others get `unauthorized`.
    pub fn route_with_auth(
        &self,
        path: &str,
        authorization: &str,
        reply: Reply,
        unauthorized: Reply,
    ) {
        self.add(Route {
            path: path.to_owned(),
            reply,
            auth: Some((authorization.to_owned(), unauthorized)),
        });
    }

    /// Serves `bytes` as manifest `repo:<tag>` and as `repo@<digest>`; returns the digest.
    pub fn manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        media_type: &str,
        bytes: &[u8],
    ) -> String {
        let digest = sha256_digest(bytes);
        for name in tag.into_iter().chain([digest.as_str()]) {
            self.route(
                &format!("/v2/{repo}/manifests/{name}"),
                Reply::ok(media_type, bytes),
            );
        }
        digest
    }

    /// Serves `reply` for blob `digest` of `repo`.
    pub fn blob(&self, repo: &str, digest: &str, reply: Reply) {
        self.route(&format!("/v2/{repo}/blobs/{digest}"), reply);
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<SeenRequest> {
        self.state().seen.clone()
    }

    /// Requests whose path contains `pattern`.
    pub fn seen_to(&self, pattern: &str) -> Vec<SeenRequest> {
        self.seen()
            .into_iter()
            .filter(|r| r.path.contains(pattern))
            .collect()
    }

    /// Bytes sent in endless bodies so far.
    pub fn endless_bytes_sent(&self) -> usize {
        self.state().endless_sent
    }

    fn add(&self, route: Route) {
        let mut state = self.state();
        state.routes.retain(|r| r.path != route.path);
        state.routes.push(route);
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn serve(mut client: TcpStream, state: &Mutex<State>) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = read_head(&mut client)?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let seen = SeenRequest {
        method,
        path,
        headers,
    };
    let bare = seen.path.split('?').next().unwrap_or_default().to_owned();
    let reply = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.seen.push(seen.clone());
        let route = state
            .routes
            .iter()
            .rev()
            .find(|r| match r.path.strip_suffix('*') {
                Some(prefix) => bare.starts_with(prefix),
                None => bare == r.path,
            });
        match route {
            None => Reply::status(404),
            Some(Route {
                auth: Some((expected, unauthorized)),
                ..
            }) if seen.header("authorization") != Some(expected.as_str()) => unauthorized.clone(),
            Some(route) => route.reply.clone(),
        }
    };
    let mut out = format!("HTTP/1.1 {} Fake\r\nConnection: close\r\n", reply.status);
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    match &reply.body {
        Body::Exact(bytes) => {
            out.push_str(&format!("Content-Length: {}\r\n\r\n", bytes.len()));
            client.write_all(out.as_bytes())?;
            if seen.method != "HEAD" {
                client.write_all(bytes)?;
            }
        }
        Body::Declared { bytes, declared } => {
            out.push_str(&format!("Content-Length: {declared}\r\n\r\n"));
            client.write_all(out.as_bytes())?;
            client.write_all(bytes)?;
        }
        Body::Chunked(bytes) => {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            client.write_all(out.as_bytes())?;
            for chunk in bytes.chunks(16 << 10) {
                client.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())?;
                client.write_all(chunk)?;
                client.write_all(b"\r\n")?;
            }
            client.write_all(b"0\r\n\r\n")?;
        }
        Body::Endless(byte) => {
            out.push_str("Transfer-Encoding: chunked\r\n\r\n");
            client.write_all(out.as_bytes())?;
            let chunk = vec![*byte; 16 << 10];
            let mut sent = 0;
            while sent < ENDLESS_CAP {
                let frame = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                if client.write_all(&frame).is_err() {
                    break;
                }
                sent += chunk.len();
                state.lock().unwrap_or_else(|p| p.into_inner()).endless_sent += chunk.len();
            }
        }
    }
    let _ = client.flush();
    client.shutdown(Shutdown::Both)
}

fn read_head(client: &mut TcpStream) -> io::Result<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Ok(String::from_utf8_lossy(&buf[..end]).into_owned());
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no request"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if !buf[0].is_ascii_uppercase() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "not HTTP"));
        }
    }
}
