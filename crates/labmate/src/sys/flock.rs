//! Advisory locks (`flock`) on open files: what keeps one writer per review
//! store and notebook, marks a run's owner alive, hands out queue slots and
//! GPUs, and gives index openers their turns. A lock goes with the open
//! file: it is released when the last descriptor of it closes, so a process
//! that dies lets go of its locks.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Many holders at once, or one alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Shared,
    Exclusive,
}

fn op(mode: Mode) -> libc::c_int {
    match mode {
        Mode::Shared => libc::LOCK_SH,
        Mode::Exclusive => libc::LOCK_EX,
    }
}

/// Takes the lock, waiting for it as long as another holder keeps it.
pub fn lock(f: &File, mode: Mode) -> io::Result<()> {
    loop {
        // SAFETY: flock on an open fd; the lock goes with the file.
        if unsafe { libc::flock(f.as_raw_fd(), op(mode)) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Takes the lock if nobody holds it in a conflicting mode: `Ok(false)` when
/// somebody does.
pub fn try_lock(f: &File, mode: Mode) -> io::Result<bool> {
    // SAFETY: as above.
    if unsafe { libc::flock(f.as_raw_fd(), op(mode) | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock { Ok(false) } else { Err(e) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exclusive_lock_keeps_others_out_until_it_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        let a = File::create(&p).unwrap();
        let b = File::open(&p).unwrap();
        lock(&a, Mode::Exclusive).unwrap();
        assert!(!try_lock(&b, Mode::Shared).unwrap());
        drop(a);
        assert!(try_lock(&b, Mode::Shared).unwrap());
        let c = File::open(&p).unwrap();
        assert!(try_lock(&c, Mode::Shared).unwrap(), "shared holders share");
        assert!(!try_lock(&File::open(&p).unwrap(), Mode::Exclusive).unwrap());
    }
}
