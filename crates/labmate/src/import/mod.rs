//! Bringing history in from other tools: each reader (`tensorboard`,
//! `mlflow`, `wandb`) turns a source into [`Imported`] runs, and
//! [`write`] makes each an ordinary run folder through the record format,
//! with `run.json` saying where it came from, once: a source imported
//! again adds only what is new since (its `resume` state), or nothing.

pub mod mlflow;
pub mod tensorboard;
pub mod wandb;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::git::GitState;
use crate::lab::Lab;
use crate::record::batch::{Batch, Column};
use crate::record::{End, Event, Point, Record, RunStatus};
use crate::rundir::RunDir;
use crate::spec::{ImportedFrom, RunSpec};

/// One run read from another tool, before it becomes a labmate run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    /// The reader: `tensorboard`, `mlflow` or `wandb`.
    pub tool: &'static str,
    /// The source as the user named it, made absolute (a path, or a URI
    /// such as `sqlite:///abs/path/mlflow.db`).
    pub source: String,
    /// The run's own id at the source: a TensorBoard directory relative to
    /// the path given (`.` for the path itself), an MLflow run id, a wandb
    /// run id. With `tool` and `source`, what finds an earlier import.
    pub source_id: String,
    pub name: Option<String>,
    pub project: Option<String>,
    pub group: Option<String>,
    pub job_type: Option<String>,
    pub notes: Option<String>,
    pub tags: Vec<String>,
    pub config: Map<String, Value>,
    pub summary: Map<String, Value>,
    /// Seconds since the epoch; when the source does not say, the first
    /// point's time.
    pub started_at: Option<f64>,
    pub ended_at: Option<f64>,
    /// How it ended at the source; `None` when the source does not say
    /// (TensorBoard) or it was still running there.
    pub end: Option<ImportedEnd>,
    /// What the source says of the code, the user, the host, the command.
    pub git_commit: Option<String>,
    pub user: Option<String>,
    pub host: Option<String>,
    pub command: Vec<String>,
    /// Every kept point, by metric key, in the source's order.
    pub series: BTreeMap<String, Vec<Point>>,
    /// What was read and not kept: kind (`histogram`, `image`, `audio`,
    /// `text`, ...) -> tag -> how many.
    pub skipped: BTreeMap<String, BTreeMap<String, u64>>,
    /// Problems met that lost nothing else: a torn last record, a CRC
    /// mismatch (with the file and byte offset). Recorded as warning events
    /// on the run and printed.
    pub warnings: Vec<String>,
    /// Where the reader stopped, for the next import of this run (byte
    /// offsets per file, counts per key...): opaque here, stored with the
    /// run and handed back to the reader. It changes exactly when there
    /// is something new.
    pub resume: Value,
}

/// How an imported run ended at its source.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportedEnd {
    /// `Finished`, `Failed` or `Stopped`.
    pub status: RunStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
}

/// The resume state an earlier import left for a run, by its `source_id`
/// (`None`: never imported). A reader given one returns only the points
/// after it (and all of the run's metadata).
pub type Previous<'a> = &'a dyn Fn(&str) -> Option<Value>;

/// What one import did to one run.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Outcome {
    pub run: String,
    pub name: Option<String>,
    pub source_id: String,
    /// `created`, `updated` (new points appended), `unchanged`, or
    /// `empty` (nothing in it could be read: no run was made).
    pub change: &'static str,
    /// Points written by this import.
    pub points: u64,
    pub skipped: BTreeMap<String, BTreeMap<String, u64>>,
    pub warnings: Vec<String>,
}

/// The runs imported earlier into a lab, by where they came from.
pub struct Existing {
    by_source: HashMap<(String, String, String), PathBuf>,
}

/// What an import leaves in the run folder (`import.json`) for the next
/// one: the reader's resume state, the stream it came with, and the state
/// before it, which holds when that stream never landed (a crash between
/// the two renames).
#[derive(serde::Serialize, serde::Deserialize)]
struct ImportState {
    resume: Value,
    stream: String,
    before: Value,
    /// An end record was written (once is enough).
    #[serde(default)]
    ended: bool,
}

