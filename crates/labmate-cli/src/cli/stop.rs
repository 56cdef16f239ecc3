//! `labmate stop RUN...`: stop runs (SIGTERM, then SIGKILL after the grace period).

use std::process::ExitCode;
use std::time::Duration;

use labmate::facade;
use labmate::follow::{self, Wall};
use labmate::policy::Policy;
use labmate::stop::Stopped;

use super::{AuthorArg, Context};

#[derive(clap::Args)]
pub struct Args {
    /// Runs to stop.
    #[arg(required = true)]
    runs: Vec<String>,
    /// Why, for the record.
    #[arg(long, value_name = "TEXT")]
    reason: Option<String>,
    #[command(flatten)]
    author: AuthorArg,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut index = ctx.index()?;
    let grace = Duration::from_secs_f64(Policy::load(index.lab())?.supervisor.stop_grace);
    let by = ctx.author(&args.author)?;
    let ids: Vec<String> = args.runs.iter().map(|r| index.resolve(r)).collect::<labmate::Result<_>>()?;
    for id in &ids {
        match facade::stop(&index, id, args.reason.as_deref(), &by, grace)? {
            Stopped::AlreadyEnded(status) => {
                say!("labmate: run {id} already ended ({status})")
            }
            Stopped::Killed { processes } if processes > 0 => {
                let s = if processes == 1 { "" } else { "es" };
                say!("labmate: run {id} had lost its supervisor: ended {processes} process{s} of it still running")
            }
            Stopped::Asked | Stopped::Killed { .. } => {}
        }
    }
    // The supervisors end their runs; report once they have (or say they are late).
    let ends =
        follow::ended(&mut index, &ids, &Wall, Duration::from_millis(100), Some(grace + Duration::from_secs(5)))?;
    for (id, end) in ids.iter().zip(ends) {
        match end {
            Some(run) => say!("labmate: run {id} {}", run.status),
            None => say!("labmate: run {id} has not ended yet; `labmate wait {id}` follows it"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
