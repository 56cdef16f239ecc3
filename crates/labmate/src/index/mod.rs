//! The derived SQLite index over a lab's run folders: the only module that
//! speaks SQL. It can be deleted at any time; [`Index::rebuild`] derives the
//! same answers from the folders again.
//!
//! Ingestion ([`ingest`]) is incremental: each `*.jsonl` file of a run is
//! read from the byte offset reached last time. Readers catch the index up
//! before they answer, so no writer of a run ever needs the database.

mod ingest;
mod place;
mod query;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension};

use crate::chunk;
use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::sys::flock::{self, Mode};
use crate::sys::sqlite;

pub use ingest::SyncReport;
pub use place::{INDEX_DIR_VAR, IndexConfig};

const INDEX_FILE: &str = "index.sqlite";

/// Bumped whenever the schema changes; an older index is rebuilt.
const SCHEMA_VERSION: &str = "7";

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
    leader_start INTEGER,
    boot_id TEXT,
    complete INTEGER NOT NULL DEFAULT 0,
    -- What meta and define records add: project, group, job type, notes, metric definitions.
    about TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC, id DESC);
-- Which runs are complete, read by every sync without the runs' rows; and
-- which are live or ended lately, asked by status and by the live view.
CREATE INDEX IF NOT EXISTS runs_complete ON runs (complete, id);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_ended ON runs (ended_at);
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
    /// The folder of the index file: the lab's, or its cache on local disk.
    dir: PathBuf,
    /// The runs folder's settled modification time at the last sync that
    /// listed it: while it holds, [`Index::sync_active`] need not list it.
    runs_dir_seen: Option<std::time::SystemTime>,
    /// Slurm's last answer about the lab's jobs, and when it came: a reader
    /// that syncs often (`wait`, the server) asks Slurm at most every
    /// [`ingest::SLURM_ASK_EVERY`].
    jobs_seen: Option<ingest::JobsSeen>,
}

impl Index {
    /// Opens (creating when needed) the lab's index, without catching up.
    ///
    /// The index may be deleted at any moment, with or without its `-wal`
    /// and `-shm`, while other processes have it open. SQLite pairs a
    /// database with those files by name only, so a database made anew must
    /// never take over the `-wal`/`-shm` that processes of the deleted one
    /// still use: openers take turns (a lock on the index's folder), a new
    /// database starts without them, and no process deletes them on close
    /// (persistent WAL). A process left on a deleted index keeps answering
    /// from it, and opens the new one when it next writes.
    pub fn open(lab: &Lab) -> Result<Index> {
        let dir = place::index_dir(lab)?;
        let _turn = OpenTurn::take(&dir)?;
        Index::open_locked(lab, &dir)
    }

    fn open_locked(lab: &Lab, dir: &Path) -> Result<Index> {
        let mut again = Again::new();
        loop {
            match Index::open_once(lab, dir) {
                // The file was deleted while it was being opened.
                Err(Error::Index(e)) if is_moved(&e) && again.pause() => {}
                other => return other,
            }
        }
    }

