//! MLflow's stores as [`Imported`] runs: a file store (`mlruns/`, read in
//! [`file_store`]) or a SQLite database (read in [`sqlite`], read-only),
//! both read as they lie on disk, never through mlflow.
//!
//! What becomes what:
//! - name: the `mlflow.runName` tag, else the run's own name; project: the
//!   experiment's name; `source_id`: the run id;
//! - status: FINISHED is finished, FAILED failed, KILLED stopped; RUNNING
//!   and SCHEDULED have not ended (`end: None`);
//! - params become config, each value parsed as a `--config` value is
//!   (JSON where it parses, else a string) and Python's `True`, `False` and
//!   `None` as the JSON they stand for; a dotted key nests as a `--config`
//!   key does (`optim.lr` is `config.optim.lr`) unless another key stands
//!   in its way, then it stays whole; `/` stays in the key;
//! - tags: `mlflow.source.git.commit` is the git commit, `mlflow.user` the
//!   user (else the run's `user_id`), `mlflow.source.name` the command,
//!   `mlflow.note.content` the notes, `mlflow.parentRunId` the group (the
//!   runs a parent run spawned side by side); other `mlflow.` tags are
//!   MLflow's bookkeeping and are left out; the user's own tags are kept as
//!   strings in config under `mlflow.tags`;
//! - every metric's whole history, in the order it was logged, its time
//!   the point's timestamp; a NaN logged is NaN (MLflow's SQLite store
//!   keeps ±Inf only as ±f64::MAX, which stays so);
//! - deleted experiments and runs (lifecycle stage `deleted`, or in the
//!   file store's `.trash`) are left out.
//!
//! The resume state is the count of points read per metric with the
//! status, end time and a checksum of the names, params and tags, so
//! that an unchanged store gives the same state and a run that logged more
//! gives only its new points.

mod file_store;
mod sqlite;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::{Imported, ImportedEnd, Previous};
use crate::error::{Error, Result};
use crate::limits::MAX_NESTING;
use crate::record::{Point, RunStatus};

/// A run as a store holds it, before it is mapped.
#[derive(Debug, Default)]
struct StoredRun {
    id: String,
    experiment: Option<String>,
    name: Option<String>,
    /// MLflow's word: RUNNING, SCHEDULED, FINISHED, FAILED, KILLED.
    status: String,
    start_ms: Option<i64>,
    end_ms: Option<i64>,
    user: Option<String>,
    params: Vec<(String, String)>,
    tags: Vec<(String, String)>,
    /// Every metric's history in the order logged.
    metrics: BTreeMap<String, History>,
    /// Problems met, each with the index of the entry of its metric it is
    /// about (None: the run's), so that a re-import repeats none of them.
    warnings: Vec<(Option<(String, usize)>, String)>,
}

/// One metric's entries: each point with its place among them, and how
/// many were read (a malformed line of a file store counts, so that the
/// next import starts after it).
#[derive(Debug, Default)]
struct History {
    points: Vec<(usize, Point)>,
    entries: usize,
}

/// Where a store is: the file store's `mlruns` folder or the database file.
#[derive(Debug, Clone, PartialEq)]
enum Store {
    Files(PathBuf),
    Sqlite(PathBuf),
}

/// Reads every run of the MLflow store at `path_or_uri`: an `mlruns`
/// folder, a folder holding one (or `mlflow.db`), `file:///...`, a SQLite
/// database (`sqlite:///relative.db`, `sqlite:////abs/path.db`, or its path).
pub fn read(path_or_uri: &str, previous: Previous) -> Result<Vec<Imported>> {
    let mut out = Vec::new();
    for store in locate(path_or_uri)? {
        let (source, runs) = match &store {
            Store::Files(dir) => (dir.display().to_string(), file_store::read(dir)?),
            Store::Sqlite(db) => (format!("sqlite:///{}", db.display()), sqlite::read(db)?),
        };
        out.extend(runs.into_iter().map(|run| imported(run, &source, previous)));
    }
    Ok(out)
}

fn not_a_store(path: &Path, why: &str) -> Error {
    Error::invalid("mlflow store", format!("{}: not an MLflow store: {why}", path.display()))
}

