//! A fault-injecting HTTP reverse proxy on 127.0.0.1, between ds-porter and a registry.
//!
//! ds-porter talks to the proxy as if it were the registry (plain HTTP). Each request is
//! forwarded to the registry on a fresh connection; rules added with [`FaultProxy::inject`]
//! change what comes back for the first `times` requests whose path contains a pattern: an
//! error status (with `Retry-After`), a connection dropped or stalled after some body bytes, a
//! corrupted byte, or a reset before any answer. Every request is recorded with its `Range` header and
//! what was done to it. Responses always carry `Connection: close`.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::loopback::Loopback;

const IO_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest the proxy runs; a leaked proxy stops by itself.
const MAX_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// What to do to a matching request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` when given) without asking the registry.
    Status {
        /// HTTP status code.
        code: u16,
        /// `Retry-After` header value.
        retry_after: Option<String>,
    },
    /// Forward, but close the connection after the headers and this many body bytes.
    DropAfter(usize),
    /// Forward with the body byte at this offset inverted.
    CorruptByte(usize),
    /// Forward the headers and this many body bytes, then send nothing more until the client
    /// hangs up (at most the proxy's I/O timeout): a transfer stuck mid-blob.
    StallAfter(usize),
    /// Close the connection without answering.
    Reset,
    /// Answer `413 Payload Too Large` when the request body is longer than this (forward it
    /// otherwise): a registry or proxy limiting request bodies.
    BodyLimit(usize),
    /// Read the request body, forward nothing, and close the connection without answering: a
    /// connection dropped mid-upload.
    DropRequest,
}

/// A request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    /// `GET`, `HEAD`, …
    pub method: String,
    /// Path and query.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Content-Range` header, if any.
    pub content_range: Option<String>,
    /// Bytes of request body received.
    pub body_len: usize,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
    /// Status sent back (0 when the connection was reset first).
    pub status: u16,
}

#[derive(Debug)]
struct Rule {
    pattern: String,
    /// When set, only requests whose `Content-Range` starts with this match.
    content_range: Option<String>,
    remaining: usize,
    fault: Fault,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<ProxiedRequest>,
}

/// The proxy; stops when dropped.
pub struct FaultProxy {
    server: Loopback,
    upstream: String,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("host", &self.server.host())
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`127.0.0.1:PORT`, plain HTTP).
    pub fn start(upstream: &str) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let server = {
            let (state, upstream) = (Arc::clone(&state), upstream.to_owned());
            Loopback::start("fault proxy", MAX_LIFETIME, move |stream| {
                serve(stream, &upstream, &state)
            })
        };
        FaultProxy {
            server,
            upstream: upstream.to_owned(),
            state,
        }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> String {
        self.server.host().to_owned()
    }

    /// `127.0.0.1:PORT/<repo_and_tag>` through the proxy.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.server.host())
    }

    /// Applies `fault` to the next `times` requests whose path contains `pattern`. Rules are
    /// matched in the order they were added.
    pub fn inject(&self, pattern: &str, times: usize, fault: Fault) {
        self.state().rules.push(Rule {
            pattern: pattern.to_owned(),
            content_range: None,
            remaining: times,
            fault,
        });
    }

    /// Like [`FaultProxy::inject`], for requests whose `Content-Range` also starts with
    /// `content_range` (one chunk of an upload).
    pub fn inject_chunk(&self, pattern: &str, content_range: &str, times: usize, fault: Fault) {
        self.state().rules.push(Rule {
            pattern: pattern.to_owned(),
            content_range: Some(content_range.to_owned()),
            remaining: times,
            fault,
        });
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        self.state().log.clone()
    }

    /// Requests whose path contains `pattern`.
    pub fn requests_to(&self, pattern: &str) -> Vec<ProxiedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.contains(pattern))
            .collect()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves one request on `client` and closes it.
