//! The test-support crate against the real registry: fixtures are retrievable as published, the
//! access-log accounting matches what a client transferred, basic auth is enforced.
#![allow(clippy::unwrap_used)]

use std::io::Read as _;

use oci_client::Reference;
use oci_client::secrets::RegistryAuth;
use porter_e2e::{
    BlobGet, EMPTY_CONFIG_DIGEST, LayerSpec, OCI_INDEX_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE,
    Registry, StandardFixtures, client, publish_large, publish_single, publish_standard,
    registry_auth, sha256_digest,
};
use serde_json::Value;

const ACCEPT_ALL: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

async fn pull_manifest(reg: &Registry, reference: &str, auth: &RegistryAuth) -> (Vec<u8>, String) {
    let reference: Reference = reference.parse().unwrap();
    let (body, digest) = client(reg)
        .pull_manifest_raw(&reference, auth, ACCEPT_ALL)
        .await
        .unwrap();
    (body.to_vec(), digest)
}

async fn pull_blob(reg: &Registry, reference: &str, digest: &str) -> Vec<u8> {
    let reference: Reference = reference.parse().unwrap();
    let client = client(reg);
    client
        .auth(
            &reference,
            &registry_auth(reg),
            oci_client::RegistryOperation::Pull,
        )
        .await
        .unwrap();
    let mut out = Vec::new();
    client
        .pull_blob(&reference, digest, &mut out)
        .await
        .unwrap();
    out
}

