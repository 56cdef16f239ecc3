//! No input makes a parser of user text panic, overflow its stack or hang:
//! random and adversarial text through each of them (`--where` and paths,
//! `--until` and rules, config values, durations and times, sort keys,
//! `labmate.toml`, notebook references and files, `##labmate` lines), and
//! the inputs that once aborted the binary, through the binary.

use std::collections::BTreeMap;

use crate::common::{TestLab, stderr};
use labmate::model::{MetricSummary, Run};
use labmate::query::{Expr, Path};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

/// Few cases, a fixed seed and no files written: the same quick run every time.
fn config() -> Config {
    Config { cases: 256, failure_persistence: None, rng_seed: RngSeed::Fixed(8), ..Config::default() }
}

/// Smaller than any thread a parser runs on (test threads have 2 MiB, the
/// binary's main thread 8 MiB): unbounded recursion overflows here at once.
const SMALL_STACK: usize = 512 * 1024;

fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(f)
        .expect("a thread")
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Random text: any characters, or bytes read the lossy way (as a program's
/// output is), or the tokens of a grammar strung together with or without blanks.
fn soup(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    let words =
        prop::collection::vec((prop::sample::select(tokens), prop::sample::select(&[" ", "", "  "][..])), 0..120)
            .prop_map(|parts| parts.into_iter().map(|(t, sep)| format!("{t}{sep}")).collect::<String>());
    let bytes = prop::collection::vec(any::<u8>(), 0..300).prop_map(|b| String::from_utf8_lossy(&b).into_owned());
    prop_oneof![words, any::<String>(), bytes]
}

fn sample_run() -> Run {
    let mut metrics = BTreeMap::new();
    metrics.insert(
        "loss".to_string(),
        MetricSummary { last: 0.5, min: 0.4, max: 2.0, count: 10, last_step: 9, nan_count: 0, mean: 1.0 },
    );
    Run {
        id: "r-aaaa".into(),
        name: Some("base".into()),
        status: "finished".into(),
        exit_code: Some(0),
        signal: None,
        reason: None,
        command: vec!["python3".into()],
        created_at: String::new(),
        created_ts: 0.0,
        ended_at: None,
        duration_s: 1.0,
        git: None,
        config: serde_json::json!({"lr": 0.1, "optim": {"name": "adam"}}).as_object().unwrap().clone(),
        summary: Default::default(),
        tags: vec!["baseline".into()],
        project: Some("owt".into()),
        group: None,
        job_type: None,
        notes: None,
        metric_defs: vec![],
        slurm: None,
        metrics,
    }
}

/// Parses an expression and, when it parses, uses it the ways a command does.
fn use_expr(text: &str) -> Result<bool, labmate::Error> {
    let e = Expr::parse(text)?;
    let _ = e.paths();
    Ok(e.eval(&sample_run(), &|_, _, _| Some(1.0)))
}

/// The message of an error a parser must give (its result may be too big to print).
fn refused<T>(result: Result<T, labmate::Error>) -> String {
    message(result.err().expect("refused"))
}

/// The message of a parser's error, with its column checked to lie within the text.
fn message(e: labmate::Error) -> String {
    if let labmate::Error::BadExpression { text, column, .. } = &e {
        assert!(*column >= 1 && *column <= text.chars().count() + 1, "column {column} outside the text: {e}");
    }
    e.to_string()
}

#[rustfmt::skip]
const WHERE_TOKENS: &[&str] = &[
    "(", ")", "not", "and", "or", "config.lr", "config.optim.name", "metrics.loss.min", "metrics.loss@3", "metrics.",
    "summary.x", "status", "tags", "name", "==", "!=", "<", "<=", ">", ">=", "=", "~", "!", "contains", "exists", "1",
    "-2.5e3", "NaN", "true", "\"x\"", "'(('", "\"", "'", "\\", "\"[a-\"", "'.*'", "é", "\u{0}",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn where_expressions_parse_or_say_why(text in soup(WHERE_TOKENS)) {
        if let Err(e) = use_expr(&text) {
            message(e);
        }
    }

    #[test]
    fn paths_parse_or_say_why(text in soup(WHERE_TOKENS)) {
        if let Ok(p) = Path::parse(&text) {
            let _ = p.get(&sample_run(), &|_, _, _| None);
        }
    }
}

#[test]
fn deep_where_expressions_are_refused_not_overflowed() {
    on_small_stack(|| {
        for (open, close) in [("(", ")"), ("not ", ""), ("not (", ")"), ("( not ", ")")] {
            for depth in [65, 1000, 8000] {
                let text = format!("{}config.lr < 1{}", open.repeat(depth), close.repeat(depth));
                let e = refused(Expr::parse(&text));
                assert!(e.contains("nested deeper than 64 levels"), "{open:?} x {depth}: {e}");
            }
        }
        let e = refused(Expr::parse(&"(".repeat(60_000)));
        assert!(e.contains("nested deeper than 64 levels"), "{e}");
    });
}

#[test]
fn the_deepest_allowed_expression_parses_and_evaluates() {
    on_small_stack(|| {
        let text = format!("{}config.lr < 1{}", "not (".repeat(32), ")".repeat(32));
        assert!(use_expr(&text).map_err(message).unwrap());
        let text = format!("{}config.lr < 1{}", "(".repeat(64), ")".repeat(64));
        assert!(use_expr(&text).map_err(message).unwrap());
    });
}

#[test]
fn long_chains_of_and_or_evaluate_on_a_small_stack() {
    on_small_stack(|| {
        let or = vec!["config.lr > 5"; 3000].join(" or ") + " or config.lr < 1";
        assert!(use_expr(&or).map_err(message).unwrap());
        let and = vec!["(config.lr < 1)"; 3000].join("and");
        assert!(use_expr(&and).map_err(message).unwrap());
    });
}

#[test]
fn where_expressions_over_64_kib_are_refused() {
    let text = vec!["config.lr < 1"; 6000].join(" and ");
    let e = refused(Expr::parse(&text));
    assert!(e.contains("longer than 65536 bytes"), "{e}");
    assert!(e.lines().all(|l| l.chars().count() < 200), "the message shows a window of the text: {e}");
    assert!(Expr::parse(text[..60_000].rsplit_once(" and").unwrap().0).is_ok());
}

#[test]
fn deep_where_from_the_command_line_is_a_clear_error() {
    let lab = TestLab::with_git();
    assert!(lab.run(&["init"]).status.success());
    let parens = format!("{}config.lr<1{}", "(".repeat(6000), ")".repeat(6000));
    let nots = format!("{}config.lr<1", "not ".repeat(16_000));
    for (text, column) in [(parens, 65), (nots, 257)] {
        let out = lab.run(&["runs", "--where", &text]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("bad expression at column {column}: nested deeper than 64 levels")), "{err}");
    }
}

