//! The library's error type, and the one place that says whose fault an error is.

use std::io;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

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

    /// The command names something that exists but cannot run. `found` is
    /// where a PATH lookup found it (None for a path given as such).
    #[error("cannot run '{command}': {} {}", found.as_ref().map_or("it".into(), |p| p.display().to_string()),
        if *directory { "is a directory" } else { "is not executable" })]
    NotExecutable { command: String, found: Option<PathBuf>, directory: bool },

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

    /// A file a command was asked to write (an export, a plot, the notebook).
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },

    #[error("index: {0}")]
    Index(#[from] rusqlite::Error),

    /// The lab's folder or index cannot be written: another user's lab, a
    /// read-only folder or file system, a full disk.
    #[error("cannot write to the lab at {}: {why}", path.display())]
    LabNotWritable { path: PathBuf, why: String },
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

    /// An index error that comes from the lab's folder rather than from
    /// labmate (this user may not write it, its file system is read-only,
    /// the disk is full), said as such. Other errors are returned as they are.
    pub fn in_lab(self, root: &Path) -> Error {
        let Error::Index(e) = &self else { return self };
        let why = match e.sqlite_error_code() {
            Some(ErrorCode::DiskFull) => "the disk is full",
            Some(
                ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen | ErrorCode::SystemIoFailure,
            ) => match unwritable(root) {
                Some(why) => why,
                None => return self,
            },
            _ => return self,
        };
        Error::LabNotWritable { path: root.to_path_buf(), why: why.into() }
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
            Error::UnsupportedFormat { .. }
            | Error::BadFile { .. }
            | Error::Io { .. }
            | Error::Write { .. }
            | Error::LabNotWritable { .. } => Blame::Environment,
            Error::Index(e) if storage_fault(e) => Blame::Environment,
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
            Error::NotExecutable { directory: true, .. } => Some("name the program inside it"),
            Error::NotExecutable { .. } => {
                Some("make it executable (chmod +x FILE), or run it through its interpreter (python3 FILE)")
            }
            Error::LabNotWritable { .. } => Some(LAB_HINT),
            Error::Index(e) if storage_fault(e) => Some(LAB_HINT),
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

const LAB_HINT: &str = "labmate writes into the lab folder: check its owner, permissions and free space";

/// SQLite errors that are the machine's, not labmate's. A read-only
/// database whose file was replaced under it is not one of them.
fn storage_fault(e: &rusqlite::Error) -> bool {
    match e.sqlite_error_code() {
        Some(ErrorCode::ReadOnly) => e.sqlite_extended_error_code() != Some(rusqlite::ffi::SQLITE_READONLY_DBMOVED),
        Some(ErrorCode::PermissionDenied | ErrorCode::DiskFull | ErrorCode::CannotOpen) => true,
        _ => false,
    }
}

/// Why this process cannot write the lab folder or its index files, if it cannot.
fn unwritable(root: &Path) -> Option<&'static str> {
    use std::os::unix::ffi::OsStrExt;
    let paths = ["", "index.sqlite", "index.sqlite-wal", "index.sqlite-shm"].map(|f| root.join(f));
    for p in paths.iter().filter(|p| p.exists()) {
        let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { continue };
        // SAFETY: a valid NUL-terminated path; access only reads it.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            return Some(match io::Error::last_os_error().raw_os_error() {
                Some(libc::EROFS) => "the file system is read-only",
                _ => "permission denied",
            });
        }
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: i32) -> Error {
        Error::Index(rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None))
    }

    #[test]
    fn a_lab_that_cannot_be_written_is_the_machines_fault() {
        let dir = tempfile::tempdir().unwrap();
        let e = sqlite(rusqlite::ffi::SQLITE_FULL).in_lab(dir.path());
        assert_eq!(e.to_string(), format!("cannot write to the lab at {}: the disk is full", dir.path().display()));
        assert_eq!(e.blame(), Blame::Environment);
        for code in [rusqlite::ffi::SQLITE_READONLY, rusqlite::ffi::SQLITE_CANTOPEN, rusqlite::ffi::SQLITE_PERM] {
            assert_eq!(sqlite(code).blame(), Blame::Environment, "{code}");
        }
        // A folder this process can write: the fault is not the folder's.
        assert!(matches!(sqlite(rusqlite::ffi::SQLITE_IOERR).in_lab(dir.path()), Error::Index(_)));
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_IOERR).blame(), Blame::Internal);
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_READONLY_DBMOVED).blame(), Blame::Internal);
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_CORRUPT).blame(), Blame::Internal);
    }
}
