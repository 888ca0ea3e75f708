//! The committed JSON Schemas (`porter-ffi/schema`) describe exactly the members the library
//! writes: every member a result can have is a property, every member it always has is required,
//! and nothing else is allowed. (The callers' suites in `tests/` also validate real outputs
//! against these schemas with a JSON Schema validator.)
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use porter_core::artifact::PluginInfo;
use porter_core::cache::{BlobProblem, PruneReport, VerifyReport};
use porter_core::inspect::{Blob, PlatformManifest};
use porter_core::{ArtifactResult, CopyOutcome, Inspection};
use porter_ffi::TagList;
use porter_ffi::status::{Failure, porter_status};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(schema["$id"], name, "{name}: $id");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    schema
}

/// The property names and the required names of an object schema, which allows nothing else.
fn members(object: &Value) -> (BTreeSet<String>, BTreeSet<String>) {
    assert_eq!(object["type"], "object");
    assert_eq!(object["additionalProperties"], false, "{object}");
    let properties = object["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let required = object["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (properties, required)
}

fn keys(json: &str) -> BTreeSet<String> {
    let value: Value = serde_json::from_str(json).unwrap();
    value.as_object().unwrap().keys().cloned().collect()
}

fn artifact(full: bool) -> ArtifactResult {
    ArtifactResult {
        id: "0123456789abcdef".into(),
        reference: "127.0.0.1:5000/demo/tool:1.0".into(),
        digest: format!("sha256:{}", "0".repeat(64)),
        size: 500,
        local_path: if full {
            "/c/porter/0123".into()
        } else {
            String::new()
        },
        metadata: if full {
            BTreeMap::from([("k".to_owned(), "v".to_owned())])
        } else {
            BTreeMap::new()
        },
        plugin_info: full.then(|| PluginInfo {
            plugin_name: "tool".into(),
            version: "1.0".into(),
            parameters: BTreeMap::from([("p".to_owned(), "1".to_owned())]),
        }),
        cached: true,
        cached_at: porter_core::artifact::ZERO_TIME.into(),
        exported_files: if full {
            vec!["out/tool".into()]
        } else {
            Vec::new()
        },
        offline: full,
        downloaded_bytes: full.then_some(7),
        total_size: full.then_some(500),
        first_cached_at: full.then(|| porter_core::artifact::ZERO_TIME.into()),
        signatures: if full {
            vec![porter_core::signature::SignatureCheck {
                platform: "linux/amd64".into(),
                scheme: "ds".into(),
                verified: true,
                key_id: "ab".repeat(32),
            }]
        } else {
            Vec::new()
        },
    }
}

#[test]
fn artifact_and_list_schemas_name_every_member_of_an_artifact_result() {
    let schema = load("artifact.schema.json");
    let (properties, required) = members(&schema);
    let json = |full| porter_core::artifact::go_json(&artifact(full), false);
    assert_eq!(keys(&json(true)), properties);
    assert_eq!(keys(&json(false)), required);

    let (plugin_properties, plugin_required) = members(&schema["$defs"]["plugin_info"]);
    let full: Value = serde_json::from_str(&json(true)).unwrap();
    let plugin: BTreeSet<String> = full["plugin_info"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(plugin, plugin_properties);
    assert_eq!(plugin_required, BTreeSet::from(["plugin_name".to_owned()]));

    let list = load("list.schema.json");
    assert_eq!(list["type"], "array");
    assert_eq!(list["items"]["$ref"], "artifact.schema.json");
}

#[test]
fn report_schemas_name_every_member_of_the_reports() {
    let (properties, required) = members(&load("prune-report.schema.json"));
    let prune = porter_core::artifact::go_json(&PruneReport::default(), false);
    assert_eq!(keys(&prune), properties);
    assert_eq!(required, properties);

    let verify_schema = load("verify-report.schema.json");
    let (properties, required) = members(&verify_schema);
    let problem = BlobProblem {
        digest: format!("sha256:{}", "1".repeat(64)),
        needed_by: vec!["r:1".into()],
    };
    let full = VerifyReport {
        checked: 1,
        checked_bytes: 2,
        corrupt: vec![problem.clone()],
        missing: vec![problem],
        repaired: vec!["sha256:…".into()],
        unrepaired: vec!["sha256:…: gone".into()],
    };
    let full = porter_core::artifact::go_json(&full, false);
    assert_eq!(keys(&full), properties);
    let minimal = porter_core::artifact::go_json(&VerifyReport::default(), false);
    assert_eq!(keys(&minimal), required);
    let (problem_properties, problem_required) = members(&verify_schema["$defs"]["blob_problem"]);
    let full: Value = serde_json::from_str(&full).unwrap();
    let problem: BTreeSet<String> = full["corrupt"][0]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(problem, problem_properties);
    assert_eq!(problem_required, problem_properties);
}

/// The members of the object at `pointer` in `json`.
fn keys_at(json: &str, pointer: &str) -> BTreeSet<String> {
    let value: Value = serde_json::from_str(json).unwrap();
    value
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in {json}"))
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

fn inspection(full: bool) -> Inspection {
    let digest = format!("sha256:{}", "2".repeat(64));
    let annotations = || {
        if full {
            BTreeMap::from([("k".to_owned(), "v".to_owned())])
        } else {
            BTreeMap::new()
        }
    };
    let blob = Blob {
        title: full.then(|| "tool".to_owned()),
        media_type: "application/octet-stream".into(),
        digest: digest.clone(),
        size: 3,
    };
    Inspection {
        reference: "demo/tool:1.0".into(),
        resolved: "127.0.0.1:5000/demo/tool:1.0".into(),
        digest: digest.clone(),
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        size: 300,
        artifact_type: full.then(|| "application/vnd.ds.tool".to_owned()),
        annotations: annotations(),
        source: "mirror".into(),
        mirror: full.then(|| "127.0.0.1:5001".to_owned()),
        platforms: vec![PlatformManifest {
            platform: "linux/amd64".into(),
            digest,
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 400,
            artifact_type: full.then(|| "application/vnd.ds.tool".to_owned()),
            annotations: annotations(),
            config: full.then(|| blob.clone()),
            layers: full.then(|| vec![blob]),
            total_size: 406,
        }],
        total_size: 706,
        raw: bytes::Bytes::from_static(b"{}"),
    }
}

#[test]
fn inspection_schema_names_every_member_of_an_inspection() {
    let schema = load("inspection.schema.json");
    let (properties, required) = members(&schema);
    let json = |full| porter_core::artifact::go_json(&inspection(full), false);
    assert_eq!(keys(&json(true)), properties);
    assert_eq!(keys(&json(false)), required);

    let (platform_properties, platform_required) = members(&schema["$defs"]["platform_manifest"]);
    assert_eq!(keys_at(&json(true), "/platforms/0"), platform_properties);
    assert_eq!(keys_at(&json(false), "/platforms/0"), platform_required);

    let (blob_properties, blob_required) = members(&schema["$defs"]["blob"]);
    assert_eq!(
        keys_at(&json(true), "/platforms/0/layers/0"),
        blob_properties
    );
    assert_eq!(keys_at(&json(true), "/platforms/0/config"), blob_properties);
    let mut untitled = inspection(true);
    untitled.platforms[0].layers.as_mut().unwrap()[0].title = None;
    let untitled = porter_core::artifact::go_json(&untitled, false);
    assert_eq!(keys_at(&untitled, "/platforms/0/layers/0"), blob_required);

    let sources: BTreeSet<&str> = schema["properties"]["source"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        BTreeSet::from(["registry", "mirror", "layout", "cache"])
    );
}

#[test]
fn tags_schema_names_every_member_of_a_tag_list() {
    let (properties, required) = members(&load("tags.schema.json"));
    let list = |constraint: Option<&str>| TagList {
        repository: "127.0.0.1:5000/demo/tool".into(),
        constraint: constraint.map(str::to_owned),
        tags: vec!["1.0.0".into()],
    };
    let json = |constraint| porter_core::artifact::go_json(&list(constraint), false);
    assert_eq!(keys(&json(Some("^1"))), properties);
    assert_eq!(keys(&json(None)), required);
}

#[test]
fn copy_outcome_schema_names_every_member_of_a_copy_outcome() {
    let (properties, required) = members(&load("copy-outcome.schema.json"));
    let outcome = CopyOutcome {
        source: "127.0.0.1:5000/demo/tool:1.0".into(),
        destination: "oci:out:1.0".into(),
        source_digest: format!("sha256:{}", "3".repeat(64)),
        digest: format!("sha256:{}", "3".repeat(64)),
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        platforms: vec!["linux/amd64".into()],
        subset: false,
        manifests: 2,
        blobs_copied: 3,
        blobs_skipped: 0,
        blobs_mounted: 0,
        bytes_copied: 10,
        bytes_downloaded: 10,
    };
    let json = porter_core::artifact::go_json(&outcome, false);
    assert_eq!(keys(&json), properties);
    assert_eq!(required, properties);
}

#[test]
fn error_schema_lists_every_failure_kind() {
    let schema = load("error.schema.json");
    let (properties, required) = members(&schema);
    let json = Failure::new(porter_status::PORTER_NETWORK, "m").to_json();
    assert_eq!(keys(&json), properties);
    assert_eq!(required, properties);
    let kinds: BTreeSet<&str> = schema["properties"]["kind"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let failures: BTreeSet<&str> = (1..1000)
        .filter_map(porter_status::from_u32)
        .map(porter_status::name)
        .collect();
    assert_eq!(kinds, failures);
}