#[rustfmt::skip]
const RULE_TOKENS: &[&str] = &[
    "loss", "val_loss", "sys/gpu0/temp_c", "step", "and", "or", "for", "after", "=>", "=", ">", ">=", "<", "<=", "==",
    "!=", "!", "alert", "stop", "1", "0", "-3", "1e400", "inf", "-inf", "NaN", "1.5", "9223372036854775807", "(", ")",
    "\t", "é", "\u{0}",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn rules_and_conditions_parse_or_say_why(text in soup(RULE_TOKENS)) {
        match labmate::rules::parse_condition(&text) {
            Ok(c) => { let _ = c.holds(|_| Some(1.0)); }
            Err(e) => { message(e); }
        }
        if let Err(e) = labmate::rules::parse_rule(&text) {
            message(e);
        }
    }
}

#[test]
fn conditions_and_rules_over_64_kib_are_refused() {
    let condition = vec!["loss < 1"; 8000].join(" and ");
    let e = refused(labmate::rules::parse_condition(&condition));
    assert!(e.starts_with("bad condition at column 65537: longer than 65536 bytes"), "{e}");
    let rule = format!("loss > 1{} => stop", " ".repeat(70_000));
    let e = refused(labmate::rules::parse_rule(&rule));
    assert!(e.starts_with("bad rule at column 65537: longer than 65536 bytes"), "{e}");
}

