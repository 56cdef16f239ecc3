//! Catching the index up with the run folders: new runs, new records from
//! each stream's last offset, ends, lost owners and torn lines.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};

use super::{Index, damaged_chunk};
use crate::chunk;
use crate::error::{Error, Result};
use crate::model::{Point, SlurmJob};
use crate::record::{Event, Leader, MetricDef, Record, RunStatus, how_ended};
use crate::rundir::{Lost, RunDir};
use crate::slurm::{self, JobState};
use crate::spec::RunSpec;
use crate::sys::procgroup::Group;

/// How long an answer of Slurm's about the lab's jobs is used before it is
/// asked again (by a reader that syncs many times: `wait`, the server).
pub(super) const SLURM_ASK_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Slurm's answer about some jobs, and when it came.
pub(super) struct JobsSeen {
    at: std::time::Instant,
    states: HashMap<String, JobState>,
}

/// Largest piece of a stream read at once; bounds memory on huge files.
const PIECE: u64 = 64 << 20;
/// Points buffered before they are written to the series tables.
const FLUSH_POINTS: usize = 1 << 22;
/// How much of a bad line an event keeps.
const SHOWN_LINE: usize = 300;

#[derive(Debug, Default)]
pub struct SyncReport {
    pub runs_updated: usize,
    pub points: u64,
    /// Run folders that could not be read at all (the rest of the lab is).
    pub problems: Vec<String>,
}

/// The index's view of one run while it is being caught up.
struct RunState {
    id: String,
    name: Option<String>,
    status: RunStatus,
    created_at: f64,
    started_at: Option<f64>,
    ended_at: Option<f64>,
    exit_code: Option<i32>,
    signal: Option<i32>,
    reason: Option<String>,
    tags: Vec<String>,
    about: About,
    config: Map<String, Value>,
    summary: Map<String, Value>,
    spec: String,
    origin: String,
    host: String,
    /// `slurm` for a run submitted to Slurm: Slurm owns its processes.
    scheduler: Option<String>,
    /// The command's process group, from the owner's start record.
    pgid: Option<i32>,
    leader: Option<Leader>,
    ended: bool,
    /// The latest record time seen: what warnings about the stream are dated,
    /// so that a rebuilt index says the same.
    last_time: f64,
}

/// What `meta` and `define` records say about a run besides its name and tags.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub(super) struct About {
    pub project: Option<String>,
    pub group: Option<String>,
    pub job_type: Option<String>,
    pub notes: Option<String>,
    /// In the order they were (last) defined: a metric defined again moves to the end.
    pub metric_defs: Vec<MetricDef>,
    /// Its Slurm job, for a run submitted to Slurm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm: Option<SlurmJob>,
}

#[derive(Default)]
struct Batch {
    points: HashMap<String, Vec<Point>>,
    n_points: usize,
    events: Vec<Event>,
}

