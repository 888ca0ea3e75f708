//! Publishing fixtures to a [`Registry`] with `oci-client`.
//!
//! Manifests are written as raw JSON (`push_manifest_raw`), so the bytes on the registry are
//! exactly the ones built here: field order follows the Go structs ds-porter's push marshals,
//! annotation keys are sorted like Go's maps, and the `created` time is fixed, so every digest is
//! the same in every run (snapshots can hold them).

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::{Mutex, Once};

use bytes::Bytes;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::layer::{DOCKER_LAYER_MEDIA_TYPE, LayerSpec, PseudoRandom};
use crate::registry::Registry;

/// OCI image manifest media type.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// Docker manifest list media type.
pub const DOCKER_LIST_MEDIA_TYPE: &str =
    "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker v2 image manifest media type.
pub const DOCKER_MANIFEST_MEDIA_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker image config media type.
pub const DOCKER_CONFIG_MEDIA_TYPE: &str = "application/vnd.docker.container.image.v1+json";
/// The OCI empty descriptor's media type (config of every ds-porter manifest).
pub const EMPTY_CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// Digest of the two bytes `{}`.
pub const EMPTY_CONFIG_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// Default `artifactType` of an index pushed by ds-porter.
pub const ARTIFACT_INDEX_TYPE: &str = "application/vnd.delivery-station.artifact.index.v1+json";
/// The `org.opencontainers.image.created` value of every fixture manifest.
pub const CREATED: &str = "2024-01-01T00:00:00Z";

const TITLE: &str = "org.opencontainers.image.title";
const CREATED_KEY: &str = "org.opencontainers.image.created";
const EMPTY_CONFIG: &[u8] = b"{}";

/// A blob as referenced by a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Descriptor media type.
    pub media_type: String,
    /// `sha256:…`.
    pub digest: String,
    /// Size in bytes.
    pub size: u64,
    /// Title annotation, if any.
    pub title: Option<String>,
}

/// A published image manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// Reference it was published under: `host/repo:tag`, or `host/repo@digest` for the
    /// platform manifests of an index.
    pub reference: String,
    /// Manifest media type.
    pub media_type: String,
    /// Manifest digest.
    pub digest: String,
    /// Manifest size (bytes of the JSON).
    pub size: u64,
    /// The manifest JSON as pushed.
    pub raw: Vec<u8>,
    /// The config blob.
    pub config: Blob,
    /// The layers in manifest order.
    pub layers: Vec<Blob>,
}

/// One platform entry of a published index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPlatform {
    /// `os/arch[/variant]` as given.
    pub platform: String,
    /// OS.
    pub os: String,
    /// Architecture.
    pub architecture: String,
    /// Variant, if any.
    pub variant: Option<String>,
    /// The platform's manifest.
    pub manifest: Published,
}

/// A published image index or Docker manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedIndex {
    /// `host/repo:tag`.
    pub reference: String,
    /// Index media type.
    pub media_type: String,
    /// Index digest.
    pub digest: String,
    /// Index size (bytes of the JSON).
    pub size: u64,
    /// The index JSON as pushed.
    pub raw: Vec<u8>,
    /// Entries in index order.
    pub platforms: Vec<PublishedPlatform>,
}

impl Published {
    /// ds-porter's cache id: the first 16 hex digits of the digest.
    pub fn id(&self) -> String {
        cache_id(&self.digest)
    }

    /// Sum of the layer sizes.
    pub fn layer_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

impl PublishedIndex {
    /// ds-porter's cache id: the first 16 hex digits of the digest.
    pub fn id(&self) -> String {
        cache_id(&self.digest)
    }

    /// The entry for `os/arch[/variant]`; panics if there is none.
    pub fn platform(&self, platform: &str) -> &PublishedPlatform {
        self.platforms
            .iter()
            .find(|p| p.platform == platform)
            .unwrap_or_else(|| panic!("{} has no {platform} entry", self.reference))
    }
}

/// The first 16 hex digits of a `sha256:…` digest (ds-porter's cache id).
pub fn cache_id(digest: &str) -> String {
    let hex = digest.split_once(':').map_or(digest, |(_, hex)| hex);
    hex.chars().take(16).collect()
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Installs rustls' ring provider for this process (once; later calls do nothing).
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// An `oci-client` client for `reg`: plain HTTP, or HTTPS trusting its CA for a TLS registry.
pub fn client(reg: &Registry) -> Client {
    install_crypto_provider();
    Client::try_from(client_config(reg)).expect("build an oci-client client")
}

/// Plain HTTP to `reg`, or HTTPS trusting its test CA when it serves TLS.
fn client_config(reg: &Registry) -> ClientConfig {
    match reg.ca_pem() {
        // A TLS registry: HTTPS, trusting its test CA.
        Some(ca) => ClientConfig {
            protocol: ClientProtocol::Https,
            extra_root_certificates: vec![oci_client::client::Certificate {
                encoding: oci_client::client::CertificateEncoding::Pem,
                data: ca.as_bytes().to_vec(),
            }],
            ..ClientConfig::default()
        },
        None => ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![reg.host()]),
            ..ClientConfig::default()
        },
    }
}

