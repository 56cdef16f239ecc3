//! Where a run's step time goes. The Python client's `labmate.span(name)`
//! adds each span's seconds into the next logged step as the metric
//! `span/<name>`; this module turns those series into shares, per-step
//! percentiles, steps/s over time, and changes against a baseline run.

use serde::Serialize;

use crate::error::Result;
use crate::index::Index;
use crate::model::Point;

pub const SPAN_PREFIX: &str = "span/";

#[derive(Debug, Clone, Serialize)]
pub struct SpanStat {
    pub name: String,
    /// Seconds over the whole run.
    pub total_s: f64,
    /// Of all spans' time.
    pub share: f64,
    /// Per step in which it ran.
    pub mean_s: f64,
    pub p50_s: f64,
    pub p95_s: f64,
    pub steps: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub name: String,
    pub baseline_mean_s: f64,
    pub mean_s: f64,
    /// Relative change of the mean per step: -0.5 is twice as fast.
    pub change: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    pub run: String,
    pub spans: Vec<SpanStat>,
    /// Wall seconds per step, from the times steps were logged.
    pub step_time: Option<SpanStat>,
    /// (seconds since the first step, steps/s) over about ten windows.
    pub steps_per_s: Vec<(f64, f64)>,
    pub vs_baseline: Vec<Change>,
}

pub fn profile(index: &Index, id: &str, baseline: Option<&str>) -> Result<Profile> {
    let mut spans = span_stats(index, id)?;
    let total: f64 = spans.iter().map(|s| s.total_s).sum();
    for s in &mut spans {
        s.share = if total > 0.0 { s.total_s / total } else { 0.0 };
    }
    spans.sort_by(|a, b| b.total_s.total_cmp(&a.total_s));
    let timeline = step_timeline(index, id)?;
    let step_time = (timeline.len() >= 2).then(|| {
        let durations: Vec<f64> =
            timeline.windows(2).map(|w| (w[1].1 - w[0].1) / (w[1].0 - w[0].0).max(1) as f64).collect();
        stat("step", &durations)
    });
    let mut vs_baseline = Vec::new();
    if let Some(base) = baseline {
        let base_spans = span_stats(index, base)?;
        for s in &spans {
            if let Some(b) = base_spans.iter().find(|b| b.name == s.name) {
                let change = if b.mean_s > 0.0 { s.mean_s / b.mean_s - 1.0 } else { f64::NAN };
                vs_baseline.push(Change { name: s.name.clone(), baseline_mean_s: b.mean_s, mean_s: s.mean_s, change });
            }
        }
        vs_baseline.sort_by(|a, b| b.change.abs().total_cmp(&a.change.abs()));
    }
    Ok(Profile { run: id.to_string(), spans, step_time, steps_per_s: rates(&timeline, 10), vs_baseline })
}

fn span_stats(index: &Index, id: &str) -> Result<Vec<SpanStat>> {
    let mut out = Vec::new();
    for key in index.metric_keys(id)? {
        if let Some(name) = key.strip_prefix(SPAN_PREFIX) {
            let values: Vec<f64> = index.series(id, &key)?.iter().map(|p| p.value).filter(|v| v.is_finite()).collect();
            out.push(stat(name, &values));
        }
    }
    Ok(out)
}

fn stat(name: &str, values: &[f64]) -> SpanStat {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let pct =
        |q: f64| if sorted.is_empty() { f64::NAN } else { sorted[((sorted.len() - 1) as f64 * q).round() as usize] };
    let total: f64 = values.iter().sum();
    SpanStat {
        name: name.to_string(),
        total_s: total,
        share: 0.0,
        mean_s: if values.is_empty() { f64::NAN } else { total / values.len() as f64 },
        p50_s: pct(0.5),
        p95_s: pct(0.95),
        steps: values.len(),
    }
}

/// (step, time) of each logged step, from the run's busiest metric that is
/// not a system sample.
fn step_timeline(index: &Index, id: &str) -> Result<Vec<(i64, f64)>> {
    let summaries = index.metric_summaries(id)?;
    let Some((key, _)) = summaries.iter().filter(|(k, _)| !k.starts_with("sys/")).max_by_key(|(_, m)| m.count) else {
        return Ok(Vec::new());
    };
    let points: Vec<Point> = index.series(id, key)?;
    let mut timeline: Vec<(i64, f64)> =
        points.iter().filter(|p| p.time.is_finite()).map(|p| (p.step, p.time)).collect();
    timeline.dedup_by_key(|(s, _)| *s);
    Ok(timeline)
}

fn rates(timeline: &[(i64, f64)], windows: usize) -> Vec<(f64, f64)> {
    let (Some(first), Some(last)) = (timeline.first(), timeline.last()) else { return Vec::new() };
    let span = last.1 - first.1;
    if span <= 0.0 || timeline.len() < 2 {
        return Vec::new();
    }
    let width = span / windows as f64;
    (0..windows)
        .filter_map(|w| {
            let (lo, hi) = (first.1 + w as f64 * width, first.1 + (w + 1) as f64 * width);
            let inside: Vec<&(i64, f64)> = timeline.iter().filter(|(_, t)| *t >= lo && *t <= hi).collect();
            let (a, b) = (inside.first()?, inside.last()?);
            (b.1 > a.1).then(|| (((lo + hi) / 2.0 - first.1), (b.0 - a.0) as f64 / (b.1 - a.1)))
        })
        .collect()
}
