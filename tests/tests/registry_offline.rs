//! Offline use of the shared cache: `--offline` and `DS_OFFLINE=1` never touch the network, a
//! cached tag is served (with a warning and `"offline": true`) when the registry cannot be
//! reached, and what is not cached fails clearly.
#![allow(clippy::unwrap_used)]

use porter_e2e::cli::User;
use porter_e2e::{LayerSpec, Published, Registry, block_on, publish_index, publish_single};

fn setup() -> (Registry, Published) {
    let reg = Registry::start();
    let published = block_on(publish_single(
        &reg,
        "demo/app:1.0",
        &[LayerSpec::binary("app", b"offline please".to_vec())],
        &[],
    ));
    (reg, published)
}

#[test]
fn offline_pulls_never_touch_the_network() {
    let (reg, published) = setup();
    let user = User::new();
    let reference = reg.reference("demo/app:1.0");
    let online = user.run(&["pull", &reference, "--insecure"]).ok();
    assert!(
        online.get("offline").is_none(),
        "omitted when false: {online}"
    );

    let mark = reg.mark();
    let by_flag = user
        .run(&["pull", &reference, "--insecure", "--offline", "-o", "out"])
        .ok();
    assert_eq!(by_flag["offline"], true);
    assert_eq!(by_flag["digest"], published.digest.as_str());
    assert_eq!(
        std::fs::read(user.path().join("out/app")).unwrap(),
        b"offline please"
    );
    let by_env = user
        .run_with(&["pull", &reference], &[("DS_OFFLINE", "1")])
        .ok();
    assert_eq!(by_env["offline"], true);
    let digest_ref = reg.reference(&format!("demo/app@{}", published.digest));
    user.run_with(&["pull", &digest_ref], &[("DS_OFFLINE", "1")])
        .ok();
    assert_eq!(
        reg.requests_since(&mark),
        [],
        "no request reached the registry"
    );
}

#[test]
fn offline_fails_clearly_for_what_is_not_cached() {
    let (reg, _) = setup();
    let user = User::new();
    let mark = reg.mark();
    let err = user
        .run(&["pull", &reg.reference("demo/app:1.0"), "--offline"])
        .fails();
    assert!(
        err.contains("is not available offline: the tag is not in the cache"),
        "{err}"
    );
    assert!(reg.requests_since(&mark).is_empty());

    // A cached index whose requested platform was never pulled.
    let index = block_on(publish_index(
        &reg,
        "demo/multi:1.0",
        &[
            ("linux/amd64", vec![LayerSpec::binary("m", b"amd".to_vec())]),
            ("linux/arm64", vec![LayerSpec::binary("m", b"arm".to_vec())]),
        ],
        &[],
    ));
    let multi = reg.reference("demo/multi:1.0");
    user.run(&["pull", &multi, "--insecure", "--platform", "linux/amd64"])
        .ok();
    let mark_after = reg.mark();
    let err = user
        .run(&["pull", &multi, "--offline", "--platform", "linux/arm64"])
        .fails();
    let arm = &index.platform("linux/arm64").manifest.digest;
    assert!(
        err.contains("not available offline") && err.contains(arm.as_str()),
        "{err}"
    );
    assert!(reg.requests_since(&mark_after).is_empty());
}

#[test]
fn an_unreachable_registry_serves_the_cached_tag_with_a_warning() {
    let (reg, published) = setup();
    let user = User::new();
    let reference = reg.reference("demo/app:1.0");
    user.run(&["pull", &reference, "--insecure"]).ok();
    drop(reg);

    let run = user.run_with(
        &["pull", &reference, "--insecure"],
        &[("DS_SETTINGS_PORTER_RETRIES", "1")],
    );
    let result = run.ok();
    assert_eq!(result["offline"], true);
    assert_eq!(result["digest"], published.digest.as_str());
    assert!(
        run.stderr().contains("cannot be reached") && run.stderr().contains("cached copy"),
        "{}",
        run.stderr()
    );

    // A tag that was never cached still fails with the network error.
    let err = user
        .run_with(
            &["pull", &reference.replace(":1.0", ":2.0"), "--insecure"],
            &[("DS_SETTINGS_PORTER_RETRIES", "0")],
        )
        .fails();
    assert!(err.contains("failed to copy artifact"), "{err}");
}
