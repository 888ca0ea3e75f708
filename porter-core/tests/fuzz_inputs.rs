//! Property tests of everything porter-core parses from the outside — host-config JSON,
//! `ds.manifest.yaml`, references, platforms, digests, manifests — and of archive extraction.
//!
//! Properties: no input makes a parser panic (a bad input is an `Err` naming it), and no archive
//! makes an export write outside its destination. Each suite runs a fixed number of cases with
//! no persisted failures, so CI time is bounded and the tree is not written to; a failure
//! prints its minimal input, which then becomes a regression test next to the code it attacks.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use porter_core::config::HostConfig;
use porter_core::digest::Digest;
use porter_core::export::{ExportLayer, ExportLimits, ExportManifest, ExportPlan, export};
use porter_core::manifest::{self, PlatformRequest};
use porter_core::manifest_file::ReleaseManifest;
use porter_core::platform;
use porter_core::reference::ArtifactRef;
use proptest::prelude::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// JSON values built from the keys and shapes DS's host config uses, nested a few levels.
fn host_config_json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop_oneof![
        Just("Cache".to_owned()),
        Just("Dir".to_owned()),
        Just("TTL".to_owned()),
        Just("MaxSize".to_owned()),
        Just("Registry".to_owned()),
        Just("Default".to_owned()),
        Just("Mirrors".to_owned()),
        Just("InsecureRegistries".to_owned()),
        Just("Auth".to_owned()),
        Just("Credentials".to_owned()),
        Just("Username".to_owned()),
        Just("Password".to_owned()),
        Just("Token".to_owned()),
        Just("Proxy".to_owned()),
        Just("HTTPSProxy".to_owned()),
        Just("Logging".to_owned()),
        Just("Level".to_owned()),
        Just("Settings".to_owned()),
        Just("porter".to_owned()),
        Just("settings".to_owned()),
        "[a-zA-Z_]{0,12}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        "\\PC{0,24}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::from("1h30m")),
        Just(serde_json::Value::from("10GB")),
        Just(serde_json::Value::from("~/x")),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|pairs| serde_json::Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Text that looks like a reference: registries, paths, tags, digests, `oci:` layouts, junk.
fn reference_text() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        "[a-z0-9]{1,8}",
        Just("localhost".to_owned()),
        Just("127.0.0.1:5000".to_owned()),
        Just("oci:".to_owned()),
        Just("..".to_owned()),
        Just("@sha256:".to_owned()),
        "[0-9a-f]{64}",
        Just(":".to_owned()),
        Just("/".to_owned()),
        Just("@".to_owned()),
        "\\PC{0,6}",
    ];
    prop::collection::vec(part, 0..8).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn host_config_json_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = HostConfig::from_json(&bytes);
    }

    #[test]
    fn host_config_json_never_panics_on_json(value in host_config_json()) {
        let text = serde_json::to_vec(&value).unwrap();
        if let Ok(config) = HostConfig::from_json(&text) {
            // Whatever decodes also resolves without panicking.
            let _ = format!("{config:?}");
        }
        // Truncations of valid JSON are errors, never panics.
        for cut in [1, text.len() / 2, text.len().saturating_sub(1)] {
            let _ = HostConfig::from_json(&text[..cut.min(text.len())]);
        }
    }

    #[test]
    fn release_manifest_parse_never_panics(text in "\\PC{0,300}") {
        let dir = std::env::temp_dir();
        let _ = ReleaseManifest::parse(&text, "fuzz.yaml", &dir);
    }

    #[test]
    fn release_manifest_yaml_shapes_never_panic(
        lines in prop::collection::vec(
            prop_oneof![
                Just("artifactType: application/x".to_owned()),
                Just("mediaType: application/vnd.delivery-station.artifact.v1+binary".to_owned()),
                Just("platforms:".to_owned()),
                Just("artifacts:".to_owned()),
                Just("  - platform: linux/amd64".to_owned()),
                Just("  - platform: linux/arm64/v8".to_owned()),
                Just("  - platform: ''".to_owned()),
                Just("    path: bin/tool".to_owned()),
                Just("    path: ../../etc/passwd".to_owned()),
                Just("    path: [1, 2]".to_owned()),
                Just("    annotations: {a: b}".to_owned()),
                Just("  - {platform: 1, path: 2}".to_owned()),
                Just("- !!binary aGVsbG8=".to_owned()),
                Just("&a [*a]".to_owned()),
                "[ \\-:a-z{}\\[\\]'\"!&*]{0,30}",
            ],
            0..12,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let _ = ReleaseManifest::parse(&lines.join("\n"), "fuzz.yaml", dir.path());
    }

    #[test]
    fn references_never_panic(text in reference_text(), default in "[a-z./:]{0,20}") {
        if let Ok(reference) = ArtifactRef::parse_with_default(&text, &default) {
            let _ = (reference.cache_name(), reference.base_name(), reference.digest());
        }
    }

    #[test]
    fn platforms_never_panic(values in prop::collection::vec("[a-z0-9/,]{0,20}|\\PC{0,10}", 0..4)) {
        let _ = platform::parse_list(values.iter().map(String::as_str));
    }

    #[test]
    fn digests_never_panic(text in "(sha256:|sha512:|)[0-9a-fA-F]{0,70}|\\PC{0,20}") {
        let _ = text.parse::<Digest>();
    }

    #[test]
    fn manifest_documents_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..256),
            host_config_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
            Just(br#"{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:0","size":-1}]}"#.to_vec()),
            Just(br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":null,"layers":[null]}"#.to_vec()),
        ]
    ) {
        let digest = Digest::of(&bytes);
        if let Ok(media_type) = manifest::detect_media_type(&bytes, None, &digest)
            && let Ok(manifest::Node::Index(index)) = manifest::parse(&bytes, &media_type, &digest)
        {
            let _ = manifest::select_children(&index, None, &PlatformRequest::All);
        }
    }
}

