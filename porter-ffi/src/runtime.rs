//! The one tokio runtime this library owns, and how calls run on it, stop, and are waited for.
//!
//! Foreign callers are threads the runtime does not know (goroutines' threads, Python's). A call
//! drives its operation with `block_on` on the caller's thread, so many callers run at once and
//! progress callbacks run on the caller's thread, only while its call runs; tasks the engine
//! spawns (blob writers, export) run on the runtime's threads. `block_on` is never entered from a
//! runtime thread (a callback calling back into the library): that is refused with
//! `PORTER_CALLED_FROM_CALLBACK` instead of panicking or deadlocking.
//!
//! Every call gets its own [`CancellationToken`], a child of its `porter_call`'s, and is
//! registered with each handle it uses ([`Running`]). Cancelling, a handle being closed and a
//! call's deadline all fire that token, and the call returns once its work has stopped: pulls and
//! exports stop cooperatively and remove what they staged; other operations are dropped, which
//! abandons their transfers.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, Runtime};
use tokio_util::sync::CancellationToken;

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

/// The calls running with one handle (a client, an adapter or a `porter_call`), so that closing
/// the handle can cancel them and wait until they have returned.
#[derive(Debug, Default)]
pub(crate) struct Running {
    state: Mutex<State>,
    idle: Condvar,
}

#[derive(Debug, Default)]
struct State {
    next: u64,
    calls: HashMap<u64, CancellationToken>,
    closed: bool,
}

impl Running {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is a counter and a map; a panic cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a call until the returned guard is dropped; a closed handle refuses it.
    fn enter(self: &Arc<Self>, token: &CancellationToken) -> Result<Entered, Failure> {
        let mut state = self.lock();
        if state.closed {
            return Err(Failure::new(
                porter_status::PORTER_CANCELLED,
                "the handle is closed",
            ));
        }
        let id = state.next;
        state.next += 1;
        state.calls.insert(id, token.clone());
        Ok(Entered {
            running: Arc::clone(self),
            id,
        })
    }

