//! ds-porter as DS sees it: launched by a real go-plugin v1.7.0 host (`tests/go-host`, Go, stubs
//! generated from `proto/`) exactly as the DS host launches plugins, and checked against the
//! conformance cases of `spec/ds-contract.md` §12 (transport 1–17, dispatch 27–34, list and
//! execute-plugin 41–44, pull 45–47 and, against the real registry, the pull cases), plus
//! robustness: a host that goes away in the middle of an Execute, several Executes in one
//! launch, and argument edge cases (§4.1 gaps, repeats, empty keys; huge values; unwritable
//! output paths).
//!
//! Each test runs the host program once per plugin launch; the host prints a JSON report of what
//! it saw (handshake, RPC answers, the Execute response, kill time, the plugin's raw stderr and
//! its own re-logged view of it).
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use porter_e2e::go_host::{HOST_TIMEOUT, Launch, assert_error, assert_ok, execute, executes};
use porter_e2e::{
    BINARY_MEDIA_TYPE, EMPTY_CONFIG_DIGEST, EMPTY_CONFIG_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE,
    Registry, StandardFixtures, block_on, ds_porter_bin, publish_standard, sha256_digest,
};
use serde_json::{Value, json};

/// The host stopped the plugin quickly and cleanly.
fn assert_clean_exit(report: &Value) {
    assert_eq!(report["exited"], true, "{report:#}");
    assert_eq!(report["socket_removed"], true, "{report:#}");
    assert!(
        report["kill_millis"].as_f64().unwrap() < 1000.0,
        "Kill took {}",
        report["kill_millis"]
    );
}

// --- transport / handshake (cases 1–6) -----------------------------------------------------

#[test]
fn case_01_without_the_cookie_it_explains_and_exits_1_with_empty_stdout() {
    let out = Command::new(ds_porter_bin())
        .env_remove("DS_PLUGIN_MAGIC_COOKIE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Delivery Station plugin"));
}

#[test]
fn case_01_a_wrong_cookie_value_is_refused_too() {
    let out = Command::new(ds_porter_bin())
        .env("DS_PLUGIN_MAGIC_COOKIE", "nope")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
}

#[test]
fn case_02_version_flag_answers_without_the_cookie() {
    // Intentional deviation from Go HEAD (which refuses): `ds plugin update` reads this line.
    let out = Command::new(ds_porter_bin())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("porter version "));
}

#[test]
fn cases_03_to_06_handshake_health_shutdown_no_stdout_and_socket_dir() {
    let launch = Launch::new();
    let sockets = launch.dir().join("sockets");
    std::fs::create_dir_all(&sockets).unwrap();
    let report = launch
        .flags(&[
            "-raw",
            "-env",
            &format!("PLUGIN_UNIX_SOCKET_DIR={}", sockets.display()),
        ])
        .run();
    let raw = &report["raw"];
    let line = raw["handshake"].as_str().unwrap();
    let fields: Vec<&str> = line.strip_suffix('\n').unwrap().split('|').collect();
    assert_eq!(fields.len(), 6, "{line:?}");
    assert_eq!(
        (fields[0], fields[1], fields[2], fields[4], fields[5]),
        ("1", "1", "unix", "grpc", "")
    );
    assert!(
        fields[3].starts_with(&format!("{}/plugin", sockets.display())),
        "{line}"
    );
    assert_eq!(raw["health"], "SERVING");
    assert_eq!(raw["manifest_name"], "porter");
    assert_eq!(raw["socket_exists_before_shutdown"], true);
    assert_eq!(
        raw["stdout_after_handshake"], "",
        "only the handshake line may go to stdout"
    );
    assert_eq!(raw["exit_code"], 0);
    let exit_ms = raw["exit_millis_after_shutdown"].as_f64().unwrap();
    assert!(
        (0.0..100.0).contains(&exit_ms),
        "process gone {exit_ms} ms after Shutdown"
    );
    assert_eq!(report["socket_removed"], true);
}

#[test]
fn the_plugin_exits_when_its_host_connection_goes_away() {
    let report = Launch::new().flags(&["-raw", "-drop"]).run();
    let raw = &report["raw"];
    assert_eq!(raw["exit_code"], 0, "{report:#}");
    let exit_ms = raw["exit_millis_after_shutdown"].as_f64().unwrap();
    assert!(
        (0.0..1000.0).contains(&exit_ms),
        "process gone {exit_ms} ms after the host hung up"
    );
    assert_eq!(report["socket_removed"], true);
}

#[test]
fn sigint_is_ignored_for_the_whole_session() {
    let raw = Launch::new()
        .flags(&["-raw", "-sigint"])
        .execute("version", &[])
        .run();
    assert_eq!(raw["raw"]["execute_exit_code"], 0, "{raw:#}");
    assert!(
        raw["raw"]["execute_stdout"]
            .as_str()
            .unwrap()
            .starts_with("porter version ")
    );
    assert_eq!(raw["raw"]["exit_code"], 0);

    let hosted = Launch::new().flags(&["-sigint"]).execute("help", &[]).run();
    assert_ok(&hosted);
    assert_clean_exit(&hosted);
}

// --- discovery (cases 5, 7–10) ---------------------------------------------------------------

