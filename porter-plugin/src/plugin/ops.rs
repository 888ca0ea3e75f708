//! The operations DS runs through `Execute`: `pull`, `push`, `list`, `execute-plugin`, `verify`,
//! `inspect`, `tags`, `copy`, `cache`, `help`, `version`. Each returns what DS shows: stdout, finalizers,
//! or an error string (ds-contract §6.4, §7).

use std::path::PathBuf;
use std::sync::Arc;

use porter_core::artifact::{self, ArtifactResult};
use porter_core::config::Settings;
use porter_core::digest::Digest;
use porter_core::progress::{Progress, Wait};
use porter_core::{Finalizer, Porter};

use super::args::{PluginArgs, cleaned};
use super::hclog;
use crate::request;

/// `help` output (ds-contract §7.1).
pub const HELP: &str = "Available commands:
  pull <artifact>    Pull an artifact
  push <artifact>    Push an artifact
  list               List artifacts
  execute-plugin     Execute a plugin
  version            Show plugin version
";

/// `pull help=true` output (ds-contract §7.5).
pub const PULL_USAGE: &str = "Usage: ds porter pull [flags] <artifact-ref>

Flags:
  --output, -o <path>   Export artifact to a file or directory
                         Directories receive ds-porter by default; files write the binary directly
  --platform <os/arch>  Fetch a specific platform (repeatable; e.g. linux/arm64)
  --all-arch            Fetch every platform in the index (requires directory output)
  --insecure            Allow plain HTTP connections to registries

Behaviour:
  • Without --platform/--all-arch, the current runtime platform is exported
  • When multiple platforms are requested, artifacts are written to <dir>/<os>/<arch>/

Examples:
  ds porter pull ghcr.io/delivery-station/porter:0.2.0 -o ./porter-bin
  ds porter pull localhost/delivery-station/porter:0.2.0 --platform linux/arm64 -o ./out
  ds porter pull ghcr.io/...:0.2.0 --all-arch -o ./artifacts
";

/// Default operation of the finalizer `execute-plugin` emits.
pub const EXECUTE_PLUGIN_DEFAULT_OPERATION: &str = "run";

/// DS's gRPC client accepts 4 MiB per message; leave room for the other fields.
const MAX_STDOUT: usize = 4 * 1024 * 1024 - 64 * 1024;

/// What an operation produced on success.
#[derive(Debug, Default)]
pub struct Output {
    /// The `stdout` field.
    pub stdout: String,
    /// The `stderr` field (shown verbatim by DS).
    pub stderr: String,
    /// Follow-up plugin runs.
    pub finalizers: Vec<Finalizer>,
}

impl Output {
    fn stdout(text: impl Into<String>) -> Output {
        Output {
            stdout: text.into(),
            ..Output::default()
        }
    }
}

/// Operations that need the host's configuration.
pub fn needs_config(operation: &str, args: &PluginArgs) -> bool {
    match operation {
        "list" | "execute-plugin" | "push" | "verify" | "inspect" | "tags" | "copy" | "cache" => {
            true
        }
        "pull" => args.bool_any(&["help", "h"]) != Some(true),
        _ => false,
    }
}

/// Runs the operations that need no configuration; `None` when `operation` needs it.
pub fn run_without_config(operation: &str, args: &PluginArgs) -> Option<Result<Output, String>> {
    Some(match operation {
        "help" => Ok(Output::stdout(HELP)),
        "version" => Ok(Output::stdout(crate::version::version_text())),
        "pull" if !needs_config(operation, args) => Ok(Output::stdout(PULL_USAGE)),
        _ if needs_config(operation, args) => return None,
        other => Err(format!("unknown operation: {other}")),
    })
}

