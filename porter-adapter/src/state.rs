//! Key/value state with an optional TTL: installation state (`installation:<id>`) and bundle
//! metadata (`bundle:<reference>`), as the Go adapter keyed them.
//!
//! Values are any JSON document and come back exactly as stored: integers stay integers (up to
//! the full `i64`/`u64` range), floats keep every bit, object keys keep their order. Expiry is
//! decided in the queries against the current time: an expired entry reads as
//! [`Error::Expired`], distinct from [`Error::NotFound`], until it is overwritten, deleted or
//! purged. Reads never write (the Go store counted accesses, which turned every read into a
//! whole-file rewrite).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{self, Store, now_ms, time_of};

/// Bytes of one stored JSON document at most.
pub const MAX_VALUE_BYTES: usize = 16 * 1024 * 1024;
/// Characters of a state key at most (after its prefix).
const MAX_KEY_CHARS: usize = 1024;

/// A stored state or metadata entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateEntry {
    /// The store key (`installation:<id>`, `bundle:<reference>`).
    pub key: String,
    /// The document.
    pub value: Value,
    /// Who wrote it first.
    pub plugin_id: String,
    /// When it was first written (an expired entry overwritten counts as new).
    pub created_at: DateTime<Utc>,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
    /// When it expires; `None` for never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Which family of entries a key belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateKind {
    Installation,
    Bundle,
}

impl StateKind {
    fn prefix(self) -> &'static str {
        match self {
            StateKind::Installation => "installation:",
            StateKind::Bundle => "bundle:",
        }
    }

    /// How errors name an entry of this kind.
    pub(crate) fn what(self) -> &'static str {
        match self {
            StateKind::Installation => "installation state",
            StateKind::Bundle => "bundle metadata",
        }
    }

    /// The store key for `id`, validated.
    pub(crate) fn key(self, id: &str) -> Result<String> {
        let subject = match self {
            StateKind::Installation => "installation id",
            StateKind::Bundle => "bundle reference",
        };
        if id.trim().is_empty() {
            return Err(Error::invalid(format!("{subject} is empty")));
        }
        if id.chars().count() > MAX_KEY_CHARS {
            return Err(Error::invalid(format!(
                "{subject} is longer than {MAX_KEY_CHARS} characters"
            )));
        }
        if id.chars().any(char::is_control) {
            return Err(Error::invalid(format!(
                "{subject} {id:?} contains control characters"
            )));
        }
        Ok(format!("{}{id}", self.prefix()))
    }
}

const COLUMNS: &str = "key, value, plugin_id, created_at, updated_at, expires_at";

fn entry_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<(StateRow, Option<i64>)> {
    Ok((
        StateRow {
            key: row.get(0)?,
            value: row.get(1)?,
            plugin_id: row.get(2)?,
            created_at: row.get(3)?,
            updated_at: row.get(4)?,
        },
        row.get(5)?,
    ))
}

struct StateRow {
    key: String,
    value: String,
    plugin_id: String,
    created_at: i64,
    updated_at: i64,
}

impl StateRow {
    fn into_entry(self, expires_at: Option<i64>) -> Result<StateEntry> {
        Ok(StateEntry {
            value: store::from_json(&self.value, "state value")?,
            key: self.key,
            plugin_id: self.plugin_id,
            created_at: time_of(self.created_at),
            updated_at: time_of(self.updated_at),
            expires_at: expires_at.map(time_of),
        })
    }
}

fn encode(value: &Value) -> Result<String> {
    let text = store::to_json(value);
    if text.len() > MAX_VALUE_BYTES {
        return Err(Error::invalid(format!(
            "the value is {} bytes of JSON, more than the {MAX_VALUE_BYTES} a state entry holds",
            text.len()
        )));
    }
    Ok(text)
}