#[test]
fn cases_05_07_to_10_discovery_rpcs_through_go_plugin() {
    let report = Launch::new()
        .flags(&[
            "-rpcs",
            "manifest,metadata,schema,validate,validate-bad,health",
        ])
        .run();
    assert_eq!(
        (report["protocol"].as_str(), report["version"].as_i64()),
        (Some("grpc"), Some(1))
    );
    let rpcs = &report["rpcs"];
    assert_eq!(rpcs["health"]["status"], "SERVING");

    let manifest = &rpcs["manifest"];
    assert_eq!(manifest["name"], "porter");
    assert_eq!(manifest["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifest["description"], "Fetch and deliver OCI artifacts");
    let commands: Vec<&str> = manifest["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        [
            "pull",
            "push",
            "list",
            "execute-plugin",
            "verify",
            "inspect",
            "tags",
            "copy",
            "cache",
            "version"
        ]
    );
    assert_eq!(
        manifest["platform"],
        json!({"os": ["linux", "darwin", "windows"], "arch": ["amd64", "arm64"]})
    );
    assert_eq!(manifest["annotations"], Value::Null);

    let metadata = &rpcs["metadata"];
    assert_eq!(metadata["name"], "porter");
    assert_eq!(
        metadata["operations"],
        json!([
            "pull",
            "push",
            "list",
            "execute-plugin",
            "verify",
            "inspect",
            "tags",
            "copy",
            "cache",
            "version"
        ])
    );
    assert_eq!(metadata["platform"], manifest["platform"]);

    assert_eq!(
        rpcs["schema"],
        json!({"version": "1.0.0", "properties": {"registry": {"type": "string", "description": "Default registry", "default": "ghcr.io"}}})
    );
    assert_eq!(rpcs["validate"], json!({"valid": true}));
    let bad = rpcs["validate-bad"]["error"].as_str().unwrap();
    assert_eq!(
        rpcs["validate-bad"]["valid"],
        Value::Null,
        "valid must be false"
    );
    assert!(
        bad.contains("registry \"not a host\" is not a registry host")
            && bad.contains("unknown log level \"loud\""),
        "{bad}"
    );
    assert_clean_exit(&report);
}

// --- host config through the broker (cases 11–17) -------------------------------------------

#[test]
fn cases_11_to_13_both_execute_layouts_with_conninfo_before_and_after() {
    for (layout, conninfo) in [
        ("field4", "after"),
        ("field3", "after"),
        ("env", "after"),
        ("field4", "before"),
        ("field3", "race"),
    ] {
        let launch = Launch::new()
            .flags(&["-layout", layout, "-conninfo", conninfo])
            .cache_config()
            .execute("list", &[]);
        let report = launch.run();
        let ex = assert_ok(&report);
        assert_eq!(ex["stdout"], "[]\n", "{layout}/{conninfo}");
        assert!(
            launch.porter_cache().is_dir(),
            "the cache from the broker config was used ({layout}/{conninfo})"
        );
        assert_clean_exit(&report);
    }
}

#[test]
fn case_14_without_broker_id_config_comes_from_ds_environment_variables() {
    // Intentional deviation from Go (which fails): no broker id ⇒ DS_* variables and defaults.
    let launch = Launch::new().flags(&["-conninfo", "none"]);
    let cache = launch.cache_root();
    let launch = launch
        .flags(&["-env", &format!("DS_CACHE_DIR={}", cache.display())])
        .execute("list", &[]);
    let report = launch.run();
    assert_eq!(assert_ok(&report)["stdout"], "[]\n");
    assert!(cache.join("porter").is_dir());

    let defaults = Launch::new()
        .flags(&["-conninfo", "none"])
        .execute("list", &[]);
    let report = defaults.run();
    assert_ok(&report);
    assert!(
        defaults.home().join(".cache/ds/porter").is_dir(),
        "DS's default cache dir ~/.cache/ds ⇒ ~/.cache/ds/porter"
    );
}

#[test]
fn case_15_a_conninfo_that_never_comes_fails_after_5_seconds() {
    let report = Launch::new()
        .flags(&["-conninfo", "never"])
        .cache_config()
        .execute("list", &[])
        .run();
    assert_error(
        &report,
        "failed to load configuration from DS: failed to fetch host configuration: failed to dial host config broker:",
    );
    let millis = execute(&report)["millis"].as_f64().unwrap();
    assert!((4900.0..15000.0).contains(&millis), "{millis}");
    assert_clean_exit(&report);
}

#[test]
fn case_16_an_empty_config_payload_is_an_error() {
    let report = Launch::new().config("").execute("list", &[]).run();
    assert_error(&report, "failed to load configuration from DS:");
    assert!(
        execute(&report)["error"]
            .as_str()
            .unwrap()
            .contains("host returned empty config payload")
    );
}

#[test]
fn case_17_go_encoded_config_with_nulls_durations_and_lower_case_keys_decodes() {
    let launch = Launch::new();
    let cfg = json!({
        "registry": {"Default": "ghcr.io/delivery-station", "Mirrors": null, "InsecureRegistries": null},
        "Auth": {"DockerConfig": "", "Credentials": null},
        "Cache": {"Dir": launch.cache_root(), "MaxSize": 10737418240u64, "TTL": 604800000000000u64},
        "Logging": {"Level": "info", "Format": "text", "Output": "stdout"},
        "Proxy": {"HTTPProxy": "", "HTTPSProxy": "", "NoProxy": ""},
        "Plugins": {"Dir": "/x", "AutoInstall": true, "Sources": null, "Signature": null},
        "Settings": null
    });
    let launch = launch.config(&cfg.to_string()).execute("list", &[]);
    let report = launch.run();
    assert_ok(&report);
    assert!(launch.porter_cache().is_dir());
}

// --- dispatch (cases 27, 29, 31–34, 45–47) --------------------------------------------------

#[test]
fn cases_31_32_help_and_version_texts_need_no_config() {
    let report = Launch::new()
        .flags(&["-conninfo", "never"])
        .execute("help", &[])
        .run();
    assert_eq!(
        assert_ok(&report)["stdout"],
        "Available commands:\n  pull <artifact>    Pull an artifact\n  push <artifact>    Push an artifact\n  list               List artifacts\n  execute-plugin     Execute a plugin\n  version            Show plugin version\n"
    );
    assert!(
        execute(&report)["millis"].as_f64().unwrap() < 1000.0,
        "help must not wait for config"
    );

    let report = Launch::new()
        .flags(&["-conninfo", "never"])
        .execute("version", &[])
        .run();
    let stdout = assert_ok(&report)["stdout"].as_str().unwrap().to_owned();
    let lines: Vec<&str> = stdout.split('\n').collect();
    assert_eq!(lines.len(), 3, "{stdout:?}");
    assert_eq!(
        lines[0],
        format!("porter version {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(
        lines[1].starts_with("  commit: ") && lines[2].starts_with("  built:  "),
        "{stdout:?}"
    );
}

#[test]
fn case_33_unknown_operations_fail_clearly() {
    let report = Launch::new().cache_config().execute("unknown", &[]).run();
    assert_eq!(execute(&report)["error"], "unknown operation: unknown");
    assert_error(&report, "unknown operation: unknown");

    let report = Launch::new().cache_config().execute("--help", &[]).run();
    assert_error(&report, "unknown operation: --help");
}

#[test]
fn cases_71_72_push_arguments_are_checked() {
    let report = Launch::new()
        .cache_config()
        .execute("push", &["arg0=./bin/tool"])
        .run();
    assert_error(&report, "artifact path and reference required");
    let report = Launch::new()
        .cache_config()
        .execute("push", &["manifest=ds.manifest.yaml"])
        .run();
    assert_error(&report, "registry reference required");
}

#[test]
fn cases_73_75_push_through_the_host_prints_json_in_every_mode() {
    let reg = Registry::start();
    let launch = Launch::new();
    std::fs::write(launch.dir().join("tool"), b"tool bytes").unwrap();
    std::fs::write(
        launch.dir().join("ds.manifest.yaml"),
        "manifests:\n  - platform: linux/amd64\n    path: tool\n  - platform: linux/arm64\n    path: tool\n",
    )
    .unwrap();
    let single = reg.reference("demo/hosted:1.0");
    let report = launch
        .cache_config()
        .execute(
            "push",
            &["arg0=tool", &format!("arg1={single}"), "insecure=true"],
        )
        .run();
    let result: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(result["reference"], single.as_str());
    assert_eq!(result["cached"], false);

    let launch = Launch::new();
    std::fs::write(launch.dir().join("tool"), b"tool bytes").unwrap();
    std::fs::write(
        launch.dir().join("ds.manifest.yaml"),
        "manifests:\n  - platform: linux/amd64\n    path: tool\n  - platform: linux/arm64\n    path: tool\n",
    )
    .unwrap();
    let release = reg.reference("demo/hosted-release:0.1.0");
    let report = launch
        .cache_config()
        .execute(
            "push",
            &[
                &format!("arg0={release}"),
                "manifest=ds.manifest.yaml",
                "insecure=true",
            ],
        )
        .run();
    let result: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert!(
        result["metadata"]["manifest.linux/arm64"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
}

#[test]
fn case_34_a_cache_dir_that_cannot_be_created_is_reported() {
    let launch = Launch::new();
    let file = launch.dir().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let report = launch
        .config(&json!({"Cache": {"Dir": file}}).to_string())
        .execute("list", &[])
        .run();
    assert_error(
        &report,
        "Failed to create porter client: failed to create cache directory",
    );
}

#[test]
fn cases_27_29_45_46_47_pull_argument_handling_before_any_network_io() {
    let usage = Launch::new()
        .cache_config()
        .execute("pull", &["help=true"])
        .run();
    let stdout = assert_ok(&usage)["stdout"].as_str().unwrap().to_owned();
    assert!(
        stdout.starts_with("Usage: ds porter pull [flags] <artifact-ref>\n"),
        "{stdout}"
    );
    assert_eq!(execute(&usage)["finalizers"], json!([]));

    for args in [
        &[][..],
        &["h=true", "help=false", "o=path"][..],
        &["ref=", "arg0=REF"][..],
    ] {
        let report = Launch::new().cache_config().execute("pull", args).run();
        assert_error(&report, "artifact reference required");
    }

    let report = Launch::new()
        .cache_config()
        .execute(
            "pull",
            &[
                "arg0=127.0.0.1:9/none:1",
                "all-arch=true",
                "platform=linux/amd64",
            ],
        )
        .run();
    assert_error(&report, "--all-arch cannot be combined with --platform");
}

// --- list and execute-plugin (cases 41–44) --------------------------------------------------

const TEST123: &str = r#"{"id":"test123","reference":"registry.test/artifact:v1.0.0","digest":"sha256:abc123","size":1024,"metadata":{"test":"value"}}"#;

fn seed_cache(launch: &Launch) {
    let entry = launch.porter_cache().join("test123");
    std::fs::create_dir_all(&entry).unwrap();
    std::fs::write(entry.join("metadata.json"), TEST123).unwrap();
    std::fs::create_dir_all(launch.porter_cache().join("stray")).unwrap();
}

#[test]
fn cases_41_42_list_prints_an_empty_array_for_an_empty_cache_and_go_written_entries() {
    // Case 41, intentional fix of §10.16: an empty cache is `[]`, not Go's `null`.
    let report = Launch::new().cache_config().execute("list", &[]).run();
    assert_eq!(assert_ok(&report)["stdout"], "[]\n");

    let launch = Launch::new().cache_config().execute("list", &[]);
    seed_cache(&launch);
    let report = launch.run();
    let stdout = assert_ok(&report)["stdout"].as_str().unwrap().to_owned();
    assert!(stdout.ends_with('\n'));
    let list: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{stdout}");
    assert_eq!(list[0]["id"], "test123");
    assert_eq!(list[0]["cached"], false);
    assert_eq!(list[0]["cached_at"], "0001-01-01T00:00:00Z");
}

#[test]
fn cases_43_44_execute_plugin_hands_the_artifact_to_the_named_plugin() {
    // Intentional improvement over Go's no-op: a finalizer DS runs as `ds test-plugin run …`.
    let launch = Launch::new().cache_config().execute(
        "execute-plugin",
        &["arg0=test123", "arg1=test-plugin", "arg2=a1"],
    );
    seed_cache(&launch);
    let report = launch.run();
    let ex = assert_ok(&report);
    assert_eq!(ex["stdout"], "");
    let entry = launch.porter_cache().join("test123");
    assert_eq!(
        ex["finalizers"],
        json!([{
            "name": "test-plugin",
            "operation": "run",
            "args": [
                format!("artifact={}", entry.display()),
                "artifact-id=test123",
                "reference=registry.test/artifact:v1.0.0",
                "digest=sha256:abc123",
                "a1"
            ]
        }])
    );

    let report = Launch::new()
        .cache_config()
        .execute("execute-plugin", &["arg0=test123"])
        .run();
    assert_error(&report, "artifact ID and plugin name required");
    let report = Launch::new()
        .cache_config()
        .execute("execute-plugin", &["arg0=missing", "arg1=p"])
        .run();
    assert_error(&report, "artifact not found: failed to read metadata:");
    let report = Launch::new()
        .cache_config()
        .execute("execute-plugin", &["arg0=../x", "arg1=p"])
        .run();
    assert_error(&report, "invalid artifact id");
}

#[test]
fn logging_follows_the_host_config_and_reaches_the_log_file() {
    let launch = Launch::new();
    let log = launch.dir().join("logs").join("porter.log");
    let cfg = json!({"Cache": {"Dir": launch.cache_root()}, "Logging": {"Level": "debug", "Format": "json", "Output": log}});
    let launch = launch.config(&cfg.to_string()).execute("list", &[]);
    let report = launch.run();
    assert_ok(&report);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() > 0);
    for line in text.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        assert!(record["@message"].is_string());
    }
    // At debug level the plugin's records also reach the host's own logger, parsed.
    assert!(
        report["host_log"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("ds-porter")),
        "{report:#}"
    );
}

// --- pull against the real registry (cases 48, 51–54, 66; execute-plugin on a pulled artifact)

fn registry() -> (Registry, StandardFixtures) {
    let reg = Registry::start();
    let fixtures = block_on(publish_standard(&reg));
    (reg, fixtures)
}

fn host_arch_dir() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

#[test]
fn pull_list_and_execute_plugin_through_the_host_against_the_registry() {
    let (reg, fx) = registry();
    let app = reg.reference("demo/app:1.0");

    // Case 48: into the cache only.
    let launch = Launch::new()
        .cache_config()
        .execute("pull", &[&format!("arg0={app}"), "insecure=true"]);
    let report = launch.run();
    let result: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(result["cached"], true);
    assert_eq!(result["reference"], app);
    assert_eq!(result["digest"], fx.app.digest);
    assert_eq!(result["id"], fx.app.id());
    assert_eq!(result["size"], fx.app.size);
    assert_eq!(
        result["local_path"],
        launch
            .porter_cache()
            .join(fx.app.id())
            .display()
            .to_string()
    );
    assert_eq!(result["exported_files"], Value::Null);
    assert_clean_exit(&report);

    // Case 52: index, host platform exported straight into out/.
    let tool = reg.reference("demo/tool:1.0");
    let launch = Launch::new()
        .cache_config()
        .execute("pull", &[&format!("arg0={tool}"), "insecure=true", "o=out"]);
    let report = launch.run();
    let result: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(result["metadata"], json!({"name": "porter"}));
    let host = host_arch_dir();
    assert_eq!(
        std::fs::read(launch.dir().join("out/tool")).unwrap(),
        StandardFixtures::tool_contents(&host)
    );

    // Case 53: one platform into out/<os>/<arch>/; case 54: all of them.
    let launch = Launch::new().cache_config().execute(
        "pull",
        &[
            &format!("arg0={tool}"),
            "insecure=true",
            "platform=linux/arm64",
            "o=out",
        ],
    );
    assert_ok(&launch.run());
    assert_eq!(
        std::fs::read(launch.dir().join("out/linux/arm64/tool")).unwrap(),
        StandardFixtures::tool_contents("linux/arm64")
    );
    let launch = Launch::new().cache_config().execute(
        "pull",
        &[
            &format!("arg0={tool}"),
            "insecure=true",
            "all-arch=true",
            "o=out",
        ],
    );
    assert_ok(&launch.run());
    for (platform, file) in [
        ("linux/amd64", "tool"),
        ("linux/arm64", "tool"),
        ("windows/amd64", "tool.exe"),
    ] {
        let path = launch.dir().join("out").join(platform).join(file);
        assert_eq!(
            std::fs::read(&path).unwrap(),
            StandardFixtures::tool_contents(platform),
            "{}",
            path.display()
        );
    }

    // Case 66: a finalizer annotation with -o ⇒ finalizer with the absolute output path.
    let finalizer = reg.reference("demo/finalizer:1.0");
    let launch = Launch::new().cache_config().execute(
        "pull",
        &[&format!("arg0={finalizer}"), "insecure=true", "o=out"],
    );
    let report = launch.run();
    let ex = assert_ok(&report);
    let out = std::path::absolute(launch.dir().join("out"))
        .unwrap()
        .display()
        .to_string();
    assert_eq!(
        ex["finalizers"],
        json!([{"name": "uploader", "operation": "upload", "args": [out]}])
    );

    // Case 51 + execute-plugin on what was pulled: plugin parameters travel to the plugin.
    let plugininfo = reg.reference("demo/plugininfo:1.0");
    let launch = Launch::new()
        .cache_config()
        .execute("pull", &[&format!("arg0={plugininfo}"), "insecure=true"]);
    let report = launch.run();
    let result: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(
        result["plugin_info"],
        json!({"plugin_name": "x", "version": "1", "parameters": {"a": "b"}})
    );
    let id = result["id"].as_str().unwrap().to_owned();
    assert_eq!(id, fx.plugininfo.id());

    // Same cache, next launches: list shows it, execute-plugin hands it over.
    let cache_cfg = json!({"Cache": {"Dir": launch.cache_root()}}).to_string();
    let list = Launch::new().config(&cache_cfg).execute("list", &[]).run();
    let entries: Value =
        serde_json::from_str(assert_ok(&list)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 1);
    assert_eq!(entries[0]["id"], id);

    let run = Launch::new()
        .config(&cache_cfg)
        .execute(
            "execute-plugin",
            &[&format!("arg0={id}"), "arg1=x", "operation=install"],
        )
        .run();
    let ex = assert_ok(&run);
    assert_eq!(ex["finalizers"][0]["name"], "x");
    assert_eq!(ex["finalizers"][0]["operation"], "install");
    let args: Vec<&str> = ex["finalizers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        args.contains(&"a=b") && args.contains(&format!("artifact-id={id}").as_str()),
        "{args:?}"
    );
}

/// The stdout of each Execute of a launch, as JSON, asserting each succeeded.
fn json_results(report: &Value) -> Vec<Value> {
    executes(report)
        .iter()
        .map(|ex| {
            assert_eq!(
                (ex["exit_code"].as_i64(), ex["error"].as_str()),
                (Some(0), Some("")),
                "{report:#}"
            );
            serde_json::from_str(ex["stdout"].as_str().unwrap()).unwrap()
        })
        .collect()
}

#[test]
fn inspect_tags_copy_and_cache_are_operations_through_the_host() {
    let (reg, fx) = registry();
    let tool = reg.reference("demo/tool:1.0");
    let launch = Launch::new();
    let layout = launch.dir().join("airgap");
    let layout_ref = format!("oci:{}", layout.display());
    let launch = launch
        .cache_config()
        .execute("inspect", &[&format!("arg0={tool}"), "insecure=true"])
        .execute(
            "tags",
            &[
                &format!("arg0={}", reg.reference("demo/tool")),
                "insecure=true",
            ],
        )
        .execute(
            "copy",
            &[
                &format!("arg0={tool}"),
                &format!("arg1={layout_ref}"),
                "platform=linux/arm64",
                "insecure=true",
            ],
        )
        .execute("list", &[])
        .execute("cache", &["arg0=rm", &format!("arg1={tool}")])
        .execute("cache", &["arg0=verify"])
        .execute("cache", &["arg0=prune", "max-size=0"]);
    let report = launch.run();
    let results = json_results(&report);
    let [inspected, tags, copied, listed, removed, verified, pruned] = results.as_slice() else {
        panic!("{report:#}")
    };
    assert_eq!(inspected["digest"], fx.tool.digest.as_str());
    assert_eq!(inspected["platforms"].as_array().unwrap().len(), 3);
    assert_eq!(tags["tags"], json!(["1.0"]));
    assert_eq!(copied["subset"], true);
    assert_eq!(copied["platforms"], json!(["linux/arm64"]));
    assert_eq!(copied["destination"], format!("{layout_ref}:1.0"));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(removed["removed"], json!([fx.tool.id()]));
    assert_eq!(verified["corrupt"], json!([]));
    assert_eq!(pruned["removed"], json!([]));

    // The copy is a layout DS can pull from.
    let launch = Launch::new().cache_config().execute(
        "pull",
        &[
            &format!("arg0={layout_ref}:1.0"),
            "platform=linux/arm64",
            "o=out",
        ],
    );
    assert_ok(&launch.run());
    assert_eq!(
        std::fs::read(launch.dir().join("out/linux/arm64/tool")).unwrap(),
        StandardFixtures::tool_contents("linux/arm64")
    );

    // Errors come back as DS errors.
    let launch = Launch::new()
        .cache_config()
        .execute("cache", &["arg0=rm", "arg1=nothing-like-this"]);
    assert_error(
        &launch.run(),
        "cached artifact not found: nothing-like-this",
    );
    let launch = Launch::new()
        .cache_config()
        .execute("cache", &["arg0=shrink"]);
    assert_error(&launch.run(), "unknown cache action");
    let launch = Launch::new().cache_config().execute(
        "tags",
        &[
            &format!("arg0={}", reg.reference("demo/tool")),
            "insecure=true",
            "semver=>=x",
        ],
    );
    assert_error(&launch.run(), "invalid version constraint");

    // `pull semver=` resolves DS's version constraint to the highest matching tag.
    let repo = reg.reference("demo/versions");
    let launch = Launch::new()
        .cache_config()
        .execute(
            "copy",
            &[
                &format!("arg0={tool}"),
                &format!("arg1={repo}:1.2.3"),
                "insecure=true",
            ],
        )
        .execute(
            "copy",
            &[
                &format!("arg0={tool}"),
                &format!("arg1={repo}:v1.3.0-rc.1"),
                "insecure=true",
            ],
        )
        .execute(
            "pull",
            &[&format!("arg0={repo}"), "semver=^1", "insecure=true"],
        );
    let results = json_results(&launch.run());
    assert_eq!(results[2]["reference"], format!("{repo}:1.2.3"));
    let launch = Launch::new().cache_config().execute(
        "pull",
        &[&format!("arg0={repo}:1.2.3"), "semver=^1", "insecure=true"],
    );
    assert_error(&launch.run(), "a version constraint picks the tag");
}

#[test]
fn pull_errors_from_the_registry_come_back_as_ds_errors() {
    let (reg, _fx) = registry();
    let missing = reg.reference("demo/missing:1.0");
    let report = Launch::new()
        .cache_config()
        .execute("pull", &[&format!("arg0={missing}"), "insecure=true"])
        .run();
    assert_error(&report, "failed to copy artifact:");
}

// --- the host going away in the middle of an Execute -----------------------------------------

/// A registry on loopback holding one artifact, `demo/stall:1.0` (an OCI manifest, one 2 MiB
/// layer titled `tool`), whose layer download stalls half-way: headers and the first half of the
/// bytes, then nothing until the registry is dropped. One request per connection.
struct StallingRegistry {
    host: String,
    layer_digest: String,
    layer_requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Longest a stalling registry runs; a leaked one stops by itself.
const STALL_LIFETIME: Duration = Duration::from_secs(120);
const STALL_LAYER_BYTES: usize = 2 << 20;

/// The layer a stalling registry serves.
fn stalling_layer() -> Vec<u8> {
    (0..STALL_LAYER_BYTES)
        .map(|i| (i * 31 % 251) as u8)
        .collect()
}

impl StallingRegistry {
    fn start() -> Self {
        let layer = stalling_layer();
        let layer_digest = sha256_digest(&layer);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": {"mediaType": EMPTY_CONFIG_MEDIA_TYPE, "digest": EMPTY_CONFIG_DIGEST, "size": 2},
            "layers": [{
                "mediaType": BINARY_MEDIA_TYPE,
                "digest": layer_digest,
                "size": layer.len(),
                "annotations": {"org.opencontainers.image.title": "tool"}
            }]
        })
        .to_string()
        .into_bytes();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let layer_requests = Arc::new(AtomicUsize::new(0));
        let served = Arc::new(Served {
            manifest,
            layer,
            layer_digest: layer_digest.clone(),
            layer_requests: Arc::clone(&layer_requests),
            stop: Arc::clone(&stop),
        });
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while !served.stopped(started) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let served = Arc::clone(&served);
                        std::thread::spawn(move || served.answer(conn, started));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        StallingRegistry {
            host,
            layer_digest,
            layer_requests,
            stop,
            thread: Some(thread),
        }
    }

    fn reference(&self) -> String {
        format!("{}/demo/stall:1.0", self.host)
    }

    fn layer_requests(&self) -> usize {
        self.layer_requests.load(Ordering::SeqCst)
    }
}

impl Drop for StallingRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Served {
    manifest: Vec<u8>,
    layer: Vec<u8>,
    layer_digest: String,
    layer_requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Served {
    fn stopped(&self, started: Instant) -> bool {
        self.stop.load(Ordering::SeqCst) || started.elapsed() > STALL_LIFETIME
    }

    fn answer(&self, mut conn: TcpStream, started: Instant) {
        let _ = conn.set_nonblocking(false);
        let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
            match conn.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut words = head.split_whitespace();
        let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let path = path.split('?').next().unwrap_or("");
        let manifest_digest = sha256_digest(&self.manifest);
        let (status, content_type, body): (&str, &str, &[u8]) = if path == "/v2/" {
            ("200 OK", "application/json", b"{}")
        } else if path == "/v2/demo/stall/manifests/1.0"
            || path == format!("/v2/demo/stall/manifests/{manifest_digest}")
        {
            ("200 OK", OCI_MANIFEST_MEDIA_TYPE, &self.manifest)
        } else if path == format!("/v2/demo/stall/blobs/{EMPTY_CONFIG_DIGEST}") {
            ("200 OK", "application/octet-stream", b"{}")
        } else if path == format!("/v2/demo/stall/blobs/{}", self.layer_digest) {
            self.layer_requests.fetch_add(1, Ordering::SeqCst);
            ("200 OK", "application/octet-stream", &self.layer)
        } else {
            ("404 Not Found", "application/json", br#"{"errors":[]}"#)
        };
        let mut reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nDocker-Content-Digest: {}\r\nConnection: close\r\n\r\n",
            body.len(),
            sha256_digest(body)
        )
        .into_bytes();
        if method != "HEAD" {
            let stalls = std::ptr::eq(body, self.layer.as_slice());
            reply.extend_from_slice(if stalls {
                &body[..body.len() / 2]
            } else {
                body
            });
            if stalls {
                let _ = conn.write_all(&reply);
                let _ = conn.flush();
                while !self.stopped(started) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                return;
            }
        }
        let _ = conn.write_all(&reply);
    }
}

/// Watches a directory from another thread and remembers whether it ever held a non-empty file.
struct PartialWatcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<bool>,
}

impl PartialWatcher {
    fn start(dir: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while !flag.load(Ordering::SeqCst) && started.elapsed() < HOST_TIMEOUT {
                let seen = std::fs::read_dir(&dir).into_iter().flatten().any(|e| {
                    e.ok()
                        .and_then(|e| e.metadata().ok())
                        .is_some_and(|m| m.len() > 0)
                });
                if seen {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            false
        });
        PartialWatcher { stop, thread }
    }

    fn saw_partial_file(self) -> bool {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

/// Every path under `dir` (none when it does not exist).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.is_symlink() {
                todo.push(path.clone());
            }
            found.push(path);
        }
    }
    found
}

