//! Starting programs: finding one as exec would.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a program cannot be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unrunnable {
    /// Nothing of that name is there.
    NotFound { command: String },
    /// Something of that name is there but cannot run. `found` is where a
    /// PATH lookup found it (None for a path given as such).
    NotExecutable { command: String, found: Option<PathBuf>, directory: bool },
}

/// Finds the program of an argv, as exec would: a path when it holds a '/',
/// else the first executable of that name on `path_var`. Something there
/// that cannot run (a directory, a file without an execute bit) is named as
/// such, not as missing.
pub fn resolve_program(program: &str, cwd: &Path, path_var: Option<&OsStr>) -> Result<PathBuf, Unrunnable> {
    let not_found = || Unrunnable::NotFound { command: program.to_string() };
    let cannot_run = |found: Option<&Path>, directory| Unrunnable::NotExecutable {
        command: program.to_string(),
        found: found.map(Path::to_path_buf),
        directory,
    };
    if program.is_empty() {
        return Err(not_found());
    }
    if program.contains('/') {
        let p = cwd.join(program);
        return match runnable(&p) {
            Some(Runnable::Yes) => Ok(p),
            Some(Runnable::Directory) => Err(cannot_run(None, true)),
            Some(Runnable::NotExecutable) => Err(cannot_run(None, false)),
            None => Err(not_found()),
        };
    }
    let path_var = path_var.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    let mut unrunnable = None;
    for dir in path_var.as_bytes().split(|b| *b == b':') {
        let dir = if dir.is_empty() { cwd.to_path_buf() } else { cwd.join(OsStr::from_bytes(dir)) };
        let p = dir.join(program);
        match runnable(&p) {
            Some(Runnable::Yes) => return Ok(p),
            // exec skips these and goes on looking; a directory named like a program is no program.
            Some(Runnable::NotExecutable) if unrunnable.is_none() => unrunnable = Some(p),
            _ => {}
        }
    }
    Err(unrunnable.map_or_else(not_found, |p| cannot_run(Some(&p), false)))
}

enum Runnable {
    Yes,
    Directory,
    NotExecutable,
}

/// Whether `p` can be executed; None when nothing is there.
fn runnable(p: &Path) -> Option<Runnable> {
    use std::os::unix::fs::PermissionsExt;
    let m = std::fs::metadata(p).ok()?;
    Some(if m.is_dir() {
        Runnable::Directory
    } else if m.is_file() && m.permissions().mode() & 0o111 != 0 {
        Runnable::Yes
    } else {
        Runnable::NotExecutable
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn resolve(program: &str, cwd: &Path, path_var: Option<&OsStr>) -> Result<PathBuf, Error> {
        resolve_program(program, cwd, path_var).map_err(Error::from)
    }

    #[test]
    fn programs_resolve_like_exec() {
        let cwd = Path::new("/");
        assert!(resolve("sh", cwd, Some(OsStr::new("/usr/bin:/bin"))).is_ok());
        let e = resolve("no-such-program-xyz", cwd, Some(OsStr::new("/bin"))).unwrap_err();
        assert_eq!(e.to_string(), "command not found: 'no-such-program-xyz'");
    }

    #[test]
    fn what_cannot_run_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("data.txt"), "1\n").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let e = resolve("./data.txt", dir.path(), None).unwrap_err();
        assert_eq!(e.to_string(), "cannot run './data.txt': it is not executable");
        let e = resolve("./sub", dir.path(), None).unwrap_err();
        assert_eq!(e.to_string(), "cannot run './sub': it is a directory");
        let path = format!("/no/such/dir:{}", dir.path().display());
        let e = resolve("data.txt", Path::new("/"), Some(OsStr::new(&path))).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("cannot run 'data.txt': {}/data.txt is not executable", dir.path().display())
        );
        let e = resolve("sub", Path::new("/"), Some(OsStr::new(&path))).unwrap_err();
        assert!(matches!(e, Error::CommandNotFound { .. }), "{e}");
    }
}
