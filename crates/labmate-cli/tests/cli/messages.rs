//! Messages that say what really happened: the error names the real cause,
//! and the same kind of failure exits the same way in every command.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use crate::common::{BIN, TestLab, stderr, stdout};

/// A lab with one finished run (config lr=1, a loss curve).
fn lab_with_a_run() -> TestLab {
    let lab = TestLab::new();
    let out = lab.run(&[
        "run",
        "--name",
        "a",
        "--config",
        "lr=1",
        "--",
        "sh",
        "-c",
        "echo '##labmate {\"loss\": 2}'; echo '##labmate {\"loss\": 1}'",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    lab
}

fn assert_fails(out: &Output, code: i32, says: &[&str]) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    for s in says {
        assert!(err.contains(s), "expected {s:?} in: {err}");
    }
    assert!(!err.contains("bug in labmate"), "{err}");
}

#[test]
fn a_file_that_is_not_a_program_says_so() {
    let lab = TestLab::new();
    lab.write("data.txt", "1,2,3\n");
    std::fs::create_dir(lab.path().join("somedir")).unwrap();
    lab.write("bin/tool", "#!/bin/sh\necho hi\n");

    let out = lab.run(&["run", "--", "./data.txt"]);
    assert_fails(&out, 2, &["'./data.txt'", "not executable"]);
    assert!(!stderr(&out).contains("command not found"), "{}", stderr(&out));

    let out = lab.run(&["run", "--", "./somedir"]);
    assert_fails(&out, 2, &["'./somedir'", "is a directory"]);
    assert!(!stderr(&out).contains("command not found"), "{}", stderr(&out));

    // On PATH, a file of that name that cannot run is named, with where it is.
    let path = format!("{}:{}", lab.path().join("bin").display(), std::env::var("PATH").unwrap_or_default());
    let out = lab.cmd(&["run", "--", "tool"]).env("PATH", &path).output().unwrap();
    assert_fails(&out, 2, &["'tool'", "bin/tool is not executable"]);

    let out = lab.run(&["run", "--", "no-such-program-xyz"]);
    assert_fails(&out, 2, &["command not found: 'no-such-program-xyz'"]);
    assert!(lab.json(&["runs", "--json"]).as_array().unwrap().is_empty(), "nothing is recorded");
}

#[test]
fn a_filter_that_matches_nothing_says_so() {
    let empty = TestLab::new();
    assert!(empty.run(&["init"]).status.success());
    assert!(stdout(&empty.run(&["runs"])).starts_with("no runs yet"));

    let lab = lab_with_a_run();
    for extra in [&[][..], &["--group-by", "config.lr"], &["--columns", "name,config.lr"]] {
        let mut args = vec!["runs", "--where", "config.lr > 100"];
        args.extend_from_slice(extra);
        let out = lab.run(&args);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("no run matches --where 'config.lr > 100'"), "{args:?}: {text}");
        assert!(!text.contains("no runs yet"), "{text}");
    }
    assert_eq!(lab.json(&["runs", "--where", "config.lr > 100", "--json"]), serde_json::json!([]));

    let out = lab.run(&["plot", "--where", "config.lr > 100", "--metric", "loss", "-o", "x.svg"]);
    assert_fails(&out, 2, &["no run matches --where 'config.lr > 100'"]);
    let out = lab.run(&["export", "--where", "config.lr > 100", "--format", "csv", "-o", "runs.csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("warning: no run matches --where 'config.lr > 100'"), "{}", stderr(&out));
}

/// Runs `labmate ARGS` in `lab` as someone who cannot write it. Root writes
/// through any permission bits, so as root it runs as `nobody` through
/// `setpriv` (the test fails if that is missing); anyone else gets a lab
/// made read-only.
fn as_reader(lab: &TestLab, args: &[&str]) -> Output {
    let root = labmate::sys::host::effective_uid() == 0;
    let mut cmd = if root {
        std::fs::set_permissions(lab.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut c = Command::new("setpriv");
        lab.env(&mut c);
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
        c
    } else {
        for p in [lab.path().join(".labmate"), lab.path().join(".labmate/runs")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        let mut c = Command::new(BIN);
        lab.env(&mut c);
        c
    };
    let out = cmd.args(args).stdin(Stdio::null()).output().expect("setpriv runs (util-linux is needed as root)");
    if !root {
        for p in [lab.path().join(".labmate"), lab.path().join(".labmate/runs")] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    out
}

#[test]
fn a_lab_the_user_cannot_write_is_the_environments_fault() {
    let lab = lab_with_a_run();
    let at = format!("cannot write to the lab at {}", lab.path().join(".labmate").display());

    let out = as_reader(&lab, &["runs"]);
    assert_fails(&out, 1, &[&at, "permission denied"]);

    for f in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(lab.path().join(".labmate").join(f));
    }
    let out = as_reader(&lab, &["runs"]);
    assert_fails(&out, 1, &[&at, "permission denied"]);

    let out = as_reader(&lab, &["run", "--", "true"]);
    assert_fails(&out, 1, &["ermission denied"]);
}

#[test]
fn export_to_dash_writes_standard_output() {
    let lab = lab_with_a_run();
    let out = lab.run(&["export", "--format", "csv", "-o", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = stdout(&out);
    assert!(csv.starts_with("id,name,status,"), "{csv}");
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(!lab.path().join("-").exists(), "no file named '-'");

    let out = lab.run(&["export", "--format", "jsonl", "--series", "-o", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["value"], 1.0);

    let out = lab.run(&["export", "--format", "parquet", "-o", "-"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.starts_with(b"PAR1") && out.stdout.ends_with(b"PAR1"), "{} bytes", out.stdout.len());
}

#[test]
fn an_output_file_that_cannot_be_written_fails_alike_in_every_command() {
    let lab = lab_with_a_run();
    lab.write("data.txt", "not a folder\n");
    let cases: [&[&str]; 4] = [
        &["plot", "a", "--metric", "loss", "-o", "data.txt/loss.png"],
        &["plot", "a", "--metric", "loss", "-o", "data.txt/loss.svg"],
        &["export", "--format", "csv", "-o", "data.txt/runs.csv"],
        &["export", "--format", "parquet", "-o", "data.txt/runs.parquet"],
    ];
    for args in cases {
        let out = lab.run(args);
        let target = lab.path().join(args[args.len() - 1]);
        assert_fails(&out, 1, &[&format!("labmate: error: cannot write {}: ", target.display()), "Not a directory"]);
    }
}

#[test]
fn a_plot_outside_the_repository_is_refused() {
    let lab = TestLab::with_git();
    assert!(lab.run(&["init"]).status.success());
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = elsewhere.path().join("loss.png");
    std::fs::write(&outside, b"png").unwrap();
    lab.write("plots/loss.png", "png");

    let out = lab.run(&["note", "see the curve", "--plot", outside.to_str().unwrap()]);
    assert_fails(&out, 2, &["outside the repository"]);
    // Climbing out with `..` is outside too (both temporary folders share a parent).
    assert_eq!(elsewhere.path().parent(), lab.path().parent());
    let climbing = format!("../{}/loss.png", elsewhere.path().file_name().unwrap().to_str().unwrap());
    let out = lab.run(&["note", "see the curve", "--plot", &climbing]);
    assert_fails(&out, 2, &["outside the repository"]);
    assert!(!lab.path().join("LABNOTEBOOK.md").exists(), "nothing was written");

    let out = lab.run(&["note", "see the curve", "--plot", "plots/loss.png"]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn rules_and_webhooks_that_cannot_work_are_refused_at_launch() {
    let lab = TestLab::new();
    let cases = [
        ("[rules]\ncustom = [\"loss > NaN => stop\"]\n", "NaN"),
        ("[rules]\ncustom = [\"loss > 1 for 99999999999999999999 => stop\"]\n", "'for'"),
        ("[rules]\ncustom = [\"loss > 1 for 0 => stop\"]\n", "'for'"),
        ("[rules]\ncustom = [\"loss > 1 after step -5 => stop\"]\n", "step"),
        ("[rules]\ncustom = [\"loss > 1 after step 1.5 => stop\"]\n", "step"),
        ("[notify]\nwebhook = \"file:///etc/passwd\"\n", "http:// or https://"),
        ("[notify]\nwebhook = \"ftp://example.com/hook\"\n", "http:// or https://"),
        ("[notify]\nwebhook = \"http://\"\n", "host"),
    ];
    for (policy, says) in cases {
        lab.write("labmate.toml", policy);
        let out = lab.run(&["run", "--", "true"]);
        assert_fails(&out, 2, &["labmate.toml", says]);
    }
    std::fs::remove_file(lab.path().join("labmate.toml")).unwrap();
    assert!(lab.json(&["runs", "--json"]).as_array().unwrap().is_empty(), "no run was launched");
}

/// What one failure of each kind prints and how it exits: the user's
/// (unknown, invalid, conflicting, refused) exit 2, the machine's exit 1;
/// a hint line follows where there is an obvious next step.
#[test]
fn each_kind_of_failure_exits_its_way_with_a_hint_where_one_helps() {
    let empty = TestLab::new();
    let hinted = |out: &Output, code: i32, error: &str, hint: &str| {
        assert_fails(out, code, &[&format!("labmate: error: {error}\nhint: {hint}\n")]);
    };
    let at = empty.path().display().to_string();
    let no_lab = format!("no lab found in {at} or any folder above it");
    hinted(&empty.run(&["runs"]), 2, &no_lab, "run `labmate init` here, or set LABMATE_DIR to a lab's .labmate folder");

    let lab = lab_with_a_run();
    let id = lab.json(&["runs", "--json"])[0]["id"].as_str().unwrap().to_string();
    // Not found.
    let out = lab.run(&["show", "nope"]);
    let error = format!("unknown run 'nope'; known runs: {id} (a)");
    let how =
        "a run is named by its id, a unique id prefix, its last 4 characters, or its name; `labmate runs` lists them";
    hinted(&out, 2, &error, how);
    let out = lab.run(&["note", "--amends", "n-zzzz", "x"]);
    hinted(&out, 2, "no notebook entry 'n-zzzz'", "`labmate notebook show` lists the entries");
    let out = lab.run(&["approve", "a-zzzz"]);
    hinted(&out, 2, "no approval request or review item 'a-zzzz'", "`labmate review` lists the open ones");
    // Invalid.
    let out = lab.run(&["run", "--config", "lr", "--", "true"]);
    hinted(
        &out,
        2,
        "bad --config 'lr': expected KEY=VALUE, found no '='",
        "write config values as KEY=VALUE, e.g. --config lr=3e-4",
    );
    let out = lab.run(&["reject", "a-zzzz", "--reason", " "]);
    hinted(&out, 2, "a rejection or dispute needs a reason", "say why with --reason TEXT");
    let out = lab.run(&["run", "--name", "x{config.nope}", "--", "true"]);
    let how = "a name template fills {config.KEY} from --config KEY=VALUE and {tags} from --tag TAG";
    hinted(&out, 2, "name template 'x{config.nope}': the run has no config.nope", how);
    // A conflict with the run's state, and a refusal by the lab's policy: no hint.
    let out = lab.run(&["queue", "cancel", &id]);
    assert_fails(&out, 2, &[&format!("labmate: error: run {id} is not queued (it is finished)\n")]);
    assert!(!stderr(&out).contains("hint:"), "{}", stderr(&out));
    lab.write("labmate.toml", "[gates]\ncommands = [[\"false\"]]\n");
    let out = lab.run(&["run", "--", "true"]);
    assert_fails(&out, 2, &["labmate: error: gate failed: false (exit code 1"]);
    std::fs::remove_file(lab.path().join("labmate.toml")).unwrap();
    // The machine's: a lab folder that is not one.
    let out = lab.cmd(&["runs"]).env("LABMATE_DIR", empty.path()).output().unwrap();
    assert_fails(&out, 1, &[&format!("labmate: error: {at}: not a lab folder (no lab.json)\n")]);
    assert!(!stderr(&out).contains("hint:"), "{}", stderr(&out));
}