/// Basic auth for a registry with htpasswd, anonymous otherwise.
pub fn registry_auth(reg: &Registry) -> RegistryAuth {
    match reg.credentials() {
        Some((user, pass)) => RegistryAuth::Basic(user.to_owned(), pass.to_owned()),
        None => RegistryAuth::Anonymous,
    }
}

/// Runs `future` to completion on a fresh current-thread runtime, for synchronous tests.
/// Must not be called from inside a runtime.
pub fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(future)
}

/// Publishes one OCI image manifest (empty config) with `layers` under `repo_tag`.
///
/// `artifactType` is the first layer's media type, as ds-porter's push writes it;
/// `annotations` become the manifest's annotations (omitted when empty).
pub async fn publish_single(
    reg: &Registry,
    repo_tag: &str,
    layers: &[LayerSpec],
    annotations: &[(&str, &str)],
) -> Published {
    let publisher = Publisher::new(reg, repo_tag).await;
    publisher
        .oci_manifest(Target::Tag, layers, &sorted(annotations))
        .await
}

/// Publishes an OCI image index (`artifactType` = the ds-porter index type) with one OCI
/// manifest per `(platform, layers)` entry, shaped like ds-porter's push (§7.11): each manifest
/// has the empty config and `created` annotation; each index descriptor has `artifactType`,
/// annotations `created`, `os`, `architecture` (and `variant`) and a `platform`.
/// `annotations` become the index's annotations (omitted when empty).
pub async fn publish_index(
    reg: &Registry,
    repo_tag: &str,
    entries: &[(&str, Vec<LayerSpec>)],
    annotations: &[(&str, &str)],
) -> PublishedIndex {
    let publisher = Publisher::new(reg, repo_tag).await;
    let created = sorted(&[(CREATED_KEY, CREATED)]);
    let mut platforms = Vec::new();
    let mut descriptors = Vec::new();
    for (platform, layers) in entries {
        let (os, architecture, variant) = split_platform(platform);
        let manifest = publisher
            .oci_manifest(Target::Digest, layers, &created)
            .await;
        let mut descriptor_annotations = BTreeMap::from([
            (CREATED_KEY.to_owned(), CREATED.to_owned()),
            ("os".to_owned(), os.clone()),
            ("architecture".to_owned(), architecture.clone()),
        ]);
        if let Some(variant) = &variant {
            descriptor_annotations.insert("variant".to_owned(), variant.clone());
        }
        // Field order of Go's `ocispec.Descriptor`: artifactType comes last.
        let mut descriptor = Map::new();
        descriptor.insert("mediaType".into(), json!(OCI_MANIFEST_MEDIA_TYPE));
        descriptor.insert("digest".into(), json!(manifest.digest));
        descriptor.insert("size".into(), json!(manifest.size));
        descriptor.insert("annotations".into(), json!(descriptor_annotations));
        descriptor.insert(
            "platform".into(),
            platform_json(&os, &architecture, variant.as_deref()),
        );
        if let Some(first) = layers.first() {
            descriptor.insert("artifactType".into(), json!(first.media_type));
        }
        descriptors.push(Value::Object(descriptor));
        platforms.push(PublishedPlatform {
            platform: (*platform).to_owned(),
            os,
            architecture,
            variant,
            manifest,
        });
    }
    let mut index = Map::new();
    index.insert("schemaVersion".into(), json!(2));
    index.insert("mediaType".into(), json!(OCI_INDEX_MEDIA_TYPE));
    index.insert("artifactType".into(), json!(ARTIFACT_INDEX_TYPE));
    index.insert("manifests".into(), Value::Array(descriptors));
    if !annotations.is_empty() {
        index.insert("annotations".into(), json!(sorted(annotations)));
    }
    publisher
        .index(OCI_INDEX_MEDIA_TYPE, &Value::Object(index), platforms)
        .await
}

