//! `labmate __supervise RUN_DIR`: the detached supervisor's entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use labmate::supervisor;

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    run_dir: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    // The run folder is <lab>/runs/<id>: its lab is two levels up.
    let lab_root = args.run_dir.parent().and_then(|p| p.parent());
    let lab = ctx.clocked(labmate::Lab::find(&ctx.cwd, lab_root)?);
    let outcome = supervisor::supervise_detached(&lab, &args.run_dir)?;
    Ok(ExitCode::from(outcome.shell_code().clamp(0, 255) as u8))
}
