//! `plugin.DSPlugin`: discovery (`GetManifest`, legacy `GetMetadata`), `GetSchema`,
//! `ValidateConfig` and `Execute` (ds-contract §2, §6).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use porter_core::config::normalize_registry_host;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use super::args::{self, PluginArgs};
use super::goplugin::Broker;
use super::proto::ds_plugin_server::DsPlugin;
use super::proto::{
    ExecuteRequest, ExecuteResponse, FinalizerRequest, GetManifestRequest, GetManifestResponse,
    GetMetadataRequest, GetMetadataResponse, GetSchemaRequest, GetSchemaResponse, Platform,
    PluginCommand, SchemaProperty, ValidateConfigRequest, ValidateConfigResponse,
};
use super::{hostconfig, ops};

/// The plugin's name as DS knows it (the binary is `ds-porter`).
pub const NAME: &str = "porter";
const DESCRIPTION: &str = "Fetch and deliver OCI artifacts";
const COMMANDS: [(&str, &str); 10] = [
    ("pull", "Pull an OCI artifact"),
    ("push", "Push an OCI artifact"),
    ("list", "List cached artifacts"),
    (
        "execute-plugin",
        "Execute a plugin contained in an artifact",
    ),
    ("verify", "Check an artifact's signatures"),
    (
        "inspect",
        "Show an artifact's platforms, layers and annotations",
    ),
    ("tags", "List a repository's tags (semver=, latest=true)"),
    ("copy", "Copy an artifact between registries and layouts"),
    ("cache", "Prune, verify or remove cached artifacts"),
    ("version", "Display plugin version information"),
];
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
/// Longest `error` sent back; DS accepts 4 MiB per message, and an error that quotes a long
/// value is read by people. Longer ones keep their start and their end (the cause).
const MAX_ERROR: usize = 16 * 1024;
const ERROR_TAIL: usize = 2 * 1024;

/// Platforms in Go's names; DS skips plugins whose lists lack its `GOOS`/`GOARCH`.
fn platform() -> Platform {
    Platform {
        os: ["linux", "darwin", "windows"].map(String::from).to_vec(),
        arch: ["amd64", "arm64"].map(String::from).to_vec(),
    }
}

/// The DS service.
#[derive(Debug, Clone)]
pub struct Service {
    broker: Broker,
    running: Running,
}

/// The Executes in progress. Stopping the plugin cancels them — dropping a pull drops its blob
/// writers and temp files — and waits until every one is gone, so their blocking threads are
/// done cleaning up before the process exits.
#[derive(Debug, Clone)]
pub struct Running {
    stopping: Arc<watch::Sender<bool>>,
    count: Arc<watch::Sender<usize>>,
}

impl Default for Running {
    fn default() -> Self {
        Running {
            stopping: Arc::new(watch::Sender::new(false)),
            count: Arc::new(watch::Sender::new(0)),
        }
    }
}

impl Running {
    /// Runs `work` to completion, or `None` once the plugin stops (`work` is dropped first).
    async fn run<T>(&self, work: impl Future<Output = T>) -> Option<T> {
        struct Leave<'a>(&'a watch::Sender<usize>);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.send_modify(|n| *n -= 1);
            }
        }
        self.count.send_modify(|n| *n += 1);
        let _leave = Leave(&self.count);
        let mut stopping = self.stopping.subscribe();
        // Biased: when the stop and the work are ready together (or the stop came first), the
        // stop wins; `wait_for` sees a stop already sent.
        tokio::select! {
            biased;
            _ = stopping.wait_for(|s| *s) => None,
            out = work => Some(out),
        }
    }

    /// Cancels every Execute in progress, and any that starts later.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves when no Execute is in progress.
    pub async fn idle(&self) {
        let _ = self.count.subscribe().wait_for(|n| *n == 0).await;
    }
}

impl Service {
    /// A service that fetches host configuration through `broker`.
    pub fn new(broker: Broker) -> Self {
        Service {
            broker,
            running: Running::default(),
        }
    }

    /// The service's Executes in progress.
    pub fn running(&self) -> Running {
        self.running.clone()
    }

