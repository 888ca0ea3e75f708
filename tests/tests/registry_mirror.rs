//! `Registry.Mirrors` against a real pull-through cache (a second `docker-registry` in proxy
//! mode in front of the first), fallback to the upstream with a warning naming the mirror and
//! why, mirror content verified like any other, and short references resolved against
//! `Registry.Default`.
#![allow(clippy::unwrap_used)]

use porter_e2e::cli::User;
use porter_e2e::{
    FakeRegistry, Fault, FaultProxy, LayerSpec, Published, Registry, Reply, block_on,
    publish_single,
};

fn publish(reg: &Registry) -> Published {
    block_on(publish_single(
        reg,
        "demo/app:1.0",
        &[LayerSpec::pseudo_random("app", 11, 64 * 1024)],
        &[],
    ))
}

fn mirrors(list: &[String]) -> String {
    serde_json::to_string(list).unwrap()
}

#[test]
fn a_pull_through_cache_serves_pulls_and_keeps_serving_when_the_upstream_is_gone() {
    let upstream = Registry::start();
    let published = publish(&upstream);
    let mirror = Registry::start_pull_through(&upstream);
    let env = mirrors(&[format!("http://{}", mirror.host())]);
    let reference = upstream.reference("demo/app:1.0");

    let user = User::new();
    let first = user.run_with(
        &["pull", &reference, "--insecure"],
        &[("DS_REGISTRY_MIRRORS", &env)],
    );
    let result = first.ok();
    assert_eq!(result["digest"], published.digest.as_str());
    assert_eq!(
        result["reference"],
        reference.as_str(),
        "the reference as given"
    );
    let layer = &published.layers[0].digest;
    // A pull-through registry logs a blob GET only once it has also stored the blob, which can be
    // after the client has it all and after a later request was logged: poll, bounded.
    let through_mirror = (0..50).any(|_| {
        let seen = mirror.blob_gets().iter().any(|g| &g.digest == layer);
        if !seen {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        seen
    });
    assert!(through_mirror, "the layer came through the mirror");

    drop(upstream);
    let other = User::new();
    let again = other
        .run_with(
            &["pull", &reference, "--insecure"],
            &[
                ("DS_REGISTRY_MIRRORS", &env),
                ("DS_SETTINGS_PORTER_RETRIES", "0"),
            ],
        )
        .ok();
    assert_eq!(again["digest"], published.digest.as_str());
    assert!(
        again.get("offline").is_none(),
        "served by the mirror, not the cache"
    );
}

#[test]
fn a_failing_mirror_is_skipped_with_a_warning_naming_it_and_why() {
    let upstream = Registry::start();
    let published = publish(&upstream);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let env = mirrors(&[format!("http://{dead}")]);
    let user = User::new();
    let run = user.run_with(
        &["pull", &upstream.reference("demo/app:1.0"), "--insecure"],
        &[("DS_REGISTRY_MIRRORS", &env)],
    );
    assert_eq!(run.ok()["digest"], published.digest.as_str());
    let stderr = run.stderr();
    assert!(
        stderr.contains(&format!("mirror {dead} skipped")) && stderr.contains("onnect"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("trying registry {}", upstream.host())),
        "{stderr}"
    );
}

#[test]
fn content_from_a_mirror_is_verified_and_a_lying_mirror_is_skipped() {
    let upstream = Registry::start();
    let published = publish(&upstream);
    // A "mirror" that serves the upstream's content with one byte of the layer flipped.
    let liar = FaultProxy::start(&upstream.host());
    let layer = &published.layers[0].digest;
    liar.inject(&format!("/blobs/{layer}"), 10, Fault::CorruptByte(10));
    let env = mirrors(&[format!("http://{}", liar.host())]);
    let user = User::new();
    let mark = upstream.mark();
    let run = user.run_with(
        &["pull", &upstream.reference("demo/app:1.0"), "--insecure"],
        &[("DS_REGISTRY_MIRRORS", &env)],
    );
    run.ok();
    assert!(
        run.stderr()
            .contains(&format!("mirror {} skipped", liar.host()))
            && run.stderr().contains("digest mismatch"),
        "{}",
        run.stderr()
    );
    // The manifest came from the mirror; the layer from the upstream after the mirror lied.
    assert_eq!(liar.requests_to("/manifests/").len(), 1);
    let direct = upstream.blob_gets_since(&mark);
    assert!(direct.iter().any(|g| &g.digest == layer), "{direct:?}");
}

#[test]
fn short_references_resolve_against_the_default_registry() {
    let reg = Registry::start();
    let published = publish(&reg);
    let user = User::new();
    let default = format!("{}/demo", reg.host());
    let insecure = [("DS_REGISTRY_INSECURE_REGISTRIES", reg.host())];
    let one = user
        .run_with(
            &["pull", "app:1.0"],
            &[
                ("DS_REGISTRY_DEFAULT", default.as_str()),
                (insecure[0].0, &insecure[0].1),
            ],
        )
        .ok();
    assert_eq!(one["digest"], published.digest.as_str());
    assert_eq!(one["reference"], "app:1.0", "reported as typed");
    let two = user
        .run_with(
            &["pull", "demo/app:1.0"],
            &[
                ("DS_REGISTRY_DEFAULT", reg.host().as_str()),
                (insecure[0].0, &insecure[0].1),
            ],
        )
        .ok();
    // --insecure allows plain HTTP only to a registry the user typed, never to the default.
    let mark = reg.mark();
    let err = user
        .run_with(
            &["pull", "app:1.0", "--insecure"],
            &[("DS_REGISTRY_DEFAULT", &default)],
        )
        .fails();
    assert!(err.contains("names no registry"), "{err}");
    assert!(reg.requests_since(&mark).is_empty(), "{err}");
    assert_eq!(two["digest"], published.digest.as_str());
}

#[test]
fn a_mirror_answering_a_tag_with_something_that_is_not_a_manifest_is_skipped() {
    let upstream = Registry::start();
    let published = publish(&upstream);
    let reference = upstream.reference("demo/app:1.0");
    // A captive portal, an error document served with 200, a body that contradicts its type, and
    // a redirect to another host: each mirror is skipped with one warning, for tag and digest
    // pulls alike.
    let other = FakeRegistry::start();
    let cases: Vec<(Reply, &str)> = vec![
        (
            Reply::ok(
                "text/html",
                "<!DOCTYPE html><html><body>Log in</body></html>",
            ),
            "not a registry response",
        ),
        (
            Reply::ok("application/json", r#"{"errors":[{"code":"DENIED"}]}"#),
            "neither an index nor a manifest",
        ),
        (
            Reply::ok(
                "application/vnd.oci.image.index.v1+json",
                r#"{"schemaVersion":2,"layers":[]}"#,
            ),
            "contradicts its content",
        ),
        (
            Reply::redirect(&other.url("/elsewhere")),
            "redirected to another host",
        ),
    ];
    for (reply, reason) in cases {
        let mirror = FakeRegistry::start();
        mirror.route("/v2/demo/app/manifests/*", reply);
        let env = mirrors(&[format!("http://{}", mirror.host())]);
        let by_digest = format!("{}@{}", upstream.reference("demo/app"), published.digest);
        for target in [&reference, &by_digest] {
            let user = User::new();
            let run = user.run_with(
                &["pull", target, "--insecure"],
                &[("DS_REGISTRY_MIRRORS", &env)],
            );
            let stderr = run.stderr();
            let result = run.ok();
            assert_eq!(result["digest"], published.digest.as_str(), "{stderr}");
            let skipped: Vec<&str> = stderr
                .lines()
                .filter(|l| l.contains(&format!("mirror {} skipped", mirror.host())))
                .collect();
            assert_eq!(skipped.len(), 1, "{stderr}");
            // By digest, a body that parses may fail the digest check first.
            let line = skipped[0];
            assert!(
                line.contains(reason) || (target != &reference && line.contains("digest mismatch")),
                "{reason}: {stderr}"
            );
        }
    }
}

#[test]
fn when_every_endpoint_fails_the_error_lists_each_mirror_and_why() {
    let upstream = Registry::start();
    let reference = upstream.reference("demo/missing:1.0");
    let mirror = FakeRegistry::start();
    mirror.route(
        "/v2/demo/missing/manifests/*",
        Reply::ok("text/html", "<html>portal</html>"),
    );
    let env = mirrors(&[format!("http://{}", mirror.host())]);
    let err = User::new()
        .run_with(
            &["pull", &reference, "--insecure"],
            &[("DS_REGISTRY_MIRRORS", &env)],
        )
        .fails();
    assert!(err.contains("HTTP 404"), "{err}");
    assert!(
        err.contains(&format!("mirrors skipped: mirror {}", mirror.host()))
            && err.contains("not a registry response"),
        "{err}"
    );
}
