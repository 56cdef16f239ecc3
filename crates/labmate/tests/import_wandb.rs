//! wandb offline runs written by wandb itself (`tests/import/write_wandb.py`),
//! read by `labmate::import::wandb` and checked value by value against what
//! the script logged; then copies cut short and corrupted, and a re-import.
//!
//! It needs a Python with `wandb`, named by `LABMATE_IMPORT_PYTHON`.
//! Without it the test fails in CI (`LABMATE_CI` set) and says it did not
//! run anywhere else.

mod common;

use common::{by_id, last_json_line};

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use labmate::import::{Imported, wandb};
use labmate::record::{Point, RunStatus};
use serde_json::{Value, json};

/// Rows the failed run logs: enough for its file to span blocks.
const ROWS: usize = 1500;

fn python() -> Option<String> {
    common::import_python("a wandb import test")
}

/// Runs the writer script with everything wandb keeps under `home`,
/// offline and silent; what it says it wrote.
fn write_runs(python: &str, home: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/import/write_wandb.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(home)
        .arg(ROWS.to_string())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("WANDB_MODE", "offline")
        .env("WANDB_SILENT", "true")
        .env("WANDB_DIR", home)
        .env("WANDB_CONFIG_DIR", home.join(".config/wandb"))
        .env("WANDB_CACHE_DIR", home.join(".cache/wandb"))
        .env("WANDB_DATA_DIR", home.join(".local/share/wandb"))
        .current_dir(home)
        .output()
        .unwrap();
    last_json_line(out)
}

fn run_folder(wandb_dir: &Path, id: &str) -> PathBuf {
    let name = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
    fs::read_dir(wandb_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| name(p).starts_with("offline-run-") && name(p).ends_with(&format!("-{id}")))
        .unwrap()
}

/// A copy of a run folder whose `.wandb` file `edit` changes.
fn edited_copy(dir: &Path, to: &Path, id: &str, edit: impl Fn(&mut Vec<u8>)) -> PathBuf {
    let copy = to.join(dir.file_name().unwrap());
    fs::create_dir_all(copy.join("files")).unwrap();
    let name = format!("run-{id}.wandb");
    let mut bytes = fs::read(dir.join(&name)).unwrap();
    edit(&mut bytes);
    fs::write(copy.join(&name), bytes).unwrap();
    copy
}

fn same(a: &Point, b: &Point) -> bool {
    a.step == b.step && a.time == b.time && a.value.to_bits() == b.value.to_bits()
}

/// Whether each series of `part` is the start of the same series in `whole`.
fn starts(part: &Imported, whole: &Imported) -> bool {
    part.series.iter().all(|(key, points)| {
        let all = &whole.series[key];
        points.len() <= all.len() && points.iter().zip(all).all(|(a, b)| same(a, b))
    })
}

