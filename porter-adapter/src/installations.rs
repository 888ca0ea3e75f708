//! The installation store: Porter installations by namespace and name.
//!
//! The Go store kept `<dir>/<namespace>/<name>.json` with unsanitised names (a name like
//! `../../x` wrote outside the store) and an in-process lock only. Here names are validated
//! before anything is touched, records live in the SQLite store, and every change is a
//! transaction, so concurrent processes neither lose an update nor see half of one.
//! Credentials are stored (the file is private to its owner) but never appear in `Debug`
//! output or logs.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::store::{self, Store, now_ms, time_of};

/// Characters of a namespace or name at most.
pub const MAX_NAME_CHARS: usize = 128;

/// A Porter installation, as the Go adapter's `Installation` serialises it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Installation {
    /// Identifier; generated on the first save when empty.
    #[serde(default)]
    pub id: String,
    /// Namespace; empty for the global namespace.
    #[serde(default)]
    pub namespace: String,
    /// Name, unique within the namespace.
    pub name: String,
    /// The bundle reference.
    #[serde(default)]
    pub bundle: String,
    /// Free-form status (`installed`, `failed`, …).
    #[serde(default)]
    pub status: String,
    /// When it was first saved (kept by later saves).
    pub created: DateTime<Utc>,
    /// When it was last saved.
    pub modified: DateTime<Utc>,
    /// Parameter values.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub parameters: Map<String, Value>,
    /// Credential values; never shown by `Debug`.
    #[serde(default, skip_serializing_if = "Credentials::is_empty")]
    pub credentials: Credentials,
    /// Outputs.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub outputs: Map<String, Value>,
}

impl Installation {
    /// A new installation in `namespace` named `name` of `bundle`, created now.
    pub fn new(namespace: &str, name: &str, bundle: &str) -> Self {
        let now = time_of(now_ms());
        Installation {
            id: String::new(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            bundle: bundle.to_owned(),
            status: String::new(),
            created: now,
            modified: now,
            parameters: Map::new(),
            credentials: Credentials::default(),
            outputs: Map::new(),
        }
    }
}

/// Credential names and values. `Debug` lists the names only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Credentials(BTreeMap<String, String>);

impl Credentials {
    /// Sets a credential.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// A credential's value; call only where it is used.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Removes a credential; whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.0.remove(name).is_some()
    }

    /// Credential names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Credentials {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Credentials(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.keys().map(|k| (k, "<redacted>")))
            .finish()
    }
}

/// Checks a namespace (`allow_empty`) or name: 1–128 ASCII letters, digits, `.`, `_` or `-`,
/// starting with a letter or digit. No separators, no `..`, nothing a path could be made of.
pub fn validate_name(what: &str, value: &str, allow_empty: bool) -> Result<()> {
    if value.is_empty() && allow_empty {
        return Ok(());
    }
    let valid = !value.is_empty()
        && value.len() <= MAX_NAME_CHARS
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid installation {what} {value:?}: use 1-{MAX_NAME_CHARS} letters, digits, '.', \
             '_' or '-', starting with a letter or digit"
        )))
    }
}

fn display_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

const COLUMNS: &str =
    "namespace, name, id, bundle, status, created, modified, parameters, credentials, outputs";

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    String,
    String,
    String,
);

fn row_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
    ))
}

fn into_installation(row: Row) -> Result<Installation> {
    let (namespace, name, id, bundle, status, created, modified, parameters, credentials, outputs) =
        row;
    Ok(Installation {
        id,
        namespace,
        name,
        bundle,
        status,
        created: time_of(created),
        modified: time_of(modified),
        parameters: store::from_json(&parameters, "installation parameters")?,
        credentials: store::from_json(&credentials, "installation credentials")?,
        outputs: store::from_json(&outputs, "installation outputs")?,
    })
}

fn select(tx: &rusqlite::Connection, namespace: &str, name: &str) -> Result<Option<Installation>> {
    tx.query_row(
        &format!("SELECT {COLUMNS} FROM installations WHERE namespace = ?1 AND name = ?2"),
        params![namespace, name],
        row_of,
    )
    .optional()?
    .map(into_installation)
    .transpose()
}

