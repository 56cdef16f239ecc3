//! `notebook render`: live references get their current values, and every
//! results block (between `<!-- labmate:results -->` and
//! `<!-- /labmate:results -->`) gets a fresh table from the registry. Nothing
//! else in the file changes.
//!
//! The table has one row per run, oldest first: id, name, status, the config
//! keys that differ between the runs, the key metrics' last values, and the
//! difference from the baseline in the first key metric when a baseline is
//! set. Grouped (`[notebook] group_by`, or `--group-by`), it has one row per
//! group: its values, n, seeds, each key metric's mean ± std, and the
//! verdict against the baseline group. `[notebook] columns` chooses the
//! columns (paths) and `[notebook] where` the runs.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::file::{self, NEW_FILE, Notebook, Settings};
use super::refs::{self, Reference};
use crate::error::Result;
use crate::index::Index;
use crate::lab::Lab;
use crate::model::{Run, key_metrics};
use crate::query::{Expr, Path, as_number};
use crate::registry::{self, Side, lower_is_better};
use crate::stats;
use crate::text::num;

/// How to render; what is left empty comes from `labmate.toml`'s `[notebook]`.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    pub group_by: Vec<String>,
    pub columns: Vec<String>,
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RenderReport {
    /// References rendered.
    pub references: usize,
    /// Of those, how many now show another value than before.
    pub changed: usize,
    /// Results blocks refreshed, and the rows of the table.
    pub tables: usize,
    pub rows: usize,
    /// References that could not be derived (left as they were).
    pub problems: Vec<String>,
    /// Whether the file changed.
    pub written: bool,
}

/// Renders the lab's notebook in place (creating it when there is none).
pub fn render(lab: &Lab, index: &Index, options: &RenderOptions) -> Result<RenderReport> {
    let settings = Settings::load(lab)?;
    let pick = |given: &[String], set: &[String]| if given.is_empty() { set.to_vec() } else { given.to_vec() };
    let group_by = pick(&options.group_by, &settings.group_by);
    let columns = pick(&options.columns, &settings.columns);
    let filter = options.filter.clone().or(settings.filter.clone());

    let _lock = file::lock(lab)?;
    let old = file::read(&settings.path)?;
    let nb = Notebook::parse(settings.path.clone(), old.clone().unwrap_or_else(|| NEW_FILE.to_string()));
    let mut report = RenderReport { problems: nb.problems.clone(), ..RenderReport::default() };
    let mut edits = Vec::new();
    for f in refs::find(&nb.scannable()) {
        let derived = Reference::parse(&f.body)
            .map_err(|why| why.to_string())
            .and_then(|r| r.value(index).map_err(|e| e.to_string()));
        match derived {
            Ok((value, _)) => {
                report.references += 1;
                if f.rendered.as_deref() != Some(value.as_str()) {
                    report.changed += 1;
                }
                edits.push((f.range.clone(), refs::rendered(&f.body, &value)));
            }
            Err(why) => report.problems.push(format!("line {}: {{{{{}}}}}: {why}", nb.line_of(f.range.start), f.body)),
        }
    }
    if !nb.blocks.is_empty() {
        let (table, rows) = table(index, &group_by, &columns, filter.as_deref(), &settings.seed_key)?;
        report.rows = rows;
        for b in &nb.blocks {
            report.tables += 1;
            edits.push((b.inner.clone(), table.clone()));
        }
    }
    let new = refs::apply(&nb.text, edits);
    if old.as_deref() != Some(new.as_str()) {
        file::write_atomic(&settings.path, &new)?;
        report.written = true;
    }
    Ok(report)
}

