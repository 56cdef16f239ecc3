//! MLflow's file store: `mlruns/<experiment id>/meta.yaml` for each
//! experiment, and beside it a folder per run holding `meta.yaml`,
//! `params/<key>` and `tags/<key>` (the value as the file's text) and
//! `metrics/<key>` (a line `timestamp value [step]` per point, the
//! timestamp in milliseconds); a key with `/` is a path of subfolders.

use std::fs;
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

use super::{History, StoredRun, status_word};
use crate::error::{Error, Result};
use crate::record::Point;

/// Far more than any `meta.yaml`, little enough to read whole.
const MAX_META_BYTES: u64 = 1 << 20;

/// How deep keys with `/` go: far more than any real one.
const MAX_KEY_PARTS: usize = 64;

fn bad(path: &Path, why: impl std::fmt::Display) -> Error {
    Error::invalid("mlflow store", format!("{}: {why}", path.display()))
}

/// Whether `dir` is laid out as an `mlruns` folder: MLflow's `.trash`, or
/// a folder with a `meta.yaml`.
pub(super) fn looks_like_mlruns(dir: &Path) -> bool {
    dir.join(".trash").is_dir() || subfolders(dir).is_ok_and(|dirs| dirs.iter().any(|d| d.join("meta.yaml").is_file()))
}

/// Every run of every experiment that is not deleted, experiments in the
/// order of their ids, runs in the order they started.
pub(super) fn read(mlruns: &Path) -> Result<Vec<StoredRun>> {
    let mut out = Vec::new();
    let mut experiments: Vec<(PathBuf, Yaml)> = Vec::new();
    for dir in subfolders(mlruns)? {
        let meta = dir.join("meta.yaml");
        if meta.is_file() {
            experiments.push((dir, yaml_file(&meta)?));
        }
    }
    experiments
        .sort_by_key(|(dir, meta)| (meta["experiment_id"].as_str().and_then(|id| id.parse::<i64>().ok()), dir.clone()));
    for (dir, meta) in experiments {
        if meta["lifecycle_stage"].as_str() == Some("deleted") {
            continue;
        }
        let name = text(&meta["name"]);
        let mut runs = Vec::new();
        for run_dir in subfolders(&dir)? {
            let meta_path = run_dir.join("meta.yaml");
            if !meta_path.is_file() {
                continue;
            }
            let meta = yaml_file(&meta_path)?;
            // The experiment's other folders (logged models, traces) are not runs.
            let Some(id) = text(&meta["run_id"]).or_else(|| text(&meta["run_uuid"])) else { continue };
            if meta["lifecycle_stage"].as_str() == Some("deleted") {
                continue;
            }
            runs.push(read_run(&run_dir, id, name.clone(), &meta)?);
        }
        runs.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
        out.extend(runs);
    }
    Ok(out)
}

fn read_run(dir: &Path, id: String, experiment: Option<String>, meta: &Yaml) -> Result<StoredRun> {
    let status = match &meta["status"] {
        Yaml::Integer(n) => status_word(*n),
        Yaml::String(s) => s.to_ascii_uppercase(),
        _ => return Err(bad(&dir.join("meta.yaml"), "no run status")),
    };
    let mut run = StoredRun {
        id,
        experiment,
        name: text(&meta["run_name"]),
        status,
        start_ms: meta["start_time"].as_i64(),
        end_ms: meta["end_time"].as_i64(),
        user: text(&meta["user_id"]),
        params: values(&dir.join("params"))?,
        tags: values(&dir.join("tags"))?,
        ..StoredRun::default()
    };
    for (key, path) in files(&dir.join("metrics"))? {
        let data = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let (history, warnings) = metric_lines(&String::from_utf8_lossy(&data), &path);
        run.warnings.extend(warnings.into_iter().map(|(at, w)| (Some((key.clone(), at)), w)));
        run.metrics.insert(key, history);
    }
    Ok(run)
}

/// A metric file's points: each line ended by a newline (one still being
/// written waits for the next import), a malformed one said and skipped.
fn metric_lines(text: &str, path: &Path) -> (History, Vec<(usize, String)>) {
    let mut history = History::default();
    let mut warnings = Vec::new();
    let Some(end) = text.rfind('\n') else { return (history, warnings) };
    for (at, line) in text[..end].split('\n').enumerate() {
        history.entries = at + 1;
        if line.trim().is_empty() {
            continue;
        }
        match metric_line(line) {
            Some(point) => history.points.push((at, point)),
            None => warnings.push((
                at,
                format!(
                    "{}:{}: expected 'timestamp value [step]', found '{}'",
                    path.display(),
                    at + 1,
                    crate::text::clip(line, 80)
                ),
            )),
        }
    }
    (history, warnings)
}

/// `timestamp value [step]`: milliseconds, a number (`nan`, `inf` too),
/// an integer step (0 when left out, as by MLflow before steps).
fn metric_line(line: &str) -> Option<Point> {
    let mut fields = line.split_whitespace();
    let time = fields.next()?.parse::<i64>().ok()?;
    let value = fields.next()?.parse::<f64>().ok()?;
    let step = match fields.next() {
        Some(s) => s.parse::<i64>().ok()?,
        None => 0,
    };
    if fields.next().is_some() {
        return None;
    }
    Some(Point { step, time: time as f64 / 1000.0, value })
}

