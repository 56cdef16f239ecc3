//! `labmate note "TEXT"`: appends an entry to the lab notebook.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use labmate::facade;
use labmate::notebook::{self, KINDS, NewEntry};

use super::{AuthorArg, Context};

#[derive(clap::Args)]
#[command(after_help = "The text may cite live values, rendered now and re-checked by `notebook check`: \
{{RUN.metrics.val_loss.min}}, {{RUN.config.lr}}, {{group:config.lr=3e-4 .metrics.val_loss.min.mean}}, \
{{compare RUN_A RUN_B val_loss}}. An unknown run or key is an error. Entries are never edited: amend one \
with a new entry (--amends).")]
pub struct Args {
    /// The entry, in markdown; `-` reads it from stdin.
    #[arg(allow_hyphen_values = true)]
    text: String,
    /// A run the entry concerns (id, prefix or name); repeatable.
    #[arg(long = "run", value_name = "RUN")]
    runs: Vec<String>,
    /// What the entry is [default: observation, or bug with --repro].
    #[arg(long, value_parser = KINDS)]
    kind: Option<String>,
    #[command(flatten)]
    author: AuthorArg,
    /// The entry this one amends (id or prefix).
    #[arg(long, value_name = "ENTRY")]
    amends: Option<String>,
    /// A bug's smallest reproducer: a command (run as argv, no shell) that fails while the bug is there.
    #[arg(long, value_name = "CMD")]
    repro: Option<String>,
    /// An image to embed, e.g. from `labmate plot ... -o notebook/val_loss.svg`; repeatable.
    #[arg(long = "plot", value_name = "FILE")]
    plots: Vec<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let lab = ctx.lab()?;
    let kind = args.kind.unwrap_or_else(|| if args.repro.is_some() { "bug" } else { "observation" }.into());
    let mut text = args.text;
    if text == "-" {
        text.clear();
        std::io::stdin().read_to_string(&mut text)?;
    }
    for p in &args.plots {
        text = format!("{}\n\n{}", text.trim_end(), notebook::image_link(&lab, &ctx.cwd.join(p))?);
    }
    let author = ctx.author(&args.author)?;
    let entry = NewEntry { kind: kind.clone(), text, runs: args.runs, amends: args.amends, ..Default::default() };
    let repro = match args.repro {
        Some(cmd) if kind == "bug" => Some(notebook::bugs::split_words(&cmd)?),
        Some(_) => return Err(labmate::Error::invalid("kind", format!("--repro is for bugs, not a {kind}")).into()),
        None => None,
    };
    let noted = facade::note(&lab, entry, repro, &author)?;
    for warning in &noted.warnings {
        say!("labmate: warning: {warning}");
    }
    let id = noted.entry.id;
    println!("{id}");
    if kind == "bug" {
        say!("labmate: `labmate repro {id}` runs the reproducer; make it fail first");
    }
    // A hand-written number that disagrees with the registry is worth saying now.
    let report = notebook::check_entry(&lab, &ctx.index()?, &id)?;
    for m in &report.mismatches {
        say!("labmate: warning: {}", super::notebook::describe(m));
    }
    Ok(ExitCode::SUCCESS)
}
