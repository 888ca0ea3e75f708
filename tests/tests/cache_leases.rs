//! One download per blob at a time, across processes and threads, against the real registry.
//!
//! Several `ds-porter` processes (or tasks of one process) pulling the same artifact into one
//! cache fetch each blob once: the others wait for the lease holder and reuse its blob. A holder
//! killed in the middle leaves its bytes to the waiters, which fetch only the rest; a stopped
//! holder is given up on after the per-attempt timeout, and once continued it finishes without
//! corrupting anything.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use porter_core::config::HostConfig;
use porter_core::progress::NoProgress;
use porter_core::{PlatformRequest, Porter, PullRequest};
use porter_e2e::cli::{Background, Run, User, assert_cache_sound};
use porter_e2e::ingest::{partial_file, wait_for_stalled_partial, wait_for_stderr};
use porter_e2e::{
    BlobGet, Fault, FaultProxy, LayerSpec, Published, Registry, block_on, publish_single,
};
use serde_json::{Value, json};

const LAYER: usize = 6 << 20;
const STALL_AT: usize = 2 << 20;
const CAUGHT: u64 = 1 << 20;
const PULLS: usize = 4;
const LIMIT: Duration = Duration::from_secs(90);
const REPO: &str = "demo/shared:1.0";
const WAITING: &str = "waiting for another pull of";

fn layers() -> [LayerSpec; 2] {
    [
        LayerSpec::pseudo_random("first.bin", 21, LAYER),
        LayerSpec::pseudo_random("second.bin", 22, LAYER),
    ]
}

fn setup() -> (Registry, Published) {
    let reg = Registry::start();
    let published = block_on(publish_single(&reg, REPO, &layers(), &[]));
    (reg, published)
}

/// The registry's GETs of `digest` in `gets`.
fn of<'a>(gets: &'a [BlobGet], digest: &str) -> Vec<&'a BlobGet> {
    gets.iter().filter(|g| g.digest == digest).collect()
}

/// A pull of `reference` exporting to `out` (relative to the user's directory).
fn pull_args<'a>(reference: &'a str, out: &'a str) -> [&'a str; 6] {
    [
        "pull",
        reference,
        "--insecure",
        "-o",
        out,
        "--log-level=info",
    ]
}

/// The run succeeded with the published artifact, and its export holds both layers' bytes.
fn assert_pulled(user: &User, run: &Run, out: &str, published: &Published) {
    assert_eq!(run.ok()["digest"], published.digest.as_str());
    for spec in layers() {
        let file = user.path().join(out).join(spec.title.as_deref().unwrap());
        assert_eq!(fs::read(file).unwrap(), spec.data, "{out}");
    }
}

#[test]
fn several_processes_pulling_one_artifact_download_each_blob_once() {
    let (reg, published) = setup();
    let user = User::new();
    let reference = reg.reference(REPO);
    let mark = reg.mark();
    let outs: Vec<String> = (0..PULLS).map(|i| format!("out{i}")).collect();
    let pulls: Vec<Background> = outs
        .iter()
        .map(|out| user.spawn(&pull_args(&reference, out), &[]))
        .collect();
    for (pull, out) in pulls.into_iter().zip(&outs) {
        assert_pulled(&user, &pull.wait(LIMIT), out, &published);
    }
    let gets = reg.blob_gets_since(&mark);
    for blob in published.layers.iter().chain([&published.config]) {
        let fetched = of(&gets, &blob.digest);
        assert_eq!(fetched.len(), 1, "{} fetched {fetched:?}", blob.digest);
        assert_eq!(fetched[0].bytes_written, blob.size);
    }
    assert_cache_sound(&user);
}

/// Starts a pull through `proxy` whose first layer stalls after [`STALL_AT`] bytes, and
/// returns it once it holds that layer's lease with bytes on disk (the partial's size).
fn stalled_holder(
    user: &User,
    proxy: &FaultProxy,
    published: &Published,
    timeout: &str,
) -> (Background, u64) {
    let layer = &published.layers[0];
    proxy.inject(
        &format!("/blobs/{}", layer.digest),
        1,
        Fault::StallAfter(STALL_AT),
    );
    let mut holder = user.spawn(
        &pull_args(&proxy.reference(REPO), "held"),
        &[("DS_SETTINGS_PORTER_REQUEST_TIMEOUT", timeout)],
    );
    let partial = partial_file(&user.cache(), &layer.digest);
    let kept = wait_for_stalled_partial(&mut holder, &partial, CAUGHT, LIMIT);
    (holder, kept)
}