/// The stores `path_or_uri` names, their paths made canonical so that one
/// store named two ways is one source.
fn locate(path_or_uri: &str) -> Result<Vec<Store>> {
    let given = path_or_uri.trim();
    if given.is_empty() {
        return Err(Error::invalid("mlflow store", "no MLflow store named (an empty path)"));
    }
    if let Some(rest) = given.strip_prefix("sqlite:") {
        let path = sqlite_path(given, rest)?;
        let db = existing(&path)?;
        if !db.is_file() {
            return Err(not_a_store(&db, "a folder, not a SQLite database"));
        }
        return Ok(vec![Store::Sqlite(db)]);
    }
    let path = match given.strip_prefix("file:") {
        Some(rest) => file_uri_path(rest),
        None if given.contains("://") => {
            let scheme = given.split("://").next().unwrap_or_default();
            return Err(Error::invalid(
                "mlflow store",
                format!(
                    "'{}': labmate reads MLflow file stores and SQLite databases, not '{scheme}' tracking URIs",
                    crate::text::clip(given, 200)
                ),
            ));
        }
        None => PathBuf::from(given),
    };
    let path = existing(&path)?;
    if path.is_file() {
        if is_sqlite(&path) {
            return Ok(vec![Store::Sqlite(path)]);
        }
        return Err(not_a_store(&path, "neither an mlruns folder nor a SQLite database"));
    }
    let mut stores = Vec::new();
    let inner = path.join("mlruns");
    if inner.is_dir() {
        stores.push(Store::Files(existing(&inner)?));
    } else if file_store::looks_like_mlruns(&path) {
        stores.push(Store::Files(path.clone()));
    }
    let db = path.join("mlflow.db");
    if db.is_file() && is_sqlite(&db) {
        stores.push(Store::Sqlite(existing(&db)?));
    }
    if stores.is_empty() {
        return Err(not_a_store(&path, "no mlruns/ folder, no experiment folders with meta.yaml, no mlflow.db"));
    }
    Ok(stores)
}

/// The database path of a `sqlite:` URI (`rest` follows the scheme):
/// SQLAlchemy's form, `sqlite:///` then a path, absolute when it starts
/// with `/`; a query (`?mode=ro`) is ignored.
fn sqlite_path(uri: &str, rest: &str) -> Result<PathBuf> {
    let bad = |why: &str| Error::invalid("mlflow store", format!("'{}': {why}", crate::text::clip(uri, 200)));
    let rest = rest.split('?').next().unwrap_or_default();
    if matches!(rest, "//" | "///" | "///:memory:") {
        return Err(bad("an in-memory database holds no runs to import"));
    }
    let Some(path) = rest.strip_prefix("///") else {
        return Err(bad("expected sqlite:///relative.db or sqlite:////absolute/path.db"));
    };
    Ok(PathBuf::from(percent_decoded(path)))
}

/// The path of a `file:` URI: `file:///abs`, `file://localhost/abs`, or
/// `file:relative`.
fn file_uri_path(rest: &str) -> PathBuf {
    let path = match rest.strip_prefix("//") {
        Some(after) => after.strip_prefix("localhost").unwrap_or(after),
        None => rest,
    };
    PathBuf::from(percent_decoded(path))
}

/// `%20` and the like decoded; a `%` that starts no escape stays.
fn percent_decoded(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| (*b as char).to_digit(16));
        match (bytes[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical path of something that must be there.
fn existing(path: &Path) -> Result<PathBuf> {
    path.canonicalize().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::not_found("mlflow store", format!("{}: no such file or folder", path.display()))
        }
        _ => Error::io(path, e),
    })
}

fn is_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 16];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == b"SQLite format 3\0"
}

/// The run as labmate imports it, given what the last import read of it.
fn imported(run: StoredRun, source: &str, previous: Previous) -> Imported {
    let before = previous(&run.id);
    let read_before =
        |key: &str| -> usize { before.as_ref().and_then(|b| b["metrics"][key].as_u64()).map_or(0, |n| n as usize) };
    let mut imp = Imported {
        tool: "mlflow",
        source: source.to_string(),
        source_id: run.id.clone(),
        project: run.experiment.clone(),
        config: params_config(&run.params),
        started_at: run.start_ms.map(ms),
        user: run.user.clone(),
        ..Imported::default()
    };
    imp.name = run.name.clone().filter(|n| !n.is_empty());
    let mut own_tags = Map::new();
    for (key, value) in &run.tags {
        match key.as_str() {
            "mlflow.runName" if !value.is_empty() => imp.name = Some(value.clone()),
            "mlflow.source.git.commit" => imp.git_commit = Some(value.clone()),
            "mlflow.user" => imp.user = Some(value.clone()),
            "mlflow.source.name" if !value.is_empty() => imp.command = vec![value.clone()],
            "mlflow.note.content" => imp.notes = Some(value.clone()),
            "mlflow.parentRunId" => imp.group = Some(value.clone()),
            k if k.starts_with("mlflow.") => {}
            _ => {
                own_tags.insert(key.clone(), Value::String(value.clone()));
            }
        }
    }
    if !own_tags.is_empty() {
        insert_at(&mut imp.config, "mlflow.tags", Value::Object(own_tags));
    }
    let status = match run.status.as_str() {
        "FINISHED" => Some(RunStatus::Finished),
        "FAILED" => Some(RunStatus::Failed),
        "KILLED" => Some(RunStatus::Stopped),
        "RUNNING" | "SCHEDULED" => None,
        other => {
            imp.warnings.push(format!("run {}: unknown status '{other}', imported as not ended", run.id));
            None
        }
    };
    if let Some(status) = status {
        imp.end = Some(ImportedEnd { status, exit_code: None, reason: None });
        imp.ended_at = run.end_ms.map(ms);
    }
    let mut counts = Map::new();
    for (key, history) in run.metrics {
        let skip = read_before(&key);
        counts.insert(key.clone(), history.entries.into());
        let new: Vec<Point> = history.points.iter().filter(|(at, _)| *at >= skip).map(|(_, p)| *p).collect();
        if !new.is_empty() {
            imp.series.insert(key, new);
        }
    }
    for (at, warning) in run.warnings {
        if at.is_none_or(|(key, at)| at >= read_before(&key)) {
            imp.warnings.push(warning);
        }
    }
    let mut meta = crc32fast::Hasher::new();
    let names = [run.experiment.as_deref(), run.name.as_deref()].map(Option::unwrap_or_default);
    let pairs = run.params.iter().chain(&run.tags).flat_map(|(k, v)| [k.as_str(), v.as_str()]);
    for text in names.into_iter().chain(pairs) {
        meta.update(text.as_bytes());
        meta.update(b"\0");
    }
    imp.resume = json!({
        "metrics": counts,
        "status": run.status,
        "end": run.end_ms,
        "meta": format!("{:08x}", meta.finalize()),
    });
    imp
}

