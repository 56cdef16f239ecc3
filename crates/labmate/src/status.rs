//! The compact status of a run, made to be read by a model in a few hundred
//! characters: where it is, how its key metrics move, how fast it goes, what
//! went wrong; and the review items a human disputed, one line each.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::clock;
use crate::error::Result;
use crate::index::Index;
use crate::model::{Run, key_metrics};
use crate::record::{RunStatus, ser_num};
use crate::rundir::{RunDir, STDERR_LOG};
use crate::text::{clip, escape_controls as esc};

/// Config (or summary) keys that give a run's total steps.
const TOTAL_KEYS: [&str; 8] =
    ["total_steps", "max_steps", "num_steps", "steps", "max_iters", "iters", "total_iters", "num_iterations"];
/// Points at the end of a series that throughput and trend look at.
const RECENT_POINTS: usize = 200;

#[derive(Debug, Clone, Serialize)]
pub struct Compact {
    pub id: String,
    pub name: Option<String>,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub elapsed_s: f64,
    /// The highest step any metric reached.
    pub step: Option<i64>,
    pub total_steps: Option<i64>,
    pub progress: Option<f64>,
    pub eta_s: Option<f64>,
    pub steps_per_s: Option<f64>,
    pub metrics: Vec<MetricStatus>,
    pub alert_count: u64,
    /// The latest alerts, newest last.
    pub alerts: Vec<String>,
    pub last_error: Option<String>,
    /// The latest system metrics (`sys/` dropped from the names).
    pub sys: BTreeMap<String, f64>,
    /// Its Slurm job, for a run on Slurm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::model::SlurmJob>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricStatus {
    pub key: String,
    #[serde(serialize_with = "ser_num")]
    pub last: f64,
    /// Lowest for losses and errors, highest for everything else.
    #[serde(serialize_with = "ser_num")]
    pub best: f64,
    /// `falling`, `rising` or `flat` over the recent points.
    pub trend: &'static str,
}

/// How far back `labmate status` (and the dashboard's status) looks for
/// runs that ended.
pub const RECENT_S: f64 = 3600.0;

/// Where every active run stands, and every run that ended in the last
/// [`RECENT_S`]: what `status` shows when no run is named.
pub fn active_and_recent(index: &Index) -> Result<Vec<Compact>> {
    let ids = index.active_or_ended_since(index.lab().now() - RECENT_S)?;
    ids.iter().map(|id| run_status(index, &index.run(id)?)).collect()
}

pub fn run_status(index: &Index, run: &Run) -> Result<Compact> {
    let keys = key_metrics(std::slice::from_ref(run), 3);
    let mut metrics = Vec::new();
    let mut steps_per_s = None;
    for key in &keys {
        let m = &run.metrics[key];
        let lower_is_better = ["loss", "err", "perplexity", "ppl"].iter().any(|w| key.to_ascii_lowercase().contains(w));
        let best = if lower_is_better { m.min } else { m.max };
        let points = index.series(&run.id, key)?;
        let recent = &points[points.len().saturating_sub(RECENT_POINTS)..];
        if steps_per_s.is_none() && recent.len() >= 2 {
            let (a, b) = (recent[0], recent[recent.len() - 1]);
            if b.time > a.time && b.step > a.step {
                steps_per_s = Some((b.step - a.step) as f64 / (b.time - a.time));
            }
        }
        metrics.push(MetricStatus {
            key: key.clone(),
            last: m.last,
            best,
            trend: trend(recent.iter().map(|p| p.value)),
        });
    }
    let step = run.metrics.iter().filter(|(k, _)| !k.starts_with("sys/")).map(|(_, m)| m.last_step).max();
    let total_steps = TOTAL_KEYS
        .iter()
        .find_map(|k| run.config.get(*k).or_else(|| run.summary.get(*k)).and_then(|v| v.as_i64()))
        .filter(|t| *t > 0);
    let progress = match (step, total_steps) {
        (Some(s), Some(t)) => Some(((s + 1) as f64 / t as f64).min(1.0)),
        _ => None,
    };
    let eta_s = match (step, total_steps, steps_per_s) {
        (Some(s), Some(t), Some(r)) if run.status == RunStatus::Running && r > 0.0 => {
            Some(((t - s - 1).max(0) as f64 / r).round())
        }
        _ => None,
    };
    let events = index.events(&run.id)?;
    let alerts: Vec<String> = events.iter().filter(|e| e.kind == "alert").map(|e| e.message.clone()).collect();
    let sys = run.metrics.iter().filter_map(|(k, m)| k.strip_prefix("sys/").map(|s| (s.to_string(), m.last))).collect();
    let stderr_tail = read_tail(&RunDir::at(index.lab().run_dir(&run.id)), 16 * 1024);
    Ok(Compact {
        id: run.id.clone(),
        name: run.name.clone(),
        status: run.status.clone(),
        reason: run.reason.clone(),
        elapsed_s: run.duration_s,
        step,
        total_steps,
        progress,
        eta_s,
        steps_per_s,
        metrics,
        alert_count: alerts.len() as u64,
        alerts: alerts[alerts.len().saturating_sub(2)..].to_vec(),
        last_error: crate::rules::detect::last_error_line(&stderr_tail),
        sys,
        slurm: run.slurm.clone(),
    })
}

