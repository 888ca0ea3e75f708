//! Plugin mode: `ds-porter` as a HashiCorp go-plugin (gRPC) server for DS.
//!
//! Start-up follows spec/go-plugin-protocol.md §14: check the cookie and the protocol
//! variables, bind the listener, start serving health, broker, controller, stdio and the DS
//! service, then print the handshake line — the only thing ever written to stdout. Everything
//! slow (config, registry clients, the cache) waits for the RPC that needs it. The process
//! exits on `GRPCController/Shutdown`, on SIGTERM, or when the host's connection goes away;
//! SIGINT is ignored (the host owns the plugin's life). An Execute still running then is
//! cancelled, and its blocking work gets a bounded moment to finish, so a pull cut short leaves
//! no temp blob or half-exported file behind.

mod args;
#[cfg(test)]
mod fuzz_tests;
mod goplugin;
mod hclog;
mod hostconfig;
#[cfg(test)]
mod inprocess_tests;
mod listener;
mod ops;
mod proto;
mod service;

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tonic::transport::Server;

use goplugin::{Broker, Controller, Stdio};
use listener::{Bound, ListenConfig};
use proto::ds_plugin_server::DsPluginServer;
use proto::grpc_broker_server::GrpcBrokerServer;
use proto::grpc_controller_server::GrpcControllerServer;
use proto::grpc_stdio_server::GrpcStdioServer;

/// The environment variable DS sets when it launches a plugin, and its value.
pub const MAGIC_COOKIE_KEY: &str = "DS_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "delivery-station-plugin";
/// go-plugin's core protocol version (handshake field 1).
const CORE_PROTOCOL_VERSION: u32 = 1;
/// DS's application protocol version (handshake field 2).
const APP_PROTOCOL_VERSION: u32 = 1;
/// How long to wait for the host to connect after the handshake.
const FIRST_CONNECTION_WAIT: Duration = Duration::from_secs(60);
/// Largest message accepted or sent on the main connection.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// How long blocking work (a blob being written, an export) may take to wind down once the
/// plugin stops; below the 2 s go-plugin waits after `Shutdown` before it sends SIGKILL.
const CLEANUP_WAIT: Duration = Duration::from_millis(1500);

/// What the host asked for, read from the environment before anything is bound.
#[derive(Debug)]
struct Startup {
    listen: ListenConfig,
    /// `Some` when the host set `PLUGIN_MULTIPLEX_GRPC`: answer field 7 with `false`.
    refuse_multiplex: bool,
}

