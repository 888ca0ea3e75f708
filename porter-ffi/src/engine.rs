//! The operations both surfaces offer, over one shared [`Porter`]: options become validated
//! `porter-core` requests here (as the CLI's second stage does), engine errors become
//! [`Failure`]s, and the rustls crypto provider is installed on every way in, because foreign
//! callers never run our `main`.

use std::sync::Arc;
use std::time::Duration;

use porter_core::cache::{PrunePolicy, PruneReport, VerifyReport};
use porter_core::config::Settings;
use porter_core::progress::Progress;
use porter_core::tags::{SemverConstraint, TagListRequest};
use porter_core::{
    ArtifactResult, CopyOutcome, CopyRequest, Error, InspectRequest, Inspection, PlatformRequest,
    Porter, PullRequest, PushRequest, PushSource, config, install_crypto_provider,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::options::{
    self, CopyOptions, ExportOptions, InspectOptions, PruneOptions, PullOptions, PushOptions,
    TagsOptions, VerifyOptions,
};
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

    /// Describes `reference` (its root, and each platform's manifest with its layers) without
    /// downloading layers. Abandoned when `cancel` fires.
    pub(crate) async fn inspect(
        &self,
        reference: &str,
        options: InspectOptions,
        cancel: CancellationToken,
    ) -> Result<Inspection, Failure> {
        install_crypto_provider();
        let porter = self.porter(options.retries)?;
        let request = inspect_request(reference, &options)?;
        abandon_on_cancel(cancel, async { Ok(porter.inspect(&request).await?) }).await
    }

    /// Every tag of `repository`, following pagination; with `options.semver` only the versions
    /// it accepts, in version order (with `options.latest` only the highest). Abandoned when
    /// `cancel` fires.
    pub(crate) async fn tags(
        &self,
        repository: &str,
        options: TagsOptions,
        cancel: CancellationToken,
    ) -> Result<TagList, Failure> {
        install_crypto_provider();
        let porter = self.porter(options.retries)?;
        let query = TagQuery::new(repository, &options)?;
        let listed = abandon_on_cancel(cancel, async {
            Ok(porter.list_tags(&query.listing).await?)
        })
        .await?;
        query.select(listed)
    }

    /// Copies `source` to `destination` (registries and layouts, either way). Stops when
    /// `cancel` fires: the pull into the cache as a pull stops, the upload abandoned.
    pub(crate) async fn copy(
        &self,
        source: &str,
        destination: &str,
        options: CopyOptions,
        progress: &dyn Progress,
        cancel: CancellationToken,
    ) -> Result<CopyOutcome, Failure> {
        install_crypto_provider();
        let porter = self.porter(options.retries)?;
        let mut request = copy_request(source, destination, &options)?;
        request.cancel = cancel;
        Ok(porter.copy(&request, progress).await?)
    }

    /// Removes the cached artifacts `names` names (ids, digests or references) and the blobs
    /// nothing else needs; a name that matches nothing removes nothing. Blocks while pulls of
    /// other threads or processes finish (up to a minute).
    pub(crate) fn remove(&self, names: &[String]) -> Result<PruneReport, Failure> {
        install_crypto_provider();
        Ok(self.0.remove_cached(names)?)
    }
}

/// A repository's tags as the library returns them: the JSON `ds-porter tags` prints,
/// `{"repository":…,"constraint":…,"tags":[…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, uniffi::Record)]
pub struct TagList {
    /// The repository as given.
    pub repository: String,
    /// The version constraint (`semver`), when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// Without a constraint every tag, sorted; with one the versions it accepts, lowest first
    /// (only the highest with `latest`).
    pub tags: Vec<String>,
}

/// A tag listing and how its tags are narrowed, validated before any I/O, as the CLI does it.
#[derive(Debug)]
struct TagQuery {
    listing: TagListRequest,
    constraint: Option<SemverConstraint>,
    latest: bool,
}

impl TagQuery {
    fn new(repository: &str, options: &TagsOptions) -> Result<TagQuery, Failure> {
        let mut listing = TagListRequest::checked(repository)?;
        listing.insecure = options.insecure;
        if let Some(size) = options.page_size {
            if !(1..=u32::from(u16::MAX)).contains(&size) {
                return Err(Error::InvalidInput(format!(
                    "page_size must be between 1 and {} (it was {size})",
                    u16::MAX
                ))
                .into());
            }
            listing.page_size = size as usize;
        }
        let constraint = options
            .semver
            .as_deref()
            .map(SemverConstraint::parse)
            .transpose()?;
        Ok(TagQuery {
            listing,
            constraint,
            latest: options.latest,
        })
    }

    /// The tags to return from a listing: all of them sorted, or the versions the constraint
    /// accepts in version order (only the highest with `latest`, which must find one).
    fn select(self, tags: Vec<String>) -> Result<TagList, Failure> {
        let tags = porter_core::tags::narrow(
            &self.listing.repository,
            tags,
            self.constraint.as_ref(),
            self.latest,
        )?;
        Ok(TagList {
            repository: self.listing.repository,
            constraint: self.constraint.map(|c| c.as_str().to_owned()),
            tags,
        })
    }
}

/// An inspection with the reference checked before any I/O, as the CLI does it.
fn inspect_request(reference: &str, options: &InspectOptions) -> Result<InspectRequest, Failure> {
    let mut request = InspectRequest::checked(reference)?;
    request.insecure = options.insecure;
    request.offline = options.offline;
    Ok(request)
}

