//! `labmate runs`: the runs table — filtered, sorted, grouped across seeds.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use labmate::clock;
use labmate::model::{Run, key_metrics};
use labmate::policy::Policy;
use labmate::query::{Expr, Path};
use labmate::record::RunStatus;
use labmate::registry::{self, Group, SortKey};
use labmate::text::{escape_controls, num};
use serde_json::Value;

use super::table::Table;
use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    /// Show at most N runs.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Only runs for which EXPR holds, e.g. 'status == "finished" and config.lr < 1e-3'.
    #[arg(long = "where", value_name = "EXPR")]
    filter: Option<String>,
    /// Sort by these paths (comma-separated; a leading '-' sorts descending).
    #[arg(long, value_name = "KEYS", allow_hyphen_values = true)]
    sort: Vec<String>,
    /// Columns to show (comma-separated paths: name, config.lr, metrics.val_loss.min, metrics.loss@1000...).
    #[arg(long, value_name = "PATHS")]
    columns: Vec<String>,
    /// Aggregate runs sharing these paths' values (usually differing by seed): n, mean, std, min, max, 95% CI.
    #[arg(long = "group-by", value_name = "PATHS")]
    group_by: Vec<String>,
    /// Print JSON: run objects (or rows of the columns, or groups).
    #[arg(long, conflicts_with_all = ["csv", "md"])]
    json: bool,
    /// Print CSV.
    #[arg(long, conflicts_with = "md")]
    csv: bool,
    /// Print a Markdown table.
    #[arg(long)]
    md: bool,
}