impl Startup {
    fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Startup, String> {
        if env(MAGIC_COOKIE_KEY).as_deref() != Some(MAGIC_COOKIE_VALUE) {
            return Err(format!(
                "ds-porter is a Delivery Station plugin: DS starts it (`ds porter …`) with \
                 {MAGIC_COOKIE_KEY}={MAGIC_COOKIE_VALUE}. To use it directly, run a command: ds-porter --help"
            ));
        }
        if let Some(versions) = env("PLUGIN_PROTOCOL_VERSIONS").filter(|v| !v.trim().is_empty()) {
            let offered = versions
                .split(',')
                .any(|v| v.trim().parse() == Ok(APP_PROTOCOL_VERSION));
            if !offered {
                return Err(format!(
                    "ds-porter speaks DS plugin protocol version {APP_PROTOCOL_VERSION}; the host offers {versions}"
                ));
            }
        }
        if env("PLUGIN_CLIENT_CERT").is_some_and(|c| !c.is_empty()) {
            return Err(
                "ds-porter does not support go-plugin AutoMTLS (PLUGIN_CLIENT_CERT is set)".into(),
            );
        }
        let port = |name: &str, default: u16| {
            env(name)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        let socket_dir = env("PLUGIN_UNIX_SOCKET_DIR")
            .filter(|d| !d.is_empty())
            .map_or_else(std::env::temp_dir, PathBuf::from);
        Ok(Startup {
            listen: ListenConfig {
                socket_dir,
                socket_group: env("PLUGIN_UNIX_SOCKET_GROUP").filter(|g| !g.is_empty()),
                ports: (
                    port("PLUGIN_MIN_PORT", 10000),
                    port("PLUGIN_MAX_PORT", 25000),
                ),
            },
            refuse_multiplex: env("PLUGIN_MULTIPLEX_GRPC").is_some(),
        })
    }

    fn handshake_line(&self, network: &str, address: &str) -> String {
        let multiplex = if self.refuse_multiplex { "|false" } else { "" };
        format!(
            "{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|{network}|{address}|grpc|{multiplex}\n"
        )
    }
}

/// Runs the plugin server until the host stops it (or start-up fails); the process exit code.
pub fn serve() -> ExitCode {
    let startup = match Startup::from_env(|name| std::env::var(name).ok()) {
        Ok(startup) => startup,
        Err(message) => {
            let _ = writeln!(io::stderr(), "{message}");
            return ExitCode::FAILURE;
        }
    };
    hclog::init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            tracing::error!(error = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let stopped = runtime.block_on(run(startup));
    if let Some(path) = &stopped.socket {
        let _ = std::fs::remove_file(path);
    }
    // The cancelled Executes dropped their blob writers; wait for the blocking threads that
    // remove the temp files (or finish an export), within what is left of CLEANUP_WAIT.
    runtime.shutdown_timeout(stopped.deadline.saturating_duration_since(Instant::now()));
    hclog::flush();
    ExitCode::from(stopped.code)
}

/// How the server ended: the socket to remove, the exit code, and until when cleaning up may
/// take.
#[derive(Debug)]
struct Stopped {
    socket: Option<PathBuf>,
    code: u8,
    deadline: Instant,
}

impl Stopped {
    fn failed(socket: Option<PathBuf>) -> Stopped {
        Stopped {
            socket,
            code: 1,
            deadline: Instant::now(),
        }
    }
}

/// What the plugin logs when it cannot listen for its host.
#[cfg(unix)]
const LISTEN_FAILED: &str = "cannot create the plugin's unix socket; not listening on TCP instead, where any local user could call the plugin";
#[cfg(not(unix))]
const LISTEN_FAILED: &str = "cannot listen for the host on 127.0.0.1";

async fn run(startup: Startup) -> Stopped {
    #[cfg(unix)]
    ignore_sigint();
    let bound = match listener::bind(&startup.listen) {
        Ok(bound) => bound,
        Err(err) => {
            tracing::error!(
                dir = %startup.listen.socket_dir.display(),
                error = %err,
                "{LISTEN_FAILED}"
            );
            return Stopped::failed(None);
        }
    };
    let socket = bound.socket_path();
    let (network, address) = bound.handshake_address();

    let broker = Broker::default();
    let controller = Controller::default();
    let service = service::Service::new(broker.clone());
    let running = service.running();
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let router = Server::builder()
        .add_service(health_service)
        .add_service(GrpcBrokerServer::new(broker))
        .add_service(GrpcControllerServer::new(controller.clone()))
        .add_service(GrpcStdioServer::new(Stdio))
        .add_service(
            DsPluginServer::new(service)
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        );

    let (open_tx, open_rx) = watch::channel(0usize);
    let serving = match bound {
        #[cfg(unix)]
        Bound::Unix { listener, .. } => {
            listener::unix_incoming(listener, open_tx).map(|incoming| {
                tokio::spawn(async move { router.serve_with_incoming(incoming).await });
            })
        }
        Bound::Tcp { listener, .. } => listener::tcp_incoming(listener, open_tx).map(|incoming| {
            tokio::spawn(async move { router.serve_with_incoming(incoming).await });
        }),
    };
    if let Err(err) = serving {
        tracing::error!(error = %err, "cannot serve on the listener");
        return Stopped::failed(socket);
    }

    let line = startup.handshake_line(network, &address);
    let mut stdout = io::stdout().lock();
    if let Err(err) = stdout
        .write_all(line.as_bytes())
        .and_then(|()| stdout.flush())
    {
        tracing::error!(error = %err, "cannot write the handshake line");
        return Stopped::failed(socket);
    }
    drop(stdout);
    tracing::debug!(network, address = %address, "plugin address");

    let reason = tokio::select! {
        () = controller.shutdown.notified() => "shutdown requested by the host",
        () = terminated() => "terminated",
        reason = host_gone(open_rx) => reason,
    };
    tracing::debug!(reason, "plugin exiting");
    // No graceful drain of the server: the long-lived broker and stdio streams would hold it
    // until the host closes them. Only the Executes are cancelled and waited for; `serve` then
    // drops the rest.
    let deadline = Instant::now() + CLEANUP_WAIT;
    running.stop();
    if tokio::time::timeout(CLEANUP_WAIT, running.idle())
        .await
        .is_err()
    {
        tracing::warn!("an operation did not stop in time");
    }
    Stopped {
        socket,
        code: 0,
        deadline,
    }
}

/// Resolves when the host had connected and every connection is closed again, or when no
/// host connected in time.
async fn host_gone(mut open: watch::Receiver<usize>) -> &'static str {
    match tokio::time::timeout(FIRST_CONNECTION_WAIT, open.wait_for(|n| *n > 0)).await {
        Ok(Ok(_)) => {}
        _ => return "no host connected",
    }
    let _ = open.wait_for(|n| *n == 0).await;
    "host connection closed"
}

/// Go plugins swallow SIGINT: Ctrl-C reaches host and plugin alike, and the host decides.
/// A handler (not `SIG_IGN`) keeps children's default disposition.
#[cfg(unix)]
fn ignore_sigint() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::interrupt()) {
        Ok(mut interrupts) => {
            tokio::spawn(async move {
                while interrupts.recv().await.is_some() {
                    tracing::debug!("plugin received interrupt signal, ignoring");
                }
            });
        }
        Err(err) => tracing::warn!(error = %err, "cannot install the SIGINT handler"),
    }
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn startup(vars: &[(&str, &str)]) -> Result<Startup, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Startup::from_env(|name| vars.get(name).cloned())
    }

    const COOKIE: (&str, &str) = (MAGIC_COOKIE_KEY, MAGIC_COOKIE_VALUE);

    #[test]
    fn refuses_without_the_right_cookie() {
        assert!(
            startup(&[])
                .unwrap_err()
                .contains("Delivery Station plugin")
        );
        assert!(startup(&[(MAGIC_COOKIE_KEY, "other")]).is_err());
    }

    #[test]
    fn needs_protocol_version_1_when_versions_are_offered() {
        assert!(startup(&[COOKIE, ("PLUGIN_PROTOCOL_VERSIONS", "3, 1")]).is_ok());
        assert!(
            startup(&[COOKIE, ("PLUGIN_PROTOCOL_VERSIONS", "2")])
                .unwrap_err()
                .contains("offers 2")
        );
        assert!(
            startup(&[COOKIE, ("PLUGIN_CLIENT_CERT", "PEM")])
                .unwrap_err()
                .contains("AutoMTLS")
        );
    }

    #[test]
    fn handshake_line_has_six_fields_and_field_7_only_on_request() {
        let plain = startup(&[COOKIE]).unwrap();
        assert_eq!(
            plain.handshake_line("unix", "/tmp/plugin1"),
            "1|1|unix|/tmp/plugin1|grpc|\n"
        );
        let mux = startup(&[COOKIE, ("PLUGIN_MULTIPLEX_GRPC", "true")]).unwrap();
        assert_eq!(
            mux.handshake_line("unix", "/tmp/p"),
            "1|1|unix|/tmp/p|grpc||false\n"
        );
    }

    #[test]
    fn honours_socket_dir_and_ports() {
        let s = startup(&[
            COOKIE,
            ("PLUGIN_UNIX_SOCKET_DIR", "/tmp/x"),
            ("PLUGIN_MIN_PORT", "12000"),
        ])
        .unwrap();
        assert_eq!(s.listen.socket_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.listen.ports, (12000, 25000));
    }
}