fn serve(mut client: TcpStream, upstream: &str, state: &Mutex<State>) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let (head, body) = read_request(&mut client)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let range = header("range");
    let content_range = header("content-range");

    let fault = {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        let rule = state.rules.iter_mut().find(|r| {
            r.remaining > 0
                && path.contains(&r.pattern)
                && r.content_range.as_deref().is_none_or(|want| {
                    content_range
                        .as_deref()
                        .is_some_and(|c| c.starts_with(want))
                })
        });
        rule.map(|r| {
            r.remaining -= 1;
            r.fault.clone()
        })
    };
    // A body within the limit is forwarded untouched.
    let fault = match fault {
        Some(Fault::BodyLimit(limit)) if body.len() <= limit => None,
        other => other,
    };
    let record = |status: u16| {
        let mut state = state.lock().unwrap_or_else(|p| p.into_inner());
        state.log.push(ProxiedRequest {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            content_range: content_range.clone(),
            body_len: body.len(),
            fault: fault.clone(),
            status,
        });
    };

    match &fault {
        Some(Fault::Reset) | Some(Fault::DropRequest) => {
            record(0);
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::BodyLimit(_)) => {
            record(413);
            let body = r#"{"errors":[{"code":"SIZE_INVALID","message":"request body too large"}]}"#;
            let response = format!(
                "HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            client.write_all(response.as_bytes())?;
            return client.shutdown(Shutdown::Both);
        }
        Some(Fault::Status { code, retry_after }) => {
            record(*code);
            let mut response = format!(
                "HTTP/1.1 {code} Injected\r\nContent-Type: application/json\r\nConnection: close\r\n"
            );
            if let Some(value) = retry_after {
                response.push_str(&format!("Retry-After: {value}\r\n"));
            }
            let body = format!(
                r#"{{"errors":[{{"code":"INJECTED","message":"injected status {code}"}}]}}"#
            );
            response.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
            client.write_all(response.as_bytes())?;
            return client.shutdown(Shutdown::Both);
        }
        _ => {}
    }

    // Forward on a fresh connection that closes after the response.
    let mut forwarded = format!("{request_line}\r\n");
    for (name, value) in &headers {
        if !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("keep-alive") {
            forwarded.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    forwarded.push_str("Connection: close\r\n\r\n");
    let mut server = TcpStream::connect(upstream)?;
    server.set_read_timeout(Some(IO_TIMEOUT))?;
    server.set_write_timeout(Some(IO_TIMEOUT))?;
    server.write_all(forwarded.as_bytes())?;
    server.write_all(&body)?;
    let mut raw = Vec::new();
    server.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no end of headers"))?;
    let response_head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut response_body = raw[split + 4..].to_vec();
    let status = response_head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    record(status);

    let mut out_head = String::new();
    for (i, line) in response_head.split("\r\n").enumerate() {
        let lower = line.to_ascii_lowercase();
        if i > 0 && (lower.starts_with("connection:") || lower.starts_with("keep-alive:")) {
            continue;
        }
        out_head.push_str(line);
        out_head.push_str("\r\n");
    }
    out_head.push_str("Connection: close\r\n\r\n");
    client.write_all(out_head.as_bytes())?;
    match fault {
        Some(Fault::DropAfter(n)) => {
            client.write_all(&response_body[..n.min(response_body.len())])?;
            client.flush()?;
        }
        Some(Fault::StallAfter(n)) => {
            client.write_all(&response_body[..n.min(response_body.len())])?;
            client.flush()?;
            // Wait for the client to go away; the read timeout bounds the wait.
            let mut sink = [0u8; 512];
            while matches!(client.read(&mut sink), Ok(n) if n > 0) {}
        }
        Some(Fault::CorruptByte(offset)) => {
            if let Some(byte) = response_body.get_mut(offset) {
                *byte ^= 0xff;
            }
            client.write_all(&response_body)?;
        }
        _ => client.write_all(&response_body)?,
    }
    client.shutdown(Shutdown::Both)
}

/// Reads a request head and its `Content-Length` body.
fn read_request(client: &mut TcpStream) -> io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no request"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if !buf[0].is_ascii_uppercase() {
            // Not HTTP (a TLS ClientHello, say): hang up at once.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not an HTTP request",
            ));
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut body = buf[end + 4..].to_vec();
    let length = head
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while body.len() < length {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok((head, body))
}
