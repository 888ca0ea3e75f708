//! The retry combinator every registry request goes through, and the classification it acts on.
//!
//! Failures are classified once: **transient** (408, 5xx other than 501/505, connection resets,
//! refused connections, timeouts, bodies that break off), **quota** (429) and **permanent**
//! (everything else: 401, 403, 404, TLS failures, digest and size mismatches). Transient and quota
//! failures are retried with jittered exponential backoff; a `Retry-After` the registry sends is
//! honoured up to a cap, beyond which the request fails at once rather than stall a pull for
//! hours. Permanent failures are never retried.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use crate::config::RetryPolicy;
use crate::error::Error;

/// What kind of failure an attempt ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Class {
    /// Worth retrying after a backoff.
    Transient,
    /// The registry throttles us (429): retry, honouring `Retry-After`.
    Quota,
    /// Retrying cannot help.
    Permanent,
}

/// A failed attempt: the error to report, its class, and the registry's `Retry-After`.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: Error,
    pub class: Class,
    pub retry_after: Option<Duration>,
}

impl Failure {
    pub(crate) fn permanent(error: Error) -> Self {
        Failure {
            error,
            class: Class::Permanent,
            retry_after: None,
        }
    }

    pub(crate) fn transient(error: Error) -> Self {
        Failure {
            error,
            class: Class::Transient,
            retry_after: None,
        }
    }