/// What holds of the imports in a run folder.
struct Held {
    resume: Value,
    streams: usize,
    ended: bool,
}

pub const STATE_FILE: &str = "import.json";

impl Existing {
    /// Reads every run's `run.json` once, keeping the imported ones.
    pub fn scan(lab: &Lab) -> Result<Existing> {
        let mut by_source = HashMap::new();
        let runs = lab.runs_dir();
        let entries = match fs::read_dir(&runs) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing { by_source }),
            Err(e) => return Err(Error::io(&runs, e)),
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let dir = RunDir::at(entry.path());
            let Ok(spec) = dir.read_spec() else { continue };
            if let Some(from) = spec.imported_from {
                by_source.insert((from.tool, from.source, from.id), entry.path());
            }
        }
        Ok(Existing { by_source })
    }

    /// The folder of the earlier import of `source_id` from `tool` at
    /// `source` (the same path however it is spelled).
    fn find_source(&self, tool: &str, source: &str, source_id: &str) -> Option<&PathBuf> {
        if let Some(dir) = self.by_source.get(&(tool.to_string(), source.to_string(), source_id.to_string())) {
            return Some(dir);
        }
        let wanted = canonical(source)?;
        self.by_source
            .iter()
            .find(|((t, s, id), _)| t == tool && id == source_id && canonical(s).as_ref() == Some(&wanted))
            .map(|(_, dir)| dir)
    }

    fn find(&self, run: &Imported) -> Option<&PathBuf> {
        self.find_source(run.tool, &run.source, &run.source_id)
    }

    /// The resume state of an earlier import of `source_id` from `tool` at
    /// `source`, for the reader.
    pub fn previous(&self, tool: &str, source: &str, source_id: &str) -> Option<Value> {
        read_state(self.find_source(tool, source, source_id)?).map(|held| held.resume)
    }
}

/// A source's path, resolved: `sqlite:///p` and `file:///p` name `/p`.
fn canonical(source: &str) -> Option<PathBuf> {
    let path = source.strip_prefix("sqlite://").or_else(|| source.strip_prefix("file://")).unwrap_or(source);
    fs::canonicalize(path).ok()
}

/// The resume state that holds in `dir`, and how many streams the imports
/// wrote there.
fn read_state(dir: &Path) -> Option<Held> {
    let bytes = fs::read(dir.join(STATE_FILE)).ok()?;
    let state: ImportState = serde_json::from_slice(&bytes).ok()?;
    let streams = fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("import-"))
        .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
        .count();
    let landed = dir.join(&state.stream).is_file();
    Some(Held { resume: if landed { state.resume } else { state.before }, streams, ended: state.ended })
}

