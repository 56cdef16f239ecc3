//! `labmate run`: launch a command as a supervised run.

use std::process::ExitCode;

use labmate::Lab;
use labmate::supervisor::{self, LaunchRequest, Stage};

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// A name for the run (names need not be unique; ids are).
    #[arg(long)]
    name: Option<String>,
    /// A tag; repeat for more.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// A config value; repeat for more. VALUE parses as JSON where it can.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    config: Vec<String>,
    /// A babysitting rule for this run, e.g. 'val_loss > 5 after step 1000 => stop'; repeat for more.
    #[arg(long = "rule", value_name = "RULE")]
    rules: Vec<String>,
    /// Wait in the launch queue for a free slot (max_concurrent in labmate.toml) and a free GPU.
    #[arg(long)]
    queue: bool,
    /// Print the run id and return; the run goes on, supervised.
    #[arg(long)]
    detach: bool,
    /// The command and its arguments, after `--`.
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    command: Vec<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = Lab::find_or_create(&ctx.cwd, ctx.lab_dir.as_deref())?;
    let request = LaunchRequest {
        name: args.name,
        tags: args.tags,
        config: args.config,
        rules: args.rules,
        queue: args.queue,
        command: args.command,
        cwd: ctx.cwd.clone(),
    };
    let prepared = supervisor::prepare(&lab, request)?;
    let id = prepared.spec.id.clone();
    if args.detach {
        let exe = std::env::current_exe()?;
        supervisor::spawn_detached(&exe, prepared)?;
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let outcome = supervisor::supervise(prepared, true, |spec, stage| match stage {
        Stage::Queued => eprintln!("labmate: run {} queued", spec.id),
        Stage::Started => eprintln!("labmate: run {} started", spec.id),
    })?;
    let how = match (outcome.exit_code, outcome.signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by {}", supervisor::signal_name(s)),
        (None, None) => String::from("no exit code"),
    };
    eprintln!("labmate: run {id} {} ({how})", outcome.status);
    Ok(ExitCode::from(outcome.shell_code().clamp(0, 255) as u8))
}
