//! Every use of git: the provenance a run records at launch (commit, branch,
//! dirty flag, the patch of uncommitted changes to tracked files, untracked
//! files), and what comparing code states asks of a repository (trees, a
//! patch applied in an index of its own, per-file changes, file contents,
//! a shortstat).
//!
//! Every command runs in the work tree's top folder, with stdin closed,
//! under a timeout (a hung git never hangs a launch), taking no optional
//! locks (the user's own git commands are never in its way) and with the
//! configuration pinned wherever its output is parsed or stored, so that a
//! user's git config changes neither and a stored patch applies with
//! `git apply`. The Python client runs the same commands with the same
//! options (`python/labmate/_rundir.py`): both record the same `git` object.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sys::proc;

/// How long one git command may take.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How much of a failing command's stderr its error quotes.
const STDERR_KEPT: usize = 4096;

/// Configuration set on every command: paths as they are (not octal-quoted)
/// in a patch's headers, diffs of the whole tree whatever the folder, and
/// renames found as git finds them by default.
const CONFIG: [&str; 6] = ["-c", "core.quotepath=off", "-c", "diff.relative=false", "-c", "diff.renames=true"];
/// Options of every diff: what user config could change (colour, external
/// diff tools, textconv, prefixes, submodule logs) pinned to plain git.
const DIFF: [&str; 6] =
    ["--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/", "--submodule=short"];

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitState {
    /// None in a repository without commits.
    pub commit: Option<String>,
    /// None on a detached HEAD.
    pub branch: Option<String>,
    /// Tracked files differ from the commit (untracked files alone do not
    /// count); without a commit, some file is tracked.
    pub dirty: bool,
    /// Relative to the work tree's top folder.
    pub untracked: Vec<String>,
    pub patch_bytes: u64,
}

/// The state of the work tree holding `dir` and its patch, or None outside a
/// work tree (or without git).
pub fn capture(dir: &Path) -> Option<(GitState, Vec<u8>)> {
    Repo::discover(dir).map(|repo| repo.capture())
}

/// How a file differs between two trees (or a tree and the work tree).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    /// `A` (added), `D` (deleted), `M` (modified), ... as `git diff --name-status` writes it.
    pub status: String,
    /// Lines added and removed; None for a binary file.
    pub lines: Option<(u64, u64)>,
}

/// A git work tree.
pub struct Repo {
    top: PathBuf,
}

impl Repo {
    /// The work tree holding `dir`; None outside one (or without git).
    pub fn discover(dir: &Path) -> Option<Repo> {
        let top = run(dir, &["rev-parse", "--show-toplevel"], None).ok()?;
        let top = top.strip_suffix(b"\n").unwrap_or(&top);
        (!top.is_empty()).then(|| Repo { top: PathBuf::from(OsStr::from_bytes(top)) })
    }

    /// The work tree's top folder.
    pub fn top(&self) -> &Path {
        &self.top
    }

    /// What a run records of the work tree, and the patch of its
    /// uncommitted changes to tracked files (`git diff HEAD`). Without a
    /// commit there is no patch, and the tree is dirty once a file is added.
    pub fn capture(&self) -> (GitState, Vec<u8>) {
        let commit = self.line(&["rev-parse", "--verify", "-q", "HEAD"]);
        let branch = self.line(&["symbolic-ref", "--short", "-q", "HEAD"]);
        let (dirty, patch) = match commit {
            Some(_) => {
                let patch = self.diff(&["HEAD", "--binary"]).unwrap_or_default();
                (!patch.is_empty(), patch)
            }
            None => (self.git(&["ls-files", "-z"]).is_ok_and(|files| !files.is_empty()), Vec::new()),
        };
        let state = GitState {
            commit,
            branch,
            dirty,
            untracked: self.untracked().unwrap_or_default(),
            patch_bytes: patch.len() as u64,
        };
        (state, patch)
    }

    /// Files neither tracked nor ignored, relative to the top folder.
    pub fn untracked(&self) -> Result<Vec<String>> {
        Ok(paths(&self.git(&["ls-files", "--others", "--exclude-standard", "-z"])?))
    }

    /// The tree a revision names (its id), or an error when it names none.
    pub fn tree(&self, rev: &str) -> Result<String> {
        self.git(&["rev-parse", "--verify", "-q", &format!("{rev}^{{tree}}")]).map(|t| text(&t).trim().to_string())
    }

    /// The tree with no files.
    pub fn empty_tree(&self) -> Result<String> {
        self.git(&["hash-object", "-t", "tree", "/dev/null"]).map(|t| text(&t).trim().to_string())
    }

    /// The tree `base` becomes with `patch` applied, written through the
    /// index file `index` (removed after), so that the repository's own
    /// index and work tree are never touched.
    pub fn tree_with_patch(&self, base: &str, patch: &Path, index: &Path) -> Result<String> {
        let patch = patch.to_string_lossy();
        let tree = run(&self.top, &["read-tree", base], Some(index)).and_then(|_| {
            run(&self.top, &["apply", "--cached", "--binary", "--whitespace=nowarn", &patch], Some(index))?;
            run(&self.top, &["write-tree"], Some(index))
        });
        let _ = std::fs::remove_file(index);
        tree.map(|t| text(&t).trim().to_string())
    }