    /// Runs one Execute to completion; every failure becomes `{exit_code: 1, error}`.
    pub async fn execute(&self, request: ExecuteRequest) -> ExecuteResponse {
        let operation = request.operation.as_str();
        tracing::debug!(operation, args = ?request.args, broker_id = request.broker_id(), "execute");
        match self.run(&request).await {
            Ok(out) => ExecuteResponse {
                stdout: out.stdout,
                stderr: out.stderr,
                exit_code: 0,
                error: String::new(),
                finalizers: out
                    .finalizers
                    .into_iter()
                    .map(|f| FinalizerRequest {
                        name: f.name,
                        operation: f.operation,
                        args: f.args,
                    })
                    .collect(),
            },
            Err(error) => {
                tracing::debug!(operation, %error, "operation failed");
                ExecuteResponse {
                    exit_code: 1,
                    error: bounded(error),
                    ..ExecuteResponse::default()
                }
            }
        }
    }

    /// Checks and parses the arguments, loads the host config when the operation needs it, and
    /// runs the operation.
    async fn run(&self, request: &ExecuteRequest) -> Result<ops::Output, String> {
        args::check_lengths(&request.args)?;
        let args = PluginArgs::from_request(&request.args);
        let operation = request.operation.as_str();
        if let Some(result) = ops::run_without_config(operation, &args) {
            return result;
        }
        let settings = hostconfig::load(&self.broker, request.broker_id(), &request.env).await?;
        ops::run_with_config(operation, &args, settings).await
    }
}

/// `error` cut to [`MAX_ERROR`] bytes in the middle, at character boundaries.
fn bounded(error: String) -> String {
    if error.len() <= MAX_ERROR {
        return error;
    }
    let mut head = MAX_ERROR - ERROR_TAIL - 64;
    while !error.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = error.len() - ERROR_TAIL;
    while !error.is_char_boundary(tail) {
        tail += 1;
    }
    format!(
        "{} …[{} bytes cut]… {}",
        &error[..head],
        tail - head,
        &error[tail..]
    )
}

#[tonic::async_trait]
impl DsPlugin for Service {
    async fn get_manifest(
        &self,
        _: Request<GetManifestRequest>,
    ) -> Result<Response<GetManifestResponse>, Status> {
        Ok(Response::new(GetManifestResponse {
            name: NAME.into(),
            version: crate::version::VERSION.into(),
            description: DESCRIPTION.into(),
            commands: COMMANDS
                .iter()
                .map(|(name, description)| PluginCommand {
                    name: (*name).into(),
                    description: (*description).into(),
                })
                .collect(),
            platform: Some(platform()),
            annotations: HashMap::new(),
        }))
    }

    async fn get_metadata(
        &self,
        _: Request<GetMetadataRequest>,
    ) -> Result<Response<GetMetadataResponse>, Status> {
        Ok(Response::new(GetMetadataResponse {
            name: NAME.into(),
            version: crate::version::VERSION.into(),
            description: DESCRIPTION.into(),
            operations: COMMANDS
                .iter()
                .map(|(name, _)| (*name).to_owned())
                .collect(),
            platform: Some(platform()),
            config: HashMap::new(),
        }))
    }

    async fn execute(
        &self,
        request: Request<ExecuteRequest>,
    ) -> Result<Response<ExecuteResponse>, Status> {
        let execute = Service::execute(self, request.into_inner());
        match self.running.run(execute).await {
            Some(response) => Ok(Response::new(response)),
            None => Err(Status::cancelled("ds-porter is stopping")),
        }
    }

    async fn validate_config(
        &self,
        request: Request<ValidateConfigRequest>,
    ) -> Result<Response<ValidateConfigResponse>, Status> {
        let problems = validate(&request.into_inner().config);
        Ok(Response::new(ValidateConfigResponse {
            valid: problems.is_empty(),
            error: problems.join("; "),
        }))
    }

    async fn get_schema(
        &self,
        _: Request<GetSchemaRequest>,
    ) -> Result<Response<GetSchemaResponse>, Status> {
        let registry = SchemaProperty {
            r#type: "string".into(),
            description: "Default registry".into(),
            required: false,
            default: "ghcr.io".into(),
        };
        Ok(Response::new(GetSchemaResponse {
            version: "1.0.0".into(),
            properties: HashMap::from([("registry".to_owned(), registry)]),
        }))
    }
}

