//! The adapter's metadata store: one SQLite file shared by every process that opens it.
//!
//! SQLite gives what several DS plugin invocations and a CI job need at once: WAL mode (readers
//! never wait for the writer), a busy timeout (a writer waits for another process's transaction
//! instead of failing), transactions for every read-modify-write (`BEGIN IMMEDIATE`, so two
//! writers never both read the old value), `synchronous=FULL` (a committed write survives a
//! crash), and a journal that leaves the file readable when a process is killed mid-write.
//! The schema is versioned with `PRAGMA user_version` and migrated forward on open.
//!
//! Every method here blocks; the async adapter calls them on tokio's blocking pool.

pub(crate) mod migrations;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::watch;

use crate::error::{Error, Result};

/// How often opening retries switching the journal to WAL while another process holds the
/// file's lock (on top of the busy timeout), and how long it sleeps between tries.
const WAL_SWITCH_TRIES: u32 = 20;
const WAL_SWITCH_PAUSE: Duration = Duration::from_millis(50);

/// An open store.
pub(crate) struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// The sequence number of the last event this process appended (wakes subscribers).
    pub(crate) appended: watch::Sender<u64>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating when needed) the store at `path` and migrates its schema.
    pub(crate) fn open(path: &Path, busy_timeout: Duration) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                Error::store(path, "cannot create its directory", Some(Box::new(e)))
            })?;
        }
        create_private(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let at = |e: Error| e.at_path(path);
        let mut conn = Connection::open_with_flags(path, flags).map_err(|e| at(e.into()))?;
        conn.busy_timeout(busy_timeout).map_err(|e| at(e.into()))?;
        enable_wal(&conn).map_err(at)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| at(e.into()))?;
        migrations::migrate(&mut conn).map_err(at)?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
            appended: watch::Sender::new(0),
        })
    }

    /// The store file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic inside a transaction rolled it back when the transaction was dropped.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the connection (reads; a single statement is atomic by itself).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.lock();
        f(&conn).map_err(|e| e.at_path(&self.path))
    }

    /// Runs `f` in a write transaction taken up front (`BEGIN IMMEDIATE`), committing when it
    /// returns `Ok`; waits up to the busy timeout for another process's write. `after` runs
    /// after the commit while this process's connection is still held, so what it announces
    /// is in commit order.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
        after: impl FnOnce(&T),
    ) -> Result<T> {
        let mut conn = self.lock();
        let result = (|| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        })()
        .map_err(|e: Error| e.at_path(&self.path))?;
        after(&result);
        Ok(result)
    }

    /// `PRAGMA integrity_check`: `Ok` when SQLite finds nothing wrong.
    pub(crate) fn check_integrity(&self) -> Result<()> {
        let problems: Vec<String> = self.read(|conn| {
            let mut stmt = conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |row| row.get::<_, String>(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        if problems == ["ok"] {
            Ok(())
        } else {
            Err(Error::store(
                &self.path,
                format!("integrity check failed: {}", problems.join("; ")),
                None,
            ))
        }
    }
}

impl Error {
    /// Fills in the store path of an error built from a bare SQLite error.
    pub(crate) fn at_path(self, path: &Path) -> Error {
        match self {
            Error::Store {
                path: p,
                message,
                source,
            } if p.as_os_str().is_empty() => Error::Store {
                path: path.to_path_buf(),
                message,
                source,
            },
            other => other,
        }
    }
}

/// Creates the store file readable by its owner only (it holds installation credentials),
/// unless it exists.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::store(
            path,
            "cannot create the file",
            Some(Box::new(e)),
        )),
    }
}

/// Switches the journal to WAL (a no-op once the file is in WAL mode, which persists).
fn enable_wal(conn: &Connection) -> Result<()> {
    let mut tries = 0;
    loop {
        match conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))
        {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                tracing::warn!(
                    journal_mode = %mode,
                    "the metadata store's file system does not support WAL; readers will wait for writers"
                );
                return Ok(());
            }
            Err(e)
                if tries < WAL_SWITCH_TRIES
                    && matches!(
                        e.sqlite_error_code(),
                        Some(
                            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                        )
                    ) =>
            {
                tries += 1;
                std::thread::sleep(WAL_SWITCH_PAUSE);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Milliseconds since the Unix epoch, the unit every timestamp column uses.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// A stored timestamp as a time; out-of-range values (never written by this crate) clamp.
pub(crate) fn time_of(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A TTL as an absolute expiry in milliseconds; `None` without a TTL.
pub(crate) fn expiry(now: i64, ttl: Option<Duration>) -> Result<Option<i64>> {
    let Some(ttl) = ttl else { return Ok(None) };
    if ttl.is_zero() {
        return Err(Error::invalid(
            "a TTL must be longer than zero (pass no TTL for an entry that never expires)",
        ));
    }
    i64::try_from(ttl.as_millis().max(1))
        .ok()
        .and_then(|ms| now.checked_add(ms))
        .filter(|at| DateTime::from_timestamp_millis(*at).is_some())
        .map(Some)
        .ok_or_else(|| Error::invalid(format!("a TTL of {}s is too long", ttl.as_secs())))
}

/// A JSON document as stored text.
pub(crate) fn to_json(value: &serde_json::Value) -> String {
    // Serialising a `Value` cannot fail: keys are strings and numbers are finite.
    serde_json::to_string(value).unwrap_or_default()
}

/// Stored JSON text back as a document.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| {
        Error::store(
            PathBuf::new(),
            format!("stored {what} is not valid JSON"),
            Some(Box::new(e)),
        )
    })
}