    /// The files that differ from the tree `from` to the tree `to` (or the
    /// work tree's tracked files), sorted by path; a rename is a deletion
    /// and an addition.
    pub fn changes(&self, from: &str, to: Option<&str>) -> Result<Vec<Change>> {
        let mut args = vec!["--no-renames", "--numstat", "-z", from];
        args.extend(to);
        let numstat = self.diff(&args)?;
        args[1] = "--name-status";
        let names = self.diff(&args)?;
        let parts = paths(&names);
        let status: BTreeMap<&str, &str> =
            parts.chunks(2).filter(|c| c.len() == 2).map(|c| (c[1].as_str(), c[0].as_str())).collect();
        let mut changes: Vec<Change> = paths(&numstat)
            .into_iter()
            .filter_map(|record| {
                let mut f = record.splitn(3, '\t');
                let (added, removed, path) = (f.next()?, f.next()?, f.next()?.to_string());
                let lines = added.parse().ok().zip(removed.parse().ok());
                let status = status.get(path.as_str()).copied().unwrap_or("M").to_string();
                Some(Change { path, status, lines })
            })
            .collect();
        changes.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(changes)
    }

    /// A file's text in a tree; empty when it is not there.
    pub fn show(&self, tree: &str, path: &str) -> String {
        self.git(&["show", &format!("{tree}:{path}")]).map(|b| text(&b)).unwrap_or_default()
    }

    /// `git diff --shortstat` between two commits (`no changes` when none),
    /// or None when git cannot tell.
    pub fn shortstat(&self, from: &str, to: &str) -> Option<String> {
        let said = text(&self.diff(&["--shortstat", from, to]).ok()?).trim().to_string();
        Some(if said.is_empty() { "no changes".into() } else { said })
    }

    /// `git diff` with the pinned options and `args`.
    fn diff(&self, args: &[&str]) -> Result<Vec<u8>> {
        let all: Vec<&str> = ["diff"].into_iter().chain(DIFF).chain(args.iter().copied()).collect();
        self.git(&all)
    }

    /// A one-line answer; None for none, or an empty one.
    fn line(&self, args: &[&str]) -> Option<String> {
        let line = text(&self.git(args).ok()?).trim().to_string();
        (!line.is_empty()).then_some(line)
    }

    fn git(&self, args: &[&str]) -> Result<Vec<u8>> {
        run(&self.top, args, None)
    }
}

/// git's stdout for `args`, run in `dir` (with `index` as its index file
/// when given).
fn run(dir: &Path, args: &[&str], index: Option<&Path>) -> Result<Vec<u8>> {
    let mut cmd = Command::new("git");
    cmd.args(CONFIG).args(args).current_dir(dir).env("GIT_OPTIONAL_LOCKS", "0").env("GIT_TERMINAL_PROMPT", "0");
    if let Some(index) = index {
        cmd.env("GIT_INDEX_FILE", index);
    }
    answer(&mut cmd, &format!("git {}", args.first().unwrap_or(&"")), TIMEOUT)
}

/// The stdout of `cmd` (`what` in an error), killed after `timeout`; an
/// error says what it said when it fails.
fn answer(cmd: &mut Command, what: &str, timeout: Duration) -> Result<Vec<u8>> {
    let options = proc::Options { stdin: None, output: proc::Output::Apart(STDERR_KEPT), timeout, pass_signals: false };
    let done = proc::run(cmd, options).map_err(|e| Error::io("git", e))?;
    if done.timed_out {
        return Err(Error::environment("git", format!("{what}: no answer after {} s", timeout.as_secs_f64())));
    }
    if !done.status.success() {
        return Err(Error::environment("git", format!("{what}: {}", text(&done.stderr).trim())));
    }
    Ok(done.output)
}

/// The NUL-separated paths of a `-z` listing.
fn paths(listing: &[u8]) -> Vec<String> {
    listing.split(|b| *b == 0).filter(|p| !p.is_empty()).map(text).collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn an_answer_is_stdout_alone() {
        let out = answer(&mut sh("printf 'a\\0b\\0'; echo noise >&2"), "git ls-files", TIMEOUT).unwrap();
        assert_eq!(paths(&out), ["a", "b"]);
    }

    #[test]
    fn a_failure_says_what_git_said() {
        let e = answer(&mut sh("echo out; echo 'fatal: bad revision' >&2; exit 128"), "git rev-parse", TIMEOUT);
        assert_eq!(e.unwrap_err().to_string(), "git rev-parse: fatal: bad revision");
    }

    #[test]
    fn a_hung_git_is_given_up_on() {
        let e = answer(&mut sh("sleep 300"), "git diff", Duration::from_millis(200)).unwrap_err();
        assert_eq!(e.to_string(), "git diff: no answer after 0.2 s");
    }
}