/// Writes `text` under `key` in `tx`: the first write (or the first after expiry) sets
/// `created_at` and `plugin_id`, later ones only the value, `updated_at` and the expiry.
fn upsert(
    tx: &rusqlite::Transaction<'_>,
    key: &str,
    text: &str,
    plugin_id: &str,
    now: i64,
    expires_at: Option<i64>,
) -> Result<StateEntry> {
    let (row, expires) = tx.query_row(
        &format!(
            "INSERT INTO state ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?4, ?5)
             ON CONFLICT (key) DO UPDATE SET
                 created_at = CASE WHEN state.expires_at <= excluded.updated_at
                                   THEN excluded.created_at ELSE state.created_at END,
                 plugin_id  = CASE WHEN state.expires_at <= excluded.updated_at
                                   THEN excluded.plugin_id ELSE state.plugin_id END,
                 value = excluded.value,
                 updated_at = excluded.updated_at,
                 expires_at = excluded.expires_at
             RETURNING {COLUMNS}"
        ),
        params![key, text, plugin_id, now, expires_at],
        entry_of,
    )?;
    row.into_entry(expires)
}

impl Store {
    /// Stores `value` under `key`, expiring after `ttl`.
    pub(crate) fn put_state(
        &self,
        key: &str,
        value: &Value,
        plugin_id: &str,
        ttl: Option<Duration>,
    ) -> Result<StateEntry> {
        let text = encode(value)?;
        let now = now_ms();
        let expires_at = store::expiry(now, ttl)?;
        self.write(
            |tx| upsert(tx, key, &text, plugin_id, now, expires_at),
            |_| {},
        )
    }

    /// The entry under `key`: [`Error::NotFound`] when there is none, [`Error::Expired`] when
    /// its TTL has run out.
    pub(crate) fn get_state(&self, key: &str, what: &'static str) -> Result<StateEntry> {
        let now = now_ms();
        let found = self.read(|conn| {
            Ok(conn
                .query_row(
                    &format!("SELECT {COLUMNS}, expires_at <= ?2 FROM state WHERE key = ?1"),
                    params![key, now],
                    |row| Ok((entry_of(row)?, row.get::<_, Option<bool>>(6)?)),
                )
                .optional()?)
        })?;
        match found {
            None => Err(Error::not_found(what, key)),
            Some(((_, Some(at)), Some(true))) => Err(Error::Expired {
                what,
                key: key.to_owned(),
                expired_at: time_of(at),
            }),
            Some(((row, expires), _)) => {
                row.into_entry(expires).map_err(|e| e.at_path(self.path()))
            }
        }
    }

    /// Replaces the value under `key` with `f(current)` atomically: no other process writes
    /// the key between the read and the write. An expired entry reads as `None`.
    pub(crate) fn update_state(
        &self,
        key: &str,
        plugin_id: &str,
        ttl: Option<Duration>,
        f: impl FnOnce(Option<Value>) -> Value,
    ) -> Result<StateEntry> {
        self.write(
            |tx| {
                let now = now_ms();
                let expires_at = store::expiry(now, ttl)?;
                let current: Option<String> = tx
                    .query_row(
                        "SELECT value FROM state WHERE key = ?1
                         AND (expires_at IS NULL OR expires_at > ?2)",
                        params![key, now],
                        |row| row.get(0),
                    )
                    .optional()?;
                let current = match current {
                    Some(text) => Some(store::from_json(&text, "state value")?),
                    None => None,
                };
                let text = encode(&f(current))?;
                upsert(tx, key, &text, plugin_id, now, expires_at)
            },
            |_| {},
        )
    }

    /// Deletes the entry under `key`; whether there was one (expired or not).
    pub(crate) fn delete_state(&self, key: &str) -> Result<bool> {
        self.write(
            |tx| Ok(tx.execute("DELETE FROM state WHERE key = ?1", params![key])? > 0),
            |_| {},
        )
    }

    /// Deletes every expired entry; how many there were.
    pub(crate) fn purge_expired(&self) -> Result<usize> {
        let now = now_ms();
        self.write(
            |tx| {
                Ok(tx.execute(
                    "DELETE FROM state WHERE expires_at IS NOT NULL AND expires_at <= ?1",
                    params![now],
                )?)
            },
            |_| {},
        )
    }
}
