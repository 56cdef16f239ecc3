//! `labmate events [RUN]`: alert, lifecycle and warning events, oldest first.

use std::fmt::Write as _;
use std::process::ExitCode;

use labmate::clock;
use labmate::text::escape_controls as esc;

use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    /// One run (default: all).
    run: Option<String>,
    /// Only events since then: RFC 3339 (2026-11-26T05:00:00Z) or a duration ago (10m, 2h).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Print an array of event objects.
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let id = args.run.as_deref().map(|r| index.resolve(r)).transpose()?;
    let since = match &args.since {
        Some(s) => clock::parse_time(s, ctx.now())
            .map_err(|why| labmate::Error::invalid("since", format!("--since: {why}")))?,
        None => f64::MIN,
    };
    let events = index.events_since(id.as_deref(), since)?;
    if args.json {
        print_json(&events)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    for e in &events {
        let who = e.name.as_ref().map_or(e.run.clone(), |n| format!("{} ({})", e.run, esc(n)));
        let _ = writeln!(out, "{}  {who}  {:<9}  {}", e.event.time, esc(&e.event.kind), esc(&e.event.message));
    }
    if events.is_empty() {
        out.push_str("no events\n");
    }
    super::print_text(&out)?;
    Ok(ExitCode::SUCCESS)
}