impl Index {
    /// Ingests everything new in the run folders. `afresh`: forget
    /// everything first, in the same transaction. `finished_too`: look at
    /// finished runs' files as well, to notice one cut below what was read.
    pub(super) fn sync_once(&mut self, afresh: bool, finished_too: bool) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        let runs_dir = self.lab.runs_dir();
        let stamp = settled_mtime(&runs_dir);
        let mut work = if !afresh && !finished_too && stamp.is_some() && stamp == self.runs_dir_seen {
            // No run folder came or went since the last listing: only the
            // unfinished runs can have news.
            self.unfinished_with_news()?
        } else {
            let work = self.folders_with_news(afresh, finished_too)?;
            self.runs_dir_seen = stamp;
            work
        };
        // Ended runs are not looked at again, unless a writer that appended
        // to one left a marker for it.
        let marks = appended_marks(&self.lab.root().join(crate::rundir::APPENDED_DIR));
        for (id, _) in &marks {
            if !work.contains(id) && self.lab.run_dir(id).is_dir() {
                work.push(id.clone());
            }
        }
        if work.is_empty() && !afresh {
            for (_, mark) in &marks {
                let _ = fs::remove_file(mark);
            }
            return Ok(report);
        }
        work.sort();
        let now = self.lab.now();
        let mut jobs = Jobs::new(&runs_dir, &work, self.jobs_seen.take());
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if afresh {
            tx.execute_batch(
                "DELETE FROM runs; DELETE FROM files; DELETE FROM metrics; DELETE FROM series; DELETE FROM events;",
            )?;
        }
        for id in work {
            let dir = RunDir::at(runs_dir.join(&id));
            let heard = crate::rundir::heard(&self.lab, &id);
            match ingest_run(&tx, &dir, &id, now, heard, &mut jobs, &mut report) {
                Ok(()) => report.runs_updated += 1,
                Err(e @ (Error::BadFile { .. } | Error::Io { .. })) => {
                    report.problems.push(format!("run {id} skipped: {e}"))
                }
                Err(e) => return Err(e),
            }
        }
        tx.commit()?;
        self.jobs_seen = jobs.fresh.take();
        report.problems.extend(jobs.problem);
        // Only the markers seen before reading: one left meanwhile stays for the next sync.
        for (_, mark) in &marks {
            let _ = fs::remove_file(mark);
        }
        Ok(report)
    }

    /// The run folders to read: new ones, unfinished ones with news, and
    /// (with `finished_too`) finished ones whose files were cut below what
    /// was read; all of them when `afresh`.
    fn folders_with_news(&self, afresh: bool, finished_too: bool) -> Result<Vec<String>> {
        let known: HashMap<String, bool> = if afresh {
            HashMap::new()
        } else {
            let mut stmt = self.conn.prepare_cached("SELECT id, complete FROM runs")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, bool>(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        // What was read of each stream, to notice one cut below it; read
        // in one pass, as the check runs over every finished run.
        let mut read: HashMap<String, Vec<(String, u64)>> = HashMap::new();
        if !afresh && finished_too {
            let mut stmt = self.conn.prepare_cached("SELECT run_id, name, offset FROM files")?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)))?;
            for row in rows {
                let (id, name, offset) = row?;
                read.entry(id).or_default().push((name, offset as u64));
            }
        }
        let runs_dir = self.lab.runs_dir();
        let entries: Vec<fs::DirEntry> = match fs::read_dir(&runs_dir) {
            Ok(e) => e.flatten().collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !afresh => return Ok(Vec::new()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(&runs_dir, e)),
        };
        let runs_fd = RunsDir::open(&runs_dir);
        let mut work = Vec::new();
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            match known.get(&name) {
                Some(true) if !finished_too || !runs_fd.cut_below_read(&name, read.get(&name)) => {}
                Some(false) if !self.has_news(&name)? => {}
                _ => work.push(name),
            }
        }
        Ok(work)
    }

    /// The unfinished runs whose files grew or whose owner is gone.
    fn unfinished_with_news(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached("SELECT id FROM runs WHERE complete = 0")?;
        let ids: Vec<String> = stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?;
        let mut work = Vec::new();
        for id in ids {
            if self.has_news(&id)? {
                work.push(id);
            }
        }
        Ok(work)
    }

    /// Whether an unfinished run has new bytes, or has lost its owner (a
    /// run accepted from a remote writer: has not been heard from lately).
    fn has_news(&self, id: &str) -> Result<bool> {
        let dir = RunDir::at(self.lab.run_dir(id));
        let offsets = offsets(&self.conn, id)?;
        for name in dir.streams()? {
            let size = fs::metadata(dir.file(&name)).map_or(0, |m| m.len());
            if size != offsets.get(&name).copied().unwrap_or(0) {
                return Ok(true);
            }
        }
        Ok(dir.owner_gone() && !crate::rundir::heard(&self.lab, id).is_some_and(|h| h.live(self.lab.now())))
    }
}

fn offsets(conn: &rusqlite::Connection, id: &str) -> Result<HashMap<String, u64>> {
    let mut stmt = conn.prepare_cached("SELECT name, offset FROM files WHERE run_id = ?1")?;
    let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The markers in `dir` (`<run id>.<writer>.<n>`): which ended runs got a
/// new stream. A missing folder, the usual case, costs one failed open.
fn appended_marks(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let id = name.split('.').next().filter(|id| !id.is_empty())?.to_string();
            Some((id, e.path()))
        })
        .collect()
}

/// The folder's modification time, once it is old enough (2 s) that a
/// folder made in it since would have changed it even with a coarse clock.
fn settled_mtime(dir: &std::path::Path) -> Option<std::time::SystemTime> {
    let mtime = fs::metadata(dir).and_then(|m| m.modified()).ok()?;
    let age = std::time::SystemTime::now().duration_since(mtime).ok()?;
    (age > std::time::Duration::from_secs(2)).then_some(mtime)
}

/// Whether a stream of the run is shorter than what the index has read of
/// it (truncated, or replaced by another file): then the run is read again.
fn cut_below_read(dir: &std::path::Path, read: Option<&Vec<(String, u64)>>) -> bool {
    read.into_iter().flatten().any(|(name, offset)| fs::metadata(dir.join(name)).map_or(0, |m| m.len()) < *offset)
}

/// The `runs` folder, open, so that checking every finished run's streams
/// costs one short lookup each (this runs before every answer).
struct RunsDir(Option<fs::File>);

impl RunsDir {
    fn open(path: &std::path::Path) -> RunsDir {
        RunsDir(fs::File::open(path).ok())
    }

