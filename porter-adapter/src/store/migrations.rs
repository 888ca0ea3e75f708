//! Versioned schema migrations.
//!
//! The schema version is `PRAGMA user_version`; `MIGRATIONS[n]` takes a store from version `n`
//! to `n + 1`. Opening a store applies the missing steps in one `BEGIN IMMEDIATE` transaction,
//! so processes opening a new or old file at the same moment migrate it once, and a crash
//! mid-migration leaves the previous version intact. A store written by a newer version of this
//! crate is refused rather than misread.
//!
//! Timestamps are milliseconds since the Unix epoch; JSON documents are stored as text.

use rusqlite::{Connection, TransactionBehavior};

use crate::error::{Error, Result};

/// Version 1: key/value state (installation state and bundle metadata) and installations.
const V1: &str = "
CREATE TABLE state (
    key        TEXT    NOT NULL PRIMARY KEY,
    value      TEXT    NOT NULL,
    plugin_id  TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    expires_at INTEGER
) STRICT;
CREATE TABLE installations (
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    id          TEXT    NOT NULL,
    bundle      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    created     INTEGER NOT NULL,
    modified    INTEGER NOT NULL,
    parameters  TEXT    NOT NULL,
    credentials TEXT    NOT NULL,
    outputs     TEXT    NOT NULL,
    PRIMARY KEY (namespace, name)
) STRICT;
";

/// Version 2: the durable event log, and an index for purging expired state.
const V2: &str = "
CREATE TABLE events (
    sequence  INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    type      TEXT    NOT NULL,
    plugin_id TEXT    NOT NULL,
    timestamp INTEGER NOT NULL,
    data      TEXT    NOT NULL
) STRICT;
CREATE INDEX state_expires_at ON state (expires_at) WHERE expires_at IS NOT NULL;
";

/// Every migration, in order.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2];

/// The schema version this crate writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the store to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection) -> Result<()> {
    if version(conn)? == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found = version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(Error::store(
            std::path::PathBuf::new(),
            format!(
                "schema version {found} is newer than this porter-adapter understands \
                 ({SCHEMA_VERSION}); use a newer porter-adapter"
            ),
            None,
        ));
    }
    let from = usize::try_from(found).unwrap_or(0);
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(from) {
        tx.execute_batch(sql)?;
        tracing::debug!(version = step + 1, "metadata store migrated");
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;
    use crate::store::Store;

    fn tables(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn an_empty_file_is_migrated_to_the_latest_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        std::fs::write(&path, b"").unwrap();
        let store = Store::open(&path, Duration::from_secs(5)).unwrap();
        store
            .read(|conn| {
                assert_eq!(version(conn)?, SCHEMA_VERSION);
                assert_eq!(tables(conn), ["events", "installations", "state"]);
                let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
                assert_eq!(mode, "wal");
                Ok(())
            })
            .unwrap();
        store.check_integrity().unwrap();
    }

    #[test]
    fn a_version_1_store_keeps_its_data_when_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO state VALUES ('installation:a', '{\"n\":1}', 'porter', 1, 2, NULL)",
                [],
            )
            .unwrap();
            conn.execute(
                "INSERT INTO installations VALUES ('ns', 'app', 'id1', 'b:1', 'installed', 1, 2, '{}', '{}', '{}')",
                [],
            )
            .unwrap();
        }
        let store = Store::open(&path, Duration::from_secs(5)).unwrap();
        store
            .read(|conn| {
                assert_eq!(version(conn)?, SCHEMA_VERSION);
                let value: String = conn.query_row(
                    "SELECT value FROM state WHERE key = 'installation:a'",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(value, "{\"n\":1}");
                let status: String = conn.query_row(
                    "SELECT status FROM installations WHERE name = 'app'",
                    [],
                    |r| r.get(0),
                )?;
                assert_eq!(status, "installed");
                let events: i64 =
                    conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0))?;
                assert_eq!(events, 0);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_store_from_a_newer_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        let err = Store::open(&path, Duration::from_secs(5)).unwrap_err();
        assert_eq!(err.code(), "store");
        let text = err.to_string();
        assert!(text.contains("newer than this porter-adapter"), "{text}");
        assert!(text.contains("store.db"), "{text}");
    }

    #[test]
    fn reopening_a_current_store_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        drop(Store::open(&path, Duration::from_secs(5)).unwrap());
        let store = Store::open(&path, Duration::from_secs(5)).unwrap();
        store
            .read(|conn| {
                assert_eq!(version(conn)?, SCHEMA_VERSION);
                Ok(())
            })
            .unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn the_store_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("store.db");
        drop(Store::open(&path, Duration::from_secs(5)).unwrap());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_file_that_is_not_a_database_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        let err = Store::open(&path, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.code(), "store");
        assert!(err.to_string().contains("store.db"), "{err}");
    }
}
