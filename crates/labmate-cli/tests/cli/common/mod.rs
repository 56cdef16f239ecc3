//! A hermetic test lab: its own temp folder, a cleared environment (no real
//! HOME, no global git config), and the real `labmate` binary; on request a
//! fixed clock and id seed, for output compared exactly.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod http;

pub const BIN: &str = env!("CARGO_BIN_EXE_labmate");
/// The repository's root, and the Python client in it.
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
pub const PYTHON: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../python");

pub struct TestLab {
    pub tmp: tempfile::TempDir,
    /// `LABMATE_NOW` and `LABMATE_ID_SEED` for the commands, when fixed.
    clock: Mutex<Option<(String, u64)>>,
}

impl TestLab {
    /// An empty experiment folder (no lab yet).
    pub fn new() -> TestLab {
        TestLab { tmp: tempfile::tempdir().expect("temp dir"), clock: Mutex::new(None) }
    }

    /// An empty experiment folder whose commands read the time `now` (RFC 3339
    /// or Unix seconds) and draw ids counting up from 0: what they show and
    /// record is the same on every run. Supervision still runs on the wall.
    pub fn with_clock(now: &str) -> TestLab {
        let lab = TestLab::new();
        lab.set_now(now);
        lab
    }

    /// Moves the fixed clock to `now` for the commands that follow (ids keep
    /// their seed, and their maker skips the ones taken).
    pub fn set_now(&self, now: &str) {
        *self.clock.lock().unwrap() = Some((now.to_string(), 0));
    }

    /// An experiment folder that is a git repository with one commit.
    pub fn with_git() -> TestLab {
        let lab = TestLab::new();
        lab.write("train.txt", "v1\n");
        lab.git(&["init", "-q", "-b", "main"]);
        lab.git(&["add", "-A"]);
        lab.git(&["commit", "-q", "-m", "init"]);
        lab
    }

    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    pub fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("USER", "tester")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            // Python run from the repository's package must not write into it.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(self.path());
        if let Some((now, seed)) = &*self.clock.lock().unwrap() {
            cmd.env("LABMATE_NOW", now).env("LABMATE_ID_SEED", seed.to_string());
        }
    }

    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        self.env(&mut cmd);
        let out = cmd.args(args).output().expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A `labmate` command in this lab, not yet run.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        self.env(&mut cmd);
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("labmate runs")
    }

    /// Runs labmate, expects success, parses stdout as JSON.
    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.run(args);
        assert!(out.status.success(), "labmate {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("labmate {args:?}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// `labmate run --detach ARGS`, which must succeed; the run id it prints.
    pub fn detach(&self, args: &[&str]) -> String {
        let mut all = vec!["run", "--detach"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_string()
    }

    /// The run id from `labmate run`'s stderr.
    pub fn started_id(out: &Output) -> String {
        let err = String::from_utf8_lossy(&out.stderr);
        err.lines()
            .find_map(|l| l.strip_prefix("labmate: run ").and_then(|r| r.strip_suffix(" started")))
            .unwrap_or_else(|| panic!("no start line in stderr: {err}"))
            .to_string()
    }

    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.path().join(".labmate/runs").join(id)
    }

    /// Polls `runs --json` until `pred` holds for the run, or panics after `secs`.
    pub fn wait_for(&self, id: &str, secs: u64, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let run = self.show(id);
            if pred(&run) {
                return run;
            }
            assert!(Instant::now() < deadline, "timed out waiting on {id}: {run:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn show(&self, id: &str) -> Value {
        self.json(&["show", id, "--json"])
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The program a test needs that a fresh machine lacks, named by the
/// environment variable `var` (`.ci/run` sets it). Without it the test fails
/// in CI (`LABMATE_CI`) and elsewhere says why it did not run.
pub fn needed(var: &str, what: &str, test: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(value) => Some(value),
        Err(_) => {
            assert!(std::env::var_os("LABMATE_CI").is_none(), "CI must provide {var} ({what})");
            eprintln!("NOTE: {test} did not run: set {var} to {what}");
            None
        }
    }
}
