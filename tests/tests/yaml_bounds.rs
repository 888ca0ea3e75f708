//! YAML the project reads is bounded before it is parsed: `name: ` followed by 200,000 `[` and
//! as many `]` (400 KB; the parser took 75 s on it) given as `push --manifest` and as `--config`
//! is refused by the nesting check, naming the limit, line and column; a document over 4 MiB is
//! refused by size.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use porter_e2e::cli::User;

/// A hang guard, not a measurement: the refusal comes from the depth check either way.
const LIMIT: Duration = Duration::from_secs(60);
const DEPTH_REFUSAL: &str =
    "flow collections ([…], {…}) nested deeper than 64 levels at line 1 column 71";

fn bracket_bomb() -> String {
    format!("name: {}{}", "[".repeat(200_000), "]".repeat(200_000))
}

#[test]
fn a_deeply_nested_release_manifest_is_refused_by_the_depth_check() {
    let user = User::new();
    std::fs::write(user.path().join("ds.manifest.yaml"), bracket_bomb()).unwrap();
    let run = user.run_within(
        LIMIT,
        &[
            "push",
            "--manifest",
            "ds.manifest.yaml",
            "127.0.0.1:9/demo/x:1",
        ],
        &[],
    );
    let err = run.fails();
    assert!(
        err.contains("failed to parse manifest ds.manifest.yaml") && err.contains(DEPTH_REFUSAL),
        "{err}"
    );
}

#[test]
fn a_deeply_nested_config_file_is_refused_by_the_depth_check() {
    let user = User::new();
    std::fs::write(user.path().join("ds.yaml"), bracket_bomb()).unwrap();
    let err = user
        .run_within(LIMIT, &["--config", "ds.yaml", "list"], &[])
        .fails();
    assert!(
        err.contains("ds.yaml") && err.contains(DEPTH_REFUSAL),
        "{err}"
    );

    std::fs::write(
        user.path().join("ds.yaml"),
        format!("# {}\n", "x".repeat(5 << 20)),
    )
    .unwrap();
    let err = user
        .run_within(LIMIT, &["--config", "ds.yaml", "list"], &[])
        .fails();
    assert!(err.contains("4 MiB limit"), "{err}");
}
