//! The server stack in-process over unix sockets: the plugin's services on one socket, a
//! `HostConfig` server on another, announced through the broker stream after Execute started
//! (the order a go-plugin host may produce).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use tonic::transport::Server;
use tonic::{Request, Response, Status};

use super::goplugin::{self, Broker, Controller, Stdio};
use super::proto::ds_plugin_client::DsPluginClient;
use super::proto::ds_plugin_server::DsPluginServer;
use super::proto::grpc_broker_client::GrpcBrokerClient;
use super::proto::grpc_broker_server::GrpcBrokerServer;
use super::proto::grpc_controller_server::GrpcControllerServer;
use super::proto::grpc_stdio_server::GrpcStdioServer;
use super::proto::host_config_server::{HostConfig, HostConfigServer};
use super::proto::{
    ConnInfo, ExecuteRequest, GetEffectiveConfigRequest, GetEffectiveConfigResponse,
    GetManifestRequest,
};
use super::service::Service;

struct Config(Vec<u8>);

#[tonic::async_trait]
impl HostConfig for Config {
    async fn get_effective_config(
        &self,
        _: Request<GetEffectiveConfigRequest>,
    ) -> Result<Response<GetEffectiveConfigResponse>, Status> {
        Ok(Response::new(GetEffectiveConfigResponse {
            config_json: self.0.clone(),
        }))
    }
}

fn listen(path: &Path) -> tokio_stream::wrappers::UnixListenerStream {
    tokio_stream::wrappers::UnixListenerStream::new(tokio::net::UnixListener::bind(path).unwrap())
}

async fn start_plugin(dir: &Path) -> tonic::transport::Channel {
    let socket = dir.join("plugin.sock");
    let broker = Broker::default();
    let router = Server::builder()
        .add_service(GrpcBrokerServer::new(broker.clone()))
        .add_service(GrpcControllerServer::new(Controller::default()))
        .add_service(GrpcStdioServer::new(Stdio))
        .add_service(DsPluginServer::new(Service::new(broker)));
    let incoming = listen(&socket);
    tokio::spawn(router.serve_with_incoming(incoming));
    goplugin::connect("unix", &socket.display().to_string())
        .await
        .unwrap()
}

#[tokio::test]
async fn execute_fetches_host_config_announced_after_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let channel = start_plugin(dir.path()).await;
    let mut ds = DsPluginClient::new(channel.clone());
    assert_eq!(
        ds.get_manifest(GetManifestRequest {})
            .await
            .unwrap()
            .into_inner()
            .name,
        "porter"
    );

    let cache = dir.path().join("cache");
    let payload = serde_json::json!({"Cache": {"Dir": cache}})
        .to_string()
        .into_bytes();
    let host_socket = dir.path().join("host.sock");
    let host_incoming = listen(&host_socket);
    tokio::spawn(
        Server::builder()
            .add_service(HostConfigServer::new(Config(payload)))
            .serve_with_incoming(host_incoming),
    );

    let request = ExecuteRequest {
        operation: "list".into(),
        broker_id_field4: Some(1),
        ..ExecuteRequest::default()
    };
    let execute = tokio::spawn(async move { ds.execute(request).await.unwrap().into_inner() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!execute.is_finished(), "Execute must wait for its ConnInfo");

    let info = ConnInfo {
        service_id: 1,
        network: "unix".into(),
        address: host_socket.display().to_string(),
        knock: None,
    };
    let announce =
        tokio_stream::StreamExt::chain(tokio_stream::once(info), tokio_stream::pending());
    let mut broker = GrpcBrokerClient::new(channel);
    let _stream = broker.start_stream(announce).await.unwrap();

    let response = tokio::time::timeout(Duration::from_secs(10), execute)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            response.exit_code,
            response.error.as_str(),
            response.stdout.as_str()
        ),
        (0, "", "[]\n")
    );
    assert!(cache.join("porter").is_dir());
}

#[tokio::test]
async fn a_broker_stream_stays_open_and_knocks_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let channel = start_plugin(dir.path()).await;
    let knock = ConnInfo {
        service_id: 9,
        knock: Some(Default::default()),
        ..ConnInfo::default()
    };
    let announce =
        tokio_stream::StreamExt::chain(tokio_stream::once(knock), tokio_stream::pending());
    let mut stream = GrpcBrokerClient::new(channel)
        .start_stream(announce)
        .await
        .unwrap()
        .into_inner();
    let next = tokio::time::timeout(Duration::from_millis(200), stream.message()).await;
    assert!(
        next.is_err(),
        "the plugin must never finish or answer on the broker stream"
    );
}
