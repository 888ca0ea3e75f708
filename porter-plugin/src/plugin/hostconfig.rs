//! The effective configuration of one `Execute`: fetched from the host's `HostConfig` service
//! through the broker (ds-contract §3), or, when the host sent no broker id, built from `DS_*`
//! environment variables, DS's config file and defaults.

use std::collections::BTreeMap;
use std::time::Duration;

use porter_core::config::{self, HostConfig, Settings};

use super::goplugin::Broker;
use super::proto::GetEffectiveConfigRequest;
use super::proto::host_config_client::HostConfigClient;

/// How long to wait for the host's `ConnInfo` (go-plugin waits 5 s too).
pub const CONN_INFO_WAIT: Duration = Duration::from_secs(5);
/// Bound on the `GetEffectiveConfig` call itself.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest config payload accepted.
const MAX_CONFIG_BYTES: usize = 64 * 1024 * 1024;

/// Loads the settings for an Execute. Errors read as DS users know them:
/// `failed to load configuration from DS: failed to fetch host configuration: …`.
pub async fn load(
    broker: &Broker,
    broker_id: u32,
    legacy_env: &BTreeMap<String, String>,
) -> Result<Settings, String> {
    let settings = if broker_id == 0 {
        tracing::debug!("no host config broker id; using DS_* environment variables and defaults");
        from_environment(legacy_env).map_err(|e| e.to_string())
    } else {
        fetch(broker, broker_id)
            .await
            .map_err(|e| format!("failed to fetch host configuration: {e}"))
    };
    settings.map_err(|e| format!("failed to load configuration from DS: {e}"))
}

async fn fetch(broker: &Broker, id: u32) -> Result<Settings, String> {
    let channel = broker
        .dial(id, CONN_INFO_WAIT)
        .await
        .map_err(|e| format!("failed to dial host config broker: {e}"))?;
    let mut client = HostConfigClient::new(channel).max_decoding_message_size(MAX_CONFIG_BYTES);
    let response = tokio::time::timeout(
        REQUEST_TIMEOUT,
        client.get_effective_config(GetEffectiveConfigRequest {}),
    )
    .await
    .map_err(|_| "host config request failed: no answer within 30 s".to_owned())?
    .map_err(|status| format!("host config request failed: {}", status.message()))?;
    let payload = response.into_inner().config_json;
    if payload.is_empty() {
        return Err("host returned empty config payload".into());
    }
    config::settings_from_host_json(&payload)
        .map_err(|e| format!("failed to decode host config: {e}"))
}

/// Defaults < `~/.config/ds/config.yaml` < `DS_*` variables (the legacy env map of old hosts
/// first, then the process environment).
fn from_environment(legacy_env: &BTreeMap<String, String>) -> porter_core::Result<Settings> {
    if legacy_env.is_empty() {
        return config::load_standalone(None);
    }
    let home = config::home_dir();
    let env = |name: &str| {
        legacy_env
            .get(name)
            .cloned()
            .or_else(|| std::env::var(name).ok())
    };
    let mut host = HostConfig::defaults(&home);
    let user_file = home.join(".config").join("ds").join("config.yaml");
    if user_file.is_file() {
        host.merge(HostConfig::from_yaml_file(&user_file)?);
    }
    host.apply_env(&env)?;
    host.to_settings(&env, &home)
}