/// Writes `run` into the lab: a new run folder, created whole, the first
/// time; after that a new stream `import-<n>.jsonl` with what is new, or
/// nothing when the reader's resume state did not move. `tags` are added
/// to the run's own.
pub fn write(lab: &Lab, existing: &Existing, run: &Imported, tags: &[String]) -> Result<Outcome> {
    let points: u64 = run.series.values().map(|s| s.len() as u64).sum();
    let outcome = |id: &str, change, points| Outcome {
        run: id.to_string(),
        name: run.name.clone(),
        source_id: run.source_id.clone(),
        change,
        points,
        skipped: run.skipped.clone(),
        warnings: run.warnings.clone(),
    };
    if let Some(dir) = existing.find(run) {
        let id = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let held = read_state(dir).unwrap_or(Held { resume: Value::Null, streams: 0, ended: false });
        if held.resume == run.resume {
            // What the reader met again (a torn last record still torn) was said the first time.
            return Ok(Outcome { skipped: BTreeMap::new(), warnings: Vec::new(), ..outcome(&id, "unchanged", 0) });
        }
        let stream = format!("import-{}.jsonl", held.streams);
        append_stream(lab, dir, &id, &stream, run, &held, tags)?;
        return Ok(outcome(&id, "updated", points));
    }
    if points == 0 && run.config.is_empty() && run.summary.is_empty() && run.end.is_none() {
        return Ok(outcome("", "empty", 0));
    }
    let now = lab.now();
    let started = run.started_at.or_else(|| first_time(run)).unwrap_or(now);
    let mut spec = RunSpec::new(lab.new_id(crate::id::PREFIX, started), started, Path::new(""));
    spec.name = run.name.clone();
    spec.tags = run.tags.iter().chain(tags).fold(Vec::new(), |mut all, t| {
        if !all.contains(t) {
            all.push(t.clone());
        }
        all
    });
    spec.command = run.command.clone();
    spec.cwd = String::new();
    spec.host = run.host.clone().unwrap_or_default();
    spec.user = run.user.clone().unwrap_or_default();
    spec.config = run.config.clone();
    spec.git = run.git_commit.as_ref().map(|commit| GitState {
        commit: Some(commit.clone()),
        branch: None,
        dirty: false,
        untracked: Vec::new(),
        patch_bytes: 0,
    });
    spec.origin = "import".into();
    spec.imported_from =
        Some(ImportedFrom { tool: run.tool.into(), source: run.source.clone(), id: run.source_id.clone() });
    let stream = "import-0.jsonl";
    let dir = RunDir::create_complete(lab, &mut spec, &|tmp| {
        let mut lines = String::new();
        lines.push_str(
            &Record::Start { time: started, pid: None, child_pid: None, pgid: None, leader: None, job: None }.to_line(),
        );
        lines.push('\n');
        records(run, started, true, end_of(run).as_ref(), &[], &mut lines);
        fs::write(tmp.join(stream), lines.as_bytes()).map_err(|e| Error::io(tmp.join(stream), e))?;
        fs::File::create(tmp.join(crate::rundir::LOCK_FILE)).map_err(|e| Error::io(tmp, e))?;
        let state = ImportState {
            resume: run.resume.clone(),
            stream: stream.into(),
            before: Value::Null,
            ended: end_of(run).is_some(),
        };
        write_json(&tmp.join(STATE_FILE), &state)
    })?;
    let id = dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(outcome(&id, "created", points))
}

/// How the run ends here. TensorBoard records no end: its runs are history,
/// finished at their last event. A run another tool still had running has
/// none, and reads as lost (its writer is not there), until an import
/// after it ended brings its end.
fn end_of(run: &Imported) -> Option<ImportedEnd> {
    run.end.clone().or_else(|| {
        (run.tool == "tensorboard").then(|| ImportedEnd {
            status: RunStatus::Finished,
            exit_code: None,
            reason: Some("TensorBoard records no end: ended at its last event".into()),
        })
    })
}

fn first_time(run: &Imported) -> Option<f64> {
    run.series.values().filter_map(|s| s.first()).map(|p| p.time).filter(|t| t.is_finite()).reduce(f64::min)
}

