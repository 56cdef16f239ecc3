//! Git provenance of a working directory: commit, branch, dirty flag, the
//! patch of uncommitted changes to tracked files, and untracked files.

use std::path::Path;
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GitState {
    /// None in a repository without commits.
    pub commit: Option<String>,
    /// None on a detached HEAD.
    pub branch: Option<String>,
    /// Tracked files differ from the commit (untracked files alone do not count).
    pub dirty: bool,
    pub untracked: Vec<String>,
    pub patch_bytes: u64,
}

/// The state of the work tree holding `dir` and its patch, or None outside a
/// work tree (or without git).
pub fn capture(dir: &Path) -> Option<(GitState, Vec<u8>)> {
    let inside = git(dir, &["rev-parse", "--is-inside-work-tree"])?;
    if inside.trim_ascii() != b"true" {
        return None;
    }
    let commit = git(dir, &["rev-parse", "--verify", "-q", "HEAD"]).map(text);
    let branch = git(dir, &["symbolic-ref", "--short", "-q", "HEAD"]).map(text);
    let patch = if commit.is_some() { git(dir, &["diff", "HEAD", "--binary"]).unwrap_or_default() } else { Vec::new() };
    let untracked = git(dir, &["ls-files", "--others", "--exclude-standard", "-z"])
        .unwrap_or_default()
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    let state = GitState {
        commit: commit.filter(|c| !c.is_empty()),
        branch: branch.filter(|b| !b.is_empty()),
        dirty: !patch.is_empty(),
        untracked,
        patch_bytes: patch.len() as u64,
    };
    Some((state, patch))
}

fn git(dir: &Path, args: &[&str]) -> Option<Vec<u8>> {
    let out =
        Command::new("git").args(args).current_dir(dir).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    out.status.success().then_some(out.stdout)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_string()
}
