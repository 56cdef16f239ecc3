//! Starting programs: finding one as exec would, and what a child is set up
//! with between fork and exec (its signals, dying with its parent, the
//! descriptors it inherits, a session of its own). Also the receiving end:
//! taking a file handed down at start, and letting go of stdout.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// Sets `cmd` up to start as a child watched by this process: no signal
/// blocked and SIGINT and SIGTERM at their default actions (exec keeps a
/// blocked mask and ignored signals, whatever the parent's thread set);
/// killed with SIGKILL when the thread that started it dies, and not
/// started at all when this process is already gone by then; and inheriting
/// the descriptors `keep`, which exec would otherwise close.
pub fn watched_child(cmd: &mut Command, keep: &[RawFd]) {
    let parent = std::process::id() as libc::pid_t;
    let keep = keep.to_vec();
    // SAFETY: between fork and exec only async-signal-safe calls run
    // (sigemptyset, pthread_sigmask, signal, prctl, getppid, fcntl), and
    // the closure allocates nothing: `keep` was copied before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(io::Error::other("the supervisor ended before the command started"));
            }
            for &fd in &keep {
                libc::fcntl(fd, libc::F_SETFD, 0);
            }
            Ok(())
        });
    }
}

/// The descriptor that a file handed down by [`in_new_session`] has in the child.
const HANDED_FD: RawFd = 3;

/// Sets `cmd` up to start in a session of its own (out of this process's
/// group and terminal, so it outlives both), with `handed` open in it for
/// [`take_handed`]. `handed` must stay open until the child has started.
pub fn in_new_session(cmd: &mut Command, handed: &File) {
    let fd = handed.as_raw_fd();
    // SAFETY: only async-signal-safe calls (setsid, fcntl, dup2) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            // dup2 onto itself keeps close-on-exec, so clear it by hand then.
            let ok = if fd == HANDED_FD {
                libc::fcntl(HANDED_FD, libc::F_SETFD, 0) == 0
            } else {
                libc::dup2(fd, HANDED_FD) >= 0
            };
            if !ok {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// The file handed down to this process by [`in_new_session`], now closed
/// on exec: it is this process's alone, not its children's. Only the first
/// call gets it.
pub fn take_handed() -> Option<File> {
    static TAKEN: AtomicBool = AtomicBool::new(false);
    if TAKEN.swap(true, Ordering::SeqCst) {
        return None;
    }
    // SAFETY: the descriptor was set up by the parent before exec and,
    // taken once (above), is owned by this File alone.
    let file = unsafe { File::from_raw_fd(HANDED_FD) };
    // SAFETY: fcntl on a descriptor this process owns.
    unsafe { libc::fcntl(HANDED_FD, libc::F_SETFD, libc::FD_CLOEXEC) };
    Some(file)
}

/// Points this process's stdout at `to`: whoever read it before gets
/// nothing more.
pub fn redirect_stdout(to: &File) {
    // SAFETY: dup2 onto our own stdout from a descriptor `to` keeps open.
    unsafe { libc::dup2(to.as_raw_fd(), 1) };
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
