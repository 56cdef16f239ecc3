//! `labmate status [RUN...]`: a compact summary per run, for a model to
//! read, and the review items a human disputed.

use std::process::ExitCode;

use labmate::status::{render, render_disputed, run_status};

use super::{Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    /// Runs to summarise (default: active runs and those ended in the last hour).
    runs: Vec<String>,
    /// Print an array of status objects (disputed review items go to stderr).
    #[arg(long)]
    json: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let all = if args.runs.is_empty() {
        labmate::status::active_and_recent(&index)?
    } else {
        let ids: Vec<String> = args.runs.iter().map(|r| index.resolve(r)).collect::<labmate::Result<_>>()?;
        ids.iter().map(|id| run_status(&index, &index.run(id)?)).collect::<labmate::Result<_>>()?
    };
    let disputed = labmate::review::disputed(index.lab())?;
    if args.json {
        print_json(&all)?;
        // The pushback reaches an agent that reads only JSON, without changing its shape.
        if !disputed.is_empty() {
            super::eprint_text(&render_disputed(&disputed));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut text: String = all.iter().map(render).collect();
    if all.is_empty() {
        text.push_str("no active runs, and none ended in the last hour (`labmate runs` lists them all)\n");
    }
    text.push_str(&render_disputed(&disputed));
    super::print_text(&text)?;
    Ok(ExitCode::SUCCESS)
}
