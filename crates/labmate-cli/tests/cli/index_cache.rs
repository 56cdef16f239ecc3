//! The index kept outside the lab, as on a network file system: forced by
//! `labmate.toml` `[index]`, in a folder the test names (never HOME's cache).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

use crate::common::{TestLab, stderr};

/// `labmate ARGS` with per-lab caches made under `root`.
fn run_in(lab: &TestLab, root: &Path, args: &[&str]) -> Output {
    lab.cmd(args).env("LABMATE_INDEX_DIR", root).output().expect("labmate runs")
}

fn json_in(lab: &TestLab, root: &Path, args: &[&str]) -> Value {
    let out = run_in(lab, root, args);
    assert!(out.status.success(), "labmate {args:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A lab whose index is forced into the local cache, with two finished runs.
fn cached_lab(root: &Path) -> (TestLab, Vec<String>) {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[index]\nlocal = true\n");
    let mut ids = Vec::new();
    for (name, n) in [("alpha", 3), ("beta", 5)] {
        let script = format!("for i in $(seq 1 {n}); do echo \"##labmate {{\\\"loss\\\": $i}}\"; done");
        let out = run_in(&lab, root, &["run", "--name", name, "--", "sh", "-c", &script]);
        assert!(out.status.success(), "{}", stderr(&out));
        ids.push(TestLab::started_id(&out));
    }
    (lab, ids)
}

/// The cache folders under `root`.
fn caches(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(root).unwrap().map(|e| e.unwrap().path()).collect();
    dirs.sort();
    dirs
}

fn index_files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("index.sqlite"))
        .collect();
    names.sort();
    names
}

fn canonical_lab(lab: &TestLab) -> String {
    fs::canonicalize(lab.path().join(".labmate")).unwrap().display().to_string()
}

#[test]
fn a_local_index_answers_from_the_cache_and_leaves_the_lab_without_one() {
    let root = tempfile::tempdir().unwrap();
    let (lab, ids) = cached_lab(root.path());
    let runs = json_in(&lab, root.path(), &["runs", "--json"]);
    let got: Vec<(&str, &str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["name"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [(&*ids[1], "beta", "finished"), (&*ids[0], "alpha", "finished")]);
    assert_eq!(runs[0]["metrics"]["loss"]["last"], 5.0, "{runs:#}");
    assert!(index_files_in(&lab.path().join(".labmate")).is_empty(), "no index in the lab");

    let dirs = caches(root.path());
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let name = dirs[0].file_name().unwrap().to_str().unwrap();
    assert!(name.len() == 16 && name.chars().all(|c| c.is_ascii_hexdigit()), "{name}");
    assert_eq!(index_files_in(&dirs[0]), ["index.sqlite", "index.sqlite-shm", "index.sqlite-wal"]);
    assert_eq!(fs::read_to_string(dirs[0].join("lab")).unwrap(), format!("{}\n", canonical_lab(&lab)));

    // reindex says where the index is, and answers the same.
    let out = run_in(&lab, root.path(), &["reindex"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("reindexed 2 runs, 8 points"), "{err}");
    assert!(
        err.contains(&format!("the index is kept outside the lab, in {}", dirs[0].join("index.sqlite").display())),
        "{err}"
    );
    assert_eq!(json_in(&lab, root.path(), &["runs", "--json"]), runs);

    // A deleted cache is built again from the run folders.
    fs::remove_dir_all(&dirs[0]).unwrap();
    assert_eq!(json_in(&lab, root.path(), &["runs", "--json"]), runs);
    assert_eq!(index_files_in(&dirs[0]).len(), 3);
    assert!(index_files_in(&lab.path().join(".labmate")).is_empty());
}

#[test]
fn each_lab_gets_its_own_cache() {
    let root = tempfile::tempdir().unwrap();
    let (one, one_ids) = cached_lab(root.path());
    let (two, two_ids) = cached_lab(root.path());
    let ids_of = |lab: &TestLab| -> Vec<String> {
        let runs = json_in(lab, root.path(), &["runs", "--json"]);
        runs.as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids_of(&one), [one_ids[1].clone(), one_ids[0].clone()]);
    assert_eq!(ids_of(&two), [two_ids[1].clone(), two_ids[0].clone()]);
    let dirs = caches(root.path());
    assert_eq!(dirs.len(), 2, "{dirs:?}");
    let mut owners: Vec<String> = dirs.iter().map(|d| fs::read_to_string(d.join("lab")).unwrap()).collect();
    owners.sort();
    let mut want = vec![format!("{}\n", canonical_lab(&one)), format!("{}\n", canonical_lab(&two))];
    want.sort();
    assert_eq!(owners, want);
}

#[test]
fn index_path_names_the_folder_and_another_labs_folder_is_refused() {
    let shared = tempfile::tempdir().unwrap();
    let folder = shared.path().join("idx");
    let policy = format!("[index]\npath = {:?}\n", folder.display().to_string());
    let one = TestLab::new();
    one.write("labmate.toml", &policy);
    let out = one.run(&["run", "--", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(one.json(&["runs", "--json"]).as_array().unwrap().len(), 1);
    assert_eq!(index_files_in(&folder).len(), 3);
    assert!(index_files_in(&one.path().join(".labmate")).is_empty());

    let two = TestLab::new();
    assert!(two.run(&["init"]).status.success());
    two.write("labmate.toml", &policy);
    let out = two.run(&["runs", "--json"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains(&canonical_lab(&one)) && err.contains(&canonical_lab(&two)), "{err}");
    assert!(err.contains(&folder.display().to_string()), "{err}");
    assert!(!err.contains("bug in labmate"), "{err}");

    // A path relative to labmate.toml's folder.
    two.write("labmate.toml", "[index]\npath = \"cache/index\"\n");
    assert!(two.json(&["runs", "--json"]).as_array().unwrap().is_empty());
    assert_eq!(index_files_in(&two.path().join("cache/index")).len(), 3);
}

#[test]
fn local_false_keeps_the_index_in_the_lab_and_a_bad_index_table_is_named() {
    let root = tempfile::tempdir().unwrap();
    let lab = TestLab::new();
    lab.write("labmate.toml", "[index]\nlocal = false\n");
    let out = run_in(&lab, root.path(), &["run", "--", "true"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_in(&lab, root.path(), &["runs", "--json"]).as_array().unwrap().len(), 1);
    assert_eq!(index_files_in(&lab.path().join(".labmate")).len(), 3);
    assert!(caches(root.path()).is_empty());

    for (policy, says) in [
        ("[index]\nlocal = \"yes\"\n", "local"),
        ("[index]\nplace = \"/x\"\n", "place"),
        ("[index]\npath = \"/x\"\nlocal = false\n", "local = false"),
    ] {
        lab.write("labmate.toml", policy);
        let out = run_in(&lab, root.path(), &["runs", "--json"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{policy}: {err}");
        assert!(err.contains("labmate.toml") && err.contains(says), "{policy}: {err}");
    }
}
