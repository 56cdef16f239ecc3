//! The library's error type, and the one place that says whose fault an error is.

use std::io;
use std::path::PathBuf;

// Messages quote names users gave: each stays on its line of the message.
use crate::text::escape_controls as esc;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no lab found in {} or any folder above it", start.display())]
    NoLab { start: PathBuf },

    #[error("unknown run '{}'{}", esc(query), list_hint("known runs", candidates))]
    UnknownRun { query: String, candidates: Vec<String> },

    /// `matches`: each run the query fits, and by which rules.
    #[error("run '{}' is ambiguous; it matches {} runs:{}", esc(query), matches.len(), list_lines(matches))]
    AmbiguousRun { query: String, matches: Vec<String> },

    #[error("bad --config '{}': {why}", esc(arg))]
    BadConfig { arg: String, why: String },

    #[error("command not found: '{}'", esc(command))]
    CommandNotFound { command: String },

    #[error("{}: lab format {found} is not supported (this labmate reads format {supported})", path.display())]
    UnsupportedFormat { path: PathBuf, found: String, supported: u32 },

    #[error("{}: {why}", path.display())]
    BadFile { path: PathBuf, why: String },

    #[error("bad {what} at column {column}: {why}\n{}", pointed(text, *column))]
    BadExpression { what: &'static str, text: String, column: usize, why: String },

    #[error("{}: {why}", path.display())]
    BadPolicy { path: PathBuf, why: String },

    /// A request that makes no sense as asked (a bad flag value, a key that is not there).
    #[error("{0}")]
    Invalid(String),

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error("index: {0}")]
    Index(#[from] rusqlite::Error),
}

/// Whose fault an error is: this decides the exit code and whether a hint helps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// A bad flag, run name, config or file the user gave.
    User,
    /// The machine: permissions, a full disk, a missing program.
    Environment,
    /// A bug in labmate.
    Internal,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    pub fn blame(&self) -> Blame {
        match self {
            Error::NoLab { .. }
            | Error::UnknownRun { .. }
            | Error::AmbiguousRun { .. }
            | Error::BadConfig { .. }
            | Error::CommandNotFound { .. }
            | Error::BadExpression { .. }
            | Error::BadPolicy { .. }
            | Error::Invalid(_) => Blame::User,
            Error::UnsupportedFormat { .. } | Error::BadFile { .. } | Error::Io { .. } => Blame::Environment,
            Error::Index(_) => Blame::Internal,
        }
    }

    /// A next step for the user, where there is an obvious one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::NoLab { .. } => Some("run `labmate init` here, or set LABMATE_DIR to a lab's .labmate folder"),
            Error::UnknownRun { .. } => Some(
                "a run is named by its id, a unique id prefix, its last 4 characters, or its name; `labmate runs` lists them",
            ),
            Error::AmbiguousRun { .. } => {
                Some("give the full id or a longer prefix: a full id always names its own run")
            }
            Error::BadConfig { .. } => Some("write config values as KEY=VALUE, e.g. --config lr=3e-4"),
            Error::CommandNotFound { .. } => Some("give the program's path, or check PATH"),
            Error::Index(_) => Some("the index is derived data: `labmate reindex` rebuilds it from the run folders"),
            _ => None,
        }
    }
}

/// Shown items, one per line; a long list says how many it leaves out.
fn list_lines(items: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut s: String = items.iter().take(SHOWN).map(|i| format!("\n  {}", esc(i))).collect();
    if items.len() > SHOWN {
        s.push_str(&format!("\n  and {} more", items.len() - SHOWN));
    }
    s
}

/// The text with a caret under `column`: all of it when it is short, else
/// the stretch around the column, so that a huge expression stays readable.
fn pointed(text: &str, column: usize) -> String {
    const BEFORE: usize = 40;
    const AFTER: usize = 30;
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= BEFORE + AFTER {
        return format!("  {text}\n  {:>column$}", "^");
    }
    let at = column.saturating_sub(1).min(chars.len());
    let (start, end) = (at.saturating_sub(BEFORE), (at + AFTER).min(chars.len()));
    let (head, tail) = (if start > 0 { "…" } else { "" }, if end < chars.len() { "…" } else { "" });
    let shown: String = chars[start..end].iter().collect();
    let caret = head.chars().count() + at - start + 1;
    format!("  {head}{shown}{tail}\n  {:>caret$}", "^")
}

fn list_hint(label: &str, items: &[String]) -> String {
    const SHOWN: usize = 8;
    if items.is_empty() {
        return String::new();
    }
    let shown: Vec<_> = items[..items.len().min(SHOWN)].iter().map(|i| esc(i)).collect();
    let mut s = format!("; {label}: {}", shown.join(", "));
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}
