//! Index benchmarks (issue targets in BENCHMARKS.md):
//! - ingesting run folders: points per second;
//! - `labmate metrics RUN loss --points 1000 --json` on a 1,000,000-point series;
//! - `labmate runs --json` over 1,000 runs;
//! - the index's size per point of those series.
//!
//! Run with `cargo bench --bench index`. Whole commands are timed as a user
//! would see them: the release binary, started fresh each time.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use labmate::record::{Metrics, Record};
use labmate::rundir::SUPERVISOR_STREAM;

use labmate::spec::RunSpec;
use labmate::{Index, Lab, id};

#[path = "common/lab.rs"]
mod lab;
use lab::{make_batched_run, make_configured_run, write_finished};

const BIN: &str = env!("CARGO_BIN_EXE_labmate");

fn main() {
    let mut rows = Vec::new();

    // 1. Ingestion: one run of 100,000 steps x 10 metrics.
    let tmp = tempfile::tempdir().unwrap();
    let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
    let keys: Vec<String> = (0..10).map(|k| format!("metric_{k}")).collect();
    make_run(&lab, "ingest", 100_000, &keys);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let (_, report) = Index::rebuild(&lab).unwrap();
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(report.points, 1_000_000);
        best = best.min(secs);
    }
    rows.push((
        "ingest 1,000,000 points (100k steps x 10 metrics)".to_string(),
        format!("{:.0} ms = {:.2} M points/s", best * 1e3, 1.0 / best),
        ">= 1 M points/s",
    ));
    rows.push(("index size, 100k steps x 10 metrics".to_string(), bytes_per_point(&lab, 1_000_000), "<= 12 B/point"));

    // 2. One 1,000,000-point series, downsampled to 1,000 points as JSON.
    let tmp2 = tempfile::tempdir().unwrap();
    let lab2 = Lab::create(&tmp2.path().join(".labmate")).unwrap();
    let id = make_run(&lab2, "long", 1_000_000, &["loss".to_string()]);
    Index::open_synced(&lab2).unwrap();
    let ms = time_command(tmp2.path(), &["metrics", &id, "loss", "--points", "1000", "--json"], 15);
    rows.push((
        "`metrics RUN loss --points 1000 --json`, 1M-point series".to_string(),
        format!("{ms:.1} ms (median of 15)"),
        "< 100 ms",
    ));
    rows.push(("index size, 1M steps x 1 metric".to_string(), bytes_per_point(&lab2, 1_000_000), "<= 12 B/point"));

    // 3. 1,000 runs, 10 metrics x 100 points each.
    let tmp3 = tempfile::tempdir().unwrap();
    let lab3 = Lab::create(&tmp3.path().join(".labmate")).unwrap();
    for i in 0..1000 {
        make_run(&lab3, &format!("run{i}"), 100, &keys);
    }
    Index::open_synced(&lab3).unwrap();
    let ms = time_command(tmp3.path(), &["runs", "--json"], 15);
    rows.push(("`runs --json` over 1,000 runs".to_string(), format!("{ms:.1} ms (median of 15)"), "< 100 ms"));

    // 4. 10,000 runs with 20 config keys and 10 metric summaries each: a filtered, grouped query.
    let tmp4 = tempfile::tempdir().unwrap();
    let lab4 = Lab::create(&tmp4.path().join(".labmate")).unwrap();
    for i in 0..10_000 {
        make_configured_run(&lab4, i, &keys);
    }
    Index::open_synced(&lab4).unwrap();
    let query = [
        "runs",
        "--where",
        "config.k0 < 0.5 and metrics.metric_0.min < 0.9 and status == \"finished\"",
        "--group-by",
        "config.k1",
        "--json",
    ];
    let ms = time_command(tmp4.path(), &query, 9);
    rows.push((
        "`runs --where ... --group-by config.k1 --json`, 10,000 runs x 20 config keys x 10 metrics".to_string(),
        format!("{ms:.1} ms (median of 9)"),
        "< 200 ms",
    ));

    // 5. Format 2: the same points written as batch records, a block of 1,000 steps per flush.
    for (what, steps, n_keys, target) in [
        ("1,000,000 steps x 1 metric", 1_000_000, 1, ">= 5 M points/s"),
        ("100k steps x 10 metrics", 100_000, 10, ">= 10 M points/s"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let lab = Lab::create(&tmp.path().join(".labmate")).unwrap();
        let id = make_batched_run(&lab, "batched", steps, &keys[..n_keys], 1000);
        let points = (steps * n_keys) as f64;
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = Instant::now();
            let (_, report) = Index::rebuild(&lab).unwrap();
            best = best.min(t.elapsed().as_secs_f64());
            assert_eq!(report.points as f64, points);
        }
        let file = std::fs::metadata(lab.run_dir(&id).join(SUPERVISOR_STREAM)).unwrap().len() as f64;
        let index = std::fs::metadata(lab.root().join("index.sqlite")).unwrap().len() as f64;
        rows.push((
            format!("format 2: ingest {what} (batches of 1,000 steps)"),
            format!(
                "{:.0} ms = {:.2} M points/s; file {:.1} B/point, index {:.1} B/point",
                best * 1e3,
                points / best / 1e6,
                file / points,
                index / points
            ),
            target,
        ));
    }

    println!("| benchmark | result | target |\n|---|---|---|");
    for (name, result, target) in rows {
        println!("| {name} | {result} | {target} |");
    }
}

/// A finished run whose supervisor stream logs `steps` steps of `keys`.
fn make_run(lab: &Lab, name: &str, steps: usize, keys: &[String]) -> String {
    let now = labmate::clock::now();
    let mut spec = RunSpec::new(id::new_run_id(now), now, lab.repo_root());
    spec.name = Some(name.into());
    spec.command = vec!["python3".into(), "train.py".into()];
    let mut out =
        Record::Start { time: now, pid: Some(1), child_pid: Some(2), pgid: Some(2), leader: None, job: None }.to_line();
    for step in 0..steps {
        let values = keys.iter().enumerate().map(|(k, key)| (key.clone(), 1.0 / (step + k + 1) as f64)).collect();
        let time = now + step as f64 * 1e-3;
        out.push_str(&Record::Log { step: step as i64, time, metrics: Metrics { values, dropped: vec![] } }.to_line());
    }
    write_finished(lab, spec, out)
}

/// The size of the lab's index file (closed, so checkpointed) per point.
fn bytes_per_point(lab: &Lab, points: u64) -> String {
    let bytes = std::fs::metadata(lab.root().join("index.sqlite")).unwrap().len();
    format!("{:.1} B/point", bytes as f64 / points as f64)
}

/// Median wall time of a whole command, in milliseconds.
fn time_command(cwd: &Path, args: &[&str], reps: usize) -> f64 {
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(BIN).args(args).current_dir(cwd).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[reps / 2]
}
