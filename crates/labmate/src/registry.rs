//! The registry's questions: which runs match, in what order, how groups of
//! runs that differ only by seed compare, and what the baseline is.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::index::Index;
use crate::lab::Lab;
use crate::model::Run;
use crate::query::{Expr, Path, as_number, check_path};
use crate::stats::{self, Summary};

/// A sort key: a path, ascending unless written with a leading `-`.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub path: Path,
    pub descending: bool,
}

impl SortKey {
    pub fn parse(text: &str) -> Result<SortKey> {
        let (descending, rest) = match text.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let path = Path::parse(rest).map_err(|why| Error::invalid("sort", format!("--sort {text}: {why}")))?;
        Ok(SortKey { path, descending })
    }
}

/// Paths parsed from user text, checked against what the runs have.
pub fn parse_paths(texts: &[String], runs: &[Run], flag: &str) -> Result<Vec<Path>> {
    texts
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.trim().is_empty())
        .map(|t| {
            let p = Path::parse(t).map_err(|why| Error::invalid("key", format!("{flag} {t}: {why}")))?;
            check_path(&p, runs).map_err(|e| e.within(flag))?;
            Ok(p)
        })
        .collect()
}

/// Runs matching `filter`, sorted by `sort` (newest first otherwise), at most `limit`.
pub fn select(index: &Index, filter: Option<&Expr>, sort: &[SortKey], limit: Option<usize>) -> Result<Vec<Run>> {
    let all = index.runs(None)?;
    let named = filter.map(|e| e.paths()).unwrap_or_default().into_iter().chain(sort.iter().map(|s| &s.path));
    for p in named {
        check_path(p, &all)?;
    }
    let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();
    let mut runs: Vec<Run> = all.into_iter().filter(|r| filter.is_none_or(|e| e.eval(r, &value_at))).collect();
    if !sort.is_empty() {
        let keyed: Vec<(Vec<Value>, Run)> =
            runs.into_iter().map(|r| (sort.iter().map(|s| s.path.get(&r, &value_at)).collect(), r)).collect();
        let mut keyed = keyed;
        keyed.sort_by(|(a, _), (b, _)| {
            for (i, s) in sort.iter().enumerate() {
                let o = order(&a[i], &b[i]);
                let o = if s.descending { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
        runs = keyed.into_iter().map(|(_, r)| r).collect();
    }
    if let Some(l) = limit {
        runs.truncate(l);
    }
    Ok(runs)
}

/// Numbers before strings before missing values; NaN after numbers.
fn order(a: &Value, b: &Value) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (as_number(a), as_number(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or_else(|| x.is_nan().cmp(&y.is_nan())),
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (None, None) => match (a, b) {
            (Value::Null, Value::Null) => Equal,
            (Value::Null, _) => Greater,
            (_, Value::Null) => Less,
            _ => a.to_string().cmp(&b.to_string()),
        },
    }
}

/// Runs that share the values of the grouping paths (and so differ only in
/// the rest: usually the seed).
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The grouping paths and their values.
    pub key: BTreeMap<String, Value>,
    pub runs: Vec<String>,
    /// The seeds of the runs (from the config's seed key), as found.
    pub seeds: Vec<Value>,
    /// Per summarised path: n, mean, std, min, max, 95% CI.
    pub stats: BTreeMap<String, Summary>,
}

pub fn group(index: &Index, runs: &[Run], by: &[Path], of: &[Path], seed_key: &str) -> Vec<Group> {
    let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();
    let mut groups: Vec<(Vec<Value>, Vec<&Run>)> = Vec::new();
    for run in runs {
        let key: Vec<Value> = by.iter().map(|p| p.get(run, &value_at)).collect();
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(run),
            None => groups.push((key, vec![run])),
        }
    }
    groups.sort_by(|(a, _), (b, _)| {
        a.iter().zip(b).map(|(x, y)| order(x, y)).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal)
    });
    groups
        .into_iter()
        .map(|(key, members)| Group {
            key: by.iter().map(|p| p.to_string()).zip(key).collect(),
            runs: members.iter().map(|r| r.id.clone()).collect(),
            seeds: {
                let mut seeds: Vec<Value> = members.iter().filter_map(|r| r.config.get(seed_key).cloned()).collect();
                seeds.sort_by(order);
                seeds
            },
            stats: of
                .iter()
                .map(|p| {
                    let values: Vec<f64> =
                        members.iter().map(|r| as_number(&p.get(r, &value_at)).unwrap_or(f64::NAN)).collect();
                    (p.to_string(), stats::summarize(&values))
                })
                .collect(),
        })
        .collect()
}

/// One side of a comparison: a run, or a group of runs.
#[derive(Debug, Clone)]
pub struct Side {
    pub label: String,
    pub runs: Vec<Run>,
}

/// Reads a side: a run (id, prefix, name), `PATH=VALUE` (the runs whose
/// PATH equals VALUE), or a `--where` expression.
pub fn side(index: &Index, text: &str) -> Result<Side> {
    match index.resolve(text) {
        Ok(id) => {
            let run = index.run(&id)?;
            return Ok(Side { label: run.name.clone().map_or(id.clone(), |n| format!("{id} ({n})")), runs: vec![run] });
        }
        // A text that fits two runs was meant as a run: comparing a guess is worse than asking.
        Err(e @ Error::AmbiguousRun { .. }) => return Err(e),
        Err(_) => {}
    }
    let expr = match text.split_once('=') {
        Some((k, v)) if !k.contains(' ') && !v.starts_with('=') && !k.ends_with(['!', '<', '>']) => {
            let value =
                if v.parse::<f64>().is_ok() || v == "true" || v == "false" { v.to_string() } else { format!("{v:?}") };
            Expr::parse(&format!("{k} == {value}"))?
        }
        _ => Expr::parse(text)?,
    };
    let runs = select(index, Some(&expr), &[], None)?;
    if runs.is_empty() {
        return Err(Error::not_found("side", format!("no run matches '{text}'")));
    }
    Ok(Side { label: text.to_string(), runs })
}

const BASELINE_FILE: &str = "baseline.json";

/// The lab's baseline, as the text of a side (a run id or a group).
/// The baseline's mean of the runs' first key metric (its last values), for
/// a Δ column: the key and the mean, when there is a baseline with values.
pub fn baseline_delta(index: &Index, runs: &[Run]) -> Option<(String, f64)> {
    let side = side(index, &baseline(index.lab())?).ok()?;
    let key = crate::model::key_metrics(runs, 1).into_iter().next()?;
    let values: Vec<f64> =
        side.runs.iter().filter_map(|r| r.metrics.get(&key)).map(|m| m.last).filter(|v| v.is_finite()).collect();
    (!values.is_empty()).then(|| (key, values.iter().sum::<f64>() / values.len() as f64))
}

pub fn baseline(lab: &Lab) -> Option<String> {
    let text = std::fs::read_to_string(lab.root().join(BASELINE_FILE)).ok()?;
    serde_json::from_str::<Value>(&text).ok()?.get("side")?.as_str().map(String::from)
}

/// Makes `side` (a run, or a group) the baseline, set by `by`. A single run
/// is stored by id, so that a later run of the same name does not move it.
/// Returns what was stored and how many runs it stands for.
pub fn set_baseline(index: &Index, side: &str, by: &str) -> Result<(String, usize)> {
    let resolved = self::side(index, side)?;
    let stored = if resolved.runs.len() == 1 && index.resolve(side).is_ok() {
        resolved.runs[0].id.clone()
    } else {
        side.to_string()
    };
    let path = index.lab().root().join(BASELINE_FILE);
    let body = serde_json::json!({"side": stored, "set_at": crate::clock::rfc3339(index.lab().now()), "by": by});
    std::fs::write(&path, format!("{body:#}\n")).map_err(|e| Error::io(&path, e))?;
    Ok((stored, resolved.runs.len()))
}

/// Forgets the baseline.
pub fn clear_baseline(lab: &Lab) -> Result<()> {
    let path = lab.root().join(BASELINE_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
        _ => Ok(()),
    }
}

/// Whether lower values of a metric are better (losses, errors, perplexity).
pub fn lower_is_better(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["loss", "err", "perplexity", "ppl", "mse", "mae", "rmse"].iter().any(|w| k.contains(w))
}
