//! The plugin's listener: a unix socket in `PLUGIN_UNIX_SOCKET_DIR` or the temp dir, and a count
//! of open connections so the plugin can exit when its host goes away.
//!
//! On unix there is no TCP fallback, as in go-plugin: a plugin listening on `127.0.0.1` can be
//! called by any local user, while the socket is the host's user's alone. When the socket cannot
//! be created the plugin fails. Only where unix sockets do not exist (Windows) does it listen on
//! TCP, on `127.0.0.1` in `PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT`.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio_stream::{Stream, StreamExt};
use tonic::transport::server::Connected;

/// Longest unix socket path accepted (macOS `sun_path` holds 104 bytes including the NUL).
const MAX_SOCKET_PATH: usize = 103;

/// Where the plugin was told to listen.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Directory for the unix socket.
    pub socket_dir: PathBuf,
    /// `PLUGIN_UNIX_SOCKET_GROUP`: group name or gid the socket is handed to (mode 0660).
    pub socket_group: Option<String>,
    /// TCP port range where unix sockets do not exist.
    #[cfg_attr(unix, allow(dead_code))]
    pub ports: (u16, u16),
}

/// A bound listener.
#[derive(Debug)]
pub enum Bound {
    /// A unix socket at `path` (removed by [`Bound::cleanup`]).
    #[cfg(unix)]
    Unix {
        listener: std::os::unix::net::UnixListener,
        path: PathBuf,
    },
    /// A TCP socket on loopback (only where unix sockets do not exist).
    #[cfg_attr(unix, allow(dead_code))]
    Tcp {
        listener: std::net::TcpListener,
        address: String,
    },
}

impl Bound {
    /// `network|address` for the handshake line.
    pub fn handshake_address(&self) -> (&'static str, String) {
        match self {
            #[cfg(unix)]
            Bound::Unix { path, .. } => ("unix", path.display().to_string()),
            Bound::Tcp { address, .. } => ("tcp", address.clone()),
        }
    }

    /// The socket file to remove at exit.
    pub fn socket_path(&self) -> Option<PathBuf> {
        match self {
            #[cfg(unix)]
            Bound::Unix { path, .. } => Some(path.clone()),
            Bound::Tcp { .. } => None,
        }
    }
}

/// Binds the unix socket; an error when it cannot be created (never TCP on unix).
#[cfg(unix)]
pub fn bind(config: &ListenConfig) -> io::Result<Bound> {
    bind_unix(config)
}

/// Binds TCP on loopback: unix sockets do not exist here.
#[cfg(not(unix))]
pub fn bind(config: &ListenConfig) -> io::Result<Bound> {
    bind_tcp(config.ports)
}

#[cfg(unix)]
fn bind_unix(config: &ListenConfig) -> io::Result<Bound> {
    use std::hash::{BuildHasher, RandomState};
    let mut last_err = io::Error::other("no socket name tried");
    for attempt in 0..8u32 {
        let random = RandomState::new().hash_one((std::process::id(), attempt)) % 10_000_000_000;
        let path = config.socket_dir.join(format!("plugin{random:010}"));
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(io::Error::other(format!(
                "socket path {} is longer than {MAX_SOCKET_PATH} bytes",
                path.display()
            )));
        }
        match std::os::unix::net::UnixListener::bind(&path) {
            Ok(listener) => {
                listener.set_nonblocking(true)?;
                if let Some(group) = &config.socket_group
                    && let Err(err) = hand_to_group(&path, group)
                {
                    let _ = std::fs::remove_file(&path);
                    return Err(err);
                }
                return Ok(Bound::Unix { listener, path });
            }
            Err(err) if err.kind() == io::ErrorKind::AddrInUse => last_err = err,
            Err(err) => {
                return Err(io::Error::new(
                    err.kind(),
                    format!("cannot create socket {}: {err}", path.display()),
                ));
            }
        }
    }
    Err(last_err)
}

