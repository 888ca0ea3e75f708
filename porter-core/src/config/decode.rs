//! A tolerant, case-insensitive reader over `serde_json::Value`.
//!
//! Go's JSON decoder matches keys case-insensitively and lets `null` leave a field untouched;
//! viper does the same for DS's YAML file. Serde's derive cannot express that, so config
//! documents are parsed into a `Value` and read field by field here, each error naming the
//! field's path (`Registry.Mirrors: expected an array of strings, found a number`).

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value};

use super::units::{parse_duration, parse_size};
use crate::error::{Error, Result};

/// Largest config document accepted (host JSON, YAML file, docker `config.json`).
pub(super) const MAX_CONFIG_BYTES: usize = 4 << 20;

/// Which spelling of field names a document uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    /// Go field names (`InsecureRegistries`); numbers for `TTL` are nanoseconds.
    Json,
    /// DS's YAML keys (`insecure_registries`); numbers for `ttl` are seconds, and scalars are
    /// accepted where text is expected, as viper's weak decoding does.
    Yaml,
}

/// A non-null value inside a document, with its path for error messages.
#[derive(Debug, Clone)]
pub(super) struct Node<'a> {
    value: &'a Value,
    path: String,
    dialect: Dialect,
}

/// An object inside a document.
#[derive(Debug, Clone)]
pub(super) struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    dialect: Dialect,
}

/// Rejects a document larger than [`MAX_CONFIG_BYTES`].
pub(super) fn check_size(len: usize, source_name: &str) -> Result<()> {
    if len > MAX_CONFIG_BYTES {
        return Err(Error::Config {
            source_name: source_name.to_owned(),
            reason: format!(
                "document is larger than the {} MiB limit",
                MAX_CONFIG_BYTES >> 20
            ),
        });
    }
    Ok(())
}

/// Reads a config file of at most [`MAX_CONFIG_BYTES`]; `Ok(None)` when it does not exist.
pub(super) fn read_file_if_exists(path: &Path, action: &'static str) -> Result<Option<Vec<u8>>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(Error::io(action, path, err)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| Error::io(action, path, err))?;
    check_size(bytes.len(), &path.display().to_string())?;
    Ok(Some(bytes))
}

