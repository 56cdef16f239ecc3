//! Sweeps: a grid or random draws launched as runs, their status and
//! comparison across seeds, the queue's limit, stopping a sweep, bad input.

use serde_json::Value;

use crate::common::{TestLab, stderr, stdout};

/// Prints the metric `loss` = lr x seed, from its arguments; its own braces
/// doubled, as a sweep's command writes them.
const METRIC: &str = r###"echo "##labmate {{\"loss\": $(awk "BEGIN {{ print $1 * $2 }}")}}""###;

fn runs_of(sweep: &Value) -> Vec<String> {
    sweep["runs"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect()
}

fn wait_all(lab: &TestLab, runs: &[String]) {
    let mut args = vec!["wait"];
    args.extend(runs.iter().map(String::as_str));
    args.extend(["--timeout", "120s"]);
    let out = lab.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_grid_launches_one_named_tagged_run_per_point_and_compares_them_across_seeds() {
    let lab = TestLab::new();
    let out = lab.run(&[
        "sweep",
        "--grid",
        "lr=0.5,2",
        "--grid",
        "seed=1,3",
        "--name",
        "lr{lr}-s{seed}",
        "--json",
        "--",
        "sh",
        "-c",
        METRIC,
        "sh",
        "{lr}",
        "{seed}",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = sweep["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("s-"), "{id}");
    let runs = runs_of(&sweep);
    assert_eq!(runs.len(), 4);
    wait_all(&lab, &runs);

    let expected = [("0.5", 1, "lr0.5-s1"), ("0.5", 3, "lr0.5-s3"), ("2", 1, "lr2-s1"), ("2", 3, "lr2-s3")];
    for (run, (lr, seed, name)) in runs.iter().zip(expected) {
        let r = lab.show(run);
        assert_eq!(r["status"], "finished", "{r:#}");
        assert_eq!(r["name"], name);
        assert_eq!(r["tags"], serde_json::json!([id]));
        assert_eq!(r["config"]["lr"].to_string(), lr);
        assert_eq!(r["config"]["seed"], seed);
        let argv: Vec<&str> = r["command"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        assert_eq!(argv[3..], ["sh", lr, &seed.to_string()], "{argv:?}");
        let loss = lr.parse::<f64>().unwrap() * f64::from(seed);
        assert_eq!(r["metrics"]["loss"]["last"].as_f64().unwrap(), loss, "{r:#}");
    }
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path().join(format!(".labmate/sweeps/{id}.json"))).unwrap())
            .unwrap();
    assert_eq!(record["command"][4], "{lr}");
    assert_eq!(record["name"], "lr{lr}-s{seed}");
    assert_eq!(runs_of(&record), runs);

    let status = lab.json(&["sweep", "status", &id, "--json"]);
    assert_eq!(status["counts"], serde_json::json!({"finished": 4}));
    assert_eq!(status["seed_key"], "seed");
    assert_eq!(status["group_by"], serde_json::json!(["config.lr"]));
    let groups = status["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{status:#}");
    assert_eq!(groups[0]["seeds"], serde_json::json!([1, 3]));
    assert_eq!(groups[0]["stats"]["metrics.loss.last"]["mean"], 1.0);
    assert_eq!(groups[1]["stats"]["metrics.loss.last"]["mean"], 4.0);

    let out = lab.run(&["sweep", "status", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("sweep {id}: 4 runs: 4 finished\n")), "{text}");
    assert!(text.contains("across seeds (seed key: seed), grouped by config.lr:"), "{text}");
    assert!(text.contains("lr=2,seed=3"), "{text}");

    // Another seed key: grouped by seed, across lr.
    let by_lr = lab.json(&["sweep", "status", &id, "--seed-key", "lr", "--json"]);
    assert_eq!(by_lr["group_by"], serde_json::json!(["config.seed"]));
    assert_eq!(by_lr["groups"][0]["seeds"], serde_json::json!([0.5, 2]));
}

#[test]
fn the_default_name_is_the_point_and_braces_escape() {
    let lab = TestLab::new();
    let out = lab.run(&["sweep", "--grid", "lr=1e-3", "--grid", "opt=adam", "--json", "--", "echo", "{{{lr}}}"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let runs = runs_of(&sweep);
    wait_all(&lab, &runs);
    let run = lab.show(&runs[0]);
    assert_eq!(run["name"], "lr=0.001,opt=adam");
    assert_eq!(run["command"], serde_json::json!(["echo", "{0.001}"]));
    assert_eq!(run["config"]["opt"], "adam");
}

#[test]
fn random_points_repeat_with_the_same_seed_and_the_seed_is_recorded() {
    let lab = TestLab::new();
    let draw = || {
        let sweep = lab.json(&[
            "sweep",
            "--random",
            "3",
            "--dist",
            "lr=loguniform(1e-4,1e-2)",
            "--dist",
            "seed=choice(1,2,3)",
            "--seed",
            "42",
            "--json",
            "--",
            "true",
        ]);
        wait_all(&lab, &runs_of(&sweep));
        sweep
    };
    let (a, b) = (draw(), draw());
    assert_ne!(a["id"], b["id"]);
    assert_eq!(a["seed"], 42);
    assert_eq!(a["points"], b["points"]);
    let points = a["points"].as_array().unwrap();
    assert_eq!(points.len(), 3);
    for p in points {
        let lr = p["lr"].as_f64().unwrap();
        assert!((1e-4..=1e-2).contains(&lr), "{p}");
        assert!([1, 2, 3].contains(&p["seed"].as_i64().unwrap()), "{p}");
    }
    let run = lab.show(a["runs"][0].as_str().unwrap());
    assert_eq!(run["config"]["lr"], points[0]["lr"]);
}

#[test]
fn through_the_queue_with_one_slot_the_points_run_one_at_a_time() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[queue]\nmax_concurrent = 1\n");
    let log = "echo start $1 >> order.log; sleep 0.2; echo end $1 >> order.log";
    let sweep = lab.json(&["sweep", "--queue", "--grid", "n=1,2,3", "--json", "--", "sh", "-c", log, "sh", "{n}"]);
    assert_eq!(sweep["queue"], true);
    let runs = runs_of(&sweep);
    wait_all(&lab, &runs);
    let order = std::fs::read_to_string(lab.path().join("order.log")).unwrap();
    let lines: Vec<&str> = order.lines().collect();
    assert_eq!(lines.len(), 6, "{order}");
    for pair in lines.chunks(2) {
        let n = pair[0].strip_prefix("start ").unwrap_or_else(|| panic!("{order}"));
        assert_eq!(pair[1], format!("end {n}"), "one run at a time: {order}");
    }
    for run in &runs {
        assert_eq!(lab.show(run)["status"], "finished");
    }
}

#[test]
fn stop_of_a_sweep_stops_its_running_and_queued_runs() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[queue]\nmax_concurrent = 1\n");
    let sweep = lab.json(&["sweep", "--queue", "--grid", "n=1,2", "--json", "--", "sleep", "300"]);
    let id = sweep["id"].as_str().unwrap();
    let runs = runs_of(&sweep);
    let running = |r: &Value| r["status"] == "running";
    lab.wait_for(&runs[0], 60, |_| runs.iter().any(|r| running(&lab.show(r))));
    let first = runs.iter().find(|r| running(&lab.show(r))).cloned().unwrap();
    let other = runs.iter().find(|r| **r != first).unwrap();
    assert_eq!(lab.show(other)["status"], "queued");

    let out = lab.run(&["stop", id, "--reason", "wrong data"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for run in &runs {
        let r = lab.wait_for(run, 60, |r| r["status"] != "running" && r["status"] != "queued");
        assert_eq!(r["status"], "stopped", "{r:#}");
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.contains(&format!("sweep {id}: wrong data")), "{reason}");
    }
    let status = lab.json(&["sweep", "status", id, "--json"]);
    assert_eq!(status["counts"], serde_json::json!({"stopped": 2}));

    let out = lab.run(&["stop", id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("sweep {id} has no run queued or running")), "{}", stderr(&out));
}

#[test]
fn a_sweep_that_needs_approval_asks_once_with_its_cost_and_launches_whole_when_approved() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[approval]\ntags = [\"big\"]\n[budget]\nmax_run_minutes = 30\n");
    let out = lab.run(&["sweep", "--tag", "big", "--grid", "n=1,2,3", "--", "echo", "{n}"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let request = stdout(&out).trim().to_string();
    assert!(request.starts_with("a-"), "{request}");
    let err = stderr(&out);
    assert!(err.contains("3 runs, estimated cost 1.5 GPU-hours (3 runs x 30 max_run_minutes x 1 GPU)"), "{err}");
    assert!(!lab.path().join(".labmate/runs").exists() || lab.json(&["runs", "--json"]) == serde_json::json!([]));
    let reviews = lab.json(&["review", "--json"]);
    assert_eq!(reviews["requests"].as_array().unwrap().len(), 1, "one request for the sweep: {reviews:#}");

    let sweep = std::fs::read_dir(lab.path().join(".labmate/sweeps")).unwrap().next().unwrap().unwrap();
    let sweep = sweep.file_name().into_string().unwrap().trim_end_matches(".json").to_string();
    let out = lab.run(&["sweep", "status", &sweep]);
    assert_eq!(stdout(&out), format!("sweep {sweep}: waiting for approval (request {request})\n"));

    let out = lab.run(&["approve", &request, "--author", "alice"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweeps: Vec<_> = std::fs::read_dir(lab.path().join(".labmate/sweeps")).unwrap().collect();
    assert_eq!(sweeps.len(), 1);
    let name = sweeps[0].as_ref().unwrap().file_name().into_string().unwrap();
    let id = name.strip_suffix(".json").unwrap();
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path().join(".labmate/sweeps").join(&name)).unwrap())
            .unwrap();
    let runs = runs_of(&record);
    assert_eq!(runs.len(), 3);
    wait_all(&lab, &runs);
    let status = lab.json(&["sweep", "status", id, "--json"]);
    assert_eq!(status["counts"], serde_json::json!({"finished": 3}));
    assert_eq!(lab.show(&runs[2])["command"], serde_json::json!(["echo", "3"]));
}

#[test]
fn bad_sweeps_are_refused_with_the_problem_named_and_nothing_recorded() {
    let lab = TestLab::new();
    let cases: &[(&[&str], &str)] = &[
        (&["--grid", "lr=", "--", "true"], "--grid 'lr=': no values"),
        (&["--grid", "lr=1,2", "--grid", "lr=3", "--", "true"], "the key 'lr' is given twice"),
        (&["--random", "3", "--", "true"], "--random needs at least one --dist"),
        (&["--random", "3", "--dist", "lr=gauss(0,1)", "--", "true"], "unknown distribution 'gauss'"),
        (&["--random", "3", "--dist", "lr=uniform(0)", "--", "true"], "takes two numbers"),
        (&["--random", "3", "--dist", "lr=choice(1,2", "--", "true"], "no closing ')'"),
        (&["--grid", "lr=1,2"], "no command given"),
        (&["--grid", "lr=1", "--", "echo", "{rate}"], "unknown key {rate}"),
        (&["--", "true"], "a sweep needs --grid"),
    ];
    for (args, want) in cases {
        let mut all = vec!["sweep"];
        all.extend_from_slice(args);
        let out = lab.run(&all);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
    assert!(!lab.path().join(".labmate/sweeps").exists(), "a refused sweep is not recorded");
    let out = lab.run(&["sweep", "status", "s-2qsy4y8f9m"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("no sweep s-2qsy4y8f9m"), "{}", stderr(&out));
}
