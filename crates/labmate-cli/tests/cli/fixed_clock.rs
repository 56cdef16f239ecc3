//! Output that shows times and ids, compared exactly: under a fixed clock
//! and id seed (`LABMATE_NOW`, `LABMATE_ID_SEED`) tables and JSON repeat to
//! the byte, while supervision keeps to the wall.

use serde_json::json;

use crate::common::{TestLab, stderr, stdout};

const T0: &str = "2026-01-01T00:00:00Z";

#[test]
fn tables_and_json_that_show_ages_durations_and_ids_are_exact() {
    let lab = TestLab::with_clock(T0);
    let metric = r#"echo '##labmate {"step": 0, "loss": 0.5}'"#;
    let out = lab.run(&["run", "--name", "a", "--tag", "x", "--", "sh", "-c", metric]);
    assert_eq!(stderr(&out), "labmate: run r-1w7e400000 started\nlabmate: run r-1w7e400000 finished (exit code 0)\n");
    let out = lab.run(&["run", "--name", "b", "--", "sh", "-c", "exit 3"]);
    assert_eq!(out.status.code(), Some(3));
    // Ids of one second count up from the seed, each process skipping those taken.
    let out = lab.run(&["run", "--detach", "--name", "live", "--", "sleep", "300"]);
    assert_eq!(stdout(&out), "r-1w7e400002\n");

    lab.set_now("2026-01-01T03:00:00Z");
    assert_eq!(
        stdout(&lab.run(&["runs"])),
        "\
ID            NAME  STATUS      AGE        DURATION  loss  TAGS
r-1w7e400002  live  running     3h00m ago  3h00m     -
r-1w7e400001  b     failed (3)  3h00m ago  0ms       -
r-1w7e400000  a     finished    3h00m ago  0ms       0.5   x
"
    );
    assert_eq!(stdout(&lab.run(&["status", "live"])), "r-1w7e400002 live: running, 3h00m\n");
    assert_eq!(
        lab.json(&["runs", "--columns", "id,status,created_at,ended_at,duration_s", "--json"]),
        json!([
            {"id": "r-1w7e400002", "status": "running", "created_at": "2026-01-01T00:00:00.000Z", "ended_at": null, "duration_s": 10800.0},
            {"id": "r-1w7e400001", "status": "failed", "created_at": "2026-01-01T00:00:00.000Z", "ended_at": "2026-01-01T00:00:00.000Z", "duration_s": 0.0},
            {"id": "r-1w7e400000", "status": "finished", "created_at": "2026-01-01T00:00:00.000Z", "ended_at": "2026-01-01T00:00:00.000Z", "duration_s": 0.0},
        ])
    );
    assert_eq!(
        lab.json(&["metrics", "a", "--json"]),
        json!({"loss": [{"step": 0, "time": 1767225600.0, "value": 0.5}]})
    );

    // Notebook entries and review items take ids of the same shape.
    assert_eq!(stdout(&lab.run(&["note", "--run", "a", "a finished"])), "n-1w7rng0000\n");
    let out = lab.run(&["review", "request", "--run", "a", "--note", "check a"]);
    assert_eq!(stdout(&out), "v-1w7rng0000\n", "{}", stderr(&out));
    lab.set_now("2026-01-01T03:05:00Z");
    assert_eq!(
        stdout(&lab.run(&["review"])),
        "waiting for review (1):\n  v-1w7rng0000  by tester on r-1w7e400000, 5m00s ago: check a\n"
    );
    assert!(lab.run(&["stop", "live"]).status.success());
}

#[test]
fn a_fixed_clock_leaves_stall_detection_on_the_wall() {
    let lab = TestLab::with_clock(T0);
    lab.write("labmate.toml", "[rules.stall]\nfloor = \"1s\"\nceiling = \"1s\"\naction = \"stop\"\n");
    // Frozen time would never see a silence: the run would sleep its ten minutes.
    let id = stdout(&lab.run(&["run", "--detach", "--", "sh", "-c", "echo hi; sleep 600"])).trim().to_string();
    let out = lab.run(&["wait", &id, "--timeout", "60s"]);
    assert!(matches!(out.status.code(), Some(3 | 4)), "{:?} {}", out.status, stdout(&out));
    let run = lab.wait_for(&id, 10, |r| r["status"] != "running");
    assert_eq!(run["status"], "stopped", "{run:#}");
    assert!(run["reason"].as_str().unwrap().starts_with("stall: no metric and no output for "), "{run:#}");
    // What it recorded carries the lab's time.
    let alert = run["events"].as_array().unwrap().iter().find(|e| e["kind"] == "alert").unwrap().clone();
    assert_eq!(alert["time"], "2026-01-01T00:00:00.000Z", "{alert:#}");
    assert_eq!(run["ended_at"], "2026-01-01T00:00:00.000Z");
}

#[test]
fn a_malformed_clock_or_seed_names_the_variable() {
    let lab = TestLab::new();
    for (var, value, why) in [
        (
            "LABMATE_NOW",
            "tomorrow",
            "LABMATE_NOW: bad time 'tomorrow': use RFC 3339 (2026-01-01T00:00:00Z) or Unix seconds (1767225600)",
        ),
        ("LABMATE_NOW", "-1", "LABMATE_NOW: bad time '-1'"),
        ("LABMATE_ID_SEED", "seven", "LABMATE_ID_SEED: bad id seed 'seven': use a whole number from 0 to 1048575"),
        ("LABMATE_ID_SEED", "1048576", "LABMATE_ID_SEED: bad id seed 1048576: use a whole number from 0 to 1048575"),
    ] {
        let out = lab.cmd(&["runs"]).env(var, value).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let err = stderr(&out);
        assert!(err.starts_with(&format!("labmate: error: {why}")), "{var}={value}: {err}");
    }
}
