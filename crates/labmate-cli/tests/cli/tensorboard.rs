//! `labmate run --tensorboard LOGDIR`: a script that logs only to
//! TensorBoard (tensorboardX) gets live metrics, config from its hparams,
//! and babysitting. Event files already under LOGDIR stay out of the run.
//!
//! The scripts need a Python with tensorboardX, named by
//! `LABMATE_IMPORT_PYTHON`. Without it the tests fail in CI (`LABMATE_CI`
//! set) and say they did not run anywhere else.

use crate::common::{TestLab, stderr, stdout};
use serde_json::Value;

fn python() -> Option<String> {
    crate::common::needed("LABMATE_IMPORT_PYTHON", "a Python with tensorboardX", "a run --tensorboard test")
}

/// Writes loss and acc for steps 0..9 into the folder it is given, then
/// (with a second argument) waits for the file `go` before steps 10..19.
const TRAIN: &str = r#"import os, sys, time
from tensorboardX import SummaryWriter
from tensorboardX.summary import hparams

w = SummaryWriter(sys.argv[1], flush_secs=1)
_, start, _ = hparams({"lr": 0.01, "opt": "sgd"}, {})
w.file_writer.add_summary(start)

def steps(r):
    for step in r:
        w.add_scalar("loss", 1.0 / (step + 1), step)
        w.add_scalar("acc", step / 20, step)
        time.sleep(0.02)
    w.flush()

steps(range(10))
if len(sys.argv) > 2:
    for _ in range(1200):
        if os.path.exists("go"):
            break
        time.sleep(0.05)
steps(range(10, 20))
w.close()
"#;

fn f32_of(x: f64) -> f64 {
    f64::from(x as f32)
}

#[test]
fn scalars_written_to_tensorboard_are_the_runs_metrics_live() {
    let Some(python) = python() else { return };
    let lab = TestLab::new();
    lab.write("train.py", TRAIN);
    // An earlier run's files under the same LOGDIR stay out of the new run.
    let earlier = std::process::Command::new(&python).args(["train.py", "tb/earlier"]).current_dir(lab.path()).output();
    assert!(earlier.unwrap().status.success());

    let id = lab.detach(&["--tensorboard", "tb", "--", &python, "train.py", "tb/this", "wait"]);
    // The script waits for `go` after step 9: the points arrive while it runs.
    let out = lab.run(&["wait", &id, "--until", "step >= 9 and loss < 0.11", "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));
    lab.write("go", "");
    let out = lab.run(&["wait", &id, "--timeout", "60s"]);
    assert_eq!(out.status.code(), Some(0), "{}{}", stdout(&out), stderr(&out));

    let series = lab.json(&["metrics", &id, "--json"]);
    for (key, value) in [("loss", (|s: i64| 1.0 / (s + 1) as f64) as fn(i64) -> f64), ("acc", |s| s as f64 / 20.0)] {
        let points = series[key].as_array().unwrap_or_else(|| panic!("{key} in {series:#}"));
        let steps: Vec<i64> = points.iter().map(|p| p["step"].as_i64().unwrap()).collect();
        assert_eq!(steps, (0..20).collect::<Vec<_>>(), "{key}: only this run's points, each once");
        for p in points {
            assert_eq!(p["value"].as_f64().unwrap(), f32_of(value(p["step"].as_i64().unwrap())), "{key}: {p}");
        }
    }
    let run = lab.show(&id);
    assert_eq!(run["status"], "finished");
    assert_eq!(run["config"]["lr"], 0.01);
    assert_eq!(run["config"]["opt"], "sgd");
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.run_dir(&id).join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["tensorboard"], "tb");
}

#[test]
fn a_nan_written_to_tensorboard_stops_the_run() {
    let Some(python) = python() else { return };
    let lab = TestLab::new();
    lab.write(
        "nan.py",
        "import sys, time\nfrom tensorboardX import SummaryWriter\nw = SummaryWriter(sys.argv[1], flush_secs=1)\n\
         for i in range(21):\n    w.add_scalar('loss', float('nan') if i == 20 else 1.0 / (i + 1), i)\n\
         w.flush()\ntime.sleep(120)\n",
    );
    let id = lab.detach(&["--tensorboard", "logs", "--", &python, "nan.py", "logs/run"]);
    lab.run(&["wait", &id, "--timeout", "90s"]);
    let run = lab.wait_for(&id, 10, |r| r["status"] != "running");
    assert_eq!(run["status"], "stopped", "{run:#}");
    assert!(run["reason"].as_str().unwrap().starts_with("nonfinite: loss is NaN at step 20"), "{run:#}");
    assert_eq!(run["metrics"]["loss"]["last_step"], 20);
}

#[test]
fn tensorboard_is_a_launch_option() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--tensorboard", " ", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--tensorboard must name a folder"), "{}", stderr(&out));
    assert!(stdout(&lab.run(&["run", "--help"])).contains("--tensorboard <LOGDIR>"));

    // A LOGDIR that never appears is no trouble; without the flag run.json says nothing of it.
    let out = lab.run(&["run", "--tensorboard", "nowhere", "--", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = TestLab::started_id(&out);
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.run_dir(&id).join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["tensorboard"], "nowhere");
    let out = lab.run(&["run", "--", "true"]);
    let id = TestLab::started_id(&out);
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.run_dir(&id).join("run.json")).unwrap()).unwrap();
    assert!(spec.get("tensorboard").is_none(), "{spec:#}");
}
