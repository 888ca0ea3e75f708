//! Running the real `ds-porter` binary as an isolated user would: own HOME, own cache, own
//! working directory, no inherited `DS_*` or proxy settings.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::binary::ds_porter_bin;

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
        assert_eq!(
            self.code(),
            1,
            "stdout: {}\nstderr: {}",
            self.stdout(),
            self.stderr()
        );
        assert!(
            self.stdout().is_empty(),
            "nothing on stdout on failure: {}",
            self.stdout()
        );
        self.stderr()
    }
}
