//! The TensorBoard reader against event files the real writers made
//! (`tests/tensorboard_writer.py`: tensorboardX, and tensorboard's own
//! writer and tensor protos): every run value by value, torn and corrupt
//! copies, a file that grows between two reads.
//!
//! The writers need a Python with tensorboardX, tensorboard and numpy,
//! named by `LABMATE_IMPORT_PYTHON`. Without it the tests fail in CI
//! (`LABMATE_CI` set) and say they did not run anywhere else.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use labmate::import::Imported;
use labmate::import::tensorboard::read;
use serde_json::{Map, Value};

const WRITER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tensorboard_writer.py");

fn python() -> Option<String> {
    common::import_python("a TensorBoard import test")
}

/// Runs the writer's `runs` mode into `out`; what it wrote, by run.
fn write_runs(python: &str, out: &Path) -> Map<String, Value> {
    let done = Command::new(python).args([WRITER, "runs", out.to_str().unwrap()]).output().expect("python runs");
    assert!(done.status.success(), "the writer failed: {}", String::from_utf8_lossy(&done.stderr));
    serde_json::from_slice(&done.stdout).expect("the writer prints JSON")
}

fn read_fresh(path: &Path) -> Vec<Imported> {
    read(path, &|_| None).expect("the event files read")
}

fn number(v: &Value) -> f64 {
    match v {
        Value::String(s) => labmate::record::parse_non_finite(s).expect("a non-finite name"),
        v => v.as_f64().expect("a number"),
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// The run's series as `[step, time, value]` triples, against the writer's.
fn assert_series(run: &Imported, want: &Map<String, Value>) {
    let keys: Vec<_> = run.series.keys().cloned().collect();
    let mut want_keys: Vec<_> = want.keys().cloned().collect();
    want_keys.sort();
    assert_eq!(keys, want_keys, "the keys of {}", run.source_id);
    for (key, points) in &run.series {
        let want = want[key].as_array().unwrap();
        assert_eq!(points.len(), want.len(), "{}: {key}", run.source_id);
        for (p, w) in points.iter().zip(want) {
            let w = w.as_array().unwrap();
            assert_eq!(p.step, w[0].as_i64().unwrap(), "{}: {key}", run.source_id);
            assert_eq!(p.time, w[1].as_f64().unwrap(), "{}: {key} at step {}", run.source_id, p.step);
            assert!(
                same(p.value, number(&w[2])),
                "{}: {key} at step {}: {} vs {}",
                run.source_id,
                p.step,
                p.value,
                w[2]
            );
        }
    }
}

#[test]
fn every_run_is_read_value_by_value() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("logs");
    let want = write_runs(&python, &out);
    let runs = read_fresh(&out);
    let ids: Vec<_> = runs.iter().map(|r| r.source_id.as_str()).collect();
    assert_eq!(ids, ["nested/deep/run_c", "run_a", "run_a/pair/x", "run_a/pair/y", "run_b"]);
    let source = std::fs::canonicalize(&out).unwrap().display().to_string();
    for run in &runs {
        let w = want[&run.source_id].as_object().unwrap();
        assert_eq!(run.tool, "tensorboard");
        assert_eq!(run.source, source);
        assert_eq!(run.name.as_deref(), Some(run.source_id.as_str()));
        assert_series(run, w["series"].as_object().unwrap());
        assert_eq!(Value::Object(run.config.clone()), w["config"], "{}", run.source_id);
        assert_eq!(serde_json::to_value(&run.skipped).unwrap(), w["skipped"], "{}", run.source_id);
        assert_eq!(run.started_at, w["started_at"].as_f64(), "{}", run.source_id);
        assert_eq!(run.ended_at, w["ended_at"].as_f64(), "{}", run.source_id);
        assert_eq!(run.end, None);
        assert!(run.warnings.is_empty(), "{}: {:?}", run.source_id, run.warnings);
        let files: Vec<_> = run.resume["files"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(Value::from(files), w["files"], "{}", run.source_id);
    }
    let run_a = &runs[1];
    let loss = &run_a.series["loss"];
    assert!(loss[10].value.is_nan() && loss[20].value == f64::INFINITY && loss[30].value == f64::NEG_INFINITY);
    assert_eq!(run_a.resume["plugins"]["new/float"], "scalars");

    // A folder with event files right in it is one run, named after it.
    let one = read_fresh(&out.join("run_b"));
    assert_eq!((one.len(), one[0].source_id.as_str(), one[0].name.as_deref()), (1, ".", Some("run_b")));
    assert_eq!(one[0].series["loss"].len(), 20, "both files of a restarted run, in order");
    assert!(one[0].series["loss"].windows(2).all(|w| w[0].step < w[1].step));

    // Read again with the state each run left: nothing new, the same state.
    let states: std::collections::HashMap<String, Value> =
        runs.iter().map(|r| (r.source_id.clone(), r.resume.clone())).collect();
    let again = read(&out, &|id| states.get(id).cloned()).unwrap();
    for (before, after) in runs.iter().zip(&again) {
        assert!(after.series.is_empty() && after.skipped.is_empty(), "{}", after.source_id);
        assert_eq!(after.resume, before.resume);
        assert_eq!(
            (after.config.clone(), after.started_at, after.ended_at),
            (before.config.clone(), before.started_at, before.ended_at)
        );
    }
}

/// Each record's offset and data length in an event file.
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        out.push((at, len));
        at += 12 + len + 4;
    }
    out
}

