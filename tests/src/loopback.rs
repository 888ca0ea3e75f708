//! The accepting side the in-test servers share ([`FakeRegistry`], [`FaultProxy`], [`TlsFront`]):
//! a listener on a free port of 127.0.0.1 whose connections each go to a thread of their own,
//! bounded in lifetime and stopped when dropped.
//!
//! [`FakeRegistry`]: crate::FakeRegistry
//! [`FaultProxy`]: crate::FaultProxy
//! [`TlsFront`]: crate::TlsFront

use std::io;
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often the accept loop looks for a connection or a stop.
const ACCEPT_POLL: Duration = Duration::from_millis(5);

/// A running server; stops accepting when dropped.
pub(crate) struct Loopback {
    host: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Loopback {
    /// Listens on a free port of 127.0.0.1 and hands every connection to `serve` on a thread of
    /// its own, for at most `lifetime` (a leaked server stops by itself). `what` names the
    /// server in a failure to bind.
    pub(crate) fn start<F>(what: &str, lifetime: Duration, serve: F) -> Self
    where
        F: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
    {
        let listener =
            TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind the {what}: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("make the {what} non-blocking: {e}"));
        let host = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{what} address: {e}"))
            .to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            let serve = Arc::new(serve);
            thread::spawn(move || accept_loop(&listener, lifetime, &stop, &serve))
        };
        Loopback {
            host,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host(&self) -> &str {
        &self.host
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept_loop<F>(listener: &TcpListener, lifetime: Duration, stop: &AtomicBool, serve: &Arc<F>)
where
    F: Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static,
{
    let started = Instant::now();
    let max_polls = lifetime.as_millis() / ACCEPT_POLL.as_millis();
    for _ in 0..max_polls {
        if stop.load(Ordering::Relaxed) || started.elapsed() > lifetime {
            return;
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let serve = Arc::clone(serve);
                thread::spawn(move || {
                    let _ = serve(stream);
                });
            }
            Err(_) => thread::sleep(ACCEPT_POLL),
        }
    }
}
