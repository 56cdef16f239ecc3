//! File-system facts the standard library does not give: whether this
//! process may write a path (as the kernel decides, read-only mounts
//! included), and a file's size looked up relative to an open folder.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether this process may write `p` (access(2), for its real uid): the
/// OS's reason when it may not (`EROFS` on a read-only file system).
pub fn may_write(p: &Path) -> io::Result<()> {
    let c =
        std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid NUL-terminated path; access only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The size of the file at `rel` under the open folder `dir`; None when it
/// cannot be looked at. One lookup, without building a full path.
pub fn size_at(dir: &File, rel: &CStr) -> Option<u64> {
    // SAFETY: a zeroed stat filled by fstatat on a path relative to an open folder.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `rel` is NUL-terminated and `st` is a live stat to fill.
    if unsafe { libc::fstatat(dir.as_raw_fd(), rel.as_ptr(), &mut st, 0) } == 0 {
        Some(st.st_size as u64)
    } else {
        None
    }
}
