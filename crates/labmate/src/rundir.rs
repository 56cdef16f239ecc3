//! One run's folder: atomic creation, append-only writers, the liveness lock
//! and the `lost` marker; the marks a lab leaves beside its run folders:
//! runs appended to after their end, and when a remote writer was last heard
//! from (docs/FORMAT.md).

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::lab::Lab;
use crate::record::Record;
use crate::spec::RunSpec;
use crate::sys::flock::{self, Mode};

pub const SPEC_FILE: &str = "run.json";
pub const PATCH_FILE: &str = "patch.diff";
pub const LOCK_FILE: &str = "lock";
pub const LOST_FILE: &str = "lost.json";
pub const OUTPUT_LOG: &str = "output.log";
pub const STDERR_LOG: &str = "stderr.log";
pub const SUPERVISOR_STREAM: &str = "supervisor.jsonl";
/// Where `labmate stop` leaves its reason before it signals the supervisor.
pub const STOP_FILE: &str = "stop.json";
/// The Slurm job a run was submitted as ([`crate::slurm::Job`]).
pub const SLURM_FILE: &str = "slurm.json";
/// The batch script of a run submitted to Slurm.
pub const SLURM_SCRIPT: &str = "slurm.sh";

/// Where a writer that appends to an ended run (a later import) leaves a
/// marker `<run id>.<pid>.<n>`, so that the index reads that run again: it
/// does not look at ended runs by itself.
pub const APPENDED_DIR: &str = "appended";

/// Tells the index that the ended run `id` got a new stream.
pub fn mark_appended(lab: &Lab, id: &str) -> Result<()> {
    let marks = lab.root().join(APPENDED_DIR);
    fs::create_dir_all(&marks).map_err(|e| Error::io(&marks, e))?;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mark = marks.join(format!("{id}.{}.{n}", std::process::id()));
    fs::write(&mark, b"").map_err(|e| Error::io(&mark, e))
}

/// Where a lab that accepts runs over HTTP keeps, per run it accepted, when
/// it last heard from the run's writer (`<run id>.json`), outside the run
/// folder, which stays the writer's bytes alone.
pub const REMOTE_DIR: &str = "remote";

/// When a run's remote writer was last heard from (the accepting lab's
/// clock), and how long a silence it takes for the run to count as lost.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Heard {
    #[serde(rename = "heard_at")]
    pub at: f64,
    /// Seconds.
    pub silence: f64,
}

impl Heard {
    /// Whether the writer was heard from within the silence allowed.
    pub fn live(&self, now: f64) -> bool {
        now - self.at <= self.silence
    }
}