/// Opens the engine on `settings` (ds-contract §6.4 step 4) and runs `operation`.
pub async fn run_with_config(
    operation: &str,
    args: &PluginArgs,
    settings: Settings,
) -> Result<Output, String> {
    for problem in hclog::configure(&settings.logging) {
        tracing::warn!("{problem}");
    }
    for warning in &settings.logging.warnings {
        tracing::warn!("{warning}");
    }
    let porter =
        Porter::new(settings).map_err(|e| format!("Failed to create porter client: {e}"))?;
    let porter = Arc::new(porter);
    match operation {
        "pull" => pull(&porter, args).await,
        "push" => push(&porter, args).await,
        "list" => list(porter).await,
        "execute-plugin" => execute_plugin(&porter, args),
        "verify" => verify(&porter, args).await,
        "inspect" => inspect(&porter, args).await,
        "tags" => tags(&porter, args).await,
        "copy" => copy(&porter, args).await,
        "cache" => cache(porter, args).await,
        other => Err(format!("unknown operation: {other}")),
    }
}

/// The text of a result as DS shows it, within what DS accepts from a plugin.
fn json_stdout(value: &impl serde::Serialize) -> Result<Output, String> {
    let mut stdout = serde_json::to_string(value).map_err(|e| e.to_string())?;
    stdout.push('\n');
    if stdout.len() > MAX_STDOUT {
        return Err(format!(
            "the result is {} bytes, above the 4 MiB DS accepts from a plugin; run ds-porter \
             directly instead",
            stdout.len()
        ));
    }
    Ok(Output::stdout(stdout))
}

/// `inspect <ref>` (`insecure`, `offline`, `raw=true` for the root document as served).
async fn inspect(porter: &Porter, args: &PluginArgs) -> Result<Output, String> {
    let raw = args.bool("raw").unwrap_or(false);
    let mut request = request::inspect(
        args.first_any(&["ref", "artifact", "arg0"])
            .unwrap_or_default(),
        args.bool("insecure").unwrap_or(false),
        args.bool("offline").unwrap_or(false),
    )
    .map_err(|e| e.to_string())?;
    request.root_only = raw;
    let found = porter
        .inspect(&request)
        .await
        .map_err(|e| crate::hints::plugin_error(&e))?;
    if raw {
        return Ok(Output::stdout(
            String::from_utf8_lossy(&found.raw).into_owned(),
        ));
    }
    json_stdout(&found)
}

/// `tags <repository>` (`semver=<constraint>`, `latest=true`, `insecure`): the tags as
/// `{"repository","constraint","tags"}`.
async fn tags(porter: &Porter, args: &PluginArgs) -> Result<Output, String> {
    let request = request::tags(
        args.first_any(&["repository", "repo", "arg0"])
            .unwrap_or_default(),
        args.bool("insecure").unwrap_or(false),
        args.first_any(&["semver", "constraint"]),
        args.bool("latest").unwrap_or(false),
    )
    .map_err(|e| e.to_string())?;
    let listed = porter
        .list_tags(&request.listing)
        .await
        .map_err(|e| crate::hints::plugin_error(&e))?;
    let selected = request
        .select(listed)
        .map_err(|e| crate::hints::plugin_error(&e))?;
    json_stdout(&serde_json::json!({
        "repository": request.listing.repository,
        "constraint": request.constraint.as_ref().map(|c| c.as_str()),
        "tags": selected,
    }))
}

/// `copy <source> <destination>` (`platform=` repeatable, `all-arch`, `insecure`).
async fn copy(porter: &Porter, args: &PluginArgs) -> Result<Output, String> {
    let mut platforms = cleaned(args.all("platform"));
    platforms.extend(cleaned(args.all("platforms")));
    let positionals = args.cleaned_positionals();
    let request = request::copy(request::CopyInput {
        source: args
            .first_any(&["source", "src"])
            .or(positionals.first().map(String::as_str))
            .unwrap_or_default(),
        destination: args
            .first_any(&["destination", "dst"])
            .or(positionals.get(1).map(String::as_str))
            .unwrap_or_default(),
        platforms: &platforms,
        all_arch: args.bool("all-arch").unwrap_or(false),
        insecure: args.bool("insecure").unwrap_or(false),
    })
    .map_err(|e| e.to_string())?;
    tracing::info!(from = %request.source, to = %request.destination, "copying artifact");
    let outcome = porter
        .copy(&request, &LogProgress)
        .await
        .map_err(|e| crate::hints::plugin_error(&e))?;
    json_stdout(&outcome)
}

