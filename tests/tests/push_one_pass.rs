//! Pushes at the speed of the wire, against the real distribution registry (and a fault proxy in
//! front of it for what a real registry will not do): a file read once and hashed as it goes out,
//! chunked uploads with `Content-Range`, the fallback to chunks when a body is refused as too
//! large, resuming a dropped chunk from the registry's `Range`, digests remembered for unchanged
//! files (and not trusted for a file rewritten in place), and mounts from every repository the
//! cache saw a blob in.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use porter_e2e::cli::User;
use porter_e2e::{AccessLogEntry, Registry};
use porter_e2e::{Fault, FaultProxy};

const MIB: usize = 1024 * 1024;

/// `len` bytes that do not repeat, different for each `seed`.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Pulls `reference` into a fresh directory and returns the bytes of `file` there.
fn pulled(user: &User, reference: &str, file: &str) -> Vec<u8> {
    let out = format!("pulled-{}", fastrand_name());
    user.run(&["pull", reference, "--insecure", "-o", &out])
        .ok();
    fs::read(user.path().join(out).join(file)).unwrap()
}

fn fastrand_name() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

fn uploads(requests: &[AccessLogEntry], method: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.method == method && r.path.contains("/blobs/uploads/"))
        .count()
}

/// Waits until the file's times are older than the granularity the digest record allows for.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
fn a_large_file_is_read_once_in_one_upload_session_and_arrives_intact() {
    let reg = Registry::start();
    let user = User::new();
    let data = content(3 * MIB + 17, 1);
    fs::write(user.path().join("tool"), &data).unwrap();
    let reference = reg.reference("one/pass:1");
    let mark = reg.mark();
    user.run(&["push", "tool", &reference, "--insecure"]).ok();
    let requests = reg.requests_since(&mark);
    // One session for the file (POST, PATCH, PUT ?digest=); the small config goes in one PUT.
    assert_eq!(uploads(&requests, "PATCH"), 1, "{requests:?}");
    assert!(
        requests.iter().any(|r| r.method == "PUT"
            && r.status == 201
            && r.query.as_deref().is_some_and(|q| q.contains("digest="))),
        "{requests:?}"
    );
    assert_eq!(pulled(&user, &reference, "tool"), data);
}

#[test]
fn chunked_mode_sends_every_chunk_with_its_range_and_the_registry_assembles_them() {
    let reg = Registry::start();
    let user = User::new();
    let data = content(3 * MIB + MIB / 2, 2);
    fs::write(user.path().join("tool"), &data).unwrap();
    let proxy = FaultProxy::start(&reg.host());
    let reference = proxy.reference("chunked/tool:1");
    user.run(&[
        "push",
        "tool",
        &reference,
        "--insecure",
        "--chunk-size",
        "1MiB",
    ])
    .ok();
    let patches: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    let ranges: Vec<_> = patches.iter().map(|p| p.content_range.clone()).collect();
    assert_eq!(
        ranges,
        [
            Some("0-1048575".to_owned()),
            Some("1048576-2097151".to_owned()),
            Some("2097152-3145727".to_owned()),
            Some("3145728-3670015".to_owned()),
        ],
        "{patches:?}"
    );
    assert!(patches.iter().all(|p| p.status == 202), "{patches:?}");
    assert_eq!(
        pulled(&user, &reg.reference("chunked/tool:1"), "tool"),
        data
    );

    // The same setting from settings.porter.chunk_size; a size below 64KiB is refused.
    let second = content(2 * MIB, 3);
    fs::write(user.path().join("second"), &second).unwrap();
    let mark = proxy.requests().len();
    user.run_with(
        &[
            "push",
            "second",
            &proxy.reference("chunked/second:1"),
            "--insecure",
        ],
        &[("DS_SETTINGS_PORTER_CHUNK_SIZE", "512KiB")],
    )
    .ok();
    let patches = proxy.requests()[mark..]
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(patches, 4);
    let refused = user.run(&[
        "push",
        "tool",
        &reference,
        "--insecure",
        "--chunk-size",
        "1KiB",
    ]);
    assert_eq!(refused.code(), 2, "{}", refused.stderr());
    assert!(
        refused.stderr().contains("chunk size"),
        "{}",
        refused.stderr()
    );
}

#[test]
fn a_body_refused_as_too_large_is_sent_again_in_chunks_the_registry_accepts() {
    let reg = Registry::start();
    let user = User::new();
    let data = content(5 * MIB, 4);
    fs::write(user.path().join("big"), &data).unwrap();
    let proxy = FaultProxy::start(&reg.host());
    proxy.inject("/blobs/uploads/", 1000, Fault::BodyLimit(3 * MIB));
    let reference = proxy.reference("limited/big:1");
    user.run(&["push", "big", &reference, "--insecure"]).ok();
    let bodies: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| (r.status, r.body_len))
        .collect();
    assert_eq!(bodies.first(), Some(&(413, 5 * MIB)), "{bodies:?}");
    assert!(
        bodies[1..]
            .iter()
            .all(|(status, len)| *status == 202 && *len <= 3 * MIB),
        "{bodies:?}"
    );
    assert_eq!(
        bodies[1..].iter().map(|(_, len)| len).sum::<usize>(),
        5 * MIB,
        "{bodies:?}"
    );
    assert_eq!(pulled(&user, &reg.reference("limited/big:1"), "big"), data);
}

