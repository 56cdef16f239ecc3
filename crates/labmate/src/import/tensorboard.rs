//! TensorBoard event files as runs. Every folder under the path given that
//! holds `*tfevents*` files is one run; its files (a restarted writer starts
//! a new one) are read in name order, each from where the last import of
//! the run stopped. Scalars (`simple_value`, and the scalars plugin's
//! tensors) are kept; the hparams plugin's session start becomes config;
//! histograms, images, audio, text and other plugins' data are counted.
//!
//! - `tfrecord`: the framing and its checks.
//! - `event`: the protobuf messages and what one event holds.
//! - [`live`]: following the files a supervised command writes.

mod event;
pub mod live;
mod tfrecord;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Imported, Previous};
use crate::error::{Error, Result};
use crate::record::Point;
use event::{Decoder, Item};
use tfrecord::Stop;

/// The part of a file name that makes it an event file.
const EVENT_FILE: &str = "tfevents";

/// What an import of a run leaves for the next one: where each file was
/// read to, and what the run said before then (each tag's plugin, its
/// first and last event's times, its hparams), so that a later import
/// reading only the new records still knows them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    files: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    plugins: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    started_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ended_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    config: Map<String, Value>,
}

/// The runs under `path` (a folder, or one event file), with the points
/// each holds after its `previous` resume state.
pub fn read(path: &Path, previous: Previous) -> Result<Vec<Imported>> {
    let source = std::fs::canonicalize(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::not_found("path", format!("{}: no such file or folder", path.display())),
        _ => Error::io(path, e),
    })?;
    let runs = find_runs(&source)?;
    if runs.is_empty() {
        return Err(Error::not_found(
            "event files",
            format!("{}: no TensorBoard event files (*{EVENT_FILE}*) in it or below", path.display()),
        ));
    }
    let folder_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    let mut out = Vec::with_capacity(runs.len());
    for (id, run) in runs {
        let state = match previous(&id) {
            Some(v) => serde_json::from_value::<State>(v).map_err(|e| {
                Error::environment(
                    "import state",
                    format!("the state of the last import of {} ({id}) is unreadable: {e}", source.display()),
                )
            })?,
            None => State::default(),
        };
        let name = if id == "." {
            folder_name(&run.dir).or_else(|| Some(run.dir.display().to_string()))
        } else {
            Some(id.clone())
        };
        let shown = |file: &str| if id == "." { file.to_string() } else { format!("{id}/{file}") };
        let mut imported = Imported {
            tool: "tensorboard",
            source: source.display().to_string(),
            source_id: id.clone(),
            name,
            ..Default::default()
        };
        read_run(&run, state, &mut imported, shown)?;
        out.push(imported);
    }
    Ok(out)
}

/// A folder holding event files: one run.
struct RunFiles {
    dir: PathBuf,
    /// File names in name order.
    files: Vec<(String, PathBuf)>,
}

/// The runs under `root`, by their folder relative to it (`.` for itself).
fn find_runs(root: &Path) -> Result<BTreeMap<String, RunFiles>> {
    let mut runs = BTreeMap::new();
    if !root.is_dir() {
        let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if !name.contains(EVENT_FILE) {
            return Err(Error::invalid(
                "event file",
                format!("{}: not a TensorBoard event file (its name has no '{EVENT_FILE}')", root.display()),
            ));
        }
        let dir = root.parent().map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        runs.insert(".".to_string(), RunFiles { dir, files: vec![(name, root.to_path_buf())] });
        return Ok(runs);
    }
    for file in event_files(root)? {
        let dir = file.parent().expect("a file under the root").to_path_buf();
        let rel = relative(&dir, root);
        let name = file.file_name().expect("a file name").to_string_lossy().into_owned();
        runs.entry(rel).or_insert_with(|| RunFiles { dir, files: Vec::new() }).files.push((name, file));
    }
    Ok(runs)
}

/// `dir` relative to `root`, with `/` between folders; `.` for the root itself.
fn relative(dir: &Path, root: &Path) -> String {
    let parts: Vec<_> = dir.strip_prefix(root).unwrap_or(dir).iter().map(|p| p.to_string_lossy()).collect();
    if parts.is_empty() { ".".into() } else { parts.join("/") }
}

