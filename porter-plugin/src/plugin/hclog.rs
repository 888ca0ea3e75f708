//! Logging in plugin mode: every `tracing` event becomes one hclog-JSON line on stderr, the
//! format the go-plugin host parses (`@level`, `@message`, `@module`, `@timestamp` with exactly
//! six fractional digits; spec/go-plugin-protocol.md §9.2), and optionally a line in the file
//! named by DS's `Logging.Output`.
//!
//! DS re-logs our stderr through its own logger, which may print on DS's stdout. So stderr
//! carries only warnings and errors unless DS runs at `debug`/`trace`; the log file, when
//! configured, gets everything at the configured level (ds-contract §1.6).

use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

use porter_core::config::LoggingSettings;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

/// `@module` of every record.
const MODULE: &str = "ds-porter";
/// The host reads stderr with a 64 KiB line buffer; stay well below it.
const MAX_LINE: usize = 60 * 1024;

/// Levels as numbers: 0 = off, 1 = error … 5 = trace.
const OFF: u8 = 0;
const WARN: u8 = 2;

static STDERR_LEVEL: AtomicU8 = AtomicU8::new(WARN);
static FILE_LEVEL: AtomicU8 = AtomicU8::new(OFF);
static FILE: Mutex<Option<LogFile>> = Mutex::new(None);

#[derive(Debug)]
struct LogFile {
    json: bool,
    writer: BufWriter<File>,
}

/// Installs the hclog subscriber (stderr, warnings and errors until [`configure`] runs).
pub fn init() {
    let _ = tracing_subscriber::registry().with(HclogLayer).try_init();
}

/// Applies DS's logging settings; returns problems to log once logging is set up.
pub fn configure(settings: &LoggingSettings) -> Vec<String> {
    let level = level_number(&settings.level);
    STDERR_LEVEL.store(stderr_threshold(level), Ordering::Relaxed);

    let output = settings.output.trim();
    let mut problems = Vec::new();
    let file = match output.to_ascii_lowercase().as_str() {
        // stdout belongs to the go-plugin protocol; DS's default `stdout` means "the console".
        "" | "stderr" | "stdout" => None,
        _ => match open_log_file(Path::new(output)) {
            Ok(file) => Some(LogFile {
                json: settings.format == "json",
                writer: BufWriter::new(file),
            }),
            Err(err) => {
                problems.push(format!(
                    "cannot open log file {output}: {err}; logging to stderr"
                ));
                None
            }
        },
    };
    let mut slot = FILE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(old) = slot.as_mut() {
        let _ = old.writer.flush();
    }
    FILE_LEVEL.store(if file.is_some() { level } else { OFF }, Ordering::Relaxed);
    *slot = file;
    problems
}

/// Flushes the log file (before the process exits).
pub fn flush() {
    if let Some(file) = FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        let _ = file.writer.flush();
    }
}

fn open_log_file(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

/// info → warn on stderr; debug/trace and error/off as configured.
fn stderr_threshold(level: u8) -> u8 {
    if level == 3 { WARN } else { level }
}

fn level_number(name: &str) -> u8 {
    match name {
        "off" => 0,
        "error" => 1,
        "warn" => 2,
        "debug" => 4,
        "trace" => 5,
        _ => 3,
    }
}

fn event_level(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

/// Our own crates log at the configured level; libraries (h2, hyper, tonic) only warnings.
fn wanted(metadata: &Metadata<'_>, threshold: u8) -> bool {
    let level = event_level(metadata.level());
    let ours =
        metadata.target().starts_with("ds_porter") || metadata.target().starts_with("porter_core");
    level <= threshold && (ours || level <= WARN)
}

struct HclogLayer;

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // Levels change when DS's config arrives, so ask `enabled` every time.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>, _: Context<'_, S>) -> bool {
        let threshold = STDERR_LEVEL
            .load(Ordering::Relaxed)
            .max(FILE_LEVEL.load(Ordering::Relaxed));
        wanted(metadata, threshold)
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        let to_stderr = wanted(metadata, STDERR_LEVEL.load(Ordering::Relaxed));
        let to_file = wanted(metadata, FILE_LEVEL.load(Ordering::Relaxed));
        if !to_stderr && !to_file {
            return;
        }
        let mut visitor = Fields::default();
        event.record(&mut visitor);
        let record = Record {
            level: level_name(metadata.level()),
            timestamp: chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string(),
            message: visitor.message,
            fields: visitor.fields,
        };
        if to_stderr {
            let line = record.json_line();
            let _ = io::stderr().lock().write_all(line.as_bytes());
        }
        if to_file && let Some(file) = FILE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let line = if file.json {
                record.json_line()
            } else {
                record.text_line()
            };
            let _ = file.writer.write_all(line.as_bytes());
            if metadata.level() <= &Level::WARN {
                let _ = file.writer.flush();
            }
        }
    }
}