/// Checks the settings porter understands; other keys belong to DS and pass.
fn validate(config: &HashMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = config.keys().collect();
    keys.sort();
    let mut problems = Vec::new();
    for key in keys {
        let value = config[key].trim();
        match key.to_ascii_lowercase().as_str() {
            "registry" if !is_registry_host(value) => problems.push(format!(
                "registry {value:?} is not a registry host (expected a host like ghcr.io or localhost:5000, \
                 optionally with a namespace)"
            )),
            "log_level" | "log-level" | "loglevel" | "logging.level" | "level"
                if !LOG_LEVELS.contains(&value.to_ascii_lowercase().as_str()) =>
            {
                problems.push(format!(
                    "unknown log level {value:?} for {key} (expected one of {})",
                    LOG_LEVELS.join(", ")
                ))
            }
            "insecure" if PluginArgs::new(&[format!("insecure={value}")]).bool("insecure").is_none() => {
                problems.push(format!("insecure must be true or false, not {value:?}"))
            }
            _ => {}
        }
    }
    problems
}

/// `host[:port]`, optionally with a scheme and a namespace path (`https://ghcr.io/org`).
fn is_registry_host(value: &str) -> bool {
    if value.is_empty() || value.contains(char::is_whitespace) {
        return false;
    }
    let host = normalize_registry_host(value);
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host.as_str(), None),
    };
    let name_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    name_ok && port_ok
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn accepts_registry_hosts_and_unknown_keys() {
        for host in [
            "ghcr.io",
            "localhost:5000",
            "127.0.0.1:5000",
            "https://ghcr.io/delivery-station",
            "r.io/",
        ] {
            assert!(
                validate(&config(&[("registry", host)])).is_empty(),
                "{host}"
            );
        }
        assert!(validate(&config(&[("anything", "goes"), ("level", "TRACE")])).is_empty());
    }

    #[test]
    fn rejects_what_is_not_a_registry_host_or_log_level() {
        let problems = validate(&config(&[
            ("registry", "not a host"),
            ("log_level", "loud"),
            ("insecure", "maybe"),
        ]));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("registry \"not a host\" is not a registry host"))
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("unknown log level \"loud\""))
        );
        for bad in ["", "host:port", "-bad.io", "a..b", "x:99999"] {
            assert!(!is_registry_host(bad), "{bad}");
        }
    }

    #[test]
    fn long_errors_keep_their_start_and_end() {
        assert_eq!(bounded("short".into()), "short");
        let long = format!("start {} é end", "é".repeat(MAX_ERROR));
        let cut = bounded(long.clone());
        assert!(cut.len() <= MAX_ERROR, "{}", cut.len());
        assert!(
            cut.starts_with("start éé") && cut.ends_with("éé é end"),
            "{cut}"
        );
        assert!(cut.contains(" bytes cut]… "));
    }

    #[tokio::test]
    async fn an_argument_too_long_fails_every_operation_by_name() {
        let service = Service::new(Broker::default());
        let response = service
            .execute(ExecuteRequest {
                operation: "help".into(),
                args: vec![format!("arg0={}", "a".repeat(args::MAX_ARG_BYTES))],
                ..ExecuteRequest::default()
            })
            .await;
        assert_eq!(response.exit_code, 1);
        assert!(
            response
                .error
                .starts_with("argument arg0 is 131077 bytes long"),
            "{}",
            response.error
        );
    }

    #[tokio::test]
    async fn stopping_cancels_running_work_and_waits_for_it() {
        let running = Running::default();
        let work = {
            let running = running.clone();
            tokio::spawn(async move { running.run(std::future::pending::<()>()).await })
        };
        tokio::task::yield_now().await;
        assert_eq!(*running.count.borrow(), 1);
        running.stop();
        tokio::time::timeout(std::time::Duration::from_secs(5), running.idle())
            .await
            .unwrap();
        assert_eq!(work.await.unwrap(), None);
        assert_eq!(
            running.run(async { 1 }).await,
            None,
            "nothing starts after stop"
        );
    }

    #[tokio::test]
    async fn execute_without_config_answers_help_and_errors() {
        let service = Service::new(Broker::default());
        let request = |op: &str| ExecuteRequest {
            operation: op.into(),
            ..ExecuteRequest::default()
        };
        let help = service.execute(request("help")).await;
        assert_eq!((help.exit_code, help.stdout.as_str()), (0, ops::HELP));
        let unknown = service.execute(request("unknown")).await;
        assert_eq!(
            (
                unknown.exit_code,
                unknown.error.as_str(),
                unknown.stdout.as_str()
            ),
            (1, "unknown operation: unknown", "")
        );
    }
}
