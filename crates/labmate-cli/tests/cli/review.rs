//! The human's gates through the real binary: policy mistakes, gate
//! commands, approvals end to end, budgets, review items and disputes,
//! diffstat checkpoints.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{TestLab, stderr, stdout};
use serde_json::Value;

fn spec(lab: &TestLab, id: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(lab.run_dir(id).join("run.json")).unwrap()).unwrap()
}

fn runs(lab: &TestLab) -> Vec<Value> {
    lab.json(&["runs", "--json"]).as_array().unwrap().clone()
}

/// `labmate ARGS` as `author` (through LABMATE_AUTHOR).
fn run_as(lab: &TestLab, author: &str, args: &[&str]) -> std::process::Output {
    lab.cmd(args).env("LABMATE_AUTHOR", author).output().unwrap()
}

/// Asks for a launch that needs approval; returns the request id.
fn request(lab: &TestLab, args: &[&str]) -> String {
    let out = lab.run(args);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(id.starts_with("a-"), "{id}");
    assert!(
        stderr(&out).contains(&format!("): request {id}; a human answers with labmate approve {id}")),
        "{}",
        stderr(&out)
    );
    id
}

/// The first pending request, once there is one (the lab may not exist yet).
fn pending_request(lab: &TestLab) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = lab.run(&["review", "--json"]);
        if out.status.success() {
            let pending: Value = serde_json::from_slice(&out.stdout).unwrap();
            if let Some(id) = pending["requests"][0]["id"].as_str() {
                return id.to_string();
            }
        }
        assert!(Instant::now() < deadline, "no request appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn policy_mistakes_name_the_key_and_line_and_launch_nothing() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[queue]\nmax_concurrent = 2\n\n[budget]\nmax_run_minute = 30\n");
    let out = lab.run(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("labmate.toml") && err.contains("line 5") && err.contains("max_run_minute"), "{err}");

    lab.write("labmate.toml", "[gates]\ncommands = [\"pytest -q tests/\"]\n");
    let out = lab.run(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("line 2") && err.contains("commands = [\"pytest -q tests/\"]"), "{err}");
    assert!(err.contains("a gate is an argv array like [\"pytest\", \"-q\", \"tests/\"]"), "{err}");
    assert!(runs(&lab).is_empty());
}

