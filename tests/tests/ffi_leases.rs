//! One download per blob for the threads of one process using the FFI: several threads pulling
//! the same artifact through one `PorterClient` make the registry serve each blob once, and
//! every thread gets the same verified result.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use porter_e2e::{Registry, block_on, publish_large};
use porter_ffi::PullOptions;
use porter_ffi::bindings::PorterClient;

#[test]
fn threads_pulling_one_artifact_through_one_client_download_each_blob_once() {
    let reg = Registry::start();
    let published = block_on(publish_large(&reg, "demo/shared:1.0", 2, 48 << 20));
    let dir = tempfile::tempdir().unwrap();
    let config = serde_json::json!({"Cache": {"Dir": dir.path().join("cache")}}).to_string();
    let client = Arc::new(PorterClient::new(Some(config)).unwrap());
    let reference = reg.reference("demo/shared:1.0");
    let mark = reg.mark();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let client = Arc::clone(&client);
            let reference = reference.clone();
            std::thread::spawn(move || {
                let options = PullOptions {
                    insecure: true,
                    ..PullOptions::default()
                };
                client.pull(reference, Some(options), None, None)
            })
        })
        .collect();
    for thread in threads {
        let artifact = thread.join().unwrap().unwrap();
        assert_eq!(artifact.digest, published.digest);
    }
    for layer in &published.layers {
        let gets: Vec<_> = reg
            .blob_gets_since(&mark)
            .into_iter()
            .filter(|g| g.digest == layer.digest)
            .collect();
        assert_eq!(gets.len(), 1, "{} was served {gets:?}", layer.digest);
    }
    let report = client.cache_verify(None, None, None).unwrap();
    assert!(
        report.corrupt.is_empty() && report.missing.is_empty(),
        "{report:?}"
    );
}
