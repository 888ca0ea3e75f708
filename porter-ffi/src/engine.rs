//! The operations both surfaces offer, over one shared [`Porter`]: options become validated
//! `porter-core` requests here (as the CLI's second stage does), engine errors become
//! [`Failure`]s, and the rustls crypto provider is installed on every way in, because foreign
//! callers never run our `main`.

use std::sync::Arc;
use std::time::Duration;

use porter_core::cache::{PrunePolicy, PruneReport, VerifyReport};
use porter_core::config::Settings;
use porter_core::progress::Progress;
use porter_core::{
    ArtifactResult, Error, PlatformRequest, Porter, PullRequest, PushRequest, PushSource, config,
    install_crypto_provider,
};
use tokio_util::sync::CancellationToken;

use crate::options::{self, ExportOptions, PruneOptions, PullOptions, PushOptions, VerifyOptions};
use crate::runtime::abandon_on_cancel;
use crate::status::{Failure, porter_status};

/// The settings of a client or adapter. With `config_json`, the configuration is DS's
/// host-config JSON (the JSON encoding of DS's `types.Config`), and a key `types.Config` does not
/// have is refused, as unknown option keys are; without, it is read as the standalone CLI reads
/// it: defaults < `~/.config/ds/config.yaml` < `DS_*` environment variables.
pub(crate) fn settings(config_json: Option<&str>) -> Result<Settings, Failure> {
    install_crypto_provider();
    Ok(match config_json {
        Some(json) => {
            config::check_host_json_keys(json.as_bytes())?;
            config::settings_from_host_json(json.as_bytes())?
        }
        None => config::load_standalone(None)?,
    })
}

/// A client: the engine on one configuration. Cheap to clone; safe to share between threads.
#[derive(Debug, Clone)]
pub(crate) struct Engine(Arc<Porter>);

impl Engine {
    /// Opens the engine on [`settings`]`(config_json)`.
    pub(crate) fn open(config_json: Option<&str>) -> Result<Engine, Failure> {
        Ok(Engine(Arc::new(Porter::new(settings(config_json)?)?)))
    }

    /// The engine for a call that asks for its own number of retries.
    fn porter(&self, retries: Option<u32>) -> Result<Porter, Failure> {
        let configured = &self.0.settings().retry;
        let retry = match retries {
            None => configured.clone(),
            Some(n) => config::with_retries(configured, n).ok_or_else(|| {
                Failure::new(
                    porter_status::PORTER_INVALID_INPUT,
                    format!(
                        "retries must be at most {} (it was {n})",
                        config::MAX_RETRIES
                    ),
                )
            })?,
        };
        Ok(self.0.with_retry(retry))
    }

    /// Every cached artifact, sorted by id.
    pub(crate) fn list(&self) -> Result<Vec<ArtifactResult>, Failure> {
        install_crypto_provider();
        Ok(self.0.list()?)
    }

    /// Pulls `reference` into the cache and, with `options.output`, exports it. Stops, removing
    /// what it staged, when `cancel` fires.
    pub(crate) async fn pull(
        &self,
        reference: &str,
        options: PullOptions,
        progress: &dyn Progress,
        cancel: CancellationToken,
    ) -> Result<ArtifactResult, Failure> {
        install_crypto_provider();
        let porter = self.porter(options.retries)?;
        let mut request = pull_request(reference, &options.platforms, options.all_arch)?;
        request.insecure = options.insecure;
        request.offline = options.offline;
        request.output = match &options.output {
            Some(output) => Some(options::destination(output, options.overwrite)?),
            None => None,
        };
        request.cancel = cancel;
        Ok(porter.pull(&request, progress).await?.result)
    }

    /// Exports a cached artifact into `output` without touching the network: a digest as
    /// pinned, a tag as it was last pulled. Stops, removing what it staged, when `cancel` fires.
    pub(crate) async fn export(
        &self,
        reference: &str,
        output: &str,
        options: ExportOptions,
        progress: &dyn Progress,
        cancel: CancellationToken,
    ) -> Result<ArtifactResult, Failure> {
        install_crypto_provider();
        let destination = options::destination(output, options.overwrite)?;
        let mut request = pull_request(reference, &options.platforms, options.all_arch)?;
        request.offline = true;
        request.output = Some(destination);
        request.cancel = cancel;
        Ok(self.0.pull(&request, progress).await?.result)
    }

