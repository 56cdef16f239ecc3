use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::model::MetricSummary;

fn run(id: &str, lr: f64, tags: &[&str], val_min: f64) -> Run {
    let mut metrics = BTreeMap::new();
    metrics.insert(
        "val_loss".to_string(),
        MetricSummary { last: val_min + 0.1, min: val_min, max: 3.0, count: 10, last_step: 9, nan_count: 0, mean: 2.0 },
    );
    Run {
        id: id.into(),
        name: Some(format!("lr{lr}")),
        status: "finished".into(),
        exit_code: Some(0),
        signal: None,
        reason: None,
        command: vec![],
        created_at: String::new(),
        created_ts: 0.0,
        ended_at: None,
        duration_s: 1.0,
        git: None,
        config: json!({"lr": lr, "optim": {"name": "adam"}}).as_object().unwrap().clone(),
        summary: Default::default(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        project: Some("owt".into()),
        group: None,
        job_type: None,
        notes: None,
        metric_defs: vec![],
        slurm: None,
        metrics,
    }
}

fn eval(expr: &str, r: &Run) -> bool {
    Expr::parse(expr).unwrap().eval(r, &|_, _, _| Some(1.5))
}

#[test]
fn the_issue_example_evaluates() {
    let a = run("r-a", 1e-4, &["baseline"], 2.0);
    let b = run("r-b", 1e-2, &["baseline"], 2.0);
    let c = run("r-c", 1e-4, &[], 2.5);
    let e = r#"status == "finished" and config.lr < 1e-3 and metrics.val_loss.min < 2.1 and tags contains "baseline""#;
    assert!(eval(e, &a));
    assert!(!eval(e, &b));
    assert!(!eval(e, &c));
}

#[test]
fn or_not_parentheses_regex_exists_and_steps() {
    let a = run("r-a", 1e-4, &[], 2.0);
    assert!(eval("not (config.warmup exists) and config.optim.name == 'adam'", &a));
    assert!(eval("config.lr > 1 or name ~ \"^lr0\\.0001$\"", &a));
    assert!(!eval("config.lr > 1 or name ~ '^x'", &a));
    assert!(eval("metrics.val_loss@1000 == 1.5", &a));
    assert!(eval("metrics.val_loss < 3", &a), "a bare metric means its last value");
    assert!(!eval("config.nothing < 3", &a), "a missing value compares false");
    assert!(!eval("config.nothing != 3", &a), "missing is not 'different' either: use exists");
}

#[test]
fn mistakes_point_at_their_column() {
    let e = Expr::parse("status == finished").unwrap_err().to_string();
    assert!(e.contains("column 11") && e.contains("quote strings"), "{e}");
    let e = Expr::parse("config.lr < 1 and (status == \"x\"").unwrap_err().to_string();
    assert!(e.contains("expected ')'"), "{e}");
    let e = Expr::parse("bogus == 1").unwrap_err().to_string();
    assert!(e.contains("column 1") && e.contains("unknown key 'bogus'"), "{e}");
    let e = Expr::parse("name ~ '('").unwrap_err().to_string();
    assert!(e.contains("bad regular expression"), "{e}");
    let e = Expr::parse("config.lr").unwrap_err().to_string();
    assert!(e.contains("expected a comparison"), "{e}");
}

#[test]
fn unknown_keys_suggest_the_closest() {
    let runs = vec![run("r-a", 1e-4, &[], 2.0)];
    let known = known_paths(&runs);
    assert!(known.contains(&"config.optim.name".to_string()));
    let e = check_known(&Path::parse("config.lrr").unwrap(), &known).unwrap_err().to_string();
    assert_eq!(e, "unknown key 'config.lrr'; did you mean 'config.lr'?");
    let e = check_known(&Path::parse("metrics.val_los.min").unwrap(), &known).unwrap_err().to_string();
    assert_eq!(e, "unknown key 'metrics.val_los.min'; did you mean 'metrics.val_loss.min'?");
    assert!(check_known(&Path::parse("metrics.val_loss@10").unwrap(), &known).is_ok());
}

#[test]
fn metric_keys_with_slashes_and_dots_parse() {
    assert_eq!(
        Path::parse("metrics.train/loss.v2.min").unwrap(),
        Path::Metric { key: "train/loss.v2".into(), field: "min".into() }
    );
    assert_eq!(Path::parse("metrics.a.b@100").unwrap(), Path::MetricAt { key: "a.b".into(), step: 100 });
}
