//! What the wandb stand-in needs of labmate: a run's project, group, job
//! type and notes (`meta`) and its metric definitions (`define`), read,
//! stored and queried; each key's step metric as its default x axis; and
//! `labmate run --wandb`, which gives the command the stand-in.

use crate::common::{TestLab, stderr, stdout};
use serde_json::{Value, json};

/// A finished run named `name` whose client stream holds `records`.
fn run_with_records(lab: &TestLab, name: &str, records: &str) -> String {
    lab.write(&format!("{name}.jsonl"), records);
    let append = format!("cat {name}.jsonl >> \"$LABMATE_RUN_DIR/client-7.jsonl\"");
    let out = lab.run(&["run", "--name", name, "--", "sh", "-c", &append]);
    assert!(out.status.success(), "{}", stderr(&out));
    TestLab::started_id(&out)
}

const ABOUT_A: &str = r#"{"t":"meta","time":1,"project":"scratch","group":"g1","notes":"first try"}
{"t":"meta","time":2,"project":"owt","job_type":"train","notes":""}
{"t":"define","time":2,"metric":"train/*","step_metric":"train/global_step","summary":"min"}
{"t":"define","time":2,"metric":"val_loss","goal":"minimize","summary":"min,max","hidden":false}
{"t":"define","time":3,"metric":"train/*","step_metric":"train/tokens","step_sync":true}
{"t":"define","time":3,"goal":"minimize"}
{"t":"log","step":0,"time":3,"data":{"train/loss":1.0,"train/tokens":0}}
"#;

fn names(runs: &Value) -> Vec<&str> {
    runs.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect()
}

#[test]
fn project_group_job_type_notes_and_definitions_are_on_the_run_and_queried() {
    let lab = TestLab::new();
    let a = run_with_records(&lab, "a", ABOUT_A);
    run_with_records(&lab, "b", "{\"t\":\"meta\",\"time\":1,\"project\":\"owt\",\"group\":\"g2\"}\n");
    run_with_records(&lab, "c", "");

    let run = lab.show(&a);
    assert_eq!(
        [&run["project"], &run["group"], &run["job_type"], &run["notes"]],
        [&json!("owt"), &json!("g1"), &json!("train"), &Value::Null],
        "later meta records win, an empty one clears: {run:#}"
    );
    assert_eq!(
        run["metric_defs"],
        json!([
            {"metric": "val_loss", "step_metric": null, "summary": "min,max", "goal": "minimize", "hidden": false, "step_sync": null},
            {"metric": "train/*", "step_metric": "train/tokens", "summary": null, "goal": null, "hidden": null, "step_sync": true},
        ]),
        "a metric defined again replaces its definition, at the end"
    );
    let warnings: Vec<&str> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "warning")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("client-7.jsonl") && warnings[0].ends_with("define record without a metric"));
    assert_eq!(run["metrics"]["train/loss"]["count"], 1, "nothing after the bad line is lost");

    let c = &lab.json(&["runs", "--json", "--where", "name == \"c\""])[0];
    assert_eq!([&c["project"], &c["group"], &c["metric_defs"]], [&Value::Null, &Value::Null, &json!([])]);

    assert_eq!(names(&lab.json(&["runs", "--json", "--where", "project == \"owt\"", "--sort", "name"])), ["a", "b"]);
    assert_eq!(names(&lab.json(&["runs", "--json", "--where", "job_type exists"])), ["a"]);
    assert_eq!(names(&lab.json(&["runs", "--json", "--sort", "group"])), ["a", "b", "c"]);
    assert_eq!(
        lab.json(&["runs", "--json", "--columns", "name,project,group,job_type,notes", "--sort", "name"]),
        json!([
            {"name": "a", "project": "owt", "group": "g1", "job_type": "train", "notes": null},
            {"name": "b", "project": "owt", "group": "g2", "job_type": null, "notes": null},
            {"name": "c", "project": null, "group": null, "job_type": null, "notes": null},
        ])
    );
    let groups = lab.json(&["runs", "--json", "--group-by", "project,group", "--columns", "name"]);
    let keys: Vec<&Value> = groups.as_array().unwrap().iter().map(|g| &g["key"]).collect();
    assert_eq!(
        keys,
        [
            &json!({"project": "owt", "group": "g1"}),
            &json!({"project": "owt", "group": "g2"}),
            &json!({"project": null, "group": null})
        ]
    );

    let text = stdout(&lab.run(&["show", &a]));
    assert!(text.contains("\nproject  owt\ngroup    g1\njob_type train\n"), "{text}");
    assert!(
        text.contains(
            "\ndefines  val_loss (summary: min,max, goal: minimize, hidden: false)\n         train/* (x: train/tokens, step_sync: true)\n"
        ),
        "{text}"
    );
    assert!(!text.contains("notes"), "{text}");

    let before = lab.json(&["runs", "--json"]);
    assert!(lab.run(&["reindex"]).status.success());
    assert_eq!(lab.json(&["runs", "--json"]), before, "the index derives them again");
}

