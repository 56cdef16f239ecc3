//! wandb's run folders as [`Imported`] runs: the offline ones waiting for
//! `wandb sync` (`wandb/offline-run-*`) and synced ones (`wandb/run-*`),
//! each read from its `run-<id>.wandb` file ([`leveldb`] framing,
//! [`proto`] records). The source is the `wandb/` folder, however the path
//! names it, and `source_id` the run's id.
//!
//! What becomes what:
//! - history rows: each item's `nested_key` joined with `.` (else its
//!   `key`) is a metric; `_step` is the step (else the row's), `_timestamp`
//!   the time (else the row before's); other `_` keys are wandb's own;
//!   numbers are kept, NaN and ±Infinity too, and other values (text,
//!   media, tables) are counted as skipped by their kind;
//! - system stats are `sys/<key>` metrics at their timestamps, stepped by
//!   their order;
//! - config and summary: every update and removal in order, nested along
//!   the item's path (`_wandb` and summary keys starting with `_` left out);
//! - the run record: name, project, group, job type, notes, tags, start
//!   time, host, git commit; the environment: the command and user;
//! - the exit record: exit code 0 is finished, any other failed; no exit
//!   record: not ended (still running, or it died unrecorded).
//!
//! A `.wandb` file cut short keeps what is complete, with a warning; so
//! does one with a CRC mismatch, from the next block on. Then
//! `files/config.yaml` and `files/wandb-summary.json`, which wandb writes
//! whole, override the config and summary read. A run resumed offline
//! into a second folder is one run, its folders read in order.
//!
//! The resume state is the byte offset after the last complete record of
//! each folder's file: a re-import reads the whole file again for config
//! and summary, and keeps the points, skips and warnings of the records
//! from there on.

mod json;
mod leveldb;
mod proto;

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use prost::Message;
use serde_json::{Map, Value, json};

use self::proto::{RecordType, SummaryRecord};
use super::{Imported, ImportedEnd, Previous};
use crate::error::{Error, Result};
use crate::record::{Point, RunStatus, parse_non_finite};

/// Far more than a config or summary file holds, little enough to read whole.
const MAX_FALLBACK_BYTES: u64 = 64 << 20;

/// Reads the wandb runs at `path`: a `wandb/` folder, a folder holding one,
/// one run folder, or a run's `.wandb` file.
pub fn read(path: &Path, previous: Previous) -> Result<Vec<Imported>> {
    let (root, folders) = locate(path)?;
    let source = root.display().to_string();
    let mut runs: Vec<(String, Vec<PathBuf>)> = Vec::new();
    for dir in folders {
        let id = run_id(&dir);
        match runs.iter_mut().find(|(known, _)| *known == id) {
            Some((_, dirs)) => dirs.push(dir),
            None => runs.push((id, vec![dir])),
        }
    }
    runs.into_iter().map(|(id, dirs)| read_run(&source, id, &dirs, previous)).collect()
}

fn invalid(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::invalid("wandb run", format!("{}: {why}", path.display()))
}