    fn cut_below_read(&self, id: &str, read: Option<&Vec<(String, u64)>>) -> bool {
        let Some(dir) = &self.0 else { return false };
        read.into_iter().flatten().any(|(name, offset)| {
            let Ok(rel) = std::ffi::CString::new(format!("{id}/{name}")) else { return false };
            crate::sys::fs::size_at(dir, &rel).unwrap_or(0) < *offset
        })
    }
}

/// Drops what the index holds of a run, to read it again from its folder.
fn forget(tx: &Transaction, id: &str) -> Result<()> {
    for table in ["runs", "files", "metrics", "series", "events"] {
        let column = if table == "runs" { "id" } else { "run_id" };
        tx.execute(&format!("DELETE FROM {table} WHERE {column} = ?1"), [id])?;
    }
    Ok(())
}

/// `heard`: for a run accepted from a remote writer, when it was last heard
/// from. Nobody here holds such a run's lock: it is live while its writer
/// keeps being heard from, lost after the silence its mark allows, and read
/// again whole when the writer is heard from after that.
fn ingest_run(
    tx: &Transaction,
    dir: &RunDir,
    id: &str,
    now: f64,
    heard: Option<crate::rundir::Heard>,
    jobs: &mut Jobs,
    report: &mut SyncReport,
) -> Result<()> {
    if cut_below_read(dir.path(), Some(&offsets(tx, id)?.into_iter().collect())) {
        report
            .problems
            .push(format!("run {id}: a file of the run is shorter than what was read of it; read the run again"));
        forget(tx, id)?;
    }
    let heard_lately = heard.is_some_and(|h| h.live(now));
    if heard_lately && dir.lost_at().is_none() && load_state(tx, id)?.is_some_and(|st| st.status == RunStatus::Lost) {
        forget(tx, id)?;
    }
    let mut st = match load_state(tx, id)? {
        Some(st) => st,
        None => {
            let spec = dir.read_spec()?;
            if spec.id != id {
                return Err(Error::BadFile {
                    path: dir.file(crate::rundir::SPEC_FILE),
                    why: format!("holds id {} but the folder is {id}", spec.id),
                });
            }
            RunState::from_spec(spec)
        }
    };
    if st.scheduler.is_some() && st.about.slurm.is_none() {
        st.about.slurm = dir.slurm_job().map(|job| SlurmJob {
            job_id: job.job_id,
            partition: job.partition,
            gpus: job.gpus,
            time_limit_min: job.time_limit_min,
            ..Default::default()
        });
    }
    let mut offsets = offsets(tx, id)?;
    let mut batch = Batch::default();
    read_streams(tx, dir, &mut offsets, &mut st, &mut batch, report)?;
    if !st.ended && (dir.lost_at().is_some() || (dir.owner_gone() && !heard_lately)) {
        // The owner may have written its end just before it let go.
        read_streams(tx, dir, &mut offsets, &mut st, &mut batch, report)?;
        let fate = if st.ended || st.scheduler.is_none() { None } else { Some(jobs.fate(dir, &mut st)) };
        if matches!(fate, Some(JobFate::Ended(_))) {
            // The job is over, its supervisor with it: an end it wrote is there now.
            read_streams(tx, dir, &mut offsets, &mut st, &mut batch, report)?;
        }
        match fate {
            _ if st.ended => {}
            Some(JobFate::Live | JobFate::Unknown) => {}
            Some(JobFate::Ended(end)) => end_of_job(dir, &mut st, &mut batch, now, end)?,
            None => {
                // Nothing of a run goes on unsupervised: the command died with
                // its supervisor; whatever else of its group lives ends here.
                // A remote run's processes are its own lab's business, and its
                // folder holds only its writer's bytes: it is lost here alone,
                // as of the end of the silence allowed.
                let remote = heard.filter(|_| dir.lost_at().is_none());
                let ended = if dir.lost_at().is_none() && remote.is_none() {
                    st.group().map_or(0, |g| g.end(std::time::Duration::ZERO).found)
                } else {
                    0
                };
                let lost = match remote {
                    Some(h) => Lost { time: h.at + h.silence, ended_processes: 0, job_end: None },
                    None => dir.mark_lost(now, ended)?,
                };
                st.status = RunStatus::Lost;
                st.ended = true;
                st.ended_at = Some(lost.time);
                let mut reason = if let Some(h) = remote {
                    format!(
                        "its remote writer has not been heard from for {} ([remote] silence)",
                        crate::clock::human_duration(h.silence)
                    )
                } else if st.origin == "client" {
                    "the client process ended without finishing the run".to_string()
                } else if st.origin == "import" {
                    "it was still running at its source when imported; import it again once it has ended".to_string()
                } else {
                    "the supervisor died before the run ended".to_string()
                };
                if lost.ended_processes > 0 {
                    let n = lost.ended_processes;
                    reason.push_str(&format!(
                        "; ended {n} process{} of the run left running",
                        if n == 1 { "" } else { "es" }
                    ));
                }
                batch.events.push(lifecycle(lost.time, format!("lost: {reason}")));
                st.reason = Some(reason);
            }
        }
    } else if st.ended {
        // Other writers finished before the owner wrote its end: one more pass
        // catches what they wrote while the first pass was reading.
        read_streams(tx, dir, &mut offsets, &mut st, &mut batch, report)?;
    }
    // A lost run's command may outlive its supervisor and keep writing
    // (a client flushing at exit): keep reading until it is gone too.
    let complete = st.ended && !(st.status == RunStatus::Lost && heard.is_none() && st.command_alive());
    if complete {
        for name in dir.streams()? {
            let size = fs::metadata(dir.file(&name)).map_or(0, |m| m.len());
            let off = offsets.get(&name).copied().unwrap_or(0);
            if size > off {
                batch.events.push(Event::warning(
                    st.ended_at.unwrap_or(st.last_time),
                    format!("skipped a torn last line in {name} ({} bytes at byte {off})", size - off),
                    None,
                ));
                offsets.insert(name, size);
            }
        }
    }
    write_points(tx, id, &mut batch, report)?;
    write_events(tx, id, &batch.events)?;
    for (name, off) in &offsets {
        tx.prepare_cached("INSERT OR REPLACE INTO files (run_id, name, offset) VALUES (?1, ?2, ?3)")?
            .execute(params![id, name, *off as i64])?;
    }
    save_state(tx, &st, complete)
}

