//! Runs on a real Slurm cluster (`.ci/run` starts a single-node one with
//! `../shared/slurm/start-local-slurm.sh`): submitted, queued then running,
//! stopped queued or running, killed by their time limit, waited on,
//! babysat inside the job, and a sweep as one job array.
//!
//! The cluster has few CPUs and these tests share it: a job may wait behind
//! another test's, so every wait is on a condition with a generous deadline.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{TestLab, needed, stderr, stdout};

/// Whether a Slurm cluster is there to submit to (`LABMATE_SLURM=1`).
fn cluster(test: &str) -> bool {
    needed("LABMATE_SLURM", "1 where a Slurm cluster answers sbatch (see ../shared/slurm/)", test).is_some()
}

/// Submits `labmate run --slurm ARGS`; returns the run id it prints.
fn submit(lab: &TestLab, args: &[&str]) -> String {
    let mut all = vec!["run", "--slurm"];
    all.extend(args);
    let out = lab.run(&all);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("submitted to Slurm as job"), "{}", stderr(&out));
    stdout(&out).trim().to_string()
}

fn job_id(lab: &TestLab, run: &str) -> String {
    let job: Value = serde_json::from_slice(&std::fs::read(lab.run_dir(run).join("slurm.json")).unwrap()).unwrap();
    job["job_id"].as_str().unwrap().to_string()
}

fn slurm_cmd(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_run_submitted_to_slurm_is_supervised_inside_its_job_and_finishes() {
    if !cluster("a_run_submitted_to_slurm_is_supervised_inside_its_job_and_finishes") {
        return;
    }
    let lab = TestLab::new();
    lab.write("labmate.toml", "[slurm]\ntime = \"10\"\nsbatch_args = [\"--comment=labmate-test\"]\n");
    let id = submit(
        &lab,
        &[
            "--name",
            "on-slurm",
            "--",
            "sh",
            "-c",
            "echo \"##labmate {\\\"step\\\": 1, \\\"loss\\\": 0.25}\"; echo out-of-job",
        ],
    );
    let script = std::fs::read_to_string(lab.run_dir(&id).join("slurm.sh")).unwrap();
    assert!(script.starts_with("#!/bin/bash\n"), "{script}");
    assert!(script.contains("#SBATCH --time=10\n"), "{script}");
    assert!(script.contains("#SBATCH --job-name=on-slurm\n"), "{script}");
    assert!(script.contains(&format!("__supervise --job '{}'", lab.run_dir(&id).display())), "{script}");

    let run = lab.wait_for(&id, 300, |r| r["status"] != "running" && r["status"] != "queued");
    assert_eq!(run["status"], "finished", "{run:#}");
    assert_eq!(run["metrics"]["loss"]["last"], 0.25, "{run:#}");
    let job = &run["slurm"];
    assert_eq!(job["job_id"], job_id(&lab, &id).as_str(), "{run:#}");
    assert_eq!(job["time_limit_min"], 10, "{run:#}");
    assert!(job["node"].as_str().is_some_and(|n| !n.is_empty()), "the node is recorded: {run:#}");
    assert!(job["partition"].as_str().is_some_and(|p| !p.is_empty()), "the partition is recorded: {run:#}");
    let logs = lab.run(&["logs", &id]);
    assert!(stdout(&logs).contains("out-of-job"), "{}", stdout(&logs));
    // The start record says where Slurm placed it.
    let stream = std::fs::read_to_string(lab.run_dir(&id).join("supervisor.jsonl")).unwrap();
    let start: Value = serde_json::from_str(stream.lines().find(|l| l.contains("\"start\"")).unwrap()).unwrap();
    assert_eq!(start["job"]["scheduler"], "slurm");
    assert_eq!(start["job"]["job_id"], job_id(&lab, &id).as_str());
    let comment = slurm_cmd("squeue", &["-h", "-t", "all", "-j", &job_id(&lab, &id), "-o", "%k"]);
    assert_eq!(comment.trim(), "labmate-test", "[slurm] sbatch_args reach sbatch");
}

#[test]
fn a_held_job_is_queued_with_slurms_reason_then_runs_and_waits_to_its_end() {
    if !cluster("a_held_job_is_queued_with_slurms_reason_then_runs_and_waits_to_its_end") {
        return;
    }
    let lab = TestLab::new();
    lab.write(
        "go.sh",
        "while [ ! -e go ]; do sleep 0.1; done\necho \"##labmate {\\\"step\\\": 3, \\\"acc\\\": 0.9}\"\nexit 3\n",
    );
    let id = submit(&lab, &["--sbatch-arg=--hold", "--", "sh", "go.sh"]);
    let run = lab.wait_for(&id, 60, |r| r["slurm"]["reason"] == "JobHeldUser");
    assert_eq!(run["status"], "queued", "{run:#}");
    assert_eq!(run["slurm"]["state"], "PENDING", "{run:#}");
    let status = stdout(&lab.run(&["status", &id]));
    assert!(status.contains("queued"), "{status}");
    assert!(status.contains(&format!("Slurm job {}", job_id(&lab, &id))) && status.contains("JobHeldUser"), "{status}");

    // Followed from while it waits: nobody holds its lock yet, and that is not its end.
    let follower = lab.cmd(&["logs", &id, "--follow"]).stdout(std::process::Stdio::piped()).spawn().unwrap();
    slurm_cmd("scontrol", &["release", &job_id(&lab, &id)]);
    let run = lab.wait_for(&id, 300, |r| r["status"] == "running");
    assert!(run["slurm"]["node"].is_string(), "{run:#}");
    lab.write("go", "");
    let out = lab.run(&["wait", &id, "--timeout", "300s"]);
    assert_eq!(out.status.code(), Some(3), "wait exits as the run did: {}{}", stdout(&out), stderr(&out));
    let run = lab.show(&id);
    assert_eq!((run["status"].as_str(), run["exit_code"].as_i64()), (Some("failed"), Some(3)), "{run:#}");
    assert_eq!(run["metrics"]["acc"]["last"], 0.9);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut follower = follower;
    while follower.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "logs --follow did not end with the run");
        std::thread::sleep(Duration::from_millis(100));
    }
    let followed = std::io::read_to_string(follower.stdout.take().unwrap()).unwrap();
    assert!(followed.contains("\"acc\": 0.9"), "{followed}");
}

