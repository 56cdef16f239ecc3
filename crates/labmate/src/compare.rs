//! Comparing runs or groups of runs: what differs in their config and code,
//! and, per metric, the values side by side with an honest verdict.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::model::key_metrics;
use crate::query::{Path, as_number};
use crate::record::Num;
use crate::registry::{self, Side, lower_is_better};
use crate::rundir::{PATCH_FILE, RunDir};
use crate::stats::{self, Comparison};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub sides: Vec<SideBrief>,
    /// Config keys whose values differ between the sides.
    pub config: Vec<ConfigDiff>,
    pub code: Vec<CodeBrief>,
    pub metrics: Vec<MetricReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SideBrief {
    pub label: String,
    pub runs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigDiff {
    pub key: String,
    /// Per side: the value its runs share, or `{"varies": [...]}`.
    pub values: Vec<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeBrief {
    /// The commits of the side's runs (usually one).
    pub commits: Vec<String>,
    /// Uncommitted changes in the side's runs: files and lines, summed.
    pub patch: PatchStat,
    /// Against the first side's commit, from `git diff --shortstat`, when the commits differ.
    pub since_first: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PatchStat {
    pub runs_with_patch: usize,
    pub files: usize,
    pub added: usize,
    pub removed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct MetricReport {
    pub metric: String,
    pub lower_is_better: bool,
    /// Per side, one value per run.
    pub values: Vec<Vec<Num>>,
    /// Each side against the first.
    pub comparisons: Vec<Comparison>,
}

/// Compares the sides as a person writes them (a run, `PATH=VALUE`, or a
/// `--where` expression; one side alone is compared against the baseline)
/// on the metrics named (`loss` or `metrics.loss.min`; the key metrics of
/// the runs when none are).
pub fn of_texts(index: &Index, texts: &[String], metrics: &[String]) -> Result<Report> {
    let mut texts = texts.to_vec();
    if texts.is_empty() {
        return Err(Error::invalid("sides", "no side given: give two runs or groups to compare"));
    }
    if texts.len() == 1 {
        let base = registry::baseline(index.lab()).ok_or_else(|| {
            Error::invalid("sides", "one side given and no baseline set: give two sides, or `labmate baseline set RUN`")
        })?;
        texts.insert(0, base);
    }
    let sides = texts.iter().map(|t| registry::side(index, t)).collect::<Result<Vec<_>>>()?;
    let all_runs: Vec<_> = sides.iter().flat_map(|s| s.runs.clone()).collect();
    let metric_texts: Vec<String> = if metrics.is_empty() {
        key_metrics(&all_runs, 3)
    } else {
        metrics.iter().flat_map(|m| m.split(',')).filter(|m| !m.is_empty()).map(String::from).collect()
    };
    let named: Vec<String> = metric_texts
        .iter()
        .map(|m| if m.starts_with("metrics.") { m.clone() } else { format!("metrics.{m}") })
        .collect();
    let paths: Vec<Path> = registry::parse_paths(&named, &all_runs, "--metric")?;
    compare(index, &sides, &paths)
}

pub fn compare(index: &Index, sides: &[Side], metrics: &[Path]) -> Result<Report> {
    let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();
    let mut metric_reports = Vec::new();
    for path in metrics {
        let values: Vec<Vec<f64>> = sides
            .iter()
            .map(|s| s.runs.iter().map(|r| as_number(&path.get(r, &value_at)).unwrap_or(f64::NAN)).collect())
            .collect();
        let key = match path {
            Path::Metric { key, .. } | Path::MetricAt { key, .. } => key.clone(),
            other => other.to_string(),
        };
        let lower = lower_is_better(&key);
        metric_reports.push(MetricReport {
            metric: path.to_string(),
            lower_is_better: lower,
            comparisons: values[1..].iter().map(|v| stats::compare(&values[0], v, lower)).collect(),
            values: values.iter().map(|v| v.iter().map(|x| Num(*x)).collect()).collect(),
        });
    }
    Ok(Report {
        sides: sides
            .iter()
            .map(|s| SideBrief { label: s.label.clone(), runs: s.runs.iter().map(|r| r.id.clone()).collect() })
            .collect(),
        config: config_diff(sides),
        code: code_briefs(index, sides),
        metrics: metric_reports,
    })
}

fn config_diff(sides: &[Side]) -> Vec<ConfigDiff> {
    let per_side: Vec<BTreeMap<String, Vec<Value>>> = sides
        .iter()
        .map(|s| {
            let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for r in &s.runs {
                let mut flat = BTreeMap::new();
                flatten("", &Value::Object(r.config.clone()), &mut flat);
                for (k, v) in flat {
                    let seen = m.entry(k).or_default();
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
            }
            m
        })
        .collect();
    let keys: std::collections::BTreeSet<&String> = per_side.iter().flat_map(|m| m.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let values: Vec<Value> = per_side
                .iter()
                .map(|m| match m.get(k).map(Vec::as_slice) {
                    None | Some([]) => Value::Null,
                    Some([one]) => one.clone(),
                    Some(many) => serde_json::json!({ "varies": many }),
                })
                .collect();
            values.iter().any(|v| *v != values[0]).then(|| ConfigDiff { key: k.clone(), values })
        })
        .collect()
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, inner) in m {
                let p = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&p, inner, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn code_briefs(index: &Index, sides: &[Side]) -> Vec<CodeBrief> {
    let commits: Vec<Vec<String>> = sides
        .iter()
        .map(|s| {
            let mut c: Vec<String> =
                s.runs.iter().filter_map(|r| r.git.as_ref().and_then(|g| g.commit.clone())).collect();
            c.dedup();
            c.sort();
            c.dedup();
            c
        })
        .collect();
    // Found only when some side's commit differs from the first side's.
    let found = std::cell::OnceCell::new();
    let repo = || found.get_or_init(|| crate::git::Repo::discover(index.lab().repo_root())).as_ref();
    sides
        .iter()
        .zip(&commits)
        .map(|(s, mine)| {
            let mut patch = PatchStat::default();
            for r in &s.runs {
                let text = std::fs::read_to_string(RunDir::at(index.lab().run_dir(&r.id)).file(PATCH_FILE))
                    .unwrap_or_default();
                if text.is_empty() {
                    continue;
                }
                patch.runs_with_patch += 1;
                for line in text.lines() {
                    if line.starts_with("diff --git ") {
                        patch.files += 1;
                    } else if line.starts_with('+') && !line.starts_with("+++") {
                        patch.added += 1;
                    } else if line.starts_with('-') && !line.starts_with("---") {
                        patch.removed += 1;
                    }
                }
            }
            let since_first = match (commits[0].as_slice(), mine.as_slice()) {
                ([a], [b]) if a != b => repo().and_then(|r| r.shortstat(a, b)),
                _ => None,
            };
            CodeBrief { commits: mine.clone(), patch, since_first }
        })
        .collect()
}