/// `cache prune` (`max-size=`, `ttl=`), `cache verify` (`repair=true`, `insecure`) and
/// `cache rm <id|ref>…`: the JSON report.
async fn cache(porter: Arc<Porter>, args: &PluginArgs) -> Result<Output, String> {
    let positionals = args.cleaned_positionals();
    let (action, rest) = match positionals.split_first() {
        Some((action, rest)) => (action.as_str(), rest.to_vec()),
        None => return Err("cache needs an action: prune, verify or rm".into()),
    };
    match action {
        "prune" => {
            let mut policy = porter.prune_policy();
            if let Some(size) = args.first("max-size") {
                policy.max_size = Some(
                    porter_core::config::parse_size(size)
                        .map_err(|e| format!("invalid max-size {size:?}: {e}"))?,
                );
            }
            if let Some(ttl) = args.first("ttl") {
                policy.ttl = Some(
                    porter_core::config::parse_duration(ttl)
                        .map_err(|e| format!("invalid ttl {ttl:?}: {e}"))?,
                );
            }
            let report = tokio::task::spawn_blocking(move || porter.prune(&policy))
                .await
                .map_err(|e| format!("cache prune failed: {e}"))?
                .map_err(|e| crate::hints::plugin_error(&e))?;
            json_stdout(&report)
        }
        "verify" => {
            let repair = args.bool("repair").unwrap_or(false);
            let insecure = args.bool("insecure").unwrap_or(false);
            let report = porter
                .verify_cache(repair, insecure, &LogProgress)
                .await
                .map_err(|e| crate::hints::plugin_error(&e))?;
            if !report.is_clean() {
                return Err(format!(
                    "{} cached blobs are damaged or missing: {}",
                    report.corrupt.len() + report.missing.len(),
                    serde_json::to_string(&report).unwrap_or_default()
                ));
            }
            json_stdout(&report)
        }
        "rm" | "remove" => {
            if rest.is_empty() {
                return Err("cache rm needs the ids or references to remove".into());
            }
            let report = tokio::task::spawn_blocking(move || porter.remove_cached(&rest))
                .await
                .map_err(|e| format!("cache rm failed: {e}"))?
                .map_err(|e| crate::hints::plugin_error(&e))?;
            json_stdout(&report)
        }
        other => Err(format!(
            "unknown cache action {other:?}: expected prune, verify or rm"
        )),
    }
}

/// `verify <ref>`: checks every platform's signatures (or `platform=` ones) against the policy
/// without exporting; the JSON report on success, an error naming what failed otherwise.
async fn verify(porter: &Porter, args: &PluginArgs) -> Result<Output, String> {
    let mut platforms = cleaned(args.all("platform"));
    platforms.extend(cleaned(args.all("platforms")));
    let request = request::pull(request::PullInput {
        reference: args
            .first_any(&["ref", "artifact", "arg0"])
            .unwrap_or_default(),
        platforms: &platforms,
        all_arch: platforms.is_empty(),
        output: None,
        insecure: args.bool("insecure").unwrap_or(false),
        offline: false,
        cosign_keys: cosign_keys(args),
    })
    .map_err(|e| e.to_string())?;
    let report = porter
        .verify(&request, &LogProgress)
        .await
        .map_err(|e| crate::hints::plugin_error(&e))?;
    let mut stdout = serde_json::to_string(&report).map_err(|e| e.to_string())?;
    stdout.push('\n');
    Ok(Output::stdout(stdout))
}

