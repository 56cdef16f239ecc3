//! `labmate approve ID`: say yes to a pending launch (it launches, detached)
//! or accept a review item.

use std::process::ExitCode;

use labmate::facade;
use labmate::review::Verdict;

use super::{AuthorArg, Context};

#[derive(clap::Args)]
#[command(after_help = "\
The approver must not be the requester (an agent cannot approve its own request), nor an agent
(an author named agent:... or listed in [approval] agents). A refusal exits with code 2.")]
pub struct Args {
    /// A request (a-...) or review item (v-...): its id, a unique prefix, or its last 4 characters.
    id: String,
    /// A comment, for the record and the notebook.
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    #[command(flatten)]
    author: AuthorArg,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = ctx.lab()?;
    let by = ctx.author(&args.author)?;
    let exe = std::env::current_exe()?;
    let decided = facade::decide(&lab, &args.id, Verdict::Yes, &by, args.note, &exe)?;
    super::review::report(&decided);
    Ok(ExitCode::SUCCESS)
}
