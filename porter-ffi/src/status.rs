//! The error surface shared by the C ABI and the uniffi bindings: a numeric status that is never
//! reused, its stable name, and the message.
//!
//! Engine errors are mapped here, in one place, from [`porter_core::ErrorKind`]; the message is
//! the engine error's text (which names the reference, registry, path or value at fault).

use std::ffi::CStr;
use std::fmt;

/// What a C function returned. `PORTER_OK` is the only success; every other value is a failure
/// whose name (`porter_status_name`, the `kind` of the error JSON) is stable too.
///
/// Numbers are assigned once and never reused or renumbered: a status that stops being produced
/// keeps its number, and new statuses get new numbers. 1–99 are failures at the boundary
/// itself; 100 and up classify what the engine or the adapter reported.
#[allow(non_camel_case_types)]
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum porter_status {
    /// Success.
    PORTER_OK = 0,
    /// A required pointer argument was NULL.
    PORTER_NULL_PARAMETER = 1,
    /// A string argument was not valid UTF-8.
    PORTER_INVALID_UTF8 = 2,
    /// The library panicked; the operation's effects are unknown (the cache stays consistent:
    /// nothing unverified is ever made visible).
    PORTER_PANIC = 3,
    /// A transfer was started from inside a progress callback (on a thread driving another
    /// transfer); start it from another thread instead.
    PORTER_CALLED_FROM_CALLBACK = 4,
    /// The library's tokio runtime could not be started.
    PORTER_RUNTIME_UNAVAILABLE = 5,
    /// The operation was cancelled: through its `porter_call`, or because its client or adapter
    /// was closed or freed. Its work has stopped.
    PORTER_CANCELLED = 6,
    /// The operation did not finish within its `timeout_ms` and was stopped as if cancelled.
    PORTER_TIMED_OUT = 7,
    /// Malformed input: reference, platform, options JSON, configuration, flag combination, or
    /// a request the artifact cannot satisfy (no manifest for the requested platform).
    PORTER_INVALID_INPUT = 100,
    /// The registry, layout or cache does not have what was asked for.
    PORTER_NOT_FOUND = 101,
    /// The registry refused the credentials (or their absence).
    PORTER_UNAUTHORIZED = 102,
    /// The registry could not be reached, or answered with a server error.
    PORTER_NETWORK = 103,
    /// Content did not match its digest or size, or a manifest was malformed.
    PORTER_INTEGRITY = 104,
    /// Reading or writing local files failed.
    PORTER_IO = 105,
    /// An export or archive entry would write outside the destination or through a link.
    PORTER_UNSAFE = 106,
    /// Any other engine failure.
    PORTER_OTHER = 107,
    /// An adapter state or metadata entry exists but its TTL has run out.
    PORTER_EXPIRED = 108,
    /// The adapter's metadata store could not be opened, migrated, read or written.
    PORTER_STORE = 109,
    /// The cache holds damaged data (a blob that does not match its digest, unreadable
    /// metadata): verify and repair it.
    PORTER_CACHE_CORRUPT = 110,
    /// A failure inside the engine (a task that panicked, a runtime shutting down).
    PORTER_INTERNAL = 111,
}

use porter_status::*;

/// Every status (every variant), in numeric order.
const ALL: [porter_status; 20] = [
    PORTER_OK,
    PORTER_NULL_PARAMETER,
    PORTER_INVALID_UTF8,
    PORTER_PANIC,
    PORTER_CALLED_FROM_CALLBACK,
    PORTER_RUNTIME_UNAVAILABLE,
    PORTER_CANCELLED,
    PORTER_TIMED_OUT,
    PORTER_INVALID_INPUT,
    PORTER_NOT_FOUND,
    PORTER_UNAUTHORIZED,
    PORTER_NETWORK,
    PORTER_INTEGRITY,
    PORTER_IO,
    PORTER_UNSAFE,
    PORTER_OTHER,
    PORTER_EXPIRED,
    PORTER_STORE,
    PORTER_CACHE_CORRUPT,
    PORTER_INTERNAL,
];

