//! `labmate show RUN`: one run in full.

use std::fmt::Write as _;
use std::process::ExitCode;

use labmate::clock;
use labmate::model::RunDetail;
use labmate::record::how_ended;
use labmate::text::{escape_controls as esc, num};

use super::table::Table;
use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    /// A run id, unique id prefix, last 4 characters of an id, or name.
    run: String,
    /// Print the run object.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let id = index.resolve(&args.run)?;
    let detail = index.run_detail(&id)?;
    if args.json {
        print_json(&detail)?;
    } else {
        super::print_text(&render(&detail))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn render(d: &RunDetail) -> String {
    let r = &d.run;
    let mut s = String::new();
    let _ = writeln!(s, "run      {}{}", r.id, r.name.as_ref().map_or(String::new(), |n| format!("  ({})", esc(n))));
    let mut status = r.status.to_string();
    if r.exit_code.is_some() || r.signal.is_some() {
        let _ = write!(status, ", {}", how_ended(r.exit_code, r.signal));
    }
    if let Some(reason) = &r.reason {
        let _ = write!(status, ": {}", esc(reason));
    }
    let _ = writeln!(s, "status   {status}");
    let _ = writeln!(
        s,
        "command  {}",
        if r.command.is_empty() { "(started by a client)".into() } else { esc(&r.command.join(" ")).into_owned() }
    );
    let _ = writeln!(s, "where    {}", esc(&format!("{}@{}:{}", d.user, d.host, d.cwd)));
    let _ = writeln!(
        s,
        "time     {} → {} ({})",
        r.created_at,
        r.ended_at.as_deref().unwrap_or("now"),
        clock::human_duration(r.duration_s)
    );
    if let Some(g) = &r.git {
        let _ = writeln!(
            s,
            "git      {} on {}{}",
            g.commit.as_deref().map_or("(no commit)", |c| &c[..c.len().min(12)]),
            esc(g.branch.as_deref().unwrap_or("(detached)")),
            if g.dirty { format!(", dirty ({} bytes of patch)", d.patch_bytes) } else { String::new() }
        );
        if !d.untracked.is_empty() {
            let _ = writeln!(s, "         untracked: {}", esc(&d.untracked.join(", ")));
        }
    }
    if !r.tags.is_empty() {
        let _ = writeln!(s, "tags     {}", esc(&r.tags.join(", ")));
    }
    for (label, value) in [("project", &r.project), ("group", &r.group), ("job_type", &r.job_type), ("notes", &r.notes)]
    {
        if let Some(v) = value {
            let _ = writeln!(s, "{label:<8} {}", esc(v));
        }
    }
    for (i, d) in r.metric_defs.iter().enumerate() {
        let mut how: Vec<String> = Vec::new();
        if let Some(x) = &d.step_metric {
            how.push(format!("x: {x}"));
        }
        for (what, value) in [("summary", &d.summary), ("goal", &d.goal)] {
            if let Some(v) = value {
                how.push(format!("{what}: {v}"));
            }
        }
        for (what, value) in [("hidden", d.hidden), ("step_sync", d.step_sync)] {
            if let Some(v) = value {
                how.push(format!("{what}: {v}"));
            }
        }
        let how = if how.is_empty() { String::new() } else { format!(" ({})", how.join(", ")) };
        let _ = writeln!(s, "{:<8} {}", if i == 0 { "defines" } else { "" }, esc(&format!("{}{how}", d.metric)));
    }
    if !r.config.is_empty() {
        let _ = writeln!(s, "config   {}", serde_json::Value::Object(r.config.clone()));
    }
    if !r.summary.is_empty() {
        let _ = writeln!(s, "summary  {}", serde_json::Value::Object(r.summary.clone()));
    }
    if !d.env.is_empty() {
        let env: Vec<String> = d.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(s, "env      {}", esc(&env.join(" ")));
    }
    let _ = writeln!(s, "folder   {}", esc(&d.dir));
    if !r.metrics.is_empty() {
        let mut t = Table::new(["METRIC", "LAST", "MIN", "MAX", "COUNT", "LAST STEP"]);
        for (k, m) in &r.metrics {
            let count =
                if m.nan_count > 0 { format!("{} ({} NaN)", m.count, m.nan_count) } else { m.count.to_string() };
            t.row(vec![k.clone(), num(m.last), num(m.min), num(m.max), count, m.last_step.to_string()]);
        }
        s.push('\n');
        s.push_str(&t.render());
    }
    if !d.events.is_empty() {
        s.push_str("\nevents\n");
        for e in &d.events {
            let _ = writeln!(s, "  {}  {:<9}  {}", e.time, esc(&e.kind), esc(&e.message));
        }
    }
    s
}