#[test]
fn deep_or_long_until_from_the_command_line_is_a_clear_error() {
    let lab = TestLab::with_git();
    assert!(lab.run(&["init"]).status.success());
    let deep = format!("{}step>1{}", "(".repeat(6000), ")".repeat(6000));
    let long = vec!["step > 1"; 8000].join(" and ");
    for (text, says) in [(deep, "bad condition at column 1: expected a metric name"), (long, "longer than 65536 bytes")]
    {
        let out = lab.run(&["wait", "some-run", "--until", &text]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
    }
}

#[rustfmt::skip]
const TIME_TOKENS: &[&str] = &[
    "1", "90", "0.5", ".", "ms", "s", "sec", "m", "min", "h", "d", "1e300", "1e400", "-", "+", ":", "T", "Z", " ",
    "2026", "9999999999999999", "-01", "-13", "-99", "12:00", "99:99", ":60", "+02:00", "-99:99", "NaN", "inf", "é",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn durations_are_finite_and_fit_a_timeout(text in soup(TIME_TOKENS)) {
        if let Ok(secs) = labmate::clock::parse_duration(&text) {
            prop_assert!(std::time::Duration::try_from_secs_f64(secs).is_ok(), "{text:?} gave {secs}");
        }
    }

    #[test]
    fn times_parse_to_finite_instants_or_say_why(text in soup(TIME_TOKENS)) {
        if let Ok(t) = labmate::clock::parse_time(&text, 1.0e9) {
            prop_assert!(t.is_finite(), "{text:?} gave {t}");
        }
    }
}

#[test]
fn absurd_durations_and_times_are_refused() {
    let huge = format!("1{}s", "0".repeat(400));
    for text in ["1e300", "1e19", "999999999999d", huge.as_str()] {
        let e = labmate::clock::parse_duration(text).unwrap_err();
        assert!(e.contains("longer than 100 years"), "{text}: {e}");
    }
    assert_eq!(labmate::clock::parse_duration("36500d").unwrap(), 36500.0 * 86_400.0);
    for text in ["9999999999999999-01-01", "2020-13-01", "2020-01-01T99:00:00Z", "2020-01-01T10:00:00+99999999999:00"] {
        assert!(labmate::clock::parse_time(text, 0.0).is_err(), "{text}");
    }
}

#[test]
fn absurd_durations_in_labmate_toml_are_refused() {
    for text in ["[supervisor]\nstop_grace = inf\n", "[notify]\ntimeout = 1e300\n", "[gates]\ntimeout = nan\n"] {
        let e = labmate::policy::Policy::parse(text).unwrap_err();
        assert!(e.contains("100 years"), "{text}: {e}");
    }
}

#[test]
fn absurd_timeouts_and_times_from_the_command_line_are_clear_errors() {
    let lab = TestLab::with_git();
    assert!(lab.run(&["init"]).status.success());
    for args in [
        &["wait", "some-run", "--timeout", "1e300"][..],
        &["events", "--since", "9999999999999999-01-01"],
        &["notebook", "show", "--since", "2020-01-01T10:00:00+99999999999:00"],
    ] {
        let out = lab.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("labmate: error: --") || err.contains("bad time"), "{args:?}: {err}");
    }
}

#[rustfmt::skip]
const CONFIG_TOKENS: &[&str] = &[
    "a", "b", "lr", ".", "=", "[", "]", "{", "}", "\"", ",", ":", "1", "3e-4", "1e999", "true", "null", "NaN", " ", "é",
];

