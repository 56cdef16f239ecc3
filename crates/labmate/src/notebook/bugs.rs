//! Bugs and their reproducers. A bug entry holds the argv of its smallest
//! reproducer, which fails while the bug is there and passes once it is
//! fixed. Each run of it is recorded in `.labmate/repro.jsonl` with the code
//! state it ran at: the commit, and the uncommitted changes to tracked files
//! (the notebook itself excluded, so writing about a bug does not count as
//! changing the code).
//!
//! A bug is *fixed* when its latest run passed and its latest failure was at
//! another code state; otherwise it is *open*. A reproducer that never failed
//! has not reproduced anything yet: make it fail first.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::file::{self, Entry, Notebook, Settings};
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::sys::proc;

pub const REPRO_FILE: &str = "repro.jsonl";
const LOG_DIR: &str = "repro";

/// One run of a reproducer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReproRun {
    /// The bug entry's id.
    pub bug: String,
    pub time: f64,
    /// None when killed by a signal (or the timeout).
    pub exit_code: Option<i32>,
    /// Exit code 0.
    pub passed: bool,
    pub commit: Option<String>,
    /// Tracked files differed from the commit (the notebook aside).
    pub dirty: bool,
    /// A hash of those uncommitted changes, telling one dirty state from another.
    pub patch: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

impl ReproRun {
    fn state(&self) -> (Option<&str>, Option<&str>) {
        (self.commit.as_deref(), self.patch.as_deref())
    }
}

/// A bug entry with what its reproducer has shown so far.
#[derive(Debug, Clone)]
pub struct Bug {
    pub entry: Entry,
    /// `open` or `fixed`.
    pub status: &'static str,
    /// Whether the reproducer ever failed (reproduced the bug).
    pub reproduced: bool,
    /// Its runs, oldest first.
    pub history: Vec<ReproRun>,
}

/// Whether a history ends fixed: the latest run passed, and the latest
/// failure was at another code state.
pub fn is_fixed(history: &[ReproRun]) -> bool {
    let Some(last) = history.last() else { return false };
    last.passed && history.iter().rev().find(|r| !r.passed).is_some_and(|f| f.state() != last.state())
}

/// Every bug of the notebook, oldest first.
pub fn bugs(lab: &Lab) -> Result<Vec<Bug>> {
    let runs = history(lab)?;
    Ok(Notebook::load(lab)?
        .entries
        .into_iter()
        .filter(|e| e.kind == "bug")
        .map(|entry| {
            let history: Vec<ReproRun> = runs.iter().filter(|r| r.bug == entry.id).cloned().collect();
            Bug {
                status: if is_fixed(&history) { "fixed" } else { "open" },
                reproduced: history.iter().any(|r| !r.passed),
                history,
                entry,
            }
        })
        .collect())
}

/// Every recorded reproducer run, oldest first; a torn or unreadable line is skipped.
pub fn history(lab: &Lab) -> Result<Vec<ReproRun>> {
    let p = lab.root().join(REPRO_FILE);
    let f = match File::open(&p) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&p, e)),
    };
    let mut out = Vec::new();
    for line in BufReader::new(f).lines() {
        let line = line.map_err(|e| Error::io(&p, e))?;
        if let Ok(r) = serde_json::from_str::<ReproRun>(&line) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Where the output of a bug's latest reproducer run is kept.
pub fn log_path(lab: &Lab, bug: &str) -> PathBuf {
    lab.root().join(LOG_DIR).join(format!("{bug}.log"))
}

/// Runs a bug's reproducer (argv, no shell) in the repository root, with
/// its output to [`log_path`], killing it after `timeout` seconds; records
/// and returns the run.
pub fn run_repro(lab: &Lab, bug: &Entry, timeout: f64) -> Result<ReproRun> {
    let argv = bug
        .repro
        .as_ref()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::invalid("bug", format!("{} has no reproducer", bug.id)))?;
    let root = lab.repo_root();
    let program = crate::sys::exec::resolve_program(&argv[0], root, std::env::var_os("PATH").as_deref())?;
    let (commit, dirty, patch) = code_state(root, &Settings::load(lab)?.path);
    let log = log_path(lab, &bug.id);
    let dir = log.parent().expect("a log has a folder");
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let out = File::create(&log).map_err(|e| Error::io(&log, e))?;
    let time = lab.now();
    let mut cmd = Command::new(program);
    cmd.arg0(&argv[0]).args(&argv[1..]).current_dir(root);
    let options = proc::Options {
        stdin: None,
        output: proc::Output::File(out),
        timeout: proc::timeout(timeout),
        pass_signals: true,
    };
    let done = proc::run(&mut cmd, options).map_err(|e| Error::io(&argv[0], e))?;
    let (status, timed_out) = (done.status, done.timed_out);
    let run = ReproRun {
        bug: bug.id.clone(),
        time: (time * 1000.0).round() / 1000.0,
        exit_code: status.code(),
        passed: status.success() && !timed_out,
        commit,
        dirty,
        patch,
        timed_out,
    };
    record(lab, &run)?;
    Ok(run)
}

