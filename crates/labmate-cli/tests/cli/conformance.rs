//! The golden fixtures in `conformance/`, read by this build through the
//! real binary: each fixture's run folder, copied into a lab of its own,
//! answers what its `expected.json` says in `runs`, `show`, `metrics` and
//! `events`; and the environment filter keeps what `env-filter.json` says.
//! The Python client's suite holds its side to the same files
//! (python/tests/test_conformance.py).

use std::path::{Path, PathBuf};

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

/// A lab holding only the fixture's run folder.
fn lab_with(name: &str, id: &str) -> TestLab {
    let lab = TestLab::new();
    lab.write(".labmate/lab.json", "{\"format\": 1}\n");
    let to = lab.run_dir(id);
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(fixtures().join(name).join("run")).unwrap().flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    lab
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
    assert_eq!(all.len(), 10, "the fixtures are there: {:?}", all.iter().map(|f| &f.0).collect::<Vec<_>>());
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