/// Reads every stream of the run from its offset to its last complete line.
fn read_streams(
    tx: &Transaction,
    dir: &RunDir,
    offsets: &mut HashMap<String, u64>,
    st: &mut RunState,
    batch: &mut Batch,
    report: &mut SyncReport,
) -> Result<()> {
    let mut buf = Vec::new();
    for name in dir.streams()? {
        let path = dir.file(&name);
        let mut pos = offsets.get(&name).copied().unwrap_or(0);
        let size = fs::metadata(&path).map_err(|e| Error::io(&path, e))?.len();
        if size <= pos {
            continue;
        }
        let mut file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        file.seek(SeekFrom::Start(pos)).map_err(|e| Error::io(&path, e))?;
        while pos < size {
            let want = (size - pos).min(PIECE);
            buf.resize(want as usize, 0);
            file.read_exact(&mut buf).map_err(|e| Error::io(&path, e))?;
            let Some(last_nl) = buf.iter().rposition(|b| *b == b'\n') else {
                if want == PIECE {
                    batch.events.push(Event::warning(
                        st.last_time,
                        format!("skipped a line over {PIECE} bytes in {name} at byte {pos}"),
                        None,
                    ));
                    pos += want;
                    continue;
                }
                break; // an unfinished last line: left for the next sync
            };
            let mut line_start = 0;
            for line in buf[..last_nl].split(|b| *b == b'\n') {
                apply_line(line, &name, pos + line_start as u64, st, batch);
                line_start += line.len() + 1;
            }
            pos += last_nl as u64 + 1;
            if want as u64 > last_nl as u64 + 1 {
                // The rest of this piece is an unfinished line; re-read it next time round.
                file.seek(SeekFrom::Start(pos)).map_err(|e| Error::io(&path, e))?;
            }
            if batch.n_points >= FLUSH_POINTS {
                write_points(tx, &st.id, batch, report)?;
            }
        }
        offsets.insert(name, pos);
    }
    Ok(())
}

