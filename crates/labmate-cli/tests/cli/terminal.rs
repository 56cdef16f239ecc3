//! Names never control the terminal: text output shows control characters
//! escaped and keeps every table row on its line; `--json` keeps the exact
//! strings; `logs` prints the run's own output as it was.

use crate::common::{TestLab, stderr, stdout};

const NAME: &str = "esc\x1b[31mRED\x1b]0;title\x07\nrow";
const NAME_SHOWN: &str = r"esc\x1b[31mRED\x1b]0;title\x07\nrow";
const TAG: &str = "t\x1b[1mag\u{9b}";
const TAG_SHOWN: &str = r"t\x1b[1mag\u{9b}";
/// Metric keys a client may log: a screen clear, and a key across two lines.
const CLEAR: &str = "\x1b[2J";
const TWO_LINES: &str = "a\nb";

/// Text a terminal shows as it is: no control character but the line ends.
fn assert_inert(what: &str, text: &str) {
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{what} lets a control character through:\n{text:?}");
    assert!(!text.contains('\u{202e}'), "{what}: {text:?}");
}

/// A run whose name, tag, config and metric keys hold control characters;
/// its key metric goes NaN, so the nonfinite rule stops it with an alert
/// that quotes the key.
fn hostile_run(lab: &TestLab) -> String {
    let script = r#"printf '%s\n' '##labmate {"\u001b[2J": 1, "a\nb": 2}'
printf '\033[31mred output\033[0m\n'
printf '%s\n' '##labmate {"\u001b[2J": NaN}'
sleep 30"#;
    let out =
        lab.run(&["run", "--name", NAME, "--tag", TAG, "--config", "k\x1b[1m=v\u{202e}x", "--", "sh", "-c", script]);
    assert_inert("run's own messages", &stderr(&out));
    TestLab::started_id(&out)
}

#[test]
fn text_faces_escape_what_users_named_and_json_keeps_it() {
    let lab = TestLab::new();
    let id = hostile_run(&lab);

    let runs = stdout(&lab.run(&["runs"]));
    assert_inert("runs", &runs);
    assert_eq!(runs.lines().count(), 2, "a name broke the table:\n{runs}");
    assert!(runs.lines().nth(1).unwrap().contains(NAME_SHOWN) && runs.contains(TAG_SHOWN), "{runs}");
    let md = stdout(&lab.run(&["runs", "--md"]));
    assert_inert("runs --md", &md);
    assert_eq!(md.lines().count(), 3, "{md}");
    // CSV is data, like JSON: the exact name, quoted.
    assert!(stdout(&lab.run(&["runs", "--csv"])).contains(&format!("\"{NAME}\"")));

    let show = stdout(&lab.run(&["show", &id]));
    assert_inert("show", &show);
    assert!(show.lines().next().unwrap().contains(NAME_SHOWN), "{show}");
    assert!(
        show.lines().any(|l| l.starts_with(r"\x1b[2J ")) && show.lines().any(|l| l.starts_with(r"a\nb ")),
        "{show}"
    );
    assert!(show.contains(TAG_SHOWN), "{show}");

    let status = stdout(&lab.run(&["status", &id]));
    assert_inert("status", &status);
    assert!(status.starts_with(&format!("{id} {NAME_SHOWN}: stopped")), "{status}");
    assert!(status.contains(r"alerts (1): \x1b[2J is NaN"), "{status}");

    let events = stdout(&lab.run(&["events", &id]));
    assert_inert("events", &events);
    assert!(events.lines().all(|l| l.starts_with("20")), "an event spans lines:\n{events}");
    assert!(events.contains(r"alert      \x1b[2J is NaN"), "{events}");

    let metrics = stdout(&lab.run(&["metrics", &id]));
    assert_inert("metrics", &metrics);
    assert!(metrics.contains("\\x1b[2J (2 points)\n") && metrics.contains("a\\nb (1 points)\n"), "{metrics}");

    let wait = lab.run(&["wait", &id]);
    assert_inert("wait", &stdout(&wait));
    assert!(stdout(&wait).contains(NAME_SHOWN), "{}", stdout(&wait));

    let compare = stdout(&lab.run(&["compare", &id, &id]));
    assert_inert("compare", &compare);

    // The run's own output is the user's program: shown as it was.
    assert_eq!(stdout(&lab.run(&["logs", &id])).lines().nth(1), Some("\x1b[31mred output\x1b[0m"));

    let run = lab.show(&id);
    assert_eq!(run["name"], NAME);
    assert_eq!(run["tags"][0], TAG);
    assert_eq!(run["config"]["k\x1b[1m"], "v\u{202e}x");
    assert!(run["metrics"].get(CLEAR).is_some() && run["metrics"].get(TWO_LINES).is_some(), "{run:#}");
    assert_eq!(lab.json(&["runs", "--json"])[0]["name"], NAME);
    assert_eq!(lab.json(&["status", &id, "--json"])[0]["name"], NAME);
    let series = lab.json(&["metrics", &id, "--json"]);
    assert!(series.get(CLEAR).is_some() && series.get(TWO_LINES).is_some(), "{series:#}");
}

#[test]
fn notes_reviews_and_errors_are_escaped_too() {
    let lab = TestLab::new();
    let id = hostile_run(&lab);

    let out = lab.run(&["note", "--run", &id, "--author", "me\x1b[8m", "saw \x1b[2J here\nand \x07 there"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let notebook = stdout(&lab.run(&["notebook", "show"]));
    assert_inert("notebook show", &notebook);
    assert!(notebook.contains(r"me\x1b[8m") && notebook.contains(r"saw \x1b[2J here"), "{notebook}");

    let out =
        lab.run(&["review", "request", "--run", &id, "--author", "me\nyou", "--note", "look\x1b]0;x\x07 at this"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let review = stdout(&lab.run(&["review"]));
    assert_inert("review", &review);
    assert!(review.contains(r"by me\nyou on") && review.contains(r"look\x1b]0;x\x07 at this"), "{review}");
    assert_eq!(review.lines().count(), 2, "{review}");

    for args in
        [&["show", "nope\x1b[2J\nx"][..], &["compare", &id, "config.k\x1b[1m=\x07"], &["metrics", &id, "nope\x1b[5m"]]
    {
        let out = lab.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert_inert("an error", &err);
    }
    let err = stderr(&lab.run(&["show", "nope\x1b[2J\nx"]));
    assert!(err.starts_with(r"labmate: error: unknown run 'nope\x1b[2J\nx'"), "{err}");
}
