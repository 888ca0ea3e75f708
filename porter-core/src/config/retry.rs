//! How registry requests are retried and timed out: a setting like any other
//! (`settings.porter.retries`, `settings.porter.request_timeout`), applied by the registry
//! pipeline's retry combinator.

use std::time::Duration;

/// How registry requests are retried and timed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per request against the upstream registry (1 = no retries).
    pub attempts: u32,
    /// Attempts per request against a mirror before falling back to the next source.
    pub mirror_attempts: u32,
    /// Backoff before the first retry; doubled for every further one.
    pub initial_backoff: Duration,
    /// Longest backoff between two attempts.
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured; a registry asking for more fails the request at once.
    pub max_retry_after: Duration,
    /// Time allowed for a response's headers, a whole manifest, and between two chunks of a blob.
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            mirror_attempts: 2,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
            attempt_timeout: Duration::from_secs(30),
        }
    }
}