fn ms(t: i64) -> f64 {
    t as f64 / 1000.0
}

/// Params as config: values parsed as `--config` values are, dotted keys
/// nested where nothing stands in their way.
fn params_config(params: &[(String, String)]) -> Map<String, Value> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut config = Map::new();
    for (key, raw) in sorted {
        insert_at(&mut config, key, param_value(raw));
    }
    config
}

/// A param's value: JSON where it parses (`3e-4`, `[1, 2]`), Python's
/// spellings of booleans and None, else the string as logged.
fn param_value(raw: &str) -> Value {
    match raw {
        "True" => return Value::Bool(true),
        "False" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    match serde_json::from_str::<Value>(raw) {
        Ok(v) if depth(&v) < MAX_NESTING => v,
        _ => Value::String(raw.to_string()),
    }
}

/// Puts `value` at the dotted `key`, nesting its parts; where a part is
/// empty, already a value, or the nesting too deep, the key stays whole.
fn insert_at(config: &mut Map<String, Value>, key: &str, value: Value) {
    let parts: Vec<&str> = key.split('.').collect();
    let nestable = parts.len() > 1
        && !parts.iter().any(|p| p.is_empty())
        && parts.len() + depth(&value) <= MAX_NESTING
        && free_path(config, &parts);
    if !nestable {
        config.insert(key.to_string(), value);
        return;
    }
    let mut at = config;
    for part in &parts[..parts.len() - 1] {
        at = at
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .expect("free_path checked that every part is a group");
    }
    at.insert(parts[parts.len() - 1].to_string(), value);
}

/// Whether every part but the last is a group or absent, and the last absent.
fn free_path(config: &Map<String, Value>, parts: &[&str]) -> bool {
    let mut at = config;
    for (i, part) in parts.iter().enumerate() {
        match at.get(*part) {
            None => return true,
            Some(Value::Object(inner)) if i + 1 < parts.len() => at = inner,
            Some(_) => return false,
        }
    }
    false
}

/// How many arrays and objects nest in a value.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The status word of the file store's number (MLflow's `RunStatus` enum).
fn status_word(n: i64) -> String {
    match n {
        1 => "RUNNING".into(),
        2 => "SCHEDULED".into(),
        3 => "FINISHED".into(),
        4 => "FAILED".into(),
        5 => "KILLED".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn params_parse_as_config_values_and_dotted_keys_nest() {
        let c = params_config(&pairs(&[
            ("lr", "0.001"),
            ("layers", "[1, 2]"),
            ("flag", "True"),
            ("off", "false"),
            ("nothing", "None"),
            ("name", "adam"),
            ("opt/name", "sgd"),
            ("optim.beta", "0.9"),
            ("optim.eps", "1e-8"),
            ("version", "03"),
        ]));
        assert_eq!(
            Value::Object(c),
            json!({
                "lr": 0.001, "layers": [1, 2], "flag": true, "off": false, "nothing": null,
                "name": "adam", "opt/name": "sgd", "optim": {"beta": 0.9, "eps": 1e-8}, "version": "03",
            })
        );
    }

    #[test]
    fn a_dotted_key_that_another_key_stands_in_the_way_of_stays_whole() {
        let c = params_config(&pairs(&[("a", "1"), ("a.b", "2"), ("x..y", "3"), ("z.", "4")]));
        assert_eq!(Value::Object(c), json!({"a": 1, "a.b": 2, "x..y": 3, "z.": 4}));
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(param_value(&deep), Value::String(deep.clone()));
    }

    #[test]
    fn uris_and_paths_name_stores() {
        assert_eq!(sqlite_path("u", "///mlflow.db").unwrap(), PathBuf::from("mlflow.db"));
        assert_eq!(sqlite_path("u", "////tmp/a b.db?mode=ro").unwrap(), PathBuf::from("/tmp/a b.db"));
        assert_eq!(sqlite_path("u", "////tmp/a%20b.db").unwrap(), PathBuf::from("/tmp/a b.db"));
        assert!(sqlite_path("sqlite://", "//").unwrap_err().to_string().contains("in-memory"));
        assert!(sqlite_path("sqlite:x.db", "x.db").is_err());
        assert_eq!(file_uri_path("///tmp/mlruns"), PathBuf::from("/tmp/mlruns"));
        assert_eq!(file_uri_path("//localhost/tmp/ml%20runs"), PathBuf::from("/tmp/ml runs"));
        assert_eq!(file_uri_path("mlruns"), PathBuf::from("mlruns"));
        assert_eq!(percent_decoded("100%"), "100%");
        let e = locate("http://localhost:5000").unwrap_err();
        assert!(e.to_string().contains("not 'http' tracking URIs"), "{e}");
        let e = locate("/no/such/store").unwrap_err();
        assert_eq!(e.kind(), crate::error::Kind::NotFound);
        assert!(e.to_string().contains("/no/such/store: no such file or folder"), "{e}");
    }

    #[test]
    fn a_folder_or_file_that_is_no_store_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let e = locate(dir.path().to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("not an MLflow store: no mlruns/ folder"), "{e}");
        let file = dir.path().join("notes.txt");
        std::fs::write(&file, "hello").unwrap();
        let e = locate(file.to_str().unwrap()).unwrap_err();
        assert!(e.to_string().contains("neither an mlruns folder nor a SQLite database"), "{e}");
        std::fs::create_dir_all(dir.path().join("mlruns/0")).unwrap();
        let stores = locate(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(stores, vec![Store::Files(dir.path().join("mlruns").canonicalize().unwrap())]);
    }

    fn run_with_points(n: usize) -> StoredRun {
        let points = (0..n).map(|i| (i, Point { step: i as i64, time: i as f64, value: 1.0 })).collect();
        StoredRun {
            id: "r1".into(),
            status: "RUNNING".into(),
            metrics: [("loss".to_string(), History { points, entries: n })].into(),
            tags: pairs(&[("mlflow.runName", "base"), ("team", "vision"), ("mlflow.source.type", "LOCAL")]),
            ..StoredRun::default()
        }
    }

    #[test]
    fn a_run_maps_its_tags_and_a_reimport_gives_only_new_points() {
        let first = imported(run_with_points(3), "/s", &|_| None);
        assert_eq!(first.name.as_deref(), Some("base"));
        assert_eq!(first.end, None);
        assert_eq!(Value::Object(first.config.clone()), json!({"mlflow": {"tags": {"team": "vision"}}}));
        assert_eq!(first.series["loss"].len(), 3);
        let state = first.resume.clone();
        let again = imported(run_with_points(3), "/s", &|_| Some(state.clone()));
        assert_eq!(again.resume, first.resume);
        assert!(again.series.is_empty());
        let mut tagged = run_with_points(3);
        tagged.tags.push(("stage".into(), "final".into()));
        let tagged = imported(tagged, "/s", &|_| Some(state.clone()));
        assert_ne!(tagged.resume, first.resume, "a tag set since is something new");
        assert!(tagged.series.is_empty());
        let more = imported(run_with_points(5), "/s", &|_| Some(state.clone()));
        assert_ne!(more.resume, first.resume);
        assert_eq!(more.series["loss"].iter().map(|p| p.step).collect::<Vec<_>>(), vec![3, 4]);
    }

    #[test]
    fn statuses_map_to_ends() {
        for (word, status) in
            [("FINISHED", RunStatus::Finished), ("FAILED", RunStatus::Failed), ("KILLED", RunStatus::Stopped)]
        {
            let run = StoredRun { id: "r".into(), status: word.into(), end_ms: Some(2500), ..StoredRun::default() };
            let imp = imported(run, "/s", &|_| None);
            assert_eq!(imp.end.map(|e| e.status), Some(status));
            assert_eq!(imp.ended_at, Some(2.5));
        }
        let odd = imported(StoredRun { id: "r".into(), status: "7".into(), ..StoredRun::default() }, "/s", &|_| None);
        assert_eq!(odd.end, None);
        assert_eq!(odd.warnings, vec!["run r: unknown status '7', imported as not ended".to_string()]);
        assert_eq!(status_word(3), "FINISHED");
    }
}