/// The records of `run` as lines: metadata, points (one batch per key and
/// block), warnings about what was skipped, and the end.
/// `tags` (a later import's `--tag`) are added to the run's.
fn records(run: &Imported, started: f64, first: bool, end: Option<&ImportedEnd>, tags: &[String], out: &mut String) {
    let mut push = |record: Record| {
        out.push_str(&record.to_line());
        out.push('\n');
    };
    let at = run.ended_at.unwrap_or(started);
    let any = run.project.is_some() || run.group.is_some() || run.job_type.is_some() || run.notes.is_some();
    if any || !tags.is_empty() {
        push(Record::Meta {
            time: started,
            name: None,
            tags: tags.to_vec(),
            project: run.project.clone(),
            group: run.group.clone(),
            job_type: run.job_type.clone(),
            notes: run.notes.clone(),
        });
    }
    if !first && !run.config.is_empty() {
        push(Record::Config { time: at, data: run.config.clone() });
    }
    if !run.summary.is_empty() {
        push(Record::Summary { time: at, data: run.summary.clone() });
    }
    for (key, points) in &run.series {
        for block in points.chunks(BLOCK) {
            push(Record::Batch(Batch {
                steps: block.iter().map(|p| p.step).collect(),
                times: block.iter().map(|p| p.time).collect(),
                columns: vec![Column { key: key.clone(), at: None, values: block.iter().map(|p| p.value).collect() }],
                dropped: Vec::new(),
            }));
        }
    }
    for warning in &run.warnings {
        push(Record::Event(Event::warning(at, warning.clone(), None)));
    }
    for (kind, tags) in &run.skipped {
        let list: Vec<String> = tags.iter().map(|(tag, n)| format!("{tag} ({n})")).collect();
        let message = format!("{} {kind} values not imported: {}", tags.values().sum::<u64>(), list.join(", "));
        push(Record::Event(Event { time: at, kind: "info".into(), message, data: None }));
    }
    if let Some(end) = end {
        push(Record::End(End {
            time: run.ended_at.unwrap_or(at),
            status: end.status.clone(),
            exit_code: end.exit_code,
            signal: None,
            reason: end.reason.clone(),
        }));
    }
}

/// A block of points per batch record, as the client writes them.
const BLOCK: usize = 4096;

/// Appends what is new as a stream of its own: written under a temporary
/// name, the state (naming it) renamed into place, then the stream; and a
/// marker for the index, which does not read ended runs again by itself.
fn append_stream(
    lab: &Lab,
    dir: &Path,
    id: &str,
    stream: &str,
    run: &Imported,
    held: &Held,
    tags: &[String],
) -> Result<()> {
    let mut lines = String::new();
    let end = end_of(run).filter(|_| !held.ended);
    records(run, run.started_at.unwrap_or_else(|| lab.now()), false, end.as_ref(), tags, &mut lines);
    let tmp = dir.join(format!(".{stream}.tmp-{}", std::process::id()));
    fs::write(&tmp, lines.as_bytes()).map_err(|e| Error::io(&tmp, e))?;
    let state = ImportState {
        resume: run.resume.clone(),
        stream: stream.into(),
        before: held.resume.clone(),
        ended: held.ended || end_of(run).is_some(),
    };
    write_json(&dir.join(STATE_FILE), &state)?;
    fs::rename(&tmp, dir.join(stream)).map_err(|e| Error::io(dir.join(stream), e))?;
    crate::rundir::mark_appended(lab, id)
}