/// Nothing half-done is left: no export temp names in the cache or the export destinations,
/// nothing in `.ingest` but the bytes of an interrupted download of the stalling registry's layer
/// (kept for the next pull to resume; they must be the layer's first bytes), every blob hashes
/// to its name, and `cache verify` is clean.
fn assert_no_partial_files(launch: &Launch, destinations: &[&str]) {
    let mut roots = vec![launch.cache_root()];
    roots.extend(destinations.iter().map(|d| launch.dir().join(d)));
    for root in &roots {
        for path in walk(root) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.starts_with(".ds-porter-tmp"),
                "left behind: {}",
                path.display()
            );
        }
    }
    let layer = stalling_layer();
    let partial = format!("{}.partial", &sha256_digest(&layer)[7..]);
    for path in walk(&launch.porter_cache().join(".ingest")) {
        assert!(
            path.file_name().is_some_and(|n| n == partial.as_str()),
            "left in .ingest: {}",
            path.display()
        );
        let kept = std::fs::read(&path).unwrap();
        assert!(
            layer.starts_with(&kept),
            "the kept bytes are not the layer's"
        );
    }
    for blob in walk(&launch.porter_cache().join("blobs/sha256")) {
        let name = blob.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_digest(&std::fs::read(&blob).unwrap()),
            format!("sha256:{name}"),
            "a visible blob does not hash to its name"
        );
    }
    let verify = Command::new(ds_porter_bin())
        .args(["cache", "verify"])
        .current_dir(launch.dir())
        .env("HOME", launch.home())
        .env("DS_CACHE_DIR", launch.cache_root())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&verify.stdout);
    assert!(
        verify.status.success(),
        "cache verify: {stdout} {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (&report["corrupt"], &report["missing"]),
        (&json!([]), &json!([])),
        "{report}"
    );
}

