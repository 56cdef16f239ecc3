//! Exports of the registry: run summaries (one row per run: fields, config,
//! metric summaries) and metric series (one row per point), as CSV, JSON
//! lines or Parquet. One table shape serves all three formats.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::index::Index;
use crate::model::Run;
use crate::parquet::{Column, Table};
use crate::record::Num;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    pub fn parse(text: &str) -> Result<Format> {
        match text {
            "csv" => Ok(Format::Csv),
            "jsonl" => Ok(Format::Jsonl),
            "parquet" => Ok(Format::Parquet),
            other => Err(Error::invalid(
                "export format",
                format!("unknown export format '{other}': use csv, jsonl or parquet"),
            )),
        }
    }
}

const SUMMARY_FIELDS: [&str; 7] = ["last", "min", "max", "mean", "count", "last_step", "nan_count"];

/// One row per run: id, name, status, times, exit, tags, git, every config
/// key (flattened, `config.a.b`) and every metric's summary.
pub fn runs_table(runs: &[Run]) -> Table {
    let mut config_keys = BTreeSet::new();
    let mut metric_keys = BTreeSet::new();
    let flat: Vec<Map<String, Value>> = runs
        .iter()
        .map(|r| {
            let mut m = Map::new();
            flatten("config", &Value::Object(r.config.clone()), &mut m);
            config_keys.extend(m.keys().cloned());
            metric_keys.extend(r.metrics.keys().cloned());
            m
        })
        .collect();
    let text = |f: &dyn Fn(&Run) -> Option<String>| Column::Utf8(runs.iter().map(f).collect());
    let mut columns = vec![
        ("id".to_string(), text(&|r| Some(r.id.clone()))),
        ("name".into(), text(&|r| r.name.clone())),
        ("status".into(), text(&|r| Some(r.status.to_string()))),
        ("created_at".into(), text(&|r| Some(r.created_at.clone()))),
        ("ended_at".into(), text(&|r| r.ended_at.clone())),
        ("duration_s".into(), Column::Double(runs.iter().map(|r| Some(r.duration_s)).collect())),
        ("exit_code".into(), Column::Int64(runs.iter().map(|r| r.exit_code.map(i64::from)).collect())),
        ("tags".into(), text(&|r| Some(r.tags.join(",")))),
        ("git.commit".into(), text(&|r| r.git.as_ref().and_then(|g| g.commit.clone()))),
        ("git.dirty".into(), Column::Bool(runs.iter().map(|r| r.git.as_ref().map(|g| g.dirty)).collect())),
    ];
    // Where runs belong (wandb's project, group and job type) and what they
    // are about: a column each, when some run has one.
    type Field = fn(&Run) -> &Option<String>;
    let about: [(&str, Field); 4] =
        [("project", |r| &r.project), ("group", |r| &r.group), ("job_type", |r| &r.job_type), ("notes", |r| &r.notes)];
    for (name, field) in about {
        if runs.iter().any(|r| field(r).is_some()) {
            columns.push((name.into(), text(&|r| field(r).clone())));
        }
    }
    for key in config_keys {
        let values: Vec<Option<&Value>> = flat.iter().map(|m| m.get(&key)).collect();
        columns.push((key, column_of(&values)));
    }
    for key in metric_keys {
        for field in SUMMARY_FIELDS {
            let col = match field {
                "count" => Column::Int64(runs.iter().map(|r| metric(r, &key).map(|m| m.count as i64)).collect()),
                "last_step" => Column::Int64(runs.iter().map(|r| metric(r, &key).map(|m| m.last_step)).collect()),
                "nan_count" => {
                    Column::Int64(runs.iter().map(|r| metric(r, &key).map(|m| m.nan_count as i64)).collect())
                }
                _ => Column::Double(
                    runs.iter()
                        .map(|r| {
                            metric(r, &key).map(|m| match field {
                                "last" => m.last,
                                "min" => m.min,
                                "max" => m.max,
                                _ => m.mean,
                            })
                        })
                        .collect(),
                ),
            };
            columns.push((format!("metrics.{key}.{field}"), col));
        }
    }
    Table { columns }
}

fn metric<'a>(r: &'a Run, key: &str) -> Option<&'a crate::model::MetricSummary> {
    r.metrics.get(key)
}

