//! `labmate logs RUN`: a run's output, as the terminal showed it.

use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

use labmate::follow::{self, Wall};
use labmate::rundir::{OUTPUT_LOG, RunDir, STDERR_LOG};

use super::Context;

#[derive(clap::Args)]
pub struct Args {
    /// A run id, unique id prefix, last 4 characters of an id, or name.
    run: String,
    /// Keep printing new output until the run ends.
    #[arg(long, short)]
    follow: bool,
    /// Start with the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<usize>,
    /// Only what the run wrote to stderr.
    #[arg(long)]
    stderr: bool,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    let id = index.resolve(&args.run)?;
    let dir = RunDir::at(index.lab().run_dir(&id));
    let file = if args.stderr { STDERR_LOG } else { OUTPUT_LOG };
    let from = match args.tail {
        Some(n) => follow::tail_start(&dir.file(file), n)?,
        None => 0,
    };
    let mut out = io::stdout().lock();
    let print = |chunk: &[u8]| {
        out.write_all(chunk)?;
        out.flush()?;
        Ok::<_, anyhow::Error>(())
    };
    if args.follow {
        let mut index = index;
        follow::log(&mut index, &id, file, from, &Wall, Duration::from_millis(200), print)?;
    } else {
        follow::read_from(&dir.file(file), from, print)?;
    }
    Ok(ExitCode::SUCCESS)
}