#[test]
fn a_lease_holder_killed_mid_blob_leaves_its_bytes_to_the_waiters() {
    let (reg, published) = setup();
    let proxy = FaultProxy::start(&reg.host());
    let user = User::new();
    let layer = &published.layers[0];
    let (holder, kept) = stalled_holder(&user, &proxy, &published, "120s");
    // The proxy read the whole layer from the registry for the holder; count only what follows.
    let mut seen = 0;
    for _ in 0..LIMIT.as_millis() / 50 {
        seen = of(&reg.blob_gets(), &layer.digest).len();
        if seen > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(seen, 1, "the holder's request reached the registry");
    let mark = reg.mark();

    let reference = reg.reference(REPO);
    let mut waiters: Vec<Background> = ["w0", "w1"]
        .iter()
        .map(|out| user.spawn(&pull_args(&reference, out), &[]))
        .collect();
    for waiter in &mut waiters {
        wait_for_stderr(waiter, &format!("{WAITING} {}", layer.digest), LIMIT);
    }
    holder.signal("KILL");
    drop(holder);
    for (waiter, out) in waiters.into_iter().zip(["w0", "w1"]) {
        assert_pulled(&user, &waiter.wait(LIMIT), out, &published);
    }
    let gets = reg.blob_gets_since(&mark);
    let rest = of(&gets, &layer.digest);
    assert_eq!(
        rest.len(),
        1,
        "one waiter resumed, the other reused: {rest:?}"
    );
    assert_eq!(rest[0].status, 206, "{rest:?}");
    assert_eq!(rest[0].bytes_written, LAYER as u64 - kept, "{rest:?}");
    assert_cache_sound(&user);
}

#[test]
fn a_stopped_lease_holder_is_given_up_on_and_once_continued_corrupts_nothing() {
    let (reg, published) = setup();
    let proxy = FaultProxy::start(&reg.host());
    let user = User::new();
    let layer = &published.layers[0];
    let (holder, _) = stalled_holder(&user, &proxy, &published, "3s");
    holder.signal("STOP");

    let reference = reg.reference(REPO);
    let timeout = [("DS_SETTINGS_PORTER_REQUEST_TIMEOUT", "1s")];
    let waiters: Vec<Background> = ["w0", "w1"]
        .iter()
        .map(|out| user.spawn(&pull_args(&reference, out), &timeout))
        .collect();
    for (waiter, out) in waiters.into_iter().zip(["w0", "w1"]) {
        let run = waiter.wait(LIMIT);
        assert!(
            run.stderr().contains(&format!(
                "the pull downloading {} made no progress",
                layer.digest
            )),
            "{}",
            run.stderr()
        );
        assert_pulled(&user, &run, out, &published);
    }
    holder.signal("CONT");
    assert_pulled(&user, &holder.wait(LIMIT), "held", &published);
    assert_cache_sound(&user);
    assert_eq!(
        fs::read_dir(user.cache().join(".ingest")).unwrap().count(),
        0
    );
}

/// Settings for a cache in `dir` that may use plain HTTP to `reg`.
fn settings(dir: &Path, reg: &Registry) -> porter_core::config::Settings {
    let config = json!({
        "Cache": {"Dir": dir.join("cache")},
        "Registry": {"InsecureRegistries": [reg.host()]},
        "Auth": {"DockerConfig": ""},
    });
    HostConfig::from_json(config.to_string().as_bytes())
        .unwrap()
        .to_settings(&|_| None, dir)
        .unwrap()
}

#[test]
fn tasks_of_one_process_share_one_download_per_blob() {
    let (reg, published) = setup();
    let dir = tempfile::tempdir().unwrap();
    let porter = Arc::new(Porter::new(settings(dir.path(), &reg)).unwrap());
    let reference = reg.reference(REPO);
    let mark = reg.mark();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let results: Vec<Value> = runtime.block_on(async {
        let tasks: Vec<_> = (0..PULLS)
            .map(|i| {
                let porter = Arc::clone(&porter);
                let mut request = PullRequest::new(&reference, PlatformRequest::Host).unwrap();
                request.output = Some(dir.path().join(format!("out{i}")));
                tokio::spawn(async move {
                    let outcome = porter.pull(&request, &NoProgress).await.unwrap();
                    serde_json::to_value(&outcome.result).unwrap()
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["digest"], published.digest.as_str());
        for spec in layers() {
            let file = dir
                .path()
                .join(format!("out{i}"))
                .join(spec.title.as_deref().unwrap());
            assert_eq!(fs::read(file).unwrap(), spec.data);
        }
    }
    let gets = reg.blob_gets_since(&mark);
    for blob in published.layers.iter().chain([&published.config]) {
        let fetched = of(&gets, &blob.digest);
        assert_eq!(fetched.len(), 1, "{} fetched {fetched:?}", blob.digest);
    }
    assert!(porter.cache().verify().unwrap().is_clean());
}
