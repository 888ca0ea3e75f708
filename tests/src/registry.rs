//! A real CNCF distribution registry on loopback, one per test.
//!
//! Each [`Registry`] is its own `docker-registry serve` process with a generated config, a temp
//! storage dir and a log file; nothing is shared between tests, so they run in parallel.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::access_log::{AccessLogEntry, BlobGet, ManifestGet};
use crate::http::{self, RawResponse};
use crate::tls::TestCa;

/// Environment variable naming the registry binary; default `docker-registry` on `PATH`.
const REGISTRY_BIN_ENV: &str = "PORTER_E2E_REGISTRY_BIN";
const DEFAULT_REGISTRY_BIN: &str = "docker-registry";
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const READY_POLL: Duration = Duration::from_millis(50);
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);
const SETTLE_POLL: Duration = Duration::from_millis(10);
const START_ATTEMPTS: u32 = 3;
const SYNC_QUERY: &str = "porter-e2e-sync=";
/// Realm of the basic-auth registry.
const REALM: &str = "basic-realm";

/// A running `docker-registry` on `127.0.0.1:<free port>`, killed on drop.
///
/// Plain HTTP; with [`Registry::start_with_htpasswd`] every request needs basic auth.
pub struct Registry {
    child: Child,
    host: String,
    dir: TempDir,
    log_path: PathBuf,
    credentials: Option<(String, String)>,
    sync_counter: AtomicU64,
    tls_ca: Option<String>,
}

/// How a registry is started besides its credentials.
#[derive(Debug, Default)]
struct Mode {
    /// Serve HTTPS with this CA's leaf certificate.
    tls: Option<TestCa>,
    /// Be a pull-through cache of this registry URL.
    proxy_of: Option<String>,
}

/// A position in the access log; see [`Registry::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogMark(usize);

enum Startup {
    Ready,
    Exited(ExitStatus),
    TimedOut,
}

impl Registry {
    /// Starts an anonymous registry (pull and push need no credentials).
    ///
    /// Panics with the registry's log if it does not answer `GET /v2/` within 15 s, and with an
    /// install hint if `docker-registry` is missing.
    pub fn start() -> Self {
        Self::launch(None, Mode::default())
    }

    /// Starts an anonymous registry that serves HTTPS only, with a leaf certificate for
    /// `127.0.0.1` signed by `ca` (see [`Registry::ca_pem`]). [`Registry::requests`] and
    /// [`Registry::raw_get`] speak plain HTTP and do not work with it.
    pub fn start_tls(ca: TestCa) -> Self {
        Self::launch(
            None,
            Mode {
                tls: Some(ca),
                proxy_of: None,
            },
        )
    }

    /// Starts a registry in pull-through-cache mode (distribution's `proxy.remoteurl`) in
    /// front of `upstream`: it fetches what it is asked for from `upstream` and keeps it, and
    /// still serves what it has seen once `upstream` is gone.
    pub fn start_pull_through(upstream: &Registry) -> Self {
        Self::launch(
            None,
            Mode {
                tls: None,
                proxy_of: Some(upstream.url()),
            },
        )
    }

    /// The CA certificate (PEM) a TLS registry's certificate chains to.
    pub fn ca_pem(&self) -> Option<&str> {
        self.tls_ca.as_deref()
    }

    /// Starts a registry that demands basic auth (htpasswd, bcrypt, realm `basic-realm`) for
    /// every request, with one account `user`/`pass`.
    pub fn start_with_htpasswd(user: &str, pass: &str) -> Self {
        Self::launch(Some((user.to_owned(), pass.to_owned())), Mode::default())
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.host.clone()
    }

