//! The plugin never falls back to TCP on unix: when its unix socket cannot be created (a
//! `PLUGIN_UNIX_SOCKET_DIR` that makes the path too long, or a directory it cannot write to), it
//! exits non-zero with an hclog error line the host shows, instead of listening on
//! `127.0.0.1:<port>` where any local user could call `Execute`. Checked through the go-plugin
//! v1.7.0 host and by running the plugin directly; the unwritable directory is tested as a
//! second user (`nobody`, through `setpriv`) when the suite runs as root.
#![cfg(unix)]
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use porter_e2e::cli::User;
use porter_e2e::ds_porter_bin;
use porter_e2e::go_host::Launch;
use serde_json::Value;

const REFUSED: &str = "cannot create the plugin's unix socket; not listening on TCP instead";

/// The host could not start the plugin, and the plugin said why in an hclog error line.
fn assert_refused(report: &Value, reason: &str) {
    let errors = report["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap().starts_with("start:")),
        "the host must fail to start the plugin: {report:#}"
    );
    assert_eq!(
        report["network"],
        Value::Null,
        "nothing listened: {report:#}"
    );
    let refused = report["plugin_stderr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|line| serde_json::from_str::<Value>(line.as_str().unwrap()).unwrap())
        .find(|record| record["@message"].as_str().unwrap().starts_with(REFUSED))
        .unwrap_or_else(|| panic!("no refusal in the plugin's stderr: {report:#}"));
    assert_eq!(refused["@level"], "error");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains(reason), "{error}");
}

#[test]
fn an_over_long_socket_dir_makes_the_plugin_fail_instead_of_listening_on_tcp() {
    let launch = Launch::new();
    let long = launch.dir.path().join("s".repeat(110));
    std::fs::create_dir(&long).unwrap();
    let env = format!("PLUGIN_UNIX_SOCKET_DIR={}", long.display());
    let report = launch.flags(&["-env", &env]).report();
    assert_refused(&report, "is longer than 103 bytes");

    // Run directly, the plugin exits 1 without a handshake line.
    let user = User::new();
    let run = user.run_within(
        Duration::from_secs(30),
        &[],
        &[
            ("DS_PLUGIN_MAGIC_COOKIE", "delivery-station-plugin"),
            ("PLUGIN_UNIX_SOCKET_DIR", &long.display().to_string()),
        ],
    );
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert_eq!(run.stdout(), "", "no handshake line");
    assert!(run.stderr().contains(REFUSED), "{}", run.stderr());
}

#[test]
fn an_unwritable_socket_dir_makes_the_plugin_fail_instead_of_listening_on_tcp() {
    let mut launch = Launch::new();
    let root = launch.dir.path().to_path_buf();
    let sockets = root.join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    let as_root = std::fs::metadata(&sockets).unwrap().uid() == 0;
    if as_root {
        // Root writes anywhere: run the plugin as `nobody`, who can reach the directory but
        // not write to it.
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
        let wrapper = root.join("as-nobody");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec setpriv --reuid=nobody --regid=nogroup --clear-groups {}\n",
                ds_porter_bin().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        launch = launch.plugin(&wrapper);
    } else {
        std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o555)).unwrap();
    }
    assert_unwritable_by_the_plugin(&sockets, as_root);
    let env = format!("PLUGIN_UNIX_SOCKET_DIR={}", sockets.display());
    let launch = launch.flags(&["-env", &env]);
    assert_refused(&launch.report(), "Permission denied");
    assert_eq!(std::fs::read_dir(&sockets).unwrap().count(), 0);
}

/// The test is only meaningful when the plugin's user cannot write to `dir`.
fn assert_unwritable_by_the_plugin(dir: &Path, as_root: bool) {
    let mode = std::fs::metadata(dir).unwrap().mode();
    if as_root {
        assert_eq!(mode & 0o002, 0, "others may not write to {}", dir.display());
    } else {
        assert_eq!(mode & 0o222, 0, "{} is writable", dir.display());
    }
}
