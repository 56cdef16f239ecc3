//! `labmate queue`: the runs waiting for a slot, in order; `queue cancel RUN`.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use labmate::clock;
use labmate::follow::{self, Wall};
use labmate::record::RunStatus;
use labmate::stop::Stopped;
use labmate::text::escape_controls as esc;

use super::{AuthorArg, Context, print_json};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Print an array of run objects, first in line first.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Take a queued run out of the queue (it ends `stopped`).
    Cancel {
        /// Queued runs to cancel.
        #[arg(required = true)]
        runs: Vec<String>,
        #[command(flatten)]
        author: AuthorArg,
    },
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let mut index = ctx.index()?;
    if let Some(Action::Cancel { runs, author }) = args.action {
        let by = ctx.author(&author)?;
        let mut ids = Vec::new();
        for r in &runs {
            let id = index.resolve(r)?;
            if let Stopped::AlreadyEnded(s) = labmate::facade::cancel(&index, &id, &by)? {
                say!("labmate: run {id} already ended ({s})");
            }
            ids.push(id);
        }
        follow::ended(&mut index, &ids, &Wall, Duration::from_millis(100), Some(Duration::from_secs(5)))?;
        say!("labmate: cancelled {}", runs.join(", "));
        return Ok(ExitCode::SUCCESS);
    }
    let mut queued: Vec<_> = index.runs(None)?.into_iter().filter(|r| r.status == RunStatus::Queued).collect();
    queued.reverse(); // oldest first: the order they start in
    if args.json {
        print_json(&queued)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = String::new();
    if queued.is_empty() {
        out.push_str("the queue is empty\n");
    }
    let now = ctx.now();
    for (i, r) in queued.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:>3}. {}  {}  waiting {}  {}",
            i + 1,
            r.id,
            esc(r.name.as_deref().unwrap_or("-")),
            clock::human_duration(now - r.created_ts),
            esc(&r.command.join(" "))
        );
    }
    super::print_text(&out)?;
    Ok(ExitCode::SUCCESS)
}
