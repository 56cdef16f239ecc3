//! The golden fixtures in `conformance/`, read by this build through the
//! real binary: each fixture's run folder, copied into a lab of its own,
//! answers what its `expected.json` says in `runs`, `show`, `metrics` and
//! `events`; the format-1 fixtures together, as one lab, answer `runs`,
//! `metrics` and `export` byte for byte as the build before format 2 did;
//! and the environment filter keeps what `env-filter.json` says. The Python
//! client's suite holds its side to the same files
//! (python/tests/test_conformance.py). Both sides also record the same git
//! provenance (run.json's `git` and `patch.diff`) of the same work tree.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::TestLab;
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(crate::common::REPO).join("conformance")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fixtures that are run folders: (name, expected.json).
fn run_fixtures() -> Vec<(String, Value)> {
    let mut found: Vec<_> = std::fs::read_dir(fixtures())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("expected.json").is_file())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), read_json(&e.path().join("expected.json"))))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// The fixtures written before format 2, with no batch: kept as they are,
/// and together the lab whose answers `lab-v1/` holds.
const FORMAT_1: [&str; 10] = [
    "client-standalone",
    "client-supervised",
    "records-big-steps",
    "records-exact-values",
    "records-malformed",
    "records-non-finite",
    "records-torn-tail",
    "records-unicode-keys",
    "records-unknown",
    "supervisor",
];

/// A lab holding only the fixture's run folder, at the version its writers
/// leave it: 2 once a batch is in it.
fn lab_with(name: &str, id: &str) -> TestLab {
    let lab = TestLab::new();
    let version = if FORMAT_1.contains(&name) { 1 } else { 2 };
    lab.write(".labmate/lab.json", &format!("{{\"format\": {version}}}\n"));
    copy_run(&lab, name, id);
    lab
}

fn copy_run(lab: &TestLab, name: &str, id: &str) {
    let to = lab.run_dir(id);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(fixtures().join(name).join("run")).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// A metric value or time as every `--json` output writes it: a number, or
/// one of the strings that stand for non-finite numbers.
fn same_number(found: &Value, expected: &Value) -> bool {
    match (found, expected) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::String(a), Value::String(b)) => a == b,
        _ => false,
    }
}

fn check_metrics(fixture: &str, found: &Value, expected: &Value) {
    let (found, expected) = (found.as_object().unwrap(), expected.as_object().unwrap());
    let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(found), keys(expected), "{fixture}: the metric names");
    for (key, points) in expected {
        let got = found[key].as_array().unwrap();
        let want = points.as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{fixture}: points of {key:?}: {got:?}");
        for (g, w) in got.iter().zip(want) {
            let ok = g["step"].is_i64()
                && g["step"].as_i64() == w[0].as_i64()
                && same_number(&g["time"], &w[1])
                && same_number(&g["value"], &w[2]);
            assert!(ok, "{fixture}: a point of {key:?} is {g} where {w} ([step, time, value]) was expected");
        }
    }
}

