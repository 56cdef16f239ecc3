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
        if let Some(n) = args.points {
            pts = series::downsample(&pts, n);
        }
        all.insert(key, pts);
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
