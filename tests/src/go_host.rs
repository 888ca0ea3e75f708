//! Running `ds-porter` under the go-plugin v1.7.0 test host (`tests/go-host`), exactly as DS
//! launches plugins: one [`Launch`] per plugin process, with its own HOME, cache and working
//! directory, reporting what the host saw as JSON.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::binary::ds_porter_bin;

/// Upper bound for one host run (the longest case waits 5 s for a ConnInfo that never comes).
pub const HOST_TIMEOUT: Duration = Duration::from_secs(120);
/// Upper bound for building the Go host (module download on a cold cache included).
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Builds the Go program in `tests/<package>` once per test binary, into the test
/// executable's directory (named after the test binary, so suites never share an output file).
pub fn go_build(package: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("locate the running test executable");
    let stem = exe
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let out = exe
        .parent()
        .expect("the test executable has a directory")
        .join(format!("{package}-{stem}"));
    let mut child = Command::new("go")
        .args(["build", "-mod=readonly", "-o"])
        .arg(&out)
        .arg(".")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(package))
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("run `go build` for tests/{package} (is Go installed?): {e}"));
    let status = wait_bounded(&mut child, BUILD_TIMEOUT).expect("go build timed out");
    assert!(
        status.success(),
        "go build of tests/{package} failed: {status}"
    );
    out
}

/// The go-plugin host, built once per test binary.
pub fn go_host() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| go_build("go-host")).clone()
}

/// Waits for `child` at most `limit`; kills it and returns `None` past that.
pub fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One plugin launch through the go-plugin host, in its own HOME and working directory.
#[derive(Debug)]
pub struct Launch {
    dir: tempfile::TempDir,
    args: Vec<String>,
}

impl Default for Launch {
    fn default() -> Self {
        Self::new()
    }
}

impl Launch {
    /// The launch's directory (the plugin's working directory).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A launch in a fresh temp directory (its HOME is `<dir>/home`).
    pub fn new() -> Self {
        Launch {
            dir: tempfile::tempdir().unwrap(),
            args: Vec::new(),
        }
    }

    /// Extra host flags.
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.args.extend(flags.iter().map(|s| s.to_string()));
        self
    }

    /// Execute `op` with these `key=value` args.
    pub fn execute(mut self, op: &str, args: &[&str]) -> Self {
        self.args.extend(["-op".into(), op.into()]);
        for a in args {
            self.args.extend(["-arg".into(), a.to_string()]);
        }
        self
    }

    /// Adds `args` to the latest Execute through a file (`-args-file`): values longer than an
    /// argv string may be, and exact strings (empty, blank).
    pub fn args_file(mut self, args: &[String]) -> Self {
        let n = self.args.len();
        let path = self.dir.path().join(format!("args-{n}.json"));
        std::fs::write(&path, serde_json::to_vec(args).unwrap()).unwrap();
        self.args
            .extend(["-args-file".into(), path.display().to_string()]);
        self
    }

    /// The HostConfig JSON the host serves through the broker.
    pub fn config(mut self, json: &str) -> Self {
        let path = self.dir.path().join("host-config.json");
        std::fs::write(&path, json).unwrap();
        self.args
            .extend(["-config".into(), path.display().to_string()]);
        self
    }

    /// A HostConfig whose cache is `<dir>/cache` (porter uses `<dir>/cache/porter`).
    pub fn cache_config(self) -> Self {
        let cache = self.cache_root();
        self.config(&json!({"Cache": {"Dir": cache}, "Logging": {"Level": "debug"}}).to_string())
    }

    /// `<dir>/cache`, the DS `Cache.Dir` of [`Launch::cache_config`].
    pub fn cache_root(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The porter cache under [`Launch::cache_root`].
    pub fn porter_cache(&self) -> PathBuf {
        self.cache_root().join("porter")
    }

    /// The plugin's HOME.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// Runs the host once and returns its JSON report (asserting it saw no host errors and
    /// only hclog lines on stderr).
    pub fn run(&self) -> Value {
        std::fs::create_dir_all(self.home()).unwrap();
        let mut child = Command::new(go_host())
            .arg("-plugin")
            .arg(ds_porter_bin())
            .args(&self.args)
            .current_dir(self.dir.path())
            .env("HOME", self.home())
            .env("TMPDIR", self.dir.path())
            .env_remove("DS_CACHE_DIR")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            stdout.read_to_string(&mut text).unwrap();
            text
        });
        let status =
            wait_bounded(&mut child, HOST_TIMEOUT).expect("go-host did not finish in time");
        let text = reader.join().unwrap();
        assert!(status.success(), "go-host failed ({status}): {text}");
        let report: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad report {e}: {text}"));
        assert_eq!(report["errors"], json!([]), "host errors: {report:#}");
        assert_hclog_lines(&report);
        report
    }
}

/// Every line the plugin wrote to stderr is an hclog JSON record the host can parse.
pub fn assert_hclog_lines(report: &Value) {
    for line in report["plugin_stderr"].as_array().unwrap() {
        let line = line.as_str().unwrap();
        let record: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        for key in ["@level", "@message", "@timestamp", "@module"] {
            assert!(record[key].is_string(), "{key} is not a string in {line}");
        }
        let level = record["@level"].as_str().unwrap();
        assert!(
            ["trace", "debug", "info", "warn", "error"].contains(&level),
            "{line}"
        );
        let ts = record["@timestamp"].as_str().unwrap();
        let fraction = ts.split('.').nth(1).unwrap_or_default();
        assert!(
            ts.len() == 27 && fraction.len() == 7 && ts.ends_with('Z'),
            "timestamp {ts} in {line}"
        );
        assert!(line.len() < 64 * 1024);
    }
}

/// The report's (last) Execute.
pub fn execute(report: &Value) -> &Value {
    &report["execute"]
}

/// Every Execute of the launch, in `-op` order.
pub fn executes(report: &Value) -> &[Value] {
    report["executes"].as_array().unwrap()
}

/// The Execute succeeded; returns it.
pub fn assert_ok(report: &Value) -> &Value {
    let ex = execute(report);
    assert_eq!(ex["rpc_error"], Value::Null, "{report:#}");
    assert_eq!(
        (ex["exit_code"].as_i64(), ex["error"].as_str()),
        (Some(0), Some("")),
        "{report:#}"
    );
    ex
}

/// The Execute failed with an error starting with `expected_prefix` and no stdout.
pub fn assert_error(report: &Value, expected_prefix: &str) {
    let ex = execute(report);
    assert_eq!(ex["rpc_error"], Value::Null, "{report:#}");
    assert_eq!(ex["exit_code"].as_i64(), Some(1), "{report:#}");
    let error = ex["error"].as_str().unwrap();
    assert!(
        error.starts_with(expected_prefix),
        "error {error:?} does not start with {expected_prefix:?}"
    );
    assert_eq!(ex["stdout"], "", "stdout must be empty on error");
}
