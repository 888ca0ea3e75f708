//! An HTTPS front on 127.0.0.1 for a plain-HTTP server on loopback, such as a [`FakeRegistry`]:
//! it terminates TLS with a leaf certificate from a [`TestCa`] and passes each request through,
//! so a programmed registry can be reached over HTTPS (to redirect from HTTPS to plain HTTP,
//! say).
//!
//! One request per connection, like the servers behind it: the request goes to the upstream on
//! a fresh connection and the upstream's whole answer comes back, then the connection is closed.
//! Socket timeouts and a bounded lifetime keep it from hanging a suite.
//!
//! [`FakeRegistry`]: crate::FakeRegistry

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::publish::install_crypto_provider;
use crate::tls::TestCa;

use crate::loopback::Loopback;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Longest the front runs; a leaked front stops by itself.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The HTTPS front; stops when dropped.
pub struct TlsFront {
    server: Loopback,
    upstream: String,
}

impl fmt::Debug for TlsFront {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFront")
            .field("host", &self.server.host())
            .field("upstream", &self.upstream)
            .finish()
    }
}

impl TlsFront {
    /// Serves HTTPS on a free port of 127.0.0.1 with `ca`'s leaf certificate, passing every
    /// request to `upstream` (`127.0.0.1:PORT`, plain HTTP).
    pub fn start(upstream: &str, ca: &TestCa) -> Self {
        install_crypto_provider();
        let certs = vec![
            CertificateDer::from_pem_slice(ca.leaf_pem.as_bytes()).expect("parse the leaf PEM"),
        ];
        let key = PrivateKeyDer::from_pem_slice(ca.leaf_key_pem.as_bytes())
            .expect("parse the leaf key PEM");
        let config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("build the TLS server config");
        let config = Arc::new(config);
        let server = {
            let upstream = upstream.to_owned();
            Loopback::start("TLS front", MAX_LIFETIME, move |stream| {
                serve(stream, Arc::clone(&config), &upstream)
            })
        };
        TlsFront {
            server,
            upstream: upstream.to_owned(),
        }
    }

    /// `127.0.0.1:PORT` of the front.
    pub fn host(&self) -> String {
        self.server.host().to_owned()
    }

    /// `127.0.0.1:PORT/<repo_and_tag>` through the front.
    pub fn reference(&self, repo_and_tag: &str) -> String {
        format!("{}/{repo_and_tag}", self.server.host())
    }

    /// `https://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.server.host())
    }
}

/// Serves one request on `client` and closes it.
fn serve(client: TcpStream, config: Arc<ServerConfig>, upstream: &str) -> io::Result<()> {
    client.set_nonblocking(false)?;
    client.set_read_timeout(Some(IO_TIMEOUT))?;
    client.set_write_timeout(Some(IO_TIMEOUT))?;
    let connection = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(connection, client);
    let request = read_request(&mut tls)?;

    let mut server = TcpStream::connect(upstream)?;
    server.set_read_timeout(Some(IO_TIMEOUT))?;
    server.set_write_timeout(Some(IO_TIMEOUT))?;
    server.write_all(&request)?;
    let mut response = Vec::new();
    server.read_to_end(&mut response)?;

    tls.write_all(&response)?;
    tls.conn.send_close_notify();
    tls.flush()?;
    tls.sock.shutdown(Shutdown::Both)
}

/// Reads a request head and its `Content-Length` body, as raw bytes.
fn read_request(tls: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "no request"));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let length = String::from_utf8_lossy(&buf[..end])
        .split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < end + length {
        let n = tls.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(buf)
}