/// One log record, ready to format.
#[derive(Debug)]
struct Record {
    level: &'static str,
    timestamp: String,
    message: String,
    fields: Map<String, Value>,
}

impl Record {
    /// `{"@level":…,"@message":…,"@module":…,"@timestamp":…,<fields>}` + `\n`, below 64 KiB.
    fn json_line(&self) -> String {
        let render = |message: &str, fields: &Map<String, Value>| {
            let mut obj = Map::new();
            obj.insert("@level".into(), self.level.into());
            obj.insert("@message".into(), message.into());
            obj.insert("@module".into(), MODULE.into());
            obj.insert("@timestamp".into(), self.timestamp.clone().into());
            for (key, value) in fields {
                obj.entry(key.clone()).or_insert_with(|| value.clone());
            }
            let mut line = Value::Object(obj).to_string();
            line.push('\n');
            line
        };
        let line = render(&self.message, &self.fields);
        if line.len() <= MAX_LINE {
            return line;
        }
        let mut cut = MAX_LINE / 2;
        while !self.message.is_char_boundary(cut.min(self.message.len())) {
            cut -= 1;
        }
        let message = format!(
            "{}… (truncated)",
            &self.message[..cut.min(self.message.len())]
        );
        render(&message, &Map::new())
    }

    /// `<timestamp> [INFO]  ds-porter: message: key=value …` + `\n`, hclog's text shape.
    fn text_line(&self) -> String {
        let mut line = format!(
            "{} [{:<5}] {MODULE}: {}",
            self.timestamp,
            self.level.to_uppercase(),
            self.message
        );
        for (key, value) in &self.fields {
            match value {
                Value::String(s) => {
                    let _ = write!(line, " {key}={s:?}");
                }
                other => {
                    let _ = write!(line, " {key}={other}");
                }
            }
        }
        line.push('\n');
        line
    }
}

#[derive(Default)]
struct Fields {
    message: String,
    fields: Map<String, Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = match value {
                Value::String(s) => s,
                other => other.to_string(),
            };
        } else {
            self.fields.insert(field.name().to_owned(), value);
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(
            field,
            serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
        );
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn record(message: &str) -> Record {
        let mut fields = Map::new();
        fields.insert("count".into(), 3.into());
        fields.insert("path".into(), "/tmp/x".into());
        Record {
            level: "info",
            timestamp: "2026-11-27T17:27:09.483025Z".into(),
            message: message.into(),
            fields,
        }
    }

    #[test]
    fn json_line_has_the_hclog_keys_as_strings_first() {
        let line = record("hello \"world\"").json_line();
        assert!(line.ends_with('\n'));
        assert_eq!(
            line.trim_end(),
            r#"{"@level":"info","@message":"hello \"world\"","@module":"ds-porter","@timestamp":"2026-11-27T17:27:09.483025Z","count":3,"path":"/tmp/x"}"#
        );
    }

    #[test]
    fn newlines_and_control_characters_stay_inside_one_json_line() {
        let hostile = "line one\nline two\r\n\t\u{1b}[31mred\u{0}\u{7f}\u{2028}end";
        let mut rec = record(hostile);
        rec.fields.insert("detail".into(), "a\nb".into());
        let line = rec.json_line();
        assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        assert!(line.ends_with('\n'));
        let parsed: Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(parsed["@message"], hostile);
        assert_eq!(parsed["detail"], "a\nb");
    }

    #[test]
    fn timestamps_have_exactly_six_fraction_digits_and_z() {
        let ts = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let fraction = ts.split('.').nth(1).unwrap();
        assert_eq!(fraction.len(), 7, "{ts}");
        assert!(fraction.ends_with('Z'));
    }

    #[test]
    fn overlong_messages_are_truncated_below_the_host_buffer() {
        let line = record(&"é".repeat(100_000)).json_line();
        assert!(line.len() <= MAX_LINE);
        let value: Value = serde_json::from_str(&line).unwrap();
        assert!(value["@message"].as_str().unwrap().ends_with("(truncated)"));
    }

    #[test]
    fn text_line_reads_like_hclog() {
        assert_eq!(
            record("done").text_line(),
            "2026-11-27T17:27:09.483025Z [INFO ] ds-porter: done count=3 path=\"/tmp/x\"\n"
        );
    }

    #[test]
    fn stderr_keeps_warnings_unless_ds_runs_at_debug() {
        for (level, expected) in [
            ("info", WARN),
            ("debug", 4),
            ("trace", 5),
            ("error", 1),
            ("off", OFF),
        ] {
            let settings = LoggingSettings {
                level: level.into(),
                ..LoggingSettings::default()
            };
            configure(&settings);
            assert_eq!(STDERR_LEVEL.load(Ordering::Relaxed), expected, "{level}");
        }
        configure(&LoggingSettings::default());
    }
}