    fn open_once(lab: &Lab, dir: &Path) -> Result<Index> {
        let path = dir.join(INDEX_FILE);
        let before = file_ids(dir);
        if before.is_none() {
            // The index, its -wal or its -shm was deleted: what is left may
            // still be in use by processes that opened it before. They keep
            // their open copies; this one starts a new index.
            remove_index_files(dir)?;
        }
        let conn = Connection::open(&path)?;
        conn.busy_timeout(Duration::from_secs(60))?;
        persist_wal(&conn)?;
        // Switching a new file to WAL and creating its tables can answer
        // "database is locked" at once, without waiting (SQLite does not run
        // the busy handler there) when other processes use it at the same
        // moment: so wait here, as the busy timeout would.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut pause = Duration::from_millis(5);
        loop {
            match Index::set_up(&conn) {
                Ok(Setup::Ready) => {
                    // Deleted again while SQLite opened them: try again.
                    let after = file_ids(dir);
                    if after.is_none() || before.is_some_and(|b| Some(b) != after) {
                        return Err(Error::Index(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_READONLY_DBMOVED),
                            None,
                        )));
                    }
                    return Ok(Index {
                        conn,
                        lab: lab.clone(),
                        dir: dir.to_path_buf(),
                        runs_dir_seen: None,
                        jobs_seen: None,
                    });
                }
                Ok(Setup::OtherSchema) => {
                    // Derived data of another schema: start over from the folders.
                    drop(conn);
                    remove_index_files(dir)?;
                    return Index::open_once(lab, dir);
                }
                Err(e) if is_busy(&e) && Instant::now() < deadline => {
                    if !conn.is_autocommit() {
                        let _ = conn.execute_batch("ROLLBACK");
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
                Err(e) if is_broken(&e) => {
                    // Not an index (or a damaged one): it is derived, so start over.
                    drop(conn);
                    remove_index_files(dir)?;
                    return Index::open_once(lab, dir);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn set_up(conn: &Connection) -> rusqlite::Result<Setup> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The WAL is kept between uses (see `open`); this bounds its size.
        conn.pragma_update(None, "journal_size_limit", 64 << 20)?;
        let version: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| r.get(0))
            .optional()
            .or_else(|e| if is_busy(&e) || is_broken(&e) { Err(e) } else { Ok(None) })?;
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

    /// Ingests everything new in the run folders. When the index was deleted
    /// or damaged under this process, it catches up the lab's new one.
    pub fn sync(&mut self) -> Result<SyncReport> {
        self.again_when_moved(|index| index.sync_once(false, true))
    }

    /// Ingests what is new in the runs not finished and in new run folders,
    /// trusting finished runs as read: a look cheap enough to repeat every
    /// fraction of a second over a lab of thousands of runs. A [`sync`]
    /// also notices a finished run's file cut below what was read.
    ///
    /// [`sync`]: Index::sync
    pub fn sync_active(&mut self) -> Result<SyncReport> {
        self.again_when_moved(|index| index.sync_once(false, false))
    }

    /// Derives the index again from every run folder, in one transaction:
    /// readers meanwhile answer from the index as it was.
    pub fn rebuild(lab: &Lab) -> Result<(Index, SyncReport)> {
        let mut index = Index::open(lab)?;
        let report = index.again_when_moved(|index| index.sync_once(true, true))?;
        Ok((index, report))
    }

    /// Runs `write` on this index, and again on a fresh connection when the
    /// index file was deleted or replaced under this one (a write on a
    /// deleted file is refused), or found damaged (then it starts over).
    fn again_when_moved<T>(&mut self, mut write: impl FnMut(&mut Index) -> Result<T>) -> Result<T> {
        let mut again = Again::new();
        loop {
            match write(self) {
                Err(Error::Index(e)) if (is_moved(&e) || is_broken(&e)) && again.pause() => {
                    // A cache folder deleted meanwhile is made again.
                    let dir = place::index_dir(&self.lab)?;
                    let _turn = OpenTurn::take(&dir)?;
                    if is_broken(&e) && !self.moved() && dir == self.dir {
                        remove_index_files(&dir)?;
                    }
                    *self = Index::open_locked(&self.lab, &dir)?;
                }
                other => return other,
            }
        }
    }

    /// Whether the lab's index was deleted or rebuilt since this connection
    /// opened it: a connection kept for later reads should then be dropped.
    pub fn is_stale(&self) -> bool {
        self.moved()
    }

    /// Whether the lab's index file is no longer the one this connection has open.
    fn moved(&self) -> bool {
        sqlite::has_moved(&self.conn)
    }

    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The index file: in the lab folder, or in its cache on local disk.
    pub fn path(&self) -> PathBuf {
        self.dir.join(INDEX_FILE)
    }

    /// Whether the index lives outside the lab folder (a cache on local disk).
    pub fn is_outside_lab(&self) -> bool {
        self.dir != self.lab.root()
    }
}

/// Tries again while the index keeps being deleted under this process, for
/// as long as SQLite would wait on a busy index.
struct Again {
    deadline: Instant,
    pause: Duration,
}

impl Again {
    fn new() -> Again {
        Again { deadline: Instant::now() + Duration::from_secs(60), pause: Duration::from_millis(1) }
    }

    /// Waits a little and says whether to try again.
    fn pause(&mut self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        std::thread::sleep(self.pause);
        self.pause = (self.pause * 2).min(Duration::from_millis(50));
        true
    }
}

/// Keeps SQLite from deleting the `-wal` and `-shm` files when the last
/// connection closes: after the index file was deleted, those names may
/// already be a new index's.
fn persist_wal(conn: &Connection) -> Result<()> {
    sqlite::persist_wal(conn).map_err(Error::Index)
}

/// A turn at opening the index: an exclusive lock on the index's folder (the
/// lab folder, or the cache folder), held while a connection is made and has
/// its `-wal` and `-shm` open.
struct OpenTurn(#[allow(dead_code)] fs::File);

impl OpenTurn {
    fn take(dir: &Path) -> Result<OpenTurn> {
        let file = fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
        flock::lock(&file, Mode::Exclusive).map_err(|e| Error::io(dir, e))?;
        Ok(OpenTurn(file))
    }
}

enum Setup {
    Ready,
    OtherSchema,
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked))
}

/// A write refused because the index file was deleted or replaced under
/// this connection (SQLITE_READONLY_DBMOVED), or an I/O error on it.
fn is_moved(e: &rusqlite::Error) -> bool {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => {
            f.extended_code == rusqlite::ffi::SQLITE_READONLY_DBMOVED || f.code == rusqlite::ErrorCode::SystemIoFailure
        }
        _ => false,
    }
}

/// A stored chunk that does not decode, said as SQLite says a damaged
/// database: a write ([`Index::sync`]) then derives the index again.
fn damaged_chunk(id: &str, key: &str, why: chunk::Damaged) -> Error {
    Error::Index(rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
        Some(format!("a stored chunk of metric '{key}' of run {id} is damaged: {why}")),
    ))
}