/// Writes `installation` as is (validated), keeping `created` of an existing record and
/// stamping `modified`.
fn upsert(tx: &rusqlite::Transaction<'_>, mut installation: Installation) -> Result<Installation> {
    validate_name("namespace", &installation.namespace, true)?;
    validate_name("name", &installation.name, false)?;
    if installation.id.is_empty() {
        installation.id = new_id();
    }
    let now = now_ms();
    let existing: Option<i64> = tx
        .query_row(
            "SELECT created FROM installations WHERE namespace = ?1 AND name = ?2",
            params![installation.namespace, installation.name],
            |row| row.get(0),
        )
        .optional()?;
    let created = existing.unwrap_or_else(|| installation.created.timestamp_millis());
    let parameters = store::to_json(&Value::Object(installation.parameters.clone()));
    let credentials = serde_json::to_string(&installation.credentials).unwrap_or_default();
    let outputs = store::to_json(&Value::Object(installation.outputs.clone()));
    tx.execute(
        &format!(
            "INSERT OR REPLACE INTO installations ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ),
        params![
            installation.namespace,
            installation.name,
            installation.id,
            installation.bundle,
            installation.status,
            created,
            now,
            parameters,
            credentials,
            outputs
        ],
    )?;
    installation.created = time_of(created);
    installation.modified = time_of(now);
    Ok(installation)
}

/// A random 128-bit identifier in hex.
fn new_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

impl Store {
    pub(crate) fn save_installation(&self, installation: Installation) -> Result<Installation> {
        validate_name("namespace", &installation.namespace, true)?;
        validate_name("name", &installation.name, false)?;
        self.write(|tx| upsert(tx, installation), |_| {})
    }

    pub(crate) fn get_installation(&self, namespace: &str, name: &str) -> Result<Installation> {
        validate_name("namespace", namespace, true)?;
        validate_name("name", name, false)?;
        self.read(|conn| select(conn, namespace, name))?
            .ok_or_else(|| Error::not_found("installation", display_key(namespace, name)))
    }

    pub(crate) fn list_installations(&self, namespace: &str) -> Result<Vec<Installation>> {
        validate_name("namespace", namespace, true)?;
        self.read(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {COLUMNS} FROM installations WHERE namespace = ?1 ORDER BY name"
            ))?;
            let rows = stmt.query_map(params![namespace], row_of)?;
            rows.map(|row| into_installation(row?)).collect()
        })
    }

    pub(crate) fn delete_installation(&self, namespace: &str, name: &str) -> Result<()> {
        validate_name("namespace", namespace, true)?;
        validate_name("name", name, false)?;
        let deleted = self.write(
            |tx| {
                Ok(tx.execute(
                    "DELETE FROM installations WHERE namespace = ?1 AND name = ?2",
                    params![namespace, name],
                )?)
            },
            |_| {},
        )?;
        if deleted == 0 {
            return Err(Error::not_found(
                "installation",
                display_key(namespace, name),
            ));
        }
        Ok(())
    }

    /// Applies `f` to the stored installation and saves the result, atomically. `f` may not
    /// move the installation to another namespace or name.
    pub(crate) fn update_installation(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut Installation),
    ) -> Result<Installation> {
        validate_name("namespace", namespace, true)?;
        validate_name("name", name, false)?;
        self.write(
            |tx| {
                let mut installation = select(tx, namespace, name)?
                    .ok_or_else(|| Error::not_found("installation", display_key(namespace, name)))?;
                f(&mut installation);
                if installation.namespace != namespace || installation.name != name {
                    return Err(Error::invalid(format!(
                        "an update may not rename installation {}; save a new one and delete this one",
                        display_key(namespace, name)
                    )));
                }
                upsert(tx, installation)
            },
            |_| {},
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn names_that_could_become_paths_are_refused() {
        for bad in [
            "", "..", ".", "../x", "a/b", "a\\b", "-x", ".hidden", "a b", "a\0b", "naïve", "x:y",
            "%2e%2e",
        ] {
            let err = validate_name("name", bad, false).unwrap_err();
            assert_eq!(err.code(), "invalid_input", "{bad:?}");
            assert!(
                err.to_string().contains("invalid installation name"),
                "{err}"
            );
        }
        for good in ["a", "my-app", "App_1.2", "0"] {
            validate_name("name", good, false).unwrap();
        }
        validate_name("namespace", "", true).unwrap();
        let long = "a".repeat(MAX_NAME_CHARS + 1);
        assert!(validate_name("name", &long, false).is_err());
        validate_name("name", &long[1..], false).unwrap();
    }

    #[test]
    fn credentials_debug_shows_names_only() {
        let mut installation = Installation::new("ns", "app", "bundle:1");
        installation
            .credentials
            .insert("kubeconfig", "hunter2-secret");
        installation.credentials.insert("token", "hunter2-token");
        for text in [format!("{installation:?}"), format!("{installation:#?}")] {
            assert!(!text.contains("hunter2"), "{text}");
            assert!(
                text.contains("kubeconfig") && text.contains("<redacted>"),
                "{text}"
            );
        }
        // Serialisation keeps the values: it is how the store and callers get them back.
        let json = serde_json::to_string(&installation).unwrap();
        assert!(json.contains("hunter2-secret"));
    }
}