/// Every event file under `root`, folders and files in name order. Links
/// to files are followed, links to folders not (they could loop).
fn event_files(root: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut entries: Vec<_> =
        std::fs::read_dir(root).and_then(|d| d.collect::<std::io::Result<Vec<_>>>()).map_err(|e| Error::io(root, e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else { continue };
        if kind.is_dir() {
            found.extend(event_files(&path)?);
        } else if entry.file_name().to_string_lossy().contains(EVENT_FILE) && path.is_file() {
            found.push(path);
        }
    }
    Ok(found)
}

/// Reads a run's files after `state` into `imported`, leaving the new state.
fn read_run(run: &RunFiles, state: State, imported: &mut Imported, shown: impl Fn(&str) -> String) -> Result<()> {
    let State { mut files, plugins, mut started_at, mut ended_at, mut config } = state;
    let mut decoder = Decoder::with_plugins(plugins.into_iter().collect());
    for (name, path) in &run.files {
        let from = files.get(name).copied().unwrap_or(0);
        let file = shown(name);
        let mut f = File::open(path).map_err(|e| Error::io(path, e))?;
        let len = f.metadata().map_err(|e| Error::io(path, e))?.len();
        if len < from {
            imported.warnings.push(format!(
                "{file}: {len} bytes long, shorter than the {from} read by the last import; not read again"
            ));
            continue;
        }
        f.seek(SeekFrom::Start(from)).map_err(|e| Error::io(path, e))?;
        let mut times = Times { started_at: &mut started_at, ended_at: &mut ended_at };
        let (next, stop) = read_file(f, from, &file, &mut decoder, imported, &mut config, &mut times)
            .map_err(|e| Error::io(path, e))?;
        match stop {
            Stop::End => {}
            Stop::Torn { at } => imported.warnings.push(format!(
                "{file}: the file ends inside the record at byte {at} (still being written, or cut); \
                 read up to it, the next import reads it once whole"
            )),
            Stop::BadLength { at: 0 } if from == 0 => {
                return Err(Error::invalid(
                    "event file",
                    format!(
                        "{}: not a TFRecord file (its first record's length fails its CRC-32C check)",
                        path.display()
                    ),
                ));
            }
            Stop::BadLength { at } => imported.warnings.push(format!(
                "{file}: the record at byte {at} has a bad length checksum (CRC-32C); the rest of the file is not read"
            )),
        }
        files.insert(name.clone(), next);
    }
    imported.started_at = started_at;
    imported.ended_at = ended_at;
    imported.config = config.clone();
    let plugins: BTreeMap<String, String> = decoder.plugins().iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    let state = State { files, plugins, started_at, ended_at, config };
    imported.resume = serde_json::to_value(&state).expect("a state serialises");
    Ok(())
}

/// The run's first and last event times so far.
struct Times<'a> {
    started_at: &'a mut Option<f64>,
    ended_at: &'a mut Option<f64>,
}

impl Times<'_> {
    fn see(&mut self, t: f64) {
        if t.is_finite() {
            *self.started_at = Some(self.started_at.map_or(t, |s| s.min(t)));
            *self.ended_at = Some(self.ended_at.map_or(t, |e| e.max(t)));
        }
    }
}