/// Every `cosign-key=` argument, as paths.
fn cosign_keys(args: &PluginArgs) -> Vec<PathBuf> {
    cleaned(args.all("cosign-key"))
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

/// A key file argument (`sign-key=`, `cosign-key=`), when given.
fn key_arg(args: &PluginArgs, name: &str) -> Option<PathBuf> {
    args.first(name)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(PathBuf::from)
}

async fn pull(porter: &Porter, args: &PluginArgs) -> Result<Output, String> {
    let mut platforms = cleaned(args.all("platform"));
    platforms.extend(cleaned(args.all("platforms")));
    let reference = args
        .first_any(&["ref", "artifact", "arg0"])
        .unwrap_or_default();
    let semver = args
        .first("semver")
        .map(|text| request::pull_semver(reference, text))
        .transpose()
        .map_err(|e| e.to_string())?;
    let mut request = request::pull(request::PullInput {
        reference,
        platforms: &platforms,
        all_arch: args.bool_any(&["all-arch"]).unwrap_or(false),
        output: args
            .first_any(&["output", "o"])
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(PathBuf::from),
        insecure: args.bool("insecure").unwrap_or(false),
        offline: false,
        cosign_keys: cosign_keys(args),
    })
    .map_err(|e| e.to_string())?;
    if let Some(constraint) = semver {
        porter
            .pin_highest_tag(&mut request, &constraint)
            .await
            .map_err(|e| crate::hints::plugin_error(&e))?;
    }

    tracing::info!(reference = %request.original, "pulling artifact");
    let outcome = porter
        .pull(&request, &LogProgress)
        .await
        .map_err(|e| crate::hints::plugin_error(&e))?;
    tracing::info!(id = %outcome.result.id, digest = %outcome.result.digest, "artifact pulled");
    Ok(Output {
        stdout: outcome.result.to_stdout_json(),
        stderr: String::new(),
        finalizers: outcome.finalizers,
    })
}

/// `push`: `arg0=<path> arg1=<ref>`, or `manifest=<file> arg0=<ref>` (ds-contract §7.9), with
/// `insecure`, `no-latest`, `sign-key`, `cosign-key`, `chunk-size`, `platform`, `annotation`
/// and `manifest-annotation` (repeatable, `annotation=KEY=VALUE`), `artifact-type`,
/// `media-type`, `dry-run` and `file`. The result is JSON in every mode: the pushed index's
/// `ArtifactResult`, or with `dry-run` the plan of the push (nothing is sent).
async fn push(porter: &Porter, args: &PluginArgs) -> Result<Output, String> {
    let positionals = args.cleaned_positionals();
    let push = request::push(push_input(args, &positionals)?).map_err(|e| e.to_string())?;
    if push.dry_run {
        let plan = porter
            .plan_push(&push.request)
            .await
            .map_err(|e| crate::hints::plugin_error(&e))?;
        let mut stdout = artifact::go_json(&plan, false);
        stdout.push('\n');
        return Ok(Output::stdout(stdout));
    }
    let request = push.request;
    tracing::info!(reference = %request.original, "pushing artifact");
    let result = porter
        .push(&request, &LogProgress)
        .await
        .map_err(|e| crate::hints::plugin_error(&e))?;
    tracing::info!(digest = %result.digest, "artifact pushed");
    Ok(Output::stdout(result.to_stdout_json()))
}

/// The push arguments as the command line's: a value that is given but empty counts as absent,
/// and a switch whose value is not a boolean is refused (a mistyped `dry-run` must not push).
fn push_input<'a>(
    args: &PluginArgs,
    positionals: &'a [String],
) -> Result<request::PushInput<'a>, String> {
    let value = |key: &str| {
        args.first(key)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let switch = |key: &str| match (args.first(key), args.bool(key)) {
        (None, _) => Ok(false),
        (Some(_), Some(on)) => Ok(on),
        (Some(v), None) => Err(format!("invalid {key} value {v:?}: expected true or false")),
    };
    let platforms = cleaned(args.all("platform"));
    if platforms.len() > 1 {
        return Err(format!(
            "push takes one platform, got {}",
            platforms.join(", ")
        ));
    }
    Ok(request::PushInput {
        positionals,
        manifest: args
            .first_any(&["manifest", "m"])
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(PathBuf::from),
        insecure: args.bool("insecure").unwrap_or(false),
        no_latest: args.bool("no-latest").unwrap_or(false),
        sign_key: key_arg(args, "sign-key"),
        cosign_key: key_arg(args, "cosign-key"),
        chunk_size: args.first_any(&["chunk-size"]).map(str::to_owned),
        platform: platforms.into_iter().next(),
        annotations: args.all("annotation").to_vec(),
        manifest_annotations: args.all("manifest-annotation").to_vec(),
        artifact_type: value("artifact-type"),
        media_type: value("media-type"),
        dry_run: switch("dry-run")?,
        file: switch("file")?,
    })
}