impl porter_status {
    /// The stable, machine-readable name (the `kind` of an error JSON). Engine statuses use
    /// `porter_core::ErrorKind::as_str`'s names.
    pub fn name(self) -> &'static str {
        // Every name is ASCII.
        self.c_name().to_str().unwrap_or_default()
    }

    /// [`Self::name`] as a NUL-terminated C string with static lifetime.
    pub fn c_name(self) -> &'static CStr {
        match self {
            PORTER_OK => c"ok",
            PORTER_NULL_PARAMETER => c"null_parameter",
            PORTER_INVALID_UTF8 => c"invalid_utf8",
            PORTER_PANIC => c"panic",
            PORTER_CALLED_FROM_CALLBACK => c"called_from_callback",
            PORTER_RUNTIME_UNAVAILABLE => c"runtime_unavailable",
            PORTER_CANCELLED => c"cancelled",
            PORTER_TIMED_OUT => c"timed_out",
            PORTER_INVALID_INPUT => c"invalid_input",
            PORTER_NOT_FOUND => c"not_found",
            PORTER_UNAUTHORIZED => c"unauthorized",
            PORTER_NETWORK => c"network",
            PORTER_INTEGRITY => c"integrity",
            PORTER_IO => c"io",
            PORTER_UNSAFE => c"unsafe",
            PORTER_OTHER => c"other",
            PORTER_EXPIRED => c"expired",
            PORTER_STORE => c"store",
            PORTER_CACHE_CORRUPT => c"cache_corrupt",
            PORTER_INTERNAL => c"internal",
        }
    }

    /// The status with number `n`, if there is one.
    pub fn from_u32(n: u32) -> Option<Self> {
        ALL.into_iter().find(|s| *s as u32 == n)
    }
}

/// A failure at either boundary: its status and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The status (never `PORTER_OK`).
    pub status: porter_status,
    /// What failed, naming the reference, registry, path or value at fault.
    pub message: String,
}

impl Failure {
    /// A failure with `status`.
    pub fn new(status: porter_status, message: impl Into<String>) -> Self {
        Failure {
            status,
            message: message.into(),
        }
    }

    /// The error JSON handed to C callers:
    /// `{"status":103,"kind":"network","message":"…"}`.
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "status": self.status as u32,
            "kind": self.status.name(),
            "message": self.message,
        })
        .to_string()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The status of an engine error kind.
pub(crate) fn status_of_kind(kind: porter_core::ErrorKind) -> porter_status {
    use porter_core::ErrorKind;
    match kind {
        ErrorKind::InvalidInput => PORTER_INVALID_INPUT,
        ErrorKind::NotFound => PORTER_NOT_FOUND,
        ErrorKind::Unauthorized => PORTER_UNAUTHORIZED,
        ErrorKind::Network => PORTER_NETWORK,
        ErrorKind::Integrity => PORTER_INTEGRITY,
        ErrorKind::Io => PORTER_IO,
        ErrorKind::Unsafe => PORTER_UNSAFE,
        ErrorKind::Cancelled => PORTER_CANCELLED,
        ErrorKind::CacheCorrupt => PORTER_CACHE_CORRUPT,
        ErrorKind::Internal => PORTER_INTERNAL,
        // `ErrorKind` is non-exhaustive: a kind added later is `other` until it gets a number
        // of its own.
        _ => PORTER_OTHER,
    }
}

impl From<porter_core::Error> for Failure {
    fn from(err: porter_core::Error) -> Self {
        Failure::new(status_of_kind(err.kind()), message(&err))
    }
}

/// The message of an engine error as this library's callers read it: the error's text, then the
/// engine's hint named as the option or configuration key to change, never a command-line flag.
pub(crate) fn message(err: &porter_core::Error) -> String {
    match err.hint().map(|hint| hint_text(&hint)) {
        Some(hint) if !hint.is_empty() => format!("{err} (hint: {hint})"),
        _ => err.to_string(),
    }
}

