//! One classification of failures for every operation: push, pull and tag listing fail at once
//! on what retrying cannot fix (401, 400, an unknown CA, HTTPS spoken to a plain-HTTP port, a
//! host that does not resolve), with the hint that fits the cause; they retry what can pass,
//! honouring `Retry-After` and the configured attempt timeout.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use porter_e2e::cli::User;
use porter_e2e::{Fault, FaultProxy, LayerSpec, Registry, TestCa, block_on, publish_single};

/// A file to push.
fn binary(user: &User) -> PathBuf {
    let path = user.path().join("tool");
    std::fs::write(&path, b"#!/bin/sh\necho tool\n").unwrap();
    path
}

/// Failed at once: no retry warning.
fn assert_not_retried(err: &str) {
    assert!(!err.contains("retrying"), "retried: {err}");
}

#[test]
fn push_and_pull_fail_at_once_on_401_with_the_credentials_hint() {
    let reg = Registry::start_with_htpasswd("alice", "s3cret");
    block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"private".to_vec())],
        &[],
    ));
    let user = User::new();
    let file = binary(&user);
    let reference = reg.reference("demo/app:1.0");
    let pushed = reg.reference("demo/pushed:1.0");
    for args in [
        vec!["push", file.to_str().unwrap(), &pushed, "--insecure"],
        vec!["pull", &reference, "--insecure"],
    ] {
        let err = user.run(&args).fails();
        assert!(err.contains("HTTP 401"), "{args:?}: {err}");
        assert!(
            err.contains(&format!("hint: check the credentials for {}", reg.host())),
            "{args:?}: {err}"
        );
        assert!(!err.contains("nothing was cached"), "{args:?}: {err}");
        assert_not_retried(&err);
    }
}

#[test]
fn an_unknown_ca_gets_the_ca_hint_on_push_and_pull_and_is_not_retried() {
    let reg = Registry::start_tls(TestCa::new());
    block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"over tls".to_vec())],
        &[],
    ));
    let user = User::new();
    let file = binary(&user);
    let reference = reg.reference("demo/app:1.0");
    let pushed = reg.reference("demo/pushed:1.0");
    for args in [
        vec!["push", file.to_str().unwrap(), &pushed],
        vec!["pull", &reference],
    ] {
        let err = user.run(&args).fails();
        assert!(err.contains("not trusted"), "{args:?}: {err}");
        assert!(err.contains("settings.porter.ca_file"), "{args:?}: {err}");
        assert!(
            err.contains(&format!("certs.d/{}/ca.crt", reg.host())),
            "{args:?}: {err}"
        );
        assert!(!err.contains("--insecure"), "{args:?}: {err}");
        assert_not_retried(&err);
    }
}

#[test]
fn https_spoken_to_a_plain_http_registry_suggests_insecure_and_is_not_retried() {
    let reg = Registry::start();
    let user = User::new();
    let file = binary(&user);
    let pushed = reg.reference("demo/pushed:1.0");
    for args in [
        vec!["push", file.to_str().unwrap(), &pushed],
        vec!["pull", &pushed],
    ] {
        let err = user.run(&args).fails();
        assert!(
            err.contains("answered the TLS handshake in plain HTTP"),
            "{args:?}: {err}"
        );
        assert!(err.contains("pass --insecure"), "{args:?}: {err}");
        assert_not_retried(&err);
    }
}

#[test]
fn a_400_on_push_is_not_retried() {
    let reg = Registry::start();
    let proxy = FaultProxy::start(&reg.host());
    proxy.inject(
        "/blobs/uploads/",
        1,
        Fault::Status {
            code: 400,
            retry_after: None,
        },
    );
    let user = User::new();
    let file = binary(&user);
    let err = user
        .run(&[
            "push",
            file.to_str().unwrap(),
            &proxy.reference("demo/app:1.0"),
            "--insecure",
        ])
        .fails();
    assert!(err.contains("HTTP 400"), "{err}");
    assert_not_retried(&err);
    assert_eq!(proxy.requests_to("/blobs/uploads/").len(), 1);
}

#[test]
fn push_honours_retry_after_in_one_warning_line() {
    let reg = Registry::start();
    let proxy = FaultProxy::start(&reg.host());
    proxy.inject(
        "/blobs/uploads/",
        1,
        Fault::Status {
            code: 503,
            retry_after: Some("2".into()),
        },
    );
    let user = User::new();
    let file = binary(&user);
    let run = user.run(&[
        "push",
        file.to_str().unwrap(),
        &proxy.reference("demo/app:1.0"),
        "--insecure",
    ]);
    let stderr = run.stderr();
    run.ok();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("retrying")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    let line = warnings[0];
    assert!(line.contains("attempt 1/5"), "{line}");
    assert!(
        line.contains(&format!(
            "POST http://{}/v2/demo/app/blobs/uploads/",
            proxy.host()
        )),
        "{line}"
    );
    assert!(line.contains("HTTP 503"), "{line}");
    assert!(
        line.contains("retrying in 2."),
        "waits what Retry-After asks: {line}"
    );
}

/// Accepts connections and never answers, for up to a minute.
fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut held = Vec::new();
        listener.set_nonblocking(true).unwrap();
        while Instant::now() < deadline && held.len() < 64 {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    host
}

#[test]
fn push_honours_the_configured_attempt_timeout() {
    let host = silent_server();
    let user = User::new();
    let file = binary(&user);
    let env = [
        ("DS_SETTINGS_PORTER_REQUEST_TIMEOUT", "1s"),
        ("DS_SETTINGS_PORTER_RETRIES", "0"),
    ];
    let reference = format!("{host}/demo/app:1.0");
    let run = user.run_with(
        &["push", file.to_str().unwrap(), &reference, "--insecure"],
        &env,
    );
    let err = run.fails();
    assert!(err.contains("no response within 1s"), "{err}");
}

#[test]
fn a_host_that_does_not_resolve_is_not_retried() {
    // A label longer than DNS allows fails in the resolver itself, without a query leaving
    // the machine.
    let host = format!("{}.test:5000", "a".repeat(70));
    let user = User::new();
    let file = binary(&user);
    let reference = format!("{host}/demo/app:1.0");
    for args in [
        vec!["push", file.to_str().unwrap(), &reference, "--insecure"],
        vec!["pull", &reference, "--insecure"],
    ] {
        let err = user.run(&args).fails();
        assert!(err.contains("does not resolve"), "{args:?}: {err}");
        assert!(!err.contains("hint:"), "{args:?}: {err}");
        assert_not_retried(&err);
    }
}