/// What a launch records of a config (`run.json` holds it two levels down)
/// reads back as it was written.
fn recorded_config_reads_back(config: serde_json::Map<String, serde_json::Value>) {
    let text = serde_json::to_string_pretty(&serde_json::json!({"run": {"config": config}})).unwrap();
    let back: serde_json::Value = serde_json::from_str(&text).expect("a recorded config reads back");
    assert_eq!(back["run"]["config"], serde_json::Value::Object(config));
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_values_parse_and_read_back_or_say_why(
        args in prop::collection::vec(soup(CONFIG_TOKENS), 1..4),
    ) {
        if let Ok(config) = labmate::spec::parse_config(&args) {
            recorded_config_reads_back(config);
        }
    }
}

#[test]
fn configs_nested_deeper_than_64_levels_are_refused() {
    let config = |arg: String| labmate::spec::parse_config(&[arg]);
    let key = |parts: usize| vec!["a"; parts].join(".");
    let list = |depth: usize| format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    for (arg, ok) in [
        (format!("{}=1", key(64)), true),
        (format!("{}=1", key(65)), false),
        (format!("{}=1", key(50_000)), false),
        (format!("a={}", list(63)), true),
        (format!("a={}", list(64)), false),
        (format!("a={}", list(127)), false),
        (format!("a={}", list(5000)), false),
        (format!("{}={}", key(32), list(32)), true),
        (format!("{}={}", key(33), list(32)), false),
    ] {
        match config(arg.clone()) {
            Ok(c) => {
                assert!(ok, "{arg:.40} was taken");
                on_small_stack(move || recorded_config_reads_back(c));
            }
            Err(e) => {
                let e = e.to_string();
                assert!(!ok, "{arg:.40}: {e}");
                assert!(e.contains("nests deeper than 64 levels"), "{e:.300}");
                assert!(e.chars().count() < 400, "the message shows the start of the argument: {e}");
            }
        }
    }
}

