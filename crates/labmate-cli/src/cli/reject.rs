//! `labmate reject ID --reason TEXT`: say no to a pending launch, or
//! dispute a review item (it shows in `labmate status` until resolved).

use std::process::ExitCode;

use labmate::facade;
use labmate::review::Verdict;

use super::{AuthorArg, Context};

#[derive(clap::Args)]
#[command(after_help = "\
The one who rejects must not be the requester, nor an agent; a refusal exits with code 2.")]
pub struct Args {
    /// A request (a-...) or review item (v-...): its id, a unique prefix, or its last 4 characters.
    id: String,
    /// Why: kept with the decision, shown to the agent, written in the notebook.
    #[arg(long, value_name = "TEXT", required = true)]
    reason: String,
    #[command(flatten)]
    author: AuthorArg,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = ctx.lab()?;
    let by = ctx.author(&args.author)?;
    let exe = std::env::current_exe()?;
    let decided = facade::decide(&lab, &args.id, Verdict::No, &by, Some(args.reason), &exe)?;
    super::review::report(&decided);
    Ok(ExitCode::SUCCESS)
}
