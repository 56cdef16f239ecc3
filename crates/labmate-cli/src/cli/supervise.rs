//! `labmate __supervise [--job] RUN_DIR`: the detached supervisor's entry
//! point; with `--job`, the supervisor inside a Slurm job.

use std::path::PathBuf;
use std::process::ExitCode;

use labmate::supervisor;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Inside the run's Slurm job: take the run's lock rather than be handed it.
    #[arg(long)]
    job: bool,
    run_dir: PathBuf,
    /// Push the run to this lab while it lives (the token in $LABMATE_TOKEN); [remote] url otherwise.
    #[arg(long, value_name = "URL")]
    remote: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // The run folder is <lab>/runs/<id>: its lab is two levels up.
    let lab_root = args.run_dir.parent().and_then(|p| p.parent());
    let lab = ctx.clocked(labmate::Lab::find(&ctx.cwd, lab_root)?);
    // A run launched from elsewhere (an approval, the queue) is pushed by the
    // lab's [remote] settings; one that cannot be is still supervised.
    let remote = super::sync::remote(ctx, &lab, args.remote.as_deref(), None).unwrap_or_else(|e| {
        say!("labmate: the run is not pushed to [remote] url: {e:#}");
        None
    });
    let outcome = if args.job {
        supervisor::supervise_in_job(&lab, &args.run_dir, remote)?
    } else {
        supervisor::supervise_detached(&lab, &args.run_dir, remote)?
    };
    Ok(ExitCode::from(outcome.shell_code().clamp(0, 255) as u8))
}