// --- extraction

/// One archive entry as a hostile archive could write it: raw name bytes, a type flag, a link
/// target and content.
#[derive(Debug, Clone)]
struct RawEntry {
    name: String,
    kind: u8,
    link: String,
    data: Vec<u8>,
}

fn entry_name() -> impl Strategy<Value = String> {
    // Mostly ordinary names, so hostile entries also come after ones that were written (a
    // symlink first, then a write through it).
    let component = prop_oneof![
        6 => prop_oneof![Just("a"), Just("b"), Just("link"), Just("outside")].prop_map(str::to_owned),
        2 => "[a-z]{1,3}",
        1 => Just("..".to_owned()),
        1 => Just(".".to_owned()),
        1 => prop_oneof![Just(""), Just("C:"), Just("a\\..\\.."), Just("x\0y")].prop_map(str::to_owned),
    ];
    (
        prop::bool::weighted(0.1),
        prop::collection::vec(component, 1..4),
    )
        .prop_map(|(absolute, parts)| {
            format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"))
        })
}

fn raw_entry() -> impl Strategy<Value = RawEntry> {
    (
        entry_name(),
        prop_oneof![4 => Just(b'0'), 2 => Just(b'5'), 3 => Just(b'2'), 2 => Just(b'1'), 1 => Just(b'3'), 1 => Just(b'6'), 1 => Just(b'x')],
        prop_oneof![
            entry_name(),
            Just("/tmp".to_owned()),
            Just("..".to_owned()),
            Just("../outside".to_owned()),
            Just("../outside/victim".to_owned()),
        ],
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(name, kind, link, data)| RawEntry { name, kind, link, data })
}

/// A tar stream written byte by byte, so names the `tar` crate would refuse to write (`..`,
/// absolute, NUL) reach the extractor as a hostile archive would deliver them.
fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let mut header = [0u8; 512];
        let name = entry.name.as_bytes();
        header[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
        header[100..107].copy_from_slice(b"0000644");
        header[108..115].copy_from_slice(b"0000000");
        header[116..123].copy_from_slice(b"0000000");
        let size = if entry.kind == b'0' {
            entry.data.len()
        } else {
            0
        };
        header[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        header[136..147].copy_from_slice(b"00000000000");
        header[156] = entry.kind;
        let link = entry.link.as_bytes();
        header[157..157 + link.len().min(100)].copy_from_slice(&link[..link.len().min(100)]);
        header[257..263].copy_from_slice(b"ustar\0");
        header[263..265].copy_from_slice(b"00");
        header[148..156].copy_from_slice(b"        ");
        let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
        header[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&header);
        if size > 0 {
            out.extend_from_slice(&entry.data);
            out.resize(out.len().div_ceil(512) * 512, 0);
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// Every path under `root`, not following symlinks.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path.clone());
            }
            out.push(path);
            assert!(out.len() < 10_000);
        }
    }
    out
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn extraction_never_writes_outside_the_destination(
        entries in prop::collection::vec(raw_entry(), 1..8),
        compressed in any::<bool>(),
    ) {
        let sandbox = tempfile::tempdir().unwrap();
        let outside = sandbox.path().join("outside");
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("victim"), b"untouched").unwrap();
        let tar = raw_tar(&entries);
        let (blob, media_type) = if compressed {
            (gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip")
        } else {
            (tar, "application/vnd.oci.image.layer.v1.tar")
        };
        let blob_path = sandbox.path().join("blob");
        fs::write(&blob_path, &blob).unwrap();
        let destination = sandbox.path().join("dest");
        let plan = ExportPlan {
            destination: destination.clone(),
            subdirs: false,
            manifests: vec![ExportManifest {
                platform: None,
                layers: vec![ExportLayer {
                    media_type: media_type.into(),
                    digest: Digest::of(&blob),
                    title: None,
                    blob_path: blob_path.clone(),
                    size: blob.len() as u64,
                    verified: false,
                }],
            }],
            fallback_name: "tool".into(),
            limits: ExportLimits { max_total_bytes: 1 << 20, max_entries: 64, max_entry_bytes: 1 << 16 },
            cancel: Default::default(),
        };
        let result = export(&plan);
        if let Err(e) = &result {
            prop_assert!(!e.to_string().is_empty());
        }
        prop_assert_eq!(fs::read(outside.join("victim")).unwrap(), b"untouched".to_vec());
        for path in tree(sandbox.path()) {
            prop_assert!(
                path.starts_with(&destination) || path == blob_path || path == outside
                    || path == outside.join("victim"),
                "{} written outside the destination ({result:?}) by {entries:?}",
                path.display()
            );
        }
    }
}