    /// The failure in a few words, for a retry warning: the status and the start of the
    /// registry's message, or the network failure.
    pub(crate) fn short_reason(&self) -> String {
        let text = match &self.error {
            Error::Registry { status, detail, .. } => match detail {
                Some(detail) => format!("HTTP {status}: {detail}"),
                None => format!("HTTP {status}"),
            },
            Error::Network { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        let text = crate::display::escape_remote(&text);
        match text.char_indices().nth(160) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
}

impl From<Error> for Failure {
    /// Classifies an engine error: network failures are transient, a registry status by its
    /// code, everything else (integrity, local I/O, input) permanent.
    fn from(error: Error) -> Self {
        let class = match &error {
            Error::Network { cause, .. } if cause.is_transient() => Class::Transient,
            Error::Registry { status, .. } => classify_status(*status),
            _ => Class::Permanent,
        };
        Failure {
            error,
            class,
            retry_after: None,
        }
    }
}

/// The class of an HTTP error status.
pub(crate) fn classify_status(status: u16) -> Class {
    match status {
        429 => Class::Quota,
        408 => Class::Transient,
        501 | 505 => Class::Permanent,
        500..=599 => Class::Transient,
        _ => Class::Permanent,
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

/// Counts the attempts of one request and decides, after each failure, whether and when to try
/// again.
#[derive(Debug)]
pub(crate) struct Retrier<'a> {
    policy: &'a RetryPolicy,
    limit: u32,
    failed: u32,
}

impl<'a> Retrier<'a> {
    /// A retrier allowing `limit` attempts (at least one).
    pub(crate) fn new(policy: &'a RetryPolicy, limit: u32) -> Self {
        Retrier {
            policy,
            limit: limit.max(1),
            failed: 0,
        }
    }

    /// Runs `attempt` until it succeeds, fails permanently, or runs out of attempts, pausing
    /// between attempts as the policy says.
    pub(crate) async fn run<T, F, Fut>(
        mut self,
        target: &(dyn Display + Sync),
        mut attempt: F,
    ) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Failure>>,
    {
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(failure) => self.pause(failure, target).await?,
            }
        }
    }

    /// After a failed attempt: sleeps before the next one, with one warning line naming the
    /// attempt, `target`, the reason and the delay; or returns the error to report.
    pub(crate) async fn pause(
        &mut self,
        failure: Failure,
        target: &(dyn Display + Sync),
    ) -> Result<(), Error> {
        let reason = failure.short_reason();
        let attempt = self.failed + 1;
        let delay = self.next_delay(failure)?;
        tracing::warn!(
            "attempt {attempt}/{} of {target} failed ({reason}); retrying in {:.1}s",
            self.limit,
            delay.as_secs_f64()
        );
        tokio::time::sleep(delay).await;
        Ok(())
    }

    /// After a failed attempt: `Ok(delay)` to try again after `delay`, or the error to report
    /// (permanent, out of attempts, or a `Retry-After` beyond the cap).
    pub(crate) fn next_delay(&mut self, failure: Failure) -> Result<Duration, Error> {
        self.failed += 1;
        if failure.class == Class::Permanent {
            return Err(failure.error);
        }
        if self.failed >= self.limit {
            return Err(with_note(
                failure.error,
                &format!("gave up after {} attempts", self.failed),
            ));
        }
        if let Some(wait) = failure.retry_after {
            if wait > self.policy.max_retry_after {
                return Err(with_note(
                    failure.error,
                    &format!(
                        "the registry asks to retry after {}s, more than the {}s ds-porter waits",
                        wait.as_secs(),
                        self.policy.max_retry_after.as_secs()
                    ),
                ));
            }
            return Ok(wait + jitter(Duration::from_millis(100)));
        }
        let exponent = (self.failed - 1).min(16);
        let mut backoff = self
            .policy
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.policy.max_backoff);
        if failure.class == Class::Quota {
            backoff = backoff.max(Duration::from_secs(1));
        }
        // Equal jitter: half fixed, half random, so concurrent clients spread out but never
        // hammer the registry with a zero wait.
        Ok(backoff / 2 + jitter(backoff / 2))
    }
}

/// A uniformly random duration in `[0, max]`.
fn jitter(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// Appends `note` to the human part of a registry or network error.
fn with_note(error: Error, note: &str) -> Error {
    match error {
        Error::Network {
            registry,
            reason,
            cause,
        } => Error::Network {
            registry,
            reason: format!("{reason} ({note})"),
            cause,
        },
        Error::Registry {
            registry,
            repository,
            what,
            status,
            detail,
        } => Error::Registry {
            registry,
            repository,
            what,
            status,
            detail: Some(match detail {
                Some(d) => format!("{d} ({note})"),
                None => note.to_owned(),
            }),
        },
        other => other,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn status(code: u16) -> Failure {
        Failure::from(Error::Registry {
            registry: "r.io".into(),
            repository: "a/b".into(),
            what: "manifest request".into(),
            status: code,
            detail: None,
        })
    }

    #[test]
    fn statuses_are_classified() {
        for code in [408, 500, 502, 503, 504] {
            assert_eq!(classify_status(code), Class::Transient, "{code}");
        }
        assert_eq!(classify_status(429), Class::Quota);
        for code in [400, 401, 403, 404, 416, 501, 505] {
            assert_eq!(classify_status(code), Class::Permanent, "{code}");
        }
    }

    #[test]
    fn permanent_failures_are_not_retried() {
        let policy = RetryPolicy::default();
        let mut retrier = Retrier::new(&policy, 5);
        let err = retrier.next_delay(status(404)).unwrap_err();
        assert!(err.to_string().contains("HTTP 404"), "{err}");
        assert!(!err.to_string().contains("attempts"), "{err}");
    }

    #[test]
    fn backoff_grows_is_jittered_and_capped_and_attempts_are_bounded() {
        let policy = RetryPolicy {
            attempts: 6,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
            ..RetryPolicy::default()
        };
        let mut retrier = Retrier::new(&policy, policy.attempts);
        let delays: Vec<Duration> = (0..5)
            .map(|_| retrier.next_delay(status(503)).unwrap())
            .collect();
        let bounds = [(50, 100), (100, 200), (150, 300), (150, 300), (150, 300)];
        for (delay, (low, high)) in delays.iter().zip(bounds) {
            assert!(
                *delay >= Duration::from_millis(low) && *delay <= Duration::from_millis(high),
                "{delays:?}"
            );
        }
        let err = retrier.next_delay(status(503)).unwrap_err();
        assert!(
            err.to_string().contains("gave up after 6 attempts"),
            "{err}"
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let mut retrier = Retrier::new(&policy, 5);
        let mut throttled = status(429);
        throttled.retry_after = Some(Duration::from_secs(2));
        let delay = retrier.next_delay(throttled).unwrap();
        assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_millis(2100));

        let mut throttled = status(429);
        throttled.retry_after = Some(Duration::from_secs(3600));
        let err = retrier.next_delay(throttled).unwrap_err();
        assert!(err.to_string().contains("retry after 3600s"), "{err}");

        // Without Retry-After, a 429 waits at least a second.
        let mut retrier = Retrier::new(&policy, 5);
        assert!(retrier.next_delay(status(429)).unwrap() >= Duration::from_millis(500));
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let parsed = parse_retry_after(&later).unwrap();
        assert!(parsed > Duration::from_secs(25) && parsed <= Duration::from_secs(30));
        assert_eq!(parse_retry_after("soon"), None);
    }
}
