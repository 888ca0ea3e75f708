//! Logging for the command line: human text on stderr, never on stdout.

use porter_core::config::LoggingSettings;
use tracing_subscriber::EnvFilter;

/// Installs the stderr subscriber. `--log-level` wins over the configured level; `RUST_LOG`
/// wins over both.
pub fn init_cli(flag: Option<&str>, settings: &LoggingSettings) {
    let level = flag.unwrap_or(&settings.level);
    let level = match level.trim().to_ascii_lowercase().as_str() {
        "warning" => "warn".to_owned(),
        other => other.to_owned(),
    };
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(format!("{level},oci_client=warn,reqwest=warn,hyper=warn")))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
