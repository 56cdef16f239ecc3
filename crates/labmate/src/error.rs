//! The library's error type: what went wrong, with the names and values
//! involved, and its [`Kind`], the one fact a face needs to answer (an exit
//! code, an HTTP status, a tool error). A next step to suggest is the face's
//! to say, in its own words: the core suggests no command or flag.

use std::io;
use std::path::{Path, PathBuf};

use rusqlite::ErrorCode;

use crate::sys::exec::Unrunnable;
// Messages quote names users gave: each stays on its line of the message.
use crate::text::escape_controls as esc;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What sort of failure an error is. Each face maps it: the CLI to an exit
/// code and a hint, HTTP to a status, MCP to a tool error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Something the user named is not there: a run, a key, an entry, a
    /// request, a file, a commit.
    NotFound,
    /// A value the user gave cannot be used as given: a flag, an
    /// expression, a config value, a policy file, a name template.
    Invalid,
    /// The lab's state stands against it: already decided, already ended,
    /// not queued, a folder already there.
    Conflict,
    /// Not this author's to do, or refused by the lab's policy: an agent
    /// deciding, approving one's own request, a gate failing, over budget.
    Forbidden,
    /// The machine's: disk, permissions, a program that failed, a lab file
    /// that is not what it should be, a lab format this labmate does not read.
    Environment,
    /// A bug in labmate.
    Internal,
}

impl Kind {
    /// Whether the user can put it right by asking differently.
    pub fn is_user(self) -> bool {
        matches!(self, Kind::NotFound | Kind::Invalid | Kind::Conflict | Kind::Forbidden)
    }
}

