//! The library's error type, and the one place that says whose fault an error is.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no lab found in {} or any folder above it", start.display())]
    NoLab { start: PathBuf },

    #[error("unknown run '{query}'{}", list_hint("known runs", candidates))]
    UnknownRun { query: String, candidates: Vec<String> },

    #[error("run '{query}' is ambiguous{}", list_hint("it matches", matches))]
    AmbiguousRun { query: String, matches: Vec<String> },

    #[error("bad --config '{arg}': {why}")]
    BadConfig { arg: String, why: String },

    #[error("command not found: '{command}'")]
    CommandNotFound { command: String },

    /// The command names something that exists but cannot run. `found` is
    /// where a PATH lookup found it (None for a path given as such).
    #[error("cannot run '{command}': {} {}", found.as_ref().map_or("it".into(), |p| p.display().to_string()),
        if *directory { "is a directory" } else { "is not executable" })]
    NotExecutable { command: String, found: Option<PathBuf>, directory: bool },

    #[error("{}: lab format {found} is not supported (this labmate reads format {supported})", path.display())]
    UnsupportedFormat { path: PathBuf, found: String, supported: u32 },

    #[error("{}: {why}", path.display())]
    BadFile { path: PathBuf, why: String },

    #[error("bad {what} at column {column}: {why}\n  {text}\n  {caret:>column$}", caret = "^")]
    BadExpression { what: &'static str, text: String, column: usize, why: String },

    #[error("{}: {why}", path.display())]
    BadPolicy { path: PathBuf, why: String },

    /// A request that makes no sense as asked (a bad flag value, a key that is not there).
    #[error("{0}")]
    Invalid(String),

    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },

    /// A file a command was asked to write (an export, a plot, the notebook).
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },

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

    pub fn write(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Write { path: path.into(), source }
    }

    pub fn blame(&self) -> Blame {
        match self {
            Error::NoLab { .. }
            | Error::UnknownRun { .. }
            | Error::AmbiguousRun { .. }
            | Error::BadConfig { .. }
            | Error::CommandNotFound { .. }
            | Error::NotExecutable { .. }
            | Error::BadExpression { .. }
            | Error::BadPolicy { .. }
            | Error::Invalid(_) => Blame::User,
            Error::UnsupportedFormat { .. } | Error::BadFile { .. } | Error::Io { .. } | Error::Write { .. } => {
                Blame::Environment
            }
            Error::Index(_) => Blame::Internal,
        }
    }

    /// A next step for the user, where there is an obvious one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::NoLab { .. } => Some("run `labmate init` here, or set LABMATE_DIR to a lab's .labmate folder"),
            Error::UnknownRun { .. } | Error::AmbiguousRun { .. } => Some(
                "a run is named by its id, a unique id prefix, its last 4 characters, or its name; `labmate runs` lists them",
            ),
            Error::BadConfig { .. } => Some("write config values as KEY=VALUE, e.g. --config lr=3e-4"),
            Error::CommandNotFound { .. } => Some("give the program's path, or check PATH"),
            Error::NotExecutable { directory: true, .. } => Some("name the program inside it"),
            Error::NotExecutable { .. } => {
                Some("make it executable (chmod +x FILE), or run it through its interpreter (python3 FILE)")
            }
            Error::Index(_) => Some("the index is derived data: `labmate reindex` rebuilds it from the run folders"),
            _ => None,
        }
    }
}

fn list_hint(label: &str, items: &[String]) -> String {
    const SHOWN: usize = 8;
    if items.is_empty() {
        return String::new();
    }
    let mut s = format!("; {label}: {}", items[..items.len().min(SHOWN)].join(", "));
    if items.len() > SHOWN {
        s.push_str(&format!(" and {} more", items.len() - SHOWN));
    }
    s
}
