//! The adapter's one public error type.
//!
//! porter-core's errors are mapped here, in [`Error::from_core`], by their stable
//! [`ErrorKind`]; nothing else in the crate inspects them. The FFI maps this type to its status
//! codes through [`Error::code`].

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use porter_core::ErrorKind as CoreKind;

/// Everything that can go wrong in the adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller passed something malformed (a reference, a name, a media type, a TTL, …).
    #[error("{message}")]
    InvalidInput {
        message: String,
        #[source]
        source: Option<Box<porter_core::Error>>,
    },

    /// The installation, state entry, metadata entry, artifact or repository does not exist.
    #[error("{what} not found: {key}{}", source.as_ref().map(|s| format!(" ({s})")).unwrap_or_default())]
    NotFound {
        what: String,
        key: String,
        #[source]
        source: Option<Box<porter_core::Error>>,
    },

    /// The state or metadata entry exists but its TTL has run out.
    #[error("{what} has expired: {key} (at {})", expired_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))]
    Expired {
        what: &'static str,
        key: String,
        expired_at: DateTime<Utc>,
    },

    /// The registry refused the credentials, or the lack of them.
    #[error("{context}: {source}")]
    Unauthorized {
        context: String,
        #[source]
        source: Box<porter_core::Error>,
    },

    /// The registry could not be reached or answered with a server error.
    #[error("{context}: {source}")]
    Network {
        context: String,
        #[source]
        source: Box<porter_core::Error>,
    },

    /// Anything else the engine reported: content that failed verification, a cache file that
    /// could not be written, …
    #[error("{context}: {source}")]
    Engine {
        context: String,
        #[source]
        source: Box<porter_core::Error>,
    },

    /// The metadata store could not be opened, migrated, read or written.
    #[error("metadata store {}: {message}", path.display())]
    Store {
        path: PathBuf,
        message: String,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// Reading the caller's input or writing to the caller's writer failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

/// What kind of failure an [`Error`] is: one value per variant, for callers that branch on it
/// (the FFI maps it to its status codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    InvalidInput,
    NotFound,
    Expired,
    Unauthorized,
    Network,
    /// The operation was cancelled.
    Cancelled,
    Engine,
    Store,
    Io,
}

impl ErrorKind {
    /// A stable, lower-case identifier, for machine-readable surfaces.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Expired => "expired",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Network => "network",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Engine => "engine",
            ErrorKind::Store => "store",
            ErrorKind::Io => "io",
        }
    }
}

/// The adapter's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Expired { .. } => ErrorKind::Expired,
            Error::Unauthorized { .. } => ErrorKind::Unauthorized,
            Error::Network { .. } => ErrorKind::Network,
            Error::Engine { source, .. } if source.kind() == CoreKind::Cancelled => {
                ErrorKind::Cancelled
            }
            Error::Engine { .. } => ErrorKind::Engine,
            Error::Store { .. } => ErrorKind::Store,
            Error::Io { .. } => ErrorKind::Io,
        }
    }

    /// A stable, lower-case identifier of the kind, for machine-readable surfaces.
    pub fn code(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The remedy the engine suggests, if one applies (each front end names it in its terms).
    pub fn hint(&self) -> Option<porter_core::error::Hint> {
        self.core().and_then(porter_core::Error::hint)
    }

    /// The engine error behind this one, when there is one.
    pub fn core(&self) -> Option<&porter_core::Error> {
        match self {
            Error::InvalidInput { source, .. } | Error::NotFound { source, .. } => {
                source.as_deref()
            }
            Error::Unauthorized { source, .. }
            | Error::Network { source, .. }
            | Error::Engine { source, .. } => Some(source),
            _ => None,
        }
    }

    /// Maps an engine error, saying what the adapter was doing (`failed to pull installation
    /// <ref>`); `what` and `key` name the thing a not-found error is about.
    pub(crate) fn from_core(
        context: String,
        what: &str,
        key: &str,
        source: porter_core::Error,
    ) -> Error {
        let kind = source.kind();
        let source = Box::new(source);
        match kind {
            CoreKind::InvalidInput => Error::InvalidInput {
                message: format!("{context}: {source}"),
                source: Some(source),
            },
            CoreKind::NotFound => Error::NotFound {
                what: what.to_owned(),
                key: key.to_owned(),
                source: Some(source),
            },
            CoreKind::Unauthorized => Error::Unauthorized { context, source },
            CoreKind::Network => Error::Network { context, source },
            _ => Error::Engine { context, source },
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidInput {
            message: message.into(),
            source: None,
        }
    }

    pub(crate) fn not_found(what: &str, key: impl Into<String>) -> Error {
        Error::NotFound {
            what: what.to_owned(),
            key: key.into(),
            source: None,
        }
    }

    pub(crate) fn store(
        path: impl Into<PathBuf>,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Store {
            path: path.into(),
            message: message.into(),
            source,
        }
    }
}

impl From<rusqlite::Error> for Error {
    /// A SQLite failure; the store fills in its path (see `Store::at_path`).
    fn from(e: rusqlite::Error) -> Self {
        let message = match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                "another process held the store's lock longer than the busy timeout".to_owned()
            }
            _ => e.to_string(),
        };
        Error::store(PathBuf::new(), message, Some(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_by_kind() {
        let cases = [
            (
                porter_core::Error::InvalidInput("bad".into()),
                "invalid_input",
            ),
            (
                porter_core::Error::NotFound {
                    what: "manifest",
                    reference: "r".into(),
                },
                "not_found",
            ),
            (
                porter_core::Error::Registry {
                    registry: "r".into(),
                    repository: "x".into(),
                    what: "manifest".into(),
                    status: 401,
                    detail: None,
                },
                "unauthorized",
            ),
            (
                porter_core::Error::Network {
                    registry: "r".into(),
                    reason: "refused".into(),
                    cause: porter_core::error::NetworkCause::Connect,
                },
                "network",
            ),
            (
                porter_core::Error::SizeMismatch {
                    digest: "d".into(),
                    expected: 1,
                    found: 2,
                },
                "engine",
            ),
        ];
        for (core, code) in cases {
            let text = core.to_string();
            let err = Error::from_core(
                "failed to pull installation x".into(),
                "installation",
                "x",
                core,
            );
            assert_eq!(err.code(), code, "{err}");
            assert!(err.core().is_some());
            assert!(err.to_string().contains(&text), "{err}");
        }
    }
}