fn apply_line(line: &[u8], file: &str, at: u64, st: &mut RunState, batch: &mut Batch) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let parsed = std::str::from_utf8(line).map_err(|e| e.to_string()).and_then(Record::parse);
    let record = match parsed {
        Ok(r) => r,
        Err(why) => {
            let shown = String::from_utf8_lossy(&line[..line.len().min(SHOWN_LINE)]).into_owned();
            batch.events.push(Event::warning(
                st.last_time,
                format!("skipped a malformed line in {file} at byte {at}: {why}"),
                Some(Value::from(shown)),
            ));
            return;
        }
    };
    if let Some(t) = record.time().filter(|t| t.is_finite()) {
        st.last_time = st.last_time.max(t);
    }
    match record {
        Record::Log { step, time, metrics } => {
            for (key, value) in metrics.values {
                let p = Point { step, time, value };
                match batch.points.get_mut(&key) {
                    Some(v) => v.push(p),
                    None => {
                        batch.points.insert(key, vec![p]);
                    }
                }
                batch.n_points += 1;
            }
            if !metrics.dropped.is_empty() {
                batch.events.push(Event::warning(
                    time,
                    format!("dropped non-numeric value(s) of {} at step {step}", metrics.dropped.join(", ")),
                    None,
                ));
            }
        }
        Record::Batch(b) => {
            for column in &b.columns {
                let points = b.points(column);
                match batch.points.get_mut(&column.key) {
                    Some(v) => v.extend(points),
                    None => {
                        batch.points.insert(column.key.clone(), points.collect());
                    }
                }
                batch.n_points += column.values.len();
            }
            if !b.dropped.is_empty() {
                batch.events.push(Event::warning(
                    b.last_time(),
                    format!(
                        "dropped non-numeric value(s) of {} in a batch from step {}",
                        b.dropped.join(", "),
                        b.steps[0]
                    ),
                    None,
                ));
            }
        }
        Record::Config { data, .. } => st.config.extend(data),
        Record::Summary { data, .. } => st.summary.extend(data),
        Record::Meta { name, tags, project, group, job_type, notes, .. } => {
            if st.name.is_none() {
                st.name = name.filter(|n| !n.is_empty());
            }
            for t in tags {
                if !st.tags.contains(&t) {
                    st.tags.push(t);
                }
            }
            let about = &mut st.about;
            for (value, slot) in [
                (project, &mut about.project),
                (group, &mut about.group),
                (job_type, &mut about.job_type),
                (notes, &mut about.notes),
            ] {
                // Given, it replaces the run's value; given empty, it clears it.
                if let Some(v) = value {
                    *slot = Some(v).filter(|v| !v.is_empty());
                }
            }
        }
        Record::Define { def, .. } => {
            let defs = &mut st.about.metric_defs;
            defs.retain(|d| d.metric != def.metric);
            defs.push(def);
        }
        Record::Event(e) => batch.events.push(e),
        Record::Queued { time, .. } => {
            if st.started_at.is_none() && !st.ended {
                st.status = RunStatus::Queued;
                batch.events.push(lifecycle(time, "queued".into()));
            }
        }
        Record::Start { time, pid, child_pid, pgid, leader, job } => {
            if let (Some(job), Some(slurm)) = (job, st.about.slurm.as_mut()) {
                slurm.node = job.node;
                slurm.visible_devices = job.gpus;
                slurm.partition = job.partition.or(slurm.partition.take());
                slurm.state = Some("RUNNING".into());
                slurm.reason = None;
            }
            st.started_at = Some(time);
            st.pgid = pgid;
            st.leader = leader;
            if !st.ended {
                st.status = RunStatus::Running;
            }
            let mut data = Map::new();
            data.insert("pid".into(), pid.into());
            data.insert("child_pid".into(), child_pid.into());
            batch.events.push(Event {
                time,
                kind: "lifecycle".into(),
                message: "started".into(),
                data: Some(Value::Object(data)),
            });
        }
        Record::End(end) => {
            // The first end stands; but an imported run read as lost while it
            // ran at its source ends as the source says, once imported again.
            if st.ended && !(st.origin == "import" && st.status == RunStatus::Lost) {
                return;
            }
            let mut msg = format!("ended: {} ({})", end.status, how_ended(end.exit_code, end.signal));
            if let Some(r) = &end.reason {
                msg.push_str(&format!(": {r}"));
            }
            batch.events.push(lifecycle(end.time, msg));
            if let Some(job) = st.about.slurm.as_mut() {
                // Slurm's word on the job is no longer needed: the run's own end says it.
                job.state = None;
                job.reason = None;
            }
            st.status = end.status;
            st.ended = true;
            st.ended_at = Some(end.time);
            st.exit_code = end.exit_code;
            st.signal = end.signal;
            st.reason = end.reason;
        }
        Record::Unknown => {}
    }
}

/// Where a run's job stands, when its supervisor holds no lock here.
enum JobFate {
    /// Waiting or running: the run lives (its supervisor may be on another node).
    Live,
    /// Ended without the supervisor's end record: how Slurm says it ended
    /// (None: Slurm no longer knows the job).
    Ended(Option<JobState>),
    /// Slurm could not be asked: nothing is concluded.
    Unknown,
}

/// The jobs of the runs a sync pass reads, asked of Slurm once, on the
/// first run that needs it, for all of them.
struct Jobs {
    /// Job ids of the pass's runs submitted to Slurm, and their completion logs.
    wanted: Vec<String>,
    logs: Vec<String>,
    states: Option<HashMap<String, JobState>>,
    problem: Option<String>,
    /// An earlier answer young enough to use, or this pass's, to keep.
    fresh: Option<JobsSeen>,
}

impl Jobs {
    fn new(runs_dir: &std::path::Path, work: &[String], seen: Option<JobsSeen>) -> Jobs {
        let fresh = seen.filter(|s| s.at.elapsed() < SLURM_ASK_EVERY);
        let mut jobs = Jobs { wanted: Vec::new(), logs: Vec::new(), states: None, problem: None, fresh };
        for id in work {
            if let Some(job) = RunDir::at(runs_dir.join(id)).slurm_job() {
                jobs.wanted.push(job.job_id);
                if let Some(log) = job.jobcomp_log.filter(|l| !jobs.logs.contains(l)) {
                    jobs.logs.push(log);
                }
            }
        }
        jobs
    }

