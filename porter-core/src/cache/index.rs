//! The typed model of a layout's `index.json`.
//!
//! Other tools write `index.json` too (skopeo, oras, crane, the Go plugin, older ds-porter), so
//! everything this model does not name is kept: unknown top-level fields, unknown descriptor
//! fields, and whole entries it cannot read (a digest algorithm the engine does not support) are
//! written back as they were read, in their order.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::manifest::{ANNOTATION_REF_NAME, Descriptor, OCI_INDEX};

/// `index.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ImageIndex {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<IndexEntry>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

impl Default for ImageIndex {
    /// An empty OCI image index.
    fn default() -> Self {
        ImageIndex {
            schema_version: 2,
            media_type: Some(OCI_INDEX.to_owned()),
            manifests: Vec::new(),
            other: Map::new(),
        }
    }
}

/// One entry of `manifests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub(crate) enum IndexEntry {
    /// A descriptor the engine reads, with the fields it does not know.
    Known {
        #[serde(flatten)]
        descriptor: Descriptor,
        #[serde(flatten)]
        other: Map<String, Value>,
    },
    /// Anything else, kept as it was.
    Foreign(Value),
}

impl IndexEntry {
    /// The descriptor, when the engine can read the entry.
    pub(crate) fn descriptor(&self) -> Option<&Descriptor> {
        match self {
            IndexEntry::Known { descriptor, .. } => Some(descriptor),
            IndexEntry::Foreign(_) => None,
        }
    }

    /// The `org.opencontainers.image.ref.name` annotation.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            IndexEntry::Known { descriptor, .. } => descriptor
                .annotations
                .get(ANNOTATION_REF_NAME)
                .map(String::as_str),
            IndexEntry::Foreign(value) => {
                value.get("annotations")?.get(ANNOTATION_REF_NAME)?.as_str()
            }
        }
    }
}

impl ImageIndex {
    /// Every entry, in file order.
    pub(crate) fn entries(&self) -> &[IndexEntry] {
        &self.manifests
    }

    /// The descriptors the engine can read, in file order.
    pub(crate) fn descriptors(&self) -> impl Iterator<Item = &Descriptor> {
        self.manifests.iter().filter_map(IndexEntry::descriptor)
    }

    /// The descriptor named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<&Descriptor> {
        self.manifests
            .iter()
            .find(|e| e.name() == Some(name))
            .and_then(IndexEntry::descriptor)
    }

    /// Names `desc` as `name`: replaces every earlier entry of that name and appends one that
    /// carries no platform and only the name annotation.
    pub(crate) fn set(&mut self, name: &str, desc: &Descriptor) {
        self.manifests.retain(|e| e.name() != Some(name));
        let mut descriptor = desc.clone();
        descriptor.platform = None;
        descriptor.annotations = [(ANNOTATION_REF_NAME.to_owned(), name.to_owned())].into();
        self.manifests.push(IndexEntry::Known {
            descriptor,
            other: Map::new(),
        });
    }

    /// Drops the entries `remove` selects; returns how many.
    pub(crate) fn remove(&mut self, remove: impl Fn(&IndexEntry) -> bool) -> usize {
        let before = self.manifests.len();
        self.manifests.retain(|e| !remove(e));
        before - self.manifests.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    #[test]
    fn fields_and_entries_other_tools_wrote_are_kept() {
        let known = Digest::of(b"known");
        let text = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"m","digest":"{known}","size":5,"annotations":{{"{ANNOTATION_REF_NAME}":"a:1"}},"urls":["https://x"]}},{{"mediaType":"m","digest":"sha512:abcd","size":1,"annotations":{{"{ANNOTATION_REF_NAME}":"b:1"}}}}],"annotations":{{"k":"v"}}}}"#
        );
        let mut index: ImageIndex = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&index).unwrap(), text);
        assert_eq!(index.find("a:1").unwrap().digest, known);
        assert!(index.find("b:1").is_none(), "sha512 is not readable");
        assert_eq!(index.entries()[1].name(), Some("b:1"));

        let other = Digest::of(b"other");
        let desc = Descriptor {
            media_type: "m".into(),
            digest: other.clone(),
            size: 5,
            artifact_type: None,
            platform: None,
            annotations: [("x".to_owned(), "y".to_owned())].into(),
        };
        index.set("a:1", &desc);
        let names: Vec<_> = index.entries().iter().map(IndexEntry::name).collect();
        assert_eq!(names, [Some("b:1"), Some("a:1")]);
        let found = index.find("a:1").unwrap();
        assert_eq!(found.digest, other);
        assert_eq!(found.annotations.len(), 1, "only the name annotation");
        let written = serde_json::to_string(&index).unwrap();
        assert!(written.contains(r#""annotations":{"k":"v"}"#), "{written}");
        assert!(written.contains(r#""digest":"sha512:abcd""#), "{written}");
        assert_eq!(index.remove(|e| e.name() == Some("b:1")), 1);
        assert_eq!(index.descriptors().count(), 1);
    }

    #[test]
    fn the_empty_index_is_an_oci_index() {
        assert_eq!(
            serde_json::to_string(&ImageIndex::default()).unwrap(),
            format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#)
        );
    }
}