/// The plain variants (`NotFound`, `Invalid`, `Conflict`, `Forbidden`,
/// `Environment`, `Internal`) carry `what`, the sort of thing the error is
/// about (`"notebook entry"`, `"timeout"`, `"gate"`), for a face to point at
/// or to pick a hint by (so it stays as it is), and `why`, the whole message
/// a person reads.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no lab found in {} or any folder above it", start.display())]
    NoLab { start: PathBuf },

    #[error("unknown run '{}'{}", esc(query), list_hint("known runs", candidates))]
    UnknownRun { query: String, candidates: Vec<String> },

    /// `matches`: each run the query fits, and by which rules.
    #[error("run '{}' is ambiguous; it matches {} runs:{}", esc(query), matches.len(), list_lines(matches))]
    AmbiguousRun { query: String, matches: Vec<String> },

    /// A path into runs (`config.lr`, `metrics.loss.min`) that no run has;
    /// `closest` is a known one that looks like it.
    #[error("unknown key '{key}'{}", closest.as_ref().map_or(": no run has it".into(), |c| format!("; did you mean '{c}'?")))]
    UnknownKey { key: String, closest: Option<String> },

    #[error("bad --config '{}': {why}", esc(arg))]
    BadConfig { arg: String, why: String },

    #[error("command not found: '{}'", esc(command))]
    CommandNotFound { command: String },

    /// The command names something that exists but cannot run. `found` is
    /// where a PATH lookup found it (None for a path given as such).
    #[error("cannot run '{command}': {} {}", found.as_ref().map_or("it".into(), |p| p.display().to_string()),
        if *directory { "is a directory" } else { "is not executable" })]
    NotExecutable { command: String, found: Option<PathBuf>, directory: bool },

    #[error(
        "{}: lab format {found} is not supported (this labmate reads formats 1 to {supported}; a newer labmate wrote this lab)",
        path.display()
    )]
    UnsupportedFormat { path: PathBuf, found: String, supported: u32 },

    #[error("{}: {why}", path.display())]
    BadFile { path: PathBuf, why: String },

    #[error("bad {what} at column {column}: {why}\n{}", pointed(text, *column))]
    BadExpression { what: &'static str, text: String, column: usize, why: String },

    #[error("{}: {why}", path.display())]
    BadPolicy { path: PathBuf, why: String },

    #[error("{why}")]
    NotFound { what: &'static str, why: String },

    #[error("{why}")]
    Invalid { what: &'static str, why: String },

    #[error("{why}")]
    Conflict { what: &'static str, why: String },

    #[error("{why}")]
    Forbidden { what: &'static str, why: String },

    /// A program labmate runs (git, the supervisor) failed on its own.
    #[error("{why}")]
    Environment { what: &'static str, why: String },

    #[error("{why}")]
    Internal { what: &'static str, why: String },

    /// An error in one part of something larger the user gave: a flag's
    /// value (`--metric loss`), a reference in an entry (`{{...}}`). It is
    /// of its source's kind.
    #[error("{what}: {source}")]
    Within { what: String, source: Box<Error> },

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

impl From<Unrunnable> for Error {
    fn from(e: Unrunnable) -> Error {
        match e {
            Unrunnable::NotFound { command } => Error::CommandNotFound { command },
            Unrunnable::NotExecutable { command, found, directory } => {
                Error::NotExecutable { command, found, directory }
            }
        }
    }
}

impl Error {
    pub fn not_found(what: &'static str, why: impl Into<String>) -> Error {
        Error::NotFound { what, why: why.into() }
    }

    pub fn invalid(what: &'static str, why: impl Into<String>) -> Error {
        Error::Invalid { what, why: why.into() }
    }

    pub fn conflict(what: &'static str, why: impl Into<String>) -> Error {
        Error::Conflict { what, why: why.into() }
    }

    pub fn forbidden(what: &'static str, why: impl Into<String>) -> Error {
        Error::Forbidden { what, why: why.into() }
    }

    pub fn environment(what: &'static str, why: impl Into<String>) -> Error {
        Error::Environment { what, why: why.into() }
    }

    pub fn internal(what: &'static str, why: impl Into<String>) -> Error {
        Error::Internal { what, why: why.into() }
    }

    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { path: path.into(), source }
    }

    pub fn write(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Write { path: path.into(), source }
    }

    /// This error, said of a part (`what`) of a larger input; its kind stays.
    pub fn within(self, what: impl Into<String>) -> Error {
        Error::Within { what: what.into(), source: Box::new(self) }
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

    pub fn kind(&self) -> Kind {
        match self {
            Error::NoLab { .. }
            | Error::UnknownRun { .. }
            | Error::UnknownKey { .. }
            | Error::CommandNotFound { .. }
            | Error::NotFound { .. } => Kind::NotFound,
            Error::AmbiguousRun { .. }
            | Error::BadConfig { .. }
            | Error::NotExecutable { .. }
            | Error::BadExpression { .. }
            | Error::BadPolicy { .. }
            | Error::Invalid { .. } => Kind::Invalid,
            Error::Conflict { .. } => Kind::Conflict,
            Error::Forbidden { .. } => Kind::Forbidden,
            Error::UnsupportedFormat { .. }
            | Error::BadFile { .. }
            | Error::Environment { .. }
            | Error::Io { .. }
            | Error::Write { .. }
            | Error::LabNotWritable { .. } => Kind::Environment,
            Error::Index(e) if storage_fault(e) => Kind::Environment,
            Error::Index(_) | Error::Internal { .. } => Kind::Internal,
            Error::Within { source, .. } => source.kind(),
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
    let paths = ["", "index.sqlite", "index.sqlite-wal", "index.sqlite-shm"].map(|f| root.join(f));
    for p in paths.iter().filter(|p| p.exists()) {
        if let Err(e) = crate::sys::fs::may_write(p) {
            return Some(match e.raw_os_error() {
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
        assert_eq!(e.kind(), Kind::Environment);
        for code in [rusqlite::ffi::SQLITE_READONLY, rusqlite::ffi::SQLITE_CANTOPEN, rusqlite::ffi::SQLITE_PERM] {
            assert_eq!(sqlite(code).kind(), Kind::Environment, "{code}");
        }
        // A folder this process can write: the fault is not the folder's.
        assert!(matches!(sqlite(rusqlite::ffi::SQLITE_IOERR).in_lab(dir.path()), Error::Index(_)));
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_IOERR).kind(), Kind::Internal);
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_READONLY_DBMOVED).kind(), Kind::Internal);
        assert_eq!(sqlite(rusqlite::ffi::SQLITE_CORRUPT).kind(), Kind::Internal);
    }

    /// The HTTP status each variant needs, written per variant and without
    /// a wildcard: a new variant does not compile until it is placed here.
    fn http_status(e: &Error) -> u16 {
        match e {
            Error::NoLab { .. }
            | Error::UnknownRun { .. }
            | Error::UnknownKey { .. }
            | Error::CommandNotFound { .. }
            | Error::NotFound { .. } => 404,
            Error::AmbiguousRun { .. }
            | Error::BadConfig { .. }
            | Error::NotExecutable { .. }
            | Error::BadExpression { .. }
            | Error::BadPolicy { .. }
            | Error::Invalid { .. } => 400,
            Error::Conflict { .. } => 409,
            Error::Forbidden { .. } => 403,
            Error::Within { source, .. } => http_status(source),
            Error::UnsupportedFormat { .. }
            | Error::BadFile { .. }
            | Error::Environment { .. }
            | Error::Io { .. }
            | Error::Write { .. }
            | Error::LabNotWritable { .. }
            | Error::Index(_)
            | Error::Internal { .. } => 500,
        }
    }

    fn status_of(kind: Kind) -> u16 {
        match kind {
            Kind::NotFound => 404,
            Kind::Invalid => 400,
            Kind::Conflict => 409,
            Kind::Forbidden => 403,
            Kind::Environment | Kind::Internal => 500,
        }
    }

    #[test]
    fn each_error_has_the_kind_a_face_answers_with() {
        let path = PathBuf::from("/lab");
        let io = || io::Error::from(io::ErrorKind::PermissionDenied);
        let s = String::new;
        let cases = [
            (Error::NoLab { start: path.clone() }, Kind::NotFound),
            (Error::UnknownRun { query: s(), candidates: vec![] }, Kind::NotFound),
            (Error::UnknownKey { key: s(), closest: None }, Kind::NotFound),
            (Error::CommandNotFound { command: s() }, Kind::NotFound),
            (Error::not_found("notebook entry", "no notebook entry 'n-1'"), Kind::NotFound),
            (Error::AmbiguousRun { query: s(), matches: vec![] }, Kind::Invalid),
            (Error::BadConfig { arg: s(), why: s() }, Kind::Invalid),
            (Error::NotExecutable { command: s(), found: None, directory: false }, Kind::Invalid),
            (Error::BadExpression { what: "filter", text: s(), column: 1, why: s() }, Kind::Invalid),
            (Error::BadPolicy { path: path.clone(), why: s() }, Kind::Invalid),
            (Error::invalid("timeout", "--timeout: bad duration 'x'"), Kind::Invalid),
            (Error::conflict("request", "request q-1 was already approved"), Kind::Conflict),
            (Error::forbidden("decision", "an agent cannot approve"), Kind::Forbidden),
            (Error::UnsupportedFormat { path: path.clone(), found: "9".into(), supported: 1 }, Kind::Environment),
            (Error::BadFile { path: path.clone(), why: s() }, Kind::Environment),
            (Error::environment("git", "git diff: failed"), Kind::Environment),
            (Error::io(&path, io()), Kind::Environment),
            (Error::write(&path, io()), Kind::Environment),
            (Error::LabNotWritable { path: path.clone(), why: s() }, Kind::Environment),
            (sqlite(rusqlite::ffi::SQLITE_FULL), Kind::Environment),
            (sqlite(rusqlite::ffi::SQLITE_CORRUPT), Kind::Internal),
            (Error::internal("plot", "cannot draw"), Kind::Internal),
        ];
        for (e, kind) in cases {
            assert_eq!(e.kind(), kind, "{e:?}");
            assert_eq!(status_of(e.kind()), http_status(&e), "{e:?}");
            assert_eq!(kind.is_user(), status_of(kind) < 500, "{kind:?}");
            // Said of a part of a larger input, an error keeps its kind.
            let within = e.within("--metric loss");
            assert_eq!((within.kind(), http_status(&within)), (kind, status_of(kind)));
        }
    }

    #[test]
    fn an_error_within_a_larger_input_names_the_part() {
        let e = Error::UnknownKey { key: "config.lrr".into(), closest: Some("config.lr".into()) }.within("--metric x");
        assert_eq!(e.to_string(), "--metric x: unknown key 'config.lrr'; did you mean 'config.lr'?");
        let e = Error::UnknownKey { key: "metrics.nope".into(), closest: None };
        assert_eq!(e.to_string(), "unknown key 'metrics.nope': no run has it");
    }
}
