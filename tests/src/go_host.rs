//! Launching `ds-porter` as the DS host does: through the go-plugin v1.7.0 host in
//! `tests/go-host` (Go, stubs generated from `proto/`). The host prints a JSON report of what it
//! saw (handshake, RPC answers, each Execute response, kill time, the plugin's raw stderr and its
//! own re-logged view of it).

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
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// Builds the Go program in `tests/<package>` into `target/tmp/<package>-<test binary>` (so
/// suites never share an output file).
pub fn go_build(package: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap();
    }
    let tmp = dir.parent().unwrap().join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let stem = exe.file_stem().unwrap().to_string_lossy().into_owned();
    let out = tmp.join(format!("{package}-{stem}"));
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

/// Waits for `child` at most `limit`, killing it when it takes longer (`None` then).
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
    /// The launch's working directory (also its `TMPDIR`; `home/` is its `HOME`).
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    plugin: Option<PathBuf>,
    env: Vec<(String, String)>,
}

impl Default for Launch {
    fn default() -> Self {
        Self::new()
    }
}

impl Launch {
    /// A launch in a fresh temp directory, with no options yet.
    pub fn new() -> Self {
        Launch {
            dir: tempfile::tempdir().unwrap(),
            args: Vec::new(),
            plugin: None,
            env: Vec::new(),
        }
    }

    /// The launch's working directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An environment variable for the host and the plugin it launches.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Launches `program` instead of `ds-porter` (a wrapper that runs it another way).
    pub fn plugin(mut self, program: &Path) -> Self {
        self.plugin = Some(program.to_path_buf());
        self
    }

    /// Adds raw go-host flags (`-raw`, `-env KEY=VALUE`, …).
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

    pub fn cache_root(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn porter_cache(&self) -> PathBuf {
        self.cache_root().join("porter")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn run(&self) -> Value {
        let report = self.report();
        assert_eq!(report["errors"], json!([]), "host errors: {report:#}");
        report
    }

    /// Runs the host and returns its report, whatever happened (a plugin that failed to start
    /// shows up in `errors`).
    pub fn report(&self) -> Value {
        std::fs::create_dir_all(self.home()).unwrap();
        let mut child = Command::new(go_host())
            .arg("-plugin")
            .arg(self.plugin.clone().unwrap_or_else(ds_porter_bin))
            .args(&self.args)
            .current_dir(self.dir.path())
            .env("HOME", self.home())
            .env("TMPDIR", self.dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
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

/// The first Execute of the launch.
pub fn execute(report: &Value) -> &Value {
    &report["execute"]
}

/// Every Execute of the launch, in `-op` order.
pub fn executes(report: &Value) -> &[Value] {
    report["executes"].as_array().unwrap()
}

/// Asserts the first Execute succeeded (exit code 0, no error) and returns it.
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

/// Asserts the first Execute failed with exit code 1, an error starting with
/// `expected_prefix` and nothing on stdout.
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
