//! The lab notebook through the real binary: entries, live references,
//! claim checking, the results table, reading back, concurrent writers, and
//! bugs with their reproducers.

use crate::common::{TestLab, stderr, stdout};
use serde_json::Value;

/// A finished run whose val_loss goes 3.0 (step 0) then `last` (step 100).
fn add_run(lab: &TestLab, lr: f64, seed: u32, last: f64) -> String {
    let script = format!(
        "echo '##labmate {{\"step\": 0, \"val_loss\": 3.0}}'; echo '##labmate {{\"step\": 100, \"val_loss\": {last}}}'"
    );
    let out = lab.run(&[
        "run",
        "--name",
        "lr{config.lr}-s{config.seed}",
        "--config",
        &format!("lr={lr}"),
        "--config",
        &format!("seed={seed}"),
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    TestLab::started_id(&out)
}

/// Two learning rates x 2 seeds: lr 0.01 ends at 2.31 and 2.33, lr 0.1 at 2.51 and 2.55.
fn sweep() -> (TestLab, Vec<String>) {
    let lab = TestLab::with_git();
    let ids = vec![
        add_run(&lab, 0.01, 1, 2.31),
        add_run(&lab, 0.01, 2, 2.33),
        add_run(&lab, 0.1, 1, 2.51),
        add_run(&lab, 0.1, 2, 2.55),
    ];
    (lab, ids)
}

fn note(lab: &TestLab, args: &[&str]) -> String {
    let mut all = vec!["note"];
    all.extend_from_slice(args);
    let out = lab.run(&all);
    assert!(out.status.success(), "note {args:?}: {}", stderr(&out));
    let id = stdout(&out).trim().to_string();
    assert!(id.starts_with("n-") && id.len() == 12, "{id}");
    id
}

fn notebook(lab: &TestLab) -> String {
    std::fs::read_to_string(lab.path().join("LABNOTEBOOK.md")).unwrap()
}

/// The metadata of every entry in the file.
fn metadata(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("<!-- labmate:entry ")?.strip_suffix(" -->"))
        .map(|j| serde_json::from_str(j).unwrap())
        .collect()
}

#[test]
fn a_note_appends_a_dated_entry_with_its_runs() {
    let (lab, ids) = sweep();
    let id = note(
        &lab,
        &["--run", "lr0.01-s1", "--run", &ids[2], "--kind", "result", "--author", "agent:claude", "lr 0.01 wins."],
    );
    let text = notebook(&lab);
    assert!(text.starts_with("# Lab notebook\n"), "{text}");
    assert!(text.contains("<!-- labmate:results -->\n") && text.contains("<!-- /labmate:results -->\n"));
    let meta = metadata(&text);
    assert_eq!(meta.len(), 1);
    assert_eq!(meta[0]["id"], id.as_str());
    assert_eq!(meta[0]["kind"], "result");
    assert_eq!(meta[0]["author"], "agent:claude");
    assert_eq!(meta[0]["runs"], serde_json::json!([ids[0], ids[2]]));
    assert_eq!(meta[0]["amends"], Value::Null);
    assert!(meta[0]["time"].as_f64().unwrap() > 1.7e9);
    let entry = &text[text.find("<!-- labmate:entry").unwrap()..];
    let lines: Vec<&str> = entry.lines().collect();
    assert!(
        lines[1].starts_with("### 20") && lines[1].ends_with(&format!(" UTC · result · agent:claude · {id}")),
        "{entry}"
    );
    assert_eq!(lines[2], format!("Runs: `{}` (lr0.01-s1), `{}` (lr0.1-s1)", ids[0], ids[2]));
    assert_eq!(&lines[3..], ["", "lr 0.01 wins."]);

    // The author comes from LABMATE_AUTHOR, else the user name.
    let out = lab.cmd(&["note", "from the env"]).env("LABMATE_AUTHOR", "agent:codex").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    note(&lab, &["from the user"]);
    let meta = metadata(&notebook(&lab));
    assert_eq!(meta[1]["author"], "agent:codex");
    assert_eq!(meta[1]["kind"], "observation");
    assert_eq!(meta[2]["author"], "tester");

    // Earlier entries are kept byte for byte.
    assert!(notebook(&lab).starts_with(&text));
}

#[test]
fn live_references_render_keep_their_reference_and_follow_the_registry() {
    let (lab, _) = sweep();
    note(
        &lab,
        &[
            "--kind",
            "result",
            "lr0.01-s1 bottomed at {{lr0.01-s1.metrics.val_loss.min}} with lr {{lr0.01-s1.config.lr}}; \
             across seeds {{group:config.lr=0.01 .metrics.val_loss.last.mean}} (n={{group:config.lr=0.01 .metrics.val_loss.n}}). \
             {{compare config.lr=0.01 config.lr=0.1 val_loss}}",
        ],
    );
    let text = notebook(&lab);
    assert!(text.contains("bottomed at <!--{{lr0.01-s1.metrics.val_loss.min}}-->**2.31**<!--/--> with lr <!--{{lr0.01-s1.config.lr}}-->**0.01**<!--/-->"), "{text}");
    assert!(text.contains("<!--{{group:config.lr=0.01 .metrics.val_loss.last.mean}}-->**2.32**<!--/-->"), "{text}");
    assert!(text.contains("(n=<!--{{group:config.lr=0.01 .metrics.val_loss.n}}-->**2**<!--/-->)"), "{text}");
    assert!(text.contains("<!--{{compare config.lr=0.01 config.lr=0.1 val_loss}}-->**B is higher by 0.21"), "{text}");
    let out = lab.run(&["notebook", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 mismatches"), "{}", stdout(&out));

    // A third seed moves the group's mean: check says so, render updates it.
    add_run(&lab, 0.01, 3, 2.41);
    let out = lab.run(&["notebook", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out)
            .contains("{{group:config.lr=0.01 .metrics.val_loss.last.mean}} shows 2.32, the registry now gives 2.35"),
        "{}",
        stdout(&out)
    );
    let out = lab.run(&["notebook", "render"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("5 references rendered (3 changed)"), "{}", stderr(&out));
    let text = notebook(&lab);
    assert!(text.contains("<!--{{group:config.lr=0.01 .metrics.val_loss.last.mean}}-->**2.35**<!--/-->"), "{text}");
    assert!(text.contains("(n=<!--{{group:config.lr=0.01 .metrics.val_loss.n}}-->**3**<!--/-->)"), "{text}");
    assert!(text.contains("<!--{{lr0.01-s1.metrics.val_loss.min}}-->**2.31**<!--/-->"), "unchanged values stay");
    assert_eq!(lab.run(&["notebook", "check"]).status.code(), Some(0));
    // Rendering again changes nothing.
    let out = lab.run(&["notebook", "render"]);
    assert!(stderr(&out).contains("(0 changed)") && stderr(&out).contains("notebook unchanged"), "{}", stderr(&out));
    assert_eq!(notebook(&lab), text);
}

#[test]
fn an_unknown_run_or_key_is_refused_at_note_time() {
    let (lab, _) = sweep();
    note(&lab, &["first"]);
    let before = notebook(&lab);
    let out = lab.run(&["note", "min {{lr0.01-s1.metrics.val_los.min}}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown key 'metrics.val_los.min'; did you mean 'metrics.val_loss.min'?"),
        "{}",
        stderr(&out)
    );
    let out = lab.run(&["note", "lr {{lr0.3-s1.config.lr}}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("{{lr0.3-s1.config.lr}}: unknown run 'lr0.3-s1'; known runs:"), "{}", stderr(&out));
    let out = lab.run(&["note", "{{group:config.lr=0.01 .metrics.val_loss.median}}"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("one of mean, std, min, max, n"), "{}", stderr(&out));
    let out = lab.run(&["note", "--run", "nope", "text"]);
    assert_eq!(out.status.code(), Some(2));
    let out = lab.run(&["note", "--kind", "bug", "no reproducer"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("reproducer"), "{}", stderr(&out));
    assert_eq!(notebook(&lab), before, "nothing is written by a refused note");
}

#[test]
fn check_catches_a_wrong_number_written_by_hand() {
    let (lab, ids) = sweep();
    let short = format!("r-{}", &ids[0][8..]);
    let good = note(
        &lab,
        &["--kind", "result", &format!("{short} reached val_loss 2.31 at step 100; lr0.1-s2: val_loss = 2.55.")],
    );
    let out = lab.run(&["notebook", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("2 claims and 0 references checked, 0 mismatches"), "{}", stdout(&out));

    // The agent misremembers a number: note still writes it, and warns.
    let out =
        lab.run(&["note", "--kind", "result", &format!("Best so far: {} reached val_loss 2.10 after tuning.", ids[1])]);
    assert!(out.status.success());
    let bad = stdout(&out).trim().to_string();
    assert!(stderr(&out).contains("warning"), "{}", stderr(&out));
    let out = lab.run(&["notebook", "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = stdout(&out);
    assert!(
        report.contains(&format!("{bad} (line "))
            && report
                .contains(&format!("{} (lr0.01-s2) val_loss is written as 2.10, the registry has last 2.33", ids[1])),
        "{report}"
    );
    assert!(report.contains(&format!("\"Best so far: {} reached val_loss 2.10 after tuning.\"", ids[1])), "{report}");
    assert!(!report.contains(&good), "the correct entry passes: {report}");
    let json = lab.run(&["notebook", "check", "--json"]);
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["mismatches"][0]["entry"], bad.as_str());
    assert_eq!(json["mismatches"][0]["claimed"], "2.10");
    assert_eq!(json["mismatches"][0]["what"], "claim");

    // A human's paragraph typed straight into the file is checked too.
    let mut text = notebook(&lab);
    text.push_str("\nBy hand: lr0.1-s1 got val_loss 2.9 in the end.\n");
    std::fs::write(lab.path().join("LABNOTEBOOK.md"), &text).unwrap();
    let report = stdout(&lab.run(&["notebook", "check"]));
    assert!(report.contains("lr0.1-s1) val_loss is written as 2.9, the registry has last 2.51"), "{report}");

    // Amending the wrong entry records the correction; the check passes again
    // once the hand-written line is fixed, and still lists the amended mistake.
    std::fs::write(lab.path().join("LABNOTEBOOK.md"), text.replace("2.9 in", "2.51 in")).unwrap();
    note(&lab, &["--amends", &bad, "--kind", "result", &format!("Correction: {} reached val_loss 2.33.", ids[1])]);
    let out = lab.run(&["notebook", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(stdout(&out).contains("[amended by n-"), "{}", stdout(&out));
}

#[test]
fn the_results_block_is_refreshed_and_the_rest_is_untouched() {
    let (lab, ids) = sweep();
    let head = "# My lab\n\nIntro  with  odd   spacing\t\nand `{{braces in code}}` are not references.\n\n<!-- labmate:results -->\n";
    let tail = "<!-- /labmate:results -->\n\nFree text after, no newline at the end";
    lab.write("LABNOTEBOOK.md", &format!("{head}stale table\n{tail}"));
    let out = lab.run(&["notebook", "render"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "labmate: 0 references rendered (0 changed); results table: 4 rows; notebook written\n");
    let text = notebook(&lab);
    assert!(text.starts_with(head) && text.ends_with(tail), "{text}");
    let table = &text[head.len()..text.len() - tail.len()];
    assert!(!table.contains("stale"));
    assert!(table.contains("| id | name | status | config.lr | config.seed | val_loss |\n"), "{table}");
    assert!(table.contains(&format!("| `{}` | lr0.01-s1 | finished | 0.01 | 1 | 2.31 |\n", ids[0])), "{table}");
    let first = table.find(&ids[0]).unwrap();
    assert!(first < table.find(&ids[3]).unwrap(), "oldest first");

    // With a baseline: the difference from it.
    assert!(lab.run(&["baseline", "set", "config.lr=0.01"]).status.success());
    lab.run(&["notebook", "render"]);
    let text = notebook(&lab);
    assert!(text.contains(&format!("| `{}` | lr0.1-s2 | finished | 0.1 | 2 | 2.55 | +0.23 |", ids[3])), "{text}");
    assert!(text.contains("| lr0.01-s1 | finished | 0.01 | 1 | 2.31 | baseline |"), "{text}");

    // One row per group, with the verdict against the baseline group.
    let out = lab.run(&["notebook", "render", "--group-by", "config.lr"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = notebook(&lab);
    assert!(text.starts_with(head) && text.ends_with(tail), "{text}");
    assert!(text.contains("| config.lr | n | seeds | val_loss mean ± std | val_loss vs baseline |"), "{text}");
    assert!(text.contains("| 0.01 | 2 | 1, 2 | 2.32 ± 0.01414 | baseline |"), "{text}");
    assert!(text.contains("| 0.1 | 2 | 1, 2 | 2.53 ± 0.02828 | B is higher by 0.21"), "{text}");

    // The same from labmate.toml.
    lab.write("labmate.toml", "[notebook]\ngroup_by = \"config.seed\"\n");
    assert!(lab.run(&["notebook", "render"]).status.success());
    assert!(notebook(&lab).contains("| config.seed | n | seeds |"));
}

#[test]
fn show_reads_back_entries_by_kind_and_time() {
    let (lab, ids) = sweep();
    let h = note(&lab, &["--kind", "hypothesis", "A larger lr converges faster."]);
    let r = note(&lab, &["--kind", "result", "--run", "lr0.1-s1", "It does not: {{lr0.1-s1.metrics.val_loss.last}}."]);
    note(&lab, &["--kind", "decision", "Keep lr 0.01."]);
    let results = lab.json(&["notebook", "show", "--kind", "result", "--json"]);
    let results = results.as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["id"], r.as_str());
    assert_eq!(results[0]["kind"], "result");
    assert_eq!(results[0]["author"], "tester");
    assert_eq!(results[0]["runs"], serde_json::json!([ids[2]]));
    assert_eq!(results[0]["amends"], Value::Null);
    assert!(results[0]["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(results[0]["text"], "It does not: <!--{{lr0.1-s1.metrics.val_loss.last}}-->**2.51**<!--/-->.");

    let all = lab.json(&["notebook", "show", "--since", "1h", "--json"]);
    let kinds: Vec<&str> = all.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["hypothesis", "result", "decision"]);
    assert_eq!(lab.json(&["notebook", "show", "--since", "2999-01-01", "--json"]), serde_json::json!([]));
    let about = lab.json(&["notebook", "show", "--run", &ids[2], "--json"]);
    assert_eq!(about.as_array().unwrap().len(), 1);

    let text = stdout(&lab.run(&["notebook", "show", "--last", "2"]));
    assert!(!text.contains(&h) && text.contains(&r), "{text}");
    assert!(text.contains("  It does not: 2.51.\n"), "rendered references read as values: {text}");
    let out = lab.run(&["notebook", "show", "--since", "yesterday-ish"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_plot_is_embedded_from_the_notebook_folder() {
    let (lab, _) = sweep();
    std::fs::create_dir_all(lab.path().join("notebook")).unwrap();
    let out = lab.run(&["plot", "lr0.01-s1", "lr0.1-s1", "--metric", "val_loss", "-o", "notebook/val_loss.svg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    note(&lab, &["--kind", "result", "--plot", "notebook/val_loss.svg", "Both curves flatten by step 100."]);
    assert!(notebook(&lab).contains("Both curves flatten by step 100.\n\n![val_loss](notebook/val_loss.svg)\n"));
    let out = lab.run(&["note", "--plot", "notebook/missing.svg", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no such file"), "{}", stderr(&out));
}

#[test]
fn an_amending_entry_references_the_amended_one() {
    let lab = TestLab::new();
    assert!(lab.run(&["init"]).status.success());
    let first = note(&lab, &["--kind", "observation", "The loss spikes at step 300."]);
    let second = note(&lab, &["--amends", &first[..7], "It spikes at step 3000, not 300."]);
    let meta = metadata(&notebook(&lab));
    assert_eq!(meta[1]["amends"], first.as_str());
    assert!(notebook(&lab).contains(&format!("Amends `{first}`\n\nIt spikes at step 3000")));
    let shown = lab.json(&["notebook", "show", "--json"]);
    assert_eq!(shown[0]["amended_by"], serde_json::json!([second]));
    assert_eq!(shown[1]["amends"], first.as_str());
    let out = lab.run(&["note", "--amends", "n-zzzz", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no notebook entry 'n-zzzz'"), "{}", stderr(&out));
}

#[test]
fn parallel_notes_never_lose_an_entry() {
    let lab = TestLab::new();
    assert!(lab.run(&["init"]).status.success());
    std::thread::scope(|s| {
        for w in 0..8 {
            let lab = &lab;
            s.spawn(move || {
                for i in 0..10 {
                    let out = lab.run(&["note", "--author", &format!("writer{w}"), &format!("entry {w}-{i}")]);
                    assert!(out.status.success(), "{}", stderr(&out));
                }
            });
        }
    });
    let entries = lab.json(&["notebook", "show", "--json"]);
    let entries = entries.as_array().unwrap();
    assert_eq!(entries.len(), 80);
    let mut texts: Vec<&str> = entries.iter().map(|e| e["text"].as_str().unwrap()).collect();
    texts.sort();
    let mut expected: Vec<String> = (0..8).flat_map(|w| (0..10).map(move |i| format!("entry {w}-{i}"))).collect();
    expected.sort();
    assert_eq!(texts, expected);
    let ids: std::collections::HashSet<&str> = entries.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 80);
    assert_eq!(metadata(&notebook(&lab)).len(), 80);
    let leftovers = std::fs::read_dir(lab.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".tmp-"))
        .count();
    assert_eq!(leftovers, 0, "no temporary files are left behind");
}

#[test]
fn a_bug_is_fixed_only_once_its_reproducer_failed_then_passed_at_a_later_code_state() {
    let lab = TestLab::with_git();
    // The reproducer passes once the flag file exists (untracked: not a code change) or the script is fixed.
    lab.write("check.sh", "test -f flag && exit 0\necho 'still broken' >&2\nexit 1\n");
    lab.git(&["add", "check.sh"]);
    lab.git(&["commit", "-q", "-m", "reproducer"]);
    assert!(lab.run(&["init"]).status.success());
    let bug = note(&lab, &["--kind", "bug", "--repro", "sh check.sh", "Eval crashes on empty batches."]);
    assert!(notebook(&lab).contains("Reproducer: `sh check.sh`"));
    let shown = lab.json(&["notebook", "show", "--kind", "bug", "--json"]);
    assert_eq!(shown[0]["repro"], serde_json::json!(["sh", "check.sh"]));
    assert_eq!(shown[0]["status"], "open");
    assert_eq!(shown[0]["history"], serde_json::json!([]));
    // The notebook is committed: writing in it later must not count as a code change.
    lab.git(&["add", "LABNOTEBOOK.md"]);
    lab.git(&["commit", "-q", "-m", "notebook"]);

    let out = lab.run(&["repro"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!("{bug}: FAIL (exit 1) at ")) && stdout(&out).contains("; bug open"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("| still broken"), "{}", stdout(&out));

    // A pass at the same code state is not a fix.
    lab.write("flag", "");
    note(&lab, &["Tried again without changing the code."]);
    let out = lab.run(&["repro", &bug]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("pass at ") && stdout(&out).contains("; bug open"), "{}", stdout(&out));
    let shown = lab.json(&["notebook", "show", "--kind", "bug", "--json"]);
    assert_eq!(shown[0]["status"], "open");
    assert_eq!(shown[0]["history"][0]["passed"], false);
    assert_eq!(shown[0]["history"][0]["dirty"], false, "the notebook's own change does not count");
    assert_eq!(shown[0]["history"][1]["passed"], true);

    // The fix, committed: a pass at a later code state.
    std::fs::remove_file(lab.path().join("flag")).unwrap();
    lab.write("check.sh", "exit 0\n");
    lab.git(&["commit", "-q", "-am", "fix"]);
    let out = lab.run(&["repro", &bug[..11]]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("; bug fixed"), "{}", stdout(&out));
    let shown = lab.json(&["notebook", "show", "--kind", "bug", "--json"]);
    assert_eq!(shown[0]["status"], "fixed");
    assert_eq!(shown[0]["reproduced"], true);
    let history = shown[0]["history"].as_array().unwrap();
    assert_eq!(history.len(), 3);
    assert_ne!(history[0]["commit"], history[2]["commit"]);
    let text = stdout(&lab.run(&["notebook", "show", "--kind", "bug"]));
    assert!(
        text.contains("[fixed]") && text.contains("history: fail ") && text.contains("reproducer: sh check.sh"),
        "{text}"
    );

    // Nothing open is left to run; a non-bug entry is not a reproducer.
    let out = lab.run(&["repro"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("no open bugs"), "{}", stderr(&out));
    let other = note(&lab, &["not a bug"]);
    assert_eq!(lab.run(&["repro", &other]).status.code(), Some(2));
    let lines = std::fs::read_to_string(lab.path().join(".labmate/repro.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 3);
}