fn record(lab: &Lab, run: &ReproRun) -> Result<()> {
    let p = lab.root().join(REPRO_FILE);
    let mut f = OpenOptions::new().create(true).append(true).open(&p).map_err(|e| Error::io(&p, e))?;
    file::flock(&f, &p)?;
    let mut line = serde_json::to_string(run).expect("runs serialise");
    line.push('\n');
    f.write_all(line.as_bytes()).map_err(|e| Error::io(&p, e))
}

/// The code state of the work tree at `root`: commit, dirty, and a hash of
/// the uncommitted changes to tracked files other than the notebook.
fn code_state(root: &Path, notebook: &Path) -> (Option<String>, bool, Option<String>) {
    let Some((state, patch)) = crate::git::capture(root) else { return (None, false, None) };
    let text = String::from_utf8_lossy(&patch);
    let mut kept = String::new();
    let mut keep = true;
    for section in text.split_inclusive('\n') {
        if let Some(header) = section.strip_prefix("diff --git ") {
            let b_path = header.trim_end().rsplit_once(" b/").map_or("", |(_, b)| b);
            keep = b_path.is_empty() || !notebook.ends_with(b_path);
        }
        if keep {
            kept.push_str(section);
        }
    }
    let dirty = !kept.is_empty();
    (state.commit, dirty, dirty.then(|| format!("{:016x}", fnv1a(kept.as_bytes()))))
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3))
}

/// An argv as a shell would read it back (for display only; it is never run by a shell).
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && a.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Splits a command line into argv the way a shell would (quotes and
/// backslashes), without running a shell or expanding anything.
pub fn split_words(line: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(w) = cur.take() {
                    out.push(w);
                }
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => w.push(x),
                        None => return Err(Error::invalid("command", format!("unclosed ' in '{line}'"))),
                    }
                }
            }
            '"' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => w.push(x),
                            Some(x) => {
                                w.push('\\');
                                w.push(x);
                            }
                            None => return Err(Error::invalid("command", format!("unclosed \" in '{line}'"))),
                        },
                        Some(x) => w.push(x),
                        None => return Err(Error::invalid("command", format!("unclosed \" in '{line}'"))),
                    }
                }
            }
            '\\' => {
                if let Some(x) = chars.next() {
                    cur.get_or_insert_with(String::new).push(x);
                }
            }
            c => cur.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(cur);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(passed: bool, commit: &str) -> ReproRun {
        ReproRun {
            bug: "n-1".into(),
            time: 0.0,
            exit_code: Some(if passed { 0 } else { 1 }),
            passed,
            commit: Some(commit.into()),
            dirty: false,
            patch: None,
            timed_out: false,
        }
    }

    #[test]
    fn fixed_needs_a_failure_then_a_pass_at_another_state() {
        assert!(!is_fixed(&[]));
        assert!(!is_fixed(&[run(true, "a")]), "never failed: reproduced nothing");
        assert!(!is_fixed(&[run(false, "a"), run(true, "a")]), "same code: flaky, not fixed");
        assert!(is_fixed(&[run(false, "a"), run(true, "b")]));
        assert!(is_fixed(&[run(false, "a"), run(true, "b"), run(true, "c")]));
        assert!(!is_fixed(&[run(false, "a"), run(true, "b"), run(false, "c")]), "a regression reopens it");
        assert!(!is_fixed(&[run(false, "a"), run(true, "b"), run(false, "b"), run(true, "b")]));
    }

    #[test]
    fn command_lines_split_like_a_shell_reads_them() {
        assert_eq!(split_words("sh -c 'exit 1' \"a b\" c\\ d").unwrap(), ["sh", "-c", "exit 1", "a b", "c d"]);
        assert!(split_words("sh 'oops").is_err());
        assert_eq!(shell_words(&["sh".into(), "-c".into(), "exit 1".into()]), "sh -c 'exit 1'");
    }
}