    /// The state of `job_id`, asking Slurm (once per pass) if not yet asked.
    fn state(&mut self, job_id: &str) -> std::result::Result<Option<JobState>, ()> {
        if self.states.is_none() {
            // A young answer that knew every job asked for now is used again:
            // only live jobs are in it (ended ones are asked once, then recorded).
            if let Some(seen) = self.fresh.take() {
                if self.wanted.iter().all(|id| seen.states.get(id).is_some_and(JobState::is_live)) {
                    self.states = Some(seen.states.clone());
                    self.fresh = Some(seen);
                    return Ok(self.states.as_ref().and_then(|s| s.get(job_id)).cloned());
                }
            }
            match slurm::states(&self.wanted) {
                Ok(mut states) => {
                    let forgotten: Vec<String> =
                        self.wanted.iter().filter(|id| !states.contains_key(*id)).cloned().collect();
                    for log in &self.logs {
                        if forgotten.is_empty() {
                            break;
                        }
                        states.extend(slurm::ended_in_log(std::path::Path::new(log), &forgotten));
                    }
                    self.fresh = Some(JobsSeen { at: std::time::Instant::now(), states: states.clone() });
                    self.states = Some(states);
                }
                Err(e) => {
                    self.problem = Some(format!("the state of Slurm jobs is unknown: {e}"));
                    self.states = Some(HashMap::new());
                }
            }
        }
        if self.problem.is_some() {
            return Err(());
        }
        Ok(self.states.as_ref().and_then(|s| s.get(job_id)).cloned())
    }

    /// What became of the job of a run whose lock nobody holds here; a job
    /// waiting or running updates the run's view of it.
    fn fate(&mut self, dir: &RunDir, st: &mut RunState) -> JobFate {
        if let Some(Lost { job_end, .. }) = dir.lost() {
            return JobFate::Ended(job_end);
        }
        let Some(job) = dir.slurm_job() else {
            // The launcher let go of the run without submitting it.
            return JobFate::Ended(None);
        };
        let view = st.about.slurm.get_or_insert_with(|| SlurmJob {
            job_id: job.job_id.clone(),
            partition: job.partition.clone(),
            gpus: job.gpus,
            time_limit_min: job.time_limit_min,
            ..Default::default()
        });
        let state = match self.state(&job.job_id) {
            Ok(Some(state)) => state,
            Ok(None) => return JobFate::Ended(None),
            Err(()) => return JobFate::Unknown,
        };
        if !state.is_live() {
            view.state = Some(state.state.clone());
            return JobFate::Ended(Some(state));
        }
        view.state = Some(state.state.clone());
        view.reason = state.reason.clone().filter(|_| state.is_pending());
        view.node = state.node.clone().or(view.node.take());
        if state.partition.is_some() {
            view.partition = state.partition.clone();
        }
        if st.started_at.is_none() {
            st.status = if state.is_pending() { RunStatus::Queued } else { RunStatus::Running };
        }
        JobFate::Live
    }
}

/// Ends a run whose job ended without its supervisor's end record: stopped
/// when `labmate stop` asked for it (a queued job cancelled), else lost with
/// Slurm's state and exit code, marked so that a rebuilt index says the same
/// once Slurm has forgotten the job.
fn end_of_job(dir: &RunDir, st: &mut RunState, batch: &mut Batch, now: f64, end: Option<JobState>) -> Result<()> {
    let lost = dir.mark_lost_with(Lost { time: now, ended_processes: 0, job_end: end })?;
    let job_id = st.about.slurm.as_ref().map(|j| j.job_id.clone()).or_else(|| dir.slurm_job().map(|j| j.job_id));
    let job = job_id.as_deref().map_or("its job".to_string(), |id| format!("Slurm job {id}"));
    st.ended = true;
    st.ended_at = Some(lost.time);
    let (status, reason) = match (crate::rundir::stop_reason(dir), &lost.job_end) {
        (Some(why), _) => (RunStatus::Stopped, why),
        (None, Some(end)) => {
            st.exit_code = end.exit_code;
            st.signal = end.signal;
            if let Some(view) = st.about.slurm.as_mut() {
                view.state = Some(end.state.clone());
                view.reason = None;
                view.node = end.node.clone().or(view.node.take());
            }
            let mut how = format!("{job} ended {}", end.state);
            match (end.exit_code, end.signal) {
                (Some(c), Some(s)) => how.push_str(&format!(" (exit code {c}, signal {s})")),
                (Some(c), None) => how.push_str(&format!(" (exit code {c})")),
                _ => {}
            }
            how.push_str(" before the supervisor recorded an end");
            (RunStatus::Lost, how)
        }
        (None, None) if job_id.is_none() => {
            (RunStatus::Lost, "the launcher ended before the job was submitted to Slurm".to_string())
        }
        (None, None) => (RunStatus::Lost, format!("{job} is unknown to Slurm and the supervisor recorded no end")),
    };
    batch.events.push(lifecycle(lost.time, format!("{}: {reason}", status.as_str())));
    st.status = status;
    st.reason = Some(reason);
    Ok(())
}

