//! `labmate runs`: the runs table, newest first.

use std::fmt::Write as _;
use std::io::Write;
use std::process::ExitCode;

use labmate::clock;
use labmate::model::{Run, key_metrics};

use super::table::{Table, num};
use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    /// Show at most N runs.
    #[arg(long, value_name = "N")]
    limit: Option<usize>,
    /// Print an array of run objects.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let runs = index.runs(args.limit)?;
    if args.json {
        print_json(&runs)?;
    } else {
        std::io::stdout().lock().write_all(render(&runs, clock::now()).as_bytes())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The runs table a human reads.
pub fn render(runs: &[Run], now: f64) -> String {
    if runs.is_empty() {
        return "no runs yet: start one with `labmate run -- CMD`\n".into();
    }
    let keys = key_metrics(runs, 3);
    let mut header = vec!["ID".to_string(), "NAME".into(), "STATUS".into(), "AGE".into(), "DURATION".into()];
    header.extend(keys.iter().cloned());
    header.push("TAGS".into());
    let mut table = Table::new(header);
    for run in runs {
        let mut row = vec![
            run.id.clone(),
            run.name.clone().unwrap_or_else(|| "-".into()),
            status_cell(run),
            age(run, now),
            clock::human_duration(run.duration_s),
        ];
        for k in &keys {
            row.push(run.metrics.get(k).map_or("-".into(), |m| num(m.last)));
        }
        row.push(run.tags.join(","));
        table.row(row);
    }
    table.render()
}

fn status_cell(run: &Run) -> String {
    let mut s = run.status.clone();
    match (run.status.as_str(), run.exit_code, run.signal) {
        // A stopped run says what stopped it: the rule, or who.
        ("stopped", _, _) if run.reason.is_some() => {
            let reason = run.reason.as_deref().unwrap_or("");
            let _ = write!(s, " ({})", reason.split(':').next().unwrap_or(reason));
        }
        ("failed", Some(c), _) => {
            let _ = write!(s, " ({c})");
        }
        (_, None, Some(sig)) => {
            let _ = write!(s, " ({})", labmate::supervisor::signal_name(sig));
        }
        _ => {}
    }
    s
}

fn age(run: &Run, now: f64) -> String {
    format!("{} ago", clock::human_duration(now - run.created_ts))
}
