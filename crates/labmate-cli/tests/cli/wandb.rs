//! What the wandb stand-in needs of labmate: a run's project, group, job
//! type and notes (`meta`) and its metric definitions (`define`), read,
//! stored and queried; each key's step metric as its default x axis.

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