/// Reads one file from `from` into the run; returns where to read next.
fn read_file(
    src: File,
    from: u64,
    file: &str,
    decoder: &mut Decoder,
    run: &mut Imported,
    config: &mut Map<String, Value>,
    times: &mut Times,
) -> std::io::Result<(u64, Stop)> {
    let Imported { series, skipped, warnings, .. } = run;
    let mut unreadable: BTreeMap<String, usize> = BTreeMap::new();
    let result = tfrecord::scan(src, from, |at, data| {
        let Some(data) = data else {
            warnings.push(format!("{file}: the record at byte {at} has a bad data checksum (CRC-32C); skipped"));
            return;
        };
        let decoded = decoder.event(data, |stamp, item| match item {
            Item::Scalar { tag, value } => {
                let points = match series.get_mut(tag) {
                    Some(points) => points,
                    None => series.entry(tag.to_string()).or_default(),
                };
                points.push(Point { step: stamp.step, time: stamp.wall_time, value });
            }
            Item::Config(c) => config.extend(c),
            Item::Skipped { kind, tag } => {
                let by_tag = match skipped.get_mut(kind.as_ref()) {
                    Some(by_tag) => by_tag,
                    None => skipped.entry(kind.into_owned()).or_default(),
                };
                match by_tag.get_mut(tag) {
                    Some(n) => *n += 1,
                    None => {
                        by_tag.insert(tag.to_string(), 1);
                    }
                }
            }
            Item::Unreadable { tag, why } => {
                let n = unreadable.entry(tag.to_string()).or_default();
                *n += 1;
                if *n == 1 {
                    warnings.push(format!("{file}: {tag} at byte {at}: {why}; skipped"));
                }
            }
        });
        match decoded {
            Ok(stamp) => times.see(stamp.wall_time),
            Err(e) => {
                warnings.push(format!("{file}: the record at byte {at} is not a TensorBoard event ({e}); skipped"))
            }
        }
    });
    for (tag, n) in unreadable.into_iter().filter(|(_, n)| *n > 1) {
        warnings.push(format!("{file}: {tag}: {n} values in all could not be read"));
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use event::{scalar_event, two_value_event};
    use tfrecord::framed;

    #[test]
    fn what_is_not_an_event_or_not_a_scalar_is_said_once_per_tag() {
        let tmp = tempfile::tempdir().unwrap();
        let mut bytes = framed(&scalar_event(5.0, 0, "loss", 0.5));
        let garbage_at = bytes.len();
        bytes.extend(framed(&[0x0a, 0x05, 0x01]));
        for step in 1..4 {
            bytes.extend(framed(&two_value_event(5.0 + step as f64, step, "pair")));
        }
        bytes.extend(framed(&scalar_event(9.0, 4, "loss", 0.25)));
        let file = tmp.path().join("events.out.tfevents.1.host");
        std::fs::write(&file, &bytes).unwrap();

        // One event file named as the path: its folder is the run.
        let runs = read(&file, &|_| None).unwrap();
        let run = &runs[0];
        assert_eq!(
            (run.source_id.as_str(), run.source.as_str()),
            (".", file.canonicalize().unwrap().to_str().unwrap())
        );
        let loss: Vec<_> = run.series["loss"].iter().map(|p| (p.step, p.time, p.value)).collect();
        assert_eq!(loss, [(0, 5.0, 0.5), (4, 9.0, 0.25)]);
        assert_eq!((run.started_at, run.ended_at), (Some(5.0), Some(9.0)));
        let name = "events.out.tfevents.1.host";
        assert_eq!(run.warnings.len(), 3, "{:?}", run.warnings);
        assert!(
            run.warnings[0]
                .starts_with(&format!("{name}: the record at byte {garbage_at} is not a TensorBoard event ("))
        );
        assert!(run.warnings[1].starts_with(&format!("{name}: pair at byte ")), "{}", run.warnings[1]);
        assert!(run.warnings[1].ends_with("a scalar tensor with 2 values; skipped"), "{}", run.warnings[1]);
        assert_eq!(run.warnings[2], format!("{name}: pair: 3 values in all could not be read"));
        assert_eq!(run.resume["files"][name], bytes.len());
        assert_eq!(run.resume["plugins"]["pair"], "scalars");
    }

    #[test]
    fn a_state_that_is_not_one_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("events.out.tfevents.1.host"), framed(&scalar_event(1.0, 0, "a", 1.0))).unwrap();
        let e = read(tmp.path(), &|_| Some(serde_json::json!({"files": {"x": "far"}}))).unwrap_err();
        assert_eq!(e.kind(), crate::Kind::Environment);
        assert!(e.to_string().contains("the state of the last import of"), "{e}");
        // A file the state does not know is read whole.
        let runs =
            read(tmp.path(), &|_| Some(serde_json::json!({"files": {"events.out.tfevents.0.old": 99}}))).unwrap();
        assert_eq!(runs[0].series["a"].len(), 1);
        assert_eq!(runs[0].resume["files"]["events.out.tfevents.0.old"], 99, "a file gone keeps its place");
    }
}