/// A copy with both references and the platforms checked before any I/O, as the CLI does it.
fn copy_request(
    source: &str,
    destination: &str,
    options: &CopyOptions,
) -> Result<CopyRequest, Failure> {
    // The options' own names; the rest is the engine's check.
    if options.all_arch && !options.platforms.is_empty() {
        return Err(Error::InvalidInput(
            "the options all_arch and platforms cannot be combined".into(),
        )
        .into());
    }
    let mut request = CopyRequest::checked(source, destination, &options.platforms)?;
    request.insecure = options.insecure;
    Ok(request)
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
    use crate::status::porter_status::{PORTER_INVALID_INPUT, PORTER_NOT_FOUND};

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
    fn inspect_and_copy_references_and_platforms_are_checked_before_any_io() {
        let options = InspectOptions::default();
        for bad in ["", "  ", "Not A Reference"] {
            let err = inspect_request(bad, &options).unwrap_err();
            assert_eq!(err.status, PORTER_INVALID_INPUT, "{bad:?}");
        }
        let request = inspect_request(
            " 127.0.0.1:5000/a/b:1 ",
            &InspectOptions {
                offline: true,
                ..InspectOptions::default()
            },
        )
        .unwrap();
        assert_eq!(request.reference, "127.0.0.1:5000/a/b:1");
        assert!(request.offline && !request.insecure);

        let copy = |source: &str, destination: &str, options: CopyOptions| {
            copy_request(source, destination, &options)
        };
        let all = copy("127.0.0.1:5000/a/b:1", "oci:out", CopyOptions::default()).unwrap();
        assert!(matches!(all.platforms, PlatformRequest::All));
        let err = copy("127.0.0.1:5000/a/b:1", " ", CopyOptions::default()).unwrap_err();
        assert!(err.message.contains("source and destination"), "{err}");
        let both = CopyOptions {
            platforms: vec!["linux/amd64".into()],
            all_arch: true,
            ..CopyOptions::default()
        };
        let err = copy("127.0.0.1:5000/a/b:1", "oci:out", both).unwrap_err();
        assert!(err.message.contains("all_arch and platforms"), "{err}");
        assert!(!err.message.contains("--"), "{err}");
        let bad = CopyOptions {
            platforms: vec!["linux".into()],
            ..CopyOptions::default()
        };
        assert!(copy("127.0.0.1:5000/a/b:1", "oci:out", bad).is_err());
        let subset = CopyOptions {
            platforms: vec!["linux/amd64,linux/arm64".into()],
            ..CopyOptions::default()
        };
        let request = copy("127.0.0.1:5000/a/b:1", "oci:out", subset).unwrap();
        assert!(matches!(request.platforms, PlatformRequest::Only(ref l) if l.len() == 2));
        assert!(copy("Not A Reference", "oci:out", CopyOptions::default()).is_err());
    }

    #[test]
    fn tag_queries_check_their_options_and_narrow_by_version() {
        let query = |options: TagsOptions| TagQuery::new("127.0.0.1:5000/demo/tool", &options);
        let tags = || -> Vec<String> {
            [
                "latest",
                "1.10.0",
                "1.2.0",
                "v1.9.1",
                "2.0.0",
                "1.2.0-rc.1",
                "1.2.0",
            ]
            .map(String::from)
            .to_vec()
        };
        let all = query(TagsOptions::default())
            .unwrap()
            .select(tags())
            .unwrap();
        assert_eq!(all.constraint, None);
        assert_eq!(
            all.tags,
            ["1.10.0", "1.2.0", "1.2.0-rc.1", "2.0.0", "latest", "v1.9.1"]
        );
        let json = porter_core::artifact::go_json(&all, false);
        assert!(json.starts_with(r#"{"repository":"127.0.0.1:5000/demo/tool","tags":["#));

        let semver = |text: &str, latest: bool| TagsOptions {
            semver: Some(text.into()),
            latest,
            ..TagsOptions::default()
        };
        let ones = query(semver("^1.2", false))
            .unwrap()
            .select(tags())
            .unwrap();
        assert_eq!(ones.constraint.as_deref(), Some("^1.2"));
        assert_eq!(ones.tags, ["1.2.0", "1.2.0", "v1.9.1", "1.10.0"]);
        let latest = query(semver(">=1, <2", true))
            .unwrap()
            .select(tags())
            .unwrap();
        assert_eq!(latest.tags, ["1.10.0"]);
        let any = TagsOptions {
            latest: true,
            ..TagsOptions::default()
        };
        assert_eq!(query(any).unwrap().select(tags()).unwrap().tags, ["2.0.0"]);

        let none = query(semver("^3", true))
            .unwrap()
            .select(tags())
            .unwrap_err();
        assert_eq!(none.status, PORTER_NOT_FOUND);
        assert!(none.message.contains("demo/tool (\"^3\";"), "{none}");
        let empty = query(semver("^3", false)).unwrap().select(tags()).unwrap();
        assert!(empty.tags.is_empty());

        let err = query(semver("not a version", false)).unwrap_err();
        assert!(err.message.contains("invalid version constraint"), "{err}");
        for size in [0, 65_536] {
            let err = query(TagsOptions {
                page_size: Some(size),
                ..TagsOptions::default()
            })
            .unwrap_err();
            assert!(
                err.message
                    .starts_with("page_size must be between 1 and 65535"),
                "{err}"
            );
        }
        let paged = query(TagsOptions {
            page_size: Some(2),
            ..TagsOptions::default()
        })
        .unwrap();
        assert_eq!(paged.listing.page_size, 2);
        let err = TagQuery::new(" ", &TagsOptions::default()).unwrap_err();
        assert_eq!(err.status, PORTER_INVALID_INPUT);
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