/// A hint in this library's terms.
fn hint_text(hint: &porter_core::error::Hint) -> String {
    use porter_core::error::Hint;
    match hint {
        Hint::PlainHttp { host } => format!(
            "{host} answered in plain HTTP: if it only speaks plain HTTP, set \"insecure\": true \
             in the options or list it in Registry.InsecureRegistries"
        ),
        Hint::PrivateCa { host } => format!(
            "to trust the CA that signed {host}'s certificate, set settings.porter.ca_file in the \
             configuration or put it in ~/.config/ds/certs.d/{host}/ca.crt"
        ),
        Hint::Credentials { host } => format!(
            "check the credentials for {host} (Auth.Credentials in the configuration, or docker's \
             config.json)"
        ),
        Hint::RepairCache => {
            "verify and repair the cache (porter_client_cache_verify with \"repair\": true)".into()
        }
        Hint::NothingCached => {
            "the content did not match its digest or size; nothing was cached".into()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_names_are_unique() {
        assert!(ALL.windows(2).all(|w| (w[0] as u32) < (w[1] as u32)));
        let mut names: Vec<&str> = ALL.iter().map(|s| s.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        for s in ALL {
            assert_eq!(porter_status::from_u32(s as u32), Some(s));
        }
        assert_eq!(porter_status::from_u32(99), None);
    }

    /// The numbers are part of the ABI: changing one breaks every compiled caller.
    #[test]
    fn status_numbers_are_pinned() {
        let pinned: Vec<(u32, &str)> = ALL.iter().map(|s| (*s as u32, s.name())).collect();
        assert_eq!(
            pinned,
            [
                (0, "ok"),
                (1, "null_parameter"),
                (2, "invalid_utf8"),
                (3, "panic"),
                (4, "called_from_callback"),
                (5, "runtime_unavailable"),
                (6, "cancelled"),
                (7, "timed_out"),
                (100, "invalid_input"),
                (101, "not_found"),
                (102, "unauthorized"),
                (103, "network"),
                (104, "integrity"),
                (105, "io"),
                (106, "unsafe"),
                (107, "other"),
                (108, "expired"),
                (109, "store"),
                (110, "cache_corrupt"),
                (111, "internal"),
            ]
        );
    }

    #[test]
    fn engine_errors_keep_their_kind_name_and_message() {
        let err = porter_core::Error::Network {
            registry: "127.0.0.1:1".into(),
            reason: "connection refused".into(),
            cause: porter_core::error::NetworkCause::Connect,
        };
        let failure = Failure::from(err);
        assert_eq!(failure.status, PORTER_NETWORK);
        assert_eq!(
            failure.status.name(),
            porter_core::ErrorKind::Network.as_str()
        );
        assert_eq!(
            failure.to_json(),
            r#"{"status":103,"kind":"network","message":"127.0.0.1:1: connection refused"}"#
        );
        assert_eq!(
            Failure::from(porter_core::Error::Cancelled).status,
            PORTER_CANCELLED
        );
        let wrapped = porter_core::Error::Context {
            context: "failed to export artifact",
            source: Box::new(porter_core::Error::Cancelled),
        };
        assert_eq!(Failure::from(wrapped).status, PORTER_CANCELLED);
    }

    #[test]
    fn messages_name_options_and_settings_never_command_line_flags() {
        let err = porter_core::Error::Network {
            registry: "127.0.0.1:1".into(),
            reason: "manifest 1.0 request: the server answered the TLS handshake in plain HTTP"
                .into(),
            cause: porter_core::error::NetworkCause::PlainHttpAnswer,
        };
        let failure = Failure::from(err);
        assert!(!failure.message.contains("--"), "{failure}");
        assert!(
            failure.message.contains(
                r#"set "insecure": true in the options or list it in Registry.InsecureRegistries"#
            ),
            "{failure}"
        );
    }
}
