//! `labmate wait RUN...`: block until the runs end, an alert fires, a
//! condition holds or the timeout passes; the exit code says which.

use std::process::ExitCode;
use std::time::Duration;

use labmate::follow::Wall;
use labmate::status::{render, run_status};
use labmate::text::escape_controls as esc;
use labmate::{clock, rules, wait};

use super::Context;

#[derive(clap::Args)]
#[command(after_help = "Exit codes: 0 every run finished, or the condition holds; 3 a run ended otherwise \
(failed, stopped, lost); 4 an alert fired; 5 the timeout passed; 2 a bad request.")]
pub struct Args {
    /// Runs to wait on.
    #[arg(required = true)]
    runs: Vec<String>,
    /// Return once this holds for every run, e.g. 'step >= 1000' or 'val_loss < 2.1'.
    #[arg(long, value_name = "EXPR")]
    until: Option<String>,
    /// Give up after this long, e.g. 90s, 10m, 2h.
    #[arg(long, value_name = "DURATION")]
    timeout: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let until = args.until.as_deref().map(rules::parse_condition).transpose()?;
    let timeout = args
        .timeout
        .as_deref()
        .map(|t| {
            clock::parse_duration(t).map_err(|why| labmate::Error::invalid("timeout", format!("--timeout: {why}")))
        })
        .transpose()?
        .map(Duration::from_secs_f64);
    let mut index = ctx.index()?;
    let ids: Vec<String> = args.runs.iter().map(|r| index.resolve(r)).collect::<labmate::Result<_>>()?;
    let end = wait::wait(&mut index, &ids, until.as_ref(), timeout, &Wall, Duration::from_millis(200))?;
    let mut text = format!("labmate: wait: {}\n", esc(&end.describe()));
    for id in &ids {
        text.push_str(&render(&run_status(&index, &index.run(id)?)?));
    }
    super::print_text(&text)?;
    Ok(ExitCode::from(end.exit_code()))
}
