//! `labmate metrics RUN [KEY...]`: a run's metric series.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use labmate::model::Point;
use labmate::record::Num;
use labmate::series;
use labmate::text::{escape_controls, num};

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// A run id, unique id prefix, last 4 characters of an id, or name.
    run: String,
    /// Metric keys (all of the run's when none are given).
    keys: Vec<String>,
    /// Downsample each series to about N points, keeping every spike.
    #[arg(long, value_name = "N")]
    points: Option<usize>,
    /// Print {"key": [{"step", "time", "value"}, ...]}.
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV rows: key,step,time,value.
    #[arg(long)]
    csv: bool,
    /// One row per step, the keys side by side (wandb's history rows):
    /// with --json {"columns": ["step", "time", KEY...], "rows": [[...], ...]}, null where a key has no value.
    #[arg(long)]
    rows: bool,
    /// With --rows: only the steps at which every key has a value.
    #[arg(long, requires = "rows")]
    all: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let id = index.resolve(&args.run)?;
    let known = index.metric_keys(&id)?;
    let keys = if args.keys.is_empty() { known.clone() } else { args.keys.clone() };
    let mut all = BTreeMap::new();
    for key in keys {
        if !known.contains(&key) {
            let has = if known.is_empty() { "none".into() } else { known.join(", ") };
            return Err(
                labmate::Error::not_found("metric", format!("run {id} has no metric '{key}'; it has: {has}")).into()
            );
        }
        let mut pts = index.series(&id, &key)?;
        if let (Some(n), false) = (args.points, args.rows) {
            pts = series::downsample(&pts, n);
        }
        all.insert(key, pts);
    }
    if args.rows {
        let keys: Vec<&String> = all.keys().collect();
        let series: Vec<&[Point]> = all.values().map(Vec::as_slice).collect();
        let mut rows = series::Rows::join(&series, args.all);
        if let Some(n) = args.points {
            rows = rows.downsample(n);
        }
        let text = if args.json {
            rows_json(&keys, &rows)
        } else if args.csv {
            rows_csv(&keys, &rows)
        } else {
            rows_plain(&keys, &rows)
        };
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    if args.json || args.csv {
        let text = if args.json { json(&all) } else { csv(&all) };
        std::io::stdout().lock().write_all(text.as_bytes())?;
    } else {
        super::print_text(&plain(&all))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Compact JSON: one point per line, which stays readable and fast for a million points.
fn json(all: &BTreeMap<String, Vec<Point>>) -> String {
    let mut s = String::from("{");
    for (i, (key, pts)) in all.iter().enumerate() {
        let _ = write!(s, "{}\n  {}: [", if i > 0 { "," } else { "" }, serde_json::to_string(key).expect("json"));
        for (j, p) in pts.iter().enumerate() {
            let _ = write!(
                s,
                "{}\n    {{\"step\": {}, \"time\": {}, \"value\": {}}}",
                if j > 0 { "," } else { "" },
                p.step,
                json_num(p.time),
                json_num(p.value)
            );
        }
        s.push_str(if pts.is_empty() { "]" } else { "\n  ]" });
    }
    s.push_str(if all.is_empty() { "}\n" } else { "\n}\n" });
    s
}

fn json_num(v: f64) -> String {
    serde_json::to_string(&Num(v)).expect("json")
}

fn csv(all: &BTreeMap<String, Vec<Point>>) -> String {
    let mut s = String::from("key,step,time,value\n");
    for (key, pts) in all {
        let key =
            if key.contains([',', '"', '\n']) { format!("\"{}\"", key.replace('"', "\"\"")) } else { key.clone() };
        for p in pts {
            let _ = writeln!(s, "{key},{},{},{}", p.step, csv_num(p.time), csv_num(p.value));
        }
    }
    s
}

fn csv_num(v: f64) -> String {
    labmate::export::number(v)
}

fn plain(all: &BTreeMap<String, Vec<Point>>) -> String {
    let mut s = String::new();
    for (key, pts) in all {
        let _ = writeln!(s, "{} ({} points)", escape_controls(key), pts.len());
        for p in pts {
            let _ = writeln!(s, "  {:>8}  {}", p.step, num(p.value));
        }
    }
    s
}

/// One row a line: a million rows stay quick to write and to parse.
fn rows_json(keys: &[&String], rows: &series::Rows) -> String {
    let mut s = String::from("{\"columns\": [\"step\", \"time\"");
    for key in keys {
        let _ = write!(s, ", {}", serde_json::to_string(key).expect("json"));
    }
    s.push_str("],\n\"rows\": [");
    for i in 0..rows.len() {
        let _ = write!(s, "{}\n[{}, {}", if i > 0 { "," } else { "" }, rows.steps[i], json_num(rows.times[i]));
        for column in &rows.columns {
            match column[i] {
                Some(v) => {
                    let _ = write!(s, ", {}", json_num(v));
                }
                None => s.push_str(", null"),
            }
        }
        s.push(']');
    }
    s.push_str(if rows.is_empty() { "]}\n" } else { "\n]}\n" });
    s
}

fn rows_csv(keys: &[&String], rows: &series::Rows) -> String {
    let mut s = String::from("step,time");
    for key in keys {
        let quoted =
            if key.contains([',', '"', '\n']) { format!("\"{}\"", key.replace('"', "\"\"")) } else { key.to_string() };
        let _ = write!(s, ",{quoted}");
    }
    s.push('\n');
    for i in 0..rows.len() {
        let _ = write!(s, "{},{}", rows.steps[i], csv_num(rows.times[i]));
        for column in &rows.columns {
            s.push(',');
            if let Some(v) = column[i] {
                s.push_str(&csv_num(v));
            }
        }
        s.push('\n');
    }
    s
}

fn rows_plain(keys: &[&String], rows: &series::Rows) -> String {
    let names: Vec<String> = keys.iter().map(|k| escape_controls(k).into_owned()).collect();
    let widths: Vec<usize> = names.iter().map(|n| n.chars().count().max(10)).collect();
    let mut s = format!("{:>8}", "step");
    for (name, w) in names.iter().zip(&widths) {
        let _ = write!(s, "  {name:>w$}");
    }
    s.push('\n');
    for i in 0..rows.len() {
        let _ = write!(s, "{:>8}", rows.steps[i]);
        for (column, w) in rows.columns.iter().zip(&widths) {
            let _ = write!(s, "  {:>w$}", column[i].map_or(String::new(), num));
        }
        s.push('\n');
    }
    s
}