fn check_events(fixture: &str, events: &[Value], expected: &Value) {
    // Lifecycle events (started, ended) are the reader's own: not counted.
    let mut left: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| e["kind"] != "lifecycle")
        .map(|e| (e["kind"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    for recorded in expected["events"].as_array().unwrap() {
        let want = (recorded[0].as_str().unwrap(), recorded[1].as_str().unwrap());
        let at = left.iter().position(|e| *e == want);
        let at = at.unwrap_or_else(|| panic!("{fixture}: no event {want:?} among {left:?}"));
        left.remove(at);
    }
    let warnings = expected["warnings"].as_u64().unwrap() as usize;
    assert!(left.iter().all(|(kind, _)| *kind == "warning"), "{fixture}: events no record holds: {left:?}");
    assert_eq!(left.len(), warnings, "{fixture}: the reader's warnings: {left:#?}");
}

#[test]
fn every_fixture_reads_as_its_expected_json_says() {
    let all = run_fixtures();
    let names: Vec<&str> = all.iter().map(|f| f.0.as_str()).collect();
    assert_eq!(all.len(), 19, "the fixtures are there: {names:?}");
    assert!(FORMAT_1.iter().all(|f| names.contains(f)), "the format-1 fixtures are there: {names:?}");
    for (name, expected) in all {
        let id = expected["id"].as_str().unwrap();
        let lab = lab_with(&name, id);
        let runs = lab.json(&["runs", "--json"]);
        let [run] = runs.as_array().unwrap().as_slice() else { panic!("{name}: one run, not {runs:#}") };
        for field in ["id", "name", "status", "exit_code", "signal", "reason", "tags", "config", "summary"] {
            assert_eq!(run[field], expected[field], "{name}: {field} in runs --json");
        }
        let show = lab.show(id);
        for field in ["status", "tags", "config", "summary"] {
            assert_eq!(show[field], expected[field], "{name}: {field} in show --json");
        }
        check_events(&name, show["events"].as_array().unwrap(), &expected);
        let events = lab.json(&["events", id, "--json"]);
        assert_eq!(events.as_array().unwrap().len(), show["events"].as_array().unwrap().len(), "{name}: events");
        check_metrics(&name, &lab.json(&["metrics", id, "--json"]), &expected["metrics"]);
    }
}

/// What `labmate ARGS` writes to stdout here, or to the file it names after `-o`.
fn answer(lab: &TestLab, args: &[&str]) -> Vec<u8> {
    let out = lab.run(args);
    assert!(out.status.success(), "labmate {args:?}: {}", crate::common::stderr(&out));
    match args.iter().position(|a| *a == "-o") {
        Some(i) if args[i + 1] != "-" => std::fs::read(lab.path().join(args[i + 1])).unwrap(),
        _ => out.stdout,
    }
}

#[test]
fn a_lab_of_format_1_answers_as_it_did_before_format_2() {
    // The format-1 fixtures as one lab; lab-v1/ holds what the build before
    // format 2 answered (conformance/README.md says how it was made).
    let lab = TestLab::new();
    lab.write(".labmate/lab.json", "{\"format\": 1}\n");
    let mut ids = Vec::new();
    for name in FORMAT_1 {
        let id = read_json(&fixtures().join(name).join("expected.json"))["id"].as_str().unwrap().to_string();
        copy_run(&lab, name, &id);
        ids.push(id);
    }
    let golden = fixtures().join("lab-v1");
    let mut questions: Vec<(Vec<String>, PathBuf)> =
        vec![(vec!["runs".into(), "--json".into()], golden.join("runs.json"))];
    for id in &ids {
        questions
            .push((vec!["metrics".into(), id.clone(), "--json".into()], golden.join(format!("metrics/{id}.json"))));
    }
    for (table, series) in [("runs", None), ("series", Some("--series"))] {
        for format in ["csv", "jsonl", "parquet"] {
            let to = if format == "parquet" { format!("{table}.parquet") } else { "-".into() };
            let args = ["export", "--format", format, "-o", &to].into_iter().chain(series);
            questions.push((args.map(String::from).collect(), golden.join(format!("{table}.{format}"))));
        }
    }
    for round in ["indexed afresh", "re-indexed"] {
        if round == "re-indexed" {
            let out = lab.run(&["reindex"]);
            assert!(out.status.success(), "reindex: {}", crate::common::stderr(&out));
        }
        for (args, file) in &questions {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let found = answer(&lab, &args);
            let expected = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if found != expected {
                let (found, expected) = (String::from_utf8_lossy(&found), String::from_utf8_lossy(&expected));
                assert_eq!(found, expected, "{round}: labmate {args:?} answers otherwise than {}", file.display());
                panic!("{round}: labmate {args:?} answers otherwise than {}", file.display());
            }
        }
    }
    assert_eq!(std::fs::read_to_string(lab.path().join(".labmate/lab.json")).unwrap(), "{\"format\": 1}\n");
}

#[test]
fn the_environment_filter_keeps_and_drops_what_the_table_says() {
    let table = read_json(&fixtures().join("env-filter.json"));
    let names = table["names"].as_object().expect("names");
    assert!(names.len() > 20, "the table is there");
    let wrong: Vec<_> = names
        .iter()
        .filter(|(name, verdict)| {
            let kept = labmate::spec::env_subset([(name.as_str(), "v")].into_iter()).contains_key(name.as_str());
            kept != (verdict.as_str() == Some("kept"))
        })
        .map(|(name, verdict)| format!("{name} should be {verdict}"))
        .collect();
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// run.json's `git` and the patch of a run made in `cwd` (a folder of the
/// lab's repository) by `labmate run`, then by the Python client.
fn git_of_both_sides(lab: &TestLab, cwd: &str) -> [(Value, Option<Vec<u8>>); 2] {
    let recorded = |id: &str| {
        let run = read_json(&lab.run_dir(id).join("run.json"));
        (run["git"].clone(), std::fs::read(lab.run_dir(id).join("patch.diff")).ok())
    };
    let dir = lab.path().join(cwd);
    let out = lab.cmd(&["run", "--", "true"]).current_dir(&dir).output().unwrap();
    assert!(out.status.success(), "labmate run: {}", crate::common::stderr(&out));
    let supervised = recorded(&TestLab::started_id(&out));
    let mut python = Command::new("python3");
    lab.env(&mut python);
    let script = "import labmate; print(labmate.init().id); labmate.finish()";
    let out = python.args(["-c", script]).env("PYTHONPATH", crate::common::PYTHON).current_dir(&dir).output().unwrap();
    assert!(out.status.success(), "the client: {}", crate::common::stderr(&out));
    let client = recorded(crate::common::stdout(&out).trim());
    [supervised, client]
}

fn assert_both_sides_agree(lab: &TestLab, cwd: &str, expected: Value) -> Option<Vec<u8>> {
    let [(git, patch), (client_git, client_patch)] = git_of_both_sides(lab, cwd);
    assert_eq!(git, client_git, "the supervisor's git (left) and the client's (right), from {cwd:?}");
    assert_eq!(patch, client_patch, "the supervisor's patch and the client's, from {cwd:?}");
    let mut expected = expected;
    expected["patch_bytes"] = patch.as_ref().map_or(0, Vec::len).into();
    assert_eq!(git, expected, "from {cwd:?}");
    patch
}

#[test]
fn both_sides_record_the_same_git_provenance() {
    let lab = TestLab::with_git();
    lab.write("café.txt", "one\n");
    lab.git(&["add", "-A"]);
    lab.git(&["commit", "-q", "-m", "two files"]);
    assert!(lab.run(&["init"]).status.success());
    std::fs::create_dir_all(lab.path().join("src")).unwrap();
    let head = lab.git(&["rev-parse", "HEAD"]).trim().to_string();

    let clean = serde_json::json!({"commit": head, "branch": "main", "dirty": false, "untracked": []});
    assert_eq!(assert_both_sides_agree(&lab, "", clean.clone()), None);

    // Config that would change the patch is pinned: it keeps its prefixes,
    // its colourless text and its whole tree, and names files as they are.
    for (key, value) in [
        ("diff.noprefix", "true"),
        ("color.diff", "always"),
        ("diff.relative", "true"),
        ("diff.external", "false"),
        ("core.quotepath", "true"),
    ] {
        lab.git(&["config", key, value]);
    }
    lab.write("train.txt", "v2\n");
    lab.write("café.txt", "two\n");
    let dirty = serde_json::json!({"commit": head, "branch": "main", "dirty": true, "untracked": []});
    let patch = assert_both_sides_agree(&lab, "src", dirty).expect("a patch");
    let text = String::from_utf8(patch.clone()).unwrap();
    assert!(text.starts_with("diff --git a/café.txt b/café.txt\n"), "{text}");
    assert!(text.contains("diff --git a/train.txt b/train.txt\n") && text.contains("\n+v2\n"), "{text}");
    let stored = lab.write(".labmate/check.diff", &text);
    lab.git(&["apply", "--check", "-R", &stored.display().to_string()]);
    lab.git(&["checkout", "-q", "--", "."]);

    // Untracked files: all of the work tree's, relative to its top, from any folder.
    lab.write("data/new.txt", "x\n");
    let untracked =
        serde_json::json!({"commit": head, "branch": "main", "dirty": false, "untracked": ["data/new.txt"]});
    assert_both_sides_agree(&lab, "src", untracked);
    std::fs::remove_dir_all(lab.path().join("data")).unwrap();

    lab.git(&["checkout", "-q", "--detach"]);
    let detached = serde_json::json!({"commit": head, "branch": null, "dirty": false, "untracked": []});
    assert_both_sides_agree(&lab, "src", detached);

    // No commit yet: a staged file makes the tree dirty, and there is no patch.
    let fresh = TestLab::new();
    fresh.git(&["init", "-q", "-b", "main"]);
    assert!(fresh.run(&["init"]).status.success());
    fresh.write("train.txt", "v1\n");
    let unborn = serde_json::json!({"commit": null, "branch": "main", "dirty": false, "untracked": ["train.txt"]});
    assert_both_sides_agree(&fresh, "", unborn);
    fresh.git(&["add", "train.txt"]);
    let staged = serde_json::json!({"commit": null, "branch": "main", "dirty": true, "untracked": []});
    assert_eq!(assert_both_sides_agree(&fresh, "", staged), None);
}