/// Describes a value's JSON type for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Node<'a> {
    /// The document root; `None` when it is `null` (an empty document).
    pub(super) fn root(value: &'a Value, dialect: Dialect) -> Option<Self> {
        (!value.is_null()).then(|| Node {
            value,
            path: String::new(),
            dialect,
        })
    }

    fn error(&self, expected: &str) -> String {
        let found = kind(self.value);
        if self.path.is_empty() {
            format!("expected {expected}, found {found}")
        } else {
            format!("{}: expected {expected}, found {found}", self.path)
        }
    }

    /// This value as an object.
    pub(super) fn object(&self) -> Result<Obj<'a>, String> {
        match self.value {
            Value::Object(map) => Ok(Obj {
                map,
                path: self.path.clone(),
                dialect: self.dialect,
            }),
            _ => Err(self.error("an object")),
        }
    }

    /// This value as text; YAML scalars (numbers, booleans) are turned into text.
    pub(super) fn string(&self) -> Result<String, String> {
        match (self.value, self.dialect) {
            (Value::String(text), _) => Ok(text.clone()),
            (Value::Number(n), Dialect::Yaml) => Ok(n.to_string()),
            (Value::Bool(b), Dialect::Yaml) => Ok(b.to_string()),
            _ => Err(self.error("a string")),
        }
    }

    /// This value as a boolean (YAML also accepts the text `true`/`false`).
    pub(super) fn boolean(&self) -> Result<bool, String> {
        match (self.value, self.dialect) {
            (Value::Bool(b), _) => Ok(*b),
            (Value::String(text), Dialect::Yaml) if text.eq_ignore_ascii_case("true") => Ok(true),
            (Value::String(text), Dialect::Yaml) if text.eq_ignore_ascii_case("false") => Ok(false),
            _ => Err(self.error("a boolean")),
        }
    }

    /// The elements of an array, `null` elements skipped.
    pub(super) fn elements(&self, expected: &str) -> Result<Vec<Node<'a>>, String> {
        let Value::Array(items) = self.value else {
            return Err(self.error(expected));
        };
        Ok(items
            .iter()
            .enumerate()
            .filter(|(_, value)| !value.is_null())
            .map(|(index, value)| Node {
                value,
                path: format!("{}[{index}]", self.path),
                dialect: self.dialect,
            })
            .collect())
    }

    /// An array of strings.
    pub(super) fn strings(&self) -> Result<Vec<String>, String> {
        self.elements("an array of strings")?
            .iter()
            .map(Node::string)
            .collect()
    }

    /// A whole number: an integer, or a float with an integral value.
    fn whole_number(&self, expected: &str) -> Result<u64, String> {
        let Value::Number(number) = self.value else {
            return Err(self.error(expected));
        };
        if let Some(n) = number.as_u64() {
            return Ok(n);
        }
        match number.as_f64() {
            // `u64::MAX as f64` rounds up to 2^64, so the comparison is strict.
            Some(f) if f >= 0.0 && f.fract() == 0.0 && f < u64::MAX as f64 => Ok(f as u64),
            _ => Err(format!(
                "{}: expected {expected}, found {number}",
                self.path
            )),
        }
    }

    /// A byte size: a whole number of bytes, or text like `10GB`.
    pub(super) fn size(&self) -> Result<u64, String> {
        match self.value {
            Value::String(text) => {
                parse_size(text).map_err(|reason| format!("{}: {reason}", self.path))
            }
            _ => self.whole_number("a number of bytes or a size like 10GB"),
        }
    }

    /// A duration: text like `7d`, or a whole number of nanoseconds (JSON, Go's
    /// `time.Duration`) or seconds (YAML).
    pub(super) fn duration(&self) -> Result<Duration, String> {
        if let Value::String(text) = self.value {
            return parse_duration(text).map_err(|reason| format!("{}: {reason}", self.path));
        }
        match self.dialect {
            Dialect::Json => self
                .whole_number("a number of nanoseconds or a duration like 7d")
                .map(Duration::from_nanos),
            Dialect::Yaml => self
                .whole_number("a number of seconds or a duration like 7d")
                .map(Duration::from_secs),
        }
    }
}