#[test]
fn a_deep_config_from_the_command_line_is_refused_before_the_run() {
    let lab = TestLab::with_git();
    for value in [format!("{}1{}", "[".repeat(127), "]".repeat(127)), "a.".repeat(40_000) + "a"] {
        let arg = if value.starts_with('[') { format!("x={value}") } else { format!("{value}=1") };
        let out = lab.run(&["run", "--config", &arg, "--", "true"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{err:.300}");
        assert!(err.contains("nests deeper than 64 levels"), "{err:.300}");
    }
    let out = lab.run(&["runs", "--json"]);
    assert!(stderr(&out).is_empty(), "no run was recorded half-readable: {}", stderr(&out));
}

#[rustfmt::skip]
const REFERENCE_TOKENS: &[&str] = &[
    "group:", "compare ", ".", " .", "r-aaaa", "base", "lr0.01", "config.lr", "metrics.loss.min", "metrics.loss@3",
    ".mean", ".n", "=", "==", "@", "{{", "}}", " ", "(", "not ", "é", "\u{0}",
];

#[rustfmt::skip]
const NOTEBOOK_TOKENS: &[&str] = &[
    "{{", "}}", "<!--", "-->", "**", "<!--/-->", "\n", "\n\n", "# Results\n", "<!-- labmate:entry ",
    r#"{"id": "n-1", "time": 1, "kind": "note", "author": "a", "runs": ["r-aaaa"]}"#, "<!-- labmate:results -->",
    "<!-- /labmate:results -->", "```", "~~~", "`", "``", "€", "base.config.lr", "base.metrics.loss", "group:lr=0.1 ",
    "compare base base loss", "base", "r-aaaa", "0.5", "loss", "=", "of", "is", " ", "é",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn references_parse_or_say_why(text in soup(REFERENCE_TOKENS)) {
        let _ = labmate::notebook::refs::Reference::parse(&text);
    }
}

/// A lab with one finished run, `base` (lr 0.1, loss 0.5 at step 3).
fn lab_with_a_run() -> TestLab {
    let lab = TestLab::with_git();
    let script = r#"echo '##labmate {"step": 3, "loss": 0.5}'"#;
    let out = lab.run(&["run", "--name", "base", "--config", "lr=0.1", "--", "sh", "-c", script]);
    assert!(out.status.success(), "{}", stderr(&out));
    lab
}

#[test]
fn notebooks_are_read_and_checked_whatever_they_hold() {
    let lab = lab_with_a_run();
    let dir = labmate::Lab::find(lab.path(), None).unwrap();
    let (index, _) = labmate::Index::open_synced(&dir).unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(&soup(NOTEBOOK_TOKENS), |text| {
            let _ = labmate::notebook::Notebook::parse("LABNOTEBOOK.md".into(), text.clone());
            let _ = labmate::notebook::refs::plain(&text);
            std::fs::write(lab.path().join("LABNOTEBOOK.md"), &text).unwrap();
            let _ = labmate::notebook::check(&dir, &index);
            Ok(())
        })
        .unwrap();
}

#[test]
fn references_longer_than_4_kib_are_refused() {
    let body = format!("base.config.{}", "a.".repeat(3000));
    let Err(e) = labmate::notebook::refs::Reference::parse(&body) else { panic!("a long reference was taken") };
    assert!(e.contains("longer than 4096 bytes"), "{e:.300}");
}

#[test]
fn notebook_text_after_wide_characters_is_scanned_without_a_panic() {
    assert_eq!(labmate::notebook::refs::plain("€€{{x.config.lr}}"), "€€{{x.config.lr}}");
    let lab = lab_with_a_run();
    lab.write(
        "LABNOTEBOOK.md",
        "# Lab notebook\n\n€€{{base.config.lr}} and €€<!--{{base.config.lr}}-->**0.2**<!--/-->\n",
    );
    let out = lab.run(&["notebook", "check"]);
    assert_eq!(out.status.code(), Some(1), "the stale value is a mismatch: {}", stderr(&out));
    assert!(crate::common::stdout(&out).contains("0.2"), "{}", crate::common::stdout(&out));
}

/// Inputs that take a scan per marker over the rest of the text would not
/// finish; one pass reads them at once.
#[test]
fn notebooks_full_of_markers_are_read_in_one_pass() {
    for text in [
        "{{".repeat(1_000_000),
        "{{a}".repeat(500_000),
        "<!--{{base.config.lr}}-->**".repeat(100_000),
        "<!--{{".repeat(300_000),
    ] {
        let _ = labmate::notebook::refs::plain(&text);
    }
    let nb = labmate::notebook::Notebook::parse("x".into(), "<!-- labmate:results -->\n".repeat(100_000));
    assert_eq!(nb.problems.len(), 100_000, "each open marker without its close is named");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sort_keys_parse_or_say_why(text in soup(WHERE_TOKENS), descending in any::<bool>()) {
        let text = if descending { format!("-{text}") } else { text };
        let _ = labmate::registry::SortKey::parse(&text);
    }
}

#[rustfmt::skip]
const POLICY_TOKENS: &[&str] = &[
    "[rules]", "[rules.stall]", "[notebook]", "[supervisor]", "[queue]", "[notify]", "[gates]", "[budget]",
    "[budget.authors.\"a\"]", "[[x]]", "custom = [\"loss > 1 => stop\"]", "custom = [\"((\"]", "stop_grace = ",
    "timeout = ", "max_concurrent = ", "where = ", "\"10s\"", "\"1e300s\"", "inf", "nan", "1e300", "-1", "0", "=",
    "[", "]", "{", "}", ",", "\"", "'", "\n", "a", ".", "é", "\u{0}",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn labmate_toml_parses_or_says_why(text in soup(POLICY_TOKENS)) {
        let _ = labmate::policy::Policy::parse(&text);
    }
}

/// TOML nested far past any real policy, in every way TOML nests.
fn deep_tomls() -> Vec<String> {
    let n = 50_000;
    let dotted = vec!["a"; n].join(".");
    vec![
        format!("x = {}{}", "[".repeat(n), "]".repeat(n)),
        format!("x = {}1{}", "{a=".repeat(n), "}".repeat(n)),
        format!("{dotted} = 1"),
        format!("[{dotted}]"),
        format!("[[{dotted}]]"),
        format!("[notebook]\nx = {}{}", "[".repeat(n), "]".repeat(n)),
        format!("[notebook]\n{dotted} = 1"),
    ]
}

#[test]
fn deep_labmate_toml_is_refused_not_overflowed() {
    // The TOML reader has its own nesting limit: checked here, not assumed.
    on_small_stack(|| {
        let deep_rule = format!("[rules]\ncustom = [\"{}\"]", "(".repeat(50_000));
        for text in deep_tomls().into_iter().chain([deep_rule]) {
            let e = labmate::policy::Policy::parse(&text).expect_err("a deep policy is refused");
            assert!(!e.is_empty());
        }
    });
}

#[test]
fn deep_labmate_toml_is_a_clear_error_for_every_command() {
    let lab = TestLab::with_git();
    assert!(lab.run(&["init"]).status.success());
    for text in deep_tomls() {
        lab.write("labmate.toml", &text);
        for args in [&["run", "--", "true"][..], &["notebook", "show"]] {
            let out = lab.run(args);
            let err = stderr(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err:.300}");
            assert!(err.contains("labmate.toml"), "{args:?}: {err:.300}");
            assert!(err.lines().all(|l| l.chars().count() <= 200), "{args:?}: the quoted line is clipped: {err:.300}");
        }
    }
}

#[rustfmt::skip]
const MARKER_TOKENS: &[&str] = &[
    "##labmate ", "##labmate", "#", "{", "}", "[", "]", "\"step\"", "\"loss\"", "\"a/b\"", ":", ",", "1", "0.5", "-3",
    "NaN", "Infinity", "-inf", "nan", "1e400", "true", "null", "\"x\"", "\"", "\\", "\n", "\r\n", " ", "é", "\u{0}",
];

proptest! {
    #![proptest_config(config())]

    #[test]
    fn metric_lines_become_points_or_warnings(
        text in soup(MARKER_TOKENS),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let bytes = text.as_bytes();
        let mut at: Vec<usize> = cuts.iter().map(|c| c.index(bytes.len() + 1)).collect();
        at.sort();
        let mut scanner = labmate::supervisor::output::MarkerScanner::default();
        let mut from = 0;
        for to in at.into_iter().chain([bytes.len()]) {
            let _ = scanner.feed(&bytes[from..to], 1.0);
            from = to;
        }
    }

    #[test]
    fn record_lines_parse_or_say_why(text in soup(MARKER_TOKENS)) {
        let _ = labmate::record::Record::parse(&text);
        let _ = labmate::record::Record::parse(&format!("{{\"t\":\"log\",\"step\":1,\"data\":{text}}}"));
        let _ = labmate::record::Record::parse(&format!("{{\"t\":\"event\",\"data\":{text}}}"));
    }
}

#[test]
fn deep_metric_and_record_lines_are_read_without_overflow() {
    on_small_stack(|| {
        let n = 100_000;
        let deep = [format!("{}1{}", "[".repeat(n), "]".repeat(n)), "{\"a\":".repeat(n), "[NaN,".repeat(n)];
        let mut scanner = labmate::supervisor::output::MarkerScanner::default();
        for value in &deep {
            let line = format!("##labmate {{\"loss\": 1, \"deep\": {value}}}\n");
            let got = scanner.feed(line.as_bytes(), 1.0);
            let warned = got.iter().any(|r| matches!(r, labmate::record::Record::Event(e) if e.kind == "warning"));
            assert!(warned, "the deep value is named in a warning: {:.300}", format!("{got:?}"));
            for t in ["log", "config", "summary", "event"] {
                let _ = labmate::record::Record::parse(&format!("{{\"t\":\"{t}\",\"step\":1,\"data\":{value}}}"));
            }
        }
    });
}
