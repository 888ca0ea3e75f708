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
    /// The operation was cancelled (by its caller, a signal or a shutdown).
    Cancelled,
    /// The cache holds damaged data (a blob that does not match its digest, an unreadable
    /// `index.json` or `metadata.json`).
    CacheCorrupt,
    /// A bug or a failure inside the engine (a panicked task, a runtime shutting down).
    Internal,
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
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::CacheCorrupt => "cache_corrupt",
            ErrorKind::Internal => "internal",
            ErrorKind::Other => "other",
        }
    }
}

/// Why a connection to a registry failed, as far as it can be told apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NetworkCause {
    /// The host name does not resolve.
    Dns,
    /// The connection could not be made (refused, reset, unreachable).
    Connect,
    /// No answer, or no progress, within the attempt timeout.
    Timeout,
    /// The server's certificate is not signed by a trusted authority (or does not name the host).
    UntrustedCertificate,
    /// The server answered the TLS handshake in plain HTTP.
    PlainHttpAnswer,
    /// Another TLS failure.
    Tls,
    /// A redirect was refused (to plain HTTP, to a private address, or too many).
    Redirect,
    /// The answer broke off or could not be read.
    Interrupted,
    /// Anything else.
    Other,
}

impl NetworkCause {
    /// Whether retrying the same request can help.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            NetworkCause::Connect
                | NetworkCause::Timeout
                | NetworkCause::Interrupted
                | NetworkCause::Other
        )
    }
}

/// What a person can change so that a failed operation works. The engine says which remedy
/// applies; each front end names it in its own terms (a CLI flag, an FFI option, a DS setting).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Hint {
    /// The registry speaks plain HTTP: allow plain HTTP for `host`.
    PlainHttp {
        /// `host[:port]`.
        host: String,
    },
    /// The registry's certificate comes from a private CA: trust that CA for `host`.
    PrivateCa {
        /// `host[:port]`.
        host: String,
    },
    /// The registry refused the credentials (or their absence): configure credentials for `host`.
    Credentials {
        /// `host[:port]`.
        host: String,
    },
    /// A cached blob is damaged: verify and repair the cache.
    RepairCache,
    /// Content did not match its digest or size during a pull; nothing was cached.
    NothingCached,
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
    Network {
        registry: String,
        reason: String,
        cause: NetworkCause,
    },

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

    /// Requested platforms that the artifact does not offer (the list of offered platforms is
    /// remote text, already escaped for display).
    #[error("no manifests found for requested platform(s): {} not offered; the artifact offers {}", missing.join(", "), offered.join(", "))]
    PlatformsMissing {
        missing: Vec<String>,
        offered: Vec<String>,
    },

    /// A blob the operation needs is not in the cache.
    #[error("blob {digest} is not in the cache; pull the artifact again")]
    MissingBlob { digest: String },

    /// Working offline, and something the pull needs is not in the cache.
    #[error("{reference} is not available offline: {what} is not in the cache")]
    NotCached { reference: String, what: String },

    /// Signing failed, or a signature check refused the artifact.
    #[error(transparent)]
    Signature(#[from] SignatureError),

    /// The operation was cancelled.
    #[error("operation cancelled")]
    Cancelled,

    /// The cache holds damaged data.
    #[error("the cache is damaged: {what}: {reason}")]
    CacheCorrupt { what: String, reason: String },

    /// A cached blob no longer hashes to its digest (it was changed on disk).
    #[error("cached blob {digest} ({}) is damaged: its content hashes to {found}", path.display())]
    CorruptBlob {
        digest: String,
        path: PathBuf,
        found: String,
    },

    /// A failure inside the engine (a task panicked, the runtime shut down).
    #[error("internal error: {0}")]
    Internal(String),

    /// The registry failed after the mirrors in front of it were skipped; `tried` says why each
    /// mirror was skipped.
    #[error("{source} (mirrors skipped: {})", tried.join("; "))]
    Endpoints {
        #[source]
        source: Box<Error>,
        tried: Vec<String>,
    },

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
            Error::CacheCorrupt { .. } | Error::CorruptBlob { .. } => ErrorKind::CacheCorrupt,
            Error::Internal(_) => ErrorKind::Internal,
            Error::DigestMismatch { .. }
            | Error::SizeMismatch { .. }
            | Error::InvalidManifest { .. } => ErrorKind::Integrity,
            Error::Io { .. } => ErrorKind::Io,
            Error::Unsafe(_) => ErrorKind::Unsafe,
            Error::Export(_) | Error::PlatformsMissing { .. } => ErrorKind::InvalidInput,
            Error::Signature(e) if e.is_input_problem() => ErrorKind::InvalidInput,
            Error::Signature(_) => ErrorKind::Integrity,
            Error::Cancelled => ErrorKind::Cancelled,
            Error::Context { source, .. } | Error::Endpoints { source, .. } => source.kind(),
        }
    }

    /// The remedy that applies, if one does.
    pub fn hint(&self) -> Option<Hint> {
        match self {
            Error::Registry {
                registry,
                status: 401 | 403,
                ..
            } => Some(Hint::Credentials {
                host: registry.clone(),
            }),
            Error::Network {
                registry,
                cause: NetworkCause::UntrustedCertificate,
                ..
            } => Some(Hint::PrivateCa {
                host: registry.clone(),
            }),
            Error::Network {
                registry,
                cause: NetworkCause::PlainHttpAnswer,
                ..
            } => Some(Hint::PlainHttp {
                host: registry.clone(),
            }),
            Error::CacheCorrupt { .. } | Error::CorruptBlob { .. } => Some(Hint::RepairCache),
            Error::Endpoints { source, .. } => source.hint(),
            Error::Context { context, source } => source.hint().or_else(|| {
                (*context == PULL_FAILED && source.kind() == ErrorKind::Integrity)
                    .then_some(Hint::NothingCached)
            }),
            _ => None,
        }
    }

    /// The innermost error, below every [`Error::Context`].
    pub fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } | Error::Endpoints { source, .. } => source.root(),
            other => other,
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