#[test]
fn a_chunk_dropped_mid_upload_is_resumed_from_the_registry_range_not_from_the_start() {
    let reg = Registry::start();
    let user = User::new();
    let data = content(4 * MIB, 5);
    fs::write(user.path().join("tool"), &data).unwrap();
    let proxy = FaultProxy::start(&reg.host());
    let reference = proxy.reference("resumed/tool:1");
    // The third chunk's connection drops once, its body sent.
    proxy.inject_chunk("/blobs/uploads/", "2097152-", 1, Fault::DropRequest);
    user.run(&[
        "push",
        "tool",
        &reference,
        "--insecure",
        "--chunk-size",
        "1MiB",
    ])
    .ok();
    let log = proxy.requests();
    let dropped = log
        .iter()
        .position(|r| r.fault == Some(Fault::DropRequest))
        .expect("a request was dropped");
    let dropped_range = log[dropped].content_range.clone();
    // After the drop: the session's status is asked, and the next chunk starts where the
    // registry's range ends, not at 0.
    let after: Vec<_> = log[dropped + 1..].iter().collect();
    assert!(
        after
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/blobs/uploads/")),
        "{log:?}"
    );
    let next = after
        .iter()
        .find(|r| r.method == "PATCH")
        .expect("the upload went on");
    assert_eq!(next.content_range, dropped_range, "{log:?}");
    assert_eq!(dropped_range.as_deref(), Some("2097152-3145727"), "{log:?}");
    assert_eq!(
        log.iter()
            .filter(|r| r.method == "PATCH" && r.content_range.as_deref() == Some("0-1048575"))
            .count(),
        1,
        "the upload started over: {log:?}"
    );
    assert_eq!(
        pulled(&user, &reg.reference("resumed/tool:1"), "tool"),
        data
    );
}

#[test]
fn an_unchanged_file_is_not_hashed_or_uploaded_again() {
    let reg = Registry::start();
    let user = User::new();
    let data = content(2 * MIB, 6);
    fs::write(user.path().join("tool"), &data).unwrap();
    settle();
    let reference = reg.reference("again/tool:1");
    user.run(&["push", "tool", &reference, "--insecure"]).ok();
    let mark = reg.mark();
    let run = user.run_with(
        &[
            "push",
            "tool",
            &reference,
            "--insecure",
            "--log-level",
            "debug",
        ],
        &[],
    );
    run.ok();
    assert!(
        run.stderr().contains("digest from the cache's record"),
        "{}",
        run.stderr()
    );
    let requests = reg.requests_since(&mark);
    assert_eq!(uploads(&requests, "POST"), 0, "{requests:?}");
    assert_eq!(uploads(&requests, "PATCH"), 0, "{requests:?}");
}

#[test]
fn a_file_rewritten_in_place_with_the_same_size_and_time_is_hashed_again() {
    let reg = Registry::start();
    let user = User::new();
    let path = user.path().join("tool");
    let first = content(2 * MIB, 7);
    fs::write(&path, &first).unwrap();
    settle();
    let reference = reg.reference("rewritten/tool:1");
    user.run(&["push", "tool", &reference, "--insecure"]).ok();
    // Same size, same modification time (as a file system with whole-second times shows a
    // rewrite within the same second): the recorded digest must not be trusted.
    let modified = fs::metadata(&path).unwrap().modified().unwrap();
    let second = content(2 * MIB, 8);
    fs::write(&path, &second).unwrap();
    fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    user.run(&["push", "tool", &reference, "--insecure"]).ok();
    assert_eq!(pulled(&user, &reference, "tool"), second);

    // Rewritten right after a push (times newer than the record allows): hashed again too.
    let third = content(2 * MIB, 9);
    fs::write(&path, &third).unwrap();
    user.run(&["push", "tool", &reference, "--insecure"]).ok();
    let fourth = content(2 * MIB, 10);
    fs::write(&path, &fourth).unwrap();
    user.run(&["push", "tool", &reference, "--insecure"]).ok();
    assert_eq!(pulled(&user, &reference, "tool"), fourth);
}

#[test]
fn a_blob_pushed_to_one_repository_is_mounted_into_another_not_uploaded() {
    let reg = Registry::start();
    let user = User::new();
    let data = content(2 * MIB, 11);
    fs::write(user.path().join("tool"), &data).unwrap();
    settle();
    user.run(&[
        "push",
        "tool",
        &reg.reference("team-a/tool:1"),
        "--insecure",
    ])
    .ok();
    let mark = reg.mark();
    let target = reg.reference("team-b/tool:1");
    user.run(&["push", "tool", &target, "--insecure"]).ok();
    let requests = reg.requests_since(&mark);
    assert!(
        requests.iter().any(|r| r.method == "POST"
            && r.status == 201
            && r.query
                .as_deref()
                .is_some_and(|q| q.contains("mount=") && q.contains("from=team-a"))),
        "{requests:?}"
    );
    assert_eq!(uploads(&requests, "PATCH"), 0, "{requests:?}");
    assert!(
        !requests.iter().any(|r| r.method == "PUT"
            && r.path.contains("/blobs/uploads/")
            && r.status == 201
            && r.path.contains("team-b")
            && r.bytes_written > 0),
        "{requests:?}"
    );
    assert_eq!(pulled(&user, &target, "tool"), data);
}

#[test]
fn an_upload_that_fails_mid_way_leaves_no_tag() {
    let reg = Registry::start();
    let user = User::new();
    fs::write(user.path().join("tool"), content(3 * MIB, 12)).unwrap();
    let proxy = FaultProxy::start(&reg.host());
    proxy.inject(
        "/blobs/uploads/",
        1000,
        Fault::Status {
            code: 400,
            retry_after: None,
        },
    );
    let failed = user.run(&[
        "push",
        "tool",
        &proxy.reference("broken/tool:1"),
        "--insecure",
    ]);
    assert_eq!(failed.code(), 1, "{}", failed.stderr());
    let manifest = reg.raw_get("/v2/broken/tool/manifests/1", None);
    assert_eq!(manifest.status, 404);
    assert!(Path::new(&user.path().join("tool")).exists());
}
