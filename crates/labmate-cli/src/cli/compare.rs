//! `labmate compare A B [C...]`: config and code differences, and per metric
//! the values side by side with a verdict.

use std::fmt::Write as _;
use std::process::ExitCode;

use labmate::compare::{self, Report};
use labmate::text::{escape_controls as esc, num};

use super::table::Table;
use super::{Context, print_json};

#[derive(clap::Args)]
#[command(after_help = "A side is a run (id, prefix or name), PATH=VALUE (the runs whose PATH has that value, \
e.g. config.lr=3e-4), or a --where expression in quotes. With one side, it is compared against the baseline.")]
pub struct Args {
    /// The sides: the first is the reference the others are compared with.
    #[arg(required = true)]
    sides: Vec<String>,
    /// Metrics to compare (`val_loss` = its last value; `val_loss.min`, `val_loss@1000`...).
    #[arg(long = "metric", value_name = "KEY")]
    metrics: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let report = compare::of_texts(&index, &args.sides, &args.metrics)?;
    if args.json {
        print_json(&report)?;
    } else {
        super::print_text(&render(&report))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn letter(i: usize) -> char {
    (b'A' + (i % 26) as u8) as char
}

pub(super) fn render(r: &Report) -> String {
    let mut out = String::new();
    for (i, s) in r.sides.iter().enumerate() {
        let runs = if s.runs.len() == 1 { "1 run".to_string() } else { format!("{} runs", s.runs.len()) };
        let _ = writeln!(out, "{}: {}  ({runs})", letter(i), esc(&s.label));
    }
    out.push('\n');
    if r.config.is_empty() {
        out.push_str("config: no differences\n");
    } else {
        let mut header = vec!["config".to_string()];
        header.extend((0..r.sides.len()).map(|i| letter(i).to_string()));
        let mut t = Table::new(header);
        for d in &r.config {
            let mut row = vec![d.key.clone()];
            row.extend(d.values.iter().map(|v| match v {
                serde_json::Value::Null => "-".into(),
                serde_json::Value::Object(m) if m.contains_key("varies") => format!("varies {}", m["varies"]),
                other => other.to_string(),
            }));
            t.row(row);
        }
        out.push_str(&t.render());
    }
    out.push('\n');
    for (i, c) in r.code.iter().enumerate() {
        let commits = match c.commits.as_slice() {
            [] => "no commit".to_string(),
            [one] => one[..one.len().min(10)].to_string(),
            many => format!("{} commits", many.len()),
        };
        let patch = if c.patch.runs_with_patch == 0 {
            "clean".to_string()
        } else {
            format!("+ uncommitted changes ({} files, +{} -{})", c.patch.files, c.patch.added, c.patch.removed)
        };
        let since = c.since_first.as_ref().map_or(String::new(), |s| format!("; vs A: {s}"));
        let _ = writeln!(out, "code {}: {commits} {patch}{}", letter(i), esc(&since));
    }
    for m in &r.metrics {
        let better = if m.lower_is_better { "lower is better" } else { "higher is better" };
        let _ = writeln!(out, "\n{} ({better})", esc(&m.metric));
        for (i, vals) in m.values.iter().enumerate() {
            let shown: Vec<String> = vals.iter().map(|v| num(v.0)).collect();
            let _ = writeln!(out, "  {}: {}", letter(i), shown.join(", "));
        }
        for (i, c) in m.comparisons.iter().enumerate() {
            let _ = writeln!(out, "  {} vs A: {}", letter(i + 1), esc(&c.verdict));
        }
    }
    out
}
