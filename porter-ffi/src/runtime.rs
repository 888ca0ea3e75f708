//! The one tokio runtime this library owns, and how calls run on it.
//!
//! Foreign callers are threads the runtime does not know (goroutines' threads, Python's). A call
//! drives its operation with `block_on` on the caller's thread, so many callers run at once and
//! progress callbacks run on the caller's thread; tasks the engine spawns (blob writers, export)
//! run on the runtime's threads. `block_on` is never entered from a runtime thread (a callback
//! calling back into the library): that is refused with `PORTER_CALLED_FROM_CALLBACK` instead of
//! panicking or deadlocking.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime};
use tokio::sync::watch;

use crate::status::{Failure, porter_status};

/// The runtime, started on first use and never shut down (foreign processes exit without
/// telling us).
pub(crate) fn runtime() -> Result<&'static Runtime, Failure> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("porter-ffi")
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            Failure::new(
                porter_status::PORTER_RUNTIME_UNAVAILABLE,
                format!("cannot start the tokio runtime: {e}"),
            )
        })
}

/// A cancellation flag shared by every operation started with it; once set, it stays set.
#[derive(Debug)]
pub(crate) struct Cancel(watch::Sender<bool>);

impl Default for Cancel {
    fn default() -> Self {
        Cancel(watch::Sender::new(false))
    }
}

impl Cancel {
    /// Cancels every operation using this flag, now and later.
    pub(crate) fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Resolves once cancelled.
    async fn cancelled(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so `wait_for` ends only by cancellation.
        let _ = rx.wait_for(|cancelled| *cancelled).await;
    }
}

/// Runs `work` to completion on the calling (foreign) thread, or until `cancel` fires; dropping
/// the work abandons its transfers, and nothing unverified becomes visible in the cache.
pub(crate) fn block_on<T>(
    cancel: Option<&Cancel>,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    if Handle::try_current().is_ok() {
        return Err(Failure::new(
            porter_status::PORTER_CALLED_FROM_CALLBACK,
            "porter functions cannot be called from a progress callback",
        ));
    }
    let runtime = runtime()?;
    runtime.block_on(async move {
        match cancel {
            None => work.await,
            Some(cancel) => tokio::select! {
                biased;
                () = cancel.cancelled() => Err(cancelled()),
                result = work => result,
            },
        }
    })
}

/// The failure of a cancelled operation.
fn cancelled() -> Failure {
    Failure::new(porter_status::PORTER_CANCELLED, "operation cancelled")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_cancelled_flag_stops_running_and_later_work() {
        let cancel = Cancel::default();
        std::thread::scope(|s| {
            let running = s.spawn(|| {
                block_on(Some(&cancel), async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok(())
                })
            });
            std::thread::sleep(Duration::from_millis(50));
            cancel.cancel();
            assert_eq!(
                running.join().unwrap().unwrap_err().status,
                porter_status::PORTER_CANCELLED
            );
        });
        let later = block_on(Some(&cancel), async { Ok(()) });
        assert_eq!(later.unwrap_err().status, porter_status::PORTER_CANCELLED);
        assert_eq!(block_on(None, async { Ok(7) }).unwrap(), 7);
    }

    #[test]
    fn block_on_from_a_runtime_thread_is_refused() {
        let inner = runtime()
            .unwrap()
            .block_on(async { tokio::spawn(async { block_on(None, async { Ok(()) }) }).await })
            .unwrap();
        assert_eq!(
            inner.unwrap_err().status,
            porter_status::PORTER_CALLED_FROM_CALLBACK
        );
    }
}