/// Waits (bounded) until process `pid` is gone or a zombie; how long that took. A process that
/// is still there afterwards is killed, so no test leaves one behind.
fn wait_gone(pid: u32, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    loop {
        let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        };
        if gone {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("ds-porter") {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Pulls from a registry whose layer stalls half-way and has the host go away (`mode`, see
/// `-abort`) once the partial layer is on disk. Returns the launch and the host's report.
fn abort_mid_pull(mode: &str) -> (Launch, Value) {
    let stall = StallingRegistry::start();
    let launch = Launch::new()
        .flags(&[
            "-abort",
            mode,
            "-abort-on",
            "downloading blob",
            "-abort-on",
            &stall.layer_digest,
            "-abort-after",
            "300ms",
        ])
        .cache_config()
        .execute(
            "pull",
            &[
                &format!("arg0={}", stall.reference()),
                "insecure=true",
                "o=out",
            ],
        );
    let watcher = PartialWatcher::start(launch.porter_cache().join(".ingest"));
    let report = launch.run();
    let saw_partial = watcher.saw_partial_file();
    assert_eq!(report["abort"]["matched"], true, "{report:#}");
    assert_eq!(stall.layer_requests(), 1, "{report:#}");
    assert!(
        saw_partial,
        "the layer was half in the cache when the host went away"
    );
    (launch, report)
}

/// The plugin went away by itself: exit status 0 as go-plugin logged it, socket removed.
fn assert_exited_on_its_own(report: &Value) {
    let exit_ms = report["abort"]["exit_millis"].as_f64().unwrap();
    assert!(
        (0.0..5000.0).contains(&exit_ms),
        "plugin gone {exit_ms} ms after the host went away: {report:#}"
    );
    assert_eq!(report["exited"], true);
    assert_eq!(report["socket_removed"], true, "{report:#}");
    let exited: Vec<&str> = report["host_log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .filter(|l| l.contains("plugin process exited"))
        .collect();
    assert_eq!(exited.len(), 1, "{report:#}");
    assert!(
        !exited[0].contains("\"error\""),
        "non-zero exit: {}",
        exited[0]
    );
}

#[test]
fn a_host_that_drops_the_connection_mid_pull_leaves_no_plugin_and_no_partial_files() {
    let (launch, report) = abort_mid_pull("close");
    assert_exited_on_its_own(&report);
    assert!(
        execute(&report)["rpc_error"].is_string(),
        "the Execute cannot answer a closed connection: {report:#}"
    );
    assert_no_partial_files(&launch, &["out"]);

    // The next launch on the same cache works: a pull through the host, then list.
    let (reg, fx) = registry();
    let app = reg.reference("demo/app:1.0");
    let cache_cfg = json!({"Cache": {"Dir": launch.cache_root()}}).to_string();
    let next = Launch::new()
        .config(&cache_cfg)
        .execute("pull", &[&format!("arg0={app}"), "insecure=true"])
        .execute("list", &[]);
    let report = next.run();
    let runs = executes(&report);
    let pulled: Value = serde_json::from_str(runs[0]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(pulled["digest"], fx.app.digest, "{report:#}");
    let listed: Value = serde_json::from_str(runs[1]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_clean_exit(&report);
    assert_no_partial_files(&launch, &["out"]);
}

#[test]
fn a_host_process_that_dies_mid_pull_leaves_no_plugin_and_no_partial_files() {
    let (launch, report) = abort_mid_pull("exit");
    let pid = u32::try_from(report["pid"].as_u64().unwrap()).unwrap();
    let gone = wait_gone(pid, Duration::from_secs(5));
    assert!(
        gone.is_some(),
        "plugin {pid} still running 5 s after its host died"
    );
    let socket = report["address"].as_str().unwrap();
    assert!(!Path::new(socket).exists(), "socket {socket} left behind");
    assert_no_partial_files(&launch, &["out"]);

    let next = Launch::new()
        .config(&json!({"Cache": {"Dir": launch.cache_root()}}).to_string())
        .execute("list", &[]);
    assert_eq!(assert_ok(&next.run())["stdout"], "[]\n");
}

#[test]
fn a_host_that_kills_the_plugin_mid_pull_gets_a_prompt_exit_and_no_partial_files() {
    // What DS does when the Execute deadline passes: Client.Kill (Shutdown, 2 s, SIGKILL).
    let (launch, report) = abort_mid_pull("kill");
    assert_exited_on_its_own(&report);
    assert!(
        report["kill_millis"].as_f64().unwrap() < 1900.0,
        "the host had to SIGKILL the plugin: {report:#}"
    );
    assert_no_partial_files(&launch, &["out"]);
}

// --- several Executes in one launch ---------------------------------------------------------

#[test]
fn executes_in_one_launch_one_after_another_give_independent_results() {
    let (reg, fx) = registry();
    let tool = reg.reference("demo/tool:1.0");
    let launch = Launch::new()
        .cache_config()
        .execute("list", &[])
        .execute(
            "pull",
            &[
                &format!("arg0={tool}"),
                "insecure=true",
                "platform=linux/arm64",
                "o=arm",
            ],
        )
        .execute("pull", &[])
        .execute(
            "pull",
            &[
                &format!("arg0={tool}"),
                "insecure=true",
                "all-arch=true",
                "o=all",
            ],
        )
        .execute("version", &[])
        .execute("list", &[]);
    let report = launch.run();
    let runs = executes(&report);
    assert_eq!(runs.len(), 6, "{report:#}");
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(run["rpc_error"], Value::Null, "Execute {i}: {report:#}");
    }
    assert_eq!(
        (runs[0]["exit_code"].as_i64(), runs[0]["stdout"].as_str()),
        (Some(0), Some("[]\n"))
    );

    let arm: Value = serde_json::from_str(runs[1]["stdout"].as_str().unwrap()).unwrap();
    // Exported paths are reported as given (ds-contract §7.7), relative to the plugin's cwd.
    assert_eq!(arm["exported_files"], json!(["arm/linux/arm64/tool"]));
    assert_eq!(
        std::fs::read(launch.dir().join("arm/linux/arm64/tool")).unwrap(),
        StandardFixtures::tool_contents("linux/arm64")
    );

    // A failing Execute in between changes nothing for the next one.
    assert_eq!(
        (runs[2]["exit_code"].as_i64(), runs[2]["error"].as_str()),
        (Some(1), Some("artifact reference required"))
    );

    let all: Value = serde_json::from_str(runs[3]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(all["id"], fx.tool.id());
    assert_eq!(all["exported_files"].as_array().unwrap().len(), 3, "{all}");
    assert!(!launch.dir().join("arm/windows").exists());
    assert!(
        runs[4]["stdout"]
            .as_str()
            .unwrap()
            .starts_with("porter version ")
    );
    let listed: Value = serde_json::from_str(runs[5]["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], fx.tool.id());
    assert_clean_exit(&report);
    assert_no_partial_files(&launch, &["arm", "all"]);
}

#[test]
fn concurrent_executes_in_one_launch_keep_their_own_arguments_and_results() {
    let (reg, fx) = registry();
    let (app, tool) = (
        reg.reference("demo/app:1.0"),
        reg.reference("demo/tool:1.0"),
    );
    let launch = Launch::new()
        .flags(&["-concurrent"])
        .cache_config()
        .execute("pull", &[&format!("arg0={app}"), "insecure=true", "o=app"])
        .execute(
            "pull",
            &[
                &format!("arg0={tool}"),
                "insecure=true",
                "all-arch=true",
                "o=tool",
            ],
        )
        .execute("pull", &[&format!("arg0={tool}"), "insecure=true"])
        .execute("execute-plugin", &["arg0=nothing-here", "arg1=x"]);
    let report = launch.run();
    let runs = executes(&report);
    let results: Vec<Value> = runs[..3]
        .iter()
        .map(|r| {
            assert_eq!(r["exit_code"], 0, "{report:#}");
            serde_json::from_str(r["stdout"].as_str().unwrap()).unwrap()
        })
        .collect();
    assert_eq!(
        (&results[0]["reference"], &results[0]["digest"]),
        (&json!(app), &json!(fx.app.digest))
    );
    assert_eq!(results[0]["exported_files"], json!(["app/app"]));
    assert_eq!(
        (&results[1]["reference"], &results[1]["digest"]),
        (&json!(tool), &json!(fx.tool.digest))
    );
    assert_eq!(results[1]["exported_files"].as_array().unwrap().len(), 3);
    assert_eq!(results[2]["exported_files"], Value::Null);
    assert!(
        runs[3]["error"]
            .as_str()
            .unwrap()
            .starts_with("artifact not found:"),
        "{report:#}"
    );
    assert_clean_exit(&report);
    assert_no_partial_files(&launch, &["app", "tool"]);
}

// --- argument edge cases through the host (ds-contract §4.1) --------------------------------

#[test]
fn plugin_args_with_gaps_repeats_and_empty_keys_follow_ds_plugin_args() {
    // A gap in the positionals is an empty slot, and cleaned away (case 28).
    let launch = Launch::new()
        .cache_config()
        .execute("execute-plugin", &["arg0=test123", "arg2=test-plugin"]);
    seed_cache(&launch);
    let report = launch.run();
    assert_eq!(assert_ok(&report)["finalizers"][0]["name"], "test-plugin");

    // A repeated `arg<N>` fills its slot last-write-wins (execute-plugin reads slots) …
    let launch = Launch::new().cache_config().execute(
        "execute-plugin",
        &["arg0=missing", "arg0=test123", "arg1=test-plugin"],
    );
    seed_cache(&launch);
    let report = launch.run();
    assert!(
        assert_ok(&report)["finalizers"][0]["args"]
            .as_array()
            .unwrap()
            .contains(&json!("artifact-id=test123")),
        "{report:#}"
    );

    // … while keys read by name take their first value (pull's ref, o, insecure), repeated
    // platforms all count, and empty, blank and key-less arguments are skipped.
    let (reg, fx) = registry();
    let tool = reg.reference("demo/tool:1.0");
    let missing = reg.reference("demo/missing:1.0");
    let args: Vec<String> = [
        "",
        " ",
        "=ghost",
        "=",
        " = x",
        &format!("arg0={tool}"),
        &format!("arg0={missing}"),
        "arg2=stray",
        "insecure=true",
        "insecure=false",
        "o=first",
        "o=second",
        "platform=linux/arm64",
        "platform=windows/amd64",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let launch = Launch::new()
        .cache_config()
        .execute("pull", &[])
        .args_file(&args);
    let report = launch.run();
    let result: Value =
        serde_json::from_str(assert_ok(&report)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(
        (&result["reference"], &result["digest"]),
        (&json!(tool), &json!(fx.tool.digest))
    );
    assert_eq!(
        result["exported_files"],
        json!(["first/linux/arm64/tool", "first/windows/amd64/tool.exe"])
    );
    assert!(!launch.dir().join("second").exists());
}

/// A `key=value` of `len` bytes.
fn huge(key: &str, len: usize) -> String {
    format!("{key}={}", "a".repeat(len - key.len() - 1))
}

#[test]
fn huge_plugin_args_fail_with_an_error_naming_the_argument() {
    const MIB: usize = 1 << 20;
    for (op, args, key) in [
        (
            "pull",
            vec![huge("arg0", MIB), "insecure=true".into()],
            "arg0",
        ),
        (
            "pull",
            vec!["arg0=127.0.0.1:9/none:1".into(), huge("o", 5 * MIB)],
            "o",
        ),
        (
            "push",
            vec![
                "arg0=tool".into(),
                "arg1=127.0.0.1:9/none:1".into(),
                huge("platform", 200 << 10),
            ],
            "platform",
        ),
        ("help", vec![format!("{}=v", "k".repeat(MIB))], "kkkk"),
    ] {
        let launch = Launch::new()
            .cache_config()
            .execute(op, &[])
            .args_file(&args);
        let report = launch.run();
        let ex = execute(&report);
        let error = ex["error"].as_str().unwrap();
        assert_eq!(ex["exit_code"], 1, "{op} {key}: {error}");
        assert!(
            error.starts_with(&format!("argument {key}")) && error.contains("bytes long"),
            "{op} {key}: {error}"
        );
        assert!(error.len() < 1024, "{op} {key}: {} bytes", error.len());
        assert_clean_exit(&report);
    }

    // An operation name or a value below the limit that ends up in an error: the error stays
    // small enough for DS (4 MiB per message) and keeps its start and its end.
    let report = Launch::new()
        .cache_config()
        .execute(&"x".repeat(100_000), &[])
        .run();
    let error = execute(&report)["error"].as_str().unwrap();
    assert!(
        error.starts_with("unknown operation: xxx") && error.len() < 20_000,
        "{} bytes",
        error.len()
    );
    let report = Launch::new()
        .cache_config()
        .execute("pull", &[])
        .args_file(&[huge("arg0", 100_000)])
        .run();
    let error = execute(&report)["error"].as_str().unwrap();
    assert!(
        error.starts_with("invalid reference \"aaa")
            && error.ends_with("repository name must not be more than 255 characters")
            && error.len() < 20_000,
        "{} bytes: {}…",
        error.len(),
        &error[..200]
    );
}

#[test]
fn an_output_path_that_cannot_be_created_is_named_in_the_error() {
    // Under a regular file: fails for root too (the tests may run as root, where a read-only
    // directory would not stop the write).
    let (reg, _fx) = registry();
    let launch = Launch::new();
    let file = launch.dir().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = file.join("sub");
    let app = reg.reference("demo/app:1.0");
    let launch = launch.cache_config().execute(
        "pull",
        &[
            &format!("arg0={app}"),
            "insecure=true",
            &format!("o={}", out.display()),
        ],
    );
    let report = launch.run();
    assert_error(&report, "failed to export artifact:");
    let error = execute(&report)["error"].as_str().unwrap();
    assert!(error.contains(&out.display().to_string()), "{error}");
    assert_clean_exit(&report);
    assert_no_partial_files(&launch, &[]);
}

// --- credentials ------------------------------------------------------------------------------

/// A docker credential helper that never answers, on a PATH of its own.
#[cfg(unix)]
fn hanging_helper(dir: &Path) -> (PathBuf, String) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("helpers");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-hang");
    std::fs::write(&helper, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config = dir.join("docker.json");
    std::fs::write(&config, r#"{"credsStore":"hang"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (config, path)
}

#[cfg(unix)]
#[test]
fn a_hanging_credential_helper_fails_its_own_pull_and_stalls_nothing_else() {
    let (reg, _) = registry();
    let launch = Launch::new();
    let (docker, path) = hanging_helper(launch.dir.path());
    let config = json!({
        "Cache": {"Dir": launch.cache_root()},
        "Auth": {"DockerConfig": docker},
        "Settings": {"porter": {"request_timeout": "2s", "retries": 0}},
    });
    let launch = launch
        .env("PATH", &path)
        .flags(&["-concurrent"])
        .config(&config.to_string())
        .execute(
            "pull",
            &[
                &format!("arg0={}", reg.reference("demo/app:1.0")),
                "insecure=true",
            ],
        )
        .execute("list", &[]);
    let report = launch.run();
    let runs = executes(&report);
    let (pull, list) = (&runs[0], &runs[1]);
    let error = pull["error"].as_str().unwrap();
    assert!(error.contains("docker-credential-hang"), "{report:#}");
    assert!(error.contains("did not answer within 2s"), "{report:#}");
    assert_eq!(list["exit_code"], 0, "{report:#}");
    assert_eq!(list["stdout"].as_str().unwrap().trim(), "[]", "{report:#}");
    // The list was answered while the helper still hung: the runtime was never blocked.
    assert!(
        list["millis"].as_f64().unwrap() < pull["millis"].as_f64().unwrap(),
        "{report:#}"
    );
    assert_clean_exit(&report);
}

#[test]
fn a_damaged_cached_blob_is_refused_offline_and_fetched_again_online_through_the_host() {
    let (reg, fx) = registry();
    let app = reg.reference("demo/app:1.0");
    let layer = &fx.app.layers[0].digest;
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("cache");
    let first = Launch::new();
    let config = json!({"Cache": {"Dir": cache}}).to_string();
    let report = first
        .config(&config)
        .execute("pull", &[&format!("arg0={app}"), "insecure=true"])
        .run();
    assert_eq!(execute(&report)["exit_code"], 0, "{report:#}");
    let blob = cache
        .join("porter/blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let original = std::fs::read(&blob).unwrap();
    let mut bytes = original.clone();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&blob, &bytes).unwrap();

    // Offline: refused, naming the blob, with the repair hint in DS's terms; nothing exported.
    let offline = Launch::new();
    let out = home.path().join("offline-out");
    let report = offline
        .env("DS_OFFLINE", "1")
        .config(&config)
        .execute(
            "pull",
            &[&format!("arg0={app}"), &format!("o={}", out.display())],
        )
        .run();
    let error = execute(&report)["error"].as_str().unwrap().to_owned();
    assert!(
        error.contains(&format!("cached blob {layer}")) && error.contains("is damaged"),
        "{report:#}"
    );
    assert!(error.contains("cache verify --repair"), "{report:#}");
    assert!(!out.join("app").exists());

    // Online: fetched again and exported.
    std::fs::write(&blob, &bytes).unwrap();
    let online = Launch::new();
    let out = home.path().join("online-out");
    let report = online
        .config(&config)
        .execute(
            "pull",
            &[
                &format!("arg0={app}"),
                "insecure=true",
                &format!("o={}", out.display()),
            ],
        )
        .run();
    assert_eq!(execute(&report)["exit_code"], 0, "{report:#}");
    assert_eq!(std::fs::read(out.join("app")).unwrap(), original);
}