/// Publishes a Docker manifest list with one Docker v2 manifest per `(platform, layers)` entry.
///
/// Every layer gets the Docker layer media type (`…rootfs.diff.tar.gzip`) whatever its
/// [`LayerSpec::media_type`]; titles are kept as annotations. Each manifest's config is a small
/// Docker image config naming the platform.
pub async fn publish_docker_list(
    reg: &Registry,
    repo_tag: &str,
    entries: &[(&str, Vec<LayerSpec>)],
) -> PublishedIndex {
    let publisher = Publisher::new(reg, repo_tag).await;
    let mut platforms = Vec::new();
    let mut descriptors = Vec::new();
    for (platform, layers) in entries {
        let (os, architecture, variant) = split_platform(platform);
        let mut config_json = Map::new();
        config_json.insert("architecture".into(), json!(architecture));
        config_json.insert("os".into(), json!(os));
        if let Some(variant) = &variant {
            config_json.insert("variant".into(), json!(variant));
        }
        config_json.insert("rootfs".into(), json!({"type": "layers", "diff_ids": []}));
        let config_bytes = serde_json::to_vec(&Value::Object(config_json)).expect("encode JSON");
        let config = publisher
            .blob(DOCKER_CONFIG_MEDIA_TYPE, None, &config_bytes)
            .await;
        let mut layer_blobs = Vec::new();
        for layer in layers {
            layer_blobs.push(
                publisher
                    .blob(DOCKER_LAYER_MEDIA_TYPE, layer.title.as_deref(), &layer.data)
                    .await,
            );
        }
        let manifest_json = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_MEDIA_TYPE,
            "config": docker_descriptor(&config),
            "layers": layer_blobs.iter().map(docker_descriptor).collect::<Vec<_>>(),
        });
        let manifest = publisher
            .manifest(
                Target::Digest,
                DOCKER_MANIFEST_MEDIA_TYPE,
                &manifest_json,
                config,
                layer_blobs,
            )
            .await;
        let mut descriptor = Map::new();
        descriptor.insert("mediaType".into(), json!(DOCKER_MANIFEST_MEDIA_TYPE));
        descriptor.insert("size".into(), json!(manifest.size));
        descriptor.insert("digest".into(), json!(manifest.digest));
        descriptor.insert(
            "platform".into(),
            platform_json(&os, &architecture, variant.as_deref()),
        );
        descriptors.push(Value::Object(descriptor));
        platforms.push(PublishedPlatform {
            platform: (*platform).to_owned(),
            os,
            architecture,
            variant,
            manifest,
        });
    }
    let list = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_LIST_MEDIA_TYPE,
        "manifests": descriptors,
    });
    publisher
        .index(DOCKER_LIST_MEDIA_TYPE, &list, platforms)
        .await
}

/// Publishes one OCI manifest with `layer_count` binary layers (`layer-<i>.bin`) of
/// `layer_size` bytes each, layer `i` holding `LayerSpec::pseudo_random(_, i, layer_size)`'s
/// bytes (the same in every run).
///
/// No layer is ever held in memory: each is generated in 1 MiB pieces twice, once to compute
/// its digest and once while it streams to the registry in a single monolithic `PUT`
/// (oci-client's `push_blob_stream`). Chunked `PATCH` uploads would avoid the first pass, but
/// distribution 2.8 takes several times longer to accept a large blob that way.
pub async fn publish_large(
    reg: &Registry,
    repo_tag: &str,
    layer_count: usize,
    layer_size: u64,
) -> Published {
    assert!(layer_size > 0, "publish_large needs a non-zero layer size");
    let publisher = Publisher::new(reg, repo_tag).await;
    let mut layers = Vec::new();
    for i in 0..layer_count {
        let seed = i as u64;
        let mut hasher = Sha256::new();
        for piece in pieces(seed, layer_size) {
            hasher.update(&piece);
        }
        let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
        let stream = futures_util::stream::iter(
            pieces(seed, layer_size).map(|piece| Ok::<_, OciDistributionError>(Bytes::from(piece))),
        );
        publisher
            .client
            .push_blob_stream(&publisher.tagged, stream, &digest, Some(layer_size))
            .await
            .unwrap_or_else(|e| panic!("push layer {i} of {}: {e}", publisher.tagged.whole()));
        layers.push(Blob {
            media_type: crate::layer::BINARY_MEDIA_TYPE.to_owned(),
            digest,
            size: layer_size,
            title: Some(format!("layer-{i}.bin")),
        });
    }
    let config = publisher.empty_config().await;
    let manifest = oci_manifest_json(&config, &layers, &BTreeMap::new());
    publisher
        .manifest(
            Target::Tag,
            OCI_MANIFEST_MEDIA_TYPE,
            &manifest,
            config,
            layers,
        )
        .await
}