fn lifecycle(time: f64, message: String) -> Event {
    Event { time, kind: "lifecycle".into(), message, data: None }
}

fn write_points(tx: &Transaction, id: &str, batch: &mut Batch, report: &mut SyncReport) -> Result<()> {
    for (key, mut points) in batch.points.drain() {
        report.points += points.len() as u64;
        update_summary(tx, id, &key, &points)?;
        append_series(tx, id, &key, &mut points)?;
    }
    batch.n_points = 0;
    Ok(())
}

fn update_summary(tx: &Transaction, id: &str, key: &str, points: &[Point]) -> Result<()> {
    let old = tx
        .prepare_cached(
            "SELECT count, nan_count, last, last_step, min, max, finite, sum FROM metrics WHERE run_id = ?1 AND key = ?2",
        )?
        .query_row(params![id, key], |r| {
            Ok(Summary {
                count: r.get::<_, i64>(0)? as u64,
                nans: r.get::<_, i64>(1)? as u64,
                last: nan_if_null(r.get(2)?),
                last_step: r.get(3)?,
                min: nan_if_null(r.get(4)?),
                max: nan_if_null(r.get(5)?),
                finite: r.get::<_, i64>(6)? as u64,
                sum: r.get(7)?,
            })
        })
        .optional()?;
    let mut s = old.unwrap_or(Summary {
        count: 0,
        nans: 0,
        last: f64::NAN,
        last_step: i64::MIN,
        min: f64::NAN,
        max: f64::NAN,
        finite: 0,
        sum: 0.0,
    });
    for p in points {
        s.count += 1;
        if p.step >= s.last_step {
            s.last_step = p.step;
            s.last = p.value;
        }
        if p.value.is_nan() {
            s.nans += 1;
        } else {
            // f64::min/max ignore a NaN side, which is how the empty start is kept.
            s.min = s.min.min(p.value);
            s.max = s.max.max(p.value);
        }
        if p.value.is_finite() {
            s.finite += 1;
            s.sum += p.value;
        }
    }
    tx.prepare_cached(
        "INSERT OR REPLACE INTO metrics (run_id, key, count, nan_count, last, last_step, min, max, finite, sum)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        id,
        key,
        s.count as i64,
        s.nans as i64,
        null_if_nan(s.last),
        s.last_step,
        null_if_nan(s.min),
        null_if_nan(s.max),
        s.finite as i64,
        s.sum
    ])?;
    Ok(())
}

/// A metric's running summary, as the index keeps it.
struct Summary {
    count: u64,
    nans: u64,
    last: f64,
    last_step: i64,
    min: f64,
    max: f64,
    /// Values that are finite, and their sum: the mean is over these.
    finite: u64,
    sum: f64,
}

/// SQLite stores NaN as NULL; the columns that may hold NaN read NULL back as NaN.
pub(super) fn nan_if_null(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

fn null_if_nan(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn append_series(tx: &Transaction, id: &str, key: &str, points: &mut [Point]) -> Result<()> {
    let last = tx
        .prepare_cached("SELECT seq, n, data FROM series WHERE run_id = ?1 AND key = ?2 ORDER BY seq DESC LIMIT 1")?
        .query_row(params![id, key], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as usize, r.get::<_, Vec<u8>>(2)?))
        })
        .optional()?;
    let mut rest: &[Point] = points;
    let mut next_seq = 0;
    let mut data = Vec::new();
    if let Some((seq, n, old)) = last {
        next_seq = seq + 1;
        if n < chunk::MAX_POINTS {
            // A chunk is encoded whole: the last one is read back and
            // written again with the new points at its end.
            let take = (chunk::MAX_POINTS - n).min(rest.len());
            let mut filled = Vec::with_capacity(n + take);
            chunk::decode_into(&mut filled, &old).map_err(|e| damaged_chunk(id, key, e))?;
            filled.extend_from_slice(&rest[..take]);
            chunk::encode(&mut data, &filled);
            tx.prepare_cached("UPDATE series SET n = ?1, data = ?2 WHERE run_id = ?3 AND key = ?4 AND seq = ?5")?
                .execute(params![filled.len() as i64, data, id, key, seq])?;
            rest = &rest[take..];
        }
    }
    let mut insert = tx.prepare_cached("INSERT INTO series (run_id, key, seq, n, data) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for chunk in rest.chunks(chunk::MAX_POINTS) {
        data.clear();
        chunk::encode(&mut data, chunk);
        insert.execute(params![id, key, next_seq, chunk.len() as i64, data])?;
        next_seq += 1;
    }
    Ok(())
}

