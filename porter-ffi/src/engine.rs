//! The operations both surfaces offer, over one shared [`Porter`]: options become validated
//! `porter-core` requests here (as the CLI's second stage does), engine errors become
//! [`Failure`]s, and the rustls crypto provider is installed on every way in, because foreign
//! callers never run our `main`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use porter_core::cache::{PrunePolicy, PruneReport, VerifyReport};
use porter_core::progress::Progress;
use porter_core::{
    ArtifactResult, Error, PlatformRequest, Porter, PullRequest, PushRequest, PushSource, config,
    install_crypto_provider,
};

use crate::options::{ExportOptions, PruneOptions, PullOptions, PushOptions, VerifyOptions};
use crate::status::Failure;

/// A client: the engine on one configuration. Cheap to clone; safe to share between threads.
#[derive(Debug, Clone)]
pub(crate) struct Engine(Arc<Porter>);

impl Engine {
    /// Opens the engine. With `config_json`, the configuration is DS's host-config JSON (the
    /// JSON encoding of DS's `types.Config`); without, it is read as the standalone CLI reads
    /// it: defaults < `~/.config/ds/config.yaml` < `DS_*` environment variables.
    pub(crate) fn open(config_json: Option<&str>) -> Result<Engine, Failure> {
        install_crypto_provider();
        let settings = match config_json {
            Some(json) => config::settings_from_host_json(json.as_bytes())?,
            None => config::load_standalone(None)?,
        };
        Ok(Engine(Arc::new(Porter::new(settings)?)))
    }

    /// Every cached artifact, sorted by id.
    pub(crate) fn list(&self) -> Result<Vec<ArtifactResult>, Failure> {
        install_crypto_provider();
        Ok(self.0.list()?)
    }

    /// Pulls `reference` into the cache and, with `options.output`, exports it.
    pub(crate) async fn pull(
        &self,
        reference: &str,
        options: PullOptions,
        progress: &dyn Progress,
    ) -> Result<ArtifactResult, Failure> {
        install_crypto_provider();
        let mut request = pull_request(reference, &options.platforms, options.all_arch)?;
        request.insecure = options.insecure;
        request.offline = options.offline;
        request.output = options.output.map(PathBuf::from);
        Ok(self.0.pull(&request, progress).await?.result)
    }

    /// Exports a cached artifact into `output` without touching the network: a digest as
    /// pinned, a tag as it was last pulled.
    pub(crate) async fn export(
        &self,
        reference: &str,
        output: &str,
        options: ExportOptions,
        progress: &dyn Progress,
    ) -> Result<ArtifactResult, Failure> {
        install_crypto_provider();
        if output.trim().is_empty() {
            return Err(Error::InvalidInput("export destination required".into()).into());
        }
        let mut request = pull_request(reference, &options.platforms, options.all_arch)?;
        request.offline = true;
        request.output = Some(PathBuf::from(output));
        Ok(self.0.pull(&request, progress).await?.result)
    }

    /// Pushes the file, directory or release manifest at `source` to `reference`.
    pub(crate) async fn push(
        &self,
        source: &str,
        reference: &str,
        options: PushOptions,
        progress: &dyn Progress,
    ) -> Result<ArtifactResult, Failure> {
        install_crypto_provider();
        if source.trim().is_empty() {
            return Err(Error::InvalidInput("artifact path required".into()).into());
        }
        let source = PathBuf::from(source);
        let source = if options.manifest {
            PushSource::Manifest(source)
        } else {
            PushSource::Path(source)
        };
        let mut request = PushRequest::new(source, reference)?;
        request.insecure = options.insecure;
        request.tag_latest = options.tag_latest;
        Ok(self.0.push(&request, progress).await?)
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
        };
        Ok(self.0.prune(&policy)?)
    }

    /// Re-hashes every cached blob; with `options.repair`, fetches damaged or missing blobs
    /// again.
    pub(crate) async fn verify(
        &self,
        options: VerifyOptions,
        progress: &dyn Progress,
    ) -> Result<VerifyReport, Failure> {
        install_crypto_provider();
        Ok(self
            .0
            .verify_cache(options.repair, options.insecure, progress)
            .await?)
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
}
