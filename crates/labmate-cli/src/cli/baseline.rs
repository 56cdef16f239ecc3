//! `labmate baseline set|show|clear`: the run or group others are measured against.

use std::process::ExitCode;

use labmate::registry;

use super::{AuthorArg, Context};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand)]
enum Action {
    /// Mark a run (id, prefix, name) or a group (PATH=VALUE or an expression) as the baseline.
    Set {
        side: String,
        #[command(flatten)]
        author: AuthorArg,
    },
    /// Print the baseline and the runs it stands for.
    Show,
    /// Forget the baseline.
    Clear,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let index = ctx.index()?;
    match args.action {
        Action::Set { side, author } => {
            let (stored, n) = labmate::facade::set_baseline(&index, &side, &ctx.author(&author)?)?;
            say!("labmate: baseline is {stored} ({n} run(s))");
        }
        Action::Show => match registry::baseline(index.lab()) {
            Some(side) => {
                let resolved = registry::side(&index, &side)?;
                let ids: Vec<&str> = resolved.runs.iter().map(|r| r.id.as_str()).collect();
                super::print_text(&format!("{side}: {}\n", ids.join(", ")))?;
            }
            None => println!("no baseline set (`labmate baseline set RUN` sets one)"),
        },
        Action::Clear => {
            registry::clear_baseline(index.lab())?;
            say!("labmate: baseline cleared");
        }
    }
    Ok(ExitCode::SUCCESS)
}