fn untar(targz: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(targz)
        .read_to_end(&mut tar)
        .unwrap();
    let mut archive = tar::Archive::new(tar.as_slice());
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = entry.header().mode().unwrap();
            let mut contents = Vec::new();
            entry.read_to_end(&mut contents).unwrap();
            (name, mode, contents)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_fixtures_are_retrievable_as_published() {
    let reg = Registry::start();
    let fx = publish_standard(&reg).await;
    let anonymous = RegistryAuth::Anonymous;

    // Every tagged fixture resolves to the bytes that were pushed.
    let tagged = [
        (&fx.app.reference, &fx.app.digest, &fx.app.raw),
        (&fx.tool.reference, &fx.tool.digest, &fx.tool.raw),
        (
            &fx.untitled.reference,
            &fx.untitled.digest,
            &fx.untitled.raw,
        ),
        (&fx.winidx.reference, &fx.winidx.digest, &fx.winidx.raw),
        (&fx.archive.reference, &fx.archive.digest, &fx.archive.raw),
        (
            &fx.twolayers.reference,
            &fx.twolayers.digest,
            &fx.twolayers.raw,
        ),
        (
            &fx.plugininfo.reference,
            &fx.plugininfo.digest,
            &fx.plugininfo.raw,
        ),
        (
            &fx.finalizer.reference,
            &fx.finalizer.digest,
            &fx.finalizer.raw,
        ),
        (
            &fx.dockerlist.reference,
            &fx.dockerlist.digest,
            &fx.dockerlist.raw,
        ),
    ];
    for (reference, digest, raw) in tagged {
        let (body, pulled_digest) = pull_manifest(&reg, reference, &anonymous).await;
        assert_eq!(&pulled_digest, digest, "{reference}");
        assert_eq!(&body, raw, "{reference}");
    }
    assert_eq!(fx.app.reference, reg.reference("demo/app:1.0"));

    // The index is shaped like ds-porter's push (§7.11).
    let index: Value = serde_json::from_slice(&fx.tool.raw).unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX_MEDIA_TYPE);
    assert_eq!(
        index["artifactType"],
        "application/vnd.delivery-station.artifact.index.v1+json"
    );
    assert_eq!(index["annotations"], serde_json::json!({"name": "porter"}));
    let windows = &index["manifests"][2];
    assert_eq!(
        windows["platform"],
        serde_json::json!({"architecture": "amd64", "os": "windows"})
    );
    assert_eq!(windows["annotations"]["os"], "windows");
    assert_eq!(windows["annotations"]["architecture"], "amd64");
    let arm = fx.tool.platform("linux/arm64");
    let (body, _) = pull_manifest(&reg, &arm.manifest.reference, &anonymous).await;
    let manifest: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(manifest["mediaType"], OCI_MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["config"]["digest"], EMPTY_CONFIG_DIGEST);
    assert_eq!(
        manifest["layers"][0]["annotations"]["org.opencontainers.image.title"],
        "tool"
    );

    // Pulling one platform's layer is recorded as exactly that blob, with its full size.
    let mark = reg.mark();
    let layer = &arm.manifest.layers[0];
    let data = pull_blob(&reg, &fx.tool.reference, &layer.digest).await;
    assert_eq!(data, StandardFixtures::tool_contents("linux/arm64"));
    assert_eq!(
        reg.blob_gets_since(&mark),
        [BlobGet {
            repository: "demo/tool".into(),
            digest: layer.digest.clone(),
            status: 200,
            bytes_written: layer.size,
        }]
    );
    assert!(reg.manifest_gets_since(&mark).is_empty());

    // The archive holds bin/ and bin/tool (0755).
    let archive_layer = &fx.archive.layers[0];
    let targz = pull_blob(&reg, &fx.archive.reference, &archive_layer.digest).await;
    assert_eq!(
        untar(&targz),
        [
            ("bin/".to_owned(), 0o755, Vec::new()),
            (
                "bin/tool".to_owned(),
                0o755,
                StandardFixtures::ARCHIVE_TOOL.to_vec()
            ),
        ]
    );

    // Every GET so far is on record: blobs with their sizes, manifests with theirs.
    let gets = reg.blob_gets();
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert_eq!(gets[1].digest, archive_layer.digest);
    assert_eq!(gets[1].bytes_written, archive_layer.size);
    let manifest_gets = reg.manifest_gets();
    assert_eq!(manifest_gets.len(), tagged.len() + 1, "{manifest_gets:?}");
    assert_eq!(manifest_gets[0].repository, "demo/app");
    assert_eq!(manifest_gets[0].reference, "1.0");
    assert_eq!(manifest_gets[0].bytes_written, fx.app.size);
    assert_eq!(manifest_gets.last().unwrap().reference, arm.manifest.digest);

    // Fixtures are reproducible: publishing again yields the same digests.
    let again = publish_standard(&reg).await;
    assert_eq!(again, fx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_layers_can_be_published() {
    let reg = Registry::start();
    let published = publish_single(
        &reg,
        "demo/empty:1.0",
        &[LayerSpec::untitled(Vec::new())],
        &[],
    )
    .await;
    assert_eq!(published.layers[0].size, 0);
    let data = pull_blob(&reg, &published.reference, &published.layers[0].digest).await;
    assert!(data.is_empty());
    assert_eq!(reg.blob_gets()[0].bytes_written, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_layers_are_streamed_and_accounted() {
    let reg = Registry::start();
    // Not a multiple of the 4 MiB upload chunk nor of the 1 MiB generation piece.
    let size = 5 * 1024 * 1024 + 3;
    let published = publish_large(&reg, "demo/large:1.0", 2, size).await;
    assert_eq!(published.layers.len(), 2);
    assert_ne!(published.layers[0].digest, published.layers[1].digest);
    let expected = LayerSpec::pseudo_random("layer-1.bin", 1, size as usize);

    let mark = reg.mark();
    let layer = &published.layers[1];
    let data = pull_blob(&reg, &published.reference, &layer.digest).await;
    assert_eq!(data.len() as u64, size);
    assert_eq!(sha256_digest(&data), layer.digest);
    assert!(
        data == expected.data,
        "streamed layer differs from its one-shot form"
    );
    let gets = reg.blob_gets_since(&mark);
    assert_eq!(gets.len(), 1);
    assert_eq!(gets[0].bytes_written, size);
    assert_eq!(published.layer_bytes(), 2 * size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_registry_requires_basic_auth() {
    let reg = Registry::start_with_htpasswd("alice", "s3cret");
    assert_eq!(reg.credentials(), Some(("alice", "s3cret")));
    let published = publish_single(
        &reg,
        "private/app:1.0",
        &[LayerSpec::binary("app", b"private app\n".to_vec())],
        &[("org.opencontainers.image.description", "private")],
    )
    .await;

    let anonymous = reg.raw_get("/v2/private/app/manifests/1.0", None);
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Basic realm=\"basic-realm\"")
    );
    let wrong = reg.raw_get(
        "/v2/private/app/manifests/1.0",
        Some(("alice", "not-the-password")),
    );
    assert_eq!(wrong.status, 401);
    let authenticated = reg.raw_get("/v2/private/app/manifests/1.0", reg.credentials());
    assert_eq!(authenticated.status, 200);
    assert_eq!(authenticated.body, published.raw);

    let reference: Reference = published.reference.parse().unwrap();
    let denied = client(&reg)
        .pull_manifest_raw(&reference, &RegistryAuth::Anonymous, ACCEPT_ALL)
        .await;
    assert!(
        matches!(
            denied,
            Err(oci_client::errors::OciDistributionError::UnauthorizedError { .. })
        ),
        "{denied:?}"
    );
    let (body, digest) = pull_manifest(&reg, &published.reference, &registry_auth(&reg)).await;
    assert_eq!(digest, published.digest);
    assert_eq!(body, published.raw);

    let statuses: Vec<u16> = reg.manifest_gets().iter().map(|get| get.status).collect();
    assert_eq!(statuses, [401, 401, 200, 401, 200]);
}
