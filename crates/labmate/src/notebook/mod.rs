//! The lab notebook: `LABNOTEBOOK.md` at the root of the experiment
//! repository, plain markdown that renders on any forge and that labmate can
//! read back. It owns the file's entries (append-only, each with a hidden
//! metadata line), live references to registry values (`{{RUN.metrics.loss.min}}`),
//! the check that every cited number still agrees with the registry, the
//! generated results table, and bugs with their reproducers.
//!
//! # Parts
//!
//! - [`file`]: where the notebook is, parsing it, and the locked, atomic rewrite.
//! - [`refs`]: live references: parsing, deriving their values, rendering them.
//! - [`claims`]: `notebook check`: references and hand-written numbers against the registry.
//! - [`results`]: the generated results table between `<!-- labmate:results -->` markers.
//! - [`bugs`]: bugs' reproducers: running them, their history, open or fixed.
//! - [`view`]: entries as `notebook show` gives them back.
//!
//! The file format is specified in `docs/FORMAT.md` ("The notebook").

pub mod bugs;
pub mod claims;
pub mod file;
pub mod refs;
pub mod results;
pub mod view;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::lab::Lab;

pub use bugs::{Bug, ReproRun, bugs, run_repro};
pub use claims::{CheckReport, Mismatch, check, check_entry};
pub use file::{Entry, Notebook, Settings, entries, find_entry};
pub use results::{RenderOptions, RenderReport, render};
pub use view::{EntryView, Filter, list};

/// The kinds of entries.
pub const KINDS: [&str; 5] = ["hypothesis", "observation", "result", "decision", "bug"];

/// A new notebook entry.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    /// hypothesis, observation, result, decision or bug.
    pub kind: String,
    pub text: String,
    /// Who wrote it, as the face names them (`agent:NAME` for an agent).
    pub author: String,
    /// Run ids the entry concerns.
    pub runs: Vec<String>,
    /// The id of an entry this one amends.
    pub amends: Option<String>,
}

/// An entry as written: its id, and what it says once its references are resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Written {
    pub id: String,
    pub kind: String,
    pub author: String,
    /// The ids of the runs it concerns, those it cites included.
    pub runs: Vec<String>,
    pub text: String,
}

/// Appends an entry to the notebook.
///
/// Runs may be named by id, unique prefix or name; they are stored by id.
/// Live references in the text are checked (an unknown run or key is an
/// error) and rendered with their current values. The entry must name its
/// author. A bug needs a reproducer: use
/// [`append_bug`].
pub fn append(lab: &Lab, entry: NewEntry) -> Result<Written> {
    append_entry(lab, entry, None)
}

/// Appends a bug entry with the argv of its smallest reproducer (which
/// should fail while the bug is there, and pass once it is fixed).
pub fn append_bug(lab: &Lab, entry: NewEntry, repro: Vec<String>) -> Result<Written> {
    if repro.is_empty() || repro[0].is_empty() {
        return Err(Error::invalid("reproducer", "a bug's reproducer needs a command"));
    }
    crate::sys::exec::resolve_program(&repro[0], lab.repo_root(), std::env::var_os("PATH").as_deref())?;
    append_entry(lab, NewEntry { kind: "bug".into(), ..entry }, Some(repro))
}

fn append_entry(lab: &Lab, entry: NewEntry, repro: Option<Vec<String>>) -> Result<Written> {
    if !KINDS.contains(&entry.kind.as_str()) {
        return Err(Error::invalid("kind", format!("unknown kind '{}': use one of {}", entry.kind, KINDS.join(", "))));
    }
    if entry.kind == "bug" && repro.is_none() {
        return Err(Error::invalid("reproducer", "a bug needs the command of its smallest reproducer"));
    }
    let text = entry.text.trim_end();
    if text.trim().is_empty() {
        return Err(Error::invalid("text", "an entry needs some text"));
    }
    if let Some(line) = text.lines().find(|l| l.trim_start().starts_with("<!-- labmate:")) {
        return Err(Error::invalid("text", format!("the text holds a line that labmate keeps for itself: {line}")));
    }
    let author = match entry.author.trim() {
        "" => return Err(Error::invalid("author", "a note must name its author")),
        a => a.to_string(),
    };
    if author.contains('\n') {
        return Err(Error::invalid("author", "an author is one line"));
    }

    // Runs and references are resolved before the lock: it needs the index, not the file.
    let mut runs: Vec<(String, Option<String>)> = Vec::new();
    let mut text = text.to_string();
    if !entry.runs.is_empty() || text.contains("{{") {
        let (index, _) = Index::open_synced(lab)?;
        for r in &entry.runs {
            let id = index.resolve(r)?;
            if !runs.iter().any(|(known, _)| *known == id) {
                let name = index.run(&id)?.name;
                runs.push((id, name));
            }
        }
        let (rendered, cited) = refs::render_new(&index, &text)?;
        text = rendered;
        for id in cited {
            if !runs.iter().any(|(known, _)| *known == id) {
                let name = index.run(&id)?.name;
                runs.push((id, name));
            }
        }
    }
    let written = Written {
        id: String::new(),
        kind: entry.kind.clone(),
        author: author.clone(),
        runs: runs.iter().map(|(id, _)| id.clone()).collect(),
        text: text.clone(),
    };
    let id = file::append(lab, file::Draft { kind: entry.kind, author, runs, amends: entry.amends, repro, text })?;
    Ok(Written { id, ..written })
}

/// A markdown image link to `image` (a plot, e.g. written by `labmate plot
/// -o notebook/val_loss.svg`), relative to the notebook's folder. A relative
/// `image` is taken from the repository root. The image must be in the
/// repository: a link out of it shows nothing on a forge or in a clone.
pub fn image_link(lab: &Lab, image: &std::path::Path) -> Result<String> {
    let notebook = Settings::load(lab)?.path;
    let abs = lab.repo_root().join(image);
    if !abs.is_file() {
        return Err(Error::not_found("file", format!("no such file: {}", image.display())));
    }
    let root = lab.repo_root();
    let inside = match (abs.canonicalize(), root.canonicalize()) {
        (Ok(file), Ok(root)) => file.starts_with(root),
        _ => false,
    };
    if !inside {
        return Err(Error::invalid(
            "image",
            format!(
                "{} is outside the repository ({}): the notebook links to its images relatively, so a plot must \
                 live in the repository",
                image.display(),
                root.display()
            ),
        ));
    }
    let base = notebook.parent().unwrap_or(lab.repo_root());
    let rel = relative(&abs, base);
    let alt = abs.file_stem().map_or("plot".into(), |s| s.to_string_lossy().into_owned());
    Ok(format!("![{alt}]({})", rel.display().to_string().replace(' ', "%20")))
}

/// `path` relative to `base` (both absolute), with `..` where needed.
fn relative(path: &std::path::Path, base: &std::path::Path) -> std::path::PathBuf {
    let (p, b): (Vec<_>, Vec<_>) = (path.components().collect(), base.components().collect());
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = std::path::PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_when_needed() {
        let p = relative(std::path::Path::new("/a/b/notebook/x.png"), std::path::Path::new("/a/b"));
        assert_eq!(p, std::path::Path::new("notebook/x.png"));
        let p = relative(std::path::Path::new("/a/plots/x.png"), std::path::Path::new("/a/b"));
        assert_eq!(p, std::path::Path::new("../plots/x.png"));
    }
}
