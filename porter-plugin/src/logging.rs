//! Logging for the command line: human text on stderr, never on stdout.

use porter_core::config::LoggingSettings;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::util::SubscriberInitExt;

/// A log level the command line accepts (`--log-level`, or `-q`/`-v` for short).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    /// Errors only.
    Error,
    /// Warnings and errors.
    #[value(alias = "warning")]
    Warn,
    /// What ds-porter is doing.
    Info,
    /// Details for diagnosing a problem.
    Debug,
    /// Everything.
    Trace,
}

impl Level {
    /// The `tracing` filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }
}

/// Installs the stderr subscriber. The level from the command line wins over the configured
/// level; `RUST_LOG` wins over both. `color` allows ANSI colours.
pub fn init_cli(flag: Option<Level>, settings: &LoggingSettings, color: bool) {
    let level = match flag {
        Some(level) => level.as_str().to_owned(),
        None => match settings.level.trim().to_ascii_lowercase().as_str() {
            "warning" => "warn".to_owned(),
            other => other.to_owned(),
        },
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{level},oci_client=warn,reqwest=warn,hyper=warn")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = subscriber(color, filter).try_init();
}

/// Runs `f` with a plain stderr subscriber at `level` (for what happens before the settings that
/// configure logging are read).
pub fn with_early<T>(level: Level, color: bool, f: impl FnOnce() -> T) -> T {
    tracing::subscriber::with_default(subscriber(color, EnvFilter::new(level.as_str())), f)
}

fn subscriber(color: bool, filter: EnvFilter) -> impl tracing::Subscriber + Send + Sync {
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(color)
        .finish()
}
