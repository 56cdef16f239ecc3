//! Many runs writing at once while readers poll: every point arrives, and no
//! reader ever sees "database is locked".

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{TestLab, stderr, stdout};

const STEPS: usize = 5000;

#[test]
fn eight_runs_at_once_with_a_polling_reader_lose_nothing() {
    let lab = TestLab::new();
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/python");
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
                while !done.load(Ordering::SeqCst) {
                    let out = std::process::Command::new(common::BIN)
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
    assert!(polls.load(Ordering::SeqCst) > 2);
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
