//! go-plugin's control services: the broker (host-served connections announced by id), the
//! controller (`Shutdown`) and the stdio stream (kept open, silent). See
//! spec/go-plugin-protocol.md §7–§8.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::sync::{Notify, watch};
use tokio_stream::Stream;
use tonic::transport::{Channel, Endpoint, Uri};
use tonic::{Request, Response, Status, Streaming};

use super::proto::grpc_broker_server::GrpcBroker;
use super::proto::grpc_controller_server::GrpcController;
use super::proto::grpc_stdio_server::GrpcStdio;
use super::proto::{ConnInfo, Empty, StdioData};

/// A response stream that never yields: the host treats a finished broker or stdio stream as
/// "closed for good".
type Pending<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

fn pending<T: Send + 'static>() -> Pending<T> {
    Box::pin(tokio_stream::pending())
}

/// Why a brokered dial failed.
#[derive(Debug)]
pub enum DialError {
    /// No `ConnInfo` for the id arrived in time.
    Timeout,
    /// The announced network is neither `unix` nor `tcp`.
    UnknownNetwork(String),
    /// Connecting failed.
    Connect(tonic::transport::Error),
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialError::Timeout => f.write_str("timeout waiting for connection info"),
            DialError::UnknownNetwork(n) => write!(f, "unknown network type {n:?}"),
            DialError::Connect(e) => write!(f, "{e}: {}", source_chain(e)),
        }
    }
}

fn source_chain(err: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = err.source();
    while let Some(e) = cur {
        parts.push(e.to_string());
        cur = e.source();
    }
    parts.join(": ")
}

/// The plugin's side of the broker: `ConnInfo`s the host announced, by id.
///
/// Entries are kept until the process ends (Go forgets them after 5 s; keeping them is
/// harmless and tolerates a slow Execute). `ConnInfo` may arrive before or after the Execute
/// that needs it, so [`Broker::dial`] waits for it.
#[derive(Debug, Clone)]
pub struct Broker {
    table: Arc<watch::Sender<HashMap<u32, ConnInfo>>>,
}

impl Default for Broker {
    fn default() -> Self {
        Broker {
            table: Arc::new(watch::Sender::new(HashMap::new())),
        }
    }
}

impl Broker {
    /// Records a `ConnInfo` from the host (multiplexing knocks are ignored).
    pub fn announce(&self, info: ConnInfo) {
        if info.knock.is_some() {
            tracing::debug!(
                id = info.service_id,
                "ignoring broker knock (multiplexing is not supported)"
            );
            return;
        }
        tracing::debug!(id = info.service_id, network = %info.network, address = %info.address, "broker connection info");
        self.table.send_modify(|table| {
            table.entry(info.service_id).or_insert(info);
        });
    }

    /// Waits up to `wait` for the `ConnInfo` of `id`, then opens an h2c channel to it.
    pub async fn dial(&self, id: u32, wait: Duration) -> Result<Channel, DialError> {
        let mut rx = self.table.subscribe();
        let info = match tokio::time::timeout(wait, rx.wait_for(|t| t.contains_key(&id))).await {
            Ok(Ok(table)) => table.get(&id).cloned(),
            _ => None,
        }
        .ok_or(DialError::Timeout)?;
        connect(&info.network, &info.address).await
    }
}

/// Connects to a host-side listener with plain HTTP/2 (no TLS, no keepalive pings).
pub async fn connect(network: &str, address: &str) -> Result<Channel, DialError> {
    const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    match network {
        #[cfg(unix)]
        "unix" => {
            let path = address.to_owned();
            // The URI only becomes the `:authority`; the Go server ignores it.
            Endpoint::from_static("http://unused")
                .connect_timeout(CONNECT_TIMEOUT)
                .connect_with_connector(tower::service_fn(move |_: Uri| {
                    let path = path.clone();
                    async move {
                        tokio::net::UnixStream::connect(path)
                            .await
                            .map(TokioIo::new)
                    }
                }))
                .await
                .map_err(DialError::Connect)
        }
        "tcp" => Endpoint::from_shared(format!("http://{address}"))
            .map_err(DialError::Connect)?
            .connect_timeout(CONNECT_TIMEOUT)
            .connect()
            .await
            .map_err(DialError::Connect),
        other => Err(DialError::UnknownNetwork(other.to_owned())),
    }
}

#[tonic::async_trait]
impl GrpcBroker for Broker {
    type StartStreamStream = Pending<ConnInfo>;

    async fn start_stream(
        &self,
        request: Request<Streaming<ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut inbound = request.into_inner();
        let broker = self.clone();
        tokio::spawn(async move {
            loop {
                match inbound.message().await {
                    Ok(Some(info)) => broker.announce(info),
                    Ok(None) => break,
                    Err(status) => {
                        tracing::debug!(%status, "broker stream ended");
                        break;
                    }
                }
            }
        });
        Ok(Response::new(pending()))
    }
}

/// `GRPCController/Shutdown`: tells the server loop to exit.
#[derive(Debug, Clone, Default)]
pub struct Controller {
    /// Notified once when the host asks the plugin to stop.
    pub shutdown: Arc<Notify>,
}

#[tonic::async_trait]
impl GrpcController for Controller {
    async fn shutdown(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        tracing::debug!("shutdown requested by the host");
        self.shutdown.notify_one();
        Ok(Response::new(Empty {}))
    }
}

/// `GRPCStdio/StreamStdio`: open and silent (all output goes to the real stderr as hclog).
#[derive(Debug, Clone, Copy, Default)]
pub struct Stdio;

#[tonic::async_trait]
impl GrpcStdio for Stdio {
    type StreamStdioStream = Pending<StdioData>;

    async fn stream_stdio(
        &self,
        _: Request<()>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(pending()))
    }
}
