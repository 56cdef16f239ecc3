//! `labmate run`: what a run records, how it ends, and what it exits with.

use std::time::Duration;

use crate::common::{TestLab, stderr, stdout};
use labmate::sys::proc::signal;
use serde_json::json;

#[test]
fn a_run_records_its_launch_and_exits_with_the_child_code() {
    let lab = TestLab::with_git();
    lab.write("train.txt", "v2\n"); // a tracked change: dirty
    lab.write("notes.md", "untracked\n");
    let out = lab
        .cmd(&[
            "run",
            "--name",
            "first",
            "--tag",
            "a",
            "--tag",
            "b",
            "--config",
            "lr=3e-4",
            "--config",
            "model=resnet",
            "--config",
            "optim.beta=0.9",
            "--",
            "sh",
            "-c",
            "echo out; echo err >&2; exit 3",
        ])
        .env("CUDA_VISIBLE_DEVICES", "1")
        .env("LABMATE_NOTE", "x")
        .env("LABMATE_API_TOKEN", "secret")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(stdout(&out), "out\n");
    let id = TestLab::started_id(&out);
    assert!(stderr(&out).contains("err\n"));
    assert!(stderr(&out).contains(&format!("labmate: run {id} failed (exit code 3)")));

    let run = lab.show(&id);
    assert_eq!(run["id"], id);
    assert_eq!(run["name"], "first");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["exit_code"], 3);
    assert_eq!(run["signal"], json!(null));
    assert_eq!(run["command"], json!(["sh", "-c", "echo out; echo err >&2; exit 3"]));
    assert_eq!(run["tags"], json!(["a", "b"]));
    assert_eq!(run["config"], json!({"lr": 3e-4, "model": "resnet", "optim": {"beta": 0.9}}));
    assert_eq!(run["user"], "tester");
    assert_eq!(run["cwd"], lab.path().display().to_string());
    assert_eq!(run["env"], json!({"CUDA_VISIBLE_DEVICES": "1", "LABMATE_NOTE": "x"}));
    let head = lab.git(&["rev-parse", "HEAD"]);
    assert_eq!(run["git"], json!({"commit": head.trim(), "branch": "main", "dirty": true}));
    assert_eq!(run["untracked"], json!(["notes.md"]));
    assert!(run["patch_bytes"].as_u64().unwrap() > 0);
    assert!(run["duration_s"].as_f64().unwrap() >= 0.0);
    assert!(run["ended_at"].is_string());
    let patch = std::fs::read_to_string(lab.run_dir(&id).join("patch.diff")).unwrap();
    assert!(patch.contains("+v2"), "{patch}");
    // The lab ignores itself: the experiment repo is as dirty as before, no more.
    assert_eq!(lab.git(&["status", "--porcelain"]), " M train.txt\n?? notes.md\n");
}