    /// Pushes the file, directory or release manifest at `source` to `reference`; abandoned
    /// when `cancel` fires.
    pub(crate) async fn push(
        &self,
        source: &str,
        reference: &str,
        options: PushOptions,
        progress: &dyn Progress,
        cancel: CancellationToken,
    ) -> Result<ArtifactResult, Failure> {
        install_crypto_provider();
        if source.trim().is_empty() {
            return Err(Error::InvalidInput("artifact path required".into()).into());
        }
        let porter = self.porter(options.retries)?;
        let source = std::path::PathBuf::from(source);
        let source = if options.manifest {
            PushSource::Manifest(source)
        } else {
            PushSource::Path(source)
        };
        let mut request = PushRequest::new(source, reference)?;
        request.insecure = options.insecure;
        request.tag_latest = options.tag_latest;
        abandon_on_cancel(cancel, async { Ok(porter.push(&request, progress).await?) }).await
    }

    /// Prunes the cache: by the configured `Cache.TTL` and `Cache.MaxSize`, or by the limits in
    /// `options`. Blocks while pulls of other threads or processes finish (up to a minute).
    pub(crate) fn prune(&self, options: PruneOptions) -> Result<PruneReport, Failure> {
        install_crypto_provider();
        let configured = self.0.prune_policy();
        let policy = PrunePolicy {
            ttl: options
                .ttl_seconds
                .map(Duration::from_secs)
                .or(configured.ttl),
            max_size: options.max_size_bytes.or(configured.max_size),
            keep: None,
            remove: Vec::new(),
        };
        Ok(self.0.prune(&policy)?)
    }

    /// Re-hashes every cached blob; with `options.repair`, fetches damaged or missing blobs
    /// again. Abandoned when `cancel` fires.
    pub(crate) async fn verify(
        &self,
        options: VerifyOptions,
        progress: &dyn Progress,
        cancel: CancellationToken,
    ) -> Result<VerifyReport, Failure> {
        install_crypto_provider();
        let porter = self.porter(options.retries)?;
        abandon_on_cancel(cancel, async {
            Ok(porter
                .verify_cache(options.repair, options.insecure, progress)
                .await?)
        })
        .await
    }
}

/// A pull request with the platform choice validated before any I/O, as the CLI does it.
fn pull_request(
    reference: &str,
    platforms: &[String],
    all_arch: bool,
) -> Result<PullRequest, Failure> {
    if reference.trim().is_empty() {
        return Err(Error::InvalidInput("artifact reference required".into()).into());
    }
    // Named in this library's terms: the options, not the command line's flags.
    if all_arch && !platforms.is_empty() {
        return Err(Error::InvalidInput(
            "the options all_arch and platforms cannot be combined".into(),
        )
        .into());
    }
    let platforms = PlatformRequest::from_flags(platforms, all_arch)?;
    Ok(PullRequest::new(reference, platforms)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::status::porter_status::PORTER_INVALID_INPUT;

    #[test]
    fn platform_choices_are_checked_before_any_io() {
        let all = pull_request("127.0.0.1:5000/a/b:1", &["linux/amd64".into()], true);
        assert_eq!(all.unwrap_err().status, PORTER_INVALID_INPUT);
        let bad = pull_request("127.0.0.1:5000/a/b:1", &["linux".into()], false);
        assert_eq!(bad.unwrap_err().status, PORTER_INVALID_INPUT);
        let empty = pull_request("  ", &[], false);
        assert_eq!(empty.unwrap_err().status, PORTER_INVALID_INPUT);
        let listed = pull_request(
            "127.0.0.1:5000/a/b:1",
            &["linux/amd64,linux/arm64".into()],
            false,
        )
        .unwrap();
        assert!(matches!(listed.platforms, PlatformRequest::Only(ref l) if l.len() == 2));
    }

    #[test]
    fn unknown_configuration_keys_are_refused_like_unknown_options() {
        let err = settings(Some(r#"{"Cache":{"Dir":"/tmp/x","TTl":1},"Registy":{}}"#)).unwrap_err();
        assert_eq!(err.status, PORTER_INVALID_INPUT);
        assert!(err.message.contains("unknown key Registy"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::json!({"cache": {"dir": dir.path()}, "Plugins": {"Dir": "/p"}});
        assert!(settings(Some(&json.to_string())).is_ok());
    }

    #[test]
    fn retries_are_bounded_and_mapped_onto_the_retry_policy() {
        let dir = tempfile::tempdir().unwrap();
        let json = serde_json::json!({"Cache": {"Dir": dir.path()}});
        let engine = Engine::open(Some(&json.to_string())).unwrap();
        assert_eq!(engine.porter(Some(0)).unwrap().settings().retry.attempts, 1);
        assert_eq!(
            engine.porter(None).unwrap().settings().retry,
            engine.0.settings().retry
        );
        let err = engine.porter(Some(21)).unwrap_err();
        assert!(
            err.message.starts_with("retries must be at most 20"),
            "{err}"
        );
    }
}