/// The inside of a results block: a markdown table and a line saying where it comes from.
pub fn table(
    index: &Index,
    group_by: &[String],
    columns: &[String],
    filter: Option<&str>,
    seed_key: &str,
) -> Result<(String, usize)> {
    let expr = filter.map(Expr::parse).transpose()?;
    let mut runs = registry::select(index, expr.as_ref(), &[], None)?;
    runs.reverse();
    let note =
        "_Generated from the registry by `labmate notebook render`; edits between these markers are overwritten._";
    if runs.is_empty() {
        return Ok((format!("\n_No runs yet._\n\n{note}\n\n"), 0));
    }
    let baseline = registry::baseline(index.lab()).and_then(|b| registry::side(index, &b).ok());
    let (header, rows) = if group_by.is_empty() {
        run_rows(index, &runs, columns, baseline.as_ref())?
    } else {
        group_rows(index, &runs, group_by, columns, seed_key, baseline.as_ref())?
    };
    let n = rows.len();
    let mut out = format!(
        "\n| {} |\n|{}|\n",
        header.iter().map(|h| cell(h)).collect::<Vec<_>>().join(" | "),
        vec!["---"; header.len()].join("|")
    );
    for r in rows {
        let _ = writeln!(out, "| {} |", r.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | "));
    }
    let _ = write!(out, "\n{note}\n\n");
    Ok((out, n))
}

fn cell(s: &str) -> String {
    s.replace('\n', " ").replace('|', "\\|")
}

fn show(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
        Value::Number(n) => n.as_f64().map_or(n.to_string(), num),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(show).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

type Rows = (Vec<String>, Vec<Vec<String>>);

fn run_rows(index: &Index, runs: &[Run], columns: &[String], baseline: Option<&Side>) -> Result<Rows> {
    let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();
    if !columns.is_empty() {
        let paths = registry::parse_paths(columns, runs, "[notebook] columns")?;
        let header = paths.iter().map(|p| p.to_string()).collect();
        let rows = runs
            .iter()
            .map(|r| {
                paths
                    .iter()
                    .map(|p| match p {
                        Path::Field(f) if f == "id" => format!("`{}`", r.id),
                        _ => show(&p.get(r, &value_at)),
                    })
                    .collect()
            })
            .collect();
        return Ok((header, rows));
    }
    let config = varying_config(runs);
    let metrics = key_metrics(runs, 3);
    let mut header: Vec<String> = ["id", "name", "status"].map(String::from).to_vec();
    header.extend(config.iter().cloned());
    header.extend(metrics.iter().cloned());
    let base = baseline.and_then(|b| metrics.first().map(|k| (b, k, mean_last(&b.runs, k))));
    if let Some((_, k, _)) = &base {
        header.push(format!("Δ {k} vs baseline"));
    }
    let rows = runs
        .iter()
        .map(|r| {
            let mut row =
                vec![format!("`{}`", r.id), r.name.clone().unwrap_or_else(|| "-".into()), r.status.to_string()];
            for k in &config {
                let path: Vec<String> = k.split('.').skip(1).map(String::from).collect();
                row.push(show(&Path::Config(path).get(r, &value_at)));
            }
            for k in &metrics {
                row.push(r.metrics.get(k).map_or("-".into(), |m| num(m.last)));
            }
            if let Some((side, k, mean)) = &base {
                row.push(if side.runs.iter().any(|b| b.id == r.id) {
                    "baseline".into()
                } else {
                    match (r.metrics.get(*k), mean) {
                        (Some(m), Some(b)) => signed(m.last - b),
                        _ => "-".into(),
                    }
                });
            }
            row
        })
        .collect();
    Ok((header, rows))
}

fn group_rows(
    index: &Index,
    runs: &[Run],
    group_by: &[String],
    columns: &[String],
    seed_key: &str,
    baseline: Option<&Side>,
) -> Result<Rows> {
    let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();
    let by = registry::parse_paths(group_by, runs, "group_by")?;
    let of: Vec<Path> = if columns.is_empty() {
        key_metrics(runs, 3).into_iter().map(|k| Path::Metric { key: k, field: "last".into() }).collect()
    } else {
        registry::parse_paths(columns, runs, "[notebook] columns")?
    };
    let groups = registry::group(index, runs, &by, &of, seed_key);
    let mut header: Vec<String> = by.iter().map(|p| p.to_string()).collect();
    header.push("n".into());
    header.push("seeds".into());
    header.extend(of.iter().map(|p| format!("{} mean ± std", short(p))));
    let verdict_on = baseline.zip(of.first());
    if let Some((_, p)) = verdict_on {
        header.push(format!("{} vs baseline", short(p)));
    }
    let rows = groups
        .iter()
        .map(|g| {
            let mut row: Vec<String> = by.iter().map(|p| show(&g.key[&p.to_string()])).collect();
            row.push(g.runs.len().to_string());
            row.push(g.seeds.iter().map(show).collect::<Vec<_>>().join(", "));
            for p in &of {
                let s = &g.stats[&p.to_string()];
                row.push(match s.n {
                    0 => "-".into(),
                    1 => num(s.mean),
                    _ => format!("{} ± {}", num(s.mean), num(s.std)),
                });
            }
            if let Some((side, p)) = verdict_on {
                let base: BTreeSet<&str> = side.runs.iter().map(|r| r.id.as_str()).collect();
                let mine: BTreeSet<&str> = g.runs.iter().map(String::as_str).collect();
                row.push(if base == mine {
                    "baseline".into()
                } else {
                    let values = |rs: Vec<&Run>| -> Vec<f64> {
                        rs.iter().map(|r| as_number(&p.get(r, &value_at)).unwrap_or(f64::NAN)).collect()
                    };
                    let a = values(side.runs.iter().collect());
                    let b = values(runs.iter().filter(|r| mine.contains(r.id.as_str())).collect());
                    stats::compare(&a, &b, lower_is_better(&short(p))).verdict
                });
            }
            row
        })
        .collect();
    Ok((header, rows))
}

/// A metric path as a column names it: `val_loss` for its last value.
fn short(p: &Path) -> String {
    match p {
        Path::Metric { key, field } if field == "last" => key.clone(),
        Path::Metric { key, field } => format!("{key}.{field}"),
        other => other.to_string(),
    }
}

/// The mean of the finite last values of `key` over `runs`.
fn mean_last(runs: &[Run], key: &str) -> Option<f64> {
    let v: Vec<f64> =
        runs.iter().filter_map(|r| r.metrics.get(key)).map(|m| m.last).filter(|v| v.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn signed(v: f64) -> String {
    if v > 0.0 { format!("+{}", num(v)) } else { num(v) }
}

/// The config keys (`config.a.b`) whose values are not the same in every run, at most 6.
fn varying_config(runs: &[Run]) -> Vec<String> {
    let mut seen: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for r in runs {
        let mut flat = BTreeMap::new();
        flatten("config", &Value::Object(r.config.clone()), &mut flat);
        for (k, v) in flat {
            seen.entry(k).or_default().push(v);
        }
    }
    seen.into_iter()
        .filter(|(_, vs)| vs.len() < runs.len() || vs.iter().any(|v| *v != vs[0]))
        .map(|(k, _)| k)
        .take(6)
        .collect()
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, inner) in m {
                flatten(&format!("{prefix}.{k}"), inner, out);
            }
        }
        Value::Object(_) => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}