/// `chown :group` and `chmod 0660`, as go-plugin does for `PLUGIN_UNIX_SOCKET_GROUP`.
#[cfg(unix)]
fn hand_to_group(path: &Path, group: &str) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let gid = match group.parse::<u32>() {
        Ok(gid) => gid,
        Err(_) => lookup_group(group)?,
    };
    std::os::unix::fs::chown(path, None, Some(gid))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
}

#[cfg(unix)]
fn lookup_group(name: &str) -> io::Result<u32> {
    let groups = std::fs::read_to_string("/etc/group")?;
    groups
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(':');
            let group = fields.next()?;
            let gid = fields.nth(1)?;
            (group == name).then(|| gid.parse().ok()).flatten()
        })
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("unknown group {name:?}")))
}

#[cfg_attr(unix, allow(dead_code))]
fn bind_tcp((min, max): (u16, u16)) -> io::Result<Bound> {
    for port in min..=max {
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            listener.set_nonblocking(true)?;
            let address = listener.local_addr()?.to_string();
            return Ok(Bound::Tcp { listener, address });
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("no free TCP port in {min}..={max}"),
    ))
}

/// Counts open connections: +1 when accepted, -1 when the server drops the connection.
#[derive(Debug)]
pub struct Tracked<T> {
    inner: T,
    open: watch::Sender<usize>,
}

impl<T> Tracked<T> {
    fn new(inner: T, open: &watch::Sender<usize>) -> Self {
        open.send_modify(|n| *n += 1);
        Tracked {
            inner,
            open: open.clone(),
        }
    }
}

impl<T> Drop for Tracked<T> {
    fn drop(&mut self) {
        self.open.send_modify(|n| *n = n.saturating_sub(1));
    }
}

impl<T> Connected for Tracked<T> {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// The accepted connections of a unix listener (needs the runtime).
#[cfg(unix)]
pub fn unix_incoming(
    listener: std::os::unix::net::UnixListener,
    open: watch::Sender<usize>,
) -> io::Result<impl Stream<Item = io::Result<Tracked<tokio::net::UnixStream>>>> {
    let listener = tokio::net::UnixListener::from_std(listener)?;
    Ok(tokio_stream::wrappers::UnixListenerStream::new(listener)
        .map(move |conn| conn.map(|c| Tracked::new(c, &open))))
}

/// The accepted connections of a TCP listener (needs the runtime).
#[cfg_attr(unix, allow(dead_code))]
pub fn tcp_incoming(
    listener: std::net::TcpListener,
    open: watch::Sender<usize>,
) -> io::Result<impl Stream<Item = io::Result<Tracked<tokio::net::TcpStream>>>> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    Ok(
        tokio_stream::wrappers::TcpListenerStream::new(listener).map(move |conn| {
            conn.map(|c| {
                let _ = c.set_nodelay(true);
                Tracked::new(c, &open)
            })
        }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn binds_a_socket_in_the_requested_directory() {
        let dir = tempfile::tempdir().unwrap();
        let config = ListenConfig {
            socket_dir: dir.path().to_path_buf(),
            socket_group: None,
            ports: (10000, 25000),
        };
        let bound = bind(&config).unwrap();
        let (network, address) = bound.handshake_address();
        assert_eq!(network, "unix");
        assert!(address.starts_with(&dir.path().display().to_string()));
        assert!(
            Path::new(&address)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("plugin")
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_socket_that_cannot_be_created_is_an_error_never_tcp() {
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join("d".repeat(120));
        std::fs::create_dir(&long).unwrap();
        let missing = dir.path().join("missing");
        for (socket_dir, expected) in [
            (long, "is longer than 103 bytes"),
            (missing, "cannot create socket"),
        ] {
            let config = ListenConfig {
                socket_dir,
                socket_group: None,
                ports: (10000, 25000),
            };
            let err = bind(&config).unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn tcp_uses_loopback_within_the_range() {
        let bound = bind_tcp((20000, 25000)).unwrap();
        let (network, address) = bound.handshake_address();
        assert_eq!(network, "tcp");
        assert!(address.starts_with("127.0.0.1:"));
        let port: u16 = address.rsplit(':').next().unwrap().parse().unwrap();
        assert!((20000..=25000).contains(&port));
    }
}
