//! The derived SQLite index over a lab's run folders: the only module that
//! speaks SQL. It can be deleted at any time; [`Index::rebuild`] derives the
//! same answers from the folders again.
//!
//! Ingestion ([`ingest`]) is incremental: each `*.jsonl` file of a run is
//! read from the byte offset reached last time. Readers catch the index up
//! before they answer, so no writer of a run ever needs the database.

mod ingest;
mod query;

use std::fs;
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

use crate::error::{Error, Result};
use crate::lab::Lab;

pub use ingest::SyncReport;

/// Bumped whenever the schema changes; an older index is rebuilt.
const SCHEMA_VERSION: &str = "3";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    ended_at REAL,
    exit_code INTEGER,
    signal INTEGER,
    reason TEXT,
    tags TEXT NOT NULL,
    config TEXT NOT NULL,
    summary TEXT NOT NULL,
    spec TEXT NOT NULL,
    pgid INTEGER,
    complete INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC, id DESC);
CREATE TABLE IF NOT EXISTS files (
    run_id TEXT NOT NULL,
    name TEXT NOT NULL,
    offset INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    count INTEGER NOT NULL,
    nan_count INTEGER NOT NULL,
    last REAL,
    last_step INTEGER NOT NULL,
    min REAL,
    max REAL,
    finite INTEGER NOT NULL DEFAULT 0,
    sum REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS series (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL,
    UNIQUE (run_id, key, seq)
);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
"#;

pub struct Index {
    conn: Connection,
    lab: Lab,
}

impl Index {
    /// Opens (creating when needed) the lab's index, without catching up.
    pub fn open(lab: &Lab) -> Result<Index> {
        let conn = Connection::open(lab.index_path())?;
        conn.busy_timeout(Duration::from_secs(60))?;
        // Switching a new file to WAL and creating its tables can answer
        // "database is locked" at once, without waiting (SQLite does not run
        // the busy handler there) when other processes open it at the same
        // moment: so wait here, as the busy timeout would.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut pause = Duration::from_millis(5);
        loop {
            match Index::set_up(&conn) {
                Ok(Setup::Ready) => return Ok(Index { conn, lab: lab.clone() }),
                Ok(Setup::OtherSchema) => {
                    // Derived data of another schema: start over from the folders.
                    drop(conn);
                    remove_index_files(lab)?;
                    return Index::open(lab);
                }
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn set_up(conn: &Connection) -> rusqlite::Result<Setup> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
            .optional()
            .or_else(|e| if is_busy(&e) { Err(e) } else { Ok(None) })?;
        match version.as_deref() {
            Some(SCHEMA_VERSION) => Ok(Setup::Ready),
            Some(_) => Ok(Setup::OtherSchema),
            None => {
                conn.execute_batch(&format!(
                    "BEGIN IMMEDIATE; {SCHEMA} INSERT OR REPLACE INTO meta VALUES ('schema', '{SCHEMA_VERSION}'); COMMIT;"
                ))?;
                Ok(Setup::Ready)
            }
        }
    }

    /// Opens the index and catches it up with the run folders.
    pub fn open_synced(lab: &Lab) -> Result<(Index, SyncReport)> {
        let in_lab = |e: Error| e.in_lab(lab.root());
        let mut index = Index::open(lab).map_err(in_lab)?;
        let report = index.sync().map_err(in_lab)?;
        Ok((index, report))
    }

    /// Deletes the index and derives it again from every run folder.
    pub fn rebuild(lab: &Lab) -> Result<(Index, SyncReport)> {
        remove_index_files(lab)?;
        Index::open_synced(lab)
    }

    pub fn lab(&self) -> &Lab {
        &self.lab
    }
}

enum Setup {
    Ready,
    OtherSchema,
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked))
}

fn remove_index_files(lab: &Lab) -> Result<()> {
    let base = lab.index_path();
    for suffix in ["", "-wal", "-shm"] {
        let p = base.with_file_name(format!("index.sqlite{suffix}"));
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Ok(())
}
