//! The dashboard in a real browser: Chromium, headless, driven by
//! playwright-core (`crates/labmate-server/tests/browser/pages.mjs`) over a
//! lab this test writes: runs whose names, tags, config, metric keys,
//! output and notebook text are HTML payloads; a live run; a held approval;
//! a run whose metrics are defined on a step metric.
//!
//! It needs Node, Chromium (`/usr/bin/chromium`, or `LABMATE_CHROMIUM`) and
//! the playwright-core package (its folder in `LABMATE_PLAYWRIGHT`), which
//! `.ci/run` installs. Without them the test fails in CI (`LABMATE_CI` set)
//! and says it did not run anywhere else.

use std::path::PathBuf;

use crate::common::TestLab;
use crate::common::http::Server;

const PAYLOAD: &str = "<img src=x onerror=\"window.__xss=1\">";

fn tools() -> Option<(String, String)> {
    let playwright = std::env::var("LABMATE_PLAYWRIGHT").ok();
    let chromium = std::env::var("LABMATE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (playwright.is_none(), "LABMATE_PLAYWRIGHT (the playwright-core package's folder)"),
        (!std::path::Path::new(&chromium).exists(), "Chromium (/usr/bin/chromium or LABMATE_CHROMIUM)"),
        (!node, "node"),
    ]
    .into_iter()
    .filter_map(|(missing, what)| missing.then_some(what))
    .collect();
    if missing.is_empty() {
        return playwright.map(|p| (p, chromium));
    }
    assert!(std::env::var_os("LABMATE_CI").is_none(), "CI must provide {}", missing.join(", "));
    eprintln!("NOTE: the browser test did not run: it needs {} (.ci/run installs them)", missing.join(", "));
    None
}

#[test]
fn every_page_in_a_real_browser_shows_the_lab_and_runs_no_injected_script() {
    let Some((playwright, chromium)) = tools() else { return };
    let lab = TestLab::new();
    lab.write("labmate.toml", "[approval]\ntags = [\"big\"]\n");
    let plain = lab.write(
        "plain.py",
        "import sys\nlr = float(sys.argv[1])\nfor i in range(50):\n    print('##labmate {\"step\": %d, \"loss\": %r}' % (i, lr / (i + 1)))\n",
    );
    let mut ids = std::collections::BTreeMap::new();
    for (name, lr) in [("a", "0.1"), ("b", "0.2")] {
        let out = lab.run(&[
            "run",
            "--name",
            name,
            "--config",
            &format!("lr={lr}"),
            "--",
            "python3",
            plain.to_str().unwrap(),
            lr,
        ]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ids.insert(name, lab.json(&["show", name, "--json"])["id"].as_str().unwrap().to_string());
    }
    // Every text a person sees, as a payload.
    let xss = lab.write(
        "xss.py",
        "import json\nkey = '<img src=x onerror=\"window.__xss=4\">'\nprint('<img src=x onerror=\"window.__xss=1\"> in the output')\n\
         for i in range(20):\n    print('##labmate ' + json.dumps({\"step\": i, key: float(\"nan\") if i >= 10 else 1.0 / (i + 1), \"loss\": 1.0 / (i + 1)}))\n",
    );
    let out = lab.run(&[
        "run",
        "--name",
        PAYLOAD,
        "--tag",
        "<script>window.__xss=2</script>",
        "--config",
        "payload=<img src=x onerror=\"window.__xss=3\">",
        "--",
        "python3",
        xss.to_str().unwrap(),
    ]);
    let xss_id = TestLab::started_id(&out);
    ids.insert("xss", xss_id.clone());
    let note = lab.run(&[
        "note",
        "--kind",
        "observation",
        "--run",
        &xss_id,
        &format!("The run {PAYLOAD} went NaN; loss was {{{{{}.metrics.loss.last}}}} on a.", ids["a"]),
    ]);
    assert!(note.status.success(), "{}", String::from_utf8_lossy(&note.stderr));

    // A run whose train/ metrics are defined on a step metric of their own.
    let mut records =
        String::from("{\"t\":\"define\",\"time\":1,\"metric\":\"train/*\",\"step_metric\":\"train/global_step\"}\n");
    for i in 0..30 {
        records.push_str(&format!(
            "{{\"t\":\"log\",\"step\":{i},\"time\":{},\"data\":{{\"train/loss\":{},\"train/global_step\":{},\"val_loss\":{}}}}}\n",
            1_800_000_000 + i,
            1.0 / (i + 1) as f64,
            i * 64,
            2.0 / (i + 1) as f64
        ));
    }
    lab.write("steps.jsonl", &records);
    let append = "cat steps.jsonl >> \"$LABMATE_RUN_DIR/client-7.jsonl\"";
    let out = lab.run(&["run", "--name", "steps", "--", "sh", "-c", append]);
    ids.insert("steps", TestLab::started_id(&out));

    // A live run: one more point once the page is watching.
    let go: PathBuf = lab.path().join("go");
    let live = lab.write(
        "live.py",
        "import os, time\nt_end = time.time() + 600\nfor i in range(20):\n    print('##labmate {\"step\": %d, \"loss\": %r}' % (i, 1.0 / (i + 1)), flush=True)\n\
         while not os.path.exists('go') and time.time() < t_end:\n    time.sleep(0.05)\nprint('##labmate {\"step\": 20, \"loss\": 0.125}', flush=True)\n\
         while not os.path.exists('end') and time.time() < t_end:\n    time.sleep(0.05)\n",
    );
    let out = lab.run(&["run", "--detach", "--name", "live", "--", "python3", live.to_str().unwrap()]);
    let live_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    lab.wait_for(&live_id, 30, |r| r["metrics"]["loss"]["count"] == 20);
    ids.insert("live", live_id.clone());

    // A held launch for the human to approve.
    let held = lab.run(&["run", "--tag", "big", "--name", "held", "--", "python3", "-c", "print(1)"]);
    assert_eq!(held.status.code(), Some(6), "{}", String::from_utf8_lossy(&held.stderr));
    let request = String::from_utf8_lossy(&held.stdout).trim().to_string();

    let server = Server::start(&lab, &["--user", "ana"]);
    let readonly = Server::start(&lab, &[]);
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let spec = serde_json::json!({
        "url": server.url,
        "readonly_url": readonly.url,
        "shots": shots,
        "runs": ids,
        "request": request,
        "go_file": go,
        "live_value": 0.125,
    });
    let spec_path = lab.write("spec.json", &spec.to_string());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../labmate-server/tests/browser/pages.mjs");
    let out = std::process::Command::new("node")
        .args([script, spec_path.to_str().unwrap()])
        .env("LABMATE_PLAYWRIGHT", &playwright)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs");
    lab.write("end", "");
    lab.wait_for(&live_id, 30, |r| r["status"] != "running");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser checks failed (screenshots in {}):\n{text}", shots.display());
    assert!(text.contains("ok "), "{text}");
}