#[test]
fn stopping_a_queued_or_a_running_job_cancels_it_and_the_run_ends_stopped_with_the_reason() {
    if !cluster("stopping_a_queued_or_a_running_job_cancels_it_and_the_run_ends_stopped_with_the_reason") {
        return;
    }
    let lab = TestLab::new();
    let queued = submit(&lab, &["--sbatch-arg=--hold", "--", "sleep", "300"]);
    lab.wait_for(&queued, 60, |r| r["status"] == "queued" && r["slurm"]["state"] == "PENDING");
    let out = lab.run(&["stop", &queued, "--reason", "not needed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = lab.wait_for(&queued, 120, |r| r["status"] != "queued");
    assert_eq!(run["status"], "stopped", "{run:#}");
    assert_eq!(run["reason"], "stopped by tester: not needed", "{run:#}");

    let running = submit(&lab, &["--", "sleep", "300"]);
    lab.wait_for(&running, 300, |r| r["status"] == "running");
    let out = lab.run(&["stop", &running, "--reason", "diverged"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = lab.wait_for(&running, 120, |r| r["status"] != "running");
    assert_eq!(run["status"], "stopped", "{run:#}");
    assert_eq!(run["reason"], "stopped by tester: diverged", "{run:#}");
    // Neither job is left in Slurm.
    for id in [&queued, &running] {
        let state = slurm_cmd("squeue", &["-h", "-t", "all", "-j", &job_id(&lab, id), "-o", "%T"]);
        assert!(!matches!(state.trim(), "PENDING" | "RUNNING"), "job of {id}: {state}");
    }
}

#[test]
fn a_job_killed_by_its_time_limit_ends_lost_with_timeout() {
    if !cluster("a_job_killed_by_its_time_limit_ends_lost_with_timeout") {
        return;
    }
    let lab = TestLab::new();
    // Slurm's shortest limit is a minute; it ends the job within about a minute more.
    let id = submit(&lab, &["--time", "1", "--", "sleep", "120"]);
    let run = lab.wait_for(&id, 400, |r| r["status"] != "running" && r["status"] != "queued");
    assert_eq!(run["status"], "lost", "{run:#}");
    let reason = run["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("Slurm job {} ended TIMEOUT", job_id(&lab, &id))), "{reason}");
    assert_eq!(run["slurm"]["state"], "TIMEOUT", "{run:#}");
    // What Slurm said is kept: a rebuilt index says the same without asking it.
    let lost: Value = serde_json::from_slice(&std::fs::read(lab.run_dir(&id).join("lost.json")).unwrap()).unwrap();
    assert_eq!(lost["job_end"]["state"], "TIMEOUT", "{lost}");
    assert!(lab.run(&["reindex"]).status.success());
    let again = lab.show(&id);
    assert_eq!((again["status"].clone(), again["reason"].clone()), (run["status"].clone(), run["reason"].clone()));
}

#[test]
fn babysitting_goes_on_inside_the_job_a_nan_stops_it() {
    if !cluster("babysitting_goes_on_inside_the_job_a_nan_stops_it") {
        return;
    }
    let lab = TestLab::new();
    lab.write(
        "nan.py",
        "import time\nfor i in range(5):\n    v = float('nan') if i == 4 else 1.0 / (i + 1)\n    print('##labmate {\"step\": %d, \"loss\": %r}' % (i, v), flush=True)\ntime.sleep(300)\n",
    );
    let id = submit(&lab, &["--", "python3", "nan.py"]);
    let run = lab.wait_for(&id, 400, |r| r["status"] != "running" && r["status"] != "queued");
    assert_eq!(run["status"], "stopped", "{run:#}");
    assert!(run["reason"].as_str().unwrap().starts_with("nonfinite: loss is NaN at step 4"), "{run:#}");
}

#[test]
fn a_sweep_on_slurm_is_one_job_array_run_at_most_k_at_a_time() {
    if !cluster("a_sweep_on_slurm_is_one_job_array_run_at_most_k_at_a_time") {
        return;
    }
    let lab = TestLab::new();
    let out = lab.run(&[
        "sweep",
        "--grid",
        "seed=1,2,3",
        "--slurm",
        "--time",
        "10",
        "--max-concurrent",
        "1",
        "--json",
        "--",
        "sh",
        "-c",
        "echo \"##labmate {{\\\"loss\\\": $1}}\"; sleep 1",
        "sh",
        "{seed}",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let array = sweep["slurm_array"].as_str().unwrap().to_string();
    assert_eq!(sweep["max_concurrent"], 1);
    let runs: Vec<String> = sweep["runs"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().into()).collect();
    assert_eq!(runs.len(), 3);
    let script =
        std::fs::read_to_string(lab.path().join(format!(".labmate/sweeps/{}.sh", sweep["id"].as_str().unwrap())))
            .unwrap();
    assert!(script.contains("#SBATCH --array=0-2%1\n"), "{script}");
    for (i, run) in runs.iter().enumerate() {
        assert_eq!(job_id(&lab, run), format!("{array}_{i}"));
    }
    let mut args = vec!["wait"];
    args.extend(runs.iter().map(String::as_str));
    args.extend(["--timeout", "400s"]);
    let out = lab.run(&args);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    // One at a time: each task started after the one before it ended.
    let mut spans = Vec::new();
    for (run, seed) in runs.iter().zip([1.0, 2.0, 3.0]) {
        let r = lab.show(run);
        assert_eq!(r["status"], "finished", "{r:#}");
        assert_eq!(r["metrics"]["loss"]["last"], seed);
        let stream = std::fs::read_to_string(lab.run_dir(run).join("supervisor.jsonl")).unwrap();
        let time = |t: &str| -> f64 {
            let line = stream.lines().find(|l| l.contains(&format!("\"t\":\"{t}\""))).unwrap();
            serde_json::from_str::<Value>(line).unwrap()["time"].as_f64().unwrap()
        };
        spans.push((time("start"), time("end")));
    }
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in spans.windows(2) {
        assert!(pair[1].0 >= pair[0].1, "two tasks ran at once: {spans:?}");
    }
    let status = lab.run(&["sweep", "status", sweep["id"].as_str().unwrap()]);
    assert!(stdout(&status).contains("3 finished"), "{}", stdout(&status));
    assert!(stdout(&status).contains(&format!("(Slurm job array {array}, at most 1 at once)")), "{}", stdout(&status));
    assert!(stdout(&status).contains(&format!("{array}_2")), "each run's task: {}", stdout(&status));
}

#[test]
fn bad_slurm_requests_are_refused_before_anything_is_submitted() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--slurm", "--time", "soon", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("bad time limit 'soon'"), "{}", stderr(&out));
    let out = lab.run(&["run", "--slurm", "--queue", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--queue and --slurm do not go together"), "{}", stderr(&out));
    let out = lab.run(&["run", "--partition", "gpu", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "--partition without --slurm: {}", stderr(&out));
    let out = lab.run(&["sweep", "--grid", "a=1,2", "--max-concurrent", "1", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--max-concurrent limits a sweep's job array on Slurm"), "{}", stderr(&out));
    // Without Slurm here, the run is made and ends failed, saying why.
    let out = lab.cmd(&["run", "--slurm", "--", "/bin/true"]).env("PATH", lab.path().join("no-bin")).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("could not run sbatch"), "{}", stderr(&out));
    let runs = lab.json(&["runs", "--json"]);
    assert_eq!(runs[0]["status"], "failed", "{runs:#}");
    assert!(
        runs[0]["reason"].as_str().unwrap().starts_with("not submitted to Slurm: sbatch did not take the job"),
        "{runs:#}"
    );
    std::fs::remove_dir_all(lab.path().join(".labmate/runs")).unwrap();
    lab.write("labmate.toml", "[slurm]\ntime = \"forever\"\n");
    let out = lab.run(&["run", "--slurm", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("[slurm] time"), "{}", stderr(&out));
    assert!(
        !lab.path().join(".labmate/runs").exists()
            || std::fs::read_dir(lab.path().join(".labmate/runs")).unwrap().next().is_none()
    );
}

#[test]
fn budgets_count_a_jobs_gpus_and_time_limit_and_approval_comes_before_submission() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[budget]\ndaily_run_hours = 1\n\n[approval]\nover_budget = false\ntags = [\"big\"]\n");
    // 2 GPUs x 40 minutes is 1.33 GPU-hours: over the day's budget, refused before sbatch.
    let out = lab.run(&["run", "--slurm", "--gpus", "2", "--time", "40", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("over budget: daily_run_hours 1"), "{}", stderr(&out));
    if !cluster("budgets_count_a_jobs_gpus_and_time_limit_and_approval_comes_before_submission") {
        return;
    }
    let out = lab.run(&["run", "--slurm", "--time", "10", "--tag", "big", "--", "true"]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let request = stdout(&out).trim().to_string();
    let runs = lab.path().join(".labmate/runs");
    assert!(!runs.exists() || std::fs::read_dir(&runs).unwrap().next().is_none(), "nothing submitted before the yes");
    let out = lab.run(&["approve", &request, "--author", "pi"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("submitted to Slurm as job"), "{}", stderr(&out));
    let id = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().file_name().to_string_lossy().into_owned();
    let run = lab.wait_for(&id, 300, |r| r["status"] != "running" && r["status"] != "queued");
    assert_eq!(run["status"], "finished", "{run:#}");
    assert!(run["slurm"]["job_id"].is_string(), "{run:#}");
}

#[test]
fn stopping_a_sweep_on_slurm_cancels_its_job_array_and_every_run_ends_stopped() {
    if !cluster("stopping_a_sweep_on_slurm_cancels_its_job_array_and_every_run_ends_stopped") {
        return;
    }
    let lab = TestLab::new();
    let out =
        lab.run(&["sweep", "--grid", "seed=1,2,3", "--slurm", "--sbatch-arg=--hold", "--json", "--", "sleep", "300"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sweep: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = sweep["id"].as_str().unwrap();
    let runs: Vec<String> = sweep["runs"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().into()).collect();
    for run in &runs {
        lab.wait_for(run, 60, |r| r["slurm"]["reason"] == "JobHeldUser");
    }
    let out = lab.run(&["stop", id, "--reason", "wrong grid"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for run in &runs {
        let r = lab.wait_for(run, 120, |r| r["status"] != "queued");
        assert_eq!(r["status"], "stopped", "{r:#}");
        assert_eq!(r["reason"], format!("stopped by tester: sweep {id}: wrong grid"), "{r:#}");
    }
    let array = sweep["slurm_array"].as_str().unwrap();
    let states = slurm_cmd("squeue", &["-h", "-r", "-t", "all", "-j", array, "-o", "%T"]);
    assert!(states.lines().all(|s| s.trim() == "CANCELLED"), "{states}");
}

#[test]
fn a_lab_in_a_folder_with_spaces_and_a_run_named_like_a_command_submit_as_they_are() {
    if !cluster("a_lab_in_a_folder_with_spaces_and_a_run_named_like_a_command_submit_as_they_are") {
        return;
    }
    let lab = TestLab::new();
    let folder = lab.path().join("my project");
    std::fs::create_dir_all(&folder).unwrap();
    let out = lab
        .cmd(&["run", "--slurm", "--name", "x $(touch pwned) y", "--", "sh", "-c", "pwd"])
        .current_dir(&folder)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    let deadline = Instant::now() + Duration::from_secs(300);
    let run = loop {
        let out = lab.cmd(&["show", &id, "--json"]).current_dir(&folder).output().unwrap();
        let run: Value = serde_json::from_slice(&out.stdout).unwrap();
        if run["status"] != "queued" && run["status"] != "running" {
            break run;
        }
        assert!(Instant::now() < deadline, "{run:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(run["status"], "finished", "{run:#}");
    assert_eq!(run["name"], "x $(touch pwned) y");
    let output = std::fs::read_to_string(folder.join(".labmate/runs").join(&id).join("output.log")).unwrap();
    assert_eq!(output.trim(), folder.display().to_string(), "the job ran in the launch's folder");
    assert!(!folder.join("pwned").exists() && !lab.path().join("pwned").exists(), "a name is never run");
}
