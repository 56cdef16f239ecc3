//! `labmate import`: history written by the real tools (tensorboardX,
//! mlflow, wandb offline) comes in as runs, once, and then only what is new.
//! The readers' own tests (crates/labmate/tests/import_*.rs) check every
//! value; these check what a user sees: the runs, their points, where they
//! came from, the summary, and re-imports.
//!
//! They need a Python with tensorboardX, mlflow and wandb, named by
//! `LABMATE_IMPORT_PYTHON` (`.ci/run` installs one); without it they fail in
//! CI (`LABMATE_CI`) and say so elsewhere.

use std::process::Command;

use serde_json::Value;

use crate::common::{TestLab, stderr, stdout};

const WRITERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../labmate/tests");

fn python() -> Option<String> {
    crate::common::needed(
        "LABMATE_IMPORT_PYTHON",
        "a Python with tensorboardX, tensorboard, mlflow and wandb",
        "an import test",
    )
}

/// Runs a writer script in the lab's folder, offline; its stdout as JSON.
fn write_with(lab: &TestLab, python: &str, args: &[&str]) -> Value {
    let mut cmd = Command::new(python);
    lab.env(&mut cmd);
    let out = cmd
        .args(args)
        .env("WANDB_MODE", "offline")
        .env("WANDB_SILENT", "true")
        .env("MLFLOW_DISABLE_TELEMETRY", "true")
        .env("DO_NOT_TRACK", "1")
        .output()
        .expect("the writer runs");
    assert!(out.status.success(), "writer {args:?} failed: {}", stderr(&out));
    let text = stdout(&out);
    let last = text.lines().rev().find(|l| l.starts_with('{')).unwrap_or("{}");
    serde_json::from_str(last).unwrap_or_else(|e| panic!("writer output is not JSON ({e}): {text}"))
}

fn import(lab: &TestLab, args: &[&str]) -> Value {
    let mut all = vec!["import"];
    all.extend_from_slice(args);
    all.push("--json");
    lab.json(&all)
}

fn run_named<'a>(runs: &'a Value, name: &str) -> &'a Value {
    runs.as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no run {name}: {runs:#}"))
}

#[test]
fn tensorboard_history_comes_in_once_then_only_what_is_new() {
    let Some(py) = python() else { return };
    let lab = TestLab::new();
    let wrote = write_with(&lab, &py, &[&format!("{WRITERS}/tensorboard_writer.py"), "runs", "logs"]);
    let first = import(&lab, &["tensorboard", "logs", "--tag", "old", "--tag", "tb"]);
    assert_eq!(first["created"], 5, "{first:#}");
    let runs = lab.json(&["runs", "--where", "tags contains \"old\"", "--json"]);
    assert_eq!(runs.as_array().unwrap().len(), 5);
    let run_a = run_named(&runs, "run_a");
    assert_eq!(run_a["status"], "finished");
    let id = run_a["id"].as_str().unwrap().to_string();
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.run_dir(&id).join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["origin"], "import");
    assert_eq!(spec["imported_from"]["tool"], "tensorboard");
    assert_eq!(spec["imported_from"]["id"], "run_a");
    // Every series of run_a, as the writer wrote it (steps; values compared as the format writes them).
    let series = wrote["run_a"]["series"].as_object().unwrap();
    let metrics = lab.json(&["metrics", &id, "--json", "--x", "step"]);
    for (key, points) in series {
        let got = metrics[key].as_array().unwrap_or_else(|| panic!("no {key} in {metrics:#}"));
        let want = points.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{key}");
        // The writer's points are [step, time, value].
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g["step"], w[0], "{key}");
            match (g["value"].as_f64(), w[2].as_f64()) {
                (Some(a), Some(b)) => assert_eq!(a, b, "{key}"),
                _ => assert_eq!(g["value"], w[2], "{key}"), // NaN, Infinity
            }
        }
    }
    // Again: nothing new, and it says so.
    let out = lab.run(&["import", "tensorboard", "logs"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("nothing new"), "{}", stdout(&out));
    // The run goes on elsewhere: a new event file in run_b.
    let grow = "import sys\nfrom tensorboardX import SummaryWriter\nw = SummaryWriter(sys.argv[1])\nfor s in range(100, 103):\n    w.add_scalar('late', s / 10, s)\nw.close()\n";
    lab.write("grow.py", grow);
    write_with(&lab, &py, &["grow.py", "logs/run_b"]);
    let again = import(&lab, &["tensorboard", "logs"]);
    assert_eq!(
        (again["updated"].as_u64(), again["unchanged"].as_u64(), again["points"].as_u64()),
        (Some(1), Some(4), Some(3))
    );
    let run_b = run_named(&lab.json(&["runs", "--json"]), "run_b").clone();
    let late = lab.json(&["metrics", run_b["id"].as_str().unwrap(), "late", "--json"]);
    let steps: Vec<i64> = late["late"].as_array().unwrap().iter().map(|p| p["step"].as_i64().unwrap()).collect();
    assert_eq!(steps, vec![100, 101, 102]);
}