/// Falling, rising or flat: the mean of the last quarter of the points
/// against the quarter before it, with 2% of slack.
fn trend(values: impl Iterator<Item = f64>) -> &'static str {
    let v: Vec<f64> = values.filter(|v| v.is_finite()).collect();
    let q = v.len() / 4;
    if q == 0 {
        return "flat";
    }
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let (before, last) = (mean(&v[v.len() - 2 * q..v.len() - q]), mean(&v[v.len() - q..]));
    let slack = 0.02 * before.abs().max(1e-12);
    if last < before - slack {
        "falling"
    } else if last > before + slack {
        "rising"
    } else {
        "flat"
    }
}

fn read_tail(dir: &RunDir, bytes: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(dir.file(STDERR_LOG)) else {
        return String::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// The status as a few short lines, one per subject: what users named is escaped.
pub fn render(s: &Compact) -> String {
    let mut out = String::new();
    let name = s.name.as_ref().map_or(String::new(), |n| format!(" {}", esc(n)));
    let mut state = s.status.to_string();
    if let Some(r) = &s.reason {
        let _ = write!(state, " ({})", clip(&esc(r), 40));
    }
    let _ = write!(out, "{}{name}: {state}, {}", s.id, clock::human_duration(s.elapsed_s));
    match (s.step, s.total_steps, s.progress) {
        (Some(step), Some(total), Some(p)) => {
            let _ = write!(out, ", step {step}/{total} ({:.0}%)", p * 100.0);
        }
        (Some(step), _, _) => {
            let _ = write!(out, ", step {step}");
        }
        _ => {}
    }
    if let Some(r) = s.steps_per_s {
        let _ = write!(out, ", {} steps/s", short(r));
    }
    if let Some(eta) = s.eta_s {
        let _ = write!(out, ", ETA {}", clock::human_duration(eta));
    }
    out.push('\n');
    if let Some(job) = &s.slurm {
        let _ = write!(out, "  Slurm job {}", esc(&job.job_id));
        if let Some(state) = &job.state {
            let _ = write!(out, ": {}", esc(state));
        }
        if let Some(reason) = &job.reason {
            let _ = write!(out, " ({})", esc(reason));
        }
        if let Some(p) = &job.partition {
            let _ = write!(out, ", partition {}", esc(p));
        }
        if let Some(node) = &job.node {
            let _ = write!(out, ", node {}", esc(node));
        }
        if let Some(gpus) = &job.visible_devices {
            let _ = write!(out, ", GPUs {}", esc(gpus));
        }
        out.push('\n');
    }
    if !s.metrics.is_empty() {
        let parts: Vec<String> = s
            .metrics
            .iter()
            .map(|m| format!("{} {} {} (best {})", esc(&m.key), short(m.last), arrow(m.trend), short(m.best)))
            .collect();
        let _ = writeln!(out, "  {}", parts.join("; "));
    }
    if s.alert_count > 0 {
        let _ = writeln!(out, "  alerts ({}): {}", s.alert_count, clip(&esc(s.alerts.last().map_or("", |a| a)), 110));
    }
    if let Some(e) = &s.last_error {
        let _ = writeln!(out, "  last error: {}", clip(&esc(e), 100));
    }
    let sys: Vec<String> =
        [("cpu_percent", "cpu", "%"), ("rss_mb", "rss", "MB"), ("host_mem_used_pct", "host mem", "%")]
            .iter()
            .filter_map(|(k, label, unit)| s.sys.get(*k).map(|v| format!("{label} {}{unit}", v.round())))
            .chain(s.sys.iter().filter(|(k, _)| k.starts_with("gpu") && k.ends_with("util_percent")).map(|(k, v)| {
                let gpu = k.split('/').next().unwrap_or(k);
                let mem =
                    s.sys.get(&format!("{gpu}/mem_used_mb")).map_or(String::new(), |m| format!(" {}MB", m.round()));
                format!("{} {}%{mem}", esc(gpu), v.round())
            }))
            .collect();
    if !sys.is_empty() {
        let _ = writeln!(out, "  sys: {}", sys.join(", "));
    }
    out
}

/// Disputed review items, one line each: the pushback an agent must see.
pub fn render_disputed(items: &[crate::review::ItemState]) -> String {
    let mut out = String::new();
    for i in items {
        let on = i.item.run.as_ref().map_or(String::new(), |r| format!(" on {}", esc(r)));
        let (by, why) = i.last_decision().map_or(("", ""), |d| (d.by.as_str(), d.note.as_deref().unwrap_or("")));
        let _ = writeln!(
            out,
            "disputed {}{on}: {} -- {}: {}  (labmate review resolve {} once settled)",
            i.item.id,
            clip(&esc(&i.item.note), 80),
            esc(by),
            clip(&esc(why), 160),
            i.item.id
        );
    }
    out
}

fn arrow(trend: &str) -> &'static str {
    match trend {
        "falling" => "↓",
        "rising" => "↑",
        _ => "→",
    }
}

fn short(v: f64) -> String {
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v != 0.0 && (v.abs() >= 1e5 || v.abs() < 1e-3) {
        format!("{v:.2e}")
    } else {
        // Four significant digits at most: 898.7 -> 898.7, 12.3456 -> 12.35.
        let decimals = (3 - v.abs().max(1e-3).log10().floor() as i32).clamp(0, 4) as usize;
        let s = format!("{v:.decimals$}");
        if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trends_read_the_recent_points() {
        assert_eq!(trend((0..100).map(|i| 100.0 - i as f64)), "falling");
        assert_eq!(trend((0..100).map(|i| i as f64)), "rising");
        assert_eq!(trend((0..100).map(|i| 5.0 + 0.001 * (i % 2) as f64)), "flat");
        assert_eq!(trend([1.0].into_iter()), "flat");
    }

    #[test]
    fn one_run_stays_short() {
        let s = Compact {
            id: "r-2qbm8y1na1".into(),
            name: Some("a-long-run-name-with-config-lr3e-4-seed-1".into()),
            status: RunStatus::Stopped,
            reason: Some(
                "diverge: loss diverged: 1.217e83 at step 24, above 64 (3x past its best level 16) for 5 points".into(),
            ),
            elapsed_s: 3600.0,
            step: Some(12_345),
            total_steps: Some(100_000),
            progress: Some(0.12),
            eta_s: Some(7200.0),
            steps_per_s: Some(12.3),
            metrics: ["train/loss", "val/loss", "val/accuracy", "grad_norm"]
                .iter()
                .map(|k| MetricStatus { key: k.to_string(), last: 0.123456, best: 0.1, trend: "falling" })
                .collect(),
            alert_count: 3,
            alerts: vec!["x".repeat(300)],
            slurm: None,
            last_error: Some("y".repeat(300)),
            sys: [
                ("cpu_percent", 98.0),
                ("rss_mb", 1234.0),
                ("gpu0/util_percent", 95.0),
                ("gpu0/mem_used_mb", 30000.0),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        };
        let text = render(&s);
        assert!(text.chars().count() < 650, "{} chars:\n{text}", text.chars().count());
        assert!(text.contains("step 12345/100000 (12%)"), "{text}");
        assert!(text.contains("sys: cpu 98%, rss 1234MB, gpu0 95% 30000MB"), "{text}");
    }
}