/// train/* on train/global_step (logged every other step), eval/* on epoch
/// at the same step only, val_loss on nothing.
const STEPS: &str = r#"{"t":"define","time":1,"metric":"train/*","step_metric":"train/global_step"}
{"t":"define","time":1,"metric":"eval/*","step_metric":"epoch","step_sync":false}
{"t":"log","step":0,"time":10,"data":{"train/loss":0.0,"val_loss":0.0}}
{"t":"log","step":1,"time":11,"data":{"train/loss":1.0,"train/global_step":100,"val_loss":1.0}}
{"t":"log","step":2,"time":12,"data":{"train/loss":2.0,"eval/acc":0.2,"val_loss":2.0}}
{"t":"log","step":3,"time":13,"data":{"train/loss":3.0,"train/global_step":300,"val_loss":3.0}}
{"t":"log","step":4,"time":14,"data":{"train/loss":4.0,"eval/acc":0.4,"epoch":1,"val_loss":4.0}}
{"t":"log","step":5,"time":15,"data":{"train/loss":5.0,"train/global_step":500,"val_loss":5.0}}
"#;

fn point(step: i64, value: f64, x: Option<f64>) -> Value {
    let mut p = json!({"step": step, "time": 10.0 + step as f64, "value": value});
    if let Some(x) = x {
        p["x"] = json!(x);
    }
    p
}