async fn list(porter: Arc<Porter>) -> Result<Output, String> {
    let entries = tokio::task::spawn_blocking(move || porter.list())
        .await
        .map_err(|e| format!("failed to read cache directory: {e}"))?
        .map_err(|e| crate::hints::plugin_error(&e))?;
    // An empty cache is `[]` (the Go plugin printed `null`, which breaks `jq '.[]'`).
    let mut stdout = artifact::go_json(&entries, false);
    stdout.push('\n');
    if stdout.len() > MAX_STDOUT {
        return Err(format!(
            "the list of {} cached artifacts is {} bytes, above the 4 MiB DS accepts from a plugin; \
             run `ds-porter list` directly instead",
            entries.len(),
            stdout.len()
        ));
    }
    Ok(Output::stdout(stdout))
}

/// `execute-plugin <id> <plugin> [args…]`: hands a cached artifact to another plugin.
///
/// DS runs the returned finalizer as `ds <plugin> <operation>` with these arguments (DS passes
/// `key=value` tokens through and numbers the others as `arg0…`):
/// `artifact=<cache entry dir>`, `artifact-id=<id>`, `reference=<ref>`, `digest=<digest>`,
/// one `<name>=<value>` per `ds.plugin.param.<name>` annotation (reserved or malformed names and
/// values with control characters are dropped, see [`artifact::param_args`]), then the extra
/// positionals.
/// The operation is `operation=<op>` (`--operation <op>`), default `run`.
fn execute_plugin(porter: &Porter, args: &PluginArgs) -> Result<Output, String> {
    let positionals = args.cleaned_positionals();
    let [id, plugin, extra @ ..] = positionals.as_slice() else {
        return Err("artifact ID and plugin name required".into());
    };
    if !is_entry_name(id) {
        return Err(format!("invalid artifact id {id:?}"));
    }
    if plugin.eq_ignore_ascii_case("porter") {
        return Err(
            "execute-plugin hands an artifact to another plugin, not to porter itself".into(),
        );
    }
    let entry = porter.cache().entry_dir(id);
    let metadata_path = entry.join("metadata.json");
    let stored: ArtifactResult = std::fs::read(&metadata_path)
        .map_err(|e| format!("artifact not found: failed to read metadata: {e}"))
        .and_then(|bytes| {
            serde_json::from_slice(&bytes)
                .map_err(|e| format!("artifact not found: failed to parse metadata: {e}"))
        })?;
    let operation = args
        .first_any(&["operation", "op"])
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .unwrap_or(EXECUTE_PLUGIN_DEFAULT_OPERATION);

    let mut finalizer_args = vec![
        format!("artifact={}", entry.display()),
        format!("artifact-id={id}"),
        format!("reference={}", stored.reference),
        format!("digest={}", stored.digest),
    ];
    if let Some(info) = &stored.plugin_info {
        finalizer_args.extend(artifact::param_args(&info.parameters));
    }
    finalizer_args.extend(extra.iter().cloned());
    tracing::info!(id = %id, plugin = %plugin, operation = %operation, "Plugin execution requested");
    Ok(Output {
        stdout: String::new(),
        stderr: format!(
            "handing artifact {id} ({}) to plugin {plugin} ({operation})\n",
            stored.reference
        ),
        finalizers: vec![Finalizer {
            name: plugin.clone(),
            operation: operation.to_owned(),
            args: finalizer_args,
        }],
    })
}

