//! The wandb stand-in: scripts in the shapes of nanoGPT, transformers'
//! WandbCallback, Lightning's WandbLogger and Accelerate's tracker run
//! unchanged under `labmate run --wandb`, and what they logged reads back
//! through `runs --json` and `metrics --json`. No PYTHONPATH is set: the
//! stand-in is the one the binary carries.
//!
//! The test that a real wandb loses to the stand-in needs a Python with
//! wandb installed, named by `LABMATE_WANDB_PYTHON` (`.ci/run` installs
//! one); without it that test fails in CI (`LABMATE_CI`) and says so
//! elsewhere.

use serde_json::Value;

use crate::common::{TestLab, stderr, stdout};

const NANOGPT: &str = include_str!("standin/nanogpt.py");
const HF_TRAINER: &str = include_str!("standin/hf_trainer.py");
const LIGHTNING: &str = include_str!("standin/lightning.py");
const ACCELERATE: &str = include_str!("standin/accelerate.py");

/// Runs `script` under `labmate run --wandb` (plus `extra` flags before
/// `--`) and returns the run's `show --json`.
fn run_script(lab: &TestLab, file: &str, script: &str, extra: &[&str], env: &[(&str, &str)]) -> Value {
    lab.write(file, script);
    let mut args = vec!["run", "--wandb"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", "python3", file]);
    let mut cmd = lab.cmd(&args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let id = TestLab::started_id(&out);
    let run = lab.show(&id);
    assert!(!stderr(&out).contains("Traceback"), "{}", stderr(&out));
    run
}

/// A key's points as (step, value).
fn points(lab: &TestLab, id: &str, key: &str) -> Vec<(i64, f64)> {
    let m = lab.json(&["metrics", id, key, "--json", "--x", "step"]);
    m[key].as_array().unwrap().iter().map(|p| (p["step"].as_i64().unwrap(), p["value"].as_f64().unwrap())).collect()
}

#[test]
fn a_nanogpt_shaped_script_is_recorded_without_finish() {
    let lab = TestLab::new();
    let run = run_script(&lab, "train.py", NANOGPT, &["--config", "learning_rate=1e-3"], &[]);
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["status"], "finished", "{run:#}");
    assert_eq!(run["exit_code"], 0);
    assert_eq!(run["name"], "gpt2-124M");
    assert_eq!(run["project"], "owt");
    // labmate run's --config wins over init's, which joins it.
    assert_eq!(run["config"]["learning_rate"], 1e-3);
    assert_eq!(run["config"]["n_layer"], 12);
    // 0-d tensors became their .item(); one row per log call from step 0.
    let train = points(&lab, id, "train/loss");
    assert_eq!(train.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert!((train[4].1 - 3.6).abs() < 1e-12, "{train:?}");
    assert_eq!(points(&lab, id, "iter").last().unwrap().1, 40.0);
    // The summary the exit hook recorded: last values.
    assert!((run["summary"]["val/loss"].as_f64().unwrap() - 3.8).abs() < 1e-12, "{run:#}");
    // Queryable by project.
    let found = lab.json(&["runs", "--where", "project == \"owt\"", "--json"]);
    assert_eq!(found.as_array().unwrap().len(), 1);
}

#[test]
fn an_hf_trainer_shaped_script_gets_its_step_metric_as_x_axis() {
    let lab = TestLab::new();
    let run = run_script(&lab, "hf.py", HF_TRAINER, &["--tag", "sweep-3"], &[("WANDB_PROJECT", "glue")]);
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["status"], "finished", "{run:#}");
    assert_eq!(run["project"], "glue");
    assert_eq!(run["group"], "bert-base");
    assert_eq!(run["name"], "bert-finetune");
    assert_eq!(run["tags"], serde_json::json!(["sweep-3"]));
    assert_eq!(run["config"]["learning_rate"], 5e-5);
    assert_eq!(run["config"]["model/num_parameters"], 110_000_000);
    assert_eq!(run["summary"]["train_loss"], 0.05);
    let defs = run["metric_defs"].as_array().unwrap();
    assert!(defs.iter().any(|d| d["metric"] == "*" && d["step_metric"] == "train/global_step"), "{defs:?}");
    // Each row is the next _step; train/global_step is the x axis metrics shows.
    assert_eq!(points(&lab, id, "train/loss").iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2]);
    let m = lab.json(&["metrics", id, "train/loss", "--json"]);
    let xs: Vec<f64> = m["train/loss"].as_array().unwrap().iter().map(|p| p["x"].as_f64().unwrap()).collect();
    assert_eq!(xs, vec![10.0, 20.0, 30.0]);
    assert_eq!(points(&lab, id, "eval/loss"), vec![(3, 0.25)]);
    let grouped = lab.json(&["runs", "--group-by", "group", "--json"]);
    assert_eq!(grouped[0]["key"]["group"], "bert-base", "{grouped:#}");
}

