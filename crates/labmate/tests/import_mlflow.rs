//! MLflow stores written by MLflow itself (`tests/import/write_mlflow.py`:
//! a file store and a SQLite one), read by `labmate::import::mlflow` and
//! checked value by value against what the script says it wrote; then
//! read again after more was logged.
//!
//! It needs a Python with `mlflow`, named by `LABMATE_IMPORT_PYTHON`.
//! Without it the tests fail in CI (`LABMATE_CI` set) and say they did not
//! run anywhere else.

mod common;

use common::{by_id, last_json_line};

use std::path::{Path, PathBuf};
use std::process::Command;

use labmate::import::{Imported, mlflow};
use labmate::record::{Point, RunStatus};
use serde_json::{Value, json};

const T0: f64 = 1_700_000_000_000.0;

fn python() -> Option<String> {
    common::import_python("an MLflow import test")
}

/// Runs the writer script (`write`, or `more`: the live run logs more and
/// ends) against `uri`, with its HOME in `home` and no network; what it
/// says it wrote.
fn write_store(python: &str, home: &Path, uri: &str, mode: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/write_mlflow.py");
    let out = Command::new(python)
        .arg(&script)
        .args([uri, mode])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("USER", "ann")
        .env("LOGNAME", "ann")
        .env("MLFLOW_TRACKING_URI", uri)
        .env("MLFLOW_ALLOW_FILE_STORE", "true")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "true")
        .current_dir(home)
        .output()
        .unwrap();
    last_json_line(out)
}

fn point(step: i64, ms: f64, value: f64) -> Point {
    Point { step, time: (T0 + ms) / 1000.0, value }
}

/// Points compared with NaN equal to NaN.
fn same(a: &[Point], b: &[Point]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.step == y.step && x.time == y.time && (x.value == y.value || x.value.is_nan() && y.value.is_nan())
        })
}