#[test]
fn a_failing_gate_refuses_the_launch_and_a_passing_one_is_recorded() {
    let lab = TestLab::new();
    lab.write("check.sh", "echo collecting\necho 'test_loss FAILED: expected 0.1, got nan' >&2\nexit 1\n");
    lab.write("labmate.toml", "[gates]\ncommands = [[\"sh\", \"check.sh\"]]\n");
    let out = lab.run(&["run", "--name", "x", "--", "python3", "-c", "print('trained')"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("gate failed: sh check.sh (exit code 1"), "{err}");
    assert!(err.contains("nothing was recorded"), "{err}");
    // Both streams, in the order they were read.
    assert!(err.contains("\ncollecting\n") && err.contains("\ntest_loss FAILED: expected 0.1, got nan"), "{err}");
    assert!(!stdout(&out).contains("trained"));
    assert!(runs(&lab).is_empty(), "a refused launch records no run");

    lab.write("labmate.toml", "[gates]\ncommands = [[\"python3\", \"-c\", \"print('ok')\"], [\"true\"]]\n");
    let out = lab.run(&["run", "--", "python3", "-c", "print('trained')"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("labmate: gate passed: python3 -c print('ok') ("), "{}", stderr(&out));
    let gates = &spec(&lab, &TestLab::started_id(&out))["gates"];
    assert_eq!(gates.as_array().unwrap().len(), 2, "{gates:#}");
    assert_eq!(gates[0]["command"], serde_json::json!(["python3", "-c", "print('ok')"]));
    assert_eq!((gates[0]["exit_code"].clone(), gates[0]["passed"].clone()), (0.into(), true.into()));
    assert!(gates[0]["duration_s"].as_f64().unwrap() >= 0.0);
}

#[test]
fn a_launch_needing_approval_waits_for_another_human_and_then_runs() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[approval]\ntags = [\"big\"]\n");
    let id = request(
        &lab,
        &[
            "run",
            "--tag",
            "big",
            "--name",
            "wide",
            "--author",
            "agent:claude",
            "--",
            "sh",
            "-c",
            "echo trained; exit 0",
        ],
    );
    assert!(runs(&lab).is_empty(), "nothing runs before the approval");
    let pending = lab.json(&["review", "--json"]);
    let r = &pending["requests"][0];
    assert_eq!((r["id"].as_str(), r["state"].as_str()), (Some(id.as_str()), Some("pending")), "{pending:#}");
    assert_eq!(r["author"], "agent:claude");
    assert_eq!(r["reason"], serde_json::json!(["tag big"]));
    assert_eq!(r["launch"]["command"], serde_json::json!(["sh", "-c", "echo trained; exit 0"]));
    assert_eq!(r["launch"]["name"], "wide");
    assert!(stdout(&lab.run(&["review"])).contains(&format!("{id}  by agent:claude")));

    // An agent cannot approve its own request, nor any other agent it.
    let out = run_as(&lab, "agent:claude", &["approve", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("an agent cannot approve"), "{}", stderr(&out));
    let out = lab.run(&["approve", &id, "--author", "agent:claude"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("an agent cannot approve its own request"), "{}", stderr(&out));
    let out = lab.run(&["approve", &id, "--author", "agent:codex"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("agent:codex is an agent"), "{}", stderr(&out));
    assert!(runs(&lab).is_empty());

    let out = lab.run(&["approve", &id[..6], "--note", "fine, one seed"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = stdout(&out).trim().to_string();
    assert!(stderr(&out).contains(&format!("request {id} approved by tester")), "{}", stderr(&out));
    let shown = lab.wait_for(&run, 30, |r| r["status"] == "finished");
    assert_eq!(shown["name"], "wide");
    assert_eq!(shown["tags"], serde_json::json!(["big"]));
    assert_eq!(spec(&lab, &run)["author"], "agent:claude");
    let log = std::fs::read_to_string(lab.run_dir(&run).join("output.log")).unwrap();
    assert_eq!(log, "trained\n");

    assert_eq!(lab.json(&["review", "--json"])["requests"], serde_json::json!([]));
    let all = lab.json(&["review", "--json", "--all"]);
    let r = &all["requests"][0];
    assert_eq!(r["state"], "approved");
    assert_eq!(r["decision"]["by"], "tester");
    assert_eq!(r["decision"]["note"], "fine, one seed");
    assert_eq!(r["decision"]["launched"], run.as_str());
    assert!(r["decision"]["time"].as_f64().unwrap() > 1.7e9);

    // The decision is in the notebook, by the one who made it, citing the run.
    let notebook = std::fs::read_to_string(lab.path().join("LABNOTEBOOK.md")).unwrap_or_default();
    let entry = format!(
        "Approved the launch {id} asked for by agent:claude (tag big): `sh -c echo trained; exit 0`; it runs as {run}. Note: fine, one seed"
    );
    assert!(notebook.contains(&entry), "{notebook}");
    assert!(
        notebook.contains(&format!("\"kind\":\"decision\",\"author\":\"tester\",\"runs\":[\"{run}\"]")),
        "{notebook}"
    );

    let out = lab.run(&["approve", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("already approved by tester"), "{}", stderr(&out));
    assert_eq!(runs(&lab).len(), 1, "approved once, launched once");
}

#[test]
fn a_requester_cannot_approve_its_own_request_and_a_rejection_needs_a_reason() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[approval]\nagent = true\nagents = [\"claude\"]\n");
    // Any launch by an agent needs approval; the human's own launches do not.
    let out = lab.run(&["run", "--", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = request(&lab, &["run", "--author", "claude", "--", "true"]);

    let out = run_as(&lab, "claude", &["reject", &id, "--reason", "no"]);
    assert_eq!(out.status.code(), Some(2));
    let out = lab.run(&["reject", &id]);
    assert_eq!(out.status.code(), Some(2), "--reason is required");
    let out = lab.run(&["reject", &id, "--reason", "sweep the small model first"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("request {id} rejected by tester")), "{}", stderr(&out));
    let all = lab.json(&["review", "--json", "--all"]);
    assert_eq!(all["requests"][0]["state"], "rejected");
    assert_eq!(all["requests"][0]["decision"]["note"], "sweep the small model first");
    assert_eq!(all["requests"][0]["decision"]["launched"], Value::Null);
    assert_eq!(runs(&lab).len(), 1, "a rejected launch never runs");

    // A human's request is refused to that same human too.
    lab.write("labmate.toml", "[approval]\ntags = [\"big\"]\n");
    let id = request(&lab, &["run", "--tag", "big", "--", "true"]);
    let out = lab.run(&["approve", &id]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the approver must differ from the requester"), "{}", stderr(&out));
}

#[test]
fn wait_approval_follows_the_run_once_another_process_approves() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[approval]\ntags = [\"big\"]\n");
    let waiter = lab
        .cmd(&["run", "--tag", "big", "--wait-approval", "--", "sh", "-c", "echo from the run; exit 3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = pending_request(&lab);
    let out = run_as(&lab, "alice", &["approve", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let run = stdout(&out).trim().to_string();
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{id}\nfrom the run\n"));
    let err = stderr(&out);
    assert!(err.contains(&format!("request {id} approved by alice")), "{err}");
    assert!(err.contains(&format!("labmate: run {run} failed (exit code 3)")), "{err}");
    assert_eq!(runs(&lab).len(), 1, "only the approver launched");

    let waiter = lab
        .cmd(&["run", "--tag", "big", "--wait-approval", "--", "true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = pending_request(&lab);
    assert!(run_as(&lab, "alice", &["reject", &id, "--reason", "not now"]).status.success());
    let out = waiter.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("request {id} rejected by alice: not now")), "{}", stderr(&out));
}

#[test]
fn max_run_minutes_stops_a_run() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[budget]\nmax_run_minutes = 0.02\n");
    // `sleep 30` would exit 0; 143 is the budget's SIGTERM.
    let out = lab.run(&["run", "--", "sleep", "30"]);
    assert_eq!(out.status.code(), Some(143), "{}", stderr(&out));
    let run = lab.show(&TestLab::started_id(&out));
    assert_eq!(run["status"], "stopped");
    assert_eq!(run["reason"], "budget: max_run_minutes (0.02) exceeded");
    let alert = run["events"].as_array().unwrap().iter().find(|e| e["kind"] == "alert").unwrap().clone();
    assert_eq!(alert["data"]["rule"], "budget");
    assert!(run["duration_s"].as_f64().unwrap() >= 1.2, "{run:#}");
}

#[test]
fn over_the_daily_budget_a_launch_needs_approval_or_is_refused() {
    let lab = TestLab::new();
    // 0.0002 h is 0.72 s: one run of a second spends it.
    lab.write("labmate.toml", "[budget]\ndaily_run_hours = 0.0002\n");
    assert!(lab.run(&["run", "--", "sleep", "1"]).status.success());
    let id = request(&lab, &["run", "--", "true"]);
    let r = &lab.json(&["review", "--json"])["requests"][0];
    assert_eq!(r["id"].as_str(), Some(id.as_str()));
    let reason = r["reason"][0].as_str().unwrap();
    assert!(reason.starts_with("over budget: daily_run_hours 0.0002 (used 0.000"), "{reason}");

    // Per author: another author's budget is untouched, this author's is spent.
    lab.write("labmate.toml", "[budget.authors.tester]\ndaily_run_hours = 0.0002\n");
    assert!(lab.run(&["run", "--author", "bob", "--", "true"]).status.success());
    request(&lab, &["run", "--", "true"]);

    lab.write("labmate.toml", "[budget]\ndaily_run_hours = 0.0002\n[approval]\nover_budget = false\n");
    let out = lab.run(&["run", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("over budget: daily_run_hours 0.0002"), "{}", stderr(&out));
    assert!(stderr(&out).contains("the launch is refused"), "{}", stderr(&out));
}

#[test]
fn a_disputed_review_item_shows_in_status_until_resolved() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--name", "base", "--", "true"]);
    let run = TestLab::started_id(&out);
    let out =
        run_as(&lab, "agent:claude", &["review", "request", "--run", "base", "--note", "lr 3e-4 beats the baseline"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let item = stdout(&out).trim().to_string();
    assert!(item.starts_with("v-"), "{item}");
    let listed = lab.json(&["review", "--json"]);
    assert_eq!(listed["items"][0]["run"], run.as_str());
    assert_eq!(listed["items"][0]["state"], "pending");
    assert_eq!(listed["items"][0]["author"], "agent:claude");

    let out = run_as(&lab, "agent:claude", &["reject", &item, "--reason", "x"]);
    assert_eq!(out.status.code(), Some(2), "an agent does not review");
    let out = lab.run(&["reject", &item, "--reason", "one seed each: run 3 more"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = stdout(&lab.run(&["status"]));
    assert!(
        status.contains(&format!(
            "disputed {item} on {run}: lr 3e-4 beats the baseline -- tester: one seed each: run 3 more"
        )),
        "{status}"
    );
    let out = lab.run(&["status", "--json"]);
    assert!(serde_json::from_slice::<Value>(&out.stdout).unwrap().is_array());
    assert!(stderr(&out).contains(&format!("disputed {item}")), "{}", stderr(&out));
    assert_eq!(lab.json(&["review", "--json"])["items"][0]["state"], "disputed");

    let out = lab.run(&["review", "resolve", &item, "--note", "3 seeds agree"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stdout(&lab.run(&["status"])).contains("disputed"));
    assert_eq!(lab.json(&["review", "--json"])["items"], serde_json::json!([]));

    // Accepting closes an item at once.
    let out = run_as(&lab, "agent:claude", &["review", "request", "--note", "new data loader design"]);
    let other = stdout(&out).trim().to_string();
    assert!(lab.run(&["approve", &other]).status.success());
    let all = lab.json(&["review", "--json", "--all"]);
    let states: Vec<&str> = all["items"].as_array().unwrap().iter().map(|i| i["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["resolved", "accepted"]);
}

#[test]
fn diffstat_counts_lines_files_and_new_dependencies() {
    let lab = TestLab::with_git();
    lab.write("requirements.txt", "numpy==1.26\n");
    lab.git(&["add", "-A"]);
    lab.git(&["commit", "-q", "-m", "deps"]);
    let a = TestLab::started_id(&lab.run(&["run", "--", "true"]));

    lab.write("requirements.txt", "numpy==1.26\ntorch>=2.1  # the new model\n");
    lab.write("train.txt", "v2\n");
    lab.write("model.py", "import torch\n\nmodel = torch.nn.Linear(2, 2)\n");
    let d = lab.json(&["diffstat", "--json"]);
    assert_eq!(d["from"], format!("run {a} (the newest run; no baseline is set)"));
    assert_eq!(d["to"], "the working tree");
    assert_eq!(
        (d["files_changed"].as_u64(), d["lines_added"].as_u64(), d["lines_removed"].as_u64()),
        (Some(3), Some(5), Some(1))
    );
    assert_eq!(d["new_files"], serde_json::json!(["model.py"]));
    assert_eq!(
        d["new_dependencies"],
        serde_json::json!([{"file": "requirements.txt", "name": "torch", "spec": "torch>=2.1"}])
    );
    let text = stdout(&lab.run(&["diffstat"]));
    assert!(text.contains("+5 -1 lines in 3 files (1 new); new dependencies: torch"), "{text}");
    assert!(text.contains("model.py          +3 -0  (new)"), "{text}");

    // A run's code state is its commit and patch (its untracked files were not recorded).
    let b = TestLab::started_id(&lab.run(&["run", "--", "true"]));
    let d = lab.json(&["diffstat", &b, "--json"]);
    assert_eq!(d["from"], format!("run {a} (the run before; no baseline is set)"));
    assert_eq!(
        (d["files_changed"].as_u64(), d["lines_added"].as_u64(), d["lines_removed"].as_u64()),
        (Some(2), Some(2), Some(1))
    );
    assert_eq!(d["new_dependencies"][0]["name"], "torch");
    let d = lab.json(&["diffstat", &b, "--since", "HEAD~1", "--json"]);
    assert_eq!(d["from"], "commit HEAD~1");
    assert_eq!(d["new_files"], serde_json::json!(["requirements.txt"]));
    let out = lab.run(&["diffstat", "--since", "nonsense"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'nonsense' is neither a run nor a commit"), "{}", stderr(&out));
}

#[test]
fn a_large_change_since_the_baseline_opens_a_review_item_at_launch() {
    let lab = TestLab::with_git();
    lab.write("labmate.toml", "[review]\nlines_changed = 1\n");
    lab.git(&["add", "-A"]);
    lab.git(&["commit", "-q", "-m", "policy"]);
    let base = lab.run(&["run", "--", "true"]);
    assert!(!stderr(&base).contains("review item"), "{}", stderr(&base));
    let base = TestLab::started_id(&base);
    assert!(lab.run(&["baseline", "set", &base]).status.success());

    lab.write("model.py", "a = 1\nb = 2\n");
    let out = lab.run(&["run", "--", "true"]);
    assert!(out.status.success(), "the launch goes on: {}", stderr(&out));
    let run = TestLab::started_id(&out);
    let err = stderr(&out);
    assert!(err.contains("labmate: review item v-"), "{err}");
    assert!(err.contains(&format!(" opened: 2 lines changed since run {base} (the baseline): +2 -0 lines in 1 file (1 new); over [review] lines_changed = 1 (`labmate diffstat {run}`)")), "{err}");
    let items = lab.json(&["review", "--json"])["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items:#}");
    assert_eq!(items[0]["run"], run.as_str());
    assert_eq!(items[0]["state"], "pending");

    // The same change opens no second item.
    let out = lab.run(&["run", "--", "true"]);
    assert!(!stderr(&out).contains("review item"), "{}", stderr(&out));
    assert_eq!(lab.json(&["review", "--json"])["items"].as_array().unwrap().len(), 1);
}

#[test]
fn an_agents_result_waits_for_review_and_pushback_shows_in_the_notebook() {
    let lab = crate::common::TestLab::new();
    assert!(lab.run(&["init"]).status.success());
    let out = lab
        .cmd(&["note", "--kind", "result", "lr 0.1 is best"])
        .env("LABMATE_AUTHOR", "agent:claude")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let review = lab.json(&["review", "--json"]);
    let text = review.to_string();
    assert!(text.contains("result by agent:claude: lr 0.1 is best"), "{review:#}");
    let item = text.split("\"v-").nth(1).map(|s| format!("v-{}", &s[..10])).expect("an item id");
    let out = lab.cmd(&["reject", &item, "--reason", "only one seed"]).env("LABMATE_AUTHOR", "alice").output().unwrap();
    assert!(out.status.success(), "{}", crate::common::stderr(&out));
    let show = crate::common::stdout(&lab.run(&["notebook", "show"]));
    assert!(show.contains(&format!("disputed {item}")) && show.contains("only one seed"), "{show}");
}