/// The key and text of each file under `dir` (params, tags).
fn values(dir: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (key, path) in files(dir)? {
        let data = fs::read(&path).map_err(|e| Error::io(&path, e))?;
        out.push((key, String::from_utf8_lossy(&data).into_owned()));
    }
    Ok(out)
}

/// Every file under `dir` with its path below it as a key (`val/acc`),
/// sorted by key; none when `dir` is not there.
fn files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, "", 1, &mut out)?;
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, prefix: &str, parts: usize, out: &mut Vec<(String, PathBuf)>) -> Result<()> {
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let key = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        if kind.is_dir() {
            if parts >= MAX_KEY_PARTS {
                return Err(bad(&entry.path(), format!("keys nest deeper than {MAX_KEY_PARTS} folders")));
            }
            walk(&entry.path(), &key, parts + 1, out)?;
        } else if kind.is_file() {
            out.push((key, entry.path()));
        }
    }
    Ok(())
}

/// The folders in `dir` whose names do not start with `.` (`.trash`
/// holds deleted experiments), sorted.
fn subfolders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().map_err(|e| Error::io(entry.path(), e))?.is_dir() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// A `meta.yaml`: one YAML mapping.
fn yaml_file(path: &Path) -> Result<Yaml> {
    let size = fs::metadata(path).map_err(|e| Error::io(path, e))?.len();
    if size > MAX_META_BYTES {
        return Err(bad(path, format!("{size} bytes, more than a meta.yaml holds ({MAX_META_BYTES} at most)")));
    }
    let data = fs::read(path).map_err(|e| Error::io(path, e))?;
    let text = std::str::from_utf8(&data).map_err(|_| bad(path, "not UTF-8 text"))?;
    crate::limits::check_yaml_nesting(text).map_err(|why| bad(path, why))?;
    let docs = YamlLoader::load_from_str(text).map_err(|e| bad(path, format!("not valid YAML: {e}")))?;
    match docs.into_iter().next() {
        Some(doc @ Yaml::Hash(_)) => Ok(doc),
        _ => Err(bad(path, "not a YAML mapping")),
    }
}

/// A scalar as text: MLflow writes ids as quoted strings or numbers, and
/// an empty value as `''` or `null`.
fn text(y: &Yaml) -> Option<String> {
    match y {
        Yaml::String(s) if !s.is_empty() => Some(s.clone()),
        Yaml::Integer(n) => Some(n.to_string()),
        Yaml::Real(s) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_give_points_and_say_what_is_malformed() {
        let path = Path::new("m/loss");
        let (h, w) = metric_lines("1000 0.5 0\n2000 nan 10\nbad line\n3000 -inf\n\n4000 1", path);
        let points: Vec<(usize, i64, f64)> = h.points.iter().map(|(at, p)| (*at, p.step, p.time)).collect();
        assert_eq!(points, vec![(0, 0, 1.0), (1, 10, 2.0), (3, 0, 3.0)]);
        assert!(h.points[1].1.value.is_nan());
        assert_eq!(h.points[2].1.value, f64::NEG_INFINITY);
        // The last line has no newline yet: not read, not counted.
        assert_eq!(h.entries, 5);
        assert_eq!(w, vec![(2, "m/loss:3: expected 'timestamp value [step]', found 'bad line'".to_string())]);
        assert_eq!(metric_lines("", path).0.entries, 0);
        assert_eq!(metric_lines("1000 1", path).0.entries, 0);
        assert_eq!(metric_lines("1 2 3 4\n", path).1.len(), 1);
    }

    #[test]
    fn meta_yaml_is_read_as_a_mapping_or_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let meta = dir.path().join("meta.yaml");
        fs::write(&meta, "run_id: abc\nrun_name: first\nstatus: 3\nstart_time: 1500\nend_time: null\nuser_id: ''\n")
            .unwrap();
        let y = yaml_file(&meta).unwrap();
        assert_eq!(text(&y["run_id"]).as_deref(), Some("abc"));
        assert_eq!(y["status"].as_i64(), Some(3));
        assert_eq!(y["end_time"].as_i64(), None);
        assert_eq!(text(&y["user_id"]), None);
        fs::write(&meta, "name: [unclosed\n").unwrap();
        assert!(yaml_file(&meta).unwrap_err().to_string().contains("meta.yaml: not valid YAML"));
        fs::write(&meta, format!("{}x\n", "- ".repeat(100_000))).unwrap();
        assert!(yaml_file(&meta).unwrap_err().to_string().ends_with("meta.yaml: nests deeper than 64 levels"));
        fs::write(&meta, "- a list\n").unwrap();
        assert!(yaml_file(&meta).unwrap_err().to_string().ends_with("meta.yaml: not a YAML mapping"));
    }

    #[test]
    fn keys_with_slashes_are_subfolders() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("p/opt")).unwrap();
        fs::write(dir.path().join("p/lr"), "0.1").unwrap();
        fs::write(dir.path().join("p/opt/name"), "adam").unwrap();
        let got = values(&dir.path().join("p")).unwrap();
        assert_eq!(got, vec![("lr".into(), "0.1".into()), ("opt/name".into(), "adam".into())]);
        assert!(values(&dir.path().join("absent")).unwrap().is_empty());
    }
}
