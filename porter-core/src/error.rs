//! Typed errors of the engine.
//!
//! Errors carry structured fields (reference, registry, digest expected and found, path, HTTP
//! status) so each boundary (CLI, DS plugin, adapter, FFI) can map them to its own surface through
//! [`Error::kind`] instead of matching on message text.

use std::path::PathBuf;

/// A stable classification of failures, shared by every front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller supplied something malformed (reference, platform, flag combination, config).
    InvalidInput,
    /// The registry or layout does not have the requested object.
    NotFound,
    /// The registry refused the credentials (or lack of them).
    Unauthorized,
    /// Connecting to or talking with the registry failed.
    Network,
    /// Content did not match its digest or size, or a manifest was malformed.
    Integrity,
    /// Writing or reading local files failed.
    Io,
    /// The export destination or an archive entry would escape or clash.
    Unsafe,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// Lower-case identifier used in machine-readable output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Network => "network",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Io => "io",
            ErrorKind::Unsafe => "unsafe",
            ErrorKind::Other => "other",
        }
    }
}

/// The engine's error type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A reference string could not be parsed.
    #[error("invalid reference {reference:?}: {reason}")]
    InvalidReference { reference: String, reason: String },

    /// A platform string could not be parsed.
    #[error("invalid platform {value:?}, expected os/arch or os/arch/variant")]
    InvalidPlatform { value: String },

    /// Some other user input was rejected before any I/O.
    #[error("{0}")]
    InvalidInput(String),

    /// Configuration could not be read or decoded.
    #[error("invalid configuration ({source_name}): {reason}")]
    Config { source_name: String, reason: String },

    /// The registry answered with an error status.
    #[error("{registry}/{repository}: {what} failed: HTTP {status}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Registry {
        registry: String,
        repository: String,
        what: String,
        status: u16,
        detail: Option<String>,
    },

    /// The requested object does not exist.
    #[error("{what} not found: {reference}")]
    NotFound {
        what: &'static str,
        reference: String,
    },

    /// The registry could not be reached or the transfer broke off.
    #[error("{registry}: {reason}")]
    Network { registry: String, reason: String },

    /// Content did not hash to its digest.
    #[error("digest mismatch for {context}: expected {expected}, found {found}")]
    DigestMismatch {
        context: String,
        expected: String,
        found: String,
    },

    /// Content had a different length than its descriptor says.
    #[error("size mismatch for {digest}: expected {expected} bytes, found {found}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        found: u64,
    },

    /// A manifest or index could not be understood.
    #[error("invalid manifest {digest}: {reason}")]
    InvalidManifest { digest: String, reason: String },

    /// A local file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// An export or archive entry would write outside the destination or through a link.
    #[error("{0}")]
    Unsafe(String),

    /// Export could not satisfy the request (no matching manifest, wrong layer count, ...).
    #[error("{0}")]
    Export(String),

    /// A blob the operation needs is not in the cache.
    #[error("blob {digest} is not in the cache; pull the artifact again")]
    MissingBlob { digest: String },

    /// Working offline, and something the pull needs is not in the cache.
    #[error("{reference} is not available offline: {what} is not in the cache")]
    NotCached { reference: String, what: String },

    /// Signing failed, or a signature check refused the artifact.
    #[error(transparent)]
    Signature(#[from] crate::signature::SignatureError),

    /// The operation was cancelled.
    #[error("operation cancelled")]
    Cancelled,

    /// An error with the operation that failed prefixed (`failed to copy artifact: …`).
    #[error("{context}: {source}")]
    Context {
        context: &'static str,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// The stable classification of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidReference { .. }
            | Error::InvalidPlatform { .. }
            | Error::InvalidInput(_)
            | Error::Config { .. } => ErrorKind::InvalidInput,
            Error::Registry { status, .. } => match status {
                401 | 403 => ErrorKind::Unauthorized,
                404 => ErrorKind::NotFound,
                _ => ErrorKind::Network,
            },
            Error::NotFound { .. } | Error::MissingBlob { .. } | Error::NotCached { .. } => {
                ErrorKind::NotFound
            }
            Error::Network { .. } => ErrorKind::Network,
            Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::InvalidManifest { .. } => ErrorKind::Integrity,
            Error::Io { .. } => ErrorKind::Io,
            Error::Unsafe(_) => ErrorKind::Unsafe,
            Error::Export(_) => ErrorKind::InvalidInput,
            Error::Signature(e) if e.is_input_problem() => ErrorKind::InvalidInput,
            Error::Signature(_) => ErrorKind::Integrity,
            Error::Cancelled => ErrorKind::Other,
            Error::Context { source, .. } => source.kind(),
        }
    }

    /// Builds an [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Result alias of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;