/// One row per point: run, key, step, time, value.
pub fn series_table(index: &Index, runs: &[Run], keys: &[String]) -> Result<Table> {
    let (mut run, mut key, mut step, mut time, mut value) = (vec![], vec![], vec![], vec![], vec![]);
    for r in runs {
        for k in r.metrics.keys().filter(|k| keys.is_empty() || keys.contains(k)) {
            for p in index.series(&r.id, k)? {
                run.push(Some(r.id.clone()));
                key.push(Some(k.clone()));
                step.push(Some(p.step));
                time.push(Some(p.time));
                value.push(Some(p.value));
            }
        }
    }
    Ok(Table {
        columns: vec![
            ("run".into(), Column::Utf8(run)),
            ("key".into(), Column::Utf8(key)),
            ("step".into(), Column::Int64(step)),
            ("time".into(), Column::Double(time)),
            ("value".into(), Column::Double(value)),
        ],
    })
}

/// A column for JSON values: integers, numbers, booleans, or else text
/// (JSON for anything that is not a string).
fn column_of(values: &[Option<&Value>]) -> Column {
    let present = || values.iter().flatten();
    if present().all(|v| v.is_i64()) {
        Column::Int64(values.iter().map(|v| v.and_then(Value::as_i64)).collect())
    } else if present().all(|v| v.is_number()) {
        Column::Double(values.iter().map(|v| v.and_then(Value::as_f64)).collect())
    } else if present().all(|v| v.is_boolean()) {
        Column::Bool(values.iter().map(|v| v.and_then(Value::as_bool)).collect())
    } else {
        Column::Utf8(values.iter().map(|v| v.map(|v| v.as_str().map_or_else(|| v.to_string(), String::from))).collect())
    }
}

fn flatten(prefix: &str, v: &Value, out: &mut Map<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, inner) in m {
                flatten(&format!("{prefix}.{k}"), inner, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// Writes the table to the file `path` in `format`.
pub fn write(table: &Table, format: Format, path: &Path) -> Result<()> {
    let cannot = |e| Error::write(path, e);
    if format == Format::Parquet {
        return crate::parquet::write_file(table, path).map_err(cannot);
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(cannot)?);
    write_to(table, format, &mut out).and_then(|()| out.flush()).map_err(cannot)
}

/// Writes the table to `out` in `format` (e.g. standard output).
pub fn write_to(table: &Table, format: Format, out: &mut impl Write) -> std::io::Result<()> {
    if format == Format::Parquet {
        return crate::parquet::write(table, out);
    }
    let rows = table.columns.first().map_or(0, |(_, c)| len(c));
    if format == Format::Csv {
        let header: Vec<String> = table.columns.iter().map(|(n, _)| csv(n)).collect();
        writeln!(out, "{}", header.join(","))?;
    }
    for i in 0..rows {
        let line = match format {
            Format::Csv => table.columns.iter().map(|(_, c)| csv(&cell(c, i))).collect::<Vec<_>>().join(","),
            _ => {
                let obj: Map<String, Value> = table.columns.iter().map(|(n, c)| (n.clone(), json(c, i))).collect();
                Value::Object(obj).to_string()
            }
        };
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn len(c: &Column) -> usize {
    match c {
        Column::Int64(v) => v.len(),
        Column::Double(v) => v.len(),
        Column::Utf8(v) => v.len(),
        Column::Bool(v) => v.len(),
    }
}

fn cell(c: &Column, i: usize) -> String {
    match c {
        Column::Int64(v) => v[i].map_or(String::new(), |x| x.to_string()),
        Column::Double(v) => v[i].map_or(String::new(), number),
        Column::Utf8(v) => v[i].clone().unwrap_or_default(),
        Column::Bool(v) => v[i].map_or(String::new(), |b| b.to_string()),
    }
}

fn json(c: &Column, i: usize) -> Value {
    match c {
        Column::Int64(v) => v[i].map_or(Value::Null, Value::from),
        Column::Double(v) => v[i].map_or(Value::Null, |x| serde_json::to_value(Num(x)).unwrap_or(Value::Null)),
        Column::Utf8(v) => v[i].clone().map_or(Value::Null, Value::from),
        Column::Bool(v) => v[i].map_or(Value::Null, Value::from),
    }
}

/// The shortest text that reads back as the same f64 (`1e-7`, `9.54e138`),
/// and NaN/Infinity/-Infinity for the rest.
pub fn number(x: f64) -> String {
    serde_json::to_string(&Num(x)).unwrap_or_default().trim_matches('"').to_string()
}

fn csv(s: &str) -> String {
    if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() }
}