fn write_events(tx: &Transaction, id: &str, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let first: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM events WHERE run_id = ?1")?
        .query_row([id], |r| r.get(0))?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (run_id, seq, time, kind, message, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (seq, e) in (first..).zip(events) {
        let data = e.data.as_ref().map(|d| d.to_string());
        insert.execute(params![id, seq, null_if_nan(e.time).unwrap_or(0.0), e.kind, e.message, data])?;
    }
    Ok(())
}

impl RunState {
    /// The run's process group, when it ran on this host (elsewhere its id
    /// means nothing).
    fn group(&self) -> Option<Group> {
        // A job's processes are Slurm's, on whichever node it ran.
        if self.scheduler.is_some() {
            return None;
        }
        let pgid = self.pgid.filter(|p| *p > 1 && self.host == crate::sys::host::hostname())?;
        Some(Group::recorded(
            &self.id,
            pgid,
            self.leader.as_ref().map(|l| l.start),
            self.leader.as_ref().and_then(|l| l.boot_id.clone()),
        ))
    }

    /// Whether a process of the run still lives (known only on its own host).
    fn command_alive(&self) -> bool {
        self.group().is_some_and(|g| !g.members().is_empty())
    }

    fn from_spec(spec: RunSpec) -> RunState {
        RunState {
            spec: serde_json::to_string(&spec).expect("specs serialise"),
            id: spec.id,
            name: spec.name,
            // A job waits for its turn until its supervisor says it started.
            status: if spec.scheduler.is_some() { RunStatus::Queued } else { RunStatus::Running },
            created_at: spec.created_at,
            started_at: None,
            ended_at: None,
            exit_code: None,
            signal: None,
            reason: None,
            tags: spec.tags,
            about: About::default(),
            config: spec.config,
            summary: Map::new(),
            last_time: spec.created_at,
            host: spec.host,
            scheduler: spec.scheduler,
            pgid: None,
            leader: None,
            origin: spec.origin,
            ended: false,
        }
    }
}

fn load_state(tx: &Transaction, id: &str) -> Result<Option<RunState>> {
    let sql = "SELECT name, status, created_at, started_at, ended_at, exit_code, signal, reason, tags, config, summary, spec, pgid,
                      leader_start, boot_id, about
               FROM runs WHERE id = ?1";
    let state = tx
        .prepare_cached(sql)?
        .query_row([id], |r| {
            let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
            let spec: String = r.get(11)?;
            let (origin, host, scheduler) =
                serde_json::from_str::<RunSpec>(&spec).map(|s| (s.origin, s.host, s.scheduler)).unwrap_or_default();
            let status = RunStatus::from(r.get::<_, String>(1)?);
            let created_at: f64 = r.get(2)?;
            let started_at: Option<f64> = r.get(3)?;
            let ended_at: Option<f64> = r.get(4)?;
            Ok(RunState {
                id: id.to_string(),
                name: r.get(0)?,
                ended: !status.is_live(),
                status,
                created_at,
                started_at,
                ended_at,
                exit_code: r.get(5)?,
                signal: r.get(6)?,
                reason: r.get(7)?,
                tags: serde_json::from_str(&json(8)?).unwrap_or_default(),
                about: serde_json::from_str(&json(15)?).unwrap_or_default(),
                config: serde_json::from_str(&json(9)?).unwrap_or_default(),
                summary: serde_json::from_str(&json(10)?).unwrap_or_default(),
                last_time: ended_at.or(started_at).unwrap_or(created_at),
                spec,
                origin,
                host,
                scheduler,
                pgid: r.get(12)?,
                leader: r
                    .get::<_, Option<i64>>(13)?
                    .map(|start| Leader { start: start as u64, boot_id: r.get(14).ok().flatten() }),
            })
        })
        .optional()?;
    Ok(state)
}

fn save_state(tx: &Transaction, st: &RunState, complete: bool) -> Result<()> {
    tx.prepare_cached(
        "INSERT OR REPLACE INTO runs (id, name, status, created_at, started_at, ended_at, exit_code, signal, reason, tags, config, summary, spec, complete, pgid, leader_start, boot_id, about)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)",
    )?
    .execute(params![
        st.id,
        st.name,
        st.status.as_str(),
        st.created_at,
        st.started_at,
        st.ended_at,
        st.exit_code,
        st.signal,
        st.reason,
        serde_json::to_string(&st.tags).expect("json"),
        serde_json::to_string(&st.config).expect("json"),
        serde_json::to_string(&st.summary).expect("json"),
        st.spec,
        complete,
        st.pgid,
        st.leader.as_ref().map(|l| l.start as i64),
        st.leader.as_ref().and_then(|l| l.boot_id.clone()),
        serde_json::to_string(&st.about).expect("json"),
    ])?;
    Ok(())
}
