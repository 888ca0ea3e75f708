//! The command line's commands, one module each. A command that uses the engine implements
//! [`EngineCommand`]: its clap arguments become a validated request before any I/O (stage two of
//! parsing; a mistake there exits 2), then the request runs against the engine and returns what
//! goes to stdout. Adding a command is a new module here and one variant in `cli::Command`.

pub mod cache;
pub mod completions;
pub mod copy;
pub mod inspect;
pub mod key;
pub mod list;
pub mod pull;
pub mod push;
pub mod tags;
pub mod verify;
pub mod version;

use porter_core::{Error, Porter};

use crate::output::{Failure, Ui};

/// A command that runs against the engine.
pub trait EngineCommand {
    /// The validated request.
    type Request;

    /// Stage two of parsing: checks values and combinations, before any I/O.
    fn request(&self) -> Result<Self::Request, Error>;

    /// Runs the request and returns the text for stdout; `ui` says how to talk on stderr.
    fn run(porter: &Porter, request: Self::Request, ui: Ui) -> Result<String, Failure>;
}

/// The single-threaded runtime a command's async engine call runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("failed to start the async runtime", "", e))
}

/// Runs `work` on a fresh runtime until it ends or SIGINT/SIGTERM arrives. On a signal,
/// `stop` asks the work to stop (a pull's export stops between two reads and removes what it
/// staged), the work gets a second to do so, then it is dropped (a pull's staging goes with it,
/// its partial downloads stay for the next pull), its writer threads get half a second to flush
/// and let go, and the process exits 130 (SIGINT) or 143 (SIGTERM).
pub(crate) fn until_signal<T>(
    work: impl Future<Output = Result<T, Error>>,
    stop: impl FnOnce(),
) -> Result<T, Error> {
    let rt = runtime()?;
    let ended = rt.block_on(async {
        let work = std::pin::pin!(work);
        let mut work = work;
        tokio::select! {
            result = &mut work => Ok(result),
            code = signalled() => {
                stop();
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), &mut work).await;
                Err(code)
            }
        }
    });
    match ended {
        Ok(result) => result,
        Err(code) => {
            rt.shutdown_timeout(std::time::Duration::from_millis(500));
            std::process::exit(code)
        }
    }
}

/// The exit code of the first SIGINT (130) or SIGTERM (143).
async fn signalled() -> i32 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => 130,
                _ = term.recv() => 143,
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        match tokio::signal::ctrl_c().await {
            Ok(()) => 130,
            Err(_) => std::future::pending().await,
        }
    }
}