#[test]
fn a_lightning_shaped_script_passes_its_isinstance_check_and_keeps_its_exit_code() {
    let lab = TestLab::new();
    let run = run_script(&lab, "lit.py", LIGHTNING, &["--name", "from-the-cli", "--config", "batch=128"], &[]);
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(run["exit_code"], 3);
    // labmate run's --name wins over init's; config and tags join.
    assert_eq!(run["name"], "from-the-cli");
    assert_eq!(run["config"]["batch"], 128);
    assert_eq!(run["config"]["lr"], 0.01);
    assert_eq!(run["config"]["hidden"], 64);
    assert_eq!(run["tags"], serde_json::json!(["lightning"]));
    assert_eq!(run["project"], "lightning_logs");
    let loss = points(&lab, id, "train_loss");
    assert_eq!(loss.len(), 4);
    let m = lab.json(&["metrics", id, "train_loss", "--json"]);
    let xs: Vec<f64> = m["train_loss"].as_array().unwrap().iter().map(|p| p["x"].as_f64().unwrap()).collect();
    assert_eq!(xs, vec![0.0, 25.0, 50.0, 75.0]);
    assert_eq!(points(&lab, id, "val_loss"), vec![(4, 0.3)]);
}

#[test]
fn an_accelerate_shaped_script_logs_at_its_own_steps() {
    let lab = TestLab::new();
    // A 1x1 PNG for wandb.Image(path).
    std::fs::write(
        lab.path().join("pixel.png"),
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x00\x00\x00\x00:~\x9bU\0\0\0\nIDATx\x9cc`\0\0\0\x02\0\x01H\xaf\xa4q\0\0\0\0IEND\xaeB`\x82",
    )
    .unwrap();
    let run = run_script(&lab, "acc.py", ACCELERATE, &[], &[]);
    let id = run["id"].as_str().unwrap();
    assert_eq!(run["status"], "finished", "{run:#}");
    assert_eq!(run["project"], "accelerate-demo");
    assert_eq!(run["notes"], "from accelerate");
    assert_eq!(run["tags"], serde_json::json!(["accel"]));
    assert_eq!(run["config"]["model"], "mlp");
    let loss = points(&lab, id, "loss");
    assert_eq!(loss.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    assert_eq!(loss[4].1, 0.2);
    // The image is a file in the run folder; the string is named once, not a metric.
    assert!(lab.run_dir(id).join("media/samples/5.png").is_file());
    let events = lab.json(&["events", id, "--json"]);
    let text = events.to_string();
    assert!(text.contains("phase"), "{events:#}");
    assert!(text.contains("media/samples"), "{events:#}");
}

#[test]
fn a_nan_logged_through_wandb_stops_the_run() {
    let lab = TestLab::new();
    lab.write(
        "nan.py",
        "import time, wandb\nwandb.init(project='p')\nfor i in range(501):\n    wandb.log({'loss': float('nan') if i == 500 else 1.0 / (i + 1)})\nwandb.run._lm.flush()\ntime.sleep(600)\n",
    );
    let out = lab.run(&["run", "--wandb", "--detach", "--", "python3", "nan.py"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    lab.run(&["wait", &id, "--timeout", "60s"]);
    let run = lab.wait_for(&id, 10, |r| r["status"] != "running");
    assert_eq!(run["status"], "stopped", "{run:#}");
    assert!(run["reason"].as_str().unwrap().starts_with("nonfinite: loss is NaN at step 500"), "{run:#}");
}

#[test]
fn without_the_flag_the_script_has_no_stand_in() {
    let lab = TestLab::new();
    lab.write(
        "which.py",
        "try:\n    import wandb\n    print(wandb.__file__)\nexcept ImportError:\n    print('absent')\n",
    );
    let out = lab.run(&["run", "--", "python3", "which.py"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = TestLab::started_id(&out);
    let logged = std::fs::read_to_string(lab.run_dir(&id).join("output.log")).unwrap_or_default();
    assert!(!logged.contains("_wandb_path"), "{logged}");
}

#[test]
fn the_stand_in_wins_over_a_real_wandb_in_the_same_python() {
    let Some(python) = crate::common::needed("LABMATE_WANDB_PYTHON", "a Python with wandb", "the real-wandb test")
    else {
        return;
    };
    let lab = TestLab::new();
    lab.write("which.py", "import wandb\nprint('WANDB', wandb.__file__, wandb.__version__)\n");
    let with = lab.run(&["run", "--wandb", "--", &python, "which.py"]);
    assert!(with.status.success(), "{}", stderr(&with));
    let without = lab.run(&["run", "--", &python, "which.py"]);
    assert!(without.status.success(), "{}", stderr(&without));
    let line = |out: &std::process::Output| {
        let id = TestLab::started_id(out);
        let log = std::fs::read_to_string(lab.run_dir(&id).join("output.log")).unwrap();
        log.lines().find(|l| l.starts_with("WANDB ")).unwrap_or_default().to_string()
    };
    let (stand_in, real) = (line(&with), line(&without));
    assert!(stand_in.contains("/labmate/wandb/__init__.py"), "{stand_in}");
    assert!(real.contains("site-packages/wandb/__init__.py"), "{real}");
    assert!(!real.contains("/labmate/wandb/") && !real.contains("_wandb_path"), "{real}");
}