#[test]
fn offline_runs_are_read_value_by_value_and_damage_is_said() {
    let Some(python) = python() else { return };
    let home = tempfile::tempdir().unwrap();
    let wrote = write_runs(&python, home.path());
    let (began, ended) = (wrote["began"].as_f64().unwrap(), wrote["ended"].as_f64().unwrap());
    let during = |t: f64| t >= began - 1.0 && t <= ended + 1.0;
    let failed_id = wrote["failed"].as_str().unwrap();
    let ok_id = wrote["ok"].as_str().unwrap();

    let runs = wandb::read(home.path(), &|_| None).unwrap();
    assert_eq!(runs.len(), 2, "{:?}", runs.iter().map(|r| &r.source_id).collect::<Vec<_>>());
    let wandb_dir = home.path().canonicalize().unwrap().join("wandb");
    assert!(runs.iter().all(|r| r.tool == "wandb" && r.source == wandb_dir.display().to_string()));

    let failed = by_id(&runs, failed_id);
    assert_eq!(failed.name.as_deref(), Some("nice-run"));
    assert_eq!(failed.project.as_deref(), Some("proj"));
    assert_eq!((failed.group.as_deref(), failed.job_type.as_deref()), (Some("g1"), Some("train")));
    assert_eq!((failed.tags.clone(), failed.notes.as_deref()), (vec!["a".to_string(), "b".into()], Some("some notes")));
    assert_eq!(
        Value::Object(failed.config.clone()),
        json!({"lr": 0.001, "opt": {"name": "adam", "beta": 0.9}, "layers": [1, 2], "batch": 32})
    );
    let last = ROWS - 1;
    // wandb writes the float 7.0 as `7`.
    assert_eq!(
        Value::Object(failed.summary.clone()),
        json!({"loss": 1.0 / ROWS as f64, "acc": {"top1": last as f64 / 10.0}, "word": "hi", "late": 7, "best": 0.5})
    );
    let end = failed.end.as_ref().unwrap();
    assert_eq!((&end.status, end.exit_code), (&RunStatus::Failed, Some(3)));
    assert!(during(failed.started_at.unwrap()) && during(failed.ended_at.unwrap()));
    assert!(failed.started_at <= failed.ended_at);
    assert!(failed.command.iter().any(|c| c.ends_with("write_wandb.py")), "{:?}", failed.command);

    let loss = &failed.series["loss"];
    assert_eq!(loss.len(), ROWS);
    for (i, p) in loss.iter().enumerate() {
        assert_eq!(p.step, i as i64);
        if i == 2 {
            assert!(p.value.is_nan());
        } else {
            assert_eq!(p.value, 1.0 / (i + 1) as f64);
        }
        assert!(during(p.time), "{p:?}");
    }
    assert!(loss.windows(2).all(|w| w[0].time <= w[1].time));
    let top1: Vec<(i64, f64)> = failed.series["acc.top1"].iter().map(|p| (p.step, p.value)).collect();
    assert_eq!(top1, (0..ROWS).map(|i| (i as i64, i as f64 / 10.0)).collect::<Vec<_>>());
    assert_eq!(
        failed.series["late"].iter().map(|p| (p.step, p.value)).collect::<Vec<_>>(),
        vec![(ROWS as i64 + 10, 7.0)]
    );
    let others: Vec<&String> =
        failed.series.keys().filter(|k| !["loss", "acc.top1", "late"].contains(&k.as_str())).collect();
    assert!(others.iter().all(|k| k.starts_with("sys/")), "{others:?}");
    assert!(
        failed.series.iter().filter(|(k, _)| k.starts_with("sys/")).all(|(_, ps)| ps.iter().all(|p| during(p.time)))
    );
    assert_eq!(failed.skipped, [("text".to_string(), [("word".to_string(), ROWS as u64)].into())].into());
    assert!(failed.warnings.is_empty(), "{:?}", failed.warnings);

    let ok = by_id(&runs, ok_id);
    assert_eq!(ok.name.as_deref(), Some("ok-run"));
    let end = ok.end.as_ref().unwrap();
    assert_eq!((&end.status, end.exit_code), (&RunStatus::Finished, Some(0)));
    let x: Vec<(i64, f64)> = ok.series["x"].iter().map(|p| (p.step, p.value)).collect();
    assert_eq!(x, vec![(0, 1.0), (1, 2.0)]);

    // Read again with the state the first read left: nothing new.
    let previous = |id: &str| runs.iter().find(|r| r.source_id == id).map(|r| r.resume.clone());
    for again in wandb::read(&wandb_dir, &previous).unwrap() {
        assert_eq!(again.resume, previous(&again.source_id).unwrap());
        assert!(again.series.is_empty() && again.skipped.is_empty(), "{:?}", again.series.keys());
        assert_eq!(again.config, by_id(&runs, &again.source_id).config);
    }

    let dir = run_folder(&wandb_dir, failed_id);
    let damaged = tempfile::tempdir().unwrap();

    // Cut by one byte: all but the last record, and a warning.
    let cut = edited_copy(&dir, &damaged.path().join("cut"), failed_id, |b| b.truncate(b.len() - 1));
    let r = wandb::read(&cut, &|_| None).unwrap().remove(0);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains(&format!("run-{failed_id}.wandb: ends inside the record at byte")),
        "{}",
        r.warnings[0]
    );
    assert!(starts(&r, failed));
    assert_eq!(r.series["loss"].len(), ROWS);

    // Cut in half: a start of every series.
    let half = edited_copy(&dir, &damaged.path().join("half"), failed_id, |b| b.truncate(b.len() / 2));
    let r = wandb::read(&half, &|_| None).unwrap().remove(0);
    assert!(starts(&r, failed));
    assert!(r.series["loss"].len() < ROWS && !r.series["loss"].is_empty());
    assert_eq!(r.end, None);

    // A CRC mismatch in the first block: said with the file and the byte,
    // and what follows the block kept.
    let bad = edited_copy(&dir, &damaged.path().join("crc"), failed_id, |b| b[8] ^= 0x55);
    let r = wandb::read(&bad, &|_| None).unwrap().remove(0);
    assert_eq!(
        r.warnings,
        vec![format!(
            "{}: CRC mismatch at byte 7; read on from byte 32768",
            bad.canonicalize().unwrap().join(format!("run-{failed_id}.wandb")).display()
        )]
    );
    let kept = &r.series["loss"];
    assert!(!kept.is_empty() && kept[0].step > 0, "{kept:?}");
    let tail = &failed.series["loss"][kept[0].step as usize..];
    assert!(kept.len() == tail.len() && kept.iter().zip(tail).all(|(a, b)| same(a, b)));
    assert_eq!(r.end.as_ref().map(|e| e.exit_code), Some(Some(3)));
}