/// A copy of one event file alone in a fresh folder, changed by `change`.
fn copy_changed(file: &Path, into: &Path, change: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    let mut bytes = std::fs::read(file).unwrap();
    change(&mut bytes);
    let copy = into.join(file.file_name().unwrap());
    std::fs::write(&copy, bytes).unwrap();
    copy
}

fn event_file(dir: &Path) -> PathBuf {
    let mut files: Vec<_> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect();
    files.sort();
    files.remove(0)
}

#[test]
fn torn_and_corrupt_files_keep_what_they_can() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("logs");
    let want = write_runs(&python, &out);
    let original = event_file(&out.join("run_b"));
    let bytes = std::fs::read(&original).unwrap();
    let recs = records(&bytes);
    // The file_version event, then loss at steps 0..9.
    assert_eq!(recs.len(), 11);
    let name = original.file_name().unwrap().to_string_lossy().into_owned();
    let all_loss = want["run_b"]["series"]["loss"].as_array().unwrap()[..10].to_vec();
    let steps = |run: &Imported| run.series["loss"].iter().map(|p| p.step).collect::<Vec<_>>();

    // Torn: the file ends inside its last record; the rest is kept and the
    // next read, once the record is whole, gets it alone.
    let (last_at, _) = recs[10];
    let torn_dir = tmp.path().join("torn");
    let torn = copy_changed(&original, &torn_dir, |b| b.truncate(b.len() - 7));
    let runs = read_fresh(&torn_dir);
    assert_eq!(steps(&runs[0]), (0..9).collect::<Vec<_>>());
    assert_eq!(runs[0].warnings.len(), 1, "{:?}", runs[0].warnings);
    let warning = &runs[0].warnings[0];
    assert!(
        warning.starts_with(&name) && warning.contains(&format!("ends inside the record at byte {last_at}")),
        "{warning}"
    );
    assert_eq!(runs[0].resume["files"][&name], last_at as u64);
    std::fs::write(&torn, &bytes).unwrap();
    let state = runs[0].resume.clone();
    let rest = read(&torn_dir, &|_| Some(state.clone())).unwrap();
    assert_eq!(steps(&rest[0]), [9]);
    assert_eq!(rest[0].series["loss"][0].value, number(&all_loss[9][2]));
    assert!(rest[0].warnings.is_empty());
    assert_eq!(rest[0].resume["files"][&name], bytes.len() as u64);

    // A bad data checksum loses that record alone, and says where.
    let (at, len) = recs[4];
    let bad_data_dir = tmp.path().join("bad-data");
    copy_changed(&original, &bad_data_dir, |b| b[at + 12 + len / 2] ^= 0x20);
    let runs = read_fresh(&bad_data_dir);
    assert_eq!(steps(&runs[0]), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
    assert_eq!(
        runs[0].warnings,
        [format!("{name}: the record at byte {at} has a bad data checksum (CRC-32C); skipped")]
    );
    assert_eq!(runs[0].resume["files"][&name], bytes.len() as u64);

    // A bad length checksum: nothing after it can be found, so reading stops there.
    let bad_length_dir = tmp.path().join("bad-length");
    copy_changed(&original, &bad_length_dir, |b| b[at + 2] ^= 0x01);
    let runs = read_fresh(&bad_length_dir);
    assert_eq!(steps(&runs[0]), [0, 1, 2]);
    assert_eq!(
        runs[0].warnings,
        [format!(
            "{name}: the record at byte {at} has a bad length checksum (CRC-32C); the rest of the file is not read"
        )]
    );
    assert_eq!(runs[0].resume["files"][&name], at as u64);
}