    /// `http://127.0.0.1:PORT` (`https://` for a TLS registry).
    pub fn url(&self) -> String {
        let scheme = if self.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.host)
    }

    /// `127.0.0.1:PORT/<repo_and_tag>`, e.g. `reference("demo/app:1.0")`.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{}", self.host, repo_and_tag)
    }

    /// The htpasswd account, for a registry started with [`Registry::start_with_htpasswd`].
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The registry's temp dir (config, storage, log).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The file receiving the registry's stdout (access log) and stderr (JSON application log).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the registry has logged so far.
    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// A blocking `GET path` (e.g. `/v2/demo/app/manifests/1.0`), anonymous or with basic auth.
    ///
    /// Panics if the registry cannot be reached.
    pub fn raw_get(&self, path: &str, credentials: Option<(&str, &str)>) -> RawResponse {
        http::get(&self.host, path, credentials)
            .unwrap_or_else(|e| panic!("GET http://{}{path} failed: {e}", self.host))
    }

    /// Stores `body` as a manifest of `repository` under its digest (or `reference`, a tag, when
    /// given), anonymously; returns the digest. Panics unless the registry answers 201.
    pub fn raw_put_manifest(
        &self,
        repository: &str,
        reference: Option<&str>,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let digest = crate::sha256_digest(body);
        let path = format!(
            "/v2/{repository}/manifests/{}",
            reference.unwrap_or(&digest)
        );
        let response = http::put(&self.host, &path, media_type, body)
            .unwrap_or_else(|e| panic!("PUT http://{}{path} failed: {e}", self.host));
        assert_eq!(
            response.status,
            201,
            "PUT {path}: {}",
            String::from_utf8_lossy(&response.body)
        );
        digest
    }

    /// Every request the registry has completed, in log order, without this crate's own
    /// synchronisation requests.
    ///
    /// The registry logs a request after sending its response, so a client can be done before
    /// the line is written; this first sends a marker request and waits (≤ 5 s) until the log
    /// shows it, which makes requests completed before the call visible.
    pub fn requests(&self) -> Vec<AccessLogEntry> {
        self.settle();
        parse_log(&self.log_text())
    }

    /// A position to count requests from: `*_since(&mark)` only return later requests.
    pub fn mark(&self) -> LogMark {
        LogMark(self.requests().len())
    }

    /// Requests completed after `mark`.
    pub fn requests_since(&self, mark: &LogMark) -> Vec<AccessLogEntry> {
        self.requests().into_iter().skip(mark.0).collect()
    }

    /// Every `GET /v2/<repo>/blobs/<digest>` so far, with status and body bytes written.
    pub fn blob_gets(&self) -> Vec<BlobGet> {
        blob_gets(&self.requests())
    }

    /// `GET /v2/<repo>/blobs/<digest>` requests after `mark`.
    pub fn blob_gets_since(&self, mark: &LogMark) -> Vec<BlobGet> {
        blob_gets(&self.requests_since(mark))
    }

    /// Every `GET /v2/<repo>/manifests/<ref>` so far.
    pub fn manifest_gets(&self) -> Vec<ManifestGet> {
        manifest_gets(&self.requests())
    }

    /// `GET /v2/<repo>/manifests/<ref>` requests after `mark`.
    pub fn manifest_gets_since(&self, mark: &LogMark) -> Vec<ManifestGet> {
        manifest_gets(&self.requests_since(mark))
    }

    fn launch(credentials: Option<(String, String)>, mode: Mode) -> Self {
        let bin = registry_binary();
        let dir = tempfile::Builder::new()
            .prefix("porter-e2e-registry-")
            .tempdir()
            .expect("create the registry's temp dir");
        let storage = dir.path().join("storage");
        fs::create_dir_all(&storage).expect("create the registry's storage dir");
        let htpasswd = credentials.as_ref().map(|(user, pass)| {
            let path = dir.path().join("htpasswd");
            // Cost 4 (the minimum): the registry checks the hash on every request.
            let hash = bcrypt::hash(pass, 4).expect("bcrypt-hash the test password");
            fs::write(&path, format!("{user}:{hash}\n")).expect("write htpasswd");
            path
        });
        let tls_files = mode.tls.as_ref().map(|ca| {
            let (_, cert, key) = ca.write_to(&dir.path().join("tls"));
            (cert, key)
        });
        let config_path = dir.path().join("config.yml");
        let log_path = dir.path().join("registry.log");

        for attempt in 1..=START_ATTEMPTS {
            let host = format!("127.0.0.1:{}", free_port());
            let mut config = config_yaml(&host, &storage, htpasswd.as_deref());
            if let Some((cert, key)) = &tls_files {
                let secret = "  secret: porter-e2e-not-a-secret\n";
                config = config.replacen(
                    secret,
                    &format!(
                        "{secret}  tls:\n    certificate: {}\n    key: {}\n",
                        quote_path(cert),
                        quote_path(key)
                    ),
                    1,
                );
            }
            if let Some(remote) = &mode.proxy_of {
                config.push_str(&format!("proxy:\n  remoteurl: {remote}\n"));
            }
            fs::write(&config_path, config).expect("write the registry config");
            let mut child = spawn(&bin, &config_path, &log_path);
            let log_text = || fs::read_to_string(&log_path).unwrap_or_default();
            match wait_ready(&mut child, &host, tls_files.is_some()) {
                Startup::Ready => {
                    return Self {
                        child,
                        host,
                        dir,
                        log_path,
                        credentials,
                        sync_counter: AtomicU64::new(0),
                        tls_ca: mode.tls.as_ref().map(|ca| ca.ca_pem.clone()),
                    };
                }
                // Another process took the port between our probe and the registry's bind.
                Startup::Exited(_)
                    if attempt < START_ATTEMPTS
                        && log_text().contains("address already in use") =>
                {
                    continue;
                }
                Startup::Exited(status) => panic!(
                    "docker-registry on {host} exited during start-up ({status}); log:\n{}",
                    log_text()
                ),
                Startup::TimedOut => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "docker-registry on {host} did not answer GET /v2/ within {READY_TIMEOUT:?}; log:\n{}",
                        log_text()
                    )
                }
            }
        }
        unreachable!("the last start attempt returns or panics")
    }

    /// Sends a marker request and waits until the access log shows it.
    fn settle(&self) {
        let n = self.sync_counter.fetch_add(1, Ordering::Relaxed);
        let marker = format!("?{SYNC_QUERY}{n} ");
        if let Err(e) = http::get(&self.host, &format!("/v2/?{SYNC_QUERY}{n}"), None) {
            panic!("registry on {} is not answering: {e}", self.host);
        }
        let deadline = Instant::now() + SETTLE_TIMEOUT;
        let max_polls = SETTLE_TIMEOUT.as_millis() / SETTLE_POLL.as_millis() + 1;
        for _ in 0..max_polls {
            if self.log_text().contains(&marker) {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(SETTLE_POLL);
        }
        panic!(
            "registry on {} did not log request {marker:?} within {SETTLE_TIMEOUT:?}",
            self.host
        );
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            // The access log says the same as the JSON "response completed" lines, shorter.
            let log = self.log_text();
            let tail: Vec<&str> = log
                .lines()
                .rev()
                .filter(|line| !line.contains(r#""msg":"response completed""#))
                .take(40)
                .collect();
            eprintln!(
                "--- last lines of the registry log ({}) ---",
                self.log_path.display()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("host", &self.host)
            .field("dir", &self.dir.path())
            .field("pid", &self.child.id())
            .field(
                "credentials",
                &self
                    .credentials
                    .as_ref()
                    .map(|(user, _)| (user, "<redacted>")),
            )
            .finish()
    }
}

/// Waits for `GET /v2/`; a TLS registry answers plain HTTP with 400, which counts as ready.
fn wait_ready(child: &mut Child, host: &str, tls: bool) -> Startup {
    let deadline = Instant::now() + READY_TIMEOUT;
    let max_polls = READY_TIMEOUT.as_millis() / READY_POLL.as_millis() + 1;
    for _ in 0..max_polls {
        if let Ok(Some(status)) = child.try_wait() {
            return Startup::Exited(status);
        }
        if let Ok(response) = http::get(host, "/v2/", None)
            && (response.status == 200 || response.status == 401 || (tls && response.status == 400))
        {
            return Startup::Ready;
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(READY_POLL);
    }
    Startup::TimedOut
}

fn spawn(bin: &Path, config: &Path, log_path: &Path) -> Child {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("open the registry log");
    let stdout = log.try_clone().expect("duplicate the registry log handle");
    let mut command = Command::new(bin);
    command
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log);
    // REGISTRY_* variables override the config file; keep the generated config authoritative.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("REGISTRY_") {
            command.env_remove(key);
        }
    }
    command
        .spawn()
        .unwrap_or_else(|e| panic!("failed to start {}: {e}", bin.display()))
}

/// The registry binary: `$PORTER_E2E_REGISTRY_BIN`, else `docker-registry` on `PATH`.
fn registry_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os(REGISTRY_BIN_ENV) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "{REGISTRY_BIN_ENV}={} does not name a file",
            bin.display()
        );
        return bin;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(DEFAULT_REGISTRY_BIN))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{DEFAULT_REGISTRY_BIN}` (CNCF distribution 2.8) was not found on PATH; the \
                 end-to-end tests need it: install it with `apt-get install -y docker-registry` \
                 or set {REGISTRY_BIN_ENV} to the binary"
            )
        })
}

/// A port that was free a moment ago (the registry binds it itself; see the retry in `launch`).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port on 127.0.0.1")
        .port()
}

/// A path as a YAML double-quoted scalar.
fn quote_path(p: &Path) -> String {
    serde_json::to_string(&p.to_string_lossy()).expect("quote a path")
}

fn config_yaml(host: &str, storage: &Path, htpasswd: Option<&Path>) -> String {
    // JSON strings are valid YAML double-quoted scalars.
    let quote = |p: &Path| serde_json::to_string(&p.to_string_lossy()).expect("quote a path");
    let mut config = format!(
        "version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {host}
  secret: porter-e2e-not-a-secret
",
        storage = quote(storage),
    );
    if let Some(path) = htpasswd {
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: {REALM}\n    path: {}\n",
            quote(path)
        ));
    }
    config
}

fn parse_log(text: &str) -> Vec<AccessLogEntry> {
    text.lines()
        .filter_map(AccessLogEntry::parse)
        .filter(|entry| {
            !(entry.path == "/v2/"
                && entry
                    .query
                    .as_deref()
                    .is_some_and(|q| q.starts_with(SYNC_QUERY)))
        })
        .collect()
}

fn blob_gets(entries: &[AccessLogEntry]) -> Vec<BlobGet> {
    entries
        .iter()
        .filter_map(AccessLogEntry::as_blob_get)
        .collect()
}

fn manifest_gets(entries: &[AccessLogEntry]) -> Vec<ManifestGet> {
    entries
        .iter()
        .filter_map(AccessLogEntry::as_manifest_get)
        .collect()
}
