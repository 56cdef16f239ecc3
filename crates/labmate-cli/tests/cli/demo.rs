//! The README's first command: `labmate demo` runs end to end.

use crate::common::{TestLab, stderr, stdout};

#[test]
fn the_demo_runs_a_sweep_and_the_babysitter_stops_the_diverging_runs() {
    let lab = TestLab::new();
    let out = lab.run(&["demo", "--dir", "demo"]);
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("all 8 runs ended"), "{text}");
    assert_eq!(text.matches(" finished ").count(), 6, "{text}");
    assert!(text.contains("the babysitter at work:\n  stopped lr3.0-s"), "{text}");
    assert!(text.contains("where everything is:"), "{text}");
    assert!(text.contains("config.lr  n  seeds"), "the groups across seeds: {text}");
    assert!(text.contains("B vs A: no detectable difference with 2 seeds each"), "the verdict: {text}");
    assert!(text.contains(" notebook check`: 0 mismatches)"), "{text}");
    assert!(text.contains("held for approval: request a-"), "{text}");
    let notebook = std::fs::read_to_string(lab.path().join("demo/LABNOTEBOOK.md")).unwrap();
    for part in [
        "· hypothesis ·",
        "| config.lr | n |",
        "· result ·",
        "**0.2548**",
        "![val_loss_by_lr](plots/val_loss_by_lr.png)",
    ] {
        assert!(notebook.contains(part), "the notebook lacks {part}:\n{notebook}");
    }
    let review: serde_json::Value =
        serde_json::from_slice(&lab.cmd(&["review", "--json"]).current_dir(demo_dir(&lab)).output().unwrap().stdout)
            .unwrap();
    assert!(review.to_string().contains("lr0.03-long"), "{review:#}");
    let png = std::fs::read(lab.path().join("demo/plots/val_loss_by_lr.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    let demo = lab.path().join("demo");
    assert!(demo.join(".labmate/lab.json").is_file());
    assert!(demo.join("train.py").is_file());
    let runs: serde_json::Value =
        serde_json::from_slice(&lab.cmd(&["runs", "--json"]).current_dir(&demo).output().unwrap().stdout).unwrap();
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 8);
    for r in runs {
        let diverging = r["config"]["lr"] == 3.0;
        assert_eq!(r["status"], if diverging { "stopped" } else { "finished" }, "{r:#}");
        assert!(r["git"]["commit"].is_string(), "the demo's runs carry its commit");
        assert_eq!(r["git"]["dirty"], false);
    }
    // The "try:" lines work as printed: labmate is not on this test's PATH,
    // so they name the binary by its path.
    let tries: Vec<&str> = text.split("try:\n").nth(1).unwrap().lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(tries[1].trim().starts_with(crate::common::BIN), "{}", tries[1]);
    for line in &tries[1..] {
        let command = line.split('#').next().unwrap().trim();
        let mut sh = std::process::Command::new("sh");
        lab.env(&mut sh);
        let out = sh.args(["-c", command]).current_dir(demo_dir(&lab)).output().unwrap();
        assert!(out.status.success(), "{command}: {}", stderr(&out));
    }
    let again = lab.run(&["demo", "--dir", "demo"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("already exists"));
}

fn demo_dir(lab: &TestLab) -> std::path::PathBuf {
    lab.path().join("demo")
}