#[test]
fn a_key_is_read_against_its_step_metric_unless_another_axis_is_asked_for() {
    let lab = TestLab::new();
    let id = run_with_records(&lab, "steps", STEPS);

    // Each point takes the step metric's latest value at or before its step;
    // step 0 comes before any, and is left out.
    let on_global = [(1, 1.0, 100.0), (2, 2.0, 100.0), (3, 3.0, 300.0), (4, 4.0, 300.0), (5, 5.0, 500.0)];
    let expected: Vec<Value> = on_global.iter().map(|&(s, v, x)| point(s, v, Some(x))).collect();
    let all = lab.json(&["metrics", &id, "--json"]);
    assert_eq!(all["train/loss"], json!(expected));
    // With step_sync off, only a value at the same step pairs.
    assert_eq!(all["eval/acc"], json!([point(4, 0.4, Some(1.0))]));
    // Keys on their steps keep the shape they always had; a key is never its own axis.
    let steps: Vec<Value> = (0..6).map(|s| point(s, s as f64, None)).collect();
    assert_eq!(all["val_loss"], json!(steps));
    assert_eq!(all["train/global_step"][0], point(1, 100.0, None));
    assert_eq!(lab.json(&["metrics", &id, "train/loss", "--x", "step", "--json"]), json!({"train/loss": steps}));
    assert_eq!(
        stdout(&lab.run(&["metrics", &id, "val_loss", "--x", "step", "--json"])),
        stdout(&lab.run(&["metrics", &id, "val_loss", "--json"]))
    );
    let on_val = lab.json(&["metrics", &id, "train/loss", "--x", "val_loss", "--json"]);
    assert_eq!(on_val["train/loss"][0], point(0, 0.0, Some(0.0)));
    let on_time = lab.json(&["metrics", &id, "train/loss", "--x", "time", "--points", "3", "--json"]);
    let on_time = on_time["train/loss"].as_array().unwrap();
    assert!(on_time.len() <= 4 && on_time.iter().all(|p| p["x"] == p["time"]), "{on_time:?}");
    let relative = lab.json(&["metrics", &id, "train/loss", "--x", "relative", "--json"]);
    assert_eq!(relative["train/loss"][5]["x"], 5.0);

    let text = stdout(&lab.run(&["metrics", &id, "train/loss", "val_loss", "--points", "4"]));
    assert!(text.starts_with("train/loss (4 points)\n  train/global_step  value\n                100  1\n"), "{text}");
    assert!(text.contains("\nval_loss (4 points)\n         0  0\n"), "{text}");
    let csv = stdout(&lab.run(&["metrics", &id, "train/loss", "val_loss", "--csv"]));
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "key,step,time,value,x");
    assert_eq!(lines[1], "train/loss,1,11.0,1.0,100.0");
    assert_eq!(lines[6], "val_loss,0,10.0,0.0,0.0", "a key on its steps has its step as x");
    let plain = stdout(&lab.run(&["metrics", &id, "val_loss", "--csv"]));
    assert!(plain.starts_with("key,step,time,value\nval_loss,0,10.0,0.0\n"), "{plain}");

    let out = lab.run(&["metrics", &id, "train/loss", "--x", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--x nope: the x axis is step, time, relative, or one of the run's metrics: "));
}

#[test]
fn a_plot_is_drawn_against_the_step_metric_its_runs_share() {
    let lab = TestLab::new();
    run_with_records(&lab, "steps", STEPS);
    run_with_records(&lab, "again", STEPS);
    let plain: String = STEPS.lines().filter(|l| !l.contains("define")).map(|l| format!("{l}\n")).collect();
    run_with_records(&lab, "plain", &plain);
    let svg = |args: &[&str]| {
        let mut all = vec!["plot"];
        all.extend(args);
        all.extend(["-o", "p.svg"]);
        let out = lab.run(&all);
        assert!(out.status.success(), "{}", stderr(&out));
        std::fs::read_to_string(lab.path().join("p.svg")).unwrap()
    };
    // The x axis' label, as the SVG holds a text.
    let (on_global, on_step) = ("\ntrain/global_step\n", "\nstep\n");
    assert!(svg(&["steps", "again", "--metric", "train/loss"]).contains(on_global));
    let mixed = svg(&["steps", "plain", "--metric", "train/loss"]);
    assert!(!mixed.contains(on_global) && mixed.contains(on_step), "runs that differ: the step");
    assert!(svg(&["steps", "--metric", "train/loss", "--x", "step"]).contains(on_step));
    assert!(svg(&["steps", "plain", "--metric", "train/loss", "--x", "train/global_step"]).contains(on_global));
    assert!(svg(&["steps", "again", "--metric", "train/loss", "--group-by", "name"]).contains(on_global));
    let out = lab.run(&["plot", "steps", "--metric", "train/loss", "--x", "train/global_stp", "-o", "p.svg"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--x train/global_stp") && err.contains("did you mean 'metrics.train/global_step"), "{err}");
}

#[test]
fn the_api_places_each_series_on_its_own_axis_and_says_which() {
    let lab = TestLab::new();
    run_with_records(&lab, "steps", STEPS);
    let server = crate::common::http::Server::start(&lab, &[]);
    let both = server.json("/api/runs/steps/metrics?keys=train/loss,val_loss");
    assert_eq!(both["x"], Value::Null, "the series are on different axes: {both:#}");
    let (train, val) = (&both["series"]["train/loss"], &both["series"]["val_loss"]);
    assert_eq!([&train["x_axis"], &train["default_x"]], ["train/global_step", "train/global_step"]);
    assert_eq!(train["x"], json!([100.0, 100.0, 300.0, 300.0, 500.0]));
    assert_eq!(train["step"], json!([1, 2, 3, 4, 5]));
    assert_eq!(train["count"], 6);
    assert_eq!([&val["x_axis"], &val["default_x"]], ["step", "step"]);
    let one = server.json("/api/runs/steps/metrics?keys=train/loss&from=200&to=400");
    assert_eq!(one["x"], "train/global_step");
    assert_eq!(one["series"]["train/loss"]["step"], json!([3, 4]));
    let stepped = server.json("/api/runs/steps/metrics?keys=train/loss,val_loss&x=step");
    assert_eq!(stepped["x"], "step");
    let train = &stepped["series"]["train/loss"];
    assert_eq!([&train["x_axis"], &train["default_x"]], ["step", "train/global_step"]);
    assert_eq!(train["x"], json!([0.0, 1.0, 2.0, 3.0, 4.0, 5.0]));
    let on_val = server.json("/api/runs/steps/metrics?keys=train/loss&x=val_loss");
    assert_eq!(on_val["series"]["train/loss"]["x"][0], 0.0);
}

/// What a command sees of its environment: PYTHONPATH, LABMATE_BIN, and
/// where `import labmate` comes from.
const SEES: &str = "import json, os, labmate
print(json.dumps({'path': os.environ.get('PYTHONPATH'), 'bin': os.environ.get('LABMATE_BIN'), 'labmate': labmate.__file__}))";

/// `labmate run ARGS -- python3 -c SEES` in `lab`, with PYTHONPATH as given: what it saw, and the run.
fn sees(lab: &TestLab, args: &[&str], python_path: &str) -> (Value, Value) {
    let mut all = vec!["run"];
    all.extend(args);
    all.extend(["--", "python3", "-c", SEES]);
    let out = lab.cmd(&all).env("PYTHONPATH", python_path).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let seen: Value = serde_json::from_str(stdout(&out).trim()).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    let id = TestLab::started_id(&out);
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.run_dir(&id).join("run.json")).unwrap()).unwrap();
    (seen, spec)
}

fn canonical(path: impl AsRef<std::path::Path>) -> std::path::PathBuf {
    let path = path.as_ref();
    std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn run_wandb_puts_the_packages_copy_in_the_lab_first_on_the_path() {
    let lab = TestLab::new();
    let source = crate::common::PYTHON;
    let (seen, spec) = sees(&lab, &["--wandb"], &format!("{source}:/elsewhere"));
    let path = seen["path"].as_str().unwrap();
    let parts: Vec<&str> = path.split(':').collect();
    assert_eq!(parts.len(), 4, "{path}");
    let copy = std::path::Path::new(parts[1]);
    assert_eq!(parts[0], copy.join("labmate/_wandb_path").to_str().unwrap(), "the stand-in's folder first: {path}");
    assert_eq!(&parts[2..], [source, "/elsewhere"], "what was there comes after: {path}");
    let versions = canonical(lab.path().join(".labmate/python"));
    assert_eq!(copy.parent().map(canonical), Some(versions.clone()), "{path}");
    let version = copy.file_name().unwrap().to_str().unwrap();
    assert!(version.len() == 16 && version.bytes().all(|b| b.is_ascii_hexdigit()), "{version}");
    assert_eq!(canonical(seen["labmate"].as_str().unwrap()), canonical(copy.join("labmate/__init__.py")));
    for (rel, _) in labmate::python::FILES {
        let file = std::fs::read(copy.join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(file, std::fs::read(std::path::Path::new(source).join(rel)).unwrap(), "{rel} as in the repository");
    }
    let stand_in = std::path::Path::new(source).join("labmate/_wandb_path");
    assert_eq!(
        copy.join("labmate/_wandb_path").is_dir(),
        stand_in.is_dir(),
        "the stand-in's folder, when the package has one"
    );
    assert_eq!(spec["wandb"], true, "the launch option is in run.json");
    assert_eq!(canonical(seen["bin"].as_str().unwrap()), canonical(crate::common::BIN));

    // A second launch reuses the copy; nothing else is left in the folder.
    let (again, _) = sees(&lab, &["--wandb"], "");
    assert_eq!(again["path"].as_str().unwrap(), format!("{}:{}", parts[0], parts[1]), "no empty entry after");
    let left: Vec<_> = std::fs::read_dir(&versions).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from(version)]);

    // Without it the command's PYTHONPATH is as it was; LABMATE_BIN is always given.
    let (plain, spec) = sees(&lab, &[], source);
    assert_eq!(plain["path"], source);
    assert!(spec.get("wandb").is_none(), "{spec:#}");
    assert_eq!(canonical(plain["bin"].as_str().unwrap()), canonical(crate::common::BIN));
    assert!(stdout(&lab.run(&["run", "--help"])).contains("--wandb"));
}

#[test]
fn run_wandb_in_labmate_toml_is_a_boolean_that_gives_every_run_the_stand_in() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[run]\nwandb = true\n");
    let (seen, spec) = sees(&lab, &[], crate::common::PYTHON);
    assert!(seen["path"].as_str().unwrap().contains("/.labmate/python/"), "{seen}");
    assert_eq!(spec["wandb"], true);

    lab.write("labmate.toml", "[run]\nwandb = \"yes\"\n");
    let out = lab.run(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("labmate.toml") && err.contains("line 2") && err.contains("expected a boolean"), "{err}");
    assert!(err.contains("wandb = \"yes\""), "{err}");
}

#[test]
fn exports_carry_project_group_job_type_and_notes_when_runs_have_them() {
    let lab = TestLab::new();
    run_with_records(&lab, "plain", "");
    let plain = lab.run(&["export", "--format", "csv", "-o", "-"]);
    assert!(!stdout(&plain).lines().next().unwrap().contains("project"), "{}", stdout(&plain));
    run_with_records(&lab, "a", "{\"t\":\"meta\",\"time\":1,\"project\":\"owt\",\"group\":\"g1\"}\n");
    let out = lab.run(&["export", "--format", "csv", "-o", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    assert!(header.contains(&"project") && header.contains(&"group"), "{header:?}");
    assert!(!header.contains(&"job_type") && !header.contains(&"notes"), "{header:?}");
    let row = text.lines().find(|l| l.contains(",a,")).unwrap();
    assert!(row.contains(",owt,g1"), "{row}");
}
