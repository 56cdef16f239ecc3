//! The registry's questions through the real binary: queries, groups across
//! seeds, comparisons with verdicts, the baseline, names, exports.

use crate::common::{TestLab, stderr, stdout};
use serde_json::Value;

/// Finished runs at two learning rates x 5 seeds, whose final val_loss is
/// known: lr 0.1 is clearly lower than lr 0.01.
fn sweep() -> TestLab {
    let lab = TestLab::with_git();
    let finals = [(0.01, [2.31, 2.28, 2.35, 2.30, 2.33]), (0.1, [2.27, 2.25, 2.29, 2.26, 2.24])];
    for (lr, values) in finals {
        for (seed, v) in values.iter().enumerate() {
            let script = format!(
                "echo '##labmate {{\"step\": 0, \"val_loss\": 3.0}}'; echo '##labmate {{\"step\": 100, \"val_loss\": {v}}}'"
            );
            let out = lab.run(&[
                "run",
                "--name",
                "lr{config.lr}-s{config.seed}",
                "--config",
                &format!("lr={lr}"),
                "--config",
                &format!("seed={seed}"),
                "--tag",
                if lr == 0.01 { "baseline" } else { "candidate" },
                "--",
                "sh",
                "-c",
                &script,
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
        }
    }
    lab
}

#[test]
fn where_sort_and_columns() {
    let lab = sweep();
    let rows = lab.json(&[
        "runs",
        "--where",
        "config.lr < 0.05 and metrics.val_loss.last < 2.32 and tags contains \"baseline\"",
        "--sort",
        "-metrics.val_loss.last",
        "--columns",
        "name,config.seed,metrics.val_loss.last,metrics.val_loss@50",
        "--json",
    ]);
    let names: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lr0.01-s0", "lr0.01-s3", "lr0.01-s1"]);
    assert_eq!(rows[0]["metrics.val_loss@50"], 3.0, "the value at the last step at or before 50");

    let csv = stdout(&lab.run(&[
        "runs",
        "--where",
        "config.seed == 0",
        "--sort",
        "config.lr",
        "--columns",
        "name,config.lr",
        "--csv",
    ]));
    assert_eq!(csv, "name,config.lr\nlr0.01-s0,0.01\nlr0.1-s0,0.1\n");
    let md =
        stdout(&lab.run(&["runs", "--where", "config.seed == 0", "--sort", "config.lr", "--columns", "name", "--md"]));
    assert_eq!(md, "| name |\n|---|\n| lr0.01-s0 |\n| lr0.1-s0 |\n");

    let out = lab.run(&["runs", "--where", "config.lrr < 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("unknown key 'config.lrr'; did you mean 'config.lr'?"), "{}", stderr(&out));
    let out = lab.run(&["runs", "--where", "config.lr < 1 and"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad expression at column 18"), "{}", stderr(&out));
    let out = lab.run(&["runs", "--columns", "metrics.val_los.min"]);
    assert!(stderr(&out).contains("did you mean 'metrics.val_loss.min'?"), "{}", stderr(&out));
}

#[test]
fn groups_aggregate_across_seeds() {
    let lab = sweep();
    let groups = lab.json(&["runs", "--group-by", "config.lr", "--columns", "metrics.val_loss.last", "--json"]);
    let g = &groups[0];
    assert_eq!(g["key"]["config.lr"], 0.01);
    assert_eq!(g["runs"].as_array().unwrap().len(), 5);
    assert_eq!(g["seeds"].as_array().unwrap().len(), 5);
    let s = &g["stats"]["metrics.val_loss.last"];
    // numpy 2.4 / scipy 1.17: mean 2.314, std(ddof=1) 0.0270185, t.interval(0.95, 4, loc=mean, scale=sem) [2.28045, 2.34755]
    assert!((s["mean"].as_f64().unwrap() - 2.314).abs() < 1e-9);
    assert!((s["std"].as_f64().unwrap() - 0.0270185).abs() < 1e-6);
    assert!((s["ci95"][0].as_f64().unwrap() - 2.28045).abs() < 1e-4, "{s}");
    assert!((s["ci95"][1].as_f64().unwrap() - 2.34755).abs() < 1e-4, "{s}");
    let text = stdout(&lab.run(&["runs", "--group-by", "config.lr"]));
    let first: Vec<&str> = text.lines().nth(1).unwrap().split_whitespace().take(3).collect();
    assert_eq!(first, ["0.01", "5", "0,1,2,3,4"], "{text}");
}

#[test]
fn compare_gives_an_honest_verdict() {
    let lab = sweep();
    let report = lab.json(&["compare", "config.lr=0.01", "config.lr=0.1", "--metric", "val_loss", "--json"]);
    assert_eq!(report["config"][0]["key"], "lr");
    let c = &report["metrics"][0]["comparisons"][0];
    assert_eq!(c["method"], "welch");
    // scipy 1.17 stats.ttest_ind(b, a, equal_var=False): t = -3.5058, df = 7.226, p = 0.0094206
    assert!((c["p_value"].as_f64().unwrap() - 0.0094206).abs() < 1e-6, "{c}");
    assert!(c["verdict"].as_str().unwrap().starts_with("B is lower by 0.052"), "{c}");
    assert!(c["verdict"].as_str().unwrap().ends_with("B is better"), "{c}");

    let text = stdout(&lab.run(&["compare", "lr0.01-s0", "lr0.1-s0"]));
    assert!(text.contains("one run per side: no variance estimate"), "{text}");
    assert!(text.contains("code A: ") && text.contains(" clean"), "{text}");
}

#[test]
fn the_baseline_shows_deltas_and_serves_compare() {
    let lab = sweep();
    let out = lab.run(&["compare", "config.lr=0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no baseline set"));
    assert!(lab.run(&["baseline", "set", "config.lr=0.01"]).status.success());
    assert_eq!(stdout(&lab.run(&["baseline", "show"])).split(':').next().unwrap(), "config.lr=0.01");
    let text = stdout(&lab.run(&["runs"]));
    assert!(text.lines().next().unwrap().contains("Δval_loss vs baseline"), "{text}");
    assert!(text.contains("-0.074"), "lr0.1-s4: 2.24 - 2.314\n{text}");
    let report = lab.json(&["compare", "config.lr=0.1", "--json"]);
    assert_eq!(report["sides"][0]["label"], "config.lr=0.01");
    assert!(lab.run(&["baseline", "clear"]).status.success());
}

#[test]
fn names_come_from_templates_or_from_what_differs() {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[runs]\nname = \"{config.model}-lr{config.lr}\"\n");
    let out = lab.run(&["run", "--config", "model=mlp", "--config", "lr=0.5", "--", "true"]);
    assert_eq!(lab.show(&TestLab::started_id(&out))["name"], "mlp-lr0.5");
    let out = lab.run(&["run", "--name", "x{config.nope}", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("the run has no config.nope"), "{}", stderr(&out));

    lab.write("labmate.toml", "");
    let base = lab.run(&["run", "--name", "base", "--config", "lr=0.1", "--config", "wd=0", "--", "true"]);
    assert!(lab.run(&["baseline", "set", &TestLab::started_id(&base)]).status.success());
    let out = lab.run(&["run", "--config", "lr=0.3", "--config", "wd=0", "--", "true"]);
    assert_eq!(lab.show(&TestLab::started_id(&out))["name"], "lr=0.3");
}

#[test]
fn exports_in_three_formats() {
    let lab = sweep();
    assert!(lab.run(&["export", "--format", "csv", "-o", "runs.csv"]).status.success());
    let csv = std::fs::read_to_string(lab.path().join("runs.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.starts_with("id,name,status,"), "{header}");
    assert!(header.contains("config.lr,config.seed,metrics.val_loss.last,metrics.val_loss.min"), "{header}");
    assert_eq!(csv.lines().count(), 11);

    assert!(
        lab.run(&["export", "--series", "--where", "config.seed == 0", "--format", "jsonl", "-o", "s.jsonl"])
            .status
            .success()
    );
    let lines: Vec<Value> = std::fs::read_to_string(lab.path().join("s.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["key"], "val_loss");

    assert!(lab.run(&["export", "--format", "parquet", "-o", "runs.parquet"]).status.success());
    let bytes = std::fs::read(lab.path().join("runs.parquet")).unwrap();
    assert!(bytes.starts_with(b"PAR1") && bytes.ends_with(b"PAR1"));
    if let Ok(python) = std::env::var("LABMATE_PYARROW") {
        let check = "import pyarrow.parquet as pq, sys\nt = pq.read_table(sys.argv[1])\nassert t.num_rows == 10, t.num_rows\nassert sorted(set(t.column('config.lr').to_pylist())) == [0.01, 0.1]\nassert str(t.schema.field('config.seed').type) == 'int64'\n";
        let out = std::process::Command::new(python)
            .args(["-c", check])
            .arg(lab.path().join("runs.parquet"))
            .output()
            .unwrap();
        assert!(out.status.success(), "pyarrow: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = lab.run(&["export", "--format", "xlsx", "-o", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("use csv, jsonl or parquet"));
}
