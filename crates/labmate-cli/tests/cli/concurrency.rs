//! Many runs writing at once while readers poll: every point arrives, and no
//! reader ever sees "database is locked".

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::{TestLab, stderr, stdout};

const STEPS: usize = 5000;

#[test]
fn eight_runs_at_once_with_a_polling_reader_lose_nothing() {
    let lab = TestLab::new();
    let python = crate::common::PYTHON;
    lab.write(
        "lines.py",
        &format!("for i in range({STEPS}):\n    print('##labmate {{\"step\": %d, \"loss\": %r, \"acc\": 0.5}}' % (i, 1.0 / (i + 1)))\n"),
    );
    lab.write(
        "client.py",
        &format!("import labmate\nlabmate.init()\nfor i in range({STEPS}):\n    labmate.log({{'loss': 1.0 / (i + 1), 'acc': 0.5}}, step=i)\nlabmate.finish()\n"),
    );
    let mut ids = Vec::new();
    for i in 0..8 {
        let script = if i % 2 == 0 { "lines.py" } else { "client.py" };
        let out = lab
            .cmd(&["run", "--detach", "--name", &format!("w{i}"), "--", "python3", script])
            .env("PYTHONPATH", python)
            .env("LABMATE_FLUSH_INTERVAL", "0.05")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        ids.push(stdout(&out).trim().to_string());
    }

    let done = Arc::new(AtomicBool::new(false));
    let polls = Arc::new(AtomicUsize::new(0));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (done, polls) = (done.clone(), polls.clone());
            let cmd_lab = lab.path().to_path_buf();
            std::thread::spawn(move || {
                // A few polls at least, however fast the runs end.
                let mut mine = 0;
                while !done.load(Ordering::SeqCst) || mine < 3 {
                    mine += 1;
                    let out = std::process::Command::new(crate::common::BIN)
                        .args(["runs", "--json"])
                        .current_dir(&cmd_lab)
                        .env("HOME", &cmd_lab)
                        .output()
                        .unwrap();
                    assert!(out.status.success(), "a reader failed: {}", String::from_utf8_lossy(&out.stderr));
                    let _: serde_json::Value = serde_json::from_slice(&out.stdout).expect("runs --json parses");
                    polls.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(120);
    let runs = loop {
        let runs = lab.json(&["runs", "--json"]);
        if runs.as_array().unwrap().iter().all(|r| r["status"] != "running") {
            break runs;
        }
        assert!(Instant::now() < deadline, "runs did not end: {runs:#}");
        std::thread::sleep(Duration::from_millis(100));
    };
    done.store(true, Ordering::SeqCst);
    for r in readers {
        r.join().expect("reader thread");
    }
    assert_eq!(runs.as_array().unwrap().len(), 8);
    for run in runs.as_array().unwrap() {
        assert_eq!(run["status"], "finished", "{run:#}");
        for key in ["loss", "acc"] {
            assert_eq!(run["metrics"][key]["count"], STEPS, "{}: {key}", run["name"]);
        }
        assert_eq!(run["metrics"]["loss"]["last_step"], STEPS - 1);
    }
    for id in &ids {
        let series = lab.json(&["metrics", id, "loss", "--json"]);
        let steps: Vec<i64> = series["loss"].as_array().unwrap().iter().map(|p| p["step"].as_i64().unwrap()).collect();
        assert_eq!(steps, (0..STEPS as i64).collect::<Vec<_>>());
    }
}

#[test]
fn readers_racing_to_create_the_index_all_succeed() {
    // A fresh index is switched to WAL and given its tables by whichever
    // reader comes first; the others must wait, not fail with "database is locked".
    let lab = TestLab::new();
    assert!(lab.run(&["init"]).status.success());
    for _ in 0..30 {
        for f in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
            let _ = std::fs::remove_file(lab.path().join(".labmate").join(f));
        }
        let readers: Vec<_> = (0..6)
            .map(|_| lab.cmd(&["runs", "--json"]).stderr(std::process::Stdio::piped()).spawn().unwrap())
            .collect();
        for r in readers {
            let out = r.wait_with_output().unwrap();
            assert!(out.status.success(), "a reader failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

/// Readers, `reindex` and runs writing, while the index is deleted under
/// them again and again: no command fails, and the answers afterwards are
/// those of a fresh index.
#[test]
fn deleting_or_rebuilding_the_index_under_load_fails_no_reader() {
    let lab = TestLab::new();
    lab.write(
        "steps.py",
        "import sys, time\nfor i in range(int(sys.argv[1])):\n    print('##labmate {\"step\": %d, \"loss\": %r}' % (i, 1.0 / (i + 1)), flush=True)\n    time.sleep(float(sys.argv[2]))\n",
    );
    for i in 0..4 {
        let out = lab.run(&["run", "--name", &format!("done{i}"), "--", "python3", "steps.py", "200", "0"]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    // Two runs go on writing for the whole test; they are stopped at its end.
    let live: Vec<String> = (0..2)
        .map(|i| {
            let out = lab.run(&[
                "run",
                "--detach",
                "--name",
                &format!("live{i}"),
                "--",
                "python3",
                "steps.py",
                "100000",
                "0.002",
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
            stdout(&out).trim().to_string()
        })
        .collect();

    let index = lab.path().join(".labmate/index.sqlite");
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let remaining = Arc::new(AtomicUsize::new(5));
    let command = |args: &'static [&'static str], rounds: usize| {
        let (failures, remaining) = (failures.clone(), remaining.clone());
        let mut cmd = lab.cmd(args);
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let cmd = std::sync::Mutex::new(cmd);
        std::thread::spawn(move || {
            for _ in 0..rounds {
                let out = cmd.lock().unwrap().output().unwrap();
                if !out.status.success() {
                    failures.lock().unwrap().push(format!("{args:?}: {}", String::from_utf8_lossy(&out.stderr)));
                } else if args[0] != "reindex" && serde_json::from_slice::<serde_json::Value>(&out.stdout).is_err() {
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{args:?}: not JSON: {}", String::from_utf8_lossy(&out.stdout)));
                }
            }
            remaining.fetch_sub(1, Ordering::SeqCst);
        })
    };
    let workers = vec![
        command(&["runs", "--json"], 30),
        command(&["runs", "--json"], 30),
        command(&["status", "--json"], 30),
        command(&["show", "done1", "--json"], 30),
        command(&["reindex"], 10),
    ];
    // Delete the index under them, alternately alone and with its -wal and -shm.
    let mut round = 0;
    while remaining.load(Ordering::SeqCst) > 0 {
        let _ = std::fs::remove_file(&index);
        if round % 2 == 1 {
            for suffix in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(index.with_file_name(format!("index.sqlite{suffix}")));
            }
        }
        round += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    for w in workers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{} of the commands failed, first: {}", failures.len(), failures[0]);

    for id in &live {
        assert!(lab.run(&["stop", id]).status.success());
    }
    lab.wait_for(&live[0], 60, |r| r["status"] != "running");
    lab.wait_for(&live[1], 60, |r| r["status"] != "running");
    let answer = lab.json(&["runs", "--json"]);
    assert!(lab.run(&["reindex"]).status.success());
    assert_eq!(lab.json(&["runs", "--json"]), answer, "a fresh index answers the same");
    for i in 0..4 {
        let series = lab.json(&["metrics", &format!("done{i}"), "loss", "--json"]);
        assert_eq!(series["loss"].as_array().unwrap().len(), 200);
    }
}