/// Written whole under a temporary name, then renamed over the old one.
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("states serialise");
    bytes.push(b'\n');
    let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
    fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Index;

    fn imported(points: &[(i64, f64)], offset: u64) -> Imported {
        let series: Vec<Point> =
            points.iter().map(|&(step, value)| Point { step, time: 1_800_000_000.0 + step as f64, value }).collect();
        Imported {
            tool: "mlflow",
            source: "/data/mlruns".into(),
            source_id: "abc123".into(),
            name: Some("baseline".into()),
            project: Some("owt".into()),
            tags: vec!["old".into()],
            config: serde_json::from_str(r#"{"lr": 0.01}"#).unwrap(),
            started_at: Some(1_800_000_000.0),
            ended_at: Some(1_800_000_100.0),
            end: Some(ImportedEnd { status: RunStatus::Failed, exit_code: Some(2), reason: None }),
            git_commit: Some("deadbeef".into()),
            series: BTreeMap::from([("loss".to_string(), series)]),
            skipped: BTreeMap::from([("histogram".to_string(), BTreeMap::from([("w".to_string(), 3)]))]),
            resume: serde_json::json!({"offset": offset}),
            ..Default::default()
        }
    }

    #[test]
    fn a_run_is_written_once_and_then_only_what_is_new() {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let first =
            write(&lab, &Existing::scan(&lab).unwrap(), &imported(&[(0, 1.0), (1, f64::NAN)], 2), &["mine".into()])
                .unwrap();
        assert_eq!((first.change, first.points), ("created", 2));
        let (index, _) = Index::open_synced(&lab).unwrap();
        let run = index.run(&first.run).unwrap();
        assert_eq!(run.status, RunStatus::Failed);
        assert_eq!(run.exit_code, Some(2));
        assert_eq!(run.tags, vec!["old".to_string(), "mine".into()]);
        assert_eq!(run.config["lr"], 0.01);
        assert_eq!(run.git.as_ref().and_then(|g| g.commit.clone()).as_deref(), Some("deadbeef"));
        assert_eq!(index.series(&first.run, "loss").unwrap().len(), 2);
        let spec = RunDir::at(lab.run_dir(&first.run)).read_spec().unwrap();
        assert_eq!(spec.origin, "import");
        assert_eq!(spec.imported_from.unwrap().id, "abc123");

        // The same state again: nothing.
        let existing = Existing::scan(&lab).unwrap();
        assert_eq!(existing.previous("mlflow", "/data/mlruns", "abc123"), Some(serde_json::json!({"offset": 2})));
        let again = write(&lab, &existing, &imported(&[], 2), &[]).unwrap();
        assert_eq!((again.change, again.points, again.run.as_str()), ("unchanged", 0, first.run.as_str()));

        // More at the source: a new stream, which the index reads although the run has ended.
        let more = write(&lab, &existing, &imported(&[(2, 0.5)], 3), &["later".into()]).unwrap();
        assert_eq!((more.change, more.points), ("updated", 1));
        assert!(lab.run_dir(&first.run).join("import-1.jsonl").is_file());
        let (index, _) = Index::open_synced(&lab).unwrap();
        let loss = index.series(&first.run, "loss").unwrap();
        assert_eq!(loss.iter().map(|p| p.step).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(index.run(&first.run).unwrap().tags, vec!["old".to_string(), "mine".into(), "later".into()]);
        assert!(loss[1].value.is_nan());
        assert_eq!(std::fs::read_dir(lab.root().join(crate::rundir::APPENDED_DIR)).unwrap().count(), 0);
        let events = index.events(&first.run).unwrap();
        assert!(events.iter().any(|e| e.message.contains("histogram values not imported: w (3)")), "{events:?}");
        // The second end was not written again.
        let text = std::fs::read_to_string(lab.run_dir(&first.run).join("import-1.jsonl")).unwrap();
        assert!(!text.contains("\"end\""), "{text}");
    }

    #[test]
    fn a_run_still_running_at_its_source_is_lost_until_its_end_is_imported() {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let mut running = imported(&[(0, 1.0)], 1);
        running.end = None;
        let first = write(&lab, &Existing::scan(&lab).unwrap(), &running, &[]).unwrap();
        let (index, _) = Index::open_synced(&lab).unwrap();
        let run = index.run(&first.run).unwrap();
        assert_eq!(run.status, RunStatus::Lost);
        assert!(run.reason.unwrap().contains("still running at its source"));
        drop(index);
        let ended = imported(&[(1, 0.5)], 2);
        write(&lab, &Existing::scan(&lab).unwrap(), &ended, &[]).unwrap();
        let (index, _) = Index::open_synced(&lab).unwrap();
        let run = index.run(&first.run).unwrap();
        assert_eq!((run.status, run.exit_code), (RunStatus::Failed, Some(2)));
    }

    #[test]
    fn a_stream_that_never_landed_leaves_the_state_before_it() {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let first = write(&lab, &Existing::scan(&lab).unwrap(), &imported(&[(0, 1.0)], 1), &[]).unwrap();
        let dir = lab.run_dir(&first.run);
        // As if a crash came between the state's rename and the stream's.
        let state = ImportState {
            resume: serde_json::json!({"offset": 9}),
            stream: "import-1.jsonl".into(),
            before: serde_json::json!({"offset": 1}),
            ended: true,
        };
        write_json(&dir.join(STATE_FILE), &state).unwrap();
        let existing = Existing::scan(&lab).unwrap();
        assert_eq!(existing.previous("mlflow", "/data/mlruns", "abc123"), Some(serde_json::json!({"offset": 1})));
    }
}
