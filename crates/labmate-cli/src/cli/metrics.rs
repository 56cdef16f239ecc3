//! `labmate metrics RUN [KEY...]`: a run's metric series, each against its
//! x axis (its step metric by default, else its steps).

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use labmate::axis::{Axis, RunAxes};
use labmate::model::Point;
use labmate::record::Num;
use labmate::series::Rows;
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
    /// The x axis: step, time (epoch seconds), relative (seconds since the first point) or a metric;
    /// by default each key's step metric (from the run's metric definitions), else step.
    #[arg(long, value_name = "AXIS")]
    x: Option<String>,
    /// Print {"key": [{"step", "time", "value"}, ...]} (with "x" when the axis is not step).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV rows: key,step,time,value (and x when an axis is not step).
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

/// One key's points as shown: each with its x, on `axis`.
struct Shown {
    key: String,
    axis: Axis,
    points: Vec<(f64, Point)>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let id = index.resolve(&args.run)?;
    let run = index.run(&id)?;
    let known: Vec<String> = run.metrics.keys().cloned().collect();
    let has = || if known.is_empty() { "none".into() } else { known.join(", ") };
    let mut keys = if args.keys.is_empty() { known.clone() } else { args.keys.clone() };
    for key in &keys {
        if !known.contains(key) {
            let why = format!("run {id} has no metric '{key}'; it has: {}", has());
            return Err(labmate::Error::not_found("metric", why).into());
        }
    }
    keys.sort();
    keys.dedup();
    let axis = args.x.as_deref().map(Axis::named);
    if let Some(Axis::Metric(x)) = &axis {
        if !known.contains(x) {
            let why = format!("--x {x}: the x axis is step, time, relative, or one of the run's metrics: {}", has());
            return Err(labmate::Error::not_found("metric", why).into());
        }
    }
    let mut series = Vec::with_capacity(keys.len());
    let mut origin = f64::INFINITY;
    for key in keys {
        let points = index.series(&id, &key)?;
        origin = points.iter().map(|p| p.time).fold(origin, f64::min);
        series.push((key, points));
    }
    if args.rows {
        let keys: Vec<&String> = series.iter().map(|(k, _)| k).collect();
        let columns: Vec<&[Point]> = series.iter().map(|(_, p)| p.as_slice()).collect();
        let mut rows = Rows::join(&columns, args.all);
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
    let mut axes = RunAxes::new(&index, &run);
    let mut all = Vec::with_capacity(series.len());
    for (key, points) in series {
        let (axis, placed) = axes.place(&key, points, axis.as_ref(), origin, (None, None))?;
        let points = placed.keep(args.points).into_iter().map(|i| (placed.x(i), *placed.point(i))).collect();
        all.push(Shown { key, axis, points });
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
fn json(all: &[Shown]) -> String {
    let mut s = String::from("{");
    for (i, shown) in all.iter().enumerate() {
        let _ =
            write!(s, "{}\n  {}: [", if i > 0 { "," } else { "" }, serde_json::to_string(&shown.key).expect("json"));
        let with_x = shown.axis != Axis::Step;
        for (j, (x, p)) in shown.points.iter().enumerate() {
            let _ = write!(
                s,
                "{}\n    {{\"step\": {}, \"time\": {}, \"value\": {}",
                if j > 0 { "," } else { "" },
                p.step,
                json_num(p.time),
                json_num(p.value)
            );
            if with_x {
                let _ = write!(s, ", \"x\": {}", json_num(*x));
            }
            s.push('}');
        }
        s.push_str(if shown.points.is_empty() { "]" } else { "\n  ]" });
    }
    s.push_str(if all.is_empty() { "}\n" } else { "\n}\n" });
    s
}

fn json_num(v: f64) -> String {
    serde_json::to_string(&Num(v)).expect("json")
}

/// An x column only when some key is not on its steps; a key that is has its step there.
fn csv(all: &[Shown]) -> String {
    let with_x = all.iter().any(|s| s.axis != Axis::Step);
    let mut s = String::from(if with_x { "key,step,time,value,x\n" } else { "key,step,time,value\n" });
    for shown in all {
        let key = &shown.key;
        let key =
            if key.contains([',', '"', '\n']) { format!("\"{}\"", key.replace('"', "\"\"")) } else { key.clone() };
        for (x, p) in &shown.points {
            let _ = write!(s, "{key},{},{},{}", p.step, csv_num(p.time), csv_num(p.value));
            if with_x {
                let _ = write!(s, ",{}", csv_num(*x));
            }
            s.push('\n');
        }
    }
    s
}

fn csv_num(v: f64) -> String {
    labmate::export::number(v)
}

/// A key on its steps shows step and value; on another axis, a header names its x column.
fn plain(all: &[Shown]) -> String {
    let mut s = String::new();
    for shown in all {
        let _ = writeln!(s, "{} ({} points)", escape_controls(&shown.key), shown.points.len());
        if shown.axis == Axis::Step {
            for (_, p) in &shown.points {
                let _ = writeln!(s, "  {:>8}  {}", p.step, num(p.value));
            }
            continue;
        }
        let name = escape_controls(shown.axis.name());
        let width = name.chars().count().max(8);
        let _ = writeln!(s, "  {name:>width$}  value");
        for (x, p) in &shown.points {
            // Wall times and other metrics' values, exactly: neither is short.
            let x = if x.fract() == 0.0 && x.abs() < 1e15 { format!("{x:.0}") } else { csv_num(*x) };
            let _ = writeln!(s, "  {x:>width$}  {}", num(p.value));
        }
    }
    s
}

/// One row a line: a million rows stay quick to write and to parse.
fn rows_json(keys: &[&String], rows: &Rows) -> String {
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

fn rows_csv(keys: &[&String], rows: &Rows) -> String {
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

fn rows_plain(keys: &[&String], rows: &Rows) -> String {
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
