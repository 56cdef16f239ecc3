//! Labs for the benchmarks: finished runs written straight into their
//! folders, as the supervisor and the client would leave them.

#![allow(dead_code)]

use labmate::record::{Batch, End, Metrics, Record};
use labmate::rundir::{RunDir, SUPERVISOR_STREAM};
use labmate::spec::RunSpec;
use labmate::{Lab, id};

/// A finished run whose stream holds `steps` steps of `keys` as batch
/// records of `block` steps each (format 2, as the client writes them).
pub fn make_batched_run(lab: &Lab, name: &str, steps: usize, keys: &[String], block: usize) -> String {
    let now = labmate::clock::now();
    let mut spec = RunSpec::new(id::new_run_id(now), now, lab.repo_root());
    spec.name = Some(name.into());
    let mut out =
        Record::Start { time: now, pid: Some(1), child_pid: Some(2), pgid: Some(2), leader: None, job: None }.to_line();
    let values = |step: usize| -> Vec<(String, f64)> {
        keys.iter().enumerate().map(|(k, key)| (key.clone(), 1.0 / (step + k + 1) as f64)).collect()
    };
    for start in (0..steps).step_by(block) {
        let block: Vec<_> = (start..(start + block).min(steps)).map(|s| (s, values(s))).collect();
        let points = block.iter().map(|(s, v)| (*s as i64, now + *s as f64 * 1e-3, v.as_slice()));
        out.push_str(&Record::Batch(Batch::of_logs(points)).to_line());
    }
    write_finished(lab, spec, out)
}

/// A finished run with 20 config keys (k1 takes 10 values, for groups) and
/// one point of each metric.
pub fn make_configured_run(lab: &Lab, i: usize, keys: &[String]) {
    let now = labmate::clock::now();
    let mut spec = RunSpec::new(id::new_run_id(now), now, lab.repo_root());
    for k in 0..20 {
        let v = if k == 1 { (i % 10) as f64 } else { ((i * 7919 + k * 104_729) % 1000) as f64 / 1000.0 };
        spec.config.insert(format!("k{k}"), v.into());
    }
    let values = keys.iter().enumerate().map(|(k, key)| (key.clone(), ((i + k) % 100) as f64 / 100.0)).collect();
    let out = Record::Log { step: 0, time: now, metrics: Metrics { values, dropped: vec![] } }.to_line();
    write_finished(lab, spec, out);
}

/// Creates the run folder of `spec` with `records` and an end record in its
/// supervisor stream; returns the run's id.
pub fn write_finished(lab: &Lab, mut spec: RunSpec, mut records: String) -> String {
    let (dir, lock) = RunDir::create(lab, &mut spec, b"").unwrap();
    let end =
        End { time: spec.created_at + 1.0, status: "finished".into(), exit_code: Some(0), signal: None, reason: None };
    records.push_str(&Record::End(end).to_line());
    dir.append(SUPERVISOR_STREAM).unwrap().write_bytes(records.as_bytes()).unwrap();
    drop(lock);
    spec.id
}