#[test]
fn output_is_teed_byte_for_byte_and_streams_are_kept_apart() {
    let lab = TestLab::new();
    let script = lab.write(
        "out.py",
        r#"
import sys
sys.stdout.buffer.write(b"bin \xff\xfe\n")
sys.stdout.buffer.write(b"x" * 1_000_000 + b"\n")
sys.stdout.flush()
sys.stderr.write("oops\n")
"#,
    );
    let out = lab.run(&["run", "--", "python3", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = TestLab::started_id(&out);
    let mut expected = b"bin \xff\xfe\n".to_vec();
    expected.extend(std::iter::repeat_n(b'x', 1_000_000));
    expected.push(b'\n');
    assert_eq!(out.stdout, expected);
    let dir = lab.run_dir(&id);
    let output = std::fs::read(dir.join("output.log")).unwrap();
    // Both streams, in arrival order: stdout's bytes in order, stderr's line somewhere.
    let at = output.windows(5).position(|w| w == b"oops\n").expect("stderr in output.log");
    let mut without = output.clone();
    without.drain(at..at + 5);
    assert_eq!(without, expected);
    assert_eq!(std::fs::read(dir.join("stderr.log")).unwrap(), b"oops\n");
    let logs = lab.run(&["logs", &id]);
    assert_eq!(logs.stdout, output);
    assert_eq!(lab.run(&["logs", &id, "--stderr"]).stdout, b"oops\n");
}

#[test]
fn metric_lines_become_metrics_and_bad_lines_become_warnings() {
    let lab = TestLab::new();
    let script = lab.write(
        "m.sh",
        "echo '##labmate {\"step\": 10, \"loss\": 0.5, \"acc\": 0.25}'\n\
         echo '##labmate {\"loss\": 0.25}'\n\
         echo '##labmate {oops'\n\
         echo '##labmate {\"loss\": NaN, \"a\": \"Infinity\", \"b\": -Infinity}'\n\
         echo 'loss: 9 (not a metric line)'\n",
    );
    let out = lab.run(&["run", "--", "sh", script.to_str().unwrap()]);
    assert!(out.status.success());
    let id = TestLab::started_id(&out);
    let metrics = lab.json(&["metrics", &id, "--json"]);
    let loss = &metrics["loss"];
    assert_eq!(loss[0]["step"], 10);
    assert_eq!(loss[0]["value"], 0.5);
    assert_eq!(loss[1]["step"], 11, "a missing step counts on");
    assert_eq!(loss[1]["value"], 0.25);
    assert_eq!(loss[2]["value"], "NaN");
    assert!(loss[0]["time"].as_f64().unwrap() > 1.7e9);
    assert_eq!(metrics["a"][0]["value"], "Infinity");
    assert_eq!(metrics["b"][0]["value"], "-Infinity");
    let run = lab.show(&id);
    assert_eq!(
        run["metrics"]["loss"],
        json!({"last": "NaN", "min": 0.25, "max": 0.5, "count": 3, "last_step": 12, "nan_count": 1, "mean": 0.375})
    );
    let warnings: Vec<_> = run["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "warning").collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0]["message"].as_str().unwrap().starts_with("malformed metrics line"));
    assert_eq!(warnings[0]["data"], "##labmate {oops");

    let csv = stdout(&lab.run(&["metrics", &id, "loss", "--csv"]));
    assert!(csv.starts_with("key,step,time,value\nloss,10,"), "{csv}");
    assert!(csv.trim_end().ends_with(",NaN"), "{csv}");
}

#[test]
fn metric_lines_that_come_together_are_written_as_one_batch_and_read_as_they_were() {
    let lab = TestLab::new();
    assert!(lab.run(&["init"]).status.success());
    // A lab of the first format is marked as holding batches before the first one.
    std::fs::write(lab.path().join(".labmate/lab.json"), "{\"format\": 1}\n").unwrap();
    // One write of a few lines: the supervisor reads them at once.
    let lines: String = (0..6)
        .map(|i| {
            let every_third = if i % 3 == 0 { format!(", \"val\": {}", i as f64 / 10.0) } else { String::new() };
            format!("##labmate {{\"step\": {}, \"loss\": {}{every_third}}}\\n", 100 + 2 * i, 1.0 / (i + 1) as f64)
        })
        .collect();
    let out = lab.run(&["run", "--", "printf", &lines]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = TestLab::started_id(&out);
    let stream = std::fs::read_to_string(lab.run_dir(&id).join("supervisor.jsonl")).unwrap();
    assert!(stream.contains("\"t\":\"batch\""), "{stream}");
    assert_eq!(std::fs::read_to_string(lab.path().join(".labmate/lab.json")).unwrap(), "{\"format\": 2}\n");
    let metrics = lab.json(&["metrics", &id, "--json"]);
    let points = |key: &str| -> Vec<(i64, f64)> {
        metrics[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["step"].as_i64().unwrap(), p["value"].as_f64().unwrap()))
            .collect()
    };
    let loss: Vec<(i64, f64)> = (0..6).map(|i| (100 + 2 * i, 1.0 / (i + 1) as f64)).collect();
    assert_eq!(points("loss"), loss);
    assert_eq!(points("val"), [(100, 0.0), (106, 0.3)], "a key absent at a step is not invented");
}

#[test]
fn sigkill_of_the_command_fails_the_run_with_the_signal() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--", "sh", "-c", "echo started; kill -9 $$"]);
    assert_eq!(out.status.code(), Some(137));
    let id = TestLab::started_id(&out);
    let run = lab.show(&id);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["signal"], 9);
    assert_eq!(run["exit_code"], json!(null));
    assert!(stderr(&out).contains("killed by SIGKILL"));
}

#[test]
fn sigint_to_the_supervisor_stops_the_run() {
    let lab = TestLab::new();
    let mut child = lab.cmd(&["run", "--", "sleep", "30"]).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let dir = lab.path().join(".labmate/runs");
    // Wait for the run to start, then interrupt the supervisor as Ctrl-C would.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let id = loop {
        let ids: Vec<_> =
            std::fs::read_dir(&dir).map(|d| d.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        if let Some(id) = ids.iter().map(|i| i.to_string_lossy().into_owned()).find(|i| !i.starts_with('.')) {
            if std::fs::read_to_string(dir.join(&id).join("supervisor.jsonl")).is_ok_and(|s| s.contains("\"start\"")) {
                break id;
            }
        }
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    };
    signal(child.id() as i32, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let run = lab.show(&id);
    assert_eq!(run["status"], "stopped");
    assert_eq!(run["reason"], "interrupted by SIGINT");
    assert_eq!(run["signal"], 2);
}

#[test]
fn bad_requests_are_refused_before_anything_is_recorded() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--config", "lr", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad --config 'lr': expected KEY=VALUE, found no '='"), "{}", stderr(&out));

    let out = lab.run(&["run", "--", "no-such-program-xyz", "--flag"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("command not found: 'no-such-program-xyz'"), "{}", stderr(&out));

    let out = lab.run(&["run", "--name", "", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));

    let runs = lab.path().join(".labmate/runs");
    let made = std::fs::read_dir(&runs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(made, 0, "a refused launch left a run folder behind");
    assert_eq!(lab.json(&["runs", "--json"]), json!([]));
}

#[test]
fn detached_runs_return_at_once_and_go_on_supervised() {
    let lab = TestLab::new();
    // The command waits for a file this test writes only once detach has
    // returned: had detach waited for the run, it would have seen no file.
    let out = lab.run(&[
        "run",
        "--detach",
        "--name",
        "bg",
        "--",
        "sh",
        "-c",
        "x=0; for i in $(seq 1200); do [ -e go ] && { x=1; break; }; sleep 0.05; done; echo \"##labmate {\\\"x\\\": $x}\"; echo done",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(id.starts_with("r-") && id.len() == 12, "{id:?}");
    assert_eq!(lab.show(&id)["status"], "running");
    lab.write("go", "");
    let run = lab.wait_for(&id, 20, |r| r["status"] != "running");
    assert_eq!(run["status"], "finished");
    assert_eq!(run["metrics"]["x"]["last"], 1.0);
    assert_eq!(stdout(&lab.run(&["logs", "bg"])), "##labmate {\"x\": 1}\ndone\n");
}

#[test]
fn a_killed_supervisor_leaves_a_lost_run_with_its_points() {
    let lab = TestLab::new();
    let script = lab.write(
        "slow.py",
        "import time\nfor i in range(20):\n    print('##labmate {\"step\": %d, \"loss\": %d}' % (i, i))\ntime.sleep(60)\n",
    );
    let out = lab.run(&["run", "--detach", "--", "python3", script.to_str().unwrap()]);
    let id = stdout(&out).trim().to_string();
    let run = lab.wait_for(&id, 20, |r| r["metrics"]["loss"]["count"] == 20);
    assert_eq!(run["status"], "running");
    let start = std::fs::read_to_string(lab.run_dir(&id).join("supervisor.jsonl")).unwrap();
    let start: serde_json::Value = serde_json::from_str(start.lines().next().unwrap()).unwrap();
    let (supervisor, pgid) = (start["pid"].as_i64().unwrap() as i32, start["pgid"].as_i64().unwrap() as i32);
    signal(supervisor, libc::SIGKILL);
    let run = lab.wait_for(&id, 10, |r| r["status"] != "running");
    // The command died with its supervisor. (Signalling its group id now
    // could hit another process's group: the id is free to be reused.)
    wait_until("the command died with its supervisor", 20, || !alive(pgid));
    assert_eq!(run["status"], "lost");
    assert_eq!(run["reason"], "the supervisor died before the run ended");
    assert_eq!(run["metrics"]["loss"]["count"], 20);
    assert!(lab.run_dir(&id).join("lost.json").is_file());
    // Noticing is durable: a rebuilt index says the same.
    assert!(lab.run(&["reindex"]).status.success());
    assert_eq!(lab.show(&id)["status"], "lost");
}

#[test]
fn torn_and_malformed_lines_are_skipped_with_warnings_and_the_rest_kept() {
    let lab = TestLab::new();
    let script = lab.write(
        "writer.py",
        r#"
import os
path = os.path.join(os.environ["LABMATE_RUN_DIR"], "client-test.jsonl")
with open(path, "w") as f:
    f.write('{"t":"log","step":0,"time":1.0,"data":{"loss":1.0}}\n')
    f.write('{"t":"log","step":1,"time":1.0,"data":{"loss":\n')
    f.write('{"t":"log","step":2,"time":1.0,"data":{"loss":0.5}}\n')
    f.write('{"t":"log","step":3,"time":1.0,"data":{"lo')
"#,
    );
    let out = lab.run(&["run", "--", "python3", script.to_str().unwrap()]);
    assert!(out.status.success());
    let id = TestLab::started_id(&out);
    let run = lab.show(&id);
    assert_eq!(run["metrics"]["loss"]["count"], 2);
    assert_eq!(run["metrics"]["loss"]["last"], 0.5);
    let messages: Vec<String> = run["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "warning")
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert!(messages[0].starts_with("skipped a malformed line in client-test.jsonl at byte 52"), "{messages:?}");
    assert!(messages[1].starts_with("skipped a torn last line in client-test.jsonl"), "{messages:?}");
}

/// Prints whether the process in bg.pid lives (a zombie does not).
const ALIVE_CHECK: &str =
    "p=$(cat bg.pid); if [ -e /proc/$p ] && ! grep -q ') Z' /proc/$p/stat; then echo A-ALIVE; else echo A-GONE; fi";

/// Whether a process lives (a zombie does not).
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

fn wait_until(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The first record of a run's supervisor stream: its pids.
fn start_record(lab: &TestLab, id: &str) -> serde_json::Value {
    let mut rec = serde_json::Value::Null;
    wait_until("the run started", 20, || {
        let text = std::fs::read_to_string(lab.run_dir(id).join("supervisor.jsonl")).unwrap_or_default();
        rec = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|r| r["t"] == "start")
            .unwrap_or_default();
        !rec.is_null()
    });
    rec
}

fn read_pid(lab: &TestLab, file: &str) -> i32 {
    let path = lab.path().join(file);
    wait_until(&format!("{file} is written"), 20, || std::fs::read_to_string(&path).is_ok_and(|s| s.ends_with('\n')));
    std::fs::read_to_string(&path).unwrap().trim().parse().unwrap()
}

#[test]
fn a_dead_supervisor_takes_its_command_with_it_and_keeps_what_was_flushed() {
    let lab = TestLab::new();
    let script = lab.write(
        "client.py",
        r#"
import time, labmate
labmate.init()
for i in range(50):
    labmate.log({"seen": float(i)}, step=i)
# Ready once the client's writer has written all 50 points.
labmate.run.flush()
open("ready", "w").close()
time.sleep(300)
"#,
    );
    let out = lab
        .cmd(&["run", "--detach", "--", "python3", script.to_str().unwrap()])
        .env("PYTHONPATH", crate::common::PYTHON)
        .env("LABMATE_FLUSH_INTERVAL", "0.05")
        .output()
        .unwrap();
    let id = stdout(&out).trim().to_string();
    wait_until("the script is ready", 20, || lab.path().join("ready").exists());
    let start = start_record(&lab, &id);
    let child = start["child_pid"].as_i64().unwrap() as i32;
    signal(start["pid"].as_i64().unwrap() as i32, libc::SIGKILL);
    wait_until("the command died with its supervisor", 20, || !alive(child));
    let run = lab.wait_for(&id, 10, |r| r["status"] == "lost");
    assert_eq!(run["metrics"]["seen"]["count"], 50);
    assert_eq!(run["reason"], "the supervisor died before the run ended");
}

/// A lab of one slot, whose run A lost its supervisor (SIGKILL) and left a
/// process of its own running (its pid in `bg.pid`, returned).
fn lab_with_a_killed_supervisor() -> (TestLab, i32) {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[queue]\nmax_concurrent = 1\n");
    let out = lab.run(&["run", "--detach", "--name", "A", "--", "sh", "-c", "sleep 300 & echo $! > bg.pid; wait"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let a = stdout(&out).trim().to_string();
    let bg = read_pid(&lab, "bg.pid");
    let start = start_record(&lab, &a);
    signal(start["pid"].as_i64().unwrap() as i32, libc::SIGKILL);
    let child = start["child_pid"].as_i64().unwrap() as i32;
    wait_until("A's command died with its supervisor", 20, || !alive(child));
    assert!(alive(bg), "what A's command started lives on until a reader finds A lost");
    (lab, bg)
}

#[test]
fn stop_ends_every_process_of_a_run_whose_supervisor_died_and_its_slot_waits_for_them() {
    let (lab, bg) = lab_with_a_killed_supervisor();

    let out = lab.run(&["stop", "A"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!alive(bg), "stop leaves no process of the run: {}", stderr(&out));
    let run = lab.show("A");
    assert_eq!(run["status"], "lost");
    assert!(run["reason"].as_str().unwrap().contains("ended 1 process of the run left running"), "{run:#}");

    // B waits for A's slot; when it starts, nothing of A lives.
    let out = lab.run(&["run", "--queue", "--name", "B", "--", "sh", "-c", ALIVE_CHECK]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "A-GONE");
}

#[test]
fn a_queued_run_waits_until_a_lost_run_has_no_process_left() {
    let (lab, bg) = lab_with_a_killed_supervisor();
    // Nobody looks at A: the queued run B finds it lost itself.
    let out = lab.run(&["run", "--queue", "--name", "B", "--", "sh", "-c", ALIVE_CHECK]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "A-GONE");
    assert!(!alive(bg));
    assert_eq!(lab.show("A")["status"], "lost");
}

#[test]
fn processes_the_command_leaves_behind_are_ended_at_the_runs_end() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--", "sh", "-c", "sleep 300 & echo $! > bg.pid; exit 0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = TestLab::started_id(&out);
    let bg = read_pid(&lab, "bg.pid");
    assert!(!alive(bg), "the background sleep outlived the run");
    let run = lab.show(&id);
    assert_eq!(run["status"], "finished");
    let events = stdout(&lab.run(&["events", &id]));
    assert!(events.contains("ended 1 process the command left running"), "{events}");
}

#[test]
fn an_environment_variable_that_is_not_utf8_is_kept_lossily_not_a_crash() {
    use std::os::unix::ffi::OsStrExt;
    let lab = TestLab::new();
    let out =
        lab.cmd(&["run", "--", "true"]).env("LABMATE_X", std::ffi::OsStr::from_bytes(b"caf\xe9")).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = TestLab::started_id(&out);
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.run_dir(&id).join("run.json")).unwrap()).unwrap();
    assert_eq!(spec["env"]["LABMATE_X"], "caf\u{fffd}");
}

#[test]
fn stop_and_the_baseline_record_who_acted_as_every_command_does() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--name", "base", "--", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = lab.cmd(&["baseline", "set", "base"]).env("LABMATE_AUTHOR", "agent:claude").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let baseline: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path().join(".labmate/baseline.json")).unwrap()).unwrap();
    assert_eq!(baseline["by"], "agent:claude");

    let out = lab.run(&["run", "--detach", "--name", "long", "--", "sleep", "300"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = lab.run(&["stop", "long", "--author", "alice", "--reason", "enough"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lab.show("long")["reason"], "stopped by alice: enough");
}

#[test]
fn a_supervisor_killed_while_it_writes_batches_keeps_every_whole_batch() {
    // The command prints metric lines in blocks, so each pipe read holds many
    // and the supervisor writes them as batch records; SIGKILL comes in the
    // middle of that. What it wrote reads back as the steps from 0 on, with
    // no gap and no step twice: a whole batch is kept, a torn one skipped.
    let lab = TestLab::new();
    let script = lab.write(
        "flood.py",
        "import sys, time\nstep = 0\nwhile True:\n    block = ''.join('##labmate {\"step\": %d, \"loss\": 0.5, \"seen\": %d.5}\\n' % (step + i, step + i) for i in range(200))\n    sys.stdout.write(block)\n    sys.stdout.flush()\n    step += 200\n    time.sleep(0.001)\n",
    );
    let out = lab.run(&["run", "--detach", "--", "python3", script.to_str().unwrap()]);
    let id = stdout(&out).trim().to_string();
    lab.wait_for(&id, 30, |r| r["metrics"]["seen"]["count"].as_u64().unwrap_or(0) >= 2000);
    let start = std::fs::read_to_string(lab.run_dir(&id).join("supervisor.jsonl")).unwrap();
    let start: serde_json::Value = serde_json::from_str(start.lines().next().unwrap()).unwrap();
    let (supervisor, pgid) = (start["pid"].as_i64().unwrap() as i32, start["pgid"].as_i64().unwrap() as i32);
    signal(supervisor, libc::SIGKILL);
    let run = lab.wait_for(&id, 10, |r| r["status"] != "running");
    wait_until("the command died with its supervisor", 20, || !alive(pgid));
    assert_eq!(run["status"], "lost");
    let written = std::fs::read_to_string(lab.run_dir(&id).join("supervisor.jsonl")).unwrap();
    assert!(
        written.contains("\"t\":\"batch\""),
        "metric lines went as batches: {}",
        &written[..written.len().min(400)]
    );
    let points = lab.json(&["metrics", &id, "seen", "--json"]);
    let points = points["seen"].as_array().unwrap();
    assert!(points.len() >= 2000, "{}", points.len());
    for (i, point) in points.iter().enumerate() {
        assert_eq!(point["step"], i as u64, "steps from 0 without a gap or a repeat");
        assert_eq!(point["value"], i as f64 + 0.5);
    }
    // A rebuilt index reads the same points from the folder.
    assert!(lab.run(&["reindex"]).status.success());
    let again = lab.json(&["metrics", &id, "seen", "--json"]);
    assert_eq!(again["seen"].as_array().unwrap().len(), points.len());
}