/// Checks every run the script wrote against what `read` gave, then logs
/// more and checks that a re-import gives only that.
fn check_store(python: &str, home: &Path, uri: &str, names: &[String], source: &str) {
    let wrote = write_store(python, home, uri, "write");
    let reads: Vec<Vec<Imported>> = names.iter().map(|n| mlflow::read(n, &|_| None).unwrap()).collect();
    for (name, runs) in names.iter().zip(&reads) {
        assert_eq!(runs.len(), 4, "{name}: {runs:#?}");
        assert!(runs.iter().all(|r| r.source == source && r.tool == "mlflow"), "{name}: {source}");
        let ids = |runs: &[Imported]| runs.iter().map(|r| (r.source_id.clone(), r.resume.clone())).collect::<Vec<_>>();
        assert_eq!(ids(runs), ids(&reads[0]), "{name} reads as {}", names[0]);
    }
    let runs = &reads[0];
    let info = |i: usize| &wrote["runs"][i];
    let ms_of = |v: &Value| v.as_f64().map(|t| t / 1000.0);

    let first = by_id(runs, info(0)["id"].as_str().unwrap());
    assert_eq!(first.name.as_deref(), Some("first"));
    assert_eq!(first.project.as_deref(), Some("exp-one"));
    assert_eq!(first.end.as_ref().map(|e| &e.status), Some(&RunStatus::Finished));
    assert_eq!(first.started_at, ms_of(&info(0)["start"]));
    assert_eq!(first.ended_at, ms_of(&info(0)["end"]));
    assert_eq!(first.git_commit.as_deref(), Some("abc123"));
    assert_eq!(first.user.as_deref(), info(0)["tags"]["mlflow.user"].as_str());
    assert_eq!(first.command, vec![info(0)["tags"]["mlflow.source.name"].as_str().unwrap().to_string()]);
    assert_eq!(first.notes.as_deref(), Some("a note"));
    assert_eq!(
        Value::Object(first.config.clone()),
        json!({
            "lr": 0.001, "opt/name": "adam", "optim": {"beta": 0.9}, "n": 3, "flag": true, "note": "hello world",
            "mlflow": {"tags": {"team": "vision"}},
        })
    );
    assert_eq!(first.series.keys().collect::<Vec<_>>(), vec!["loss", "val/acc"]);
    let loss: Vec<Point> = (0..4).map(|s| point(s, s as f64, 1.0 / (s + 1) as f64)).collect();
    assert!(same(&first.series["loss"], &loss), "{:?}", first.series["loss"]);
    let acc: Vec<Point> =
        (0..4).map(|s| point(s * 10, 100.0 + s as f64, if s == 1 { f64::NAN } else { s as f64 / 10.0 })).collect();
    assert!(same(&first.series["val/acc"], &acc), "{:?}", first.series["val/acc"]);
    assert!(first.warnings.is_empty() && first.skipped.is_empty());

    let bad = by_id(runs, info(1)["id"].as_str().unwrap());
    assert_eq!((bad.name.as_deref(), bad.end.as_ref().map(|e| &e.status)), (Some("bad"), Some(&RunStatus::Failed)));
    assert!(same(&bad.series["x"], &[point(7, 200.0, 2.5)]));
    let stopped = by_id(runs, info(2)["id"].as_str().unwrap());
    assert_eq!(stopped.end.as_ref().map(|e| &e.status), Some(&RunStatus::Stopped));
    assert_eq!(stopped.ended_at, ms_of(&info(2)["end"]));
    assert!(same(&stopped.series["y"], &[point(1, 300.0, -1.0)]));
    let live = by_id(runs, info(3)["id"].as_str().unwrap());
    assert_eq!((live.name.as_deref(), &live.end, live.ended_at), (Some("live"), &None, None));
    assert!(same(&live.series["y"], &[point(0, 400.0, 1.0)]));

    // Unchanged: the same state, nothing new.
    let previous = |id: &str| runs.iter().find(|r| r.source_id == id).map(|r| r.resume.clone());
    for again in mlflow::read(&names[0], &previous).unwrap() {
        assert_eq!(again.resume, previous(&again.source_id).unwrap());
        assert!(again.series.is_empty(), "{:?}", again.series);
        assert_eq!(again.config, by_id(runs, &again.source_id).config);
    }

    // The live run logs two more points and ends: only they come back.
    let more = write_store(python, home, uri, "more");
    let after = mlflow::read(&names[0], &previous).unwrap();
    for run in &after {
        let changed = run.source_id == live.source_id;
        assert_eq!(run.resume != previous(&run.source_id).unwrap(), changed, "{}", run.source_id);
    }
    let live = by_id(&after, &live.source_id);
    assert_eq!(live.end.as_ref().map(|e| &e.status), Some(&RunStatus::Finished));
    assert_eq!(live.ended_at, ms_of(&more["runs"][0]["end"]));
    assert!(same(&live.series["y"], &[point(1, 401.0, 2.0)]), "{:?}", live.series);
    assert!(same(&live.series["z"], &[point(1, 402.0, 3.0)]));
}

#[test]
fn a_file_store_is_read_value_by_value_however_it_is_named() {
    let Some(python) = python() else { return };
    let home = tempfile::tempdir().unwrap();
    let mlruns = home.path().join("project/mlruns");
    let uri = format!("file://{}", mlruns.display());
    let canonical = home.path().canonicalize().unwrap().join("project/mlruns");
    let names = [uri.clone(), mlruns.display().to_string(), home.path().join("project").display().to_string()];
    check_store(&python, home.path(), &uri, &names, &canonical.display().to_string());
}

#[test]
fn a_sqlite_store_is_read_value_by_value_and_an_unknown_schema_is_refused() {
    let Some(python) = python() else { return };
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join("project/mlflow.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let uri = format!("sqlite:///{}", db.display());
    let canonical: PathBuf = home.path().canonicalize().unwrap().join("project/mlflow.db");
    let names = [uri.clone(), db.display().to_string(), home.path().join("project").display().to_string()];
    check_store(&python, home.path(), &uri, &names, &format!("sqlite:///{}", canonical.display()));

    let newer = home.path().join("newer.db");
    std::fs::copy(&db, &newer).unwrap();
    let conn = rusqlite::Connection::open(&newer).unwrap();
    conn.execute("UPDATE alembic_version SET version_num = 'ffff00001111'", []).unwrap();
    drop(conn);
    let e = mlflow::read(newer.to_str().unwrap(), &|_| None).unwrap_err().to_string();
    assert!(e.contains("newer.db: unknown MLflow schema version 'ffff00001111'"), "{e}");
    assert!(e.contains("97727af70f4d (MLflow 2.0) to dc11669786a5 (MLflow 3.17)"), "{e}");
}
