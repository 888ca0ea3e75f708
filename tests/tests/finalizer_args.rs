//! Finalizer arguments never come from an artifact where ds-porter or DS fill them: through the
//! go-plugin host, an artifact whose annotations try to override `artifact=`, `digest=` and
//! `reference=` (`ds.plugin.param.artifact=/home/victim/.ssh`), smuggle a name with a space or
//! an `=`, or a value with a newline or an escape sequence is pulled, handed on with
//! `execute-plugin`, and its finalizer carries only ds-porter's own arguments and the well-formed
//! parameters. The dropped ones are named (escaped) in warnings. `ds.finalizer.args` follows the
//! same rules.
#![allow(clippy::unwrap_used)]

use porter_e2e::go_host::{Launch, executes};
use porter_e2e::{LayerSpec, Registry, block_on, publish_index};
use serde_json::{Value, json};

#[test]
fn hostile_plugin_parameters_never_reach_the_finalizer() {
    let reg = Registry::start();
    let index = block_on(publish_index(
        &reg,
        "demo/hostile:1.0",
        &[(
            "linux/amd64",
            vec![LayerSpec::binary("tool", b"tool".to_vec())],
        )],
        &[
            ("ds.plugin.name", "hostile"),
            ("ds.plugin.param.artifact", "/home/victim/.ssh"),
            ("ds.plugin.param.digest", "sha256:0000"),
            ("ds.plugin.param.reference", "evil.example/x:1"),
            ("ds.plugin.param.arg0", "/etc/shadow"),
            ("ds.plugin.param.x=y z", "v"),
            ("ds.plugin.param.note", "line one\nartifact=/root"),
            ("ds.plugin.param.\u{1b}]0;owned\u{7}", "t"),
            ("ds.plugin.param.region", "eu-west-1"),
            ("ds.finalizer", "uploader"),
            (
                "ds.finalizer.args",
                r#"["bad key=1","artifact=/home/victim","a\nb","ok"]"#,
            ),
        ],
    ));
    let reference = reg.reference("demo/hostile:1.0");
    let launch = Launch::new()
        .cache_config()
        .execute("pull", &[&format!("arg0={reference}"), "insecure=true"])
        .execute(
            "execute-plugin",
            &[&format!("arg0={}", index.id()), "arg1=other"],
        );
    let report = launch.run();
    let [pull, handed] = executes(&report) else {
        panic!("two Executes: {report:#}")
    };
    for ex in [pull, handed] {
        assert_eq!(
            (ex["exit_code"].as_i64(), ex["error"].as_str()),
            (Some(0), Some(""))
        );
    }

    assert_eq!(
        pull["finalizers"],
        json!([{"name": "uploader", "operation": "upload", "args": ["ok"]}]),
        "`bad key` is a malformed name, `artifact=` is reserved, `a\\nb` has a newline"
    );
    let entry = launch.porter_cache().join(index.id());
    assert_eq!(
        handed["finalizers"],
        json!([{
            "name": "other",
            "operation": "run",
            "args": [
                format!("artifact={}", entry.display()),
                format!("artifact-id={}", index.id()),
                format!("reference={reference}"),
                format!("digest={}", index.digest),
                "region=eu-west-1",
            ]
        }])
    );

    let warnings: Vec<String> = report["plugin_stderr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line.as_str().unwrap()).unwrap())
        .filter(|record| record["@level"] == "warn")
        .map(|record| record["@message"].as_str().unwrap().to_owned())
        .collect();
    for name in [
        "artifact",
        "digest",
        "reference",
        "arg0",
        "x=y z",
        "note",
        "\\u{1b}]0;owned\\u{7}",
    ] {
        let named = format!("ds.plugin.param.{name} from the finalizer's arguments");
        assert!(
            warnings.iter().any(|w| w.contains(&named)),
            "no warning names {name:?}: {warnings:#?}"
        );
    }
    assert!(
        warnings.iter().all(|w| !w.contains('\u{1b}')),
        "warnings are escaped: {warnings:#?}"
    );
}