/// The `wandb/` folder (the source, so that a run is the same one however
/// it is named) and the run folders to read, in the order they were made.
fn locate(path: &Path) -> Result<(PathBuf, Vec<PathBuf>)> {
    let path = path.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::not_found("wandb run", format!("{}: no such file or folder", path.display()))
        }
        _ => Error::io(path, e),
    })?;
    let parent = |p: &Path| p.parent().map_or_else(|| p.to_path_buf(), Path::to_path_buf);
    if path.is_file() {
        if path.extension().is_none_or(|e| e != "wandb") {
            return Err(invalid(&path, "not a wandb run folder or .wandb file"));
        }
        let dir = parent(&path);
        return Ok((parent(&dir), vec![dir]));
    }
    if is_run_folder(&path) {
        return Ok((parent(&path), vec![path]));
    }
    let root = if path.join("wandb").is_dir() { path.join("wandb") } else { path.clone() };
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(&root).map_err(|e| Error::io(&root, e))? {
        let entry = entry.map_err(|e| Error::io(&root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // `latest-run` is a link to one of the others.
        let dir = entry.file_type().map_err(|e| Error::io(entry.path(), e))?.is_dir();
        if dir && (name.starts_with("offline-run-") || name.starts_with("run-")) && is_run_folder(&entry.path()) {
            folders.push(entry.path());
        }
    }
    if folders.is_empty() {
        return Err(Error::not_found(
            "wandb run",
            format!("{}: no wandb runs here (no offline-run-* or run-* folders, no wandb/ folder)", path.display()),
        ));
    }
    folders.sort_by_key(|d| folder_time(d));
    Ok((root, folders))
}

/// A run folder holds its `run-<id>.wandb` file, or at least the `files/`
/// wandb writes beside it.
fn is_run_folder(dir: &Path) -> bool {
    wandb_file(dir).is_some() || (dir.join("files").is_dir() && run_name_parts(dir).is_some())
}

/// `offline-run-20240102_030405-abc123` as (`20240102_030405`, `abc123`).
fn run_name_parts(dir: &Path) -> Option<(String, String)> {
    let name = dir.file_name()?.to_str()?;
    let rest = name.strip_prefix("offline-run-").or_else(|| name.strip_prefix("run-"))?;
    let (time, id) = rest.rsplit_once('-')?;
    Some((time.to_string(), id.to_string()))
}

fn folder_time(dir: &Path) -> (String, PathBuf) {
    (run_name_parts(dir).map(|(time, _)| time).unwrap_or_default(), dir.to_path_buf())
}

fn wandb_file(dir: &Path) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("run-") && n.ends_with(".wandb"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The run's id: its file's name (`run-<id>.wandb`), else its folder's.
fn run_id(dir: &Path) -> String {
    let from_file = wandb_file(dir).and_then(|f| {
        let name = f.file_name()?.to_str()?;
        Some(name.strip_prefix("run-")?.strip_suffix(".wandb")?.to_string())
    });
    from_file
        .or_else(|| run_name_parts(dir).map(|(_, id)| id))
        .unwrap_or_else(|| dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
}

/// What reading a run's records has gathered.
#[derive(Default)]
struct Run {
    imp: Imported,
    /// The time of the last history row: the time of a row without one.
    row_time: Option<f64>,
    first_time: Option<f64>,
    last_time: Option<f64>,
    history_rows: i64,
    stats_rows: i64,
    runtime: Option<i32>,
    /// A file cut short, corrupt, or missing: the folder's own files then
    /// say the config and summary.
    incomplete: bool,
}

fn read_run(source: &str, id: String, dirs: &[PathBuf], previous: Previous) -> Result<Imported> {
    let before = previous(&id);
    let mut run = Run {
        imp: Imported { tool: "wandb", source: source.to_string(), source_id: id, ..Imported::default() },
        ..Run::default()
    };
    let mut offsets = Map::new();
    for dir in dirs {
        let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let since = before.as_ref().and_then(|b| b["bytes"][&name].as_u64()).unwrap_or(0);
        match wandb_file(dir) {
            Some(file) => {
                let end = run.read_file(&file, since)?;
                offsets.insert(name, end.into());
            }
            None => {
                run.incomplete = true;
                if before.is_none() {
                    run.imp
                        .warnings
                        .push(format!("{}: no run-*.wandb file; only its config and summary read", dir.display()));
                }
            }
        }
    }
    match dirs.last() {
        Some(dir) if run.incomplete => run.fallback(dir),
        _ => {}
    }
    let mut imp = run.imp;
    imp.started_at = imp.started_at.or(run.first_time);
    if imp.end.is_some() {
        let by_runtime = imp.started_at.zip(run.runtime).map(|(s, r)| s + f64::from(r));
        imp.ended_at = match (run.last_time, by_runtime) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    imp.resume = json!({ "bytes": offsets });
    Ok(imp)
}

impl Run {
    /// Reads one `.wandb` file, keeping points and warnings from byte
    /// `since` on; the offset after its last complete record.
    fn read_file(&mut self, file: &Path, since: u64) -> Result<u64> {
        let io = |e| Error::io(file, e);
        let mut f = File::open(file).map_err(io)?;
        let mut head = Vec::with_capacity(leveldb::FILE_HEADER);
        (&mut f).take(leveldb::FILE_HEADER as u64).read_to_end(&mut head).map_err(io)?;
        if head.len() < leveldb::FILE_HEADER {
            self.incomplete = true;
            if since == 0 {
                self.imp.warnings.push(format!("{}: no records yet ({} bytes)", file.display(), head.len()));
            }
            return Ok(0);
        }
        leveldb::check_header(&head).map_err(|why| invalid(file, why))?;
        f.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut reader = leveldb::Reader::new(f);
        let mut end = leveldb::FILE_HEADER as u64;
        while let Some(item) = reader.next_item().map_err(io)? {
            match item {
                leveldb::Item::Record { start, end: after, data } => {
                    end = after;
                    match proto::Record::decode(&data[..]) {
                        Ok(record) => self.apply(record, start >= since),
                        Err(e) if start >= since => self.imp.warnings.push(format!(
                            "{}: the record at byte {start} does not decode ({e}); skipped",
                            file.display()
                        )),
                        Err(_) => {}
                    }
                }
                leveldb::Item::Corrupt { offset, resumed, why } => {
                    self.incomplete = true;
                    if offset >= since {
                        self.imp
                            .warnings
                            .push(format!("{}: {why} at byte {offset}; read on from byte {resumed}", file.display()));
                    }
                }
                leveldb::Item::Torn { offset } => {
                    self.incomplete = true;
                    if offset >= since {
                        self.imp.warnings.push(format!(
                            "{}: ends inside the record at byte {offset} (cut short, or still being written); kept what came before",
                            file.display()
                        ));
                    }
                }
            }
        }
        if since > end {
            self.imp.warnings.push(format!(
                "{}: shorter than at the last import ({end} bytes of records, {since} before); nothing new read",
                file.display()
            ));
        }
        Ok(end)
    }

    /// One record; `new`: after what an earlier import read, so its points count.
    fn apply(&mut self, record: proto::Record, new: bool) {
        let Some(kind) = record.record_type else { return };
        match kind {
            RecordType::History(h) => self.history(h, new),
            RecordType::Stats(s) => self.stats(s, new),
            RecordType::Config(c) => change(&mut self.imp.config, &c, |path| path[0] == "_wandb"),
            RecordType::Summary(s) => change(&mut self.imp.summary, &s, |path| path[0].starts_with('_')),
            RecordType::Run(r) => self.run_record(r),
            RecordType::Exit(e) => {
                let status = if e.exit_code == 0 { RunStatus::Finished } else { RunStatus::Failed };
                self.imp.end = Some(ImportedEnd { status, exit_code: Some(e.exit_code), reason: None });
                self.runtime = Some(e.runtime);
            }
            RecordType::Environment(e) => {
                let imp = &mut self.imp;
                if imp.command.is_empty() && !e.program.is_empty() {
                    imp.command = std::iter::once(e.program).chain(e.args).collect();
                }
                set_text(&mut imp.host, e.host);
                set_text(&mut imp.user, e.username);
                if let Some(git) = e.git {
                    set_text(&mut imp.git_commit, git.commit);
                }
            }
        }
    }

    fn run_record(&mut self, r: proto::RunRecord) {
        let imp = &mut self.imp;
        set_text(&mut imp.name, r.display_name);
        set_text(&mut imp.project, r.project);
        set_text(&mut imp.group, r.run_group);
        set_text(&mut imp.job_type, r.job_type);
        set_text(&mut imp.notes, r.notes);
        set_text(&mut imp.host, r.host);
        if !r.tags.is_empty() {
            imp.tags = r.tags;
        }
        if let Some(git) = r.git {
            set_text(&mut imp.git_commit, git.commit);
        }
        if imp.started_at.is_none() {
            imp.started_at = r.start_time.map(|t| t.seconds_f64());
        }
        if let Some(config) = r.config {
            change(&mut imp.config, &config, |path| path[0] == "_wandb");
        }
        if let Some(summary) = r.summary {
            change(&mut imp.summary, &summary, |path| path[0].starts_with('_'));
        }
    }

    fn history(&mut self, h: proto::HistoryRecord, new: bool) {
        let mut step = h.step.map(|s| s.num);
        let mut time = None;
        let mut values = Vec::new();
        for item in h.item {
            let key = if item.nested_key.is_empty() { item.key } else { item.nested_key.join(".") };
            let value = match (item.value_json.is_empty(), item.value) {
                (false, _) | (true, None) => number(&item.value_json),
                (true, Some(typed)) => typed_number(typed),
            };
            match key.as_str() {
                "_step" => step = value.ok().filter(|v| v.is_finite()).map(|v| v as i64).or(step),
                "_timestamp" => time = value.ok().filter(|v| v.is_finite()),
                k if k.starts_with('_') => {}
                _ => values.push((key, value)),
            }
        }
        let step = step.unwrap_or(self.history_rows);
        self.history_rows += 1;
        let time = time.or(self.row_time).or(self.imp.started_at).unwrap_or(0.0);
        self.row_time = Some(time);
        self.saw_time(time);
        if new {
            self.keep(values, step, time);
        }
    }

    fn stats(&mut self, s: proto::StatsRecord, new: bool) {
        let time = s.timestamp.map(|t| t.seconds_f64()).or(self.row_time).unwrap_or(0.0);
        let step = self.stats_rows;
        self.stats_rows += 1;
        self.saw_time(time);
        if new {
            let values = s.item.into_iter().map(|i| (format!("sys/{}", i.key), number(&i.value_json))).collect();
            self.keep(values, step, time);
        }
    }

    fn saw_time(&mut self, time: f64) {
        self.first_time = Some(self.first_time.map_or(time, |t| t.min(time)));
        self.last_time = Some(self.last_time.map_or(time, |t| t.max(time)));
    }

    fn keep(&mut self, values: Vec<(String, std::result::Result<f64, String>)>, step: i64, time: f64) {
        for (key, value) in values {
            match value {
                Ok(value) => self.imp.series.entry(key).or_default().push(Point { step, time, value }),
                Err(kind) => *self.imp.skipped.entry(kind).or_default().entry(key).or_default() += 1,
            }
        }
    }

    /// The folder's `files/config.yaml` and `files/wandb-summary.json`
    /// over what the records said; a file that cannot be read is said.
    fn fallback(&mut self, dir: &Path) {
        let files = dir.join("files");
        let config = files.join("config.yaml");
        match read_small(&config) {
            Ok(None) => {}
            Ok(Some(text)) => match crate::limits::check_yaml_nesting(&text).and_then(|()| {
                yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| format!("not valid YAML ({e})"))
            }) {
                Ok(docs) => {
                    for (key, value) in docs.first().and_then(|d| d.as_hash()).into_iter().flatten() {
                        let Some(key) = key.as_str() else { continue };
                        if key == "_wandb" || key == "wandb_version" {
                            continue;
                        }
                        // Each value is wrapped as {"desc": ..., "value": ...}.
                        let value = if value["value"].is_badvalue() { value } else { &value["value"] };
                        match json::from_yaml(value, 1) {
                            Some(v) => json::set_path(&mut self.imp.config, &[key.to_string()], v),
                            None => self
                                .imp
                                .warnings
                                .push(format!("{}: '{key}' nests too deep; left out", config.display())),
                        }
                    }
                }
                Err(why) => self.imp.warnings.push(format!("{}: {why}; not read", config.display())),
            },
            Err(why) => self.imp.warnings.push(format!("{}: {why}; not read", config.display())),
        }
        let summary = files.join("wandb-summary.json");
        match read_small(&summary) {
            Ok(None) => {}
            Ok(Some(text)) => match json::parse(&text) {
                Some(Value::Object(map)) => {
                    for (key, value) in map {
                        if !key.starts_with('_') {
                            self.imp.summary.insert(key, value);
                        }
                    }
                }
                _ => self.imp.warnings.push(format!("{}: not a JSON object; not read", summary.display())),
            },
            Err(why) => self.imp.warnings.push(format!("{}: {why}; not read", summary.display())),
        }
    }
}

/// A fallback file's text; None when it is not there.
fn read_small(path: &Path) -> std::result::Result<Option<String>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    if meta.len() > MAX_FALLBACK_BYTES {
        return Err(format!("{} bytes, more than {MAX_FALLBACK_BYTES}", meta.len()));
    }
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    String::from_utf8(data).map(Some).map_err(|_| "not UTF-8 text".to_string())
}

fn set_text(slot: &mut Option<String>, value: String) {
    if !value.is_empty() {
        *slot = Some(value);
    }
}

/// Applies a config or summary change; paths `left_out` are wandb's own.
fn change(map: &mut Map<String, Value>, c: &SummaryRecord, left_out: impl Fn(&[String]) -> bool) {
    let path = |item: &proto::Item| -> Vec<String> {
        if item.nested_key.is_empty() { vec![item.key.clone()] } else { item.nested_key.clone() }
    };
    for item in &c.update {
        let path = path(item);
        if path.is_empty() || left_out(&path) {
            continue;
        }
        let value = json::parse(&item.value_json).unwrap_or_else(|| Value::String(item.value_json.clone()));
        json::set_path(map, &path, value);
    }
    for item in &c.remove {
        let path = path(item);
        if !path.is_empty() && !left_out(&path) {
            json::remove_path(map, &path);
        }
    }
}

/// A history or stats value as a metric's number, or the kind of thing it
/// is instead (`text`, `boolean`, a media type such as `image-file`).
fn number(value_json: &str) -> std::result::Result<f64, String> {
    let text = value_json.trim();
    if let Some(v) = parse_non_finite(text) {
        return Ok(v);
    }
    match json::parse(text) {
        Some(Value::Number(n)) => n.as_f64().ok_or_else(|| "number".to_string()),
        Some(Value::String(_)) => Err("text".into()),
        Some(Value::Bool(_)) => Err("boolean".into()),
        Some(Value::Null) => Err("null".into()),
        Some(Value::Array(_)) => Err("list".into()),
        Some(Value::Object(o)) => Err(o.get("_type").and_then(Value::as_str).unwrap_or("object").to_string()),
        None => Err("unreadable".into()),
    }
}

fn typed_number(value: proto::TypedValue) -> std::result::Result<f64, String> {
    match value {
        proto::TypedValue::Number(v) => Ok(v),
        proto::TypedValue::Integer(i) => Ok(i as f64),
        proto::TypedValue::Boolean(_) => Err("boolean".into()),
        proto::TypedValue::Text(_) => Err("text".into()),
        proto::TypedValue::Null(_) => Err("null".into()),
        proto::TypedValue::Json(j) => number(&j),
    }
}

#[cfg(test)]
mod tests;
