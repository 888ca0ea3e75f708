//! `-o` does what `ds-porter pull --help` and the README say, against the real registry: a path
//! ending in `/` or an existing directory is a directory; an existing file or a new name with an
//! extension is a file (the one layer of the one platform); any other new name is a directory;
//! several platforms into a file and `-o -` are refused with exit 2 before any request.
#![allow(clippy::unwrap_used)]

use std::fs;

use porter_e2e::cli::User;
use porter_e2e::{Registry, StandardFixtures, block_on, publish_standard};
use serde_json::Value;

fn setup() -> Registry {
    let reg = Registry::start();
    block_on(publish_standard(&reg));
    reg
}

fn exported(result: &Value) -> Vec<&str> {
    result["exported_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect()
}

#[test]
fn one_platform_into_a_name_with_an_extension_writes_that_file() {
    let reg = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--platform",
            "linux/arm64",
            "-o",
            "out/tool.bin",
        ])
        .ok();
    assert_eq!(exported(&result), ["out/tool.bin"]);
    let path = user.path().join("out/tool.bin");
    assert!(path.is_file(), "a file, not a directory");
    assert_eq!(
        fs::read(path).unwrap(),
        StandardFixtures::tool_contents("linux/arm64")
    );
}

#[test]
fn an_existing_file_without_extension_receives_the_platform_layer() {
    let reg = setup();
    let user = User::new();
    fs::create_dir(user.path().join("bin")).unwrap();
    fs::write(user.path().join("bin/mytool"), "old").unwrap();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--platform",
            "linux/amd64",
            "-o",
            "bin/mytool",
        ])
        .ok();
    assert_eq!(exported(&result), ["bin/mytool"]);
    assert_eq!(
        fs::read(user.path().join("bin/mytool")).unwrap(),
        StandardFixtures::tool_contents("linux/amd64")
    );
}

#[test]
fn a_trailing_slash_always_means_a_directory() {
    let reg = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/untitled:1.0"),
            "--insecure",
            "-o",
            "tools.d/",
        ])
        .ok();
    assert_eq!(exported(&result), ["tools.d/untitled"]);
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/tool:1.0"),
            "--insecure",
            "--platform",
            "linux/arm64",
            "-o",
            "arm.bin/",
        ])
        .ok();
    assert_eq!(exported(&result), ["arm.bin/linux/arm64/tool"]);
}

#[test]
fn a_new_name_without_extension_is_a_directory() {
    // ds-contract case 59: DS and the Go plugin export into `outdir/<name>`.
    let reg = setup();
    let user = User::new();
    let result = user
        .run(&[
            "pull",
            &reg.reference("demo/untitled:1.0"),
            "--insecure",
            "-o",
            "bin/mytool",
        ])
        .ok();
    assert_eq!(exported(&result), ["bin/mytool/untitled"]);
}

#[test]
fn several_platforms_into_a_file_are_refused_before_any_request() {
    let reg = setup();
    let reference = reg.reference("demo/tool:1.0");
    let user = User::new();
    fs::write(user.path().join("existing"), "keep").unwrap();
    for args in [
        &["--all-arch", "-o", "x.bin"][..],
        &["--platform", "linux/amd64,linux/arm64", "-o", "x.bin"],
        &[
            "--platform",
            "linux/amd64",
            "--platform",
            "linux/arm64",
            "-o",
            "x.bin",
        ],
        &["--all-arch", "-o", "existing"],
    ] {
        let mark = reg.mark();
        let mut argv = vec!["pull", reference.as_str(), "--insecure"];
        argv.extend_from_slice(args);
        let err = user.run(&argv).usage_error();
        assert!(
            err.contains("destination must be a directory when exporting multiple platforms"),
            "{args:?}: {err}"
        );
        assert!(reg.requests_since(&mark).is_empty(), "{args:?}");
        assert!(!user.path().join("x.bin").exists(), "{args:?}");
    }
    assert_eq!(
        fs::read_to_string(user.path().join("existing")).unwrap(),
        "keep"
    );
    assert!(!user.cache().exists(), "nothing was pulled");
}

#[test]
fn standard_output_is_refused_before_any_request() {
    let reg = setup();
    let user = User::new();
    let mark = reg.mark();
    let err = user
        .run(&[
            "pull",
            &reg.reference("demo/untitled:1.0"),
            "--insecure",
            "-o",
            "-",
        ])
        .usage_error();
    assert!(err.contains("standard output"), "{err}");
    assert!(reg.requests_since(&mark).is_empty());
    assert!(!user.path().join("-").exists(), "no directory named -");
}

#[test]
fn the_help_states_the_rule_the_tests_above_check() {
    let user = User::new();
    let run = user.run(&["pull", "--help"]);
    assert_eq!(run.code(), 0);
    let help = run.stdout();
    for part in [
        "PATH ending in / or an existing directory: a directory.",
        "An existing file, or a new name with an extension (bin/tool.bin): a file",
        "Any other new name (out, bin/mytool): a directory, created.",
        "Several platforms into a file, and -o - (stdout), are refused before anything is fetched.",
    ] {
        assert!(help.contains(part), "{part}\n{help}");
    }
}