#[test]
fn an_mlflow_store_comes_in_with_params_tags_and_statuses() {
    let Some(py) = python() else { return };
    let lab = TestLab::new();
    let db = lab.path().join("mlflow.db");
    let uri = format!("sqlite:///{}", db.display());
    let wrote = write_with(&lab, &py, &[&format!("{WRITERS}/import/write_mlflow.py"), &uri, "write"]);
    let first = import(&lab, &["mlflow", &uri]);
    assert!(first["created"].as_u64().unwrap() >= 2, "{first:#}");
    let runs = lab.json(&["runs", "--json"]);
    let good = run_named(&runs, "first");
    assert_eq!(good["status"], "finished");
    assert_eq!(good["project"], "exp-one");
    assert_eq!(good["config"]["lr"], 0.001);
    assert_eq!(good["git"]["commit"], "abc123");
    assert_eq!(good["metrics"]["loss"]["count"], 4);
    assert_eq!(good["metrics"]["val/acc"]["nan_count"], 1);
    assert_eq!(run_named(&runs, "bad")["status"], "failed");
    let loss = lab.json(&["metrics", good["id"].as_str().unwrap(), "loss", "--json", "--x", "step"]);
    let values: Vec<f64> = loss["loss"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect();
    assert_eq!(values, vec![1.0, 0.5, 1.0 / 3.0, 0.25]);
    assert!(wrote["runs"].as_array().is_some_and(|r| r.len() >= 2), "{wrote:#}");
    // The same store by its path: the same runs, nothing new.
    let again = import(&lab, &["mlflow", db.to_str().unwrap()]);
    assert_eq!(again["created"], 0, "{again:#}");
    assert_eq!(again["updated"], 0, "{again:#}");
}

#[test]
fn a_wandb_offline_run_comes_in_with_its_exit_code() {
    let Some(py) = python() else { return };
    let lab = TestLab::new();
    let wrote = write_with(&lab, &py, &[&format!("{WRITERS}/import/write_wandb.py"), "wb", "20"]);
    let first = import(&lab, &["wandb", "wb"]);
    assert_eq!(first["created"], 2, "{first:#}");
    let runs = lab.json(&["runs", "--json"]);
    let failed = run_named(&runs, "nice-run");
    assert_eq!((failed["status"].as_str(), failed["exit_code"].as_i64()), (Some("failed"), Some(3)));
    assert_eq!(failed["project"], "proj");
    assert_eq!(failed["group"], "g1");
    assert_eq!(failed["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(failed["config"]["lr"], 0.001);
    assert_eq!(failed["summary"]["best"], 0.5);
    assert_eq!(failed["metrics"]["loss"]["count"], 20);
    assert_eq!(failed["metrics"]["loss"]["nan_count"], 1);
    assert_eq!(failed["metrics"]["acc.top1"]["last"], 1.9);
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(lab.run_dir(failed["id"].as_str().unwrap()).join("run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec["imported_from"]["id"], wrote["failed"]);
    assert_eq!(run_named(&runs, "ok-run")["status"], "finished");
    let again = import(&lab, &["wandb", "wb"]);
    assert_eq!(again["unchanged"], 2, "{again:#}");
}

#[test]
fn what_cannot_be_imported_is_named() {
    let lab = TestLab::new();
    for (args, says) in [
        (vec!["import", "tensorboard", "missing"], "no such file or folder"),
        (vec!["import", "wandb", "."], "no wandb runs here"),
        (vec!["import", "mlflow", "."], "MLflow"),
        (vec!["import", "tensorboard", "logs", "--tag", " "], "--tag must not be empty"),
    ] {
        std::fs::create_dir_all(lab.path().join("logs")).unwrap();
        let out = lab.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{args:?}: {}", stderr(&out));
    }
    lab.write("junk/events.out.tfevents.1", &"x".repeat(4000));
    let out = lab.run(&["import", "tensorboard", "junk"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("not a TFRecord file"), "{}", stderr(&out));
}