/// A cache entry name: one plain path component (ids are hex, entries from the Go plugin may
/// be other names).
fn is_entry_name(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Transfer progress as debug log events (DS shows no progress bars).
struct LogProgress;

impl Progress for LogProgress {
    fn blob_started(&self, digest: &Digest, size: u64, title: Option<&str>) {
        tracing::debug!(%digest, size, title = title.unwrap_or(""), "downloading blob");
    }
    fn blob_done(&self, digest: &Digest, reused: bool) {
        tracing::debug!(%digest, reused, "blob complete");
    }
    fn blob_waiting(&self, digest: &Digest, wait: Wait) {
        tracing::info!("{}", crate::progress_bar::waiting_text(digest, wait));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn push_request(args: &[&str]) -> Result<request::Push, String> {
        let args = PluginArgs::new(args);
        let positionals = args.cleaned_positionals();
        request::push(push_input(&args, &positionals)?).map_err(|e| e.to_string())
    }

    #[test]
    fn push_options_arrive_as_on_the_command_line() {
        let push = push_request(&[
            "arg0=config.yaml",
            "arg1=r.io/a/b:1",
            "file=true",
            "dry-run=",
            "platform=linux/arm64",
            "annotation=a=b=c",
            "annotation=d=e",
            "manifest-annotation=m=n",
            "artifact-type=application/vnd.x",
            "media-type= application/yaml ",
        ])
        .unwrap();
        assert!(push.dry_run);
        let request = push.request;
        assert_eq!(
            request.source,
            porter_core::PushSource::Plain("config.yaml".into())
        );
        assert_eq!(request.platform.unwrap().to_string(), "linux/arm64");
        assert_eq!(request.annotations["a"], "b=c");
        assert_eq!(request.annotations["d"], "e");
        assert_eq!(request.manifest_annotations["m"], "n");
        assert_eq!(request.artifact_type.as_deref(), Some("application/vnd.x"));
        assert_eq!(request.media_type.as_deref(), Some("application/yaml"));

        let plain = push_request(&["arg0=tool", "arg1=r.io/a/b:1", "platform="]).unwrap();
        assert!(!plain.dry_run && plain.request.platform.is_none());
    }

    #[test]
    fn bad_push_options_are_named() {
        for (args, expected) in [
            (&["dry-run=maybe"][..], "invalid dry-run value \"maybe\""),
            (&["file=sure"], "invalid file value \"sure\""),
            (
                &["platform=linux/amd64", "platform=linux/arm64"],
                "push takes one platform, got linux/amd64, linux/arm64",
            ),
            (&["annotation=broken"], "invalid --annotation \"broken\""),
            (&["artifact-type=x"], "invalid --artifact-type \"x\""),
        ] {
            let all = [&["arg0=tool", "arg1=r.io/a/b:1"], args].concat();
            let err = push_request(&all).unwrap_err();
            assert!(err.starts_with(expected), "{args:?}: {err}");
        }
    }

    #[test]
    fn help_and_version_need_no_configuration() {
        let none = PluginArgs::default();
        assert_eq!(
            run_without_config("help", &none).unwrap().unwrap().stdout,
            HELP
        );
        let version = run_without_config("version", &none)
            .unwrap()
            .unwrap()
            .stdout;
        assert!(version.starts_with("porter version ") && !version.ends_with('\n'));
        let help = PluginArgs::new(&["help=true"]);
        assert_eq!(
            run_without_config("pull", &help).unwrap().unwrap().stdout,
            PULL_USAGE
        );
    }

    #[test]
    fn unknown_operations_fail_and_others_need_configuration() {
        let none = PluginArgs::default();
        assert_eq!(
            run_without_config("unknown", &none).unwrap().unwrap_err(),
            "unknown operation: unknown"
        );
        assert_eq!(
            run_without_config("--help", &none).unwrap().unwrap_err(),
            "unknown operation: --help"
        );
        assert!(run_without_config("push", &none).is_none());
        assert!(run_without_config("list", &none).is_none());
        assert!(run_without_config("pull", &PluginArgs::new(&["h=true", "help=false"])).is_none());
    }

    #[test]
    fn help_text_is_six_lines() {
        assert_eq!(HELP.lines().count(), 6);
        assert!(HELP.ends_with("Show plugin version\n"));
    }

    #[test]
    fn entry_names_cannot_escape_the_cache() {
        assert!(is_entry_name("0123456789abcdef") && is_entry_name("test123"));
        for bad in ["", ".", "..", "../x", "a/b", "a b"] {
            assert!(!is_entry_name(bad), "{bad:?}");
        }
    }
}