/// The `size` bytes of a layer seeded with `seed`, piece by piece.
fn pieces(seed: u64, size: u64) -> impl Iterator<Item = Vec<u8>> + Send + 'static {
    let source = PseudoRandom::new(seed);
    let piece_size = PseudoRandom::PIECE as u64;
    (0..size.div_ceil(piece_size)).map(move |index| {
        let remaining = size - index * piece_size;
        let len = usize::try_from(remaining.min(piece_size)).expect("a piece fits in usize");
        source.piece(index, len)
    })
}

/// One publishing session: a client authenticated for push to one repository. Blob uploads go
/// to the repository of `tagged` (the tag plays no part in them).
struct Publisher {
    client: Client,
    host: String,
    repository: String,
    tagged: Reference,
    /// Blobs this session already pushed (the empty config recurs in every manifest).
    pushed: Mutex<HashSet<String>>,
}

/// Where a manifest goes: the session's tag, or by digest (the platform manifests of an index).
#[derive(Debug, Clone, Copy)]
enum Target {
    Tag,
    Digest,
}

impl Publisher {
    async fn new(reg: &Registry, repo_tag: &str) -> Self {
        install_crypto_provider();
        // Monolithic uploads (POST + PUT) cost a request less per blob than chunked ones.
        let client = Client::try_from(ClientConfig {
            use_monolithic_push: true,
            ..client_config(reg)
        })
        .expect("build an oci-client client");
        let reference_text = reg.reference(repo_tag);
        let tagged: Reference = reference_text
            .parse()
            .unwrap_or_else(|e| panic!("invalid fixture reference {reference_text}: {e}"));
        assert!(
            tagged.tag().is_some() && tagged.digest().is_none(),
            "fixture references need a tag: {reference_text}"
        );
        client
            .auth(&tagged, &registry_auth(reg), RegistryOperation::Push)
            .await
            .unwrap_or_else(|e| panic!("authenticate to {}: {e}", reg.host()));
        Self {
            client,
            host: reg.host(),
            repository: tagged.repository().to_owned(),
            tagged,
            pushed: Mutex::new(HashSet::new()),
        }
    }

    async fn blob(&self, media_type: &str, title: Option<&str>, data: &[u8]) -> Blob {
        let digest = sha256_digest(data);
        let new = self
            .pushed
            .lock()
            .expect("pushed-blob set")
            .insert(digest.clone());
        if new {
            let pushed = if data.is_empty() {
                // A monolithic push refuses empty data; an empty stream with a known size works.
                self.client
                    .push_blob_stream(
                        &self.tagged,
                        futures_util::stream::empty(),
                        &digest,
                        Some(0),
                    )
                    .await
            } else {
                self.client
                    .push_blob(&self.tagged, data.to_vec(), &digest)
                    .await
            };
            pushed.unwrap_or_else(|e| panic!("push blob {digest} to {}: {e}", self.repository));
        }
        Blob {
            media_type: media_type.to_owned(),
            digest,
            size: data.len() as u64,
            title: title.map(str::to_owned),
        }
    }

    async fn empty_config(&self) -> Blob {
        let config = self.blob(EMPTY_CONFIG_MEDIA_TYPE, None, EMPTY_CONFIG).await;
        debug_assert_eq!(config.digest, EMPTY_CONFIG_DIGEST);
        config
    }

    /// Pushes the layers and an OCI manifest for them.
    async fn oci_manifest(
        &self,
        target: Target,
        layers: &[LayerSpec],
        annotations: &BTreeMap<String, String>,
    ) -> Published {
        let config = self.empty_config().await;
        let mut blobs = Vec::new();
        for layer in layers {
            blobs.push(
                self.blob(&layer.media_type, layer.title.as_deref(), &layer.data)
                    .await,
            );
        }
        let manifest = oci_manifest_json(&config, &blobs, annotations);
        self.manifest(target, OCI_MANIFEST_MEDIA_TYPE, &manifest, config, blobs)
            .await
    }