#[test]
fn what_cannot_be_imported_is_said() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nowhere");
    let e = read(&missing, &|_| None).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: no such file or folder", missing.display()));
    assert_eq!(e.kind(), labmate::Kind::NotFound);

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(empty.join("sub")).unwrap();
    std::fs::write(empty.join("sub/notes.txt"), "x").unwrap();
    let e = read(&empty, &|_| None).unwrap_err();
    assert_eq!(e.to_string(), format!("{}: no TensorBoard event files (*tfevents*) in it or below", empty.display()));

    let text = tmp.path().join("text");
    std::fs::create_dir_all(&text).unwrap();
    let bad = text.join("events.out.tfevents.1.host");
    std::fs::write(&bad, "this is a text file, not event records\n").unwrap();
    let e = read(&text, &|_| None).unwrap_err();
    let bad = std::fs::canonicalize(&bad).unwrap();
    assert_eq!(
        e.to_string(),
        format!("{}: not a TFRecord file (its first record's length fails its CRC-32C check)", bad.display())
    );
    assert_eq!(e.kind(), labmate::Kind::Invalid);

    let e = read(&empty.join("sub/notes.txt"), &|_| None).unwrap_err();
    assert!(e.to_string().ends_with("notes.txt: not a TensorBoard event file (its name has no 'tfevents')"), "{e}");

    // An event file still empty (its writer just opened it) holds a run with nothing yet.
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir_all(&fresh).unwrap();
    std::fs::write(fresh.join("events.out.tfevents.2.host"), "").unwrap();
    let runs = read(&fresh, &|_| None).unwrap();
    assert!(runs[0].series.is_empty() && runs[0].warnings.is_empty());
    assert_eq!(runs[0].resume["files"]["events.out.tfevents.2.host"], 0);
}

#[test]
fn a_growing_file_is_read_from_where_the_last_read_stopped() {
    let Some(python) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("growing");
    let mut writer = Command::new(&python)
        .args([WRITER, "grow", out.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python grow");
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    let mut part = || -> Value { serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap() };

    let first = part();
    let runs = read_fresh(&out);
    assert_eq!(runs.len(), 1);
    assert_series(&runs[0], first["series"].as_object().unwrap());
    let state = runs[0].resume.clone();

    writeln!(writer.stdin.as_mut().unwrap()).unwrap();
    let second = part();
    assert!(writer.wait().unwrap().success());
    let grown = read(&out, &|id| (id == ".").then(|| state.clone())).unwrap();
    assert_series(&grown[0], second["series"].as_object().unwrap());
    assert_eq!(grown[0].config.get("lr"), Some(&Value::from(0.5)));
    assert_eq!(grown[0].started_at, runs[0].started_at, "the run's start stays the first read's");
    assert!(grown[0].ended_at > runs[0].ended_at);
    assert_ne!(grown[0].resume, state);

    let state = grown[0].resume.clone();
    let same = read(&out, &|_| Some(state.clone())).unwrap();
    assert!(same[0].series.is_empty());
    assert_eq!(same[0].resume, state, "nothing new: the state does not change");
    assert_eq!(same[0].config, grown[0].config, "the run's hparams are still known");
}