    /// Refuses new calls, cancels the running ones, and waits until they have returned. Called
    /// from a progress callback (where waiting would wait for the caller itself) it does not wait.
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        state.closed = true;
        for token in state.calls.values() {
            token.cancel();
        }
        if Handle::try_current().is_ok() {
            return;
        }
        while !state.calls.is_empty() {
            state = self
                .idle
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// A call's registration with a handle.
#[derive(Debug)]
struct Entered {
    running: Arc<Running>,
    id: u64,
}

impl Drop for Entered {
    fn drop(&mut self) {
        let mut state = self.running.lock();
        state.calls.remove(&self.id);
        if state.calls.is_empty() {
            self.running.idle.notify_all();
        }
    }
}

/// How a call is run.
#[derive(Debug, Default)]
pub(crate) struct Control<'a> {
    /// The `porter_call`'s token: the call's token is its child.
    pub parent: Option<&'a CancellationToken>,
    /// The handles the call uses.
    pub handles: Vec<&'a Arc<Running>>,
    /// The most time the call may take (`timeout_ms`).
    pub timeout: Option<Duration>,
}

/// Runs `work` to completion on the calling (foreign) thread. `work` gets the call's token and
/// must stop soon after it fires; the call returns only once `work` has. When the deadline passes
/// first, the token fires and a cancelled outcome becomes `PORTER_TIMED_OUT`.
pub(crate) fn run<T, F, Fut>(control: Control<'_>, work: F) -> Result<T, Failure>
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    if Handle::try_current().is_ok() {
        return Err(Failure::new(
            porter_status::PORTER_CALLED_FROM_CALLBACK,
            "porter functions cannot be called from a progress callback",
        ));
    }
    let runtime = runtime()?;
    let token = control
        .parent
        .map_or_else(CancellationToken::new, CancellationToken::child_token);
    let _entered = control
        .handles
        .iter()
        .map(|running| running.enter(&token))
        .collect::<Result<Vec<_>, _>>()?;
    if token.is_cancelled() {
        return Err(cancelled());
    }
    let work = work(token.clone());
    runtime.block_on(async move {
        tokio::pin!(work);
        let Some(limit) = control.timeout else {
            return work.await;
        };
        tokio::select! {
            biased;
            result = &mut work => return result,
            () = tokio::time::sleep(limit) => token.cancel(),
        }
        match work.await {
            Err(failure) if failure.status == porter_status::PORTER_CANCELLED => {
                Err(timed_out(limit))
            }
            other => other,
        }
    })
}

/// `work` for operations that cannot stop on their own: dropped when `token` fires, which
/// abandons its transfers (nothing unverified becomes visible in the cache).
pub(crate) async fn abandon_on_cancel<T>(
    token: CancellationToken,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    token
        .run_until_cancelled(work)
        .await
        .unwrap_or_else(|| Err(cancelled()))
}

/// The failure of a cancelled operation.
pub(crate) fn cancelled() -> Failure {
    Failure::new(porter_status::PORTER_CANCELLED, "operation cancelled")
}

fn timed_out(limit: Duration) -> Failure {
    Failure::new(
        porter_status::PORTER_TIMED_OUT,
        format!(
            "the call did not finish within timeout_ms ({} ms) and was stopped",
            limit.as_millis()
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Work that sleeps until cancelled, then takes `cleanup` to stop, and records that it did.
    async fn stops_slowly(
        token: CancellationToken,
        cleanup: Duration,
        stopped: &AtomicBool,
    ) -> Result<(), Failure> {
        token.cancelled().await;
        tokio::time::sleep(cleanup).await;
        stopped.store(true, Ordering::SeqCst);
        Err(cancelled())
    }

    #[test]
    fn a_cancelled_call_returns_after_its_work_has_stopped() {
        let parent = CancellationToken::new();
        let stopped = AtomicBool::new(false);
        std::thread::scope(|s| {
            let running = s.spawn(|| {
                let control = Control {
                    parent: Some(&parent),
                    ..Control::default()
                };
                run(control, |t| {
                    stops_slowly(t, Duration::from_millis(200), &stopped)
                })
            });
            std::thread::sleep(Duration::from_millis(50));
            parent.cancel();
            let failure = running.join().unwrap().unwrap_err();
            assert_eq!(failure.status, porter_status::PORTER_CANCELLED);
            assert!(
                stopped.load(Ordering::SeqCst),
                "returned before the work stopped"
            );
        });
        let later = run(
            Control {
                parent: Some(&parent),
                ..Control::default()
            },
            |_| async { Ok(()) },
        );
        assert_eq!(later.unwrap_err().status, porter_status::PORTER_CANCELLED);
        assert_eq!(run(Control::default(), |_| async { Ok(7) }).unwrap(), 7);
    }

    #[test]
    fn a_deadline_stops_the_work_and_reports_timed_out() {
        let stopped = AtomicBool::new(false);
        let control = Control {
            timeout: Some(Duration::from_millis(30)),
            ..Control::default()
        };
        let failure = run(control, |t| stops_slowly(t, Duration::ZERO, &stopped)).unwrap_err();
        assert_eq!(failure.status, porter_status::PORTER_TIMED_OUT);
        assert!(failure.message.contains("timeout_ms (30 ms)"), "{failure}");
        assert!(stopped.load(Ordering::SeqCst));
        let quick = Control {
            timeout: Some(Duration::from_secs(60)),
            ..Control::default()
        };
        assert_eq!(run(quick, |_| async { Ok(1) }).unwrap(), 1);
    }

    #[test]
    fn closing_a_handle_cancels_its_calls_waits_for_them_and_refuses_new_ones() {
        let running = Arc::new(Running::default());
        let stopped = AtomicBool::new(false);
        std::thread::scope(|s| {
            let call = s.spawn(|| {
                let control = Control {
                    handles: vec![&running],
                    ..Control::default()
                };
                run(control, |t| {
                    stops_slowly(t, Duration::from_millis(200), &stopped)
                })
            });
            // Bounded wait until the call is registered.
            for _ in 0..500 {
                if !running.lock().calls.is_empty() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            running.close();
            assert!(
                stopped.load(Ordering::SeqCst),
                "close returned before the call stopped"
            );
            assert!(running.lock().calls.is_empty());
            let failure = call.join().unwrap().unwrap_err();
            assert_eq!(failure.status, porter_status::PORTER_CANCELLED);
        });
        let refused = run(
            Control {
                handles: vec![&running],
                ..Control::default()
            },
            |_| async { Ok(()) },
        );
        assert_eq!(refused.unwrap_err().message, "the handle is closed");
    }

    #[test]
    fn run_from_a_runtime_thread_is_refused() {
        let inner = runtime()
            .unwrap()
            .block_on(async {
                tokio::spawn(async { run(Control::default(), |_| async { Ok(()) }) }).await
            })
            .unwrap();
        assert_eq!(
            inner.unwrap_err().status,
            porter_status::PORTER_CALLED_FROM_CALLBACK
        );
    }
}
