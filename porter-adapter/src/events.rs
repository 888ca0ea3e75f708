//! Durable events.
//!
//! Every event is appended to the store's `events` table and numbered by a sequence that only
//! grows, so any process can read what happened with [`PorterAdapter::events_since`] and resume
//! from the last sequence it saw. [`Subscription`] is the live view: it wakes at once on events
//! this process appends and polls the log for other processes' events, delivering all of them
//! in sequence order, without gaps (a slow subscriber reads what it missed from the log).
//!
//! [`PorterAdapter::events_since`]: crate::PorterAdapter::events_since

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::store::{self, Store, now_ms, time_of};

/// An installation was pulled (`data`: `{ref, digest, timestamp}`).
pub const INSTALLATION_PULLED: &str = "installation.pulled";
/// An installation was pushed (`data`: `{ref, digest, timestamp}`).
pub const INSTALLATION_PUSHED: &str = "installation.pushed";
/// A bundle was pulled (`data`: `{ref, digest, timestamp}`).
pub const BUNDLE_PULLED: &str = "bundle.pulled";
/// A bundle was pushed (`data`: `{ref, digest, timestamp}`).
pub const BUNDLE_PUSHED: &str = "bundle.pushed";

/// Characters of an event type at most.
const MAX_TYPE_CHARS: usize = 128;
/// Events read from the log per query by a subscription.
const SUBSCRIPTION_BATCH: usize = 256;

/// One event of the durable log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the log: strictly increasing, never reused. Pass the last one seen to
    /// `events_since` to read what came after it.
    pub sequence: u64,
    /// `installation.pulled`, `bundle.pushed`, or a caller's own type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Who published it.
    pub plugin_id: String,
    /// When it was published.
    pub timestamp: DateTime<Utc>,
    /// The payload.
    pub data: Value,
}

/// An event type is 1–128 characters of ASCII letters, digits, `.`, `_` and `-`.
pub(crate) fn validate_type(event_type: &str) -> Result<()> {
    let valid = !event_type.is_empty()
        && event_type.len() <= MAX_TYPE_CHARS
        && event_type
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "invalid event type {event_type:?}: use 1-{MAX_TYPE_CHARS} letters, digits, '.', '_' or '-'"
        )))
    }
}

fn event_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String, String, i64, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
    ))
}

fn into_event(
    (sequence, event_type, plugin_id, timestamp, data): (i64, String, String, i64, String),
) -> Result<Event> {
    Ok(Event {
        sequence: u64::try_from(sequence).unwrap_or_default(),
        event_type,
        plugin_id,
        timestamp: time_of(timestamp),
        data: store::from_json(&data, "event data")?,
    })
}

impl Store {
    /// Appends an event and wakes this process's subscribers.
    pub(crate) fn append_event(
        &self,
        event_type: &str,
        plugin_id: &str,
        data: &Value,
    ) -> Result<Event> {
        validate_type(event_type)?;
        let text = store::to_json(data);
        if text.len() > crate::state::MAX_VALUE_BYTES {
            return Err(Error::invalid(format!(
                "the event data is {} bytes of JSON, more than {}",
                text.len(),
                crate::state::MAX_VALUE_BYTES
            )));
        }
        let now = now_ms();
        self.write(
            |tx| {
                let row = tx.query_row(
                    "INSERT INTO events (type, plugin_id, timestamp, data) VALUES (?1, ?2, ?3, ?4)
                     RETURNING sequence, type, plugin_id, timestamp, data",
                    params![event_type, plugin_id, now, text],
                    event_of,
                )?;
                into_event(row)
            },
            |event| {
                self.appended.send_replace(event.sequence);
            },
        )
    }

    /// Up to `limit` events after `after`, in sequence order.
    pub(crate) fn events_since(&self, after: u64, limit: usize) -> Result<Vec<Event>> {
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT sequence, type, plugin_id, timestamp, data FROM events
                 WHERE sequence > ?1 ORDER BY sequence LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, limit], event_of)?;
            rows.map(|row| into_event(row?)).collect()
        })
    }

    /// The sequence of the newest event (0 for an empty log).
    pub(crate) fn last_sequence(&self) -> Result<u64> {
        self.read(|conn| {
            let last: Option<i64> = conn
                .query_row("SELECT max(sequence) FROM events", [], |row| row.get(0))
                .optional()?
                .flatten();
            Ok(last.and_then(|s| u64::try_from(s).ok()).unwrap_or(0))
        })
    }

    /// Deletes events published before `before`; how many there were. Sequences are never
    /// reused, so readers resuming from an old cursor simply see fewer events.
    pub(crate) fn prune_events(&self, before: DateTime<Utc>) -> Result<usize> {
        let before = before.timestamp_millis();
        self.write(
            |tx| Ok(tx.execute("DELETE FROM events WHERE timestamp < ?1", params![before])?),
            |_| {},
        )
    }
}

/// A live stream of the event log from a starting point on.
#[derive(Debug)]
pub struct Subscription {
    store: Arc<Store>,
    wake: watch::Receiver<u64>,
    last: u64,
    backlog: VecDeque<Event>,
    poll: Duration,
}

impl Subscription {
    pub(crate) fn new(store: Arc<Store>, after: u64, poll: Duration) -> Self {
        let wake = store.appended.subscribe();
        Subscription {
            store,
            wake,
            last: after,
            backlog: VecDeque::new(),
            poll: poll.max(Duration::from_millis(10)),
        }
    }

    /// The sequence of the last event delivered (or the starting point).
    pub fn cursor(&self) -> u64 {
        self.last
    }

    /// The next event: at once when one is waiting, otherwise when this process appends one or
    /// the next poll of the log finds one from another process. Waits as long as it takes;
    /// wrap it in `tokio::time::timeout` to bound the wait.
    pub async fn next(&mut self) -> Result<Event> {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.last = event.sequence;
                return Ok(event);
            }
            self.wake.mark_unchanged();
            let store = Arc::clone(&self.store);
            let after = self.last;
            let batch =
                tokio::task::spawn_blocking(move || store.events_since(after, SUBSCRIPTION_BATCH))
                    .await
                    .map_err(|e| {
                        Error::store(self.store.path(), format!("event read failed: {e}"), None)
                    })??;
            if !batch.is_empty() {
                self.backlog.extend(batch);
                continue;
            }
            // Either wake-up is enough: the loop reads the log again. A closed channel cannot
            // happen while `self.store` holds the sender.
            let _ = tokio::time::timeout(self.poll, self.wake.changed()).await;
        }
    }
}
