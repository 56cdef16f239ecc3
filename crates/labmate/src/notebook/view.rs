//! What `notebook show` gives back: entries as an agent reads them, without
//! the whole file, with bugs' status and reproducer history.

use serde::Serialize;

use super::bugs::{self, ReproRun};
use super::file::Notebook;
use crate::clock;
use crate::error::Result;
use crate::lab::Lab;

/// Which entries to show; empty fields select everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Entries written at or after this time (seconds since the epoch).
    pub since: Option<f64>,
    pub kind: Option<String>,
    /// Entries about this run (an id).
    pub run: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub id: String,
    /// RFC 3339.
    pub time: String,
    pub kind: String,
    pub author: String,
    pub runs: Vec<String>,
    pub text: String,
    pub amends: Option<String>,
    /// Later entries amending this one.
    pub amended_by: Vec<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub bug: Option<BugView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BugView {
    pub repro: Vec<String>,
    /// `open` or `fixed`.
    pub status: &'static str,
    /// Whether the reproducer ever failed.
    pub reproduced: bool,
    pub history: Vec<ReproView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReproView {
    pub time: String,
    pub passed: bool,
    pub exit_code: Option<i32>,
    pub commit: Option<String>,
    pub dirty: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub timed_out: bool,
}

impl From<&ReproRun> for ReproView {
    fn from(r: &ReproRun) -> ReproView {
        ReproView {
            time: clock::rfc3339(r.time),
            passed: r.passed,
            exit_code: r.exit_code,
            commit: r.commit.clone(),
            dirty: r.dirty,
            timed_out: r.timed_out,
        }
    }
}

/// The entries matching `filter`, oldest first, and the lines of the file
/// that could not be read.
pub fn list(lab: &Lab, filter: &Filter) -> Result<(Vec<EntryView>, Vec<String>)> {
    let nb = Notebook::load(lab)?;
    let bugs = if filter.kind.as_deref().is_none_or(|k| k == "bug") { bugs::bugs(lab)? } else { Vec::new() };
    let views = nb
        .entries
        .iter()
        .filter(|e| filter.since.is_none_or(|s| e.time >= s))
        .filter(|e| filter.kind.as_deref().is_none_or(|k| e.kind == k))
        .filter(|e| filter.run.as_deref().is_none_or(|r| e.runs.iter().any(|x| x == r)))
        .map(|e| EntryView {
            id: e.id.clone(),
            time: clock::rfc3339(e.time),
            kind: e.kind.clone(),
            author: e.author.clone(),
            runs: e.runs.clone(),
            text: e.text.clone(),
            amends: e.amends.clone(),
            amended_by: nb
                .entries
                .iter()
                .filter(|x| x.amends.as_deref() == Some(&e.id))
                .map(|x| x.id.clone())
                .collect(),
            bug: bugs.iter().find(|b| b.entry.id == e.id).map(|b| BugView {
                repro: e.repro.clone().unwrap_or_default(),
                status: b.status,
                reproduced: b.reproduced,
                history: b.history.iter().map(ReproView::from).collect(),
            }),
        })
        .collect();
    Ok((views, nb.problems))
}
