//! Running the real `ds-porter` binary as an isolated user would: own HOME, own cache, own
//! working directory, no inherited `DS_*` or proxy settings.

use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::binary::ds_porter_bin;
use crate::publish::sha256_digest;

/// An isolated user: own HOME, own cache, own working directory.
#[derive(Debug)]
pub struct User {
    dir: tempfile::TempDir,
}

impl Default for User {
    fn default() -> Self {
        Self::new()
    }
}

impl User {
    /// A fresh user in a temp directory.
    pub fn new() -> Self {
        User {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The user's home and working directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The porter cache (`$DS_CACHE_DIR/porter`).
    pub fn cache(&self) -> PathBuf {
        self.path().join("cache/porter")
    }

    /// A `ds-porter` command with the user's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(ds_porter_bin());
        cmd.args(args).current_dir(self.path());
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            if key.starts_with("DS_")
                || key.ends_with("_PROXY")
                || key.ends_with("_proxy")
                || key == "RUST_LOG"
            {
                cmd.env_remove(key);
            }
        }
        cmd.env("HOME", self.path())
            .env("DS_CACHE_DIR", self.path().join("cache"));
        cmd
    }

    /// Runs `ds-porter` and waits.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    /// Runs `ds-porter` with extra environment variables.
    pub fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run(cmd.output().unwrap())
    }

    /// Runs `ds-porter` with extra environment variables and stdin closed; kills it and panics
    /// if it has not exited within `limit` (for inputs that could block it, such as a FIFO).
    pub fn run_within(&self, limit: Duration, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.spawn(args, env).wait(limit)
    }

    /// Starts `ds-porter` in the background with extra environment variables and stdin closed.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Background {
        let stdout = tempfile::tempfile().unwrap();
        let stderr = tempfile::tempfile().unwrap();
        let mut cmd = self.command(args);
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout.try_clone().unwrap())
            .stderr(stderr.try_clone().unwrap());
        Background {
            child: Some(cmd.spawn().unwrap()),
            command: args.join(" "),
            stdout,
            stderr,
        }
    }
}

/// `cache verify` reports nothing corrupt or missing, and every visible blob hashes to its name.
pub fn assert_cache_sound(user: &User) {
    let report = user.run(&["cache", "verify"]).ok();
    assert_eq!(report["corrupt"], Value::Array(vec![]), "{report}");
    assert_eq!(report["missing"], Value::Array(vec![]), "{report}");
    for entry in std::fs::read_dir(user.cache().join("blobs/sha256")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            sha256_digest(&std::fs::read(&path).unwrap()),
            format!("sha256:{name}")
        );
    }
    let index: Value =
        serde_json::from_slice(&std::fs::read(user.cache().join("index.json")).unwrap()).unwrap();
    assert!(index["manifests"].is_array());
    let list: Value = serde_json::from_str(&user.run(&["list"]).stdout()).unwrap();
    assert!(list.is_array());
}

/// Sends `signal` (`INT`, `TERM`, `KILL`, `STOP`, `CONT`, …) to process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

/// A `ds-porter` process running in the background. Dropped before it was waited for, it is
/// continued (if stopped), killed and reaped.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
    command: String,
    stdout: std::fs::File,
    stderr: std::fs::File,
}

impl Background {
    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends it `signal` (see [`signal`]).
    pub fn signal(&self, name: &str) {
        signal(self.id(), name);
    }

    /// Whether it has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().unwrap().is_some())
    }

    /// What it wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&read_all(&self.stderr)).into_owned()
    }

    /// Waits for it to exit; kills it and panics if it has not within `limit`.
    pub fn wait(mut self, limit: Duration) -> Run {
        const POLL: Duration = Duration::from_millis(20);
        let mut child = self.child.take().unwrap();
        let started = Instant::now();
        let max_polls = limit.as_millis() / POLL.as_millis() + 1;
        let mut status = None;
        for _ in 0..max_polls {
            status = child.try_wait().unwrap();
            if status.is_some() || started.elapsed() > limit {
                break;
            }
            std::thread::sleep(POLL);
        }
        let Some(status) = status else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`ds-porter {}` did not exit within {limit:?}", self.command);
        };
        Run(Output {
            status,
            stdout: read_all(&self.stdout),
            stderr: read_all(&self.stderr),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Everything in `file`, read from its start.
fn read_all(mut file: &std::fs::File) -> Vec<u8> {
    let mut bytes = Vec::new();
    file.rewind().unwrap();
    file.read_to_end(&mut bytes).unwrap();
    bytes
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Run(pub Output);

impl Run {
    /// The exit code.
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    /// stdout as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    /// stderr as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts success and parses stdout as JSON.
    pub fn ok(&self) -> Value {
        assert_eq!(
            self.code(),
            0,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        serde_json::from_str(&self.stdout()).unwrap()
    }
    /// Asserts exit code 1 with nothing on stdout; returns stderr.
    pub fn fails(&self) -> String {
        self.exits_with(1, "on failure")
    }

    /// Asserts exit code 2 (the command line was refused) with nothing on stdout; returns stderr.
    pub fn usage_error(&self) -> String {
        self.exits_with(2, "for a refused command line")
    }

    fn exits_with(&self, code: i32, when: &str) -> String {
        assert_eq!(
            self.code(),
            code,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        assert!(
            self.stdout().is_empty(),
            "nothing on stdout {when}: {}",
            self.stdout()
        );
        self.stderr()
    }
}

/// The names an OCI image layout's `index.json` records (`org.opencontainers.image.ref.name`)
/// with the digest each points at, sorted.
pub fn layout_names(layout: &Path) -> Vec<(String, String)> {
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let mut names: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["annotations"]["org.opencontainers.image.ref.name"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                m["digest"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    names.sort_unstable();
    names
}
