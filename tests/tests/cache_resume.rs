//! Interrupted downloads resume. A pull stopped in the middle of a blob — by SIGINT or SIGTERM
//! (exit 130/143, its staging removed) or by SIGKILL — leaves the bytes it downloaded in
//! `.ingest/<hex>.partial`; the next pull of that blob re-hashes them and asks the registry only
//! for the rest, which the registry's access log shows as one `206` of exactly the missing bytes.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use porter_e2e::cli::{Background, User};
use porter_e2e::ingest::{partial_file, wait_for_stalled_partial};
use porter_e2e::{
    Blob, Fault, FaultProxy, LayerSpec, Published, Registry, block_on, publish_single,
    sha256_digest,
};

const LAYER: usize = 8 << 20;
/// Where the proxy stops sending the layer.
const STALL_AT: usize = 3 << 20;
/// Bytes on disk before a stalled download counts as caught in the middle.
const CAUGHT: u64 = 1 << 20;
const LIMIT: Duration = Duration::from_secs(60);
const REPO: &str = "demo/big:1.0";

fn setup() -> (Registry, FaultProxy, Published) {
    let reg = Registry::start();
    let published = block_on(publish_single(
        &reg,
        REPO,
        &[LayerSpec::pseudo_random("big.bin", 11, LAYER)],
        &[],
    ));
    let proxy = FaultProxy::start(&reg.host());
    (reg, proxy, published)
}

/// The names in the cache's `.ingest/`, sorted.
fn ingest(user: &User) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(user.cache().join(".ingest"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Starts a pull through `proxy` whose layer stalls after [`STALL_AT`] bytes, and returns it
/// once the download is caught in the middle, with the partial file's path.
fn stalled_pull(user: &User, proxy: &FaultProxy, layer: &Blob) -> (Background, PathBuf) {
    let partial = partial_file(&user.cache(), &layer.digest);
    proxy.inject(
        &format!("/blobs/{}", layer.digest),
        1,
        Fault::StallAfter(STALL_AT),
    );
    let mut pull = user.spawn(
        &["pull", &proxy.reference(REPO), "--insecure"],
        &[("DS_SETTINGS_PORTER_REQUEST_TIMEOUT", "120s")],
    );
    wait_for_stalled_partial(&mut pull, &partial, CAUGHT, LIMIT);
    (pull, partial)
}

/// Starts a pull through the proxy whose layer stalls after [`STALL_AT`] bytes, stops it with
/// `signal` once the download is caught in the middle, then pulls directly from the registry
/// and checks that only the missing bytes were fetched. Returns the interrupted run's exit code
/// and the partial file's size after it ended.
fn interrupt_then_resume(signal: &str) -> (i32, u64) {
    let (reg, proxy, published) = setup();
    let layer = &published.layers[0];
    let user = User::new();
    let (first, partial) = stalled_pull(&user, &proxy, layer);
    first.signal(signal);
    let code = first.wait(LIMIT).code();
    let kept = fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept < LAYER as u64, "{kept}");
    assert!(
        !user
            .cache()
            .join("blobs/sha256")
            .join(&layer.digest[7..])
            .exists()
    );

    let mark = reg.mark();
    let result = user.run(&["pull", &reg.reference(REPO), "--insecure"]).ok();
    assert_eq!(result["digest"], published.digest.as_str());
    let gets: Vec<_> = reg
        .blob_gets_since(&mark)
        .into_iter()
        .filter(|g| g.digest == layer.digest)
        .collect();
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(gets[0].status, 206, "{gets:?}");
    assert_eq!(gets[0].bytes_written, LAYER as u64 - kept, "{gets:?}");
    let blob = fs::read(user.cache().join("blobs/sha256").join(&layer.digest[7..])).unwrap();
    assert_eq!(sha256_digest(&blob), layer.digest);
    assert_eq!(ingest(&user), Vec::<String>::new());
    (code, kept)
}

/// After SIGINT or SIGTERM: the exit code, every byte received kept, the pull's staging and
/// lease gone.
fn interrupted_cleanly(signal: &str, expected: i32) {
    let (code, kept) = interrupt_then_resume(signal);
    assert_eq!(code, expected);
    assert_eq!(kept, STALL_AT as u64, "every byte received was kept");
}

#[test]
fn sigint_mid_download_exits_130_and_the_next_pull_fetches_only_the_rest() {
    interrupted_cleanly("INT", 130);
}

#[test]
fn sigterm_mid_download_exits_143_and_the_next_pull_fetches_only_the_rest() {
    interrupted_cleanly("TERM", 143);
}

#[test]
fn sigkill_mid_download_then_the_next_pull_fetches_only_the_rest() {
    let (code, _) = interrupt_then_resume("KILL");
    assert_eq!(code, -1, "killed by the signal");
}

#[test]
fn sigint_removes_the_pulls_staging_and_lease_and_keeps_its_partial_download() {
    let (_reg, proxy, published) = setup();
    let layer = &published.layers[0];
    let user = User::new();
    let (pull, partial) = stalled_pull(&user, &proxy, layer);
    assert_eq!(ingest(&user).len(), 3, "staging, lease, partial");
    pull.signal("INT");
    assert_eq!(pull.wait(LIMIT).code(), 130);
    assert_eq!(
        ingest(&user),
        [partial.file_name().unwrap().to_string_lossy().into_owned()]
    );
    assert_eq!(user.run(&["list"]).stdout(), "[]\n");
}
