use std::fs;

use prost::Message;
use serde_json::json;

use super::proto::*;
use super::*;

fn item(path: &str, value_json: &str) -> HistoryItem {
    HistoryItem {
        key: String::new(),
        nested_key: path.split('.').map(String::from).collect(),
        value_json: value_json.into(),
        value: None,
    }
}

fn row(items: &[(&str, &str)]) -> Vec<u8> {
    let item = items.iter().map(|(k, v)| item(k, v)).collect();
    Record { num: 0, record_type: Some(RecordType::History(HistoryRecord { item, step: None })) }.encode_to_vec()
}

fn change(items: &[(&str, &str)]) -> SummaryRecord {
    let update = items.iter().map(|(k, v)| Item { key: k.to_string(), nested_key: vec![], value_json: v.to_string() });
    SummaryRecord { update: update.collect(), remove: vec![] }
}

fn record(kind: RecordType) -> Vec<u8> {
    Record { num: 0, record_type: Some(kind) }.encode_to_vec()
}

/// The records of a short run: its run record, two rows, a stats sample,
/// a summary, and an exit with code 3.
fn records() -> Vec<Vec<u8>> {
    let run = RunRecord {
        run_id: "abc123".into(),
        project: "proj".into(),
        display_name: "nice-run".into(),
        run_group: "g".into(),
        job_type: "train".into(),
        notes: "why".into(),
        tags: vec!["a".into(), "b".into()],
        host: "box".into(),
        start_time: Some(Timestamp { seconds: 100, nanos: 500_000_000 }),
        config: Some(change(&[("_wandb", "{}"), ("lr", "0.001"), ("opt", r#"{"name": "adam"}"#)])),
        ..RunRecord::default()
    };
    vec![
        record(RecordType::Run(run)),
        row(&[
            ("loss", "1.5"),
            ("acc.top1", "0.1"),
            ("word", "\"hi\""),
            ("_step", "0"),
            ("_timestamp", "101.0"),
            ("_runtime", "1"),
        ]),
        record(RecordType::Stats(StatsRecord {
            timestamp: Some(Timestamp { seconds: 102, nanos: 0 }),
            item: vec![StatsItem { key: "gpu.0.gpu".into(), value_json: "55.5".into() }],
        })),
        row(&[
            ("loss", "NaN"),
            ("img", r#"{"_type": "image-file", "path": "x.png"}"#),
            ("_step", "5"),
            ("_timestamp", "103.0"),
        ]),
        record(RecordType::Summary(change(&[("best", "0.5"), ("_runtime", "3")]))),
        record(RecordType::Exit(RunExitRecord { exit_code: 3, runtime: 4 })),
    ]
}

fn run_folder(parent: &Path, records: &[Vec<u8>]) -> PathBuf {
    let dir = parent.join("wandb/offline-run-20240102_030405-abc123");
    fs::create_dir_all(dir.join("files")).unwrap();
    fs::write(dir.join("run-abc123.wandb"), leveldb::tests::write(records)).unwrap();
    dir
}

#[test]
fn a_run_file_becomes_a_run_value_by_value() {
    let tmp = tempfile::tempdir().unwrap();
    run_folder(tmp.path(), &records());
    let runs = read(tmp.path(), &|_| None).unwrap();
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!((r.tool, r.source_id.as_str()), ("wandb", "abc123"));
    assert_eq!(r.source, tmp.path().join("wandb").canonicalize().unwrap().display().to_string());
    assert_eq!(r.name.as_deref(), Some("nice-run"));
    assert_eq!(
        (r.project.as_deref(), r.group.as_deref(), r.job_type.as_deref()),
        (Some("proj"), Some("g"), Some("train"))
    );
    assert_eq!((r.notes.as_deref(), r.host.as_deref()), (Some("why"), Some("box")));
    assert_eq!(r.tags, vec!["a", "b"]);
    assert_eq!(Value::Object(r.config.clone()), json!({"lr": 0.001, "opt": {"name": "adam"}}));
    assert_eq!(Value::Object(r.summary.clone()), json!({"best": 0.5}));
    assert_eq!(r.started_at, Some(100.5));
    let end = r.end.as_ref().unwrap();
    assert_eq!((&end.status, end.exit_code), (&RunStatus::Failed, Some(3)));
    assert_eq!(r.ended_at, Some(104.5));
    let loss = &r.series["loss"];
    assert_eq!((loss[0].step, loss[0].time, loss[0].value), (0, 101.0, 1.5));
    assert_eq!((loss[1].step, loss[1].time), (5, 103.0));
    assert!(loss[1].value.is_nan());
    assert_eq!(r.series["acc.top1"], vec![Point { step: 0, time: 101.0, value: 0.1 }]);
    assert_eq!(r.series["sys/gpu.0.gpu"], vec![Point { step: 0, time: 102.0, value: 55.5 }]);
    assert_eq!(r.series.len(), 3);
    assert_eq!(r.skipped["text"]["word"], 1);
    assert_eq!(r.skipped["image-file"]["img"], 1);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn a_reimport_reads_only_what_came_after() {
    let tmp = tempfile::tempdir().unwrap();
    let mut recs = records();
    let exit = recs.pop().unwrap();
    let dir = run_folder(tmp.path(), &recs);
    let first = read(&dir, &|_| None).unwrap().remove(0);
    assert_eq!(first.end, None);
    let state = first.resume.clone();
    let again = read(&dir, &|id| (id == "abc123").then(|| state.clone())).unwrap().remove(0);
    assert_eq!(again.resume, first.resume);
    assert!(again.series.is_empty() && again.skipped.is_empty());
    assert_eq!(again.config, first.config);
    recs.push(row(&[("loss", "0.25"), ("_step", "6"), ("_timestamp", "104")]));
    recs.push(exit);
    fs::write(dir.join("run-abc123.wandb"), leveldb::tests::write(&recs)).unwrap();
    let more = read(&dir, &|_| Some(state.clone())).unwrap().remove(0);
    assert_ne!(more.resume, first.resume);
    assert_eq!(more.series.keys().collect::<Vec<_>>(), vec!["loss"]);
    assert_eq!(more.series["loss"], vec![Point { step: 6, time: 104.0, value: 0.25 }]);
    assert_eq!(more.end.map(|e| e.exit_code), Some(Some(3)));
}

#[test]
fn a_cut_short_file_keeps_what_is_complete_and_reads_the_files_wandb_wrote_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_folder(tmp.path(), &records());
    let bytes = fs::read(dir.join("run-abc123.wandb")).unwrap();
    fs::write(dir.join("run-abc123.wandb"), &bytes[..bytes.len() - 3]).unwrap();
    fs::write(
        dir.join("files/config.yaml"),
        "_wandb:\n  value:\n    cli_version: 0.31.0\nlr:\n  value: 0.01\nseed: 3\n",
    )
    .unwrap();
    fs::write(dir.join("files/wandb-summary.json"), r#"{"best": NaN, "_step": 5, "loss": 0.2}"#).unwrap();
    let r = read(&dir, &|_| None).unwrap().remove(0);
    assert_eq!(r.end, None);
    assert_eq!(r.series["loss"].len(), 2);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].contains("run-abc123.wandb: ends inside the record at byte"), "{}", r.warnings[0]);
    assert_eq!(Value::Object(r.config), json!({"lr": 0.01, "opt": {"name": "adam"}, "seed": 3}));
    assert_eq!(Value::Object(r.summary), json!({"best": "NaN", "loss": 0.2}));
}

#[test]
fn runs_are_found_however_the_path_names_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = run_folder(tmp.path(), &records());
    let wandb = tmp.path().join("wandb");
    std::os::unix::fs::symlink(&dir, wandb.join("latest-run")).unwrap();
    fs::create_dir_all(wandb.join("debug-cli.root")).unwrap();
    let sources: Vec<(String, usize)> =
        [tmp.path().to_path_buf(), wandb.clone(), dir.clone(), dir.join("run-abc123.wandb")]
            .iter()
            .map(|p| {
                let runs = read(p, &|_| None).unwrap();
                (runs[0].source.clone(), runs.len())
            })
            .collect();
    assert!(sources.iter().all(|s| *s == sources[0] && s.1 == 1), "{sources:?}");

    let e = read(&tmp.path().join("nothing"), &|_| None).unwrap_err();
    assert_eq!(e.kind(), crate::error::Kind::NotFound);
    let empty = tempfile::tempdir().unwrap();
    let e = read(empty.path(), &|_| None).unwrap_err().to_string();
    assert!(e.ends_with("no wandb runs here (no offline-run-* or run-* folders, no wandb/ folder)"), "{e}");
    fs::write(dir.join("run-abc123.wandb"), b"PK\x03\x04 not wandb").unwrap();
    let e = read(&dir, &|_| None).unwrap_err().to_string();
    assert!(e.ends_with("run-abc123.wandb: not a wandb run file (no ':W&B' header)"), "{e}");
}

#[test]
fn values_are_numbers_or_the_kind_of_thing_they_are() {
    assert_eq!(number("2"), Ok(2.0));
    assert!(number("NaN").unwrap().is_nan());
    assert_eq!(number("-Infinity"), Ok(f64::NEG_INFINITY));
    assert_eq!(number("true"), Err("boolean".into()));
    assert_eq!(number(r#"{"_type": "histogram"}"#), Err("histogram".into()));
    assert_eq!(number("[1]"), Err("list".into()));
    assert_eq!(number("{"), Err("unreadable".into()));
    assert_eq!(typed_number(TypedValue::Integer(4)), Ok(4.0));
}
