//! What faces call to act on a lab. Every action here records who acted, so
//! each takes the acting [`Author`], which the face builds once (the CLI from
//! `--author`, `LABMATE_AUTHOR` or the user; the MCP face always an agent);
//! nothing below reads it from the environment.
//!
//! Reading needs no author: faces open a lab with [`crate::lab::Lab::find`]
//! and its index with [`crate::index::Index::open_synced`], select and group
//! runs with [`crate::registry`], show a run's [`crate::status`], and follow
//! runs with [`crate::follow`] (output after an offset, a run's end, a
//! decision) and [`crate::wait`].

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::lab::Lab;
use crate::notebook::{self, NewEntry, Written};
use crate::review::{self, Decided, Item, NewItem, Verdict};
use crate::spec::{GateResult, LaunchRequest};
use crate::stop::{self, Stopped};

pub use crate::launch::{Admission, Launched, SweepAdmission, SweepPlan};
pub use crate::spec::Author;

/// Starts a launched run apart from the launcher: on Slurm, or detached
/// here ([`crate::launch::start`]).
pub use crate::launch::start;

/// Launches a run as `author`, through the gates, budgets and approval
/// rules ([`crate::launch::admit`]). `on_gate` hears each gate as it ends.
pub fn launch(lab: &Lab, req: LaunchRequest, author: &Author, on_gate: impl FnMut(&GateResult)) -> Result<Admission> {
    crate::launch::admit(lab, req, author, on_gate)
}

/// Launches a sweep as `author`: its gates and approval once for all its
/// points, then each point's run detached, supervised by `exe` (the
/// `labmate` binary) ([`crate::launch::admit_sweep`]).
pub fn sweep(
    lab: &Lab,
    plan: SweepPlan,
    author: &Author,
    on_gate: impl FnMut(&GateResult),
    exe: &Path,
) -> Result<SweepAdmission> {
    crate::launch::admit_sweep(lab, plan, author, on_gate, exe)
}

/// A human's decision on an approval request or a review item. An agent is
/// refused. An approved launch runs detached, supervised by `exe` (the
/// `labmate` binary).
pub fn decide(
    lab: &Lab,
    query: &str,
    verdict: Verdict,
    author: &Author,
    note: Option<String>,
    exe: &Path,
) -> Result<Decided> {
    crate::launch::decide(lab, query, verdict, author, note, exe)
}

/// A notebook entry as written, and what it asked of review.
#[derive(Debug)]
pub struct Noted {
    pub entry: Written,
    /// The review item opened for it: an agent's result or decision waits
    /// for a human's look.
    pub item: Option<Item>,
    /// Written, but something beside it was not (the review item).
    pub warnings: Vec<String>,
}

/// Appends a notebook entry as `author` (a bug with the argv of its
/// reproducer). The entry is written even when its review item cannot be:
/// a review store that cannot be read must not lose a note.
pub fn note(lab: &Lab, entry: NewEntry, repro: Option<Vec<String>>, author: &Author) -> Result<Noted> {
    let entry = NewEntry { author: author.name.clone(), ..entry };
    let entry = match repro {
        Some(argv) => notebook::append_bug(lab, entry, argv)?,
        None => notebook::append(lab, entry)?,
    };
    let (item, warnings) = match review::on_notebook_entry(lab, &entry, author) {
        Ok(item) => (item, Vec::new()),
        Err(e) => (None, vec![format!("entry {} written, but its review item was not: {e}", entry.id)]),
    };
    Ok(Noted { entry, item, warnings })
}

/// Asks a human to look at something (a run, a notebook entry, a change),
/// as `author`.
pub fn ask_review(
    lab: &Lab,
    run: Option<String>,
    entry: Option<String>,
    note: String,
    author: &Author,
) -> Result<Item> {
    if note.trim().is_empty() {
        return Err(Error::invalid("note", "a review request must say what to look at"));
    }
    let new = NewItem { author: author.name.clone(), run, entry, note, key: None };
    // Only an item with a key can find itself opened already.
    review::open_item(lab, new)?.ok_or_else(|| Error::internal("review item", "an item without a key did not open"))
}

/// Stops a run as `author`, with their words (`why`) in its reason.
pub fn stop(index: &Index, id: &str, why: Option<&str>, author: &Author, grace: Duration) -> Result<Stopped> {
    stop::stop(index, id, &stop::reason(&author.name, why), &author.name, grace)
}

/// Stops every run of the sweep `id` that is queued or running, as
/// `author`; their reason names the sweep. Returns each run asked to stop.
pub fn stop_sweep(
    index: &Index,
    id: &str,
    why: Option<&str>,
    author: &Author,
    grace: Duration,
) -> Result<Vec<(String, Stopped)>> {
    let sweep = crate::sweep::read(index.lab(), id)?;
    let why = match why {
        Some(w) => format!("sweep {id}: {w}"),
        None => format!("sweep {id}"),
    };
    if let Some(array) = &sweep.slurm_array {
        return stop::stop_array(index, &sweep.runs, array, &stop::reason(&author.name, Some(&why)), &author.name);
    }
    let mut stopped = Vec::new();
    for run in &sweep.runs {
        if index.run(run)?.status.is_live() {
            stopped.push((
                run.clone(),
                stop::stop(index, run, &stop::reason(&author.name, Some(&why)), &author.name, grace)?,
            ));
        }
    }
    Ok(stopped)
}

/// Takes a queued run out of the queue as `author`.
pub fn cancel(index: &Index, id: &str, author: &Author) -> Result<Stopped> {
    stop::cancel(index, id, &author.name)
}

/// Sets the lab's baseline as `author`; returns what is stored and how many
/// runs it names now.
pub fn set_baseline(index: &Index, side: &str, author: &Author) -> Result<(String, usize)> {
    crate::registry::set_baseline(index, side, &author.name)
}