/// What the accepting lab heard last from the writer of run `id`; `None` for
/// a run that is not one it accepted.
pub fn heard(lab: &Lab, id: &str) -> Option<Heard> {
    let bytes = fs::read(lab.root().join(REMOTE_DIR).join(format!("{id}.json"))).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Records that the writer of run `id` was heard from, replacing the mark
/// whole (a reader never sees half of one).
pub fn mark_heard(lab: &Lab, id: &str, heard: Heard) -> Result<()> {
    let dir = lab.root().join(REMOTE_DIR);
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let tmp = dir.join(format!(".{id}.json.{}", std::process::id()));
    let body = serde_json::to_vec(&heard).expect("marks serialise");
    fs::write(&tmp, body).map_err(|e| Error::write(&tmp, e))?;
    let path = dir.join(format!("{id}.json"));
    fs::rename(&tmp, &path).map_err(|e| Error::write(&path, e))
}

/// Held by a run's live owner; dropping it (or dying) releases the run.
#[derive(Debug)]
pub struct OwnerLock(pub(crate) File);

#[derive(Debug, Clone)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    pub fn at(path: PathBuf) -> RunDir {
        RunDir { path }
    }

    /// Creates the folder of `spec` with its lock held, complete before it
    /// appears under its id. When the id is taken (runs made in the same
    /// second can draw the same 20 random bits), `spec` gets a fresh id; a
    /// seeded id source draws the next one, so under a fixed clock a new run
    /// walks past every id taken.
    pub fn create(lab: &Lab, spec: &mut RunSpec, patch: &[u8]) -> Result<(RunDir, OwnerLock)> {
        let mut tries = 0;
        loop {
            match RunDir::create_as(lab, spec, patch) {
                Err(Error::Io { source, .. }) if id_taken(&source) && tries < 1024 => {
                    tries += 1;
                    spec.id = lab.new_id(crate::id::PREFIX, spec.created_at);
                }
                other => return other,
            }
        }
    }

    /// Creates the folder of `spec` whole: `fill` writes the rest of its
    /// files into it (records of a run that has already ended) before it
    /// appears under its id, so that no reader ever sees it half made. A
    /// taken id is replaced as by [`RunDir::create`].
    pub fn create_complete(lab: &Lab, spec: &mut RunSpec, fill: &dyn Fn(&Path) -> Result<()>) -> Result<RunDir> {
        let mut tries = 0;
        loop {
            match RunDir::create_filled(lab, spec, &[], fill) {
                Err(Error::Io { source, .. }) if id_taken(&source) && tries < 1024 => {
                    tries += 1;
                    spec.id = lab.new_id(crate::id::PREFIX, spec.created_at);
                }
                other => return other.map(|(dir, _lock)| dir),
            }
        }
    }

    fn create_as(lab: &Lab, spec: &RunSpec, patch: &[u8]) -> Result<(RunDir, OwnerLock)> {
        RunDir::create_filled(lab, spec, patch, &|_| Ok(()))
    }

    fn create_filled(
        lab: &Lab,
        spec: &RunSpec,
        patch: &[u8],
        fill: &dyn Fn(&Path) -> Result<()>,
    ) -> Result<(RunDir, OwnerLock)> {
        // Per process, so that two writers drawing the same id never share it.
        let tmp = lab.runs_dir().join(format!(".tmp-{}-{}", spec.id, std::process::id()));
        let path = lab.run_dir(&spec.id);
        fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let lock_path = tmp.join(LOCK_FILE);
        let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        match flock::try_lock(&lock, Mode::Exclusive) {
            Ok(true) => {}
            Ok(false) => return Err(Error::io(&lock_path, std::io::ErrorKind::WouldBlock.into())),
            Err(e) => return Err(Error::io(&lock_path, e)),
        }
        if !patch.is_empty() {
            write_file(&tmp.join(PATCH_FILE), patch)?;
        }
        let mut spec_json = serde_json::to_vec_pretty(spec).expect("specs serialise");
        spec_json.push(b'\n');
        write_file(&tmp.join(SPEC_FILE), &spec_json)?;
        if let Err(e) = fill(&tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if let Err(e) = fs::rename(&tmp, &path) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::io(&path, e));
        }
        Ok((RunDir { path }, OwnerLock(lock)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// One of the run's own files, for a face to serve: refused when the
    /// run folder or the file is a symbolic link, so what is served from a
    /// run folder never comes from outside the lab. A file not there yet is
    /// fine (it reads as empty).
    pub fn own_file(&self, name: &str) -> Result<PathBuf> {
        let refuse = |what: &Path| {
            Error::forbidden(
                "file",
                format!("{} is a symbolic link or not a plain file: it is not served", what.display()),
            )
        };
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| !m.is_dir()) {
            return Err(refuse(&self.path));
        }
        let path = self.path.join(name);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.is_file() => Err(refuse(&path)),
            _ => Ok(path),
        }
    }

    pub fn read_spec(&self) -> Result<RunSpec> {
        let p = self.file(SPEC_FILE);
        let bytes = fs::read(&p).map_err(|e| Error::io(&p, e))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::BadFile { path: p, why: format!("not a valid run.json: {e}") })
    }

    /// Opens a file of the run for appending (created when missing).
    pub fn append(&self, name: &str) -> Result<Appender> {
        let p = self.file(name);
        let file = OpenOptions::new().create(true).append(true).open(&p).map_err(|e| Error::io(&p, e))?;
        Ok(Appender { file, path: p })
    }

    /// The record streams of the run (every `*.jsonl`), sorted by name.
    pub fn streams(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let entries = fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".jsonl") {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Takes the run's owner lock, for a supervisor nobody handed it to (one
    /// a scheduler started); None while someone else holds it.
    pub fn take_lock(&self) -> Result<Option<OwnerLock>> {
        let p = self.file(LOCK_FILE);
        let f = OpenOptions::new().read(true).write(true).open(&p).map_err(|e| Error::io(&p, e))?;
        match flock::try_lock(&f, Mode::Exclusive) {
            Ok(true) => Ok(Some(OwnerLock(f))),
            Ok(false) => Ok(None),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// True when nobody holds the run's lock: its owner is gone.
    pub fn owner_gone(&self) -> bool {
        let Ok(f) = File::open(self.file(LOCK_FILE)) else {
            return true;
        };
        flock::try_lock(&f, Mode::Shared).unwrap_or(false)
    }

    /// Marks the run lost (once; later calls keep the first mark), with how
    /// many of its processes were ended then. Returns the mark as recorded.
    pub fn mark_lost(&self, now: f64, ended_processes: usize) -> Result<Lost> {
        self.mark_lost_with(Lost { time: now, ended_processes, job_end: None })
    }

    /// Marks the run lost as `lost` says (once; later calls keep the first
    /// mark): with the end Slurm gave its job, which Slurm forgets.
    pub fn mark_lost_with(&self, lost: Lost) -> Result<Lost> {
        let p = self.file(LOST_FILE);
        match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(mut f) => {
                let mut body = serde_json::json!({"time": lost.time, "ended_processes": lost.ended_processes});
                if let Some(end) = &lost.job_end {
                    body["job_end"] = serde_json::to_value(end).expect("job states serialise");
                }
                f.write_all(format!("{body}\n").as_bytes()).map_err(|e| Error::io(&p, e))?;
                Ok(lost)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(self.lost().unwrap_or(lost)),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// When the run was marked lost, if it was.
    pub fn lost_at(&self) -> Option<f64> {
        self.lost().map(|l| l.time)
    }

    /// The run's mark as lost, if it has one.
    pub fn lost(&self) -> Option<Lost> {
        let text = fs::read_to_string(self.file(LOST_FILE)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some(Lost {
            time: v.get("time")?.as_f64()?,
            ended_processes: v.get("ended_processes").and_then(|n| n.as_u64()).unwrap_or(0) as usize,
            job_end: v.get("job_end").and_then(|j| serde_json::from_value(j.clone()).ok()),
        })
    }

    /// The Slurm job the run was submitted as, once sbatch took it.
    pub fn slurm_job(&self) -> Option<crate::slurm::Job> {
        let bytes = fs::read(self.file(SLURM_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Records the run's Slurm job, whole or not at all.
    pub fn write_slurm_job(&self, job: &crate::slurm::Job) -> Result<()> {
        let tmp = self.file(".slurm.json.tmp");
        write_file(&tmp, format!("{}\n", serde_json::to_string_pretty(job).expect("jobs serialise")).as_bytes())?;
        let p = self.file(SLURM_FILE);
        fs::rename(&tmp, &p).map_err(|e| Error::io(&p, e))
    }
}

/// The reason in a run's stop request (`stop.json`), if there is one.
pub fn stop_reason(dir: &RunDir) -> Option<String> {
    let text = fs::read_to_string(dir.file(STOP_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.get("reason").and_then(|r| r.as_str()).map(String::from)
}

/// A run marked lost (`lost.json`).
#[derive(Debug, Clone, PartialEq)]
pub struct Lost {
    pub time: f64,
    /// Processes of the run still alive when it was found lost, ended then.
    pub ended_processes: usize,
    /// How Slurm said its job ended, for a run lost in a job.
    pub job_end: Option<crate::slurm::JobState>,
}

/// An append-only writer of one run file; each call is one `write`.
#[derive(Debug)]
pub struct Appender {
    file: File,
    path: PathBuf,
}

impl Appender {
    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| Error::io(&self.path, e))
    }

    pub fn write_record(&mut self, record: &Record) -> Result<()> {
        self.write_bytes(record.to_line().as_bytes())
    }
}

/// A rename onto a run folder that exists (and is never empty).
fn id_taken(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST))
}

fn write_file(p: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(p, bytes).map_err(|e| Error::io(p, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_id_is_replaced_not_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let mut a = RunSpec::new("r-000000aaaa".into(), 1_800_000_000.0, tmp.path());
        let mut b = a.clone();
        let (_da, _la) = RunDir::create(&lab, &mut a, b"").unwrap();
        let (db, _lb) = RunDir::create(&lab, &mut b, b"").unwrap();
        assert_eq!(a.id, "r-000000aaaa");
        assert_ne!(b.id, a.id);
        assert!(crate::id::looks_like_run_id(&b.id));
        assert_eq!(db.read_spec().unwrap().id, b.id);
        let leftovers = fs::read_dir(lab.runs_dir())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
            .count();
        assert_eq!(leftovers, 0);
    }
}