    async fn manifest(
        &self,
        target: Target,
        media_type: &str,
        json: &Value,
        config: Blob,
        layers: Vec<Blob>,
    ) -> Published {
        let raw = serde_json::to_vec(json).expect("encode JSON");
        let digest = sha256_digest(&raw);
        let target = match target {
            Target::Tag => self.tagged.clone(),
            Target::Digest => {
                Reference::with_digest(self.host.clone(), self.repository.clone(), digest.clone())
            }
        };
        self.push_raw(&target, media_type, &raw).await;
        Published {
            reference: target.whole(),
            media_type: media_type.to_owned(),
            digest,
            size: raw.len() as u64,
            raw,
            config,
            layers,
        }
    }

    async fn index(
        &self,
        media_type: &str,
        json: &Value,
        platforms: Vec<PublishedPlatform>,
    ) -> PublishedIndex {
        let raw = serde_json::to_vec(json).expect("encode JSON");
        self.push_raw(&self.tagged, media_type, &raw).await;
        PublishedIndex {
            reference: self.tagged.whole(),
            media_type: media_type.to_owned(),
            digest: sha256_digest(&raw),
            size: raw.len() as u64,
            raw,
            platforms,
        }
    }

    async fn push_raw(&self, target: &Reference, media_type: &str, raw: &[u8]) {
        let content_type = media_type
            .parse()
            .unwrap_or_else(|e| panic!("media type {media_type} as a header value: {e}"));
        self.client
            .push_manifest_raw(target, raw.to_vec(), content_type)
            .await
            .unwrap_or_else(|e| panic!("push manifest {}: {e}", target.whole()));
    }
}

fn oci_manifest_json(
    config: &Blob,
    layers: &[Blob],
    annotations: &BTreeMap<String, String>,
) -> Value {
    let mut manifest = Map::new();
    manifest.insert("schemaVersion".into(), json!(2));
    manifest.insert("mediaType".into(), json!(OCI_MANIFEST_MEDIA_TYPE));
    if let Some(first) = layers.first() {
        manifest.insert("artifactType".into(), json!(first.media_type));
    }
    manifest.insert(
        "config".into(),
        json!({
            "mediaType": config.media_type,
            "digest": config.digest,
            "size": config.size,
            "data": "e30=",
        }),
    );
    manifest.insert(
        "layers".into(),
        Value::Array(layers.iter().map(oci_descriptor).collect()),
    );
    if !annotations.is_empty() {
        manifest.insert("annotations".into(), json!(annotations));
    }
    Value::Object(manifest)
}

fn oci_descriptor(blob: &Blob) -> Value {
    let mut descriptor = Map::new();
    descriptor.insert("mediaType".into(), json!(blob.media_type));
    descriptor.insert("digest".into(), json!(blob.digest));
    descriptor.insert("size".into(), json!(blob.size));
    if let Some(title) = &blob.title {
        descriptor.insert("annotations".into(), json!({ TITLE: title }));
    }
    Value::Object(descriptor)
}

fn docker_descriptor(blob: &Blob) -> Value {
    let mut descriptor = Map::new();
    descriptor.insert("mediaType".into(), json!(blob.media_type));
    descriptor.insert("size".into(), json!(blob.size));
    descriptor.insert("digest".into(), json!(blob.digest));
    if let Some(title) = &blob.title {
        descriptor.insert("annotations".into(), json!({ TITLE: title }));
    }
    Value::Object(descriptor)
}

fn platform_json(os: &str, architecture: &str, variant: Option<&str>) -> Value {
    let mut platform = Map::new();
    platform.insert("architecture".into(), json!(architecture));
    platform.insert("os".into(), json!(os));
    if let Some(variant) = variant {
        platform.insert("variant".into(), json!(variant));
    }
    Value::Object(platform)
}

/// `os/arch[/variant]` → parts; panics on anything else.
fn split_platform(platform: &str) -> (String, String, Option<String>) {
    let parts: Vec<&str> = platform.split('/').collect();
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => {
            ((*os).to_owned(), (*arch).to_owned(), None)
        }
        [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => (
            (*os).to_owned(),
            (*arch).to_owned(),
            Some((*variant).to_owned()),
        ),
        _ => panic!("fixture platform must be os/arch[/variant], got {platform:?}"),
    }
}

fn sorted(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_layers_equal_their_one_shot_form() {
        let size = 2 * PseudoRandom::PIECE + 3;
        let streamed: Vec<u8> = pieces(1, size as u64).flatten().collect();
        let expected = LayerSpec::pseudo_random("x", 1, size).data;
        assert!(streamed == expected, "streamed bytes differ");
    }
}