impl<'a> Obj<'a> {
    /// The member named `go` (JSON) or `yaml` (YAML), compared case-insensitively. When several
    /// keys match, the last non-null one wins, as when Go decodes them in order; `None` when
    /// absent or `null`.
    pub(super) fn get(&self, go: &str, yaml: &str) -> Option<Node<'a>> {
        let name = match self.dialect {
            Dialect::Json => go,
            Dialect::Yaml => yaml,
        };
        let value = self
            .map
            .iter()
            .rfind(|(key, value)| key.eq_ignore_ascii_case(name) && !value.is_null())?
            .1;
        let path = if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        };
        Some(Node {
            value,
            path,
            dialect: self.dialect,
        })
    }

    /// The members in document order, `null` values skipped; keys are kept as written.
    pub(super) fn members(&self) -> impl Iterator<Item = (&'a str, Node<'a>)> + '_ {
        self.map
            .iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, value)| {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                (
                    key.as_str(),
                    Node {
                        value,
                        path,
                        dialect: self.dialect,
                    },
                )
            })
    }

    /// A copy of the object.
    pub(super) fn to_map(&self) -> Map<String, Value> {
        self.map.clone()
    }

    /// A text member.
    pub(super) fn string(&self, go: &str, yaml: &str) -> Result<Option<String>, String> {
        self.get(go, yaml).map(|node| node.string()).transpose()
    }

    /// An array-of-strings member.
    pub(super) fn strings(&self, go: &str, yaml: &str) -> Result<Option<Vec<String>>, String> {
        self.get(go, yaml).map(|node| node.strings()).transpose()
    }

    /// An object member.
    pub(super) fn object(&self, go: &str, yaml: &str) -> Result<Option<Obj<'a>>, String> {
        self.get(go, yaml).map(|node| node.object()).transpose()
    }

    /// A boolean member.
    pub(super) fn boolean(&self, go: &str, yaml: &str) -> Result<Option<bool>, String> {
        self.get(go, yaml).map(|node| node.boolean()).transpose()
    }

    /// A byte-size member.
    pub(super) fn size(&self, go: &str, yaml: &str) -> Result<Option<u64>, String> {
        self.get(go, yaml).map(|node| node.size()).transpose()
    }

    /// A duration member.
    pub(super) fn duration(&self, go: &str, yaml: &str) -> Result<Option<Duration>, String> {
        self.get(go, yaml).map(|node| node.duration()).transpose()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_match_case_insensitively_and_the_last_non_null_wins() {
        let doc =
            json!({"Registry": {"Default": "a"}, "REGISTRY": null, "registry": {"default": "b"}});
        let root = Node::root(&doc, Dialect::Json).unwrap().object().unwrap();
        let registry = root.object("Registry", "registry").unwrap().unwrap();
        assert_eq!(
            registry.string("Default", "default").unwrap().as_deref(),
            Some("b")
        );
        assert!(registry.get("Mirrors", "mirrors").is_none());
    }

    #[test]
    fn yaml_names_and_weak_scalars() {
        let doc = json!({"Insecure_Registries": ["a", 5000, null], "password": 1234});
        let root = Node::root(&doc, Dialect::Yaml).unwrap().object().unwrap();
        let list = root
            .strings("InsecureRegistries", "insecure_registries")
            .unwrap();
        assert_eq!(list.unwrap(), ["a", "5000"]);
        assert_eq!(
            root.string("Password", "password").unwrap().as_deref(),
            Some("1234")
        );
        let strict = Node::root(&doc, Dialect::Json).unwrap().object().unwrap();
        assert_eq!(
            strict.string("Password", "password").unwrap_err(),
            "Password: expected a string, found a number"
        );
    }

    #[test]
    fn errors_name_the_path() {
        let doc = json!({"Auth": {"Credentials": [null, {"Username": true}]}});
        let root = Node::root(&doc, Dialect::Json).unwrap().object().unwrap();
        let auth = root.object("Auth", "auth").unwrap().unwrap();
        let items = auth
            .get("Credentials", "credentials")
            .unwrap()
            .elements("an array")
            .unwrap();
        assert_eq!(items.len(), 1);
        let reason = items[0]
            .object()
            .unwrap()
            .string("Username", "username")
            .unwrap_err();
        assert_eq!(
            reason,
            "Auth.Credentials[1].Username: expected a string, found a boolean"
        );
    }

    #[test]
    fn numbers_accept_integral_floats_only() {
        let doc = json!({"a": 10.0, "b": 1.5, "c": -1, "d": "2KB", "e": 1e300});
        let root = Node::root(&doc, Dialect::Json).unwrap().object().unwrap();
        assert_eq!(root.size("a", "a").unwrap(), Some(10));
        assert!(root.size("b", "b").unwrap_err().starts_with("b: expected"));
        assert!(root.size("c", "c").unwrap_err().starts_with("c: expected"));
        assert_eq!(root.size("d", "d").unwrap(), Some(2048));
        assert!(root.size("e", "e").is_err());
    }

    #[test]
    fn durations_depend_on_the_dialect() {
        let doc = json!({"TTL": 1_000_000_000u64, "text": "1m"});
        let json_root = Node::root(&doc, Dialect::Json).unwrap().object().unwrap();
        let yaml_root = Node::root(&doc, Dialect::Yaml).unwrap().object().unwrap();
        assert_eq!(
            json_root.duration("TTL", "ttl").unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            yaml_root.duration("TTL", "ttl").unwrap(),
            Some(Duration::from_secs(1_000_000_000))
        );
        assert_eq!(
            json_root.duration("text", "text").unwrap(),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn oversized_documents_are_rejected() {
        assert!(check_size(MAX_CONFIG_BYTES, "x").is_ok());
        let err = check_size(MAX_CONFIG_BYTES + 1, "x").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration (x): document is larger than the 4 MiB limit"
        );
    }

    #[test]
    fn missing_files_read_as_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_file_if_exists(&dir.path().join("nope"), "read")
                .unwrap()
                .is_none()
        );
        std::fs::write(dir.path().join("big"), vec![b' '; MAX_CONFIG_BYTES + 1]).unwrap();
        assert!(read_file_if_exists(&dir.path().join("big"), "read").is_err());
    }
}
