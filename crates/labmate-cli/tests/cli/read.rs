//! Reading the registry: runs, show, metrics, logs, naming runs, reindex.

use std::io::Read;
use std::process::Stdio;

use crate::common::{TestLab, stderr, stdout};
use serde_json::{Value, json};

/// A lab with three finished runs logging through metric lines.
fn lab_with_runs() -> (TestLab, Vec<String>) {
    let lab = TestLab::new();
    let mut ids = Vec::new();
    for (name, n) in [("alpha", 3), ("beta", 5), ("beta", 2)] {
        let script =
            format!("for i in $(seq 1 {n}); do echo \"##labmate {{\\\"loss\\\": $i, \\\"acc\\\": 0.$i}}\"; done");
        let out = lab.run(&["run", "--name", name, "--tag", "t", "--", "sh", "-c", &script]);
        assert!(out.status.success(), "{}", stderr(&out));
        // One after the other: created_at orders them (ids sort by whole seconds only).
        ids.push(TestLab::started_id(&out));
    }
    (lab, ids)
}

#[test]
fn runs_json_lists_run_objects_newest_first() {
    let (lab, ids) = lab_with_runs();
    let runs = lab.json(&["runs", "--json"]);
    let got: Vec<&str> = runs.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(got, [&ids[2], &ids[1], &ids[0]]);
    let r = &runs[1];
    for key in [
        "id",
        "name",
        "status",
        "exit_code",
        "signal",
        "command",
        "created_at",
        "ended_at",
        "duration_s",
        "git",
        "config",
        "tags",
        "metrics",
    ] {
        assert!(r.get(key).is_some(), "run object lacks {key}: {r:#}");
    }
    assert_eq!(
        r["metrics"]["loss"],
        json!({"last": 5.0, "min": 1.0, "max": 5.0, "count": 5, "last_step": 4, "nan_count": 0, "mean": 3.0})
    );
    assert_eq!(lab.json(&["runs", "--json", "--limit", "1"]).as_array().unwrap().len(), 1);

    let table = stdout(&lab.run(&["runs"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("ID") && lines[0].contains("STATUS") && lines[0].contains("loss"), "{table}");
    assert!(lines[1].starts_with(&ids[2]) && lines[1].contains("beta") && lines[1].contains("finished"), "{table}");
    assert_eq!(lines.len(), 4);
}

#[test]
fn runs_are_named_by_id_prefix_suffix_or_name() {
    let (lab, ids) = lab_with_runs();
    assert_eq!(lab.show(&ids[0])["id"], ids[0]);
    assert_eq!(lab.show("alpha")["id"], ids[0]);
    assert_eq!(lab.show(&ids[1][ids[1].len() - 4..])["id"], ids[1]);

    let out = lab.run(&["show", "beta"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("run 'beta' is ambiguous; it matches") && err.contains(&ids[1]) && err.contains(&ids[2]),
        "{err}"
    );

    let out = lab.run(&["show", "gamma"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("unknown run 'gamma'; known runs:") && err.contains(&format!("{} (alpha)", ids[0])), "{err}");

    // All three ids share their time prefix within a second or so: a short prefix is ambiguous.
    let out = lab.run(&["metrics", "r-", "--json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("ambiguous"), "{}", stderr(&out));
}

#[test]
fn metrics_downsample_keeps_extremes() {
    let lab = TestLab::new();
    // The NaN is data here, not a reason to stop the run.
    lab.write("labmate.toml", "[rules.nonfinite]\nenabled = false\n");
    let script = lab.write(
        "spiky.py",
        "import math\nfor i in range(20000):\n    v = math.sin(i / 300)\n    if i == 12345: v = 40.0\n    if i == 777: v = float('nan')\n    print('##labmate {\"step\": %d, \"signal\": %r}' % (i, v))\n",
    );
    let out = lab.run(&["run", "--", "python3", script.to_str().unwrap()]);
    let id = TestLab::started_id(&out);
    let all = lab.json(&["metrics", &id, "signal", "--json"]);
    assert_eq!(all["signal"].as_array().unwrap().len(), 20000);
    let down = lab.json(&["metrics", &id, "signal", "--points", "200", "--json"]);
    let pts = down["signal"].as_array().unwrap();
    assert!((150..=210).contains(&pts.len()), "{}", pts.len());
    assert!(pts.iter().any(|p| p["step"] == 12345 && p["value"] == 40.0));
    assert!(pts.iter().any(|p| p["step"] == 777 && p["value"] == "NaN"));
    assert!(pts.iter().all(|p| p.as_object().unwrap().keys().collect::<Vec<_>>() == ["step", "time", "value"]));

    let out = lab.run(&["metrics", &id, "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("has no metric 'nope'; it has: signal"), "{}", stderr(&out));
}

#[test]
fn logs_tail_and_follow() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--name", "lines", "--", "sh", "-c", "for i in 1 2 3 4 5; do echo line$i; done"]);
    assert!(out.status.success());
    assert_eq!(stdout(&lab.run(&["logs", "lines", "--tail", "2"])), "line4\nline5\n");
    assert_eq!(stdout(&lab.run(&["logs", "lines", "--tail", "0"])), "");
    assert_eq!(stdout(&lab.run(&["logs", "lines", "--tail", "99"])).lines().count(), 5);

    // b comes once `logs --follow` has printed a: what it prints is what grew while it followed.
    let script = "echo a; for i in $(seq 1200); do [ -e go ] && break; sleep 0.05; done; echo b";
    let id = stdout(&lab.run(&["run", "--detach", "--", "sh", "-c", script])).trim().to_string();
    let mut follow = lab.cmd(&["logs", &id, "--follow"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut out = follow.stdout.take().unwrap();
    let mut first = [0u8; 2];
    out.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"a\n");
    lab.write("go", "");
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(follow.wait().unwrap().success());
    assert_eq!(rest, "b\n");
}

#[test]
fn reindex_answers_every_query_the_same() {
    let (lab, ids) = lab_with_runs();
    let queries: Vec<Vec<&str>> = vec![
        vec!["runs", "--json"],
        vec!["show", &ids[0], "--json"],
        vec!["show", &ids[2], "--json"],
        vec!["metrics", &ids[1], "--json"],
    ];
    let before: Vec<Value> = queries.iter().map(|q| lab.json(q)).collect();
    let out = lab.run(&["reindex"]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("reindexed 3 runs, 20 points"), "{}", stderr(&out));
    let after: Vec<Value> = queries.iter().map(|q| lab.json(q)).collect();
    assert_eq!(before, after);
    // Deleting the index by hand is just as safe.
    std::fs::remove_file(lab.path().join(".labmate/index.sqlite")).unwrap();
    let again: Vec<Value> = queries.iter().map(|q| lab.json(q)).collect();
    assert_eq!(before, again);
}

#[test]
fn the_lab_is_found_walking_up_or_through_labmate_dir() {
    let lab = TestLab::new();
    assert!(lab.run(&["init"]).status.success());
    assert_eq!(std::fs::read_to_string(lab.path().join(".labmate/lab.json")).unwrap().trim(), "{\"format\": 2}");
    let sub = lab.path().join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    let out = lab.cmd(&["run", "--name", "deep", "--", "true"]).current_dir(&sub).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lab.json(&["runs", "--json"])[0]["name"], "deep");
    assert!(!sub.join(".labmate").exists());

    let elsewhere = TestLab::new();
    let runs = elsewhere.cmd(&["runs", "--json"]).env("LABMATE_DIR", lab.path().join(".labmate")).output().unwrap();
    let runs: Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs[0]["name"], "deep");

    let out = elsewhere.run(&["runs"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no lab found in"), "{}", stderr(&out));
}

#[test]
fn a_lab_of_another_format_is_refused() {
    let lab = TestLab::new();
    lab.write(".labmate/lab.json", "{\"format\": 7}\n");
    let out = lab.run(&["runs"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("lab format 7 is not supported (this labmate reads formats 1 to 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_run_file_cut_or_replaced_below_what_was_read_is_read_again() {
    let (lab, ids) = lab_with_runs();
    let beta = &ids[1];
    assert_eq!(lab.json(&["metrics", beta, "loss", "--json"])["loss"].as_array().unwrap().len(), 5);
    // Cut the finished run's stream after its first two points: what came
    // before the points, then those two (however the supervisor grouped them).
    let stream = lab.run_dir(beta).join("supervisor.jsonl");
    let text = std::fs::read_to_string(&stream).unwrap();
    let mut kept: String = text
        .split_inclusive('\n')
        .take_while(|l| !l.contains("\"t\":\"log\"") && !l.contains("\"t\":\"batch\""))
        .collect();
    kept.push_str("{\"t\":\"log\",\"step\":0,\"time\":1.0,\"data\":{\"loss\":1}}\n");
    kept.push_str("{\"t\":\"log\",\"step\":1,\"time\":1.0,\"data\":{\"loss\":2}}\n");
    assert!(kept.len() < text.len(), "the cut stream must be shorter than the one read");
    std::fs::write(&stream, &kept).unwrap();
    let out = lab.run(&["metrics", beta, "loss", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("shorter than what was read"), "{}", stderr(&out));
    let steps: Vec<i64> = serde_json::from_slice::<Value>(&out.stdout).unwrap()["loss"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["step"].as_i64().unwrap())
        .collect();
    assert_eq!(steps, [0, 1]);
    assert_eq!(lab.show(beta)["metrics"]["loss"]["count"], 2);
    // The answer is a fresh index's.
    let now = lab.json(&["runs", "--json"]);
    assert!(lab.run(&["reindex"]).status.success());
    assert_eq!(lab.json(&["runs", "--json"]), now);
}