/// The file is not an index, or a damaged one.
fn is_broken(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseCorrupt) | Some(rusqlite::ErrorCode::NotADatabase)
    )
}

/// The device and inode of the index and its `-wal` and `-shm`, when all
/// three exist (the WAL persists, so an index in use always has all three).
fn file_ids(dir: &Path) -> Option<[(u64, u64); 3]> {
    use std::os::unix::fs::MetadataExt;
    let id = |suffix: &str| fs::metadata(dir.join(format!("{INDEX_FILE}{suffix}"))).ok().map(|m| (m.dev(), m.ino()));
    Some([id("")?, id("-wal")?, id("-shm")?])
}

fn remove_index_files(dir: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.join(format!("{INDEX_FILE}{suffix}"));
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Point;
    use crate::record::{Metrics, Record};
    use crate::rundir::{Appender, OwnerLock, RunDir, SUPERVISOR_STREAM};
    use crate::spec::RunSpec;

    /// A live run in a new lab, and its stream to log into.
    fn live_run(tmp: &std::path::Path) -> (Lab, String, Appender, OwnerLock) {
        let lab = Lab::create(&tmp.join(".labmate")).unwrap();
        let mut spec = RunSpec::new("r-000000aaaa".into(), 1_800_000_000.0, tmp);
        let (dir, lock) = RunDir::create(&lab, &mut spec, b"").unwrap();
        let stream = dir.append(SUPERVISOR_STREAM).unwrap();
        (lab, spec.id, stream, lock)
    }

    /// Logs `n` more points of `loss` after those in `logged`: steps that
    /// mostly advance by one but jump now and then, times with jitter, and
    /// values that repeat, change a little, or are not finite.
    fn log(stream: &mut Appender, logged: &mut Vec<Point>, n: usize) {
        let mut lines = String::new();
        for _ in 0..n {
            let i = logged.len() as i64;
            let step = if i % 997 == 0 { i * 1_000_003 } else { i } + logged.last().map_or(0, |p| p.step);
            let time = 1_800_000_000.0 + i as f64 * 0.1 + (i % 13) as f64 * 1e-4;
            let value = match i % 50 {
                7 => f64::NAN,
                8 => f64::INFINITY,
                9 | 10 => -0.0,
                _ => 1.0 / (i / 3 + 1) as f64,
            };
            let metrics = Metrics { values: vec![("loss".into(), value)], dropped: vec![] };
            lines.push_str(&Record::Log { step, time, metrics }.to_line());
            logged.push(Point { step, time, value });
        }
        stream.write_bytes(lines.as_bytes()).unwrap();
    }

    fn bits(points: &[Point]) -> Vec<(i64, u64, u64)> {
        points.iter().map(|p| (p.step, p.time.to_bits(), p.value.to_bits())).collect()
    }

    fn chunk_sizes(index: &Index, id: &str) -> Vec<i64> {
        let mut stmt = index.conn.prepare("SELECT n FROM series WHERE run_id = ?1 ORDER BY seq").unwrap();
        stmt.query_map([id], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
    }

    #[test]
    fn points_appended_to_a_partly_filled_chunk_read_back_exactly() {
        let tmp = tempfile::tempdir().unwrap();
        let (lab, id, mut stream, _lock) = live_run(tmp.path());
        let mut index = Index::open(&lab).unwrap();
        let mut logged = Vec::new();
        for (n, sizes) in [
            (3, vec![3]),
            (1, vec![4]),
            (4000, vec![4004]),
            (92, vec![4096]),
            (5000, vec![4096, 4096, 904]),
            (10, vec![4096, 4096, 914]),
        ] {
            log(&mut stream, &mut logged, n);
            index.sync().unwrap();
            assert_eq!(bits(&index.series(&id, "loss").unwrap()), bits(&logged));
            assert_eq!(chunk_sizes(&index, &id), sizes);
        }
    }

    #[test]
    fn a_damaged_chunk_is_named_when_read_and_rebuilt_when_written() {
        let tmp = tempfile::tempdir().unwrap();
        let (lab, id, mut stream, _lock) = live_run(tmp.path());
        let mut index = Index::open(&lab).unwrap();
        let mut logged = Vec::new();
        log(&mut stream, &mut logged, 10);
        index.sync().unwrap();
        index.conn.execute("UPDATE series SET data = x'01020101ff00ff'", []).unwrap();
        let err = index.series(&id, "loss").unwrap_err().to_string();
        assert!(
            err.contains(
                "a stored chunk of metric 'loss' of run r-000000aaaa is damaged: it ends before its last point"
            ),
            "{err}"
        );
        log(&mut stream, &mut logged, 10);
        index.sync().unwrap();
        assert_eq!(bits(&index.series(&id, "loss").unwrap()), bits(&logged));
    }
}
