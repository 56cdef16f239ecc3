//! `labmate stop RUN...`: stop runs (SIGTERM, then SIGKILL after the grace
//! period); a sweep's id stops every run of it still queued or running.

use std::process::ExitCode;
use std::time::Duration;

use labmate::facade;
use labmate::follow::{self, Wall};
use labmate::policy::Policy;
use labmate::stop::Stopped;

use super::{AuthorArg, Context};

#[derive(clap::Args)]
pub struct Args {
    /// Runs to stop, or sweeps (s-...): their runs still queued or running.
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
    let (sweeps, runs): (Vec<&String>, Vec<&String>) =
        args.runs.iter().partition(|a| labmate::sweep::looks_like_sweep_id(a));
    let mut ids: Vec<String> = runs.into_iter().map(|r| index.resolve(r)).collect::<labmate::Result<_>>()?;
    let mut stopped = Vec::new();
    for id in &ids {
        stopped.push((id.clone(), facade::stop(&index, id, args.reason.as_deref(), &by, grace)?));
    }
    for sweep in sweeps {
        let of_sweep = facade::stop_sweep(&index, sweep, args.reason.as_deref(), &by, grace)?;
        if of_sweep.is_empty() {
            say!("labmate: sweep {sweep} has no run queued or running");
        }
        ids.extend(of_sweep.iter().map(|(id, _)| id.clone()));
        stopped.extend(of_sweep);
    }
    for (id, stopped) in &stopped {
        match stopped {
            Stopped::AlreadyEnded(status) => {
                say!("labmate: run {id} already ended ({status})")
            }
            Stopped::Killed { processes } if *processes > 0 => {
                let s = if *processes == 1 { "" } else { "es" };
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
