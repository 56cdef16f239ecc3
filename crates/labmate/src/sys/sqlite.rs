//! SQLite file controls that rusqlite does not wrap: whether a connection's
//! database file was replaced under it, and keeping its `-wal` and `-shm`
//! files when the last connection closes.

use std::ffi::c_int;

use rusqlite::{Connection, ffi};

/// Runs the file control `op`, which reads or writes one int, on the main
/// database of `conn`; SQLite's result code.
fn file_control(conn: &Connection, op: c_int, value: &mut c_int) -> c_int {
    // SAFETY: the handle is this connection's, alive for the call; the
    // callers' file controls take a pointer to one int.
    unsafe { ffi::sqlite3_file_control(conn.handle(), c"main".as_ptr(), op, (value as *mut c_int).cast()) }
}

/// Whether the database file is no longer the one `conn` has open (deleted
/// or replaced), or SQLite cannot tell.
pub fn has_moved(conn: &Connection) -> bool {
    let mut moved: c_int = 0;
    let rc = file_control(conn, ffi::SQLITE_FCNTL_HAS_MOVED, &mut moved);
    rc != ffi::SQLITE_OK || moved != 0
}

/// Keeps SQLite from deleting the `-wal` and `-shm` files when the last
/// connection closes.
pub fn persist_wal(conn: &Connection) -> rusqlite::Result<()> {
    let mut on: c_int = 1;
    let rc = file_control(conn, ffi::SQLITE_FCNTL_PERSIST_WAL, &mut on);
    if rc != ffi::SQLITE_OK {
        return Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None));
    }
    Ok(())
}