pub(super) enum Style {
    Text,
    Csv,
    Md,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let filter = args.filter.as_deref().map(Expr::parse).transpose()?;
    let sort: Vec<SortKey> = args
        .sort
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
        .map(SortKey::parse)
        .collect::<Result<_, _>>()?;
    let runs =
        registry::select(&index, filter.as_ref(), &sort, if args.group_by.is_empty() { args.limit } else { None })?;
    let style = if args.csv {
        Style::Csv
    } else if args.md {
        Style::Md
    } else {
        Style::Text
    };
    if runs.is_empty() && !args.json && matches!(style, Style::Text) {
        let text = match &args.filter {
            Some(f) => format!("no run matches --where '{f}'\n"),
            None => render(&[], 0.0, None),
        };
        std::io::stdout().lock().write_all(text.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let value_at = |id: &str, key: &str, step: i64| index.value_at(id, key, step).ok().flatten();

    if !args.group_by.is_empty() {
        let by = registry::parse_paths(&args.group_by, &runs, "--group-by")?;
        let of = if args.columns.is_empty() {
            key_metrics(&runs, 3).into_iter().map(|k| Path::Metric { key: k, field: "last".into() }).collect()
        } else {
            registry::parse_paths(&args.columns, &runs, "--columns")?
        };
        let seed_key = Policy::load(index.lab())?.runs.seed_key;
        let mut groups = registry::group(&index, &runs, &by, &of, &seed_key);
        if let Some(l) = args.limit {
            groups.truncate(l);
        }
        if args.json {
            print_json(&groups)?;
        } else {
            write(&style, &render_groups(&groups, &by, &of, &style))?;
        }
        return Ok(ExitCode::SUCCESS);
    }

    if args.columns.is_empty() {
        match style {
            Style::Text if args.json => print_json(&runs)?,
            Style::Text => {
                let baseline = registry::baseline_delta(&index, &runs);
                super::print_text(&render(&runs, index.lab().now(), baseline.as_ref()))?;
            }
            _ => {
                let mut cols = vec!["id", "name", "status", "created_at", "duration_s"]
                    .into_iter()
                    .map(String::from)
                    .collect::<Vec<_>>();
                cols.extend(key_metrics(&runs, 3).into_iter().map(|k| format!("metrics.{k}.last")));
                cols.push("tags".into());
                let paths = cols.iter().map(|c| Path::parse(c).expect("known paths")).collect::<Vec<_>>();
                write(&style, &render_columns(&runs, &paths, &value_at, &style))?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let paths = registry::parse_paths(&args.columns, &runs, "--columns")?;
    if args.json {
        let rows: Vec<serde_json::Map<String, Value>> =
            runs.iter().map(|r| paths.iter().map(|p| (p.to_string(), p.get(r, &value_at))).collect()).collect();
        print_json(&rows)?;
    } else {
        write(&style, &render_columns(&runs, &paths, &value_at, &style))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The runs table a human reads.
pub fn render(runs: &[Run], now: f64, baseline: Option<&(String, f64)>) -> String {
    if runs.is_empty() {
        return "no runs yet: start one with `labmate run -- CMD`\n".into();
    }
    let keys = key_metrics(runs, 3);
    let mut header = vec!["ID".to_string(), "NAME".into(), "STATUS".into(), "AGE".into(), "DURATION".into()];
    header.extend(keys.iter().cloned());
    if let Some((k, _)) = baseline {
        header.push(format!("Δ{k} vs baseline"));
    }
    header.push("TAGS".into());
    let mut table = Table::new(header);
    for run in runs {
        let mut row = vec![
            run.id.clone(),
            run.name.clone().unwrap_or_else(|| "-".into()),
            status_cell(run),
            format!("{} ago", clock::human_duration(now - run.created_ts)),
            clock::human_duration(run.duration_s),
        ];
        for k in &keys {
            row.push(run.metrics.get(k).map_or("-".into(), |m| num(m.last)));
        }
        if let Some((k, base)) = baseline {
            row.push(run.metrics.get(k).map_or("-".into(), |m| signed(m.last - base)));
        }
        row.push(run.tags.join(","));
        table.row(row);
    }
    table.render()
}

fn signed(v: f64) -> String {
    if v > 0.0 { format!("+{}", num(v)) } else { num(v) }
}

fn status_cell(run: &Run) -> String {
    let mut s = run.status.to_string();
    match (&run.status, run.exit_code, run.signal) {
        // A stopped run says what stopped it: the rule, or who.
        (RunStatus::Stopped, _, _) if run.reason.is_some() => {
            let reason = run.reason.as_deref().unwrap_or("");
            let _ = write!(s, " ({})", reason.split(':').next().unwrap_or(reason));
        }
        (RunStatus::Failed, Some(c), _) => {
            let _ = write!(s, " ({c})");
        }
        (_, None, Some(sig)) => {
            let _ = write!(s, " ({})", labmate::supervisor::signal_name(sig));
        }
        _ => {}
    }
    s
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::Number(n) => n.as_f64().map_or(n.to_string(), num),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

fn render_columns(
    runs: &[Run],
    paths: &[Path],
    value_at: &dyn Fn(&str, &str, i64) -> Option<f64>,
    style: &Style,
) -> String {
    let header: Vec<String> = paths.iter().map(|p| p.to_string()).collect();
    let rows: Vec<Vec<String>> =
        runs.iter().map(|r| paths.iter().map(|p| cell(&p.get(r, value_at))).collect()).collect();
    emit(header, rows, style)
}

pub(super) fn render_groups(groups: &[Group], by: &[Path], of: &[Path], style: &Style) -> String {
    let mut header: Vec<String> = by.iter().map(|p| p.to_string()).collect();
    header.push("n".into());
    header.push("seeds".into());
    for p in of {
        header.push(format!("{p} mean ± std"));
        header.push(format!("{p} [min, max]"));
        header.push(format!("{p} 95% CI"));
    }
    let rows = groups
        .iter()
        .map(|g| {
            let mut row: Vec<String> = by.iter().map(|p| cell(&g.key[&p.to_string()])).collect();
            row.push(g.runs.len().to_string());
            row.push(g.seeds.iter().map(cell).collect::<Vec<_>>().join(","));
            for p in of {
                let s = &g.stats[&p.to_string()];
                let nan =
                    if s.nan_excluded > 0 { format!(" ({} NaN excluded)", s.nan_excluded) } else { String::new() };
                let spread = if s.n >= 2 { format!(" ± {}", num(s.std)) } else { String::new() };
                row.push(if s.n == 0 { format!("-{nan}") } else { format!("{}{spread}{nan}", num(s.mean)) });
                row.push(if s.n == 0 { "-".into() } else { format!("[{}, {}]", num(s.min), num(s.max)) });
                row.push(s.ci95.map_or("-".into(), |(lo, hi)| format!("[{}, {}]", num(lo), num(hi))));
            }
            row
        })
        .collect();
    emit(header, rows, style)
}

/// CSV is data and keeps the exact strings; the table and Markdown are for people.
fn write(style: &Style, text: &str) -> std::io::Result<()> {
    match style {
        Style::Csv => std::io::stdout().lock().write_all(text.as_bytes()),
        Style::Text | Style::Md => super::print_text(text),
    }
}

fn emit(header: Vec<String>, rows: Vec<Vec<String>>, style: &Style) -> String {
    match style {
        Style::Text => {
            let mut t = Table::new(header);
            for r in rows {
                t.row(r);
            }
            t.render()
        }
        Style::Csv => {
            let mut out = String::new();
            for r in std::iter::once(header).chain(rows) {
                let cells: Vec<String> = r.iter().map(|c| csv_cell(c)).collect();
                out.push_str(&cells.join(","));
                out.push('\n');
            }
            out
        }
        Style::Md => {
            let md = |c: &String| escape_controls(c).replace('|', "\\|");
            let head: Vec<String> = header.iter().map(md).collect();
            let mut out = format!("| {} |\n|{}|\n", head.join(" | "), vec!["---"; header.len()].join("|"));
            for r in rows {
                let cells: Vec<String> = r.iter().map(md).collect();
                let _ = writeln!(out, "| {} |", cells.join(" | "));
            }
            out
        }
    }
}

fn csv_cell(c: &str) -> String {
    if c.contains([',', '"', '\n']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.to_string() }
}