/// The context of a failed pull, as DS users know it.
pub const PULL_FAILED: &str = "failed to copy artifact";
/// The context of a failed export, as DS users know it.
pub const EXPORT_FAILED: &str = "failed to export artifact";

/// Runs blocking work on tokio's blocking pool; a task that panicked or was cancelled by a
/// runtime shutdown becomes [`Error::Internal`] / [`Error::Cancelled`] naming `what`.
pub(crate) async fn blocking<T, F>(what: &'static str, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_cancelled() => Err(Error::Cancelled),
        Err(e) => Err(Error::Internal(format!("{what} failed: {e}"))),
    }
}

/// Result alias of the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why signing or a signature check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// A key file could not be used.
    #[error("key {}: {reason}", path.display())]
    Key { path: PathBuf, reason: String },

    /// Strict mode without a single trusted key (DS refuses to create its verifier then).
    #[error(
        "signature mode is strict for {policy} but no trusted public key was loaded (set its public keys or trust store)"
    )]
    NoTrustedKeys { policy: &'static str },

    /// A layer of a platform failed DS's check.
    #[error(
        "signature check failed for {reference}: layer {layer} of platform {platform}{}: {reason}",
        key_id.as_deref().map(|k| format!(" (key id {k})")).unwrap_or_default()
    )]
    Layer {
        reference: String,
        platform: String,
        layer: String,
        key_id: Option<String>,
        reason: String,
    },

    /// The artifact's cosign signature is missing or does not verify.
    #[error("cosign signature check failed for {reference} ({digest}): {reason}")]
    Cosign {
        reference: String,
        digest: String,
        reason: String,
    },

    /// Nothing could be checked because no policy applies (`verify` with signatures disabled).
    #[error(
        "signature verification is disabled for {reference}: {policy} has mode disabled and no cosign key is configured"
    )]
    Disabled {
        reference: String,
        policy: &'static str,
    },

    /// `verify`: the policy accepted the artifact, but these platforms carry no signature a
    /// trusted key verified (a permissive policy with `AllowUnsigned` lets that through on pull).
    #[error("{reference} is not verified: platform(s) {} are not signed", platforms.join(", "))]
    Unverified {
        reference: String,
        platforms: Vec<String>,
    },

    /// Producing a signature or a key failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

impl SignatureError {
    pub(crate) fn key(path: &std::path::Path, reason: String) -> Self {
        SignatureError::Key {
            path: path.to_path_buf(),
            reason,
        }
    }

    /// Whether the problem is the caller's input (a key or the configuration) rather than the
    /// artifact.
    pub fn is_input_problem(&self) -> bool {
        matches!(
            self,
            SignatureError::Key { .. }
                | SignatureError::NoTrustedKeys { .. }
                | SignatureError::Disabled { .. }
                | SignatureError::Sign(_)
        )
    }
}
